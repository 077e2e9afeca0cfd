"""``didbvit-t``: DIDB-ViT, a differential-information driven binary ViT.

"High-Fidelity Differential-information Driven Binary Vision Transformer"
(DIDB-ViT, 2025; no public code found, so the mechanisms follow the
abstract and are our reading of it):

* keeps the plain ViT (isotropic, GAP head);
* differential-information attention: a binary branch on each token minus
  the mean of its 3x3 neighbourhood, added to the attention output
  (:class:`~xnorvit.model.layers.ZooAttention` ``diff``);
* Haar-wavelet frequency decomposition of q and k per head; the binary
  similarity is summed over the low and high bands
  (:func:`~xnorvit.model.layers.haar_matrix`);
* improved RPReLU with per-token as well as per-channel shifts
  (:class:`~xnorvit.model.layers.ImprovedRPReLU`);
* BiT-style elastic {0, alpha} attention probabilities (its baseline).
"""

from __future__ import annotations

from .net import ZooViT, make_config

#: 28x28: the bivit-t geometry (2-layer stem, patch 2, 7x7 tokens, dim 64, depth 4)
DEFAULTS = dict(
    stem_channels=16, stem_depth=2, patch=2, dims=[64], depths=[4], heads=[2], mlp_ratio=2.0,
    cls_token=False, binarizer="elastic", learned_scale=False, act="irprelu", haar=True, diff_attn=True,
)
DIGITS = dict(stem_depth=1, patch=2)


def didbvit_t(binary: bool = True, **overrides) -> ZooViT:
    """Build ``didbvit-t`` (binary student or FP teacher).

    Raises:
        TypeError: an unknown hyperparameter.
    """
    return ZooViT(make_config("didbvit-t", DEFAULTS, DIGITS, overrides), binary=binary)
