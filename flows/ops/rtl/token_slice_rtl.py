"""``TokenInsert_rtl`` and ``TokenSelect_rtl``: :mod:`xnorvit.flows.ops.token_slice`
on ``rtl/stream_token_insert.sv`` and ``rtl/stream_token_select.sv``.

Wrappers: ``in0_V``, ``out0_V``, ``PE*W`` bits each. ``TokenInsert_rtl``
passes its constant tokens as the packed ``TOKENS`` parameter (a hex
literal in the wrapper; lane ``n*C + c`` at bits ``[(n*C + c)*W +: W]``).
"""

from __future__ import annotations

from ..token_slice import TokenInsert, TokenSelect
from .common import XnorvitRTLBackend, pad_out, packed_literal

__all__ = ["TokenInsert_rtl", "TokenSelect_rtl"]


class TokenInsert_rtl(TokenInsert, XnorvitRTLBackend):
    """RTL variant of ``TokenInsert`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("stream_token_insert.sv",)

    def wrapper_body(self, model, code_gen_dir):
        pe, w = self.get_nodeattr("PE"), self.get_input_datatype().bitwidth()
        c, t, n = self.get_nodeattr("NumChannels"), self.tokens(), self.const_tokens()
        k = self.get_constants(model)
        lit = packed_literal(k.ravel(), w)
        b = pe * w
        return (f"    logic [{b - 1}:0] o_data;\n"
                f"    stream_token_insert #(.T({t}), .N({n}), .C({c}), .PE({pe}), .W({w}),\n"
                f"        .TOKENS({lit})) u_kernel (\n"
                f"        .clk(ap_clk), .rst(rst),\n"
                f"        .s_axis_tdata(in0_V_TDATA[{b - 1}:0]), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY),\n"
                f"        .m_axis_tdata(o_data), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY));\n"
                + pad_out(0, "o_data", b, self.get_outstream_width_padded()))


class TokenSelect_rtl(TokenSelect, XnorvitRTLBackend):
    """RTL variant of ``TokenSelect`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("stream_token_select.sv",)

    def wrapper_body(self, model, code_gen_dir):
        pe, w = self.get_nodeattr("PE"), self.get_input_datatype().bitwidth()
        c, t = self.get_nodeattr("NumChannels"), self.tokens()
        b = pe * w
        return (f"    logic [{b - 1}:0] o_data;\n"
                f"    stream_token_select #(.T({t}), .C({c}), .PE({pe}), .W({w}), .INDEX({self.index()})) u_kernel (\n"
                f"        .clk(ap_clk), .rst(rst),\n"
                f"        .s_axis_tdata(in0_V_TDATA[{b - 1}:0]), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY),\n"
                f"        .m_axis_tdata(o_data), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY));\n"
                + pad_out(0, "o_data", b, self.get_outstream_width_padded()))
