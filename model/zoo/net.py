"""The configurable binary ViT behind the zoo's new architectures.

One network, :class:`ZooViT`, with switches for each published mechanism
(:class:`ZooConfig`); each architecture file (``binary_deit.py``,
``binaryvit.py``, ``bhvit.py``, ``didbvit.py``) fixes the switches and the
sizes. The building blocks (quantizers, binary linears, the shared 8-bit
residual quantizer, the 8-bit stem and classifier) are those of
:mod:`xnorvit.model.layers`; ``binary=False`` builds the full-precision
teacher with the same parameter names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

import brevitas.nn as qnn

from ..layers import (
    ClsHead,
    ClsPatchEmbed,
    GAPHead,
    ImprovedRPReLU,
    LayerScale,
    MultiScaleDilatedConv,
    PatchEmbed,
    PatchMerge,
    PoolingBranches,
    ResidualAdd,
    RPReLU,
    ZooAttention,
    ZooMLP,
)
from ..quant import ResidualQuant

__all__ = ["ZooConfig", "ZooBlock", "ZooViT", "make_config"]


@dataclass
class ZooConfig:
    """Hyperparameters of a :class:`ZooViT`.

    Attributes:
        img_size, in_chans, num_classes: input and classes.
        patch: patch size on the stem's output grid.
        stem_channels, stem_depth, stem_act_bits: 8-bit conv stem
            (:class:`~xnorvit.model.layers.PatchEmbed`).
        dims, depths, heads: per stage (one entry: isotropic ViT; more: a
            pyramid with 2x2 patch merging between stages).
        mlp_ratio: MLP hidden / dim.
        cls_token: DeiT CLS token and CLS head (else GAP head).
        pool_branches: BinaryViT average-pooling branches in every block.
        affine: BinaryViT LayerScale (init 0.1) before each main residual add.
        act: ``"none"``, ``"rprelu"`` (ReActNet/BinaryViT) or ``"irprelu"``
            (DIDB-ViT) on each branch output before the add.
        binarizer: attention probabilities: ``"sab"``, ``"elastic"``, ``"qd"``.
        learned_scale: learnable per-channel weight scales (else mean|W|).
        norm: ``"bn"`` (hardware) or ``"ln"``.
        window: BHViT window size in the first stage (0: global attention;
            -1: half the first stage's grid).
        pooled_tokens: BHViT pooled merge tokens as extra keys of each window.
        conv_blocks: leading blocks of the first stage that use BHViT's
            MSGDC token mixer instead of attention.
        shift_mlp: BHViT token shifts before each MLP.
        haar: DIDB-ViT Haar-band Q.K similarity.
        diff_attn: DIDB-ViT differential-information branch.
    """

    img_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    patch: int = 2
    stem_channels: int = 16
    stem_depth: int = 2
    stem_act_bits: int = 4
    dims: list = field(default_factory=lambda: [64])
    depths: list = field(default_factory=lambda: [4])
    heads: list = field(default_factory=lambda: [2])
    mlp_ratio: float = 2.0
    cls_token: bool = False
    pool_branches: bool = False
    affine: bool = False
    act: str = "none"
    binarizer: str = "elastic"
    learned_scale: bool = True
    norm: str = "bn"
    window: int = 0
    pooled_tokens: bool = False
    conv_blocks: int = 0
    shift_mlp: bool = False
    haar: bool = False
    diff_attn: bool = False
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def grid(self) -> int:
        """Token grid side of the first stage."""
        g = self.img_size // 2 ** max(0, self.stem_depth - 1) if self.stem_channels else self.img_size
        return g // self.patch

    @property
    def num_tokens(self) -> int:
        return self.grid**2


def make_config(name: str, defaults: dict, digits: dict, overrides: dict) -> ZooConfig:
    """Config of architecture ``name``: ``defaults`` (28x28 MNIST), then
    ``digits`` when ``img_size <= 8`` (8x8 digits), then ``overrides``.

    Raises:
        TypeError: an unknown hyperparameter.
    """
    for k in overrides:
        if k not in ZooConfig.__dataclass_fields__:
            raise TypeError(f"unknown {name} hyperparameter {k!r}")
    img = overrides.get("img_size", defaults.get("img_size", 28))
    kw = dict(defaults)
    if img <= 8:
        kw.update(digits)
    kw.update(overrides)
    for k in ("dims", "depths", "heads"):
        kw[k] = list(kw[k])
    return ZooConfig(**kw)


class ZooBlock(nn.Module):
    """One block on the 8-bit residual stream::

        b = mixer(x)                      # attention (ZooAttention) or MSGDC
        b = act(b); b = ls1 * b           # RPReLU / improved RPReLU; affine
        b = b + pool_branches(x)          # BinaryViT pooling branches
        x = add(x, b)                     # integer add, shared quantizer
        m = ls2 * act2(mlp(x)); x = add(x, m)

    Shapes: ``(B, T, C)`` -> same.
    """

    def __init__(self, cfg: ZooConfig, dim: int, heads: int, grid: int, tokens: int, binary: bool, residual_quant: nn.Module | None, mixer: str, window: int):
        super().__init__()
        if mixer == "conv":
            self.mixer = MultiScaleDilatedConv(dim, grid, binary, cfg.norm)
        else:
            self.mixer = ZooAttention(
                dim, heads, binary, tokens, cfg.binarizer, cfg.learned_scale, cfg.norm,
                grid=0 if cfg.cls_token else grid, haar=cfg.haar, diff=cfg.diff_attn,
                window=window, pooled=cfg.pooled_tokens,
            )
        hidden = int(round(dim * cfg.mlp_ratio))
        self.mlp = ZooMLP(dim, hidden, binary, cfg.learned_scale, cfg.norm, shift_grid=grid if cfg.shift_mlp else 0)
        if cfg.act == "rprelu":
            self.act1, self.act2 = RPReLU(dim), RPReLU(dim)
        elif cfg.act == "irprelu":
            self.act1, self.act2 = ImprovedRPReLU(dim, tokens), ImprovedRPReLU(dim, tokens)
        elif cfg.act == "none":
            self.act1 = self.act2 = None
        else:
            raise ValueError(f"unknown branch activation {cfg.act!r}; choose none, rprelu, irprelu")
        self.ls1 = LayerScale(dim, 0.1) if cfg.affine else None
        self.ls2 = LayerScale(dim, 0.1) if cfg.affine else None
        self.pool = PoolingBranches(dim, grid) if cfg.pool_branches else None
        self.add1 = ResidualAdd(residual_quant)
        self.add2 = ResidualAdd(residual_quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.mixer(x)
        if self.act1 is not None:
            b = self.act1(b)
        if self.ls1 is not None:
            b = self.ls1(b)
        if self.pool is not None:
            b = b + self.pool(x)
        x = self.add1(x, b)
        m = self.mlp(x)
        if self.act2 is not None:
            m = self.act2(m)
        if self.ls2 is not None:
            m = self.ls2(m)
        return self.add2(x, m)


class ZooViT(nn.Module):
    """Binary ViT (isotropic or pyramid) assembled from :class:`ZooConfig`.

    ``uint8 image / 255 -> 8-bit stem + patches (+ CLS) -> stages of ZooBlocks
    (2x2 patch merging between stages) -> GAP or CLS head (8-bit)``.
    ``binary=False``: the full-precision teacher of the same shape.

    Shapes: ``(B, in_chans, H, W)`` in [0, 1] -> logits ``(B, num_classes)``.

    Raises:
        ValueError: inconsistent stage lists, a grid that cannot be merged or
            windowed, or grid mechanisms together with a CLS token.
    """

    def __init__(self, cfg: ZooConfig, binary: bool = True):
        super().__init__()
        self.cfg, self.binary = cfg, binary
        if not (len(cfg.dims) == len(cfg.depths) == len(cfg.heads)):
            raise ValueError("dims, depths and heads need one entry per stage")
        if cfg.cls_token and (cfg.pool_branches or cfg.shift_mlp or cfg.conv_blocks or cfg.window or cfg.diff_attn or len(cfg.dims) > 1):
            raise ValueError("a CLS token excludes grid mechanisms (pooling branches, shifts, windows, convs, pyramid, differential attention)")
        self.residual_quant = qnn.QuantIdentity(act_quant=ResidualQuant) if binary else None
        self.embed = (ClsPatchEmbed if cfg.cls_token else PatchEmbed)(cfg.img_size, cfg.in_chans, cfg.patch, cfg.dims[0], cfg.stem_channels, cfg.stem_act_bits, binary, self.residual_quant, cfg.stem_depth)
        grid = cfg.grid
        stages, merges = [], []
        for s, (dim, depth, heads) in enumerate(zip(cfg.dims, cfg.depths, cfg.heads)):
            if s > 0:
                merges.append(PatchMerge(cfg.dims[s - 1], dim, grid, binary, self.residual_quant, cfg.learned_scale, cfg.norm))
                grid //= 2
            tokens = grid * grid + (1 if cfg.cls_token else 0)
            window = 0
            if s == 0 and cfg.window:
                window = grid // 2 if cfg.window < 0 else cfg.window
            blocks = []
            for i in range(depth):
                mixer = "conv" if (s == 0 and i < cfg.conv_blocks) else "attn"
                blocks.append(ZooBlock(cfg, dim, heads, grid, tokens, binary, self.residual_quant, mixer, window))
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.merges = nn.ModuleList(merges)
        self.head = (ClsHead if cfg.cls_token else GAPHead)(cfg.dims[-1], cfg.num_classes, binary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for s, blocks in enumerate(self.stages):
            if s > 0:
                x = self.merges[s - 1](x)
            for blk in blocks:
                x = blk(x)
        return self.head(x)

    def logit_scale(self) -> float:
        """Float scale of the integer logits (see :class:`~xnorvit.model.layers.GAPHead`)."""
        return self.head.logit_scale()

    @torch.no_grad()
    def integer_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Integer accumulators of the classifier, ``(B, num_classes)`` int64."""
        return torch.round(self(x) / self.logit_scale()).to(torch.int64)
