"""Convert the exported binary attention pattern into one ``BinaryAttention`` node."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

__all__ = ["ConvertBinaryAttention", "AttentionPatternError"]

DOMAIN = "xnorvit.flows.ops"


class AttentionPatternError(ValueError):
    """A dynamic (two-activation) MatMul that is not xnorvit's binary attention."""


def _attr(node, name, default=None):
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    return list(a.ints) if a.ints else (a.i if a.type == 2 else a.f)


def _only_consumer(model, tensor):
    cons = model.find_consumers(tensor) or []
    return cons[0] if len(cons) == 1 else None


class ConvertBinaryAttention(Transformation):
    """Replace each exported multi-head binary attention with one
    ``BinaryAttention`` node (domain ``xnorvit.flows.ops``).

    Matched pattern (ConvertQONNXtoFINN output of
    :class:`xnorvit.model.layers.BinaryAttention`), ``q, k, v`` ``(N, T, C)``
    outputs of bipolar MultiThresholds::

        Qh = Transpose(0,2,1,3)(Reshape(q, [N,T,H,D]))
        Kt = Transpose(0,2,3,1)(Reshape(k, [N,T,H,D]))
        Vh = Transpose(0,2,1,3)(Reshape(v, [N,T,H,D]))
        S  = MatMul(Qh, Kt)
        P  = Cast(GreaterOrEqual(S, Sub(ReduceMax(S, axis=-1), c)))   # or Add(., -c)
        O  = Reshape(Transpose(0,2,1,3)(MatMul(P, Vh)), [N,T,C])

    becomes ``O = BinaryAttention(q, k, v; heads=H, c_int=c)``. The three
    producing MultiThresholds are switched from BIPOLAR (out_scale 2, bias -1)
    to BINARY bits, the hardware encoding (bit 1 = +1), as qonnx's
    ``ConvertBipolarMatMulToXnorPopcount`` does for weight MatMuls (which
    crashes on these MatMuls: they have no weight initializer).

    Args:
        strict: raise :class:`AttentionPatternError` on a MatMul of two
            activations that does not match (default); otherwise leave it.
    """

    def __init__(self, strict: bool = True):
        super().__init__()
        self.strict = strict

    def apply(self, model):
        for mm in list(model.graph.node):
            if mm.op_type != "MatMul" or any(model.get_initializer(i) is not None for i in mm.input):
                continue
            if model.find_producer(mm.input[0]) is not None and model.find_producer(mm.input[0]).op_type == "Cast":
                continue  # the P.V MatMul is handled with its Q.K^T MatMul
            try:
                self._convert(model, mm)
            except AttentionPatternError:
                if self.strict:
                    raise
                continue
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return (model, True)
        return (model, False)

    def _fail(self, mm, why):
        raise AttentionPatternError(f"MatMul {mm.name!r} of two activations is not a binary attention: {why}")

    def _head_input(self, model, mm, tensor, perm):
        tr = model.find_producer(tensor)
        if tr is None or tr.op_type != "Transpose" or _attr(tr, "perm") != perm:
            self._fail(mm, f"input {tensor} is not Transpose{tuple(perm)}")
        rs = model.find_producer(tr.input[0])
        if rs is None or rs.op_type != "Reshape":
            self._fail(mm, f"input {tensor} is not a head split (Reshape)")
        shp = model.get_tensor_shape(rs.output[0])
        src = rs.input[0]
        mt = model.find_producer(src)
        if mt is None or mt.op_type != "MultiThreshold":
            self._fail(mm, f"{src} is not produced by a MultiThreshold")
        inst = getCustomOp(mt)
        bipolar = inst.get_nodeattr("out_dtype") == "BIPOLAR" and inst.get_nodeattr("out_scale") == 2.0 and inst.get_nodeattr("out_bias") == -1.0
        binary = inst.get_nodeattr("out_dtype") == "BINARY" and inst.get_nodeattr("out_scale") == 1.0 and inst.get_nodeattr("out_bias") == 0.0
        if not (bipolar or binary):
            self._fail(mm, f"{src} is not a bipolar activation")
        return src, mt, shp, [tr, rs]

    def _convert(self, model, mm):
        q, mt_q, shp_q, dead = self._head_input(model, mm, mm.input[0], [0, 2, 1, 3])
        k, mt_k, shp_k, d2 = self._head_input(model, mm, mm.input[1], [0, 2, 3, 1])
        dead += d2
        cons = model.find_consumers(mm.output[0]) or []
        rmax = [n for n in cons if n.op_type == "ReduceMax"]
        ge = [n for n in cons if n.op_type == "GreaterOrEqual"]
        if len(cons) != 2 or len(rmax) != 1 or len(ge) != 1:
            self._fail(mm, "scores are not consumed by exactly ReduceMax and GreaterOrEqual")
        rmax, ge = rmax[0], ge[0]
        axes = model.get_initializer(rmax.input[1]) if len(rmax.input) > 1 else _attr(rmax, "axes")
        rank = len(model.get_tensor_shape(mm.output[0]))
        if axes is None or [int(a) % rank for a in np.ravel(axes)] != [rank - 1] or _attr(rmax, "keepdims", 1) != 1:
            self._fail(mm, "ReduceMax is not over the key axis with keepdims")
        sub = _only_consumer(model, rmax.output[0])
        if sub is None or sub.op_type not in ("Sub", "Add") or sub.input[0] != rmax.output[0]:
            self._fail(mm, "row maximum is not followed by Sub/Add of a constant")
        c = model.get_initializer(sub.input[1])
        if c is None or c.size != 1:
            self._fail(mm, "margin is not a scalar constant")
        c = float(np.ravel(c)[0]) * (1.0 if sub.op_type == "Sub" else -1.0)
        if c < 0 or c != np.floor(c):
            self._fail(mm, f"margin {c} is not a non-negative integer")
        if list(ge.input) != [mm.output[0], sub.output[0]]:
            self._fail(mm, "GreaterOrEqual is not scores >= rowmax - c")
        cast = _only_consumer(model, ge.output[0])
        if cast is None or cast.op_type != "Cast":
            self._fail(mm, "mask is not Cast to float")
        pv = _only_consumer(model, cast.output[0])
        if pv is None or pv.op_type != "MatMul" or pv.input[0] != cast.output[0]:
            self._fail(mm, "mask does not feed a MatMul with V")
        v, mt_v, shp_v, d3 = self._head_input(model, pv, pv.input[1], [0, 2, 1, 3])
        dead += d3
        tr = _only_consumer(model, pv.output[0])
        if tr is None or tr.op_type != "Transpose" or _attr(tr, "perm") != [0, 2, 1, 3]:
            self._fail(mm, "attention output is not Transpose(0,2,1,3)")
        rs = _only_consumer(model, tr.output[0])
        if rs is None or rs.op_type != "Reshape":
            self._fail(mm, "attention output is not merged by a Reshape")
        n_, t, c_all = model.get_tensor_shape(q)
        heads, d = shp_q[2], shp_q[3]
        if not (shp_q == shp_k == shp_v == [n_, t, heads, d]) or heads * d != c_all or model.get_tensor_shape(rs.output[0]) != [n_, t, c_all]:
            self._fail(mm, "head split/merge shapes are inconsistent")
        for mt in (mt_q, mt_k, mt_v):
            users = model.find_consumers(mt.output[0]) or []
            if len(users) != 1:
                self._fail(mm, f"{mt.name} output has other consumers")
        graph = model.graph
        idx = list(graph.node).index(rs)
        node = helper.make_node("BinaryAttention", [q, k, v], [rs.output[0]], domain=DOMAIN,
                                name=f"BinaryAttention_{mm.name}", heads=int(heads), c_int=int(c))
        graph.node.insert(idx, node)
        for n in dead + [mm, rmax, sub, ge, cast, pv, tr, rs]:
            if n in graph.node:
                graph.node.remove(n)
        for mt in (mt_q, mt_k, mt_v):
            inst = getCustomOp(mt)
            inst.set_nodeattr("out_dtype", "BINARY")
            inst.set_nodeattr("out_scale", 1.0)
            inst.set_nodeattr("out_bias", 0.0)
            model.set_tensor_datatype(mt.output[0], DataType["BINARY"])
