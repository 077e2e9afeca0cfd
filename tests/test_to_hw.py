"""Hardware conversion (flows/to_hw.py), MVAU RTL backends (flows/ops/mvau.py),
folding (flows/folding.py), estimates and ``xnorvit compile``: every stage
checked against the PyTorch model on real images, every op against an
independent reference."""

import copy
import json
import shutil
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.util.basic import qonnx_make_model

from xnorvit.flows import compile as xc
from xnorvit.flows import folding as xf
from xnorvit.flows import to_hw
from xnorvit.flows.boards import BOARDS, Board, get_board
from xnorvit.flows.estimates import FF_FIT, LUT_FIT, estimate, mvau_lut_features, rom_bram18
from xnorvit.flows.ops.mvau import mvau_reference
from xnorvit.flows.sim import REPO_ROOT, verilator_executable
from xnorvit.flows.transforms import UnsupportedNodeError
from xnorvit.model.export import export_qonnx_model

from calibrated import SMALL, calibrated_bivit
PART = get_board("pynq-z2").part


def _calibrated(dataset, **hp):
    return calibrated_bivit(dataset, **hp)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    model, d = _calibrated("digits", **SMALL)
    path = tmp_path_factory.mktemp("hw") / "small.onnx"
    export_qonnx_model(model, path)
    streamlined = xc.streamline(path)
    return model, d, streamlined, to_hw.hw_stages(streamlined, PART)


def test_hw_stages_bit_exact_on_real_digits(small):
    model, d, streamlined, stages = small
    assert tuple(stages) == to_hw.HW_STAGES
    for name, m in stages.items():
        r = xc.check_stage(m, model, d.x_test[:40])
        assert r["equal"] and r["mismatches"] == 0, (name, r)


def test_every_node_is_a_dataflow_rtl_op(small):
    _, _, _, stages = small
    ops = xc.op_counts(stages["specialized"])
    for op in ("MVAU_xnor_rtl", "MVAU_int_rtl", "Thresholding_rtl", "ConvolutionInputGenerator_rtl",
               "BinaryAttention_rtl", "ResidualAdd_rtl", "PosAdd_rtl", "DuplicateStreams_rtl", "TokenPool_rtl"):
        assert ops[op] >= 1, (op, ops)
    from finn.util.fpgadataflow import is_fpgadataflow_node

    assert all(is_fpgadataflow_node(n) for n in stages["specialized"].graph.node)
    assert all(n.domain in ("finn.custom_op.fpgadataflow.rtl", "xnorvit.flows.ops.rtl") for n in stages["specialized"].graph.node)
    assert stages["specialized"].get_metadata_prop("xnorvit_input_layout") == "NHWC"
    # the graph takes (1, H, W, C) pixels
    assert stages["specialized"].get_tensor_shape(stages["specialized"].graph.input[0].name) == [1, 8, 8, 1]


def test_whole_graph_is_one_dataflow_partition(small):
    """finn-plus's CreateDataflowPartition takes every node: nothing is left
    outside the accelerator."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition

    _, _, _, stages = small
    parent = ModelWrapper(copy.deepcopy(stages["specialized"].model)).transform(CreateDataflowPartition())
    assert [n.op_type for n in parent.graph.node] == ["StreamingDataflowPartition"]


def _grid_model(h=3, w=2, k=5, c=4):
    """in (1,h,w,k) -> MatMul -> (1,h,w,c) -> Transpose(0,3,1,2) -> Reshape(1,c,h*w) -> Transpose(0,2,1)."""
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, h, w, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, h * w, c])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["a"]),
             helper.make_node("Transpose", ["a"], ["b"], perm=[0, 3, 1, 2]),
             helper.make_node("Reshape", ["b", "shape"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1])]
    m = ModelWrapper(qonnx_make_model(helper.make_graph(nodes, "g", [x], [y]), producer_name="t"))
    m.set_initializer("W", rng.integers(-3, 4, (k, c)).astype(np.float32))
    m.set_initializer("shape", np.array([1, c, h * w], dtype=np.int64))
    from qonnx.transformation.infer_shapes import InferShapes

    return m.transform(InferShapes()), rng.integers(0, 8, (1, h, w, k)).astype(np.float32)


def test_binary_stem_weights_compile_bit_exact_without_dsp(tmp_path):
    """``stem_weight_bits=1``: the second stem conv and the patch projection
    have sign(W) weights; the graph stays bit-exact on real digits through
    every hardware stage and their MVAUs take bipolar weights, priced
    without DSP slices."""
    from qonnx.custom_op.registry import getCustomOp

    model, d = _calibrated("digits", **dict(SMALL, stem_depth=2, stem_weight_bits=1))
    path = tmp_path / "bstem.onnx"
    export_qonnx_model(model, path)
    stages = to_hw.hw_stages(xc.streamline(path), PART)
    for name, m in stages.items():
        r = xc.check_stage(m, model, d.x_test[:40])
        assert r["equal"] and r["mismatches"] == 0, (name, r)
    ints = [getCustomOp(n) for n in stages["specialized"].graph.node if n.op_type == "MVAU_int_rtl"]
    bipolar = [i for i in ints if i.get_nodeattr("weightDataType") == "BIPOLAR"]
    assert len(bipolar) == 2, [i.get_nodeattr("weightDataType") for i in ints]  # stem conv 2 + patch projection
    for i in bipolar:
        for res_type in ("dsp", "lut"):
            i.set_nodeattr("resType", res_type)
            assert i.dsp_estimation(PART) == 0


def test_stem_weight_bits_must_be_8_or_1():
    from xnorvit.model.layers import PatchEmbed

    with pytest.raises(ValueError, match="stem weight bits must be 8 or 1, got 4"):
        PatchEmbed(8, 1, 2, 16, 4, 4, True, None, 2, weight_bits=4)


def test_collapse_token_grid_moves_no_data():
    import finn.core.onnx_exec as oxe

    m, xv = _grid_model()
    ref = oxe.execute_onnx(m, {"x": xv})["y"]
    c = m.transform(to_hw.CollapseTokenGrid())
    assert [n.op_type for n in c.graph.node] == ["Reshape", "MatMul"]
    assert np.array_equal(oxe.execute_onnx(c, {"x": xv})["y"], ref)
    # independent reference: tokens are the raster-order pixels of x @ W
    assert np.array_equal(ref[0], (xv[0].reshape(-1, xv.shape[-1]) @ m.get_initializer("W")))


def test_channels_last_input():
    import finn.core.onnx_exec as oxe

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 2])
    m = ModelWrapper(qonnx_make_model(helper.make_graph([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
                                                         helper.make_node("Relu", ["t"], ["y"])], "g", [x], [y]), producer_name="t"))
    from qonnx.transformation.infer_shapes import InferShapes

    m = m.transform(InferShapes())
    xv = np.random.default_rng(0).integers(-4, 5, (1, 2, 3, 3)).astype(np.float32)
    ref = oxe.execute_onnx(m, {"x": xv})["y"]
    c = m.transform(to_hw.ChannelsLastInput())
    assert [n.op_type for n in c.graph.node] == ["Relu"]
    assert c.get_tensor_shape("x") == [1, 3, 3, 2] and c.get_metadata_prop("xnorvit_input_layout") == "NHWC"
    assert np.array_equal(oxe.execute_onnx(c, {"x": xv.transpose(0, 2, 3, 1)})["y"], ref)


def test_unsupported_node_is_named(small):
    _, _, streamlined, _ = small
    m = ModelWrapper(copy.deepcopy(streamlined.model))
    # an op with no hardware counterpart in the middle of the graph
    last = m.graph.node[-1]
    y = m.make_new_valueinfo_name()
    m.graph.node.append(helper.make_node("Sin", [last.output[0]], [y], name="Sin_bad"))
    m.graph.output[0].name = y
    m.set_tensor_shape(y, m.get_tensor_shape(last.output[0]))
    with pytest.raises(UnsupportedNodeError, match="Sin"):
        to_hw.to_hw(m)


def _loops_reference(x, w, t, act, xnor):
    """Independent loop reference of an MVAU: per vector, per channel."""
    x, w = np.rint(x).astype(int), np.rint(w).astype(int)
    out = np.zeros(x.shape[:-1] + (w.shape[1],), dtype=int)
    for idx in np.ndindex(*x.shape[:-1]):
        for c in range(w.shape[1]):
            acc = 0
            for k in range(w.shape[0]):
                acc += int(x[idx][k] == w[k, c]) if xnor else int(x[idx][k]) * int(w[k, c])
            if t is None:
                out[idx + (c,)] = acc
            else:
                row = t[c] if t.shape[0] > 1 else t[0]
                out[idx + (c,)] = sum(acc >= v for v in row) + act
    return out


@pytest.mark.parametrize("xnor", [True, False])
@pytest.mark.parametrize("thresholds", [0, 1, 5])
def test_mvau_reference_against_loops(xnor, thresholds):
    rng = np.random.default_rng(3 + thresholds)
    mw, mh = 12, 6
    if xnor:
        x, w = rng.integers(0, 2, (2, 5, mw)), rng.integers(0, 2, (mw, mh))
    else:
        x, w = rng.integers(0, 16, (2, 5, mw)), rng.integers(-128, 128, (mw, mh))
    t = None
    if thresholds:
        lo, hi = (0, mw) if xnor else (-4000, 4000)
        t = np.sort(rng.integers(lo, hi, (mh, thresholds)), axis=1).astype(float)
    act = -2 if thresholds else 0
    assert np.array_equal(mvau_reference(x, w, t, act, xnor), _loops_reference(x, w, t, act, xnor))


def _mvau_model(xnor, mw=16, mh=8, n_thr=3, vectors=(1, 6)):
    rng = np.random.default_rng(0)
    idt = "BINARY" if xnor else "UINT4"
    wdt = "BINARY" if xnor else "INT8"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(vectors) + [mw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(vectors) + [mh])
    node = helper.make_node("MVAU", ["x", "w", "t"], ["y"], domain="xnorvit.flows.ops", backend="fpgadataflow",
                            name="MVAU_0", MW=mw, MH=mh, PE=1, SIMD=1, inputDataType=idt, weightDataType=wdt,
                            outputDataType="INT3", ActVal=-4, binaryXnorMode=int(xnor), noActivation=0,
                            numInputVectors=list(vectors))
    m = ModelWrapper(qonnx_make_model(helper.make_graph([node], "g", [x], [y]), producer_name="t"))
    w = rng.integers(0, 2, (mw, mh)) if xnor else rng.integers(-128, 128, (mw, mh))
    lo, hi = (0, mw) if xnor else (-2000, 2000)
    m.set_initializer("w", w.astype(np.float32))
    m.set_initializer("t", np.sort(rng.integers(lo, hi, (mh, n_thr)), axis=1).astype(np.float32))
    m.set_tensor_datatype("x", DataType[idt])
    m.set_tensor_datatype("w", DataType[wdt])
    m.set_tensor_datatype("y", DataType["INT3"])
    xv = rng.integers(0, 2 if xnor else 16, list(vectors) + [mw]).astype(np.float32)
    return m, xv


@pytest.mark.parametrize("xnor", [True, False])
def test_split_wide_thresholds_is_exact(xnor):
    import finn.core.onnx_exec as oxe

    m, xv = _mvau_model(xnor)
    ref = oxe.execute_onnx(m, {"x": xv})["y"]
    split = m.transform(to_hw.SplitWideThresholds(max_fused=2))
    assert [n.op_type for n in split.graph.node] == ["MVAU", "MultiThreshold"]
    assert getCustomOp(split.graph.node[0]).get_nodeattr("noActivation") == 1
    assert np.array_equal(oxe.execute_onnx(split, {"x": xv})["y"], ref)
    assert np.array_equal(ref, _loops_reference(xv, m.get_initializer("w"), m.get_initializer("t"), -4, xnor))


@pytest.mark.parametrize("xnor", [True, False])
def test_mvau_rtl_wrapper_lints(tmp_path, xnor):
    """The generated top of each MVAU backend elaborates in Verilator with its
    kernel sources and memory files (FINN port names, ActVal lanes)."""
    m, _ = _mvau_model(xnor)
    m = m.transform(to_hw.SpecializeXnorvitLayers())
    node = m.graph.node[0]
    inst = getCustomOp(node)
    assert node.op_type == ("MVAU_xnor_rtl" if xnor else "MVAU_int_rtl")
    inst.set_nodeattr("PE", 2)
    inst.set_nodeattr("SIMD", 4)
    inst.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    inst.generate_hdl(m, PART, 10.0)
    files = inst.get_rtl_file_list(abspath=True)
    top = (tmp_path / f"{node.name}.sv").read_text()
    assert "in0_V_TDATA" in top and "out0_V_TDATA" in top and "ap_rst_n" in top
    r = subprocess.run([verilator_executable(), "--lint-only", "-Wall", "-Wno-DECLFILENAME", "-Wno-UNUSEDSIGNAL",
                        "-Wno-UNUSEDPARAM", f"-I{REPO_ROOT / 'rtl'}", "--top-module", node.name, *files],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]


def test_mvau_folding_error_names_node(tmp_path):
    m, _ = _mvau_model(True)
    m = m.transform(to_hw.SpecializeXnorvitLayers())
    inst = getCustomOp(m.graph.node[0])
    inst.set_nodeattr("PE", 3)
    with pytest.raises(ValueError, match="MVAU_0.*PE=3 must divide MH=8"):
        inst.generate_hdl(m, PART, 10.0)
    with pytest.raises(xf.FoldingError, match=r"MVAU_0 \(MVAU_xnor_rtl\): PE=3 must divide 8"):
        xf.check_folding(m)


# -- folding and estimates ------------------------------------------------------


def _least_parallelism_utilization(model, ii, board):
    """Independent baseline: FINN's SetFolding rule (per node the least
    product of folding factors reaching ``ii``, default memory options)."""
    import itertools

    m = ModelWrapper(copy.deepcopy(model.model))
    for node in m.graph.node:
        inst = getCustomOp(node)
        dims = xf._dims(node, inst)
        best = None
        swg = node.op_type.startswith("ConvolutionInputGenerator")
        for vals in itertools.product(*(xf.divisors(d) for d in dims.values())):
            for pw in ((0, 1) if swg and vals[0] == list(dims.values())[0] else (0,)):
                for k, v in zip(dims, vals):
                    inst.set_nodeattr(k, v)
                if swg:
                    inst.set_nodeattr("parallel_window", pw)
                key = (int(np.prod(vals)), pw)
                if inst.get_exp_cycles() <= ii and (best is None or key < best[0]):
                    best = (key, vals, pw)
        for k, v in zip(dims, best[1]):
            inst.set_nodeattr(k, v)
        if swg:
            inst.set_nodeattr("parallel_window", best[2])
    est = estimate(m, board, 100.0)
    lims = {"lut": 0.7 / xf.YOSYS_LUTS_PER_ESTIMATED_LUT, "bram36": 0.7, "dsp": 1.0}
    return max(est["util"][r] / lim for r, lim in lims.items())


def test_fold_meets_target_and_balances_resources(small):
    model, d, _, stages = small
    sp = stages["specialized"]
    board = get_board("pynq-z2")
    fclk, fps = 100.0, 200_000
    folded = xf.fold(sp, fps, fclk, board)
    ii = int(fclk * 1e6 // fps)
    for node in folded.graph.node:
        assert getCustomOp(node).get_exp_cycles() <= ii, node.name
    est = estimate(folded, board, fclk)
    assert est["ii_cycles"] <= ii and est["fps"] >= fps
    assert est["ii_cycles"] == max(getCustomOp(n).get_exp_cycles() for n in folded.graph.node)
    lims = {"lut": 0.7 / xf.YOSYS_LUTS_PER_ESTIMATED_LUT, "bram36": 0.7, "dsp": 1.0}
    got = max(est["util"][r] / lim for r, lim in lims.items())
    assert got <= _least_parallelism_utilization(sp, ii, board) + 1e-9
    # folding changes the stream, not the arithmetic
    r = xc.check_stage(folded, model, d.x_test[:10])
    assert r["equal"], r


def test_fold_prices_streams_like_the_estimate(small):
    """The folding's incremental price of the stitched streams (FIFOs and
    width converters, which depend on the options at both ends of a stream)
    equals the estimate's recomputation over the whole graph for every option
    of the requantizer behind the attention (whose token-wide output needs a
    wide-to-narrow converter into a 1-lane consumer)."""
    from xnorvit.flows.estimates import stitch_estimates

    _, _, _, stages = small
    m = ModelWrapper(copy.deepcopy(stages["specialized"].model))
    insts, options = [], []
    for node in m.graph.node:
        inst = getCustomOp(node)
        cands = xf._candidates(node, inst)
        if cands:
            insts.append(inst)
            options.append([(xf._resources(inst, "xc7z020clg400-1"), c) for c in cands])
    chosen = [0] * len(insts)
    for inst, opts in zip(insts, options):
        xf._set(inst, opts[0][1])
    streams = xf._Streams(m, insts, options)

    def graph_lut():
        return sum(r["lut"] for r in stitch_estimates(m))

    assert streams.total(chosen)[0] == pytest.approx(graph_lut())
    names = [i.onnx_node.name for i in insts]
    att = next(n for n in m.graph.node if n.op_type == "BinaryAttention_rtl")
    req = next(n for n in m.graph.node if att.output[0] in n.input)
    k = names.index(req.name)
    base = graph_lut()
    seen = set()
    for j, (_, attrs) in enumerate(options[k]):
        xf._set(insts[k], attrs)
        seen.add(attrs.get("PE"))
        assert streams.delta(chosen, k, j)[0] == pytest.approx(graph_lut() - base), attrs
    xf._set(insts[k], options[k][0][1])
    assert len(seen) > 2


def test_folding_json_roundtrip_and_edit(small, tmp_path):
    _, _, _, stages = small
    folded = xf.fold(stages["specialized"], 100_000, 100.0)
    path = xf.save_folding(folded, tmp_path / "folding.json")
    cfg = json.loads(path.read_text())
    assert "Defaults" in cfg and all("PE" in v or "SIMD" in v or "PAR_T" in v for k, v in cfg.items() if k != "Defaults")
    again = xf.apply_folding(stages["specialized"], xf.load_folding(path))
    assert xf.folding_config(again) == xf.folding_config(folded)
    mv = next(k for k in cfg if k.startswith("MVAU_xnor_rtl"))
    cfg[mv]["PE"] = 3
    path.write_text(json.dumps(cfg))
    with pytest.raises(xf.FoldingError, match=f"{mv}.*PE=3 must divide"):
        xf.apply_folding(stages["specialized"], xf.load_folding(path))
    with pytest.raises(xf.FoldingError, match="not in the graph"):
        xf.apply_folding(stages["specialized"], {"Defaults": {}, "Nope_0": {"PE": 1}})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(xf.FoldingError, match="not JSON"):
        xf.load_folding(tmp_path / "bad.json")


def test_target_beyond_board_names_binding_resource(small):
    _, _, _, stages = small
    tiny = Board("tiny", PART, lut=400, ff=1000, bram36=100, dsp=100)
    with pytest.raises(xf.FoldingError, match="binding resource LUT"):
        xf.fold(stages["specialized"], 1000, 100.0, tiny)
    no_bram = Board("nobram", PART, lut=10**6, ff=10**6, bram36=1, dsp=10**4)
    with pytest.raises(xf.FoldingError, match="binding resource BRAM36"):
        xf.fold(stages["specialized"], 1000, 100.0, no_bram)
    with pytest.raises(xf.FoldingError, match="fully parallel") as ei:
        xf.fold(stages["specialized"], 1e9, 100.0)
    # the error names the frame rate the slowest layer allows; that rate folds, 1 % more does not
    import re

    fps = float(re.search(r"at most ([\d,]+) frames/s at this clock", str(ei.value)).group(1).replace(",", ""))
    assert xf.fold(stages["specialized"], fps, 100.0) is not None
    with pytest.raises(xf.FoldingError, match="fully parallel"):
        xf.fold(stages["specialized"], fps * 1.01, 100.0)


def test_mvau_fit_reproduces_yosys_figures():
    """The LUT/FF model constants are the relative-error least-squares fit of
    the committed Yosys figures (benchmarks/results/kernels.json, fit_rows:
    balanced and unbalanced foldings, weights in LUT-ROM and block RAM), the
    model's relative error is at most 7 % on average and 25 % on any one of
    them (as the module doc of flows/estimates.py says), and the block RAM model
    matches every synthesized block-RAM weight memory."""
    data = json.loads((REPO_ROOT / "benchmarks" / "results" / "kernels.json").read_text())
    rows = data["fit_rows"]

    def words(r):
        return (r["MH"] // r["PE"]) * (r["MW"] // r["SIMD"])

    x = np.array([mvau_lut_features(r["PE"], r["SIMD"], words(r), r["RAM_STYLE"] == "auto" and words(r) <= 128)
                  for r in rows])
    lut = np.array([r["lut"] for r in rows], float)
    ff = np.array([r["ff"] for r in rows], float)
    c_lut = np.linalg.lstsq(x / lut[:, None], np.ones(len(rows)), rcond=None)[0]
    c_ff = np.linalg.lstsq(x[:, :4] / ff[:, None], np.ones(len(rows)), rcond=None)[0]
    assert np.allclose(c_lut, LUT_FIT, rtol=1e-3, atol=1e-3) and np.allclose(c_ff, FF_FIT, rtol=1e-3, atol=1e-3)
    err = np.abs(x @ np.array(LUT_FIT) - lut) / lut
    assert err.mean() <= 0.07 and err.max() <= 0.25
    for r in data["rows"]:  # RAM_STYLE auto
        if r["yosys"]["bram18"] + r["yosys"]["bram36"]:
            assert rom_bram18(words(r), r["PE"] * r["SIMD"]) == r["yosys"]["bram18"] + 2 * r["yosys"]["bram36"]


def test_boards_table():
    assert set(BOARDS) == {"pynq-z1", "pynq-z2", "ultra96-v2", "kv260", "zcu104"}
    assert get_board("pynq-z2").lut == 53_200 and get_board("pynq-z2").bram36 == 140
    with pytest.raises(KeyError, match="pynq-z2"):
        get_board("pynq-z3")


# -- xnorvit compile ---------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_run(tiny_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    shutil.copytree(tiny_run, run)
    from xnorvit.model.export import export_run

    export_run(run, images=4)
    return run


def _cli(*args):
    return subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "xnorvit"), *map(str, args)], capture_output=True, text=True)


def test_compile_cli_writes_checked_build(exported_run, tmp_path):
    out = tmp_path / "build"
    p = _cli("compile", exported_run, "--out", out, "--target-fps", 100000, "--images", 60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "60/60 real test images bit-exact" in p.stdout
    assert {f.name for f in out.iterdir()} == {"hw.onnx", "folding.json", "estimates.json", "estimates.md", "check.json", "compile.json",
                                            "compile.log", "manifest.json"}
    assert "streamlined:" in (out / "compile.log").read_text()  # the stages, and what finn-plus printed
    check = json.loads((out / "check.json").read_text())
    assert check["images"] == check["bit_exact"] == 60
    est = json.loads((out / "estimates.json").read_text())
    assert est["ii_cycles"] <= 1000 and est["board"] == "pynq-z2"
    # the written graph is the checked one: executes to the same logits
    hw = ModelWrapper(str(out / "hw.onnx"))
    assert xf.folding_config(hw) == json.loads((out / "folding.json").read_text())
    # existing output kept without --force; a bad folding writes nothing
    before = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
    p = _cli("compile", exported_run, "--out", out, "--images", 0)
    assert p.returncode == 2 and "exists; pass --force" in p.stderr
    cfg = json.loads((out / "folding.json").read_text())
    name = next(k for k in cfg if k.startswith("MVAU_xnor_rtl"))
    cfg[name]["SIMD"] = 7
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    p = _cli("compile", exported_run, "--out", out, "--folding", tmp_path / "bad.json", "--force", "--images", 0)
    assert p.returncode == 2 and f"{name}" in p.stderr and "SIMD=7 must divide" in p.stderr
    assert {f.name: f.stat().st_mtime_ns for f in out.iterdir()} == before
    assert not list(tmp_path.glob("build.partial-*"))


def test_compile_cli_errors(exported_run, tmp_path):
    p = _cli("compile", exported_run, "--out", tmp_path / "b", "--board", "pynq-z9")
    assert p.returncode == 2 and "unknown board 'pynq-z9'" in p.stderr
    p = _cli("compile", tmp_path / "nope", "--out", tmp_path / "b")
    assert p.returncode == 2 and "no run directory" in p.stderr
    p = _cli("compile", exported_run, "--out", tmp_path / "b", "--target-fps", 1e9, "--images", 0)
    assert p.returncode == 2 and "fully parallel" in p.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_full_bivit_compiles_for_pynq_z2_bit_exact_on_200_mnist(tmp_path):
    """The full-size bivit-t (28x28 MNIST, calibrated on real training
    images) folded for pynq-z2 at 20,000 frames/s: II <= 5,000 cycles within
    70% of the board's LUT/BRAM/DSP, and the folded hardware graph equals
    PyTorch's integer logits on 200 real MNIST test images."""
    from xnorvit.flows.build import check_hw_graph

    model, d = _calibrated("mnist")
    path = tmp_path / "bivit.onnx"
    export_qonnx_model(model, path)
    board = get_board("pynq-z2")
    stages = to_hw.hw_stages(xc.streamline(path), board.part)
    folded = xf.fold(stages["specialized"], 20000, 100.0, board)
    est = estimate(folded, board, 100.0)
    assert est["ii_cycles"] <= 5000
    assert est["util"]["lut"] * xf.YOSYS_LUTS_PER_ESTIMATED_LUT <= 0.7, est["util"]
    assert est["util"]["bram36"] <= 0.7 and est["util"]["dsp"] <= 1.0, est["util"]
    r = check_hw_graph(folded, model, d.x_test[:200], d.y_test[:200])
    assert r["images"] == r["bit_exact"] == 200, r
    with pytest.raises(xf.FoldingError, match="binding resource (LUT|BRAM36|DSP)"):
        xf.fold(stages["specialized"], 40000, 100.0, board)
