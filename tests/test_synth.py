"""flows/synth.py: Yosys xc7 synthesis of a kernel configuration, cached, with parsed counts."""

from __future__ import annotations

import json

import pytest

from xnorvit.flows import synth


def test_parse_stat_counts_luts_rams_and_ffs():
    stat = {"design": {"num_cells_by_type": {"LUT2": 3, "LUT6": 4, "RAM32M": 2, "SRLC32E": 1, "FDRE": 5,
                                              "FDSE": 1, "CARRY4": 2, "RAMB18E1": 3, "RAMB36E1": 1,
                                              "DSP48E1": 2, "MUXF7": 1}}}
    r = synth.parse_stat(stat)
    assert (r["lut_logic"], r["lut_mem"], r["lut"]) == (7, 9, 16)
    assert (r["ff"], r["carry4"], r["bram18"], r["bram36"], r["dsp"]) == (6, 2, 3, 1, 2)
    assert r["bram36_equiv"] == 2.5


def test_parse_params_and_errors():
    assert synth.parse_params(["PE=4", "F=w.hex", "X=0x10"]) == {"PE": 4, "F": "w.hex", "X": 16}
    with pytest.raises(synth.SynthesisError, match="NAME=VALUE"):
        synth.parse_params(["PE4"])
    with pytest.raises(synth.SynthesisError, match="unknown kernel"):
        synth.kernel_sources("no_such_kernel")
    with pytest.raises(ValueError, match="must divide"):
        synth.random_memories("mvau_xnor", {"MW": 8, "MH": 6, "PE": 4})


def test_synthesize_small_mvau_xnor(tmp_path):
    """A small XNOR MVAU synthesizes to real logic; the second call hits the cache."""
    out = tmp_path / "r.json"
    params = ["MW=16", "MH=8", "PE=2", "SIMD=8", "N_THRESH=1"]
    r = synth.synth_command("mvau_xnor", params, out=out)
    assert r["lut"] > 0 and r["ff"] > 0
    assert r["dsp"] == 0  # XNOR-popcount needs no multiplier
    assert json.loads(out.read_text())["lut"] == r["lut"]
    again = synth.synth_command("mvau_xnor", params)
    assert again["cached"] and again["lut"] == r["lut"]


def test_synthesize_reports_yosys_errors(tmp_path):
    bad = tmp_path / "bad.sv"
    bad.write_text("module bad(input logic a, output logic b); assign b = a +; endmodule\n")
    with pytest.raises(synth.SynthesisError, match="yosys failed"):
        synth.synthesize("bad", [bad], cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError):
        synth.synthesize("bad", [tmp_path / "missing.sv"], cache_dir=tmp_path / "cache")
