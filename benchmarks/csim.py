"""Benchmark of the HLS C simulation of a whole build (``xnorvit csim``).

For a build directory (default ``build/demo``, what ``make demo`` writes):
the C simulation of ``--images`` real test images through the HLS kernels of
its graph, cold (the program cache ``BUILD/sim/hls`` removed first: g++
compile + run) and warm (run only), each checked bit for bit against
PyTorch by ``xnorvit.flows.hls.csim_build``; beside it the whole-network
RTL verification of the same build from ``BUILD/report/verify.json`` when
``xnorvit verify`` has run. Writes ``benchmarks/results/csim.json``.

Run::

    .venv/bin/python benchmarks/csim.py [--build build/demo] [--images 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def main() -> None:
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows.hls import csim_build

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, default=REPO / "build" / "demo")
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()
    build = args.build.resolve()
    shutil.rmtree(build / "sim" / "hls", ignore_errors=True)
    t = time.monotonic()
    cold = csim_build(build, args.images, log=print)
    cold_s = time.monotonic() - t
    t = time.monotonic()
    warm = csim_build(build, args.images)
    warm_s = time.monotonic() - t
    comp = json.loads((build / "compile.json").read_text())
    ver = build / "report" / "verify.json"
    nodes = ModelWrapper(str(build / "rtl" / "hw_stitched.onnx")).graph.node
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    res = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "machine": platform.node(), "build": str(build),
           "board": comp.get("board"), "dataset": cold["dataset"], "kernels": len(nodes), "images": cold["images"],
           "images_bit_exact": cold["images_bit_exact"], "csim_accuracy": cold["csim_accuracy"],
           "cold_seconds": round(cold_s, 1), "warm_seconds": round(warm_s, 1),
           "warm_bit_exact": warm["images_bit_exact"],
           "rtl_verify": json.loads(ver.read_text()).get("images_bit_exact") if ver.is_file() else None,
           "command": f"python benchmarks/csim.py --build {args.build} --images {args.images}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "csim.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
