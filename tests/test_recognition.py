"""Tests of fashionlab.models.recognition: paper 01's single- and multi-column heads and Eq. 1-2.

Oracles: ``F.cross_entropy`` per column computed by hand, the single-column offsets written out, exact zero
gradients on unannotated columns."""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from fashionlab.models import (
    MultiColumnHead,
    RecognitionNet,
    SingleColumnHead,
    SmallCNN,
    multi_column_loss,
    multi_column_loss_annotated,
    pad_columns,
    single_column_labels,
    single_column_loss,
    value_offsets,
)
from fashionlab.taxonomy import FASHIONAI

COUNTS = (6, 9, 8, 6, 5, 5, 10, 5)  # FashionAI


pytestmark = pytest.mark.usefixtures("one_thread")


def _labels(b, counts=COUNTS, seed=0):
    g = torch.Generator().manual_seed(seed)
    attr = torch.randint(0, len(counts), (b,), generator=g)
    value = torch.stack([torch.randint(0, counts[a], (1,), generator=g)[0] for a in attr.tolist()])
    return attr, value


def test_fashionai_counts_and_offsets():
    assert FASHIONAI.num_values == COUNTS
    assert value_offsets(FASHIONAI).tolist() == [0, 6, 15, 23, 29, 34, 39, 49]
    head = SingleColumnHead(16, FASHIONAI)
    assert head.num_classes == 54 == sum(COUNTS)


def test_single_column_labels_by_hand():
    attr = torch.tensor([0, 0, 1, 2, 7, 7, 6])
    value = torch.tensor([0, 5, 0, 3, 0, 4, 9])
    # offsets 0, 6, 15, ..., 49 written out
    assert single_column_labels(attr, value, COUNTS).tolist() == [0, 5, 6, 18, 49, 53, 48]
    with pytest.raises(ValueError, match="out of range"):
        single_column_labels(torch.tensor([1]), torch.tensor([9]), COUNTS)  # sleeve_length has 9 values: 0..8
    with pytest.raises(ValueError, match="attribute indices"):
        single_column_labels(torch.tensor([8]), torch.tensor([0]), COUNTS)


def test_head_shapes_and_predictions():
    f = torch.randn(4, 16)
    mc = MultiColumnHead(16, COUNTS)
    logits = mc(f)
    assert isinstance(logits, list) and [t.shape for t in logits] == [torch.Size([4, k]) for k in COUNTS]
    padded = pad_columns(logits)
    assert padded.shape == (4, 8, 10)
    assert torch.isinf(padded[:, 0, 6:]).all() and torch.equal(padded[:, 6, :], logits[6])
    pred = mc.predict(logits)
    assert pred.shape == (4, 8)
    assert torch.equal(pred, torch.stack([t.argmax(1) for t in logits], 1))

    sc = SingleColumnHead(16, COUNTS)
    z = sc(f)
    assert z.shape == (4, 54)
    blocks = sc.columns(z)
    assert [b.shape[1] for b in blocks] == list(COUNTS)
    off = value_offsets(COUNTS).tolist()
    want = torch.stack([z[:, o:o + k].argmax(1) for o, k in zip(off, COUNTS)], 1)
    assert torch.equal(sc.predict(z), want)
    a, v = sc.predict_global(z)
    assert torch.equal(single_column_labels(a, v, COUNTS), z.argmax(1))


def test_multi_column_loss_matches_cross_entropy_per_column():
    torch.manual_seed(0)
    attr, value = _labels(12)
    logits = [torch.randn(12, k) for k in COUNTS]
    # hand oracle: for each image, F.cross_entropy of its annotated column only
    want = torch.stack([F.cross_entropy(logits[a][i:i + 1], value[i:i + 1])
                        for i, a in enumerate(attr.tolist())])
    assert torch.allclose(multi_column_loss(logits, attr, value, reduction="none"), want, atol=1e-6)
    assert torch.allclose(multi_column_loss(logits, attr, value), want.mean(), atol=1e-6)
    assert torch.allclose(multi_column_loss_annotated(logits, attr, value, reduction="none"), want, atol=1e-6)
    # Eq. 1 == Eq. 2
    assert torch.allclose(multi_column_loss(logits, attr, value, reduction="sum"),
                          multi_column_loss_annotated(logits, attr, value, reduction="sum"), atol=1e-5)


def test_unannotated_columns_get_exactly_zero_gradient():
    torch.manual_seed(1)
    head = MultiColumnHead(16, COUNTS)
    f = torch.randn(6, 16, requires_grad=True)
    attr = torch.tensor([2, 2, 5, 2, 5, 5])  # only columns 2 and 5 are annotated in this batch
    value = torch.tensor([0, 7, 4, 3, 1, 0])
    logits = head(f)
    for z in logits:
        z.retain_grad()
    multi_column_loss(logits, attr, value).backward()  # Eq. 1: the sum over all 8 columns
    for c, col in enumerate(head.columns):
        if c in (2, 5):
            assert col.weight.grad.abs().sum() > 0
        else:
            assert torch.count_nonzero(col.weight.grad) == 0 and torch.count_nonzero(col.bias.grad) == 0
    # per image: only the annotated column's logits receive gradient
    for c, z in enumerate(logits):
        assert torch.count_nonzero(z.grad[attr != c]) == 0
    # and the gradients are those of Eq. 2
    g1 = [col.weight.grad.clone() for col in head.columns]
    head.zero_grad()
    multi_column_loss_annotated(head(f), attr, value).backward()
    for c, col in enumerate(head.columns):
        if c in (2, 5):
            assert torch.allclose(col.weight.grad, g1[c], atol=1e-7)
        else:
            assert col.weight.grad is None or torch.count_nonzero(col.weight.grad) == 0


def test_single_column_loss_is_cross_entropy_on_offset_labels():
    torch.manual_seed(2)
    attr, value = _labels(10, seed=3)
    z = torch.randn(10, 54)
    target = value_offsets(COUNTS)[attr] + value
    assert torch.allclose(single_column_loss(z, attr, value, COUNTS), F.cross_entropy(z, target))
    # unlike Eq. 1, the single softmax spreads gradient over every column's block
    z.requires_grad_(True)
    single_column_loss(z, attr, value, COUNTS).backward()
    assert (z.grad.abs() > 0).all()
    with pytest.raises(ValueError, match="54"):
        single_column_loss(torch.randn(2, 50), attr[:2], value[:2], COUNTS)


@pytest.mark.parametrize("head", ["multi", "single"])
def test_recognition_net_shapes_and_gradients(head):
    torch.manual_seed(0)
    net = RecognitionNet(SmallCNN(width=4), FASHIONAI, head=head, dim=64)
    x = torch.randn(4, 3, 32, 32)
    logits, f = net(x, return_embedding=True)
    assert f.shape == (4, 64) and torch.equal(f, net.embed(x))
    attr, value = _labels(4)
    if head == "multi":
        assert len(logits) == 8
    else:
        assert logits.shape == (4, 54)
    assert net.predict(logits).shape == (4, 8)
    net.loss(logits, attr, value).backward()
    assert net.backbone.block1.conv.weight.grad.abs().sum() > 0
    assert net.embedding.fc.weight.grad.abs().sum() > 0


def test_recognition_overfits_eight_images():
    torch.manual_seed(0)
    t0 = time.perf_counter()
    net = RecognitionNet(SmallCNN(width=4), COUNTS, head="multi", dim=16)
    x = torch.randn(8, 3, 16, 16)
    attr, value = _labels(8, seed=5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = net.loss(net(x), attr, value)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert time.perf_counter() - t0 < 3  # about 0.1 s on one core
