"""``bhvit-t``: BHViT, a binarization-friendly hierarchical hybrid ViT.

BHViT (a binarization-friendly hybrid ViT, CVPR 2025;
code IMRL/BHViT), at PYNQ scale:

* hierarchy: two stages joined by 2x2 patch merging (14x14 tokens at dim 32,
  7x7 at dim 64);
* MSGDC token mixer in the first block: three binary grouped 3x3 convs
  (groups 4, dilations 1/3/5) summed
  (:class:`~xnorvit.model.layers.MultiScaleDilatedConv`);
* MSMHA: attention inside 7x7 windows of the 14x14 grid plus the pooled
  merge token of every window as extra keys
  (:class:`~xnorvit.model.layers.ZooAttention` ``window``/``pooled``);
* shift-based MLP: channel groups shifted by +-1, +-2 tokens along each grid
  axis before the MLP (:func:`~xnorvit.model.layers.shift_tokens`);
* quantization-decomposition attention: 2-bit probabilities ``alpha *
  sum_{k=1..3} M_k`` as a sum of three binary masks
  (:class:`~xnorvit.model.quant.DecomposedQuant`);
* the weight-oscillation regularizer ``lambda * mean(| |w| - 1 |)`` in the
  last 10% of the epochs (:func:`~xnorvit.model.quant.oscillation_loss`,
  :attr:`RECIPE`).
"""

from __future__ import annotations

from .net import ZooViT, make_config

DEFAULTS = dict(
    stem_channels=16, stem_depth=1, patch=2, dims=[32, 64], depths=[2, 2], heads=[1, 2], mlp_ratio=2.0,
    cls_token=False, binarizer="qd", learned_scale=False, act="none",
    window=-1, pooled_tokens=True, conv_blocks=1, shift_mlp=True,
)
#: 8x8 digits: 4x4 tokens (windows 2x2), merge -> 2x2
DIGITS = dict(stem_depth=1, patch=2)
#: training-recipe settings: the paper's oscillation loss weight 0.8 in the last 10% of epochs;
#: 8 teacher + 16 student epochs keep a CPU run within 15 min (19 + 10 took 990 s of training
#: on this 2-core machine with a second job beside it, 97.2 % vs teacher 98.1 % on MNIST)
RECIPE = dict(osc_reg=0.8, osc_reg_last=0.1, teacher_epochs=8, epochs=16)


def bhvit_t(binary: bool = True, **overrides) -> ZooViT:
    """Build ``bhvit-t`` (binary student or FP teacher).

    Raises:
        TypeError: an unknown hyperparameter.
    """
    return ZooViT(make_config("bhvit-t", DEFAULTS, DIGITS, overrides), binary=binary)
