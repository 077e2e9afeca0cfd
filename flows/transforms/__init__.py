"""qonnx ``Transformation``s of xnorvit: where finn-plus's streamlining stops
on a binary ViT (see :mod:`xnorvit.flows.compile` for the order they run in).
"""

from .attention import ConvertBinaryAttention
from .exact import ExactThresholdError, ExactThresholds, IntegerInput
from .checks import UnsupportedNodeError, check_integer_graph
from .xnor import ConvertBipolarMatMulsToXnorPopcount
from .layout import ChannelsLastBatchNorm, SetTokenThresholdLayout
from .streamline import (
    AbsorbSignMulIntoConv,
    AnnotateIntegerTypes,
    ConvertReduceMeanToSum,
    LazyTidyStreamline,
    MoveChannelwiseLinearPastFlatten,
    MoveScalarMulPastConstAdd,
    MoveScalarMulPastReduce,
    QuantizeConstantTokens,
    RemoveOutputScale,
)

__all__ = [
    "ConvertBinaryAttention",
    "ExactThresholds",
    "ExactThresholdError",
    "IntegerInput",
    "AbsorbSignMulIntoConv",
    "AnnotateIntegerTypes",
    "UnsupportedNodeError",
    "check_integer_graph",
    "ChannelsLastBatchNorm",
    "SetTokenThresholdLayout",
    "ConvertReduceMeanToSum",
    "LazyTidyStreamline",
    "MoveChannelwiseLinearPastFlatten",
    "ConvertBipolarMatMulsToXnorPopcount",
    "MoveScalarMulPastConstAdd",
    "MoveScalarMulPastReduce",
    "QuantizeConstantTokens",
    "RemoveOutputScale",
]
