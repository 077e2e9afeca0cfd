"""QONNX export of a trained binary ViT, verified on real test images.

``export_run(run_dir)`` loads ``run_dir/model.pt``, exports it with
``brevitas.export.export_qonnx``, cleans it with qonnx's ``cleanup_model``
and writes ``run_dir/model.onnx`` only after :func:`check_export` has shown
that qonnx ``execute_onnx`` reproduces PyTorch on real held-out images:

* every quantized activation (each QONNX ``Quant``/``BipolarQuant`` node on
  an activation, matched to the PyTorch quantizer call it came from through
  the exporter's module scopes) equal **bit for bit**: the integer codes
  ``value / scale`` are identical;
* the integer logits (``logits / logit_scale``) identical, and the float
  logits within float rounding (relative 1e-5 of their range).

A failed check raises :class:`ExportMismatchError` and writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .data import load_dataset, to_float
from .train import load_checkpoint

__all__ = ["ExportMismatchError", "export_qonnx_model", "check_export", "export_run"]

ACT_QUANT_OPS = ("Quant", "BipolarQuant")


class ExportMismatchError(RuntimeError):
    """QONNX execution does not reproduce the PyTorch model."""


def export_qonnx_model(model: nn.Module, path: str | Path, batch: int = 1) -> onnx.ModelProto:
    """Export ``model`` (eval mode) to QONNX at ``path`` and clean it up.

    Args:
        model: a binary model with ``cfg`` (img_size, in_chans).
        path: output ``.onnx`` path.
        batch: batch size of the exported input.

    Returns:
        The cleaned ONNX model (also written to ``path``).
    """
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model.eval()
    cfg = model.cfg
    dummy = torch.zeros(batch, cfg.in_chans, cfg.img_size, cfg.img_size)
    with warnings.catch_warnings(), open(os.devnull, "w") as devnull:
        warnings.simplefilter("ignore")
        import contextlib

        with contextlib.redirect_stdout(devnull):
            export_qonnx(model, dummy, str(path))
    mw = cleanup_model(ModelWrapper(str(path)))
    mw.save(str(path))
    return mw.model


def _module_scope(node: onnx.NodeProto) -> str | None:
    """Module path of the quantizer that produced ``node`` (exporter metadata)."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            scopes = eval(p.value, {"__builtins__": {}})  # a Python list literal
            for s in scopes:
                if s.endswith(".act_quant"):
                    return s[: -len(".act_quant")]
    return None


def _quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """Every module path (shared modules under each of their paths) of an
    activation quantizer."""
    from brevitas.nn import QuantIdentity, QuantReLU

    return {n: m for n, m in model.named_modules(remove_duplicate=False) if isinstance(m, (QuantIdentity, QuantReLU))}


def _trace_index(node: onnx.NodeProto) -> int:
    """Position of ``node`` in the exporter's trace (``%_symbolic_N``): the
    PyTorch call order, which the cleaned graph's order need not keep."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.fx_node":
            m = re.match(r"%_symbolic(?:_(\d+))?\b", p.value)
            if m:
                return int(m.group(1) or 0)
    raise ExportMismatchError(f"QONNX node {node.name} has no trace-order metadata")


def _torch_quant_outputs(model: nn.Module, x: torch.Tensor) -> tuple[dict[int, list[torch.Tensor]], torch.Tensor]:
    """Run ``model``; record each activation quantizer's outputs in call
    order, keyed by ``id(module)`` (a shared quantizer is one key)."""
    records: dict[int, list[torch.Tensor]] = defaultdict(list)
    hooks = []
    for mod in {id(m): m for m in _quantizers(model).values()}.values():
        hooks.append(mod.register_forward_hook(lambda m, i, o: records[id(m)].append(o.detach().clone())))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    return records, logits


def check_export(model: nn.Module, onnx_path: str | Path, images: np.ndarray) -> dict:
    """Compare qonnx ``execute_onnx`` with PyTorch on uint8 ``images``.

    Args:
        model: the binary PyTorch model (eval mode).
        onnx_path: its cleaned QONNX export (batch 1 input).
        images: ``(N, C, H, W)`` uint8 real test images.

    Returns:
        ``{"images", "quant_tensors_checked", "quant_tensors_bit_exact",
        "integer_logits_equal", "max_abs_logit_diff", "argmax_equal"}``.

    Raises:
        ExportMismatchError: any quantized activation or integer logit differs,
            a quantizer call cannot be matched, or float logits differ beyond
            float rounding. The message names the first offending tensor.
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = ModelWrapper(str(onnx_path))
    graph = mw.graph
    # activation quantizers carry an ``<module>.act_quant`` scope; weight and
    # bias quantizers (``.weight_quant``/``.bias_quant``) have none
    act_nodes = [n for n in graph.node if n.op_type in ACT_QUANT_OPS and _module_scope(n) is not None]
    quantizers = _quantizers(model)
    by_module: dict[int, list[onnx.NodeProto]] = defaultdict(list)
    names: dict[int, str] = {}
    for n in act_nodes:
        scope = _module_scope(n)
        if scope not in quantizers:
            raise ExportMismatchError(f"cannot match QONNX node {n.name} ({n.op_type}) to a PyTorch quantizer (scope {scope!r})")
        key = id(quantizers[scope])
        by_module[key].append(n)
        names.setdefault(key, scope)
    for nodes in by_module.values():
        nodes.sort(key=_trace_index)
    model.eval()
    scale = model.logit_scale()
    in_name, out_name = graph.input[0].name, graph.output[0].name
    checked = exact = 0
    int_equal = True
    argmax_equal = True
    max_diff = 0.0
    for k in range(len(images)):
        x = to_float(images[k : k + 1])
        records, logits = _torch_quant_outputs(model, x)
        ctx = execute_onnx(mw, {in_name: x.numpy()}, return_full_exec_context=True)
        for key, nodes in by_module.items():
            scope = names[key]
            torch_outs = records.get(key, [])
            if len(torch_outs) != len(nodes):
                raise ExportMismatchError(f"quantizer {scope}: {len(nodes)} QONNX nodes but {len(torch_outs)} PyTorch calls")
            for node, t_out in zip(nodes, torch_outs):
                q_out = ctx[node.output[0]]
                q_scale = ctx[node.input[1]] if node.input[1] in ctx else mw.get_initializer(node.input[1])
                checked += 1
                a = np.asarray(t_out.numpy(), dtype=np.float64) / q_scale
                b = np.asarray(q_out, dtype=np.float64) / q_scale
                if a.shape != b.shape or not np.array_equal(np.round(a), np.round(b)):
                    raise ExportMismatchError(
                        f"image {k}: quantized tensor of {scope} ({node.op_type} {node.output[0]}) differs between PyTorch and QONNX"
                        f" ({int(np.sum(np.round(a) != np.round(b))) if a.shape == b.shape else 'shape'} codes)"
                    )
                exact += 1
        o = np.asarray(ctx[out_name])
        t = logits.numpy()
        diff = float(np.max(np.abs(o - t)))
        max_diff = max(max_diff, diff)
        if not np.array_equal(np.round(o / scale), np.round(t / scale)):
            int_equal = False
        if not np.array_equal(o.argmax(1), t.argmax(1)):
            argmax_equal = False
        tol = 1e-5 * max(1.0, float(np.max(np.abs(t))))
        if diff > tol:
            raise ExportMismatchError(f"image {k}: logits differ by {diff:.3g} (> float rounding {tol:.3g})")
    if not int_equal:
        raise ExportMismatchError("integer logits differ between PyTorch and QONNX")
    return {
        "images": int(len(images)),
        "quant_tensors_checked": checked,
        "quant_tensors_bit_exact": exact,
        "integer_logits_equal": int_equal,
        "argmax_equal": argmax_equal,
        "max_abs_logit_diff": max_diff,
    }


def export_run(run_dir: str | Path, images: int = 50, force: bool = True) -> dict:
    """Export ``run_dir/model.pt`` to ``run_dir/model.onnx`` and verify it.

    Args:
        run_dir: a finished training run (has ``metrics.json`` and ``model.pt``).
        images: number of held-out test images to check (the first N of the
            fixed test split).
        force: replace an existing ``model.onnx``.

    Returns:
        The check summary, also written to ``run_dir/export_check.json``.

    Raises:
        FileNotFoundError: not a finished run directory.
        CheckpointError: missing or corrupt ``model.pt``.
        ExportMismatchError: QONNX does not reproduce PyTorch (nothing written).
        FileExistsError: ``model.onnx`` exists and not ``force``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a finished training run (no metrics.json)")
    target = run_dir / "model.onnx"
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to replace it")
    model, meta = load_checkpoint(run_dir / "model.pt")
    data = load_dataset(meta["dataset"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / "model.onnx"
        export_qonnx_model(model, tmp_onnx)
        summary = check_export(model, tmp_onnx, data.x_test[:images])
        summary["test_accuracy_pytorch"] = json.loads((run_dir / "metrics.json").read_text())["test_accuracy"]
        _copy(tmp_onnx, target)
    (run_dir / "export_check.json").write_text(json.dumps(summary, indent=2))
    return summary


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".onnx.tmp")
    tmp.write_bytes(src.read_bytes())
    tmp.replace(dst)
