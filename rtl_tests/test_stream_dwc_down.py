"""cocotb tests of rtl/stream_dwc_down.sv (integer-ratio down-converter: a
held word and a slice multiplexer).

Reference: ``test_stream_dwc.convert`` (the LSB-first bit stream re-cut into
OBITS-bit words), independent of the kernel; the testbench is
``test_stream_dwc.TB`` and its ``check_data``.

* ``down_data``: 1 and 3 groups of OBITS input beats under every
  idle/backpressure combination, then no beat left over.
* ``down_rate``: no pauses: one output beat per cycle across input words.
"""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import pytest

from axis_tb import COMBOS, param_id
from test_stream_dwc import TB, check_data

REPO = Path(__file__).resolve().parent.parent


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def down_data(dut, idle: str, backpressure: str):
    await check_data(dut, idle, backpressure, salt="down")


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def down_rate(dut):
    tb = TB(dut)
    await tb.reset()
    await tb.run(random.Random(1), 4)
    seen = tb.cycles["out"]
    span = seen[-1] - seen[0] + 1
    assert span == len(seen), f"{len(seen)} output beats in {span} cycles"


PARAMS = [
    dict(IBITS=2, OBITS=1),  # smallest ratio and width
    dict(IBITS=64, OBITS=32),  # 2:1
    dict(IBITS=24, OBITS=8),  # K = 3, not a power of two
    dict(IBITS=448, OBITS=7),  # two attention heads' rows (2 x 32 x 7 bits) into 7-bit lanes, K = 64
    dict(IBITS=448, OBITS=56),  # the same into 8 lanes
    dict(IBITS=80, OBITS=16),  # K = 5
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_stream_dwc_down(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb("stream_dwc_down", [REPO / "rtl" / "stream_dwc_down.sv"], test_module="test_stream_dwc_down",
               parameters=params, test_params=params)
