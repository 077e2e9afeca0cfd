"""Hardware path of the zoo's new mechanisms (issue #13), each against an
independent reference: elastic {0, alpha} attention probabilities (BiT /
BinaryViT; the PyTorch ``QuantProbs`` and brute force), DeiT's CLS token
(``TokenInsert``/``TokenSelect`` against numpy indexing), and a calibrated
binary-deit-t through the compiler, bit-exact with PyTorch on real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from xnorvit.flows import compile as xc
from xnorvit.flows import finn_env
from xnorvit.flows import to_hw
from xnorvit.flows.boards import get_board
from xnorvit.flows.ops.binary_attention import binary_attention, elastic_mask, elastic_row_bounds
from xnorvit.model.export import export_qonnx_model
from xnorvit.model.layers import QuantProbs
from xnorvit.model.quant import exp_table

from calibrated import DEIT_SMALL, calibrated_model

finn_env.setup()
import finn.core.onnx_exec as oxe  # noqa: E402

PART = get_board("pynq-z2").part


# ---------------------------------------------------------------------------
# elastic {0, alpha} probabilities
# ---------------------------------------------------------------------------


def _bipolar(rng, *shape):
    return (2 * rng.integers(0, 2, size=shape) - 1).astype(np.float32)


@pytest.mark.parametrize("dh,keys", [(8, 17), (16, 5), (32, 49)])
def test_elastic_mask_equals_pytorch_quantprobs(dh, keys):
    """The op's mask is the PyTorch model's inference probabilities > 0, on
    random bipolar scores and on tie-heavy ones."""
    rng = np.random.default_rng(dh)
    qp = QuantProbs(dh, keys, levels=1).eval()
    kept = []
    for log_a in (np.log(1.0 / keys), np.log(3.0 / keys), np.log(0.3 / keys), np.log(0.9)):
        with torch.no_grad():
            qp.elastic_log_alpha.fill_(float(log_a))
        q, k = _bipolar(rng, 4, keys, dh), _bipolar(rng, 4, keys, dh)
        k[:, 1::2] = k[:, 0:keys - 1:2]  # twins: ties at the row maximum
        s = q @ k.transpose(0, 2, 1)
        with torch.no_grad():
            want = qp(torch.from_numpy(s)).numpy() > 0
            half = float(qp.alpha() / 2)
        got = elastic_mask(s, qp.table.numpy(), half)
        assert np.array_equal(got, want)
        kept.append(got.mean())
    assert any(0 < f < 1 for f in kept) and kept[-1] < kept[2]  # the rule bites, more with a larger alpha


def test_elastic_row_bounds_equal_brute_force():
    """EMAX[k] is the last row sum E that keeps a key at popcount gap k
    (checked for every E of a small table), and the prefix rule holds."""
    dh, t = 4, 6
    table = np.round(np.exp(-np.arange(2 * dh + 1) * 0.5) * 2**8).astype(np.float32)
    for half in (np.float32(0.05), np.float32(0.2), np.float32(1 / 3), np.float32(0.5), np.float32(0.9)):
        bounds = elastic_row_bounds(table, float(half), t, dh)
        assert all(a >= b for a, b in zip(bounds, bounds[1:]))
        for k in range(dh + 1):
            e = np.float32(table[2 * k])
            keeps = [E for E in range(1, t * int(table[0]) + 1) if e / np.float32(E) - half >= 0]
            assert bounds[k] == (max(keeps) if keeps else 0), (half, k)
    with pytest.raises(ValueError, match="needs 9"):
        elastic_row_bounds(table[:5], 0.1, t, dh)
    with pytest.raises(ValueError, match="> 0"):
        elastic_row_bounds(table, 0.0, t, dh)


def test_binary_attention_elastic_equals_pytorch():
    """BinaryAttention's elastic execution equals round(P / alpha) . V of the
    PyTorch QuantProbs (two heads, bipolar q, k, v given as bits)."""
    rng = np.random.default_rng(3)
    t, heads, dh = 17, 2, 8
    qp = QuantProbs(dh, t, levels=1).eval()
    q, k, v = (rng.integers(0, 2, size=(1, t, heads * dh)) for _ in range(3))
    table = qp.table.numpy()
    half = float(qp.alpha() / 2)
    got = binary_attention(q, k, v, heads, 0, (table, half))
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        qh, kh, vh = (torch.from_numpy(2.0 * a[0, :, sl] - 1).float() for a in (q, k, v))
        with torch.no_grad():
            want = qp.mix(qp(qh @ kh.T), vh) / qp.alpha()
        assert np.array_equal(got[0, :, sl], np.rint(want.numpy()).astype(np.int64))


# ---------------------------------------------------------------------------
# CLS token ops
# ---------------------------------------------------------------------------


def _one_node(op, inputs, out_shape, attrs, inits=None, dt="INT8"):
    node = helper.make_node(op, [i for i, _ in inputs], ["y"], domain="xnorvit.flows.ops", name=f"{op}_0",
                            backend="fpgadataflow", **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, s) for i, s in inputs
                                        if not inits or i not in inits],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
    m = ModelWrapper(helper.make_model(g))
    for name, v in (inits or {}).items():
        m.set_initializer(name, v)
    for i, _ in inputs:
        m.set_tensor_datatype(i, DataType[dt])
    return m


def test_token_insert_and_select_execute_like_numpy():
    rng = np.random.default_rng(0)
    t, n, c = 5, 2, 6
    x = rng.integers(-128, 128, size=(1, t, c)).astype(np.float32)
    k = rng.integers(-128, 128, size=(1, n, c)).astype(np.float32)
    m = _one_node("TokenInsert", [("x", [1, t, c]), ("K", [1, n, c])], [1, n + t, c],
                  dict(NumChannels=c, PE=3, numInputVectors=[1, t], numConstTokens=n, inputDataType="INT8",
                       outputDataType="INT8"), {"K": k})
    y = oxe.execute_onnx(m, {"x": x})["y"]
    assert np.array_equal(y, np.concatenate([k, x], axis=1))
    inst = getCustomOp(m.graph.node[0])
    assert inst.get_exp_cycles() == (n + t) * c // 3 and inst.get_instream_width(1) == 0
    assert inst.get_folded_output_shape() == (1, n + t, 2, 3) and inst.verify_node() == []
    m.set_initializer("K", k + 200)  # outside INT8
    with pytest.raises(ValueError, match="outside INT8"):
        oxe.execute_onnx(m, {"x": x})
    for index in (0, 3, t - 1):
        m = _one_node("TokenSelect", [("x", [1, t, c])], [1, c],
                      dict(NumChannels=c, PE=2, numInputVectors=[1, t], index=index, inputDataType="INT8",
                           outputDataType="INT8"))
        assert np.array_equal(oxe.execute_onnx(m, {"x": x})["y"], x[:, index])
        inst = getCustomOp(m.graph.node[0])
        assert inst.get_exp_cycles() == t * c // 2 and inst.get_folded_output_shape() == (1, 3, 2)
    inst.set_nodeattr("index", t)
    assert any("outside the 5 tokens" in e for e in inst.verify_node())


# ---------------------------------------------------------------------------
# a calibrated binary-deit-t through the compiler
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deit(tmp_path_factory):
    model, d = calibrated_model("binary-deit-t", "digits", **DEIT_SMALL)
    path = tmp_path_factory.mktemp("deit") / "deit.onnx"
    export_qonnx_model(model, path)
    st = xc.streamline(path)
    return model, d, st, to_hw.hw_stages(st, PART)


def test_binary_deit_stages_bit_exact_on_real_digits(deit):
    model, d, st, stages = deit
    for name, m in [("streamlined", st)] + list(stages.items()):
        r = xc.check_stage(m, model, d.x_test[:40])
        assert r["equal"] and r["mismatches"] == 0, (name, r)
    ops = xc.op_counts(stages["specialized"])
    assert ops["TokenInsert_rtl"] == 1 and ops["TokenSelect_rtl"] == 1 and ops["BinaryAttention_rtl"] == 1, ops
    att = next(n for n in stages["specialized"].graph.node if n.op_type == "BinaryAttention_rtl")
    inst = getCustomOp(att)
    blk = model.get_submodule("stages.0.0.mixer.binarizer")
    assert inst.get_nodeattr("binarizer") == "elastic"
    assert np.float32(inst.get_nodeattr("p_half")) == np.float32(blk.alpha().item() / 2)
    assert list(inst.get_nodeattr("exp_table")) == blk.table.tolist()
    sel = next(n for n in stages["specialized"].graph.node if n.op_type == "TokenSelect_rtl")
    assert getCustomOp(sel).get_nodeattr("index") == 0  # the CLS token


def test_binary_deit_csim_on_real_digits_equals_pytorch(deit):
    """The HLS kernels (hls/: elastic attention, CLS insert/select) C-simulate
    the folded binary-deit-t bit-exact with PyTorch's integer logits."""
    from xnorvit.flows import folding as xf
    from xnorvit.flows.hls import csim_images
    from xnorvit.model.data import to_float

    model, d, _, stages = deit
    folded = xf.fold(stages["specialized"], 50_000, 100.0, get_board("pynq-z2"))
    x = d.x_test[:20]
    with torch.no_grad():
        want = model.integer_logits(to_float(x)).numpy()
    assert np.array_equal(csim_images(folded, x), want)
    from xnorvit.flows.hls import to_hls

    hls = {n.op_type for n in to_hls(folded).graph.node}  # every node has an HLS variant
    assert {"TokenInsert_hls", "TokenSelect_hls", "BinaryAttention_hls"} <= hls
