"""RTL-backend machinery shared by xnorvit's ``*_rtl`` ops (FINN ``RTLBackend``).

``generate_hdl`` writes into the node's ``code_gen_dir_ipgen`` (a fresh FINN
build directory when unset): copies of the ``rtl/*.sv`` files the kernel
needs, any table files, and a top wrapper module named after the node with
FINN's port names (``ap_clk``, ``ap_rst_n`` active low, ``in{i}_V_TDATA`` /
``_TVALID`` / ``_TREADY`` per streamed input, ``out{i}_V_...`` per output;
TDATA padded to a multiple of 8 bits, payload in the low bits, padding zero
on outputs and ignored on inputs). The kernels use ``clk``/``rst`` (active
high) and ``s_axis_*``/``m_axis_*``; the wrapper adapts.

Follows finn-plus's ``finn/custom_op/fpgadataflow/rtl/thresholding_rtl.py``
(``generate_hdl``, ``get_rtl_file_list``, ``code_generation_ipi``,
``gen_top_module``, ``ipgen_path``/``ip_path``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from xnorvit.flows import finn_env

finn_env.setup()
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend  # noqa: E402

__all__ = ["packed_literal", "REPO_RTL_DIR", "XnorvitRTLBackend", "port_decls", "pad_out", "lint_wrapper"]

#: The repository's ``rtl/`` folder (kernel sources).
REPO_RTL_DIR = Path(__file__).resolve().parents[3] / "rtl"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def port_decls(inputs: list[int], outputs: list[int]) -> str:
    """Port list of a FINN-style wrapper with padded TDATA widths ``inputs`` / ``outputs``."""
    lines = ["    input  logic ap_clk,", "    input  logic ap_rst_n"]
    for i, w in enumerate(inputs):
        lines[-1] += ","
        lines += [f"    input  logic [{w - 1}:0] in{i}_V_TDATA,", f"    input  logic in{i}_V_TVALID,",
                  f"    output logic in{i}_V_TREADY"]
    for i, w in enumerate(outputs):
        lines[-1] += ","
        lines += [f"    output logic [{w - 1}:0] out{i}_V_TDATA,", f"    output logic out{i}_V_TVALID,",
                  f"    input  logic out{i}_V_TREADY"]
    return "\n".join(lines)


def unused_in(i: int, used: int, padded: int) -> str:
    """Declaration marking the padding bits of input ``i`` as intentionally unused (Verilator -Wall)."""
    if padded == used:
        return ""
    return (f"    /* verilator lint_off UNUSEDSIGNAL */\n"
            f"    wire [{padded - used - 1}:0] in{i}_pad_unused = in{i}_V_TDATA[{padded - 1}:{used}];\n"
            f"    /* verilator lint_on UNUSEDSIGNAL */\n")


def packed_literal(values, bits: int) -> str:
    """SystemVerilog sized hex literal of ``values`` packed LSB-first,
    ``bits`` each (two's complement), e.g. a packed constant-vector
    parameter: ``packed_literal([1, -1], 4) == "8'hf1"``."""
    values = [int(v) for v in values]
    word, mask = 0, (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (v & mask) << (i * bits)
    return f"{len(values) * bits}'h{word:x}"


def pad_out(i: int, signal: str, used: int, padded: int) -> str:
    """``assign out{i}_V_TDATA`` from ``signal`` (``used`` bits), zero-padded to ``padded``."""
    if padded == used:
        return f"    assign out{i}_V_TDATA = {signal};\n"
    return f"    assign out{i}_V_TDATA = {{{padded - used}'b0, {signal}}};\n"


class XnorvitRTLBackend(RTLBackend):
    """Mixin implementing FINN's ``RTLBackend`` interface for xnorvit kernels.

    A subclass (``class Name_rtl(Name, XnorvitRTLBackend)``) defines
    :attr:`rtl_sources` (file names in ``rtl/``, compile order) and
    :meth:`wrapper_body` (the kernel instance inside the wrapper), and may
    override :meth:`write_support_files` (tables).
    """

    #: kernel source files (names in the repository's rtl/), in compile order
    rtl_sources: tuple[str, ...] = ()
    #: wrapper parameter naming the directory (path prefix ending in ``/``) of the
    #: node's memory files, for ops with tables (None: no memories); the
    #: stitched top sets it to ``MEM_ROOT + "nodes/<node>/"``
    mem_dir_param: str | None = None

    def wrapper_body(self, model, code_gen_dir: Path) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def write_support_files(self, model, code_gen_dir: Path) -> list[str]:
        """Write extra files (tables) into ``code_gen_dir``; return their names."""
        return []

    def top_module_name(self) -> str:
        """The node name, which must be a SystemVerilog identifier.

        Raises:
            ValueError: it is not.
        """
        name = self.onnx_node.name
        if not _IDENT.match(name or ""):
            raise ValueError(f"node name {name!r} ({self.onnx_node.op_type}) is not a valid HDL module name")
        return name

    def _stream_widths(self):
        ins = [(self.get_instream_width(i), self.get_instream_width_padded(i)) for i in range(len(self.onnx_node.input))]
        ins = [w for w in ins if w[0] != 0]
        outs = [(self.get_outstream_width(i), self.get_outstream_width_padded(i)) for i in range(len(self.onnx_node.output))]
        return ins, outs

    def wrapper_text(self, model, code_gen_dir: Path) -> str:
        """Full SystemVerilog text of the top wrapper."""
        top = self.top_module_name()
        ins, outs = self._stream_widths()
        body = "".join(unused_in(i, u, p) for i, (u, p) in enumerate(ins))
        body += self.wrapper_body(model, code_gen_dir)
        doc, params = "", ""
        if self.mem_dir_param:
            doc = (f"// {self.mem_dir_param}: path prefix (ending in /) of this node's memory files; \"\" reads them "
                   "relative to the tool's working directory.\n")
            params = f"#(parameter string {self.mem_dir_param} = \"\") "
        return (f"// {top}: generated by xnorvit.flows.ops.rtl for node {top} ({self.onnx_node.op_type}).\n"
                f"// FINN port names; kernels: {', '.join(self.rtl_sources)}.\n{doc}"
                f"module {top} {params}(\n{port_decls([p for _, p in ins], [p for _, p in outs])}\n);\n"
                f"    wire rst = ~ap_rst_n;\n{body}endmodule\n")

    def _code_gen_dir(self) -> Path:
        d = self.get_nodeattr("code_gen_dir_ipgen")
        if not d:
            from finn.util.basic import make_build_dir

            d = make_build_dir(prefix=f"code_gen_ipgen_{self.onnx_node.name}_")
            self.set_nodeattr("code_gen_dir_ipgen", str(d))
        Path(d).mkdir(parents=True, exist_ok=True)
        return Path(d)

    def generate_hdl(self, model, fpgapart, clk):
        """Write kernel sources, tables and the wrapper ``<node>.sv`` into
        ``code_gen_dir_ipgen``; set ``gen_top_module``, ``ipgen_path``, ``ip_path``.

        Raises:
            ValueError: a folding the kernel cannot take (e.g. PE not dividing
                C), or a node name that is not an HDL identifier.
        """
        self.verify_folding()
        d = self._code_gen_dir()
        for src in self.rtl_sources:
            shutil.copyfile(REPO_RTL_DIR / src, d / src)
        self.write_support_files(model, d)
        top = self.top_module_name()
        (d / f"{top}.sv").write_text(self.wrapper_text(model, d))
        self.set_nodeattr("gen_top_module", top)
        self.set_nodeattr("ipgen_path", str(d))
        self.set_nodeattr("ip_path", str(d))

    def verify_folding(self) -> None:
        """Raise :class:`ValueError` if the folding attributes do not fit the kernel."""
        self.get_folded_input_shape()
        self.get_folded_output_shape()

    def get_rtl_file_list(self, abspath=False):
        """Kernel sources then the wrapper; absolute paths inside ``code_gen_dir_ipgen`` if ``abspath``."""
        top = self.get_nodeattr("gen_top_module") or self.top_module_name()
        names = list(self.rtl_sources) + [f"{top}.sv"]
        if abspath:
            d = Path(self.get_nodeattr("code_gen_dir_ipgen"))
            return [str(d / n) for n in names]
        return names

    def code_generation_ipi(self):
        """Vivado IPI tcl (FINN's thresholding_rtl style; untested here: no Vivado)."""
        cmd = [f"add_files -norecurse {f}" for f in self.get_rtl_file_list(abspath=True)]
        cmd.append(f"create_bd_cell -type module -reference {self.get_nodeattr('gen_top_module')} {self.onnx_node.name}")
        return cmd


def lint_wrapper(op, verilator: str | None = None, extra_args: tuple[str, ...] = ("-Wall",)) -> None:
    """``verilator --lint-only`` of a generated wrapper and its sources.

    Raises:
        RuntimeError: lint reports an error or warning (message holds its output).
    """
    import subprocess

    from xnorvit.flows.sim import verilator_executable

    exe = verilator or verilator_executable()
    files = op.get_rtl_file_list(abspath=True)
    vlt = [str(REPO_RTL_DIR / f"{Path(f).stem}.vlt") for f in files if (REPO_RTL_DIR / f"{Path(f).stem}.vlt").exists()]
    cmd = [exe, "--lint-only", *extra_args, "--top-module", op.get_nodeattr("gen_top_module"), *vlt, *files]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or "%Warning" in r.stderr or "%Error" in r.stderr:
        raise RuntimeError(f"verilator lint of {op.onnx_node.name} failed:\n{r.stdout}\n{r.stderr}")
