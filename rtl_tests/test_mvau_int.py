"""cocotb + pytest tests of rtl/mvau_int.sv (integer matrix-vector-threshold unit).

Bipolar (+-1) weights x n-bit activations (add/subtract) and n-bit x n-bit
weights, signed and unsigned, raw accumulator or fused thresholds. The
pytest function writes seeded data including the extreme values of each
type (to exercise the accumulator width), computes an independent numpy
reference and FINN's ``MVAU`` node execution (non-XNOR mode) on the same
data, and runs the shared cocotb checks (``kernel_tb``) over idle and
backpressure combinations plus a cycles-per-frame measurement.
"""

from __future__ import annotations

from pathlib import Path

import cocotb
import numpy as np
import pytest

from axis_tb import PAUSE_PATTERNS
from kernel_tb import check_cycles, check_stream

RTL = Path(__file__).resolve().parent.parent / "rtl"
SOURCES = [RTL / "mvau_addtree.sv", RTL / "mvau_rom.sv", RTL / "mvau_core.sv", RTL / "mvau_int.sv"]
MAX_LATENCY = 8


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive value range of a bits-wide integer."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def reference(x: np.ndarray, w: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Independent model: x (T, MW) ints, w (MW, MH) ints (+-1 for bipolar) -> (T, MH) int64."""
    acc = x.astype(np.int64) @ w.astype(np.int64)
    if thresholds is None:
        return acc
    return (acc[:, :, None] >= thresholds[None, :, :]).sum(-1)


# --------------------------------------------------------------- cocotb side


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSE_PATTERNS), backpressure=list(PAUSE_PATTERNS))
async def run_stream(dut, idle: str, backpressure: str):
    """Two frames of vectors; every output beat equals the numpy and FINN references."""
    await check_stream(dut, idle, backpressure)


@cocotb.test()
async def cycles_per_frame(dut):
    """Without idle/backpressure a frame takes exactly T*(MH/PE)*(MW/SIMD) cycles in steady state."""
    await check_cycles(dut)


# --------------------------------------------------------------- pytest side

# (MW, MH, PE, SIMD, IN_W, IN_SIGNED, W_W, W_SIGNED, N_THRESH, tokens[, USE_DSP])
PARAMS = [
    (8, 4, 1, 1, 8, 1, 1, 1, 0, 2),        # PE = SIMD = 1, bipolar weights, raw
    (16, 8, 8, 16, 8, 1, 8, 1, 0, 2),      # fully unrolled 8x8-bit, raw
    (24, 12, 3, 6, 4, 0, 1, 1, 3, 2),      # non-power-of-two, unsigned 4-bit acts, bipolar weights
    (24, 12, 4, 8, 8, 1, 8, 1, 15, 2),     # 8x8-bit, 4-bit thresholded output
    (36, 10, 5, 3, 3, 0, 4, 0, 7, 2),      # odd sizes, unsigned x unsigned
    (24, 12, 3, 6, 4, 1, 1, 1, 1, 2),      # one threshold (folded into the accumulator), bipolar weights
    (16, 8, 2, 4, 4, 1, 8, 1, 1, 2),       # one threshold, signed 4-bit x INT8
    (64, 8, 1, 2, 8, 1, 8, 1, 0, 1),       # 256-word weight memory -> block RAM
    # USE_DSP = 0: shift-add products in LUTs
    (24, 12, 4, 8, 4, 0, 8, 1, 15, 2, 0),  # unsigned 4-bit x INT8, thresholded (the stem's case)
    (16, 8, 2, 4, 4, 1, 8, 1, 0, 2, 0),    # signed 4-bit x INT8: the MSB partial product is negative
    (36, 10, 5, 3, 3, 0, 4, 0, 7, 2, 0),   # unsigned x unsigned
    # USE_DSP = 1, DSP_PACK = 1: two channels per multiplier
    (24, 12, 4, 8, 4, 0, 8, 1, 15, 2, 1, 1),  # unsigned 4-bit x INT8 (the stem's case)
    (16, 8, 2, 4, 4, 1, 8, 1, 0, 2, 1, 1),    # signed 4-bit x INT8, raw: negative low fields borrow
    (12, 6, 6, 3, 6, 1, 8, 0, 0, 2, 1, 1),    # signed 6-bit x UINT8: the widest pair that fits 25 bits
]


def _id(p):
    mw, mh, pe, simd, iw, isg, ww, wsg, n, t, *dsp = p
    a = f"{'INT' if isg else 'UINT'}{iw}"
    w = "BIP" if ww == 1 else f"{'INT' if wsg else 'UINT'}{ww}"
    mode = "" if not dsp else ("-LUTMUL" if not dsp[0] else ("-DSPPACK" if len(dsp) > 1 and dsp[1] else ""))
    return f"MW{mw}-MH{mh}-PE{pe}-SIMD{simd}-{a}x{w}-N{n}-T{t}" + mode


def make_case(mw, mh, pe, simd, in_w, in_signed, w_w, w_signed, n_thresh, tokens, use_dsp=1, dsp_pack=0,
              data_dir: Path = None):
    """Write weights/thresholds/data for one case; return (HDL parameters, test params)."""
    from xnorvit.flows import finn_ref, mvau_rtl

    rng = np.random.default_rng(7 * mw + mh)
    alo, ahi = int_range(in_w, bool(in_signed))
    x = rng.integers(alo, ahi + 1, (tokens, mw))
    x[0, : mw // 2] = alo if in_signed else ahi      # extreme activations
    if w_w == 1:
        wbits = rng.integers(0, 2, (mw, mh))
        wbits[: mw // 2, 0] = 1 if in_signed else 0    # channel 0 hits the accumulator extreme
        w = 2 * wbits - 1
        wdt = "BIPOLAR"
    else:
        wlo, whi = int_range(w_w, bool(w_signed))
        w = rng.integers(wlo, whi + 1, (mw, mh))
        w[:, 0] = wlo if w_signed else whi
        wbits = w
        wdt = f"{'INT' if w_signed else 'UINT'}{w_w}"
    idt = f"{'INT' if in_signed else 'UINT'}{in_w}"
    acc_w = mvau_rtl.int_acc_width(mw, in_w, w_w)
    data_dir.mkdir(parents=True, exist_ok=True)
    hdl = {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "IN_W": in_w, "IN_SIGNED": in_signed, "W_W": w_w,
           "W_SIGNED": w_signed, "N_THRESH": n_thresh, "USE_DSP": use_dsp,
           "DSP_PACK": dsp_pack,
           "WEIGHTS_FILE": f'"{mvau_rtl.write_weights(data_dir / "weights.hex", wbits, pe, simd, w_w)}"'}
    acc = reference(x, w, None)
    thr = None
    if n_thresh:
        lo, hi = int(acc.min()) - 2, int(acc.max()) + 2
        thr = np.sort(rng.integers(lo, hi + 1, (mh, n_thresh)), axis=1)
        hdl["THRESHOLDS_FILE"] = f'"{mvau_rtl.write_thresholds(data_dir / "thresholds.hex", thr, pe, acc_w)}"'
    ref = reference(x, w, thr)
    model = finn_ref.mvau_model(w, thr, pe, simd, n_vectors=tokens, input_dtype=idt, weight_dtype=wdt,
                                binary_xnor=False)
    finn = finn_ref.execute(model, x).reshape(tokens, mh).astype(np.int64)
    assert np.array_equal(ref, finn), "numpy reference and FINN MVAU disagree"
    assert np.abs(acc).max() < (1 << (acc_w - 1)), "test data overflows the accumulator"
    np.savez(data_dir / "data.npz", x=x, ref=ref, finn=finn, w=w,  # w, t: for the HLS C-sim on the same data
             t=thr if n_thresh else np.zeros((0, 0), np.int64))
    out_w = clog2(n_thresh + 1) if n_thresh else acc_w
    tp = {"data": str(data_dir / "data.npz"), "in_lanes": simd, "in_bits": in_w, "out_lanes": pe,
          "out_bits": out_w, "out_signed": not n_thresh, "cycles_per_vector": (mh // pe) * (mw // simd),
          "max_latency": MAX_LATENCY}
    return hdl, tp


@pytest.mark.parametrize("case", PARAMS, ids=[_id(p) for p in PARAMS])
def test_mvau_int(case):
    from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

    data_dir = DEFAULT_CACHE / "data" / "mvau_int" / _id(case)
    hdl, tp = make_case(*case, data_dir=data_dir)
    run_cocotb("mvau_int", SOURCES, "test_mvau_int", parameters=hdl, test_params=tp, test_dir=data_dir)
