"""cocotb tests of rtl/stream_token_select.sv (one token of every frame kept,
e.g. DeiT's CLS-token readout; the others consumed and dropped).

The reference is ``x[:, INDEX]`` per frame, written here from the
specification.

* ``select_data``: several frames back to back under combined
  idle/backpressure patterns; every output beat is compared and no extra
  beat may come out.
* ``select_rate``: no pauses: the input takes one beat per cycle
  (``T * C / PE`` cycles per frame), dropped tokens included.
"""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, param_id, unpack_lanes
from test_stream_pos_add import signed_values
from test_stream_token_insert import beats
from xnorvit.flows.sim import test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "stream_token_select.sv"]


class TB(AxisTB):
    def __init__(self, dut):
        super().__init__(dut)
        prm = test_params()
        self.T, self.C, self.PE, self.W, self.INDEX = prm["T"], prm["C"], prm["PE"], prm["W"], prm["INDEX"]
        self.in_cycles = self.handshake_cycles("s_axis")

    async def run(self, frames: np.ndarray) -> None:
        await self.send(beats(frames, self.PE, self.W))
        want = frames[:, self.INDEX]
        got = await self.recv(want.size // self.PE)
        nf = self.C // self.PE
        for n, word in enumerate(got):
            fr, f = divmod(n, nf)
            lanes = unpack_lanes(word, self.W, self.PE, signed=True)
            exp = list(want[fr, f * self.PE:(f + 1) * self.PE])
            assert lanes == exp, f"frame {fr} beat {f}: got {lanes}, want {exp}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def select_data(dut, idle: str, backpressure: str):
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = np.random.default_rng(random.Random(f"{idle}{backpressure}{tb.T}{tb.C}{tb.PE}").getrandbits(32))
    await tb.run(signed_values(rng, (4, tb.T, tb.C), tb.W))
    await ClockCycles(dut.clk, 3 * tb.T * tb.C // tb.PE + 10)
    assert tb.sinks_empty(), "extra output beats"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def select_rate(dut):
    tb = TB(dut)
    await tb.reset()
    frames = signed_values(np.random.default_rng(5), (3, tb.T, tb.C), tb.W)
    await tb.run(frames)
    await ClockCycles(dut.clk, tb.T * tb.C // tb.PE + 4)
    m = frames.size // tb.PE
    span = tb.in_cycles[-1] - tb.in_cycles[0] + 1
    assert len(tb.in_cycles) == m and span == m, f"{len(tb.in_cycles)} input beats in {span} cycles, want {m} in {m}"


PARAMS = [
    dict(T=4, C=8, PE=1, W=8, INDEX=0),  # minimal parallelism, first token (CLS)
    dict(T=4, C=8, PE=8, W=8, INDEX=0),  # a token per beat
    dict(T=50, C=64, PE=4, W=8, INDEX=0),  # binary-deit-t: CLS of 1 + 7x7 tokens
    dict(T=7, C=12, PE=3, W=8, INDEX=3),  # a middle token, non-power-of-two
    dict(T=5, C=6, PE=2, W=4, INDEX=4),  # the last token
    dict(T=1, C=5, PE=5, W=8, INDEX=0),  # one token per frame: a wire with a register
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_token_select(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_token_select", SOURCES, test_module="test_stream_token_select", parameters=params,
               test_params=params)
