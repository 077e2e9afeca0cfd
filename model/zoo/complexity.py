"""Per-image operation counts of a binary model, computed from its modules.

``count_ops(model)`` runs one image through the binary model (eval mode)
with forward hooks and sums, per image:

* ``binary_macs``: 1-bit multiply-accumulates (XNOR-popcount or mask-select
  lanes): every binary linear (``in * out`` per token) and binary conv
  (``C_in / groups * kh * kw`` per output), the attention products
  ``Q.K^T`` (``T_q * T_k * dh`` per head) and ``P.V`` (the same times the
  number of binary masks of ``P``: 1 for SAB / elastic, 3 for BHViT's
  decomposition).
* ``real_ops``: multi-bit operations: MACs of the 8-bit stem convs, patch
  projection and classifier, plus elementwise real-valued work per output
  element: 1 per BatchNorm/LayerNorm (a threshold or affine), residual add,
  LayerScale, GAP input, pooled-token input, Haar band output of q and k,
  and the two adds summing MSGDC's three convs; 3 per RPReLU (shift, PReLU,
  shift); ``kh * kw + 1`` per pooling branch (window sum, scale); 10 per
  differential-information input (3x3 sum and subtraction); per attention
  score 2 for SAB (row max, compare) and 3 for a table softmax (look-up, row
  sum, division). Signs (RSign) fold into the preceding threshold and count
  0, as do token shifts and reshapes.

Bit operations follow BinaryViT's OPs convention only in spirit (it reports
``BOPs / 64 + FLOPs``); we report the two counts separately.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import (
    BinaryConv2d,
    BinaryLinear,
    GAPHead,
    ClsHead,
    ImprovedRPReLU,
    LayerScale,
    MultiScaleDilatedConv,
    PoolingBranches,
    QuantProbs,
    ResidualAdd,
    RPReLU,
    SoftmaxAwareBinarizer,
    ZooAttention,
)

__all__ = ["count_ops"]


def _numel(t) -> int:
    return int(t.numel()) if isinstance(t, torch.Tensor) else 0


@torch.no_grad()
def count_ops(model: nn.Module) -> dict:
    """Binary MACs and real-valued operations per image (see module doc).

    Args:
        model: a binary zoo model (``model.cfg`` gives the input shape).

    Returns:
        ``{"binary_macs": int, "real_ops": int}`` for one image.
    """
    cfg = model.cfg
    counts = {"binary_macs": 0, "real_ops": 0}
    hooks = []

    def add(key, n):
        counts[key] += int(n)

    def hook(mod, inp, out):
        x = inp[0] if inp else None
        if isinstance(mod, BinaryLinear):
            add("binary_macs", _numel(out) * mod.in_features)
        elif isinstance(mod, BinaryConv2d):
            kh, kw = mod.kernel_size
            add("binary_macs", _numel(out) * mod.in_channels // mod.groups * kh * kw)
        elif isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            add("real_ops", _numel(out) * mod.in_channels // mod.groups * kh * kw)
        elif isinstance(mod, nn.Linear):
            add("real_ops", _numel(out) * mod.in_features)
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, ResidualAdd, LayerScale)):
            add("real_ops", _numel(out))
        elif isinstance(mod, (RPReLU, ImprovedRPReLU)):
            add("real_ops", 3 * _numel(out))
        elif isinstance(mod, PoolingBranches):
            add("real_ops", _numel(out) * sum(kh * kw + 1 for kh, kw in mod.kernels))
        elif isinstance(mod, MultiScaleDilatedConv):
            add("real_ops", _numel(out) * (len(mod.convs) - 1))
        elif isinstance(mod, (SoftmaxAwareBinarizer, QuantProbs)):
            dh = int(round(mod.temperature**-2))
            levels = getattr(mod, "levels", 1)
            add("binary_macs", _numel(x) * dh * (1 + levels))
            add("real_ops", _numel(x) * (3 if isinstance(mod, QuantProbs) else 2))
        elif isinstance(mod, ZooAttention):
            t = _numel(x)
            if mod.haar is not None:
                add("real_ops", 2 * t)
            if mod.diff:
                add("real_ops", 10 * t)
            if mod.pooled:
                add("real_ops", t)
        elif isinstance(mod, (GAPHead, ClsHead)) and not isinstance(mod, ClsHead):
            add("real_ops", _numel(x))

    for m in model.modules():
        hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        model(torch.zeros(1, cfg.in_chans, cfg.img_size, cfg.img_size, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return counts


def describe_models(img_size: int = 28, in_chans: int = 1) -> list[dict]:
    """One row per registry entry at input ``img_size``: name, description,
    paper, hardware note, parameters of the binary model, binary MACs and
    real-valued operations per image (computed by building the model).

    Returns:
        list of dicts with keys ``name, description, paper, hardware,
        parameters, binary_macs, real_ops``.
    """
    from ..layers import count_parameters
    from . import MODELS, build_model

    rows = []
    for spec in MODELS.values():
        kw = {"img_size": img_size, "in_chans": in_chans}
        if img_size <= 8:  # as train_run does for the 8x8 digits
            kw.update(patch=2, stem_depth=1)
        m = build_model(spec.name, binary=True, **kw)
        rows.append({"name": spec.name, "description": spec.description, "paper": spec.paper, "hardware": spec.hardware, "parameters": count_parameters(m), **count_ops(m)})
    return rows
