"""cocotb + pytest tests of rtl/mvau_xnor.sv (binary XNOR-popcount matrix-vector-threshold unit).

The pytest function builds one Verilator model per HDL parameter set (cached),
writes seeded weights/thresholds/inputs, computes two references and runs the
cocotb tests of this module:

* an independent numpy model of the integer semantics (bipolar matmul),
* FINN's own ``MVAU`` node in binaryXnorMode executed with ``execute_onnx``.

The cocotb tests check every output beat against both under combinations of
source idle and sink backpressure patterns, and measure cycles per frame.
"""

from __future__ import annotations

from pathlib import Path

import cocotb
import numpy as np
import pytest

from axis_tb import PAUSE_PATTERNS
from kernel_tb import check_cycles, check_stream

RTL = Path(__file__).resolve().parent.parent / "rtl"
SOURCES = [RTL / "mvau_addtree.sv", RTL / "mvau_rom.sv", RTL / "mvau_core.sv", RTL / "mvau_xnor.sv"]
#: Upper bound on cycles from the last input beat of a vector to its last output beat.
MAX_LATENCY = 8


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def reference(x: np.ndarray, w: np.ndarray, bipolar: bool, thresholds: np.ndarray | None) -> np.ndarray:
    """Independent model: x bits (T, MW), w bits (MW, MH) -> (T, MH) int64.

    acc = sum_k (2x-1)(2w-1) (BIPOLAR=1) or the number of equal bits (BIPOLAR=0);
    with thresholds (MH, N): number of t with acc >= t.
    """
    dot = (2 * x.astype(np.int64) - 1) @ (2 * w.astype(np.int64) - 1)
    acc = dot if bipolar else (dot + x.shape[1]) // 2
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

# (MW, MH, PE, SIMD, BIPOLAR, N_THRESH, tokens)
PARAMS = [
    (8, 4, 1, 1, 0, 0, 2),       # PE = SIMD = 1, raw popcount
    (16, 8, 8, 16, 0, 1, 3),     # fully unrolled, binary output
    (24, 12, 3, 6, 0, 3, 2),     # non-power-of-two, 2-bit output
    (24, 12, 4, 8, 1, 0, 2),     # non-power-of-two, raw bipolar accumulator
    (36, 10, 5, 3, 1, 7, 2),     # odd sizes, bipolar thresholds, 3-bit output
    (30, 12, 4, 5, 1, 1, 3),     # bipolar threshold folded into the accumulator, odd MW
    (64, 32, 4, 16, 0, 1, 2),    # typical layer, distributed weights
    (64, 16, 1, 4, 0, 15, 1),    # 256-word weight memory -> block RAM, 4-bit output
]


def _id(p):
    mw, mh, pe, simd, bip, n, t = p
    return f"MW{mw}-MH{mh}-PE{pe}-SIMD{simd}-{'bip' if bip else 'pop'}-N{n}-T{t}"


def make_case(mw, mh, pe, simd, bipolar, n_thresh, tokens, data_dir: Path, seed: int = 0) -> tuple[dict, dict]:
    """Write weights/thresholds/data for one case; return (HDL parameters, test params)."""
    from xnorvit.flows import finn_ref, mvau_rtl

    rng = np.random.default_rng(seed + 1000 * mw + mh)
    w = rng.integers(0, 2, (mw, mh))
    x = rng.integers(0, 2, (tokens, mw))
    acc_w = mvau_rtl.xnor_acc_width(mw)
    data_dir.mkdir(parents=True, exist_ok=True)
    hdl = {"MW": mw, "MH": mh, "PE": pe, "SIMD": simd, "BIPOLAR": bipolar, "N_THRESH": n_thresh,
           "WEIGHTS_FILE": f'"{mvau_rtl.write_weights(data_dir / "weights.hex", w, pe, simd)}"'}
    if n_thresh:
        # popcount thresholds (FINN's domain), sorted, including out-of-range values
        tp = np.sort(rng.integers(-1, mw + 2, (mh, n_thresh)), axis=1)
        t_rtl = 2 * tp - mw if bipolar else tp
        hdl["THRESHOLDS_FILE"] = f'"{mvau_rtl.write_thresholds(data_dir / "thresholds.hex", t_rtl, pe, acc_w)}"'
        ref = reference(x, w, bool(bipolar), t_rtl)
        finn = finn_ref.execute_mvau_xnor(w, x, tp, pe, simd)
        finn_rtl = finn                              # counts are the same in both modes
    else:
        ref = reference(x, w, bool(bipolar), None)
        finn = finn_ref.execute_mvau_xnor(w, x, None, pe, simd)
        finn_rtl = 2 * finn - mw if bipolar else finn  # FINN returns the popcount
    # the references agree before any hardware runs
    assert np.array_equal(ref, finn_rtl), "numpy reference and FINN MVAU disagree"
    out_w = clog2(n_thresh + 1) if n_thresh else acc_w
    np.savez(data_dir / "data.npz", x=x, ref=ref, finn=finn_rtl, w=w,  # w, t: for the HLS C-sim on the same data
             t=tp if n_thresh else np.zeros((0, 0), np.int64))
    tp_ = {"data": str(data_dir / "data.npz"), "in_lanes": simd, "in_bits": 1, "out_lanes": pe,
           "out_bits": out_w, "out_signed": not n_thresh, "cycles_per_vector": (mh // pe) * (mw // simd),
           "max_latency": MAX_LATENCY}
    return hdl, tp_


@pytest.mark.parametrize("case", PARAMS, ids=[_id(p) for p in PARAMS])
def test_mvau_xnor(case):
    from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

    data_dir = DEFAULT_CACHE / "data" / "mvau_xnor" / _id(case)
    hdl, tp = make_case(*case, data_dir=data_dir)
    run_cocotb("mvau_xnor", SOURCES, "test_mvau_xnor", parameters=hdl, test_params=tp, test_dir=data_dir)
    import json

    cyc = json.loads((data_dir / "cycles.json").read_text())
    mw, mh, pe, simd, _, _, tokens = case
    assert cyc["cycles_per_frame"] == tokens * (mh // pe) * (mw // simd)
