"""``ResidualAdd_rtl``: :class:`~xnorvit.flows.ops.residual_add.ResidualAdd` on
``rtl/stream_add_sat.sv`` (+ ``lanes_add_sat.sv``).

Wrapper: ``in0_V`` = a, ``in1_V`` = b, ``out0_V`` = sum, each ``PE*W`` bits
(padded to a multiple of 8). Follows finn-plus's ``rtl/thresholding_rtl.py``.
"""

from __future__ import annotations

from ..residual_add import ResidualAdd
from .common import XnorvitRTLBackend, pad_out

__all__ = ["ResidualAdd_rtl"]


class ResidualAdd_rtl(ResidualAdd, XnorvitRTLBackend):
    """RTL variant of ``ResidualAdd`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("lanes_add_sat.sv", "stream_add_sat.sv")

    def wrapper_body(self, model, code_gen_dir):
        pe, w = self.get_nodeattr("PE"), self.get_output_datatype().bitwidth()
        n = pe * w
        return (f"    logic [{n - 1}:0] sum_data;\n"
                f"    stream_add_sat #(.W({w}), .LANES({pe})) u_kernel (\n"
                f"        .clk(ap_clk), .rst(rst),\n"
                f"        .s_axis_a_tdata(in0_V_TDATA[{n - 1}:0]), .s_axis_a_tvalid(in0_V_TVALID), .s_axis_a_tready(in0_V_TREADY),\n"
                f"        .s_axis_b_tdata(in1_V_TDATA[{n - 1}:0]), .s_axis_b_tvalid(in1_V_TVALID), .s_axis_b_tready(in1_V_TREADY),\n"
                f"        .m_axis_tdata(sum_data), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY));\n"
                + pad_out(0, "sum_data", n, self.get_outstream_width_padded()))
