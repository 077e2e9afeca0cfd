"""Streamlining steps finn-plus 1.6.1 lacks for a binary ViT: the
position-embedding add, global average pooling and the output scale."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

__all__ = ["AbsorbSignMulIntoConv", "LazyTidyStreamline", "AnnotateIntegerTypes", "MoveScalarMulPastConstAdd", "MoveChannelwiseLinearPastFlatten", "MoveScalarMulPastReduce", "QuantizeConstantTokens", "ConvertReduceMeanToSum", "RemoveOutputScale"]


def _scalar(model, name):
    v = model.get_initializer(name)
    if v is None or v.size != 1:
        return None
    return float(np.ravel(v)[0])


def _only_consumer(model, tensor):
    cons = model.find_consumers(tensor) or []
    return cons[0] if len(cons) == 1 else None


class MoveScalarMulPastConstAdd(Transformation):
    """``Mul(s) -> Add(P) -> MultiThreshold(T)`` becomes
    ``Add(P / s) -> MultiThreshold(T / s)`` for a scalar ``s > 0`` and a
    constant ``P`` that is an integer multiple of ``s`` (within 1e-3;
    ``P / s`` is rounded to that integer and annotated as a signed integer).

    This is xnorvit's position-embedding add: the residual stream and the
    position embedding share one quantizer, so ``P / s`` are the integer
    codes of the embedding and the add becomes an integer add. The scale goes
    straight into the thresholds: leaving ``Add -> Mul(s)`` would ping-pong
    with FINN's ``MoveAddPastMul``, which moves the other way.
    """

    def apply(self, model):
        for mul in model.graph.node:
            if mul.op_type != "Mul":
                continue
            s = _scalar(model, mul.input[1])
            add = _only_consumer(model, mul.output[0])
            if s is None or s <= 0 or add is None or add.op_type != "Add" or add.input[0] != mul.output[0]:
                continue
            p = model.get_initializer(add.input[1])
            mt = _only_consumer(model, add.output[0])
            if p is None or mt is None or mt.op_type != "MultiThreshold":
                continue
            codes = p / s
            if not np.allclose(codes, np.round(codes), atol=1e-3):
                continue
            codes = np.round(codes).astype(np.float32)
            model.set_initializer(add.input[1], codes)
            # a signed integer type that holds every code
            model.set_tensor_datatype(add.input[1], DataType.get_smallest_possible(min(float(codes.min()), -float(codes.max()) - 1)))
            thr = model.get_initializer(mt.input[1])
            model.set_initializer(mt.input[1], (thr / np.float32(s)).astype(np.float32))
            add.input[0] = mul.input[0]
            model.graph.node.remove(mul)
            return (model, True)
        return (model, False)


class MoveChannelwiseLinearPastFlatten(Transformation):
    """``Mul|Add(c) -> Reshape (N,C,L) -> Transpose(0,2,1)`` with a
    per-channel constant ``c`` of shape ``(1,C,1,1)``/``(C,1,1)``/``(1,C,1)``
    becomes ``Reshape -> Transpose -> Mul|Add(c.reshape(C))``.

    The patch embedding's conv output ``(N,C,H,W)`` is flattened into
    ``(N, T, C)`` tokens; this moves the conv's weight scale (and BatchNorm
    affine) onto the token tensor, next to the thresholds that absorb it.
    """

    def apply(self, model):
        graph = model.graph
        for op in graph.node:
            if op.op_type not in ("Mul", "Add"):
                continue
            c = model.get_initializer(op.input[1])
            rs = _only_consumer(model, op.output[0])
            if c is None or rs is None or rs.op_type != "Reshape" or model.find_producer(op.input[0]) is None:
                continue
            tr = _only_consumer(model, rs.output[0])
            if tr is None or tr.op_type != "Transpose" or list(get_by_name(tr.attribute, "perm").ints) != [0, 2, 1]:
                continue
            in_shape, rs_shape = model.get_tensor_shape(op.input[0]), model.get_tensor_shape(rs.output[0])
            if len(in_shape) != 4 or len(rs_shape) != 3 or rs_shape[1] != in_shape[1]:
                continue
            ch = in_shape[1]
            if not (c.size == 1 or tuple(c.shape) in ((1, ch, 1, 1), (ch, 1, 1))):
                continue
            x, out = op.input[0], tr.output[0]
            mid = model.make_new_valueinfo_name()
            graph.value_info.append(helper.make_tensor_value_info(mid, TensorProto.FLOAT, model.get_tensor_shape(out)))
            rs.input[0] = x
            tr.output[0] = mid
            op.input[0], op.output[0] = mid, out
            model.set_initializer(op.input[1], np.asarray(c, dtype=np.float32).reshape(-1))
            graph.node.remove(op)
            graph.node.insert(list(graph.node).index(tr) + 1, op)
            model = model.transform(InferShapes())
            return (model, True)
        return (model, False)


class AbsorbSignMulIntoConv(Transformation):
    """``Conv(W) -> Reshape (N,C,L) -> Transpose(0,2,1) -> Mul(s)`` with a
    per-channel sign ``s`` (shape ``(C,)``, every entry -1 or +1) becomes
    ``Conv(W * s) -> Reshape -> Transpose``: the output channels with
    ``s = -1`` get negated integer weights.

    A patch-embedding BatchNorm with negative gamma leaves this ``Mul``:
    finn-plus factors the sign out of the channel scale
    (``FactorOutMulSignMagnitude``) and absorbs the magnitude into the
    residual quantizer's thresholds, but a MultiThreshold cannot absorb a
    sign, and finn-plus's ``Absorb1BitMulIntoConv`` needs the ``Mul``
    right after the ``Conv``, not after the token flatten. Exact: the
    integer weights are negated (skipped when a negated weight leaves the
    weight's datatype, e.g. -128 of a wide-range INT8), and
    :class:`~xnorvit.flows.transforms.ExactThresholds` accepts weights that
    differ from the reference by a per-channel sign.
    """

    def apply(self, model):
        for mul in model.graph.node:
            if mul.op_type != "Mul":
                continue
            s = model.get_initializer(mul.input[1])
            tr = model.find_producer(mul.input[0])
            if s is None or s.ndim != 1 or not np.all(np.abs(s) == 1) or tr is None or tr.op_type != "Transpose":
                continue
            if list(get_by_name(tr.attribute, "perm").ints) != [0, 2, 1] or _only_consumer(model, tr.output[0]) is not mul:
                continue
            rs = model.find_producer(tr.input[0])
            conv = model.find_producer(rs.input[0]) if rs is not None and rs.op_type == "Reshape" else None
            if conv is None or conv.op_type != "Conv" or _only_consumer(model, rs.output[0]) is not tr:
                continue
            w = model.get_initializer(conv.input[1])
            if w is None or _only_consumer(model, conv.output[0]) is not rs or w.shape[0] != s.size:
                continue
            flipped = w * s.reshape(-1, *([1] * (w.ndim - 1)))
            dt = model.get_tensor_datatype(conv.input[1])
            if not np.all(dt.allowed(flipped)):
                continue
            model.set_initializer(conv.input[1], flipped.astype(np.float32))  # keeps its datatype annotation
            tr.output[0] = mul.output[0]
            model.graph.node.remove(mul)
            return (model, True)
        return (model, False)


class MoveScalarMulPastReduce(Transformation):
    """``Mul(s) -> ReduceMean|ReduceSum|Gather`` becomes ``Reduce|Gather ->
    Mul(s)`` for a scalar ``s`` (linear; a Gather only selects elements).
    Lets FINN absorb the residual-stream scale in front of the global
    average pooling, or of the CLS-token selection, into the head's
    thresholds."""

    def apply(self, model):
        for mul in model.graph.node:
            if mul.op_type != "Mul":
                continue
            s = _scalar(model, mul.input[1])
            red = _only_consumer(model, mul.output[0])
            if s is None or red is None or red.op_type not in ("ReduceMean", "ReduceSum", "Gather") or red.input[0] != mul.output[0]:
                continue
            x, mid, out = mul.input[0], mul.output[0], red.output[0]
            red.input[0], red.output[0] = x, mid
            mul.input[0], mul.output[0] = mid, out
            graph = model.graph
            for vi in [v for v in graph.value_info if v.name == mid]:
                graph.value_info.remove(vi)  # it now holds the reduced shape: InferShapes sets it
            graph.node.remove(red)
            graph.node.insert(list(graph.node).index(mul), red)
            model = model.transform(InferShapes())
            return (model, True)
        return (model, False)


class QuantizeConstantTokens(Transformation):
    """``Concat(token axis, [K, X]) -> MultiThreshold(T)`` becomes
    ``X -> MultiThreshold(T) -> Concat([MultiThreshold(K; T), .])`` for a
    constant ``K`` (DeiT's CLS token, Touvron et al. 2021, prepended to the
    patch tokens before the residual quantizer).

    A MultiThreshold acts element by element (per channel, and every
    token has the same channels), so quantizing the concatenation equals
    concatenating the quantized parts. The constant tokens become integer
    codes computed here (the node's own ``execute_node``), and the patch
    tokens' quantizer sits right behind the patch embedding, where FINN
    absorbs its BatchNorm; the ``Concat`` of integers becomes a
    ``TokenInsert`` stream op. Only a channels-last ``(1, T, C)`` stream
    with the constant first is matched.
    """

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        for cat in model.graph.node:
            if cat.op_type != "Concat" or len(cat.input) != 2:
                continue
            shape = model.get_tensor_shape(cat.output[0])
            ax = get_by_name(cat.attribute, "axis")
            const = model.get_initializer(cat.input[0])
            mt = _only_consumer(model, cat.output[0])
            if (shape is None or len(shape) != 3 or ax is None or ax.i % 3 != 1 or const is None
                    or model.get_initializer(cat.input[1]) is not None or mt is None or mt.op_type != "MultiThreshold"):
                continue
            inst = getCustomOp(mt)
            ctx = {mt.input[0]: np.asarray(const, dtype=np.float32), mt.input[1]: model.get_initializer(mt.input[1])}
            quant = helper.make_node("MultiThreshold", list(mt.input), ["codes"], domain=mt.domain)
            for a in mt.attribute:
                quant.attribute.append(a)
            ctx["codes"] = None
            getCustomOp(quant).execute_node(ctx, model.graph)
            codes = np.asarray(ctx["codes"], dtype=np.float32)
            x, out = cat.input[1], mt.output[0]
            mid = model.make_new_valueinfo_name()
            mt.input[0], mt.output[0] = x, mid
            cname = model.make_new_valueinfo_name()
            model.set_initializer(cname, codes)
            model.set_tensor_datatype(cname, inst.get_output_datatype() if hasattr(inst, "get_output_datatype")
                                      else DataType[inst.get_nodeattr("out_dtype")])
            cat.input[0], cat.input[1], cat.output[0] = cname, mid, out
            graph = model.graph
            graph.node.remove(cat)
            graph.node.insert(list(graph.node).index(mt) + 1, cat)
            model = model.transform(InferShapes())
            return (model, True)
        return (model, False)


class ConvertReduceMeanToSum(Transformation):
    """``ReduceMean(axes)`` becomes ``ReduceSum(axes) -> Mul(1/n)``: the
    integer sum is what the GAP hardware accumulates; the ``1/n`` is absorbed
    into the next thresholds (``mean >= t  <=>  sum >= n*t``)."""

    def apply(self, model):
        graph = model.graph
        for i, node in enumerate(graph.node):
            if node.op_type != "ReduceMean":
                continue
            in_shape = model.get_tensor_shape(node.input[0])
            axes = model.get_initializer(node.input[1]) if len(node.input) > 1 else None
            if axes is None:
                a = get_by_name(node.attribute, "axes")
                axes = list(a.ints) if a is not None else list(range(len(in_shape)))
            axes = [int(a) % len(in_shape) for a in np.ravel(axes)]
            n = int(np.prod([in_shape[a] for a in axes]))
            keep = get_by_name(node.attribute, "keepdims")
            keep = 1 if keep is None else keep.i
            axes_name = model.make_new_valueinfo_name()
            model.set_initializer(axes_name, np.asarray(axes, dtype=np.int64))
            mid = model.make_new_valueinfo_name()
            scale = model.make_new_valueinfo_name()
            model.set_initializer(scale, np.asarray(1.0 / n, dtype=np.float32))
            rsum = helper.make_node("ReduceSum", [node.input[0], axes_name], [mid], keepdims=keep, name=f"{node.name}_sum")
            mul = helper.make_node("Mul", [mid, scale], [node.output[0]], name=f"{node.name}_scale")
            graph.node.remove(node)
            graph.node.insert(i, rsum)
            graph.node.insert(i + 1, mul)
            model = model.transform(InferShapes())
            return (model, True)
        return (model, False)


class RemoveOutputScale(Transformation):
    """Remove a trailing scalar ``Mul`` on the graph output, so the graph
    outputs the classifier's integer accumulators; the scale is stored in
    the model's metadata as ``xnorvit_output_scale`` (``logits = scale *
    output``)."""

    def apply(self, model):
        out = model.graph.output[0].name
        mul = model.find_producer(out)
        if mul is None or mul.op_type != "Mul":
            return (model, False)
        s = _scalar(model, mul.input[1])
        if s is None:
            return (model, False)
        prod = model.find_producer(mul.input[0])
        if prod is None:
            return (model, False)
        prod.output[0] = out
        model.graph.node.remove(mul)
        model.set_metadata_prop("xnorvit_output_scale", repr(s))
        return (model, False)


class AnnotateIntegerTypes(Transformation):
    """Give the integer ops qonnx's ``InferDataTypes`` leaves as FLOAT32 (or
    too wide) their exact FINN datatype:

    * ``ReduceSum`` (the GAP) of an integer input in ``[a, b]`` over ``n``
      elements: the smallest type holding ``[n*a, n*b]``;
    * ``XnorPopcountMatMul`` with ``K`` input bits (annotated UINT32 by
      qonnx): the smallest unsigned type holding ``K``.

    ``InferDataTypes`` keeps a non-FLOAT32 annotation of an op it does not
    know (ReduceSum), so this survives later tidying; run it after
    ``ConvertBipolarMatMulsToXnorPopcount``.
    """

    def apply(self, model):
        for n in model.graph.node:
            if n.op_type == "ReduceSum":
                dt = model.get_tensor_datatype(n.input[0])
                if not dt.is_integer():
                    continue
                cnt = int(np.prod(model.get_tensor_shape(n.input[0]))) // int(np.prod(model.get_tensor_shape(n.output[0])))
                lo, hi = cnt * int(dt.min()), cnt * int(dt.max())
                out = DataType.get_smallest_possible(min(lo, -hi - 1)) if lo < 0 else DataType.get_smallest_possible(hi)
                model.set_tensor_datatype(n.output[0], out)
            elif n.op_type == "XnorPopcountMatMul":
                w = model.get_initializer(n.input[1])
                if w is not None:
                    model.set_tensor_datatype(n.output[0], DataType.get_smallest_possible(int(w.shape[0])))
        return (model, False)


class _Recorder:
    """Stands in for a ModelWrapper to record the transformations a
    meta-transformation applies, in order, without applying them."""

    def __init__(self):
        self.steps: list[Transformation] = []

    def transform(self, trn, *args, **kwargs):
        self.steps.append(trn)
        return self


#: FINN's per-step bookkeeping in ``Streamline``: rerun on an unchanged graph, each is a no-op
_TIDY = ("RemoveIdentityOps", "GiveUniqueNodeNames", "GiveReadableTensorNames", "InferDataTypes", "InferDataLayouts")


class LazyTidyStreamline(Transformation):
    """finn-plus's ``Streamline()`` (Umuroglu & Jahre, arXiv:1709.04060),
    tidying only after a step that changed the graph.

    FINN's ``Streamline.apply`` runs each of its streamlining steps followed
    by five bookkeeping transformations (``RemoveIdentityOps``,
    ``GiveUniqueNodeNames``, ``GiveReadableTensorNames``, ``InferDataTypes``,
    ``InferDataLayouts``), each with a deep copy and a cleanup; on a binary
    ViT of ~300 nodes most steps find nothing to do, and the bookkeeping on
    an unchanged graph is where most of the streamlining time goes (qonnx's
    linear name lookups). This transformation replays FINN's own sequence
    (recorded from ``Streamline.apply``, so it follows finn-plus) and skips a
    bookkeeping run when the serialized model is byte-identical to what the
    last bookkeeping run left. The result equals ``Streamline()``'s
    (``tests/test_compile.py`` compares both on a trained model).
    """

    def __init__(self):
        super().__init__()
        from finn.transformation.streamline import Streamline

        rec = _Recorder()
        Streamline().apply(rec)
        self.steps = rec.steps

    def apply(self, model):
        tidy_state = None  # serialized model the last bookkeeping run left (None: not tidied yet)
        state = model.model.SerializeToString()
        tidy = [type(t).__name__ in _TIDY for t in self.steps]
        for k, trn in enumerate(self.steps):
            if tidy[k] and state == tidy_state:
                continue
            model = model.transform(trn)
            state = model.model.SerializeToString()
            if tidy[k] and (k + 1 == len(self.steps) or not tidy[k + 1]):
                tidy_state = state  # end of a bookkeeping run
        return (model, False)
