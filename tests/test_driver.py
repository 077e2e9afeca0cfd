"""The PYNQ driver (flows/driver.py, issue #15) against the simulated
accelerator: a tiny bivit-t trained on real MNIST (28x28, built for
pynq-z2 here, ~3 min), ``xnorvit bitstream``'s AXI-stream wrapper and
``accelerator.json``, 20 real MNIST test images packed by the driver, streamed through the wrapper as the AXI DMA
streams them (cocotbext-axi, one MM2S transfer for the batch, one S2MM
transfer per frame ended by the wrapper's ``tlast``, random idle and
backpressure; Verilator), unpacked by the driver: the logits equal
PyTorch's integer logits bit for bit. The driver's input words are also
checked against FINN execution's input tensor (verification's stimulus).
The register side of the DMA (pynq's ``DMA`` driver) is not modelled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from xnorvit.flows import driver as xd
from xnorvit.flows import stitch as xs
from xnorvit.flows.bitstream import write_vivado_project
from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

N = 20


@pytest.fixture(scope="module")
def deployed(tiny_hparams, tmp_path_factory):
    """A tiny bivit-t on real MNIST: trained (6+6 epochs, ~30 s), exported, built for pynq-z2."""
    from xnorvit.flows.verify import build_run
    from xnorvit.model.data import load_dataset
    from xnorvit.model.export import export_run
    from xnorvit.model.train import Recipe, load_checkpoint, train_run

    root = tmp_path_factory.mktemp("driver")
    run = root / "run"
    train_run("bivit-t", "mnist", run, Recipe(epochs=6, teacher_epochs=6, batch_size=64, lr=3e-3, teacher_lr=3e-3,
                                              max_shift=0, threads=1),
              hyperparameters=tiny_hparams, progress=False, log=lambda *a: None)
    export_run(run, images=2)
    b = root / "build"
    build_run(run, b, "pynq-z2", target_fps=20_000, images=2)
    v = write_vivado_project(b)
    model, _ = load_checkpoint(run / "model.pt")
    d = load_dataset("mnist")
    return b, v, model, d.x_test[:N], d.y_test[:N]


def test_driver_packing_equals_the_verified_stimulus(deployed):
    """pack_images gives, word for word, the input beats verification feeds
    (FINN execution's graph input), and unpack_outputs of FINN execution's
    output beats gives PyTorch's integer logits."""
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from xnorvit.flows import verify as xv
    from xnorvit.model.data import to_float

    b, v, model, x, _ = deployed
    fmt = xd.load_format(v / "accelerator.json")
    st = xs.load_stitched(b / "rtl")
    hw = ModelWrapper(str(b / "rtl" / "hw_stitched.onnx"))
    frames, expected, _, _ = xv.stimulus(hw, st, x[:5])
    packed = xd.pack_images(x[:5], fmt)
    n = fmt["dma_in_bits"] // 8
    for f, words in zip(packed, frames):
        assert [int.from_bytes(f[i:i + n], "little") for i in range(0, len(f), n)] == words
    out = [b"".join(int(w).to_bytes(fmt["dma_out_bits"] // 8, "little") for w in e) for e in expected]
    with torch.no_grad():
        ref = model.integer_logits(to_float(x[:5])).numpy()
    assert np.array_equal(xd.unpack_outputs(out, fmt), ref)
    with pytest.raises(ValueError, match="uint8"):
        xd.pack_images(x[:2].astype(np.float32), fmt)
    with pytest.raises(ValueError, match="shape"):
        xd.pack_images(np.zeros((1, 1, 8, 8), np.uint8), fmt)


def test_driver_through_the_simulated_dma_is_bit_exact(deployed, tmp_path):
    import torch

    from xnorvit.model.data import to_float

    b, v, model, x, y = deployed
    fmt = xd.load_format(v / "accelerator.json")
    st = xs.load_stitched(b / "rtl")
    frames = xd.pack_images(x, fmt)
    out_bytes = fmt["out_beats"] * fmt["dma_out_bits"] // 8
    data = tmp_path / "params.json"
    result = tmp_path / "result.json"
    data.write_text(json.dumps({"frames": [f.hex() for f in frames], "out_bytes": out_bytes, "idle": "random",
                                "backpressure": "random", "seed": 3, "result": str(result)}))
    wrapper = v / f"{st.top}_axis.v"
    run_cocotb(f"{st.top}_axis", [*st.files, str(wrapper)], "driver_tb", parameters=xs.mem_root_parameter(st),
               test_params={"data": str(data)}, test_dir=tmp_path / "sim", build_args=("-Wno-fatal",),
               cache_dir=Path(DEFAULT_CACHE) / "driver")
    res = json.loads(result.read_text())
    assert res["tlast_bytes"] == [out_bytes] * N
    got = xd.unpack_outputs([bytes.fromhex(o) for o in res["outputs"]], fmt)
    with torch.no_grad():
        ref = model.integer_logits(to_float(x)).numpy()
    assert got.shape == (N, 10) and np.array_equal(got, ref)
    assert np.mean(got.argmax(1) == y) > 0.3  # real MNIST digits, a trained (tiny) model
