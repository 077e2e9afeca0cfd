"""``bivit-t``: a tiny plain ViT with BiViT's binarization.

He et al., "BiViT: Extremely Compressed Binary Vision Transformers", ICCV 2023:
softmax-aware binarization of attention probabilities
(``p >= 0.25 * rowmax(p)``, exact as ``S >= rowmax(S) - floor(ln 4 * sqrt(dh))``
on integer XNOR scores) and learnable per-channel weight scales.
"""

from __future__ import annotations

from ..vit import BinaryViT, ViTConfig


def bivit_t(binary: bool = True, **overrides) -> BinaryViT:
    """Build ``bivit-t``: patch 4 (49 tokens at 28x28), dim 64, depth 4,
    2 heads, MLP ratio 2, 3x3 conv stem of 16 channels.

    Args:
        binary: binary student (True) or full-precision teacher (False).
        **overrides: any :class:`~xnorvit.model.vit.ViTConfig` field (e.g.
            ``img_size=8, patch=2`` for the 8x8 digits).

    Raises:
        TypeError: an unknown override.
    """
    cfg = ViTConfig(prob_binarizer="sab", learned_scale=True)
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise TypeError(f"unknown bivit-t hyperparameter {k!r}")
        setattr(cfg, k, v)
    return BinaryViT(cfg, binary=binary)
