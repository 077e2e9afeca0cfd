"""Benchmark: every zoo model that the hardware flow maps, side by side
(issue #13): board, measured II and frames/s at 100 MHz, latency, Yosys
LUT/FF/BRAM36/DSP, binary MACs per frame, LUT per binary MAC/cycle,
bit-exact count and accuracy of the RTL outputs on real MNIST test images.

Each row comes from one ``benchmarks/flow.py`` run (build -> verify 100
images through the stitched RTL under random idle/backpressure -> Yosys
``synth_xilinx -family xc7`` of the whole design), recorded in
``benchmarks/results/flow*.json``; this script runs the missing ones (or all
with ``--rerun``) and collates them into ``benchmarks/results/zoo_hw.json``
and ``zoo_hw.md``. The held-out PyTorch accuracy is the run's
``metrics.json`` (``xnorvit train``, the model's default recipe). Models
the flow does not map yet are listed with the operators that block them
(``xnorvit models``).

Run (a trained and exported run per model, e.g. ``xnorvit train --model
binary-deit-t --out runs/deit && xnorvit export runs/deit``; ~20 min per
model on 2 cores, most of it Yosys)::

    .venv/bin/python benchmarks/zoo_hw.py                  # run what is missing, collate
    .venv/bin/python benchmarks/zoo_hw.py --collate-only   # tables from the existing flow results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

#: model -> (run directory, board, target frames/s, flow results file). The board is pynq-z2 for
#: every model that fits it within 70 % of the LUTs and BRAM (Yosys); the target is the highest
#: folding step that does (the folding's own estimate picks it, flows/folding.py).
RUNS = {
    "bivit-t": ("runs/bench14", "pynq-z2", 30000, "flow.json"),
    "binary-deit-t": ("runs/deit", "pynq-z2", 15000, "flow_binary_deit_t.json"),
}


def run_flow(model: str, run: str, board: str, fps: float, results: Path) -> None:
    """``benchmarks/flow.py`` for one model (raises SystemExit on failure)."""
    out = REPO / "build" / f"zoo_{model.replace('-', '_')}"
    cmd = [sys.executable, str(REPO / "benchmarks" / "flow.py"), "--run", run, "--out", str(out.relative_to(REPO)),
           "--board", board, "--target-fps", f"{fps:g}", "--synth", "--results", str(results.relative_to(REPO)),
           "--note", f"{model} for benchmarks/zoo_hw.py"]
    print("[zoo_hw]", " ".join(cmd), flush=True)
    if subprocess.call(cmd, cwd=REPO) != 0:
        raise SystemExit(f"[zoo_hw] flow.py failed for {model}")


def row(model: str, flow: dict) -> dict:
    """One table row from a flow.py results dict."""
    me, v, rs, m = flow["measured"], flow["verification"], flow["resources"], flow["meta"]
    y = rs["yosys"] or {}
    metrics = REPO / m["run"] / "metrics.json"
    acc = json.loads(metrics.read_text()).get("test_accuracy") if metrics.is_file() else None
    return {"model": model, "run": m["run"], "board": m["board"], "fclk_mhz": m["fclk_mhz"],
            "ii_cycles": me["ii_cycles"], "fps": me["fps"], "latency_cycles": me["latency_cycles"],
            "latency_us": me["latency_us"], "lut": y.get("lut"), "ff": y.get("ff"), "bram36": y.get("bram36"),
            "dsp": y.get("dsp"), "lut_util": y.get("lut_util"), "bram_util": y.get("bram_util"),
            "binary_macs": me.get("binary_macs"), "lut_per_binary_mac_per_cycle": me.get("lut_per_binary_mac_per_cycle"),
            "lut_source": me.get("lut_source"), "images_verified": v["images_verified"],
            "images_bit_exact": v["images_bit_exact"], "rtl_accuracy": v["hw_accuracy"],
            "pytorch_heldout_accuracy": acc, "flow_results": None, "flow_date": m.get("date"),
            "flow_command": f"benchmarks/flow.py {m.get('argv', '')}".strip()}


def markdown(rows: list[dict], unmapped: dict) -> str:
    def f(x, fmt="{:,}"):
        return "n/a" if x is None else fmt.format(x)

    L = ["# Zoo models in hardware", "",
         "Each row: `benchmarks/flow.py` (build, 100 real MNIST test images through the stitched RTL under random "
         "idle/backpressure, Yosys `synth_xilinx -family xc7` of the whole design), collated by "
         "`.venv/bin/python benchmarks/zoo_hw.py`. Frames/s at 100 MHz (no place-and-route here).", "",
         "| model | board | II (cycles) | frames/s | latency | LUT | FF | BRAM36 | DSP | binary MACs/frame | "
         "LUT per binary MAC/cycle | bit-exact | RTL accuracy | PyTorch held-out |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['model']} | {r['board']} | {r['ii_cycles']:,} | {r['fps']:,.0f} | {r['latency_us']:.1f} us | "
                 f"{f(r['lut'])} ({f(r['lut_util'], '{:.1%}')}) | {f(r['ff'])} | {f(r['bram36'], '{:g}')} "
                 f"({f(r['bram_util'], '{:.1%}')}) | {f(r['dsp'])} | {f(r['binary_macs'])} | "
                 f"{f(r['lut_per_binary_mac_per_cycle'], '{:.2f}')} | {r['images_bit_exact']}/{r['images_verified']} | "
                 f"{f(r['rtl_accuracy'], '{:.0%}')} | {f(r['pytorch_heldout_accuracy'], '{:.1%}')} |")
    if unmapped:
        L += ["", "Not mapped yet (`xnorvit models`):", ""]
        L += [f"- {m}: {why}" for m, why in unmapped.items()]
    L += ["", "Flow runs:", ""] + [f"- {r['model']}: `{r['flow_command']}` ({r['flow_date']}), run `{r['run']}`"
                                   for r in rows]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=list(RUNS), help="models to include (default: all mapped)")
    ap.add_argument("--rerun", action="store_true", help="run flow.py even where its results exist")
    ap.add_argument("--collate-only", action="store_true", help="never run flow.py")
    args = ap.parse_args(argv)
    from xnorvit.model.zoo import MODELS

    t0 = time.time()
    rows = []
    for model in args.models:
        if model not in RUNS:
            raise SystemExit(f"[zoo_hw] no hardware run configured for {model!r}; mapped: {', '.join(RUNS)}")
        run, board, fps, name = RUNS[model]
        results = RESULTS / name
        if not args.collate_only and (args.rerun or not results.is_file()):
            if not (REPO / run / "model.onnx").is_file():
                raise SystemExit(f"[zoo_hw] {model}: no exported run {run} (xnorvit train --model {model} --out {run}; "
                                 f"xnorvit export {run})")
            run_flow(model, run, board, fps, results)
        if not results.is_file():
            raise SystemExit(f"[zoo_hw] {model}: no flow results {results.relative_to(REPO)}")
        r = row(model, json.loads(results.read_text()))
        r["flow_results"] = str(results.relative_to(REPO))
        rows.append(r)
    unmapped = {m: s.hardware for m, s in MODELS.items() if m not in RUNS}
    meta = {"command": "benchmarks/zoo_hw.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "zoo_hw.json").write_text(json.dumps({"meta": meta, "rows": rows, "unmapped": unmapped}, indent=1) + "\n")
    (RESULTS / "zoo_hw.md").write_text(markdown(rows, unmapped))
    print(f"wrote {RESULTS / 'zoo_hw.json'} and zoo_hw.md", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
