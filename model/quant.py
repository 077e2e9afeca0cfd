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
    "elastic_binarize",
    "DecomposedQuant",
    "exp_table",
    "table_softmax",
    "oscillation_loss",
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


# --------------------------------------------------------------------------
# Model-zoo additions (issue 6): multi-level attention-probability quantizers,
# the integer exp table of the attention softmax, the oscillation regularizer.
# --------------------------------------------------------------------------

from brevitas.inject.enum import RestrictValueType  # noqa: E402
from brevitas.quant.scaled_int import Uint8ActPerTensorFloatMaxInit  # noqa: E402


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def elastic_binarize(p: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """BiT's elastic binarization to ``{0, alpha}`` (training form).

    ``Q(p) = alpha * clamp(round(p / alpha), 0, 1)`` with straight-through
    rounding, so ``alpha`` gets the LSQ gradient ``Q/alpha - p/alpha`` inside
    ``0 < p < alpha`` and ``p`` gets ``1`` there. Liu et al., "BiT: Robustly
    Binarized Multi-distilled Transformer", NeurIPS 2022, Eq. 6; BinaryViT
    (Le & Li 2023) binarizes attention probabilities with it.

    At inference the same values are ``alpha * 1[p >= alpha / 2]`` (equal
    except at the tie ``p = alpha / 2`` exactly), exported as a
    ``BipolarQuant`` of ``p - alpha / 2`` (Brevitas exports every 1-bit
    quantizer as bipolar): see :class:`~xnorvit.model.layers.QuantProbs`.
    """
    return alpha * torch.clamp(_RoundSTE.apply(p / alpha), 0.0, 1.0)


class DecomposedQuant(Uint8ActPerTensorFloatMaxInit):
    """BHViT's quantization-decomposition attention probabilities.

    ``Q(p) = alpha * clamp(round(p / alpha), 0, 3) = alpha * sum_{k=1..3} M_k``
    with the binary masks ``M_k = 1[round(p / alpha) >= k]``: a 2-bit
    probability is the sum of three binary attention maps, so ``Q(p) . V =
    alpha * sum_k (M_k . V)`` uses only binary (mask-select) products. BHViT
    (CVPR 2025; code IMRL/BHViT), "quantization decomposition" of the attention
    matrix. QONNX: ``Quant(bitwidth=2, signed=0, scale=alpha)``; the initial
    scale is ``max_val / 3``.
    """

    bit_width = 2
    max_val = 0.06
    # alpha ~ 1 / tokens is small: learn log(alpha), so an Adam step changes
    # it by a fraction rather than by the learning rate (which would cross 0)
    restrict_scaling_type = RestrictValueType.LOG_FP


def exp_table(max_diff: int, temperature: float, frac_bits: int = 16) -> torch.Tensor:
    """Integer table of ``exp(-d * temperature)`` for ``d = 0..max_diff``.

    ``table[d] = round(2**frac_bits * exp(-d * temperature))`` (float32 holding
    integers <= 2**frac_bits). With integer XNOR scores ``S`` the softmax
    numerator ``exp((S - rowmax S) * temperature)`` is ``table[rowmax S - S] /
    2**frac_bits``: an integer look-up, as the hardware would do it
    (../shared/DESIGN.md: rules that need exp use a table that the PyTorch
    model itself uses).
    """
    d = torch.arange(max_diff + 1, dtype=torch.float64)
    return torch.round(torch.exp(-d * temperature) * 2**frac_bits).to(torch.float32)


def table_softmax(scores: torch.Tensor, table: torch.Tensor, temperature: float, training: bool) -> torch.Tensor:
    """Softmax of integer scores through :func:`exp_table`.

    Forward: ``e = table[rowmax(S) - S]`` (integers), ``p = e / sum_row(e)``
    (one IEEE division, so PyTorch and ONNX agree bit for bit). Backward
    (training): the gradient of ``softmax(S * temperature)``, straight through.

    Args:
        scores: ``(..., T_k)`` float tensor of integer scores with
            ``rowmax - S <= len(table) - 1``.
        table: from :func:`exp_table`.
        temperature: softmax scale of the gradient path.
        training: add the straight-through gradient.

    Returns:
        ``(..., T_k)`` probabilities (rows sum to 1 up to rounding).
    """
    idx = (scores.amax(dim=-1, keepdim=True) - scores).to(torch.int64)
    e = table[idx]
    p = e / e.sum(dim=-1, keepdim=True)
    if training:
        s = torch.softmax(scores * temperature, dim=-1)
        p = p + (s - s.detach())
    return p


def oscillation_loss(weights: list[torch.Tensor]) -> torch.Tensor:
    """BHViT's regularizer against weight oscillation: ``mean(| |w| - 1 |)``
    over all latent binary weights (concatenated).

    Latent weights near 0 flip sign at every Adam step; pulling ``|w|`` to 1
    settles them. BHViT (CVPR 2025) applies it in the last ~10% of the epochs
    with weight ~0.8 (see :class:`~xnorvit.model.train.Recipe`
    ``osc_reg``/``osc_reg_last``).

    Returns:
        scalar tensor (0 for an empty list).
    """
    if not weights:
        return torch.zeros(())
    flat = torch.cat([w.reshape(-1) for w in weights])
    return (flat.abs() - 1.0).abs().mean()
