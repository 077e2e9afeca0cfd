"""``DuplicateStreams_rtl``: finn-plus's ``DuplicateStreams`` abstract op
(``finn/custom_op/fpgadataflow/duplicatestreams.py``) on ``rtl/stream_fork.sv``.

Wrapper: ``in0_V`` and ``out{i}_V`` (i < ``NumOutputStreams``), ``PE*bits``
each. Execution: the abstract op's copy (exactly the RTL's semantics);
``exec_mode="rtlsim"`` raises NotImplementedError (cocotb does RTL simulation).
"""

from __future__ import annotations

from xnorvit.flows import finn_env

finn_env.setup()
from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams  # noqa: E402

from ..fork import fork_ff_estimation, fork_lut_estimation  # noqa: E402
from ..stream import check_rtlsim  # noqa: E402
from .common import XnorvitRTLBackend, pad_out  # noqa: E402

__all__ = ["DuplicateStreams_rtl"]


class DuplicateStreams_rtl(DuplicateStreams, XnorvitRTLBackend):
    """RTL variant of finn-plus's ``DuplicateStreams`` (domain ``xnorvit.flows.ops.rtl``)."""

    rtl_sources = ("stream_fork.sv",)

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        # set by finn's InferDuplicateStreamsLayer for its HLS variant; kept, unused here
        attrs.setdefault("cpp_interface", ("s", False, "hls_vector"))
        attrs.setdefault("hls_style", ("s", False, "freerunning"))
        return attrs

    def get_folds(self) -> int:
        """``NumChannels / PE``.

        Raises:
            ValueError: PE does not divide NumChannels (names the node).
        """
        c, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        if pe < 1 or c < 1 or c % pe:
            raise ValueError(f"{self.onnx_node.name} ({self.onnx_node.op_type}): PE={pe} does not divide NumChannels={c}")
        return c // pe

    def get_folded_input_shape(self, ind=0):
        self.get_folds()
        return super().get_folded_input_shape(ind)

    def get_exp_cycles(self):
        """``prod(numInputVectors) * C / PE`` (one beat per cycle)."""
        return int(super().get_exp_cycles())

    def execute_node(self, context, graph):
        check_rtlsim(self)
        super().execute_node(context, graph)

    def lut_estimation(self, fpgapart=None):
        return fork_lut_estimation(self.get_num_output_streams())

    def ff_estimation(self, fpgapart=None):
        return fork_ff_estimation(self.get_num_output_streams())

    def bram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0

    def wrapper_body(self, model, code_gen_dir):
        n = self.get_num_output_streams()
        w = self.get_instream_width()
        s = (f"    logic [{n * w - 1}:0] fork_data;\n"
             f"    logic [{n - 1}:0] fork_valid, fork_ready;\n"
             f"    stream_fork #(.W({w}), .N({n})) u_kernel (\n"
             f"        .clk(ap_clk), .rst(rst),\n"
             f"        .s_axis_tdata(in0_V_TDATA[{w - 1}:0]), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY),\n"
             f"        .m_axis_tdata(fork_data), .m_axis_tvalid(fork_valid), .m_axis_tready(fork_ready));\n")
        for i in range(n):
            s += (f"    assign out{i}_V_TVALID = fork_valid[{i}];\n"
                  f"    assign fork_ready[{i}] = out{i}_V_TREADY;\n"
                  + pad_out(i, f"fork_data[{(i + 1) * w - 1}:{i * w}]", w, self.get_outstream_width_padded(i)))
        return s
