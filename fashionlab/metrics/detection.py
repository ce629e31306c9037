"""Detection metrics: one :func:`box_iou`, greedy :func:`match_detections` and the COCO box metrics
:func:`coco_detection_metrics` (paper 06 §4.2, Table 4: mAP@[.5:.95], AP50, AP75, AR@1/10/100 of the object-type
detector, computed by pycocotools as COCO's evaluation does).

:func:`box_iou` is the project's only IoU of ``(x1, y1, x2, y2)`` boxes: pairwise ``(n, m)`` by default (the
overlap of the COCO matching, paper 06 §4.2, and of the part boxes of paper 04 §4.3 / §7.5), row-wise ``(n,)``
with ``paired=True`` (e.g. the localisation of ASEN++'s weakly supervised attention boxes, paper 03).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._common import _tensor

__all__ = ["box_iou", "match_detections", "coco_detection_metrics"]


def _boxes(x, name: str, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """``(n, 4)`` boxes as a detached ``dtype`` tensor on ``device`` (``None``: the CPU); one flat box ``(4,)``
    becomes ``(1, 4)``, an empty input ``(0, 4)``."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device=device or "cpu", dtype=dtype)
    else:  # numpy arrays and lists: one conversion (parts are scored one box pair at a time: keep it cheap)
        t = torch.as_tensor(np.asarray(x), dtype=dtype, device=device or "cpu")
    if t.numel() == 0:
        return t.reshape(0, 4)
    if t.dim() == 1 and t.numel() == 4:
        t = t[None]
    if t.dim() != 2 or t.shape[1] != 4:
        raise ValueError(f"{name} must be (n, 4) boxes x1, y1, x2, y2 (or one box of 4 numbers); "
                         f"got shape {tuple(t.shape)}")
    return t


def box_iou(boxes1, boxes2, paired: bool = False, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Intersection over union of boxes ``(x1, y1, x2, y2)``: ``inter / (area1 + area2 - inter)`` with
    ``area = max(x2 - x1, 0) * max(y2 - y1, 0)`` (torchvision's ``box_iou`` formula, with the area of an inverted
    box clipped at 0; the overlap of paper 06 §4.2).

    * ``paired=False`` (default): pairwise, boxes ``(n, 4)`` and ``(m, 4)`` give ``(n, m)``;
    * ``paired=True``: row-wise, boxes ``(n, 4)`` and ``(n, 4)`` give ``(n,)``, the IoU of ``boxes1[i]`` with
      ``boxes2[i]`` (the diagonal of the pairwise matrix).

    Accepts tensors, numpy arrays or lists; a single box may be a flat list of 4 numbers, and an empty input
    means no box. Computed (without gradients) in ``dtype`` (default float64) on ``device`` (default: the device
    of ``boxes1`` if it is a tensor, else of ``boxes2`` if that is one, else the CPU). Boxes whose union has no
    area (degenerate boxes: zero width or height; inverted boxes count as empty) give IoU 0, not NaN; otherwise
    the values equal ``torchvision.ops.box_iou`` in the same dtype.
    """
    if device is None:
        device = next((x.device for x in (boxes1, boxes2) if isinstance(x, torch.Tensor)), torch.device("cpu"))
    a = _boxes(boxes1, "boxes1", dtype, device)
    b = _boxes(boxes2, "boxes2", dtype, device)
    if paired and a.shape[0] != b.shape[0]:
        raise ValueError(f"paired=True needs as many boxes in boxes1 as in boxes2, got {a.shape[0]} and "
                         f"{b.shape[0]}")
    ax1, ay1, ax2, ay2 = a.unbind(1)
    bx1, by1, bx2, by2 = b.unbind(1)
    area_a = (ax2 - ax1).clamp_min_(0) * (ay2 - ay1).clamp_min_(0)
    area_b = (bx2 - bx1).clamp_min_(0) * (by2 - by1).clamp_min_(0)
    if not paired:  # broadcast (n, 1) against (1, m)
        ax1, ay1, ax2, ay2, area_a = (z[:, None] for z in (ax1, ay1, ax2, ay2, area_a))
    iw = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_min_(0)
    ih = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_min_(0)
    inter = iw * ih
    union = area_a + area_b - inter
    # union >= the larger area >= 0; where it is 0 (both boxes without area) inter / union is 0 / 0: set 0
    return (inter / union).masked_fill_(~(union > 0), 0.0)


def match_detections(gt_boxes, det_boxes, det_scores, iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """Greedy matching of detections to ground-truth boxes, as COCO's evaluation does per class (paper 06 §4.2).

    Detections are visited by descending score (ties: the lower index first); each takes the still-unmatched
    ground-truth box with the highest IoU, provided that IoU is ``>= iou_threshold``; otherwise it stays
    unmatched (a false positive). Every box and detection is used at most once. Class labels are not looked
    at: call it per class. Returns ``[(gt_index, det_index), ...]`` in the order the detections were visited.
    """
    gt = _boxes(gt_boxes, "gt_boxes")
    det = _boxes(det_boxes, "det_boxes")
    sc = _tensor(det_scores).detach().reshape(-1).to(device="cpu", dtype=torch.float64)
    if sc.numel() != det.shape[0]:
        raise ValueError(f"{sc.numel()} scores for {det.shape[0]} detections")
    if gt.shape[0] == 0 or det.shape[0] == 0:
        return []
    iou = box_iou(gt, det)
    free = torch.ones(gt.shape[0], dtype=torch.bool)
    pairs = []
    for d in torch.sort(sc, descending=True, stable=True).indices.tolist():
        cand = torch.where(free, iou[:, d], torch.full_like(iou[:, d], -1.0))
        g = int(cand.argmax())
        if float(cand[g]) >= iou_threshold:
            free[g] = False
            pairs.append((g, d))
    return pairs


def coco_detection_metrics(ground_truth, detections, class_names: Sequence[str]) -> dict[str, Any]:
    """COCO box metrics of the object-type detector (paper 06 §4.2, Table 4: mAP and AR@100), computed by
    pycocotools' ``COCOeval`` on in-memory ground truth and detections.

    ``ground_truth``: one ``(boxes (k, 4), labels (k,))`` per image, boxes ``x1, y1, x2, y2`` in pixels, labels
    0-based class indices into ``class_names``; ``detections``: one ``(boxes, scores, labels)`` per image (the
    same conventions; torchvision detectors' labels are 1-based with 0 the background, so pass
    ``labels - 1``). Boxes become COCO ``[x, y, w, h]`` with ``w = x2 - x1``, ``area = w · h``, ``iscrowd = 0``.

    Returns fractions: ``mAP`` (AP averaged over IoU 0.50:0.05:0.95, COCO's 101-point interpolated precision,
    the paper's main number), ``AP50``, ``AP75``, ``AR@1``, ``AR@10``, ``AR@100`` (recall given at most 1, 10, 100
    detections per image, averaged over the IoU thresholds and classes) and ``per_class`` ``{name: AP}``.
    COCO's size-range numbers (small / medium / large) are not returned: its pixel ranges are meant for
    full-size photos. Images without detections count as misses; no detection at all gives zeros (no crash).
    A class without ground truth is left out of COCO's means and gets ``nan`` in ``per_class``; with no ground
    truth at all every number is ``nan``. pycocotools (``pip install pycocotools``, in the ``dev`` extras) is
    imported only here.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("coco_detection_metrics needs pycocotools: pip install pycocotools "
                          "(or pip install -e '.[dev]')") from err
    import contextlib
    import io

    if len(ground_truth) != len(detections):
        raise ValueError(f"{len(ground_truth)} ground-truth images but {len(detections)} detection lists")
    names = [str(c) for c in class_names]
    n_cls = len(names)

    def xywh(b: torch.Tensor) -> list[list[float]]:
        return [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in b.tolist()]

    def labels_of(x, n: int, what: str) -> list[int]:
        lab = _tensor(x).reshape(-1).to(torch.long).tolist() if n else []
        if len(lab) != n:
            raise ValueError(f"{what}: {len(lab)} labels for {n} boxes")
        if any(not 0 <= c < n_cls for c in lab):
            raise IndexError(f"{what}: label out of range for {n_cls} classes")
        return lab

    images, annotations, results = [], [], []
    for i, ((g_boxes, g_labels), (d_boxes, d_scores, d_labels)) in enumerate(zip(ground_truth, detections)):
        images.append({"id": i + 1})
        gb = _boxes(g_boxes, "ground-truth boxes")
        for box, c in zip(xywh(gb), labels_of(g_labels, len(gb), f"image {i} ground truth")):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c + 1, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
        db = _boxes(d_boxes, "detection boxes")
        ds = _tensor(d_scores).reshape(-1).to(torch.float64).tolist() if len(db) else []
        if len(ds) != len(db):
            raise ValueError(f"image {i}: {len(ds)} scores for {len(db)} detections")
        for box, s, c in zip(xywh(db), ds, labels_of(d_labels, len(db), f"image {i} detections")):
            results.append({"image_id": i + 1, "category_id": c + 1, "bbox": box, "score": s})

    keys = ("mAP", "AP50", "AP75", "AR@1", "AR@10", "AR@100")
    if not annotations:
        return {**{k: float("nan") for k in keys}, "per_class": {c: float("nan") for c in names}}
    has_gt = {a["category_id"] - 1 for a in annotations}
    if not results:
        return {**{k: 0.0 for k in keys}, "per_class": {c: (0.0 if j in has_gt else float("nan"))
                                                         for j, c in enumerate(names)}}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": j + 1, "name": c} for j, c in enumerate(names)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(v) if v >= 0 else float("nan") for v in ev.stats]
    out: dict[str, Any] = dict(zip(keys, (stats[0], stats[1], stats[2], stats[6], stats[7], stats[8])))
    precision = ev.eval["precision"]  # (IoU thresholds, recall points, classes, area ranges, max detections)
    per_class = {}
    for j, c in enumerate(names):
        p = precision[:, :, j, 0, -1]
        p = p[p > -1]
        per_class[c] = float(p.mean()) if p.size else float("nan")
    out["per_class"] = per_class
    return out