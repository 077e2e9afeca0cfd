"""Custom graph ops of xnorvit (ONNX domain ``xnorvit.flows.ops``).

qonnx's registry resolves a node's domain as a Python module and looks its
op type up in that module's ``custom_op`` dict, so nodes with
``domain="xnorvit.flows.ops"`` execute with ``qonnx``/FINN ``execute_onnx``
once xnorvit is installed.
"""

from .binary_attention import BinaryAttention, attention_out_bits, binary_attention

#: ONNX domain of the ops in this package
DOMAIN = "xnorvit.flows.ops"

custom_op = {"BinaryAttention": BinaryAttention}

__all__ = ["DOMAIN", "custom_op", "BinaryAttention", "binary_attention", "attention_out_bits"]
