"""cocotb tests of rtl/binary_attention.sv (one binary attention head, BiViT
SAB, and the elastic {0, alpha} mode ``ELASTIC=1``).

The SAB reference is an independent numpy model of the integer semantics
written from the specification (signed scores, not the popcount shortcut the
RTL uses): S = Qpm @ Kpm.T, P = S >= rowmax(S) - C, O = P @ Vpm with
Qpm = 2*bits - 1.

The elastic reference is computed as the exported PyTorch model does, in
float32, not with the RTL's integer row-sum bounds: S = Qpm @ Kpm.T,
e = table[rowmax(S) - S] with the exp table in score units (2D+1 entries,
``xnorvit.model.quant.exp_table``), p = float32(e) / float32(sum_row e),
P = (p - float32(alpha/2)) >= 0, O = P @ Vpm. The pytest entry derives the
RTL constants (TW, TBL, EMAX) with ``xnorvit.flows.ops.binary_attention``'s
helpers and hands them over as HDL parameters (sized hex literals).

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
  first frame equals the documented pipeline latency (``2N + 3``; elastic
  ``2N + T/PAR_T + 5``). When the test
  parameters hold ``"cycles_out"``, the measurement is written there as JSON
  (used by ``benchmarks/attention.py``).

Elastic parameter sets choose alpha so that the rule bites (``attention_frames``
asserts it on its stimulus): ``uniform`` alpha = 1/T, ``small`` alpha = 1/(4T)
(most keys kept), ``large`` alpha = 4/T (rows that keep nothing), and
``boundary``: alpha/2 = float32(e/E) of a non-maximum key of a fixed frame
(:func:`boundary_frame`, sent first in every ``attention_frames`` run) whose
row sum E equals the RTL bound EMAX of its gap exactly: that key sits at
p == alpha/2 and must be kept.
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


def elastic_probs(q: np.ndarray, k: np.ndarray, table, p_half: float):
    """Float32 probabilities and elastic keep mask of one frame, as the exported model computes them.

    The operations of ``xnorvit.model.quant.table_softmax`` (and the exported
    ``Sub`` + bipolar threshold) in numpy float32: the row sum of integers
    below 2^24 is exact in any order and the division is one IEEE float32
    division, so the values are PyTorch's bit for bit (the pytest entry
    checks it against ``table_softmax``); numpy keeps torch out of the
    simulator process.

    Args:
        q, k: (T, D) arrays of bits.
        table: exp table in score units (at least 2D+1 integers).
        p_half: alpha/2 (a float32 value).

    Returns:
        ``(p, keep, s)``: (T, T) float32 p = e / sum_row(e) with
        e = table[rowmax(S) - S], the bool mask ``p - p_half >= 0``, and the
        integer scores S.
    """
    qp, kp = (2 * np.asarray(x, dtype=np.int64) - 1 for x in (q, k))
    s = qp @ kp.T
    tab = np.asarray(table, dtype=np.float32)
    e = tab[s.max(axis=1, keepdims=True) - s]
    p = e / e.sum(axis=1, keepdims=True, dtype=np.float32)
    assert p.dtype == np.float32
    keep = (p - np.float32(p_half)) >= np.float32(0)
    return p, keep, s


def reference_elastic(q: np.ndarray, k: np.ndarray, v: np.ndarray, table, p_half: float) -> np.ndarray:
    """Elastic {0, alpha} attention of one head on one frame (float32 rule, :func:`elastic_probs`).

    Returns:
        (T, D) int array O with O[i] = sum_{j: p[i,j] >= alpha/2} Vpm[j]
        (the kernel's output, alpha itself scales outside the kernel).
    """
    _, keep, _ = elastic_probs(q, k, table, p_half)
    vp = 2 * np.asarray(v, dtype=np.int64) - 1
    return keep.astype(np.int64) @ vp


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


def boundary_frame(t: int, d: int) -> tuple[np.ndarray, ...]:
    """The fixed random frame of the ``boundary`` elastic sets (same bits in the pytest entry and in cocotb)."""
    return make_frame(np.random.default_rng(zlib.crc32(f"boundary/{t}/{d}".encode())), t, d, "random")


def to_beats(bits: np.ndarray) -> list[int]:
    """(T, D) bits -> T beats, bit d of token n at tdata[d]."""
    return [pack_lanes(row, 1) for row in bits]


class TB(AxisTB):
    """binary_attention testbench: Q/K/V sources, one output sink."""

    def __init__(self, dut):
        super().__init__(dut, sources=["s_axis_q", "s_axis_k", "s_axis_v"], sinks=["m_axis"])
        prm = test_params()  # the HDL parameters (elastic: and alpha, table), handed over by the pytest entry
        self.T, self.D, self.C = prm["T"], prm["D"], prm.get("C", 0)
        self.PAR_T, self.PAR_D = prm["PAR_T"], prm["PAR_D"]
        self.elastic = prm.get("ELASTIC", 0) == 1
        self.alpha = prm.get("alpha")  # elastic: uniform/small/large/boundary
        self.table = prm.get("table")  # elastic: exp table in score units (2D+1)
        self.p_half = prm.get("p_half")  # elastic: float32 alpha/2
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
            want = self.reference(q, k, v)
            got = await self.recv(self.T, "m_axis")
            for i, word in enumerate(got):
                lanes = unpack_lanes(word, self.OW, self.D, signed=True)
                assert lanes == list(want[i]), f"frame {n} token {i}: got {lanes}, want {list(want[i])}"

    def reference(self, q, k, v) -> np.ndarray:
        if self.elastic:
            return reference_elastic(q, k, v, self.table, self.p_half)
        return reference(q, k, v, self.C)

    @property
    def latency_extra(self) -> int:
        """Documented pipeline latency beyond 2 rows (see the RTL header)."""
        return LATENCY_EXTRA + (self.T // self.PAR_T + 2 if self.elastic else 0)

    @property
    def frame_cycles(self) -> int:
        """Analytical steady-state cycles per frame."""
        return self.T * (self.T // self.PAR_T) * (self.D // self.PAR_D)


#: Documented pipeline latency beyond 2 rows (see the RTL header); elastic
#: mode adds T/PAR_T + 2 (stage M).
LATENCY_EXTRA = 3



@cocotb.test(timeout_time=20, timeout_unit="ms")
@cocotb.parametrize((("idle", "backpressure"), COMBOS))
async def attention_frames(dut, idle: str, backpressure: str) -> None:
    """Back-to-back frames of mixed data under idle/backpressure patterns."""
    tb = TB(dut)
    tb.set_idle_generator(PAUSE_PATTERNS[idle])
    tb.set_backpressure_generator(PAUSE_PATTERNS[backpressure])
    await tb.reset()
    seed = f"{idle}/{backpressure}/{tb.T}/{tb.D}/{tb.C}" + (f"/elastic/{tb.alpha}" if tb.elastic else "")
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    kinds = ["lowent", "random", "equal", "lowent", "sparse"]
    frames = [make_frame(rng, tb.T, tb.D, kd) for kd in kinds]
    if tb.elastic and tb.alpha == "boundary":
        kinds.insert(0, "boundary")
        frames.insert(0, boundary_frame(tb.T, tb.D))
    # The low-entropy stimulus must hit the edges of the >= comparison: ties at
    # the row maximum, and (scores have the parity of D, so only for even C)
    # scores exactly at rowmax - C.
    lowent = [f for f, kd in zip(frames, kinds) if kd == "lowent"]
    s = np.concatenate([(2 * q - 1) @ (2 * k - 1).T for q, k, _ in lowent])
    smax = s.max(axis=1, keepdims=True)
    assert ((s == smax).sum(axis=1) >= 2).all(), "low-entropy frame without ties"
    if not tb.elastic and tb.C % 2 == 0 and tb.C > 0:
        assert (s == smax - tb.C).any(), "no score at the threshold"
    if tb.elastic:
        check_elastic_stimulus(tb, frames)
    await tb.send_frames(frames)
    await tb.check_frames(frames)
    for _ in range(20):
        await RisingEdge(dut.clk)
    assert tb.sinks_empty(), "extra output beats"
    assert int(dut.m_axis_tvalid.value) == 0


def check_elastic_stimulus(tb: TB, frames) -> None:
    """The elastic rule bites on ``frames``: some row keeps some keys but not
    all; ``small``/``uniform``: some kept key is not a row maximum;
    ``large``: some row keeps nothing; ``boundary``: some non-maximum key has
    p == alpha/2 exactly (kept)."""
    got = [elastic_probs(q, k, tb.table, tb.p_half) for q, k, _ in frames]
    keep = np.concatenate([kp for _, kp, _ in got])
    n = keep.sum(axis=1)
    assert ((n > 0) & (n < tb.T)).any(), "no row keeps some but not all keys"
    nonmax = np.concatenate([s != s.max(axis=1, keepdims=True) for _, _, s in got])
    if tb.alpha in ("small", "uniform"):
        assert (keep & nonmax).any(), "no kept key below a row maximum"
    if tb.alpha == "large":
        assert (n == 0).any(), "no row keeps nothing"
    if tb.alpha == "boundary":
        p = np.concatenate([pr for pr, _, _ in got])
        assert ((p == np.float32(tb.p_half)) & nonmax).any(), "no key at p == alpha/2"


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
    assert latency == 2 * n_row + tb.latency_extra, f"latency {latency} != 2*{n_row} + {tb.latency_extra}"


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


#: Elastic sets: geometry and alpha (see the module docstring). SB (score
#: banks) = 2 + ceil((T/PAR_T + 3) / N) with N = (T/PAR_T)*(D/PAR_D).
ELASTIC_PARAMS = [
    dict(T=7, D=12, PAR_T=1, PAR_D=1, alpha="uniform"),  # minimal parallelism, non-power-of-two; SB 3
    dict(T=7, D=12, PAR_T=7, PAR_D=12, alpha="large"),  # full parallelism (N = 1), rows keep nothing; SB 6
    dict(T=12, D=6, PAR_T=3, PAR_D=2, alpha="small"),  # most keys kept; SB 3
    dict(T=4, D=8, PAR_T=2, PAR_D=4, alpha="boundary"),  # powers of two; SB 4
    dict(T=6, D=4, PAR_T=3, PAR_D=4, alpha="boundary"),  # T/PAR_T = N = 2; SB 5
    dict(T=5, D=10, PAR_T=5, PAR_D=5, alpha="large"),  # one key group, N = 2; SB 4
    dict(T=49, D=32, PAR_T=7, PAR_D=8, alpha="uniform"),  # 7x7 window, mid parallelism; SB 3
    dict(T=49, D=32, PAR_T=49, PAR_D=32, alpha="boundary"),  # full parallelism, T = 49; SB 6
    dict(T=49, D=32, PAR_T=1, PAR_D=32, alpha="large"),  # one key per cycle, N = T/PAR_T = 49; SB 4
]


def sv_hex(values: list[int], width: int) -> str:
    """Pack ``values`` LSB-first at ``width`` bits each into a sized Verilog hex literal."""
    for x in values:
        assert 0 <= x < 1 << width, (x, width)
    return f"{len(values) * width}'h{pack_lanes(values, width):x}"


def boundary_p_half(t: int, d: int, table, bounds_of) -> float:
    """alpha/2 at which a non-maximum key of :func:`boundary_frame` sits
    exactly at the threshold, its row sum being exactly the RTL bound EMAX of
    its gap (so ``E <= EMAX`` is decided at equality); the candidate nearest
    p = 1/T.

    Args:
        bounds_of: ``p_half -> EMAX list`` (elastic_row_bounds).
    """
    q, k, _ = boundary_frame(t, d)
    p, _, s = elastic_probs(q, k, table, 1.0)
    gap = (s.max(axis=1, keepdims=True) - s) // 2  # popcount gap
    e_row = np.asarray(table, dtype=np.int64)[2 * gap].sum(axis=1)
    cands = sorted(((abs(float(p[i, j]) - 1 / t), i, j) for i in range(t) for j in range(t) if gap[i, j] > 0))
    for _, i, j in cands:
        h = float(p[i, j])
        if bounds_of(h)[int(gap[i, j])] == int(e_row[i]):
            return h
    raise AssertionError(f"no boundary key in the T={t} D={d} frame")


def elastic_config(spec: dict) -> tuple[dict, dict]:
    """HDL parameters and test parameters of one elastic set."""
    import torch

    from xnorvit.flows.ops.binary_attention import elastic_row_bounds, elastic_table_bits
    from xnorvit.model.quant import exp_table, table_softmax

    t, d = spec["T"], spec["D"]
    tab_t = exp_table(2 * d, d**-0.5)
    table = [int(x) for x in tab_t.tolist()]
    # the numpy reference is the model's table softmax bit for bit
    for q, k, _ in [boundary_frame(t, d), make_frame(np.random.default_rng(t * 100 + d), t, d, "lowent")]:
        s = torch.as_tensor((2 * q - 1) @ (2 * k - 1).T, dtype=torch.float32)
        want = table_softmax(s, tab_t, d**-0.5, training=False).numpy()
        assert np.array_equal(elastic_probs(q, k, table, 1.0)[0], want)
    alpha = {"uniform": 1 / t, "small": 1 / (4 * t), "large": 4 / t}.get(spec["alpha"])
    if alpha is None:
        p_half = boundary_p_half(t, d, table, lambda h: elastic_row_bounds(table, h, t, d))
    else:
        p_half = float(np.float32(np.float32(alpha) / np.float32(2)))
    tw = elastic_table_bits(table)
    ew = tw + (t - 1).bit_length()  # TW + clog2(T)
    emax = elastic_row_bounds(table, p_half, t, d)
    hdl = dict(T=t, D=d, PAR_T=spec["PAR_T"], PAR_D=spec["PAR_D"], ELASTIC=1, TW=tw,
               TBL=sv_hex([table[2 * j] for j in range(d + 1)], tw), EMAX=sv_hex(emax, ew))
    tp = dict(hdl, alpha=spec["alpha"], p_half=p_half, table=table)
    return hdl, tp


@pytest.mark.parametrize("spec", ELASTIC_PARAMS, ids=lambda s: "elastic-" + param_id(s))
def test_binary_attention_elastic(spec):
    from xnorvit.flows.sim import run_cocotb

    hdl, tp = elastic_config(spec)
    run_cocotb("binary_attention", SOURCES, test_module="test_binary_attention", parameters=hdl, test_params=tp)
