"""Single-node FINN models: golden references and estimates for RTL kernels.

Builds one-node QONNX graphs of FINN's own ops (``MVAU``, ``Thresholding``),
executes them with FINN's python execution (``execute_onnx``) and reads
FINN's resource/cycle estimates of their HLS/RTL backends. Used by the
kernel testbenches (``rtl_tests/``) and ``benchmarks/kernels.py``.

All functions call :func:`xnorvit.flows.finn_env.setup` first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnorvit.flows import finn_env

#: FPGA part used for FINN's estimates (PYNQ-Z1/Z2).
DEFAULT_PART = "xc7z020clg400-1"


def _model(op_type: str, domain: str, inputs: dict, out_shape: Sequence[int], attrs: dict, dtypes: dict):
    finn_env.setup()
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    names = list(inputs)
    inp = helper.make_tensor_value_info(names[0], TensorProto.FLOAT, list(inputs[names[0]]))
    outp = helper.make_tensor_value_info("outp", TensorProto.FLOAT, list(out_shape))
    node = helper.make_node(op_type, names, ["outp"], domain=domain, backend="fpgadataflow", **attrs)
    graph = helper.make_graph([node], f"single_{op_type}", [inp], [outp])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="xnorvit"))
    for name, value in list(inputs.items())[1:]:
        model.set_initializer(name, np.asarray(value, dtype=np.float32))
    for name, dt in dtypes.items():
        model.set_tensor_datatype(name, DataType[dt])
    return model


def mvau_model(
    weights: np.ndarray,
    thresholds: np.ndarray | None,
    pe: int,
    simd: int,
    n_vectors: int = 1,
    input_dtype: str = "BINARY",
    weight_dtype: str = "BINARY",
    output_dtype: str | None = None,
    binary_xnor: bool = True,
    backend: str = "",
    extra_attrs: dict | None = None,
):
    """A one-node ModelWrapper holding FINN's ``MVAU`` (``MVAU_hls`` for ``backend="hls"``).

    Args:
        weights: ``(MW, MH)`` weights in FINN's layout (bits for BINARY).
        thresholds: ``(MH, N)`` thresholds, or None for ``noActivation=1``.
        pe, simd: folding.
        n_vectors: ``numInputVectors`` (tokens); input shape ``(n_vectors, MW)``.
        input_dtype, weight_dtype: FINN DataType names.
        output_dtype: FINN DataType name of the output; default UINT/INT wide
            enough for the result.
        binary_xnor: ``binaryXnorMode`` (popcount of XNOR for BINARY operands).
        backend: "" (abstract ``MVAU``, executable) or "hls" (``MVAU_hls``, for
            estimates).
        extra_attrs: more node attributes (e.g. ``mem_mode``, ``ram_style``).
    """
    w = np.asarray(weights)
    mw, mh = w.shape
    n_act = 0 if thresholds is None else np.asarray(thresholds).shape[1]
    if output_dtype is None:
        output_dtype = f"UINT{max(1, int(np.ceil(np.log2(n_act + 1))))}" if n_act else "INT32"
        if output_dtype == "UINT1":
            output_dtype = "BINARY"
    attrs = dict(
        MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=input_dtype, weightDataType=weight_dtype,
        outputDataType=output_dtype, ActVal=0, binaryXnorMode=int(binary_xnor),
        noActivation=int(thresholds is None), numInputVectors=[n_vectors],
    )
    attrs.update(extra_attrs or {})
    inputs = {"inp": (n_vectors, mw), "weights": w}
    if thresholds is not None:
        inputs["thresh"] = np.asarray(thresholds)
    op_type = "MVAU_hls" if backend == "hls" else "MVAU"
    domain = "finn.custom_op.fpgadataflow.hls" if backend == "hls" else "finn.custom_op.fpgadataflow"
    return _model(op_type, domain, inputs, (n_vectors, mh), attrs,
                  {"inp": input_dtype, "weights": weight_dtype, "outp": output_dtype})


def execute(model, x: np.ndarray) -> np.ndarray:
    """Run FINN's python execution of a one-node model on input ``x`` (any shape of the input)."""
    import finn.core.onnx_exec as oxe

    iname = model.graph.input[0].name
    shape = model.get_tensor_shape(iname)
    out = oxe.execute_onnx(model, {iname: np.asarray(x, dtype=np.float32).reshape(shape)})
    return out[model.graph.output[0].name]


def execute_mvau_xnor(weights: np.ndarray, x: np.ndarray, thresholds: np.ndarray | None = None,
                      pe: int = 1, simd: int = 1) -> np.ndarray:
    """FINN ``MVAU`` (binaryXnorMode) on bits ``x`` ``(T, MW)``: returns ``(T, MH)`` int64.

    The result is FINN's popcount of XNOR (or the count of popcount
    thresholds met when ``thresholds`` is given).
    """
    x = np.asarray(x)
    model = mvau_model(weights, thresholds, pe, simd, n_vectors=x.shape[0])
    return execute(model, x).reshape(x.shape[0], -1).astype(np.int64)


def mvau_hls_estimates(mw: int, mh: int, pe: int, simd: int, n_vectors: int = 1,
                       n_thresh: int = 1, part: str = DEFAULT_PART, **attrs) -> dict:
    """FINN's estimates for ``MVAU_hls`` in binaryXnorMode at this folding.

    Returns:
        ``{"lut": int, "bram18": int, "dsp": int, "exp_cycles": int}`` with LUTs
        and RAMB18 counts from FINN's analytical models and expected cycles
        per frame (``n_vectors`` vectors) from ``get_exp_cycles``.
    """
    from qonnx.custom_op.registry import getCustomOp

    w = np.zeros((mw, mh))
    t = np.zeros((mh, n_thresh)) if n_thresh else None
    model = mvau_model(w, t, pe, simd, n_vectors=n_vectors, backend="hls", extra_attrs=attrs)
    op = getCustomOp(model.graph.node[0])
    return {
        "lut": int(op.lut_estimation(part)),
        "bram18": int(op.bram_estimation(part)),
        "dsp": int(op.dsp_estimation(part)),
        "exp_cycles": int(op.get_exp_cycles()),
    }
