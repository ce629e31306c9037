"""Paper 06 (hierarchical label sharing) models: the additive attention against a hand computation of Eq. 1-3,
the STL / STL w/ HLS classifier, MTL w/ RNN+VA (Eq. 4-7; teacher forcing vs its own predicted category), the loss,
the augmentation and the small Faster R-CNN detector."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fashionlab.models import (MTLRNNVA, AdditiveAttention, SmallCNN, STLClassifier, augment, build_detector,
                               hls_loss)
from fashionlab.models.hls import HLSLoss, decoder_step, detector_backbone

pytestmark = pytest.mark.usefixtures("one_thread")


class _Identity(torch.nn.Module):
    """A 'backbone' that passes a feature map through (so tests can feed F directly)."""

    def __init__(self, c):
        super().__init__()
        self.out_channels = c

    def forward(self, x):
        return x


# ----------------------------------------------------------------------------------------------------------
# additive attention, Eq. 1-3
# ----------------------------------------------------------------------------------------------------------
def test_additive_attention_matches_eq_1_to_3_by_hand():
    rng = np.random.default_rng(0)
    d, s, u, n, b = 5, 4, 3, 6, 2
    att = AdditiveAttention(d, s, u).double()
    W1, b1 = rng.normal(size=(u, d)), rng.normal(size=u)
    W2, b2 = rng.normal(size=(u, s)), rng.normal(size=u)
    V = rng.normal(size=u)
    with torch.no_grad():
        att.W1.weight.copy_(torch.from_numpy(W1)); att.W1.bias.copy_(torch.from_numpy(b1))
        att.W2.weight.copy_(torch.from_numpy(W2)); att.W2.bias.copy_(torch.from_numpy(b2))
        att.V.weight.copy_(torch.from_numpy(V)[None])
    f = rng.normal(size=(b, n, d))
    h = rng.normal(size=(b, s))
    ctx, w = att(torch.from_numpy(f), torch.from_numpy(h))
    for i in range(b):
        e = np.array([V @ np.tanh((W1 @ f[i, j] + b1) + (W2 @ h[i] + b2)) for j in range(n)])  # Eq. 1
        a = np.exp(e) / np.exp(e).sum()                                                        # Eq. 2
        c = (a[:, None] * f[i]).sum(0)                                                         # Eq. 3
        np.testing.assert_allclose(w[i].detach().numpy(), a, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ctx[i].detach().numpy(), c, rtol=1e-6, atol=1e-8)
    assert att.V.bias is None
    assert ctx.shape == (b, d) and w.shape == (b, n)


def test_additive_attention_rejects_bad_shapes():
    att = AdditiveAttention(4, 3, 2)
    with pytest.raises(ValueError):
        att(torch.zeros(2, 4), torch.zeros(2, 3))


# ----------------------------------------------------------------------------------------------------------
# Baseline STL and STL w/ HLS
# ----------------------------------------------------------------------------------------------------------
def test_stl_shapes_and_condition():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    base = STLClassifier(SmallCNN(8), 7).eval()
    assert base(x).shape == (3, 7)
    assert base.embedding is None and not base.conditioned
    assert not any(isinstance(m, torch.nn.Embedding) for m in base.modules())
    assert base.fc.in_features == base.backbone.out_channels
    with pytest.raises(ValueError, match="Baseline STL"):
        base(x, torch.tensor([0, 1, 2]))

    hls = STLClassifier(SmallCNN(8), 7, condition_classes=4, embed_dim=5).eval()
    assert hls.fc.in_features == hls.backbone.out_channels + 5
    out0 = hls(x, torch.tensor([0, 0, 0]))
    out1 = hls(x, torch.tensor([0, 3, 0]))
    assert out0.shape == (3, 7)
    assert torch.equal(out0[0], out1[0]) and torch.equal(out0[2], out1[2])
    assert not torch.allclose(out0[1], out1[1])
    # the embedding enters through the dense layer: logits = W [pool; E(c)] + b
    z = hls.pool(x)
    e = hls.embedding(torch.tensor([0, 3, 0]))
    torch.testing.assert_close(out1, hls.fc(torch.cat([z, e], 1)))
    with pytest.raises(ValueError, match="STL w/ HLS"):
        hls(x)
    with pytest.raises(IndexError):
        hls(x, torch.tensor([0, 4, 0]))


def test_stl_gradients_flow():
    torch.manual_seed(0)
    m = STLClassifier(SmallCNN(8), 5, condition_classes=3)
    out = m(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 1]))
    hls_loss(out, None, torch.tensor([0, 1, 2, 3])).backward()
    assert m.embedding.weight.grad.abs().sum() > 0
    assert m.backbone.block1.conv.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------------------
# MTL w/ RNN+VA, Eq. 4-7
# ----------------------------------------------------------------------------------------------------------
def _mtl(c=6, types=4, cats=5, attrs=9):
    torch.manual_seed(0)
    return MTLRNNVA(_Identity(c), types, cats, attrs, hidden_dim=7, attention_units=4, embed_dim=3, fc_dim=8).eval()


def test_mtl_shapes_and_attention_maps():
    torch.manual_seed(0)
    m = MTLRNNVA(SmallCNN(8), 4, 5, 9, hidden_dim=16, attention_units=8, embed_dim=4, fc_dim=16)
    out = m(torch.rand(2, 3, 64, 64), torch.tensor([0, 3]), torch.tensor([1, 4]))
    assert out.category.shape == (2, 5) and out.attributes.shape == (2, 9)
    assert out.attention.shape == (2, 2, 4, 4)
    torch.testing.assert_close(out.attention.sum((2, 3)), torch.ones(2, 2))


def test_mtl_matches_eq_4_to_7_by_hand():
    m = _mtl()
    fmap = torch.randn(2, 6, 3, 2)
    otype, cat = torch.tensor([1, 3]), torch.tensor([4, 0])
    out = m(fmap, otype, cat)
    feats = fmap.flatten(2).transpose(1, 2)
    h0 = torch.zeros(2, 7)
    c1, a1 = m.attention(feats, h0)
    h1 = m.gru(torch.cat([c1, m.type_embedding(otype)], 1), h0)                      # Eq. 4
    hc = m.category_head
    cat_logits = hc.U2(torch.relu(hc.U1(h1)))                                         # Eq. 5
    c2, a2 = m.attention(feats, h1)
    h2 = m.gru(torch.cat([c2, m.category_embedding(cat)], 1), h1)                    # Eq. 6
    ha = m.attribute_head
    attr_logits = ha.U2(torch.relu(ha.U1(h2)))                                        # Eq. 7
    torch.testing.assert_close(out.category, cat_logits)
    torch.testing.assert_close(out.attributes, attr_logits)
    torch.testing.assert_close(out.attention, torch.stack([a1, a2], 1).reshape(2, 2, 3, 2))
    assert not torch.allclose(a1, a2)  # the second step attends with h1, not h0


def test_decoder_step_is_one_step_of_mtl_rnn_va():
    """decoder_step (Eq. 1-4 / 6 with explicit weights) reproduces AdditiveAttention and MTLRNNVA's two steps."""
    m = _mtl().eval()
    fmap = torch.randn(2, 6, 3, 2)
    otype, cat = torch.tensor([1, 3]), torch.tensor([4, 0])
    feats = fmap.flatten(2).transpose(1, 2)
    att = m.attention
    w = (att.W1.weight, att.W1.bias, att.W2.weight, att.W2.bias, att.V.weight.reshape(-1))
    with torch.no_grad():
        out = m(fmap, otype, cat)
        h0 = torch.zeros(2, 7)
        h1, c1, a1 = decoder_step(feats, h0, m.type_embedding(otype), *w, m.gru)
        ref_c, ref_a = att(feats, h0)
        torch.testing.assert_close(c1, ref_c)
        torch.testing.assert_close(a1, ref_a)
        h2, c2, a2 = decoder_step(feats, h1, m.category_embedding(cat), *w, m.gru)
        torch.testing.assert_close(m.category_head(h1), out.category)
        torch.testing.assert_close(m.attribute_head(h2), out.attributes)
        torch.testing.assert_close(torch.stack([a1, a2], 1).reshape(2, 2, 3, 2), out.attention)
        # V = 0: every energy is 0, so the weights are uniform and the context is the mean feature
        _, c0, a0 = decoder_step(feats, h0, m.type_embedding(otype), *w[:4], torch.zeros_like(w[4]), m.gru)
        torch.testing.assert_close(a0, torch.full_like(a0, 1 / 6))
        torch.testing.assert_close(c0, feats.mean(1))


def test_mtl_teacher_forcing_vs_own_prediction():
    m = _mtl()
    fmap = torch.randn(4, 6, 3, 3)
    otype = torch.tensor([0, 1, 2, 3])
    own = m(fmap, otype)
    pred = own.category.argmax(1)
    forced_same = m(fmap, otype, pred)
    torch.testing.assert_close(own.category, forced_same.category)
    torch.testing.assert_close(own.attributes, forced_same.attributes)
    other = (pred + 1) % 5
    forced_other = m(fmap, otype, other)
    # the given category never reaches the category logits; it changes every item's attribute logits
    assert torch.equal(forced_other.category, own.category)
    assert torch.equal(forced_other.attention[:, 0], own.attention[:, 0])
    assert not torch.isclose(forced_other.attributes, own.attributes).all(dim=1).any()
    # and the object type does reach the category logits
    assert not torch.allclose(m(fmap, (otype + 1) % 4).category, own.category)


def test_mtl_gradients_flow_and_loss():
    torch.manual_seed(0)
    m = MTLRNNVA(SmallCNN(8), 4, 5, 9, hidden_dim=16, attention_units=8, embed_dim=4, fc_dim=16)
    out = m(torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]))
    cat, att = torch.tensor([1, 2, 3]), (torch.rand(3, 9) > 0.5).float()
    loss = hls_loss(out.category, out.attributes, cat, att)
    parts = hls_loss(out.category, out.attributes, cat, att, return_parts=True)
    assert isinstance(parts, HLSLoss)
    torch.testing.assert_close(loss, F.cross_entropy(out.category, cat)
                               + F.binary_cross_entropy_with_logits(out.attributes, att))
    torch.testing.assert_close(parts.total, parts.category + parts.attributes)
    loss.backward()
    for p in (m.backbone.block1.conv.weight, m.attention.W1.weight, m.attention.W2.weight, m.attention.V.weight,
              m.type_embedding.weight, m.category_embedding.weight, m.gru.weight_ih):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_hls_loss_single_sides():
    logits, cat = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    alog, att = torch.randn(4, 5), torch.randint(0, 2, (4, 5))
    torch.testing.assert_close(hls_loss(logits, None, cat), F.cross_entropy(logits, cat))
    torch.testing.assert_close(hls_loss(None, alog, None, att), F.binary_cross_entropy_with_logits(alog, att.float()))
    assert hls_loss(logits, None, cat, return_parts=True).attributes is None
    with pytest.raises(ValueError):
        hls_loss(None, None)
    with pytest.raises(ValueError):
        hls_loss(logits, None)


# ----------------------------------------------------------------------------------------------------------
# augmentation
# ----------------------------------------------------------------------------------------------------------
def test_augment_identity_flip_and_shape():
    x = torch.rand(3, 3, 12, 20)
    torch.testing.assert_close(augment(x, rotation=0, zoom=0, flip=0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(augment(x, rotation=0, zoom=0, flip=1), torch.flip(x, dims=[-1]), atol=1e-5, rtol=0)
    y = augment(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.device == x.device and y.dtype == x.dtype
    assert torch.equal(y, augment(x, generator=torch.Generator().manual_seed(0)))
    assert not torch.allclose(y, x)
    with pytest.raises(ValueError):
        augment(torch.rand(3, 8, 8))


def test_augment_zoom_and_rotation_keep_the_centre():
    # a constant image stays constant under reflection padding, whatever the rotation and zoom
    x = torch.full((4, 3, 16, 16), 0.3)
    torch.testing.assert_close(augment(x, generator=torch.Generator().manual_seed(1), rotation=0.1, zoom=0.1), x)
    # a centred disc is (nearly) invariant to rotation: only the zoom changes it
    yy, xx = torch.meshgrid(torch.arange(32.) - 15.5, torch.arange(32.) - 15.5, indexing="ij")
    disc = ((yy ** 2 + xx ** 2) < 8 ** 2).float().expand(2, 3, 32, 32).contiguous()
    rotated = augment(disc, generator=torch.Generator().manual_seed(2), rotation=0.1, zoom=0, flip=0)
    assert (rotated - disc).abs().mean() < 0.02


# ----------------------------------------------------------------------------------------------------------
# detector
# ----------------------------------------------------------------------------------------------------------
def test_detector_backbone_stride():
    bb = detector_backbone(8)
    assert bb.out_channels == 32 and bb.stride == 8
    assert bb(torch.zeros(1, 3, 64, 64)).shape == (1, 32, 8, 8)


def test_detector_trains_one_step_and_detects():
    torch.manual_seed(0)
    det = build_detector(num_classes=4, image_size=64, width=8, representation_dim=32, min_score=0.0,
                         detections_per_image=5)
    assert det.transform.min_size == (64,) and det.transform.max_size == 64
    assert det.roi_heads.box_predictor.cls_score.out_features == 5
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[10.0, 10.0, 50.0, 22.0], [2.0, 30.0, 20.0, 60.0]]),
                "labels": torch.tensor([4, 3])}]
    det.train()
    losses = det(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    opt = torch.optim.SGD(det.parameters(), lr=0.01)
    opt.zero_grad()
    loss.backward()
    assert det.backbone.block1.conv.weight.grad.abs().sum() > 0
    assert det.rpn.head.conv[0][0].weight.grad.abs().sum() > 0
    opt.step()
    det.eval()
    with torch.no_grad():
        out = det(images)
    assert len(out) == 2
    for o in out:
        assert o["boxes"].shape[1] == 4 and 1 <= len(o["boxes"]) <= 5
        assert o["labels"].min() >= 1 and o["labels"].max() <= 4
        assert (o["boxes"][:, 2:] >= o["boxes"][:, :2]).all() and o["boxes"].max() <= 64
