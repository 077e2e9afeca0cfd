"""HLS C simulation (hls/*.hpp through xnorvit.flows.hls, issue #15 part 3).

Every kernel, for at least three parameter sets, on the same data as an RTL
simulation of that op under random idle/backpressure:

* MVAU (xnor, int) and Thresholding: the data of the RTL kernel tests
  (rtl_tests/test_mvau_*.py, test_thresholding.py); C simulation equals
  FINN's node execution and what the RTL streamed, bit for bit.
* ResidualAdd, PosAdd, TokenPool, DuplicateStreams, BinaryAttention: the
  op's generated RTL wrapper simulated by tests/test_hw_ops.py's
  ``wrapper_rtl`` (which asserts the RTL streams exactly execute_node's
  beats); C simulation of the same frames equals execute_node.
* FMPadding, ConvolutionInputGenerator (finn-rtllib RTL): a one-node graph
  stitched and simulated like an accelerator; C simulation equals FINN's
  execution and the RTL output.
* The whole tiny bivit (the session's tiny digits build) on 20 real test
  images: C simulation of ``hw.onnx`` equals PyTorch's integer logits, FINN
  execution and the stitched RTL's output.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")

PART = "xc7z020clg400-1"


def _data_dir(kind: str, case_id: str) -> Path:
    from xnorvit.flows.sim import DEFAULT_CACHE

    return DEFAULT_CACHE / "data" / kind / case_id


def _rtl(module, case, case_id: str, kind: str):
    """Run the RTL test of ``case`` (cached build); return its data and what the RTL streamed."""
    from xnorvit.flows.sim import run_cocotb

    data_dir = _data_dir(kind, case_id)
    if kind == "thresholding":
        hdl, tp = module.make_case(case, data_dir)
        sources, top = module.sources(), "thresholding_axis"
    else:
        hdl, tp = module.make_case(*case, data_dir=data_dir)
        sources, top = module.SOURCES, kind
    run_cocotb(top, sources, module.__name__, parameters=hdl, test_params=tp, test_dir=data_dir)
    return dict(np.load(data_dir / "data.npz")), np.load(data_dir / "rtl_out_random_random.npy")


# ----------------------------------------------------------------- MVAU
XNOR_CASES = [(8, 4, 1, 1, 0, 0, 2), (24, 12, 3, 6, 0, 3, 2), (64, 16, 1, 4, 0, 15, 1)]
INT_CASES = [(8, 4, 1, 1, 8, 1, 1, 1, 0, 2), (24, 12, 4, 8, 8, 1, 8, 1, 15, 2), (36, 10, 5, 3, 3, 0, 4, 0, 7, 2),
             (16, 8, 2, 4, 4, 1, 8, 1, 0, 2, 0)]


@pytest.mark.parametrize("case", XNOR_CASES, ids=lambda c: "MW{}-MH{}-PE{}-SIMD{}-pop-N{}-T{}".format(*c[:4], c[5], c[6]))
def test_mvau_xnor_csim_equals_execute_node_and_rtl(case):
    import test_mvau_xnor as mod

    from xnorvit.flows import finn_ref
    from xnorvit.flows.hls import csim_node

    d, rtl = _rtl(mod, case, mod._id(case), "mvau_xnor")
    mw, mh, pe, simd, _, n, t = case
    model = finn_ref.mvau_model(d["w"], d["t"] if n else None, pe, simd, n_vectors=t)
    finn = finn_ref.execute(model, d["x"]).reshape(t, mh).astype(np.int64)
    hls = csim_node(model, model.graph.node[0], d["x"].reshape(1, t, mw)).reshape(t, mh)
    assert np.array_equal(finn, d["finn"])
    assert np.array_equal(hls, finn), (hls, finn)
    assert np.array_equal(hls, rtl), (hls, rtl)


@pytest.mark.parametrize("case", INT_CASES, ids=lambda c: "-".join(map(str, c)))
def test_mvau_int_csim_equals_execute_node_and_rtl(case):
    import test_mvau_int as mod

    from xnorvit.flows import finn_ref
    from xnorvit.flows.hls import csim_node

    d, rtl = _rtl(mod, case, mod._id(case), "mvau_int")
    mw, mh, pe, simd, in_w, in_signed, w_w, w_signed, n, t = case[:10]
    idt = f"{'INT' if in_signed else 'UINT'}{in_w}"
    wdt = "BIPOLAR" if w_w == 1 else f"{'INT' if w_signed else 'UINT'}{w_w}"
    model = finn_ref.mvau_model(d["w"], d["t"] if n else None, pe, simd, n_vectors=t, input_dtype=idt,
                                weight_dtype=wdt, binary_xnor=False)
    finn = finn_ref.execute(model, d["x"]).reshape(t, mh).astype(np.int64)
    hls = csim_node(model, model.graph.node[0], d["x"].reshape(1, t, mw)).reshape(t, mh)
    assert np.array_equal(finn, d["finn"])
    assert np.array_equal(hls, finn), (hls, finn)
    assert np.array_equal(hls, rtl), (hls, rtl)


# ----------------------------------------------------------------- Thresholding
THRESH_CASES = [(4, 1, 8, 1, 3, 0, 3, False), (12, 3, 8, 1, 15, -8, 2, False), (24, 4, 10, 1, 1, 0, 2, False),
                (10, 5, 5, 0, 3, 0, 3, True)]


@pytest.mark.parametrize("case", THRESH_CASES, ids=lambda c: "-".join(map(str, c)))
def test_thresholding_csim_equals_execute_node_and_rtl(case):
    import test_thresholding as mod

    from xnorvit.flows import finn_ref
    from xnorvit.flows.hls import csim_node

    d, rtl = _rtl(mod, case, mod._id(case), "thresholding")
    c, pe, wi, signed, n, bias, tokens, _ = case
    idt, odt = mod.finn_dtypes(wi, bool(signed), n, bias)
    attrs = dict(PE=pe, NumChannels=c, numSteps=n, inputDataType=idt, weightDataType=idt, outputDataType=odt,
                 ActVal=bias, numInputVectors=[tokens], exec_mode="cppsim")
    model = finn_ref._model("Thresholding_rtl", "finn.custom_op.fpgadataflow.rtl", {"inp": (tokens, c), "thresh": d["t"]},
                            (tokens, c), attrs, {"inp": idt, "thresh": idt, "outp": odt})
    model.graph.node[0].name = "Thresholding_rtl_0"
    finn = finn_ref.execute(model, d["x"]).reshape(tokens, c).astype(np.int64)
    hls = csim_node(model, model.graph.node[0], d["x"])
    assert np.array_equal(finn, d["finn"])
    assert np.array_equal(hls, finn), (hls, finn)
    assert np.array_equal(hls, rtl), (hls, rtl)


# ----------------------------------------------------------------- xnorvit stream ops and attention
def _h():
    import test_hw_ops

    return test_hw_ops


def _table(t, c, bits):
    return _h()._signed(np.random.default_rng(5), (t, c), bits)


WRAPPER_CASES = {
    "residual-T4-C12-PE3-W6": lambda: _h().residual_model(t=4, c=12, pe=3, bits=6, rtl=True),
    "residual-T3-C8-PE8-W8": lambda: _h().residual_model(t=3, c=8, pe=8, bits=8, rtl=True),
    "residual-T5-C6-PE1-W4": lambda: _h().residual_model(t=5, c=6, pe=1, bits=4, rtl=True),
    "pos-T4-C8-PE2-W8": lambda: _h().pos_model(_table(4, 8, 8), pe=2, rtl=True),
    "pos-T3-C6-PE3-W5": lambda: _h().pos_model(_table(3, 6, 5), pe=3, bits=5, rtl=True),
    "pos-T5-C4-PE1-W8": lambda: _h().pos_model(_table(5, 4, 8), pe=1, rtl=True),
    "pool-T5-C8-PE4-W8": lambda: _h().pool_model(t=5, c=8, pe=4, rtl=True),
    "pool-T4-C6-PE1-W6": lambda: _h().pool_model(t=4, c=6, pe=1, bits=6, rtl=True),
    "pool-T7-C4-PE2-W4": lambda: _h().pool_model(t=7, c=4, pe=2, bits=4, rtl=True),
    "fork-T4-C8-PE2-N3-W8": lambda: _h().fork_model(t=4, c=8, pe=2, n=3, bits=8),
    "fork-T3-C6-PE6-N2-W4": lambda: _h().fork_model(t=3, c=6, pe=6, n=2, bits=4),
    "fork-T2-C4-PE1-N2-W3": lambda: _h().fork_model(t=2, c=4, pe=1, n=2, bits=3),
    "attention-T4-C8-H2-c2-PT2-PD2": lambda: _h().attention_model(t=4, c=8, heads=2, c_int=2, par_t=2, par_d=2, rtl=True),
    "attention-T6-C8-H1-c0-PT1-PD1": lambda: _h().attention_model(t=6, c=8, heads=1, c_int=0, par_t=1, par_d=1, rtl=True),
    "attention-T5-C12-H3-c3-PT5-PD2": lambda: _h().attention_model(t=5, c=12, heads=3, c_int=3, par_t=5, par_d=2,
                                                                    rtl=True),
    "elastic-T6-C8-H2-PT2-PD2": lambda: _h().attention_model(t=6, c=8, heads=2, c_int=0, par_t=2, par_d=2, rtl=True,
                                                              alpha=1 / 6),
    "elastic-T5-C12-H3-PT5-PD4": lambda: _h().attention_model(t=5, c=12, heads=3, c_int=0, par_t=5, par_d=4,
                                                               rtl=True, alpha=0.5),
    "insert-T4-N1-C8-PE2-W8": lambda: _h().insert_model(t=4, n=1, c=8, pe=2, bits=8),
    "insert-T3-N2-C6-PE6-W5": lambda: _h().insert_model(t=3, n=2, c=6, pe=6, bits=5),
    "select-T5-C8-PE2-idx0": lambda: _h().select_model(t=5, c=8, pe=2, index=0),
    "select-T4-C6-PE3-idx3-W4": lambda: _h().select_model(t=4, c=6, pe=3, bits=4, index=3),
}


@pytest.mark.parametrize("case", sorted(WRAPPER_CASES))
def test_stream_op_csim_equals_execute_node_and_rtl(case):
    import finn.core.onnx_exec as oxe

    from xnorvit.flows.hls import csim_node
    from xnorvit.flows.sim import DEFAULT_CACHE

    m = WRAPPER_CASES[case]()
    node = m.graph.node[0]
    feeds = _h().wrapper_rtl(m, Path(DEFAULT_CACHE) / "hls_rtl" / case, frames=3, seed=17)  # asserts RTL == execute_node
    want = [np.concatenate([oxe.execute_onnx(m, f)[o] for f in feeds]) for o in node.output]
    streamed = [t for t in node.input if m.get_initializer(t) is None]
    got = csim_node(m, node, [np.concatenate([f[t] for f in feeds]) for t in streamed])
    got = got if isinstance(got, list) else [got]
    for o, g, w in zip(node.output, got, want):
        assert np.array_equal(g, w.astype(np.int64)), f"{case} output {o}: C sim\n{g}\n!= execute_node\n{w}"


# ----------------------------------------------------------------- finn-rtllib: padding, sliding window
def _fmpad(h, w, pad, c, simd, dt):
    from xnorvit.flows import finn_ref

    oh, ow = h + pad[0] + pad[2], w + pad[1] + pad[3]
    return finn_ref._model("FMPadding_rtl", "finn.custom_op.fpgadataflow.rtl", {"inp": (1, h, w, c)}, (1, oh, ow, c),
                           dict(ImgDim=[h, w], Padding=list(pad), NumChannels=c, SIMD=simd, inputDataType=dt,
                                numInputVectors=1, exec_mode="cppsim"), {"inp": dt, "outp": dt})


def _swg(ifm, k, c, simd, stride, dt, parallel=0):
    from xnorvit.flows import finn_ref

    ofm = [(ifm[i] - k[i]) // stride[i] + 1 for i in range(2)]
    return finn_ref._model("ConvolutionInputGenerator_rtl", "finn.custom_op.fpgadataflow.rtl", {"inp": (1, *ifm, c)},
                           (1, *ofm, k[0] * k[1] * c),
                           dict(ConvKernelDim=list(k), IFMChannels=c, IFMDim=list(ifm), OFMDim=ofm, SIMD=simd,
                                Stride=list(stride), Dilation=[1, 1], depthwise=0, inputDataType=dt, outputDataType=dt,
                                parallel_window=parallel, exec_mode="cppsim"), {"inp": dt, "outp": dt})


FINN_CASES = {
    "fmpad-5x6-C4-SIMD2-pad1220-UINT3": lambda: _fmpad(5, 6, (1, 2, 2, 0), 4, 2, "UINT3"),
    "fmpad-8x8-C1-SIMD1-pad1111-UINT8": lambda: _fmpad(8, 8, (1, 1, 1, 1), 1, 1, "UINT8"),
    "fmpad-4x3-C6-SIMD3-pad0110-INT4": lambda: _fmpad(4, 3, (0, 1, 1, 0), 6, 3, "INT4"),
    "swg-10x10-K3-C1-SIMD1-S1-UINT8": lambda: _swg((10, 10), (3, 3), 1, 1, (1, 1), "UINT8"),
    "swg-8x8-K2-C4-SIMD1-S2-UINT4": lambda: _swg((8, 8), (2, 2), 4, 1, (2, 2), "UINT4"),
    "swg-6x7-K3-C6-SIMD3-S1x2-INT2": lambda: _swg((6, 7), (3, 3), 6, 3, (1, 2), "INT2"),
    "swg-10x10-K3-C1-SIMD1-S1-parallel-UINT8": lambda: _swg((10, 10), (3, 3), 1, 1, (1, 1), "UINT8", parallel=1),
}


@pytest.mark.parametrize("case", sorted(FINN_CASES))
def test_finn_rtllib_op_csim_equals_execution_and_rtl(case):
    import finn.core.onnx_exec as oxe
    from qonnx.core.datatype import DataType

    from xnorvit.flows import stitch as xs
    from xnorvit.flows import verify as xv
    from xnorvit.flows.hls import csim_node
    from xnorvit.flows.sim import DEFAULT_CACHE, SimulationError

    m = FINN_CASES[case]()
    node = m.graph.node[0]
    node.name = node.op_type + "_0"
    dt = m.get_tensor_datatype("inp")
    lo, hi = int(dt.min()), int(dt.max())
    rng = np.random.default_rng(3)
    xs_ = [rng.integers(lo, hi + 1, size=m.get_tensor_shape("inp")).astype(np.float32) for _ in range(3)]
    want = np.concatenate([oxe.execute_onnx(m, {"inp": x})["outp"] for x in xs_]).astype(np.int64)
    got = csim_node(m, node, np.concatenate(xs_))
    assert np.array_equal(got, want), f"{case}: C sim != FINN execution"
    st = xs.stitch(m, Path(DEFAULT_CACHE) / "hls_rtl" / case, PART)
    ein, eout = st.edges[0], st.edges[-1]
    bits = dt.bitwidth()
    frames = [xs.pack_beats(x, ein.src_folded[-1], bits) for x in xs_]
    try:
        res = xv.simulate(st, frames, idle="random", backpressure="random")
    except SimulationError as exc:
        # finn-rtllib's padder is free-running: after the last frame it emits the next
        # frame's leading zero beats (top rows, left border) before any input; alone at
        # the end of a stream these are the only extra beats allowed
        res = getattr(exc, "results", None)
        g = node.attribute
        attrs = {a.name: list(a.ints) or a.i for a in g}
        if res is None or not node.op_type.startswith("FMPadding"):
            raise
        (_, w), (pt, pl, _, pr) = attrs["ImgDim"], attrs["Padding"]
        lead = (pt * (pl + w + pr) + pl) * attrs["NumChannels"] // attrs["SIMD"]
        assert 0 < res["extra_out_beats"] <= lead and not res["deadlock"], exc
    rtl = np.concatenate([xs.unpack_beats(o, eout.src_folded[-1], bits, dt.signed() and dt != DataType["BIPOLAR"])
                          for o in res["outputs"]])
    assert np.array_equal(got.ravel(), rtl), f"{case}: C sim != RTL"


# ----------------------------------------------------------------- whole network
def test_tiny_bivit_csim_on_real_images_equals_pytorch_finn_and_rtl(tiny_build, tmp_path):
    import json

    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows import stitch as xs
    from xnorvit.flows import verify as xv
    from xnorvit.flows.compile import execute
    from xnorvit.flows.hls import csim_images
    from xnorvit.model.data import load_dataset, to_float
    from xnorvit.model.train import load_checkpoint

    b = tmp_path / "build"
    shutil.copytree(tiny_build, b, ignore=shutil.ignore_patterns("sim", "report"))
    hw = ModelWrapper(str(b / "hw.onnx"))
    x = load_dataset("digits").x_test[:20]
    hls = csim_images(hw, x)
    model, _ = load_checkpoint(Path(json.loads((b / "compile.json").read_text())["run"]) / "model.pt")
    with torch.no_grad():
        ref = model.integer_logits(to_float(x)).numpy()
    assert np.array_equal(hls, ref), "C simulation != PyTorch integer logits"
    assert np.array_equal(hls, np.rint(execute(hw, x)).astype(np.int64)), "C simulation != FINN execution"
    st = xs.load_stitched(b / "rtl")
    stitched = ModelWrapper(str(b / "rtl" / "hw_stitched.onnx"))
    frames, expected, _, _ = xv.stimulus(stitched, st, x)
    res = xv.simulate(st, frames, idle="random", backpressure="random")
    eout = next(e for e in st.edges if e.dst is None)
    hls_beats = [xs.pack_beats(row, eout.src_folded[-1], xv._bits(eout.src_dtype)) for row in hls]
    assert res["outputs"] == hls_beats, "C simulation != stitched RTL output beats"


def test_hls_variants_execute_their_c_simulation(tiny_build, tmp_path):
    """``to_hls`` of the tiny build's graph gives one ``*_hls`` node per
    ``*_rtl`` node; under ``exec_mode="cppsim"`` FINN's ``execute_onnx`` runs
    each node's C simulation (a program compiled in every node's
    ``code_gen_dir_cppsim``), and the logits of real images equal PyTorch's."""
    import json

    import torch
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from xnorvit.flows.compile import execute
    from xnorvit.flows.hls import to_hls
    from xnorvit.model.data import load_dataset, to_float
    from xnorvit.model.train import load_checkpoint

    hw = ModelWrapper(str(tiny_build / "hw.onnx"))
    m = to_hls(hw)
    assert [n.name for n in m.graph.node] == [n.name for n in hw.graph.node]
    assert all(n.op_type.endswith("_hls") and n.domain == "xnorvit.flows.ops.hls" for n in m.graph.node)
    for n in m.graph.node:
        getCustomOp(n).set_nodeattr("code_gen_dir_cppsim", str(tmp_path / n.name))
    x = load_dataset("digits").x_test[:2]
    logits = execute(m, x)
    for n in m.graph.node:
        assert list((tmp_path / n.name).glob("*/csim")), f"{n.name} did not run a C simulation"
    torch_model, _ = load_checkpoint(Path(json.loads((tiny_build / "compile.json").read_text())["run"]) / "model.pt")
    with torch.no_grad():
        ref = torch_model.integer_logits(to_float(x)).numpy()
    assert np.array_equal(np.rint(logits).astype(np.int64), ref)


def test_csim_cli_on_a_build(tiny_build, tmp_path):
    """``xnorvit csim`` on a copy of the tiny build: 20/20 real images bit-exact
    (its own comparison with PyTorch), report/csim.json written, the program
    under BUILD/sim/hls; a build whose files differ from the manifest is refused."""
    import json
    import subprocess
    import sys

    b = tmp_path / "build"
    shutil.copytree(tiny_build, b, ignore=shutil.ignore_patterns("sim", "report"))
    cli = [sys.executable, "-m", "xnorvit.flows.cli"]
    p = subprocess.run([*cli, "csim", str(b), "--images", "20"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rep = json.loads((b / "report" / "csim.json").read_text())
    assert rep["images"] == 20 and rep["images_bit_exact"] == 20 and "20/20 images bit-exact" in p.stdout
    assert Path(rep["program"]).parent == b / "sim" / "hls" and (Path(rep["program"]) / "main.cpp").is_file()
    (b / "hw.onnx").write_bytes((b / "hw.onnx").read_bytes() + b"\0")
    p = subprocess.run([*cli, "csim", str(b)], capture_output=True, text=True)
    assert p.returncode == 2 and "hw.onnx" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_csim_errors_are_one_line():
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows.hls import HLSError, csim_images, csim_node, to_hls

    m = _h().residual_model(rtl=True)
    with pytest.raises(HLSError, match="2 streamed inputs, got 1"):
        csim_node(m, m.graph.node[0], np.zeros((1, 4, 8)))
    m.graph.node[0].op_type = "Unknown_rtl"
    with pytest.raises(HLSError, match="no HLS kernel for op Unknown_rtl"):
        csim_node(m, m.graph.node[0], [np.zeros((1, 4, 8))] * 2)
    with pytest.raises(HLSError, match="no HLS variant of Unknown_rtl"):
        to_hls(m)
    g = helper.make_graph([], "empty", [], [])
    with pytest.raises(HLSError, match="raw uint8"):
        csim_images(ModelWrapper(helper.make_model(g)), np.zeros((1, 1, 8, 8), np.uint8))
