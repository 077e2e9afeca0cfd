"""The model zoo: a registry of binary ViTs by name.

``get_spec(name)`` returns a :class:`ModelSpec`; ``build_model(name, binary,
**hyperparameters)`` builds the binary student or its full-precision teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .bivit import bivit_t


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        name: registry key (CLI ``--model``).
        builder: ``builder(binary: bool, **hyperparameters) -> nn.Module``.
        description: one line.
        paper: the paper it follows.
        hardware: which operators the hardware flow supports today.
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    paper: str
    hardware: str


MODELS: dict[str, ModelSpec] = {
    "bivit-t": ModelSpec(
        "bivit-t",
        bivit_t,
        "plain ViT, conv stem, softmax-aware binarized attention, learnable weight scales",
        "He et al., BiViT, ICCV 2023",
        "all operators (target of the hardware flow)",
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
