"""``binaryvit-t``: BinaryViT at PYNQ scale.

Le & Li, "BinaryViT: Pushing Binary Vision Transformers Towards
Convolutional Models", CVPR workshops 2023. Relative to the binary DeiT:

* global average pooling of all tokens instead of the CLS token
  (:class:`~xnorvit.model.layers.GAPHead`);
* per block, average-pooling branches over the token grid with kernels
  (1,3), (3,1), (1,5), (5,1), each times a LayerScale initialised to 0
  (:class:`~xnorvit.model.layers.PoolingBranches`);
* an affine ``gamma * b`` (LayerScale, init 0.1) before each main residual
  add (:class:`~xnorvit.model.layers.LayerScale`);
* a pyramid: stages joined by 2x2 patch merging (4x fewer tokens, 2x
  channels; :class:`~xnorvit.model.layers.PatchMerge`);
* elastic {0, alpha} attention probabilities ``alpha * clamp(round(p /
  alpha), 0, 1)`` (:class:`~xnorvit.model.layers.QuantProbs`);
* RPReLU ``PReLU(x - gamma) + zeta`` on each branch output
  (:class:`~xnorvit.model.layers.RPReLU`).

Our scale: two stages (14x14 tokens at dim 32, then 7x7 at dim 64) instead
of four; BatchNorm instead of LayerNorm as in the paper's code.
"""

from __future__ import annotations

from .net import ZooViT, make_config

#: 28x28: one stride-1 stem conv, patch 2 -> 14x14 tokens (dim 32, 1 block), merge -> 7x7 (dim 64, 3 blocks)
DEFAULTS = dict(
    stem_channels=16, stem_depth=1, patch=2, dims=[32, 64], depths=[1, 3], heads=[1, 2], mlp_ratio=2.0,
    cls_token=False, pool_branches=True, affine=True, act="rprelu", binarizer="elastic", learned_scale=False,
)
#: 8x8 digits: patch 2 -> 4x4 tokens, merge -> 2x2
DIGITS = dict(stem_depth=1, patch=2)


def binaryvit_t(binary: bool = True, **overrides) -> ZooViT:
    """Build ``binaryvit-t`` (binary student or FP teacher).

    Raises:
        TypeError: an unknown hyperparameter.
    """
    return ZooViT(make_config("binaryvit-t", DEFAULTS, DIGITS, overrides), binary=binary)
