"""Pipeline steps from a trained run to a compiled hardware graph.

:func:`compile_run` (``xnorvit compile``): ``runs/NAME/model.onnx`` (QONNX,
``xnorvit export``) -> streamlined integer graph
(:mod:`xnorvit.flows.compile`) -> FINN HW ops -> RTL backends
(:mod:`xnorvit.flows.to_hw`) -> folding (:mod:`xnorvit.flows.folding`) ->
estimates (:mod:`xnorvit.flows.estimates`), checked against the PyTorch
model's integer logits on real held-out images. Writes ``OUT/``:

``hw.onnx``           the folded hardware graph (every node an RTL backend op)
``folding.json``      FINN folding config (edit and pass back with ``--folding``)
``estimates.json``    per-layer and total LUT/FF/BRAM36/DSP, cycles, II, fps, utilization
``estimates.md``      the same as a table
``check.json``        images checked, bit-exact count, argmax agreement, accuracy
``compile.json``      inputs (run, board, target fps, fclk) and stage op counts
``compile.log``       the stages' op counts and what finn-plus/qonnx printed while transforming
``manifest.json``     sha256 of every file above, written last (:mod:`xnorvit.flows.manifest`)

Nothing is written until every check passed: the directory is assembled as
``OUT.partial-*`` and renamed; an existing ``OUT`` is kept unless ``force``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["CompileError", "OutputExistsError", "compile_run", "check_hw_graph", "estimates_markdown",
           "prepare_output", "commit_output"]


class CompileError(RuntimeError):
    """The compiled graph does not reproduce PyTorch (names the stage and images)."""


class OutputExistsError(FileExistsError):
    """The output directory exists and ``force`` was not given."""


def prepare_output(out: os.PathLike | str, force: bool) -> Path:
    """Check ``out`` may be written; return a fresh sibling ``OUT.partial-*`` dir.

    Raises:
        OutputExistsError: ``out`` exists and not ``force``.
    """
    out = Path(out)
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{out.name}.partial-", dir=out.parent))


def commit_output(tmp: Path, out: os.PathLike | str) -> Path:
    """Move the finished ``tmp`` dir to ``out`` (replacing an old one only now)."""
    out = Path(out)
    if out.exists():
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
    return out


@contextlib.contextmanager
def _logs_to(stream, names: tuple[str, ...]):
    """Send the ``logging`` records of the loggers ``names`` (and their
    children) to ``stream`` only, for the duration of the block."""
    import logging

    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(n) for n in names]
    saved = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, prop in zip(loggers, saved):
            lg.removeHandler(handler)
            lg.propagate = prop


def check_hw_graph(model, torch_model, images: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Integer logits of ``model`` (FINN node-by-node execution) against the
    PyTorch model's on uint8 ``images`` ``(N, C, H, W)``.

    Returns:
        ``{"images", "bit_exact", "mismatching_images", "argmax_equal",
        "accuracy"}`` (accuracy of the hardware graph's argmax on ``labels``).
    """
    import torch

    from xnorvit.flows.compile import execute, integer_logits
    from xnorvit.model.data import to_float

    torch_model.eval()
    with torch.no_grad():
        ref = torch_model.integer_logits(to_float(images)).numpy()
    got = integer_logits(model, execute(model, images), torch_model.logit_scale())
    bad = np.flatnonzero(np.any(got != ref, axis=1))
    r = {"images": int(len(images)), "bit_exact": int(len(images) - len(bad)),
         "mismatching_images": [int(i) for i in bad[:20]],
         "argmax_equal": int(np.sum(got.argmax(1) == ref.argmax(1)))}
    if labels is not None:
        r["accuracy"] = float(np.mean(got.argmax(1) == labels))
    return r


def estimates_markdown(est: dict) -> str:
    """Markdown table of :func:`xnorvit.flows.estimates.estimate`."""
    cols = ("name", "op_type", "PE", "SIMD", "PAR_T", "PAR_D", "cycles", "lut", "ff", "bram36", "dsp")
    lines = [f"# Estimates: {est['board']} ({est['part']}) at {est['fclk_mhz']:g} MHz", "",
             f"II {est['ii_cycles']} cycles (bottleneck {est['bottleneck']}), {est['fps']:.0f} frames/s; "
             f"LUT {est['total']['lut']} ({100 * est['util']['lut']:.1f}%), "
             f"BRAM36 {est['total']['bram36']:g} ({100 * est['util']['bram36']:.1f}%), "
             f"DSP {est['total']['dsp']} ({100 * est['util']['dsp']:.1f}%), FF {est['total']['ff']} "
             f"({est['ff_layers_modelled']} of {len(est['layers'])} layers have an FF model)", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in est["layers"]:
        lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in cols) + " |")
    st = est.get("stitch") or []
    if st:
        tot = est["stitch_total"]
        lines += ["", f"Stitched streams (included in the totals): {len(st)} FIFOs "
                  f"({sum(r['block_ram'] for r in st)} in block RAM), {sum('DWC' in r['op_type'] for r in st)} width "
                  f"converters: LUT {tot['lut']}, FF {tot['ff']}, BRAM36 {tot['bram36']:g} (FIFO depths guessed "
                  "before sizing: a fork-to-join skip holds one frame, other streams 2 entries)."]
    return "\n".join(lines) + "\n"


def compile_run(run: os.PathLike | str, out: os.PathLike | str, board: str = "pynq-z2", target_fps: float = 20000,
                fclk_mhz: float = 100.0, images: int = 200, folding: os.PathLike | str | None = None,
                force: bool = False, max_util: float = 0.7, log: Callable[[str], None] | None = None) -> dict:
    """Compile ``run`` for ``board`` (see module doc) and return the summary.

    Args:
        run: a trained and exported run directory (``model.pt``, ``model.onnx``).
        out: output directory.
        board: a name of :data:`xnorvit.flows.boards.BOARDS`.
        target_fps, fclk_mhz: folding target (II = fclk / fps cycles).
        images: real held-out test images checked (0: no check).
        folding: a FINN folding JSON to apply instead of folding for ``target_fps``.
        force: replace an existing ``out``.
        max_util: largest fraction of the board's LUT/BRAM the design may use.

    Raises:
        OutputExistsError: ``out`` exists without ``force`` (nothing done).
        FileNotFoundError: the run, its model.onnx or model.pt is missing.
        KeyError: unknown board.
        xnorvit.flows.transforms.UnsupportedNodeError: the graph is not a
            supported binary ViT (names the first unsupported node).
        xnorvit.flows.folding.FoldingError: the folding breaks divisibility,
            misses the target or exceeds the board (names the binding resource).
        CompileError: the hardware graph differs from PyTorch on a test image.
    """
    from xnorvit.flows import compile as xc
    from xnorvit.flows import folding as xf
    from xnorvit.flows.boards import get_board
    from xnorvit.flows.estimates import estimate
    from xnorvit.flows.to_hw import hw_stages
    from xnorvit.model.data import load_dataset
    from xnorvit.model.train import load_checkpoint

    log = log or (lambda s: None)
    run, out = Path(run), Path(out)
    b = get_board(board)
    buf = io.StringIO()  # what finn-plus/qonnx print while transforming: OUT/compile.log, not the terminal
    real_stdout = sys.stdout

    def say(s: str) -> None:
        buf.write(s + "\n")
        with contextlib.redirect_stdout(real_stdout):
            log(s)

    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; pass --force to overwrite it")
    onnx_path, pt_path = run / "model.onnx", run / "model.pt"
    if not run.is_dir():
        raise FileNotFoundError(f"no run directory {run}")
    if not pt_path.is_file():
        raise FileNotFoundError(f"{pt_path} missing: train first (xnorvit train --out {run})")
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path} missing: export first (xnorvit export {run})")
    cfg = xf.load_folding(folding) if folding else None
    t0 = time.time()
    torch_model, meta = load_checkpoint(pt_path)
    with contextlib.redirect_stdout(buf), _logs_to(buf, ("finn", "finn_logger", "qonnx")):
        stages = xc.streamline_stages(onnx_path, log=say)
        hw = hw_stages(stages["streamlined"], b.part, log=say)
    if cfg is not None:
        folded = xf.apply_folding(hw["specialized"], cfg)
        est = xf.check_resources(folded, b, fclk_mhz, max_util)
    else:
        folded = xf.fold(hw["specialized"], target_fps, fclk_mhz, b, max_util)
        est = estimate(folded, b, fclk_mhz)
    log(f"folded: II {est['ii_cycles']} cycles, {est['fps']:.0f} frames/s at {fclk_mhz:g} MHz, "
        f"LUT {100 * est['util']['lut']:.1f}%, BRAM36 {100 * est['util']['bram36']:.1f}% of {b.name}")
    check = None
    if images > 0:
        data = load_dataset(meta.get("dataset", "mnist"))
        n = min(images, len(data.x_test))
        check = check_hw_graph(folded, torch_model, data.x_test[:n], data.y_test[:n])
        log(f"check: {check['bit_exact']}/{check['images']} real test images bit-exact ({time.time() - t0:.0f} s)")
        if check["bit_exact"] != check["images"]:
            raise CompileError(f"hardware graph differs from PyTorch on {check['images'] - check['bit_exact']} of "
                               f"{check['images']} images (first: {check['mismatching_images'][:5]})")
    tmp = prepare_output(out, force)
    try:
        folded.save(str(tmp / "hw.onnx"))
        xf.save_folding(folded, tmp / "folding.json")
        (tmp / "estimates.json").write_text(json.dumps(est, indent=2) + "\n")
        (tmp / "estimates.md").write_text(estimates_markdown(est))
        if check is not None:
            (tmp / "check.json").write_text(json.dumps(check, indent=2) + "\n")
        summary = {"run": str(run.resolve()), "board": b.name, "part": b.part, "fclk_mhz": fclk_mhz, "target_fps": target_fps,
                   "folding": str(folding) if folding else None, "ii_cycles": est["ii_cycles"], "fps": est["fps"],
                   "util": est["util"], "total": est["total"], "check": check,
                   "op_counts": dict(xc.op_counts(folded)), "seconds": round(time.time() - t0, 1)}
        (tmp / "compile.json").write_text(json.dumps(summary, indent=2) + "\n")
        (tmp / "compile.log").write_text(buf.getvalue())
        from xnorvit.flows.manifest import write_manifest

        write_manifest(tmp)  # last: a directory with a manifest is a finished build
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_output(tmp, out)
    return summary
