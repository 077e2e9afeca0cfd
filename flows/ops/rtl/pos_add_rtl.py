"""``PosAdd_rtl``: :class:`~xnorvit.flows.ops.pos_add.PosAdd` on
``rtl/stream_pos_add.sv`` (+ ``lanes_add_sat.sv``).

``generate_hdl`` writes the table as ``<node>_pos.hex`` (``$readmemh``,
:func:`~xnorvit.flows.ops.pos_add.pos_table_hex`) beside the wrapper and
passes ``MEM_DIR + "<node>_pos.hex"`` as ``INIT_FILE`` (``MEM_DIR``: a
wrapper parameter the stitched top sets; see :mod:`xnorvit.flows.stitch`). Wrapper: ``in0_V`` = x,
``out0_V``, ``PE*W`` bits each; the table is no stream.
"""

from __future__ import annotations

from ..pos_add import PosAdd, pos_table_hex
from .common import XnorvitRTLBackend, pad_out

__all__ = ["PosAdd_rtl"]


class PosAdd_rtl(PosAdd, XnorvitRTLBackend):
    """RTL variant of ``PosAdd`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("lanes_add_sat.sv", "stream_pos_add.sv")
    mem_dir_param = "MEM_DIR"

    def table_file(self, code_gen_dir):
        return code_gen_dir / f"{self.top_module_name()}_pos.hex"

    def write_support_files(self, model, code_gen_dir):
        w = self.get_output_datatype().bitwidth()
        path = self.table_file(code_gen_dir)
        path.write_text(pos_table_hex(self.get_table(model), self.get_nodeattr("PE"), w))
        return [path.name]

    def wrapper_body(self, model, code_gen_dir):
        pe, w = self.get_nodeattr("PE"), self.get_output_datatype().bitwidth()
        t, c = self.get_normal_input_shape(1)
        n = pe * w
        return (f"    logic [{n - 1}:0] sum_data;\n"
                f"    stream_pos_add #(.T({t}), .C({c}), .PE({pe}), .W({w}),\n"
                f"        .INIT_FILE({{MEM_DIR, \"{self.table_file(code_gen_dir).name}\"}})) u_kernel (\n"
                f"        .clk(ap_clk), .rst(rst),\n"
                f"        .s_axis_tdata(in0_V_TDATA[{n - 1}:0]), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY),\n"
                f"        .m_axis_tdata(sum_data), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY));\n"
                + pad_out(0, "sum_data", n, self.get_outstream_width_padded()))
