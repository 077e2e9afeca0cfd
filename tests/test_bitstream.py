"""The Vivado handoff (flows/bitstream.py, issue #15): ``xnorvit bitstream``
on a stitched build writes the project script and, with no Vivado here,
says in one line what to run where; the script runs end to end in a Tcl
interpreter whose Vivado commands are stubs that record every call (so its
syntax, its control flow and the files it names are checked, not what
Vivado would make of them); the AXI-stream wrapper's ports match the
stitched top's (parsed from its HDL) and it lints in Verilator.

The build is tests/test_stitch.py's residual block stitched into a build
directory of tests/test_report.py (seconds, no training)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xnorvit.flows.manifest import write_manifest
from xnorvit.flows.sim import REPO_ROOT, verilator_executable

TCLSH = shutil.which("tclsh") or shutil.which("tclsh8.6")

#: Vivado's commands as Tcl stubs: each call is recorded as one line of
#: tab-separated words in $::calls_file; the few whose results the script
#: computes with return plausible values; launch_runs leaves the files
#: Vivado's runs would.
STUBS = r"""
set ::calls [open $::calls_file w]
proc record {args} { puts $::calls [join $args "\t"]; flush $::calls }
foreach cmd {create_project set_param set_property current_project create_bd_design create_bd_cell
             apply_bd_automation connect_bd_intf_net connect_bd_net assign_bd_address save_bd_design
             validate_bd_design make_wrapper update_compile_order wait_on_run open_run report_utilization
             close_project add_files set_msg_config reset_msg_config} {
    proc $cmd {args} "record $cmd {*}\$args; return {}"
}
foreach cmd {get_ipdefs get_bd_cells get_bd_pins get_bd_intf_pins get_bd_addr_segs get_files get_filesets
             get_runs get_bd_intf_nets} {
    proc $cmd {args} "record $cmd {*}\$args; return \[lindex \$args end\]"
}
proc get_param {args} { record get_param {*}$args; return {} }
proc get_property {args} {
    record get_property {*}$args
    switch -- [lindex $args 0] { CONFIG.ADDR_WIDTH { return 16 } VLNV { return xilinx.com:ip:stub:1.0 } }
    return {}
}
proc launch_runs {args} {
    record launch_runs {*}$args
    foreach f {finn_zynq_link.runs/impl_1/top_wrapper.bit finn_zynq_link.gen/sources_1/bd/top/hw_handoff/top.hwh} {
        file mkdir [file dirname $f]; set h [open $f w]; puts $h stub; close $h
    }
}
proc unknown {args} { error "not a Vivado command the stubs know: [lindex $args 0]" }
source $::script
close $::calls
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    from test_report import make_build
    from test_stitch import PART, block_model

    from xnorvit.flows import stitch as xs

    b = make_build(tmp_path_factory.mktemp("bitstream"))
    xs.stitch(block_model(), b / "rtl", PART, top="block_top")
    write_manifest(b)
    return b


def _xnorvit(*args):
    return subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "xnorvit"), *map(str, args)], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def _top_ports(sv: str, module: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of ``module``'s ANSI port list (independent of the generators)."""
    m = re.search(rf"module\s+{module}\b.*?\)\s*\((.*?)\);", sv, re.S)
    assert m, module
    ports = {}
    for d, rng, name in re.findall(r"(input|output)\s+(?:logic|wire|reg)?\s*(\[[^\]]+\])?\s*(\w+)", m.group(1)):
        w = 1
        if rng:
            hi, lo = (int(eval(x)) for x in rng.strip("[]").split(":"))
            w = hi - lo + 1
        ports[name] = (d, w)
    return ports


def test_bitstream_writes_project_and_says_what_to_run(build, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    p = _xnorvit("bitstream", copy, "--board", "pynq-z2")
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Vivado is not on PATH" in lines[0] and "vivado -mode batch -source make_bitstream.tcl" \
        in lines[0] and str(copy / "vivado") in lines[0], p.stdout
    v = copy / "vivado"
    assert {f.name for f in v.iterdir()} == {"block_top_axis.v", "zynq_shell.tcl", "make_bitstream.tcl", "accelerator.json",
                                          "driver.py"}
    assert (v / "driver.py").read_bytes() == (REPO_ROOT / "flows" / "driver.py").read_bytes()
    meta = json.loads((v / "accelerator.json").read_text())
    assert meta["dma_in_bits"] == 16 and meta["dma_out_bits"] == 8 and meta["out_beats"] == 48
    # the manifest does not cover vivado/: the build still verifies as built
    from xnorvit.flows.manifest import check_manifest

    assert check_manifest(copy)["edits"] == {}
    # existing output kept without --force; a board of another part refused
    p = _xnorvit("bitstream", copy)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: ") and "--force" in p.stderr
    assert _xnorvit("bitstream", copy, "--force").returncode == 0
    p = _xnorvit("bitstream", copy, "--board", "kv260", "--force")
    assert p.returncode == 2 and "xck26" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = _xnorvit("bitstream", tmp_path / "nope")
    assert p.returncode == 2 and "xnorvit build" in p.stderr


@pytest.mark.skipif(TCLSH is None, reason="no tclsh")
def test_tcl_runs_end_to_end_against_stubs_from_a_moved_build(build, tmp_path):
    from xnorvit.flows.bitstream import write_vivado_project

    src = tmp_path / "here"
    shutil.copytree(build, src)
    write_vivado_project(src)
    moved = tmp_path / "elsewhere" / "build"
    moved.parent.mkdir()
    src.rename(moved)  # the script finds everything from its own location
    v = moved / "vivado"
    calls_file = tmp_path / "calls.tsv"
    driver = tmp_path / "stubs.tcl"
    driver.write_text(f"set ::calls_file {{{calls_file}}}\nset ::script {{{v / 'make_bitstream.tcl'}}}\n" + STUBS)
    r = subprocess.run([TCLSH, str(driver)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "xnorvit: wrote" in r.stdout and (v / "block_top.bit").is_file() and (v / "block_top.hwh").is_file()
    calls = [ln.split("\t") for ln in calls_file.read_text().splitlines()]
    names = [c[0] for c in calls]
    # every file handed to Vivado exists in the moved build
    added = [a for c in calls if c[0] == "add_files" for a in c[1:] if a != "-norecurse"]
    assert added and all(Path(a).is_file() and Path(a).is_relative_to(moved) for a in added), added
    rel = {Path(a).relative_to(moved / "rtl").as_posix() for a in added if Path(a).is_relative_to(moved / "rtl")}
    listed = [f for f in (moved / "rtl" / "filelist.f").read_text().split() if not f.endswith(".vlt")]
    assert set(listed) <= rel and any(f.endswith("_pos.hex") for f in rel)
    # the accelerator cell, its memories' root, the DMA, the PS, the runs
    assert ["create_bd_cell", "-type", "module", "-reference", "block_top_axis", "accel"] in calls
    mem = next(c for c in calls if c[:2] == ["set_property", "CONFIG.MEM_ROOT"])
    assert mem[2] == f"{moved / 'rtl'}/"
    assert any(c[0] == "create_bd_cell" and c[-1] == "axi_dma_0" for c in calls)
    assert any(c[0] == "create_bd_cell" and c[-1] == "zynq_ps" for c in calls)
    assert names.index("launch_runs") > names.index("make_wrapper") > names.index("validate_bd_design")
    # the wrapper's interfaces the block design connects exist
    wrapper = _top_ports((v / "block_top_axis.v").read_text(), "block_top_axis")
    pins = {a.split("/", 1)[1] for c in calls if c[0] in ("get_bd_intf_pins", "get_bd_pins") for a in c[1:]
            if a.startswith("accel/")}
    assert pins == {"s_axis", "m_axis", "ap_clk", "ap_rst_n"}
    for intf in ("s_axis", "m_axis"):
        assert {f"{intf}_tdata", f"{intf}_tvalid", f"{intf}_tready"} <= set(wrapper)
    assert "m_axis_tlast" in wrapper and "m_axis_tkeep" in wrapper


def test_wrapper_matches_the_stitched_top_and_lints(build, tmp_path):
    from xnorvit.flows import stitch as xs
    from xnorvit.flows.bitstream import write_vivado_project

    b = tmp_path / "b"
    shutil.copytree(build, b)
    v = write_vivado_project(b)
    st = xs.load_stitched(b / "rtl")
    top = _top_ports(st.top_file.read_text(), st.top)
    wrapper = _top_ports((v / "block_top_axis.v").read_text(), "block_top_axis")
    meta = json.loads((v / "accelerator.json").read_text())
    for name, (d, w) in top.items():
        if name.endswith("tdata"):
            assert wrapper[name] == (d, meta["dma_in_bits"] if name.startswith("s_") else meta["dma_out_bits"])
            assert w <= wrapper[name][1]
        else:
            assert wrapper[name] == (d, w), name
    r = subprocess.run([verilator_executable(), "--lint-only", "-Wall", "-Wno-fatal", "--top-module", "block_top_axis",
                        *st.files, str(v / "block_top_axis.v")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    own = [ln for ln in r.stderr.splitlines() if ln.startswith("%") and "block_top_axis.v" in ln]
    assert not own, "\n".join(own)
