"""Whole-network RTL simulation of a stitched accelerator (cocotb + Verilator).

:func:`simulate` runs ``rtl_tests/accelerator_tb.py`` on the top written by
:mod:`xnorvit.flows.stitch`: frames of input beats in, output beats out,
random idle on the input and backpressure on the output, a deadlock
watchdog; it returns the output beats, the handshake cycles, the maximum
occupancy of every FIFO and, on request, every beat of every edge (taps).

:func:`size_fifos` sets the FIFO depths by simulation (module doc of
:mod:`xnorvit.flows.stitch`); :func:`verify` checks real images bit for bit
against FINN node execution of the hardware graph and against the PyTorch
model's integer logits, measures the initiation interval and latency, and on
a mismatch names the first layer whose output stream differs from FINN
execution (:func:`first_divergence`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xnorvit.flows import stitch as xs
from xnorvit.flows.manifest import write_manifest
from xnorvit.flows.sim import REPO_ROOT, SimulationError, run_cocotb

__all__ = ["VerificationError", "stimulus", "simulate", "simulate_parallel", "size_fifos", "verify", "first_divergence", "timing", "beats_of_contexts",
           "stream_differences", "build_run", "verify_build"]

#: Verilator arguments of the accelerator build: third-party cores (finn-rtllib)
#: are not -Wall clean; the stitched top is linted separately (tests/test_stitch.py).
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "unique", "--x-initial", "unique")


class VerificationError(RuntimeError):
    """The RTL output differs from the reference (names the first diverging layer)."""


def _bits(dtype_name: str) -> int:
    from qonnx.core.datatype import DataType

    return DataType[dtype_name].bitwidth()


def _signed(dtype_name: str) -> bool:
    from qonnx.core.datatype import DataType

    return DataType[dtype_name].signed() and dtype_name != "BIPOLAR"


def _encode(x: np.ndarray, dtype_name: str) -> np.ndarray:
    """Tensor values -> stream lane values (bipolar -1/+1 -> 0/1)."""
    x = np.asarray(x)
    return (x > 0).astype(np.int64) if dtype_name == "BIPOLAR" else x


def _edge_beats(e: xs.Edge, x: np.ndarray) -> list[int]:
    return xs.pack_beats(_encode(x, e.src_dtype), e.src_folded[-1], _bits(e.src_dtype))


def stimulus(model, st: xs.Stitched, images: np.ndarray):
    """FINN execution of ``model`` on uint8 ``images`` (N, C, H, W).

    Returns:
        ``(frames, expected, outputs, contexts)``: input beats per image,
        expected output beats per image, graph outputs ``(N, classes)`` and
        each image's full execution context.
    """
    from xnorvit.flows.compile import execute

    outputs, ctxs = execute(model, images, full_context=True)
    frames, expected = beats_of_contexts(model, st, ctxs)
    return frames, expected, outputs, ctxs


def beats_of_contexts(model, st: xs.Stitched, ctxs: list[dict]) -> tuple[list[list[int]], list[list[int]]]:
    """Input beats and expected output beats of FINN execution contexts (one per frame)."""
    gin, gout = model.graph.input[0].name, model.graph.output[0].name
    ein = next(e for e in st.edges if e.src is None)
    eout = next(e for e in st.edges if e.dst is None)
    return [_edge_beats(ein, c[gin]) for c in ctxs], [_edge_beats(eout, c[gout]) for c in ctxs]


def simulate(st: xs.Stitched, frames: list[list[int]], idle: str = "none", backpressure: str = "none",
             pace: int = 0, taps: bool = False, max_cycles: int | None = None, seed: int = 1,
             work: os.PathLike | str | None = None, cache_dir: os.PathLike | str | None = None) -> dict:
    """Simulate ``st`` on ``frames`` (see module doc); returns the TB's results.

    Raises:
        SimulationError: the build failed, or the run deadlocked (the results,
            if written, are attached as ``.results``).
    """
    work = Path(work or st.out / "sim" / "run").resolve()
    work.mkdir(parents=True, exist_ok=True)
    n_in = sum(len(f) for f in frames)
    if max_cycles is None:
        max_cycles = 200_000 + 50 * (n_in + st.out_beats * len(frames)) + 20_000 * len(frames)
    result = work / "result.json"
    if result.exists():
        result.unlink()
    data = {"frames": frames, "out_beats": st.out_beats, "idle": idle, "backpressure": backpressure, "pace": pace,
            "edges": [e.name for e in st.edges], "taps": taps, "max_cycles": max_cycles, "seed": seed,
            "result": str(result)}
    (work / "params.json").write_text(json.dumps(data))
    import sys

    tb_dir = str(REPO_ROOT / "rtl_tests")
    if tb_dir not in sys.path:
        sys.path.insert(0, tb_dir)
    try:
        run_cocotb(st.top, st.files, "accelerator_tb", parameters=xs.mem_root_parameter(st),
                   test_params={"data": str(work / "params.json")}, test_dir=work, build_args=BUILD_ARGS,
                   cache_dir=cache_dir or st.out / "sim" / "build")
    except SimulationError as exc:
        if result.exists():
            exc.results = json.loads(result.read_text())  # type: ignore[attr-defined]
        raise
    return json.loads(result.read_text())


def _simulate_child(conn, st, frames, kwargs) -> None:  # pragma: no cover - runs in a forked process
    try:
        conn.send(("ok", simulate(st, frames, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        conn.send(("err", f"{type(exc).__name__}: {exc}", getattr(exc, "results", None)))
    finally:
        conn.close()


def simulate_parallel(st: xs.Stitched, frames: list[list[int]], runs: list[dict], jobs: int | None = None) -> list[dict]:
    """:func:`simulate` ``st`` on ``frames`` once per entry of ``runs`` (each a
    dict of :func:`simulate` keyword arguments with its own ``work``), up to
    ``jobs`` at a time (default: one per CPU, at most ``len(runs)``).

    Each simulation is one single-threaded Verilator process, so on a 2-core
    machine the free and the stalled run of :func:`verify` take the time of
    one. The runs share one cached build (:func:`xnorvit.flows.sim.build`
    locks it, so the first run builds and the others wait); with
    ``jobs == 1`` or one run they run here, one after the other.

    Returns:
        the TB results of each run, in the order of ``runs``.

    Raises:
        SimulationError: a run failed (the first failing run in order; its
            results, if written, attached as ``.results``).
    """
    import multiprocessing as mp

    jobs = min(len(runs), jobs or os.cpu_count() or 1)
    if jobs <= 1:
        return [simulate(st, frames, **kw) for kw in runs]
    ctx = mp.get_context("fork")  # the children inherit st and frames, nothing is pickled on the way in
    results: list[tuple | None] = [None] * len(runs)
    pending = list(enumerate(runs))
    active: list[tuple[int, object, object]] = []
    while pending or active:
        while pending and len(active) < jobs:
            k, kw = pending.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_simulate_child, args=(child, st, frames, kw), daemon=True)
            proc.start()
            child.close()
            active.append((k, proc, parent))
        k, proc, parent = active.pop(0)
        try:
            results[k] = parent.recv()
        except EOFError:
            results[k] = ("err", f"simulation process died (exit {proc.exitcode})", None)
        proc.join()
    out = []
    for r in results:
        if r[0] != "ok":
            exc = SimulationError(r[1])
            if r[2] is not None:
                exc.results = r[2]  # type: ignore[attr-defined]
            raise exc
        out.append(r[1])
    return out


def timing(res: dict, in_beats: int, out_beats: int) -> dict:
    """Initiation interval and latency from a run's handshake cycles.

    ``ii_cycles``: median spacing of the frames' last output beats from the
    second frame on (steady state); ``latency_cycles``: cycles from the first
    input beat to the last output beat of the first frame (an empty pipeline).
    """
    ins, outs = res["in_cycles"], res["out_cycles"]
    n = len(outs) // out_beats
    first_in = [ins[f * in_beats] for f in range(n)]
    last_out = [outs[(f + 1) * out_beats - 1] for f in range(n)]
    lat = [lo - fi for fi, lo in zip(first_in, last_out)]
    spacing = np.diff(last_out[1:]) if n > 2 else np.diff(last_out)
    return {"frames": n, "ii_cycles": int(np.median(spacing)) if len(spacing) else None,
            "ii_mean_cycles": float(np.mean(spacing)) if len(spacing) else None,
            "latency_cycles": int(lat[0]) if lat else None, "latency_max_cycles": int(max(lat)) if lat else None,
            "total_cycles": int(res["cycles"])}


def size_fifos(model, st: xs.Stitched, frames: list[list[int]], log: Callable[[str], None] | None = None) -> dict:
    """Set every FIFO's depth by simulation.

    1. The design as stitched (every FIFO :data:`~xnorvit.flows.stitch.SIZING_FRAMES`
       frames deep) runs ``frames_n`` images back to back: the initiation
       interval of an unconstrained pipeline.
    2. The same design, input frames paced at that interval (so FIFOs before
       the bottleneck do not just queue the test's input), records each
       FIFO's maximum occupancy.
    3. ``depth = round_depth(max occupancy)``; the top is rewritten.

    ``frames``: input beats of a few frames (3-4: the first fills the
    pipeline, the others are steady state), e.g. from :func:`stimulus`.

    Returns:
        ``{"ii_cycles_large_fifos", "depths": {edge: depth}, "max_occupancy": {...}}``.
    """
    log = log or (lambda s: None)
    res = simulate(st, frames, work=st.out / "sim" / "size_free")
    t = timing(res, st.in_beats, st.out_beats)
    log(f"fifo sizing: II {t['ii_cycles']} cycles with {xs.SIZING_FRAMES}-frame FIFOs")
    res = simulate(st, frames, pace=t["ii_cycles"], work=st.out / "sim" / "size_paced")
    occ = {e.index: int(res["maxocc"][e.name]) for e in st.edges}
    depths = {k: xs.round_depth(v) for k, v in occ.items()}
    for e in st.edges:
        e.max_occupancy = occ[e.index]
    xs.resize(model, st, depths)
    log(f"fifo sizing: {sum(depths.values())} FIFO entries in {len(depths)} FIFOs")
    return {"ii_cycles_large_fifos": t["ii_cycles"], "latency_cycles_large_fifos": t["latency_cycles"],
            "depths": {f"{e.name}:{e.tensor}": e.depth for e in st.edges},
            "max_occupancy": {f"{e.name}:{e.tensor}": occ[e.index] for e in st.edges}}


def first_divergence(model, st: xs.Stitched, frame: list[int], ctx: dict, work=None) -> dict | None:
    """Simulate one frame with taps on every edge and compare each edge's
    beats with FINN execution's tensor; returns the first diverging edge in
    graph order (``{"layer", "op_type", "edge", "tensor", "beat", "got", "want"}``)
    or None when every edge matches."""
    res = simulate(st, [frame], taps=True, work=work or st.out / "sim" / "taps")
    order = {n.name: k for k, n in enumerate(model.graph.node)}
    types = {n.name: n.op_type for n in model.graph.node}
    bad = []
    for e in st.edges:
        if e.src is None:
            continue
        want = _edge_beats(e, ctx[e.tensor])
        got = res["taps"][e.name]
        # extra beats are legitimate: FMPadding/SWG run ahead into the next frame's padding
        mism = [k for k, (g, w) in enumerate(zip(got, want)) if g != w]
        if len(got) < len(want) and not mism:
            mism = [len(got)]
        if mism:
            k = mism[0]
            bad.append((order[e.src], {"layer": e.src, "op_type": types[e.src], "edge": e.name, "tensor": e.tensor,
                                       "beat": k, "beats_got": len(got), "beats_want": len(want),
                                       "got": got[k] if k < len(got) else None,
                                       "want": want[k] if k < len(want) else None}))
    return min(bad, key=lambda b: b[0])[1] if bad else None


def stream_differences(model, st: xs.Stitched, frames: list[list[int]], ctxs: list[dict], nodes,
                       work=None) -> dict[str, list[str]]:
    """Simulate ``frames`` back to back with taps and compare the output
    streams of ``nodes`` (names) with FINN execution's tensors ``ctxs`` (one
    per frame); returns ``{node: [edges whose beats differ]}`` (an empty list:
    every beat equal). Used to tell whether an accepted edit of a node's
    memory changed what that node streams even when no logit changed."""
    res = simulate(st, frames, taps=True, work=work or st.out / "sim" / "taps_all")
    out: dict[str, list[str]] = {}
    for name in nodes:
        diff = []
        for e in st.edges:
            if e.src != name:
                continue
            want = [b for c in ctxs for b in _edge_beats(e, c[e.tensor])]
            got = res["taps"][e.name][: len(want)]  # extra beats: SWG/FMPadding run ahead
            if got != want:
                diff.append(e.name)
        out[name] = diff
    return out


def verify(model, st: xs.Stitched, images: np.ndarray, torch_model=None, labels: np.ndarray | None = None,
           idle: str = "random", backpressure: str = "random", seed: int = 1, diagnose: bool = True,
           tap_nodes=(), log: Callable[[str], None] | None = None) -> dict:
    """Simulate ``images`` through ``st`` twice: back to back without pauses
    (II, latency) and under ``idle``/``backpressure`` (robustness); every
    output must equal FINN execution of ``model`` and, given
    ``torch_model``, the PyTorch integer logits.

    Returns:
        a report: ``images_verified``, ``images_bit_exact`` (RTL == PyTorch, or
        == FINN without a torch model), ``rtl_equals_finn``, ``hw_accuracy``,
        ``ii_cycles``, ``latency_cycles``, timing of both runs, ``mismatch``
        (first diverging layer, or None); given ``tap_nodes`` (node names)
        and no mismatch, ``stream_differences`` of those nodes (see
        :func:`stream_differences`).

    Raises:
        VerificationError: outputs differ (message names the layer).
        SimulationError: build failure or deadlock.
    """
    from xnorvit.flows.compile import integer_logits

    log = log or (lambda s: None)
    images = np.asarray(images)
    frames, expected, outputs, ctxs = stimulus(model, st, images)
    eout = next(e for e in st.edges if e.dst is None)
    lanes, bits, sgn = eout.src_folded[-1], _bits(eout.src_dtype), _signed(eout.src_dtype)
    ref = None
    if torch_model is not None:
        import torch

        from xnorvit.model.data import to_float

        torch_model.eval()
        with torch.no_grad():
            ref = torch_model.integer_logits(to_float(images)).numpy()
    report = {"images_verified": int(len(images))}
    runs = {}
    modes = {"free": ("none", "none"), "stalled": (idle, backpressure)}
    # both runs at once (one core each): they share the build
    results = simulate_parallel(st, frames, [dict(idle=i, backpressure=b, seed=seed, work=st.out / "sim" / tag)
                                             for tag, (i, b) in modes.items()])
    for (tag, (i, b)), res in zip(modes.items(), results):
        got_beats = res["outputs"]
        got = np.stack([xs.unpack_beats(o, lanes, bits, sgn) for o in got_beats]).astype(np.float64)
        got = got.reshape(outputs.shape)
        finn_ok = [bool(np.array_equal(got_beats[k], expected[k])) for k in range(len(images))]
        t = timing(res, st.in_beats, st.out_beats)
        runs[tag] = {"idle": i, "backpressure": b, **t, "rtl_equals_finn": int(sum(finn_ok))}
        log(f"rtl ({tag}: idle {i}, backpressure {b}): {sum(finn_ok)}/{len(images)} frames equal FINN execution, "
            f"II {t['ii_cycles']} cycles, latency {t['latency_cycles']} cycles")
        if ref is not None:
            logits = integer_logits(model, got, torch_model.logit_scale())
            exact = np.all(logits == ref, axis=1)
            runs[tag]["bit_exact"] = int(exact.sum())
            if labels is not None:
                runs[tag]["hw_accuracy"] = float(np.mean(logits.argmax(1) == np.asarray(labels)[: len(images)]))
        else:
            exact = np.asarray(finn_ok)
            runs[tag]["bit_exact"] = int(exact.sum())
        if not exact.all() or not all(finn_ok):
            k = int(np.flatnonzero(~(exact & np.asarray(finn_ok)))[0])
            div = first_divergence(model, st, frames[k], ctxs[k]) if diagnose else None
            report.update(runs=runs, mismatch={"run": tag, "image": k, **(div or {})})
            where = (f"first diverging layer {div['layer']} ({div['op_type']}), stream {div['edge']} ({div['tensor']}) "
                     f"beat {div['beat']}" if div else "every layer stream equals FINN execution (difference after "
                     "the graph: output decoding)")
            err = VerificationError(f"RTL output differs on image {k} ({tag} run, {int((~exact).sum())} of "
                                    f"{len(images)} images): {where}")
            err.report = report  # type: ignore[attr-defined]
            raise err
    report.update({"images_bit_exact": runs["stalled"]["bit_exact"], "rtl_equals_finn": runs["stalled"]["rtl_equals_finn"],
                   "ii_cycles": runs["free"]["ii_cycles"], "latency_cycles": runs["free"]["latency_cycles"],
                   "hw_accuracy": runs["stalled"].get("hw_accuracy"), "runs": runs, "mismatch": None})
    known = {n.name for n in model.graph.node}
    if tap_nodes:
        report["stream_differences"] = stream_differences(model, st, frames, ctxs, [n for n in tap_nodes if n in known])
    return report


# ----------------------------------------------------------------- build directory steps (CLI)
#: summary.json keys (issue #5 schema); the full schema is :data:`xnorvit.flows.reports.SUMMARY_SCHEMA`
SUMMARY_KEYS = ("board", "fclk_mhz", "images_verified", "images_bit_exact", "hw_accuracy", "ii_cycles",
                "latency_cycles", "fps", "lut", "ff", "bram36", "dsp", "lut_util", "bram_util", "estimated_ii_cycles")


def _run_meta(build: Path):
    comp = json.loads((build / "compile.json").read_text())
    from xnorvit.model.train import load_checkpoint

    torch_model, meta = load_checkpoint(Path(comp["run"]) / "model.pt")
    return comp, torch_model, meta.get("dataset", "mnist")


def build_run(run: os.PathLike | str, out: os.PathLike | str, board: str = "pynq-z2", target_fps: float = 20000,
              fclk_mhz: float = 100.0, folding=None, images: int = 200, force: bool = False,
              top: str = xs.DEFAULT_TOP, log: Callable[[str], None] | None = None) -> dict:
    """``xnorvit build``: compile (:func:`xnorvit.flows.build.compile_run`) ->
    stitch -> FIFO depths by simulation on real images, assembled in
    ``OUT.partial-*`` and renamed to ``OUT`` when complete (an existing OUT is
    kept unless ``force``). Writes ``fifo.json``, ``rtl/`` (relocatable: see
    :mod:`xnorvit.flows.stitch`) and, last, ``manifest.json``
    (:mod:`xnorvit.flows.manifest`)."""
    from xnorvit.flows.boards import get_board
    from xnorvit.flows.build import commit_output, compile_run, prepare_output
    from xnorvit.model.data import load_dataset

    import time

    log = log or (lambda s: None)
    t0 = time.time()
    out = Path(out)
    tmp = prepare_output(out, force)
    try:
        compile_run(run, tmp, board, target_fps, fclk_mhz, images, folding, force=True, log=log)
        from qonnx.core.modelwrapper import ModelWrapper

        model = ModelWrapper(str(tmp / "hw.onnx"))
        part = get_board(board).part
        st = xs.stitch(model, tmp / "rtl", part, top=top)
        log(f"stitched {len(model.graph.node)} nodes, {len(st.edges)} streams ({sum(e.dwc for e in st.edges)} width "
            "converters)")
        _, _, dataset = _run_meta(tmp)
        frames, _, _, _ = stimulus(model, st, load_dataset(dataset).x_test[:4])
        sizing = size_fifos(model, st, frames, log=log)
        sizing.update(part=part, top=top, build_seconds=round(time.time() - t0, 1))
        (tmp / "fifo.json").write_text(json.dumps(sizing, indent=1) + "\n")
        write_manifest(tmp)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_output(tmp, out)
    return sizing


def verify_build(build: os.PathLike | str, images: int = 100, idle: str = "random", backpressure: str = "random",
                 accept_edits: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """``xnorvit verify``: check ``BUILD/manifest.json``, then simulate
    ``images`` real test images through the build's own ``BUILD/rtl`` (its
    memory files, wherever the directory now is), write
    ``BUILD/report/verify.json`` and ``BUILD/report/summary.json``.

    The reference is FINN execution of ``BUILD/rtl/hw_stitched.onnx`` and the
    PyTorch model of the run named in ``compile.json``. With ``accept_edits``
    the current files are recorded first (:func:`~xnorvit.flows.manifest.check_manifest`);
    an accepted edit that changes an output fails naming the first diverging
    layer, one that changes none on these images is listed in
    ``verify.json``'s ``edits_without_effect`` (the nodes it touched) and logged.

    Raises:
        FileNotFoundError: not a build (no ``fifo.json`` or ``rtl/stitch.json``).
        ManifestError: files differ from the manifest (named), or no manifest.
        VerificationError: an output differs (the report is still written).
    """
    from xnorvit.flows.manifest import check_manifest, edited_nodes
    from xnorvit.model.data import load_dataset

    log = log or (lambda s: None)
    build = Path(build).resolve()
    if not build.is_dir():
        raise FileNotFoundError(f"no build directory {build}; run `xnorvit build RUN --out {build}` first")
    for f in ("fifo.json", "rtl/stitch.json", "compile.json"):
        if not (build / f).is_file():
            raise FileNotFoundError(f"{build}/{f} missing: not a hardware build; run `xnorvit build RUN --out {build}` first")
    manifest = check_manifest(build, accept_edits=accept_edits)
    edits = edited_nodes(manifest)
    comp, torch_model, dataset = _run_meta(build)
    st = xs.load_stitched(build / "rtl")
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(build / "rtl" / "hw_stitched.onnx"))
    d = load_dataset(dataset)
    n = min(images, len(d.x_test))
    rep_dir = build / "report"
    rep_dir.mkdir(exist_ok=True)
    if edits:
        log(f"accepted edits in {', '.join(edits)} ({sum(map(len, edits.values()))} files differ from what "
            "`xnorvit build` wrote): verifying the edited design")
    try:
        rep = verify(model, st, d.x_test[:n], torch_model, d.y_test[:n], idle=idle, backpressure=backpressure,
                     tap_nodes=[k for k in edits if k != "(build)"], log=log)
    except VerificationError as exc:
        exc.report["accepted_edits"] = edits
        (rep_dir / "verify.json").write_text(json.dumps(exc.report, indent=1) + "\n")
        from xnorvit.flows.reports import write_summary

        write_summary(build)  # no stale figures of an earlier verification
        if edits:
            exc.args = (f"{exc.args[0]} (accepted edits in {', '.join(edits)})",)
        raise
    rep["accepted_edits"] = edits
    rep["edits_without_effect"] = sorted(edits)  # verification passed: no logit changed
    for node in sorted(edits):
        streams = rep.get("stream_differences", {}).get(node)
        what = (f"its output stream {', '.join(streams)} differs from FINN execution but " if streams else
                "its output streams equal FINN execution and " if streams is not None else "")
        log(f"warning: accepted edit of {node} ({', '.join(edits[node])}): {what}no output changed on the {n} "
            "verified images")
    (rep_dir / "verify.json").write_text(json.dumps(rep, indent=1) + "\n")
    from xnorvit.flows.reports import write_summary

    return write_summary(build)  # report/summary.json (schema: xnorvit.flows.reports.SUMMARY_SCHEMA)
