"""xnorvit custom graph ops: execute_node against independent references."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from xnorvit.flows.ops import DOMAIN, attention_out_bits, binary_attention
from xnorvit.model.quant import sab_threshold, softmax_aware_mask


def _torch_attention(q, k, v, heads, c_int):
    """The PyTorch model's arithmetic (layers.BinaryAttention on bipolar q, k, v)."""
    b, t, c = q.shape
    split = lambda x: torch.as_tensor(x, dtype=torch.float32).reshape(b, t, heads, c // heads).transpose(1, 2)
    qh, kh, vh = split(q), split(k), split(v)
    p = softmax_aware_mask(qh @ kh.transpose(-2, -1), c_int, 1.0, training=False)
    return (p @ vh).transpose(1, 2).reshape(b, t, c).numpy()


@pytest.mark.parametrize("t,c,heads", [(49, 64, 2), (16, 16, 2), (5, 8, 1)])
def test_binary_attention_matches_pytorch_arithmetic(t, c, heads):
    rng = np.random.default_rng(t * c)
    bits = [rng.integers(0, 2, size=(2, t, c)) for _ in range(3)]
    c_int = sab_threshold(c // heads)
    ref = _torch_attention(*[2.0 * b - 1 for b in bits], heads, c_int)
    got = binary_attention(*bits, heads=heads, c_int=c_int)
    assert got.dtype == np.int64 and np.array_equal(got, ref)
    # bipolar inputs give the same result
    assert np.array_equal(binary_attention(*[2 * b - 1 for b in bits], heads=heads, c_int=c_int), got)
    assert np.abs(got).max() <= t < 2 ** (attention_out_bits(t) - 1)


def test_binary_attention_node_executes_in_qonnx():
    from qonnx.core.onnx_exec import execute_onnx

    t, c = 7, 8
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, t, c])
    node = helper.make_node("BinaryAttention", ["q", "k", "v"], ["o"], domain=DOMAIN, heads=2, c_int=1)
    m = ModelWrapper(qonnx_make_model(helper.make_graph([node], "att", [vi("q"), vi("k"), vi("v")], [vi("o")])))
    rng = np.random.default_rng(1)
    x = {n: rng.integers(0, 2, size=(1, t, c)).astype(np.float32) for n in "qkv"}
    out = execute_onnx(m, x)["o"]
    assert np.array_equal(out, binary_attention(x["q"], x["k"], x["v"], 2, 1))


def test_binary_attention_errors():
    z = np.zeros((1, 4, 6))
    with pytest.raises(ValueError, match="not divisible"):
        binary_attention(z, z, z, heads=4, c_int=1)
    with pytest.raises(ValueError, match="c_int"):
        binary_attention(z, z, z, heads=2, c_int=-1)
    with pytest.raises(ValueError, match="bits"):
        binary_attention(z + 2, z, z, heads=2, c_int=1)
    with pytest.raises(ValueError, match="one shape"):
        binary_attention(z, z[:, :3], z, heads=2, c_int=1)
