"""``binary-deit-t``: the binary DeiT baseline of BinaryViT's ablation.

A plain (isotropic) ViT with a CLS token read by the classifier (DeiT,
Touvron et al. 2021) and BiT's elastic binarization of the attention
probabilities, ``P = alpha * clamp(round(p / alpha), 0, 1)`` in ``{0, alpha}``
with a learnable ``alpha`` (Liu et al., "BiT", NeurIPS 2022;
:class:`~xnorvit.model.quant.ElasticBinaryQuant`); weight scales
``mean|W_o|`` (XNOR-Net). Le & Li (BinaryViT, 2023) start their ablation from
this model (binary DeiT-S, 48.5% ImageNet top-1).
"""

from __future__ import annotations

from .net import ZooViT, make_config

#: 28x28 MNIST defaults: 2-layer conv stem (28 -> 14), patch 2 -> 49 tokens + CLS
DEFAULTS = dict(
    stem_channels=16, stem_depth=2, patch=2, dims=[64], depths=[4], heads=[2], mlp_ratio=2.0,
    cls_token=True, binarizer="elastic", learned_scale=False, act="none",
)
#: 8x8 digits: one stride-1 stem conv, patch 2 -> 16 tokens + CLS
DIGITS = dict(stem_depth=1, patch=2)


def binary_deit_t(binary: bool = True, **overrides) -> ZooViT:
    """Build ``binary-deit-t`` (binary student or FP teacher).

    Raises:
        TypeError: an unknown hyperparameter.
    """
    return ZooViT(make_config("binary-deit-t", DEFAULTS, DIGITS, overrides), binary=binary)
