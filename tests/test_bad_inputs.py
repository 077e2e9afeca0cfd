"""The bad-input catalogue (issue #16): every mistake a user can make with
the command line gives exactly one line ``error: ...`` on stderr that names
the problem (exit 2 for bad input, 1 for a failed check), no traceback, and
leaves every existing output byte for byte as it was.

Entries: unknown model / dataset / board; missing, truncated and foreign
checkpoints; a checkpoint carrying a pickle payload (must not run); an ONNX
that is not a binary ViT; folding JSONs that break divisibility, exceed the
board, are malformed or name an unknown node; existing run/build
directories without ``--force``; a build interrupted mid-way and re-run; a
half-written build directory; ``verify`` on a build without hardware files;
a build whose memory files were altered (refused by its manifest, then,
accepted, failing naming the layer; the full cases are in
tests/test_build_dir.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BOARD = "pynq-z2"


def _cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xnorvit.flows.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=1800, cwd=cwd)


def _error(p: subprocess.CompletedProcess, code: int = 2) -> str:
    """The one error line of a failed command (asserts there is exactly one, and no traceback)."""
    assert p.returncode == code, (p.returncode, p.stdout[-1500:], p.stderr[-1500:])
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and "Warning" not in ln and not ln.startswith("  ")]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], p.stderr[-3000:]
    return errors[0]


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory) -> Path:
    """A trained and exported tiny run (copy; the session's tiny_run stays pristine)."""
    from xnorvit.model.export import export_run

    r = tmp_path_factory.mktemp("bad") / "run"
    shutil.copytree(tiny_run, r)
    export_run(r, images=4)
    return r


@pytest.fixture(scope="module")
def compiled(run, tmp_path_factory) -> Path:
    """``xnorvit compile`` output of the tiny run (hw.onnx, folding.json, manifest)."""
    out = tmp_path_factory.mktemp("bad") / "compiled"
    p = _cli("compile", run, "--out", out, "--target-fps", 100000, "--images", 0)
    assert p.returncode == 0, p.stderr[-3000:]
    return out


# ----------------------------------------------------------------- names
@pytest.mark.parametrize("args, named", [
    (("train", "--model", "vit-huge", "--dataset", "digits"), ("vit-huge", "bivit-t", "didbvit-t")),
    (("train", "--dataset", "imagenet"), ("imagenet", "mnist", "digits")),
])
def test_unknown_model_and_dataset(tmp_path, args, named):
    out = tmp_path / "r"
    msg = _error(_cli(*args, "--out", out))
    assert all(n in msg for n in named), msg
    assert not out.exists()


def test_unknown_board(run, tmp_path):
    before = _snapshot(run)
    for cmd in ("compile", "build"):
        msg = _error(_cli(cmd, run, "--out", tmp_path / cmd, "--board", "zedboard"))
        assert "zedboard" in msg and "pynq-z2" in msg and "kv260" in msg, msg
        assert not (tmp_path / cmd).exists()
    assert _snapshot(run) == before


# ----------------------------------------------------------------- checkpoints
def _bad_run(run: Path, tmp_path: Path, kind: str) -> Path:
    """A copy of ``run`` whose model.pt is missing, truncated or foreign."""
    import torch

    r = tmp_path / kind
    shutil.copytree(run, r)
    pt = r / "model.pt"
    if kind == "missing":
        pt.unlink()
    elif kind == "truncated":
        pt.write_bytes(pt.read_bytes()[:1000])
    elif kind == "foreign":  # a real torch file of another structure
        torch.save({"state_dict": {"w": torch.zeros(3)}, "epoch": 3}, pt)
    elif kind == "zip":  # a zip archive that is no torch checkpoint
        import zipfile

        with zipfile.ZipFile(pt, "w") as z:
            z.writestr("readme.txt", "not a checkpoint")
    return r


@pytest.mark.parametrize("kind, named", [("missing", "not found"), ("truncated", "corrupt or unreadable"),
                                         ("foreign", "not an xnorvit checkpoint"), ("zip", "corrupt or unreadable")])
def test_missing_truncated_and_foreign_checkpoints(run, tmp_path, kind, named):
    r = _bad_run(run, tmp_path, kind)
    before = _snapshot(r)
    if kind != "missing":
        msg = _error(_cli("export", r, "--images", 2))
        assert named in msg and "model.pt" in msg, msg
    msg = _error(_cli("compile", r, "--out", tmp_path / "c", "--images", 0))
    assert ("model.pt" in msg) and (named in msg or kind == "missing"), msg
    assert not (tmp_path / "c").exists() and not list(tmp_path.glob("c.partial-*"))
    if kind != "missing":
        msg = _error(_cli("train", "--dataset", "digits", "--out", tmp_path / "t", "--teacher", r / "model.pt",
                          "--epochs", 1))
        assert named in msg, msg
        assert not (tmp_path / "t").exists()
    assert _snapshot(r) == before


class _Payload:
    """Unpickling this runs ``touch MARKER`` (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_pickle_payload_is_refused_and_not_run(run, tmp_path):
    import torch

    marker = tmp_path / "PAYLOAD_RAN"
    r = tmp_path / "evil"
    shutil.copytree(run, r)
    good = torch.load(r / "model.pt", weights_only=True)
    torch.save({**good, "extra": _Payload(marker)}, r / "model.pt")
    torch.save({**good, "extra": _Payload(marker)}, r / "teacher.pt")
    before = _snapshot(r)
    for args in (("export", r), ("compile", r, "--out", tmp_path / "c", "--images", 0),
                 ("train", "--dataset", "digits", "--out", tmp_path / "t", "--teacher", r / "teacher.pt",
                  "--epochs", 1)):
        msg = _error(_cli(*args))
        assert "refused" in msg and "pickled objects" in msg, msg
        assert not marker.exists(), f"the payload ran during {args[0]}"
    assert _snapshot(r) == before and not (tmp_path / "c").exists() and not (tmp_path / "t").exists()


# ----------------------------------------------------------------- graphs
def test_onnx_that_is_not_a_binary_vit_names_the_node(run, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    r = tmp_path / "float"
    shutil.copytree(run, r)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
    g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"], name="Flatten_0"),
                           helper.make_node("Softmax", ["f"], ["y"], name="Softmax_0", axis=1)], "mlp", [x], [y])
    onnx.save(helper.make_model(g), r / "model.onnx")
    msg = _error(_cli("compile", r, "--out", tmp_path / "c", "--images", 0))
    assert "unsupported node 'Flatten_0'" in msg, msg
    assert not (tmp_path / "c").exists()


# ----------------------------------------------------------------- folding
def _folding(compiled: Path, tmp_path: Path, kind: str) -> Path:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from xnorvit.flows import finn_env

    finn_env.setup()
    import xnorvit.flows.ops  # noqa: F401
    import xnorvit.flows.ops.rtl  # noqa: F401

    f = json.loads((compiled / "folding.json").read_text())
    path = tmp_path / f"{kind}.json"
    m = ModelWrapper(str(compiled / "hw.onnx"))
    mvaus = [n for n in m.graph.node if n.op_type == "MVAU_xnor_rtl"]
    if kind == "malformed":
        path.write_text("{not json")
        return path
    if kind == "divisibility":
        mh = getCustomOp(mvaus[0]).get_nodeattr("MH")
        f[mvaus[0].name]["PE"] = next(p for p in range(2, mh) if mh % p)
    elif kind == "unknown-node":
        f["MVAU_xnor_rtl_99"] = {"PE": 1, "SIMD": 1}
    elif kind == "exceeds-board":  # every MVAU fully parallel
        for n in m.graph.node:
            if n.op_type.startswith("MVAU"):
                inst = getCustomOp(n)
                f[n.name].update(PE=inst.get_nodeattr("MH"), SIMD=inst.get_nodeattr("MW"))
    path.write_text(json.dumps(f))
    return path


@pytest.mark.parametrize("kind, named", [
    ("divisibility", ("MVAU_xnor_rtl_0", "must divide")),
    ("unknown-node", ("MVAU_xnor_rtl_99", "not in the graph")),
    ("malformed", ("malformed.json", "not JSON")),
    ("exceeds-board", ("binding resource", "pynq-z2")),
])
def test_bad_folding(run, compiled, tmp_path, kind, named):
    cfg = _folding(compiled, tmp_path, kind)
    out = tmp_path / "c"
    msg = _error(_cli("compile", run, "--out", out, "--images", 0, "--folding", cfg))
    assert all(n in msg for n in named), msg
    assert not out.exists() and not list(tmp_path.glob("c.partial-*"))


# ----------------------------------------------------------------- existing outputs
def test_existing_outputs_kept_without_force(run, compiled, tmp_path):
    before_run, before_build = _snapshot(run), _snapshot(compiled)
    msg = _error(_cli("train", "--dataset", "digits", "--out", run, "--epochs", 1))
    assert str(run) in msg and "--force" in msg, msg
    for cmd in ("compile", "build"):
        msg = _error(_cli(cmd, run, "--out", compiled, "--images", 0))
        assert "exists; pass --force" in msg, msg
    assert _snapshot(run) == before_run and _snapshot(compiled) == before_build


def test_verify_and_report_without_hardware_files(compiled, tmp_path):
    """A compile-only directory has no stitched RTL: verify says to build;
    report --synth says so too; a directory that is no build at all is named."""
    msg = _error(_cli("verify", compiled, "--images", 2))
    assert "fifo.json missing" in msg and "xnorvit build" in msg, msg
    msg = _error(_cli("report", compiled, "--synth"))
    assert "stitch.json missing" in msg and "xnorvit build" in msg, msg
    msg = _error(_cli("verify", tmp_path / "nothing"))
    assert "nothing" in msg and ("no build directory" in msg or "does not exist" in msg), msg
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("hello")
    assert "xnorvit build" in _error(_cli("report", stray))


# ----------------------------------------------------------------- interrupted builds
def test_interrupted_build_leaves_nothing_and_rerun_builds(run, tmp_path, monkeypatch):
    """A build interrupted during FIFO sizing (after compile and stitching)
    leaves neither OUT nor a partial directory; re-run, it builds without
    --force; a half-written directory (what a SIGKILL leaves: no manifest) is
    refused by verify and report; an altered memory file of the finished
    build is refused by both, naming it."""
    from xnorvit.flows import verify as xv

    out = tmp_path / "build"

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(xv, "size_fifos", interrupt)
    with pytest.raises(KeyboardInterrupt):
        xv.build_run(run, out, BOARD, target_fps=100_000, images=0)
    assert not out.exists() and not list(tmp_path.glob("build.*")), list(tmp_path.iterdir())
    monkeypatch.undo()
    p = _cli("build", run, "--out", out, "--target-fps", 100000, "--images", 0)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "manifest.json").is_file() and not list(tmp_path.glob("build.partial-*"))
    # quiet: simulator/cocotb output and finn-plus's chatter go to logs in the build, not the terminal
    said = p.stdout + p.stderr
    assert "cocotb" not in said and "AbsorbScalarBias" not in said and "Warning" not in said, said[-3000:]
    assert list((out / "rtl" / "sim").glob("*/sim_*.log")) and "streamlined:" in (out / "compile.log").read_text()
    # what a killed build leaves: everything but the manifest, under OUT.partial-*
    half = tmp_path / "build.partial-x1"
    shutil.copytree(out, half, ignore=shutil.ignore_patterns("sim", "manifest.json"))
    for cmd in (("verify", half, "--images", 2), ("report", half)):
        msg = _error(_cli(*cmd))
        assert "no manifest.json" in msg and "not a finished xnorvit build" in msg, msg
    # an altered memory file: the manifest names it
    hexfile = next((out / "rtl" / "nodes").glob("MVAU_xnor_rtl_0/*_weights.hex"))
    words = hexfile.read_text().split()
    words = [format(int(w, 16) ^ int("1" * (4 * len(w)), 2), f"0{len(w)}x") for w in words]  # every bit flipped
    hexfile.write_text("\n".join(words) + "\n")
    for cmd in ("verify", "report"):
        msg = _error(_cli(cmd, out))
        assert hexfile.relative_to(out).as_posix() in msg and "--accept-edits" in msg, msg
    # (accepted, such an edit fails verification naming the layer: tests/test_build_dir.py)
