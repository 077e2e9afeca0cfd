"""Benchmark of a newcomer's first command: ``make demo`` on a fresh clone.

Clones this repository's committed HEAD into a scratch directory (no
``.venv``, no runs, no builds, no simulator cache: what a new user has; the
pip cache of the machine stays warm), runs ``make demo`` there with output to
a pipe (as in CI or ``make demo | tee``), and writes

- ``benchmarks/results/demo.txt``: the whole transcript, each line prefixed
  with the wall-clock offset ``[mm:ss]`` at which it appeared, then the total
  wall time;
- ``benchmarks/results/demo.json``: commit, wall seconds in all and per step
  (install, train, export, build, verify, report: from the offsets of the
  Makefile's command lines), number of transcript lines, exit status, and
  the target (``<= 900`` s, issue #16).

Run (~20-30 min on 2 cores)::

    nice -n 5 .venv/bin/python benchmarks/demo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
TARGET_S = 900
#: transcript markers of each step (the Makefile's command lines)
STEPS = (("install", "python3 -m venv"), ("train", "xnorvit train"), ("export", "xnorvit export"),
         ("build", "xnorvit build"), ("verify", "xnorvit verify"), ("report", "xnorvit report"))


def _step_seconds(lines: list[tuple[float, str]], total: float) -> dict[str, float]:
    """Wall seconds of each step: from its command line to the next step's (or the end)."""
    starts = []
    for name, marker in STEPS:
        t = next((t for t, line in lines if marker in line and not line.startswith(" ")), None)
        if t is not None:
            starts.append((name, t))
    if starts and starts[0][0] != "install":
        starts.insert(0, ("install", 0.0))
    out = {}
    for k, (name, t) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else total
        out[name] = round(end - (0.0 if k == 0 else t), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="clone into this directory and keep it (default: a temporary one)")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    work = args.keep or Path(tempfile.mkdtemp(prefix="xnorvit-demo-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} exists and is not empty")
    subprocess.run(["git", "clone", "-q", str(REPO), str(work)], check=True)
    t0 = time.time()
    lines: list[tuple[float, str]] = []
    p = subprocess.Popen(["make", "demo"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         bufsize=1)
    for line in p.stdout:
        t = time.time() - t0
        lines.append((t, line.rstrip("\n")))
        print(f"[{int(t) // 60:02d}:{int(t) % 60:02d}] {line}", end="", flush=True)
    rc = p.wait()
    total = time.time() - t0
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = [f"# make demo on a fresh clone of {commit} ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
            "warm pip cache; output to a pipe)", ""]
    text += [f"[{int(t) // 60:02d}:{int(t) % 60:02d}] {line}" for t, line in lines]
    text += ["", f"# exit status {rc}; total wall time {total:.0f} s ({total / 60:.1f} min; target <= {TARGET_S} s)"]
    (RESULTS / "demo.txt").write_text("\n".join(text) + "\n")
    res = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "exit_status": rc, "wall_seconds": round(total, 1),
           "steps_seconds": _step_seconds(lines, total), "transcript_lines": len(lines),
           "target_wall_seconds": TARGET_S, "meets_target": rc == 0 and total <= TARGET_S,
           "command": "python benchmarks/demo.py"}
    (RESULTS / "demo.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    if rc:
        raise SystemExit(f"make demo failed (exit {rc}); transcript: {RESULTS / 'demo.txt'}")


if __name__ == "__main__":
    main()
