"""Paper 06 metrics: attribute recall@k (conventional and mmfashion's top-50 "altered" form) against a loop and a
hand case, hierarchy violations, the one box IoU (pairwise and paired) against ``torchvision.ops.box_iou``, greedy
detection matching and the pycocotools detection metrics on cases whose COCO numbers are known by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fashionlab.metrics import (attribute_recall_at_k, attribute_recall_at_k_reference, box_iou,
                                coco_detection_metrics, hierarchy_violations, match_detections)

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------------------------------
# attribute recall@k
# ----------------------------------------------------------------------------------------------------------
# top-2 per image: {0, 1}, {1, 2}, {3, 0}, {2, 3}; attribute 4 has no positive (left out)
_SCORES = np.array([[0.9, 0.8, 0.1, 0.0, 0.0],
                    [0.1, 0.9, 0.8, 0.0, 0.0],
                    [0.5, 0.1, 0.2, 0.9, 0.0],
                    [0.2, 0.3, 0.9, 0.8, 0.0]])
_LABELS = np.array([[1, 0, 0, 1, 0],
                    [0, 1, 0, 0, 0],
                    [1, 0, 1, 0, 0],
                    [0, 0, 1, 0, 0]])
# per-attribute recall at k=2: a0 2/2, a1 1/1, a2 1/2 (hit in image 3, miss in image 2), a3 0/1


@pytest.mark.parametrize("topn, expected", [(None, 2.5 / 4), (50, 2.5 / 4), (4, 2.5 / 4), (3, 2.5 / 3),
                                            (2, 1.0), (1, 1.0)])
def test_recall_at_k_hand_case(topn, expected):
    assert attribute_recall_at_k(_SCORES, _LABELS, 2, topn=topn) == pytest.approx(expected)
    assert attribute_recall_at_k_reference(_SCORES, _LABELS, 2, topn=topn) == pytest.approx(expected)


def test_recall_at_k_k_equals_all_attributes_and_torch_inputs():
    s = torch.from_numpy(_SCORES)
    assert attribute_recall_at_k(s, torch.from_numpy(_LABELS).bool(), 5) == 1.0
    # k = 1: a0 hit in image 0 only (image 2's top is a3) -> 1/2; a1 1/1; a2 1/2; a3 0/1
    assert attribute_recall_at_k(s, _LABELS, 1) == pytest.approx((0.5 + 1 + 0.5 + 0) / 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_at_k_matches_reference_loop(seed):
    rng = np.random.default_rng(seed)
    n, a = 60, 30
    # integer scores so that ties happen and the tie rule (lower index first) is exercised
    scores = rng.integers(0, 6, size=(n, a)).astype(float) if seed == 2 else rng.normal(size=(n, a))
    labels = rng.random((n, a)) < 0.1
    labels[:, 3] = False  # an empty attribute
    for k in (1, 3, 5):
        for topn in (None, 5, 50):
            got = attribute_recall_at_k(scores, labels, k, topn=topn)
            want = attribute_recall_at_k_reference(scores, labels, k, topn=topn)
            assert got == pytest.approx(want, abs=1e-12)
            assert 0.0 <= got <= 1.0
    # the best-5 mean is at least the overall mean
    assert attribute_recall_at_k(scores, labels, 3, topn=5) >= attribute_recall_at_k(scores, labels, 3)


def test_recall_at_k_errors():
    with pytest.raises(ValueError):
        attribute_recall_at_k(_SCORES, _LABELS, 6)
    with pytest.raises(ValueError):
        attribute_recall_at_k(_SCORES, _LABELS, 0)
    with pytest.raises(ValueError):
        attribute_recall_at_k(_SCORES, np.zeros_like(_LABELS), 2)
    with pytest.raises(ValueError):
        attribute_recall_at_k(_SCORES, _LABELS[:, :4], 2)


# ----------------------------------------------------------------------------------------------------------
# hierarchy violations
# ----------------------------------------------------------------------------------------------------------
def test_hierarchy_violations_hand_case():
    applicable = np.array([[1, 1, 0],    # category 0: attributes 0, 1
                           [0, 1, 1]], dtype=bool)  # category 1: attributes 1, 2
    predicted = np.array([[1, 0, 1],     # category 0: attribute 2 cannot apply
                          [1, 1, 0],     # category 1: attribute 0 cannot apply
                          [0, 1, 1],     # category 1: fine
                          [0, 0, 0]], dtype=bool)  # nothing predicted
    out = hierarchy_violations(predicted, np.array([0, 1, 1, 0]), applicable)
    assert out == {"rate": pytest.approx(2 / 6), "items": pytest.approx(2 / 4), "predicted": 6, "violations": 2}
    none = hierarchy_violations(np.zeros((3, 3), bool), [0, 1, 0], applicable)
    assert none == {"rate": 0.0, "items": 0.0, "predicted": 0, "violations": 0}
    with pytest.raises(IndexError):
        hierarchy_violations(predicted, [0, 1, 2, 0], applicable)


# ----------------------------------------------------------------------------------------------------------
# box IoU and detection matching
# ----------------------------------------------------------------------------------------------------------
def _random_boxes(rng, n: int, dtype=torch.float64) -> torch.Tensor:
    xy = rng.uniform(0, 50, (n, 2))
    return torch.as_tensor(np.concatenate([xy, xy + rng.uniform(0.5, 30, (n, 2))], axis=1), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_box_iou_equals_torchvision_pairwise_and_paired(dtype):
    from torchvision.ops import box_iou as tv_box_iou

    rng = np.random.default_rng(10)
    a, b = _random_boxes(rng, 7, dtype), _random_boxes(rng, 5, dtype)
    b[0] = a[0]                                                   # one identical pair: IoU 1
    ours = box_iou(a, b, dtype=dtype)
    assert ours.shape == (7, 5) and ours.dtype == dtype and ours.device == a.device
    assert torch.equal(ours, tv_box_iou(a, b))                    # the same formula, bit for bit
    assert ours[0, 0].item() == 1.0 and (ours[:, 1:] < 1).all()
    c = _random_boxes(rng, 7, dtype)
    paired = box_iou(a, c, paired=True, dtype=dtype)
    assert paired.shape == (7,) and torch.equal(paired, torch.diagonal(tv_box_iou(a, c)))
    # the default is float64 whatever comes in: numpy, lists and integer boxes too
    assert torch.equal(box_iou(a.numpy(), c.tolist()), tv_box_iou(a.double(), c.double()))
    assert box_iou(a.float(), c).dtype == torch.float64


def test_box_iou_hand_cases_degenerate_and_shapes():
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]).tolist() == [[50 / 150]]        # one flat box each
    assert box_iou([[0, 0, 10, 10]], [[10, 0, 20, 10]], paired=True).tolist() == [0.0]  # touching: 0
    # degenerate boxes (zero width or height, inverted) give 0, where torchvision gives NaN for 0 / 0
    degenerate = [[3, 3, 3, 9], [3, 3, 9, 3], [9, 9, 3, 3]]
    iou = box_iou(degenerate, degenerate)
    assert torch.equal(iou, torch.zeros(3, 3, dtype=torch.float64))
    from torchvision.ops import box_iou as tv_box_iou
    assert torch.isnan(tv_box_iou(torch.tensor([[3.0, 3, 3, 9]]), torch.tensor([[3.0, 3, 3, 9]]))).all()
    # an inverted box has no area: its overlap with a normal box is 0, not negative
    assert box_iou([[9, 9, 3, 3]], [[0, 0, 10, 10]]).item() == 0.0
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    assert box_iou(np.zeros((0, 4)), np.zeros((0, 4)), paired=True).shape == (0,)
    with pytest.raises(ValueError, match="paired"):
        box_iou([[0, 0, 1, 1]], [[0, 0, 1, 1], [0, 0, 2, 2]], paired=True)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        box_iou([[0, 0, 1]], [[0, 0, 1, 1]])


def test_box_iou_and_greedy_matching():
    gt = [[0, 0, 10, 10], [20, 20, 30, 30]]
    det = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [50, 50, 60, 60]], dtype=torch.float32)
    scores = [0.5, 0.9, 0.3, 0.8]
    iou = box_iou(gt, det)
    assert iou[0, 1].item() == pytest.approx(90 / 110) and iou[0, 3].item() == 0.0
    # by score: d1 (0.9) takes gt 0; d3 (0.8) overlaps nothing; d0 (0.5) finds gt 0 taken; d2 takes gt 1
    assert match_detections(gt, det, scores) == [(0, 1), (1, 2)]
    # a stricter threshold leaves d1 (IoU 0.82) unmatched, so d0 gets gt 0
    assert match_detections(gt, det, scores, iou_threshold=0.85) == [(0, 0), (1, 2)]
    # IoU exactly at the threshold matches (>=, as COCO)
    assert match_detections([[0, 0, 10, 10]], [[0, 0, 10, 5]], [1.0], iou_threshold=0.5) == [(0, 0)]
    assert match_detections(np.zeros((0, 4)), det, scores) == []
    assert match_detections(gt, np.zeros((0, 4)), []) == []


# ----------------------------------------------------------------------------------------------------------
# COCO metrics (pycocotools)
# ----------------------------------------------------------------------------------------------------------
_NAMES = ["upper", "lower"]
_EMPTY = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int))


def _gt(boxes, labels):
    return np.asarray(boxes, dtype=float), np.asarray(labels)


def _det(boxes, scores, labels):
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), torch.tensor(labels)


def test_coco_perfect_detections():
    gt = [_gt([[0, 0, 10, 20], [30, 30, 60, 50]], [0, 1]), _gt([[5, 5, 40, 40]], [1])]
    dets = [_det([[0, 0, 10, 20], [30, 30, 60, 50]], [0.9, 0.8], [0, 1]), _det([[5, 5, 40, 40]], [0.7], [1])]
    m = coco_detection_metrics(gt, dets, _NAMES)
    for key in ("mAP", "AP50", "AP75", "AR@1", "AR@10", "AR@100"):
        assert m[key] == pytest.approx(1.0), key
    assert m["per_class"] == {"upper": pytest.approx(1.0), "lower": pytest.approx(1.0)}


def test_coco_known_iou():
    # IoU = (10 x 6.2) / (10 x 10) = 0.62: a hit at IoU thresholds 0.50, 0.55, 0.60 and a miss at 0.65 ... 0.95,
    # so AP = AR = 3 / 10
    gt = [_gt([[0, 0, 10, 10]], [0])]
    dets = [_det([[0, 0, 10, 6.2]], [0.9], [0])]
    m = coco_detection_metrics(gt, dets, _NAMES)
    assert m["mAP"] == pytest.approx(0.3)
    assert m["AP50"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(0.0)
    assert m["AR@100"] == pytest.approx(0.3)
    assert m["per_class"]["upper"] == pytest.approx(0.3)
    assert math.isnan(m["per_class"]["lower"])  # no ground truth of that class


def test_coco_missed_object_in_an_image_without_detections():
    # two objects, one found: precision 1 up to recall 0.5, then nothing -> 51 of COCO's 101 recall points
    gt = [_gt([[0, 0, 10, 10]], [0]), _gt([[20, 20, 40, 40]], [0])]
    dets = [_det([[0, 0, 10, 10]], [0.9], [0]), _EMPTY]
    m = coco_detection_metrics(gt, dets, _NAMES)
    assert m["mAP"] == pytest.approx(51 / 101)
    assert m["AR@100"] == pytest.approx(0.5)


def test_coco_false_positive_ranked_below_or_above_the_true_positive():
    gt = [_gt([[0, 0, 10, 10]], [0])]
    below = coco_detection_metrics(gt, [_det([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.5], [0, 0])], _NAMES)
    assert below["mAP"] == pytest.approx(1.0)
    above = coco_detection_metrics(gt, [_det([[0, 0, 10, 10], [50, 50, 60, 60]], [0.5, 0.9], [0, 0])], _NAMES)
    assert above["mAP"] == pytest.approx(0.5)  # precision 1/2 at the only recall level
    assert above["AR@100"] == pytest.approx(1.0) and above["AR@1"] == pytest.approx(0.0)
    # a wrong class is a false positive of that class and a miss of the true one
    wrong = coco_detection_metrics(gt, [_det([[0, 0, 10, 10]], [0.9], [1])], _NAMES)
    assert wrong["mAP"] == pytest.approx(0.0)


def test_coco_per_class_and_no_detections():
    gt = [_gt([[0, 0, 10, 10], [20, 20, 40, 30]], [0, 1])]
    m = coco_detection_metrics(gt, [_det([[20, 20, 40, 30]], [0.8], [1])], _NAMES)
    assert m["per_class"] == {"upper": pytest.approx(0.0), "lower": pytest.approx(1.0)}
    assert m["mAP"] == pytest.approx(0.5)
    empty = coco_detection_metrics(gt, [_EMPTY], _NAMES)
    assert {k: empty[k] for k in ("mAP", "AP50", "AR@100")} == {"mAP": 0.0, "AP50": 0.0, "AR@100": 0.0}
    assert empty["per_class"] == {"upper": 0.0, "lower": 0.0}
    with pytest.raises(ValueError):
        coco_detection_metrics(gt, [], _NAMES)
