"""The model zoo: a registry of binary ViTs by name.

``get_spec(name)`` returns a :class:`ModelSpec`; ``build_model(name, binary,
**hyperparameters)`` builds the binary student or its full-precision teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from . import bhvit as _bhvit
from .bhvit import bhvit_t
from .binary_deit import binary_deit_t
from .binaryvit import binaryvit_t
from .bivit import bivit_t
from .didbvit import didbvit_t


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        name: registry key (CLI ``--model``).
        builder: ``builder(binary: bool, **hyperparameters) -> nn.Module``.
        description: one line.
        paper: the paper it follows.
        hardware: which operators the hardware flow supports today.
        recipe: training-recipe settings the paper prescribes
            (:class:`~xnorvit.model.train.Recipe` fields, e.g. BHViT's
            oscillation regularizer), applied by ``train_run`` and ``xnorvit
            train`` under the command line's settings.
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    paper: str
    hardware: str
    recipe: dict = field(default_factory=dict)


#: what the hardware flow (flows/) maps today: bivit-t's operator set
_SUPPORTED = ("binary linear, SAB and elastic {0,alpha} attention, BN thresholds, residual add, GAP, CLS token, "
              "8-bit stem/classifier")
MODELS: dict[str, ModelSpec] = {
    "bivit-t": ModelSpec(
        "bivit-t",
        bivit_t,
        "plain ViT, conv stem, softmax-aware binarized attention, learnable weight scales",
        "He et al., BiViT, ICCV 2023",
        "all operators (target of the hardware flow)",
        # 14 teacher + 26 student epochs at 2-4x the default peak learning rates (see bivit_t):
        # with the defaults (10 + 24 epochs, 2e-3 / 3e-3) teacher and student underfit (train
        # accuracy ~95 %). Cross-layer binarization is available (Recipe.cross_layer,
        # `--cross-layer`) but off: at our scale it cost accuracy (benchmarks/results/ablation.md)
        {"teacher_epochs": 14, "epochs": 26, "teacher_lr": 6e-3, "lr": 1.2e-2},
    ),
    "binary-deit-t": ModelSpec(
        "binary-deit-t",
        binary_deit_t,
        "binary DeiT baseline: CLS-token head, elastic {0,alpha} attention probabilities (BiT)",
        "Touvron et al., DeiT, ICML 2021; Liu et al., BiT, NeurIPS 2022 (baseline of BinaryViT)",
        "all operators: CLS token (TokenInsert/TokenSelect), elastic {0,alpha} attention (BinaryAttention, exp-table "
        "row sums); benchmarks/results/zoo_hw.md",
    ),
    "binaryvit-t": ModelSpec(
        "binaryvit-t",
        binaryvit_t,
        "pyramid ViT, GAP, avg-pooling branches, affine before adds, RPReLU, elastic attention",
        "Le & Li, BinaryViT, CVPRW 2023",
        f"not yet mapped: pooling branches, LayerScale, RPReLU, patch merging (supported: {_SUPPORTED})",
        # 8 teacher + 13 student epochs keep a CPU run within 15 min: the 14x14-token first stage
        # makes a student epoch ~52 s here (19 + 10 epochs took 1,216 s of training beside a second job)
        {"teacher_epochs": 8, "epochs": 13},
    ),
    "bhvit-t": ModelSpec(
        "bhvit-t",
        bhvit_t,
        "hybrid pyramid: MSGDC binary dilated convs, window attention + pooled tokens, shift MLP, 2-bit decomposed attention",
        "BHViT: binarized hybrid ViT, CVPR 2025 (code IMRL/BHViT)",
        f"not yet mapped: binary grouped dilated conv, windows/pooled keys, token shifts, 2-bit probabilities, patch merging (supported: {_SUPPORTED})",
        dict(_bhvit.RECIPE),
    ),
    "didbvit-t": ModelSpec(
        "didbvit-t",
        didbvit_t,
        "plain ViT, differential-information attention, Haar-band Q.K similarity, improved RPReLU",
        "DIDB-ViT (High-Fidelity Differential-information Driven Binary ViT), 2025",
        f"not yet mapped: Haar projection, 3x3 differential branch, improved RPReLU (supported: {_SUPPORTED})",
    ),
}


def get_spec(name: str) -> ModelSpec:
    """Registry entry of ``name``.

    Raises:
        ValueError: unknown model; the message lists the choices.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from: {', '.join(sorted(MODELS))}") from None


def build_model(name: str, binary: bool = True, **hyperparameters) -> nn.Module:
    """Build model ``name`` (binary student or full-precision teacher).

    Raises:
        ValueError: unknown model.
        TypeError: unknown hyperparameter.
    """
    return get_spec(name).builder(binary=binary, **hyperparameters)
