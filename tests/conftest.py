"""Shared fixtures: a tiny trained run on real data (8x8 digits), made once."""

from pathlib import Path

import pytest

from xnorvit.model.train import Recipe, train_run

TINY = dict(dim=16, depth=1, heads=2, mlp_ratio=2.0, stem_channels=4)


@pytest.fixture(scope="session")
def tiny_hparams() -> dict:
    """Hyperparameters of a tiny bivit-t that trains in seconds."""
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished run of a tiny bivit-t on the real 8x8 digits (seconds)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train_run("bivit-t", "digits", out, Recipe(epochs=4, teacher_epochs=4, batch_size=32, lr=1e-2, teacher_lr=1e-2, max_shift=0, threads=1), hyperparameters=TINY, progress=False, log=lambda *a: None)
    return out


@pytest.fixture(scope="session")
def tiny_build(tiny_run, tmp_path_factory) -> Path:
    """``xnorvit build`` (``build_run``) of the exported tiny run for pynq-z2
    at 100k frames/s (~1 min). Shared: tests copy it before changing anything."""
    import shutil

    from xnorvit.flows.verify import build_run
    from xnorvit.model.export import export_run

    root = tmp_path_factory.mktemp("tinybuild")
    run = root / "run"
    shutil.copytree(tiny_run, run)
    export_run(run, images=4)
    out = root / "build"
    build_run(run, out, "pynq-z2", target_fps=100_000, images=4)
    return out
