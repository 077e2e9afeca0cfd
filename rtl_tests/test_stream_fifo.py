"""cocotb tests of rtl/stream_fifo.sv (synchronous FWFT AXI-stream FIFO).

* ``fifo_data``: bursts of random words under combined idle/backpressure
  patterns; the output must equal the input, in order, nothing more.
* ``fifo_depth``: with the sink stalled the FIFO accepts exactly DEPTH beats,
  then drains them all in order.
* ``fifo_rate``: with no pauses, M beats leave in M consecutive cycles when
  DEPTH >= 2 (distributed) or DEPTH >= 4 (block RAM, latency 3); a
  distributed DEPTH = 1 takes two cycles per beat.

Both storage variants (``BLOCK_RAM`` 0 and 1) run the same tests.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import cocotb
import pytest
from cocotb.triggers import ClockCycles, RisingEdge

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, fires, param_id
from xnorvit.flows.sim import icarus_available, test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "stream_fifo.sv"]



class TB(AxisTB):
    def __init__(self, dut):
        super().__init__(dut)
        prm = test_params()
        self.W, self.DEPTH, self.BLOCK = prm["W"], prm["DEPTH"], int(prm.get("BLOCK_RAM", 0))
        self.accepted = 0  # input handshakes
        self.out_cycles: list[int] = []
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        cycle = 0
        while True:
            await RisingEdge(self.dut.clk)
            cycle += 1
            if fires(self.dut.s_axis_tvalid, self.dut.s_axis_tready):
                self.accepted += 1
            if fires(self.dut.m_axis_tvalid, self.dut.m_axis_tready):
                self.out_cycles.append(cycle)


@cocotb.test(timeout_time=1, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def fifo_data(dut, idle: str, backpressure: str):
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = random.Random(f"{idle}{backpressure}{tb.W}{tb.DEPTH}")
    bursts = [[rng.getrandbits(tb.W) for _ in range(n)] for n in (1, 3 * tb.DEPTH + 7, 40)]
    for burst in bursts:
        await tb.send(burst)
    for n, burst in enumerate(bursts):
        got = await tb.recv(len(burst))
        assert got == burst, f"burst {n}: got {got}, want {burst}"
    await ClockCycles(dut.clk, 10)
    assert tb.sinks_empty()
    assert int(dut.m_axis_tvalid.value) == 0


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def fifo_depth(dut):
    tb = TB(dut)
    tb.sink["m_axis"].set_pause_generator(itertools.repeat(1))  # sink stalled
    await tb.reset()
    data = list(range(tb.DEPTH + 5))
    data = [d & ((1 << tb.W) - 1) for d in data]
    await tb.send(data)
    await ClockCycles(dut.clk, 3 * tb.DEPTH + 20)
    assert tb.accepted == tb.DEPTH, f"accepted {tb.accepted} beats with the sink stalled, DEPTH={tb.DEPTH}"
    assert int(dut.s_axis_tready.value) == 0
    tb.sink["m_axis"].clear_pause_generator()
    tb.sink["m_axis"].pause = False  # clearing the generator keeps the last pause value
    got = await tb.recv(len(data))
    assert got == data
    await ClockCycles(dut.clk, 5)
    assert tb.sinks_empty()


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def fifo_rate(dut):
    tb = TB(dut)
    await tb.reset()
    m = 50
    data = [i & ((1 << tb.W) - 1) for i in range(m)]
    await tb.send(data)
    assert await tb.recv(m) == data
    span = tb.out_cycles[-1] - tb.out_cycles[0] + 1
    if tb.BLOCK:  # latency 3: full rate needs room for the three beats in flight
        want = m if tb.DEPTH >= 4 else None
    else:
        want = m if tb.DEPTH >= 2 else 2 * m - 1
    if want is not None:
        assert span == want, f"{m} beats took {span} cycles, expected {want}"


PARAMS = [
    dict(W=8, DEPTH=1),  # minimal
    dict(W=8, DEPTH=2),
    dict(W=8, DEPTH=5),  # non-power-of-two
    dict(W=13, DEPTH=16),
    dict(W=1, DEPTH=3),
    dict(W=224, DEPTH=49),  # a frame of binary_attention outputs (T=49, D=32)
    dict(W=8, DEPTH=1, BLOCK_RAM=1),
    dict(W=8, DEPTH=3, BLOCK_RAM=1),
    dict(W=13, DEPTH=5, BLOCK_RAM=1),
    dict(W=8, DEPTH=300, BLOCK_RAM=1),  # a residual skip (the stitcher's block-RAM FIFOs)
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_fifo(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_fifo", SOURCES, test_module="test_stream_fifo", parameters=params, test_params=params)

#: Icarus Verilog variant (Verilator is the main simulator): two parameter sets.
ICARUS_PARAMS = [dict(W=8, DEPTH=1), dict(W=13, DEPTH=5)]


@pytest.mark.skipif(not icarus_available(), reason="Icarus Verilog not installed (Debian package `iverilog`)")
@pytest.mark.parametrize("params", ICARUS_PARAMS, ids=param_id)
def test_stream_fifo_icarus(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_fifo", SOURCES, test_module="test_stream_fifo", parameters=params, test_params=params,
               simulator="icarus")
