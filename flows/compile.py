"""Compile an exported binary ViT (QONNX) into a streamlined integer FINN graph.

Stages (each a :class:`qonnx.core.modelwrapper.ModelWrapper`, returned by
:func:`streamline_stages`, every one executable with FINN's
``execute_onnx`` and checked against PyTorch by :func:`check_stage`):

``qonnx``
    The cleaned export (``xnorvit.model.export.export_qonnx_model``).
``finn``
    finn-plus ``ConvertQONNXtoFINN``: activation ``Quant``/``BipolarQuant``
    become ``MultiThreshold`` (+ scale ``Mul``/bias ``Add``), weight quantizers
    are folded into integer/bipolar initializers with a scale ``Mul``.
``prepared``
    xnorvit's own transformations where FINN has no pattern:
    :class:`~xnorvit.flows.transforms.ChannelsLastBatchNorm` (token
    BatchNorm between Transposes),
    :class:`~xnorvit.flows.transforms.ConvertBinaryAttention` (Q.K^T,
    softmax-aware binarization and P.V as one ``BinaryAttention`` node),
    :class:`~xnorvit.flows.transforms.SetTokenThresholdLayout`.
``streamlined``
    finn-plus ``Streamline`` alternated with
    :class:`~xnorvit.flows.transforms.MoveScalarMulPastConstAdd`
    (position embedding), :class:`~xnorvit.flows.transforms.MoveScalarMulPastReduce`
    and :class:`~xnorvit.flows.transforms.ConvertReduceMeanToSum` (GAP) until
    nothing changes; then qonnx ``ConvertBipolarMatMulToXnorPopcount``,
    ``Streamline`` again, :class:`~xnorvit.flows.transforms.AnnotateIntegerTypes`
    (GAP sum, popcount widths), finn-plus ``RoundAndClipThresholds``,
    :class:`~xnorvit.flows.transforms.RemoveOutputScale`,
    :class:`~xnorvit.flows.transforms.ExactThresholds` (every integer-input
    threshold recomputed from the ``qonnx`` stage's float32 chain) and
    :class:`~xnorvit.flows.transforms.IntegerInput` (the graph takes raw
    uint8 pixels; the input quantizer's thresholds are checked on all 256
    values and removed). Every BatchNorm,
    weight scale, binarization offset and quantizer scale is inside an
    integer ``MultiThreshold``; weight MatMuls are ``XnorPopcountMatMul``
    (binary) or ``MatMul``/``Conv`` on integers; the graph outputs the
    integer logits (``logits / model.logit_scale()``).

Rounding (measured): Brevitas rounds half-to-even, a MultiThreshold counts
``x >= t``. FINN derives ``t`` by dividing scales and BatchNorm out in
float32 while PyTorch evaluates the chain forward in float32; the two can
land on different sides of an integer popcount (on the calibrated 28x28
bivit-t: 4 of 50 MNIST images differed by one code, a projection threshold
at exactly 23.0). :class:`~xnorvit.flows.transforms.ExactThresholds` sets
every threshold of an integer-input MultiThreshold to the smallest integer
input whose forward float32 chain reaches the level; the streamlined stage
is then bit exact on the digits model and on the full bivit-t (the slow
test, 50 real MNIST images). Exact by construction where the QONNX source of
the chain is exact in float32 (bipolar MatMuls, attention, quantizer
outputs); the 8-bit stem convolutions, residual adds and the GAP mean are
summation-order dependent in float32 in PyTorch itself, and are mapped with
one float32 product (see :mod:`xnorvit.flows.transforms.exact`).

The streamlined graph is checked by
:func:`xnorvit.flows.transforms.check_integer_graph`, which raises
:class:`~xnorvit.flows.transforms.UnsupportedNodeError` naming the first
node it cannot map.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xnorvit.flows import finn_env

__all__ = ["STAGES", "streamline_stages", "streamline", "op_counts", "execute", "integer_logits", "check_stage", "output_scale"]

#: stage names, in order
STAGES = ("qonnx", "finn", "prepared", "streamlined")


def _tidy(model):
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    for t in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(), InferDataTypes(), RemoveUnusedTensors()):
        model = model.transform(t)
    return model


def _signature(model) -> tuple:
    return tuple((n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node)


def _load(model):
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"no QONNX model at {path}")
        return ModelWrapper(str(path))
    if isinstance(model, ModelWrapper):
        return ModelWrapper(copy.deepcopy(model.model))
    return ModelWrapper(model)


def streamline_stages(model, log: Callable[[str], None] | None = None, max_rounds: int = 8, check: bool = True,
                      exact: bool = True) -> dict:
    """Run every compiler stage on an exported bivit-t.

    Args:
        model: path of a cleaned QONNX export, an ``onnx.ModelProto`` or a
            ``ModelWrapper`` (copied, not changed).
        log: called with one line per stage (name, op counts, seconds).
        max_rounds: bound on the streamlining fixpoint loop.
        check: run :func:`~xnorvit.flows.transforms.check_integer_graph` on
            the result (default; False only to inspect a failing graph).
        exact: recompute every integer-input threshold from the ``qonnx``
            stage's float chain (:class:`~xnorvit.flows.transforms.ExactThresholds`,
            default); False keeps FINN's float32-derived thresholds.

    Returns:
        ``{stage: ModelWrapper}`` for every name in :data:`STAGES`.

    Raises:
        FileNotFoundError: ``model`` is a path that does not exist.
        xnorvit.flows.transforms.attention.AttentionPatternError: a MatMul of
            two activations that is not a binary attention.
        xnorvit.flows.transforms.UnsupportedNodeError: a node is left that is
            not an integer op (names the node and its op type).
    """
    finn_env.setup()
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from finn.transformation.streamline.reorder import MoveLinearPastEltwiseAdd, MoveMulPastFork

    from xnorvit.flows import transforms as xt

    log = log or (lambda s: None)
    stages = {}
    t0 = time.time()

    def done(name, m):
        stages[name] = m
        log(f"{name}: {dict(op_counts(m))} ({time.time() - t0:.1f} s)")

    m = _tidy(_load(model))
    done("qonnx", m)
    m = _tidy(m.transform(ConvertQONNXtoFINN()))
    done("finn", m)
    m = m.transform(xt.ChannelsLastBatchNorm())
    m = m.transform(xt.ConvertBinaryAttention())
    m = m.transform(xt.SetTokenThresholdLayout())
    m = _tidy(m)
    done("prepared", m)

    own = (MoveMulPastFork(), MoveLinearPastEltwiseAdd(), xt.MoveChannelwiseLinearPastFlatten(), xt.MoveScalarMulPastConstAdd(),
           xt.MoveScalarMulPastReduce(), xt.ConvertReduceMeanToSum(), xt.QuantizeConstantTokens())
    for _ in range(max_rounds):
        before = _signature(m)
        m = m.transform(xt.LazyTidyStreamline())
        for t in own:
            m = m.transform(t)
        m = _tidy(m)
        if _signature(m) == before:
            break
    m = m.transform(xt.AbsorbSignMulIntoConv())  # a negative patch-embedding BatchNorm gamma's sign
    m = m.transform(xt.ConvertBipolarMatMulsToXnorPopcount())
    m = m.transform(xt.LazyTidyStreamline())
    m = m.transform(xt.AnnotateIntegerTypes())
    m = m.transform(RoundAndClipThresholds())
    m = m.transform(xt.RemoveOutputScale())
    m = _tidy(m)
    if exact:
        m = m.transform(xt.ExactThresholds(stages["qonnx"]))
    m = m.transform(xt.IntegerInput(stages["qonnx"]))
    m = _tidy(m)
    m = m.transform(xt.AnnotateIntegerTypes())
    done("streamlined", m)
    if check:
        xt.check_integer_graph(m)
    return stages


def streamline(model, log: Callable[[str], None] | None = None):
    """The ``streamlined`` stage of :func:`streamline_stages` (same args and errors)."""
    return streamline_stages(model, log)["streamlined"]


def op_counts(model) -> Counter:
    """``Counter`` of op types in ``model``'s graph."""
    return Counter(n.op_type for n in model.graph.node)


def output_scale(model) -> float | None:
    """Scale removed by ``RemoveOutputScale`` (``logits = scale * output``), or None."""
    v = model.get_metadata_prop("xnorvit_output_scale")
    return None if v is None else float(v)


def execute(model, images: np.ndarray, full_context: bool = False):
    """FINN ``execute_onnx`` of ``model`` on uint8 images, one image at a time.

    Images are fed as ``to_float(images)`` (``u / 255``), or as the raw pixel
    values (float32 tensor of integers) where the graph's metadata
    ``xnorvit_input`` is ``"uint8"`` (set by
    :class:`~xnorvit.flows.transforms.IntegerInput`), transposed to
    ``(1, H, W, C)`` where ``xnorvit_input_layout`` is ``"NHWC"`` (set by
    :class:`~xnorvit.flows.to_hw.ChannelsLastInput`).

    Args:
        model: a stage from :func:`streamline_stages` (batch-1 input).
        images: ``(N, C, H, W)`` uint8.
        full_context: also return each image's execution context.

    Returns:
        ``(N, classes)`` float64 graph outputs, or ``(outputs, [context, ...])``.
    """
    finn_env.setup()
    import finn.core.onnx_exec as oxe

    from xnorvit.model.data import to_float

    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    raw = model.get_metadata_prop("xnorvit_input") == "uint8"
    nhwc = model.get_metadata_prop("xnorvit_input_layout") == "NHWC"
    outs, ctxs = [], []
    for k in range(len(images)):
        x = np.asarray(images[k : k + 1], dtype=np.float32) if raw else to_float(images[k : k + 1]).numpy()
        if nhwc:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        ctx = oxe.execute_onnx(model, {iname: x}, return_full_exec_context=full_context)
        outs.append(np.asarray(ctx[oname], dtype=np.float64).reshape(1, -1))
        if full_context:
            ctxs.append(ctx)
    out = np.concatenate(outs)
    return (out, ctxs) if full_context else out


def integer_logits(model, outputs: np.ndarray, logit_scale: float) -> np.ndarray:
    """Integer logits of a stage's outputs: the outputs themselves once the
    output scale is removed (checked to be integers), else
    ``round(outputs / logit_scale)``.

    Raises:
        ValueError: a streamlined output that is not an integer.
    """
    if output_scale(model) is not None:
        r = np.rint(outputs)
        if not np.array_equal(r, outputs):
            raise ValueError("streamlined graph output is not integer")
        return r.astype(np.int64)
    return np.rint(outputs / logit_scale).astype(np.int64)


def check_stage(model, torch_model, images: np.ndarray) -> dict:
    """Compare a stage's integer logits with PyTorch's on uint8 ``images``.

    Args:
        model: a stage from :func:`streamline_stages`.
        torch_model: the binary PyTorch model it was exported from (eval).
        images: ``(N, C, H, W)`` uint8 real images.

    Returns:
        ``{"images", "equal", "mismatches", "argmax_equal"}`` where
        ``mismatches`` counts images whose integer logits differ.
    """
    import torch

    from xnorvit.model.data import to_float

    torch_model.eval()
    with torch.no_grad():
        ref = torch_model.integer_logits(to_float(images)).numpy()
    got = integer_logits(model, execute(model, images), torch_model.logit_scale())
    bad = int(np.sum(np.any(got != ref, axis=1)))
    return {"images": int(len(images)), "equal": bad == 0, "mismatches": bad,
            "argmax_equal": bool(np.array_equal(got.argmax(1), ref.argmax(1)))}
