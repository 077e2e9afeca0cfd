"""Each zoo model trains on real data, exports to QONNX, and QONNX execution
equals PyTorch bit for bit on real held-out images."""

import json

import pytest
import torch

from xnorvit.model.data import Split, load_dataset, to_float
from xnorvit.model.export import check_export, export_qonnx_model, export_run
from xnorvit.model.train import Recipe, evaluate, load_checkpoint, train_model, train_run
from xnorvit.model.zoo import build_model

#: tiny configurations (seconds of training) of the four new models
TINY = {
    "binary-deit-t": dict(stem_channels=4, dims=[16], depths=[1], heads=[2]),
    "binaryvit-t": dict(stem_channels=4, dims=[16, 32], depths=[1, 1], heads=[1, 2]),
    "bhvit-t": dict(stem_channels=4, dims=[16, 32], depths=[2, 1], heads=[1, 2]),
    "didbvit-t": dict(stem_channels=4, dims=[16], depths=[1], heads=[2]),
}
RECIPE = dict(batch_size=32, lr=1e-2, teacher_lr=1e-2, max_shift=0, threads=1)


@pytest.fixture(scope="module")
def mnist_small() -> Split:
    d = load_dataset("mnist")
    # every 8th training image (500, all classes) and the held-out test images
    return Split("mnist", d.x_train[::8], d.y_train[::8], d.x_test, d.y_test)


def _train_tiny(name: str, data: Split, epochs: int, extra: dict | None = None):
    torch.manual_seed(0)
    recipe = Recipe(epochs=epochs, teacher_epochs=epochs, **RECIPE, **(extra or {}))
    teacher = build_model(name, binary=False, **TINY[name])
    train_model(teacher, data, epochs, recipe.teacher_lr, recipe, progress=False)
    student = build_model(name, binary=True, **TINY[name])
    student.load_state_dict(teacher.state_dict(), strict=False)
    res = train_model(student, data, epochs, recipe.lr, recipe, teacher, progress=False)
    return teacher, student, res


@pytest.mark.parametrize("name", list(TINY))
def test_trains_on_real_mnist_and_exports_bit_exact(name, mnist_small, tmp_path):
    extra = {"osc_reg": 0.8, "osc_reg_last": 0.5} if name == "bhvit-t" else None
    teacher, student, res = _train_tiny(name, mnist_small, 2, extra)
    losses = [h["loss"] for h in res["history"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    if extra is None:  # (bhvit-t's second epoch adds the oscillation loss to the total)
        assert losses[1] < losses[0]  # it learns
    student.eval()
    export_qonnx_model(student, tmp_path / "m.onnx")
    s = check_export(student, tmp_path / "m.onnx", mnist_small.x_test[:3])
    assert s["images"] == 3 and s["integer_logits_equal"] and s["argmax_equal"]
    assert s["quant_tensors_checked"] == s["quant_tensors_bit_exact"] > 3 * 10


def test_cross_layer_schedule_trains_bivit(mnist_small):
    torch.manual_seed(0)
    hp = dict(dim=16, depth=1, stem_channels=4)
    recipe = Recipe(epochs=2, teacher_epochs=1, cross_layer=0.5, **RECIPE)
    teacher = build_model("bivit-t", binary=False, **hp)
    train_model(teacher, mnist_small, 1, recipe.teacher_lr, recipe, progress=False)
    student = build_model("bivit-t", binary=True, **hp)
    student.load_state_dict(teacher.state_dict(), strict=False)
    res = train_model(student, mnist_small, 2, recipe.lr, recipe, teacher, progress=False)
    fc1 = student.blocks[0].mlp.fc1
    assert "forward" not in vars(fc1)  # binary again after the full-precision phase
    assert bool(fc1.scale_initialized)
    assert res["history"][1]["loss"] < res["history"][0]["loss"]


def test_digits_run_directory_export_binaryvit(tmp_path):
    """The 8x8 digits config through train_run / load_checkpoint / export_run."""
    out = tmp_path / "bv"
    m = train_run("binaryvit-t", "digits", out, Recipe(epochs=4, teacher_epochs=4, **RECIPE), hyperparameters=TINY["binaryvit-t"], progress=False, log=lambda *a: None)
    assert m["test_accuracy"] > 0.5 and m["teacher_test_accuracy"] > 0.5
    model, meta = load_checkpoint(out / "model.pt")
    assert meta["model"] == "binaryvit-t" and model.cfg.img_size == 8 and model.cfg.grid == 4
    s = export_run(out, images=3)
    assert s["integer_logits_equal"] and s["quant_tensors_checked"] == s["quant_tensors_bit_exact"]
    assert json.loads((out / "export_check.json").read_text())["images"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["binary-deit-t", "bhvit-t", "didbvit-t"])
def test_digits_run_directory_export(name, tmp_path):
    out = tmp_path / name
    m = train_run(name, "digits", out, Recipe(epochs=4, teacher_epochs=4, **RECIPE), hyperparameters=TINY[name], progress=False, log=lambda *a: None)
    assert m["test_accuracy"] > 0.5
    s = export_run(out, images=5)
    assert s["integer_logits_equal"] and s["quant_tensors_checked"] == s["quant_tensors_bit_exact"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TINY))
def test_default_size_exports_bit_exact_on_mnist(name, mnist_small, tmp_path):
    """The default 28x28 configuration, one epoch of training, 10 real images."""
    torch.manual_seed(0)
    recipe = Recipe(epochs=1, teacher_epochs=1, **RECIPE)
    student = build_model(name, binary=True)
    train_model(student, mnist_small, 1, recipe.lr, recipe, progress=False)
    student.eval()
    assert evaluate(student, mnist_small.x_test[:100], mnist_small.y_test[:100]) > 0.1
    export_qonnx_model(student, tmp_path / "m.onnx")
    s = check_export(student, tmp_path / "m.onnx", mnist_small.x_test[:10])
    assert s["integer_logits_equal"] and s["quant_tensors_checked"] == s["quant_tensors_bit_exact"]
    with torch.no_grad():
        assert student(to_float(mnist_small.x_test[:2])).shape == (2, 10)
