"""Exact thresholds: every integer-input MultiThreshold of a streamlined graph
recomputed from the float chain of the exported QONNX graph.

FINN's streamlining derives thresholds by dividing scales and BatchNorm out
of the quantizer's rounding points, in float32. PyTorch (and the QONNX
export, which reproduces it) evaluates the chain *forward* in float32:
``acc -> Mul(scale) -> BatchNorm -> Sub(offset) -> Quant(x / s, round
half-even, clip)``. Where a rounding point falls on (or within float32 noise
of) an integer accumulator value, the two land on different sides, and the
streamlined graph differs from the model by one code.
:class:`ExactThresholds` removes that: for every MultiThreshold whose input
is an integer it evaluates the QONNX float chain, with the same ONNX nodes
(onnxruntime for standard ops, qonnx's ``Quant``/``BipolarQuant``
``execute_node``) on every possible integer input value (popcounts, residual
sums, GAP sums, attention outputs: a few hundred to a few ten thousand
values, enumerated) or by a per-channel binary search on the monotone chain
(wide convolution accumulators), and sets each threshold to the smallest
integer input that reaches its level.

Exactness: the chain is a function of the integer accumulator wherever the
QONNX source tensor is itself exact in float32 -- a ``MatMul`` of bipolar
activations and bipolar weights with unit scales (``2*popcount - K``), the
attention's ``P.V``, a quantizer output (``code * scale``). For a residual
add, the GAP mean and the 8-bit stem convolutions, the float32 source itself
depends on the summation order (in PyTorch as in ONNX); there the integer
accumulator is mapped with one float32 product (``acc * s_a * s_w``), which
agrees with the model wherever it is not within float32 noise of a rounding
point.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as rt
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.custom_op.registry import is_custom_op
from qonnx.util.basic import get_by_name, qonnx_make_model

__all__ = ["ExactThresholds", "ExactThresholdError", "IntegerInput", "chain_codes"]

#: data-movement ops a chain may pass through (Gather: a constant token index, the CLS selection)
MOVE_OPS = ("Transpose", "Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Gather")
#: elementwise ops of a float chain (binary ops need one constant operand)
LINEAR_OPS = ("Mul", "Add", "Sub", "Div")
UNARY_OPS = ("BatchNormalization", "Relu")
QUANT_OPS = ("Quant", "BipolarQuant")
#: enumerate all input values while ``values * elements`` stays below this
ENUM_ELEMENTS = 1 << 24


class ExactThresholdError(ValueError):
    """A MultiThreshold whose exact thresholds cannot be derived (the message
    names the node and the reason)."""


def _err(node, why):
    return ExactThresholdError(f"MultiThreshold {node.name!r}: {why}")


def _const_concat_input(model, node):
    """The one non-constant input of a ``Concat`` with constant other inputs
    (constant tokens such as DeiT's CLS token), else None."""
    if node.op_type != "Concat":
        return None
    var = [i for i in node.input if model.get_initializer(i) is None]
    return var[0] if len(var) == 1 else None


def _producer_through_moves(model, tensor):
    """First producer of ``tensor`` that is not a data-movement op (or None),
    and that op's output. A ``Concat`` of constant tokens counts as data
    movement of its one variable input."""
    p = model.find_producer(tensor)
    while p is not None and (p.op_type in MOVE_OPS or _const_concat_input(model, p) is not None):
        tensor = p.input[0] if p.op_type in MOVE_OPS else _const_concat_input(model, p)
        p = model.find_producer(tensor)
    return p, tensor


def quantize_constant_tokens_ref(ref):
    """Copy of QONNX graph ``ref`` with every ``Concat(token axis, [K, X]) ->
    Quant`` rewritten as ``X -> Quant -> Concat([Quant(K), .])`` (the same
    rewrite :class:`~xnorvit.flows.transforms.QuantizeConstantTokens` makes in
    the streamlined graph; exact, a ``Quant`` with a scalar scale acting per
    element), so the quantizers pair with the streamlined MultiThresholds.
    The constant's codes come from the ``Quant`` node's own execution."""
    from qonnx.core.modelwrapper import ModelWrapper
    import copy

    ref = ModelWrapper(copy.deepcopy(ref.model))
    graph = ref.graph
    for cat in [n for n in graph.node if n.op_type == "Concat" and len(n.input) == 2]:
        const = ref.get_initializer(cat.input[0])
        cons = ref.find_consumers(cat.output[0]) or []
        if const is None or ref.get_initializer(cat.input[1]) is not None or len(cons) != 1 or cons[0].op_type not in QUANT_OPS:
            continue
        q = cons[0]
        if any(ref.get_initializer(i) is None for i in q.input[1:]):
            continue
        ctx = {i: ref.get_initializer(i) for i in q.input[1:]}
        ctx[q.input[0]] = np.asarray(const, dtype=np.float32)
        getCustomOp(q).execute_node(ctx, graph)
        cname = ref.make_new_valueinfo_name()
        ref.set_initializer(cname, np.asarray(ctx[q.output[0]], dtype=np.float32))
        mid = ref.make_new_valueinfo_name()
        out = q.output[0]
        q.input[0], q.output[0] = cat.input[1], mid
        cat.input[0], cat.input[1], cat.output[0] = cname, mid, out
        graph.node.remove(cat)
        graph.node.insert(list(graph.node).index(q) + 1, cat)
        ref.set_tensor_shape(mid, ref.get_tensor_shape(q.input[0]))
    return ref


def _float_chain(ref, q):
    """``(source_tensor, nodes)``: the elementwise/data-movement nodes from the
    source tensor of QONNX activation quantizer ``q`` up to ``q``'s input."""
    nodes, t = [], q.input[0]
    while True:
        p = ref.find_producer(t)
        if p is None:
            break
        if p.op_type in MOVE_OPS or p.op_type in UNARY_OPS:
            nodes.insert(0, p)
            t = p.input[0]
            continue
        if p.op_type in LINEAR_OPS:
            c0, c1 = ref.get_initializer(p.input[0]), ref.get_initializer(p.input[1])
            if c1 is not None and c0 is None:
                nodes.insert(0, p)
                t = p.input[0]
                continue
            if c0 is not None and c1 is None and p.op_type in ("Mul", "Add"):
                nodes.insert(0, p)
                t = p.input[1]
                continue
        break
    return t, nodes


def _scale(ref, q):
    """Scalar float32 scale and zero point of activation quantizer ``q``."""
    s = ref.get_initializer(q.input[1])
    if s is None or np.asarray(s).size != 1:
        raise ExactThresholdError(f"quantizer {q.name!r}: scale is not a scalar constant")
    zp = 0.0
    if q.op_type == "Quant":
        z = ref.get_initializer(q.input[2])
        if z is None or np.asarray(z).size != 1:
            raise ExactThresholdError(f"quantizer {q.name!r}: zero point is not a scalar constant")
        zp = float(np.ravel(z)[0])
    return np.float32(np.ravel(s)[0]), np.float32(zp)


def _run_nodes(ref, nodes, feed: dict) -> dict:
    """Execute ``nodes`` of ``ref`` in order on ``feed`` (tensors by name),
    node by node as qonnx's ``execute_onnx`` does: qonnx custom ops through
    their ``execute_node``, standard ops in a one-node onnxruntime model."""
    ctx = dict(feed)
    for n in nodes:
        for i in n.input:
            if i and i not in ctx:
                v = ref.get_initializer(i)
                if v is None:
                    raise ExactThresholdError(f"node {n.name!r}: input {i} is neither fed nor constant")
                ctx[i] = v
        if is_custom_op(n.domain, n.op_type):
            getCustomOp(n).execute_node(ctx, ref.graph)
            continue

        def vi(name):
            a = np.asarray(ctx[name])
            et = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}.get(a.dtype)
            if et is None:
                raise ExactThresholdError(f"node {n.name!r}: input {name} has dtype {a.dtype}")
            return helper.make_tensor_value_info(name, et, list(a.shape))

        ins = [vi(i) for i in n.input if i]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in n.output]
        m = qonnx_make_model(helper.make_graph([n], "chain-node", ins, outs))
        m.opset_import[0].version = _opset(ref)
        sess = rt.InferenceSession(m.SerializeToString())
        res = sess.run(None, {i: np.asarray(ctx[i]) for i in n.input if i})
        for o, r in zip(n.output, res):
            ctx[o] = r
    return ctx


def _opset(ref):
    for o in ref.model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 11


def chain_codes(ref, q, source_values: np.ndarray) -> np.ndarray:
    """Evaluate the float chain of QONNX activation quantizer ``q`` on a batch.

    Args:
        ref: the QONNX graph (``ModelWrapper``, batch-1 shapes).
        q: a ``Quant``/``BipolarQuant`` node of ``ref`` whose input is not constant.
        source_values: ``(V, *source_shape[1:])`` float32 values of the chain's
            source tensor (see :func:`_float_chain`); each of the ``V`` items
            goes through the same nodes as one image would (Reshape shapes
            get batch ``V``).

    Returns:
        ``(V, *q_out_shape[1:])`` float32: the quantizer's output values.

    Raises:
        ExactThresholdError: a Reshape of the chain whose target shape does
            not start with the batch dimension 1.
    """
    src, nodes = _float_chain(ref, q)
    v = source_values.shape[0]
    feed = {src: np.ascontiguousarray(source_values, dtype=np.float32)}
    run = []
    for n in nodes + [q]:
        if n.op_type == "Reshape":
            shape = ref.get_initializer(n.input[1])
            if shape is None or int(shape[0]) not in (1, -1):
                raise ExactThresholdError(f"Reshape {n.name!r} in the chain of {q.name!r} does not keep the batch axis")
            shape = np.asarray(shape, dtype=np.int64).copy()
            shape[0] = v
            n = helper.make_node("Reshape", [n.input[0], n.input[1] + "__batch"], list(n.output), name=n.name)
            feed[n.input[1]] = shape
        elif n.op_type == "Transpose":
            perm = get_by_name(n.attribute, "perm")
            if perm is not None and perm.ints[0] != 0:
                raise ExactThresholdError(f"Transpose {n.name!r} in the chain of {q.name!r} moves the batch axis")
        run.append(n)
    return np.asarray(_run_nodes(ref, run, feed)[q.output[0]], dtype=np.float32)


def _is_probability_quant(ref, q) -> bool:
    """Whether quantizer ``q`` binarizes table-softmax probabilities (``Div`` of
    ``GatherND`` exp-table values, maybe shifted by a constant): the elastic
    attention rule that :class:`~xnorvit.flows.transforms.ConvertBinaryAttention`
    moves into a ``BinaryAttention`` node, so it has no MultiThreshold."""
    t = q.input[0]
    for _ in range(3):
        n = ref.find_producer(t)
        if n is None or n.op_type not in ("Sub", "Add", "Div"):
            return False
        if n.op_type == "Div":
            g = ref.find_producer(n.input[0])
            return g is not None and g.op_type == "GatherND"
        t = n.input[0]
    return False


def _activation_quants(ref):
    return [n for n in ref.graph.node if n.op_type in QUANT_OPS and ref.get_initializer(n.input[0]) is None
            and not _is_probability_quant(ref, n)]


def _dt_range(model, tensor):
    dt = model.get_tensor_datatype(tensor)
    if not dt.is_integer():
        return None
    return int(dt.min()), int(dt.max())


def _weight_codes(ref, tensor):
    """Integer codes and per-element float32 scale of a quantized QONNX weight."""
    wq = ref.find_producer(tensor)
    if wq is None or wq.op_type not in QUANT_OPS or any(ref.get_initializer(i) is None for i in wq.input):
        raise ExactThresholdError(f"weight {tensor} is not a quantizer of a constant")
    ctx = {i: ref.get_initializer(i) for i in wq.input}
    getCustomOp(wq).execute_node(ctx, ref.graph)
    w = np.asarray(ctx[wq.output[0]], dtype=np.float32)
    s = np.broadcast_to(np.asarray(ref.get_initializer(wq.input[1]), dtype=np.float32), w.shape)
    codes = np.rint(w / s)
    if not np.array_equal((codes * s).astype(np.float32), w):
        raise ExactThresholdError(f"weight {tensor} is not code * scale")
    return codes.astype(np.int64), s


class _Chain:
    """How one streamlined MultiThreshold's integer input maps onto the QONNX source tensor."""

    def __init__(self, lo, hi, alpha, offset=0.0, k=None, sign=None, div=None, s_axis=-1):
        self.lo, self.hi = int(lo), int(hi)
        self.alpha = np.atleast_1d(np.asarray(alpha, dtype=np.float32))  # per source channel (or 1)
        self.offset = np.float32(offset)
        self.k = k  # popcount -> 2*pc - k
        self.sign = None if sign is None else np.asarray(sign, dtype=np.int64)
        self.div = div  # GAP: (x * s) / n
        self.s_axis = s_axis

    def source(self, x: np.ndarray) -> np.ndarray:
        """float32 source values for integer ``x`` of shape ``(V, C)`` or ``(V, 1)``."""
        x = np.asarray(x, dtype=np.int64)
        if self.k is not None:
            x = 2 * x - self.k
        if self.sign is not None:
            x = x * self.sign
        s = x.astype(np.float32)
        if self.offset:
            s = (s - self.offset).astype(np.float32)
        s = (s * self.alpha).astype(np.float32)
        if self.div is not None:
            s = (s / np.float32(self.div)).astype(np.float32)
        return s


#: how far (in graph order) a MultiThreshold's reference quantizer may be from its own position
SIBLINGS = 3


class ExactThresholds(Transformation):
    """Recompute the thresholds of every MultiThreshold with an integer input
    from the QONNX graph it was streamlined from.

    Pairs the streamlined MultiThresholds with the QONNX activation
    quantizers (``Quant``/``BipolarQuant`` of a non-constant tensor) in graph
    order; per pair, walks back from the quantizer through constant
    ``Mul/Add/Sub/Div``, ``BatchNormalization``, ``Relu`` and data movement
    to the source tensor, identifies how the streamlined integer input maps
    onto it (see the module docstring; weight-column sign flips that FINN's
    ``FactorOutMulSignMagnitude``/``Absorb1BitMulIntoMatMul`` made are read
    off the weights), and sets threshold ``j`` of channel ``c`` to the
    smallest integer input whose chain output reaches level ``j``
    (``input_max + 1`` when none does). Thresholds become ``(C, L)`` unless
    every channel agrees (then ``(1, L)``), float32 integers annotated with
    the smallest integer FINN datatype that holds them.

    MultiThresholds with a float input (the image quantizer) keep FINN's
    thresholds.

    Args:
        reference: the ``qonnx`` stage of :func:`xnorvit.flows.compile.streamline_stages`.

    Raises:
        ExactThresholdError: the graphs do not pair up (different numbers of
            quantizers, shapes, bit widths, weights), a chain is not
            monotone non-decreasing in the integer input, or a level cannot
            be expressed with the node's ``out_bias``/``out_scale``.
    """

    def __init__(self, reference):
        super().__init__()
        self.ref = quantize_constant_tokens_ref(reference)

    def apply(self, model):
        ref = self.ref
        mts = [n for n in model.graph.node if n.op_type == "MultiThreshold"]
        qs = _activation_quants(ref)
        if qs and qs[0].input[0] == ref.graph.input[0].name and not any(mt.input[0] == model.graph.input[0].name for mt in mts):
            qs = qs[1:]  # the input quantizer was removed by IntegerInput
        if len(mts) != len(qs):
            raise ExactThresholdError(f"{len(mts)} MultiThresholds in the streamlined graph, {len(qs)} activation quantizers in the reference")
        used: set[int] = set()
        for i, mt in enumerate(mts):
            q = qs[i]
            if list(model.get_tensor_shape(mt.output[0])) != list(ref.get_tensor_shape(q.output[0])):
                raise _err(mt, f"output shape differs from its reference quantizer {q.name!r}")
            if not model.get_tensor_datatype(mt.input[0]).is_integer() and _producer_through_moves(model, mt.input[0])[0] is None:
                continue  # float graph input: keep FINN's thresholds
            # Pair by graph order; sibling branches (Q/K/V projections of one
            # input) may be sorted differently in the two graphs: then the
            # quantizer whose weights match is taken from the neighbours.
            order = [i] + [j for j in range(max(0, i - SIBLINGS), min(len(qs), i + SIBLINGS + 1)) if j != i]
            first = None
            for j in order:
                if j in used or list(ref.get_tensor_shape(qs[j].output[0])) != list(model.get_tensor_shape(mt.output[0])):
                    continue
                try:
                    self._exact(model, mt, qs[j])
                except ExactThresholdError as e:
                    if j == i and "beyond a sign" not in str(e):
                        raise
                    first = first or e  # a neighbour that is not this node's source
                    continue
                used.add(j)
                break
            else:
                raise first or _err(mt, f"no reference quantizer near {q.name!r} pairs with it")
        return (model, False)

    # -- the integer input -> QONNX source map ------------------------------------
    def _chain(self, model, mt, q):
        ref = self.ref
        src, _ = _float_chain(ref, q)
        sp = ref.find_producer(src)
        xp, _ = _producer_through_moves(model, mt.input[0])
        if sp is None or xp is None:
            raise _err(mt, "no integer source")
        if sp.op_type in QUANT_OPS:  # a quantizer output, re-scaled
            r = _dt_range(model, mt.input[0])
            if xp.op_type != "MultiThreshold" or r is None:
                raise _err(mt, f"reference source is quantizer {sp.name!r} but the input is not an integer MultiThreshold output")
            s, zp = _scale(ref, sp)
            if sp.op_type == "BipolarQuant" and model.get_tensor_datatype(mt.input[0]) == DataType["BINARY"]:
                return _Chain(0, 1, s, k=1)
            return _Chain(r[0], r[1], s, offset=zp)
        if sp.op_type in ("MatMul", "Conv") and ref.get_initializer(sp.input[0]) is None:
            wp = ref.find_producer(sp.input[1])
            if wp is not None and wp.op_type in QUANT_OPS and all(ref.get_initializer(i) is not None for i in wp.input):
                return self._weight_chain(model, mt, sp, xp)
            a0, _ = _producer_through_moves(ref, sp.input[0])
            a1, _ = _producer_through_moves(ref, sp.input[1])
            # P.V: P a Cast mask (softmax-aware) or Round codes (elastic {0, alpha})
            if sp.op_type == "MatMul" and a0 is not None and a0.op_type in ("Cast", "Round") and a1 is not None and a1.op_type == "BipolarQuant":
                if xp.op_type != "BinaryAttention":
                    raise _err(mt, f"reference source {sp.name!r} is the attention P.V but the input is {xp.op_type}")
                t = model.get_tensor_shape(xp.input[0])[-2]
                return _Chain(-t, t, _scale(ref, a1)[0])
            raise _err(mt, f"reference source {sp.name!r} is an unknown MatMul")
        if sp.op_type == "Add":
            ins = [_producer_through_moves(ref, i)[0] for i in sp.input]
            if any(p is None or p.op_type != "Quant" for p in ins):
                raise _err(mt, f"reference Add {sp.name!r} does not add two quantizer outputs")
            (s0, z0), (s1, z1) = _scale(ref, ins[0]), _scale(ref, ins[1])
            if s0 != s1 or z0 or z1 or xp.op_type != "Add":
                raise _err(mt, f"reference Add {sp.name!r} is not an integer add (scales {s0}, {s1})")
            r0, r1 = (_dt_range(model, i) for i in xp.input)
            if r0 is None or r1 is None:
                raise _err(mt, f"Add {xp.name!r} has non-integer inputs")
            return _Chain(r0[0] + r1[0], r0[1] + r1[1], s0)
        if sp.op_type == "ReduceMean":
            qp, _ = _producer_through_moves(ref, sp.input[0])
            if qp is None or qp.op_type != "Quant" or xp.op_type != "ReduceSum":
                raise _err(mt, f"reference ReduceMean {sp.name!r} is not a mean of quantizer codes summed in the graph")
            s, zp = _scale(ref, qp)
            n = int(np.prod(ref.get_tensor_shape(sp.input[0]))) // int(np.prod(ref.get_tensor_shape(sp.output[0])))
            r = _dt_range(model, xp.input[0])
            if zp or r is None:
                raise _err(mt, "GAP input is not zero-point-free integer codes")
            return _Chain(n * r[0], n * r[1], s, div=n)
        raise _err(mt, f"reference source {sp.name!r} ({sp.op_type}) is not supported")

    def _weight_chain(self, model, mt, sp, xp):
        ref = self.ref
        codes, ws = _weight_codes(ref, sp.input[1])
        ap, _ = _producer_through_moves(ref, sp.input[0])
        if ap is None or ap.op_type not in QUANT_OPS:
            raise _err(mt, f"activation of {sp.name!r} is not a quantizer output")
        sa, za = _scale(ref, ap)
        if za:
            raise _err(mt, f"activation quantizer {ap.name!r} has a zero point")
        w = model.get_initializer(xp.input[1]) if xp.op_type in ("MatMul", "Conv", "XnorPopcountMatMul") else None
        if w is None:
            raise _err(mt, f"input producer {xp.name!r} is not a weight MatMul/Conv")
        w = np.rint(np.asarray(w)).astype(np.int64)
        if xp.op_type == "XnorPopcountMatMul":
            w = 2 * w - 1
        if w.shape != codes.shape:
            raise _err(mt, f"weights of {xp.name!r} {w.shape} and reference {sp.name!r} {codes.shape} differ")
        oc = 0 if sp.op_type == "Conv" else 1
        wm, cm, sm = (np.moveaxis(a, oc, 0).reshape(a.shape[oc], -1) for a in (w, codes, ws))
        pos, neg = np.all(wm == cm, axis=1), np.all(wm == -cm, axis=1)
        if not np.all(pos | neg):
            bad = int(np.argmin(pos | neg))
            raise _err(mt, f"weights of {xp.name!r} differ from reference {sp.name!r} beyond a sign (channel {bad})")
        sign = np.where(pos, 1, -1)
        if not np.all(sm == sm[:, :1]):
            raise _err(mt, f"weight scale of {sp.name!r} is not per output channel")
        alpha = (sa * sm[:, 0]).astype(np.float32)
        k = None
        if xp.op_type == "XnorPopcountMatMul":
            k = w.shape[0]
            lo, hi = 0, k
        else:
            r = _dt_range(model, xp.input[0])
            if r is None:
                raise _err(mt, f"input of {xp.name!r} is not an integer")
            lo_c = np.minimum(wm * r[0], wm * r[1]).sum(1)
            hi_c = np.maximum(wm * r[0], wm * r[1]).sum(1)
            lo, hi = int(lo_c.min()), int(hi_c.max())
        return _Chain(lo, hi, alpha, k=k, sign=sign, s_axis=1 if sp.op_type == "Conv" else -1)

    # -- thresholds -------------------------------------------------------------------
    def _counts(self, model, mt, q, chain, x):
        """MultiThreshold counts per (item, channel) for integer inputs ``x`` ``(V, C)``/``(V, 1)``."""
        ref = self.ref
        src, _ = _float_chain(ref, q)
        shape = ref.get_tensor_shape(src)
        v = x.shape[0]
        s = chain.source(x)  # (V, Cs)
        full = np.empty([v] + list(shape[1:]), dtype=np.float32)
        ax = chain.s_axis % len(shape)
        view = np.moveaxis(full, ax, -1)
        view[...] = s.reshape([v] + [1] * (len(shape) - 2) + [s.shape[1]])
        out = chain_codes(ref, q, full)
        sq, zq = _scale(ref, q)
        inst = getCustomOp(mt)
        if q.op_type == "BipolarQuant":
            val = np.where(out > 0, 1.0, -1.0)
            if inst.get_nodeattr("out_dtype") == "BINARY":
                val = (val + 1) / 2
        else:
            val = np.rint(out / sq) + zq
        cnt = (val - inst.get_nodeattr("out_bias")) / inst.get_nodeattr("out_scale")
        if not np.array_equal(cnt, np.rint(cnt)):
            raise _err(mt, f"levels of {q.name!r} are not out_bias + out_scale * k")
        layout = inst.get_nodeattr("data_layout")
        cax = 1 if layout.startswith("NC") and len(layout) > 2 else cnt.ndim - 1
        c = np.moveaxis(cnt, cax, -1).reshape(v, -1, cnt.shape[cax])
        if not np.all(c == c[:, :1, :]):
            raise _err(mt, f"chain of {q.name!r} is not per channel")
        return c[:, 0, :].astype(np.int64)

    def _exact(self, model, mt, q):
        chain = self._chain(model, mt, q)
        thr = model.get_initializer(mt.input[1])
        levels = thr.shape[1]
        src, _ = _float_chain(self.ref, q)
        size = int(np.prod(self.ref.get_tensor_shape(src)))
        n_x = chain.hi - chain.lo + 1
        ch = self.ref.get_tensor_shape(q.output[0])
        inst = getCustomOp(mt)
        layout = inst.get_nodeattr("data_layout")
        n_ch = ch[1] if layout.startswith("NC") and len(layout) > 2 else ch[-1]
        if n_x * size <= ENUM_ELEMENTS:
            xs = np.arange(chain.lo, chain.hi + 1, dtype=np.int64)
            cnt = self._counts(model, mt, q, chain, xs[:, None])  # (V, C)
            if np.any(cnt < 0) or np.any(cnt > levels):
                raise _err(mt, f"chain of {q.name!r} leaves the node's {levels} levels")
            if np.any(np.diff(cnt, axis=0) < 0):
                c = int(np.argmax(np.any(np.diff(cnt, axis=0) < 0, axis=0)))
                raise _err(mt, f"chain of {q.name!r} is not non-decreasing in the integer input (channel {c})")
            # threshold j (1..L) = first x with count >= j
            j = np.arange(1, levels + 1)
            reach = cnt[:, :, None] >= j[None, None, :]  # (V, C, L)
            first = np.where(reach.any(0), reach.argmax(0), n_x)
            new = (chain.lo + first).astype(np.float64)  # (C, L)
        else:
            if chain.alpha.size not in (1, n_ch) or (chain.sign is not None and chain.sign.size != n_ch):
                raise _err(mt, "binary search needs source channels = threshold channels")
            lo = np.full((levels, n_ch), chain.lo, dtype=np.int64)
            hi = np.full((levels, n_ch), chain.hi + 1, dtype=np.int64)
            j = np.arange(1, levels + 1)[:, None]
            while np.any(lo < hi):
                mid = (lo + hi) // 2
                cnt = self._counts(model, mt, q, chain, np.minimum(mid, chain.hi))
                ok = (cnt >= j) & (mid <= chain.hi)
                hi = np.where(ok & (lo < hi), mid, hi)
                lo = np.where(~ok & (lo < hi), mid + 1, lo)
            new = lo.T.astype(np.float64)
        if new.shape[0] > 1 and np.all(new == new[:1]) and thr.shape[0] == 1:
            new = new[:1]
        model.set_initializer(mt.input[1], new.astype(np.float32))
        lo_v, hi_v = float(new.min()), float(new.max())
        model.set_tensor_datatype(mt.input[1], DataType.get_smallest_possible(min(lo_v, -hi_v - 1)) if lo_v < 0 else DataType.get_smallest_possible(hi_v))


class IntegerInput(Transformation):
    """Make the graph take the raw uint8 pixels: remove the input quantizer's
    MultiThreshold when it maps every ``u / 255`` (float32, as
    :func:`xnorvit.model.data.to_float` computes it) to ``u`` -- checked for
    all 256 values on the node's thresholds *and* on the reference QONNX
    input quantizer -- and annotate the graph input ``UINT8``. Sets the
    metadata ``xnorvit_input = "uint8"`` (:func:`xnorvit.flows.compile.execute`
    then feeds raw pixels).

    Leaves the graph unchanged when the first node is not such a
    MultiThreshold (the check fails or the input is already integer).

    Args:
        reference: the ``qonnx`` stage the graph was streamlined from.
    """

    def __init__(self, reference):
        super().__init__()
        self.ref = quantize_constant_tokens_ref(reference)

    def apply(self, model):
        iname = model.graph.input[0].name
        cons = model.find_consumers(iname) or []
        if len(cons) != 1 or cons[0].op_type != "MultiThreshold" or model.get_tensor_datatype(iname).is_integer():
            return (model, False)
        mt = cons[0]
        inst = getCustomOp(mt)
        thr = model.get_initializer(mt.input[1])
        u = np.arange(256)
        x = (u.astype(np.float32) / np.float32(255.0)).astype(np.float32)
        if inst.get_nodeattr("out_scale") != 1.0 or thr.shape[0] != 1:
            return (model, False)
        got = (x[:, None] >= thr[0][None, :]).sum(1) + inst.get_nodeattr("out_bias")
        qs = _activation_quants(self.ref)
        if not qs or qs[0].input[0] != self.ref.graph.input[0].name or not np.array_equal(got, u):
            return (model, False)
        shape = self.ref.get_tensor_shape(qs[0].input[0])
        vals = np.broadcast_to(x.reshape([256] + [1] * (len(shape) - 1)), [256] + list(shape[1:]))
        s, zp = _scale(self.ref, qs[0])
        codes = np.rint(chain_codes(self.ref, qs[0], vals) / s) + zp
        if not np.array_equal(codes.reshape(256, -1), np.broadcast_to(u[:, None], (256, codes[0].size))):
            return (model, False)
        for n in model.find_consumers(mt.output[0]) or []:
            for i, t in enumerate(n.input):
                if t == mt.output[0]:
                    n.input[i] = iname
        model.graph.node.remove(mt)
        model.set_tensor_datatype(iname, DataType["UINT8"])
        model.set_metadata_prop("xnorvit_input", "uint8")
        return (model, False)
