"""Benchmark of the whole flow on a trained run: build -> verify -> report.

Runs the CLI as a user would (each step a subprocess, timed by wall clock)::

    xnorvit build  RUN --out OUT --board BOARD --target-fps FPS --force
    xnorvit verify OUT --images N
    xnorvit report OUT [--synth]

and records in ``benchmarks/results/flow.json`` (+ ``flow.md``): wall time of
build, verification (and Yosys synthesis), II and latency measured in the
whole-network simulation, frames/s at fclk, LUT/FF/BRAM36/DSP from the
estimates (and Yosys ``synth_xilinx -family xc7`` of the stitched design with
``--synth``), bit-exact count and accuracy on the simulated real test images,
and whether the targets hold (>= ``--target-fps`` frames/s measured, 20,000 by
default as issue #5 asked, <= 70 % of the LUTs and BRAM).

Run (bivit-t of runs/main; ~1 h on 2 cores, ~1.5 h with --synth)::

    nice -n 10 .venv/bin/python benchmarks/flow.py --run runs/main --synth

``--skip-build`` reuses an existing OUT (its build time: ``--build-seconds``,
else ``OUT/fifo.json``'s ``build_seconds``, else the earlier results file's when
it names the same OUT); ``--skip-verify`` reuses OUT's verification.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
XNORVIT = REPO / ".venv" / "bin" / "xnorvit"
TARGET_FPS, MAX_UTIL = 20_000, 0.70


def step(name: str, args: list[str], log) -> float:
    """Run ``xnorvit ARGS`` (output to the console and the log); returns wall seconds."""
    cmd = [str(XNORVIT), *args]
    print(f"[flow] {name}: {' '.join(cmd)}", flush=True)
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        sys.stdout.write(line)
        log.write(line)
    rc = p.wait()
    dt = time.time() - t0
    log.write(f"[{name}: exit {rc}, {dt:.0f} s]\n")
    if rc != 0:
        raise SystemExit(f"[flow] {name} failed (exit {rc}) after {dt:.0f} s; see {log.name}")
    print(f"[flow] {name}: {dt:.0f} s", flush=True)
    return dt


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def collect(out: Path, wall: dict, args, meta: dict) -> dict:
    """The results dict from the build directory's files."""
    rep = out / "report"
    s = json.loads((rep / "summary.json").read_text())
    ver = json.loads((rep / "verify.json").read_text())
    comp = json.loads((out / "compile.json").read_text())
    fifo = json.loads((out / "fifo.json").read_text())
    syn = json.loads((rep / "synth.json").read_text()) if (rep / "synth.json").is_file() else None
    res_src = s["yosys"] or s["estimate"]
    targets = {
        "fps_measured_at_least": args.target_fps, "fps_ok": bool(s["fps"] and s["fps"] >= args.target_fps),
        "max_util": MAX_UTIL, "util_source": s["resource_source"],
        "lut_ok": res_src["lut_util"] <= MAX_UTIL, "bram_ok": res_src["bram_util"] <= MAX_UTIL,
        "all_bit_exact": s["images_bit_exact"] == s["images_verified"] > 0,
    }
    return {
        "meta": {**meta, "machine": machine(), "run": str(args.run), "out": str(out), "board": s["board"],
                 "part": s["part"], "target_fps": args.target_fps, "fclk_mhz": s["fclk_mhz"], "images": args.images,
                 "commands": wall.get("commands", [])},
        "wall_seconds": {k: v for k, v in wall.items() if k != "commands"},
        "measured": {"ii_cycles": s["ii_cycles"], "latency_cycles": s["latency_cycles"], "fps": s["fps"],
                     "latency_us": s["latency_us"], "estimated_ii_cycles": s["estimated_ii_cycles"],
                     "estimated_fps": s["estimated_fps"], "bottleneck": s["bottleneck"],
                     "stalled_run": ver["runs"].get("stalled"), "free_run": ver["runs"].get("free"),
                     "ii_cycles_large_fifos": fifo.get("ii_cycles_large_fifos"),
                     "fifo_entries": s["fifo_entries"], "fifos": len(fifo.get("depths", {})),
                     "binary_macs": s.get("binary_macs"), "binary_macs_per_cycle": s.get("binary_macs_per_cycle"),
                     "lut_per_binary_mac_per_cycle": s.get("lut_per_binary_mac_per_cycle"),
                     "lut_source": s["resource_source"]},
        "verification": {"images_verified": s["images_verified"], "images_bit_exact": s["images_bit_exact"],
                         "rtl_equals_finn": s["rtl_equals_finn"], "hw_accuracy": s["hw_accuracy"],
                         "compile_check": comp.get("check")},
        "resources": {"estimate": s["estimate"], "yosys": s["yosys"],
                      "yosys_detail": {k: syn[k] for k in ("lut_logic", "lut_mem", "carry4", "bram18", "bram36",
                                                           "muxf", "seconds") if k in syn} if syn else None},
        "summary": s,
        "targets": targets,
    }


def markdown(r: dict) -> str:
    m, w, me, v, rs, t = r["meta"], r["wall_seconds"], r["measured"], r["verification"], r["resources"], r["targets"]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def secs(k):
        return f"{w[k]:.0f} s" if w.get(k) is not None else "n/a"

    L = [f"# Flow benchmark: `{m['run']}` -> {m['board']} at {m['fclk_mhz']:g} MHz (target {m['target_fps']:g} frames/s)",
         "", f"Machine: {m['machine']['cpus']} CPUs ({m['machine']['cpu']}), load average {m['machine']['load_avg_at_start']:.1f}"
         " at start (other jobs shared the machine).", "",
         "| step | wall time |", "|---|---|",
         f"| `xnorvit build` (compile, stitch, FIFO sizing by simulation) | {secs('build')} |",
         f"| `xnorvit verify --images {m['images']}` (two whole-network simulations) | {secs('verify')} |",
         f"| Yosys synth_xilinx of the stitched design | {secs('synth')} |",
         f"| `xnorvit report` | {secs('report')} |", ""]
    src = m.get("wall_seconds_source", {})
    L += [f"Wall time of {k}: {v}." for k, v in src.items() if v != "measured by this script" and w.get(k) is not None]
    if m.get("note"):
        L.append(f"Note: {m['note']}")
    L += ["",
         "| measured in simulation | |", "|---|---|",
         f"| II | {me['ii_cycles']} cycles (estimate {me['estimated_ii_cycles']}, bottleneck {me['bottleneck']}) |",
         f"| frames/s at {m['fclk_mhz']:g} MHz | {me['fps']:,.0f} (estimate {me['estimated_fps']:,.0f}) |",
         f"| latency | {me['latency_cycles']} cycles = {me['latency_us']:.1f} us |",
         f"| FIFOs | {me['fifos']} FIFOs, {me['fifo_entries']:,} entries |",
         *([f"| LUT per binary MAC/cycle | {me['lut_per_binary_mac_per_cycle']:.2f} ({me['lut_source']} LUTs, "
            f"{me['binary_macs']:,} binary MACs/frame) |"] if me.get("lut_per_binary_mac_per_cycle") else []),
         f"| bit-exact vs PyTorch | {v['images_bit_exact']}/{v['images_verified']} real MNIST test images "
         f"(random idle/backpressure) |",
         f"| accuracy of the RTL outputs | {pct(v['hw_accuracy'])} |", "",
         "| resources | LUT | FF | BRAM36 | DSP |", "|---|---|---|---|---|"]
    for name, x in (("estimate", rs["estimate"]), ("Yosys synth_xilinx -family xc7", rs["yosys"])):
        if x:
            L.append(f"| {name} | {x['lut']:,} ({pct(x['lut_util'])}) | {x['ff']:,} ({pct(x['ff_util'])}) | "
                     f"{x['bram36']:g} ({pct(x['bram_util'])}) | {x['dsp']} ({pct(x['dsp_util'])}) |")
    if not rs["yosys"]:
        L += ["", "No Yosys figures in this run (run with `--synth`)."]
    L += ["", f"Targets: >= {t['fps_measured_at_least']:,.0f} frames/s measured: "
          f"**{'yes' if t['fps_ok'] else 'no'}**; LUT <= {100 * t['max_util']:.0f}% ({t['util_source']}): "
          f"**{'yes' if t['lut_ok'] else 'no'}**; BRAM <= {100 * t['max_util']:.0f}% ({t['util_source']}): "
          f"**{'yes' if t['bram_ok'] else 'no'}**; all images bit-exact: **{'yes' if t['all_bit_exact'] else 'no'}**.",
          "", "Commands:", "", "```", *m["commands"], "```", "",
          f"Generated by `.venv/bin/python benchmarks/flow.py {m.get('argv') or '--run ' + m['run']}` ({m['date']}).", ""]
    return "\n".join(L)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/main"), help="trained and exported run")
    ap.add_argument("--out", type=Path, default=Path("build/flow"), help="build directory (replaced)")
    ap.add_argument("--board", default="pynq-z2")
    ap.add_argument("--target-fps", type=float, default=TARGET_FPS)
    ap.add_argument("--images", type=int, default=100, help="real test images verified")
    ap.add_argument("--synth", action="store_true", help="also Yosys-synthesize the stitched design")
    ap.add_argument("--synth-timeout", type=float, default=5400)
    ap.add_argument("--skip-build", action="store_true", help="reuse OUT as built")
    ap.add_argument("--build-seconds", type=float, help="with --skip-build: wall time of the earlier build "
                    "(default: OUT/fifo.json's build_seconds)")
    ap.add_argument("--skip-verify", action="store_true", help="reuse OUT's verification")
    ap.add_argument("--note", help="free text recorded with the results (e.g. what else ran on the machine)")
    ap.add_argument("--results", type=Path, default=RESULTS / "flow.json")
    args = ap.parse_args(argv)
    out = args.out
    args.results.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(args.results.read_text()) if args.results.is_file() else {}
    same = old.get("meta", {}).get("out") == str(out)
    wall: dict = {"build": None, "verify": None, "synth": None, "report": None, "commands": []}
    timed = {k: "measured by this script" for k in ("build", "verify", "report")}
    timed["synth"] = "yosys run time recorded in OUT/report/synth.json (possibly an earlier, cached run)"
    log_path = out.parent / f"{out.name}.flow.log"  # beside the build directory (never committed)
    with open(log_path, "w") as log:
        build_args = ["build", str(args.run), "--out", str(out), "--board", args.board, "--target-fps",
                      f"{args.target_fps:g}", "--force"]
        if args.skip_build:
            fifo = json.loads((out / "fifo.json").read_text())
            wall["build"], how = ((args.build_seconds, "given with --build-seconds (build run before this script)")
                                  if args.build_seconds else
                                  (fifo.get("build_seconds"), "OUT/fifo.json build_seconds") if fifo.get("build_seconds")
                                  else (old.get("wall_seconds", {}).get("build") if same else None,
                                        "earlier results file"))
            timed["build"] = how
        else:
            wall["build"] = step("build", build_args, log)
        wall["commands"].append("xnorvit " + " ".join(build_args))
        verify_args = ["verify", str(out), "--images", str(args.images)]
        if args.skip_verify:
            wall["verify"] = old.get("wall_seconds", {}).get("verify") if same else None
            timed["verify"] = "earlier results file"
        else:
            wall["verify"] = step("verify", verify_args, log)
        wall["commands"].append("xnorvit " + " ".join(verify_args))
        if args.synth:
            synth_args = ["report", str(out), "--synth", "--synth-timeout", f"{args.synth_timeout:g}"]
            wall["synth"] = step("report --synth", synth_args, log)
            wall["commands"].append("xnorvit " + " ".join(synth_args))
            syn = json.loads((out / "report" / "synth.json").read_text())
            wall["synth"] = syn.get("seconds") or wall["synth"]  # yosys itself (cached: the run that made it)
        report_args = ["report", str(out)]
        wall["report"] = step("report", report_args, log)
        wall["commands"].append("xnorvit " + " ".join(report_args))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "argv": shlex.join(argv if argv is not None else sys.argv[1:]), "log": str(log_path.relative_to(REPO))
            if log_path.is_relative_to(REPO) else str(log_path), "wall_seconds_source": timed}
    if args.note:
        meta["note"] = args.note
    r = collect(out, wall, args, meta)
    args.results.write_text(json.dumps(r, indent=1) + "\n")
    args.results.with_suffix(".md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
