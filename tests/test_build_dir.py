"""Build directories verify what they contain (issue #17): a build is
self-contained and relocatable (no generated file names a path outside it),
``manifest.json`` records the sha256 of every generated file, ``verify`` and
``report`` refuse a build whose files differ, and an accepted edit is what
the simulation then runs: a flipped MVAU weight bit that FINN execution of
the edited weights says changes the logits fails verification naming that
layer; an edit that changes no value is reported as such. (`report --synth`
of a moved build: tests/test_report.py.)

One tiny build (the digits ``bivit-t`` of tests/conftest.py, ~1 min) is
shared by the module; copies of it are edited, never the original.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xnorvit.flows import manifest as xm
from xnorvit.flows.sim import REPO_ROOT

N_IMAGES = 4


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xnorvit.flows.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=1800)


def _one_line_error(p: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), p.stderr[-2000:]
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    return lines[-1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tiny_build) -> Path:
    """The session's tiny build (tests/conftest.py), never edited here."""
    return tiny_build


def _copy(built: Path, tmp_path: Path, name: str = "copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(built, dst, ignore=shutil.ignore_patterns("sim", "report"))
    return dst


def test_build_is_self_contained_and_recorded(built):
    """Every file the design reads is inside the build, named relatively;
    the manifest holds each generated file's sha256 (recomputed here)."""
    rtl = built / "rtl"
    files = (rtl / "filelist.f").read_text().split()
    assert files and all(not Path(f).is_absolute() and (rtl / f).is_file() for f in files)
    for p in rtl.rglob("*"):
        if p.is_file() and p.suffix in (".sv", ".v", ".json", ".f") and "sim" not in p.relative_to(rtl).parts:
            text = p.read_text()
            assert str(built.resolve()) not in text and str(REPO_ROOT) not in text, p
            assert ".partial-" not in text, p
    m = json.loads((built / "manifest.json").read_text())
    rels = [p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()]
    expected = {r for r in rels if not r.startswith(("report/", "sim/", "rtl/sim/")) and r != "manifest.json"}
    assert set(m["files"]) == expected and m["edits"] == {}
    for rel, digest in m["files"].items():
        assert digest == _sha(built / rel), rel
    assert {"hw.onnx", "fifo.json", "compile.json", "rtl/xnorvit_accel.sv", "rtl/filelist.f"} <= set(m["files"])
    assert not list(built.parent.glob("*.partial-*"))


def _flip_changing_output(build: Path):
    """(weights file, line, bit) of the first bit of ``MVAU_xnor_rtl_0``'s
    weight file whose flip changes the integer logits of FINN execution on
    the first test images (the edited weight matrix is found by writing every
    single-entry flip of the original with the RTL's file writer)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from xnorvit.flows import mvau_rtl
    from xnorvit.flows.compile import execute
    from xnorvit.model.data import load_dataset

    model = ModelWrapper(str(build / "rtl" / "hw_stitched.onnx"))
    node = next(n for n in model.graph.node if n.op_type == "MVAU_xnor_rtl")
    inst = getCustomOp(node)
    pe, simd = inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD")
    w = np.asarray(model.get_initializer(node.input[1]))
    hexfile = build / "rtl" / "nodes" / node.name / f"{node.name}_weights.hex"
    lines = hexfile.read_text().split()
    x = load_dataset("digits").x_test[:N_IMAGES]
    ref = execute(model, x)
    tmp = build.parent / "flip.hex"
    for bit in range(4 * len(lines[0])):
        edited = list(lines)
        edited[0] = format(int(edited[0], 16) ^ (1 << bit), f"0{len(lines[0])}x")
        match = None
        for i, j in np.ndindex(w.shape):  # the weight entry this bit stores
            w2 = w.copy()
            w2[i, j] = -w2[i, j] if (w2 == -1).any() else 1 - w2[i, j]
            mvau_rtl.write_weights(tmp, w2, pe, simd, 1)
            if tmp.read_text().split() == edited:
                match = w2
                break
        assert match is not None, f"bit {bit} of word 0 maps to no single weight"
        m2 = ModelWrapper(str(build / "rtl" / "hw_stitched.onnx"))
        m2.set_initializer(node.input[1], match.astype(np.float32))
        if not np.array_equal(execute(m2, x), ref):
            return node.name, hexfile, edited
    pytest.fail(f"no bit of {hexfile.name}'s first word changes the logits on {N_IMAGES} images")


def test_copied_build_simulates_its_own_files(built, tmp_path):
    """A copy verifies from its own files; a flipped weight bit in the copy is
    refused (manifest), then, accepted, fails naming that layer; the original
    is untouched."""
    before = {p: _sha(p) for p in built.rglob("*") if p.is_file() and "sim" not in p.parts and "report" not in p.parts}
    copy = _copy(built, tmp_path)
    p = _cli("verify", copy, "--images", N_IMAGES)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{N_IMAGES}/{N_IMAGES} images bit-exact" in p.stdout
    node, hexfile, edited = _flip_changing_output(copy)
    hexfile.write_text("\n".join(edited) + "\n")
    rel = hexfile.relative_to(copy).as_posix()
    p = _cli("verify", copy, "--images", N_IMAGES)
    msg = _one_line_error(p)
    assert p.returncode == 2 and rel in msg and "--accept-edits" in msg, msg
    p = _cli("report", copy)
    assert p.returncode == 2 and rel in _one_line_error(p)
    p = _cli("verify", copy, "--images", N_IMAGES, "--accept-edits")
    msg = _one_line_error(p)
    assert p.returncode == 1 and f"first diverging layer {node} " in msg, msg
    m = json.loads((copy / "manifest.json").read_text())
    assert m["files"][rel] == _sha(hexfile) and m["edits"][rel]["built"] == _sha(built / rel)
    rep = json.loads((copy / "report" / "verify.json").read_text())
    assert rep["mismatch"]["layer"] == node and rep["accepted_edits"] == {node: [rel]}
    # the original: same bytes, its manifest still holds
    after = {p: _sha(p) for p in before}
    assert after == before
    assert xm.check_manifest(built)["edits"] == {}


def test_edit_without_effect_is_reported(built, tmp_path):
    """An accepted edit that changes no value (a comment appended to a
    threshold file) passes, and the verification says which node was edited
    and that its streams and the logits are unchanged."""
    copy = _copy(built, tmp_path)
    thr = sorted((copy / "rtl" / "nodes").glob("Thresholding_rtl_*/*.dat"))[0]
    text = thr.read_text()
    thr.write_text(text + "// reviewed\n")  # $readmemh comment: same values, other bytes
    node = thr.parent.name
    p = _cli("verify", copy, "--images", N_IMAGES, "--accept-edits")
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    assert f"accepted edit of {node}" in out and "no output changed" in out and "output streams equal" in out, out[-3000:]
    rep = json.loads((copy / "report" / "verify.json").read_text())
    assert rep["edits_without_effect"] == [node] and rep["stream_differences"] == {node: []}
    assert rep["images_bit_exact"] == N_IMAGES
    # undoing the edit drops it from the manifest
    thr.write_text(text)
    assert xm.check_manifest(copy, accept_edits=True)["edits"] == {}


def test_manifest_names_changed_missing_and_added_files(tmp_path):
    """check_manifest on a hand-made directory: each kind of difference is
    named; excluded directories are not covered; accepting records them."""
    b = tmp_path / "b"
    (b / "rtl" / "nodes" / "N_0").mkdir(parents=True)
    (b / "rtl" / "sim").mkdir()
    (b / "report").mkdir()
    (b / "hw.onnx").write_bytes(b"graph")
    (b / "rtl" / "nodes" / "N_0" / "w.hex").write_text("0a\n")
    (b / "rtl" / "nodes" / "N_0" / "gone.hex").write_text("01\n")
    with pytest.raises(xm.ManifestError, match="no manifest.json"):
        xm.check_manifest(b)
    m = xm.write_manifest(b)
    assert set(m["files"]) == {"hw.onnx", "rtl/nodes/N_0/w.hex", "rtl/nodes/N_0/gone.hex"}
    assert m["files"]["hw.onnx"] == hashlib.sha256(b"graph").hexdigest()
    (b / "report" / "x.json").write_text("{}")
    (b / "rtl" / "sim" / "y").write_text("")
    assert xm.check_manifest(b) == m  # later steps' outputs are not covered
    (b / "rtl" / "nodes" / "N_0" / "w.hex").write_text("0b\n")
    (b / "rtl" / "nodes" / "N_0" / "gone.hex").unlink()
    (b / "rtl" / "extra.sv").write_text("module x; endmodule\n")
    with pytest.raises(xm.ManifestError) as ei:
        xm.check_manifest(b)
    msg = str(ei.value)
    assert "changed: rtl/nodes/N_0/w.hex" in msg and "missing: rtl/nodes/N_0/gone.hex" in msg
    assert "not recorded: rtl/extra.sv" in msg and "\n" not in msg
    m2 = xm.check_manifest(b, accept_edits=True)
    assert set(m2["edits"]) == {"rtl/nodes/N_0/w.hex", "rtl/nodes/N_0/gone.hex", "rtl/extra.sv"}
    assert m2["edits"]["rtl/nodes/N_0/gone.hex"]["accepted"] is None
    assert m2["edits"]["rtl/extra.sv"]["built"] is None
    assert xm.edited_nodes(m2) == {"(build)": ["rtl/extra.sv"], "N_0": ["rtl/nodes/N_0/gone.hex", "rtl/nodes/N_0/w.hex"]}
    xm.check_manifest(b)  # accepted: passes now
    (b / "manifest.json").write_text("{broken")
    with pytest.raises(xm.ManifestError, match="not a valid manifest"):
        xm.check_manifest(b)
