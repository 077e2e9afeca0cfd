"""Token-layout transformations: BatchNorm of ``(N, T, C)`` token tensors
(exported as ``Transpose -> BatchNormalization -> Transpose``) and the channel
axis of MultiThresholds on token tensors."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

__all__ = ["ChannelsLastBatchNorm", "SetTokenThresholdLayout"]


def _perm(node) -> list[int] | None:
    a = get_by_name(node.attribute, "perm")
    return list(a.ints) if a is not None else None


def _bn_affine(model, bn) -> tuple[np.ndarray, np.ndarray]:
    """``A, B`` with ``BN(x) = A * x + B`` per channel (float32), as qonnx's
    ``BatchNormToAffine`` computes them."""
    scale, bias, mean, var = (model.get_initializer(n) for n in bn.input[1:5])
    if any(v is None for v in (scale, bias, mean, var)):
        raise ValueError(f"BatchNormalization {bn.name} has non-constant parameters")
    eps = get_by_name(bn.attribute, "epsilon")
    eps = 1e-5 if eps is None else eps.f
    a = (scale / np.sqrt(var + eps)).astype(np.float32)
    b = (bias - mean * a).astype(np.float32)
    return a, b


def _single_consumer(model, tensor, op_type):
    cons = model.find_consumers(tensor)
    if cons is not None and len(cons) == 1 and cons[0].op_type == op_type:
        return cons[0]
    return None


class ChannelsLastBatchNorm(Transformation):
    """Turn BatchNorm on channels-first views of token tensors into a
    channels-last affine ``Mul(A) -> Add(B)`` (``A, B`` of shape ``(C,)``).

    Two exported patterns (:class:`xnorvit.model.layers.TokenNorm` and the
    patch embedding's flatten):

    * ``Transpose(0,2,1) -> BatchNormalization -> Transpose(0,2,1)`` on an
      ``(N, T, C)`` tensor becomes ``Mul -> Add`` on that tensor;
    * ``BatchNormalization (N,C,H,W) -> Reshape (N,C,H*W) -> Transpose(0,2,1)``
      becomes ``Reshape -> Transpose -> Mul -> Add``.

    The affine is computed as qonnx's ``BatchNormToAffine`` does, so
    FINN's ``AbsorbMulIntoMultiThreshold``/``AbsorbAddIntoMultiThreshold``
    fold it into the next thresholds. Without this, the Transposes stay
    between the affine and the thresholds and FINN's layout inference
    (``NWH``) puts per-channel thresholds on the token axis.
    """

    def apply(self, model):
        graph = model.graph
        for bn in list(graph.node):
            if bn.op_type != "BatchNormalization":
                continue
            prod = model.find_producer(bn.input[0])
            cons = _single_consumer(model, bn.output[0], "Transpose")
            if prod is not None and prod.op_type == "Transpose" and _perm(prod) == [0, 2, 1] and cons is not None and _perm(cons) == [0, 2, 1] \
                    and len(model.find_consumers(prod.output[0]) or []) == 1:
                a, b = _bn_affine(model, bn)
                src, dst = prod.input[0], cons.output[0]
                idx = list(graph.node).index(prod)
                for n in (prod, bn, cons):
                    graph.node.remove(n)
                self._insert_affine(model, idx, src, dst, a, b, bn.name)
                return (model, True)
            rs = _single_consumer(model, bn.output[0], "Reshape")
            if rs is not None and len(model.get_tensor_shape(bn.input[0])) == 4:
                tr = _single_consumer(model, rs.output[0], "Transpose")
                if tr is not None and _perm(tr) == [0, 2, 1] and len(model.get_tensor_shape(rs.output[0])) == 3:
                    a, b = _bn_affine(model, bn)
                    # x -> Reshape -> Transpose -> Mul -> Add
                    rs.input[0] = bn.input[0]
                    dst = tr.output[0]
                    mid = model.make_new_valueinfo_name()
                    tr.output[0] = mid
                    idx = list(graph.node).index(tr) + 1
                    graph.node.remove(bn)
                    idx -= 1
                    self._insert_affine(model, idx, mid, dst, a, b, bn.name)
                    model = model.transform(InferShapes())
                    return (model, True)
        return (model, False)

    @staticmethod
    def _insert_affine(model, idx, src, dst, a, b, name):
        graph = model.graph
        an, bn_, mid = (model.make_new_valueinfo_name() for _ in range(3))
        model.set_initializer(an, a)
        model.set_initializer(bn_, b)
        graph.value_info.append(helper.make_tensor_value_info(mid, TensorProto.FLOAT, model.get_tensor_shape(dst)))
        graph.node.insert(idx, helper.make_node("Mul", [src, an], [mid], name=f"{name}_mul"))
        graph.node.insert(idx + 1, helper.make_node("Add", [mid, bn_], [dst], name=f"{name}_add"))


class SetTokenThresholdLayout(Transformation):
    """Set ``data_layout`` of every MultiThreshold on a 3-D ``(N, T, C)``
    tensor to ``"NWC"`` (channels last).

    qonnx's ``InferDataLayouts`` names some token tensors ``NWH`` (after the
    attention's head Transposes), which has no ``C``: MultiThreshold then
    thresholds along axis 1 (tokens) instead of channels. Every 3-D tensor of
    an xnorvit token graph is channels-last.
    """

    def apply(self, model):
        changed = False
        for n in model.graph.node:
            if n.op_type == "MultiThreshold" and len(model.get_tensor_shape(n.input[0]) or []) == 3:
                inst = getCustomOp(n)
                if inst.get_nodeattr("data_layout") != "NWC":
                    inst.set_nodeattr("data_layout", "NWC")
                    changed = True
        return (model, False) if not changed else (model, False)
