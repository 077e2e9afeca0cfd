"""cocotb module: the AXI-stream wrapper ``<top>_axis`` that ``xnorvit
bitstream`` puts behind the AXI DMA, driven the way the DMA drives it
(tests/test_driver.py).

The stream side of Xilinx's AXI DMA in simple mode is modelled with
cocotbext-axi: MM2S sends the driver's input buffer byte for byte as
``dma_in_bits`` words (``tkeep`` all ones, no ``tlast`` needed by the
accelerator), S2MM receives until ``tlast``, one transfer per frame, as the
driver arms it. Random idle on ``s_axis`` and backpressure on ``m_axis``.

Parameters (JSON file named by ``test_params()["data"]``): ``frames`` (hex
strings: the bytes of each MM2S frame), ``out_bytes`` (bytes per S2MM
transfer), ``idle``/``backpressure`` (``axis_tb.PAUSE_PATTERNS``), ``seed``,
``result`` (JSON path). Results: ``outputs`` (hex bytes of each S2MM
transfer) and ``tlast_bytes`` (the length of each, ended by ``tlast``).
"""

from __future__ import annotations

import json
import logging

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from axis_tb import PAUSE_PATTERNS, _seeded
from xnorvit.flows.sim import test_params


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def dma_transfers(dut):
    prm = json.loads(open(test_params()["data"]).read())
    frames = [bytes.fromhex(f) for f in prm["frames"]]
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    mm2s = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    s2mm = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    for end in (mm2s, s2mm):
        end.log.setLevel(logging.WARNING)
    if PAUSE_PATTERNS.get(prm.get("idle", "none")):
        mm2s.set_pause_generator(_seeded(PAUSE_PATTERNS[prm["idle"]], prm.get("seed", 1)))
    if PAUSE_PATTERNS.get(prm.get("backpressure", "none")):
        s2mm.set_pause_generator(_seeded(PAUSE_PATTERNS[prm["backpressure"]], 100 + prm.get("seed", 1)))
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)
    # one MM2S transfer of the whole batch, as the driver does
    await mm2s.send(AxiStreamFrame(b"".join(frames)))
    outputs = []
    for _ in frames:  # one S2MM transfer per frame, each ended by tlast
        f = await s2mm.recv()
        outputs.append(bytes(f.tdata))
    await ClockCycles(dut.ap_clk, 50)
    res = {"outputs": [o.hex() for o in outputs], "tlast_bytes": [len(o) for o in outputs],
           "left_over": not s2mm.empty()}
    with open(prm["result"], "w") as fh:
        json.dump(res, fh)
    assert all(len(o) == prm["out_bytes"] for o in outputs), res["tlast_bytes"]
    assert s2mm.empty(), "output beyond the last frame"
