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

import functools
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
    "BatchNorm1d",
    "BatchNorm2d",
    "TokenNorm",
    "ResidualAdd",
    "SoftmaxAwareBinarizer",
    "BinaryAttention",
    "BinaryMLP",
    "Block",
    "PatchEmbed",
    "GAPHead",
    "BinaryConv2d",
    "RPReLU",
    "ImprovedRPReLU",
    "LayerScale",
    "PoolingBranches",
    "shift_tokens",
    "haar_matrix",
    "QuantProbs",
    "ZOO_BINARIZERS",
    "ZooAttention",
    "MultiScaleDilatedConv",
    "ZooMLP",
    "PatchMerge",
    "ClsHead",
    "ClsPatchEmbed",
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


@functools.lru_cache(maxsize=1)
def _ort_inv_std_rule() -> str:
    """How this machine's onnxruntime computes ``1 / sqrt(var + eps)`` in
    float32: ``"div"`` (a correctly rounded sqrt, then a division) or
    ``"rsqrt"`` (as ``torch.rsqrt``). Its CPU kernel is vectorized per
    instruction set and the two differ by one ulp on ~13 % of values: seen
    here, an AVX-512 machine's onnxruntime equals ``torch.rsqrt`` on 4,096
    probe variances and differs from ``1 / sqrt`` on 532 of them, while on
    the machine of earlier sessions onnxruntime equalled ``1 / sqrt`` (the
    bit-exact test of tests/test_blocks.py passed there with it). Found once per process by running
    one ``BatchNormalization`` node (``x = 1``, ``gamma = 1``, ``beta = mean = 0``,
    so ``y`` is the inverse standard deviation itself) on those probes."""
    import numpy as np
    import onnxruntime as rt
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    n = 4096
    var = np.concatenate([rng.random(n // 2) * 4 + 0.01, np.exp(rng.uniform(-12, 8, n // 2))]).astype(np.float32)
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in
             (("g", np.ones(n)), ("b", np.zeros(n)), ("m", np.zeros(n)), ("v", var))]
    node = helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-5)
    graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    opts = rt.SessionOptions()
    opts.intra_op_num_threads = 1
    got = rt.InferenceSession(model.SerializeToString(), opts).run(None, {"x": np.ones((1, n), np.float32)})[0][0]
    v = torch.from_numpy(var) + 1e-5
    miss = {"div": int((got != (1.0 / torch.sqrt(v)).numpy()).sum()), "rsqrt": int((got != torch.rsqrt(v).numpy()).sum())}
    rule = min(miss, key=miss.get)
    if miss[rule]:
        import warnings

        warnings.warn(f"onnxruntime's BatchNormalization matches neither 1/sqrt nor rsqrt exactly ({miss}); "
                      f"using {rule}: PyTorch and QONNX may differ by one ulp before a quantizer")
    return rule


def _ort_inv_std(v: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(v)`` (float32) rounded as this machine's onnxruntime does (:func:`_ort_inv_std_rule`)."""
    return torch.rsqrt(v) if _ort_inv_std_rule() == "rsqrt" else 1.0 / torch.sqrt(v)


class _OrtBatchNorm:
    """Eval-mode BatchNorm evaluated in float32 exactly as onnxruntime's
    ``BatchNormalization`` kernel does, so that PyTorch and the QONNX export
    agree bit for bit before every quantizer.

    onnxruntime (``onnxruntime/core/providers/cpu/nn/batch_norm.h``) folds
    the statistics first, ``s = (1 / sqrt(var + eps)) * gamma`` (the inverse
    square root rounded as the local onnxruntime rounds it:
    :func:`_ort_inv_std_rule`),
    ``b = beta - mean * s``, then ``y = x * s + b``; PyTorch's kernel divides
    ``gamma / sqrt(var + eps)``. The two differ by one float32 ulp on about a
    third of the elements (measured on random data), and where ``y / scale``
    of the following quantizer sits at a rounding tie (``x.5``) that ulp moves
    the code by one (seen once in 20 digits images on binary-deit-t's patch
    embedding). Training mode and ONNX export use the stock kernel (the
    export still emits one ``BatchNormalization`` node).

    Shapes: ``(N, C)`` or ``(N, C, *)`` float32, any layout PyTorch's
    BatchNorm takes; per-channel statistics along dim 1.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.track_running_stats or torch.onnx.is_in_onnx_export():
            return super().forward(x)
        inv = _ort_inv_std(self.running_var + self.eps)
        scale = inv * self.weight if self.affine else inv
        bias = (self.bias if self.affine else 0.0) - self.running_mean * scale
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.view(shape) + bias.view(shape)


class BatchNorm1d(_OrtBatchNorm, nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` whose eval mode matches onnxruntime bit for bit (see :class:`_OrtBatchNorm`)."""


class BatchNorm2d(_OrtBatchNorm, nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` whose eval mode matches onnxruntime bit for bit (see :class:`_OrtBatchNorm`)."""


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
        self.norm = BatchNorm1d(channels) if norm == "bn" else nn.LayerNorm(channels)

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
        weight_bits: weights of the stem convs after the first and of the
            patch projection: 8 (per-channel int8) or 1 (``sign(W)``,
            :class:`~xnorvit.model.quant.BinaryWeightQuant`; the per-channel
            scale is absorbed by the BatchNorm that follows, and in hardware
            the products are bipolar x unsigned adds: no DSP, no multiplier).
            The first conv, on raw pixels, keeps 8-bit weights.

    Shapes: ``(B, in_chans, H, W)`` float in [0, 1] -> ``(B, T, dim)``,
    ``T = (H / 2**(stem_depth - 1) / patch)**2``.

    Raises:
        ValueError: the stem's output grid is not divisible by ``patch``, or
            ``weight_bits`` is not 8 or 1.
    """

    def __init__(self, img_size: int, in_chans: int, patch: int, dim: int, stem_channels: int, act_bits: int, binary: bool, residual_quant: nn.Module | None, stem_depth: int = 1, weight_bits: int = 8):
        super().__init__()
        grid = img_size // 2 ** max(0, stem_depth - 1) if stem_channels else img_size
        if grid % patch or (stem_channels and img_size % 2 ** max(0, stem_depth - 1)):
            raise ValueError(f"image size {img_size} with {stem_depth} stem layers is not divisible by patch size {patch}")
        if weight_bits not in (8, 1):
            raise ValueError(f"stem weight bits must be 8 or 1, got {weight_bits}")
        self.num_tokens = (grid // patch) ** 2
        self.binary = binary
        conv = (lambda *a, **k: qnn.QuantConv2d(*a, weight_quant=Int8WeightPerChannel, **k)) if binary else nn.Conv2d
        conv_w = (lambda *a, **k: qnn.QuantConv2d(*a, weight_quant=BinaryWeightQuant, **k)) if binary and weight_bits == 1 else conv
        self.input_quant = qnn.QuantIdentity(act_quant=InputQuant) if binary else nn.Identity()
        layers: list[nn.Module] = []
        if stem_channels:
            for i in range(max(1, stem_depth)):
                out_ch = stem_channels * 2**i
                layers += [
                    (conv if i == 0 else conv_w)(in_chans, out_ch, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                    BatchNorm2d(out_ch),
                    qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=act_bits) if binary else nn.ReLU(),
                ]
                in_chans = out_ch
        self.stem = nn.Sequential(*layers) if layers else nn.Identity()
        self.proj = conv_w(in_chans, dim, patch, stride=patch, bias=False)
        self.norm = BatchNorm2d(dim)
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
        self.norm = BatchNorm1d(dim)
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


# ==========================================================================
# Model-zoo mechanisms (issue 6). Each class states its formula and paper.
# All of them keep integer semantics at inference: binary products are exact
# integers in float32, the residual stream stays on one 8-bit grid, and the
# only real-valued operations sit between two quantizers (norms, scales,
# pooling sums), where FINN folds them into thresholds.
# ==========================================================================

from .quant import BinaryActQuant, DecomposedQuant, elastic_binarize, exp_table, table_softmax  # noqa: E402


class BinaryConv2d(qnn.QuantConv2d):
    """Binary 2-D convolution without bias: ``y = s_o * conv(x, sign(W_o))``.

    Like :class:`BinaryLinear`: bipolar weights (Brevitas
    :class:`~xnorvit.model.quant.BinaryWeightQuant`), a learnable
    per-output-channel scale ``s_o`` initialised to ``mean|W_o|`` at the first
    training step, clipped-STE gradients. With a bipolar input each output is
    the XNOR-popcount of ``K = C_in / groups * kh * kw`` bits; zero padding
    contributes 0 (a masked bit).

    Shapes: ``(B, C_in, H, W)`` -> ``(B, C_out, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, dilation: int = 1, groups: int = 1, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False, weight_quant=BinaryWeightQuant)
        self.scale = nn.Parameter(torch.ones(out_channels))
        self.register_buffer("scale_initialized", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.scale_initialized):
            with torch.no_grad():
                self.scale.copy_(self.weight.abs().mean(dim=(1, 2, 3)))
                self.scale_initialized.fill_(True)
        s = self.scale.view(1, -1, 1, 1)
        if self.training:
            return F.conv2d(x, SignClippedSTE.apply(self.weight), None, self.stride, self.padding, self.dilation, self.groups) * s
        return super().forward(x) * s


def binary_conv(in_ch: int, out_ch: int, k: int, binary: bool, padding: int = 0, dilation: int = 1, groups: int = 1) -> nn.Module:
    """:class:`BinaryConv2d` (binary) or ``nn.Conv2d`` without bias (FP)."""
    if binary:
        return BinaryConv2d(in_ch, out_ch, k, padding=padding, dilation=dilation, groups=groups)
    return nn.Conv2d(in_ch, out_ch, k, padding=padding, dilation=dilation, groups=groups, bias=False)


class RPReLU(nn.Module):
    """ReActNet's RPReLU: ``y = PReLU(x - gamma) + zeta``, per-channel
    ``gamma``, ``zeta`` and slope ``a`` (init 0.25):
    ``PReLU(u) = u if u >= 0 else a * u``.

    Liu et al., "ReActNet", ECCV 2020, Eq. 5; BinaryViT applies it in its
    blocks. Shapes: ``(..., C)`` -> same.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.slope = nn.Parameter(torch.full((channels,), 0.25))
        self.zeta = nn.Parameter(torch.zeros(channels))

    def shifts(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gamma, self.zeta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma, zeta = self.shifts()
        u = x - gamma
        return torch.where(u >= 0, u, self.slope * u) + zeta


class ImprovedRPReLU(RPReLU):
    """DIDB-ViT's improved RPReLU: ``y = PReLU(x - gamma_c - gamma_t) + zeta_c
    + zeta_t`` with per-channel (``c``) and per-token (``t``) shifts, so each
    token position re-centres its activation distribution.

    "High-Fidelity Differential-information Driven Binary Vision Transformer"
    (DIDB-ViT, 2025); the per-token parameters are second-hand
    (../shared/REFERENCE.md). Shapes: ``(B, tokens, C)`` -> same.
    """

    def __init__(self, channels: int, tokens: int):
        super().__init__(channels)
        self.gamma_t = nn.Parameter(torch.zeros(tokens, 1))
        self.zeta_t = nn.Parameter(torch.zeros(tokens, 1))

    def shifts(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gamma + self.gamma_t, self.zeta + self.zeta_t


class LayerScale(nn.Module):
    """Per-channel scale ``y = gamma * x`` (CaiT's LayerScale).

    BinaryViT's affine transformation before each main residual add uses
    ``init = 0.1``; its pooling branches use ``init = 0``. Shapes: ``(..., C)``.
    """

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


def tokens_to_grid(x: torch.Tensor, grid: int) -> torch.Tensor:
    """``(B, grid*grid, C)`` -> ``(B, C, grid, grid)``."""
    b, t, c = x.shape
    return x.transpose(1, 2).reshape(b, c, grid, grid)


def grid_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w).transpose(1, 2)


class PoolingBranches(nn.Module):
    """BinaryViT's multiple average-pooling branches.

    ``y = sum_k gamma_k * AvgPool_k(x)`` over the 2-D token grid, kernels
    ``(1,3), (3,1), (1,5), (5,1)``, stride 1, zero padding ``k // 2`` counted
    in the divisor (``AvgPool = window sum / (kh * kw)``, an integer sum of
    the 8-bit stream times a constant), each branch scaled by a LayerScale
    ``gamma_k`` initialised to 0. Le & Li, "BinaryViT: Pushing Binary Vision
    Transformers Towards Convolutional Models", CVPRW 2023, Sec. 4.2.

    Shapes: ``(B, grid*grid, C)`` -> same.
    """

    KERNELS = ((1, 3), (3, 1), (1, 5), (5, 1))

    def __init__(self, dim: int, grid: int, kernels: tuple = KERNELS):
        super().__init__()
        self.grid, self.kernels = grid, tuple(tuple(k) for k in kernels)
        self.scales = nn.ModuleList(LayerScale(dim, 0.0) for _ in self.kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = tokens_to_grid(x, self.grid)
        out = 0
        for (kh, kw), ls in zip(self.kernels, self.scales):
            p = F.avg_pool2d(g, (kh, kw), stride=1, padding=(kh // 2, kw // 2), count_include_pad=True)
            out = out + ls(grid_to_tokens(p))
        return out


#: BHViT's token shifts (dy, dx): +-1 and +-2 along each grid axis
SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (-2, 0), (0, 2), (0, -2))


def shift_tokens(x: torch.Tensor, grid: int, shifts: tuple = SHIFTS) -> torch.Tensor:
    """BHViT's token shift: channel group ``g`` (of ``2 * len(shifts)``
    equal groups) moves by ``shifts[g] = (dy, dx)`` on the grid,
    ``y[i, j] = x[i - dy, j - dx]`` with zero fill; the second half of the
    channels is not shifted. Zero is a value of the 8-bit stream, so the
    shift is exact.

    Shapes: ``(B, grid*grid, C)`` -> same; ``C`` divisible by ``2 * len(shifts)``.

    Raises:
        ValueError: ``C`` not divisible.
    """
    b, t, c = x.shape
    n = 2 * len(shifts)
    if c % n:
        raise ValueError(f"token shift needs channels divisible by {n}, got {c}")
    gsz = c // n
    g = x.reshape(b, grid, grid, c)
    parts = []
    for i, (dy, dx) in enumerate(shifts):
        part = g[..., i * gsz : (i + 1) * gsz]
        p = F.pad(part, (0, 0, max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
        parts.append(p[:, max(-dy, 0) : max(-dy, 0) + grid, max(-dx, 0) : max(-dx, 0) + grid, :])
    parts.append(g[..., len(shifts) * gsz :])
    return torch.cat(parts, dim=-1).reshape(b, t, c)


def haar_matrix(channels: int) -> torch.Tensor:
    """Orthonormal one-level Haar analysis matrix ``(C, C)`` applied per head.

    For a head vector ``q`` of ``d`` channels, ``q @ H`` gives
    ``[L | Hi]`` with ``L_i = (q_{2i} + q_{2i+1}) / sqrt 2`` (low band) and
    ``Hi_i = (q_{2i} - q_{2i+1}) / sqrt 2`` (high band). Orthonormal: the
    real dot product is unchanged, ``q . k = L_q . L_k + Hi_q . Hi_k``.
    Build it with ``channels = d`` and ``torch.block_diag`` for several heads.
    """
    d = channels
    if d % 2:
        raise ValueError(f"Haar decomposition needs an even head size, got {d}")
    h = torch.zeros(d, d)
    r = 2**-0.5
    for i in range(d // 2):
        h[2 * i, i] = r
        h[2 * i + 1, i] = r
        h[2 * i, d // 2 + i] = r
        h[2 * i + 1, d // 2 + i] = -r
    return h


class QuantProbs(nn.Module):
    """Multi-level attention probabilities from integer scores: ``table
    softmax`` (:func:`~xnorvit.model.quant.table_softmax`) followed by an
    unsigned quantizer with a learnable scale ``alpha``.

    ``levels=1``: BiT/BinaryViT elastic binarization ``P = alpha *
    clamp(round(p / alpha), 0, 1)`` in ``{0, alpha}``, learnable ``alpha``
    (kept positive as ``exp`` of a parameter, as is the 2-bit scale)
    (:func:`~xnorvit.model.quant.elastic_binarize`); at inference
    ``P = alpha * (b + 1) / 2`` with ``b = sign(p - alpha / 2)`` a Brevitas
    bipolar quantizer (QONNX ``BipolarQuant``).
    ``levels=3``: BHViT quantization decomposition ``P = alpha * sum_{k=1..3}
    M_k``, ``M_k = 1[round(p / alpha) >= k]``
    (:class:`~xnorvit.model.quant.DecomposedQuant`).

    :meth:`mix` computes ``P . V`` as ``alpha * (codes . V)`` at inference,
    ``codes = round(P / alpha)`` in {0..levels}: an exact integer product
    (``sum_k M_k . V`` of binary masks with bipolar V).

    Args:
        head_dim: head size ``dh`` (scores in ``[-dh, dh]``, temperature
            ``dh**-0.5``).
        keys: number of keys (``alpha`` starts at ``1 / keys``: keep keys
            above half the uniform probability).
        levels: 1 (elastic binary) or 3 (2-bit decomposition).

    Shapes: scores ``(..., T_q, T_k)`` -> same.
    """

    def __init__(self, head_dim: int, keys: int, levels: int = 1):
        super().__init__()
        if levels not in (1, 3):
            raise ValueError(f"levels must be 1 or 3, got {levels}")
        self.levels = levels
        self.temperature = head_dim**-0.5
        self.register_buffer("table", exp_table(2 * head_dim, self.temperature), persistent=False)
        if levels == 1:
            # learned as log(alpha): alpha ~ 1 / keys is far below an Adam step
            self.elastic_log_alpha = nn.Parameter(torch.tensor(math.log(1.0 / keys)))
            self.quant = qnn.QuantIdentity(act_quant=BinaryActQuant, return_quant_tensor=False)
        else:
            self.quant = qnn.QuantIdentity(act_quant=DecomposedQuant, max_val=levels / keys, return_quant_tensor=False)

    def alpha(self) -> torch.Tensor:
        """The probability step ``alpha`` (a scalar tensor)."""
        if self.levels == 1:
            return self.elastic_log_alpha.exp()
        return self.quant.act_quant.scale()

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        p = table_softmax(scores, self.table, self.temperature, self.training)
        if self.levels > 1:
            return self.quant(p)
        a = self.alpha()
        if self.training:
            return elastic_binarize(p, a)
        return a * (self.quant(p - a / 2) + 1.0) / 2

    def mix(self, probs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.training:
            return probs @ v
        a = self.alpha()
        return (torch.round(probs / a) @ v) * a

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class _SabProbs(SoftmaxAwareBinarizer):
    """:class:`SoftmaxAwareBinarizer` with the ``mix``/``(head_dim, keys)``
    interface of :class:`QuantProbs`."""

    def __init__(self, head_dim: int, keys: int):
        super().__init__(head_dim)

    def mix(self, probs: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return probs @ v


#: attention-probability rules of the zoo: ``factory(head_dim, keys)``
ZOO_BINARIZERS: dict[str, Callable[[int, int], nn.Module]] = {
    "sab": _SabProbs,
    "elastic": lambda dh, keys: QuantProbs(dh, keys, levels=1),
    "qd": lambda dh, keys: QuantProbs(dh, keys, levels=3),
}


class ZooAttention(nn.Module):
    """Binary multi-head self-attention of the model zoo (pre-norm branch).

    Dataflow as :class:`BinaryAttention` (bipolar q, k, v from binary
    linears and RSign, integer XNOR scores ``S = q . k^T``, binarized
    probabilities ``P``, ``P . V`` as integer mask sums, ``BN(W_o sign(BN(O)))``)
    with these options:

    * ``binarizer``: ``"sab"`` (BiViT), ``"elastic"`` ({0, alpha}: BiT /
      BinaryViT / DIDB-ViT), ``"qd"`` (BHViT 2-bit decomposition); see
      :data:`ZOO_BINARIZERS`.
    * ``haar`` (DIDB-ViT): q and k pass a one-level Haar analysis per head
      (:func:`haar_matrix`) before their sign, so the binary similarity is
      the sum over frequency bands ``S = sign(L_q) . sign(L_k) +
      sign(Hi_q) . sign(Hi_k)`` (still an integer in ``[-dh, dh]``).
    * ``diff`` (DIDB-ViT differential information): a second binary branch
      on ``D = x - AvgPool3x3(x)`` (each token minus the mean of its 3x3 grid
      neighbourhood, zero padded, divisor 9), ``out += BN(W_d sign(BN(D)))``,
      restoring the high-frequency detail that binarization loses.
    * ``window`` (BHViT MSMHA): tokens attend inside ``window x window`` grid
      windows; with ``pooled`` each window also attends to the mean-pooled
      (then binarized) token of every window (the merge tokens), a global
      path at ``nW`` extra keys.

    Full precision (teacher): the same layers, ``softmax(S / sqrt(dh))``, no
    signs (the Haar matrix being orthonormal, its teacher is plain attention).

    Shapes: ``(B, T, C)`` -> ``(B, T, C)``; ``T = grid**2`` for the grid
    options (``grid`` = 0: no grid, e.g. with a CLS token).

    Raises:
        ValueError: bad head count, binarizer, or grid options.
    """

    def __init__(self, dim: int, heads: int, binary: bool, tokens: int, binarizer: str = "elastic", learned_scale: bool = True, norm: str = "bn", grid: int = 0, haar: bool = False, diff: bool = False, window: int = 0, pooled: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if binarizer not in ZOO_BINARIZERS:
            raise ValueError(f"unknown attention binarizer {binarizer!r}; choose from {sorted(ZOO_BINARIZERS)}")
        if (diff or window) and not grid:
            raise ValueError("differential information and windows need a token grid (no CLS token)")
        if window and grid % window:
            raise ValueError(f"window {window} does not divide the grid {grid}")
        self.binary, self.heads, self.head_dim = binary, heads, dim // heads
        self.grid, self.window, self.pooled = grid, window, pooled and bool(window)
        n_win = (grid // window) ** 2 if window else 1
        keys = (window * window + (n_win if self.pooled else 0)) if window else tokens
        self.norm = TokenNorm(dim, norm)
        self.act_in = binary_act(dim, binary)
        self.q = binary_linear(dim, dim, binary, learned_scale)
        self.k = binary_linear(dim, dim, binary, learned_scale)
        self.v = binary_linear(dim, dim, binary, learned_scale)
        if haar:
            self.register_buffer("haar", torch.block_diag(*[haar_matrix(self.head_dim)] * heads))
        else:
            self.haar = None
        self.act_q = binary_act(dim, binary)
        self.act_k = binary_act(dim, binary)
        self.act_v = binary_act(dim, binary)
        self.binarizer = ZOO_BINARIZERS[binarizer](self.head_dim, keys) if binary else None
        self.norm_o = TokenNorm(dim, norm)
        self.act_o = binary_act(dim, binary)
        self.proj = binary_linear(dim, dim, binary, learned_scale)
        self.norm_out = TokenNorm(dim, "bn")
        self.diff = diff
        if diff:
            self.norm_d = TokenNorm(dim, norm)
            self.act_d = binary_act(dim, binary)
            self.proj_d = binary_linear(dim, dim, binary, learned_scale)
            self.norm_dout = TokenNorm(dim, "bn")

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.heads, self.head_dim).transpose(1, 2)

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, grid*grid, C)`` -> ``(B * nW, window**2, C)``."""
        b, _, c = x.shape
        g, w = self.grid, self.window
        x = x.reshape(b, g // w, w, g // w, w, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, w * w, c)

    def _unwindows(self, x: torch.Tensor, b: int) -> torch.Tensor:
        g, w = self.grid, self.window
        c = x.shape[-1]
        x = x.reshape(b, g // w, g // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(b, g * g, c)

    def scores_and_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bipolar ``q, k, v`` split into heads, ``(B', H, T', dh)`` each."""
        b = x.shape[0]
        hn = self.norm(x)
        h = self.act_in(hn)
        qr, kr, vr = self.q(h), self.k(h), self.v(h)
        if self.haar is not None:
            qr, kr = qr @ self.haar, kr @ self.haar
        q, k, v = self.act_q(qr), self.act_k(kr), self.act_v(vr)
        if self.window:
            q, k, v = self._windows(q), self._windows(k), self._windows(v)
            if self.pooled:
                nw = (self.grid // self.window) ** 2
                pooled = self.act_in(self._windows(hn).mean(dim=1).reshape(b, nw, -1))  # (B, nW, C) bits
                pk, pv = self.k(pooled), self.v(pooled)
                if self.haar is not None:
                    pk = pk @ self.haar
                pk, pv = self.act_k(pk), self.act_v(pv)
                rep = lambda t: t.unsqueeze(1).expand(b, nw, nw, t.shape[-1]).reshape(b * nw, nw, t.shape[-1])  # noqa: E731
                k = torch.cat([k, rep(pk)], dim=1)
                v = torch.cat([v, rep(pv)], dim=1)
        return self._split(q), self._split(k), self._split(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.scores_and_values(x)
        scores = q @ k.transpose(-2, -1)
        if self.binary:
            probs = self.binarizer(scores)
            o = self.binarizer.mix(probs, v)
        else:
            o = torch.softmax(scores * self.head_dim**-0.5, dim=-1) @ v
        o = o.transpose(1, 2).reshape(o.shape[0], -1, c)
        if self.window:
            o = self._unwindows(o, b)
        out = self.norm_out(self.proj(self.act_o(self.norm_o(o))))
        if self.diff:
            g = tokens_to_grid(x, self.grid)
            d = grid_to_tokens(g - F.avg_pool2d(g, 3, stride=1, padding=1, count_include_pad=True))
            out = out + self.norm_dout(self.proj_d(self.act_d(self.norm_d(d))))
        return out


class MultiScaleDilatedConv(nn.Module):
    """BHViT's multi-scale grouped dilated convolution (MSGDC) token mixer.

    ``y = BN(sum_{d in (1, 3, 5)} BinConv3x3_{groups, dilation d}(sign(norm(x))))``
    on the token grid (zero padding ``d``): three binary grouped 3x3 convs
    with growing receptive fields, summed. BHViT (CVPR 2025; code IMRL/BHViT),
    MSGDC; groups 4 as in the paper.

    Shapes: ``(B, grid*grid, C)`` -> same.
    """

    def __init__(self, dim: int, grid: int, binary: bool, norm: str = "bn", dilations: tuple = (1, 3, 5), groups: int = 4):
        super().__init__()
        self.grid, self.dilations = grid, tuple(dilations)
        self.norm = TokenNorm(dim, norm)
        self.act_in = binary_act(dim, binary)
        self.convs = nn.ModuleList(binary_conv(dim, dim, 3, binary, padding=d, dilation=d, groups=groups) for d in self.dilations)
        self.norm_out = TokenNorm(dim, "bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = tokens_to_grid(self.act_in(self.norm(x)), self.grid)
        y = 0
        for conv in self.convs:
            y = y + conv(h)
        return self.norm_out(grid_to_tokens(y))


class ZooMLP(nn.Module):
    """Binary MLP branch ``BN(W2 sign(BN(W1 sign(norm(s(x)))) - beta))`` where
    ``s`` is BHViT's token shift (:func:`shift_tokens`) when ``shift`` else
    the identity. Full precision: GELU in place of the hidden sign.

    Shapes: ``(B, T, C)`` -> ``(B, T, C)``.
    """

    def __init__(self, dim: int, hidden: int, binary: bool, learned_scale: bool = True, norm: str = "bn", shift_grid: int = 0):
        super().__init__()
        self.shift_grid = shift_grid
        self.norm = TokenNorm(dim, norm)
        self.act_in = binary_act(dim, binary)
        self.fc1 = binary_linear(dim, hidden, binary, learned_scale)
        self.norm_h = TokenNorm(hidden, "bn")
        self.act_h = binary_act(hidden, binary, nn.GELU)
        self.fc2 = binary_linear(hidden, dim, binary, learned_scale)
        self.norm_out = TokenNorm(dim, "bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift_grid:
            x = shift_tokens(x, self.shift_grid)
        h = self.act_in(self.norm(x))
        h = self.act_h(self.norm_h(self.fc1(h)))
        return self.norm_out(self.fc2(h))


class PatchMerge(nn.Module):
    """Pyramid downsampling (BinaryViT / BHViT stage transition): each 2x2
    group of grid tokens is concatenated (``4C``) and projected to ``C_out``:
    ``q(BN(W sign(norm(concat))))`` (binary ``W``), writing the 8-bit stream.
    4x fewer tokens; BinaryViT doubles the channels.

    Shapes: ``(B, grid*grid, C)`` -> ``(B, (grid/2)**2, C_out)``.
    """

    def __init__(self, dim: int, out_dim: int, grid: int, binary: bool, residual_quant: nn.Module | None, learned_scale: bool = True, norm: str = "bn"):
        super().__init__()
        if grid % 2:
            raise ValueError(f"patch merging needs an even grid, got {grid}")
        self.grid = grid
        self.norm = TokenNorm(4 * dim, norm)
        self.act = binary_act(4 * dim, binary)
        self.proj = binary_linear(4 * dim, out_dim, binary, learned_scale)
        self.norm_out = TokenNorm(out_dim, "bn")
        self.quant = residual_quant if binary else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        g = self.grid
        x = x.reshape(b, g // 2, 2, g // 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, (g // 2) ** 2, 4 * c)
        y = self.norm_out(self.proj(self.act(self.norm(x))))
        return self.quant(y) if self.quant is not None else y


class ClsHead(GAPHead):
    """CLS-token classifier (DeiT): token 0 -> BN -> q8 -> W8 (see
    :class:`GAPHead` for the integer logits). Shapes: ``(B, T, C)`` ->
    ``(B, num_classes)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.quant(self.norm(x[:, 0])))


class ClsPatchEmbed(PatchEmbed):
    """:class:`PatchEmbed` with a learned CLS token (DeiT) prepended before
    the stream quantizer: ``q(q([cls; patches]) + q(pos))``, ``pos`` of
    ``T + 1`` tokens. The CLS token is token 0 (read by :class:`ClsHead`).

    Shapes: ``(B, C, H, W)`` -> ``(B, T + 1, dim)``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dim = self.pos.shape[-1]
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pos = nn.Parameter(torch.randn(1, self.num_tokens + 1, dim) * 0.1)
        self.num_tokens += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.input_quant(x))
        x = self.norm(self.proj(x)).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.add_pos(self.quant(x), self.pos)
