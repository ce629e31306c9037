"""Tests of fashionlab.models.asen: ASA, ACA, ASEN_g and its ablations/variants, ASEN++ localisation, crops,
losses and the two-branch model (paper 03 slides; docs/implementations.md §2, §3). Oracles: the equations
computed by hand with explicit loops on tiny tensors, hand-derived boxes and bilinear weights, images with
known colours and ramps."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fashionlab.losses import triplet_ranking_loss
from fashionlab.models import SmallCNN
from fashionlab.models.asen import (
    ASENGlobal,
    ASENPlusPlus,
    ChannelAttention,
    SpatialAttention,
    alignment_loss,
    asenpp_loss,
    attention_box,
    combined_feature,
    cosine_triplet_loss,
    crop_and_resize,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def _matvec(w, b, v):
    """``w @ v + b`` with Python loops (w: (out, in) tensor, v: list)."""
    return [_dot(w[o].tolist(), v) + (b[o].item() if b is not None else 0.0) for o in range(w.shape[0])]


# ---------------------------------------------------------------------------------------------- ASA
def _asa_by_hand(asa: SpatialAttention, x, cond, bn=None, scorer=None):
    """p(x), p(a), α^s and x_s at every location, one image at a time, with loops."""
    B, C, H, W = x.shape
    cw, cb = asa.conv.weight[:, :, 0, 0].detach(), asa.conv.bias.detach()
    out_xs, out_att = [], []
    for b in range(B):
        pa = [math.tanh(v) for v in _matvec(asa.cond.weight.detach(), asa.cond.bias.detach(), cond[b].tolist())]
        scores = []
        for i in range(H):
            for j in range(W):
                z = _matvec(cw, cb, x[b, :, i, j].tolist())
                if bn is not None:  # eval-mode BatchNorm
                    z = [(z[k] - bn.running_mean[k].item()) / math.sqrt(bn.running_var[k].item() + bn.eps)
                         * bn.weight[k].item() + bn.bias[k].item() for k in range(len(z))]
                px = [math.tanh(v) for v in z]
                if scorer is None:
                    scores.append(_dot(pa, px) / math.sqrt(len(pa)))
                else:
                    prod = [p * q for p, q in zip(pa, px)]
                    scores.append(math.tanh(_matvec(scorer.weight[:, :, 0, 0].detach(), scorer.bias.detach(), prod)[0]))
        m = max(scores)
        e = [math.exp(s - m) for s in scores]
        att = [v / sum(e) for v in e]
        xs = [sum(att[i * W + j] * x[b, c, i, j].item() for i in range(H) for j in range(W)) for c in range(C)]
        out_xs.append(xs)
        out_att.append(att)
    return torch.tensor(out_xs), torch.tensor(out_att).reshape(B, H, W)


def test_asa_matches_hand_computation():
    torch.manual_seed(0)
    asa = SpatialAttention(6, 5, attn_dim=4)
    x, cond = torch.randn(2, 6, 3, 4), torch.randn(2, 5)
    xs, att = asa(x, cond)
    assert xs.shape == (2, 6) and att.shape == (2, 3, 4)
    assert torch.allclose(att.sum(dim=(1, 2)), torch.ones(2), atol=1e-6)      # softmax over the 12 locations
    want_xs, want_att = _asa_by_hand(asa, x, cond)
    assert torch.allclose(att, want_att, atol=1e-6)
    assert torch.allclose(xs, want_xs, atol=1e-5)
    # x_s is the attention-weighted sum of the original C-dim features (not of p(x))
    loop = torch.stack([sum(att[b, i, j] * x[b, :, i, j] for i in range(3) for j in range(4)) for b in range(2)])
    assert torch.allclose(xs, loop, atol=1e-6)


def test_asa_default_width_and_reference_variants_by_hand():
    assert SpatialAttention(1024, 512).attn_dim == 512 and SpatialAttention(256, 512).attn_dim == 256  # ASEN++ §3
    torch.manual_seed(1)
    x, cond = torch.randn(2, 5, 2, 3), torch.randn(2, 3)
    bn_asa = SpatialAttention(5, 3, attn_dim=4, batch_norm=True).eval()       # ASENet_V2's p(x)
    with torch.no_grad():
        bn_asa.bn.running_mean.uniform_(-0.5, 0.5)
        bn_asa.bn.running_var.uniform_(0.5, 2.0)
        bn_asa.bn.weight.uniform_(0.5, 1.5)
        bn_asa.bn.bias.uniform_(-0.2, 0.2)
    xs, att = bn_asa(x, cond)
    want_xs, want_att = _asa_by_hand(bn_asa, x, cond, bn=bn_asa.bn)
    assert torch.allclose(att, want_att, atol=1e-6) and torch.allclose(xs, want_xs, atol=1e-5)
    conv_asa = SpatialAttention(5, 3, attn_dim=4, score="conv")               # ASENet (v1 code) scorer
    xs, att = conv_asa(x, cond)
    want_xs, want_att = _asa_by_hand(conv_asa, x, cond, scorer=conv_asa.scorer)
    assert torch.allclose(att, want_att, atol=1e-6) and torch.allclose(xs, want_xs, atol=1e-5)
    with pytest.raises(ValueError):
        SpatialAttention(5, 3, score="cosine")


def test_spatially_constant_map_gives_uniform_attention_for_any_condition():
    torch.manual_seed(2)
    asa = SpatialAttention(8, 4, attn_dim=6)
    v = torch.randn(3, 8, 1, 1)
    x = v.expand(3, 8, 5, 5).contiguous()                  # every location carries the same feature
    for _ in range(3):
        xs, att = asa(x, torch.randn(3, 4) * 3)
        assert torch.allclose(att, torch.full((3, 5, 5), 1 / 25), atol=1e-7)
        assert torch.allclose(xs, v.flatten(1), atol=1e-6)


def test_attention_depends_on_the_attribute_only_through_its_embedding():
    torch.manual_seed(3)
    net = ASENGlobal(SmallCNN(width=4), 4, embed_dim=8, cond_dim=6).eval()
    with torch.no_grad():
        net.attribute_embedding.weight[3] = net.attribute_embedding.weight[1]   # two attributes, one vector
    x = torch.randn(2, 3, 48, 48)
    same_a, same_b = net(x, [1, 1]), net(x, [3, 3])
    assert torch.equal(same_a.attention, same_b.attention) and torch.equal(same_a.embedding, same_b.embedding)
    other = net(x, [0, 0])
    assert not torch.allclose(other.attention, same_a.attention)              # the attention is conditional


# ---------------------------------------------------------------------------------------------- ACA
@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_aca_matches_hand_computation(act):
    torch.manual_seed(4)
    aca = ChannelAttention(6, 3, out_dim=5, cond_hidden=4, reduction=2, cond_activation=act)
    assert aca.fc1.in_features == 4 + 6 and aca.fc1.out_features == 3
    xs, cond = torch.randn(2, 6), torch.randn(2, 3)
    out = aca(xs, cond)
    f = math.tanh if act == "tanh" else (lambda v: max(v, 0.0))
    for b in range(2):
        q = [f(v) for v in _matvec(aca.cond.weight.detach(), aca.cond.bias.detach(), cond[b].tolist())]
        h = [max(v, 0.0) for v in _matvec(aca.fc1.weight.detach(), aca.fc1.bias.detach(), q + xs[b].tolist())]
        gate = [1 / (1 + math.exp(-v)) for v in _matvec(aca.fc2.weight.detach(), aca.fc2.bias.detach(), h)]
        xc = [g * v for g, v in zip(gate, xs[b].tolist())]
        want = _matvec(aca.fc.weight.detach(), aca.fc.bias.detach(), xc)
        assert torch.allclose(aca.gate(xs, cond)[b], torch.tensor(gate), atol=1e-6)
        assert torch.allclose(out[b], torch.tensor(want), atol=1e-5)
    no_fc = ChannelAttention(6, 3, out_dim=None)
    assert no_fc(xs, cond).shape == (2, 6)
    assert torch.allclose(no_fc(xs, cond), xs * no_fc.gate(xs, cond))


# ---------------------------------------------------------------------------------------------- ASEN_g
def _tiny(**kw):
    torch.manual_seed(5)
    return ASENGlobal(SmallCNN(width=4), 5, **{"embed_dim": 12, "cond_dim": 6, **kw}).eval()


def test_asen_global_composes_asa_aca_and_normalises():
    net = _tiny()
    x, attr = torch.randn(3, 3, 32, 32), torch.tensor([0, 4, 2])
    out = net(x, attr)
    assert out.embedding.shape == (3, 12) and out.attention.shape == (3, 2, 2)
    fmap, cond = net.backbone(x), net.attribute_embedding.weight[attr]
    xs, att = net.asa(fmap, cond)
    assert torch.allclose(out.attention, att)
    assert torch.allclose(out.embedding, F.normalize(net.aca(xs, cond), dim=1), atol=1e-6)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(3), atol=1e-6)
    assert net.aca.cond_activation == "tanh" and net.embed_dim == 12
    assert ASENGlobal(SmallCNN(width=4), 3).embed_dim == 1024            # the papers' default


def test_without_asa_is_global_average_pooling():
    net = _tiny(use_asa=False)
    assert net.asa is None and not net.use_asa
    x, attr = torch.randn(2, 3, 48, 48), torch.tensor([1, 3])
    out = net(x, attr)
    fmap, cond = net.backbone(x), net.attribute_embedding.weight[attr]
    gap = fmap.mean(dim=(2, 3))
    assert torch.allclose(out.embedding, F.normalize(net.aca(gap, cond), dim=1), atol=1e-6)
    assert torch.allclose(out.attention, torch.full((2, 3, 3), 1 / 9))     # uniform weights = average pooling


def test_without_aca_skips_the_gate_and_keeps_the_fc():
    net = _tiny(use_aca=False)
    assert net.aca is None and isinstance(net.fc, nn.Linear) and net.fc.out_features == 12
    x, attr = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    fmap, cond = net.backbone(x), net.attribute_embedding.weight[attr]
    xs, _ = net.asa(fmap, cond)
    assert torch.allclose(net(x, attr).embedding, F.normalize(net.fc(xs), dim=1), atol=1e-6)
    both_off = _tiny(use_asa=False, use_aca=False)
    assert torch.allclose(both_off(x, attr).embedding,
                          F.normalize(both_off.fc(both_off.backbone(x).mean(dim=(2, 3))), dim=1), atol=1e-6)


def test_variant_v2():
    torch.manual_seed(6)
    net = ASENGlobal(SmallCNN(width=4), 5, variant="v2", cond_dim=6).eval()
    assert isinstance(net.asa.bn, nn.BatchNorm2d) and net.asa.score == "dot"
    assert net.aca.cond_activation == "relu" and isinstance(net.aca.fc, nn.Identity)
    assert net.embed_dim == 16                                             # C: no final FC
    x, attr = torch.randn(2, 3, 32, 32), torch.tensor([4, 0])
    fmap, cond = net.backbone(x), net.attribute_embedding.weight[attr]
    xs, _ = net.asa(fmap, cond)
    want = F.normalize(xs * net.aca.gate(xs, cond), dim=1)
    assert torch.allclose(net(x, attr).embedding, want, atol=1e-6)
    with pytest.raises(ValueError):
        ASENGlobal(SmallCNN(width=4), 5, variant="v2", embed_dim=1024)
    with pytest.raises(ValueError):
        ASENGlobal(SmallCNN(width=4), 5, variant="v3")
    assert ASENGlobal(SmallCNN(width=4), 5, variant="v2", embed_dim=16).embed_dim == 16


def test_gradients_reach_attribute_embeddings_and_backbone():
    torch.manual_seed(7)
    net = ASENGlobal(SmallCNN(width=4), 6, embed_dim=16, cond_dim=8)
    xa, xp, xn = torch.randn(3, 4, 3, 32, 32).unbind(0)
    attr = torch.tensor([0, 2, 2, 5])
    loss = cosine_triplet_loss(net(xa, attr).embedding, net(xp, attr).embedding, net(xn, attr).embedding, margin=0.5)
    loss.backward()
    g = net.attribute_embedding.weight.grad
    assert g[[0, 2, 5]].abs().sum(1).gt(0).all() and torch.count_nonzero(g[[1, 3, 4]]) == 0
    assert net.backbone.block1.conv.weight.grad.abs().sum() > 0
    assert net.asa.conv.weight.grad.abs().sum() > 0 and net.aca.fc1.weight.grad.abs().sum() > 0


def test_tiny_asen_global_trains_on_32px():
    torch.manual_seed(8)
    net = ASENGlobal(SmallCNN(width=4), 2, embed_dim=16, cond_dim=8)
    imgs = torch.randn(6, 3, 32, 32)
    a, p, n, attr = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([4, 5, 3]), torch.tensor([0, 1, 0])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = cosine_triplet_loss(*(net(imgs[i], attr).embedding for i in (a, p, n)))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------------------------------------- localisation
def test_attention_box_on_a_known_blob():
    m = torch.zeros(2, 7, 7)
    m[0, 2:4, 1:5] = 1.0                    # rows 2..3, columns 1..4 -> grid box [1, 5) x [2, 4)
    m[1, 5, 6] = 3.0                        # one hot pixel in the last column
    m[1, 0, 0] = 1.0                        # below half of the range: dropped at threshold 0.5
    m += 0.2                                # an offset: min-max normalisation removes it
    raw = attention_box(m, threshold=0.5, image_size=(70, 140), square=False)
    # grid 7x7 -> image 70 (H) x 140 (W): x scales by 20, y by 10
    assert torch.allclose(raw, torch.tensor([[20.0, 20.0, 100.0, 40.0], [120.0, 50.0, 140.0, 60.0]]))
    sq = attention_box(m, threshold=0.5, image_size=(70, 140))
    # box 0: side max(80, 20) = 80, capped at min(H, W) = 70; centre (60, 30) -> left 25, top clamped to 0
    # box 1: side 20, centre (130, 55) -> left shifted inside to 120, top 45
    assert torch.allclose(sq, torch.tensor([[25.0, 0.0, 95.0, 70.0], [120.0, 45.0, 140.0, 65.0]]))
    # all pixels above the threshold count (the bounding box of two separate blobs, not the larger one)
    two = torch.zeros(6, 6)
    two[0, 0], two[4:6, 3:6] = 1.0, 1.0
    assert torch.equal(attention_box(two, 0.5, square=False), torch.tensor([0.0, 0.0, 6.0, 6.0]))
    # threshold is strict: values equal to it are dropped
    step = torch.tensor([[0.0, 0.5, 1.0]])
    assert torch.equal(attention_box(step, 0.5, square=False), torch.tensor([2.0, 0.0, 3.0, 1.0]))


def test_attention_box_constant_map_gives_the_whole_image():
    boxes = attention_box(torch.full((2, 4, 4), 1 / 16), 0.1, image_size=(40, 60))
    assert torch.equal(boxes, torch.tensor([[10.0, 0.0, 50.0, 40.0]] * 2))  # whole image, squared: 40 px centred
    assert torch.equal(attention_box(torch.zeros(3, 3), 0.1, square=False), torch.tensor([0.0, 0.0, 3.0, 3.0]))


def test_attention_box_upsamples_bilinearly_first():
    # a 2x2 map, hot at (0, 0), resized to 4x4 with half-pixel centres (cv2 INTER_LINEAR): each axis has
    # weights [1, 0.75, 0.25, 0] on the hot pixel, so the normalised map is their outer product.
    m = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert torch.equal(attention_box(m, 0.2, image_size=8, work_size=4, square=False),
                       torch.tensor([0.0, 0.0, 6.0, 6.0]))                # rows/cols 0..2 (0.25 > 0.2) of 4 -> x2
    assert torch.equal(attention_box(m, 0.3, image_size=8, work_size=4, square=False),
                       torch.tensor([0.0, 0.0, 4.0, 4.0]))                # 0.25 is dropped, 0.5625 > 0.3 kept
    assert torch.equal(attention_box(m, 0.6, image_size=8, work_size=4, square=False),
                       torch.tensor([0.0, 0.0, 4.0, 4.0]))                # 0.75 at (0, 1) and (1, 0)
    assert torch.equal(attention_box(m, 0.8, image_size=8, work_size=4, square=False),
                       torch.tensor([0.0, 0.0, 2.0, 2.0]))


def test_crop_and_resize_returns_the_square_colour():
    imgs = torch.full((2, 3, 32, 32), 0.5)
    imgs[0, :, 8:24, 8:24] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]       # red square
    imgs[1, :, 0:16, 16:32] = torch.tensor([0.0, 1.0, 0.2])[:, None, None]      # green square, top right
    boxes = torch.tensor([[8.0, 8.0, 24.0, 24.0], [16.0, 0.0, 32.0, 16.0]])
    crops = crop_and_resize(imgs, boxes, 4)
    assert crops.shape == (2, 3, 4, 4)
    assert torch.allclose(crops[0], torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 4, 4), atol=1e-6)
    assert torch.allclose(crops[1], torch.tensor([0.0, 1.0, 0.2])[:, None, None].expand(3, 4, 4), atol=1e-6)


def test_crop_and_resize_pixel_convention_on_a_ramp():
    ramp = torch.arange(32.0).expand(1, 3, 32, 32).contiguous()                # value = column index
    full = crop_and_resize(ramp, torch.tensor([[0.0, 0.0, 32.0, 32.0]]), (2, 4))
    # each output column averages 8 whole input columns: 8k + 3.5
    assert torch.allclose(full[0, 0], torch.tensor([3.5, 11.5, 19.5, 27.5]).expand(2, 4), atol=1e-5)
    up = crop_and_resize(ramp, torch.tensor([[4.0, 0.0, 6.0, 32.0]]), (1, 4))  # columns 4 and 5, upsampled x2
    # sample points at 3.75, 4.25, 4.75, 5.25 in index coordinates (pixel i's centre at i): a linear ramp
    # returns them; roi_align reads the neighbours outside the box, so the ends are not clamped to 4 and 5
    assert torch.allclose(up[0, 0, 0], torch.tensor([3.75, 4.25, 4.75, 5.25]), atol=1e-5)
    with pytest.raises(ValueError):
        crop_and_resize(ramp, torch.zeros(2, 4), 4)


# ---------------------------------------------------------------------------------------------- losses
def test_alignment_loss():
    v = torch.randn(4, 7)
    assert alignment_loss(v, v).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment_loss(v, 3 * v).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment_loss(v, -v).item() == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(2)
    assert alignment_loss(e, torch.stack([e[1], e[1]])).item() == pytest.approx(0.5)  # mean of 1 and 0


def test_combined_feature():
    torch.manual_seed(9)
    g, l = torch.randn(5, 6) * 4, torch.randn(5, 6)
    f = combined_feature(g, l)
    assert f.shape == (5, 12)
    assert torch.allclose(f.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(f[:, :6], math.sqrt(0.6) * g / g.norm(dim=1, keepdim=True), atol=1e-6)
    gn, ln = F.normalize(g, dim=1), F.normalize(l, dim=1)
    assert torch.allclose(combined_feature(gn, ln, 0.3).norm(dim=1), torch.ones(5), atol=1e-6)
    # the inner product mixes the two cosines: β cos_g + (1 - β) cos_l
    f2 = combined_feature(g.flip(0), l.flip(0))
    want = 0.6 * F.cosine_similarity(g, g.flip(0)) + 0.4 * F.cosine_similarity(l, l.flip(0))
    assert torch.allclose((f * f2).sum(1), want, atol=1e-6)


def test_asenpp_loss_by_hand():
    torch.manual_seed(10)
    g = torch.randn(3, 4, 8).unbind(0)
    l = torch.randn(3, 4, 8).unbind(0)

    def trip(a, p, n):
        cp = [_dot(a[i].tolist(), p[i].tolist()) / (a[i].norm() * p[i].norm()).item() for i in range(4)]
        cn = [_dot(a[i].tolist(), n[i].tolist()) / (a[i].norm() * n[i].norm()).item() for i in range(4)]
        return sum(max(0.0, 0.2 - x + y) for x, y in zip(cp, cn)) / 4

    align = sum(sum(1 - _dot(gi[i].tolist(), li[i].tolist()) / (gi[i].norm() * li[i].norm()).item()
                    for i in range(4)) / 4 for gi, li in zip(g, l))
    out = asenpp_loss(g, l)
    assert out.global_triplet.item() == pytest.approx(trip(*g), abs=1e-6)
    assert out.local_triplet.item() == pytest.approx(trip(*l), abs=1e-6)
    assert out.alignment.item() == pytest.approx(align, abs=1e-5)
    assert out.loss.item() == pytest.approx(trip(*g) + 0.1 * trip(*l) + 0.1 * align, abs=1e-5)
    assert cosine_triplet_loss(*g).item() == pytest.approx(
        triplet_ranking_loss(F.cosine_similarity(g[0], g[1]), F.cosine_similarity(g[0], g[2]), 0.2).item())
    with pytest.raises(ValueError):
        asenpp_loss(g[:2], l)


# ---------------------------------------------------------------------------------------------- ASEN++
def _asenpp():
    torch.manual_seed(11)
    return ASENPlusPlus.from_backbones(SmallCNN(width=4), SmallCNN(width=2), 4, embed_dim=16, cond_dim=8,
                                       local_size=32)


def test_asenpp_forward_backward_and_param_groups():
    model = _asenpp()
    assert model.local_branch.attribute_embedding is model.global_branch.attribute_embedding
    assert model.local_branch.asa.attn_dim == 8 and model.global_branch.asa.attn_dim == 16
    x = torch.randn(3, 3, 32, 32)
    x_hr = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    attr = torch.tensor([0, 3, 1])
    out = model(x, attr, x_hr)
    assert out.global_embedding.shape == (3, 16) and out.local_embedding.shape == (3, 16)
    assert out.attention.shape == (3, 2, 2) and out.local_attention.shape == (3, 2, 2)
    b = out.boxes
    assert b.shape == (3, 4) and (b[:, 0] >= 0).all() and (b[:, 2] <= 64).all() and (b[:, 3] <= 64).all()
    assert torch.allclose(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])              # squared
    assert torch.equal(b, attention_box(out.attention, 0.1, image_size=64, work_size=32))
    assert model.feature(x, attr, x_hr).shape == (3, 32)

    xp, xn = torch.randn(2, 3, 3, 32, 32).unbind(0)
    op, on = model(xp, attr), model(xn, attr)
    loss = asenpp_loss((out.global_embedding, op.global_embedding, on.global_embedding),
                       (out.local_embedding, op.local_embedding, on.local_embedding)).loss
    loss.backward()
    emb = model.global_branch.attribute_embedding.weight.grad
    assert emb[[0, 1, 3]].abs().sum(1).gt(0).all() and torch.count_nonzero(emb[2]) == 0
    assert model.local_branch.backbone.block1.conv.weight.grad.abs().sum() > 0
    assert model.global_branch.backbone.block1.conv.weight.grad.abs().sum() > 0

    groups = model.param_groups()
    ids = [[id(p) for p in g["params"]] for g in groups]
    assert [g["lr"] for g in groups] == [1e-4, 1e-5]
    assert not set(ids[0]) & set(ids[1])
    assert set(ids[0]) | set(ids[1]) == {id(p) for p in model.parameters()}
    assert id(model.global_branch.attribute_embedding.weight) in ids[1]      # shared table: global group
    torch.optim.Adam(groups)                                                   # no duplicate parameters


def test_asenpp_loss_method_is_the_stage2_loss():
    """``ASENPlusPlus.loss`` on anchors, positives and negatives stacked = ``asenpp_loss`` of the three forwards."""
    model = _asenpp().eval()
    model.loss_weights, model.margin = (1.0, 0.3, 0.2), 0.1
    x = torch.randn(6, 3, 32, 32)
    attr = torch.tensor([0, 3, 0, 3, 0, 3])
    out = model.loss(x, attr)
    o = [model(x[k:k + 2], attr[k:k + 2]) for k in (0, 2, 4)]
    ref = asenpp_loss([z.global_embedding for z in o], [z.local_embedding for z in o], 1.0, 0.3, 0.2, margin=0.1)
    assert out.loss.item() == pytest.approx(ref.loss.item(), abs=1e-5)
    assert out.metrics["L_l"].item() == pytest.approx(ref.local_triplet.item(), abs=1e-5)
    g = [z.global_embedding for z in o]
    acc = (F.cosine_similarity(g[0], g[1]) > F.cosine_similarity(g[0], g[2])).float().mean()
    assert out.metrics["acc"].item() == acc.item()


def test_attribute_triplet_loss_per_model_kind():
    """The single-branch loss: cosine triplet loss of ``model(x, attr).embedding`` (ASEN_g), of ``model(x)`` (the
    attribute-unaware triplet network), CSN's own loss with its regularisers; and ``triplet_step`` feeds it."""
    from fashionlab.models import (ConditionalSimilarityNet, GlobalPoolEmbedding, attribute_triplet_loss,
                                   triplet_step)

    torch.manual_seed(12)
    x = torch.randn(6, 3, 32, 32)
    attr = torch.tensor([1, 2, 1, 2, 1, 2])
    g = ASENGlobal(SmallCNN(width=4), 4, embed_dim=16, cond_dim=8).eval()
    e = g(x, attr).embedding
    out = attribute_triplet_loss(g, x, attr, margin=0.3)
    assert out.loss.item() == pytest.approx(cosine_triplet_loss(e[:2], e[2:4], e[4:], margin=0.3).item(), abs=1e-6)
    acc = (F.cosine_similarity(e[:2], e[2:4]) > F.cosine_similarity(e[:2], e[4:])).float().mean()
    assert out.metrics["acc"].item() == acc.item()
    t = GlobalPoolEmbedding(SmallCNN(width=4), 16).eval()
    e = t(x)
    assert attribute_triplet_loss(t, x, attr).loss.item() == pytest.approx(
        cosine_triplet_loss(e[:2], e[2:4], e[4:]).item(), abs=1e-6)
    csn = ConditionalSimilarityNet(GlobalPoolEmbedding(SmallCNN(width=4), 16, normalize=False), 4, dim=16,
                                   masks="learned", variant="modified").eval()
    f = csn.embed(x)
    ref = csn.triplet_loss_from_embeddings(f[:2], f[2:4], f[4:], attr[:2], margin=0.2, lambda1=1e-2, lambda2=1e-3)
    assert attribute_triplet_loss(csn, x, attr, lambda1=1e-2, lambda2=1e-3).loss.item() == pytest.approx(
        ref.loss.item(), abs=1e-6)

    class Images:  # what triplet_step asks of a TwoScaleImages
        def triplet_batch(self, t, train, device, hires):
            assert train and not hires and t.tolist() == [[0, 2, 4, 1], [1, 3, 5, 2]]
            return x, None, attr

    loss, metrics = triplet_step(Images(), margin=0.3)(g, np.array([[0, 2, 4, 1], [1, 3, 5, 2]]))
    assert loss.item() == pytest.approx(attribute_triplet_loss(g, x, attr, margin=0.3).loss.item(), abs=1e-6)
    assert set(metrics) == {"acc"}


def test_autocast_cpu_bfloat16():
    model = _asenpp().eval()
    x, attr = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, attr)
        f = model.feature(x, attr)
    assert torch.isfinite(out.global_embedding.float()).all() and torch.isfinite(f.float()).all()
    assert torch.allclose(out.attention.float().sum(dim=(1, 2)), torch.ones(2), atol=1e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_channels_last():
    model = _asenpp().cuda().to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 64, 64, device="cuda").to(memory_format=torch.channels_last)
    x_hr = torch.randn(4, 3, 128, 128, device="cuda")
    attr = torch.tensor([0, 1, 2, 3], device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x, attr, x_hr)
        xp = model(x.flip(0), attr, x_hr.flip(0))
        xn = model(x.roll(1, 0), attr, x_hr.roll(1, 0))
        loss = asenpp_loss((out.global_embedding, xp.global_embedding, xn.global_embedding),
                           (out.local_embedding, xp.local_embedding, xn.local_embedding)).loss
    loss.backward()
    assert out.boxes.device.type == "cuda" and torch.isfinite(loss)
    assert model.global_branch.attribute_embedding.weight.grad.abs().sum() > 0
    # the same weights give the same global embedding and attention on both devices (fp32, no TF32)
    cpu = _asenpp().eval().global_branch
    gpu = _asenpp().eval().global_branch.cuda()
    xc, a = torch.randn(2, 3, 32, 32), torch.tensor([1, 3])
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            want, got = cpu(xc, a), gpu(xc.cuda(), a.cuda())
    finally:
        torch.backends.cudnn.allow_tf32 = old
    assert torch.allclose(want.embedding, got.embedding.cpu(), atol=1e-4)
    assert torch.allclose(want.attention, got.attention.cpu(), atol=1e-5)
