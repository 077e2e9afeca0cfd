"""cocotb tests of rtl/stream_add_sat.sv (saturating elementwise add of two
streams: the residual add).

Reference: ``clip(a + b, -2^(W-1), 2^(W-1) - 1)`` per lane (numpy), on
random lanes biased towards the extremes so both saturation directions and
the exact boundaries (sum = max, sum = min) occur.

* ``add_data``: several bursts under combined idle/backpressure patterns on
  both inputs and the output; every output beat is checked.
* ``add_rate``: no pauses: M beats in M cycles.
"""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, pack_lanes, param_id, unpack_lanes
from xnorvit.flows.sim import icarus_available, test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "lanes_add_sat.sv", REPO / "rtl" / "stream_add_sat.sv"]



def reference(a: np.ndarray, b: np.ndarray, w: int) -> np.ndarray:
    """Saturating W-bit signed add."""
    return np.clip(a.astype(np.int64) + b, -(1 << (w - 1)), (1 << (w - 1)) - 1)


def operands(rng: np.random.Generator, n: int, lanes: int, w: int) -> np.ndarray:
    """(n, lanes) signed W-bit values: half uniform, half at/near the extremes."""
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    x = rng.integers(lo, hi + 1, size=(n, lanes))
    edge = rng.choice([lo, lo + 1, hi - 1, hi, 0, -1], size=(n, lanes))
    return np.where(rng.random((n, lanes)) < 0.5, edge, x)


class TB(AxisTB):
    def __init__(self, dut):
        super().__init__(dut, sources=["s_axis_a", "s_axis_b"], sinks=["m_axis"])
        prm = test_params()
        self.W, self.LANES = prm["W"], prm["LANES"]
        self.out_cycles = self.handshake_cycles("m_axis")

    async def run(self, a: np.ndarray, b: np.ndarray) -> None:
        await self.send([pack_lanes(r, self.W) for r in a], "s_axis_a")
        await self.send([pack_lanes(r, self.W) for r in b], "s_axis_b")
        want = reference(a, b, self.W)
        got = await self.recv(len(a))
        for n, word in enumerate(got):
            lanes = unpack_lanes(word, self.W, self.LANES, signed=True)
            assert lanes == list(want[n]), f"beat {n}: a={list(a[n])} b={list(b[n])} got {lanes} want {list(want[n])}"


@cocotb.test(timeout_time=1, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def add_data(dut, idle: str, backpressure: str):
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = np.random.default_rng(random.Random(f"{idle}{backpressure}{tb.W}{tb.LANES}").getrandbits(32))
    for n in (1, 25, 60):
        await tb.run(operands(rng, n, tb.LANES, tb.W), operands(rng, n, tb.LANES, tb.W))
    await ClockCycles(dut.clk, 10)
    assert tb.sinks_empty()


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def add_rate(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(3)
    m = 50
    await tb.run(operands(rng, m, tb.LANES, tb.W), operands(rng, m, tb.LANES, tb.W))
    span = tb.out_cycles[-1] - tb.out_cycles[0] + 1
    assert span == m, f"{m} beats in {span} cycles"


PARAMS = [
    dict(W=8, LANES=1),  # minimal parallelism, the 8-bit residual stream
    dict(W=8, LANES=4),
    dict(W=8, LANES=64),  # a whole 64-channel token per beat
    dict(W=4, LANES=3),  # non-power-of-two lanes
    dict(W=12, LANES=7),
    dict(W=2, LANES=1),  # narrowest signed width
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_add_sat(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_add_sat", SOURCES, test_module="test_stream_add_sat", parameters=params, test_params=params)

#: Icarus Verilog variant (Verilator is the main simulator): two parameter sets.
ICARUS_PARAMS = [dict(W=8, LANES=1), dict(W=8, LANES=4)]


@pytest.mark.skipif(not icarus_available(), reason="Icarus Verilog not installed (Debian package `iverilog`)")
@pytest.mark.parametrize("params", ICARUS_PARAMS, ids=param_id)
def test_stream_add_sat_icarus(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_add_sat", SOURCES, test_module="test_stream_add_sat", parameters=params, test_params=params,
               simulator="icarus")
