"""M3-Net (paper 05): modules against hand computations of Algorithms 1-2 and Eq. 1-11, the prototypes, the
class-first retrieval scores and the class-level triplet sampler."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fashionlab.datasets import ClassTripletSampler, RareValueError
from fashionlab.models import (ClassPrototypes, M3Net, SmallCNN, SpatialAttention, class_first_scores,
                               conditional_spatial_attention, m3net_loss, multilabel_bce, predicted_classes)

pytestmark = pytest.mark.usefixtures("one_thread")


class _Identity(torch.nn.Module):
    """A 'backbone' that passes a feature map through (so tests can feed ψ directly)."""

    def __init__(self, c):
        super().__init__()
        self.out_channels = c

    def forward(self, x):
        return x


def _net(variant="full", c=6, classes=(3, 4)):
    torch.manual_seed(0)
    return M3Net(_Identity(c), classes, variant=variant, cond_dim=5, attn_dim=3, mlp_hidden=7).eval()


def _cca_by_hand(cca, v, e):
    """Algorithm 2 written out: β = σ(W_4 relu(W_3 [q_1; q_2])), q_2 = relu(W_2 E(l))."""
    q2 = torch.relu(e @ cca.cond.weight.T + cca.cond.bias)
    h = torch.relu(torch.cat([q2, v], 1) @ cca.fc1.weight.T + cca.fc1.bias)
    return torch.sigmoid(h @ cca.fc2.weight.T + cca.fc2.bias)


def _sca_by_hand(sa, fmap, e):
    """Algorithm 1 written out (softmax over locations of Σ_i [tanh(W_1 E) ⊙ tanh(T ψ)]_i / √c'), mean one."""
    b, c, h, w = fmap.shape
    p1 = torch.tanh(torch.einsum("oc,bchw->bohw", sa.conv.weight[:, :, 0, 0], fmap) + sa.conv.bias[None, :, None, None])
    p2 = torch.tanh(e @ sa.cond.weight.T + sa.cond.bias)
    s = (p1 * p2[:, :, None, None]).sum(1) / math.sqrt(sa.attn_dim)
    return torch.softmax(s.reshape(b, -1), 1).reshape(b, h, w) * h * w


def test_sca_is_asens_asa_kept_as_a_map():
    torch.manual_seed(1)
    sa = SpatialAttention(6, 5, 3)
    psi, cond = torch.randn(2, 6, 4, 5), torch.randn(2, 5)
    amap, att = conditional_spatial_attention(sa, psi, cond)
    assert torch.allclose(att, _sca_by_hand(sa, psi, cond), atol=1e-5)
    assert torch.allclose(att.mean(dim=(1, 2)), torch.ones(2), atol=1e-5)
    assert torch.allclose(amap, psi * att[:, None], atol=1e-6)
    # q_1 (mean) of the attended map = ASEN's attention-weighted sum x_s
    assert torch.allclose(amap.mean(dim=(2, 3)), sa(psi, cond).features, atol=1e-5)


def test_full_model_matches_equations_1_to_6():
    net = _net("full")
    psi = torch.randn(3, 6, 4, 4)
    n, cls = 1, torch.tensor([0, 3, 2])
    att, cl = net(psi, n, cls)
    ea = net.attribute_embedding(torch.full((3,), n))
    alpha = _sca_by_hand(net.sca_a, psi, ea)
    phi_map = alpha[:, None] * psi                                   # Eq. 1
    v = phi_map.mean(dim=(2, 3))
    phi = _cca_by_hand(net.cca_a, v, ea) * v                         # Eq. 2
    assert torch.allclose(att.embedding, phi, atol=1e-5)
    assert torch.allclose(att.logits, net.mlps[n](phi), atol=1e-5)   # Eq. 3
    ec = net.class_embeddings[n](cls)
    alpha_c = _sca_by_hand(net.sca_c[n], phi_map, ec)
    phic_map = alpha_c[:, None] * phi_map                            # Eq. 4
    vc = phic_map.mean(dim=(2, 3))
    phi_bar_n = _cca_by_hand(net.cca_a, vc, ea) * vc                 # Eq. 5
    phi_bar_m = _cca_by_hand(net.cca_c[n], phi_bar_n, ec) * phi_bar_n  # Eq. 6
    assert torch.allclose(cl.embedding, phi_bar_m, atol=1e-5)
    assert torch.allclose(cl.attention, alpha_c, atol=1e-5)


def test_ablation_variants():
    psi = torch.randn(2, 6, 4, 4)
    a_net = _net("attribute")
    att, cl = a_net(psi, 0, torch.tensor([1, 2]))
    assert torch.allclose(cl.embedding, att.embedding, atol=1e-6)   # M3-Net_a: class level = attribute level
    assert torch.all(cl.attention == 1)
    assert not hasattr(a_net, "sca_c")
    c_net = _net("class")
    att, cl = c_net(psi, 0, torch.tensor([1, 2]))
    assert torch.allclose(att.embedding, psi.mean(dim=(2, 3)), atol=1e-6)  # M3-Net_c: φ_n = q_1(ψ)
    ec = c_net.class_embeddings[0](torch.tensor([1, 2]))
    alpha_c = _sca_by_hand(c_net.sca_c[0], psi, ec)
    v = (alpha_c[:, None] * psi).mean(dim=(2, 3))
    assert torch.allclose(cl.embedding, _cca_by_hand(c_net.cca_c[0], v, ec) * v, atol=1e-5)
    assert not hasattr(c_net, "sca_a")
    with pytest.raises(ValueError, match="variant"):
        M3Net(_Identity(6), (3,), variant="both")


def test_all_classes_matches_class_level_and_checks_indices():
    net = _net("full")
    psi = torch.randn(2, 6, 3, 3)
    att = net.attribute_level(psi, 1)
    every = net.all_classes(att.fmap, 1)
    assert every.embedding.shape == (2, 4, 6) and every.attention.shape == (2, 4, 3, 3)
    one = net.class_level(att.fmap, 1, torch.tensor([2, 2]))
    assert torch.allclose(every.embedding[:, 2], one.embedding, atol=1e-5)
    with pytest.raises(IndexError):
        net.class_level(att.fmap, 1, torch.tensor([4, 0]))
    with pytest.raises(IndexError):
        net.attribute_level(psi, 2)


def test_gradients_reach_every_module():
    torch.manual_seed(0)
    net = M3Net(SmallCNN(4), (3, 2), cond_dim=4, mlp_hidden=5).train()
    x = torch.randn(6, 3, 32, 32)
    att, cl = net(x, 0, torch.tensor([0, 1, 2, 0, 1, 2]))
    targets = torch.randint(0, 2, (6, 3))
    lo = m3net_loss(att.logits, targets, cl.embedding[:2], cl.embedding[2:4], cl.embedding[4:],
                    torch.randn(2, cl.embedding.shape[1]))
    lo.loss.backward()
    for name, p in net.named_parameters():
        if name.startswith(("mlps.1", "class_embeddings.1", "sca_c.1", "cca_c.1")):
            continue  # attribute 1 was not used
        assert p.grad is not None, name


def test_weighted_bce_is_equation_7():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 0.1, 3.0]])
    y = torch.tensor([[1, 0, 1], [0, 0, 1]])
    x = torch.sigmoid(logits)
    wp = 5.0
    by_hand = -(wp * y * torch.log(x) + (1 - y) * torch.log(1 - x)).mean(dim=1).mean()
    assert torch.allclose(multilabel_bce(logits, y, wp), by_hand, atol=1e-6)


def test_m3net_loss_terms():
    torch.manual_seed(3)
    a, p, n, proto = (torch.randn(4, 5) for _ in range(4))
    logits, y = torch.randn(12, 3), torch.randint(0, 2, (12, 3))
    lo = m3net_loss(logits, y, a, p, n, proto, margin=0.4, pos_weight=2.0)

    def tri(x, pos, neg):
        return torch.clamp(0.4 - F.cosine_similarity(x, pos) + F.cosine_similarity(x, neg), min=0).mean()

    assert torch.allclose(lo.prototypical, tri(a, proto, n), atol=1e-6)  # Eq. 9
    assert torch.allclose(lo.instance, tri(a, p, n), atol=1e-6)  # Eq. 10
    assert torch.allclose(lo.loss, lo.multilabel + lo.prototypical + lo.instance, atol=1e-6)  # Eq. 11, λ = 1


def test_model_loss_is_equation_11_per_attribute_with_its_prototypes():
    """``M3Net.loss`` on a batch of class-level triplets of two attributes: the attribute-share-weighted sum of
    :func:`m3net_loss` written out per attribute, the prototypes started from (then folded with) the batch and
    saved with the weights."""
    net = _net(classes=(3, 4)).train()
    torch.manual_seed(5)
    x = torch.randn(9, 6, 4, 4)  # 3 triplets: anchors, positives, negatives (ψ directly)
    targets = torch.randint(0, 2, (9, 7)).bool()
    attrs = np.array([0, 1, 0])
    keys = np.array([2, 3 + 1, 0])  # global class indices: class 2 of A_0, class 1 of A_1, class 0 of A_0
    out = net.loss(x, targets, attrs, keys, margin=0.4, pos_weight=2.0)
    assert set(out) == {"loss", "L_M", "L_CC", "L_CI", "acc"}
    assert "prototypes.prototypes" in net.state_dict() and bool(net.prototypes.seen[[0, 2, 4]].all())

    ref = _net(classes=(3, 4)).train()
    total = 0.0
    for n, r, lo in ((0, np.array([0, 2]), 0), (1, np.array([1]), 3)):
        idx = np.concatenate([r, r + 3, r + 6])
        att = ref.attribute_level(x[idx], n)
        k = torch.as_tensor(keys[r])
        cls = ref.class_level(att.fmap, n, (k - lo).repeat(3))
        m = len(r)
        ea, ep, en = cls.embedding[:m], cls.embedding[m:2 * m], cls.embedding[2 * m:]
        ref.prototypes.update(torch.cat([k, k]), torch.cat([ea, ep]))
        lo_ = m3net_loss(att.logits, targets[idx][:, lo:lo + ref.num_classes[n]], ea, ep, en,
                         ref.prototypes.get(k), margin=0.4, pos_weight=2.0)
        total = total + m / 3 * lo_.loss
    assert torch.allclose(out["loss"], total, atol=1e-5)
    out["loss"].backward()
    assert net.sca_c[1].conv.weight.grad is not None


def test_prototypes_are_a_moving_average():
    pr = ClassPrototypes(3, 2, momentum=0.5)
    with pytest.raises(RuntimeError):
        pr.get([0])
    pr.update([0, 0, 2], torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]))
    assert torch.allclose(pr.get([0, 2]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    pr.update([0], torch.tensor([[0.0, 5.0]]))
    expect = F.normalize(torch.tensor([[0.5, 0.5]]), dim=1)
    assert torch.allclose(pr.get([0]), expect, atol=1e-6)
    assert not bool(pr.seen[1])


def test_predicted_classes_threshold_and_fallback():
    p = torch.tensor([[0.9, 0.85, 0.1], [0.5, 0.7, 0.2]])
    assert predicted_classes(p, 0.8).tolist() == [[True, True, False], [False, True, False]]
    assert predicted_classes(p, 0.8, keep_top=False).tolist() == [[True, True, False], [False, False, False]]


def test_class_first_scores_against_a_loop():
    g = torch.Generator().manual_seed(5)
    q_attr, c_attr = torch.randn(4, 3, generator=g), torch.randn(6, 3, generator=g)
    q_cls, c_cls = torch.randn(4, 3, 3, generator=g), torch.randn(6, 3, 3, generator=g)
    q_pred, c_pred = torch.rand(4, 3, generator=g) > 0.5, torch.rand(6, 3, generator=g) > 0.5
    s = class_first_scores(q_attr, c_attr, q_cls, c_cls, q_pred, c_pred)
    for i in range(4):
        for j in range(6):
            shared = [m for m in range(3) if q_pred[i, m] and c_pred[j, m]]
            if shared:
                want = 2 + max(float(F.cosine_similarity(q_cls[i, m], c_cls[j, m], dim=0)) for m in shared)
            else:
                want = float(F.cosine_similarity(q_attr[i], c_attr[j], dim=0))
            assert abs(float(s[i, j]) - want) < 1e-5
    # every shared-class candidate ranks above every other one
    for i in range(4):
        tier = (q_pred[i] & c_pred).any(dim=1)
        if tier.any() and (~tier).any():
            assert s[i, tier].min() > s[i, ~tier].max()


def test_class_triplet_sampler():
    rng = np.random.default_rng(0)
    pos = rng.random((60, 7)) < 0.3
    pos[:, 5] = False
    pos[:2, 5] = True  # class 5: two images
    pos[:, 6] = False
    pos[0, 6] = True   # class 6: one image, unusable
    ca = np.array([0, 0, 0, 1, 1, 1, 1])
    s = ClassTripletSampler(pos, ca, num_triplets=500, seed=3)
    t = s.triplets(0)
    assert t.shape == (500, 5)
    assert pos[t[:, 0], t[:, 4]].all() and pos[t[:, 1], t[:, 4]].all()
    assert not pos[t[:, 2], t[:, 4]].any()
    assert (t[:, 0] != t[:, 1]).all()
    assert (ca[t[:, 4]] == t[:, 3]).all()
    lab = np.stack([pos[:, ca == a].any(1) for a in range(2)], 1)
    assert lab[t[:, 2], t[:, 3]].all()  # the negative is labelled for the attribute
    assert s.skipped.tolist() == [6]
    assert np.array_equal(s.triplets(0), ClassTripletSampler(pos, ca, num_triplets=500, seed=3).triplets(0))
    assert not np.array_equal(s.triplets(0), s.triplets(1))
    with pytest.raises(RareValueError):
        ClassTripletSampler(np.eye(3, dtype=bool), np.array([0, 0, 0]), num_triplets=5)
    with pytest.raises(ValueError, match="not labelled"):
        ClassTripletSampler(pos, ca, labelled=np.zeros((60, 2), dtype=bool))
