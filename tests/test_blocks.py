"""Building blocks against hand-computed cases and independent formulas."""

import math

import numpy as np
import pytest
import torch

from xnorvit.model.layers import BinaryAttention, ResidualAdd, SoftmaxAwareBinarizer, TokenNorm, binary_linear
from xnorvit.model.quant import BinaryAct, ResidualQuant, approx_sign, sab_threshold, softmax_aware_mask

import brevitas.nn as qnn


def test_binary_act_forward_is_sign_of_x_minus_beta():
    act = BinaryAct(3).eval()
    with torch.no_grad():
        act.beta.copy_(torch.tensor([0.0, 0.5, -1.0]))
    x = torch.tensor([[-0.1, 0.4, -1.0], [0.0, 0.5, -1.5], [2.0, 0.6, -0.9]])
    # hand-computed: sign(x - beta) with sign(0) = +1
    want = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [1.0, 1.0, 1.0]])
    assert torch.equal(act(x), want)
    act.train()
    assert torch.equal(act(x), want)  # the gradient trick leaves values alone


def test_binary_act_gradient_is_approx_sign():
    act = BinaryAct(5).train()
    x = torch.tensor([[-1.5, -0.5, 0.0, 0.25, 1.2]], requires_grad=True)
    act(x).sum().backward()
    # Bi-Real Net: 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere
    want = torch.tensor([[0.0, 1.0, 2.0, 1.5, 0.0]])
    assert torch.allclose(x.grad, want)
    # beta receives minus that gradient
    assert torch.allclose(act.beta.grad, -want[0])


def test_approx_sign_values():
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0])
    assert torch.allclose(approx_sign(x), torch.tensor([-1.0, -0.75, 0.75, 1.0]))


def test_sab_threshold_hand_computed():
    # floor(ln 4 * sqrt(32)) = floor(7.842) = 7 ; sqrt(16): floor(5.545) = 5
    assert sab_threshold(32) == 7
    assert sab_threshold(16) == 5
    assert sab_threshold(4) == 2  # floor(2.772)


def test_softmax_aware_mask_hand_computed():
    scores = torch.tensor([[[[6.0, 0.0, -2.0, 4.0], [-4.0, -4.0, -4.0, -4.0]]]])
    m = softmax_aware_mask(scores, c_int=2, temperature=0.5, training=False)
    # row 0: max 6, keep >= 4 -> [1,0,0,1]; row 1: all tie at max -> all ones
    assert torch.equal(m, torch.tensor([[[[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]]]))


def test_softmax_aware_mask_equals_probability_rule():
    """Integer rule == BiViT's p >= 0.25 * max(p) on softmax(S / sqrt(dh))."""
    g = torch.Generator().manual_seed(0)
    dh = 32
    q = torch.randint(0, 2, (64, dh), generator=g).float() * 2 - 1
    k = torch.randint(0, 2, (49, dh), generator=g).float() * 2 - 1
    s = (q @ k.T)[None, None]
    c_int = sab_threshold(dh)
    m = softmax_aware_mask(s, c_int, dh**-0.5, training=False)
    p = torch.softmax(s.double() / math.sqrt(dh), dim=-1)
    ref = (p >= 0.25 * p.amax(-1, keepdim=True)).double()
    assert torch.equal(m.double(), ref)


def test_softmax_aware_mask_gradient_flows_through_softmax():
    s = torch.tensor([[[[2.0, 0.0, -2.0]]]], requires_grad=True)
    m = softmax_aware_mask(s, 2, 1.0, training=True)
    assert torch.equal(m.detach(), torch.tensor([[[[1.0, 1.0, 0.0]]]]))
    (m * torch.tensor([1.0, 0.0, 0.0])).sum().backward()
    p = torch.softmax(torch.tensor([2.0, 0.0, -2.0]), 0)
    want = p[0] * (torch.tensor([1.0, 0.0, 0.0]) - p)  # d p0 / d s
    assert torch.allclose(s.grad[0, 0, 0], want)


@pytest.mark.parametrize("learned", [True, False])
def test_binary_linear_is_scaled_exact_xnor_product(learned):
    torch.manual_seed(0)
    lin = binary_linear(6, 4, binary=True, learned_scale=learned).train()
    w = lin.weight.detach().clone()
    x = torch.randint(0, 2, (3, 6)).float() * 2 - 1
    y = lin(x).detach()
    s = w.abs().mean(dim=1)  # mean |W_o| per output row (init of the learned scale)
    # independent XNOR-popcount: 2 * matches - K
    xb, wb = (x > 0).numpy(), (w >= 0).numpy()
    acc = np.array([[2 * int(np.sum(xb[i] == wb[o])) - 6 for o in range(4)] for i in range(3)])
    assert np.allclose(y.numpy(), acc * s.numpy(), atol=1e-6)
    assert np.array_equal(np.round(y.numpy() / s.numpy()), acc)
    assert ("scale" in dict(lin.named_parameters())) == learned


def test_binary_linear_train_and_eval_paths_agree_and_ste_is_clipped():
    torch.manual_seed(0)
    lin = binary_linear(8, 3, binary=True)
    with torch.no_grad():
        lin.weight[0, :4] = torch.tensor([1.5, -2.0, 0.3, 0.0])  # |w| > 1 gets no gradient
    x = torch.randint(0, 2, (5, 8)).float() * 2 - 1
    y_train = lin.train()(x)
    y_train.sum().backward()
    y_eval = lin.eval()(x)  # Brevitas quantizer path (the exported one)
    assert torch.equal(y_train.detach(), y_eval.detach())
    g = lin.weight.grad
    assert g[0, 0] == 0 and g[0, 1] == 0 and g[0, 2] != 0 and g[0, 3] != 0
    # straight-through: d y / d w = s_o * x for |w| <= 1
    assert torch.allclose(g[1], lin.scale[1].detach() * x.sum(0))


def test_residual_add_is_saturating_integer_add():
    torch.manual_seed(0)
    q = qnn.QuantIdentity(act_quant=ResidualQuant)
    q.train()
    q(torch.randn(1000) * 2)  # collect scale statistics
    q.eval()
    s = float(q.act_quant.scale())
    add = ResidualAdd(q)
    x = q(torch.randn(200) * 2)
    b = torch.randn(200) * 3
    xi = torch.round(x / s)
    bi = torch.clamp(torch.round(b / s), -128, 127)
    want = torch.clamp(xi + bi, -128, 127)  # integer add with saturation (int8)
    got = add(x, b) / s
    assert torch.equal(torch.round(got), want)
    assert torch.allclose(got, want, atol=1e-4)


def test_token_norm_bn_normalizes_channels():
    n = TokenNorm(4, "bn").train()
    x = torch.randn(8, 5, 4) * 3 + 2
    y = n(x)
    assert torch.allclose(y.mean(dim=(0, 1)), torch.zeros(4), atol=1e-5)
    with pytest.raises(ValueError, match="unknown norm"):
        TokenNorm(4, "gn")


def test_binary_attention_output_is_sum_of_selected_v_rows():
    """Recompute a binary attention branch by hand from its own weights."""
    torch.manual_seed(0)
    attn = BinaryAttention(dim=8, heads=2, binary=True).eval()
    x = torch.randn(1, 5, 8)
    seen = {}
    attn.act_o.register_forward_hook(lambda m, i, o: seen.setdefault("o_in", i[0]))
    attn.norm_o.register_forward_hook(lambda m, i, o: seen.setdefault("sum", i[0]))
    attn(x)
    with torch.no_grad():
        h = attn.act_in(attn.norm(x))
        bits = {}
        for name in "qkv":
            lin, act = getattr(attn, name), getattr(attn, f"act_{name}")
            bits[name] = act(lin(h))[0].numpy()  # (T, C) of +-1
    dh, c_int = 4, sab_threshold(4)
    out = np.zeros((5, 8))
    for hd in range(2):
        sl = slice(hd * dh, (hd + 1) * dh)
        q, k, v = bits["q"][:, sl], bits["k"][:, sl], bits["v"][:, sl]
        for i in range(5):
            s = [int(np.sum(q[i] == k[j])) * 2 - dh for j in range(5)]  # XNOR popcount
            keep = [j for j in range(5) if s[j] >= max(s) - c_int]
            out[i, sl] = v[keep].sum(0)
    assert np.array_equal(seen["sum"][0].detach().numpy(), out)


def test_attention_rejects_bad_config():
    with pytest.raises(ValueError, match="not divisible"):
        BinaryAttention(10, 3, True)
    with pytest.raises(ValueError, match="unknown attention binarizer"):
        BinaryAttention(8, 2, True, prob_binarizer="nope")


def test_sab_binarizer_module():
    b = SoftmaxAwareBinarizer(32)
    assert b.c_int == 7


def test_patch_embed_stem_geometry():
    from xnorvit.model.layers import PatchEmbed

    pe = PatchEmbed(28, 1, 2, 8, stem_channels=4, act_bits=4, binary=False, residual_quant=None, stem_depth=2)
    assert pe.num_tokens == 49  # 28 -> 14 (stride-2 conv) -> 7x7 patches of 2
    assert pe(torch.rand(3, 1, 28, 28)).shape == (3, 49, 8)
    assert PatchEmbed(8, 1, 2, 8, 4, 4, False, None).num_tokens == 16
    with pytest.raises(ValueError, match="not divisible by patch size 3"):
        PatchEmbed(28, 1, 3, 8, 4, 4, False, None)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (3, 16, 49)), ("BatchNorm2d", (2, 16, 7, 7)), ("BatchNorm1d", (5, 16))])
def test_batchnorm_eval_equals_onnxruntime_bit_for_bit(cls, shape):
    """Eval-mode BatchNorm equals onnxruntime's BatchNormalization exactly
    (the reference runs the ONNX node in onnxruntime); training mode is
    torch's own; the ONNX export still emits one BatchNormalization node."""
    import io

    import onnx
    import onnxruntime as rt

    from xnorvit.model import layers

    g = torch.Generator().manual_seed(3)
    bn = getattr(layers, cls)(16)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(16, generator=g))
        bn.bias.copy_(torch.randn(16, generator=g))
        bn.running_mean.copy_(torch.randn(16, generator=g))
        bn.running_var.copy_(torch.rand(16, generator=g) * 4 + 0.01)
    x = torch.randn(*shape, generator=g) * 3
    bn.eval()
    buf = io.BytesIO()
    torch.onnx.export(bn, (x,), buf, dynamo=False, input_names=["x"], output_names=["y"])
    model = onnx.load_from_string(buf.getvalue())
    assert [n.op_type for n in model.graph.node] == ["BatchNormalization"]
    ref = rt.InferenceSession(buf.getvalue()).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        y = bn(x).numpy()
        stock = torch.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps).numpy()
    assert np.array_equal(y, ref)
    assert not np.array_equal(stock, ref)  # the ulp differences the class exists for are present in this data
    bn.train()
    xb = torch.randn(*shape, generator=g)
    assert torch.equal(bn(xb), torch.nn.functional.batch_norm(xb, None, None, bn.weight, bn.bias, True, 0.0, bn.eps))
