"""xnorvit's non-MVAU hardware ops (flows/ops: ResidualAdd, PosAdd, TokenPool,
BinaryAttention, DuplicateStreams_rtl) and their conversions
(flows/transforms/hw.py): execution against independent numpy references,
FINN shape/width/cycle interface, folding errors, bit-exactness of the
converted streamlined graph on real images, and Verilator lint of the
generated RTL wrappers."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_shapes import InferShapes

from xnorvit.flows import compile as xc
from xnorvit.flows import finn_env
from xnorvit.flows.ops.stream import RTLSIM_MESSAGE
from xnorvit.flows.to_hw import SpecializeXnorvitLayers
from xnorvit.flows.transforms.hw import (
    InferBinaryAttention,
    InferPosAdd,
    InferResidualAdd,
    InferTokenPool,
    InferXnorvitLayers,
    is_saturating_identity,
)

finn_env.setup()
import finn.core.onnx_exec as oxe  # noqa: E402

from calibrated import SMALL  # noqa: E402
PART = "xc7z020clg400-1"


# ---------------------------------------------------------------- helpers
def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _model(nodes, inputs, outputs, inits=None, dtypes=None):
    g = helper.make_graph(nodes, "g", [_vi(n, s) for n, s in inputs], [_vi(n, s) for n, s in outputs])
    m = ModelWrapper(helper.make_model(g))
    for k, v in (inits or {}).items():
        m.set_initializer(k, np.asarray(v, dtype=np.int64 if k == "ax" else np.float32))
    for k, v in (dtypes or {}).items():
        m.set_tensor_datatype(k, DataType[v])
    return m.transform(InferShapes())


def _run(m, feed):
    return oxe.execute_onnx(m, feed)[m.graph.output[0].name]


def _sat_ref(v, bits):
    """Independent clamp: python ints, one value at a time."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.array([max(lo, min(hi, int(x))) for x in np.ravel(v)], dtype=np.int64).reshape(np.shape(v))


def _signed(rng, shape, bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x = rng.integers(lo, hi + 1, size=shape)
    return np.where(rng.random(shape) < 0.3, rng.choice([lo, hi, 0, -1], size=shape), x)


def residual_model(t=4, c=8, pe=1, bits=8, name="ResidualAdd_0", rtl=False):
    node = helper.make_node("ResidualAdd_rtl" if rtl else "ResidualAdd", ["a", "b"], ["y"],
                            domain="xnorvit.flows.ops.rtl" if rtl else "xnorvit.flows.ops", name=name,
                            backend="fpgadataflow", NumChannels=c, PE=pe, numInputVectors=[1, t],
                            inputDataType=f"INT{bits}", outputDataType=f"INT{bits}")
    return _model([node], [("a", [1, t, c]), ("b", [1, t, c])], [("y", [1, t, c])],
                  dtypes={"a": f"INT{bits}", "b": f"INT{bits}"})


def pos_model(table, pe=1, bits=8, name="PosAdd_0", rtl=False):
    t, c = table.shape
    node = helper.make_node("PosAdd_rtl" if rtl else "PosAdd", ["x", "E"], ["y"],
                            domain="xnorvit.flows.ops.rtl" if rtl else "xnorvit.flows.ops", name=name,
                            backend="fpgadataflow", NumChannels=c, PE=pe, numInputVectors=[1, t],
                            inputDataType=f"INT{bits}", outputDataType=f"INT{bits}")
    return _model([node], [("x", [1, t, c])], [("y", [1, t, c])], inits={"E": table},
                  dtypes={"x": f"INT{bits}", "E": f"INT{bits}"})


def pool_model(t=5, c=8, pe=1, bits=8, name="TokenPool_0", rtl=False):
    ow = bits + int(np.ceil(np.log2(t))) if t > 1 else bits
    node = helper.make_node("TokenPool_rtl" if rtl else "TokenPool", ["x"], ["y"],
                            domain="xnorvit.flows.ops.rtl" if rtl else "xnorvit.flows.ops", name=name,
                            backend="fpgadataflow", NumChannels=c, PE=pe, numInputVectors=[1, t],
                            inputDataType=f"INT{bits}", outputDataType=f"INT{ow}")
    return _model([node], [("x", [1, t, c])], [("y", [1, c])], dtypes={"x": f"INT{bits}"})


def attention_model(t=4, c=8, heads=2, c_int=2, par_t=1, par_d=1, name="BinaryAttention_0", rtl=False, hw=True,
                    alpha=None):
    """One BinaryAttention node; ``alpha``: elastic {0, alpha} probabilities
    with the model's exp table (``exp_table(2D, D**-0.5)``) instead of SAB."""
    attrs = dict(heads=heads, c_int=c_int)
    if alpha is not None:
        from xnorvit.model.quant import exp_table

        d = c // heads
        attrs.update(binarizer="elastic", exp_table=exp_table(2 * d, d**-0.5).tolist(),
                     p_half=float(np.float32(alpha) / np.float32(2)))
    if hw:
        attrs.update(backend="fpgadataflow", NumChannels=c, numInputVectors=[1, t], inputDataType="BINARY",
                     outputDataType=f"INT{int(np.ceil(np.log2(t + 1))) + 1}", PAR_T=par_t, PAR_D=par_d)
    node = helper.make_node("BinaryAttention_rtl" if rtl else "BinaryAttention", ["q", "k", "v"], ["y"],
                            domain="xnorvit.flows.ops.rtl" if rtl else "xnorvit.flows.ops", name=name, **attrs)
    return _model([node], [(n, [1, t, c]) for n in "qkv"], [("y", [1, t, c])],
                  dtypes={n: "BINARY" for n in "qkv"})


def insert_model(t=4, n=1, c=8, pe=2, bits=8, rtl=True, seed=3):
    """One TokenInsert node with ``n`` random constant tokens."""
    k = _signed(np.random.default_rng(seed), (1, n, c), bits)
    node = helper.make_node("TokenInsert_rtl" if rtl else "TokenInsert", ["x", "K"], ["y"],
                            domain="xnorvit.flows.ops.rtl" if rtl else "xnorvit.flows.ops", name="TokenInsert_0",
                            backend="fpgadataflow", NumChannels=c, PE=pe, numInputVectors=[1, t], numConstTokens=n,
                            inputDataType=f"INT{bits}", outputDataType=f"INT{bits}")
    return _model([node], [("x", [1, t, c])], [("y", [1, n + t, c])], inits={"K": k},
                  dtypes={"x": f"INT{bits}", "K": f"INT{bits}"})


def select_model(t=5, c=8, pe=2, bits=8, index=0, rtl=True):
    """One TokenSelect node keeping token ``index``."""
    node = helper.make_node("TokenSelect_rtl" if rtl else "TokenSelect", ["x"], ["y"],
                            domain="xnorvit.flows.ops.rtl" if rtl else "xnorvit.flows.ops", name="TokenSelect_0",
                            backend="fpgadataflow", NumChannels=c, PE=pe, numInputVectors=[1, t], index=index,
                            inputDataType=f"INT{bits}", outputDataType=f"INT{bits}")
    return _model([node], [("x", [1, t, c])], [("y", [1, c])], dtypes={"x": f"INT{bits}"})


def fork_model(t=4, c=8, pe=2, n=3, bits=8, name="DuplicateStreams_0"):
    node = helper.make_node("DuplicateStreams_rtl", ["x"], [f"y{i}" for i in range(n)], domain="xnorvit.flows.ops.rtl",
                            name=name, backend="fpgadataflow", NumChannels=c, PE=pe, NumOutputStreams=n,
                            inputDataType=f"INT{bits}", numInputVectors=[1, t])
    return _model([node], [("x", [1, t, c])], [(f"y{i}", [1, t, c]) for i in range(n)], dtypes={"x": f"INT{bits}"})


# ---------------------------------------------------------------- execution vs numpy
@pytest.mark.parametrize("rtl", [False, True])
def test_residual_add_saturates_like_reference(rtl):
    rng = np.random.default_rng(0)
    m = residual_model(t=6, c=8, rtl=rtl)
    a, b = _signed(rng, (1, 6, 8), 8), _signed(rng, (1, 6, 8), 8)
    a[0, 0, :4], b[0, 0, :4] = [127, -128, 100, -100], [127, -128, 27, -28]  # exact edges and overflow
    y = _run(m, {"a": a.astype(np.float32), "b": b.astype(np.float32)})
    assert np.array_equal(y, _sat_ref(a + b, 8))
    assert list(y[0, 0, :4]) == [127, -128, 127, -128]


def test_residual_add_rejects_out_of_range_input():
    m = residual_model()
    a = np.zeros((1, 4, 8), np.float32)
    a[0, 0, 0] = 128
    with pytest.raises(ValueError, match="ResidualAdd_0.*outside INT8"):
        _run(m, {"a": a, "b": np.zeros_like(a)})


@pytest.mark.parametrize("rtl", [False, True])
def test_pos_add_matches_reference(rtl):
    rng = np.random.default_rng(1)
    table = _signed(rng, (5, 6), 8)
    m = pos_model(table, pe=3, rtl=rtl)
    x = _signed(rng, (1, 5, 6), 8)
    y = _run(m, {"x": x.astype(np.float32)})
    assert np.array_equal(y, _sat_ref(x + table[None], 8))


@pytest.mark.parametrize("rtl", [False, True])
def test_token_pool_is_exact_sum(rtl):
    rng = np.random.default_rng(2)
    m = pool_model(t=49, c=8, pe=2, rtl=rtl)
    x = _signed(rng, (1, 49, 8), 8)
    x[0, :, 0], x[0, :, 1] = -128, 127  # extremes: -6272, 6223 fit INT14
    y = _run(m, {"x": x.astype(np.float32)})
    want = np.array([[sum(int(x[0, i, ch]) for i in range(49)) for ch in range(8)]])
    assert y.shape == (1, 8) and np.array_equal(y, want)
    assert getCustomOp(m.graph.node[0]).get_output_datatype() == DataType["INT14"]


def _attention_loops(q, k, v, heads, c_int):
    """Independent reference: plain loops over bits."""
    _, t, c = q.shape
    d = c // heads
    out = np.zeros((1, t, c), np.int64)
    for h in range(heads):
        ch = range(h * d, (h + 1) * d)
        s = [[sum(1 if q[0, i, x] == k[0, j, x] else -1 for x in ch) for j in range(t)] for i in range(t)]
        for i in range(t):
            mx = max(s[i])
            for x in ch:
                out[0, i, x] = sum((1 if v[0, j, x] else -1) for j in range(t) if s[i][j] >= mx - c_int)
    return out


@pytest.mark.parametrize("rtl", [False, True])
def test_binary_attention_hw_op_matches_loops(rtl):
    rng = np.random.default_rng(3)
    m = attention_model(t=6, c=8, heads=2, c_int=2, rtl=rtl)
    q, k, v = (rng.integers(0, 2, size=(1, 6, 8)) for _ in range(3))
    y = _run(m, {"q": q.astype(np.float32), "k": k.astype(np.float32), "v": v.astype(np.float32)})
    assert np.array_equal(y, _attention_loops(q, k, v, 2, 2))


def test_fork_copies_every_output():
    m = fork_model()
    x = _signed(np.random.default_rng(4), (1, 4, 8), 8).astype(np.float32)
    ctx = oxe.execute_onnx(m, {"x": x})
    for i in range(3):
        assert np.array_equal(ctx[f"y{i}"], x)


@pytest.mark.parametrize("make", [residual_model, lambda **k: pos_model(np.zeros((4, 8)), **k), pool_model,
                                  attention_model, lambda **k: fork_model()])
def test_rtlsim_exec_mode_is_refused(make):
    m = make(rtl=True)
    getCustomOp(m.graph.node[0]).set_nodeattr("exec_mode", "rtlsim")
    feed = {i.name: np.zeros(m.get_tensor_shape(i.name), np.float32) for i in m.graph.input}
    with pytest.raises(NotImplementedError, match=RTLSIM_MESSAGE):
        oxe.execute_onnx(m, feed)


# ---------------------------------------------------------------- FINN interface
def test_stream_shapes_widths_cycles():
    r = getCustomOp(residual_model(t=49, c=64, pe=4).graph.node[0])
    assert r.get_folded_input_shape(1) == (1, 49, 16, 4) and r.get_instream_width(1) == 32
    assert r.get_outstream_width() == 32 and r.get_exp_cycles() == 49 * 16 and r.get_number_output_values() == 49 * 16
    assert r.node_res_estimation(PART)["LUT"] == 4 + 4 * 15 and r.ff_estimation() == 33

    p = getCustomOp(pos_model(np.zeros((49, 64)), pe=2).graph.node[0])
    assert p.get_instream_width(1) == 0 and p.get_normal_input_shape(1) == (49, 64)
    assert p.get_exp_cycles() == 49 * 32 and p.bram_estimation(PART) == 2  # 1568 x 16 bits: 2 RAMB18 (1Kx18)
    assert p.get_verilog_top_module_intf_names()["s_axis"] == [("in0_V", 16)]

    t = getCustomOp(pool_model(t=49, c=32, pe=4).graph.node[0])
    assert t.get_folded_output_shape() == (1, 8, 4) and t.get_outstream_width() == 4 * 14
    assert t.get_exp_cycles() == 49 * 8 and t.get_number_output_values() == 8
    assert abs(t.lut_estimation(PART) - 112) <= 5 and abs(t.ff_estimation() - 70) <= 5  # Yosys: 112 LUT, 70 FF

    a = getCustomOp(attention_model(t=49, c=64, heads=2, par_t=7, par_d=8).graph.node[0])
    assert a.get_folded_input_shape(2) == (1, 49, 1, 64) and a.get_instream_width(2) == 64
    assert a.get_outstream_width() == 64 * 7 and a.get_exp_cycles() == 49 * 7 * 4 == 1372
    assert abs(a.lut_estimation(PART) / 2 - 1540) < 100 and a.bram_estimation(PART) == 2  # Yosys per head: 1540 LUT

    f = getCustomOp(fork_model(c=8, pe=2, n=3).graph.node[0])
    assert f.get_exp_cycles() == 16 and f.lut_estimation(PART) == 10
    assert [n for n, _ in f.get_verilog_top_module_intf_names()["m_axis"]] == ["out0_V", "out1_V", "out2_V"]


@pytest.mark.parametrize("m, what", [
    (lambda: residual_model(c=8, pe=3), r"ResidualAdd_0 \(ResidualAdd\): PE=3 does not divide NumChannels=8"),
    (lambda: pos_model(np.zeros((4, 6)), pe=4), r"PosAdd_0 \(PosAdd\): PE=4 does not divide NumChannels=6"),
    (lambda: pool_model(c=8, pe=0), r"TokenPool_0 \(TokenPool\): PE=0 does not divide NumChannels=8"),
    (lambda: fork_model(c=8, pe=3), r"DuplicateStreams_0 \(DuplicateStreams_rtl\): PE=3 does not divide NumChannels=8"),
    (lambda: attention_model(t=6, par_t=4), r"BinaryAttention_0 \(BinaryAttention\): PAR_T=4 does not divide .*T=6"),
    (lambda: attention_model(c=8, heads=2, par_d=3), r"BinaryAttention_0 \(BinaryAttention\): PAR_D=3 does not divide .*D=4"),
])
def test_folding_errors_name_the_node(m, what):
    inst = getCustomOp(m().graph.node[0])
    with pytest.raises(ValueError, match=what):
        inst.get_folded_input_shape()
    with pytest.raises(ValueError, match=what):
        inst.get_exp_cycles()
    if not inst.onnx_node.op_type.startswith("DuplicateStreams"):
        assert any("does not divide" in s for s in inst.verify_node())


def test_plain_attention_node_executes_but_has_no_stream_shape():
    m = attention_model(hw=False)
    inst = getCustomOp(m.graph.node[0])
    with pytest.raises(ValueError, match="InferBinaryAttention"):
        inst.get_folded_input_shape()
    m = m.transform(InferBinaryAttention())
    inst = getCustomOp(m.graph.node[0])
    assert inst.get_nodeattr("backend") == "fpgadataflow" and inst.get_folded_input_shape() == (1, 4, 1, 8)
    assert inst.get_output_datatype() == DataType["INT4"]


# ---------------------------------------------------------------- conversions on hand-made graphs
def _add_mt_graph(thresholds, const=None, out_bias=-128.0, in_dt="INT8"):
    """Add(a, b|const) -> MultiThreshold(INT8) on (1, 4, 8)."""
    b_in = "c" if const is not None else "b"
    nodes = [helper.make_node("Add", ["a", b_in], ["s"], name="Add_0"),
             helper.make_node("MultiThreshold", ["s", "thr"], ["y"], domain="qonnx.custom_op.general", name="MT_0",
                              out_dtype="INT8", out_bias=out_bias, data_layout="NWC")]
    inputs = [("a", [1, 4, 8])] + ([] if const is not None else [("b", [1, 4, 8])])
    inits = {"thr": thresholds}
    if const is not None:
        inits["c"] = const
    return _model(nodes, inputs, [("y", [1, 4, 8])], inits=inits, dtypes={"a": in_dt, "b": in_dt, "s": "INT32"})


SAT_THR = np.arange(-127, 128, dtype=np.float32)[None]  # [1, 255]: MT(x) = clip(x, -128, 127)


def test_saturating_identity_check():
    m = _add_mt_graph(SAT_THR)
    assert is_saturating_identity(m, m.graph.node[1], -256, 254) == 8
    bad = SAT_THR.copy()
    bad[0, 100] += 1
    m = _add_mt_graph(bad)
    assert is_saturating_identity(m, m.graph.node[1], -256, 254) is None


def test_infer_residual_add_on_identity_only():
    m = _add_mt_graph(SAT_THR).transform(InferResidualAdd())
    assert [n.op_type for n in m.graph.node] == ["ResidualAdd"]
    rng = np.random.default_rng(5)
    a, b = _signed(rng, (1, 4, 8), 8), _signed(rng, (1, 4, 8), 8)
    assert np.array_equal(_run(m, {"a": a.astype(np.float32), "b": b.astype(np.float32)}), _sat_ref(a + b, 8))
    bad = SAT_THR.copy()
    bad[0, 3] += 0.5  # differs from the clamp at one input value (-124) only
    m = _add_mt_graph(bad).transform(InferResidualAdd())
    assert [n.op_type for n in m.graph.node] == ["Add", "MultiThreshold"]
    m = _add_mt_graph(SAT_THR, out_bias=-127.0).transform(InferResidualAdd())  # shifted: not the identity
    assert [n.op_type for n in m.graph.node] == ["Add", "MultiThreshold"]


def test_infer_pos_add_broadcast_table():
    rng = np.random.default_rng(6)
    table = _signed(rng, (1, 1, 8), 4)  # broadcast over tokens
    m0 = _add_mt_graph(SAT_THR, const=table)
    m = m0.transform(InferPosAdd())
    assert [n.op_type for n in m.graph.node] == ["PosAdd"]
    assert m.get_initializer(m.graph.node[0].input[1]).shape == (4, 8)
    x = _signed(rng, (1, 4, 8), 8).astype(np.float32)
    assert np.array_equal(_run(m, {"a": x}), _run(m0, {"a": x}))
    assert np.array_equal(_run(m, {"a": x}), _sat_ref(x + table, 8))
    # a non-integer table is left alone
    m = _add_mt_graph(SAT_THR, const=table + 0.5).transform(InferPosAdd())
    assert [n.op_type for n in m.graph.node] == ["Add", "MultiThreshold"]


def _reduce_graph(keepdims=0, dt="INT8"):
    node = helper.make_node("ReduceSum", ["x", "ax"], ["y"], name="ReduceSum_0", keepdims=keepdims)
    return _model([node], [("x", [1, 5, 8])], [("y", [1, 8] if not keepdims else [1, 1, 8])],
                  inits={"ax": np.array([1])}, dtypes={"x": dt})


def test_infer_token_pool_only_token_sum_of_signed():
    m = _reduce_graph().transform(InferTokenPool())
    assert [n.op_type for n in m.graph.node] == ["TokenPool"]
    assert m.get_tensor_datatype("y") == DataType["INT11"]
    assert [n.op_type for n in _reduce_graph(keepdims=1).transform(InferTokenPool()).graph.node] == ["ReduceSum"]
    assert [n.op_type for n in _reduce_graph(dt="UINT8").transform(InferTokenPool()).graph.node] == ["ReduceSum"]


def test_infer_binary_attention_rejects_non_binary_inputs():
    m = attention_model(hw=False)
    m.set_tensor_datatype("q", DataType["BIPOLAR"])
    with pytest.raises(ValueError, match="BinaryAttention_0.*BINARY"):
        m.transform(InferBinaryAttention())


# ---------------------------------------------------------------- streamlined graph of a calibrated model
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from calibrated import calibrated_bivit

    from xnorvit.model.export import export_qonnx_model

    model, d = calibrated_bivit("digits", **SMALL)
    path = tmp_path_factory.mktemp("hw") / "small.onnx"
    export_qonnx_model(model, path)
    return d, xc.streamline(path)


def test_streamlined_graph_converts_and_stays_bit_exact(small):
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.util.fpgadataflow import is_fpgadataflow_node

    d, m0 = small
    m = ModelWrapper(copy.deepcopy(m0.model)).transform(InferXnorvitLayers())
    ops = xc.op_counts(m)
    assert ops["PosAdd"] == 1 and ops["ResidualAdd"] == 2 * SMALL["depth"] and ops["TokenPool"] == 1
    assert ops["BinaryAttention"] == SMALL["depth"] and "Add" not in ops and "ReduceSum" not in ops
    m = m.transform(InferDuplicateStreamsLayer())
    forks = [n for n in m.graph.node if n.op_type == "DuplicateStreams"]
    assert sorted(getCustomOp(n).get_nodeattr("NumOutputStreams") for n in forks) == [2] * (2 * SMALL["depth"]) + [3] * SMALL["depth"]
    m = m.transform(SpecializeXnorvitLayers())
    ours = [n for n in m.graph.node if n.domain == "xnorvit.flows.ops.rtl"]
    assert len(ours) == 1 + 2 + 1 + 1 + len(forks) and all(is_fpgadataflow_node(n) for n in ours)
    for n in ours:
        inst = getCustomOp(n)
        assert inst.verify_node() in (None, []), (n.name, inst.verify_node())
        assert inst.get_exp_cycles() > 0
    images = d.x_test[:40]
    before, after = xc.execute(m0, images), xc.execute(m, images)
    assert np.array_equal(before, after)


# ---------------------------------------------------------------- RTL wrappers
LINT_CASES = {
    "residual": lambda: residual_model(t=4, c=12, pe=3, bits=6, rtl=True),  # 18-bit lanes: padded ports
    "pos": lambda: pos_model(_signed(np.random.default_rng(7), (4, 8), 8), pe=2, rtl=True),
    "pool": lambda: pool_model(t=5, c=8, pe=4, rtl=True),
    "fork": lambda: fork_model(c=8, pe=2, n=3),
    "attention": lambda: attention_model(t=4, c=8, heads=2, c_int=2, par_t=2, par_d=2, rtl=True),
}


@pytest.mark.parametrize("case", sorted(LINT_CASES))
def test_generated_wrapper_lints(case, tmp_path):
    from xnorvit.flows.ops.rtl.common import lint_wrapper

    m = LINT_CASES[case]()
    node = m.graph.node[0]
    inst = getCustomOp(node)
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    inst.generate_hdl(m, PART, 10.0)
    top = inst.get_nodeattr("gen_top_module")
    assert top == node.name and (tmp_path / f"{top}.sv").exists()
    files = inst.get_rtl_file_list(abspath=True)
    assert all(tmp_path.joinpath(f).exists() for f in inst.get_rtl_file_list())
    text = (tmp_path / f"{top}.sv").read_text()
    for port in ("ap_clk", "ap_rst_n", "in0_V_TDATA", "in0_V_TVALID", "in0_V_TREADY", "out0_V_TDATA"):
        assert port in text
    assert any("create_bd_cell" in c for c in inst.code_generation_ipi()) and len(files) >= 2
    lint_wrapper(inst)


def test_pos_table_file_matches_kernel_format(tmp_path):
    table = np.array([[1, -1, 127, -128], [0, 2, -3, 4]])
    m = pos_model(table, pe=2, rtl=True)
    inst = getCustomOp(m.graph.node[0])
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    inst.generate_hdl(m, PART, 10.0)
    assert (tmp_path / "PosAdd_0_pos.hex").read_text().split() == ["ff01", "807f", "0200", "04fd"]


def test_wrapper_refuses_bad_folding_and_names(tmp_path):
    m = residual_model(c=8, pe=3, rtl=True)
    inst = getCustomOp(m.graph.node[0])
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    with pytest.raises(ValueError, match="PE=3 does not divide"):
        inst.generate_hdl(m, PART, 10.0)
    m = residual_model(name="bad-name", rtl=True)
    inst = getCustomOp(m.graph.node[0])
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    with pytest.raises(ValueError, match="not a valid HDL module name"):
        inst.generate_hdl(m, PART, 10.0)


# ---------------------------------------------------------------- cocotb: wrapper == execute_node
def _beats(x: np.ndarray, folded, bits: int) -> list[int]:
    """FINN packing: folded (..., PE) lanes of ``bits`` two's complement, LSB-first, one beat per row."""
    lanes = np.asarray(x, dtype=np.int64).reshape(-1, folded[-1])
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (k * bits) for k, v in enumerate(row)) for row in lanes]


def _shim(inst, ins, outs) -> str:
    """Module ``xv_shim`` with the kernels' port names around the FINN-port wrapper."""
    ports = ["input logic clk", "input logic rst"]
    conns = [".ap_clk(clk)", ".ap_rst_n(~rst)"]
    for i, w in enumerate(ins):
        ports += [f"input logic [{w - 1}:0] s_axis{i}_tdata", f"input logic s_axis{i}_tvalid", f"output logic s_axis{i}_tready"]
        conns += [f".in{i}_V_TDATA(s_axis{i}_tdata)", f".in{i}_V_TVALID(s_axis{i}_tvalid)", f".in{i}_V_TREADY(s_axis{i}_tready)"]
    for j, w in enumerate(outs):
        ports += [f"output logic [{w - 1}:0] m_axis{j}_tdata", f"output logic m_axis{j}_tvalid", f"input logic m_axis{j}_tready"]
        conns += [f".out{j}_V_TDATA(m_axis{j}_tdata)", f".out{j}_V_TVALID(m_axis{j}_tvalid)", f".out{j}_V_TREADY(m_axis{j}_tready)"]
    param = getattr(type(inst), "mem_dir_param", None)  # memories: the node's own directory
    mem = f' #(.{param}("{Path(inst.get_nodeattr("code_gen_dir_ipgen")).resolve()}/"))' if param else ""
    return ("module xv_shim (\n    " + ",\n    ".join(ports) + "\n);\n    "
            + f"{inst.get_nodeattr('gen_top_module')}{mem} u_dut (\n        " + ",\n        ".join(conns) + ");\nendmodule\n")


COCOTB_CASES = {
    "residual": lambda: residual_model(t=4, c=12, pe=3, bits=6, rtl=True),
    "pos": lambda: pos_model(_signed(np.random.default_rng(7), (4, 8), 8), pe=2, rtl=True),
    "pool": lambda: pool_model(t=5, c=8, pe=4, rtl=True),
    "fork": lambda: fork_model(c=8, pe=2, n=3),
    "attention": lambda: attention_model(t=4, c=8, heads=2, c_int=2, par_t=2, par_d=2, rtl=True),
}


def wrapper_rtl(m, case_dir: Path, frames: int = 3, seed: int = 11) -> list[dict]:
    """Simulate the generated wrapper of ``m``'s one node (cocotb + Verilator,
    ``frames`` frames of random data, idle/backpressure combinations): every
    output beat must equal the op's execute_node. Returns each frame's feed
    (graph input name -> values); cached Verilator build per ``case_dir``."""
    from xnorvit.flows.sim import run_cocotb

    inst = getCustomOp(m.graph.node[0])
    d = Path(case_dir)
    d.mkdir(parents=True, exist_ok=True)
    inst.set_nodeattr("code_gen_dir_ipgen", str(d))
    inst.generate_hdl(m, PART, 10.0)
    rng = np.random.default_rng(seed)
    streamed = [i for i in range(len(m.graph.node[0].input)) if inst.get_instream_width(i)]
    ins, outs, feeds = [[] for _ in streamed], [[] for _ in m.graph.node[0].output], []
    for _ in range(frames):
        feed = {}
        for i in streamed:
            name, dt = m.graph.node[0].input[i], inst.get_input_datatype(i)
            shape = inst.get_normal_input_shape(i)
            feed[name] = (rng.integers(0, 2, size=shape) if dt == DataType["BINARY"]
                          else _signed(rng, shape, dt.bitwidth())).astype(np.float32)
            ins[i].extend(_beats(feed[name], inst.get_folded_input_shape(i), dt.bitwidth()))
        ctx = oxe.execute_onnx(m, feed, return_full_exec_context=True)
        for j, name in enumerate(m.graph.node[0].output):
            outs[j].extend(_beats(ctx[name], inst.get_folded_output_shape(j), inst.get_output_datatype(j).bitwidth()))
        feeds.append(feed)
    shim = d / "xv_shim.sv"
    shim.write_text(_shim(inst, [inst.get_instream_width_padded(i) for i in streamed],
                          [inst.get_outstream_width_padded(j) for j in range(len(outs))]))
    run_cocotb("xv_shim", [*inst.get_rtl_file_list(abspath=True), shim], test_module="hw_wrapper_tb",
               test_params={"inputs": ins, "outputs": outs}, test_dir=d / "run")
    return feeds


@pytest.mark.parametrize("case", sorted(COCOTB_CASES))
def test_wrapper_cocotb(case, monkeypatch):
    """The generated wrapper, simulated (cocotb + Verilator, 3 frames of random
    data, idle/backpressure combinations), streams exactly what the op's
    execute_node computes."""
    from xnorvit.flows.sim import DEFAULT_CACHE

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    wrapper_rtl(COCOTB_CASES[case](), Path(DEFAULT_CACHE) / "hw_ops" / case)  # fixed dir: cached Verilator build
