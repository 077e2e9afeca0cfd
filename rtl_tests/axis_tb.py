"""Shared cocotb testbench pieces for AXI-stream kernels (verilog-axis style).

Port convention of every xnorvit kernel: ``clk``, ``rst`` (active-high,
synchronous), input streams ``s_axis_*`` (or ``s_axis_<name>_*``), output
streams ``m_axis_*``, each with ``tdata``/``tvalid``/``tready`` and no
``tlast``. Every beat is one word of ``tdata`` (LSB-first lanes, FINN's
packing), so sources and sinks use ``byte_lanes=1``: one frame item is one
beat, whatever the width.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterable, Iterator, Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def cycle_pause() -> Iterator[int]:
    """verilog-axis's pause pattern: 1,1,1,0 repeated."""
    return itertools.cycle([1, 1, 1, 0])


def random_pause(p: float = 0.5, seed: int = 1) -> Iterator[int]:
    """Pause (1) with probability ``p`` each cycle, from a seeded RNG."""
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


def burst_pause(on: int = 7, off: int = 13) -> Iterator[int]:
    """Long stalls: ``on`` paused cycles then ``off`` free cycles."""
    return itertools.cycle([1] * on + [0] * off)


#: Idle/backpressure patterns every hardware test combines over (None = none).
PAUSE_PATTERNS = {
    "none": None,
    "cycle": cycle_pause,
    "random": random_pause,
    "burst": burst_pause,
}


def fires(valid, ready) -> bool:
    """Whether a valid/ready pair handshakes now; X/Z (4-state simulators before reset) counts as no."""
    return str(valid.value) == "1" and str(ready.value) == "1"


#: (idle, backpressure) combinations the stream-kernel tests run over.
COMBOS = [
    ("none", "none"),
    ("cycle", "none"),
    ("none", "cycle"),
    ("random", "random"),
    ("burst", "random"),
    ("random", "burst"),
]


def param_id(params: dict) -> str:
    """pytest id of an HDL parameter set, e.g. ``W8-LANES4``."""
    return "-".join(f"{k}{v}" for k, v in params.items())


def pack_lanes(values: Iterable[int], bits: int) -> int:
    """Pack unsigned lane values LSB-first into one word (FINN's packing)."""
    word = 0
    mask = (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


def unpack_lanes(word: int, bits: int, lanes: int, signed: bool = False) -> list[int]:
    """Unpack ``lanes`` values of ``bits`` bits, LSB-first, optionally signed."""
    mask = (1 << bits) - 1
    out = []
    for i in range(lanes):
        v = (int(word) >> (i * bits)) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


class AxisTB:
    """Clock, reset and AXI-stream endpoints for one kernel.

    Args:
        dut: the cocotb top-level handle.
        sources: prefixes of input streams (e.g. ``["s_axis"]``).
        sinks: prefixes of output streams (e.g. ``["m_axis"]``).
        period_ns: clock period in ns.
    """

    def __init__(self, dut, sources: Sequence[str] = ("s_axis",), sinks: Sequence[str] = ("m_axis",), period_ns: int = 10):
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())
        self.source = {
            p: AxiStreamSource(AxiStreamBus.from_prefix(dut, p), dut.clk, dut.rst, byte_lanes=1) for p in sources
        }
        self.sink = {p: AxiStreamSink(AxiStreamBus.from_prefix(dut, p), dut.clk, dut.rst, byte_lanes=1) for p in sinks}
        for end in (*self.source.values(), *self.sink.values()):
            end.log.setLevel(logging.WARNING)  # one frame per beat: per-frame logs drown the test

    def handshake_cycles(self, prefix: str) -> list[int]:
        """Start recording the clock cycles (counted from this call) at which
        ``<prefix>_tvalid && <prefix>_tready``; returns the list it fills."""
        cycles: list[int] = []
        valid, ready = getattr(self.dut, f"{prefix}_tvalid"), getattr(self.dut, f"{prefix}_tready")

        async def monitor() -> None:
            cycle = 0
            while True:
                await RisingEdge(self.dut.clk)
                cycle += 1
                if fires(valid, ready):
                    cycles.append(cycle)

        cocotb.start_soon(monitor())
        return cycles

    def set_idle_generator(self, generator=None) -> None:
        """Apply a pause generator factory (or None) to every source."""
        for i, src in enumerate(self.source.values()):
            if generator:
                src.set_pause_generator(_seeded(generator, i))

    def set_backpressure_generator(self, generator=None) -> None:
        """Apply a pause generator factory (or None) to every sink."""
        for i, snk in enumerate(self.sink.values()):
            if generator:
                snk.set_pause_generator(_seeded(generator, 100 + i))

    async def reset(self, cycles: int = 4) -> None:
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def send(self, beats: Iterable[int], port: str = "s_axis") -> None:
        """Queue beats (integers, one per tdata word) on a source."""
        await self.source[port].send(AxiStreamFrame(list(beats)))

    async def recv(self, n: int, port: str = "m_axis") -> list[int]:
        """Receive ``n`` beats from a sink."""
        out: list[int] = []
        while len(out) < n:
            frame = await self.sink[port].recv()
            out.extend(frame.tdata)
        return out

    def sinks_empty(self) -> bool:
        return all(s.empty() for s in self.sink.values())


def _seeded(factory, salt: int):
    try:
        return factory(seed=salt)  # random_pause takes a seed
    except TypeError:
        return factory()
