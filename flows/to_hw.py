"""Hardware conversion: streamlined integer graph -> FINN dataflow graph of
hardware ops, every one with RTL behind it.

Stages (each executable node by node with FINN's ``execute_onnx``; see
:func:`hw_stages`):

``hw``
    abstract FINN ``HWCustomOp`` nodes. finn-plus transforms where they fit
    (qonnx ``LowerConvsToMatMul``; ``AbsorbTransposeIntoMultiThreshold``,
    ``AbsorbConsecutiveTransposes``; ``InferConvInpGen`` -> ``FMPadding`` +
    ``ConvolutionInputGenerator``; ``InferQuantizedMatrixVectorActivation``
    and ``InferBinaryMatrixVectorActivation`` -> ``MVAU``;
    ``InferThresholdingLayer``; ``InferDuplicateStreamsLayer``) and
    xnorvit's own where FINN has none (:class:`ChannelsLastInput`,
    :class:`CollapseTokenGrid`, :class:`AbsorbReshapeIntoMVAU`,
    :class:`SplitWideThresholds` and the op conversions of
    :mod:`xnorvit.flows.transforms.hw`: residual add, position-embedding add,
    token pooling (GAP), binary attention).
``specialized``
    every node an ``RTLBackend`` op: :class:`SpecializeXnorvitLayers` maps
    binary MVAUs to :class:`~xnorvit.flows.ops.mvau.MVAU_xnor_rtl`
    (``rtl/mvau_xnor.sv``, instead of FINN's ``MVAU_hls``), integer MVAUs to
    :class:`~xnorvit.flows.ops.mvau.MVAU_int_rtl`, xnorvit's abstract ops to
    their ``_rtl`` variants; finn-plus ``SpecializeLayers`` maps the rest
    (``Thresholding_rtl``, ``FMPadding_rtl``, ``ConvolutionInputGenerator_rtl``)
    with ``preferred_impl_style="rtl"``; :class:`UseThresholdTables` then moves
    the thresholdings of narrow inputs onto lookup tables
    (``ThresholdTable_rtl``).

The graph input becomes channels-last (``(1, H, W, C)`` raw uint8 pixels,
metadata ``xnorvit_input_layout = NHWC``); :func:`xnorvit.flows.compile.execute`
feeds NCHW images accordingly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from onnx import helper

from xnorvit.flows import finn_env

__all__ = [
    "HW_STAGES", "MAX_FUSED_THRESHOLDS", "ChannelsLastInput", "CollapseTokenGrid", "AbsorbReshapeIntoMVAU",
    "AdoptMVAU", "SplitWideThresholds", "SpecializeXnorvitLayers", "UseThresholdTables", "check_dataflow_graph", "to_hw", "specialize", "hw_stages",
]

#: stage names of :func:`hw_stages`, in order
HW_STAGES = ("hw", "specialized")

#: an MVAU keeps at most this many thresholds per channel fused (parallel
#: comparators in ``mvau_core``); wider activations (the 8-bit residual codes,
#: 255 thresholds) go to a separate ``Thresholding_rtl`` (binary search)
MAX_FUSED_THRESHOLDS = 15


def _transformation():
    from qonnx.transformation.base import Transformation

    return Transformation


Transformation = _transformation()


def _tidy(model):
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    for t in (InferShapes(), InferDataTypes(), InferDataLayouts(), GiveUniqueNodeNames(), GiveReadableTensorNames()):
        model = model.transform(t)
    return model


class ChannelsLastInput(Transformation):
    """Make the graph take channels-last pixels.

    ``in (1,C,H,W) -> Transpose(0,2,3,1) -> ...`` becomes ``in (1,H,W,C) -> ...``
    and the metadata ``xnorvit_input_layout`` is set to ``NHWC`` (the host or
    DMA sends pixels in raster order, channels innermost: FINN's layout).
    """

    def apply(self, model):
        from qonnx.core.datatype import DataType

        iname = model.graph.input[0].name
        consumers = model.find_consumers(iname)
        if len(consumers) != 1 or consumers[0].op_type != "Transpose":
            return model, False
        t = consumers[0]
        perm = list(helper.get_attribute_value(t.attribute[0])) if t.attribute else []
        if perm != [0, 2, 3, 1]:
            return model, False
        n, c, h, w = model.get_tensor_shape(iname)
        dt = model.get_tensor_datatype(iname)
        for cons in model.find_consumers(t.output[0]):
            for k, name in enumerate(cons.input):
                if name == t.output[0]:
                    cons.input[k] = iname
        model.graph.node.remove(t)
        model.set_tensor_shape(iname, [n, h, w, c])
        model.set_tensor_datatype(iname, dt if dt is not None else DataType["UINT8"])
        model.set_metadata_prop("xnorvit_input_layout", "NHWC")
        return model, True


def _perm(node) -> list[int]:
    for a in node.attribute:
        if a.name == "perm":
            return list(a.ints)
    return []


class CollapseTokenGrid(Transformation):
    """Turn a patch-grid feature map into tokens without any data movement.

    Pattern (after ``LowerConvsToMatMul``): ``MatMul -> (1,H,W,C) ->
    Transpose(0,3,1,2) -> Reshape(1,C,H*W) -> Transpose(0,2,1) -> (1,H*W,C)``.
    In raster order the token stream equals the channels-last feature map,
    so the three nodes are removed and a ``Reshape`` ``(1,H,W,K) ->
    (1,H*W,K)`` is put on the MatMul's input instead (absorbed into the MVAU
    later by :class:`AbsorbReshapeIntoMVAU`).
    """

    def apply(self, model):
        for t1 in model.graph.node:
            if t1.op_type != "Transpose" or _perm(t1) != [0, 3, 1, 2]:
                continue
            mm = model.find_producer(t1.input[0])
            r = model.find_direct_successors(t1)
            if mm is None or mm.op_type != "MatMul" or not r or len(r) != 1 or r[0].op_type != "Reshape":
                continue
            r = r[0]
            t2 = model.find_direct_successors(r)
            if not t2 or len(t2) != 1 or t2[0].op_type != "Transpose" or _perm(t2[0]) != [0, 2, 1]:
                continue
            t2 = t2[0]
            n, h, w, c = model.get_tensor_shape(t1.input[0])
            if model.get_tensor_shape(t2.output[0]) != [n, h * w, c]:
                continue
            x = mm.input[0]
            k = model.get_tensor_shape(x)[-1]
            shape_name = model.make_new_valueinfo_name()
            model.set_initializer(shape_name, np.array([n, h * w, k], dtype=np.int64))
            flat = model.make_new_valueinfo_name()
            model.graph.node.insert(list(model.graph.node).index(mm), helper.make_node("Reshape", [x, shape_name], [flat]))
            model.set_tensor_shape(flat, [n, h * w, k])
            model.set_tensor_datatype(flat, model.get_tensor_datatype(x))
            mm.input[0] = flat
            out = t2.output[0]
            model.set_tensor_shape(out, [n, h * w, c])
            mm.output[0] = out
            for node in (t1, r, t2):
                model.graph.node.remove(node)
            return model, True
        return model, False


class AbsorbReshapeIntoMVAU(Transformation):
    """Drop a ``Reshape`` that only merges the leading (vector) axes in front
    of an ``MVAU``: the MVAU reads ``prod(numInputVectors)`` vectors of
    ``MW`` elements in stream order either way (its ``execute_node``
    reshapes its input to ``(*numInputVectors, MW)``)."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "MVAU":
                continue
            r = model.find_producer(node.input[0])
            if r is None or r.op_type != "Reshape" or len(model.find_consumers(r.output[0])) != 1:
                continue
            src, dst = model.get_tensor_shape(r.input[0]), model.get_tensor_shape(r.output[0])
            if src[-1] != dst[-1] or int(np.prod(src)) != int(np.prod(dst)):
                continue
            node.input[0] = r.input[0]
            model.graph.node.remove(r)
            return model, True
        return model, False


def _acc_datatype(model, node):
    """Smallest FINN integer type holding every accumulator value of an MVAU."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    w = np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)
    if inst.get_nodeattr("binaryXnorMode"):
        lo, hi = 0, inst.get_nodeattr("MW")
    else:
        idt = DataType[inst.get_nodeattr("inputDataType")]
        pos, neg = np.clip(w, 0, None).sum(0), np.clip(w, None, 0).sum(0)
        hi = float(np.max(pos * idt.max() + neg * idt.min()))
        lo = float(np.min(pos * idt.min() + neg * idt.max()))
    if lo >= 0:
        return DataType[f"UINT{max(1, int(np.ceil(np.log2(hi + 1))))}"]
    bits = int(max(np.ceil(np.log2(-lo)), np.ceil(np.log2(hi + 1)))) + 1
    return DataType[f"INT{bits}"]


class AdoptMVAU(Transformation):
    """Move finn-plus ``MVAU`` nodes to domain ``xnorvit.flows.ops``
    (:class:`xnorvit.flows.ops.mvau.MVAU`: same op, channel-last thresholds
    in ``execute_node``)."""

    def apply(self, model):
        changed = False
        for node in model.graph.node:
            if node.op_type == "MVAU" and node.domain == "finn.custom_op.fpgadataflow":
                node.domain = "xnorvit.flows.ops"
                changed = True
        return model, False


class SplitWideThresholds(Transformation):
    """Split ``MVAU(noActivation=0)`` with more than ``max_fused`` thresholds
    per channel into ``MVAU(noActivation=1) -> MultiThreshold``.

    ``mvau_core`` compares all N thresholds of a channel in parallel, which
    is cheap for binary outputs (N = 1) and expensive for 8-bit codes
    (N = 255); finn-plus's ``Thresholding_rtl`` (finn-rtllib, binary search,
    thresholds in memory) takes those. Exact: the MultiThreshold gets the
    MVAU's thresholds, ``out_bias = ActVal`` and output type; the MVAU's
    output type becomes the exact accumulator range.
    """

    def __init__(self, max_fused: int = MAX_FUSED_THRESHOLDS):
        super().__init__()
        self.max_fused = max_fused

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        for node in model.graph.node:
            if node.op_type != "MVAU" or len(node.input) < 3:
                continue
            inst = getCustomOp(node)
            thr = model.get_initializer(node.input[2])
            if inst.get_nodeattr("noActivation") or thr.shape[1] <= self.max_fused:
                continue
            out = node.output[0]
            odt = model.get_tensor_datatype(out)
            acc = model.make_new_valueinfo_name()
            model.set_tensor_shape(acc, model.get_tensor_shape(out))
            adt = _acc_datatype(model, node)
            model.set_tensor_datatype(acc, adt)
            layout = "NHWC" if len(model.get_tensor_shape(out)) == 4 else ("NWC" if len(model.get_tensor_shape(out)) == 3 else "NC")
            mt = helper.make_node("MultiThreshold", [acc, node.input[2]], [out], domain="qonnx.custom_op.general",
                                  out_dtype=odt.name, out_bias=float(inst.get_nodeattr("ActVal")), data_layout=layout)
            node.output[0] = acc
            del node.input[2]
            inst.set_nodeattr("noActivation", 1)
            inst.set_nodeattr("ActVal", 0)
            inst.set_nodeattr("outputDataType", adt.name)
            model.graph.node.insert(list(model.graph.node).index(node) + 1, mt)
            return model, True
        return model, False


class SpecializeXnorvitLayers(Transformation):
    """Pick xnorvit's RTL backends before finn-plus's ``SpecializeLayers``.

    * ``MVAU`` with ``binaryXnorMode=1`` -> ``MVAU_xnor_rtl``; other
      ``MVAU`` -> ``MVAU_int_rtl`` (both ``mem_mode="internal_embedded"``:
      weights in the kernel's ROM).
    * every abstract op of domain ``xnorvit.flows.ops`` and finn-plus's
      ``DuplicateStreams`` -> the ``<op>_rtl`` of ``xnorvit.flows.ops.rtl``
      when that variant exists.
    * other finn-plus HW nodes get ``preferred_impl_style="rtl"``.
    """

    def apply(self, model):
        from xnorvit.flows.ops import rtl as rtl_ops

        changed = False
        for k, node in enumerate(list(model.graph.node)):
            target = None
            if node.domain == "xnorvit.flows.ops" and node.op_type == "MVAU":
                xnor = any(a.name == "binaryXnorMode" and a.i == 1 for a in node.attribute)
                target = "MVAU_xnor_rtl" if xnor else "MVAU_int_rtl"
            elif node.domain in ("xnorvit.flows.ops", "finn.custom_op.fpgadataflow") and f"{node.op_type}_rtl" in rtl_ops.custom_op:
                target = f"{node.op_type}_rtl"
            if target is None:
                if node.domain == "finn.custom_op.fpgadataflow":
                    node.attribute.append(helper.make_attribute("preferred_impl_style", "rtl"))
                continue
            new = helper.make_node(target, node.input, node.output, domain=rtl_ops.DOMAIN, name=node.name)
            new.attribute.extend(a for a in node.attribute if a.name not in ("preferred_impl_style", "mem_mode"))
            if target.startswith("MVAU"):
                new.attribute.append(helper.make_attribute("mem_mode", "internal_embedded"))
            model.graph.node.insert(k, new)
            model.graph.node.remove(node)
            changed = True
        return model, False


class UseThresholdTables(Transformation):
    """``Thresholding_rtl`` -> :class:`~xnorvit.flows.ops.rtl.ThresholdTable_rtl`
    where a lookup table is cheaper than the binary search
    (:func:`xnorvit.flows.ops.threshold_table.prefer_table`: narrow inputs,
    many thresholds, e.g. the 255-level requantizers after 7-bit popcounts).

    Exact: the same node (inputs, attributes, FINN ``Thresholding``
    semantics) on another kernel, renamed ``ThresholdTable_rtl_<k>`` from
    ``Thresholding_rtl_<k>`` (the numbering stays unique); ``PE`` is kept, finn-rtllib's memory
    attributes (``depth_trigger_*``, ``deep_pipeline``, ``uniform_thres``)
    are dropped and the tables get ``ram_style="auto"``. Run on the
    specialized graph after the threshold types are minimized.
    """

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        from xnorvit.flows.ops import rtl as rtl_ops
        from xnorvit.flows.ops.threshold_table import prefer_table

        drop = ("depth_trigger_uram", "depth_trigger_bram", "uniform_thres", "deep_pipeline")
        for k, node in enumerate(list(model.graph.node)):
            if node.op_type != "Thresholding_rtl":
                continue
            inst = getCustomOp(node)
            odt = inst.get_output_datatype()
            if not prefer_table(inst.get_input_datatype(0).bitwidth(), inst.get_nodeattr("numSteps"),
                                inst.get_input_datatype(1).bitwidth(), odt.bitwidth(), odt.name == "BIPOLAR"):
                continue
            name = node.name.replace("Thresholding_rtl", "ThresholdTable_rtl", 1)
            new = helper.make_node("ThresholdTable_rtl", node.input, node.output, domain=rtl_ops.DOMAIN, name=name)
            new.attribute.extend(a for a in node.attribute if a.name not in drop)
            new.attribute.append(helper.make_attribute("ram_style", "auto"))
            model.graph.node.insert(k, new)
            model.graph.node.remove(node)
        return model, False


def check_dataflow_graph(model) -> None:
    """Raise :class:`~xnorvit.flows.transforms.UnsupportedNodeError` naming
    the first node that is not a FINN dataflow (``backend="fpgadataflow"``) node."""
    from finn.util.fpgadataflow import is_fpgadataflow_node

    from xnorvit.flows.transforms import UnsupportedNodeError

    for node in model.graph.node:
        if not is_fpgadataflow_node(node):
            raise UnsupportedNodeError(node, "no hardware op; the graph is not a supported binary ViT")


def _own_conversions() -> list:
    """xnorvit's op conversions (:mod:`xnorvit.flows.transforms.hw`), in order."""
    from xnorvit.flows.transforms.hw import InferXnorvitLayers

    return [InferXnorvitLayers()]


def to_hw(model, check: bool = True):
    """Convert a streamlined graph (:func:`xnorvit.flows.compile.streamline`)
    into abstract FINN HW ops (the ``hw`` stage). The input is not changed.

    Raises:
        xnorvit.flows.transforms.UnsupportedNodeError: a node is left that
            has no hardware op (names it and its op type), if ``check``.
    """
    finn_env.setup()
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes, AbsorbTransposeIntoMultiThreshold
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    import copy

    m = ModelWrapper(copy.deepcopy(model.model))
    m = _tidy(m.transform(LowerConvsToMatMul()))
    for t in (AbsorbTransposeIntoMultiThreshold(), AbsorbConsecutiveTransposes(), ChannelsLastInput(), CollapseTokenGrid()):
        m = _tidy(m.transform(t))
    for t in (InferConvInpGen(), InferQuantizedMatrixVectorActivation(), InferBinaryMatrixVectorActivation(),
              AdoptMVAU(), AbsorbReshapeIntoMVAU(), SplitWideThresholds()):
        m = _tidy(m.transform(t))
    for t in _own_conversions():
        m = _tidy(m.transform(t))
    for t in (InferThresholdingLayer(), InferDuplicateStreamsLayer()):
        m = _tidy(m.transform(t))
    if check:
        check_dataflow_graph(m)
    return m


def specialize(model, fpgapart: str):
    """The ``specialized`` stage: every node an RTL backend (see module doc).

    Raises:
        xnorvit.flows.transforms.UnsupportedNodeError: a node without an RTL
            variant is left (names it).
    """
    finn_env.setup()
    from finn.transformation.fpgadataflow.set_exec_mode import SetExecMode
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    m = model.transform(SpecializeXnorvitLayers())
    m = m.transform(SpecializeLayers(fpgapart))
    # FINN's RTL ops execute their python reference under exec_mode "cppsim"
    m = m.transform(SetExecMode("cppsim"))
    # finn-plus leaves Thresholding's threshold type at its input's narrowest
    # guess (a BINARY type for a signed INT4 input: threshold 1 would read back
    # as -1 in the RTL memory); its own minimize_weight_bit_width sets the
    # type from the threshold values (also what the estimates use)
    from qonnx.custom_op.registry import getCustomOp

    for node in m.graph.node:
        if node.op_type == "Thresholding_rtl":
            getCustomOp(node).minimize_weight_bit_width(m)
    m = m.transform(UseThresholdTables())
    from finn.util.fpgadataflow import is_rtl_node

    from xnorvit.flows.transforms import UnsupportedNodeError

    for node in m.graph.node:
        if not (is_rtl_node(node) or node.domain == "xnorvit.flows.ops.rtl"):
            raise UnsupportedNodeError(node, "no RTL backend")
    return m


def hw_stages(streamlined, fpgapart: str, log: Callable[[str], None] | None = None) -> dict:
    """``{"hw": ..., "specialized": ...}`` from a streamlined graph (see module doc)."""
    from xnorvit.flows.compile import op_counts

    log = log or (lambda s: None)
    t0 = time.time()
    hw = to_hw(streamlined)
    log(f"hw: {dict(op_counts(hw))} ({time.time() - t0:.1f} s)")
    sp = specialize(hw, fpgapart)
    log(f"specialized: {dict(op_counts(sp))} ({time.time() - t0:.1f} s)")
    return {"hw": hw, "specialized": sp}
