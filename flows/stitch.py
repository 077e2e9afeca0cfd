"""Stitch a folded FINN hardware graph (``hw.onnx``) into one accelerator top.

Every node of the graph is an RTL-backend op with FINN's port names
(``ap_clk``, ``ap_rst_n``, ``in{i}_V_*``, ``out{i}_V_*``): xnorvit's own
(:mod:`xnorvit.flows.ops`) and finn-plus's ``Thresholding_rtl``,
``FMPadding_rtl``, ``ConvolutionInputGenerator_rtl``. :func:`stitch`

1. generates each node's HDL into ``OUT/nodes/<node>/`` (``generate_hdl``);
2. lists the graph's edges (a tensor from one producer output to one
   consumer input; the graph input and output are edges too);
3. on every edge whose producer's stream width differs from the consumer's
   inserts a data-width converter (``rtl/stream_dwc_down.sv`` where the
   consumer's width divides the producer's, else finn-rtllib's ``vpc`` core,
   as in ``rtl/stream_dwc.sv``, configured with a vector of
   ``lcm(IBITS, OBITS)`` bits so a frame never leaves a partial vector
   behind), then a FIFO
   (``rtl/stream_fifo.sv``) of a per-edge depth, in block RAM from
   :data:`BLOCK_FIFO_MIN_DEPTH` entries (the residual skips around an
   attention block hold a whole frame);
4. writes ``OUT/<top>.sv`` (ports ``ap_clk``, ``ap_rst_n``, ``s_axis_*``,
   ``m_axis_*``, ``tdata`` padded to a multiple of 8 bits, payload in the
   low bits), ``OUT/filelist.f`` (compile order, paths relative to ``OUT``,
   Verilator ``.vlt`` waivers first) and ``OUT/stitch.json`` (edges, widths,
   depths).

Relocatable: ``OUT`` is self-contained. Sources from outside it (the
repository's ``rtl/`` kernels, finn-rtllib's ``vpc``) are copied into
``OUT/lib/`` (finn-rtllib's below ``OUT/lib/finn-rtllib/``), every path in ``filelist.f``/``stitch.json`` is relative to
``OUT``, and no generated file names a memory file by absolute path: the
top has one parameter ``MEM_ROOT`` (a path prefix ending in ``/`` that
names ``OUT``; default ``""``, i.e. relative to the tool's working
directory) and hands each node ``MEM_ROOT + "nodes/<node>/"`` (xnorvit
wrappers' ``MEM_DIR``, finn-rtllib thresholding's ``THRESHOLDS_PATH``).
The simulator (:func:`mem_root_parameter`), Yosys
(:func:`xnorvit.flows.reports.synth_build`) and the Vivado step set it, so a
moved or copied build reads its own memories.

Edge ``k`` is visible at the top level as ``e<k>_tdata/_tvalid/_tready``
(producer side, the producer's payload bits): the per-layer taps that
:mod:`xnorvit.flows.verify` compares with FINN node execution. Outside
synthesis (`` `ifndef SYNTHESIS``) each FIFO also counts its occupancy and
keeps the maximum in ``e<k>_maxocc`` (read by the FIFO-sizing simulation).

FIFO depths: :func:`size_fifos` simulates the top with every FIFO as deep as
two frames of its edge, back to back with no idle or backpressure, records
the maximum occupancy per FIFO, and sets ``depth = round_depth(max)``. The
whole-network verification (:mod:`xnorvit.flows.verify`) then re-simulates
the sized design under random idle/backpressure (no deadlock) and measures
the initiation interval (the same as with the huge FIFOs).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xnorvit.flows import finn_env

__all__ = ["BLOCK_FIFO_MIN_DEPTH", "Edge", "StitchError", "Stitched", "edges_of", "generate_nodes", "write_top", "stitch", "round_depth",
           "load_stitched", "fix_threshold_types", "resize", "pack_beats", "unpack_beats", "DEFAULT_TOP", "MEM_ROOT",
           "mem_root_parameter"]

DEFAULT_TOP = "xnorvit_accel"
REPO_RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"
#: depth of every FIFO while sizing: this many frames of the edge
SIZING_FRAMES = 2
#: FIFOs never get fewer entries (stream_fifo runs at half rate with 1)
MIN_DEPTH = 2
#: FIFOs at least this deep use block RAM (``stream_fifo`` ``BLOCK_RAM=1``):
#: a 3,136-entry residual skip of 8-bit beats costs ~600 LUTs of LUT-RAM plus
#: read multiplexers, or one RAMB36
BLOCK_FIFO_MIN_DEPTH = 256
#: the stitched top's parameter naming the directory of its memory files (see module doc)
MEM_ROOT = "MEM_ROOT"
#: sub-directory of OUT holding copies of the sources from outside OUT
LIB_DIR = "lib"
#: finn-plus RTL ops with AXI-lite configuration ports (tied off: configuration is static)
_AXILITE_OPS = ("Thresholding_rtl", "FMPadding_rtl")


class StitchError(RuntimeError):
    """The graph cannot be stitched (names the node or edge)."""


@dataclass
class Edge:
    """One stream of the stitched design (see module doc)."""

    index: int
    tensor: str
    src: str | None  # producer node name (None: the top's s_axis)
    src_port: int
    dst: str | None  # consumer node name (None: the top's m_axis)
    dst_port: int
    src_bits: int  # producer's payload bits per beat
    dst_bits: int  # consumer's payload bits per beat
    src_beats: int  # beats per frame on the producer side
    dst_beats: int  # beats per frame on the consumer side (FIFO entries per frame)
    src_folded: list = field(default_factory=list)  # producer's folded shape (taps unpack with it)
    src_dtype: str = ""
    depth: int = MIN_DEPTH
    max_occupancy: int | None = None

    @property
    def name(self) -> str:
        return f"e{self.index}"

    @property
    def dwc(self) -> bool:
        return self.src_bits != self.dst_bits


@dataclass
class Stitched:
    """A stitched design: top name, its files, its edges.

    ``rel_files`` are relative to ``out`` (as in ``filelist.f``); ``files``
    are the same resolved against ``out``.
    """

    out: Path
    top: str
    edges: list[Edge]
    rel_files: list[str]
    in_bits: int
    out_bits: int
    in_beats: int
    out_beats: int

    @property
    def files(self) -> list[str]:
        """Absolute paths of the sources in compile order."""
        return [str(self.out / f) for f in self.rel_files]

    @property
    def top_file(self) -> Path:
        return self.out / f"{self.top}.sv"

    @property
    def mem_root(self) -> str:
        """The value of the top's ``MEM_ROOT`` for this location: ``out`` resolved, with a trailing ``/``."""
        return f"{Path(self.out).resolve()}/"

    def depths(self) -> dict[str, int]:
        return {f"{e.name}:{e.tensor}": e.depth for e in self.edges}


def _pad8(bits: int) -> int:
    return 8 * ((bits + 7) // 8)


def round_depth(occupancy: int) -> int:
    """FIFO depth for a measured maximum occupancy: at least :data:`MIN_DEPTH`;
    up to 32 the next power of two, above that the next multiple of 32."""
    occ = max(int(occupancy), MIN_DEPTH)
    if occ <= 32:
        return 1 << (occ - 1).bit_length()
    return 32 * math.ceil(occ / 32)


def _custom(node):
    finn_env.setup()
    import xnorvit.flows.ops  # noqa: F401  (registers the op domains)
    import xnorvit.flows.ops.rtl  # noqa: F401
    from qonnx.custom_op.registry import getCustomOp

    return getCustomOp(node)


def _streamed_inputs(model, node) -> list[int]:
    """Indices of ``node``'s inputs that are streams (not initializers), in port order."""
    return [i for i, t in enumerate(node.input) if t and model.get_initializer(t) is None]


def _check_graph(model) -> None:
    from finn.util.fpgadataflow import is_fpgadataflow_node

    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise StitchError("the hardware graph must have exactly one input and one output")
    for n in model.graph.node:
        if not is_fpgadataflow_node(n) or not n.op_type.endswith("_rtl"):
            raise StitchError(f"node {n.name} ({n.op_type}) is not an RTL dataflow op; compile first (xnorvit compile)")


def edges_of(model) -> list[Edge]:
    """The streams of ``model``: graph input, node-to-node tensors, graph output.

    Raises:
        StitchError: a tensor with several consumers (insert DuplicateStreams),
            or a node that is not an RTL dataflow op.
    """
    _check_graph(model)
    producer: dict[str, tuple] = {}
    for n in model.graph.node:
        for j, t in enumerate(n.output):
            producer[t] = (n, j)
    gin, gout = model.graph.input[0].name, model.graph.output[0].name
    edges: list[Edge] = []
    consumers: dict[str, int] = {}
    for n in model.graph.node:
        inst = _custom(n)
        for port, i in enumerate(_streamed_inputs(model, n)):
            t = n.input[i]
            consumers[t] = consumers.get(t, 0) + 1
            if consumers[t] > 1:
                raise StitchError(f"tensor {t} feeds several nodes (second: {n.name}); fork it with DuplicateStreams")
            dst_bits = inst.get_instream_width(i)
            dst_beats = int(np.prod(inst.get_folded_input_shape(i)[:-1]))
            if t == gin:
                src, sp, sb, sbeats = None, 0, dst_bits, dst_beats
                sfold, sdt = list(inst.get_folded_input_shape(i)), inst.get_input_datatype(i).name
            elif t in producer:
                pn, sp = producer[t]
                pinst = _custom(pn)
                src, sb = pn.name, pinst.get_outstream_width(sp)
                sfold = list(pinst.get_folded_output_shape(sp))
                sbeats, sdt = int(np.prod(sfold[:-1])), pinst.get_output_datatype(sp).name
            else:
                raise StitchError(f"input {t} of {n.name} has no producer")
            edges.append(Edge(len(edges), t, src, sp, n.name, port, sb, dst_bits, sbeats, dst_beats, sfold, sdt))
    if gout not in producer:
        raise StitchError(f"graph output {gout} has no producer")
    pn, sp = producer[gout]
    pinst = _custom(pn)
    sfold = list(pinst.get_folded_output_shape(sp))
    beats = int(np.prod(sfold[:-1]))
    bits = pinst.get_outstream_width(sp)
    edges.append(Edge(len(edges), gout, pn.name, sp, None, 0, bits, bits, beats, beats, sfold,
                      pinst.get_output_datatype(sp).name))
    for e in edges:
        if e.src_bits * e.src_beats != e.dst_bits * e.dst_beats:
            raise StitchError(f"edge {e.tensor} ({e.src} -> {e.dst}): {e.src_beats} beats x {e.src_bits} bits "
                              f"!= {e.dst_beats} x {e.dst_bits}")
    return edges


def fix_threshold_types(model) -> list[str]:
    """Give every ``Thresholding_rtl`` the threshold type its RTL needs
    (finn-plus's own ``minimize_weight_bit_width``: signed thresholds for
    signed inputs, room for ``min - 1``). Without it a graph whose
    thresholds are typed e.g. BINARY in front of a signed input gets a
    1-bit *signed* threshold memory: the threshold 1 reads back as -1.
    Returns the names of the nodes whose type changed."""
    changed = []
    for n in model.graph.node:
        if n.op_type == "Thresholding_rtl":
            inst = _custom(n)
            before = inst.get_nodeattr("weightDataType")
            inst.minimize_weight_bit_width(model)
            if inst.get_nodeattr("weightDataType") != before:
                changed.append(n.name)
    return changed


def generate_nodes(model, out: Path, fpgapart: str, clk_ns: float = 10.0,
                   log: Callable[[str], None] | None = None) -> dict[str, list[str]]:
    """``generate_hdl`` of every node into ``out/<node>/``; returns each node's file list."""
    files = {}
    for n in model.graph.node:
        inst = _custom(n)
        d = out / n.name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(d.resolve()))
        inst.generate_hdl(model, fpgapart, clk_ns)
        files[n.name] = [str(Path(f).resolve()) for f in inst.get_rtl_file_list(abspath=True)]
        if log:
            log(f"hdl: {n.name} ({n.op_type})")
    return files


def _file_list(node_files: dict[str, list[str]], out: Path) -> list[str]:
    """Compile order: Verilator waivers, packages, shared kernels (deduplicated
    by file name: the per-node copies of a repository kernel are identical),
    the FIFO and DWC cores, then the node files. Files from outside ``out``
    are copied into ``out/lib/``; the paths returned are relative to ``out``."""
    seen, ordered = set(), []
    extra = [str(REPO_RTL_DIR / "stream_fifo.sv"), str(REPO_RTL_DIR / "stream_dwc_down.sv"), _vpc_path()]
    all_files = extra + [f for fs in node_files.values() for f in fs]
    pkgs = [f for f in all_files if f.endswith("_pkg.sv")]
    for f in pkgs + all_files:
        base = Path(f).name
        if base in seen:
            continue
        seen.add(base)
        ordered.append(f)
    vlt = [str(REPO_RTL_DIR / v) for v in ("stream_dwc.vlt", "thresholding_axis.vlt") if (REPO_RTL_DIR / v).exists()]
    out = out.resolve()
    rtllib = finn_env.finn_rtllib().resolve()
    rel = []
    for f in vlt + ordered:
        p = Path(f).resolve()
        if not p.is_relative_to(out):
            # finn-rtllib files keep their path below lib/finn-rtllib/ (the .vlt waivers match it)
            dst = out / LIB_DIR / ("finn-rtllib" / p.relative_to(rtllib) if p.is_relative_to(rtllib) else p.name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)
            p = dst
        rel.append(p.relative_to(out).as_posix())
    return rel


def integer_down(src_bits: int, dst_bits: int) -> bool:
    """Whether a stream from ``src_bits`` to ``dst_bits`` per beat is an
    integer-ratio down-conversion, which ``rtl/stream_dwc_down.sv`` (a held
    word and a slice multiplexer) converts; other ratios go through
    finn-rtllib's ``vpc``."""
    return src_bits > dst_bits and src_bits % dst_bits == 0


def _vpc_path() -> str:
    p = finn_env.finn_rtllib() / "dwc" / "hdl" / "vpc.sv"
    if not p.exists():
        raise StitchError(f"finn-rtllib DWC core missing: {p}")
    return str(p)


def _node_ports(model, n, edges_in: dict, edges_out: dict) -> str:
    """Port connections of one node instance."""
    inst = _custom(n)
    conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
    for port, i in enumerate(_streamed_inputs(model, n)):
        e = edges_in[(n.name, port)]
        pad = inst.get_instream_width_padded(i)
        data = f"{e.name}_q_tdata" if pad == e.dst_bits else f"{pad}'({e.name}_q_tdata)"
        conns += [f".in{port}_V_TDATA({data})", f".in{port}_V_TVALID({e.name}_q_tvalid)",
                  f".in{port}_V_TREADY({e.name}_q_tready)"]
    for j in range(len(n.output)):
        e = edges_out[(n.name, j)]
        conns += [f".out{j}_V_TDATA({e.name}_p_tdata)", f".out{j}_V_TVALID({e.name}_tvalid)",
                  f".out{j}_V_TREADY({e.name}_tready)"]
    if n.op_type in _AXILITE_OPS:
        for s in ("AWVALID", "AWADDR", "WVALID", "WDATA", "WSTRB", "BREADY", "ARVALID", "ARADDR", "RREADY"):
            conns.append(f".s_axilite_{s}('0)")
        for s in ("AWREADY", "WREADY", "BVALID", "BRESP", "ARREADY", "RVALID", "RDATA", "RRESP"):
            conns.append(f".s_axilite_{s}()")
    if n.op_type == "Thresholding_rtl":
        conns += [".in1_V_TDATA('0)", ".in1_V_TVALID(1'b0)", ".in1_V_TREADY()"]
    return ",\n        ".join(conns)


def _node_params(n) -> str:
    """Parameter overrides of an instance: the node's memory files are under
    ``MEM_ROOT + "nodes/<node>/"`` (finn-rtllib thresholding takes a file-name
    prefix, xnorvit's MVAU and position-add wrappers a directory)."""
    d = f"nodes/{n.name}/"
    if n.op_type == "Thresholding_rtl":
        return f' #(.THRESHOLDS_PATH({{{MEM_ROOT}, "{d}{n.name}_"}}))'
    param = getattr(type(_custom(n)), "mem_dir_param", None)
    if param:
        return f' #(.{param}({{{MEM_ROOT}, "{d}"}}))'
    return ""


def mem_root_parameter(st: "Stitched") -> dict[str, str]:
    """HDL parameters that point the top at ``st.out``'s memory files
    (``{"MEM_ROOT": '"<out>/"'}``, quoted as Verilator's ``-G`` wants a string)."""
    return {MEM_ROOT: f'"{st.mem_root}"'}


def write_top(model, edges: list[Edge], out: Path, top: str = DEFAULT_TOP, monitor: bool = True) -> Path:
    """Write ``out/<top>.sv`` chaining the nodes through DWCs and FIFOs (``edge.depth``)."""
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", top):
        raise StitchError(f"top name {top!r} is not an HDL identifier")
    ein, eout = edges[0], edges[-1]
    gin = model.graph.input[0].name
    ein = next(e for e in edges if e.src is None and e.tensor == gin)
    eout = next(e for e in edges if e.dst is None)
    iw, ow = _pad8(ein.src_bits), _pad8(eout.dst_bits)
    L = [f"// {top}: xnorvit accelerator, stitched by xnorvit.flows.stitch from {len(model.graph.node)} nodes,",
         f"// {len(edges)} streams ({sum(e.dwc for e in edges)} with a width converter), one FIFO per stream.",
         f"// s_axis: {ein.src_bits} payload bits x {ein.src_beats} beats per frame (padded to {iw});",
         f"// m_axis: {eout.dst_bits} payload bits x {eout.dst_beats} beats per frame (padded to {ow}).",
         "// Stream e<k>: producer -> [DWC] -> FIFO(depth) -> consumer; e<k>_t* is the producer side.",
         f"// {MEM_ROOT}: path prefix (ending in /) of this directory, where nodes/<node>/ hold the memory files",
         "// ($readmemh); \"\" reads them relative to the tool's working directory.",
         f"module {top} #(", f'    parameter string {MEM_ROOT} = ""', ") (", "    input  logic ap_clk,", "    input  logic ap_rst_n,",
         f"    input  logic [{iw - 1}:0] s_axis_tdata,", "    input  logic s_axis_tvalid,",
         "    output logic s_axis_tready,", f"    output logic [{ow - 1}:0] m_axis_tdata,",
         "    output logic m_axis_tvalid,", "    input  logic m_axis_tready", ");",
         "    wire rst = ~ap_rst_n;", ""]
    nodes = {n.name: n for n in model.graph.node}
    for e in edges:
        L.append(f"    // {e.name}: {e.tensor}  {e.src or 's_axis'}[{e.src_port}] -> {e.dst or 'm_axis'}[{e.dst_port}]"
                 f"  {e.src_bits}b x {e.src_beats} -> {e.dst_bits}b x {e.dst_beats}, FIFO depth {e.depth}")
        L.append(f"    logic [{e.src_bits - 1}:0] {e.name}_tdata; logic {e.name}_tvalid, {e.name}_tready;")
        L.append(f"    logic [{e.dst_bits - 1}:0] {e.name}_c_tdata; logic {e.name}_c_tvalid, {e.name}_c_tready;")
        L.append(f"    logic [{e.dst_bits - 1}:0] {e.name}_q_tdata; logic {e.name}_q_tvalid, {e.name}_q_tready;")
        if e.src is None:
            L.append(f"    assign {e.name}_tdata = s_axis_tdata[{e.src_bits - 1}:0];")
            L.append(f"    assign {e.name}_tvalid = s_axis_tvalid;")
            L.append(f"    assign s_axis_tready = {e.name}_tready;")
            if iw != e.src_bits:
                L += ["    /* verilator lint_off UNUSEDSIGNAL */",
                      f"    wire [{iw - e.src_bits - 1}:0] s_axis_pad_unused = s_axis_tdata[{iw - 1}:{e.src_bits}];",
                      "    /* verilator lint_on UNUSEDSIGNAL */"]
        else:
            pinst = _custom(nodes[e.src])
            ppad = pinst.get_outstream_width_padded(e.src_port)
            L.append("    /* verilator lint_off UNUSEDSIGNAL */")
            L.append(f"    logic [{ppad - 1}:0] {e.name}_p_tdata;  // producer's padded TDATA")
            L.append("    /* verilator lint_on UNUSEDSIGNAL */")
            L.append(f"    assign {e.name}_tdata = {e.name}_p_tdata[{e.src_bits - 1}:0];")
        if e.dwc and integer_down(e.src_bits, e.dst_bits):
            L.append(f"    stream_dwc_down #(.IBITS({e.src_bits}), .OBITS({e.dst_bits})) {e.name}_dwc (")
            L.append(f"        .clk(ap_clk), .rst(rst), .s_axis_tdata({e.name}_tdata), .s_axis_tvalid({e.name}_tvalid), "
                     f".s_axis_tready({e.name}_tready),")
            L.append(f"        .m_axis_tdata({e.name}_c_tdata), .m_axis_tvalid({e.name}_c_tvalid), "
                     f".m_axis_tready({e.name}_c_tready));")
        elif e.dwc:
            n_bits = math.lcm(e.src_bits, e.dst_bits)
            L.append(f"    vpc #(.W(1), .N({n_bits}), .PI({e.src_bits}), .PO({e.dst_bits})) {e.name}_dwc (")
            L.append(f"        .clk(ap_clk), .rst(rst), .idat({e.name}_tdata), .ivld({e.name}_tvalid), "
                     f".irdy({e.name}_tready),")
            L.append(f"        .odat({e.name}_c_tdata), .ovld({e.name}_c_tvalid), .ordy({e.name}_c_tready));")
        else:
            L.append(f"    assign {e.name}_c_tdata = {e.name}_tdata; assign {e.name}_c_tvalid = {e.name}_tvalid; "
                     f"assign {e.name}_tready = {e.name}_c_tready;")
        block = ", .BLOCK_RAM(1'b1)" if e.depth >= BLOCK_FIFO_MIN_DEPTH else ""
        L.append(f"    stream_fifo #(.W({e.dst_bits}), .DEPTH({e.depth}){block}) {e.name}_fifo (")
        L.append(f"        .clk(ap_clk), .rst(rst), .s_axis_tdata({e.name}_c_tdata), .s_axis_tvalid({e.name}_c_tvalid), "
                 f".s_axis_tready({e.name}_c_tready),")
        L.append(f"        .m_axis_tdata({e.name}_q_tdata), .m_axis_tvalid({e.name}_q_tvalid), "
                 f".m_axis_tready({e.name}_q_tready));")
        if e.dst is None:
            pad = f"{ow}'({e.name}_q_tdata)" if ow != e.dst_bits else f"{e.name}_q_tdata"
            L.append(f"    assign m_axis_tdata = {pad}; assign m_axis_tvalid = {e.name}_q_tvalid; "
                     f"assign {e.name}_q_tready = m_axis_tready;")
        if monitor:
            L += ["`ifndef SYNTHESIS",
                  f"    logic [31:0] {e.name}_occ, {e.name}_maxocc /* verilator public_flat_rd */;",
                  "    always_ff @(posedge ap_clk) begin",
                  f"        if (rst) begin {e.name}_occ <= '0; {e.name}_maxocc <= '0; end",
                  "        else begin",
                  f"            {e.name}_occ <= {e.name}_occ + 32'({e.name}_c_tvalid && {e.name}_c_tready)"
                  f" - 32'({e.name}_q_tvalid && {e.name}_q_tready);",
                  f"            if ({e.name}_occ > {e.name}_maxocc) {e.name}_maxocc <= {e.name}_occ;",
                  "        end", "    end", "`endif"]
        L.append("")
    edges_in = {(e.dst, e.dst_port): e for e in edges if e.dst is not None}
    edges_out = {(e.src, e.src_port): e for e in edges if e.src is not None}
    for n in model.graph.node:
        inst = _custom(n)
        L.append(f"    // {n.name}: {n.op_type}")
        L.append(f"    {inst.get_nodeattr('gen_top_module') or n.name}{_node_params(n)} u_{n.name} (")
        L.append(f"        {_node_ports(model, n, edges_in, edges_out)});")
        L.append("")
    L.append("endmodule")
    path = out / f"{top}.sv"
    path.write_text("\n".join(L) + "\n")
    return path


def _write_meta(st: Stitched) -> None:
    (st.out / "filelist.f").write_text("\n".join(st.rel_files) + "\n")
    meta = {"top": st.top, "top_file": st.top_file.name, "files": st.rel_files, "mem_root_parameter": MEM_ROOT,
            "in_bits": st.in_bits,
            "out_bits": st.out_bits, "in_beats": st.in_beats, "out_beats": st.out_beats,
            "edges": [asdict(e) for e in st.edges]}
    (st.out / "stitch.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_stitched(out: os.PathLike | str) -> Stitched:
    """Read back a stitched design from ``OUT/stitch.json`` (paths resolved against ``OUT``, wherever it now is).

    Raises:
        StitchError: ``OUT/stitch.json`` is missing, or the design predates
            relocatable builds (absolute paths).
    """
    out = Path(out).resolve()
    if not (out / "stitch.json").is_file():
        raise StitchError(f"{out}/stitch.json missing: not a stitched design (run `xnorvit build`)")
    meta = json.loads((out / "stitch.json").read_text())
    if any(Path(f).is_absolute() for f in meta["files"]):
        raise StitchError(f"{out} was stitched by an older xnorvit (absolute paths); run `xnorvit build` again")
    edges = [Edge(**e) for e in meta["edges"]]
    return Stitched(out, meta["top"], edges, meta["files"], meta["in_bits"], meta["out_bits"], meta["in_beats"],
                    meta["out_beats"])


def stitch(model, out: os.PathLike | str, fpgapart: str, top: str = DEFAULT_TOP, clk_ns: float = 10.0,
           depths: dict[int, int] | None = None, log: Callable[[str], None] | None = None) -> Stitched:
    """Generate every node's HDL and the top with FIFOs of ``depths`` (edge
    index -> depth; missing edges get :data:`SIZING_FRAMES` frames, the depth
    the sizing simulation starts from).

    ``model`` (a folded hardware graph, ModelWrapper or path) gets each
    node's ``code_gen_dir_ipgen``; ``out`` receives ``nodes/``, ``lib/``,
    ``<top>.sv``, ``filelist.f``, ``stitch.json`` and ``hw_stitched.onnx``
    (whose ``code_gen_dir_ipgen``/``ipgen_path``/``ip_path`` name
    ``nodes/<node>`` relative to ``out``, so it stays valid when ``out`` moves).
    """
    finn_env.setup()
    from qonnx.core.modelwrapper import ModelWrapper

    if not isinstance(model, ModelWrapper):
        model = ModelWrapper(str(model))
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    fix_threshold_types(model)
    edges = edges_of(model)
    for e in edges:
        e.depth = (depths or {}).get(e.index, max(MIN_DEPTH, SIZING_FRAMES * e.dst_beats))
    node_files = generate_nodes(model, out / "nodes", fpgapart, clk_ns, log)
    write_top(model, edges, out, top)
    gin = model.graph.input[0].name
    ein = next(e for e in edges if e.src is None and e.tensor == gin)
    eout = next(e for e in edges if e.dst is None)
    st = Stitched(out, top, edges, _file_list(node_files, out) + [f"{top}.sv"], ein.src_bits, eout.dst_bits,
                  ein.src_beats, eout.dst_beats)
    _write_meta(st)
    import copy

    saved = ModelWrapper(copy.deepcopy(model.model))
    for n in saved.graph.node:
        inst = _custom(n)
        for attr in ("code_gen_dir_ipgen", "ipgen_path", "ip_path"):
            try:
                inst.set_nodeattr(attr, f"nodes/{n.name}")
            except AttributeError:
                pass
    saved.save(str(out / "hw_stitched.onnx"))
    return st


def resize(model, st: Stitched, depths: dict[int, int]) -> Stitched:
    """Rewrite ``st``'s top with new FIFO depths (edge index -> depth)."""
    for e in st.edges:
        if e.index in depths:
            e.depth = int(depths[e.index])
    write_top(model, st.edges, st.out, st.top)
    _write_meta(st)
    return st


# ----------------------------------------------------------------- stream packing
# One implementation for verification and the PYNQ driver (flows/driver.py,
# copied beside the bitstream): FINN packing, LSB-first lanes.
from xnorvit.flows.driver import pack_beats, unpack_beats  # noqa: E402
