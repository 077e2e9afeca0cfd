"""Custom graph ops of xnorvit (ONNX domain ``xnorvit.flows.ops``).

qonnx's registry resolves a node's domain as a Python module and looks its
op type up in that module's ``custom_op`` dict, so nodes with
``domain="xnorvit.flows.ops"`` execute with ``qonnx``/FINN ``execute_onnx``
once xnorvit is installed. The abstract hardware ops here are FINN
``HWCustomOp``s; their RTL variants live in :mod:`xnorvit.flows.ops.rtl`
(domain ``xnorvit.flows.ops.rtl``). The stream fork reuses finn-plus's
``DuplicateStreams`` (see :mod:`xnorvit.flows.ops.fork`).
"""

from .binary_attention import BinaryAttention, attention_out_bits, binary_attention
from .pos_add import PosAdd, pos_add
from .residual_add import ResidualAdd, residual_add
from .token_pool import TokenPool, token_pool
from .token_slice import TokenInsert, TokenSelect, token_insert, token_select

#: ONNX domain of the ops in this package
DOMAIN = "xnorvit.flows.ops"

custom_op = {
    "BinaryAttention": BinaryAttention,
    "ResidualAdd": ResidualAdd,
    "PosAdd": PosAdd,
    "TokenPool": TokenPool,
    "TokenInsert": TokenInsert,
    "TokenSelect": TokenSelect,
}

__all__ = ["DOMAIN", "custom_op", "BinaryAttention", "binary_attention", "attention_out_bits",
           "ResidualAdd", "residual_add", "PosAdd", "pos_add", "TokenPool", "token_pool",
           "TokenInsert", "token_insert", "TokenSelect", "token_select"]

# FINN's abstract MVAU with channel-last thresholding (see .mvau; added by the lead: keep)
from .mvau import MVAU  # noqa: E402

custom_op["MVAU"] = MVAU
