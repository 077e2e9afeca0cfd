"""``TokenPool_rtl``: :class:`~xnorvit.flows.ops.token_pool.TokenPool` on
``rtl/stream_token_pool.sv``.

Wrapper: ``in0_V`` ``PE*W`` bits, ``out0_V`` ``PE*OW`` bits (``OW = W + clog2(T)``).
"""

from __future__ import annotations

from ..token_pool import TokenPool
from .common import XnorvitRTLBackend, pad_out

__all__ = ["TokenPool_rtl"]


class TokenPool_rtl(TokenPool, XnorvitRTLBackend):
    """RTL variant of ``TokenPool`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("stream_token_pool.sv",)

    def wrapper_body(self, model, code_gen_dir):
        pe, w = self.get_nodeattr("PE"), self.get_input_datatype().bitwidth()
        ow = self.get_output_datatype().bitwidth()
        c, t = self.get_nodeattr("NumChannels"), self.tokens()
        return (f"    logic [{pe * ow - 1}:0] sum_data;\n"
                f"    stream_token_pool #(.T({t}), .C({c}), .PE({pe}), .W({w})) u_kernel (\n"
                f"        .clk(ap_clk), .rst(rst),\n"
                f"        .s_axis_tdata(in0_V_TDATA[{pe * w - 1}:0]), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY),\n"
                f"        .m_axis_tdata(sum_data), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY));\n"
                + pad_out(0, "sum_data", pe * ow, self.get_outstream_width_padded()))
