"""``BinaryAttention``: multi-head binary self-attention with BiViT's
softmax-aware binarization, as one graph node.

The node replaces the ``Reshape/Transpose -> MatMul(Q, K^T) -> ReduceMax ->
Sub -> GreaterOrEqual -> Cast -> MatMul(P, V) -> Transpose/Reshape`` pattern
of an exported :class:`xnorvit.model.layers.BinaryAttention` (see
:class:`xnorvit.flows.transforms.ConvertBinaryAttention`). Its
``execute_node`` is the integer semantics of ``rtl/binary_attention.sv``,
one instance of that kernel per head:

    Q_i, K_j, V_j in {-1,+1}^D   (bit 1 = +1, bit 0 = -1), D = C / heads
    S[i][j] = Q_i . K_j = 2*popcount(XNOR(Q_i, K_j)) - D
    P[i][j] = S[i][j] >= max_j' S[i][j'] - c_int
    O[i][d] = sum_{j : P[i][j]} V_j[d]              (in [-T, T])

Head ``h`` owns channels ``h*D .. (h+1)*D - 1`` (the ``(B, T, H, D)`` split of
the PyTorch model).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

__all__ = ["BinaryAttention", "binary_attention", "attention_out_bits"]


def attention_out_bits(tokens: int) -> int:
    """Bits of a signed output lane: ``clog2(T + 1) + 1`` (``OW`` of the RTL)."""
    return int(math.ceil(math.log2(tokens + 1))) + 1


def binary_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, c_int: int) -> np.ndarray:
    """Integer reference of multi-head binary attention.

    Args:
        q, k, v: ``(N, T, C)`` arrays of bits {0, 1} (bit 1 = +1) or of
            bipolar values {-1, +1} (detected: any negative value).
        heads: H, ``C % H == 0``.
        c_int: softmax-aware binarization margin (``>= 0``, score units).

    Returns:
        ``(N, T, C)`` int64, values in ``[-T, T]``.

    Raises:
        ValueError: shapes differ, ``C % heads``, values not bits/bipolar,
            ``c_int < 0``.
    """
    q, k, v = (np.asarray(a) for a in (q, k, v))
    if not (q.shape == k.shape == v.shape) or q.ndim != 3:
        raise ValueError(f"BinaryAttention needs three (N, T, C) inputs of one shape, got {q.shape}, {k.shape}, {v.shape}")
    n, t, c = q.shape
    if c % heads:
        raise ValueError(f"channels {c} not divisible by heads {heads}")
    if c_int < 0:
        raise ValueError(f"c_int must be >= 0, got {c_int}")

    def bip(a):
        a = np.rint(a).astype(np.int64)
        if np.any(a < 0):
            if not np.all(np.abs(a) == 1):
                raise ValueError("BinaryAttention inputs must be bits {0,1} or bipolar {-1,+1}")
            return a
        if not np.all((a == 0) | (a == 1)):
            raise ValueError("BinaryAttention inputs must be bits {0,1} or bipolar {-1,+1}")
        return 2 * a - 1

    qb, kb, vb = bip(q), bip(k), bip(v)
    d = c // heads
    out = np.empty((n, t, c), dtype=np.int64)
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        s = np.einsum("nid,njd->nij", qb[..., sl], kb[..., sl])
        p = s >= s.max(axis=-1, keepdims=True) - c_int
        out[..., sl] = np.einsum("nij,njd->nid", p.astype(np.int64), vb[..., sl])
    return out


class BinaryAttention(CustomOp):
    """Graph node of multi-head binary attention (domain ``xnorvit.flows.ops``).

    Inputs: ``q``, ``k``, ``v``: ``(N, T, C)`` float tensors of bits
    (FINN ``BINARY``; bipolar values are accepted by execution too).
    Output: ``(N, T, C)`` float tensor of integers, FINN datatype
    ``INT{clog2(T+1)+1}``.

    Attributes: ``heads`` (int), ``c_int`` (int, the margin of
    ``S >= rowmax(S) - c_int``).
    """

    def get_nodeattr_types(self):
        return {"heads": ("i", True, 1), "c_int": ("i", True, 0)}

    def make_shape_compatible_op(self, model):
        return helper.make_node("Identity", [self.onnx_node.input[0]], [self.onnx_node.output[0]])

    def infer_node_datatype(self, model):
        t = model.get_tensor_shape(self.onnx_node.input[0])[-2]
        model.set_tensor_datatype(self.onnx_node.output[0], DataType[f"INT{attention_out_bits(t)}"])

    def execute_node(self, context, graph):
        node = self.onnx_node
        q, k, v = (context[name] for name in node.input)
        out = binary_attention(q, k, v, self.get_nodeattr("heads"), self.get_nodeattr("c_int"))
        context[node.output[0]] = out.astype(np.float32)

    def verify_node(self):
        info = []
        if len(self.onnx_node.input) != 3:
            info.append("BinaryAttention needs 3 inputs (q, k, v)")
        return info
