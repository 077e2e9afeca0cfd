"""Quantization-aware training with knowledge distillation.

Recipe (BinaryViT / BHViT style): a full-precision teacher of the same shape
is trained first; the binary student is initialised from the teacher's
weights and trained with ``alpha * softCE(student, teacher) + (1 - alpha) *
CE(student, labels)``, AdamW with linear warm-up and cosine decay, random
translations as augmentation. Everything is seeded.

A run directory ``runs/NAME`` holds::

    config.json    model name, dataset, hyperparameters, recipe
    teacher.pt     full-precision teacher checkpoint
    model.pt       binary student checkpoint
    metrics.json   written last: its presence marks a finished run
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .data import Split, augment_shift, load_dataset, to_float
from .zoo import build_model, get_spec

__all__ = [
    "Recipe",
    "CheckpointError",
    "RunExistsError",
    "save_checkpoint",
    "load_checkpoint",
    "evaluate",
    "train_model",
    "train_run",
]

CHECKPOINT_FORMAT = "xnorvit-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or not an xnorvit checkpoint."""


class RunExistsError(FileExistsError):
    """The output directory exists and ``force`` was not given."""


@dataclass
class Recipe:
    """Training hyperparameters (one recipe for teacher and student).

    Attributes:
        epochs: student epochs.
        teacher_epochs: teacher epochs (when no teacher is given).
        batch_size: images per step.
        lr: student peak learning rate (AdamW).
        teacher_lr: teacher peak learning rate.
        weight_decay: AdamW weight decay of the teacher (the binary student's
            latent weights get none).
        warmup_epochs: linear warm-up length.
        distill_alpha: weight of the soft cross-entropy to the teacher.
        max_shift: random translation in pixels (0: none).
        seed: seed of initialisation, shuffling and augmentation.
        threads: torch CPU threads; 0 (default): torch's default, one per
            physical core. Alone on the machine (``make demo``,
            ``benchmarks/train.py``) the second core pays: in the fresh-clone
            ``make demo`` transcripts of ``benchmarks/demo.py`` the default
            bivit-t recipe trained in 418 s with 2 threads here
            (``benchmarks/results/demo.txt``), 578 s with 1 (the same
            benchmark at commit 66322e3).
            Under other load a multi-thread run slows several-fold (OpenMP
            barriers wait for the busy core): the tests, which share the
            machine with simulations, pass 1.
        cross_layer: BiViT's cross-layer binarization (He et al., ICCV 2023):
            for the first ``round(cross_layer * epochs)`` student epochs only
            the attention is binary and every ``*.mlp`` branch runs in full
            precision (latent weights, GELU hidden activation); then the
            MLPs are binarized too. 0: off.
        osc_reg: weight ``lambda`` of BHViT's oscillation regularizer
            ``lambda * mean(| |w| - 1 |)`` on the latent binary weights
            (:func:`~xnorvit.model.quant.oscillation_loss`). 0: off.
        osc_reg_last: fraction of the last student epochs in which it is on
            (BHViT: ~10%).
    """

    epochs: int = 19
    teacher_epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    teacher_lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    distill_alpha: float = 0.9
    max_shift: int = 2
    seed: int = 0
    threads: int = 0
    cross_layer: float = 0.0
    osc_reg: float = 0.0
    osc_reg_last: float = 0.1


def save_checkpoint(path: Path, model: nn.Module, name: str, binary: bool, dataset: str, extra: dict | None = None) -> None:
    """Write a checkpoint atomically (temp file + rename).

    Contents: format tag, model name, ``binary``, config dict, dataset and the
    state dict (tensors only), loadable with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": name,
        "binary": binary,
        "config": model.cfg.to_dict(),
        "dataset": dataset,
        "extra": extra or {},
        "state_dict": model.state_dict(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Uses ``torch.load(weights_only=True)``: no code is unpickled.

    Returns:
        ``(model in eval mode, payload without state_dict)``.

    Raises:
        CheckpointError: file missing, unreadable, not an xnorvit checkpoint,
            or its weights do not fit the model it names.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # no refused class or function: the bytes are no pickle at all
            raise CheckpointError(f"corrupt or unreadable checkpoint {path} (not a readable torch file)") from None
        # weights_only refused an object that is not a tensor/container: unpickling it could run code
        raise CheckpointError(f"refused checkpoint {path}: it holds pickled objects other than tensors (loading "
                              "them could run code); only checkpoints written by `xnorvit train` load") from None
    except Exception as exc:  # torch raises several types for corrupt files
        first = (str(exc).splitlines() or [""])[0][:160]
        raise CheckpointError(f"corrupt or unreadable checkpoint {path} ({type(exc).__name__}: {first})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an xnorvit checkpoint (format tag missing)")
    cfg = dict(payload["config"])
    cfg.pop("extra", None)
    try:
        model = build_model(payload["model"], binary=payload["binary"], **cfg)
        _prime(model)
        model.load_state_dict(payload["state_dict"])
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit model {payload.get('model')!r}: {str(exc).splitlines()[0][:200]}") from None
    model.eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta


@torch.no_grad()
def _prime(model: nn.Module) -> None:
    """Run one forward in eval mode so lazily created Brevitas parameters exist."""
    cfg = model.cfg
    was = model.training
    model.eval()
    model(torch.zeros(1, cfg.in_chans, cfg.img_size, cfg.img_size))
    model.train(was)


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy (fraction) of ``model`` on uint8 images ``x`` ``(N,C,H,W)``."""
    was = model.training
    model.eval()
    correct = 0
    dev = _device_of(model)
    for i in range(0, len(x), batch_size):
        logits = model(to_float(x[i : i + batch_size]).to(dev))
        correct += int((logits.argmax(1).cpu() == torch.as_tensor(y[i : i + batch_size])).sum())
    model.train(was)
    return correct / len(x)


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def binary_latent_weights(model: nn.Module) -> list[torch.Tensor]:
    """Latent weights of every binary linear/conv layer of ``model``."""
    from .layers import BinaryConv2d, BinaryLinear

    return [m.weight for m in model.modules() if isinstance(m, (BinaryLinear, BinaryConv2d))]


class mlp_full_precision:
    """Context manager of BiViT's cross-layer binarization: inside it, every
    binary layer under a ``*.mlp`` module of ``model`` runs in full
    precision (binary linears as ``x W^T`` with the latent weights, RSigns
    as the identity, the hidden RSign ``act_h`` as GELU, as in the teacher);
    on exit the binary forwards are back. Attention stays binary.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.patched: list[nn.Module] = []

    def __enter__(self):
        from .layers import BinaryLinear
        from .quant import BinaryAct

        for name, mod in self.model.named_modules():
            if "mlp" not in name.split(".")[:-1]:
                continue
            if isinstance(mod, BinaryLinear):
                mod.forward = (lambda m: (lambda x: F.linear(x, m.weight)))(mod)
            elif isinstance(mod, BinaryAct):
                mod.forward = F.gelu if name.endswith("act_h") else (lambda x: x)
            else:
                continue
            self.patched.append(mod)
        return self

    def __exit__(self, *exc):
        for mod in self.patched:
            del mod.forward
        self.patched.clear()
        return False


def _lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * t))


def _param_groups(model: nn.Module, weight_decay: float, binary: bool) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # no decay on norms, thresholds, scales, position embedding, and on
        # the latent weights of binary layers (decay pulls them to the sign flip)
        if p.ndim <= 1 or "pos" in name or "scaling" in name or binary:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_model(
    model: nn.Module,
    data: Split,
    epochs: int,
    lr: float,
    recipe: Recipe,
    teacher: nn.Module | None = None,
    desc: str = "train",
    progress: bool = True,
) -> dict:
    """Train ``model`` in place on ``data``.

    Args:
        model: the model (binary or full precision).
        data: dataset split (uint8 images).
        epochs: epochs.
        lr: peak learning rate.
        recipe: the rest of the hyperparameters.
        teacher: frozen teacher for distillation (None: plain cross-entropy).
        desc: progress-bar label.
        progress: show a tqdm bar with loss and running accuracy.

    Returns:
        ``{"train_seconds", "test_accuracy", "history": [...]}``.
    """
    g = torch.Generator().manual_seed(recipe.seed)
    dev = _device_of(model)
    x_all = torch.as_tensor(data.x_train)
    y_all = torch.as_tensor(data.y_train)
    binary = bool(getattr(model, "binary", False))
    fp_mlp_epochs = int(round(recipe.cross_layer * epochs)) if binary else 0
    osc_from = epochs - max(1, int(round(recipe.osc_reg_last * epochs))) if (binary and recipe.osc_reg) else epochs
    n = len(x_all)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    total = epochs * steps_per_epoch
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    opt = torch.optim.AdamW(_param_groups(model, recipe.weight_decay, getattr(model, "binary", False)), lr=lr)
    if teacher is not None:
        teacher.eval()
    history = []
    t0 = time.time()
    step = 0
    # one bar per phase; redrawn at most every 30 s when stderr is a log file, not a terminal
    tty = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    # (maxinterval too: tqdm's monitor thread otherwise forces a redraw every 10 s)
    every = 0.1 if tty else 30.0
    bar = tqdm(total=total, desc=desc, disable=not progress, dynamic_ncols=True, leave=True,
               mininterval=every, maxinterval=max(every, 10.0))
    for epoch in range(epochs):
        model.train()
        phase = mlp_full_precision(model) if epoch < fp_mlp_epochs else None
        if phase is not None:
            phase.__enter__()
        perm = torch.randperm(n, generator=g)
        seen = correct = 0
        loss_sum = 0.0
        for i in range(0, n, recipe.batch_size):
            idx = perm[i : i + recipe.batch_size]
            xb = to_float(augment_shift(x_all[idx], recipe.max_shift, g)).to(dev)
            yb = y_all[idx].to(dev)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total, warmup, lr)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if teacher is not None:
                with torch.no_grad():
                    soft = torch.softmax(teacher(xb), dim=1)
                kd = -(soft * torch.log_softmax(logits, dim=1)).sum(1).mean()
                loss = recipe.distill_alpha * kd + (1 - recipe.distill_alpha) * loss
            if epoch >= osc_from:
                from .quant import oscillation_loss

                loss = loss + recipe.osc_reg * oscillation_loss(binary_latent_weights(model))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += loss.item() * len(yb)
            # refresh=False: set_postfix would otherwise redraw on every step, whatever mininterval says
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
            bar.update(1)
        if phase is not None:
            phase.__exit__(None, None, None)
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen})
    bar.close()
    train_seconds = time.time() - t0
    acc = evaluate(model, data.x_test, data.y_test)
    history[-1]["test_accuracy"] = acc
    return {"train_seconds": train_seconds, "test_accuracy": acc, "history": history}


def prepare_out_dir(out: Path, force: bool) -> None:
    """Create ``out``; an existing non-empty directory needs ``force``.

    Raises:
        RunExistsError: ``out`` exists, is not empty and ``force`` is False.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise RunExistsError(f"{out} already exists; pass --force to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def train_run(
    model_name: str,
    dataset: str,
    out: str | Path,
    recipe: Recipe | None = None,
    teacher_path: str | Path | None = None,
    hyperparameters: dict | None = None,
    force: bool = False,
    progress: bool = True,
    log=print,
) -> dict:
    """Train a teacher (unless given) and a distilled binary student; write
    the run directory (see module docstring).

    Args:
        model_name: registry name (``xnorvit models``).
        dataset: ``mnist`` or ``digits``.
        out: run directory.
        recipe: hyperparameters (default: :class:`Recipe` with the model's
            registry settings, :attr:`~xnorvit.model.zoo.ModelSpec.recipe`).
        teacher_path: an existing full-precision ``teacher.pt`` to distil
            from (same model and shape); trained first when None.
        hyperparameters: model overrides (dim, depth, heads, patch, mlp_ratio,
            ...); ``img_size``/``in_chans`` follow the dataset.
        force: overwrite an existing run directory.

    Returns:
        The metrics dict also written to ``out/metrics.json``.

    Raises:
        ValueError: unknown model or dataset, or a teacher of another shape.
        RunExistsError: ``out`` exists and not ``force``.
        CheckpointError: bad teacher checkpoint.
    """
    spec = get_spec(model_name)  # fail early on unknown names
    recipe = recipe or Recipe(**spec.recipe)
    data = load_dataset(dataset)
    hp = dict(hyperparameters or {})
    hp.setdefault("img_size", data.img_size)
    hp.setdefault("in_chans", data.in_chans)
    hp.setdefault("num_classes", data.num_classes)
    if data.img_size <= 8:  # 8x8 digits: one stride-1 stem conv, 2x2 patches, 16 tokens
        hp.setdefault("patch", 2)
        hp.setdefault("stem_depth", 1)
    teacher = None
    if teacher_path is not None:
        teacher, meta = load_checkpoint(teacher_path)
        if meta["binary"] or meta["model"] != model_name:
            raise ValueError(f"teacher {teacher_path} is a {'binary' if meta['binary'] else 'full-precision'} {meta['model']}, need a full-precision {model_name}")
        want = build_model(model_name, binary=False, **hp).cfg.to_dict()
        diff = sorted(k for k in want if meta["config"].get(k) != want[k])
        if diff:
            shown = ", ".join(f"{k}={meta['config'].get(k)} (need {want[k]})" for k in diff)
            raise ValueError(f"teacher {teacher_path} has another shape: {shown}")
    out = Path(out)
    prepare_out_dir(out, force)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    (out / "config.json").write_text(json.dumps({"model": model_name, "dataset": dataset, "hyperparameters": hp, "recipe": asdict(recipe)}, indent=2))

    teacher_seconds = 0.0
    if teacher is None:
        teacher = build_model(model_name, binary=False, **hp)
        res_t = train_model(teacher, data, recipe.teacher_epochs, recipe.teacher_lr, recipe, None, "teacher", progress)
        teacher_seconds = res_t["train_seconds"]
        log(f"teacher: test accuracy {res_t['test_accuracy']:.4f} in {teacher_seconds:.0f} s")
    save_checkpoint(out / "teacher.pt", teacher, model_name, False, dataset)
    teacher_acc = evaluate(teacher, data.x_test, data.y_test)

    torch.manual_seed(recipe.seed)
    student = build_model(model_name, binary=True, **hp)
    missing = student.load_state_dict(teacher.state_dict(), strict=False)
    del missing  # binary-only parameters (thresholds, scales) keep their init
    res_s = train_model(student, data, recipe.epochs, recipe.lr, recipe, teacher, "student", progress)
    log(f"student: test accuracy {res_s['test_accuracy']:.4f} in {res_s['train_seconds']:.0f} s")
    save_checkpoint(out / "model.pt", student, model_name, True, dataset)

    from .layers import count_parameters

    metrics = {
        "model": model_name,
        "dataset": dataset,
        "test_accuracy": res_s["test_accuracy"],
        "teacher_test_accuracy": teacher_acc,
        "train_seconds": teacher_seconds + res_s["train_seconds"],
        "student_train_seconds": res_s["train_seconds"],
        "teacher_train_seconds": teacher_seconds,
        "epochs": recipe.epochs,
        "teacher_epochs": recipe.teacher_epochs if teacher_path is None else 0,
        "seed": recipe.seed,
        "test_images": int(len(data.y_test)),
        "train_images": int(len(data.y_train)),
        "parameters": count_parameters(student),
        "hyperparameters": hp,
        "history": res_s["history"],
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    tmp.replace(out / "metrics.json")
    return metrics
