"""Part extraction by jump detection (paper 04, Ak et al., §4.3 and Fig. 4) and its regression alternative (§7.5).

The paper works on *pure* in-shop images: one garment, front view, plain light background. Under that
assumption the garment's silhouette alone tells where its parts are. The pipeline, one function per step:

1. :func:`segment_foreground` - "a straightforward color based segmentation": the background colour is the
   median of the image's border pixels; a pixel is foreground when its colour distance from it exceeds a
   threshold.
2. :func:`clean_mask` - "dilation and erosion to remove small gaps and noisy regions": a closing (dilate, then
   erode: joins pieces, closes thin gaps), hole filling (our addition: a light print or a garment colour close
   to the background, enclosed by the outline, must not split the silhouette), an opening (erode, then
   dilate: removes specks). :func:`dilate` / :func:`erode` are max-pooling
   with a square window that is clipped at the image border (pixels outside the image are ignored).
3. :func:`silhouette_profiles` - per row: left/right edge and width of the silhouette, and the edges of the run
   of foreground that contains the centre column (the *torso run*); per column: the top edge.
4. :func:`find_steps` - step detection "from signal processing": a step is a change of at least ``min_step``
   pixels between neighbouring samples.
5. :func:`parts_from_mask` - the *jump location* is the first row (from the top) where the torso run's edge
   steps **inwards**: there the sleeve separates from the torso (the armpit). That covers short sleeves (the
   outer edge jumps in below the sleeve) and long hanging sleeves (a gap opens between sleeve and torso). A
   jump may take a few rows (a slanted cuff): the edge is followed down while it still moves inwards by at
   least half the jump threshold per row, and the torso edge is read where it settles.
   The *upper jumps* (neck) are found on the top edge, walking outwards from the centre column: if the
   centre dips at least one jump below the highest shoulder point (a neckline), the walk stops on each side
   where the top edge is back within ``max(1, threshold / 4)`` of that side's highest point; otherwise, if
   the top edge drops by at least one jump where the walk leaves the centre's level (a collar standing above
   the shoulders), there. Without either (a flat top) the collar is the static-pose estimate: the middle
   third of the torso, ``collar_depth_frac`` of the garment deep.
   From these points the mask is cut into torso, left/right sleeve (the foreground outside the torso's
   edges: left of the armpit column above the armpit, outside the torso run below it) and collar (neck
   columns, from the garment top to the neckline bottom or shoulder level plus a margin); the fastening is
   a vertical strip (``fastening_frac`` of the torso width) in the middle of the torso, full torso height.

Cases (the "Extract Parts?" head of §4.3 has three outputs; here a documented rule decides):

* ``"sleeved"``: both torso edges have an inward jump in the upper ``search_frac`` of the garment -> all five
  parts. (If ``body="lower"`` is passed, the garment is treated as lower-body whatever the silhouette says.)
* otherwise, if ``body`` is given (``"upper"`` -> ``"sleeveless"``, ``"lower"`` -> ``"lower"``): the caller's
  knowledge wins, as in the paper, where the general-attribute path (category) makes this decision.
* otherwise the *top band rule*: a lower-body garment (skirt, trousers) starts with a solid waistband, so
  the row just below the garment's top is one run without gaps (fill >= 95 % of its extent) that is at least
  half as wide as the garment -> ``"lower"``; tops start with shoulders, straps or a collar (split or narrow)
  -> ``"sleeveless"``. A strapless tube top would be called ``"lower"``: pass ``body`` when it matters.
* ``"empty"``: no foreground at all (every part is ``None``).

``"lower"`` gives only the garment box (as ``"torso"``); ``"sleeveless"`` gives torso, collar and fastening
(sleeves ``None``); ``"sleeved"`` gives all of :data:`PART_NAMES`.

Boxes are ``[x1, y1, x2, y2]`` integer pixel coordinates with x2, y2 exclusive (``image[y1:y2, x1:x2]``), the
convention of :mod:`fashionlab.synth`. ``left``/``right`` are *image* left/right (smaller/larger x), like the
synth ground truth (whose ``neck_detail`` is our ``collar``: :data:`SYNTH_PART_NAMES`).

Scoring: :func:`box_hit` and :func:`part_hit_rate` (IoU >= 0.5 by :func:`fashionlab.metrics.box_iou`, or the
predicted box's centre inside the ground-truth box).

§7.5's alternative, a small CNN that regresses the parts, is :class:`PartBoxRegressor` with
:func:`part_box_loss` and :func:`part_box_targets` (training lives in the experiments). The paper regresses the
jump points; we regress the part boxes directly, which is what the jump points are used for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import box_iou

__all__ = [
    "PART_NAMES",
    "CASES",
    "SYNTH_PART_NAMES",
    "PartExtraction",
    "segment_foreground",
    "dilate",
    "erode",
    "opening",
    "closing",
    "fill_holes",
    "clean_mask",
    "silhouette_profiles",
    "find_steps",
    "mask_box",
    "parts_from_mask",
    "extract_parts",
    "extraction_steps",
    "extract_parts_batch",
    "box_hit",
    "part_hit_rate",
    "PartBoxRegressor",
    "PartBoxOutput",
    "part_box_loss",
    "part_box_targets",
    "decode_part_boxes",
]

PART_NAMES = ("torso", "left_sleeve", "right_sleeve", "collar", "fastening")
CASES = ("sleeved", "sleeveless", "lower", "empty")
#: our part name -> the name of the same part in :mod:`fashionlab.synth` ground truth (``gt["parts"]``)
SYNTH_PART_NAMES = {"torso": "torso", "left_sleeve": "left_sleeve", "right_sleeve": "right_sleeve",
                    "collar": "neck_detail", "fastening": "fastening"}


# ----------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------
def _image_batch(images: Any) -> torch.Tensor:
    """Images as a float32 ``(B, C, H, W)`` tensor in [0, 1].

    Accepted: one image or a batch; numpy / PIL are channel-last (``(H, W)``, ``(H, W, C)``,
    ``(B, H, W, C)``), torch tensors channel-first (``(H, W)``, ``(C, H, W)``, ``(B, C, H, W)``); uint8 is
    divided by 255, floats are taken to be in [0, 1]; a list of images is stacked.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("no images")
        return torch.cat([_image_batch(im) for im in images])
    if isinstance(images, torch.Tensor):
        x = images.detach().cpu()
        if x.dim() == 2:
            x = x[None, None]
        elif x.dim() == 3:
            x = x[None]
        elif x.dim() != 4:
            raise ValueError(f"a torch image must be (H, W), (C, H, W) or (B, C, H, W); got {tuple(x.shape)}")
    else:
        a = np.asarray(images)
        if a.dtype == object or a.ndim not in (2, 3, 4):
            raise ValueError(f"a numpy/PIL image must be (H, W), (H, W, C) or (B, H, W, C); got shape {a.shape}")
        if a.ndim == 2:
            a = a[None, :, :, None]
        elif a.ndim == 3:
            a = a[None]
        if not a.flags.writeable:  # e.g. np.asarray(PIL image): torch warns on read-only memory
            a = a.copy()
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 colour channels (numpy/PIL channel-last, torch channel-first), "
                         f"got {x.shape[1]} from shape {tuple(images.shape) if hasattr(images, 'shape') else '?'}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"images must be uint8 or floating point in [0, 1], got {x.dtype}")
    return x.float()


def _mask_tensor(mask: Any) -> tuple[torch.Tensor, bool, bool]:
    """Mask as a float ``(B, H, W)`` tensor, plus (was numpy, was a single mask) to restore the input type."""
    is_numpy = not isinstance(mask, torch.Tensor)
    m = torch.from_numpy(np.asarray(mask)) if is_numpy else mask
    if m.dim() not in (2, 3):
        raise ValueError(f"a mask must be (H, W) or (B, H, W), got shape {tuple(m.shape)}")
    single = m.dim() == 2
    m = (m[None] if single else m) != 0
    return m.float(), is_numpy, single


def _mask_like(m: torch.Tensor, is_numpy: bool, single: bool):
    m = m > 0.5
    m = m[0] if single else m
    return m.numpy() if is_numpy else m


# ----------------------------------------------------------------------------------------------------------
# step 1: colour-based segmentation
# ----------------------------------------------------------------------------------------------------------
def _segment(x: torch.Tensor, threshold: float, border: int):
    """Batched core of :func:`segment_foreground`: (mask, distance, background colour) for ``(B, C, H, W)``."""
    B, C, H, W = x.shape
    if border < 1 or 2 * border >= min(H, W):
        raise ValueError(f"border must be >= 1 and leave an interior, got {border} for a {H}x{W} image")
    frame = torch.ones(H, W, dtype=torch.bool)
    frame[border:H - border, border:W - border] = False
    bg = x[:, :, frame].median(dim=2).values                        # (B, C): median border colour
    dist = (x - bg[:, :, None, None]).norm(dim=1) / C ** 0.5         # (B, H, W), in [0, 1]
    return dist > threshold, dist, bg


def segment_foreground(image, threshold: float = 0.06, border: int = 2):
    """Colour-based foreground segmentation (§4.3, first step): ``(mask, distance, background)``.

    The background colour is the per-channel median of the pixels within ``border`` pixels of the image edge
    (the garment may touch the edge, as long as most of the frame is background). ``distance`` is the
    Euclidean RGB distance from it divided by ``sqrt(C)``, so it lies in [0, 1] for images in [0, 1];
    ``mask = distance > threshold``. A garment whose colour is within ``threshold`` of the background (white
    on white) is lost: the method assumes the paper's plain-background, in-shop images.

    ``image``: (H, W, C) / (H, W) numpy or PIL (uint8, or float in [0, 1]) or a (C, H, W) tensor.
    Returns numpy ``mask`` (H, W) bool, ``distance`` (H, W) float32, ``background`` (C,) float32.
    """
    x = _image_batch(image)
    if x.shape[0] != 1:
        raise ValueError(f"segment_foreground takes one image, got a batch of {x.shape[0]}")
    mask, dist, bg = _segment(x, threshold, border)
    return mask[0].numpy(), dist[0].numpy(), bg[0].numpy()


# ----------------------------------------------------------------------------------------------------------
# step 2: morphology (square structuring element, clipped at the image border)
# ----------------------------------------------------------------------------------------------------------
def _check_size(size: int) -> int:
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"the structuring element size must be an odd integer >= 1, got {size}")
    return int(size)


def _max_filter(m: torch.Tensor, size: int) -> torch.Tensor:
    """Max over the ``size x size`` window around each pixel; max pooling pads with -inf, so pixels outside
    the image are ignored (the window is clipped)."""
    return F.max_pool2d(m[:, None], size, stride=1, padding=size // 2)[:, 0]


def dilate(mask, size: int = 3):
    """Binary dilation (§4.3) with a ``size x size`` square: a pixel is set if any pixel of its window is set.

    The window is clipped at the image border. ``mask``: (H, W) or (B, H, W), numpy or torch; the result has
    the same type and shape (bool).
    """
    m, is_numpy, single = _mask_tensor(mask)
    return _mask_like(_max_filter(m, _check_size(size)), is_numpy, single)


def erode(mask, size: int = 3):
    """Binary erosion (§4.3) with a ``size x size`` square: a pixel stays set only if its whole window is set.

    The window is clipped at the image border (outside pixels are ignored, so the garment is not eaten where
    it touches the edge). Same types as :func:`dilate`.
    """
    m, is_numpy, single = _mask_tensor(mask)
    return _mask_like(1.0 - _max_filter(1.0 - m, _check_size(size)), is_numpy, single)


def opening(mask, size: int = 3):
    """Opening = erosion then dilation (§4.3, "remove noisy regions"): deletes specks smaller than the square."""
    return dilate(erode(mask, size), size)


def closing(mask, size: int = 5):
    """Closing = dilation then erosion (§4.3, "remove small gaps"): fills gaps and holes narrower than the
    square."""
    return erode(dilate(mask, size), size)


def fill_holes(mask, max_iter: int | None = None):
    """Fill background regions that do not touch the image border (our addition to §4.3's clean-up).

    A light print inside the garment would otherwise split the silhouette's rows and look like a jump.
    Background reachable from the border is grown by repeated 3x3 dilations inside the background
    (4- and diagonal neighbours, i.e. 8-connectivity) until it stops changing; the rest is foreground.
    ``max_iter`` (default ``H * W``) bounds the loop. Same types as :func:`dilate`.
    """
    m, is_numpy, single = _mask_tensor(mask)
    bg = 1.0 - m
    reach = torch.zeros_like(bg)
    reach[:, 0, :], reach[:, -1, :], reach[:, :, 0], reach[:, :, -1] = (bg[:, 0, :], bg[:, -1, :], bg[:, :, 0],
                                                                      bg[:, :, -1])
    limit = max_iter if max_iter is not None else m.shape[1] * m.shape[2]
    for _ in range(limit):
        grown = _max_filter(reach, 3) * bg
        if torch.equal(grown, reach):
            break
        reach = grown
    return _mask_like(1.0 - reach, is_numpy, single)


def clean_mask(mask, close_size: int = 5, open_size: int = 3, holes: bool = True):
    """§4.3's "dilation and erosion to remove small gaps and noisy regions", in three steps: a closing
    (``close_size``: dilation then erosion, the paper's order) joins the garment's pieces and closes thin gaps,
    :func:`fill_holes` (if ``holes``) fills what the outline now encloses, an opening (``open_size``) drops
    the specks of noise that are left. A size of 1 skips that step. Same types as :func:`dilate`."""
    return _clean(mask, close_size, open_size, holes)[-1]


def _clean(mask, close_size, open_size, holes):
    """(after closing, after hole filling, after opening) of :func:`clean_mask`."""
    closed = closing(mask, close_size) if close_size > 1 else mask
    filled = fill_holes(closed) if holes else closed
    opened = opening(filled, open_size) if open_size > 1 else filled
    return closed, filled, opened


# ----------------------------------------------------------------------------------------------------------
# step 3-4: silhouette profiles and step detection
# ----------------------------------------------------------------------------------------------------------
def _bool2d(mask) -> np.ndarray:
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"expected one (H, W) mask, got shape {m.shape}")
    return m != 0


def mask_box(mask) -> list[int] | None:
    """Bounding box ``[x1, y1, x2, y2]`` (x2, y2 exclusive) of the set pixels of an (H, W) mask; ``None`` if
    empty. (§4.3: every part box is the box of a piece of the binary mask B.)"""
    m = _bool2d(mask)
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if rows.size == 0:
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def silhouette_profiles(mask) -> dict[str, Any]:
    """The silhouette signals on which §4.3 / Fig. 4 detect jumps, from an (H, W) binary mask.

    Per row y (float arrays, NaN where undefined): ``left``/``right`` = first/last foreground column,
    ``width`` = ``right - left + 1`` (0 for an empty row), ``count`` = foreground pixels,
    ``torso_left``/``torso_right`` = the first/last column of the run of foreground that contains the centre
    column (NaN where the centre pixel is background, e.g. in a neckline cut or between trouser legs).
    Per column x: ``top`` = first foreground row. ``centre``: the centre column (middle of the bounding box,
    rounded down), ``box``: the mask's box.
    """
    m = _bool2d(mask)
    H, W = m.shape
    box = mask_box(m)
    rows_any, cols_any = m.any(1), m.any(0)
    left = np.where(rows_any, m.argmax(1), np.nan)
    right = np.where(rows_any, W - 1 - m[:, ::-1].argmax(1), np.nan)
    width = np.where(rows_any, right - left + 1, 0).astype(np.int64)
    top = np.where(cols_any, m.argmax(0), np.nan)
    xc = (box[0] + box[2] - 1) // 2 if box else W // 2
    run_left = np.cumprod(m[:, xc::-1], axis=1).sum(1)   # foreground pixels from xc leftwards, unbroken
    run_right = np.cumprod(m[:, xc:], axis=1).sum(1)
    on = m[:, xc]
    torso_left = np.where(on, xc - run_left + 1, np.nan)
    torso_right = np.where(on, xc + run_right - 1, np.nan)
    return {"left": left, "right": right, "width": width, "count": m.sum(1), "torso_left": torso_left,
            "torso_right": torso_right, "top": top, "centre": int(xc), "box": box}


def find_steps(signal, min_step: float) -> np.ndarray:
    """Step ("jump") detection of §4.3: indices ``i >= 1`` with ``signal[i] - signal[i-1] >= min_step``.

    Only upward steps; pass ``-signal`` for downward ones, ``abs`` of the difference is not used so that
    the direction (inwards/outwards) stays meaningful. NaN on either side is no step.
    """
    s = np.asarray(signal, dtype=np.float64).ravel()
    if min_step <= 0:
        raise ValueError(f"min_step must be > 0, got {min_step}")
    with np.errstate(invalid="ignore"):
        d = np.diff(s) >= min_step
    return np.flatnonzero(d) + 1


# ----------------------------------------------------------------------------------------------------------
# step 5: jumps -> parts
# ----------------------------------------------------------------------------------------------------------
@dataclass
class PartExtraction:
    """What :func:`extract_parts` returns (§4.3).

    ``case``: one of :data:`CASES`; ``garment_box``: box of the cleaned mask (or ``None``); ``parts``:
    ``{name: box or None}`` for every name in :data:`PART_NAMES`; ``jumps``: the detected points
    (``left``/``right``: ``(x, y)`` of the armpit, the torso edge column and row where the jump settles, or
    ``None``; ``left_first``/``right_first``: the row where the jump first appears; ``neck_left``/
    ``neck_right``: the neck columns (``neck_right`` exclusive) or ``None``; ``neck_kind``: ``"neckline"``,
    ``"collar"`` or ``"estimate"``; ``left_steps``/``right_steps``: every inward step of the torso edges;
    ``thresholds``: the jump sizes in pixels); ``steps``: intermediate arrays for plotting (``None`` unless
    asked for).
    """

    case: str
    garment_box: list[int] | None
    parts: dict[str, list[int] | None]
    jumps: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] | None = None


def _settle(edge: np.ndarray, j: int, fast: float) -> int:
    """A jump may take a few rows (a slanted cuff): from row ``j`` follow the edge while it still moves
    inwards by at least ``fast`` pixels per row; return the row where it settles (the armpit)."""
    y = j
    with np.errstate(invalid="ignore"):
        while y + 1 < edge.size and edge[y + 1] - edge[y] >= fast:
            y += 1
    return y


def _solid_top(m: np.ndarray, prof: dict, y1: int, gh: int, gw: int) -> bool:
    """The top band rule of the module docstring: is the row just below the top one solid, wide run?"""
    y = min(y1 + max(1, int(round(0.02 * gh))), y1 + gh - 1)
    extent = int(prof["width"][y])
    return extent > 0 and prof["count"][y] >= 0.95 * extent and extent >= 0.5 * gw


def _first_in(steps: np.ndarray, lo: int, hi: int) -> int | None:
    inside = steps[(steps >= lo) & (steps < hi)]
    return int(inside[0]) if inside.size else None


def _walk(keep: np.ndarray) -> int:
    """Number of leading ``True`` in ``keep`` (how far the walk from the centre goes)."""
    return int(keep.size if keep.all() else np.argmin(keep))


def _collar(top: np.ndarray, x_lo: int, x_hi: int, xc: int, y1: int, y_max: int, gh: int, step_y: float,
            pad_frac: float, depth_frac: float):
    """Collar box from the upper jumps: walking outwards from the centre column along the top edge, where it
    reaches the shoulder level (see :func:`parts_from_mask`). Returns (box, neck_left, neck_right, kind)."""
    seg = top[x_lo:x_hi + 1]
    c = float(top[xc])
    tol = max(1.0, 0.25 * step_y)
    left, right = top[xc:x_lo - 1 if x_lo > 0 else None:-1], top[xc:x_hi + 1]   # outwards from the centre
    nl = nr = None
    with np.errstate(invalid="ignore"):
        if c - np.nanmin(seg) >= step_y:                 # a neckline dips below the shoulders
            kind = "neckline"
            kl = _walk(left > np.nanmin(left) + tol)
            kr = _walk(right > np.nanmin(right) + tol)
            nl, nr = xc - kl + 1, xc + kr
        else:                                            # a collar standing above the shoulders?
            kind = "collar"
            kl = _walk(left <= c + tol)
            kr = _walk(right <= c + tol)
            if kl < left.size and left[kl] - c >= step_y:
                nl = xc - kl + 1
            if kr < right.size and right[kr] - c >= step_y:
                nr = xc + kr
            if nl is None and nr is not None:
                nl = 2 * xc + 1 - nr                     # mirror about the centre
            elif nr is None and nl is not None:
                nr = 2 * xc + 1 - nl
    if nl is None:                                       # flat top: the static-pose estimate
        kind = "estimate"
        third = (x_hi + 1 - x_lo) / 3.0
        cx1, cx2 = int(round(x_lo + third)), int(round(x_hi + 1 - third))
        cy2 = y1 + max(1, int(round(depth_frac * gh)))
    else:
        cx1, cx2 = max(x_lo, nl), min(x_hi + 1, nr)
        if kind == "neckline":
            level = np.nanmax(top[cx1:cx2])              # the bottom of the neckline
        else:
            level = np.nanmax(top[[max(x_lo, cx1 - 1), min(x_hi, cx2)]])   # the shoulders beside the collar
        cy2 = int(level) + max(1, int(round(pad_frac * gh)))
    box = [int(cx1), int(y1), int(cx2), int(min(cy2, y_max))]
    return box, nl, nr, kind


def _fastening(torso: list[int], frac: float) -> list[int]:
    """A vertical strip in the middle of the torso (§4.3, "by using the middle of torso region")."""
    tx1, ty1, tx2, ty2 = torso
    fw = max(1, int(round(frac * (tx2 - tx1))))
    x1 = int(round((tx1 + tx2) / 2.0 - fw / 2.0))
    return [x1, ty1, x1 + fw, ty2]


def parts_from_mask(mask, body: str | None = None, *, jump_frac: float = 0.05, min_jump: float = 3.0,
                    search_frac: float = 0.9, fastening_frac: float = 0.2, collar_pad_frac: float = 0.05,
                    collar_depth_frac: float = 0.15) -> PartExtraction:
    """Jump detection and part boxes from a cleaned binary mask (§4.3, Fig. 4). See the module docstring.

    ``body``: ``None`` (decide from the silhouette), ``"upper"`` or ``"lower"`` (known, e.g. from the
    category). A jump is a step of at least ``max(min_jump, jump_frac * garment width)`` pixels (rows) or
    ``max(min_jump, jump_frac * garment height)`` (the top edge); sleeve jumps are searched in the top
    ``search_frac`` of the garment (not the bottom rows, where a rounded hem also steps inwards; 0.9 lets a
    long sleeve that touches the torso down to its cuff be found at the cuff). The fastening strip is
    ``fastening_frac`` of the torso width; the collar reaches ``collar_pad_frac`` of the garment height below
    the neckline (or shoulder level), or ``collar_depth_frac`` below the top when the top edge has no jump.
    """
    if body not in (None, "upper", "lower"):
        raise ValueError(f"body must be None, 'upper' or 'lower', got {body!r}")
    m = _bool2d(mask)
    H, W = m.shape
    prof = silhouette_profiles(m)
    box = prof["box"]
    parts: dict[str, list[int] | None] = {p: None for p in PART_NAMES}
    if box is None:
        return PartExtraction("empty", None, parts, {"left": None, "right": None}, None)
    gx1, gy1, gx2, gy2 = box
    gw, gh = gx2 - gx1, gy2 - gy1
    xc = prof["centre"]
    step_x = max(min_jump, jump_frac * gw)
    step_y = max(min_jump, jump_frac * gh)

    # sleeve jumps: the torso run's edge steps inwards (left edge to the right, right edge to the left)
    left_steps = find_steps(prof["torso_left"], step_x)
    right_steps = find_steps(-prof["torso_right"], step_x)
    hi = gy1 + max(2, int(round(search_frac * gh)))
    jl, jr = _first_in(left_steps, gy1 + 1, hi), _first_in(right_steps, gy1 + 1, hi)
    jumps: dict[str, Any] = {"left": None, "right": None, "left_first": None, "right_first": None,
                             "neck_left": None, "neck_right": None,
                             "left_steps": [int(s) for s in left_steps],
                             "right_steps": [int(s) for s in right_steps], "neck_kind": None,
                             "thresholds": {"row": float(step_x), "column": float(step_y)}}

    if body == "lower":
        case = "lower"
    elif jl is not None and jr is not None:
        case = "sleeved"
    elif body == "upper":
        case = "sleeveless"
    else:
        case = "lower" if _solid_top(m, prof, gy1, gh, gw) else "sleeveless"

    if case == "lower":
        parts["torso"] = list(box)
        return PartExtraction(case, list(box), parts, jumps, None)

    if case == "sleeved":
        sl = _settle(prof["torso_left"], jl, step_x / 2)
        sr = _settle(-prof["torso_right"], jr, step_x / 2)
        xl, xr = int(prof["torso_left"][sl]), int(prof["torso_right"][sr])
        jumps.update(left=(xl, sl), right=(xr, sr), left_first=jl, right_first=jr)
        y = np.arange(H)
        tl = np.where(np.isnan(prof["torso_left"]), xl, prof["torso_left"])
        tr = np.where(np.isnan(prof["torso_right"]), xr, prof["torso_right"])
        left_bound = np.where(y < sl, xl, tl)      # above the armpit the sleeve is cut off at the jump column
        right_bound = np.where(y < sr, xr, tr)
        x = np.arange(W)[None, :]
        left_sleeve = m & (x < left_bound[:, None])
        right_sleeve = m & (x > right_bound[:, None])
        torso_mask = m & ~left_sleeve & ~right_sleeve
        parts["left_sleeve"], parts["right_sleeve"] = mask_box(left_sleeve), mask_box(right_sleeve)
        parts["torso"] = mask_box(torso_mask)
        x_lo, x_hi = xl, xr
    else:
        parts["torso"] = list(box)
        x_lo, x_hi = gx1, gx2 - 1

    collar, nl, nr, kind = _collar(prof["top"], x_lo, x_hi, xc, gy1, gy2, gh, step_y, collar_pad_frac,
                                   collar_depth_frac)
    parts["collar"] = collar
    parts["fastening"] = _fastening(parts["torso"], fastening_frac)
    jumps.update(neck_left=nl, neck_right=nr, neck_kind=kind)
    return PartExtraction(case, list(box), parts, jumps, None)


_MASK_KEYS = ("threshold", "border", "open_size", "close_size", "holes")


def _split_kwargs(kw: dict) -> tuple[dict, dict]:
    seg = {k: kw.pop(k) for k in list(kw) if k in _MASK_KEYS}
    return seg, kw


def _masks(x: torch.Tensor, threshold=0.06, border=2, close_size=5, open_size=3, holes=True):
    raw, dist, bg = _segment(x, threshold, border)
    return (raw, *_clean(raw, close_size, open_size, holes), dist, bg)


def extract_parts(image, body: str | None = None, keep_steps: bool = False, **kwargs) -> PartExtraction:
    """The whole §4.3 pipeline on one image: segmentation, morphology, profiles, jumps, part boxes.

    ``image``: see :func:`segment_foreground`. Keyword arguments go to :func:`segment_foreground`
    (``threshold``, ``border``), :func:`clean_mask` (``open_size``, ``close_size``, ``holes``) and
    :func:`parts_from_mask` (``jump_frac``, ...). ``keep_steps=True`` fills ``result.steps`` with the image,
    ``background``, ``distance``, ``mask_raw``, ``mask_closed`` (after the closing), ``mask_filled`` (after
    hole filling), ``mask_clean`` (after the opening) and the :func:`silhouette_profiles` of the clean mask,
    so a notebook can plot every step of Fig. 4.
    """
    x = _image_batch(image)
    if x.shape[0] != 1:
        raise ValueError(f"extract_parts takes one image, got a batch of {x.shape[0]}; use extract_parts_batch")
    seg, rest = _split_kwargs(dict(kwargs))
    raw, closed, filled, clean, dist, bg = _masks(x, **seg)
    result = parts_from_mask(clean[0].numpy(), body, **rest)
    if keep_steps:
        result.steps = {"image": x[0].permute(1, 2, 0).numpy(), "background": bg[0].numpy(),
                        "distance": dist[0].numpy(), "mask_raw": raw[0].numpy(),
                        "mask_closed": closed[0].numpy(), "mask_filled": filled[0].numpy(),
                        "mask_clean": clean[0].numpy(), **silhouette_profiles(clean[0].numpy())}
    return result


def extraction_steps(image, body: str | None = None, **kwargs) -> dict[str, Any]:
    """Every intermediate step of §4.3 / Fig. 4 for plotting: ``extract_parts(..., keep_steps=True)``'s
    ``steps`` plus ``case``, ``parts`` and ``jumps``."""
    r = extract_parts(image, body, keep_steps=True, **kwargs)
    return {**r.steps, "case": r.case, "garment_box": r.garment_box, "parts": r.parts, "jumps": r.jumps}


def extract_parts_batch(images, body: str | Sequence[str | None] | None = None, **kwargs) -> list[PartExtraction]:
    """:func:`extract_parts` for a batch (§4.3): segmentation and morphology run once on the stacked batch
    (torch max pooling), then the per-image jump detection. ``images``: ``(B, C, H, W)`` tensor,
    ``(B, H, W, C)`` numpy array or a list of same-sized images; ``body``: one value or one per image."""
    x = _image_batch(images)
    bodies = list(body) if isinstance(body, (list, tuple)) else [body] * x.shape[0]
    if len(bodies) != x.shape[0]:
        raise ValueError(f"{len(bodies)} body values for {x.shape[0]} images")
    seg, rest = _split_kwargs(dict(kwargs))
    clean = _masks(x, **seg)[3].numpy()
    return [parts_from_mask(clean[i], bodies[i], **rest) for i in range(x.shape[0])]


# ----------------------------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------------------------
def _boxes(b, name: str) -> np.ndarray:
    a = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{name} must be [x1, y1, x2, y2] or (N, 4), got shape {a.shape}")
    return a


def box_hit(pred, gt, rule: str = "iou", iou_threshold: float = 0.5) -> bool:
    """Is a predicted part box a hit (our §4.3 / §7.5 scoring)?

    ``rule="iou"``: IoU >= ``iou_threshold``; ``rule="centre"``: the predicted box's centre
    ``((x1+x2)/2, (y1+y2)/2)`` lies in the ground-truth box, ``x1 <= cx < x2`` and ``y1 <= cy < y2`` (a
    pointing-game style test). A missing prediction (``None``) is a miss.
    """
    if rule not in ("iou", "centre"):
        raise ValueError(f"rule must be 'iou' or 'centre', got {rule!r}")
    if gt is None:
        raise ValueError("gt is None: only parts with a ground-truth box can be scored")
    if pred is None:
        return False
    if rule == "iou":
        return bool(box_iou(pred, gt)[0, 0] >= iou_threshold)
    p, g = _boxes(pred, "pred")[0], _boxes(gt, "gt")[0]
    cx, cy = (p[0] + p[2]) / 2.0, (p[1] + p[3]) / 2.0
    return bool(g[0] <= cx < g[2] and g[1] <= cy < g[3])


def part_hit_rate(predictions: Sequence[dict], ground_truths: Sequence[dict], parts: Sequence[str] = PART_NAMES,
                  rule: str = "iou", iou_threshold: float = 0.5,
                  gt_names: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """Hit rate and mean IoU of predicted part boxes (scoring the parts of §4.3 / §7.5 against ground truth).

    ``predictions``/``ground_truths``: one ``{part: box or None}`` dict per image. Only (image, part) pairs
    with a ground-truth box are scored; a missing prediction is a miss with IoU 0; predictions for parts
    that have no ground truth are ignored (counted as ``"extra"``). ``gt_names`` maps our part names to the
    ground truth's (e.g. :data:`SYNTH_PART_NAMES`). Returns ``{part: {"hit_rate", "mean_iou", "n",
    "extra"}, "overall": {...}}`` with ``"overall"`` pooled over all scored pairs (NaN rates where n = 0).
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground truths")
    names = gt_names or {}
    out: dict[str, dict[str, float]] = {}
    all_hits, all_ious, all_extra = [], [], 0
    for part in parts:
        hits, ious, extra = [], [], 0
        for pred, gt in zip(predictions, ground_truths):
            g, p = gt.get(names.get(part, part)), pred.get(part)
            if g is None:
                extra += p is not None
                continue
            hits.append(box_hit(p, g, rule, iou_threshold))
            ious.append(0.0 if p is None else float(box_iou(p, g)[0, 0]))
        out[part] = {"hit_rate": float(np.mean(hits)) if hits else float("nan"),
                     "mean_iou": float(np.mean(ious)) if ious else float("nan"), "n": len(hits), "extra": extra}
        all_hits += hits
        all_ious += ious
        all_extra += extra
    out["overall"] = {"hit_rate": float(np.mean(all_hits)) if all_hits else float("nan"),
                      "mean_iou": float(np.mean(all_ious)) if all_ious else float("nan"), "n": len(all_hits),
                      "extra": all_extra}
    return out


# ----------------------------------------------------------------------------------------------------------
# §7.5: the regression alternative
# ----------------------------------------------------------------------------------------------------------
class PartBoxOutput(NamedTuple):
    """:class:`PartBoxRegressor` output: ``boxes`` ``(B, P, 4)`` normalised ``[x1, y1, x2, y2]`` in [0, 1]
    with ``x1 <= x2``, ``y1 <= y2``; ``logits`` ``(B, P)`` presence logits (part visible or not)."""

    boxes: torch.Tensor
    logits: torch.Tensor


class PartBoxRegressor(nn.Module):
    """A tiny CNN that regresses the part boxes (§7.5: "a regression method which is trained from a small
    number of images"; Fig. 4: "a regression method can also be used ... for more challenging datasets").

    Four stride-2 3x3 conv + ReLU layers (``width``, 2·``width``, 4·``width``, 4·``width`` channels), global
    average pooling, one linear layer giving 4 box numbers and 1 presence logit per part. Boxes are
    parametrised so they stay valid: ``x1 = σ(a)``, ``x2 = x1 + (1 - x1) σ(b)`` (same for y), normalised by the
    image width/height. Any input size; ``n_parts`` defaults to the five :data:`PART_NAMES`.
    """

    def __init__(self, n_parts: int = len(PART_NAMES), width: int = 16, in_channels: int = 3):
        super().__init__()
        if n_parts < 1 or width < 1:
            raise ValueError(f"n_parts and width must be >= 1, got {n_parts}, {width}")
        self.n_parts = int(n_parts)
        chans = [in_channels, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], self.n_parts * 5)

    def forward(self, x: torch.Tensor) -> PartBoxOutput:
        if x.dim() != 4:
            raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
        h = self.features(x).mean(dim=(2, 3))
        out = self.head(h).reshape(x.shape[0], self.n_parts, 5)
        s = torch.sigmoid(out[..., :4])
        x1, y1 = s[..., 0], s[..., 1]
        x2, y2 = x1 + (1 - x1) * s[..., 2], y1 + (1 - y1) * s[..., 3]
        return PartBoxOutput(torch.stack([x1, y1, x2, y2], dim=-1), out[..., 4])


def part_box_loss(output: PartBoxOutput, target_boxes: torch.Tensor, present: torch.Tensor,
                  box_weight: float = 1.0) -> torch.Tensor:
    """Training loss of the §7.5 regressor: binary cross-entropy on presence + ``box_weight`` x smooth-L1
    between predicted and target normalised boxes, averaged over the present parts (0 if none).

    ``target_boxes``: ``(B, P, 4)`` normalised; ``present``: ``(B, P)`` 0/1 (see :func:`part_box_targets`).
    """
    boxes, logits = output
    if target_boxes.shape != boxes.shape or present.shape != logits.shape:
        raise ValueError(f"targets {tuple(target_boxes.shape)} / present {tuple(present.shape)} do not match "
                         f"the output {tuple(boxes.shape)} / {tuple(logits.shape)}")
    present = present.to(logits.dtype)
    cls = F.binary_cross_entropy_with_logits(logits, present)
    keep = present > 0.5
    if not keep.any():
        return cls
    reg = F.smooth_l1_loss(boxes[keep], target_boxes.to(boxes.dtype)[keep], beta=0.05)
    return cls + box_weight * reg


def _size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    w, h = image_size
    return int(w), int(h)


def part_box_targets(parts: Sequence[dict], image_size, names: Sequence[str] = PART_NAMES):
    """Targets for :func:`part_box_loss` (§7.5) from per-image ``{part: box or None}`` dicts (e.g. the
    output of :func:`extract_parts`, or ground truth renamed with :data:`SYNTH_PART_NAMES`).

    ``image_size``: ``S`` or ``(W, H)``. Returns ``(boxes (B, P, 4) float32 normalised by W/H, present (B, P)
    float32)``; absent parts get a zero box.
    """
    w, h = _size(image_size)
    boxes = torch.zeros(len(parts), len(names), 4)
    present = torch.zeros(len(parts), len(names))
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
    for i, d in enumerate(parts):
        for j, n in enumerate(names):
            b = d.get(n)
            if b is not None:
                boxes[i, j] = torch.as_tensor(b, dtype=torch.float32) / scale
                present[i, j] = 1.0
    return boxes, present


def decode_part_boxes(output: PartBoxOutput, image_size, names: Sequence[str] = PART_NAMES,
                      threshold: float = 0.5) -> list[dict[str, list[int] | None]]:
    """Regressor output -> one ``{part: pixel box or None}`` dict per image (§7.5), for :func:`part_hit_rate`.
    A part is kept when σ(logit) >= ``threshold``; boxes are rounded to integer pixels."""
    w, h = _size(image_size)
    boxes, logits = (t.detach().cpu() for t in output)
    if boxes.shape[1] != len(names):
        raise ValueError(f"{boxes.shape[1]} parts in the output but {len(names)} names")
    scale = torch.tensor([w, h, w, h], dtype=boxes.dtype)
    px = torch.round(boxes * scale).long().tolist()
    keep = (torch.sigmoid(logits) >= threshold).tolist()
    return [{n: (px[i][j] if keep[i][j] else None) for j, n in enumerate(names)} for i in range(len(px))]
