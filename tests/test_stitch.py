"""Stitching (flows/stitch.py) and whole-design simulation (flows/verify.py)
on a small synthetic graph of xnorvit RTL ops: a residual block
(fork -> position add -> residual add) with width conversion on its edges.
The whole-network test on a real (digits) network is
rtl_tests/test_accelerator.py."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType

from xnorvit.flows import finn_env

finn_env.setup()
import finn.core.onnx_exec as oxe  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402

from xnorvit.flows import stitch as xs  # noqa: E402
from xnorvit.flows import verify as xv  # noqa: E402
from xnorvit.flows.sim import DEFAULT_CACHE, verilator_executable  # noqa: E402

PART = "xc7z020clg400-1"
T, C = 6, 8
#: fixed directory: the Verilator builds are cached between runs
OUT = Path(DEFAULT_CACHE) / "stitch_block"


def block_model(table_shift: int = 0) -> ModelWrapper:
    """x -> DuplicateStreams(PE 2) -> [PosAdd(PE 4)] + skip -> ResidualAdd(PE 1) -> y."""
    rng = np.random.default_rng(5)
    table = rng.integers(-40, 40, (T, C)) + table_shift
    common = dict(backend="fpgadataflow", NumChannels=C, numInputVectors=[1, T])
    nodes = [
        helper.make_node("DuplicateStreams_rtl", ["x"], ["f0", "f1"], domain="xnorvit.flows.ops.rtl",
                         name="DuplicateStreams_rtl_0", PE=2, NumOutputStreams=2, inputDataType="INT8", **common),
        helper.make_node("PosAdd_rtl", ["f0", "E"], ["p"], domain="xnorvit.flows.ops.rtl", name="PosAdd_rtl_0",
                         PE=4, inputDataType="INT8", outputDataType="INT8", **common),
        helper.make_node("ResidualAdd_rtl", ["f1", "p"], ["y"], domain="xnorvit.flows.ops.rtl",
                         name="ResidualAdd_rtl_0", PE=1, inputDataType="INT8", outputDataType="INT8", **common),
    ]

    def vi(n):
        return helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, T, C])

    g = helper.make_graph(nodes, "block", [vi("x")], [vi("y")])
    m = ModelWrapper(helper.make_model(g))
    m.set_initializer("E", table.astype(np.float32))
    for t in ("x", "E", "f0", "f1", "p", "y"):
        if t not in ("x", "E", "y"):
            m.set_tensor_shape(t, [1, T, C])
        m.set_tensor_datatype(t, DataType["INT8"])
    return m


def contexts(m: ModelWrapper, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [oxe.execute_onnx(m, {"x": rng.integers(-128, 128, (1, T, C)).astype(np.float32)},
                             return_full_exec_context=True) for _ in range(n)]


@pytest.fixture(scope="module")
def block():
    m = block_model()
    st = xs.stitch(m, OUT, PART, top="block_top")
    return m, st


def test_edges_widths_and_converters(block):
    m, st = block
    by_tensor = {e.tensor: e for e in st.edges}
    assert [e.tensor for e in st.edges] == ["x", "f0", "f1", "p", "y"]
    assert (by_tensor["x"].src, by_tensor["x"].dst_bits) == (None, 16)
    assert (by_tensor["f0"].src_bits, by_tensor["f0"].dst_bits, by_tensor["f0"].dwc) == (16, 32, True)
    assert (by_tensor["f1"].src_bits, by_tensor["f1"].dst_bits, by_tensor["f1"].dst_beats) == (16, 8, T * C)
    assert (by_tensor["p"].src_bits, by_tensor["p"].dst_bits) == (32, 8)
    assert by_tensor["y"].dst is None and not by_tensor["y"].dwc
    assert (st.in_bits, st.out_bits, st.in_beats, st.out_beats) == (16, 8, T * C // 2, T * C)
    text = st.top_file.read_text()
    # 16 -> 32 up through vpc; 16 -> 8 and 32 -> 8 down through stream_dwc_down
    assert text.count("stream_fifo #(") == 5 and text.count("vpc #(") == 1 and text.count("stream_dwc_down #(") == 2
    assert "module block_top #(" in text and "parameter string MEM_ROOT" in text and "s_axis_tdata" in text and "m_axis_tdata" in text
    files = (st.out / "filelist.f").read_text().split()
    assert files[-1].endswith("block_top.sv")
    # each kernel file once (per-node copies of the same rtl/ file deduplicated)
    names = [Path(f).name for f in files]
    assert len(names) == len(set(names)) and "lanes_add_sat.sv" in names
    back = xs.load_stitched(st.out)
    assert [e.depth for e in back.edges] == [e.depth for e in st.edges]


def test_top_lints_clean(block):
    """The generated top itself has no Verilator -Wall warning (third-party cores are
    waived per file; empty AXI-lite pins of finn-plus ops are intended)."""
    _, st = block
    r = subprocess.run([verilator_executable(), "--lint-only", "-Wall", "--top-module", st.top, *st.files],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    own = [ln for ln in r.stderr.splitlines() if ln.startswith("%") and str(st.top_file) in ln
           and "PINCONNECTEMPTY" not in ln]
    assert not own, "\n".join(own)


def test_round_depth():
    assert [xs.round_depth(v) for v in (0, 1, 2, 3, 5, 17, 32, 33, 79, 96)] == [2, 2, 2, 4, 8, 32, 32, 64, 96, 96]


@pytest.mark.parametrize("bits,signed", [(1, False), (4, True), (8, False), (32, True)])
def test_pack_unpack_roundtrip(bits, signed):
    rng = np.random.default_rng(bits)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2 ** bits)
    x = rng.integers(lo, hi, 24)
    beats = xs.pack_beats(x, 3, bits)
    assert len(beats) == 8 and all(0 <= b < 2 ** (3 * bits) for b in beats)
    assert np.array_equal(xs.unpack_beats(beats, 3, bits, signed), x)


def test_fifo_sizing_and_stalled_simulation(block):
    """Depths by simulation (the skip edge f1 holds more than the branch), then random
    idle/backpressure on the sized design: every frame equals FINN execution,
    the II is the one of the large-FIFO design."""
    m, st = block
    ctxs = contexts(m, 5)
    frames, expected = xv.beats_of_contexts(m, st, ctxs)
    st = xs.stitch(m, OUT, PART, top="block_top")  # fresh large FIFOs (the fixture may have been resized)
    sizing = xv.size_fifos(m, st, frames[:4])
    occ = {k.split(":")[1]: v for k, v in sizing["max_occupancy"].items()}
    assert occ["f1"] > occ["f0"], occ  # the skip edge holds what the branch is still computing
    assert all(e.depth == xs.round_depth(e.max_occupancy) for e in st.edges)
    free = xv.simulate(st, frames)
    assert free["outputs"] == expected
    assert xv.timing(free, st.in_beats, st.out_beats)["ii_cycles"] == sizing["ii_cycles_large_fifos"]
    for idle, bp in (("random", "random"), ("burst", "cycle")):
        res = xv.simulate(st, frames, idle=idle, backpressure=bp, work=st.out / "sim" / f"{idle}-{bp}")
        assert res["outputs"] == expected and not res["deadlock"]


def test_parallel_simulations_equal_sequential_ones(block):
    """simulate_parallel (forked runs sharing one build) returns, in order,
    exactly what the same runs give one after the other; a failing run
    (watchdog far below the frames' cycles) raises SimulationError with its
    results attached, after the runs before it finished."""
    m, st = block
    ctxs = contexts(m, 4, seed=7)
    frames, expected = xv.beats_of_contexts(m, st, ctxs)
    runs = [dict(work=st.out / "sim" / f"par-{i}-{b}", idle=i, backpressure=b, seed=3)
            for i, b in (("none", "none"), ("random", "random"), ("burst", "cycle"))]
    par = xv.simulate_parallel(st, frames, runs, jobs=2)
    seq = [xv.simulate(st, frames, **{**kw, "work": kw["work"].with_name(kw["work"].name + "-seq")}) for kw in runs]
    for p, s_ in zip(par, seq):
        assert p["outputs"] == expected and p["in_cycles"] == s_["in_cycles"] and p["out_cycles"] == s_["out_cycles"]
    assert par[0]["in_cycles"] != par[1]["in_cycles"]  # the stalled run really stalled
    bad = [runs[0], {**runs[1], "max_cycles": 20, "work": st.out / "sim" / "par-watchdog"}]
    with pytest.raises(xv.SimulationError) as info:
        xv.simulate_parallel(st, frames, bad, jobs=2)
    assert info.value.results["deadlock"], info.value.results


def test_first_divergence_names_the_layer(block):
    """RTL of the block against a reference whose position table differs:
    the first diverging layer is the position add, not the residual add."""
    _, st = block
    wrong = block_model(table_shift=1)
    ctx = contexts(wrong, 1, seed=3)[0]
    frames, _ = xv.beats_of_contexts(wrong, st, [ctx])
    div = xv.first_divergence(wrong, st, frames[0], ctx, work=st.out / "sim" / "taps")
    assert div is not None and div["layer"] == "PosAdd_rtl_0" and div["tensor"] == "p", div
    right = block_model()
    ctx = oxe.execute_onnx(right, {"x": ctx["x"]}, return_full_exec_context=True)
    assert xv.first_divergence(right, st, frames[0], ctx, work=st.out / "sim" / "taps") is None


def test_stitch_errors(tmp_path):
    m = block_model()
    bad = ModelWrapper(copy.deepcopy(m.model))
    bad.graph.node[2].input[0] = "f0"  # f0 now feeds two nodes, f1 dangles
    with pytest.raises(xs.StitchError, match="several nodes"):
        xs.edges_of(bad)
    plain = ModelWrapper(copy.deepcopy(m.model))
    plain.graph.node[1].op_type = "PosAdd"
    plain.graph.node[1].domain = "xnorvit.flows.ops"
    with pytest.raises(xs.StitchError, match="PosAdd_rtl_0 .*not an RTL dataflow op"):
        xs.edges_of(plain)
    with pytest.raises(xs.StitchError, match="not an HDL identifier"):
        xs.stitch(m, tmp_path, PART, top="bad-name")


# ---------------------------------------------------------------- CLI: build -> verify on a trained tiny run
def _cli(*args):
    from xnorvit.flows.sim import REPO_ROOT

    return subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "xnorvit"), *map(str, args)], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def exported_tiny(tiny_run, tmp_path_factory):
    import shutil

    from xnorvit.model.export import export_run

    run = tmp_path_factory.mktemp("runs") / "tiny"
    shutil.copytree(tiny_run, run)
    export_run(run, images=4)
    return run


@pytest.mark.slow  # ~5 min on 2 cores: trains, compiles and builds two Verilator models in a fresh dir
def test_build_and_verify_cli(exported_tiny, tmp_path):
    out = tmp_path / "build"
    p = _cli("build", exported_tiny, "--out", out, "--target-fps", 100000, "--images", 20)
    assert p.returncode == 0, p.stderr[-3000:]
    assert {"hw.onnx", "fifo.json", "rtl", "estimates.json"} <= {f.name for f in out.iterdir()}
    assert not list(tmp_path.glob("build.partial-*"))
    st = xs.load_stitched(out / "rtl")
    text = st.top_file.read_text()  # relocatable: memories under MEM_ROOT, no absolute path
    assert st.top_file.is_file() and str(out.resolve()) not in text and "MEM_ROOT" in text
    p = _cli("verify", out, "--images", 4)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((out / "report" / "summary.json").read_text())
    for key in xv.SUMMARY_KEYS:
        assert key in s, key
    assert s["images_verified"] == s["images_bit_exact"] == 4 and s["ii_cycles"] >= s["estimated_ii_cycles"]
    # an existing build is kept without --force
    p = _cli("build", exported_tiny, "--out", out, "--images", 0)
    assert p.returncode == 2 and "exists; pass --force" in p.stderr
    p = _cli("verify", tmp_path / "nope")
    assert p.returncode == 2 and "xnorvit build" in p.stderr


def test_block_ram_fifos_simulate_bit_exact(block, monkeypatch):
    """FIFOs from BLOCK_FIFO_MIN_DEPTH entries are instantiated with block-RAM
    storage (latency 3); the stitched block still equals FINN execution under
    random idle/backpressure after FIFO sizing with them."""
    m, _ = block
    monkeypatch.setattr(xs, "BLOCK_FIFO_MIN_DEPTH", 16)
    ctxs = contexts(m, 4, seed=3)
    out = OUT.parent / "stitch_block_bram"
    st = xs.stitch(m, out, PART, top="block_top")
    text = st.top_file.read_text()
    deep = [e for e in st.edges if e.depth >= 16]
    assert deep and text.count("BLOCK_RAM(1'b1)") == len(deep)
    frames, expected = xv.beats_of_contexts(m, st, ctxs)
    sizing = xv.size_fifos(m, st, frames)
    assert any(e.depth >= 16 for e in st.edges), sizing["depths"]  # the skip edge stays in block RAM
    assert st.top_file.read_text().count("BLOCK_RAM(1'b1)") == sum(e.depth >= 16 for e in st.edges)
    res = xv.simulate(st, frames, idle="random", backpressure="random", work=out / "sim" / "random")
    assert res["outputs"] == expected and not res["deadlock"]


def test_stitch_estimates_price_every_stream(block):
    """One row per stream; the fork-to-join skip is guessed at one frame, the
    others at MIN_DEPTH; a width converter where the widths differ; the
    estimate's totals are the layers' plus the streams'."""
    from xnorvit.flows.boards import get_board
    from xnorvit.flows.estimates import dwc_resources, estimate, fifo_resources, stitch_estimates

    m, st = block
    rows = {r["name"].split(":")[1]: r for r in stitch_estimates(m)}
    assert list(rows) == ["x", "f0", "f1", "p", "y"]
    assert rows["f1"]["depth"] == T * C and all(rows[t]["depth"] == xs.MIN_DEPTH for t in ("x", "f0", "p", "y"))
    assert [t for t, r in rows.items() if "DWC" in r["op_type"]] == ["f0", "f1", "p"]
    # f0: 16 -> 32 bits (narrow -> wide), p: 32 -> 8 (wide -> narrow: a multiplexer per output bit)
    assert dwc_resources(32, 8)["lut"] > dwc_resources(16, 32)["lut"] > 0 == dwc_resources(8, 8)["lut"]
    assert rows["p"]["lut"] == fifo_resources(xs.MIN_DEPTH, 8)["lut"] + dwc_resources(32, 8)["lut"]
    assert fifo_resources(4096, 8)["bram36"] == 1.0 and fifo_resources(100, 8)["bram36"] == 0.0
    est = estimate(m, get_board("pynq-z2"))
    for r in ("lut", "bram36"):
        want = sum(row[r] for row in est["layers"]) + sum(row[r] for row in rows.values())
        assert est["total"][r] == pytest.approx(want)
