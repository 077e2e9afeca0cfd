"""cocotb test of a generated FINN-port RTL wrapper of an xnorvit op (driven
by tests/test_hw_ops.py::test_wrapper_cocotb through a shim with the
kernels' port names: clk, rst, s_axis<i>_*, m_axis<j>_*).

Every input port gets its beats (from the op's folded input, LSB-first
lanes); every output port must give exactly the beats of the op's
``execute_node`` output, under combined idle/backpressure patterns.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles

from axis_tb import COMBOS, PAUSE_PATTERNS, AxisTB
from xnorvit.flows.sim import test_params


@cocotb.test(timeout_time=5, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def wrapper_data(dut, idle: str, backpressure: str):
    prm = test_params()
    ins, outs = prm["inputs"], prm["outputs"]
    tb = AxisTB(dut, sources=[f"s_axis{i}" for i in range(len(ins))], sinks=[f"m_axis{j}" for j in range(len(outs))])
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    for i, beats in enumerate(ins):
        await tb.send(beats, f"s_axis{i}")
    for j, want in enumerate(outs):
        got = await tb.recv(len(want), f"m_axis{j}")
        bad = [n for n, (g, w) in enumerate(zip(got, want)) if g != w]
        assert not bad, f"output {j}: beat {bad[0]} is {got[bad[0]]:#x}, want {want[bad[0]]:#x} ({len(bad)} beats differ)"
    await ClockCycles(dut.clk, 10)
    assert tb.sinks_empty()
