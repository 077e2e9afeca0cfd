"""Datasets: real images from installed wheels, fixed stratified splits."""

import numpy as np
import pytest
import torch

from xnorvit.model.data import augment_shift, load_dataset, stratified_split, to_float


def test_mnist_split_is_stratified_4000_1000():
    d = load_dataset("mnist")
    assert d.x_train.shape == (4000, 1, 28, 28) and d.x_test.shape == (1000, 1, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert np.array_equal(np.bincount(d.y_train), [400] * 10)
    assert np.array_equal(np.bincount(d.y_test), [100] * 10)
    # real digits: ink in the middle, background zero, full uint8 range
    assert d.x_train.max() == 255 and d.x_train[:, :, 0, :].max() == 0
    # no image is in both halves
    tr = {x.tobytes() for x in d.x_train}
    assert not any(x.tobytes() in tr for x in d.x_test)


def test_test_split_prefixes_hold_every_class():
    """The held-out images are interleaved by class: verifying or exporting
    the first N images covers all digits (a hand-made round robin)."""
    d = load_dataset("mnist")
    assert list(d.y_test[:20]) == list(range(10)) * 2
    assert np.array_equal(np.bincount(d.y_test[:100]), [10] * 10)
    y = np.repeat(np.arange(3), [10, 20, 30])
    tr, te = stratified_split(y, 0.1, seed=3)
    assert list(y[te]) == [0, 1, 2, 1, 2, 2]
    assert np.all(np.diff(te[y[te] == 2]) > 0)  # each class's images in file order
    dg = load_dataset("digits")
    assert len(set(dg.y_test[:10].tolist())) == 10


def test_split_is_deterministic_and_seed_dependent():
    a, b = load_dataset("mnist"), load_dataset("mnist")
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    c = load_dataset("mnist", seed=1)
    assert not np.array_equal(a.x_test, c.x_test)


def test_digits_8x8():
    d = load_dataset("digits")
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_train.dtype == np.uint8
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.x_train.max() == 255
    counts = np.bincount(d.y_test)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each class


def test_unknown_dataset_lists_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; choose from: digits, mnist"):
        load_dataset("cifar")


def test_stratified_split_counts():
    y = np.repeat(np.arange(3), [10, 20, 30])
    tr, te = stratified_split(y, 0.1, seed=3)
    assert np.array_equal(np.bincount(y[te]), [1, 2, 3])
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 60


def test_to_float_and_shift_keep_uint8_grid():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4)
    assert torch.equal(to_float(x) * 255, x.float())
    g = torch.Generator().manual_seed(0)
    y = augment_shift(x, 1, g)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    # every output pixel is an input pixel or zero fill
    for i in range(2):
        assert set(y[i].flatten().tolist()) <= set(x[i].flatten().tolist()) | {0}
    # a shift by (dy, dx) equals a hand-made crop of the padded image
    ok = False
    padded = torch.nn.functional.pad(x[0, 0], (1, 1, 1, 1))
    for dy in range(3):
        for dx in range(3):
            ok |= torch.equal(y[0, 0], padded[dy : dy + 4, dx : dx + 4])
    assert ok
