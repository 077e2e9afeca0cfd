"""Quantizers and binarizers of xnorvit, on Brevitas 0.13.4.

Quantizer configurations follow the style of
``brevitas_examples/bnn_pynq/models/common.py`` (the configuration FINN's binary
flow is known to accept): CONST bit widths, narrow range for signed weights,
bit width 1 -> ``QuantType.BINARY`` (exported as QONNX ``BipolarQuant``).

Encodings (see ../shared/DESIGN.md): a binary activation is bipolar, value
-1 <-> bit 0, +1 <-> bit 1; ``sign(0) = +1`` (Brevitas ``binary_sign`` and
QONNX ``BipolarQuant`` agree, and so does a FINN MultiThreshold ``x >= t``).
"""

from __future__ import annotations

import math

import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.quant import Int8ActPerTensorFloat
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from brevitas_examples.bnn_pynq.models.common import CommonQuant
from torch import nn

import brevitas.nn as qnn

__all__ = [
    "BinaryWeightQuant",
    "BinaryActQuant",
    "InputQuant",
    "Int8WeightPerChannel",
    "Int8WeightPerTensor",
    "ResidualQuant",
    "approx_sign",
    "bipolar_sign",
    "SignApproxGrad",
    "SignClippedSTE",
    "BinaryAct",
    "softmax_aware_mask",
    "sab_threshold",
]


class _Common(CommonQuant):
    """Shared base: CONST bit width, FP scale, round-half-even, zero point 0."""


class BinaryWeightQuant(_Common, WeightQuantSolver):
    """1-bit weights ``sign(W)`` in {-1, +1} with a unit scale.

    The per-output-channel scale ``s_o`` (XNOR-Net's ``mean|W_o|`` or BiViT's
    learnable scale) is applied *after* the matrix product by
    :class:`~xnorvit.model.layers.BinaryLinear`: ``y = s_o * (x_b . sign(W_o))``.
    The product of two bipolar tensors is then an exact integer in float32,
    so PyTorch, QONNX and the hardware agree on every accumulator (a scaled
    ``s_o * sign(W)`` weight would sum ``+-s_o`` terms with rounding, and
    resolve ``acc == 0`` ties by the summation order). Gradients reach the
    latent weights through a straight-through estimator clipped to
    ``|W| <= 1`` (Brevitas ``ClampedBinaryQuant``).
    """

    bit_width = 1
    scaling_const = 1.0


class BinaryActQuant(_Common, ActQuantSolver):
    """Bipolar activation quantizer: ``sign(x)`` in {-1, +1}, scale 1."""

    bit_width = 1
    min_val = -1.0
    max_val = 1.0
    scaling_const = 1.0


class InputQuant(_Common, ActQuantSolver):
    """8-bit unsigned input: images in [0, 1] on the grid ``k / 255``.

    A uint8 image ``u`` fed as ``u / 255`` is reproduced exactly
    (``round(u / 255 * 255) = u``), so the accelerator's input is the raw
    uint8 pixel.
    """

    bit_width = 8
    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 1.0
    scaling_const = 1.0


class Int8WeightPerChannel(_Common, WeightQuantSolver):
    """8-bit signed narrow-range weights, per-output-channel max scaling."""

    bit_width = 8
    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.MAX
    scaling_per_output_channel = True


class Int8WeightPerTensor(Int8WeightPerChannel):
    """8-bit signed narrow-range weights, one scale per tensor (classifier:
    a shared scale keeps the argmax of the integer accumulator equal to the
    argmax of the logits)."""

    scaling_per_output_channel = False


class ResidualQuant(Int8ActPerTensorFloat):
    """8-bit signed quantizer of the residual stream, learned per-tensor scale.

    One instance is shared by every residual add of a model (both operands and
    the sum), so each add is an integer add with saturation.
    """


def approx_sign(x: torch.Tensor) -> torch.Tensor:
    """Bi-Real Net's ApproxSign: a piecewise quadratic whose gradient is
    ``2 + 2x`` on [-1, 0), ``2 - 2x`` on [0, 1) and 0 elsewhere.

    Liu et al., "Bi-Real Net", ECCV 2018, Eq. 3. :class:`SignApproxGrad` uses
    its derivative; this function documents (and tests check) the shape.
    """
    xc = x.clamp(-1.0, 1.0)
    return torch.where(xc < 0, 2 * xc + xc * xc, 2 * xc - xc * xc)


def bipolar_sign(x: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``x >= 0``, else ``-1`` (Brevitas ``binary_sign``, QONNX
    ``BipolarQuant`` and FINN's ``x >= 0`` threshold agree on ``sign(0) = +1``)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class SignApproxGrad(torch.autograd.Function):
    """``bipolar_sign(x)`` forward, ApproxSign gradient
    ``max(0, 2 - 2|x|)`` backward (Bi-Real Net). Training-time fast path of
    :class:`BinaryAct`; values equal the Brevitas quantizer's."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return bipolar_sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2.0 - 2.0 * x.abs()).clamp_min(0.0)


class SignClippedSTE(torch.autograd.Function):
    """``bipolar_sign(w)`` forward, straight-through gradient clipped to
    ``|w| <= 1`` backward (BNN weight STE, as Brevitas ``ClampedBinaryQuant``
    with unit scale). Training-time fast path of binary weights."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return bipolar_sign(w)

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1.0).to(grad.dtype)


class BinaryAct(nn.Module):
    """Binary activation ``sign(x - beta)`` with a learnable per-channel
    threshold ``beta`` (ReActNet's RSign) and Bi-Real Net's ApproxSign gradient.

    Eval and export: Brevitas ``QuantIdentity`` with :class:`BinaryActQuant`
    applied to ``x - beta``, so the exported QONNX is
    ``Sub(beta) -> BipolarQuant``. Training: :class:`SignApproxGrad` (the same
    values, a cheaper graph, the ApproxSign gradient).

    Args:
        channels: size of the channel axis (last axis of the input).

    Shapes: input ``(..., channels)`` float; output same shape, values in
    {-1.0, +1.0}.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(channels))
        self.quant = qnn.QuantIdentity(act_quant=BinaryActQuant, return_quant_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - self.beta
        if self.training:
            return SignApproxGrad.apply(x)
        return self.quant(x)


def sab_threshold(head_dim: int, c: float = math.log(4.0)) -> int:
    """Integer threshold of BiViT's softmax-aware binarization.

    With XNOR scores ``S = q_b . k_b`` (integers) and attention logits
    ``S / sqrt(head_dim)``, the rule ``p >= exp(-c) * rowmax(p)`` is
    ``S >= rowmax(S) - c * sqrt(head_dim)``; since ``S - rowmax(S)`` is an
    integer this equals ``S >= rowmax(S) - floor(c * sqrt(head_dim))``.

    Returns:
        ``floor(c * sqrt(head_dim))`` (int, >= 0). ``c = ln 4`` gives BiViT's
        ``p >= 0.25 * max(p)``.
    """
    return int(math.floor(c * math.sqrt(head_dim) + 1e-9))


def softmax_aware_mask(scores: torch.Tensor, c_int: int, temperature: float, training: bool) -> torch.Tensor:
    """BiViT softmax-aware binarization (SAB) of attention probabilities.

    Forward: ``P = 1[S >= rowmax(S) - c_int]`` exactly (integer rule; ``S``
    holds integers, exact in float32 for |S| < 2**24). Backward: the gradient
    of ``softmax(S * temperature)`` (straight-through through the softmax), as
    in He et al., "BiViT", ICCV 2023.

    Args:
        scores: ``(B, H, T, T)`` float tensor of integer XNOR scores.
        c_int: threshold from :func:`sab_threshold`.
        temperature: softmax scale used for the gradient (``1/sqrt(head_dim)``).
        training: add the straight-through softmax gradient (value unchanged).

    Returns:
        ``(B, H, T, T)`` float tensor of {0, 1}.
    """
    mask = (scores >= scores.amax(dim=-1, keepdim=True) - c_int).to(scores.dtype)
    if training:
        p = torch.softmax(scores * temperature, dim=-1)
        mask = mask + (p - p.detach())  # exactly mask: the bracket is 0.0
    return mask
