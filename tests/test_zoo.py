"""Model-zoo mechanisms against hand-computed cases; registry and op counts."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xnorvit.model.layers import (
    BinaryConv2d,
    ImprovedRPReLU,
    MultiScaleDilatedConv,
    PatchMerge,
    PoolingBranches,
    QuantProbs,
    RPReLU,
    ZooAttention,
    haar_matrix,
    shift_tokens,
)
from xnorvit.model.quant import elastic_binarize, exp_table, oscillation_loss, table_softmax
from xnorvit.model.train import binary_latent_weights, mlp_full_precision
from xnorvit.model.zoo import MODELS, build_model
from xnorvit.model.zoo.complexity import count_ops, describe_models

NEW = ["binary-deit-t", "binaryvit-t", "bhvit-t", "didbvit-t"]


# --- attention probabilities -------------------------------------------------


def test_exp_table_and_table_softmax_hand_computed():
    t = exp_table(4, math.log(2.0))  # exp(-d ln 2) * 2**16 = 2**(16 - d)
    assert t.tolist() == [65536.0, 32768.0, 16384.0, 8192.0, 4096.0]
    s = torch.tensor([[2.0, 1.0, 0.0, 2.0]])
    p = table_softmax(s, t, math.log(2.0), training=False)
    # e = [2**16, 2**15, 2**14, 2**16], sum = 11 * 2**14
    assert torch.equal(p, torch.tensor([[4 / 11, 2 / 11, 1 / 11, 4 / 11]], dtype=torch.float32))


def test_table_softmax_gradient_is_softmax_gradient():
    s = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
    p = table_softmax(s, exp_table(2, 1.0), 1.0, training=True)
    p[0, 0].backward()
    q = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0)
    assert torch.allclose(s.grad[0], q[0] * (torch.tensor([1.0, 0.0, 0.0]) - q))


def test_elastic_binarize_values_and_lsq_gradient():
    p = torch.tensor([0.01, 0.03, 0.05, 0.2], requires_grad=True)
    a = torch.tensor(0.04, requires_grad=True)
    q = elastic_binarize(p, a)
    # p / a = 0.25, 0.75, 1.25, 5 -> round 0, 1, 1, 5 -> clamp 0, 1, 1, 1
    assert torch.allclose(q, torch.tensor([0.0, 0.04, 0.04, 0.04]))
    q.sum().backward()
    # LSQ: d/da a * clamp(r(p / a)) with straight-through round is r - p / a
    # inside the clamp range and the clamp level 1 above it:
    # (0 - 0.25) + (1 - 0.75) + (1 - 1.25) + 1
    assert a.grad.item() == pytest.approx(0.75)
    assert torch.allclose(p.grad, torch.tensor([1.0, 1.0, 1.0, 0.0]))


def test_elastic_quant_probs_eval_equals_training_rule_and_mix_is_mask_sum():
    torch.manual_seed(0)
    qp = QuantProbs(head_dim=4, keys=5, levels=1)
    with torch.no_grad():
        qp.elastic_log_alpha.fill_(math.log(0.15))
    s = torch.randint(-4, 5, (2, 3, 5)).float()
    p = table_softmax(s, qp.table, 0.5, training=False)
    want = 0.15 * (p >= 0.075).float()  # alpha * 1[p >= alpha / 2]
    qp.train()
    assert torch.allclose(qp(s), want)
    qp.eval()
    got = qp(s)
    assert torch.allclose(got, want)
    v = torch.randint(0, 2, (2, 5, 4)).float() * 2 - 1
    o = qp.mix(got, v)
    mask = (p >= 0.075).float()
    assert torch.allclose(o, 0.15 * (mask @ v))
    assert torch.equal(torch.round(o / 0.15), mask @ v)  # integer mask sums


def test_decomposed_probs_are_sum_of_three_binary_masks():
    qp = QuantProbs(head_dim=4, keys=10, levels=3).eval()  # alpha = 3/10 / 3 = 0.1
    assert qp.alpha().item() == pytest.approx(0.1)
    p = torch.tensor([0.0, 0.04, 0.11, 0.26, 0.5])
    got = qp.quant(p)
    # round(p / 0.1) = 0, 0, 1, 3 (2.6), 5 -> clamp 3
    assert torch.allclose(got, torch.tensor([0.0, 0.0, 0.1, 0.3, 0.3]))
    codes = torch.round(p / 0.1).clamp(0, 3)
    masks = [(codes >= k).float() for k in (1, 2, 3)]
    assert torch.allclose(got, 0.1 * sum(masks))
    v = torch.tensor([[1.0], [-1.0], [1.0], [1.0], [-1.0]])
    pv = qp.mix(got[None], v)  # alpha * sum_k M_k . V
    assert torch.allclose(pv, 0.1 * sum(m[None] @ v for m in masks))
    assert pv.item() == pytest.approx(0.1 * (1 + 3 - 3))


# --- grid mechanisms ---------------------------------------------------------


def test_pooling_branches_hand_computed():
    pb = PoolingBranches(dim=1, grid=3)
    x = torch.arange(1.0, 10.0).reshape(1, 9, 1)  # grid rows [1 2 3] [4 5 6] [7 8 9]
    assert torch.equal(pb(x), torch.zeros_like(x))  # LayerScales start at 0
    with torch.no_grad():
        pb.scales[0].gamma.fill_(1.0)  # (1, 3) only
    # zero padding counted: row 1 -> [(0+1+2)/3, (1+2+3)/3, (2+3+0)/3]
    assert torch.allclose(pb(x)[0, :3, 0], torch.tensor([1.0, 2.0, 5 / 3]))
    with torch.no_grad():
        pb.scales[0].gamma.fill_(0.0)
        pb.scales[1].gamma.fill_(2.0)  # (3, 1), times 2
    # column 0 = [1, 4, 7]: [(1+4)/3, (1+4+7)/3, (4+7)/3] * 2
    col0 = pb(x)[0, [0, 3, 6], 0]
    assert torch.allclose(col0, 2 * torch.tensor([5 / 3, 4.0, 11 / 3]))
    with torch.no_grad():
        pb.scales[1].gamma.fill_(0.0)
        pb.scales[3].gamma.fill_(1.0)  # (5, 1): whole column / 5
    assert torch.allclose(pb(x)[0, [0, 3, 6], 0], torch.tensor([12 / 5, 12 / 5, 12 / 5]))


def test_token_shifts_hand_computed():
    g = 4
    i, j = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    val = (10 * i + j + 1).float().reshape(1, g * g, 1)  # 1-based so zero fill is visible
    x = val.expand(1, g * g, 16).clone()
    y = shift_tokens(x, g).reshape(g, g, 16)
    v = val.reshape(g, g)
    # group 0: (dy, dx) = (1, 0): y[i, j] = x[i - 1, j], row 0 zero
    assert torch.equal(y[1:, :, 0], v[:-1]) and torch.equal(y[0, :, 0], torch.zeros(g))
    # group 1: (-1, 0): y[i, j] = x[i + 1, j]
    assert torch.equal(y[:-1, :, 1], v[1:]) and torch.equal(y[-1, :, 1], torch.zeros(g))
    # group 2: (0, 1): y[i, j] = x[i, j - 1]
    assert torch.equal(y[:, 1:, 2], v[:, :-1]) and torch.equal(y[:, 0, 2], torch.zeros(g))
    # group 5: (-2, 0): y[i, j] = x[i + 2, j]
    assert torch.equal(y[:2, :, 5], v[2:]) and torch.equal(y[2:, :, 5], torch.zeros(2, g))
    # group 7: (0, -2)
    assert torch.equal(y[:, :2, 7], v[:, 2:])
    # second half of the channels unshifted
    assert torch.equal(y[..., 8:], x.reshape(g, g, 16)[..., 8:])
    with pytest.raises(ValueError, match="divisible by 16"):
        shift_tokens(torch.zeros(1, 16, 8), 4)


def test_haar_decomposition_hand_computed():
    h = haar_matrix(4)
    q = torch.tensor([1.0, 3.0, 2.0, -2.0])
    r = 2**-0.5
    # low band (q0 + q1, q2 + q3) / sqrt 2, high band (q0 - q1, q2 - q3) / sqrt 2
    assert torch.allclose(q @ h, torch.tensor([4 * r, 0.0, -2 * r, 4 * r]))
    assert torch.allclose(h @ h.T, torch.eye(4), atol=1e-6)  # orthonormal
    k = torch.tensor([0.5, -1.0, 1.0, 1.0])
    assert torch.allclose((q @ h) @ (k @ h), q @ k, atol=1e-6)  # FP similarity unchanged
    # binary similarity = sum over the bands of the band XNOR scores
    sq, sk = torch.where(q @ h >= 0, 1.0, -1.0), torch.where(k @ h >= 0, 1.0, -1.0)
    low = sq[:2] @ sk[:2]
    high = sq[2:] @ sk[2:]
    # k @ h = [-0.5r, 2r, 1.5r, 0] -> signs [-1, 1, 1, 1]; q signs [1, 1, -1, 1]
    assert low.item() == 0.0 and high.item() == 0.0 and (sq @ sk).item() == low + high
    with pytest.raises(ValueError, match="even"):
        haar_matrix(3)


def test_haar_attention_scores_are_band_sums():
    torch.manual_seed(0)
    att = ZooAttention(8, 2, True, tokens=4, binarizer="elastic", haar=True).eval()
    x = torch.randn(1, 4, 8)
    q, k, _ = att.scores_and_values(x)
    with torch.no_grad():
        h = att.act_in(att.norm(x))
        qr = att.q(h).reshape(1, 4, 2, 4).transpose(1, 2)
        kr = att.k(h).reshape(1, 4, 2, 4).transpose(1, 2)
    bands = []
    for lo, hi in ((0, 2), (2, 4)):  # low and high band of every head
        sq = torch.where((qr @ haar_matrix(4))[..., lo:hi] - att.act_q.beta.reshape(2, 4)[None, :, None, lo:hi] >= 0, 1.0, -1.0)
        sk = torch.where((kr @ haar_matrix(4))[..., lo:hi] - att.act_k.beta.reshape(2, 4)[None, :, None, lo:hi] >= 0, 1.0, -1.0)
        bands.append(sq @ sk.transpose(-2, -1))
    assert torch.equal(q @ k.transpose(-2, -1), bands[0] + bands[1])


def test_differential_information_is_token_minus_3x3_mean():
    att = ZooAttention(1, 1, True, tokens=9, binarizer="elastic", grid=3, diff=True).eval()
    seen = {}
    att.norm_d.register_forward_hook(lambda m, i, o: seen.setdefault("d", i[0]))
    x = torch.arange(1.0, 10.0).reshape(1, 9, 1)
    att(x)
    d = seen["d"][0, :, 0]
    # centre: 5 - 45/9 = 0; corner (0,0): 1 - (1+2+4+5)/9; edge (0,1): 2 - (1+2+3+4+5+6)/9
    assert d[4].item() == pytest.approx(0.0, abs=1e-6)
    assert d[0].item() == pytest.approx(1 - 12 / 9)
    assert d[1].item() == pytest.approx(2 - 21 / 9)


def test_window_partition_and_pooled_merge_tokens():
    att = ZooAttention(2, 1, True, tokens=16, binarizer="qd", grid=4, window=2, pooled=True).eval()
    x = torch.arange(16.0).reshape(1, 16, 1).expand(1, 16, 2)
    w = att._windows(x)
    assert w.shape == (4, 4, 2)
    # window 0 = grid tokens (0,0), (0,1), (1,0), (1,1) = indices 0, 1, 4, 5; window 1 = 2, 3, 6, 7
    assert w[0, :, 0].tolist() == [0.0, 1.0, 4.0, 5.0] and w[1, :, 0].tolist() == [2.0, 3.0, 6.0, 7.0]
    assert torch.equal(att._unwindows(w, 1), x)
    q, k, v = att.scores_and_values(torch.randn(2, 16, 2))
    # each window: 4 queries; keys = its 4 tokens + 4 pooled merge tokens
    assert q.shape == (8, 1, 4, 2) and k.shape == (8, 1, 8, 2) and v.shape == (8, 1, 8, 2)
    assert torch.equal(k[0, :, 4:], k[1, :, 4:])  # the same merge tokens in every window of an image
    with pytest.raises(ValueError, match="does not divide"):
        ZooAttention(2, 1, True, tokens=16, grid=4, window=3)


def test_patch_merge_concatenates_2x2_groups():
    pm = PatchMerge(1, 2, grid=4, binary=False, residual_quant=None).eval()
    seen = {}
    pm.norm.register_forward_hook(lambda m, i, o: seen.setdefault("x", i[0]))
    x = torch.arange(16.0).reshape(1, 16, 1)
    assert pm(x).shape == (1, 4, 2)
    # merged token 0 = grid (0,0), (0,1), (1,0), (1,1); merged token 1 = (0,2), (0,3), (1,2), (1,3)
    assert seen["x"][0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert seen["x"][0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]
    assert seen["x"][0, 3].tolist() == [10.0, 11.0, 14.0, 15.0]


# --- activations, convolutions, regularizer -----------------------------------


def test_rprelu_hand_computed():
    a = RPReLU(2)
    with torch.no_grad():
        a.gamma.copy_(torch.tensor([0.5, -1.0]))
        a.zeta.copy_(torch.tensor([1.0, 0.0]))
    x = torch.tensor([[2.0, -3.0], [0.0, 0.0]])
    # u = x - gamma = [[1.5, -2], [-0.5, 1]]; PReLU(0.25); + zeta
    assert torch.allclose(a(x), torch.tensor([[2.5, -0.5], [0.875, 1.0]]))


def test_improved_rprelu_has_per_token_shifts():
    a = ImprovedRPReLU(1, tokens=2)
    with torch.no_grad():
        a.gamma_t.copy_(torch.tensor([[1.0], [0.0]]))
        a.zeta_t.copy_(torch.tensor([[0.0], [2.0]]))
    x = torch.tensor([[[0.0], [0.0]]])
    # token 0: PReLU(0 - 1) + 0 = -0.25; token 1: PReLU(0) + 2 = 2
    assert torch.allclose(a(x), torch.tensor([[[-0.25], [2.0]]]))


def test_binary_conv_is_scaled_xnor_count_and_train_eval_agree():
    torch.manual_seed(0)
    conv = BinaryConv2d(4, 4, 3, padding=3, dilation=3, groups=2).train()
    x = torch.randint(0, 2, (1, 4, 5, 5)).float() * 2 - 1
    y_train = conv(x).detach()
    w = conv.weight.detach()
    s = w.abs().mean(dim=(1, 2, 3))
    ref = F.conv2d(x, torch.where(w >= 0, 1.0, -1.0), padding=3, dilation=3, groups=2)
    assert torch.allclose(y_train, ref * s.view(1, -1, 1, 1), atol=1e-5)
    assert torch.equal(torch.round(y_train / s.view(1, -1, 1, 1)), ref)  # integer accumulators
    assert torch.equal(conv.eval()(x), y_train)


def test_msgdc_sums_three_dilated_grouped_convs():
    torch.manual_seed(0)
    m = MultiScaleDilatedConv(8, grid=4, binary=True).eval()
    assert [c.dilation for c in m.convs] == [(1, 1), (3, 3), (5, 5)] and all(c.groups == 4 for c in m.convs)
    x = torch.randn(2, 16, 8)
    seen = {}
    m.norm_out.register_forward_hook(lambda mod, i, o: seen.setdefault("sum", i[0]))
    m(x)
    with torch.no_grad():
        h = m.act_in(m.norm(x)).transpose(1, 2).reshape(2, 8, 4, 4)
        want = sum(c(h) for c in m.convs).reshape(2, 8, 16).transpose(1, 2)
    assert torch.allclose(seen["sum"], want)


def test_oscillation_loss_hand_computed():
    w = [torch.tensor([0.0, 1.0]), torch.tensor([[-2.0, 0.5]])]
    # | |w| - 1 | = 1, 0, 1, 0.5 -> mean 0.625
    assert oscillation_loss(w).item() == pytest.approx(0.625)
    assert oscillation_loss([]).item() == 0.0
    m = build_model("bhvit-t", binary=True, img_size=8)
    ws = binary_latent_weights(m)
    assert ws and any(x.ndim == 4 for x in ws)  # MSGDC convs included


def test_cross_layer_phase_runs_mlps_in_full_precision():
    torch.manual_seed(0)
    teacher = build_model("bivit-t", binary=False, img_size=8, patch=2, stem_depth=1, dim=16, depth=1, stem_channels=4).eval()
    student = build_model("bivit-t", binary=True, img_size=8, patch=2, stem_depth=1, dim=16, depth=1, stem_channels=4)
    student.load_state_dict(teacher.state_dict(), strict=False)
    student.eval()
    x = torch.randn(3, 16, 16)
    with torch.no_grad():
        binary_out = student.blocks[0].mlp(x)
        with mlp_full_precision(student) as ph:
            assert len(ph.patched) == 4  # act_in, fc1, act_h, fc2
            fp_out = student.blocks[0].mlp(x)
            attn_binary = student.blocks[0].attn(x)
        assert torch.allclose(fp_out, teacher.blocks[0].mlp(x), atol=1e-5)
        assert torch.equal(student.blocks[0].mlp(x), binary_out)  # restored
        assert torch.equal(student.blocks[0].attn(x), attn_binary)  # attention untouched
    assert not torch.allclose(binary_out, fp_out)


# --- models, registry, op counts ---------------------------------------------


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("img", [28, 8])
@pytest.mark.parametrize("norm", ["bn", "ln"])
def test_models_build_teacher_and_student_with_same_names(name, img, norm):
    kw = dict(img_size=img, norm=norm)
    s, t = build_model(name, True, **kw), build_model(name, False, **kw)
    missing = set(dict(t.named_parameters())) - set(dict(s.named_parameters()))
    assert not missing  # the teacher initialises every shared parameter of the student
    x = torch.rand(2, 1, img, img)
    assert s(x).shape == t(x).shape == (2, 10)


def test_unknown_hyperparameter_and_bad_options():
    with pytest.raises(TypeError, match="unknown binaryvit-t hyperparameter"):
        build_model("binaryvit-t", dim=3)
    with pytest.raises(ValueError, match="CLS token excludes"):
        build_model("binary-deit-t", pool_branches=True)
    with pytest.raises(ValueError, match="unknown norm"):
        build_model("didbvit-t", norm="gn")


def test_registry_lists_five_models_with_papers():
    assert set(MODELS) == {"bivit-t", "binary-deit-t", "binaryvit-t", "bhvit-t", "didbvit-t"}
    for spec in MODELS.values():
        assert spec.paper and spec.description and spec.hardware
    assert {k: MODELS["bhvit-t"].recipe[k] for k in ("osc_reg", "osc_reg_last")} == {"osc_reg": 0.8, "osc_reg_last": 0.1}
    assert "cross_layer" not in MODELS["bivit-t"].recipe  # available, off by default


def test_train_run_applies_the_registry_recipe(monkeypatch, tmp_path):
    """train_run without a recipe trains with the model's registry settings
    (BHViT's oscillation regularizer); an explicit recipe is kept as given."""
    import xnorvit.model.train as tr

    seen = []

    class Stop(Exception):
        pass

    def fake_train_model(model, data, epochs, lr, recipe, teacher, name, progress):
        seen.append(recipe)
        raise Stop

    monkeypatch.setattr(tr, "train_model", fake_train_model)
    with pytest.raises(Stop):
        tr.train_run("bhvit-t", "digits", tmp_path / "a", progress=False, log=lambda *a: None)
    assert (seen[-1].osc_reg, seen[-1].osc_reg_last) == (0.8, 0.1)
    with pytest.raises(Stop):
        tr.train_run("bhvit-t", "digits", tmp_path / "b", tr.Recipe(), progress=False, log=lambda *a: None)
    assert seen[-1].osc_reg == 0.0


def test_op_counts_match_hand_count_for_tiny_deit():
    m = build_model("binary-deit-t", True, img_size=8, stem_channels=4, stem_depth=1, patch=2, dims=[8], depths=[1], heads=[2])
    c = count_ops(m)
    T, C, H, dh = 17, 8, 2, 4  # 16 patches + CLS
    binary = 3 * T * C * C + 2 * H * T * T * dh + T * C * C + T * C * 2 * C + T * 2 * C * C  # q,k,v; QK, PV; proj; fc1; fc2
    stem = 8 * 8 * 4 * 9 + 8 * 8 * 4  # 3x3 conv 1 -> 4 at 8x8, BN
    proj = 4 * 4 * 8 * (4 * 2 * 2) + 4 * 4 * 8  # 2x2 stride-2 conv 4 -> 8, BN
    block = 3 * T * C + 3 * H * T * T + 2 * T * C + T * 2 * C + 2 * T * C  # attn norms, table softmax, add1, MLP norms (norm, norm_h, norm_out), add2
    real = stem + proj + T * C + block + C + 10 * C  # + pos add, head BN, classifier
    assert c == {"binary_macs": binary, "real_ops": real}
    assert binary == 13328 and real == 7918


def test_describe_models_and_cli_models_command():
    from typer.testing import CliRunner

    from xnorvit.flows.cli import app

    rows = {r["name"]: r for r in describe_models(8)}
    assert set(rows) == set(MODELS)
    r = CliRunner().invoke(app, ["models", "--img-size", "8"])
    assert r.exit_code == 0, r.output
    for name, row in rows.items():
        line = next(ln for ln in r.output.splitlines() if ln.startswith(name + " "))
        assert f"{row['parameters']:,}" in line and f"{row['binary_macs']:,}" in line and f"{row['real_ops']:,}" in line
    assert "BinaryViT" in r.output and "BiViT" in r.output and "DIDB-ViT" in r.output
