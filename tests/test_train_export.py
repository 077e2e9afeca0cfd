"""Training smoke run, checkpoints, QONNX export equality on real images."""

import json

import numpy as np
import pytest
import torch

from xnorvit.model.data import load_dataset, to_float
from xnorvit.model.export import ExportMismatchError, check_export, export_qonnx_model, export_run
from xnorvit.model.train import CheckpointError, Recipe, RunExistsError, load_checkpoint, train_run
from xnorvit.model.zoo import build_model


def test_tiny_run_writes_finished_run(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    for key in ("model", "dataset", "test_accuracy", "teacher_test_accuracy", "train_seconds", "epochs", "seed"):
        assert key in m
    assert m["model"] == "bivit-t" and m["dataset"] == "digits" and m["epochs"] == 4
    # four short epochs on the real digits already beat chance (0.1) by far
    assert m["test_accuracy"] > 0.5 and m["teacher_test_accuracy"] > 0.7
    assert (tiny_run / "teacher.pt").is_file() and (tiny_run / "model.pt").is_file()


def test_checkpoint_roundtrip_reproduces_accuracy(tiny_run):
    model, meta = load_checkpoint(tiny_run / "model.pt")
    assert meta["binary"] and meta["model"] == "bivit-t"
    d = load_dataset("digits")
    with torch.no_grad():
        acc = float((model(to_float(d.x_test)).argmax(1).numpy() == d.y_test).mean())
    assert acc == json.loads((tiny_run / "metrics.json").read_text())["test_accuracy"]


def test_run_dir_not_overwritten_without_force(tiny_run, tiny_hparams):
    before = (tiny_run / "model.pt").read_bytes()
    with pytest.raises(RunExistsError, match="--force"):
        train_run("bivit-t", "digits", tiny_run, Recipe(epochs=1, teacher_epochs=1), hyperparameters=tiny_hparams, progress=False)
    assert (tiny_run / "model.pt").read_bytes() == before


def test_training_is_seeded(tmp_path, tiny_hparams):
    r = Recipe(epochs=1, teacher_epochs=1, batch_size=64, threads=1)
    kw = dict(hyperparameters=tiny_hparams, progress=False, log=lambda *a: None)
    a = train_run("bivit-t", "digits", tmp_path / "a", r, **kw)
    b = train_run("bivit-t", "digits", tmp_path / "b", r, **kw)
    assert a["test_accuracy"] == b["test_accuracy"] and a["history"] == b["history"]


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not an xnorvit checkpoint"):
        load_checkpoint(other)


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only=True: a pickle that would run code is refused."""
    evil = tmp_path / "evil.pt"
    torch.save({"format": "xnorvit-checkpoint-1", "obj": np.dtype}, evil)  # a class, not tensors
    with pytest.raises(CheckpointError, match="refused checkpoint .* pickled objects other than tensors"):
        load_checkpoint(evil)


def test_export_run_bit_exact_on_real_images(tiny_run):
    s = export_run(tiny_run, images=4)
    assert (tiny_run / "model.onnx").is_file()
    assert s["images"] == 4 and s["integer_logits_equal"] and s["argmax_equal"]
    assert s["quant_tensors_checked"] == s["quant_tensors_bit_exact"] > 4 * 10
    assert json.loads((tiny_run / "export_check.json").read_text())["images"] == 4


def test_full_size_bivit_t_export_matches_on_mnist(tmp_path):
    """The default 28x28 bivit-t (49 tokens, dim 64, depth 4) exports exactly."""
    torch.manual_seed(0)
    d = load_dataset("mnist")
    model = build_model("bivit-t", binary=True)
    model.train()
    with torch.no_grad():  # calibrate BN and quantizer statistics on real images
        for i in range(4):
            model(to_float(d.x_train[i * 64 : (i + 1) * 64]))
    model.eval()
    export_qonnx_model(model, tmp_path / "m.onnx")
    s = check_export(model, tmp_path / "m.onnx", d.x_test[:2])
    # 2 images x (input + 2 stem ReLUs + 3 in the embedding (x, pos, x + pos)
    # + 4 blocks x (5 attention signs + 2 MLP signs + 2 residual adds x 2)
    # + head) quantized tensors
    assert s["quant_tensors_bit_exact"] == s["quant_tensors_checked"] == 2 * (1 + 2 + 3 + 4 * (5 + 2 + 4) + 1)
    assert s["integer_logits_equal"]


def test_export_check_detects_a_changed_model(tiny_run, tmp_path):
    model, _ = load_checkpoint(tiny_run / "model.pt")
    export_qonnx_model(model, tmp_path / "m.onnx")
    with torch.no_grad():  # perturb a threshold after export: PyTorch now differs
        blk = model.blocks[0]
        blk.mlp.act_in.beta.add_(5.0)
    with pytest.raises(ExportMismatchError, match="differs"):
        check_export(model, tmp_path / "m.onnx", load_dataset("digits").x_test[:2])
