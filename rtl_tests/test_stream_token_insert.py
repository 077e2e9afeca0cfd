"""cocotb tests of rtl/stream_token_insert.sv (N constant tokens, e.g. DeiT's
CLS token, prepended to every frame of a token stream).

The pytest entry draws the constant tokens (seeded, signed W-bit values
biased to the extremes), passes them as the packed ``TOKENS`` parameter
(lane ``n*C + c`` at bits ``[(n*C + c)*W +: W]``) and hands them to the
cocotb test as JSON. The reference is ``np.concatenate([K, x])`` per frame,
written here from the specification.

* ``insert_data``: several frames back to back under combined
  idle/backpressure patterns; every output beat is compared.
* ``insert_rate``: no pauses: ``(N + T) * C / PE`` output beats in as many
  cycles (one beat per cycle, the constant beats included).
"""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, pack_lanes, param_id, unpack_lanes
from test_stream_pos_add import signed_values
from xnorvit.flows.sim import test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "stream_token_insert.sv"]


def beats(tokens: np.ndarray, pe: int, w: int) -> list[int]:
    """(..., T, C) values -> beats, C/PE per token, PE lanes LSB-first."""
    c = tokens.shape[-1]
    return [pack_lanes(tok[f * pe:(f + 1) * pe], w) for tok in tokens.reshape(-1, c) for f in range(c // pe)]


class TB(AxisTB):
    def __init__(self, dut):
        super().__init__(dut)
        prm = test_params()
        self.T, self.N, self.C, self.PE, self.W = prm["T"], prm["N"], prm["C"], prm["PE"], prm["W"]
        self.tokens = np.array(prm["tokens"], dtype=np.int64).reshape(self.N, self.C)
        self.out_cycles = self.handshake_cycles("m_axis")

    async def run(self, frames: np.ndarray) -> None:
        await self.send(beats(frames, self.PE, self.W))
        want = np.concatenate([np.broadcast_to(self.tokens, (len(frames), self.N, self.C)), frames], axis=1)
        got = await self.recv(want.size // self.PE)
        nf = self.C // self.PE
        for n, word in enumerate(got):
            fr, rest = divmod(n, (self.N + self.T) * nf)
            tok, f = divmod(rest, nf)
            lanes = unpack_lanes(word, self.W, self.PE, signed=True)
            exp = list(want[fr, tok, f * self.PE:(f + 1) * self.PE])
            assert lanes == exp, f"frame {fr} token {tok} beat {f}: got {lanes}, want {exp}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def insert_data(dut, idle: str, backpressure: str):
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = np.random.default_rng(random.Random(f"{idle}{backpressure}{tb.T}{tb.C}{tb.PE}").getrandbits(32))
    await tb.run(signed_values(rng, (3, tb.T, tb.C), tb.W))
    await ClockCycles(dut.clk, 10)
    assert tb.sinks_empty(), "extra output beats"


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def insert_rate(dut):
    tb = TB(dut)
    await tb.reset()
    frames = signed_values(np.random.default_rng(5), (3, tb.T, tb.C), tb.W)
    await tb.run(frames)
    m = 3 * (tb.N + tb.T) * tb.C // tb.PE
    span = tb.out_cycles[-1] - tb.out_cycles[0] + 1
    assert len(tb.out_cycles) == m and span == m, f"{len(tb.out_cycles)} beats in {span} cycles, want {m} in {m}"


PARAMS = [
    dict(T=4, N=1, C=8, PE=1, W=8),  # minimal parallelism
    dict(T=4, N=1, C=8, PE=8, W=8),  # a token per beat
    dict(T=49, N=1, C=64, PE=4, W=8),  # binary-deit-t: 7x7 patch tokens + CLS
    dict(T=7, N=2, C=12, PE=3, W=8),  # two constant tokens, non-power-of-two
    dict(T=3, N=3, C=6, PE=2, W=4),  # as many constants as tokens
    dict(T=1, N=1, C=5, PE=5, W=8),  # one token per frame
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_token_insert(params):
    from xnorvit.flows.sim import run_cocotb

    rng = np.random.default_rng(sum(params.values()))
    tokens = signed_values(rng, (params["N"], params["C"]), params["W"])
    packed = pack_lanes(tokens.ravel(), params["W"])
    hdl = dict(params, TOKENS=f"{params['N'] * params['C'] * params['W']}'h{packed:x}")
    run_cocotb("stream_token_insert", SOURCES, test_module="test_stream_token_insert", parameters=hdl,
               test_params=dict(params, tokens=tokens.tolist()))
