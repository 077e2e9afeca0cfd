"""cocotb tests of rtl/stream_token_pool.sv (global average pooling over the
T tokens of a frame, output = the exact integer sum per channel; the
division by T is folded downstream).

Reference: ``frames.sum(axis=1)`` in numpy, with OW = W + clog2(T) bit
lanes; inputs include frames of all-minimum and all-maximum values (the
extremes of the output range).

* ``pool_data``: several frames back to back under combined
  idle/backpressure patterns; every output beat is checked.
* ``pool_rate``: no pauses: the input runs at one beat per cycle across
  frames (the output leaves while the last token streams in).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, pack_lanes, param_id, unpack_lanes
from xnorvit.flows.sim import test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "stream_token_pool.sv"]



class TB(AxisTB):
    def __init__(self, dut):
        super().__init__(dut)
        prm = test_params()
        self.T, self.C, self.PE, self.W = prm["T"], prm["C"], prm["PE"], prm["W"]
        self.OW = self.W + math.ceil(math.log2(self.T))
        self.in_cycles = self.handshake_cycles("s_axis")

    def frames(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lo, hi = -(1 << (self.W - 1)), (1 << (self.W - 1)) - 1
        f = rng.integers(lo, hi + 1, size=(n, self.T, self.C))
        f[0] = lo  # extremes of the output range
        if n > 1:
            f[1] = hi
        return f

    async def run(self, frames: np.ndarray) -> None:
        nf = self.C // self.PE
        await self.send([pack_lanes(tok[f * self.PE:(f + 1) * self.PE], self.W)
                         for fr in frames for tok in fr for f in range(nf)])
        want = frames.sum(axis=1)
        got = await self.recv(len(frames) * nf)
        for n, word in enumerate(got):
            fr, f = divmod(n, nf)
            lanes = unpack_lanes(word, self.OW, self.PE, signed=True)
            exp = list(want[fr, f * self.PE:(f + 1) * self.PE])
            assert lanes == exp, f"frame {fr} beat {f}: got {lanes}, want {exp}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def pool_data(dut, idle: str, backpressure: str):
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = np.random.default_rng(random.Random(f"{idle}{backpressure}{tb.T}{tb.C}{tb.PE}").getrandbits(32))
    await tb.run(tb.frames(rng, 4))
    await ClockCycles(dut.clk, 10)
    assert tb.sinks_empty()


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def pool_rate(dut):
    tb = TB(dut)
    await tb.reset()
    frames = tb.frames(np.random.default_rng(9), 3)
    await tb.run(frames)
    m = frames.size // tb.PE
    span = tb.in_cycles[-1] - tb.in_cycles[0] + 1
    assert span == m, f"{m} input beats in {span} cycles"


PARAMS = [
    dict(T=4, C=8, PE=1, W=8),  # minimal parallelism
    dict(T=4, C=8, PE=8, W=8),  # full parallelism
    dict(T=49, C=32, PE=4, W=8),  # 7x7 tokens (OW = 14)
    dict(T=7, C=12, PE=3, W=8),  # non-power-of-two
    dict(T=5, C=6, PE=2, W=1),  # 1-bit input lanes
    dict(T=1, C=5, PE=5, W=8),  # one token per frame
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_token_pool(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_token_pool", SOURCES, test_module="test_stream_token_pool", parameters=params,
               test_params=params)
