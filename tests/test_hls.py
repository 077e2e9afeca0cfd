"""HLS C simulation of hls/mvau.hpp (flows/hls.py, issue #15 part 3), on
the very data the RTL tests use: for parameter sets of
rtl_tests/test_mvau_xnor.py and rtl_tests/test_mvau_int.py, the case's
weights, thresholds and inputs go through (a) FINN's MVAU node
(``execute_node``, the reference), (b) the RTL kernel under cocotb +
Verilator (its streamed output recorded; cached builds), (c) the C
simulation of the FINN node (:func:`xnorvit.flows.hls.csim_node`): all
three equal bit for bit."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")

XNOR_CASES = [(8, 4, 1, 1, 0, 0, 2), (24, 12, 3, 6, 0, 3, 2), (64, 16, 1, 4, 0, 15, 1)]
INT_CASES = [(8, 4, 1, 1, 8, 1, 1, 1, 0, 2), (24, 12, 4, 8, 8, 1, 8, 1, 15, 2), (36, 10, 5, 3, 3, 0, 4, 0, 7, 2),
             (16, 8, 2, 4, 4, 1, 8, 1, 0, 2, 0)]


def _rtl(module, case):
    """Run the RTL test of ``case`` (cached build); return its data and what the RTL streamed."""
    from xnorvit.flows.sim import DEFAULT_CACHE, run_cocotb

    data_dir = DEFAULT_CACHE / "data" / module.__name__.split("_", 1)[1] / module._id(case)
    hdl, tp = module.make_case(*case, data_dir=data_dir)
    run_cocotb(module.__name__.split("_", 1)[1], module.SOURCES, module.__name__, parameters=hdl, test_params=tp,
               test_dir=data_dir)
    d = dict(np.load(data_dir / "data.npz"))
    return d, np.load(data_dir / "rtl_out_random_random.npy")


@pytest.mark.parametrize("case", XNOR_CASES, ids=lambda c: "MW{}-MH{}-PE{}-SIMD{}-pop-N{}-T{}".format(*c[:4], c[5], c[6]))
def test_mvau_xnor_csim_equals_execute_node_and_rtl(case):
    import test_mvau_xnor as mod

    from xnorvit.flows import finn_ref
    from xnorvit.flows.hls import csim_node

    d, rtl = _rtl(mod, case)
    mw, mh, pe, simd, _, n, t = case
    thr = d["t"] if n else None
    model = finn_ref.mvau_model(d["w"], thr, pe, simd, n_vectors=t)
    finn = finn_ref.execute(model, d["x"]).reshape(t, mh).astype(np.int64)
    hls = csim_node(model, model.graph.node[0], d["x"].reshape(1, t, mw)).reshape(t, mh)
    assert np.array_equal(finn, d["finn"])
    assert np.array_equal(hls, finn), (hls, finn)
    assert np.array_equal(hls, rtl), (hls, rtl)


@pytest.mark.parametrize("case", INT_CASES, ids=lambda c: "-".join(map(str, c)))
def test_mvau_int_csim_equals_execute_node_and_rtl(case):
    import test_mvau_int as mod

    from xnorvit.flows import finn_ref
    from xnorvit.flows.hls import csim_node

    d, rtl = _rtl(mod, case)
    mw, mh, pe, simd, in_w, in_signed, w_w, w_signed, n, t = case[:10]
    idt = f"{'INT' if in_signed else 'UINT'}{in_w}"
    wdt = "BIPOLAR" if w_w == 1 else f"{'INT' if w_signed else 'UINT'}{w_w}"
    thr = d["t"] if n else None
    model = finn_ref.mvau_model(d["w"], thr, pe, simd, n_vectors=t, input_dtype=idt, weight_dtype=wdt,
                                binary_xnor=False)
    finn = finn_ref.execute(model, d["x"]).reshape(t, mh).astype(np.int64)
    hls = csim_node(model, model.graph.node[0], d["x"].reshape(1, t, mw)).reshape(t, mh)
    assert np.array_equal(finn, d["finn"])
    assert np.array_equal(hls, finn), (hls, finn)
    assert np.array_equal(hls, rtl), (hls, rtl)


def test_csim_errors_are_one_line(tmp_path):
    from xnorvit.flows.hls import HLSError, csim_mvau

    with pytest.raises(HLSError, match="does not divide"):
        csim_mvau(np.zeros((1, 8)), np.zeros((8, 6)), None, pe=4, simd=8, xnor=True)
