"""A bivit-t whose BatchNorm and quantizer statistics come from real training
images, without training: the compiler, hardware-op and whole-network tests
compare their graphs against it (importable from tests/ and rtl_tests/)."""

import torch

from xnorvit.model.data import load_dataset, to_float
from xnorvit.model.zoo import build_model

#: a bivit-t small enough for the 8x8 digits and fast tests
SMALL = dict(img_size=8, patch=2, dim=16, depth=1, heads=2, stem_channels=4)


def calibrated_bivit(dataset: str, batches: int = 4, **hyperparameters):
    """``(model, data)``: a binary bivit-t (seed 0) run in train mode over
    ``batches`` x 64 real training images of ``dataset`` (statistics only, no
    gradient step), then put in eval mode."""
    return calibrated_model("bivit-t", dataset, batches, **hyperparameters)


#: a binary-deit-t (CLS token, elastic {0, alpha} attention) for the 8x8 digits
DEIT_SMALL = dict(img_size=8, stem_depth=1, patch=2, stem_channels=4, dims=[16], depths=[1], heads=[2])


def calibrated_model(name: str, dataset: str, batches: int = 4, **hyperparameters):
    """``(model, data)``: zoo model ``name`` calibrated as :func:`calibrated_bivit`."""
    torch.manual_seed(0)
    d = load_dataset(dataset)
    model = build_model(name, binary=True, **hyperparameters)
    model.train()
    with torch.no_grad():
        for i in range(batches):
            model(to_float(d.x_train[i * 64 : (i + 1) * 64]))
    model.eval()
    return model, d
