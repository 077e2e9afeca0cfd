"""cocotb + pytest tests of rtl/thresholding_axis.sv (finn-rtllib's binary-search thresholding).

Per HDL parameter set, the pytest function draws seeded sorted thresholds and
inputs, lets FINN's own ``Thresholding_rtl`` write the threshold memory files
(``make_weight_file``, the code generation path of FINN's RTL backend), and
computes two references:

* an independent numpy MultiThreshold model, ``y = BIAS + #{t <= x}``,
* FINN's ``Thresholding`` node executed with ``execute_onnx``.

The cocotb tests (shared checks in ``kernel_tb``) compare every output beat
with both under idle/backpressure combinations and measure cycles per frame
(one beat per cycle: ``C/PE`` cycles per vector).
"""

from __future__ import annotations

from pathlib import Path

import cocotb
import numpy as np
import pytest

from axis_tb import PAUSE_PATTERNS
from kernel_tb import check_cycles, check_stream

RTL = Path(__file__).resolve().parent.parent / "rtl"


def sources() -> list[Path]:
    """HDL files: waivers, finn-rtllib's core and AXI adapter, our wrapper."""
    from xnorvit.flows.finn_env import finn_rtllib

    hdl = finn_rtllib() / "thresholding" / "hdl"
    return [RTL / "thresholding_axis.vlt", hdl / "thresholding.sv", hdl / "thresholding_axi.sv",
            RTL / "thresholding_axis.sv"]


def clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


def out_bits(n: int, bias: int) -> int:
    """Output width as finn-rtllib defines it (O_BITS)."""
    if bias >= 0:
        return clog2(n + bias + 1)
    return 1 + clog2(-bias if -bias >= n + bias + 1 else n + bias + 1)


def reference(x: np.ndarray, thresholds: np.ndarray, bias: int) -> np.ndarray:
    """Independent MultiThreshold: x (T, C), thresholds (C, N) -> (T, C) int64."""
    return (x[:, :, None] >= thresholds[None, :, :]).sum(-1).astype(np.int64) + bias


def finn_dtypes(wi: int, signed: bool, n: int, bias: int) -> tuple[str, str]:
    """FINN DataType names of input/threshold and output."""
    idt = f"INT{wi}" if signed else f"UINT{wi}"
    ob = out_bits(n, bias)
    if bias < 0:
        odt = f"INT{ob}"
    else:
        odt = "BINARY" if ob == 1 else f"UINT{ob}"
    return idt, odt


def finn_thresholding(x, thresholds, pe, wi, signed, bias, files_dir: Path | None = None):
    """Execute FINN's Thresholding node on x (T, C); optionally let Thresholding_rtl write files.

    Returns:
        (FINN output (T, C) int64, THRESHOLDS_PATH prefix or None)
    """
    from qonnx.custom_op.registry import getCustomOp

    from xnorvit.flows import finn_ref

    t, c = x.shape
    n = thresholds.shape[1]
    idt, odt = finn_dtypes(wi, signed, n, bias)
    attrs = dict(PE=pe, NumChannels=c, numSteps=n, inputDataType=idt, weightDataType=idt,
                 outputDataType=odt, ActVal=bias, numInputVectors=[t])
    model = finn_ref._model("Thresholding", "finn.custom_op.fpgadataflow", {"inp": (t, c), "thresh": thresholds},
                            (t, c), attrs, {"inp": idt, "thresh": idt, "outp": odt})
    y = finn_ref.execute(model, x).reshape(t, c).astype(np.int64)
    prefix = None
    if files_dir is not None:
        rtl_model = finn_ref._model("Thresholding_rtl", "finn.custom_op.fpgadataflow.rtl",
                                    {"inp": (t, c), "thresh": thresholds}, (t, c), attrs,
                                    {"inp": idt, "thresh": idt, "outp": odt})
        node = rtl_model.graph.node[0]
        node.name = "thr"
        files_dir.mkdir(parents=True, exist_ok=True)
        getCustomOp(node).make_weight_file(thresholds, "internal_embedded", str(files_dir / "memblock.dat"))
        prefix = f"{files_dir}/{node.name}_"
    return y, prefix


# --------------------------------------------------------------- cocotb side


@cocotb.test()
@cocotb.parametrize(idle=list(PAUSE_PATTERNS), backpressure=list(PAUSE_PATTERNS))
async def run_stream(dut, idle: str, backpressure: str):
    """Two frames; every output beat equals the numpy and FINN references."""
    await check_stream(dut, idle, backpressure)


@cocotb.test()
async def cycles_per_frame(dut):
    """One beat per cycle: T*C/PE cycles per frame in steady state."""
    await check_cycles(dut)


# --------------------------------------------------------------- pytest side

# (C, PE, WI, SIGNED, N, BIAS, tokens, duplicates)
PARAMS = [
    (4, 1, 8, 1, 3, 0, 3, False),       # PE = 1, 2-bit output
    (12, 12, 6, 0, 7, 0, 2, False),     # fully parallel, unsigned input
    (12, 3, 8, 1, 15, -8, 2, False),    # signed 4-bit output (negative bias)
    (24, 4, 10, 1, 1, 0, 2, False),     # binary output
    (10, 5, 5, 0, 3, 0, 3, True),       # odd sizes, repeated thresholds
    (36, 6, 12, 1, 31, 0, 2, False),    # 5-step search, non-power-of-two fold
    (6, 2, 6, 1, 5, 0, 3, False),       # N+1 not a power of 2: stages 1.. mask out-of-range thresholds
]


def _id(p):
    c, pe, wi, s, n, b, t, dup = p
    return f"C{c}-PE{pe}-{'INT' if s else 'UINT'}{wi}-N{n}-B{b}-T{t}{'-dup' if dup else ''}"


def make_case(case, data_dir: Path) -> tuple[dict, dict]:
    """Draw the data of ``case`` (PARAMS row) into ``data_dir/data.npz`` (x,
    thresholds t, numpy and FINN references); return (HDL parameters, test
    parameters)."""
    c, pe, wi, signed, n, bias, tokens, dup = case
    rng = np.random.default_rng(c * 100 + n)
    lo, hi = (-(1 << (wi - 1)), 1 << (wi - 1)) if signed else (0, 1 << wi)
    if dup:
        thr = np.sort(rng.integers(lo, hi, (c, n)), axis=1)
        thr[:, 1] = thr[:, 0]  # at least one repeated threshold per channel
    else:
        thr = np.sort(np.stack([rng.choice(np.arange(lo, hi), n, replace=False) for _ in range(c)]), axis=1)
    x = rng.integers(lo, hi, (tokens, c))
    x[0, :] = thr[:, 0]          # inputs exactly on a threshold
    x[-1, :] = thr[:, -1] - 1    # and just below the last one
    x = np.clip(x, lo, hi - 1)
    ref = reference(x, thr, bias)
    finn, prefix = finn_thresholding(x, thr, pe, wi, bool(signed), bias, files_dir=data_dir)
    assert np.array_equal(ref, finn), "numpy reference and FINN Thresholding disagree"
    np.savez(data_dir / "data.npz", x=x, ref=ref, finn=finn, t=thr)  # t: for the HLS C-sim on the same data
    hdl = {"WI": wi, "WT": wi, "N": n, "C": c, "PE": pe, "SIGNED": signed, "BIAS": bias,
           "THRESHOLDS_PATH": f'"{prefix}"'}
    tp = {"data": str(data_dir / "data.npz"), "in_lanes": pe, "in_bits": wi, "out_lanes": pe,
          "out_bits": out_bits(n, bias), "out_signed": bias < 0, "cycles_per_vector": c // pe,
          "max_latency": clog2(n + 1) + 6}
    return hdl, tp


@pytest.mark.parametrize("case", PARAMS, ids=[_id(p) for p in PARAMS])
def test_thresholding(case):
    from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

    data_dir = DEFAULT_CACHE / "data" / "thresholding" / _id(case)
    hdl, tp = make_case(case, data_dir)
    run_cocotb("thresholding_axis", sources(), "test_thresholding", parameters=hdl, test_params=tp,
               test_dir=data_dir)
