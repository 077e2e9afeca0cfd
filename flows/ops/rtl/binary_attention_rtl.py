"""``BinaryAttention_rtl``: :class:`~xnorvit.flows.ops.binary_attention.BinaryAttention`
on ``rtl/binary_attention.sv`` (one kernel per head, + ``attn_frame_buffer.sv``)
with ``rtl/stream_fork.sv`` splitting each input stream over the heads.

Wrapper: ``in0_V``/``in1_V``/``in2_V`` = q/k/v, C bits each (one token per
beat; head h takes bits ``h*D +: D`` of a copy made by a ``stream_fork``
with N = heads), ``out0_V`` C*OW bits: the heads' outputs side by side (head
h's lane d at lane ``h*D + d``), valid when every head has its token ready
(a join; heads run in lock step on the same frames). An elastic node
(``binarizer="elastic"``) sets the kernels' ``ELASTIC``, ``TW``, ``TBL``
and ``EMAX`` parameters from
:meth:`~xnorvit.flows.ops.binary_attention.BinaryAttention.elastic_constants`
(packed hex literals).
"""

from __future__ import annotations

from ..binary_attention import BinaryAttention
from ..stream import clog2
from .common import XnorvitRTLBackend, pad_out, packed_literal

__all__ = ["BinaryAttention_rtl"]


class BinaryAttention_rtl(BinaryAttention, XnorvitRTLBackend):
    """RTL variant of ``BinaryAttention`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("stream_fork.sv", "attn_frame_buffer.sv", "binary_attention.sv")

    def verify_folding(self):
        self.check_folding()

    def wrapper_body(self, model, code_gen_dir):
        t, c, h, d = self.geometry()
        ow = self.out_bits()
        pt, pd, cm = self.get_nodeattr("PAR_T"), self.get_nodeattr("PAR_D"), self.get_nodeattr("c_int")
        rule = ""
        if self.elastic() is not None:  # {0, alpha}: the exp table and the row-sum bounds as packed literals
            tw, tbl, emax = self.elastic_constants()
            ew = tw + clog2(t)
            rule = (f",\n        .ELASTIC(1), .TW({tw}), .TBL({packed_literal(tbl, tw)}),"
                    f"\n        .EMAX({packed_literal(emax, ew)})")
        s = ""
        for i, nm in enumerate("qkv"):
            s += (f"    /* verilator lint_off UNUSEDSIGNAL */\n"
                  f"    logic [{h * c - 1}:0] {nm}_data;  // head h reads only bits h*C + h*D +: D of copy h\n"
                  f"    /* verilator lint_on UNUSEDSIGNAL */\n"
                  f"    logic [{h - 1}:0] {nm}_valid, {nm}_ready;\n"
                  f"    stream_fork #(.W({c}), .N({h})) u_fork_{nm} (\n"
                  f"        .clk(ap_clk), .rst(rst),\n"
                  f"        .s_axis_tdata(in{i}_V_TDATA[{c - 1}:0]), .s_axis_tvalid(in{i}_V_TVALID), .s_axis_tready(in{i}_V_TREADY),\n"
                  f"        .m_axis_tdata({nm}_data), .m_axis_tvalid({nm}_valid), .m_axis_tready({nm}_ready));\n")
        s += (f"    logic [{c * ow - 1}:0] o_data;\n"
              f"    logic [{h - 1}:0] o_valid;\n"
              f"    wire o_all = &o_valid;\n"
              f"    assign out0_V_TVALID = o_all;\n")
        for hh in range(h):
            lo = hh * c + hh * d
            s += (f"    binary_attention #(.T({t}), .D({d}), .C({cm}), .PAR_T({pt}), .PAR_D({pd}){rule}) u_head{hh} (\n"
                  f"        .clk(ap_clk), .rst(rst),\n"
                  f"        .s_axis_q_tdata(q_data[{lo + d - 1}:{lo}]), .s_axis_q_tvalid(q_valid[{hh}]), .s_axis_q_tready(q_ready[{hh}]),\n"
                  f"        .s_axis_k_tdata(k_data[{lo + d - 1}:{lo}]), .s_axis_k_tvalid(k_valid[{hh}]), .s_axis_k_tready(k_ready[{hh}]),\n"
                  f"        .s_axis_v_tdata(v_data[{lo + d - 1}:{lo}]), .s_axis_v_tvalid(v_valid[{hh}]), .s_axis_v_tready(v_ready[{hh}]),\n"
                  f"        .m_axis_tdata(o_data[{(hh + 1) * d * ow - 1}:{hh * d * ow}]), .m_axis_tvalid(o_valid[{hh}]),\n"
                  f"        .m_axis_tready(out0_V_TREADY && o_all));\n")
        s += pad_out(0, "o_data", c * ow, self.get_outstream_width_padded())
        return s
