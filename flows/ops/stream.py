"""Shared pieces of xnorvit's token-stream hardware ops (FINN ``HWCustomOp``s).

A token stream is a channels-last tensor ``(1, T, C)`` (FINN's NWC layout):
``numInputVectors = [1, T]`` vectors of ``NumChannels = C`` lanes. With
``PE`` lanes per beat a vector takes ``C / PE`` beats, so the folded shape is
``(1, T, C/PE, PE)`` and a beat is ``PE * bits`` wide, lane ``l`` at
``tdata[l*bits +: bits]`` (LSB-first, FINN's packing). This follows
finn-plus's ``finn/custom_op/fpgadataflow/duplicatestreams.py`` and
``thresholding.py`` (attribute names, shape and width conventions).

Execution: every op's ``execute_node`` is the exact integer semantics of its
RTL kernel in numpy (``exec_mode`` ``""``, ``"python"`` or ``"cppsim"``).
``exec_mode="rtlsim"`` raises :class:`NotImplementedError`: RTL simulation
of xnorvit ops runs under cocotb (``xnorvit verify``), not FINN's XSI.
"""

from __future__ import annotations

import math

import numpy as np
from qonnx.core.datatype import DataType

from xnorvit.flows import finn_env

finn_env.setup()
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp  # noqa: E402

__all__ = [
    "RTLSIM_MESSAGE",
    "TokenStreamOp",
    "TokenReduceOp",
    "ConstInputOp",
    "clog2",
    "check_rtlsim",
    "check_integers",
    "saturate",
    "signed_range",
    "bram18_count",
]

#: Message of the NotImplementedError raised for ``exec_mode="rtlsim"``.
RTLSIM_MESSAGE = "rtlsim of xnorvit ops is done by cocotb: xnorvit verify"

#: ``exec_mode`` values accepted by xnorvit ops (FINN's plus ``"python"``).
EXEC_MODES = {"", "python", "cppsim", "rtlsim"}


def clog2(n: int) -> int:
    """``$clog2(n)`` of SystemVerilog (0 for n <= 1)."""
    return max(0, int(n) - 1).bit_length()


def signed_range(bits: int) -> tuple[int, int]:
    """``(-2^(bits-1), 2^(bits-1) - 1)``."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    """Clamp integers to the signed range of ``bits`` bits (the RTL's ``sat_W``)."""
    lo, hi = signed_range(bits)
    return np.clip(x, lo, hi)


def check_rtlsim(op) -> None:
    """Raise :class:`NotImplementedError` if ``op`` is set to ``exec_mode="rtlsim"``."""
    if op.get_nodeattr("exec_mode") == "rtlsim":
        raise NotImplementedError(f"{op.onnx_node.name}: {RTLSIM_MESSAGE}")


def check_integers(op, name: str, x: np.ndarray, dt) -> np.ndarray:
    """``x`` as int64 after checking every value is an integer allowed by FINN
    DataType ``dt`` (what the RTL's ``bits``-wide lanes can carry).

    Raises:
        ValueError: a non-integer or out-of-range value (names the node and input).
    """
    x = np.asarray(x)
    r = np.rint(x)
    if not np.array_equal(r, x):
        raise ValueError(f"{op.onnx_node.name} ({op.onnx_node.op_type}): input {name} holds non-integer values")
    r = r.astype(np.int64)
    if r.size and (r.min() < dt.min() or r.max() > dt.max()):
        raise ValueError(f"{op.onnx_node.name} ({op.onnx_node.op_type}): input {name} has values in "
                         f"[{r.min()}, {r.max()}] outside {dt.name}")
    return r


def bram18_count(depth: int, width: int) -> int:
    """RAMB18 primitives for a ``depth x width`` memory, best aspect ratio of
    the 7-series RAMB18 (16Kx1, 8Kx2, 4Kx4, 2Kx9, 1Kx18, 512x36)."""
    if depth <= 0 or width <= 0:
        return 0
    shapes = [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)]
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in shapes)


class TokenStreamOp(HWCustomOp):
    """Base of xnorvit's single-output token-stream ops.

    Attributes (FINN names): ``NumChannels`` C, ``PE`` lanes per beat (divides
    C), ``numInputVectors`` (e.g. ``[1, T]``), ``inputDataType``,
    ``outputDataType`` (FINN DataType names).

    Shapes: normal input ``numInputVectors + [C]``, folded
    ``numInputVectors + [C/PE, PE]``; input stream ``PE * bits(inputDataType)``
    bits. Subclasses override the output side where it differs.

    Errors: a ``PE`` that does not divide ``NumChannels`` raises
    :class:`ValueError` naming the node (from every folded-shape / width /
    cycle query and from :meth:`verify_node`'s list).
    """

    def read_input(self, context, ind: int = 0) -> np.ndarray:
        """Input ``ind`` from the execution context as int64, checked to be
        integers of the input datatype in the normal input shape.

        Raises:
            ValueError: naming the node and input (non-integer, out of range, wrong shape).
        """
        name = self.onnx_node.input[ind]
        x = check_integers(self, name, context[name], self.get_input_datatype(ind))
        shape = tuple(self.get_normal_input_shape(ind))
        if tuple(x.shape) != shape:
            raise ValueError(f"{self.onnx_node.name} ({self.onnx_node.op_type}): input {name} has shape "
                             f"{x.shape}, expected {shape}")
        return x

    def get_nodeattr_types(self):
        attrs = {
            "NumChannels": ("i", True, 0),
            "PE": ("i", False, 1),
            "numInputVectors": ("ints", False, [1]),
            "inputDataType": ("s", True, ""),
            "outputDataType": ("s", True, ""),
        }
        attrs.update(super().get_nodeattr_types())
        attrs["exec_mode"] = ("s", False, "", EXEC_MODES)
        return attrs

    # -- folding -------------------------------------------------------
    def _where(self) -> str:
        return f"{self.onnx_node.name} ({self.onnx_node.op_type})"

    def get_folds(self) -> int:
        """Beats per vector ``C / PE``.

        Raises:
            ValueError: ``PE < 1`` or ``PE`` does not divide ``NumChannels``.
        """
        c, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        if pe < 1 or c < 1 or c % pe:
            raise ValueError(f"{self._where()}: PE={pe} does not divide NumChannels={c}")
        return c // pe

    def num_vectors(self) -> int:
        """Number of vectors per frame (product of ``numInputVectors``)."""
        return int(np.prod(self.get_nodeattr("numInputVectors")))

    # -- shapes --------------------------------------------------------
    def get_normal_input_shape(self, ind=0):
        return tuple(list(self.get_nodeattr("numInputVectors")) + [self.get_nodeattr("NumChannels")])

    def get_folded_input_shape(self, ind=0):
        return tuple(list(self.get_nodeattr("numInputVectors")) + [self.get_folds(), self.get_nodeattr("PE")])

    def get_normal_output_shape(self, ind=0):
        return self.get_normal_input_shape()

    def get_folded_output_shape(self, ind=0):
        return self.get_folded_input_shape()

    # -- datatypes / widths --------------------------------------------
    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind=0):
        return DataType[self.get_nodeattr("outputDataType")]

    def get_instream_width(self, ind=0):
        self.get_folds()
        return self.get_nodeattr("PE") * self.get_input_datatype(ind).bitwidth()

    def get_outstream_width(self, ind=0):
        self.get_folds()
        return self.get_nodeattr("PE") * self.get_output_datatype(ind).bitwidth()

    def get_number_output_values(self):
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def get_exp_cycles(self):
        """Cycles per frame: one beat per cycle, ``prod(numInputVectors) * C / PE``."""
        return self.num_vectors() * self.get_folds()

    def _set_output_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], self.get_output_datatype())

    def _check_input_datatype(self, model, ind: int):
        """The tensor annotation of input ``ind`` must be an integer type whose
        range fits ``inputDataType`` (what the RTL lanes carry).

        Raises:
            ValueError: it does not (names node, input and both types).
        """
        name = self.onnx_node.input[ind]
        have = model.get_tensor_datatype(name)
        want = self.get_input_datatype(ind)
        if not (have.is_integer() and have.min() >= want.min() and have.max() <= want.max()):
            raise ValueError(f"{self._where()}: input {name} is {have.name}, "
                             f"which does not fit the kernel's {want.name} lanes")

    def verify_node(self):
        info = []
        for a in ("NumChannels", "inputDataType", "outputDataType"):
            try:
                self.get_nodeattr(a)
            except Exception:  # noqa: BLE001 - qonnx raises a bare Exception
                info.append(f"attribute {a} missing")
        try:
            self.get_folds()
        except ValueError as exc:
            info.append(str(exc))
        return info

    def ff_estimation(self, fpgapart=None) -> int:
        """Flip-flops (not part of FINN's interface; used by xnorvit's estimates)."""
        return 0


class TokenReduceOp(TokenStreamOp):
    """A token-stream op whose frame output is one ``(1, C)`` vector (the
    token axis reduced: global pooling, CLS selection). Output shapes
    ``numInputVectors[:-1] + [C]``, folded ``... + [C/PE, PE]``."""

    def tokens(self) -> int:
        """T, the tokens per input frame."""
        return int(self.get_nodeattr("numInputVectors")[-1])

    def get_normal_output_shape(self, ind=0):
        return tuple(list(self.get_nodeattr("numInputVectors"))[:-1] + [self.get_nodeattr("NumChannels")])

    def get_folded_output_shape(self, ind=0):
        return tuple(list(self.get_nodeattr("numInputVectors"))[:-1] + [self.get_folds(), self.get_nodeattr("PE")])


class ConstInputOp(TokenStreamOp):
    """A token-stream op with a constant second input (an initializer, not a
    stream, as finn-plus's ``thresholding.py`` treats its thresholds): its
    normal and folded shape is :meth:`const_input_shape`, its stream width 0
    (so FINN makes no interface for it)."""

    def tokens(self) -> int:
        """T, the tokens per input frame."""
        return int(self.get_nodeattr("numInputVectors")[-1])

    def const_input_shape(self) -> tuple:
        """Shape of input 1 (subclasses)."""
        raise NotImplementedError

    def get_normal_input_shape(self, ind=0):
        if ind == 1:
            return self.const_input_shape()
        return super().get_normal_input_shape()

    def get_folded_input_shape(self, ind=0):
        if ind == 1:
            return self.const_input_shape()
        return super().get_folded_input_shape()

    def get_instream_width(self, ind=0):
        if ind == 1:
            return 0
        return super().get_instream_width()
