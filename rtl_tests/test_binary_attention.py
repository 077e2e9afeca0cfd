"""cocotb tests of rtl/binary_attention.sv (one binary attention head, BiViT SAB).

The reference is an independent numpy model of the integer semantics written
from the specification (signed scores, not the popcount shortcut the RTL
uses): S = Qpm @ Kpm.T, P = S >= rowmax(S) - C, O = P @ Vpm with
Qpm = 2*bits - 1.

Cocotb tests (run by the pytest function at the bottom, one cached Verilator
build per parameter set):

* ``attention_frames``: several frames back to back, mixing uniformly random
  bits, low-entropy Q/K (many scores tie at the row maximum and at
  ``rowmax - C``) and all-equal keys (every score ties), under combined
  idle/backpressure patterns; every output beat is compared with the
  reference and the sink must be empty at the end.
* ``attention_cycles``: no idle, no backpressure; measures the cycles between
  the first output beats of consecutive frames and asserts the steady-state
  value equals ``T * (T/PAR_T) * (D/PAR_D)`` exactly, and the latency of the
  first frame is within the documented pipeline latency. When the test
  parameters hold ``"cycles_out"``, the measurement is written there as JSON
  (used by ``benchmarks/attention.py``).
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from axis_tb import AxisTB, COMBOS, PAUSE_PATTERNS, pack_lanes, param_id, unpack_lanes
from xnorvit.flows.sim import test_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "rtl" / "attn_frame_buffer.sv", REPO / "rtl" / "binary_attention.sv"]


# ----------------------------------------------------------------------------
# Reference model and stimulus
# ----------------------------------------------------------------------------


def reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, c: int) -> np.ndarray:
    """Integer semantics of one head on one frame.

    Args:
        q, k, v: (T, D) arrays of bits (1 = +1, 0 = -1).
        c: margin C >= 0.

    Returns:
        (T, D) int array O with O[i] = sum_{j: S[i,j] >= max_j S[i] - C} Vpm[j].
    """
    qp, kp, vp = (2 * np.asarray(x, dtype=np.int64) - 1 for x in (q, k, v))
    s = qp @ kp.T
    p = s >= s.max(axis=1, keepdims=True) - c
    return p.astype(np.int64) @ vp


def out_width(t: int) -> int:
    """Output lane width clog2(T+1)+1."""
    return math.ceil(math.log2(t + 1)) + 1


def make_frame(rng: np.random.Generator, t: int, d: int, kind: str) -> tuple[np.ndarray, ...]:
    """Q, K, V bit arrays (T, D) of one frame.

    kind: ``random`` (uniform bits), ``lowent`` (Q and K drawn from two
    prototypes with rare bit flips, every key duplicated: each row's maximum
    ties and many scores sit exactly at ``rowmax - C``), ``equal`` (all keys identical: every score ties),
    ``sparse`` (K rows 0/1-biased so maxima are unique-ish and P is sparse).
    """
    v = rng.integers(0, 2, size=(t, d))
    if kind == "random":
        q = rng.integers(0, 2, size=(t, d))
        k = rng.integers(0, 2, size=(t, d))
    elif kind == "lowent":
        protos = rng.integers(0, 2, size=(2, d))
        flip = lambda: (rng.random((t, d)) < 0.12).astype(np.int64)  # noqa: E731
        q = protos[rng.integers(0, 2, size=t)] ^ flip()
        k = protos[rng.integers(0, 2, size=t)] ^ flip()
        k[1::2] = k[0:t - 1:2]  # every key has a twin: each row's maximum ties
        if t % 2:
            k[t - 1] = k[0]
    elif kind == "equal":
        q = rng.integers(0, 2, size=(t, d))
        k = np.tile(rng.integers(0, 2, size=(1, d)), (t, 1))
    elif kind == "sparse":
        q = (rng.random((t, d)) < 0.8).astype(np.int64)
        k = (rng.random((t, d)) < 0.2).astype(np.int64)
    else:
        raise ValueError(kind)
    return q, k, v


def to_beats(bits: np.ndarray) -> list[int]:
    """(T, D) bits -> T beats, bit d of token n at tdata[d]."""
    return [pack_lanes(row, 1) for row in bits]


class TB(AxisTB):
    """binary_attention testbench: Q/K/V sources, one output sink."""

    def __init__(self, dut):
        super().__init__(dut, sources=["s_axis_q", "s_axis_k", "s_axis_v"], sinks=["m_axis"])
        prm = test_params()  # the HDL parameters, handed over by the pytest entry
        self.T, self.D, self.C = prm["T"], prm["D"], prm["C"]
        self.PAR_T, self.PAR_D = prm["PAR_T"], prm["PAR_D"]
        self.OW = out_width(self.T)
        self.handshakes: list[int] = []  # cycle of every output handshake
        self.inputs_done: list[int] = []  # cycle at which every stream had sent n*T beats
        cocotb.start_soon(self._monitor())

    async def _monitor(self) -> None:
        """Record the cycle numbers of output handshakes and of complete input frames."""
        cycle = 0
        seen = [0, 0, 0]
        ports = [(getattr(self.dut, f"s_axis_{x}_tvalid"), getattr(self.dut, f"s_axis_{x}_tready")) for x in "qkv"]
        while True:
            await RisingEdge(self.dut.clk)
            cycle += 1
            if self.dut.m_axis_tvalid.value and self.dut.m_axis_tready.value:
                self.handshakes.append(cycle)
            for n, (valid, ready) in enumerate(ports):
                if valid.value and ready.value:
                    seen[n] += 1
            if min(seen) == (len(self.inputs_done) + 1) * self.T:
                self.inputs_done.append(cycle)

    async def send_frames(self, frames) -> None:
        for name, idx in (("s_axis_q", 0), ("s_axis_k", 1), ("s_axis_v", 2)):
            beats = [b for f in frames for b in to_beats(f[idx])]
            await self.send(beats, name)

    async def check_frames(self, frames) -> None:
        for n, (q, k, v) in enumerate(frames):
            want = reference(q, k, v, self.C)
            got = await self.recv(self.T, "m_axis")
            for i, word in enumerate(got):
                lanes = unpack_lanes(word, self.OW, self.D, signed=True)
                assert lanes == list(want[i]), f"frame {n} token {i}: got {lanes}, want {list(want[i])}"

    @property
    def frame_cycles(self) -> int:
        """Analytical steady-state cycles per frame."""
        return self.T * (self.T // self.PAR_T) * (self.D // self.PAR_D)


#: Documented pipeline latency beyond 2 rows (see the RTL header).
LATENCY_EXTRA = 3



@cocotb.test(timeout_time=20, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def attention_frames(dut, idle: str, backpressure: str) -> None:
    """Back-to-back frames of mixed data under idle/backpressure patterns."""
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    rng = np.random.default_rng(zlib.crc32(f"{idle}/{backpressure}/{tb.T}/{tb.D}/{tb.C}".encode()))
    kinds = ["lowent", "random", "equal", "lowent", "sparse"]
    frames = [make_frame(rng, tb.T, tb.D, kd) for kd in kinds]
    # The low-entropy stimulus must hit the edges of the >= comparison: ties at
    # the row maximum, and (scores have the parity of D, so only for even C)
    # scores exactly at rowmax - C.
    lowent = [f for f, kd in zip(frames, kinds) if kd == "lowent"]
    s = np.concatenate([(2 * q - 1) @ (2 * k - 1).T for q, k, _ in lowent])
    smax = s.max(axis=1, keepdims=True)
    assert ((s == smax).sum(axis=1) >= 2).all(), "low-entropy frame without ties"
    if tb.C % 2 == 0 and tb.C > 0:
        assert (s == smax - tb.C).any(), "no score at the threshold"
    await tb.send_frames(frames)
    await tb.check_frames(frames)
    for _ in range(20):
        await RisingEdge(dut.clk)
    assert tb.sinks_empty(), "extra output beats"
    assert int(dut.m_axis_tvalid.value) == 0


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def attention_cycles(dut) -> None:
    """Steady-state cycles per frame equal T*(T/PAR_T)*(D/PAR_D) exactly."""
    tb = TB(dut)
    await tb.reset()
    rng = np.random.default_rng(7)
    n_frames = 4
    frames = [make_frame(rng, tb.T, tb.D, "random") for _ in range(n_frames)]
    start = len(tb.handshakes)
    await tb.send_frames(frames)
    await tb.check_frames(frames)
    assert tb.sinks_empty()
    firsts = [tb.handshakes[start + f * tb.T] for f in range(n_frames)]
    periods = [b - a for a, b in zip(firsts, firsts[1:])]
    n_row = (tb.T // tb.PAR_T) * (tb.D // tb.PAR_D)
    # latency: last input beat of frame 0 -> first output beat, pipeline idle
    latency = firsts[0] - tb.inputs_done[0]
    dut._log.info("cycles/frame %s (analytical %d), latency %d", periods, tb.frame_cycles, latency)
    cycles_out = test_params().get("cycles_out")
    if cycles_out:
        Path(cycles_out).write_text(
            json.dumps({"periods": periods, "analytical": tb.frame_cycles, "latency": latency, "row_cycles": n_row})
        )
    assert all(p == tb.frame_cycles for p in periods), f"periods {periods} != {tb.frame_cycles}"
    assert latency == 2 * n_row + LATENCY_EXTRA, f"latency {latency} != 2*{n_row} + {LATENCY_EXTRA}"


# ----------------------------------------------------------------------------
# pytest entry: one cached build per parameter set
# ----------------------------------------------------------------------------

PARAMS = [
    dict(T=7, D=12, C=2, PAR_T=1, PAR_D=1),  # minimal parallelism, non-power-of-two
    dict(T=7, D=12, C=0, PAR_T=7, PAR_D=12),  # full parallelism, C = 0 (only maxima)
    dict(T=12, D=6, C=5, PAR_T=3, PAR_D=2),  # odd C
    dict(T=4, D=8, C=1, PAR_T=2, PAR_D=4),  # powers of two
    dict(T=49, D=32, C=3, PAR_T=7, PAR_D=8),  # DeiT-like 7x7 window, mid parallelism
    dict(T=49, D=32, C=4, PAR_T=49, PAR_D=32),  # full parallelism, T=49
    dict(T=49, D=32, C=2, PAR_T=1, PAR_D=32),  # one key per cycle, whole vector
]


@pytest.mark.parametrize("params", PARAMS, ids=param_id)
def test_binary_attention(params):
    from xnorvit.flows.sim import run_cocotb

    run_cocotb(
        "binary_attention", SOURCES, test_module="test_binary_attention", parameters=params, test_params=params
    )
