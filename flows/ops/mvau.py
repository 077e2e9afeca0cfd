"""RTL backends of FINN's ``MVAU`` on xnorvit's own kernels.

finn-plus 1.6.1 has an XNOR (``binaryXnorMode``) MVAU only in HLS, and its
``MVAU_rtl`` is DSP based and refuses binary inputs. The two classes here are
``RTLBackend`` specializations of FINN's abstract
:class:`finn.custom_op.fpgadataflow.matrixvectoractivation.MVAU` (same
attributes, shapes, folding and ``execute_node`` semantics, so FINN's folding,
data-layout and estimation machinery applies unchanged):

``MVAU_xnor_rtl`` (``rtl/mvau_xnor.sv``)
    ``binaryXnorMode=1`` nodes: ``acc = popcount(XNOR(x, w))`` over ``MW``
    bits (qonnx ``xnorpopcountmatmul``), then either the raw accumulator
    (``noActivation=1``) or ``count(acc >= t) + ActVal`` (MultiThreshold).
``MVAU_int_rtl`` (``rtl/mvau_int.sv``)
    integer MVAUs (the 8-bit patch-embedding convolutions after
    ``ConvolutionInputGenerator``, and the classifier): ``acc = x @ W`` with
    ``inputDataType`` x ``weightDataType`` integers (bipolar weights as
    add/subtract), same output options.

Streams follow FINN's MVAU: input beat = SIMD elements LSB-first, output beat
= PE lanes of ``outputDataType`` bits LSB-first; cycles per frame =
``prod(numInputVectors) * (MH/PE) * (MW/SIMD)`` (FINN ``get_exp_cycles``, the
RTL's measured schedule, see ``benchmarks/results/kernels.json``).

The generated top module (``generate_hdl``) is named after the node and has
FINN's port names (``ap_clk``, ``ap_rst_n``, ``in0_V_*``, ``out0_V_*``); it
instantiates the kernel and adds ``ActVal`` to the threshold count (the
kernel's count is unsigned, ``ActVal`` makes it e.g. an INT8 code) or
sign-extends the raw accumulator to ``outputDataType``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xnorvit.flows import finn_env

finn_env.setup()

from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU as FinnMVAU  # noqa: E402
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend  # noqa: E402
from qonnx.core.datatype import DataType  # noqa: E402

from xnorvit.flows import mvau_rtl  # noqa: E402

__all__ = ["MVAU", "mvau_reference", "MVAU_xnor_rtl", "MVAU_int_rtl", "RTL_DIR", "RTLSIM_MESSAGE"]

#: the repository's RTL kernel folder
RTL_DIR = Path(__file__).resolve().parents[2] / "rtl"

#: message of the NotImplementedError raised for ``exec_mode="rtlsim"``
RTLSIM_MESSAGE = "rtlsim of xnorvit ops is done by cocotb (xnorvit verify), not by FINN's XSI"

_MVAU_SOURCES = ("mvau_addtree.sv", "mvau_rom.sv", "mvau_core.sv")


def _dt(name: str) -> DataType:
    return DataType[name]


def mvau_reference(x: np.ndarray, weights: np.ndarray, thresholds: np.ndarray | None = None, act_val: int = 0,
                   xnor: bool = False) -> np.ndarray:
    """Integer semantics of ``mvau_xnor``/``mvau_int`` (and FINN's MVAU).

    Args:
        x: ``(..., MW)`` integers (bits {0,1} for ``xnor``).
        weights: ``(MW, MH)`` integers (bits for ``xnor``).
        thresholds: ``(MH or 1, N)`` or None (raw accumulator).
        act_val: added to the threshold count (FINN ``ActVal``).
        xnor: accumulate ``popcount(XNOR(x, w))`` instead of ``x @ W``.

    Returns:
        ``(..., MH)`` int64: ``acc``, or ``#{i : acc >= T[c, i]} + act_val``
        per channel ``c`` (channels on the last axis).
    """
    x = np.rint(np.asarray(x, dtype=np.float64)).astype(np.int64)
    w = np.rint(np.asarray(weights, dtype=np.float64)).astype(np.int64)
    if xnor:
        acc = x @ w + (1 - x) @ (1 - w)
    else:
        acc = x @ w
    if thresholds is None:
        return acc
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (w.shape[1], np.asarray(thresholds).shape[1]))
    return (acc[..., :, None] >= t).sum(-1) + int(act_val)


class MVAU(FinnMVAU):
    """FINN's abstract MVAU (same attributes, shapes, folding, estimates),
    registered in domain ``xnorvit.flows.ops`` with an ``execute_node`` that
    thresholds along the channel (last) axis for any number of vector axes:
    finn-plus 1.6.1's thresholds a 3-D ``(1, T, MH)`` result along axis 1
    (tokens) and fails for the token MVAUs of a ViT.
    """

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = context[node.input[0]].reshape(self.get_normal_input_shape())
        w = context[node.input[1]]
        thr = None if self.get_nodeattr("noActivation") else context[node.input[2]]
        idt, wdt = self.get_nodeattr("inputDataType"), self.get_nodeattr("weightDataType")
        xnor = bool(self.get_nodeattr("binaryXnorMode"))
        if not xnor and idt == "BIPOLAR" and wdt == "BIPOLAR":
            x, w, xnor = (x + 1) / 2, (w + 1) / 2, True
        if self.get_nodeattr("outputDataType") == "BIPOLAR" and thr is not None:
            y = 2 * mvau_reference(x, w, thr, 0, xnor) - 1  # FINN: out_scale 2, out_bias -1
        else:
            y = mvau_reference(x, w, thr, self.get_nodeattr("ActVal"), xnor)
        context[node.output[0]] = y.astype(np.float32).reshape(context[node.output[0]].shape)


class _MVAUKernel(MVAU, RTLBackend):
    """Shared RTL backend of the two MVAU kernels (not registered itself)."""

    #: RTL module instantiated by the wrapper
    kernel = ""
    #: wrapper parameter naming the directory of the memory files (set by the stitched top)
    mem_dir_param = "MEM_DIR"

    def get_nodeattr_types(self):
        attrs = MVAU.get_nodeattr_types(self)
        attrs.update(RTLBackend.get_nodeattr_types(self))
        return attrs

    # -- execution ---------------------------------------------------------
    def execute_node(self, context, graph):
        """FINN's MVAU python execution (exec_mode ``""``/``python``/``cppsim``).

        Raises:
            NotImplementedError: ``exec_mode="rtlsim"`` (see :data:`RTLSIM_MESSAGE`).
        """
        if self.get_nodeattr("exec_mode") == "rtlsim":
            raise NotImplementedError(RTLSIM_MESSAGE)
        MVAU.execute_node(self, context, graph)

    # -- kernel parameters -------------------------------------------------
    def n_thresholds(self, model) -> int:
        """Thresholds per channel (0 for ``noActivation=1``)."""
        if self.get_nodeattr("noActivation"):
            return 0
        return int(model.get_initializer(self.onnx_node.input[2]).shape[1])

    def acc_bits(self) -> int:
        """Accumulator width of the kernel (signed bits)."""
        raise NotImplementedError

    def count_bits(self, model) -> int:
        """Bits of one kernel output lane (count or accumulator)."""
        n = self.n_thresholds(model)
        return mvau_rtl.threshold_count_width(n) if n else self.acc_bits()

    def check_kernel(self, model) -> None:
        """Raise ``ValueError`` naming the node if the kernel cannot compute it."""
        name = self.onnx_node.name
        mw, mh, pe, simd = (self.get_nodeattr(k) for k in ("MW", "MH", "PE", "SIMD"))
        try:
            mvau_rtl.check_folding(mw, mh, pe, simd)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        odt = _dt(self.get_nodeattr("outputDataType"))
        if self.get_nodeattr("noActivation"):
            if odt.bitwidth() < self.acc_bits() - (0 if odt.signed() else 1) and not self._acc_range_fits(model, odt):
                raise ValueError(f"{name}: outputDataType {odt.name} cannot hold the {self.acc_bits()}-bit accumulator")
        elif self.count_bits(model) > odt.bitwidth():
            raise ValueError(f"{name}: {self.n_thresholds(model)} thresholds do not fit outputDataType {odt.name}")

    def kernel_parameters(self, model, weights_file: str, thresholds_file: str) -> dict:
        raise NotImplementedError

    def _acc_range_fits(self, model, odt) -> bool:
        """Whether every accumulator value the actual weights can produce fits
        ``odt`` (FINN's weight-aware accumulator minimization gives such
        types); the wrapper then keeps the accumulator's low bits, exact in
        two's complement. Integer (non-XNOR) mode only."""
        if self.get_nodeattr("binaryXnorMode"):
            return False
        w = np.asarray(model.get_initializer(self.onnx_node.input[1]), dtype=np.float64)
        idt = _dt(self.get_nodeattr("inputDataType"))
        lo_x, hi_x = idt.min(), idt.max()
        lo = np.minimum(w * lo_x, w * hi_x).sum(axis=0)
        hi = np.maximum(w * lo_x, w * hi_x).sum(axis=0)
        return bool(lo.min() >= odt.min() and hi.max() <= odt.max())

    # -- code generation ---------------------------------------------------
    def _weights(self, model) -> np.ndarray:
        return np.asarray(model.get_initializer(self.onnx_node.input[1]))

    def _thresholds(self, model) -> np.ndarray:
        t = np.asarray(model.get_initializer(self.onnx_node.input[2]), dtype=np.float64)
        return np.broadcast_to(t, (self.get_nodeattr("MH"), t.shape[1]))

    def generate_hdl(self, model, fpgapart, clk):
        """Write ``<node>.sv`` (top wrapper) and its ``.hex`` memories into
        ``code_gen_dir_ipgen`` (created if unset: ``$FINN_BUILD_DIR/code_gen_ipgen_<node>``).

        Raises:
            ValueError: the folding does not divide MW/MH, or the output type
                cannot hold the kernel's output.
        """
        self.check_kernel(model)
        name = self.onnx_node.name
        out_dir = self.get_nodeattr("code_gen_dir_ipgen")
        if not out_dir:
            out_dir = str(Path(os.environ["FINN_BUILD_DIR"]) / f"code_gen_ipgen_{name}")
            self.set_nodeattr("code_gen_dir_ipgen", out_dir)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        wfile = out / f"{name}_weights.hex"  # named in the HDL as MEM_DIR + file name (relocatable)
        w_bits = 1 if self.kernel == "mvau_xnor" else self.weight_bits()
        w = self._weights(model)
        mvau_rtl.write_weights(wfile, w, pe, simd, w_bits)
        tfile = ""
        if self.n_thresholds(model):
            tfile = f"{name}_thresholds.hex"
            mvau_rtl.write_thresholds(out / tfile, self._thresholds(model), pe, self.acc_bits())
        params = self.kernel_parameters(model, wfile.name, tfile)
        (out / f"{name}.sv").write_text(self._wrapper(model, params))
        self.set_nodeattr("gen_top_module", name)

    def _wrapper(self, model, params: dict) -> str:
        name = self.onnx_node.name
        pe = self.get_nodeattr("PE")
        iw, ow = self.get_instream_width(), self.get_outstream_width()
        iwp, owp = self.get_instream_width_padded(), self.get_outstream_width_padded()
        cw = self.count_bits(model)
        odt = _dt(self.get_nodeattr("outputDataType"))
        ob = odt.bitwidth()
        if self.n_thresholds(model):
            act = int(self.get_nodeattr("ActVal"))
            lane = f"{ob}'(core_tdata[pe*{cw} +: {cw}]) + {ob}'({act % (1 << ob)})"
            what = f"threshold count + ActVal ({act})"
        elif ob >= cw:
            lane = f"{ob}'($signed(core_tdata[pe*{cw} +: {cw}]))"
            what = "accumulator, sign-extended"
        else:
            lane = f"core_tdata[pe*{cw} +: {ob}]"
            what = "accumulator (non-negative), truncated"

        def fmt(k, v):
            if k in ("WEIGHTS_FILE", "THRESHOLDS_FILE") and v:
                return f'{{{self.mem_dir_param}, "{v}"}}'
            return f'"{v}"' if isinstance(v, str) else str(int(v))

        plist = ",\n        ".join(f".{k}({fmt(k, v)})" for k, v in params.items())
        return f"""// Generated by xnorvit.flows.ops.mvau for FINN node {name} ({type(self).__name__}).
// Input: {iw} bits/beat (padded {iwp}), output: {pe} lanes x {ob} bits ({what}).
// {self.mem_dir_param}: path prefix (ending in /) of the directory holding this node's .hex memories;
// "" reads them relative to the tool's working directory (the stitched top passes its MEM_ROOT + nodes/{name}/).
module {name} #(
    parameter string {self.mem_dir_param} = ""
) (
    input  logic             ap_clk,
    input  logic             ap_rst_n,
    input  logic [{iwp}-1:0] in0_V_TDATA,
    input  logic             in0_V_TVALID,
    output logic             in0_V_TREADY,
    output logic [{owp}-1:0] out0_V_TDATA,
    output logic             out0_V_TVALID,
    input  logic             out0_V_TREADY
);
    logic [{pe * cw}-1:0] core_tdata;
    {self.kernel} #(
        {plist}
    ) core (
        .clk(ap_clk), .rst(!ap_rst_n),
        .s_axis_tdata(in0_V_TDATA[{iw}-1:0]), .s_axis_tvalid(in0_V_TVALID), .s_axis_tready(in0_V_TREADY),
        .m_axis_tdata(core_tdata), .m_axis_tvalid(out0_V_TVALID), .m_axis_tready(out0_V_TREADY)
    );
    logic [{ow}-1:0] lanes;
    for (genvar pe = 0; pe < {pe}; pe++) begin : g_lane
        assign lanes[pe*{ob} +: {ob}] = {lane};
    end
    assign out0_V_TDATA = {owp}'(lanes);
endmodule
"""

    def get_rtl_file_list(self, abspath=False):
        """Kernel sources (repository ``rtl/``) and the generated wrapper."""
        name = self.onnx_node.name
        files = [RTL_DIR / s for s in _MVAU_SOURCES] + [RTL_DIR / f"{self.kernel}.sv"]
        gen = Path(self.get_nodeattr("code_gen_dir_ipgen")) / f"{name}.sv"
        return [str(p) if abspath else p.name for p in files + [gen]]

    def code_generation_ipi(self):
        """Vivado IPI commands: add the sources and create the module cell
        (untested here: no Vivado)."""
        name = self.onnx_node.name
        files = " ".join(self.get_rtl_file_list(abspath=True))
        return [f"add_files -norecurse {files}", f"create_bd_cell -type module -reference {name} {name}"]

    def weight_bits(self) -> int:
        return _dt(self.get_nodeattr("weightDataType")).bitwidth()

    def ram_style(self) -> str:
        """Kernel ``RAM_STYLE`` of the weights (FINN's ``ultra`` maps to ``block``: no URAM kernel)."""
        style = self.get_nodeattr("ram_style")
        return "block" if style == "ultra" else style

    # -- estimates -----------------------------------------------------------
    def lut_estimation(self, fpgapart=None):
        from xnorvit.flows.estimates import mvau_luts

        return mvau_luts(self)

    def bram_estimation(self, fpgapart=None):
        from xnorvit.flows.estimates import mvau_bram18

        return mvau_bram18(self)

    def ff_estimation(self):
        from xnorvit.flows.estimates import mvau_ffs

        return mvau_ffs(self)

    def uram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        from xnorvit.flows.estimates import mvau_dsps

        return mvau_dsps(self)


class MVAU_xnor_rtl(_MVAUKernel):
    """``binaryXnorMode`` MVAU on ``rtl/mvau_xnor.sv`` (BIPOLAR=0: FINN's
    popcount accumulator, ``acc in [0, MW]``).

    Shapes (FINN MVAU): input ``(*numInputVectors, MW)`` bits, weights
    ``(MW, MH)`` bits, thresholds ``(MH or 1, N)``, output
    ``(*numInputVectors, MH)`` of ``outputDataType``.
    """

    kernel = "mvau_xnor"

    def acc_bits(self) -> int:
        return mvau_rtl.xnor_acc_width(self.get_nodeattr("MW"))

    def check_kernel(self, model) -> None:
        if not self.get_nodeattr("binaryXnorMode"):
            raise ValueError(f"{self.onnx_node.name}: MVAU_xnor_rtl needs binaryXnorMode=1")
        super().check_kernel(model)

    def kernel_parameters(self, model, weights_file, thresholds_file):
        return {"MW": self.get_nodeattr("MW"), "MH": self.get_nodeattr("MH"), "PE": self.get_nodeattr("PE"),
                "SIMD": self.get_nodeattr("SIMD"), "BIPOLAR": 0, "N_THRESH": self.n_thresholds(model),
                "WEIGHTS_FILE": weights_file, "THRESHOLDS_FILE": thresholds_file,
                "RAM_STYLE": self.ram_style()}


class MVAU_int_rtl(_MVAUKernel):
    """Integer MVAU on ``rtl/mvau_int.sv``: ``acc = x @ W`` exactly, with
    ``inputDataType`` (signed or unsigned, n bits) activations and
    ``weightDataType`` weights (BIPOLAR or n-bit integers).

    Shapes as FINN's MVAU (see :class:`MVAU_xnor_rtl`).
    """

    kernel = "mvau_int"

    def weight_bits(self) -> int:
        wdt = _dt(self.get_nodeattr("weightDataType"))
        return 1 if wdt == DataType["BIPOLAR"] else wdt.bitwidth()

    def acc_bits(self) -> int:
        idt = _dt(self.get_nodeattr("inputDataType"))
        return mvau_rtl.int_acc_width(self.get_nodeattr("MW"), idt.bitwidth(), self.weight_bits())

    def check_kernel(self, model) -> None:
        name = self.onnx_node.name
        if self.get_nodeattr("binaryXnorMode"):
            raise ValueError(f"{name}: MVAU_int_rtl cannot run binaryXnorMode (use MVAU_xnor_rtl)")
        idt = _dt(self.get_nodeattr("inputDataType"))
        if not idt.is_integer() or idt == DataType["BIPOLAR"]:
            raise ValueError(f"{name}: MVAU_int_rtl needs integer inputs, got {idt.name}")
        super().check_kernel(model)

    def use_dsp(self) -> bool:
        """Multiplier lanes on DSP48s (FINN ``resType``: ``dsp``; ``auto`` for
        activations wider than 4 bits) or as shift-add in LUTs (``lut``;
        ``auto`` for activations of at most 4 bits). Bipolar weights never
        multiply."""
        if self.weight_bits() == 1:
            return False
        res = self.get_nodeattr("resType")
        if res == "auto":
            return _dt(self.get_nodeattr("inputDataType")).bitwidth() > 4
        return res == "dsp"

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        # two channels' products per DSP multiplier (rtl/mvau_core.sv DSP_PACK)
        attrs["dspPack"] = ("i", False, 0, {0, 1})
        return attrs

    def can_pack(self) -> bool:
        """DSP packing is possible: multiplier lanes, even PE, and
        ``IN_W + 2*W_W + 3 <= 25`` (both products in one DSP48E1 A port)."""
        in_bits = _dt(self.get_nodeattr("inputDataType")).bitwidth()
        return (self.weight_bits() > 1 and self.get_nodeattr("PE") % 2 == 0
                and in_bits + 2 * self.weight_bits() + 3 <= 25)

    def dsp_pack(self) -> bool:
        """Products of channel pairs share a DSP (``dspPack=1`` on DSP lanes where :meth:`can_pack`)."""
        return bool(self.get_nodeattr("dspPack")) and self.use_dsp() and self.can_pack()

    def _weights(self, model) -> np.ndarray:
        w = super()._weights(model)
        if _dt(self.get_nodeattr("weightDataType")) == DataType["BIPOLAR"]:
            return (w > 0).astype(np.int64)
        return w

    def kernel_parameters(self, model, weights_file, thresholds_file):
        idt = _dt(self.get_nodeattr("inputDataType"))
        wdt = _dt(self.get_nodeattr("weightDataType"))
        return {"MW": self.get_nodeattr("MW"), "MH": self.get_nodeattr("MH"), "PE": self.get_nodeattr("PE"),
                "SIMD": self.get_nodeattr("SIMD"), "IN_W": idt.bitwidth(), "IN_SIGNED": int(idt.signed()),
                "W_W": self.weight_bits(), "W_SIGNED": int(wdt.signed() and wdt != DataType["BIPOLAR"]),
                "USE_DSP": int(self.use_dsp()), "DSP_PACK": int(self.dsp_pack()),
                "N_THRESH": self.n_thresholds(model), "WEIGHTS_FILE": weights_file,
                "THRESHOLDS_FILE": thresholds_file, "RAM_STYLE": self.ram_style()}
