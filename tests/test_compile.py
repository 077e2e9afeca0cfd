"""QONNX -> streamlined integer FINN graph (flows/compile.py), every stage
checked against the PyTorch model on real images."""

import copy

import numpy as np

import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from xnorvit.flows import compile as xc
from xnorvit.flows.transforms import ExactThresholdError, ExactThresholds, UnsupportedNodeError, check_integer_graph
from xnorvit.flows.transforms.attention import AttentionPatternError, ConvertBinaryAttention
from xnorvit.model.export import export_qonnx_model

from calibrated import SMALL, calibrated_bivit


def _calibrated(dataset, **hp):
    return calibrated_bivit(dataset, **hp)


def _copy(m):
    return ModelWrapper(copy.deepcopy(m.model))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    model, d = _calibrated("digits", **SMALL)
    path = tmp_path_factory.mktemp("compile") / "small.onnx"
    export_qonnx_model(model, path)
    return model, d, path, xc.streamline_stages(path)


def test_every_stage_bit_exact_on_real_digits(small):
    model, d, _, stages = small
    assert tuple(stages) == xc.STAGES
    images = d.x_test[:40]
    for name, m in stages.items():
        r = xc.check_stage(m, model, images)
        assert r["equal"] and r["mismatches"] == 0, (name, r)


def _quant_codes(ref, q, value, binary):
    """Integer codes of a QONNX activation quantizer's output values."""
    s = float(ref.get_initializer(q.input[1]).ravel()[0])
    if q.op_type == "BipolarQuant":
        return (value > 0).astype(np.int64) if binary else np.where(value > 0, 1, -1)
    return np.rint(value / s).astype(np.int64)


def test_every_threshold_layer_bit_exact_on_real_digits(small):
    """Per layer: each streamlined MultiThreshold's output equals the codes
    of the QONNX quantizer it came from, on real images (the bisection the
    whole-network test cannot do)."""
    _, d, _, stages = small
    ref, m = stages["qonnx"], stages["streamlined"]
    qs = [n for n in ref.graph.node if n.op_type in ("Quant", "BipolarQuant") and ref.get_initializer(n.input[0]) is None]
    mts = [n for n in m.graph.node if n.op_type == "MultiThreshold"]
    assert len(mts) == len(qs) - 1  # the input quantizer became the uint8 graph input
    images = d.x_test[40:48]
    _, rc = xc.execute(ref, images, full_context=True)
    _, sc = xc.execute(m, images, full_context=True)
    for k in range(len(images)):
        assert np.array_equal(_quant_codes(ref, qs[0], rc[k][qs[0].output[0]], False), sc[k][m.graph.input[0].name])
        for mt, q in zip(mts, qs[1:]):
            binary = getCustomOp(mt).get_nodeattr("out_dtype") == "BINARY"
            want = _quant_codes(ref, q, rc[k][q.output[0]], binary)
            assert np.array_equal(sc[k][mt.output[0]], want), (k, mt.name, q.name)


def test_exact_thresholds_refuse_foreign_weights(small):
    """A weight that differs from the reference (beyond a column sign) is named."""
    _, _, _, stages = small
    m = _copy(stages["streamlined"])
    again = _copy(m).transform(ExactThresholds(stages["qonnx"]))  # idempotent
    for n in m.graph.node:
        if n.op_type == "MultiThreshold":
            assert np.array_equal(again.get_initializer(n.input[1]), m.get_initializer(n.input[1])), n.name
    xn = next(n for n in m.graph.node if n.op_type == "XnorPopcountMatMul")
    w = m.get_initializer(xn.input[1]).copy()
    w[0, 0] = 1 - w[0, 0]
    m.set_initializer(xn.input[1], w)
    with pytest.raises(ExactThresholdError, match="differ from reference"):
        m.transform(ExactThresholds(stages["qonnx"]))


def test_exact_thresholds_refuse_unpaired_graph(small):
    _, _, _, stages = small
    m = _copy(stages["streamlined"])
    with pytest.raises(ExactThresholdError, match="activation quantizers"):
        m.transform(ExactThresholds(stages["finn"]))


def test_streamlined_graph_is_integer_ops_only(small):
    model, _, _, stages = small
    m = stages["streamlined"]
    c = xc.op_counts(m)
    depth = model.cfg.depth
    for gone in ("Mul", "Div", "Sub", "BatchNormalization", "ReduceMean", "ReduceMax", "GreaterOrEqual", "Cast", "Quant", "BipolarQuant"):
        assert c.get(gone, 0) == 0, gone
    assert c["BinaryAttention"] == depth
    assert c["XnorPopcountMatMul"] == 6 * depth  # q, k, v, proj, fc1, fc2
    assert c["MatMul"] == 1  # 8-bit classifier
    assert c["Add"] == 1 + 2 * depth  # position embedding + two residual adds per block
    assert c["ReduceSum"] == 1
    for n in m.graph.node:
        if n.op_type == "MultiThreshold":
            assert m.get_tensor_datatype(n.output[0]).is_integer()
    # the graph takes raw uint8 pixels; the GAP sum is an exact integer type
    assert m.get_tensor_datatype(m.graph.input[0].name).name == "UINT8"
    assert m.get_metadata_prop("xnorvit_input") == "uint8"
    gap = next(n for n in m.graph.node if n.op_type == "ReduceSum")
    t = m.get_tensor_shape(gap.input[0])[1]
    assert m.get_tensor_datatype(gap.output[0]) == DataType.get_smallest_possible(-128 * t)
    for n in m.graph.node:
        for o in n.output:
            assert m.get_tensor_datatype(o).is_integer(), o
    # the graph outputs the integer logits; the removed scale is the model's logit scale
    assert xc.output_scale(m) == pytest.approx(model.logit_scale(), rel=1e-6)
    check_integer_graph(m)


def test_unsupported_node_is_named(small):
    _, _, _, stages = small
    m = _copy(stages["streamlined"])
    out = m.graph.output[0].name
    prod = m.find_producer(out)
    prod.output[0] = "pre_sigmoid"
    m.graph.node.append(helper.make_node("Sigmoid", ["pre_sigmoid"], [out], name="my_sigmoid"))
    with pytest.raises(UnsupportedNodeError, match=r"'my_sigmoid' \(op type Sigmoid\)"):
        check_integer_graph(m)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no QONNX model"):
        xc.streamline_stages(tmp_path / "nope.onnx")


def test_foreign_dynamic_matmul_is_refused(small):
    """A MatMul of two activations that is not the attention pattern: clear error."""
    _, _, _, stages = small
    m = _copy(stages["finn"])
    out = m.graph.output[0].name
    shape = m.get_tensor_shape(out)
    prod = m.find_producer(out)
    prod.output[0] = "a"
    m.graph.node.append(helper.make_node("Transpose", ["a"], ["at"], perm=[1, 0], name="tr"))
    m.graph.node.append(helper.make_node("MatMul", ["a", "at"], ["aa"], name="self_product"))
    m.graph.node.append(helper.make_node("Identity", ["a"], [out], name="id"))
    assert shape[0] == 1
    with pytest.raises(AttentionPatternError, match="'self_product'"):
        m.transform(ConvertBinaryAttention())


@pytest.mark.slow
def test_full_size_bivit_t_on_mnist(tmp_path):
    """Default 28x28 bivit-t (49 tokens, dim 64, depth 4) on 50 real MNIST
    test images: every stage, the streamlined integer graph included, gives
    PyTorch's integer logits bit for bit (FINN's own float32-derived
    thresholds differ on 4 of these 50 images; ExactThresholds removes
    that)."""
    model, d = _calibrated("mnist")
    export_qonnx_model(model, tmp_path / "m.onnx")
    stages = xc.streamline_stages(tmp_path / "m.onnx")
    images = d.x_test[:50]
    for name in xc.STAGES:
        r = xc.check_stage(stages[name], model, images)
        assert r["mismatches"] == 0 and r["equal"], (name, r)


def test_negative_patch_embedding_gamma_compiles_bit_exact(tmp_path):
    """A patch-embedding BatchNorm with negative gamma (any retraining can give
    one) leaves a per-channel ±1 Mul after the token flatten that no
    MultiThreshold absorbs; AbsorbSignMulIntoConv negates those conv output
    channels. Every stage must still equal PyTorch on real digits images."""
    import torch

    model, d = _calibrated("digits", **SMALL)
    with torch.no_grad():
        model.embed.norm.weight[::3] *= -1  # channels 0, 3, 6, ...
    path = tmp_path / "neg.onnx"
    export_qonnx_model(model, path)
    stages = xc.streamline_stages(path)
    assert "Mul" not in xc.op_counts(stages["streamlined"])
    images = d.x_test[:40]
    for name, m in stages.items():
        r = xc.check_stage(m, model, images)
        assert r["equal"] and r["mismatches"] == 0, (name, r)


def test_lazy_tidy_streamline_equals_finn_streamline(small):
    """LazyTidyStreamline skips FINN's bookkeeping on unchanged graphs; the
    graph it leaves must be byte-identical to finn-plus's own Streamline()
    on a trained model, for the first streamlining round (most steps change
    the graph) and for a round on an already-streamlined graph (none do)."""
    from finn.transformation.streamline import Streamline

    from xnorvit.flows.transforms import LazyTidyStreamline

    lazy = LazyTidyStreamline()
    assert len(lazy.steps) > 22 and any(type(t).__name__ == "InferDataTypes" for t in lazy.steps)
    for stage in ("prepared", "streamlined"):
        m = small[3][stage]
        want = _copy(m).transform(Streamline()).model.SerializeToString()
        got = _copy(m).transform(LazyTidyStreamline()).model.SerializeToString()
        assert got == want, stage
        if stage == "prepared":  # this round changes the graph: not a comparison of two no-ops
            assert want != m.model.SerializeToString()
