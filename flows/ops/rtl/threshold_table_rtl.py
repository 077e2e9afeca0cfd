"""``ThresholdTable_rtl``: FINN's ``Thresholding`` on ``rtl/threshold_table.sv``
(a lookup table instead of finn-rtllib's binary search; see
:mod:`xnorvit.flows.ops.threshold_table`).

Same node as finn-plus's ``Thresholding_rtl`` (inputs ``inp`` and the
``(C, N)`` threshold initializer, attributes ``NumChannels``, ``PE``,
``numSteps``, ``inputDataType``, ``outputDataType``, ``ActVal``,
``numInputVectors``; semantics, shapes and stream widths are FINN's
``Thresholding``), plus ``ram_style`` of the tables: ``"block"``,
``"distributed"`` (LUT-ROM) or ``"auto"`` (block above
:data:`LUTROM_MAX_BITS` bits per lane). ``generate_hdl`` writes the lane
tables as ``<node>_table_<pe>.hex`` and passes ``MEM_DIR + "<node>_table_"``
as the kernel's ``INIT_PREFIX``. Chosen over ``Thresholding_rtl`` by
:class:`xnorvit.flows.to_hw.UseThresholdTables`.

Cycles per frame: FINN's ``Thresholding.get_exp_cycles`` (``vectors * C/PE``,
one beat per cycle).
"""

from __future__ import annotations

import numpy as np

from xnorvit.flows import finn_env

finn_env.setup()
from finn.custom_op.fpgadataflow.thresholding import Thresholding  # noqa: E402

from ..stream import bram18_count, check_rtlsim, clog2  # noqa: E402
from ..threshold_table import table_hex, threshold_table  # noqa: E402
from .common import XnorvitRTLBackend, pad_out  # noqa: E402

__all__ = ["ThresholdTable_rtl", "LUTROM_MAX_BITS"]

#: under ram_style "auto", lane tables up to this many bits are LUT-ROM
LUTROM_MAX_BITS = 4096


class ThresholdTable_rtl(Thresholding, XnorvitRTLBackend):
    """MultiThreshold of a narrow input as per-lane lookup tables (domain ``xnorvit.flows.ops.rtl``).

    Raises (``generate_hdl``): ValueError when PE does not divide C, the
    thresholds are not of 1 or C rows, or an output does not fit the
    output type.
    """

    rtl_sources = ("mvau_rom.sv", "threshold_table.sv")
    mem_dir_param = "MEM_DIR"

    def get_nodeattr_types(self):
        attrs = Thresholding.get_nodeattr_types(self)
        attrs.update(XnorvitRTLBackend.get_nodeattr_types(self))
        attrs["ram_style"] = ("s", False, "auto", {"auto", "block", "distributed"})
        return attrs

    def execute_node(self, context, graph):
        check_rtlsim(self)
        Thresholding.execute_node(self, context, graph)

    # -- geometry --------------------------------------------------------
    def in_bits(self) -> int:
        return self.get_input_datatype(0).bitwidth()

    def out_bits(self) -> int:
        return self.get_output_datatype().bitwidth()

    def lane_depth(self) -> int:
        """Words per lane table: ``C/PE * 2^WI``."""
        return self.get_nodeattr("NumChannels") // self.get_nodeattr("PE") << self.in_bits()

    def tables_in_bram(self) -> bool:
        style = self.get_nodeattr("ram_style")
        return style == "block" or (style == "auto" and self.lane_depth() * self.out_bits() > LUTROM_MAX_BITS)

    def kernel_ram_style(self) -> str:
        return "block" if self.tables_in_bram() else "distributed"

    def get_table(self, model) -> np.ndarray:
        """The ``(C, 2^WI)`` table of this node's thresholds (input 1's initializer)."""
        thr = model.get_initializer(self.onnx_node.input[1])
        if thr is None:
            raise ValueError(f"{self.onnx_node.name}: thresholds {self.onnx_node.input[1]} are not an initializer")
        idt = self.get_input_datatype(0)
        return threshold_table(thr, self.get_nodeattr("NumChannels"), idt.bitwidth(), idt.signed(),
                               int(self.get_nodeattr("ActVal")))

    # -- RTL -------------------------------------------------------------
    def table_prefix(self) -> str:
        return f"{self.top_module_name()}_table_"

    def write_support_files(self, model, code_gen_dir):
        names = []
        for p, text in enumerate(table_hex(self.get_table(model), self.get_nodeattr("PE"), self.out_bits())):
            path = code_gen_dir / f"{self.table_prefix()}{p}.hex"
            path.write_text(text)
            names.append(path.name)
        return names

    def wrapper_body(self, model, code_gen_dir):
        pe, wi, wo = self.get_nodeattr("PE"), self.in_bits(), self.out_bits()
        signed = int(self.get_input_datatype(0).signed())
        n = pe * wo
        return (f"    logic [{n - 1}:0] table_data;\n"
                f"    threshold_table #(.C({self.get_nodeattr('NumChannels')}), .PE({pe}), .WI({wi}), .WO({wo}), "
                f".SIGNED_IN({signed}),\n"
                f"        .INIT_PREFIX({{MEM_DIR, \"{self.table_prefix()}\"}}), .RAM_STYLE(\"{self.kernel_ram_style()}\")) u_kernel (\n"
                f"        .clk(ap_clk), .rst(rst),\n"
                f"        .s_axis_tdata(in0_V_TDATA[{pe * wi - 1}:0]), .s_axis_tvalid(in0_V_TVALID), "
                f".s_axis_tready(in0_V_TREADY),\n"
                f"        .m_axis_tdata(table_data), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY));\n"
                + pad_out(0, "table_data", n, self.get_outstream_width_padded()))

    # -- estimates -------------------------------------------------------
    # Checked against Yosys by benchmarks/thresholds.py
    # (benchmarks/results/thresholds.md): block-RAM tables take 2 LUTs at
    # PE 1-8 and the RAMB18s bram18_count gives; LUT-ROM tables of 64, 128
    # and 1,024 words per lane took 68, 1,026 and 1,544 LUTs (estimate 68,
    # 1,028, 1,540): per output bit one LUT6 per 64 words, plus half as many
    # mux LUTs above 256 words.
    def lut_estimation(self, fpgapart=None):
        """``4`` control LUTs, plus ``PE*WO*rom_luts(C/PE * 2^WI)`` for LUT-ROM tables."""
        luts = 4
        if not self.tables_in_bram():
            per_bit = -(-self.lane_depth() // 64)
            if self.lane_depth() > 256:
                per_bit += per_bit // 2
            luts += self.get_nodeattr("PE") * self.out_bits() * per_bit
        return luts

    def ff_estimation(self, fpgapart=None):
        """Read/output register ``PE*WO`` + counter + valid."""
        cf = self.get_nodeattr("NumChannels") // self.get_nodeattr("PE")
        return self.get_nodeattr("PE") * self.out_bits() + max(1, clog2(cf)) + 1

    def bram_estimation(self, fpgapart=None):
        """RAMB18s: ``PE * bram18_count(C/PE * 2^WI, WO)`` with block-RAM tables, else 0."""
        if not self.tables_in_bram():
            return 0
        return self.get_nodeattr("PE") * bram18_count(self.lane_depth(), self.out_bits())

    def uram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0
