"""RTL variants of xnorvit's hardware ops (ONNX domain ``xnorvit.flows.ops.rtl``).

qonnx resolves the domain as this module and looks op types up in
:data:`custom_op`. Op type ``<Name>_rtl``, class
``class Name_rtl(Name, RTLBackend)`` (finn-plus's pattern, e.g.
``finn/custom_op/fpgadataflow/rtl/thresholding_rtl.py``). Add further
variants by assigning into :data:`custom_op`.
"""

from .binary_attention_rtl import BinaryAttention_rtl
from .duplicatestreams_rtl import DuplicateStreams_rtl
from .pos_add_rtl import PosAdd_rtl
from .residual_add_rtl import ResidualAdd_rtl
from .threshold_table_rtl import ThresholdTable_rtl
from .token_pool_rtl import TokenPool_rtl
from .token_slice_rtl import TokenInsert_rtl, TokenSelect_rtl

#: ONNX domain of the ops in this package
DOMAIN = "xnorvit.flows.ops.rtl"

custom_op = {}
custom_op["ResidualAdd_rtl"] = ResidualAdd_rtl
custom_op["PosAdd_rtl"] = PosAdd_rtl
custom_op["TokenPool_rtl"] = TokenPool_rtl
custom_op["DuplicateStreams_rtl"] = DuplicateStreams_rtl
custom_op["BinaryAttention_rtl"] = BinaryAttention_rtl
custom_op["ThresholdTable_rtl"] = ThresholdTable_rtl
custom_op["TokenInsert_rtl"] = TokenInsert_rtl
custom_op["TokenSelect_rtl"] = TokenSelect_rtl

# MVAUs on rtl/mvau_xnor.sv and rtl/mvau_int.sv (xnorvit.flows.ops.mvau)
from xnorvit.flows.ops.mvau import MVAU_int_rtl, MVAU_xnor_rtl  # noqa: E402

custom_op["MVAU_xnor_rtl"] = MVAU_xnor_rtl
custom_op["MVAU_int_rtl"] = MVAU_int_rtl
