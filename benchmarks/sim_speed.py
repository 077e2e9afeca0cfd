"""Benchmark: Verilator build and simulation time of a stitched accelerator.

Builds the RTL of an existing ``xnorvit build`` directory twice into scratch
caches and simulates the same real test images through each (no idle, no
backpressure, :func:`xnorvit.flows.verify.simulate`):

- ``cocotb_default``: what cocotb's Verilator runner does on its own
  (``--public-flat-rw``: every signal of the design VPI-writable);
- ``xnorvit``: with :data:`xnorvit.flows.sim.VERILATOR_SIM_ARGS` (only the
  top level's signals public, long C++ functions split).

Both runs must give the same output beats and the same handshake cycles, or
the script fails. Writes ``benchmarks/results/sim_speed.json``: wall seconds
of the build (Verilator + g++ on all cores) and of the simulation, simulated
cycles per second, and the ratios. Run (~3 min on 2 cores for bivit-t)::

    .venv/bin/python benchmarks/sim_speed.py --build build/demo [--images 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "sim_speed.json"


def _measure(st, frames, cache: Path, work: Path) -> tuple[dict, dict]:
    from xnorvit.flows import sim
    from xnorvit.flows import stitch as xs
    from xnorvit.flows import verify as V

    t0 = time.time()
    sim.build(st.top, st.files, xs.mem_root_parameter(st), V.BUILD_ARGS, (), cache)
    t1 = time.time()
    res = V.simulate(st, frames, cache_dir=cache, work=work)
    t2 = time.time()
    return ({"build_seconds": round(t1 - t0, 1), "sim_seconds": round(t2 - t1, 1), "cycles": res["cycles"],
             "cycles_per_second": round(res["cycles"] / (t2 - t1))}, res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=REPO / "build" / "demo", help="an `xnorvit build` directory")
    ap.add_argument("--images", type=int, default=20, help="real test images simulated back to back")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()

    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows import sim
    from xnorvit.flows import stitch as xs
    from xnorvit.flows.verify import _run_meta, stimulus
    from xnorvit.model.data import load_dataset

    build = args.build.resolve()
    if not (build / "rtl" / "stitch.json").is_file():
        raise SystemExit(f"{build} is not an `xnorvit build` directory (no rtl/stitch.json)")
    comp, _, dataset = _run_meta(build)
    st = xs.load_stitched(build / "rtl")
    model = ModelWrapper(str(build / "rtl" / "hw_stitched.onnx"))
    frames, _, _, _ = stimulus(model, st, load_dataset(dataset).x_test[: args.images])
    scratch = Path(tempfile.mkdtemp(prefix="xnorvit-simspeed-"))
    rows = {}
    outs = {}
    ours = sim.VERILATOR_SIM_ARGS
    try:
        for name, extra in (("cocotb_default", ()), ("xnorvit", ours)):
            sim.VERILATOR_SIM_ARGS = extra
            rows[name], res = _measure(st, frames, scratch / name / "cache", scratch / name / "run")
            outs[name] = (res["outputs"], res["in_cycles"], res["out_cycles"])
            print(name, rows[name], flush=True)
    finally:
        sim.VERILATOR_SIM_ARGS = ours
        shutil.rmtree(scratch, ignore_errors=True)
    if outs["cocotb_default"] != outs["xnorvit"]:
        raise SystemExit("the two builds disagree on output beats or handshake cycles")
    a, b = rows["cocotb_default"], rows["xnorvit"]
    result = {
        "run": comp.get("run"), "build": str(build), "board": comp.get("board"), "ii_cycles": comp.get("ii_cycles"),
        "hw_nodes": len(model.graph.node), "streams": len(st.edges), "images": args.images, "top": st.top,
        "runs": rows, "identical_outputs_and_cycles": True,
        "build_speedup": round(a["build_seconds"] / b["build_seconds"], 2),
        "sim_speedup": round(a["sim_seconds"] / b["sim_seconds"], 2),
        "verilator_sim_args": list(ours),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
        "command": f"python benchmarks/sim_speed.py --build {args.build} --images {args.images}",
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("build_speedup", "sim_speedup")}))


if __name__ == "__main__":
    main()
