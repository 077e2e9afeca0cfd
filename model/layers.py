"""Building blocks of xnorvit's binary Vision Transformers.

Every block takes ``binary``: ``True`` builds the quantized (Brevitas) layer,
``False`` the full-precision layer of the same shape (the distillation
teacher). Parameter names are the same in both, so a teacher's state dict
initialises a student (``load_state_dict(strict=False)``).

Hardware-friendly conventions (../shared/DESIGN.md):

* BatchNorm in place of LayerNorm (BinaryViT, BHViT); it folds into
  thresholds.
* The residual stream is an 8-bit integer stream: one :class:`ResidualQuant`
  instance quantizes both operands of every residual add and the sum, so the
  add is an integer add with saturation.
* Binary attention: bipolar Q, K, V, XNOR scores, a pluggable binarizer of
  the attention probabilities (BiViT's softmax-aware binarization by
  default), ``A . V`` as the integer sum of the selected V rows.
* Patch embedding and classifier use 8-bit weights; the input is the uint8
  image.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import brevitas.nn as qnn
from brevitas.quant import Uint8ActPerTensorFloat

from .quant import (
    BinaryAct,
    BinaryWeightQuant,
    InputQuant,
    Int8WeightPerChannel,
    Int8WeightPerTensor,
    ResidualQuant,
    SignClippedSTE,
    sab_threshold,
    softmax_aware_mask,
)

__all__ = [
    "BinaryLinear",
    "binary_linear",
    "binary_act",
    "TokenNorm",
    "ResidualAdd",
    "SoftmaxAwareBinarizer",
    "BinaryAttention",
    "BinaryMLP",
    "Block",
    "PatchEmbed",
    "GAPHead",
]


class BinaryLinear(qnn.QuantLinear):
    """Binary linear layer without bias: ``y = s_o * (x . sign(W_o))``.

    ``x`` is bipolar (+-1) in every use, so ``x . sign(W_o)`` is the exact
    XNOR-popcount accumulator ``2 * popcount(xnor) - K`` (an integer held
    exactly in float32); ``s_o`` is a per-output-channel scale, either learnable
    and initialised to ``mean(|W_o|)`` at the first training step (BiViT's
    parameterized weight scales, He et al. 2023) or recomputed as
    ``mean(|W_o|)`` (XNOR-Net, Rastegari et al. 2016). QONNX: ``BipolarQuant``
    weight (scale 1) -> ``MatMul``/``Gemm`` -> ``Mul(s)``, which FINN
    streamlines into the next thresholds.

    Shapes: ``(..., in_features)`` -> ``(..., out_features)`` float.
    """

    def __init__(self, in_features: int, out_features: int, learned_scale: bool = True):
        super().__init__(in_features, out_features, bias=False, weight_quant=BinaryWeightQuant)
        self.learned_scale = learned_scale
        if learned_scale:
            self.scale = nn.Parameter(torch.ones(out_features))
            self.register_buffer("scale_initialized", torch.zeros((), dtype=torch.bool))

    def channel_scale(self) -> torch.Tensor:
        """``s_o``, shape ``(out_features,)``."""
        if self.learned_scale:
            return self.scale
        return self.weight.abs().mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_scale and self.training and not bool(self.scale_initialized):
            with torch.no_grad():
                self.scale.copy_(self.weight.abs().mean(dim=1))
                self.scale_initialized.fill_(True)
        if self.training:  # fast path, same values as the Brevitas quantizer
            return F.linear(x, SignClippedSTE.apply(self.weight)) * self.channel_scale()
        return super().forward(x) * self.channel_scale()


def binary_linear(in_features: int, out_features: int, binary: bool, learned_scale: bool = True) -> nn.Module:
    """:class:`BinaryLinear` (binary) or ``nn.Linear`` without bias (full
    precision), ``(..., in) -> (..., out)``."""
    if not binary:
        return nn.Linear(in_features, out_features, bias=False)
    return BinaryLinear(in_features, out_features, learned_scale)


def binary_act(channels: int, binary: bool, fp_act: Callable[[], nn.Module] = nn.Identity) -> nn.Module:
    """:class:`~xnorvit.model.quant.BinaryAct` (binary) or ``fp_act()``."""
    return BinaryAct(channels) if binary else fp_act()


class TokenNorm(nn.Module):
    """Normalization over the channels of a token sequence ``(B, T, C)``.

    ``norm="bn"``: BatchNorm1d over C with statistics over batch and tokens
    (BinaryViT/BHViT's replacement of LayerNorm; folds into thresholds).
    ``norm="ln"``: LayerNorm, for comparison only (not hardware-mappable).

    Raises:
        ValueError: unknown ``norm``.
    """

    def __init__(self, channels: int, norm: str = "bn"):
        super().__init__()
        if norm not in ("bn", "ln"):
            raise ValueError(f"unknown norm {norm!r}; choose 'bn' or 'ln'")
        self.kind = norm
        self.norm = nn.BatchNorm1d(channels) if norm == "bn" else nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "ln":
            return self.norm(x)
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ResidualAdd(nn.Module):
    """Integer residual add ``q(x + q(branch))`` with one shared quantizer.

    ``x`` must already be on the quantizer's grid (it is the residual stream),
    so in integers the add is ``clamp(x_int + b_int, -128, 127)``.
    Full precision: ``x + branch``.
    """

    def __init__(self, quant: nn.Module | None):
        super().__init__()
        self.quant = quant

    def forward(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        if self.quant is None:
            return x + branch
        return self.quant(x + self.quant(branch))


class SoftmaxAwareBinarizer(nn.Module):
    """BiViT's softmax-aware binarization of attention probabilities.

    ``P = 1[S >= rowmax(S) - c_int]`` with ``c_int = floor(c * sqrt(head_dim))``
    (``c = ln 4``: keep keys whose softmax probability is at least a quarter
    of the row's maximum), gradient through ``softmax(S / sqrt(head_dim))``.
    He et al., "BiViT: Extremely Compressed Binary Vision Transformers",
    ICCV 2023. See :func:`~xnorvit.model.quant.softmax_aware_mask`.

    Shapes: scores ``(B, H, T, T)`` of integers -> ``(B, H, T, T)`` in {0, 1}.
    """

    def __init__(self, head_dim: int, c: float = math.log(4.0)):
        super().__init__()
        self.c_int = sab_threshold(head_dim, c)
        self.temperature = head_dim**-0.5

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return softmax_aware_mask(scores, self.c_int, self.temperature, self.training)

    def extra_repr(self) -> str:
        return f"c_int={self.c_int}"


#: attention-probability binarizers by name: ``factory(head_dim) -> module``
PROB_BINARIZERS: dict[str, Callable[[int], nn.Module]] = {
    "sab": SoftmaxAwareBinarizer,
}


class BinaryAttention(nn.Module):
    """Binary multi-head self-attention (pre-norm branch, no residual).

    Binary dataflow (every arrow is an integer in hardware)::

        x (int8) -> norm -> sign -> bits (B,T,C)
        q,k,v = sign(W{q,k,v} bits - beta)       bipolar (B,H,T,dh)
        S = q . k^T                               XNOR scores, ints in [-dh, dh]
        P = binarizer(S)                          {0, 1}
        O = P . v                                 ints in [-T, T]
        out = BN(W_o sign(BN(O) - beta))          real, quantized by the caller

    Full precision (teacher): same layers, ``softmax(S / sqrt(dh))`` and no
    signs.

    Args:
        dim: embedding size C.
        heads: number of heads H (``dim % heads == 0``).
        binary: quantized or full precision.
        prob_binarizer: key of :data:`PROB_BINARIZERS` (binary only).
        learned_scale: learnable weight scales (BiViT) or mean(|W|).
        norm: "bn" or "ln".

    Shapes: ``(B, T, C)`` float -> ``(B, T, C)`` float.

    Raises:
        ValueError: ``dim`` not divisible by ``heads`` or unknown binarizer.
    """

    def __init__(self, dim: int, heads: int, binary: bool, prob_binarizer: str = "sab", learned_scale: bool = True, norm: str = "bn"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if prob_binarizer not in PROB_BINARIZERS:
            raise ValueError(f"unknown attention binarizer {prob_binarizer!r}; choose from {sorted(PROB_BINARIZERS)}")
        self.binary, self.heads, self.head_dim = binary, heads, dim // heads
        self.norm = TokenNorm(dim, norm)
        self.act_in = binary_act(dim, binary)
        self.q = binary_linear(dim, dim, binary, learned_scale)
        self.k = binary_linear(dim, dim, binary, learned_scale)
        self.v = binary_linear(dim, dim, binary, learned_scale)
        self.act_q = binary_act(dim, binary)
        self.act_k = binary_act(dim, binary)
        self.act_v = binary_act(dim, binary)
        self.binarizer = PROB_BINARIZERS[prob_binarizer](self.head_dim) if binary else None
        self.norm_o = TokenNorm(dim, norm)
        self.act_o = binary_act(dim, binary)
        self.proj = binary_linear(dim, dim, binary, learned_scale)
        self.norm_out = TokenNorm(dim, "bn")

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = self.act_in(self.norm(x))
        q = self._split(self.act_q(self.q(h)))
        k = self._split(self.act_k(self.k(h)))
        v = self._split(self.act_v(self.v(h)))
        scores = q @ k.transpose(-2, -1)
        if self.binary:
            probs = self.binarizer(scores)
        else:
            probs = torch.softmax(scores * self.head_dim**-0.5, dim=-1)
        o = (probs @ v).transpose(1, 2).reshape(b, t, c)
        o = self.act_o(self.norm_o(o))
        return self.norm_out(self.proj(o))


class BinaryMLP(nn.Module):
    """Binary MLP branch: ``BN(W2 sign(W1 sign(norm(x)) - beta))``.

    Full precision: ``BN(W2 GELU(BN(W1 norm(x))))``.

    Shapes: ``(B, T, C)`` float -> ``(B, T, C)`` float, hidden ``C * ratio``.
    """

    def __init__(self, dim: int, hidden: int, binary: bool, learned_scale: bool = True, norm: str = "bn"):
        super().__init__()
        self.norm = TokenNorm(dim, norm)
        self.act_in = binary_act(dim, binary)
        self.fc1 = binary_linear(dim, hidden, binary, learned_scale)
        self.norm_h = TokenNorm(hidden, "bn")
        self.act_h = binary_act(hidden, binary, nn.GELU)
        self.fc2 = binary_linear(hidden, dim, binary, learned_scale)
        self.norm_out = TokenNorm(dim, "bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act_in(self.norm(x))
        h = self.act_h(self.norm_h(self.fc1(h)))
        return self.norm_out(self.fc2(h))


class Block(nn.Module):
    """Transformer block on the 8-bit residual stream:
    ``x = add(x, attn(x)); x = add(x, mlp(x))``.

    Shapes: ``(B, T, C)`` -> ``(B, T, C)``.
    """

    def __init__(self, dim: int, heads: int, hidden: int, binary: bool, residual_quant: nn.Module | None, prob_binarizer: str = "sab", learned_scale: bool = True, norm: str = "bn"):
        super().__init__()
        self.attn = BinaryAttention(dim, heads, binary, prob_binarizer, learned_scale, norm)
        self.mlp = BinaryMLP(dim, hidden, binary, learned_scale, norm)
        self.add1 = ResidualAdd(residual_quant)
        self.add2 = ResidualAdd(residual_quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.add1(x, self.attn(x))
        return self.add2(x, self.mlp(x))


class PatchEmbed(nn.Module):
    """8-bit patch embedding with an optional convolutional stem and a learned
    position embedding, writing the 8-bit residual stream.

    ``uint8 image / 255 -> stem -> conv(patch, stride patch) -> BN -> q(.)
    -> q(. + q(pos))`` where the stem is ``stem_depth`` layers of
    ``conv3x3 -> BN -> ReLU (act_bits unsigned)``: the first with stride 1
    and ``stem_channels`` channels, each further one with stride 2 and twice
    the channels.

    The stem gives the ViT a convolutional inductive bias (a small-data
    necessity, cf. Xiao et al., "Early convolutions help transformers see
    better", NeurIPS 2021); in hardware each conv is FINN's sliding-window
    generator followed by an integer MVAU.

    Args:
        img_size: input height = width (pixels).
        in_chans: input channels.
        patch: patch size on the stem's output grid.
        dim: embedding size.
        stem_channels: channels of the first 3x3 stem conv (0: no stem).
        act_bits: bits of the stem's unsigned activations.
        binary: quantized or full precision.
        residual_quant: the model's shared residual quantizer (binary only).
        stem_depth: number of stem convs (>= 1 when ``stem_channels``).

    Shapes: ``(B, in_chans, H, W)`` float in [0, 1] -> ``(B, T, dim)``,
    ``T = (H / 2**(stem_depth - 1) / patch)**2``.

    Raises:
        ValueError: the stem's output grid is not divisible by ``patch``.
    """

    def __init__(self, img_size: int, in_chans: int, patch: int, dim: int, stem_channels: int, act_bits: int, binary: bool, residual_quant: nn.Module | None, stem_depth: int = 1):
        super().__init__()
        grid = img_size // 2 ** max(0, stem_depth - 1) if stem_channels else img_size
        if grid % patch or (stem_channels and img_size % 2 ** max(0, stem_depth - 1)):
            raise ValueError(f"image size {img_size} with {stem_depth} stem layers is not divisible by patch size {patch}")
        self.num_tokens = (grid // patch) ** 2
        self.binary = binary
        conv = (lambda *a, **k: qnn.QuantConv2d(*a, weight_quant=Int8WeightPerChannel, **k)) if binary else nn.Conv2d
        self.input_quant = qnn.QuantIdentity(act_quant=InputQuant) if binary else nn.Identity()
        layers: list[nn.Module] = []
        if stem_channels:
            for i in range(max(1, stem_depth)):
                out_ch = stem_channels * 2**i
                layers += [
                    conv(in_chans, out_ch, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                    nn.BatchNorm2d(out_ch),
                    qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=act_bits) if binary else nn.ReLU(),
                ]
                in_chans = out_ch
        self.stem = nn.Sequential(*layers) if layers else nn.Identity()
        self.proj = conv(in_chans, dim, patch, stride=patch, bias=False)
        self.norm = nn.BatchNorm2d(dim)
        self.pos = nn.Parameter(torch.randn(1, self.num_tokens, dim) * 0.1)
        self.add_pos = ResidualAdd(residual_quant)
        self.quant = residual_quant if binary else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.input_quant(x))
        x = self.norm(self.proj(x)).flatten(2).transpose(1, 2)
        return self.add_pos(self.quant(x), self.pos)


class GAPHead(nn.Module):
    """Global-average-pooling classifier head (BinaryViT: all tokens pooled,
    no CLS token).

    ``mean_T(x) -> BN -> q8(.) -> W8 .`` with one weight scale per tensor, so
    ``logits = s_in * s_w * acc`` with ``acc`` the integer accumulator of the
    8-bit MVAU: the argmax of ``acc`` is the argmax of the logits
    (:meth:`logit_scale` gives ``s_in * s_w``).

    Shapes: ``(B, T, C)`` -> ``(B, num_classes)`` float.
    """

    def __init__(self, dim: int, num_classes: int, binary: bool):
        super().__init__()
        self.binary = binary
        self.norm = nn.BatchNorm1d(dim)
        if binary:
            self.quant = qnn.QuantIdentity(act_quant=ResidualQuant)
            self.fc = qnn.QuantLinear(dim, num_classes, bias=False, weight_quant=Int8WeightPerTensor)
        else:
            self.quant = nn.Identity()
            self.fc = nn.Linear(dim, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.quant(self.norm(x.mean(dim=1))))

    def logit_scale(self) -> float:
        """``s_in * s_w``: logits divided by it are the integer accumulators.

        Raises:
            RuntimeError: on a full-precision head.
        """
        if not self.binary:
            raise RuntimeError("a full-precision head has no integer logits")
        s_in = self.quant.act_quant.scale().detach()
        s_w = self.fc.quant_weight().scale.detach()
        return float((s_in * s_w).reshape(-1)[0])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
