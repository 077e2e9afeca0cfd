"""The `xnorvit` console script: commands, one-line errors, no overwrite."""

import json
import os
import shutil
import subprocess
import sys

import pytest


XNORVIT = shutil.which("xnorvit", path=os.path.dirname(sys.executable)) or "xnorvit"


def run(*args, cwd=None):
    return subprocess.run([XNORVIT, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def one_line_error(p) -> str:
    lines = [l for l in p.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unknown_model_lists_choices(tmp_path):
    p = run("train", "--model", "resnet", "--dataset", "mnist", "--out", tmp_path / "r")
    assert p.returncode == 2
    from xnorvit.model.zoo import MODELS

    assert f"unknown model 'resnet'; choose from: {', '.join(sorted(MODELS))}" in one_line_error(p)
    assert not (tmp_path / "r").exists()


def test_unknown_dataset_lists_choices(tmp_path):
    p = run("train", "--dataset", "imagenet", "--out", tmp_path / "r")
    assert p.returncode == 2
    assert "unknown dataset 'imagenet'; choose from: digits, mnist" in one_line_error(p)


def test_existing_run_kept_without_force(tiny_run):
    before = {f.name: f.stat().st_mtime_ns for f in tiny_run.iterdir()}
    p = run("train", "--dataset", "digits", "--out", tiny_run, "--epochs", "1")
    assert p.returncode == 2 and "--force" in one_line_error(p)
    assert {f.name: f.stat().st_mtime_ns for f in tiny_run.iterdir()} == before


def test_export_of_non_run_and_corrupt_checkpoint(tmp_path, tiny_run):
    p = run("export", tmp_path)
    assert p.returncode == 2 and "not a finished training run" in one_line_error(p)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "model.pt").write_bytes(b"\x00garbage")
    p = run("export", broken)
    assert p.returncode == 2 and "corrupt or unreadable checkpoint" in one_line_error(p)


def test_training_progress_is_quiet_in_a_pipe(tmp_path):
    """With stderr a pipe (CI, `make demo | tee`), each training phase draws its
    bar a few times (start, at most every 30 s, end), not once per step."""
    import re

    p = run("train", "--dataset", "digits", "--out", tmp_path / "r", "--epochs", "2", "--teacher-epochs", "2",
            "--dim", "16", "--depth", "1", "--stem-channels", "4")
    assert p.returncode == 0, p.stderr
    for phase in ("teacher", "student"):
        draws = [d for d in re.split(r"[\r\n]", p.stderr) if d.startswith(f"{phase}:")]
        assert 1 <= len(draws) <= 4, (phase, len(draws), draws[:5])  # 2 epochs of 45 steps each


def test_train_and_export_via_cli(tmp_path):
    out = tmp_path / "cli"
    p = run("train", "--dataset", "digits", "--out", out, "--epochs", "1", "--teacher-epochs", "1", "--dim", "16", "--depth", "1", "--stem-channels", "4", "--quiet")
    assert p.returncode == 0, p.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["hyperparameters"]["dim"] == 16 and m["hyperparameters"]["depth"] == 1
    assert m["hyperparameters"]["img_size"] == 8 and m["hyperparameters"]["patch"] == 2
    assert "held-out accuracy" in p.stdout
    # distil a second student from the first run's teacher
    p = run("train", "--dataset", "digits", "--out", tmp_path / "cli2", "--teacher", out / "teacher.pt", "--epochs", "1", "--dim", "16", "--depth", "1", "--stem-channels", "4", "--quiet")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "cli2" / "metrics.json").read_text())["teacher_epochs"] == 0
    p = run("export", out, "--images", "2")
    assert p.returncode == 0, p.stderr
    assert "2 real test images" in p.stdout and (out / "model.onnx").is_file()


def test_teacher_of_other_shape_is_refused(tmp_path, tiny_run):
    p = run("train", "--dataset", "digits", "--out", tmp_path / "x", "--teacher", tiny_run / "teacher.pt", "--dim", "32", "--quiet")
    assert p.returncode == 2
    one_line_error(p)


def test_models_lists_registry():
    p = run("models")
    assert p.returncode == 0 and "bivit-t" in p.stdout and "BiViT" in p.stdout


def test_synth_command_reports_resources(tmp_path):
    out = tmp_path / "s.json"
    p = run("synth", "mvau_xnor", "--param", "MW=16", "--param", "MH=8", "--param", "PE=2", "--param", "SIMD=4", "--out", out)
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())
    assert r["lut"] > 0 and r["ff"] > 0 and r["dsp"] == 0
    assert f"LUT {r['lut']}" in p.stdout


def test_synth_unknown_kernel_is_one_line_error():
    p = run("synth", "nosuch")
    assert p.returncode == 2 and "unknown kernel 'nosuch'" in one_line_error(p)


@pytest.mark.parametrize("error", ["ExactThresholdError", "AttentionPatternError"])
def test_compiler_limits_are_one_line_errors(error, capsys):
    """A graph the compiler cannot map (e.g. a ±1 per-channel Mul left before a
    MultiThreshold) exits 2 with one line naming the node, not a traceback."""
    import typer

    from xnorvit.flows import cli
    from xnorvit.flows.transforms import attention, exact

    exc_type = getattr(exact, error, None) or getattr(attention, error)
    with pytest.raises(typer.Exit) as info, cli._flow_errors():
        raise exc_type("MultiThreshold 'MultiThreshold_3': input producer 'Mul_0' is not a weight MatMul/Conv")
    assert info.value.exit_code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: cannot compile: MultiThreshold 'MultiThreshold_3': input producer 'Mul_0' is not a weight "
                   "MatMul/Conv"], err
