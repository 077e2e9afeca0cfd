"""cocotb + pytest tests of rtl/threshold_table.sv (a MultiThreshold of a
narrow input as per-lane lookup tables).

Per HDL parameter set, the pytest function draws seeded thresholds (sorted;
some repeated, some outside the input range, one set fractional) and inputs
(every input value on some channel, then random rows), writes the lane
tables with xnorvit's own ``threshold_table``/``table_hex`` (the files
``ThresholdTable_rtl.generate_hdl`` writes) and computes two references that
do not use them:

* an independent numpy MultiThreshold, ``y = BIAS + #{t <= x}``
  (``test_thresholding.reference``),
* FINN's ``Thresholding`` node executed with ``execute_onnx``.

The cocotb tests (shared checks in ``kernel_tb``) compare every output beat
with both under all idle/backpressure combinations and measure one beat per
cycle (``C/PE`` cycles per vector).
"""

from __future__ import annotations

from pathlib import Path

import cocotb
import numpy as np
import pytest

from axis_tb import PAUSE_PATTERNS
from kernel_tb import check_cycles, check_stream
from test_thresholding import finn_dtypes, out_bits, reference

RTL = Path(__file__).resolve().parent.parent / "rtl"
SOURCES = [RTL / "mvau_rom.sv", RTL / "threshold_table.sv"]


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSE_PATTERNS), backpressure=list(PAUSE_PATTERNS))
async def run_stream(dut, idle: str, backpressure: str):
    """Two frames; every output beat equals the numpy and FINN references."""
    await check_stream(dut, idle, backpressure)


@cocotb.test()
async def cycles_per_frame(dut):
    """One beat per cycle: T*C/PE cycles per frame in steady state."""
    await check_cycles(dut)


# (C, PE, WI, SIGNED, N, BIAS, RAM_STYLE, fractional thresholds)
PARAMS = [
    (64, 1, 7, 0, 255, -128, "block", False),        # bivit-t's requantizer: UINT7 popcount -> INT8
    (64, 2, 8, 0, 255, -128, "block", False),        # UINT8 residual sum -> INT8, two lanes
    (12, 3, 4, 1, 7, 0, "distributed", False),       # signed input, LUT-ROM
    (8, 8, 5, 0, 31, 0, "distributed", False),       # fully parallel (C/PE = 1)
    (10, 5, 3, 1, 5, -3, "auto", True),              # odd sizes, fractional thresholds, negative bias
    (6, 2, 1, 0, 1, 0, "distributed", False),        # 1-bit input
    (24, 4, 6, 1, 63, -32, "block", False),          # C/PE not a power of two
]


def _id(p):
    c, pe, wi, s, n, b, style, frac = p
    return f"C{c}-PE{pe}-{'INT' if s else 'UINT'}{wi}-N{n}-B{b}-{style}{'-frac' if frac else ''}"


def finn_execution(x, thresholds, pe, wi, signed, bias) -> np.ndarray:
    """FINN's ``Thresholding`` node executed on x (T, C) -> (T, C) int64; the
    thresholds are annotated FLOAT32 so fractional ones stay as drawn."""
    from xnorvit.flows import finn_ref

    t, c = x.shape
    idt, odt = finn_dtypes(wi, signed, thresholds.shape[1], bias)
    attrs = dict(PE=pe, NumChannels=c, numSteps=thresholds.shape[1], inputDataType=idt, weightDataType="FLOAT32",
                 outputDataType=odt, ActVal=bias, numInputVectors=[t])
    model = finn_ref._model("Thresholding", "finn.custom_op.fpgadataflow", {"inp": (t, c), "thresh": thresholds},
                            (t, c), attrs, {"inp": idt, "thresh": "FLOAT32", "outp": odt})
    return finn_ref.execute(model, x).reshape(t, c).astype(np.int64)


def make_case(case, data_dir: Path) -> tuple[dict, dict]:
    """Draw the data of ``case`` into ``data_dir`` (tables, data.npz); return
    (HDL parameters, test parameters)."""
    from xnorvit.flows.ops.threshold_table import table_hex, threshold_table

    c, pe, wi, signed, n, bias, style, frac = case
    rng = np.random.default_rng(c * 1000 + n * 10 + wi)
    lo, hi = (-(1 << (wi - 1)), 1 << (wi - 1)) if signed else (0, 1 << wi)
    # thresholds from slightly beyond the input range: some never or always pass
    thr = np.sort(rng.integers(lo - 2, hi + 2, (c, n)), axis=1).astype(np.float64)
    if frac:
        thr += 0.5
    # every input value on some channel (row r, channel ch: value r*C + ch), then random rows
    span = hi - lo
    rows = -(-span // c)
    x = np.concatenate([lo + (np.arange(rows)[:, None] * c + np.arange(c)[None, :]) % span,
                        rng.integers(lo, hi, (2, c))])
    ref = reference(x, thr, bias)
    finn = finn_execution(x, thr, pe, wi, bool(signed), bias)
    assert np.array_equal(ref, finn), "numpy reference and FINN Thresholding disagree"
    wo = out_bits(n, bias)
    data_dir.mkdir(parents=True, exist_ok=True)
    for p, text in enumerate(table_hex(threshold_table(thr, c, wi, bool(signed), bias), pe, wo)):
        (data_dir / f"table_{p}.hex").write_text(text)
    np.savez(data_dir / "data.npz", x=x, ref=ref, finn=finn, t=thr)
    hdl = {"C": c, "PE": pe, "WI": wi, "WO": wo, "SIGNED_IN": signed, "RAM_STYLE": f'"{style}"',
           "INIT_PREFIX": f'"{data_dir}/table_"'}
    tp = {"data": str(data_dir / "data.npz"), "in_lanes": pe, "in_bits": wi, "out_lanes": pe,
          "out_bits": wo, "out_signed": bias < 0, "cycles_per_vector": c // pe, "max_latency": 3}
    return hdl, tp


@pytest.mark.parametrize("case", PARAMS, ids=[_id(p) for p in PARAMS])
def test_threshold_table(case):
    from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

    data_dir = DEFAULT_CACHE / "data" / "threshold_table" / _id(case)
    hdl, tp = make_case(case, data_dir)
    run_cocotb("threshold_table", SOURCES, "test_threshold_table", parameters=hdl, test_params=tp,
               test_dir=data_dir)
