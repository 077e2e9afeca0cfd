"""Whole-network RTL verification of a zoo model beyond bivit-t (issue #13):
a calibrated tiny ``binary-deit-t`` on the 8x8 digits (conv stem, CLS token
prepended in hardware, one block with elastic {0, alpha} attention, CLS
readout, classifier), compiled, folded, stitched, FIFOs sized by
simulation, then real test images simulated under random idle and
backpressure on every stream: every output integer must equal the PyTorch
model's quantized logits. Builds are cached under
``rtl_tests/sim_build/accelerator/deit/`` (fixed paths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qonnx.custom_op.registry import getCustomOp

from xnorvit.flows import stitch as xs
from xnorvit.flows import verify as xv
from xnorvit.flows.sim import DEFAULT_CACHE

from calibrated import DEIT_SMALL, calibrated_model

PART = "xc7z020clg400-1"
OUT = Path(DEFAULT_CACHE) / "accelerator" / "deit"


@pytest.fixture(scope="module")
def deit():
    from xnorvit.flows import compile as xc
    from xnorvit.flows import folding as xf
    from xnorvit.flows import to_hw
    from xnorvit.flows.boards import get_board
    from xnorvit.model.export import export_qonnx_model

    model, d = calibrated_model("binary-deit-t", "digits", **DEIT_SMALL)
    OUT.mkdir(parents=True, exist_ok=True)
    export_qonnx_model(model, OUT / "model.onnx")
    hw = to_hw.hw_stages(xc.streamline(OUT / "model.onnx"), PART)["specialized"]
    folded = xf.fold(hw, 100_000, 100.0, get_board("pynq-z2"))
    st = xs.stitch(folded, OUT / "rtl", PART)
    frames, _, _, _ = xv.stimulus(folded, st, d.x_test[:4])
    sizing = xv.size_fifos(folded, st, frames)
    return model, d, folded, st, sizing


def test_stitched_binary_deit_is_bit_exact_on_real_images(deit):
    model, d, folded, st, sizing = deit
    ops = {n.op_type for n in folded.graph.node}
    assert {"TokenInsert_rtl", "TokenSelect_rtl", "BinaryAttention_rtl"} <= ops
    att = next(n for n in folded.graph.node if n.op_type == "BinaryAttention_rtl")
    assert getCustomOp(att).get_nodeattr("binarizer") == "elastic"
    n = 6
    rep = xv.verify(folded, st, d.x_test[:n], model, d.y_test[:n], idle="random", backpressure="random")
    assert rep["images_bit_exact"] == n and rep["rtl_equals_finn"] == n, rep
    assert rep["runs"]["free"]["bit_exact"] == n
    slowest = max(getCustomOp(nd).get_exp_cycles() for nd in folded.graph.node)
    assert rep["ii_cycles"] == sizing["ii_cycles_large_fifos"]
    assert slowest <= rep["ii_cycles"] <= 1.1 * slowest, (rep["ii_cycles"], slowest)
    (OUT / "report.json").write_text(json.dumps({"verify": rep, "fifo": sizing}, indent=1))
