"""The plain (isotropic) binary Vision Transformer shared by the model zoo."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .layers import Block, GAPHead, PatchEmbed
from .quant import ResidualQuant

import brevitas.nn as qnn

__all__ = ["ViTConfig", "BinaryViT"]


@dataclass
class ViTConfig:
    """Hyperparameters of a plain binary ViT.

    Attributes:
        img_size: input height = width in pixels (28 MNIST, 8 digits).
        in_chans: input channels.
        num_classes: classes.
        patch: patch size in pixels (tokens = (img_size / patch)**2).
        dim: embedding size.
        depth: number of transformer blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden size / dim.
        stem_channels: channels of the 3x3 conv stem (0: plain patchify).
        stem_depth: stem convs (the 2nd on are stride 2, doubling channels).
        stem_act_bits: bits of the stem activation.
        stem_weight_bits: 8, or 1 for binary weights in the stem convs after
            the first and in the patch projection (see ``layers.PatchEmbed``).
        prob_binarizer: attention-probability binarizer (see layers.PROB_BINARIZERS).
        learned_scale: learnable per-channel weight scales (BiViT) or mean |W|.
        norm: "bn" (hardware) or "ln".
    """

    img_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    patch: int = 4
    dim: int = 64
    depth: int = 4
    heads: int = 2
    mlp_ratio: float = 2.0
    stem_channels: int = 16
    stem_depth: int = 1
    stem_act_bits: int = 4
    stem_weight_bits: int = 8
    prob_binarizer: str = "sab"
    learned_scale: bool = True
    norm: str = "bn"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def num_tokens(self) -> int:
        grid = self.img_size // 2 ** max(0, self.stem_depth - 1) if self.stem_channels else self.img_size
        return (grid // self.patch) ** 2

    @property
    def hidden(self) -> int:
        return int(round(self.dim * self.mlp_ratio))


class BinaryViT(nn.Module):
    """Isotropic ViT with binary attention and MLPs on an 8-bit residual stream.

    ``binary=False`` builds the full-precision teacher of the same shape.

    Shapes: input ``(B, in_chans, H, W)`` float in [0, 1] (uint8 / 255);
    output logits ``(B, num_classes)`` float. For a binary model,
    ``logits / logit_scale()`` are the integer accumulators of the 8-bit
    classifier (:meth:`integer_logits`).
    """

    def __init__(self, cfg: ViTConfig, binary: bool = True):
        super().__init__()
        self.cfg, self.binary = cfg, binary
        # One quantizer for the whole residual stream: every add is an integer add.
        self.residual_quant = qnn.QuantIdentity(act_quant=ResidualQuant) if binary else None
        self.embed = PatchEmbed(cfg.img_size, cfg.in_chans, cfg.patch, cfg.dim, cfg.stem_channels, cfg.stem_act_bits, binary, self.residual_quant, cfg.stem_depth,
                                cfg.stem_weight_bits)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.hidden, binary, self.residual_quant, cfg.prob_binarizer, cfg.learned_scale, cfg.norm)
            for _ in range(cfg.depth)
        )
        self.head = GAPHead(cfg.dim, cfg.num_classes, binary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return self.head(x)

    def logit_scale(self) -> float:
        """Float scale of the integer logits (see :class:`~xnorvit.model.layers.GAPHead`)."""
        return self.head.logit_scale()

    @torch.no_grad()
    def integer_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Integer accumulators of the classifier, ``(B, num_classes)`` int64."""
        return torch.round(self(x) / self.logit_scale()).to(torch.int64)
