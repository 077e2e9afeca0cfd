"""Whole-network RTL verification of the stitched accelerator (issue #5).

CI test: a tiny calibrated ``bivit-t`` on the 8x8 digits (the network of
tests/test_to_hw.py: conv stem, one transformer block, classifier), compiled
to a folded FINN graph of RTL ops, stitched (flows/stitch.py), FIFO depths
found by simulation, then real test images simulated (cocotb + Verilator)
back to back and under random idle/backpressure: every output integer must
equal the PyTorch model's quantized logits. Builds are cached under
``rtl_tests/sim_build/accelerator/`` (fixed paths, so a second run only
simulates).

Slow test: the trained MNIST ``bivit-t`` of ``runs/main`` (skipped when that
run does not exist), 100 real MNIST test images.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from xnorvit.flows import stitch as xs
from xnorvit.flows import verify as xv
from xnorvit.flows.sim import DEFAULT_CACHE, REPO_ROOT

PART = "xc7z020clg400-1"
from calibrated import SMALL
OUT = Path(DEFAULT_CACHE) / "accelerator"


def _tiny_digits():
    """The calibrated tiny digits network of tests/test_to_hw.py, folded for 100k frames/s."""
    from xnorvit.flows import compile as xc
    from xnorvit.flows import folding as xf
    from xnorvit.flows import to_hw
    from xnorvit.flows.boards import get_board
    from calibrated import calibrated_bivit

    from xnorvit.model.export import export_qonnx_model

    model, d = calibrated_bivit("digits", **SMALL)
    out = OUT / "digits"
    out.mkdir(parents=True, exist_ok=True)
    export_qonnx_model(model, out / "model.onnx")
    hw = to_hw.hw_stages(xc.streamline(out / "model.onnx"), PART)["specialized"]
    return model, d, xf.fold(hw, 100_000, 100.0, get_board("pynq-z2"))


@pytest.fixture(scope="module")
def digits():
    model, d, folded = _tiny_digits()
    st = xs.stitch(folded, OUT / "digits" / "rtl", PART)
    frames, _, _, _ = xv.stimulus(folded, st, d.x_test[:4])
    sizing = xv.size_fifos(folded, st, frames)
    return model, d, folded, st, sizing


def test_stitched_digits_network_is_bit_exact_on_real_images(digits):
    model, d, folded, st, sizing = digits
    n = 6
    rep = xv.verify(folded, st, d.x_test[:n], model, d.y_test[:n], idle="random", backpressure="random")
    assert rep["images_bit_exact"] == n and rep["rtl_equals_finn"] == n, rep
    assert rep["runs"]["free"]["bit_exact"] == n
    # the sized FIFOs keep the II of the large-FIFO design, and the II is the slowest layer's
    from qonnx.custom_op.registry import getCustomOp

    slowest = max(getCustomOp(nd).get_exp_cycles() for nd in folded.graph.node)
    assert rep["ii_cycles"] == sizing["ii_cycles_large_fifos"]
    assert slowest <= rep["ii_cycles"] <= 1.1 * slowest, (rep["ii_cycles"], slowest)
    assert rep["ii_cycles"] < rep["latency_cycles"]
    # the residual skip edges hold more than the edges inside the block
    occ = sizing["max_occupancy"]
    skips = [v for k, v in occ.items() if k.split(":")[1].startswith("DuplicateStreams") and
             any(e.tensor == k.split(":")[1] and e.dst.startswith("ResidualAdd") for e in st.edges)]
    assert skips and min(skips) > 16, occ
    (OUT / "digits" / "report.json").write_text(json.dumps({"verify": rep, "fifo": sizing}, indent=1))


def test_mismatch_names_first_diverging_layer(digits):
    """A wrong reference (one threshold of a mid-network layer moved) is
    caught, and the report names that layer."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper

    model, d, folded, st, _ = digits
    wrong = ModelWrapper(copy.deepcopy(folded.model))
    node = next(n for n in wrong.graph.node if n.op_type in ("Thresholding_rtl", "ThresholdTable_rtl") and
                wrong.get_initializer(n.input[1]).shape[1] > 4)
    t = wrong.get_initializer(node.input[1]).copy()
    # half the channels' thresholds a quarter of their span lower (within the original range,
    # so they keep their datatype): most inputs now cross more thresholds
    half = max(1, t.shape[0] // 2)
    t[:half] = np.clip(t[:half] - ((t.max() - t.min()) // 4 + 1), t.min(), t.max())
    wrong.set_initializer(node.input[1], t)
    with pytest.raises(xv.VerificationError, match=node.name) as ei:
        xv.verify(wrong, st, d.x_test[:2], None, idle="none", backpressure="none")
    assert ei.value.report["mismatch"]["layer"] == node.name


@pytest.mark.slow
def test_mnist_bivit_t_bit_exact_on_100_images(tmp_path):
    run = REPO_ROOT / "runs" / "main"
    if not (run / "model.onnx").is_file() or not (run / "model.pt").is_file():
        pytest.skip("no trained and exported runs/main (xnorvit train/export)")
    from xnorvit.flows.build import compile_run
    from xnorvit.model.data import load_dataset
    from xnorvit.model.train import load_checkpoint
    from qonnx.core.modelwrapper import ModelWrapper

    out = tmp_path / "main"
    compile_run(run, out, board="pynq-z2", target_fps=20000, images=0)
    folded = ModelWrapper(str(out / "hw.onnx"))
    torch_model, _ = load_checkpoint(run / "model.pt")
    d = load_dataset("mnist")
    st = xs.stitch(folded, OUT / "mnist" / "rtl", PART)
    frames, _, _, _ = xv.stimulus(folded, st, d.x_test[:4])
    sizing = xv.size_fifos(folded, st, frames, log=print)
    rep = xv.verify(folded, st, d.x_test[:100], torch_model, d.y_test[:100], log=print)
    (OUT / "mnist" / "report.json").write_text(json.dumps({"verify": rep, "fifo": sizing}, indent=1))
    assert rep["images_bit_exact"] == 100, rep
    assert rep["ii_cycles"] == sizing["ii_cycles_large_fifos"]
    print(json.dumps({k: rep[k] for k in ("ii_cycles", "latency_cycles", "images_bit_exact", "hw_accuracy")}),
          file=sys.stderr)
