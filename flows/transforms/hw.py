"""Conversion of the streamlined graph's non-MVAU layers into xnorvit
hardware ops (FINN ``HWCustomOp``s, domain ``xnorvit.flows.ops``), and their
specialization to RTL variants (domain ``xnorvit.flows.ops.rtl``).

Each ``Infer*`` keeps the graph executable and bit-exact (the new node's
``execute_node`` is the integer semantics of the replaced subgraph), creates
nodes with ``PE=1`` (folding sets it later) and leaves any pattern it cannot
prove equivalent untouched. They follow finn-plus's
``finn/transformation/fpgadataflow/convert_to_hw/*.py`` (one node at a time,
``InferShapes``/``InferDataTypes`` after a change).

* :class:`InferResidualAdd`: ``Add(a, b)`` of two integer streams followed by
  a ``MultiThreshold`` that is the saturating identity of its ``INT{W}``
  output -> ``ResidualAdd``.
* :class:`InferPosAdd`: ``Add(x, constant table)`` + saturating-identity
  ``MultiThreshold`` -> ``PosAdd``.
* :class:`InferTokenPool`: ``ReduceSum`` over the token axis -> ``TokenPool``.
* :class:`InferTokenInsert`: ``Concat`` of constant tokens and a token
  stream (DeiT's CLS token) -> ``TokenInsert``.
* :class:`InferTokenSelect`: ``Gather`` of one token -> ``TokenSelect``.
* :class:`InferBinaryAttention`: a plain ``BinaryAttention`` node (from
  :class:`~xnorvit.flows.transforms.attention.ConvertBinaryAttention`) gets
  its hardware attributes.
* Forks: finn-plus's ``InferDuplicateStreamsLayer`` (N-way, one node per
  tensor with fanout >= 2); :class:`xnorvit.flows.to_hw.SpecializeXnorvitLayers` maps its
  ``DuplicateStreams`` to ``DuplicateStreams_rtl`` (run it before finn's
  ``SpecializeLayers``, which would pick ``DuplicateStreams_hls``).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name

from xnorvit.flows.ops.binary_attention import attention_out_bits
from xnorvit.flows.ops.stream import clog2

__all__ = [
    "DOMAIN",
    "InferResidualAdd",
    "InferPosAdd",
    "InferTokenPool",
    "InferTokenInsert",
    "InferTokenSelect",
    "InferBinaryAttention",
    "InferXnorvitLayers",
    "is_saturating_identity",
]

DOMAIN = "xnorvit.flows.ops"



def _signed_bits(dt) -> int | None:
    """W of a signed ``INT{W}`` FINN datatype (W >= 2), else None."""
    if dt.is_integer() and dt.signed() and dt.name.startswith("INT") and dt.bitwidth() >= 2:
        return dt.bitwidth()
    return None


def is_saturating_identity(model, mt, lo: int, hi: int) -> int | None:
    """Whether MultiThreshold ``mt`` computes ``clamp(x, -2^(W-1), 2^(W-1)-1)``
    for every integer ``x`` in ``[lo, hi]`` on every channel, ``INT{W}`` its
    output type. Checked numerically on the whole range with the function
    ``MultiThreshold.execute_node`` applies (qonnx ``multithreshold``).

    Returns:
        W, or None if it does not (or is not a signed-integer MultiThreshold).
    """
    if mt is None or mt.op_type != "MultiThreshold":
        return None
    inst = getCustomOp(mt)
    w = _signed_bits(DataType[inst.get_nodeattr("out_dtype")])
    thr = model.get_initializer(mt.input[1])
    if w is None or thr is None or lo > hi or hi - lo > (1 << 22):
        return None
    from qonnx.custom_op.general.multithreshold import multithreshold

    # the function MultiThreshold.execute_node applies, in (N, C) layout:
    # one row per input value, one column per threshold channel
    x = np.arange(lo, hi + 1, dtype=np.float32)
    xin = np.broadcast_to(x[:, None], (x.size, thr.shape[0])).copy()
    got = multithreshold(xin, thr, inst.get_nodeattr("out_scale"), inst.get_nodeattr("out_bias"))
    want = np.clip(xin, -(1 << (w - 1)), (1 << (w - 1)) - 1)
    return w if np.array_equal(got, want) else None


def _single_consumer(model, tensor):
    cons = model.find_consumers(tensor) or []
    if len(cons) != 1 or any(o.name == tensor for o in model.graph.output):
        return None
    return cons[0]


def _finish(model):
    model = model.transform(InferShapes())
    model = model.transform(InferDataTypes())
    return model


def _replace_add(model, add, mt, op_type: str, inputs: list, shape, idt, w: int) -> None:
    """Put one ``op_type`` node (saturating ``INT{w}`` output, PE=1) in place
    of ``add`` and its saturating-identity MultiThreshold ``mt``."""
    graph = model.graph
    node = helper.make_node(
        op_type, inputs, [mt.output[0]], domain=DOMAIN, name=f"{op_type}_{add.name}",
        backend="fpgadataflow", NumChannels=int(shape[-1]), PE=1, numInputVectors=[int(v) for v in shape[:-1]],
        inputDataType=idt.name, outputDataType=f"INT{w}")
    graph.node.insert(list(graph.node).index(add), node)
    graph.node.remove(add)
    graph.node.remove(mt)


class InferResidualAdd(Transformation):
    """``Add(a, b)`` + saturating-identity ``MultiThreshold`` -> ``ResidualAdd``.

    Matched: ``Add`` whose two inputs are dynamic tensors of one shape
    ``(..., C)`` annotated ``INT{W}``, whose output is consumed only by a
    ``MultiThreshold`` with ``INT{W}`` output that equals
    ``clamp(x, -2^(W-1), 2^(W-1)-1)`` on the whole range of ``a + b``
    (checked numerically). Both nodes become one ``ResidualAdd`` (``PE=1``,
    ``numInputVectors`` = the leading dims). Anything else is left alone.
    """

    def apply(self, model):
        for add in list(model.graph.node):
            if add.op_type != "Add" or len(add.input) != 2:
                continue
            a, b = add.input
            if model.get_initializer(a) is not None or model.get_initializer(b) is not None:
                continue
            sa, sb = model.get_tensor_shape(a), model.get_tensor_shape(b)
            if sa is None or sa != sb or len(sa) < 2:
                continue
            da, db = model.get_tensor_datatype(a), model.get_tensor_datatype(b)
            w = _signed_bits(da)
            if w is None or da != db:
                continue
            mt = _single_consumer(model, add.output[0])
            lo, hi = int(da.min() + db.min()), int(da.max() + db.max())
            if mt is None or is_saturating_identity(model, mt, lo, hi) != w:
                continue
            _replace_add(model, add, mt, "ResidualAdd", [a, b], sa, da, w)
            return (_finish(model), True)
        return (model, False)


class InferPosAdd(Transformation):
    """``Add(x, E)`` + saturating-identity ``MultiThreshold`` -> ``PosAdd``.

    Matched: ``x`` a dynamic ``(1, T, C)`` tensor annotated ``INT{W}``, ``E``
    an integer initializer broadcastable to ``(1, T, C)`` with values in
    ``INT{W}``, the ``Add`` output consumed only by a ``MultiThreshold`` with
    ``INT{W}`` output equal to the clamp on ``[min x + min E, max x + max E]``.
    The table becomes a ``(T, C)`` initializer (input 1 of the node).
    """

    def apply(self, model):
        for add in list(model.graph.node):
            if add.op_type != "Add" or len(add.input) != 2:
                continue
            consts = [model.get_initializer(i) for i in add.input]
            if (consts[0] is None) == (consts[1] is None):
                continue
            xi = 0 if consts[0] is None else 1
            x, e_name, e = add.input[xi], add.input[1 - xi], consts[1 - xi]
            shape = model.get_tensor_shape(x)
            if shape is None or len(shape) != 3 or shape[0] != 1:
                continue
            dx = model.get_tensor_datatype(x)
            w = _signed_bits(dx)
            if w is None:
                continue
            try:
                table = np.broadcast_to(np.asarray(e, dtype=np.float64), shape).reshape(shape[1], shape[2])
            except ValueError:
                continue
            if not np.array_equal(table, np.rint(table)) or table.min() < dx.min() or table.max() > dx.max():
                continue
            mt = _single_consumer(model, add.output[0])
            lo, hi = int(dx.min() + table.min()), int(dx.max() + table.max())
            if mt is None or is_saturating_identity(model, mt, lo, hi) != w:
                continue
            tname = model.make_new_valueinfo_name()
            model.set_initializer(tname, table.astype(np.float32))
            tbits = next(n for n in range(2, 65) if -(1 << (n - 1)) <= table.min() and table.max() < (1 << (n - 1)))
            tdt = DataType[f"INT{tbits}"]
            model.set_tensor_datatype(tname, tdt)
            _replace_add(model, add, mt, "PosAdd", [x, tname], shape, dx, w)
            if not (model.find_consumers(e_name) or []):
                model.del_initializer(e_name)
            return (_finish(model), True)
        return (model, False)


class InferTokenPool(Transformation):
    """``ReduceSum`` over the token axis -> ``TokenPool``.

    Matched: input ``(1, T, C)`` annotated signed ``INT{W}``, axes ``[1]``
    (or ``[-2]``; initializer or attribute), ``keepdims=0``. The output is
    annotated ``INT{W + clog2(T)}`` (the RTL's lane width). Unsigned inputs
    and other reductions are left alone.
    """

    def apply(self, model):
        for rs in list(model.graph.node):
            if rs.op_type != "ReduceSum":
                continue
            shape = model.get_tensor_shape(rs.input[0])
            if shape is None or len(shape) != 3 or shape[0] != 1:
                continue
            if len(rs.input) > 1 and rs.input[1]:
                axes = model.get_initializer(rs.input[1])
            else:
                a = get_by_name(rs.attribute, "axes")
                axes = list(a.ints) if a is not None else None
            if axes is None or [int(v) % 3 for v in np.ravel(axes)] != [1]:
                continue
            kd = get_by_name(rs.attribute, "keepdims")
            if kd is None or kd.i != 0:
                continue
            dt = model.get_tensor_datatype(rs.input[0])
            w = _signed_bits(dt)
            if w is None:
                continue
            t = int(shape[1])
            graph = model.graph
            idx = list(graph.node).index(rs)
            node = helper.make_node(
                "TokenPool", [rs.input[0]], [rs.output[0]], domain=DOMAIN, name=f"TokenPool_{rs.name}",
                backend="fpgadataflow", NumChannels=int(shape[-1]), PE=1, numInputVectors=[1, t],
                inputDataType=dt.name, outputDataType=f"INT{w + clog2(t)}")
            graph.node.insert(idx, node)
            graph.node.remove(rs)
            return (_finish(model), True)
        return (model, False)


def _stream_type(dt):
    """Name of an integer FINN datatype a token-movement op carries, else None."""
    if dt is None or not dt.is_integer() or dt.name == "BIPOLAR":
        return None
    return dt.name


class InferTokenInsert(Transformation):
    """``Concat(axis=1, [K, x])`` -> ``TokenInsert`` (constant tokens first).

    Matched: ``K`` a ``(1, N, C)`` integer initializer whose values fit
    ``x``'s datatype, ``x`` a ``(1, T, C)`` integer stream (DeiT's CLS token
    after :class:`~xnorvit.flows.transforms.QuantizeConstantTokens`). The
    output keeps ``x``'s datatype.
    """

    def apply(self, model):
        for cat in list(model.graph.node):
            if cat.op_type != "Concat" or len(cat.input) != 2:
                continue
            ax = get_by_name(cat.attribute, "axis")
            k, shape = model.get_initializer(cat.input[0]), model.get_tensor_shape(cat.input[1])
            dt = _stream_type(model.get_tensor_datatype(cat.input[1]))
            if (ax is None or ax.i % 3 != 1 or k is None or shape is None or len(shape) != 3 or shape[0] != 1
                    or k.ndim != 3 or k.shape[0] != 1 or k.shape[2] != shape[2] or dt is None):
                continue
            d = DataType[dt]
            if not (np.array_equal(k, np.rint(k)) and k.min() >= d.min() and k.max() <= d.max()):
                continue
            graph = model.graph
            idx = list(graph.node).index(cat)
            node = helper.make_node(
                "TokenInsert", [cat.input[1], cat.input[0]], [cat.output[0]], domain=DOMAIN, name=f"TokenInsert_{cat.name}",
                backend="fpgadataflow", NumChannels=int(shape[2]), PE=1, numInputVectors=[1, int(shape[1])],
                numConstTokens=int(k.shape[1]), inputDataType=dt, outputDataType=dt)
            graph.node.insert(idx, node)
            graph.node.remove(cat)
            model.set_tensor_datatype(cat.input[0], d)
            return (_finish(model), True)
        return (model, False)


class InferTokenSelect(Transformation):
    """``Gather(axis=1, scalar index)`` of a ``(1, T, C)`` integer stream ->
    ``TokenSelect`` (DeiT's CLS-token readout). A negative index counts from
    the end, as in ONNX."""

    def apply(self, model):
        for g in list(model.graph.node):
            if g.op_type != "Gather":
                continue
            ax = get_by_name(g.attribute, "axis")
            idx_v, shape = model.get_initializer(g.input[1]), model.get_tensor_shape(g.input[0])
            dt = _stream_type(model.get_tensor_datatype(g.input[0]))
            if (ax is None or shape is None or len(shape) != 3 or ax.i % 3 != 1 or shape[0] != 1 or idx_v is None
                    or idx_v.size != 1 or idx_v.ndim != 0 or dt is None):
                continue
            t = int(shape[1])
            index = int(np.ravel(idx_v)[0]) % t
            graph = model.graph
            pos = list(graph.node).index(g)
            node = helper.make_node(
                "TokenSelect", [g.input[0]], [g.output[0]], domain=DOMAIN, name=f"TokenSelect_{g.name}",
                backend="fpgadataflow", NumChannels=int(shape[2]), PE=1, numInputVectors=[1, t], index=index,
                inputDataType=dt, outputDataType=dt)
            graph.node.insert(pos, node)
            graph.node.remove(g)
            return (_finish(model), True)
        return (model, False)


class InferBinaryAttention(Transformation):
    """Give each plain ``BinaryAttention`` node (no ``backend`` attribute) its
    hardware attributes: ``backend="fpgadataflow"``, ``NumChannels`` C,
    ``numInputVectors`` ``[1, T]``, ``inputDataType`` ``BINARY``,
    ``outputDataType`` ``INT{clog2(T+1)+1}``, ``PAR_T = PAR_D = 1``.

    Raises:
        ValueError: a node whose q/k/v are not ``(1, T, C)`` ``BINARY``
            tensors of one shape (names the node).
    """

    def apply(self, model):
        changed = False
        for node in model.graph.node:
            if node.domain != DOMAIN or node.op_type != "BinaryAttention" or get_by_name(node.attribute, "backend"):
                continue
            shapes = [model.get_tensor_shape(i) for i in node.input]
            dts = [model.get_tensor_datatype(i) for i in node.input]
            if len(node.input) != 3 or any(s != shapes[0] for s in shapes) or len(shapes[0]) != 3 or shapes[0][0] != 1:
                raise ValueError(f"{node.name} (BinaryAttention): q, k, v must be (1, T, C) of one shape, got {shapes}")
            if any(d != DataType["BINARY"] for d in dts):
                raise ValueError(f"{node.name} (BinaryAttention): q, k, v must be BINARY, got {[d.name for d in dts]}")
            _, t, c = shapes[0]
            inst = getCustomOp(node)
            if c % inst.get_nodeattr("heads"):
                raise ValueError(f"{node.name} (BinaryAttention): heads={inst.get_nodeattr('heads')} does not divide C={c}")
            for k, v in dict(backend="fpgadataflow", NumChannels=int(c), numInputVectors=[1, int(t)],
                             inputDataType="BINARY", outputDataType=f"INT{attention_out_bits(t)}", PAR_T=1, PAR_D=1).items():
                inst.set_nodeattr(k, v)
            changed = True
        return (model, False) if not changed else (_finish(model), False)


class InferXnorvitLayers(Transformation):
    """All of this module's ``Infer*`` in order: pos add, residual adds,
    token pool, constant-token insert and token select, binary attention (not the forks: run finn-plus's
    ``InferDuplicateStreamsLayer`` once every layer is a HW layer)."""

    def apply(self, model):
        for t in (InferPosAdd(), InferResidualAdd(), InferTokenPool(), InferTokenInsert(), InferTokenSelect(),
                  InferBinaryAttention()):
            model = model.transform(t)
        return (model, False)
