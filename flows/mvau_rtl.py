"""Parameters and memory files of the MVAU RTL kernels (``rtl/mvau_xnor.sv``, ``rtl/mvau_int.sv``).

The RTL reads its weights and thresholds with ``$readmemh``; this module
writes those files from FINN-layout tensors and mirrors the widths the RTL
derives from its parameters. Layouts (see the headers of the ``.sv`` files):

* weights, FINN's MVAU layout ``W[MW, MH]`` (``y = x @ W``): word
  ``nf*SF + sf`` holds ``PE*SIMD`` lanes of ``w_bits`` bits, lane
  ``pe*SIMD + s`` = ``W[sf*SIMD + s, nf*PE + pe]`` (LSB-first).
* thresholds ``T[MH, N]``: word ``nf`` holds ``PE*N`` lanes of ``acc_bits+1``
  bits, lane ``pe*N + i`` = ``T[nf*PE + pe, i]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def clog2(n: int) -> int:
    """SystemVerilog ``$clog2``: ceil(log2(n)), 0 for n <= 1."""
    return max(0, (int(n) - 1).bit_length())


def xnor_acc_width(mw: int) -> int:
    """Accumulator bits of ``mvau_xnor`` (signed): ``$clog2(MW+1)+1``."""
    return clog2(mw + 1) + 1


def int_acc_width(mw: int, in_bits: int, w_bits: int) -> int:
    """Accumulator bits of ``mvau_int`` (signed).

    ``IN_W + (W_W == 1 ? 0 : W_W) + $clog2(MW) + 1``: holds any sum of ``MW``
    products of an ``in_bits`` activation (signed or unsigned) and a weight
    (bipolar for ``w_bits == 1``, else ``w_bits``-bit).
    """
    return in_bits + (0 if w_bits == 1 else w_bits) + clog2(mw) + 1


def threshold_count_width(n_thresh: int) -> int:
    """Output bits of a thresholded MVAU with ``n_thresh`` thresholds per channel."""
    return clog2(n_thresh + 1)


def check_folding(mw: int, mh: int, pe: int, simd: int) -> None:
    """Raise ``ValueError`` unless PE divides MH and SIMD divides MW (all positive)."""
    if min(mw, mh, pe, simd) < 1:
        raise ValueError(f"MW, MH, PE, SIMD must be positive, got MW={mw} MH={mh} PE={pe} SIMD={simd}")
    if mh % pe:
        raise ValueError(f"PE={pe} must divide MH={mh}")
    if mw % simd:
        raise ValueError(f"SIMD={simd} must divide MW={mw}")


def _write_words(path: os.PathLike | str, lanes: np.ndarray, lane_bits: int) -> Path:
    """Write rows of ``lanes`` (shape ``(words, n)``, ints) as LSB-first packed hex words."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = (1 << lane_bits) - 1
    width = lanes.shape[1] * lane_bits
    digits = max(1, (width + 3) // 4)
    lines = []
    for row in lanes:
        word = 0
        for i, v in enumerate(row.tolist()):
            word |= (int(v) & mask) << (i * lane_bits)
        lines.append(f"{word:0{digits}x}")
    path.write_text("\n".join(lines) + "\n")
    return path


def fold_weights(weights: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """Reorder ``W[MW, MH]`` into ROM words: shape ``(NF*SF, PE*SIMD)``, see module doc.

    Raises:
        ValueError: ``weights`` is not 2-D or the folding does not divide it.
    """
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (MW, MH), got shape {w.shape}")
    mw, mh = w.shape
    check_folding(mw, mh, pe, simd)
    nf, sf = mh // pe, mw // simd
    # W[sf*SIMD+s, nf*PE+pe] -> [nf, sf, pe, s]
    return w.reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1).reshape(nf * sf, pe * simd)


def write_weights(path: os.PathLike | str, weights: np.ndarray, pe: int, simd: int, w_bits: int = 1) -> Path:
    """Write the weight ROM file of an MVAU kernel.

    Args:
        path: output ``.hex`` file (parent directories are created).
        weights: ``(MW, MH)`` integer array in FINN's layout. For ``w_bits=1``
            the values are bits (1 = +1, 0 = -1); bipolar values ``+-1`` are
            accepted too and mapped to bits. For ``w_bits > 1``: integers in
            two's complement range (or unsigned range).
        pe, simd: folding.
        w_bits: bits per weight.

    Returns:
        The path written.

    Raises:
        ValueError: bad shape/folding, or values outside the ``w_bits`` range.
    """
    w = np.asarray(weights).astype(np.int64)
    if w_bits == 1:
        if np.isin(w, (-1, 1)).all() and (w == -1).any():
            w = (w + 1) // 2
        if not np.isin(w, (0, 1)).all():
            raise ValueError("1-bit weights must be bits {0, 1} or bipolar {-1, +1}")
    elif w.min(initial=0) < -(1 << (w_bits - 1)) or w.max(initial=0) >= (1 << w_bits):
        raise ValueError(f"weights outside the range of {w_bits}-bit integers")
    return _write_words(path, fold_weights(w, pe, simd), w_bits)


def clip_thresholds(thresholds: np.ndarray, acc_bits: int) -> np.ndarray:
    """Integer thresholds with the same effect on ``acc_bits``-bit accumulators.

    An integer ``acc`` satisfies ``acc >= t`` iff ``acc >= ceil(t)``; a
    threshold at or below the accumulator minimum is always met and one above
    the maximum never, so clipping to ``[-2^(A-1), 2^(A-1)]`` changes no count
    and fits ``acc_bits+1`` bits.
    """
    t = np.ceil(np.asarray(thresholds, dtype=np.float64))
    lo, hi = -(1 << (acc_bits - 1)), 1 << (acc_bits - 1)
    return np.clip(t, lo, hi).astype(np.int64)


def write_thresholds(path: os.PathLike | str, thresholds: np.ndarray, pe: int, acc_bits: int) -> Path:
    """Write the threshold ROM file of a thresholded MVAU kernel.

    Args:
        path: output ``.hex`` file.
        thresholds: ``(MH, N)`` thresholds (any real values; see
            :func:`clip_thresholds`), FINN MultiThreshold layout; a ``(1, N)``
            array is broadcast to every channel only if you pass it already
            repeated (no implicit broadcast).
        pe: output channels per beat (divides MH).
        acc_bits: accumulator width of the kernel (:func:`xnor_acc_width`,
            :func:`int_acc_width`); lanes are ``acc_bits + 1`` bits.

    Raises:
        ValueError: not 2-D or PE does not divide MH.
    """
    t = np.asarray(thresholds)
    if t.ndim != 2:
        raise ValueError(f"thresholds must be 2-D (MH, N), got shape {t.shape}")
    mh, n = t.shape
    if mh % pe:
        raise ValueError(f"PE={pe} must divide MH={mh}")
    t = clip_thresholds(t, acc_bits)
    return _write_words(path, t.reshape(mh // pe, pe * n), acc_bits + 1)
