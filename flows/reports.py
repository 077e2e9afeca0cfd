"""Reports of a build directory: ``BUILD/report/summary.json`` (stable schema),
``BUILD/report/index.md`` with per-layer tables, and matplotlib plots.

Inputs (all written by earlier steps)::

    BUILD/compile.json         xnorvit compile/build: run, board, fclk, check on real images
    BUILD/estimates.json       per-layer cycles and LUT/FF/BRAM36/DSP estimates, II, bottleneck
    BUILD/fifo.json            xnorvit build: FIFO depths found by simulation (optional)
    BUILD/report/verify.json   xnorvit verify: images, bit-exact count, accuracy, II, latency (optional)
    BUILD/report/synth.json    Yosys synthesis of the stitched top (optional, :func:`synth_build`)
    BUILD/report/synth_layers.json  per-layer Yosys figures (optional, ``synth_build(per_layer=True)``)

Outputs::

    BUILD/report/summary.json  :data:`SUMMARY_SCHEMA` (``xnorvit verify`` and ``xnorvit report`` write it)
    BUILD/report/index.md      summary, resources (estimate and Yosys), per-layer table, FIFOs, timing runs
    BUILD/report/layers_lut.png     per-layer LUT bars (estimate)
    BUILD/report/layers_cycles.png  per-layer cycles bars with the II line (pipeline balance)
    BUILD/report/utilization.png    LUT/FF/BRAM36/DSP as fractions of the board (estimate, Yosys)

Yosys (:func:`synth_build`): ``read_slang`` of the stitched top's file list
and ``synth_xilinx -family xc7`` (the machinery of :mod:`xnorvit.flows.synth`,
cached inside the build directory under a key that covers the sources and
the memory files, so a rebuilt or edited directory never reuses stale
figures). The top's ``MEM_ROOT`` is set to the build's ``rtl/`` relative to
the Yosys work directory, so a moved build synthesizes its own memories (a
missing memory file is a Yosys error). ``read_slang`` gets ``--allow-use-before-declare``: finn-rtllib's
SWG wrapper template declares ``IN_WIDTH_PADDED`` after the port list that
uses it. yosys-slang flattens the design, so the totals come from a
flattened run; ``per_layer`` adds a second run with ``--best-effort-hierarchy``
(one module per instance, ``stat`` per module) for per-layer and per-stream
figures. Optimization then stops at instance boundaries, so that run's sum
differs from the flattened total.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["ReportError", "SUMMARY_SCHEMA", "SUMMARY_KEYS", "summarize", "write_summary", "synth_build",
           "write_report", "summary_lines"]


class ReportError(RuntimeError):
    """A build directory lacks what a report needs (the message says which step to run)."""


#: ``report/summary.json``: key -> meaning. The first fifteen keys are issue #5's
#: stable schema; keys are only ever added. Verification keys are ``null`` when
#: the build was not verified; resources are Yosys figures when the stitched
#: design was synthesized (``resource_source: "yosys"``), else the estimates.
SUMMARY_SCHEMA: dict[str, str] = {
    "board": "board name, e.g. pynq-z2",
    "fclk_mhz": "clock frequency the folding and the figures assume (MHz)",
    "images_verified": "real test images simulated through the stitched RTL (xnorvit verify)",
    "images_bit_exact": "of those, images whose RTL logits equal the PyTorch integer logits bit for bit",
    "hw_accuracy": "top-1 accuracy of the RTL outputs on the verified images (fraction)",
    "ii_cycles": "initiation interval measured in simulation (cycles per frame, steady state)",
    "latency_cycles": "cycles from a frame's first input beat to its last output beat (empty pipeline)",
    "fps": "frames/s at fclk_mhz from the measured II",
    "lut": "LUTs (logic + LUT-RAM/SRL) of the whole accelerator",
    "ff": "flip-flops",
    "bram36": "block RAM in RAMB36 units (RAMB18 = 0.5)",
    "dsp": "DSP48 slices",
    "lut_util": "lut / the board's LUTs",
    "bram_util": "bram36 / the board's BRAM36",
    "estimated_ii_cycles": "II of the folding's cycle estimates (slowest layer)",
    # additions (schema_version 1)
    "schema_version": "version of this schema (2: binary MACs and LUT per binary MAC/cycle added)",
    "part": "FPGA part",
    "latency_us": "latency_cycles / fclk_mhz",
    "ff_util": "ff / the board's FFs",
    "dsp_util": "dsp / the board's DSP slices",
    "resource_source": "\"yosys\" (synth_xilinx -family xc7 of the stitched top) or \"estimate\"",
    "estimate": "the layers' estimates (without stitched FIFOs/width converters): {lut, ff, bram36, dsp, lut_util, "
                "bram_util, ff_util, dsp_util}",
    "yosys": "the Yosys figures in the same form, or null",
    "estimated_fps": "frames/s at fclk_mhz from estimated_ii_cycles",
    "bottleneck": "slowest layer of the estimates",
    "rtl_equals_finn": "verified images whose output beats equal FINN execution of the hardware graph",
    "fifo_entries": "total depth of the stitched FIFOs (sized by simulation)",
    "layers": "number of hardware layers",
    # additions (schema_version 2)
    "binary_macs": "1-bit MACs per frame of the hardware graph (XNOR MVAUs, binary attention; "
                   "xnorvit.flows.estimates.binary_macs), null for builds compiled before it was recorded",
    "binary_macs_per_cycle": "binary_macs / II (the measured II when verified, else the estimated one)",
    "lut_per_binary_mac_per_cycle": "figure of merit: lut / binary_macs_per_cycle (lower is better)",
}
#: issue #5's keys (the part of the schema that is never renamed).
SUMMARY_KEYS = tuple(list(SUMMARY_SCHEMA)[:15])
SCHEMA_VERSION = 2
RESOURCES = ("lut", "ff", "bram36", "dsp")


def _read(path: Path, hint: str) -> dict:
    if not path.is_file():
        raise ReportError(f"{path} missing: {hint}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}): {hint}") from None


def _optional(path: Path) -> dict | None:
    return _read(path, "") if path.is_file() else None


def load(build: os.PathLike | str) -> dict:
    """Everything a report reads from ``build``.

    Raises:
        ReportError: no such directory, or ``compile.json``/``estimates.json``
            missing or unreadable (the message names the step to run).
    """
    build = Path(build)
    if not build.is_dir():
        raise ReportError(f"build directory {build} does not exist: run `xnorvit build RUN --out {build}` first")
    hint = f"not a build directory; run `xnorvit build RUN --out {build}` first"
    d = {"build": build, "compile": _read(build / "compile.json", hint), "estimates": _read(build / "estimates.json", hint),
         "fifo": _optional(build / "fifo.json"), "verify": _optional(build / "report" / "verify.json"),
         "synth": _optional(build / "report" / "synth.json"),
         "synth_layers": _optional(build / "report" / "synth_layers.json")}
    for k in ("layers", "total", "ii_cycles"):
        if k not in d["estimates"]:
            raise ReportError(f"{build / 'estimates.json'} has no {k!r}: {hint}")
    return d


def _fractions(res: dict, board) -> dict:
    out = {k: res.get(k) for k in RESOURCES}
    for k, util in (("lut", "lut_util"), ("bram36", "bram_util"), ("ff", "ff_util"), ("dsp", "dsp_util")):
        v = res.get(k)
        out[util] = None if v is None else v / board.capacity(k)
    return out


def summarize(d: dict) -> dict:
    """The summary dict (:data:`SUMMARY_SCHEMA`) of :func:`load`'s data."""
    from xnorvit.flows.boards import get_board

    comp, est, ver, syn = d["compile"], d["estimates"], d["verify"], d["synth"]
    board = get_board(comp["board"])
    fclk = float(comp["fclk_mhz"])
    estimate = _fractions(est["total"], board)
    yosys = _fractions({"lut": syn["lut"], "ff": syn["ff"], "bram36": syn["bram36_equiv"], "dsp": syn["dsp"]}, board) \
        if syn else None
    res = yosys or estimate
    ok = ver is not None and ver.get("mismatch") is None and ver.get("ii_cycles")
    ii = ver["ii_cycles"] if ok else None
    lat = ver["latency_cycles"] if ok else None
    depths = (d["fifo"] or {}).get("depths")
    s = {"board": comp["board"], "fclk_mhz": fclk,
         "images_verified": ver["images_verified"] if ver else 0,
         "images_bit_exact": (ver.get("images_bit_exact") or 0) if ver else 0,
         "hw_accuracy": ver.get("hw_accuracy") if ok else None,
         "ii_cycles": ii, "latency_cycles": lat, "fps": fclk * 1e6 / ii if ii else None,
         "lut": res["lut"], "ff": res["ff"], "bram36": res["bram36"], "dsp": res["dsp"],
         "lut_util": res["lut_util"], "bram_util": res["bram_util"],
         "estimated_ii_cycles": est["ii_cycles"],
         "schema_version": SCHEMA_VERSION, "part": board.part,
         "latency_us": lat / fclk if lat else None, "ff_util": res["ff_util"], "dsp_util": res["dsp_util"],
         "resource_source": "yosys" if yosys else "estimate", "estimate": estimate, "yosys": yosys,
         "estimated_fps": fclk * 1e6 / est["ii_cycles"], "bottleneck": est.get("bottleneck"),
         "rtl_equals_finn": ver.get("rtl_equals_finn") if ok else None,
         "fifo_entries": sum(depths.values()) if depths else None, "layers": len(est["layers"])}
    from xnorvit.flows.estimates import lut_per_mac_cycle

    macs = est.get("binary_macs")
    ii_any = ii or est["ii_cycles"]
    s.update(binary_macs=macs, binary_macs_per_cycle=macs / ii_any if macs and ii_any else None,
             lut_per_binary_mac_per_cycle=lut_per_mac_cycle(res["lut"], macs, ii_any))
    assert list(s) == list(SUMMARY_SCHEMA), "summary keys out of step with SUMMARY_SCHEMA"
    return s


def write_summary(build: os.PathLike | str) -> dict:
    """(Re)write ``BUILD/report/summary.json`` from the build's files; returns it."""
    d = load(build)
    s = summarize(d)
    rep = Path(build) / "report"
    rep.mkdir(exist_ok=True)
    (rep / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    return s


# ------------------------------------------------------------------------------------------ Yosys
#: the stitched top's MEM_ROOT for Yosys: yowasp mounts its own /tmp, so memory
#: files are named relative to the yosys work dir BUILD/report/synth/<top>-<hash>/
_YOSYS_MEM_ROOT = "../../../rtl/"


def _stitched_sources(build: Path) -> tuple[str, list[Path], Path, list[Path], str]:
    """(top, source files, cache dir, memory files, read_slang arguments) of
    ``build``'s stitched design for Yosys; the memory files (everything
    under ``rtl/nodes`` that is not HDL) are part of the cache key."""
    _read(build / "rtl" / "stitch.json", f"run `xnorvit build RUN --out {build}` first (stitched RTL)")
    from xnorvit.flows.stitch import MEM_ROOT, StitchError, load_stitched

    try:
        st = load_stitched(build / "rtl")
    except StitchError as exc:
        raise ReportError(str(exc)) from None
    files = [Path(f) for f in st.files if not f.endswith(".vlt")]
    hdl = {".sv", ".v", ".vh", ".svh", ".vlt"}
    mems = sorted(p for p in (build / "rtl" / "nodes").rglob("*") if p.is_file() and p.suffix not in hdl)
    read_args = f'--allow-use-before-declare -G {MEM_ROOT}="{_YOSYS_MEM_ROOT}"'
    return st.top, files, build / "report" / "synth", mems, read_args


_PER_LAYER_KEYS = ("lut", "ff", "bram36_equiv", "dsp")


def synth_build(build: os.PathLike | str, timeout_s: float = 3600, log: Callable[[str], None] | None = None,
                per_layer: bool = False) -> dict:
    """Yosys ``synth_xilinx -family xc7`` of the stitched top ``BUILD/rtl``;
    writes ``BUILD/report/synth.json`` (cell counts, wall seconds) and returns it.

    With ``per_layer`` a second run keeps the hierarchy and writes
    ``BUILD/report/synth_layers.json``: ``{"layers": {node: {lut, ff,
    bram36_equiv, dsp}}, "streams": {...} (FIFOs and width converters,
    summed), "total": {...} (that run's sum), "seconds"}``.

    Raises:
        ReportError: ``BUILD/rtl/stitch.json`` missing (run ``xnorvit build``).
        SynthesisError: yosys failed or timed out.
    """
    from xnorvit.flows.synth import synthesize

    log = log or (lambda s: None)
    build = Path(build).resolve()
    top, files, cache, mems, read_args = _stitched_sources(build)
    part = _read(build / "compile.json", "")["part"]
    log(f"yosys synth_xilinx -family xc7 of {top} ({len(files)} files); this can take a while")
    r = synthesize(top, files, {}, part=part, cache_dir=cache, timeout_s=timeout_s, read_args=read_args,
                   key_files=mems)
    seconds = r.get("seconds")  # yosys wall time of the run that made the (possibly cached) figures
    r = {k: v for k, v in r.items() if k != "cached"}
    (build / "report").mkdir(exist_ok=True)
    (build / "report" / "synth.json").write_text(json.dumps(r, indent=1) + "\n")
    log(f"yosys: LUT {r['lut']} FF {r['ff']} BRAM36 {r['bram36_equiv']:g} DSP {r['dsp']} ({seconds} s)")
    if per_layer:
        log("yosys again, hierarchy kept, for per-layer figures")
        h = synthesize(top, files, {}, part=part, cache_dir=cache, timeout_s=timeout_s, read_args=read_args,
                       hierarchy=True, key_files=mems)
        layers, streams = {}, {k: 0 for k in _PER_LAYER_KEYS}
        for inst, c in h.get("instances", {}).items():
            if inst.startswith("u_"):
                layers[inst[2:]] = {k: c[k] for k in _PER_LAYER_KEYS}
            else:
                for k in _PER_LAYER_KEYS:
                    streams[k] += c[k]
        out = {"tool": h["tool"] + " (read_slang --best-effort-hierarchy)", "seconds": h.get("seconds"),
               "layers": layers, "streams": streams, "total": {k: h[k] for k in _PER_LAYER_KEYS}}
        (build / "report" / "synth_layers.json").write_text(json.dumps(out, indent=1) + "\n")
        log(f"yosys per layer: {len(layers)} layers, streams LUT {streams['lut']}, sum LUT {h['lut']}")
    return r


# ------------------------------------------------------------------------------------------ plots
def _short(name: str) -> str:
    return name.replace("_rtl_", "_").replace("ConvolutionInputGenerator", "SWG").replace("DuplicateStreams", "Dup") \
        .replace("Thresholding", "Thr").replace("ThresholdTable", "ThrTab").replace("BinaryAttention", "Attn") \
        .replace("ResidualAdd", "ResAdd")


def _bars(layers, values, ylabel, title, path, hlines=()):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(layers)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * n + 2), 4.2))
    colors = {}
    palette = plt.get_cmap("tab10").colors
    ops = [l["op_type"] for l in layers]
    for op in ops:
        colors.setdefault(op, palette[len(colors) % len(palette)])
    ax.bar(range(n), values, color=[colors[o] for o in ops], width=0.8)
    for y, style, label in hlines:
        ax.axhline(y, color="k", linestyle=style, linewidth=1, label=label)
    ax.set_xticks(range(n))
    ax.set_xticklabels([_short(l["name"]) for l in layers], rotation=90, fontsize=6)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=o.replace("_rtl", "")) for o, c in colors.items()]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _util_plot(s: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [("lut_util", "LUT"), ("ff_util", "FF"), ("bram_util", "BRAM36"), ("dsp_util", "DSP")]
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    srcs = [("estimate", s["estimate"])] + ([("yosys", s["yosys"])] if s["yosys"] else [])
    w = 0.8 / len(srcs)
    for i, (name, r) in enumerate(srcs):
        vals = [100 * (r[k] or 0) for k, _ in keys]
        bars = ax.bar(x + (i - (len(srcs) - 1) / 2) * w, vals, w, label=name)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7)
    ax.axhline(100, color="k", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([lab for _, lab in keys])
    ax.set_ylabel(f"% of {s['board']} ({s['part']})")
    ax.set_title("utilization of the board", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ page
def _fmt(v, nd=1):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{nd}f}" if v != int(v) or nd else f"{int(v)}"
    return str(v)


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _markdown(d: dict, s: dict) -> str:
    comp, est, ver, syn, fifo = d["compile"], d["estimates"], d["verify"], d["synth"], d["fifo"]
    ii_est = est["ii_cycles"]
    L = [f"# xnorvit build report: {d['build'].name}", "",
         f"Run `{comp.get('run')}` on **{s['board']}** ({s['part']}) at {s['fclk_mhz']:g} MHz, "
         f"{s['layers']} hardware layers; "
         + (f"folding from {comp['folding']}." if comp.get("folding") else f"target {comp.get('target_fps') or 0:,.0f} frames/s."),
         "",
         "## Summary", "", "| | |", "|---|---|"]
    if ver:
        L += [f"| images verified (RTL vs PyTorch, bit-exact) | {s['images_bit_exact']}/{s['images_verified']} |",
              f"| accuracy of the RTL outputs | {_pct(s['hw_accuracy'])} |",
              f"| II measured | {s['ii_cycles']} cycles -> {s['fps']:,.0f} frames/s |" if s["ii_cycles"] else
              "| II measured | n/a (verification failed) |",
              f"| latency measured | {s['latency_cycles']} cycles = {s['latency_us']:.1f} us |" if s["latency_cycles"]
              else "| latency measured | n/a |"]
    else:
        L += ["| verification | not run: `xnorvit verify " + str(d["build"]) + " --images N` |"]
    L += [f"| II estimated | {ii_est} cycles -> {s['estimated_fps']:,.0f} frames/s (bottleneck {s['bottleneck']}) |",
          f"| resources ({s['resource_source']}) | LUT {s['lut']:,} ({_pct(s['lut_util'])}), FF {s['ff']:,} "
          f"({_pct(s['ff_util'])}), BRAM36 {s['bram36']:g} ({_pct(s['bram_util'])}), DSP {s['dsp']} "
          f"({_pct(s['dsp_util'])}) |"]
    if s["lut_per_binary_mac_per_cycle"]:
        L.append(f"| LUT per binary MAC/cycle | {s['lut_per_binary_mac_per_cycle']:.2f} ({s['binary_macs']:,} binary "
                 f"MACs/frame, {s['binary_macs_per_cycle']:,.0f} per cycle at the {'measured' if s['ii_cycles'] else 'estimated'} II) |")
    if s["fifo_entries"] is not None:
        L.append(f"| FIFOs (sized by simulation) | {len(fifo['depths'])} FIFOs, {s['fifo_entries']:,} entries |")
    if fifo and fifo.get("build_seconds"):
        L.append(f"| build time (compile, stitch, FIFO sizing) | {fifo['build_seconds']:.0f} s |")
    if comp.get("check"):
        c = comp["check"]
        L.append(f"| compiled graph vs PyTorch (FINN execution) | {c['bit_exact']}/{c['images']} bit-exact, accuracy "
                 f"{_pct(c.get('accuracy'))} |")
    L += ["", "## Resources", "", "| | LUT | FF | BRAM36 | DSP |", "|---|---|---|---|---|"]
    for name, r in (("estimate", s["estimate"]), ("Yosys synth_xilinx xc7", s["yosys"])):
        if r:
            L.append(f"| {name} | {r['lut']:,} ({_pct(r['lut_util'])}) | {r['ff']:,} ({_pct(r['ff_util'])}) | "
                     f"{r['bram36']:g} ({_pct(r['bram_util'])}) | {r['dsp']} ({_pct(r['dsp_util'])}) |")
    L += ["", "The estimates are the layers' own (FINN/xnorvit cost models) plus the stitched FIFOs and width "
          "converters (`estimates.json` `stitch`, FIFO depths guessed before sizing); the Yosys figures are the "
          "synthesized top" + (f" ({s['fifo_entries']:,} FIFO entries)" if s["fifo_entries"] else "") + "."]
    if syn:
        L += ["", f"Yosys: {syn.get('tool', 'synth_xilinx')}, {syn.get('carry4', 0)} CARRY4, "
              f"{syn.get('bram18', 0)} RAMB18 + {syn.get('bram36', 0)} RAMB36, LUT-RAM/SRL {syn.get('lut_mem', 0)} LUTs"
              + (f", {syn['seconds']:.0f} s" if syn.get("seconds") else "") + "."]
    else:
        L += ["", f"No Yosys figures: `xnorvit report {d['build']} --synth` synthesizes the stitched design."]
    L += ["", "![utilization](utilization.png)", "", "## Pipeline balance", "",
          f"Cycles per frame of each layer; the II is the slowest layer's ({ii_est} estimated"
          + (f", {s['ii_cycles']} measured" if s["ii_cycles"] else "") + ").", "",
          "![cycles](layers_cycles.png)", "", "![lut](layers_lut.png)", ""]
    syl = d.get("synth_layers")
    ycols = syl is not None
    if ycols:
        L += ["## Layers (estimates and Yosys)", "",
              f"Yosys per layer: {syl['tool']}, one module per instance, so optimization stops at layer "
              f"boundaries: its sum (LUT {syl['total']['lut']:,}, BRAM36 {syl['total']['bram36_equiv']:g}) differs "
              "from the flattened total above.", "",
              "| # | layer | op | folding | cycles | % of II | LUT | LUT (Yosys) | FF | FF (Yosys) | BRAM36 | "
              "BRAM36 (Yosys) | DSP | DSP (Yosys) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    else:
        L += ["## Layers (estimates)", "", "| # | layer | op | folding | cycles | % of II | LUT | FF | BRAM36 | DSP |",
              "|---|---|---|---|---|---|---|---|---|---|"]

    def res(e: dict, ekeys: tuple, y: dict | None) -> str:
        # estimate (and Yosys) of LUT, FF, BRAM36, DSP
        cols = []
        for ek, yk, nd in zip(ekeys, _PER_LAYER_KEYS, (0, 0, 1, 0)):
            cols.append(_fmt(e.get(ek), nd))
            if ycols:
                cols.append(_fmt((y or {}).get(yk), nd))
        return " | ".join(cols)

    keys = ("lut", "ff", "bram36", "dsp")
    for i, l in enumerate(est["layers"]):
        fold = ", ".join(f"{k}={l[k]}" for k in ("PE", "SIMD", "PAR_T", "PAR_D", "parallel_window") if k in l)
        y = syl["layers"].get(l["name"]) if ycols else None
        L.append(f"| {i} | {l['name']} | {l['op_type'].replace('_rtl', '')} | {fold} | {l['cycles']} | "
                 f"{100 * l['cycles'] / ii_est:.0f} | {res(l, keys, y)} |")
    if est.get("stitch_total"):
        L.append(f"| | FIFOs and width converters | | | | | "
                 f"{res(est['stitch_total'], keys, syl['streams'] if ycols else None)} |")
    L.append(f"| | **total** | | | | | {res(est['total'], keys, syl['total'] if ycols else None)} |")
    if est.get("ff_layers_modelled") is not None:
        L += ["", f"FF is modelled for {est['ff_layers_modelled']} of {len(est['layers'])} layers."]
    if ver and ver.get("runs"):
        L += ["", "## Simulation runs (cocotb + Verilator)", "",
              "| run | idle | backpressure | frames | II | mean II | latency | max latency | cycles | RTL == FINN | "
              "bit-exact vs PyTorch | accuracy |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for tag, r in ver["runs"].items():
            L.append(f"| {tag} | {r['idle']} | {r['backpressure']} | {r['frames']} | {r['ii_cycles']} | "
                     f"{_fmt(r.get('ii_mean_cycles'))} | {r['latency_cycles']} | {r.get('latency_max_cycles', '')} | "
                     f"{r.get('total_cycles', '')} | {r['rtl_equals_finn']} | {r.get('bit_exact', '')} | "
                     f"{_pct(r.get('hw_accuracy'))} |")
        if ver.get("mismatch"):
            m = ver["mismatch"]
            L += ["", f"**Mismatch** ({m.get('run')} run, image {m.get('image')}): first diverging layer "
                  f"{m.get('layer')} ({m.get('op_type')}), stream {m.get('edge')} beat {m.get('beat')}."]
    if fifo and fifo.get("depths"):
        occ = fifo.get("max_occupancy", {})
        L += ["", "## FIFOs", "", f"Depths from simulation (II with large FIFOs: {fifo.get('ii_cycles_large_fifos')} "
              "cycles); one FIFO per stream.", "", "| stream | max occupancy | depth |", "|---|---|---|"]
        L += [f"| {k} | {occ.get(k, '')} | {v} |" for k, v in fifo["depths"].items()]
    L += ["", "## summary.json", "", "| key | meaning |", "|---|---|"]
    L += [f"| `{k}` | {v} |" for k, v in SUMMARY_SCHEMA.items()]
    return "\n".join(L) + "\n"


def write_report(build: os.PathLike | str, synth: bool = False, synth_timeout_s: float = 3600,
                 log: Callable[[str], None] | None = None, per_layer: bool = False,
                 accept_edits: bool = False) -> dict:
    """``xnorvit report``: check ``BUILD/manifest.json``
    (:func:`xnorvit.flows.manifest.check_manifest`, ``accept_edits`` records
    deliberate edits), optionally synthesize (:func:`synth_build`, with
    ``per_layer`` also per layer), then write ``report/summary.json``,
    ``report/index.md`` and the plots. Returns the summary.

    Raises:
        ReportError: missing build directory or files.
        ManifestError: the build's files differ from its manifest (named), or it has none.
        SynthesisError: ``synth`` and Yosys failed.
    """
    from xnorvit.flows.manifest import check_manifest

    log = log or (lambda s: None)
    build = Path(build)
    load(build)  # fail before a long synthesis
    check_manifest(build, accept_edits=accept_edits)
    if synth:
        synth_build(build, synth_timeout_s, log=log, per_layer=per_layer)
    d = load(build)
    s = summarize(d)
    rep = build / "report"
    rep.mkdir(exist_ok=True)
    layers, ii = d["estimates"]["layers"], d["estimates"]["ii_cycles"]
    _bars(layers, [l.get("lut") or 0 for l in layers], "LUT (estimate)",
          f"LUTs per layer (estimate; total {d['estimates']['total']['lut']:,})", rep / "layers_lut.png")
    lines = [(ii, "--", f"estimated II {ii}")]
    if s["ii_cycles"]:
        lines.append((s["ii_cycles"], "-", f"measured II {s['ii_cycles']}"))
    _bars(layers, [l["cycles"] for l in layers], "cycles per frame", "pipeline balance: cycles per layer vs II",
          rep / "layers_cycles.png", lines)
    _util_plot(s, rep / "utilization.png")
    (rep / "index.md").write_text(_markdown(d, s))
    (rep / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    return s


def summary_lines(build: os.PathLike | str, s: dict) -> list[str]:
    """A short human summary of a report (what ``xnorvit report`` and ``make demo`` print)."""
    build = Path(build)
    lines = [f"report {build / 'report' / 'index.md'} ({s['board']}, {s['fclk_mhz']:g} MHz)"]
    try:
        run = Path(json.loads((build / "compile.json").read_text())["run"])
        m = json.loads((run / "metrics.json").read_text())
        lines.append(f"  model       {m.get('model', '?')} ({run}): PyTorch accuracy {_pct(m.get('test_accuracy'))} on "
                     f"{m.get('test_images', '?')} held-out {m.get('dataset', '')} test images")
    except (OSError, KeyError, ValueError):
        pass
    if s["ii_cycles"]:
        lines += [f"  verified    {s['images_bit_exact']}/{s['images_verified']} images bit-exact vs PyTorch, "
                  f"accuracy of the RTL outputs {_pct(s['hw_accuracy'])}",
                  f"  throughput  {s['fps']:,.0f} frames/s (II {s['ii_cycles']} cycles measured, "
                  f"{s['estimated_ii_cycles']} estimated)",
                  f"  latency     {s['latency_cycles']:,} cycles = {s['latency_us']:,.1f} us"]
    else:
        lines.append(f"  not verified ({s['images_bit_exact']}/{s['images_verified']} bit-exact): xnorvit verify {build}")
    lines.append(f"  resources   LUT {s['lut']:,} ({_pct(s['lut_util'])}), BRAM36 {s['bram36']:g} ({_pct(s['bram_util'])}), "
                 f"DSP {s['dsp']} ({_pct(s['dsp_util'])}), FF {s['ff']:,} ({_pct(s['ff_util'])}) [{s['resource_source']}]")
    if s.get("lut_per_binary_mac_per_cycle"):
        lines.append(f"  efficiency  {s['lut_per_binary_mac_per_cycle']:.2f} LUT per binary MAC/cycle "
                     f"({s['binary_macs']:,} binary MACs/frame)")
    return lines
