"""Testbench pieces shared by the MVAU and thresholding kernel tests.

:class:`HandshakeTB` is :class:`axis_tb.AxisTB` plus a monitor that records
the cycle number of every input and output handshake, from which the tests
measure steady-state cycles per frame and pipeline latency.
"""

from __future__ import annotations

import logging

import cocotb
from cocotb.triggers import RisingEdge

from axis_tb import AxisTB, pack_lanes, unpack_lanes


class HandshakeTB(AxisTB):
    """AxisTB (one s_axis source, one m_axis sink) recording handshake cycles.

    Attributes:
        in_cycles: cycle numbers (clock edges since start) of s_axis transfers.
        out_cycles: cycle numbers of m_axis transfers.
    """

    def __init__(self, dut):
        super().__init__(dut)
        # cocotbext-axi logs every frame at INFO; that floods the logs and
        # slows long runs down.
        for ep in [*self.source.values(), *self.sink.values()]:
            ep.log.setLevel(logging.WARNING)
        self.cycle = 0
        self.in_cycles: list[int] = []
        self.out_cycles: list[int] = []
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            self.cycle += 1
            if dut.rst.value == 0:
                if dut.s_axis_tvalid.value == 1 and dut.s_axis_tready.value == 1:
                    self.in_cycles.append(self.cycle)
                if dut.m_axis_tvalid.value == 1 and dut.m_axis_tready.value == 1:
                    self.out_cycles.append(self.cycle)

    def frame_cycles(self, frames: int, out_beats_per_frame: int) -> list[int]:
        """Cycles between the last output beats of consecutive frames."""
        ends = [self.out_cycles[(f + 1) * out_beats_per_frame - 1] for f in range(frames)]
        return [b - a for a, b in zip(ends, ends[1:])]


def pack_rows(x, lanes: int, bits: int) -> list[int]:
    """Rows of ``x`` (shape ``(T, K)``, K divisible by ``lanes``) as beats of ``lanes`` values."""
    t, k = x.shape
    return [pack_lanes(x[v, f * lanes:(f + 1) * lanes], bits) for v in range(t) for f in range(k // lanes)]


def unpack_rows(beats: list[int], t: int, k: int, lanes: int, bits: int, signed: bool):
    """Inverse of :func:`pack_rows`: beats -> int64 array ``(t, k)``."""
    import numpy as np

    vals = [v for b in beats for v in unpack_lanes(b, bits, lanes, signed=signed)]
    return np.array(vals, dtype=np.int64).reshape(t, k)


# ----------------------------------------------------------------------------
# Generic checks for one-input one-output streaming kernels. The pytest side
# hands over (through run_cocotb's test_params):
#   data         .npz with x (T, K_in) input values, ref (T, K_out) the
#                independent numpy reference, finn (T, K_out) FINN's node
#                execution mapped to the kernel's output encoding
#   in_lanes, in_bits, out_lanes, out_bits, out_signed   stream packing
#   cycles_per_vector   expected steady-state cycles per input vector
#   max_latency         bound on the pipeline latency (see check_cycles)


def _params():
    import numpy as np

    from xnorvit.flows.sim import test_params

    p = test_params()
    return p, np.load(p["data"])


async def check_stream(dut, idle: str, backpressure: str, frames: int = 2) -> None:
    """Send ``frames`` copies of x; every output beat must equal ref and finn; no extra beats."""
    import numpy as np
    from cocotb.triggers import ClockCycles

    from axis_tb import PAUSE_PATTERNS

    p, d = _params()
    tb = HandshakeTB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    x, ref, finn = d["x"], d["ref"], d["finn"]
    t, k_out = ref.shape
    await tb.send(pack_rows(np.concatenate([x] * frames), p["in_lanes"], p["in_bits"]))
    nbeats = frames * t * k_out // p["out_lanes"]
    got = unpack_rows(await tb.recv(nbeats), frames * t, k_out, p["out_lanes"], p["out_bits"], p["out_signed"])
    from pathlib import Path

    np.save(Path(p["data"]).with_name(f"rtl_out_{idle}_{backpressure}.npy"), got[:t])  # what the RTL streamed
    for f in range(frames):
        g = got[f * t:(f + 1) * t]
        assert np.array_equal(g, ref), f"frame {f}: RTL\n{g}\n!= numpy reference\n{ref}"
        assert np.array_equal(g, finn), f"frame {f}: RTL\n{g}\n!= FINN node execution\n{finn}"
    await ClockCycles(dut.clk, 20)
    assert tb.sinks_empty(), "extra output beats"


async def check_cycles(dut, frames: int = 3) -> dict:
    """Measure cycles per frame without idle/backpressure; assert the folding formula.

    Asserts: the steady-state distance between the last output beats of
    consecutive frames equals ``T * cycles_per_vector``; the first frame's
    last output comes ``T*cycles_per_vector - 1 + latency`` cycles after the
    first input with ``0 < latency <= max_latency``. Writes the figures to
    ``cycles.json`` beside the data file and returns them.
    """
    import json
    from pathlib import Path

    import numpy as np

    p, d = _params()
    tb = HandshakeTB(dut)
    await tb.reset()
    x, ref = d["x"], d["ref"]
    t, k_out = ref.shape
    out_per_frame = t * k_out // p["out_lanes"]
    await tb.send(pack_rows(np.concatenate([x] * frames), p["in_lanes"], p["in_bits"]))
    await tb.recv(frames * out_per_frame)
    expected = t * p["cycles_per_vector"]
    steady = tb.frame_cycles(frames, out_per_frame)
    latency = tb.out_cycles[out_per_frame - 1] - tb.in_cycles[0] - (expected - 1)
    dut._log.info("cycles/frame steady=%s expected=%d latency=%d", steady, expected, latency)
    assert steady == [expected] * (frames - 1), f"steady-state cycles per frame {steady} != {expected}"
    assert 0 < latency <= p["max_latency"], f"pipeline latency {latency} outside (0, {p['max_latency']}]"
    res = {"cycles_per_frame": steady[0], "expected": expected, "latency": latency, "vectors": t}
    Path(p["data"]).with_name("cycles.json").write_text(json.dumps(res))
    return res
