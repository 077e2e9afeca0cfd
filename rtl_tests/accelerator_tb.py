"""cocotb module of the whole stitched accelerator (driven by
:func:`xnorvit.flows.verify.simulate`; see rtl_tests/test_accelerator.py).

Parameters come in a JSON file named by ``test_params()["data"]``:

``frames``        input beats per frame (one list per image)
``out_beats``     output beats per frame
``idle``, ``backpressure``  names in ``axis_tb.PAUSE_PATTERNS``
``pace``          0, or the cycles between frame starts on the input (FIFO sizing)
``edges``         names of the stitched streams (``e<k>``): their maximum FIFO occupancy is read at the end
``taps``          record every beat of every edge (producer side)
``max_cycles``    watchdog: the run fails (deadlock) past this many cycles
``result``        where the results JSON goes (written before any assertion)

Results: ``outputs`` (beats per frame), ``in_cycles``/``out_cycles`` (cycle of
each input/output handshake), ``maxocc`` per edge, ``taps`` per edge,
``cycles`` (total), ``deadlock`` (bool).
"""

from __future__ import annotations

import json
import logging

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from axis_tb import PAUSE_PATTERNS, _seeded
from xnorvit.flows.sim import test_params


def _hs(valid, ready) -> bool:
    return str(valid.value) == "1" and str(ready.value) == "1"


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def accelerator_frames(dut):
    prm = json.loads(open(test_params()["data"]).read())
    frames, out_beats = prm["frames"], int(prm["out_beats"])
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False,
                          byte_lanes=1)
    snk = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False,
                        byte_lanes=1)
    for end in (src, snk):
        end.log.setLevel(logging.WARNING)
    if PAUSE_PATTERNS.get(prm.get("idle", "none")):
        src.set_pause_generator(_seeded(PAUSE_PATTERNS[prm["idle"]], prm.get("seed", 1)))
    if PAUSE_PATTERNS.get(prm.get("backpressure", "none")):
        snk.set_pause_generator(_seeded(PAUSE_PATTERNS[prm["backpressure"]], 100 + prm.get("seed", 1)))
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)

    total_out = out_beats * len(frames)
    in_cycles: list[int] = []
    out_cycles: list[int] = []
    taps = {e: [] for e in prm.get("edges", [])} if prm.get("taps") else {}
    tap_sig = {e: (getattr(dut, f"{e}_tvalid"), getattr(dut, f"{e}_tready"), getattr(dut, f"{e}_tdata")) for e in taps}
    cycle = 0
    done = Event()

    async def monitor() -> None:
        nonlocal cycle
        while True:
            await RisingEdge(dut.ap_clk)
            cycle += 1
            if _hs(dut.s_axis_tvalid, dut.s_axis_tready):
                in_cycles.append(cycle)
            if _hs(dut.m_axis_tvalid, dut.m_axis_tready):
                out_cycles.append(cycle)
                if len(out_cycles) == total_out:
                    done.set()
            for e, (v, r, d) in tap_sig.items():
                if _hs(v, r):
                    taps[e].append(int(d.value))

    async def feed() -> None:
        pace = int(prm.get("pace", 0))
        for f, beats in enumerate(frames):
            if pace:
                while cycle < f * pace:
                    await RisingEdge(dut.ap_clk)
            await src.send(AxiStreamFrame(list(beats)))

    cocotb.start_soon(monitor())
    cocotb.start_soon(feed())
    outputs: list[int] = []

    async def drain() -> None:
        while len(outputs) < total_out:
            frame = await snk.recv()
            outputs.extend(int(v) for v in frame.tdata)

    drainer = cocotb.start_soon(drain())
    await First(done.wait(), ClockCycles(dut.ap_clk, int(prm["max_cycles"])))
    deadlock = not done.is_set()
    if not deadlock:
        await ClockCycles(dut.ap_clk, 2)  # let the sink coroutine take the last beat
    else:
        drainer.cancel()
    # what the sink has queued but not yet handed over
    while not snk.empty():
        outputs.extend(int(v) for v in snk.recv_nowait().tdata)
    await ClockCycles(dut.ap_clk, 20)
    extra = len(out_cycles) - total_out
    maxocc = {e: int(getattr(dut, f"{e}_maxocc").value) for e in prm.get("edges", [])}
    res = {"outputs": [outputs[f * out_beats:(f + 1) * out_beats] for f in range(len(frames))],
           "in_cycles": in_cycles, "out_cycles": out_cycles[:total_out], "maxocc": maxocc, "taps": taps,
           "cycles": cycle, "deadlock": deadlock, "extra_out_beats": extra}
    with open(prm["result"], "w") as fh:
        json.dump(res, fh)
    assert not deadlock, (f"no progress: {len(out_cycles)} of {total_out} output beats, {len(in_cycles)} of "
                          f"{sum(len(f) for f in frames)} input beats after {prm['max_cycles']} cycles")
    assert extra == 0, f"{extra} output beats beyond the expected {total_out}"
