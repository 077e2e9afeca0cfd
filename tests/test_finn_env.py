"""flows/finn_env.py: finn-plus's python side works with no AMD tools installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np


def test_setup_idempotent_and_sets_environment():
    from xnorvit.flows import finn_env

    first = finn_env.setup()
    second = finn_env.setup()
    assert first == second and first.is_dir()
    assert finn_env.is_setup()
    assert os.environ["FINN_BUILD_DIR"] == str(first)
    assert re.search(r"\b20\d\d\.[12]\b", os.environ["XILINX_VIVADO"])  # finn-plus parses this
    assert (finn_env.finn_rtllib() / "thresholding" / "hdl" / "thresholding.sv").exists()
    assert os.environ["FINN_RTLLIB"] == str(finn_env.finn_rtllib())
    assert os.path.isdir(os.environ["FINN_CUSTOM_HLS"])
    import finn.xsi

    assert finn.xsi.SimEngine is None


def test_fresh_process_imports_builder_and_estimates(tmp_path):
    """In a clean interpreter (no FINN variables) the builder imports and estimates work."""
    code = (
        "from xnorvit.flows import finn_env; finn_env.setup();"
        "import finn.builder.build_dataflow;"
        "from xnorvit.flows.finn_ref import mvau_hls_estimates;"
        "e = mvau_hls_estimates(64, 64, 4, 16); print(e['exp_cycles'], e['lut'] > 0)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINN", "XILINX"))}
    env["XNORVIT_FINN_BUILD_DIR"] = str(tmp_path / "finn")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["64", "True"]
    assert (tmp_path / "finn").is_dir()


def test_mvau_node_execution_is_popcount():
    """FINN's MVAU in binaryXnorMode returns the number of matching bits (not 2p-K)."""
    from xnorvit.flows import finn_ref

    rng = np.random.default_rng(3)
    w = rng.integers(0, 2, (10, 4))
    x = rng.integers(0, 2, (3, 10))
    got = finn_ref.execute_mvau_xnor(w, x, None, pe=2, simd=5)
    expected = (x[:, :, None] == w[None]).sum(1)
    assert np.array_equal(got, expected)
