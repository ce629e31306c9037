"""Tests of fashionlab.models.csn and the CSN / SiaNet / joint losses of fashionlab.losses (paper 01 Eq. 3-6,
docs/implementations.md §6). Oracles: hand computations on tiny tensors, torch's MarginRankingLoss (CSN's
own criterion), a per-pair loop."""
from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fashionlab.losses import contrastive_loss, csn_regularizers, csn_triplet_loss, joint_loss, triplet_ranking_loss
from fashionlab.models import ConditionalSimilarityNet, RecognitionNet, SmallCNN, block_masks
from fashionlab.taxonomy import FASHIONAI


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- masks
def test_fixed_masks_are_disjoint_and_cover_dim():
    net = ConditionalSimilarityNet(nn.Identity(), 8, dim=64, masks="fixed")
    m = net.mask_matrix()
    assert m.shape == (8, 64)
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(m.sum(0), torch.ones(64))          # every dimension in exactly one mask
    assert torch.equal(m.sum(1), torch.full((8,), 8.0))   # 64 / 8 dimensions each, contiguous
    assert torch.equal(m[3, 24:32], torch.ones(8))
    assert not net.masks.weight.requires_grad
    # T not dividing d: blocks differ by one and still cover d
    m3 = block_masks(3, 64)
    assert torch.equal(m3.sum(0), torch.ones(64)) and m3.sum(1).tolist() == [22.0, 21.0, 21.0]


def test_prein_masks():
    net = ConditionalSimilarityNet(nn.Identity(), 4, dim=16, masks="prein")
    w = net.masks.weight
    assert w.requires_grad
    assert torch.equal(w[1, 4:8], torch.ones(4))
    assert torch.allclose(w[1, :4], torch.full((4,), 0.1)) and torch.allclose(w[1, 8:], torch.full((8,), 0.1))


def test_learned_mask_initialisation_and_relu():
    torch.manual_seed(0)
    net = ConditionalSimilarityNet(nn.Identity(), 8, dim=20000, masks="learned")
    w = net.masks.weight.detach()
    assert abs(w.mean().item() - 0.9) < 0.01
    assert abs(w.std().item() - 0.7) < 0.01                 # 0.7 read as a standard deviation (CSN's normal_)
    assert (w < 0).any()
    c = torch.tensor([0, 5])
    assert torch.equal(net.mask(c), F.relu(w[c]))            # original variant: ReLU, no normalisation
    var = ConditionalSimilarityNet(nn.Identity(), 8, dim=20000, masks="learned", init_std=0.7 ** 0.5)
    assert abs(var.masks.weight.detach().var().item() - 0.7) < 0.02


# ---------------------------------------------------------------------------------------------- variants
def test_original_variant_is_masked_euclidean():
    torch.manual_seed(0)
    net = ConditionalSimilarityNet(nn.Identity(), 4, dim=8, masks="fixed", variant="original")
    f = torch.randn(3, 8)
    c = torch.tensor([0, 1, 3])
    g = net(f, c)
    want = f.clone()
    for i, t in enumerate(c.tolist()):
        keep = torch.zeros(8)
        keep[2 * t:2 * t + 2] = 1
        want[i] = f[i] * keep
    assert torch.equal(g, want)
    u, v = g, net(torch.randn(3, 8), c)
    assert torch.allclose(net.score(u, v), -((u - v) ** 2).sum(1).sqrt(), atol=1e-5)


@pytest.mark.parametrize("masks", ["fixed", "learned", "prein"])
def test_modified_variant_masks_sum_to_one_unit_norm_dot_product(masks):
    torch.manual_seed(0)
    net = ConditionalSimilarityNet(nn.Identity(), 8, dim=64, masks=masks, variant="modified")
    assert torch.allclose(net.mask_matrix().sum(1), torch.ones(8), atol=1e-6)
    assert (net.mask_matrix() >= 0).all()
    c = torch.randint(0, 8, (5,))
    m = net.mask(c)
    assert torch.allclose(m.sum(1), torch.ones(5), atol=1e-6)
    raw = net.regularized_mask(c)
    assert torch.allclose(m, raw / raw.sum(1, keepdim=True))  # L1 normalisation of the non-negative mask
    f1, f2 = torch.randn(5, 64), torch.randn(5, 64)
    g1, g2 = net(f1, c), net(f2, c)
    assert torch.allclose(g1.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(net.score(g1, g2), (g1 * g2).sum(1))
    assert torch.allclose(net.score(g1, g2), F.cosine_similarity(f1 * raw, f2 * raw), atol=1e-6)
    if masks == "fixed":
        assert torch.allclose(net.mask_matrix().max(1).values, torch.full((8,), 1 / 8))


# ---------------------------------------------------------------------------------------------- losses
def test_csn_triplet_loss_by_hand_and_margin_ranking():
    d_pos = torch.tensor([0.1, 0.5, 1.0, 0.2])
    d_neg = torch.tensor([0.9, 0.6, 0.4, 0.5])
    # max(0, 0.3 + d_pos - d_neg): 0, 0.2, 0.9, 0 -> mean 0.275
    assert torch.allclose(csn_triplet_loss(d_pos, d_neg, reduction="none"), torch.tensor([0.0, 0.2, 0.9, 0.0]))
    assert math.isclose(csn_triplet_loss(d_pos, d_neg).item(), 0.275, rel_tol=1e-6)
    # CSN's criterion: MarginRankingLoss(margin)(d_neg, d_pos, +1)
    mrl = nn.MarginRankingLoss(margin=0.3)(d_neg, d_pos, torch.ones(4))
    assert torch.allclose(csn_triplet_loss(d_pos, d_neg, margin=0.3), mrl)
    assert torch.allclose(csn_triplet_loss(d_pos, d_neg), triplet_ranking_loss(-d_pos, -d_neg, margin=0.3))


def test_csn_regularizers_by_hand():
    fa = torch.tensor([[3.0, 4.0], [0.0, 0.0]])   # Frobenius 5
    fp = torch.tensor([[1.0, 0.0], [0.0, 0.0]])   # 1
    fn = torch.tensor([[0.0, 0.0], [0.0, 6.0]])   # 6
    m = torch.tensor([[1.0, 0.5], [0.0, 2.5]])    # L1 4
    e, k = csn_regularizers((fa, fp, fn), m, lambda1=5e-3, lambda2=5e-4)
    assert math.isclose(e.item(), 5e-3 * ((5 + 1 + 6) / 3) / math.sqrt(2), rel_tol=1e-6)
    assert math.isclose(k.item(), 5e-4 * 4 / 2, rel_tol=1e-6)
    # three identical mask batches (one condition per triplet) give the same term
    _, k3 = csn_regularizers(fa, (m, m, m))
    assert torch.allclose(k, k3)


def test_contrastive_loss_against_a_loop():
    torch.manual_seed(0)
    x1, x2 = torch.randn(7, 5) * 0.4, torch.randn(7, 5) * 0.4
    same = torch.tensor([1, 0, 0, 1, 0, 1, 0])
    margin = 1.5
    want = []
    for i in range(7):
        d = math.sqrt(sum((a - b) ** 2 for a, b in zip(x1[i].tolist(), x2[i].tolist())))
        want.append(0.5 * d * d if same[i] else 0.5 * max(0.0, margin - d) ** 2)
    got = contrastive_loss(x1, x2, same, margin=margin, reduction="none")
    assert torch.allclose(got, torch.tensor(want), atol=1e-6)
    assert math.isclose(contrastive_loss(x1, x2, same.bool(), margin=margin).item(), sum(want) / 7, rel_tol=1e-5)
    # identical dissimilar pair: finite gradient
    z = torch.zeros(1, 3, requires_grad=True)
    contrastive_loss(z, torch.zeros(1, 3), [0]).backward()
    assert torch.isfinite(z.grad).all()


def test_joint_loss_eq6():
    assert math.isclose(joint_loss(torch.tensor(2.0), torch.tensor(1.0)).item(), 0.3 * 2 + 0.7 * 1, rel_tol=1e-6)
    assert math.isclose(joint_loss(torch.tensor(2.0), torch.tensor(1.0), 0.5, 0.5).item(), 1.5, rel_tol=1e-6)


@pytest.mark.parametrize("variant", ["original", "modified"])
def test_triplet_loss_output_by_hand(variant):
    torch.manual_seed(0)
    net = ConditionalSimilarityNet(nn.Identity(), 4, dim=8, masks="learned", variant=variant)
    fa, fp, fn = torch.randn(3, 5, 8).unbind(0)
    c = torch.tensor([0, 1, 2, 3, 0])
    out = net.triplet_loss(fa, fp, fn, c)
    m = F.relu(net.masks.weight.detach()[c])
    if variant == "original":
        d_ap = (fa * m - fp * m + 1e-6).norm(dim=1)      # CSN's pairwise_distance, eps inside
        d_an = (fa * m - fn * m + 1e-6).norm(dim=1)
        trip = F.relu(0.3 + d_ap - d_an).mean()
        assert torch.allclose(out.s_pos, -d_ap, atol=1e-6)
    else:
        mt = m / m.sum(1, keepdim=True)
        ga, gp, gn = (F.normalize(f * mt, dim=1) for f in (fa, fp, fn))
        trip = F.relu(0.3 - (ga * gp).sum(1) + (ga * gn).sum(1)).mean()
        assert torch.allclose(out.s_neg, (ga * gn).sum(1), atol=1e-6)
    assert torch.allclose(out.triplet, trip, atol=1e-6)
    emb = 5e-3 * (fa.norm() + fp.norm() + fn.norm()) / 3 / math.sqrt(5)
    assert torch.allclose(out.embed_reg, emb, atol=1e-7)
    assert torch.allclose(out.mask_reg, 5e-4 * m.abs().sum() / 5, atol=1e-7)
    assert torch.allclose(out.loss, out.triplet + out.embed_reg + out.mask_reg)


# ---------------------------------------------------------------------------------------------- gradients
def _joint(masks="learned", variant="modified", dim=16, width=4):
    rec = RecognitionNet(SmallCNN(width=width), FASHIONAI, head="multi", dim=dim)
    csn = ConditionalSimilarityNet(rec.embedding, 8, dim=dim, masks=masks, variant=variant)
    return rec, csn


def _joint_step(rec, csn, xa, xp, xn, attr, value):
    b = xa.shape[0]
    f = rec.embed(torch.cat([xa, xp, xn]))
    ce = rec.loss(rec.head(f[:b]), attr, value)               # Eq. 1 on the anchors
    out = csn.triplet_loss_from_embeddings(f[:b], f[b:2 * b], f[2 * b:], attr)
    return joint_loss(ce, out.loss), out


@pytest.mark.parametrize("masks", ["fixed", "learned"])
def test_gradients_reach_backbone_masks_and_heads(masks):
    torch.manual_seed(0)
    rec, csn = _joint(masks=masks)
    assert csn.embedding_net is rec.embedding
    x = torch.randn(3, 4, 3, 16, 16).unbind(0)
    attr = torch.tensor([0, 2, 2, 7])
    value = torch.tensor([1, 0, 5, 4])
    loss, _ = _joint_step(rec, csn, *x, attr, value)
    loss.backward()
    assert rec.backbone.block1.conv.weight.grad.abs().sum() > 0
    assert rec.embedding.fc.weight.grad.abs().sum() > 0
    assert rec.head.columns[2].weight.grad.abs().sum() > 0
    assert torch.count_nonzero(rec.head.columns[1].weight.grad) == 0   # no anchor annotated with attribute 1
    if masks == "learned":
        g = csn.masks.weight.grad
        assert g[[0, 2, 7]].abs().sum(1).gt(0).all() and torch.count_nonzero(g[[1, 3, 4, 5, 6]]) == 0
    else:
        assert csn.masks.weight.grad is None


def test_joint_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    t0 = time.perf_counter()
    rec, csn = _joint(masks="learned", variant="modified", dim=16, width=4)
    imgs = torch.randn(8, 3, 16, 16)
    a, p, n = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7]), torch.tensor([5, 4, 7, 6])
    attr = torch.tensor([0, 3, 5, 7])
    value = torch.tensor([2, 1, 0, 4])
    params = list(rec.parameters()) + [csn.masks.weight]
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss, _ = _joint_step(rec, csn, imgs[a], imgs[p], imgs[n], attr, value)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert time.perf_counter() - t0 < 3  # about 0.1 s on one core
