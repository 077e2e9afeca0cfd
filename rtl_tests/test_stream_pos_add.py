"""cocotb tests of rtl/stream_pos_add.sv (position-embedding add: a T x C
table of signed constants from a $readmemh file, added with saturation).

The pytest entry draws the table (seeded, values biased to the extremes),
writes it as the module's hex format (one beat's PE lanes per line,
LSB-first, W-bit two's complement) and hands the integer table to the cocotb
test as JSON; the reference is ``clip(x + E[t, c])`` in numpy.

* ``pos_data``: several frames back to back under combined
  idle/backpressure patterns; each token's channels are checked against the
  table row of its position (which wraps every T tokens).
* ``pos_rate``: no pauses: one beat per cycle.
"""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import ClockCycles

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, pack_lanes, param_id, unpack_lanes
from xnorvit.flows.sim import DEFAULT_CACHE, test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "lanes_add_sat.sv", REPO / "rtl" / "stream_pos_add.sv"]



def signed_values(rng: np.random.Generator, shape, w: int) -> np.ndarray:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    x = rng.integers(lo, hi + 1, size=shape)
    return np.where(rng.random(shape) < 0.3, rng.choice([lo, hi, 0, -1], size=shape), x)


def write_table(table: np.ndarray, pe: int, w: int, path: Path) -> None:
    """Hex file of a (T, C) table: T*C/PE lines, PE lanes per line, LSB-first."""
    t, c = table.shape
    digits = (pe * w + 3) // 4
    lines = [f"{pack_lanes(table[i, f * pe:(f + 1) * pe], w):0{digits}x}" for i in range(t) for f in range(c // pe)]
    path.write_text("\n".join(lines) + "\n")


class TB(AxisTB):
    def __init__(self, dut):
        super().__init__(dut)
        prm = test_params()
        self.T, self.C, self.PE, self.W = prm["T"], prm["C"], prm["PE"], prm["W"]
        self.table = np.array(prm["table"], dtype=np.int64)
        self.out_cycles = self.handshake_cycles("m_axis")

    def beats(self, frames: np.ndarray) -> list[int]:
        """(F, T, C) values -> beats (C/PE per token)."""
        return [pack_lanes(tok[f * self.PE:(f + 1) * self.PE], self.W)
                for fr in frames for tok in fr for f in range(self.C // self.PE)]

    async def run(self, frames: np.ndarray) -> None:
        await self.send(self.beats(frames))
        lo, hi = -(1 << (self.W - 1)), (1 << (self.W - 1)) - 1
        want = np.clip(frames + self.table[None], lo, hi)
        got = await self.recv(len(self.beats(frames)))
        nf = self.C // self.PE
        for n, word in enumerate(got):
            fr, rest = divmod(n, self.T * nf)
            tok, f = divmod(rest, nf)
            lanes = unpack_lanes(word, self.W, self.PE, signed=True)
            exp = list(want[fr, tok, f * self.PE:(f + 1) * self.PE])
            assert lanes == exp, f"frame {fr} token {tok} beat {f}: got {lanes}, want {exp}"


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def pos_data(dut, idle: str, backpressure: str):
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = np.random.default_rng(random.Random(f"{idle}{backpressure}{tb.T}{tb.C}{tb.PE}").getrandbits(32))
    await tb.run(signed_values(rng, (3, tb.T, tb.C), tb.W))
    await ClockCycles(dut.clk, 10)
    assert tb.sinks_empty()


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def pos_rate(dut):
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(5)
    frames = signed_values(rng, (2, tb.T, tb.C), tb.W)
    await tb.run(frames)
    m = frames.size // tb.PE
    span = tb.out_cycles[-1] - tb.out_cycles[0] + 1
    assert span == m, f"{m} beats in {span} cycles"


PARAMS = [
    dict(T=4, C=8, PE=1, W=8),  # minimal parallelism
    dict(T=4, C=8, PE=8, W=8),  # full parallelism (a token per beat)
    dict(T=49, C=32, PE=4, W=8),  # 7x7 tokens
    dict(T=7, C=12, PE=3, W=8),  # non-power-of-two
    dict(T=3, C=6, PE=2, W=4),
    dict(T=1, C=5, PE=5, W=8),  # one token per frame
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_pos_add(params):
    from xnorvit.flows.sim import run_cocotb

    rng = np.random.default_rng(sum(params.values()))
    table = signed_values(rng, (params["T"], params["C"]), params["W"])
    name = "_".join(f"{k}{v}" for k, v in params.items())
    hexfile = Path(DEFAULT_CACHE) / "tables" / f"pos_{name}.hex"
    hexfile.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, params["PE"], params["W"], hexfile)
    hdl = dict(params, INIT_FILE=f'"{hexfile}"')
    run_cocotb("stream_pos_add", SOURCES, test_module="test_stream_pos_add", parameters=hdl,
               test_params=dict(params, table=table.tolist()))
