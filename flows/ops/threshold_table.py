"""A MultiThreshold of a narrow input as a lookup table (``rtl/threshold_table.sv``).

FINN's ``Thresholding`` computes, per channel ``c`` of a channels-last input,
``y = ActVal + #{i : T[c][i] <= x}``; finn-plus's ``Thresholding_rtl``
evaluates it by binary search over the ``N`` thresholds in memory
(finn-rtllib ``thresholding.sv``, ``clog2(N+1)`` comparator stages). When
the input has few bits the whole function fits in a table of
``C x 2^WI`` output words, read once per value: the 255-level requantizers
after 7-bit popcounts of bivit-t take ``64 x 128 x 8`` bits (2 RAMB36) and 2
LUTs instead of a comparator pipeline of 380-3,739 Yosys LUTs at PE 1-8
(``benchmarks/thresholds.py``).

:func:`prefer_table` is the rule the compiler uses (the table holds at most
twice the bits of the thresholds it replaces and needs no comparators);
:func:`threshold_table` builds the table from the thresholds with the
MultiThreshold definition, :func:`table_hex`
writes the kernel's per-lane ``$readmemh`` files. The hardware op is
:class:`xnorvit.flows.ops.rtl.ThresholdTable_rtl` (FINN's abstract
``Thresholding`` with this kernel as its RTL backend, so its semantics,
``execute_node`` and stream shapes are FINN's).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_TABLE_INPUT_BITS", "prefer_table", "threshold_table", "table_hex"]

#: inputs wider than this always keep the binary search (a table of 2^WI
#: words per channel grows too fast to be worth comparing)
MAX_TABLE_INPUT_BITS = 12


def prefer_table(in_bits: int, n_thresholds: int, threshold_bits: int, out_bits: int, bipolar_out: bool = False) -> bool:
    """Whether a ``C``-channel MultiThreshold is cheaper as a table.

    True when ``in_bits <= MAX_TABLE_INPUT_BITS``, the output is not
    bipolar, and the table (``2^in_bits`` words of ``out_bits`` per channel)
    holds at most twice the bits of the thresholds it replaces
    (``n_thresholds`` words of ``threshold_bits``): the binary search also
    spends a ``threshold_bits`` comparator and pipeline registers per stage
    (``clog2(N+1)`` stages per lane), the table nothing but its read port.
    E.g. 7-bit input, 255 thresholds of 7 bits, 8-bit output: 1,024 <= 3,570
    bits -> True; 8-bit input, 255 of 8 bits: 2,048 <= 4,080 -> True; 8-bit
    input, one threshold: 256 > 16 -> False; the stem's 16-bit accumulator:
    too wide.
    """
    if bipolar_out or in_bits < 1 or in_bits > MAX_TABLE_INPUT_BITS:
        return False
    return (1 << in_bits) * out_bits <= 2 * n_thresholds * threshold_bits


def threshold_table(thresholds: np.ndarray, channels: int, in_bits: int, in_signed: bool, bias: int) -> np.ndarray:
    """The ``(C, 2^WI)`` int64 table ``y[c][i] = bias + #{k : T[c][k] <= x_i}``.

    ``x_i = i`` for an unsigned input, ``x_i = i - 2^(WI-1)`` for a signed one
    (the kernel's address is the input with its sign bit flipped).

    Args:
        thresholds: ``(C, N)`` or ``(1, N)`` (shared by all channels); any
            real values (a fractional threshold compares exactly).
        channels: C.
        in_bits, in_signed: the input type (``INT{WI}`` or ``UINT{WI}``).
        bias: FINN's ``ActVal``.

    Raises:
        ValueError: thresholds not of 1 or C rows.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] not in (1, channels):
        raise ValueError(f"thresholds of shape {t.shape} for {channels} channels (want (C, N) or (1, N))")
    t = np.broadcast_to(t, (channels, t.shape[1]))
    lo = -(1 << (in_bits - 1)) if in_signed else 0
    x = np.arange(lo, lo + (1 << in_bits), dtype=np.float64)
    return (t[:, None, :] <= x[None, :, None]).sum(-1).astype(np.int64) + int(bias)


def table_hex(table: np.ndarray, pe: int, out_bits: int) -> list[str]:
    """``$readmemh`` texts of the ``PE`` lane tables of ``threshold_table.sv``.

    Lane ``p`` holds channels ``cf*PE + p`` (``cf < C/PE``) one after the
    other, ``2^WI`` words each; a word is the output as ``out_bits``-bit two's
    complement (unsigned outputs are the same bits).

    Args:
        table: ``(C, 2^WI)`` integers (:func:`threshold_table`).
        pe: lanes; divides C.
        out_bits: word width.

    Raises:
        ValueError: PE does not divide C, or a value does not fit ``out_bits``
            (signed or unsigned).
    """
    table = np.asarray(table, dtype=np.int64)
    c = table.shape[0]
    if pe < 1 or c % pe:
        raise ValueError(f"PE={pe} does not divide C={c}")
    if table.size and (table.min() < -(1 << (out_bits - 1)) or table.max() >= (1 << out_bits)):
        raise ValueError(f"table values [{table.min()}, {table.max()}] do not fit {out_bits} bits")
    digits = (out_bits + 3) // 4
    mask = (1 << out_bits) - 1
    return ["\n".join(f"{int(v) & mask:0{digits}x}" for v in table[p::pe].reshape(-1)) + "\n" for p in range(pe)]
