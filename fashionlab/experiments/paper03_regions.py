"""Paper 03 beyond the slides: FashionSynth's region ground truth used to score ASEN's attention (pointing game,
box IoU; slides "Spatial Attention Visualization" can only show pictures) and to cut oracle crops (the neck-detail
study of :func:`fashionlab.experiments.paper03.detail_study`). ``data`` is a
:class:`~fashionlab.experiments.paper03.AsenData`; ``images`` a :class:`~fashionlab.datasets.TwoScaleImages`."""
from __future__ import annotations

import copy

import numpy as np

__all__ = ["union_regions", "oracle_boxes", "region_crop_images", "pointing_game", "attention_scores"]


def union_regions(records, attributes, image_size: int) -> np.ndarray:
    """``(n, 4)`` per image (``records`` in id order), in pixels of images decoded at ``image_size``: the box
    around the ground-truth regions of ``attributes`` visible in it, or the whole image where none is."""
    out = np.zeros((len(records), 4), dtype=np.float32)
    for i, r in enumerate(records):
        size = float(r.get("image_size", image_size))  # the canvas the ground truth was written for
        b = [r["regions"][a] for a in attributes if r["regions"].get(a) is not None]
        if b:
            b = np.asarray(b, dtype=np.float32)
            out[i] = np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]) * (image_size / size)
        else:
            out[i] = [0, 0, image_size, image_size]
    return out


def oracle_boxes(boxes, scale: float):
    """``(n, 4)`` float tensor: for each ``[x1, y1, x2, y2]`` of ``boxes``, the square of side ``scale`` times the
    box's longer side (at least 1 px), centred on the box (it may reach beyond the canvas). The crop a perfect
    localiser would cut (the detail study, :func:`region_crop_images`)."""
    import torch

    b = torch.as_tensor(np.asarray(boxes), dtype=torch.float32).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    half = scale * torch.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]).clamp_min(1.0) / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], 1)


def region_crop_images(images, boxes, scale: float):
    """A copy of ``images`` whose global view is an oracle crop (beyond the slides; the detail study): for
    image ``i``, the square of side ``scale`` times the longer side of ``boxes[i]`` centred on it, cut from the
    high-resolution image (bilinear, :func:`torchvision.ops.roi_align`; beyond the canvas the pixels are black)
    and resized to ``global_size``: what a perfect localiser would hand a network, at the global view's input
    size. The high-resolution images are shared."""
    import torch
    from torchvision.ops import roi_align

    sq = oracle_boxes(boxes, scale)
    if len(sq) != len(images):
        raise ValueError(f"got {len(sq)} boxes for {len(images)} images")
    g = images.global_size
    lo = torch.empty((len(images), 3, g, g), dtype=torch.uint8)
    chunk = 2048
    for s in range(0, len(images), chunk):
        x = images.hi.data[s:s + chunk].float()
        rois = torch.cat([torch.arange(len(x), dtype=torch.float32)[:, None], sq[s:s + chunk]], 1)
        y = roi_align(x, rois, output_size=(g, g), spatial_scale=1.0, sampling_ratio=2, aligned=True)
        lo[s:s + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    out = copy.copy(images)
    out.lo = lo
    return out


def pointing_game(attention, boxes, image_size):
    """Pointing-game score of attention maps against region boxes (beyond the paper: the slides only show
    attention maps, "Spatial Attention Visualization"; the pointing game of Zhang et al., ECCV 2016, with a
    tolerance of half a cell).

    ``attention`` ``(B, h, w)`` over an image of ``image_size`` ``(H, W)`` pixels (cell ``(i, j)`` covers
    ``[j W/w, (j+1) W/w) x [i H/h, (i+1) H/h)``); ``boxes`` ``(B, 4)`` ``[x1, y1, x2, y2]`` in those pixels,
    x2/y2 exclusive. A map scores 1 when its peak cell overlaps the box (equivalently: the cell centre lies
    within half a cell of the box). Ties count fractionally: the score is the fraction of the maximal cells that
    overlap the box, i.e. the expected hit of a random tie-break, so a uniform map (ASEN_g w/o ASA) scores the
    chance level, the share of cells touching the box. Returns ``(B,)`` float scores in [0, 1].
    """
    import torch

    att = torch.as_tensor(attention).detach().float()
    if att.dim() == 2:
        att = att.unsqueeze(0)
    b, h, w = att.shape
    H, W = (int(image_size), int(image_size)) if isinstance(image_size, (int, float)) else map(int, image_size)
    bx = torch.as_tensor(boxes, dtype=torch.float32, device=att.device).reshape(b, 4)
    mx = att.amax(dim=(1, 2), keepdim=True)
    peak = att >= mx - 1e-6 * mx.abs().clamp_min(1e-12)
    ys = torch.arange(h + 1, device=att.device, dtype=torch.float32) * (H / h)
    xs = torch.arange(w + 1, device=att.device, dtype=torch.float32) * (W / w)
    over_y = (ys[None, :-1] < bx[:, 3:4]) & (ys[None, 1:] > bx[:, 1:2])      # (B, h)
    over_x = (xs[None, :-1] < bx[:, 2:3]) & (xs[None, 1:] > bx[:, 0:1])      # (B, w)
    inside = over_y[:, :, None] & over_x[:, None, :]
    return (peak & inside).sum(dim=(1, 2)).float() / peak.sum(dim=(1, 2)).float()


def attention_scores(model, data, split: str = "test", device=None) -> dict | None:
    """Score an :class:`~fashionlab.models.ASENGlobal`'s spatial attention against FashionSynth's regions on
    ``split``'s items whose listed attribute is visible: :func:`pointing_game` of the map, and
    :func:`fashionlab.metrics.box_iou` (row-wise) of the box ASEN++ would crop with the region
    (:func:`~fashionlab.models.attention_box`: threshold ``cfg.threshold`` after bilinear upsampling to the
    global input, squared; slides "Weakly-supervised Localization"). Embeds through
    :func:`fashionlab.engine.extract_features`.

    Returns ``{"pointing game": {"per": {attr index: fraction}, "overall"}, "box IoU": {...}, "n": items,
    "attention", "boxes", "regions", "items"}`` (the last four for plots), or ``None`` without ground truth.
    Overall = mean over items (like the mAP's query weighting)."""
    import torch

    from ..engine import extract_features
    from ..metrics import box_iou
    from ..models import attention_box

    if not data.has_truth:
        return None
    boxes, has, size = data.regions(split)
    items = data.items(split)[has]
    gt = torch.from_numpy(boxes[has])
    att = extract_features(lambda b: model(b[0], b[2]).attention, data.images[split].item_batches(items),
                           device=device, model=model, out_device="cpu")
    g = data.cfg.global_size
    hits = pointing_game(att, gt, (size, size))
    pred = attention_box(att, data.cfg.threshold, image_size=(size, size), work_size=(g, g), square=True)
    iou = box_iou(pred, gt, paired=True)
    out = {"n": int(len(items)), "attention": att, "boxes": pred, "regions": gt, "items": items}
    for key, v in (("pointing game", hits), ("box IoU", iou)):
        per = {int(a): float(v[torch.from_numpy(items[:, 1] == a)].mean()) for a in np.unique(items[:, 1])}
        out[key] = {"per": per, "overall": float(v.mean())}
    return out
