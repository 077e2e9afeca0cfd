"""``bivit-t``: a tiny plain ViT with BiViT's binarization.

He et al., "BiViT: Extremely Compressed Binary Vision Transformers", ICCV 2023:
softmax-aware binarization of attention probabilities
(``p >= 0.25 * rowmax(p)``, exact as ``S >= rowmax(S) - floor(ln 4 * sqrt(dh))``
on integer XNOR scores) and learnable per-channel weight scales.
"""

from __future__ import annotations

from ..vit import BinaryViT, ViTConfig


def bivit_t(binary: bool = True, **overrides) -> BinaryViT:
    """Build ``bivit-t``: a two-layer 3x3 conv stem (8 channels, then 16
    at stride 2: 28x28 -> 14x14), patch 2 (49 tokens at 28x28), dim 64,
    depth 4, 2 heads, MLP ratio 2.

    The stem is 8-bit integer arithmetic (DSP48 multipliers in hardware); 8
    rather than 16 channels quarters the second conv's multiplies and halves
    the patch embedding's, which brings the pynq-z2 accelerator at 20,000
    frames/s within 70 % of the xc7z020's LUTs and block RAM
    (``benchmarks/results/flow.json``). Its registry recipe (14 teacher + 26
    student epochs, peak learning rates 6e-3 / 1.2e-2) and its held-out
    accuracy, teacher beside it, are recorded by ``benchmarks/train.py`` in
    ``benchmarks/results/train.json``.

    Args:
        binary: binary student (True) or full-precision teacher (False).
        **overrides: any :class:`~xnorvit.model.vit.ViTConfig` field (e.g.
            ``img_size=8, patch=2`` for the 8x8 digits).

    Raises:
        TypeError: an unknown override.
    """
    cfg = ViTConfig(prob_binarizer="sab", learned_scale=True, stem_channels=8, stem_depth=2, patch=2)
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise TypeError(f"unknown bivit-t hyperparameter {k!r}")
        setattr(cfg, k, v)
    return BinaryViT(cfg, binary=binary)
