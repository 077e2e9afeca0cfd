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
            if model.find_producer(mm.input[0]) is not None and model.find_producer(mm.input[0]).op_type in ("Cast", "Round"):
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

    def _sab_rule(self, model, mm, rmax, ge):
        """BiViT: ``P = Cast(S >= rowmax(S) - c)``; returns (attrs, P tensor, nodes)."""
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
        return dict(c_int=int(c)), cast.output[0], [sub, ge, cast]

    def _elastic_rule(self, model, mm, rmax, gap):
        """BiT elastic {0, alpha} (:class:`xnorvit.model.layers.QuantProbs`, levels 1)::

            e = GatherND(table, Unsqueeze(Cast(rowmax(S) - S)))
            b = MultiThreshold(Div(e, ReduceSum(e)) - alpha/2; 0)     bipolar
            P = f(b)    elementwise ops with constants, f(-1) = 0, f(+1) = 1

        returns (attrs, P tensor, nodes)."""
        cast = _only_consumer(model, gap.output[0])
        if cast is None or cast.op_type != "Cast":
            self._fail(mm, "score gap is not Cast to an index")
        unsq = _only_consumer(model, cast.output[0])
        if unsq is None or unsq.op_type != "Unsqueeze":
            self._fail(mm, "score gap is not unsqueezed into a GatherND index")
        gat = _only_consumer(model, unsq.output[0])
        table = None if gat is None else model.get_initializer(gat.input[0])
        if gat is None or gat.op_type != "GatherND" or table is None or table.ndim != 1 or gat.input[1] != unsq.output[0]:
            self._fail(mm, "score gap does not index a constant exp table (GatherND)")
        cons = model.find_consumers(gat.output[0]) or []
        rsum = [n for n in cons if n.op_type == "ReduceSum"]
        div = [n for n in cons if n.op_type == "Div"]
        if len(cons) != 2 or len(rsum) != 1 or len(div) != 1:
            self._fail(mm, "exp-table values are not consumed by exactly ReduceSum and Div")
        rsum, div = rsum[0], div[0]
        if list(div.input) != [gat.output[0], rsum.output[0]]:
            self._fail(mm, "probabilities are not e / sum(e)")
        axes = model.get_initializer(rsum.input[1]) if len(rsum.input) > 1 else _attr(rsum, "axes")
        rank = len(model.get_tensor_shape(gat.output[0]))
        if axes is None or [int(a) % rank for a in np.ravel(axes)] != [rank - 1] or _attr(rsum, "keepdims", 1) != 1:
            self._fail(mm, "ReduceSum is not over the key axis with keepdims")
        sub = _only_consumer(model, div.output[0])
        h = None if sub is None else model.get_initializer(sub.input[1])
        if sub is None or sub.op_type not in ("Sub", "Add") or h is None or h.size != 1:
            self._fail(mm, "probabilities are not shifted by a scalar constant (p - alpha/2)")
        h = np.float32(np.ravel(h)[0]) * np.float32(1.0 if sub.op_type == "Sub" else -1.0)
        if not h > 0:
            self._fail(mm, f"elastic threshold alpha/2 = {h} is not positive")
        mt = _only_consumer(model, sub.output[0])
        if mt is None or mt.op_type != "MultiThreshold":
            self._fail(mm, "shifted probabilities are not binarized by a MultiThreshold")
        thr = model.get_initializer(mt.input[1])
        inst = getCustomOp(mt)
        if thr is None or thr.shape[-1] != 1 or np.any(thr != 0) or inst.get_nodeattr("out_dtype") != "BIPOLAR":
            self._fail(mm, "probability MultiThreshold is not a bipolar sign (one threshold at 0)")
        # the codes chain: elementwise ops with scalar constants, checked by value
        vals = np.float32(inst.get_nodeattr("out_scale")) * np.array([0.0, 1.0], dtype=np.float32) + np.float32(inst.get_nodeattr("out_bias"))
        chain, t = [], mt.output[0]
        fns = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
        while True:
            n = _only_consumer(model, t)
            if n is None:
                self._fail(mm, "binarized probabilities have no single consumer")
            if n.op_type == "MatMul":
                break
            if n.op_type == "Round":
                vals = np.round(vals)
            elif n.op_type in fns and n.input[0] == t and model.get_initializer(n.input[1]) is not None \
                    and model.get_initializer(n.input[1]).size == 1:
                vals = fns[n.op_type](vals, np.float32(np.ravel(model.get_initializer(n.input[1]))[0])).astype(np.float32)
            else:
                self._fail(mm, f"binarized probabilities pass {n.op_type} {n.name!r}, not a scalar affine/Round")
            chain.append(n)
            t = n.output[0]
        if list(vals) != [0.0, 1.0]:
            self._fail(mm, f"binarized probabilities map to {list(vals)}, not the codes 0/1")
        attrs = dict(binarizer="elastic", exp_table=[float(x) for x in table], p_half=float(h))
        return attrs, t, [gap, cast, unsq, gat, rsum, div, sub, mt] + chain

    def _convert(self, model, mm):
        q, mt_q, shp_q, dead = self._head_input(model, mm, mm.input[0], [0, 2, 1, 3])
        k, mt_k, shp_k, d2 = self._head_input(model, mm, mm.input[1], [0, 2, 3, 1])
        dead += d2
        cons = model.find_consumers(mm.output[0]) or []
        rmax = [n for n in cons if n.op_type == "ReduceMax"]
        if len(cons) != 2 or len(rmax) != 1:
            self._fail(mm, "scores are not consumed by exactly ReduceMax and one rule")
        rmax = rmax[0]
        other = [n for n in cons if n is not rmax][0]
        axes = model.get_initializer(rmax.input[1]) if len(rmax.input) > 1 else _attr(rmax, "axes")
        rank = len(model.get_tensor_shape(mm.output[0]))
        if axes is None or [int(a) % rank for a in np.ravel(axes)] != [rank - 1] or _attr(rmax, "keepdims", 1) != 1:
            self._fail(mm, "ReduceMax is not over the key axis with keepdims")
        if other.op_type == "GreaterOrEqual":
            attrs, probs, rule = self._sab_rule(model, mm, rmax, other)
        elif other.op_type == "Sub" and list(other.input) == [rmax.output[0], mm.output[0]]:
            attrs, probs, rule = self._elastic_rule(model, mm, rmax, other)
        else:
            self._fail(mm, "scores are not consumed by ReduceMax and GreaterOrEqual (softmax-aware) "
                           "or ReduceMax and Sub(rowmax, S) (elastic)")
        pv = _only_consumer(model, probs)
        if pv is None or pv.op_type != "MatMul" or pv.input[0] != probs:
            self._fail(mm, "mask does not feed a MatMul with V")
        rule += [pv]
        after = _only_consumer(model, pv.output[0])
        scale = None
        if after is not None and after.op_type == "Mul":
            scale = model.get_initializer(after.input[1])
            if scale is None or scale.size != 1:
                self._fail(mm, "P.V is scaled by a non-constant or non-scalar Mul")
            rule += [after]
            after = _only_consumer(model, after.output[0])
        tr = after
        v, mt_v, shp_v, d3 = self._head_input(model, pv, pv.input[1], [0, 2, 1, 3])
        dead += d3
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
        out = rs.output[0] if scale is None else model.make_new_valueinfo_name()
        node = helper.make_node("BinaryAttention", [q, k, v], [out], domain=DOMAIN,
                                name=f"BinaryAttention_{mm.name}", heads=int(heads), **attrs)
        graph.node.insert(idx, node)
        if scale is not None:  # the elastic alpha: O = alpha * (mask . V), a scalar Mul left to streamlining
            s_name = model.make_new_valueinfo_name()
            model.set_initializer(s_name, np.asarray(scale, dtype=np.float32).reshape(()))
            graph.node.insert(idx + 1, helper.make_node("Mul", [out, s_name], [rs.output[0]], name=f"Mul_alpha_{mm.name}"))
        for n in dead + [mm, rmax, tr, rs] + rule:
            if n in graph.node:
                graph.node.remove(n)
        for mt in (mt_q, mt_k, mt_v):
            inst = getCustomOp(mt)
            inst.set_nodeattr("out_dtype", "BINARY")
            inst.set_nodeattr("out_scale", 1.0)
            inst.set_nodeattr("out_bias", 0.0)
            model.set_tensor_datatype(mt.output[0], DataType["BINARY"])
