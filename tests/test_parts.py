"""Tests of fashionlab.parts: part extraction by jump detection (paper 04, §4.3, Fig. 4) and the §7.5 regressor.

Oracles: silhouettes built by hand with numpy (a T-shirt with short, hanging or slanted sleeves, a tank top,
a stand collar, a skirt, trousers) whose jump rows and part boxes are known from the construction; morphology
and hole filling against plain per-pixel loops; part IoUs against the plain numpy formula (the box IoU itself is
tested in ``tests/test_hls_metrics.py``)."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from fashionlab.parts import (
    PART_NAMES,
    PartBoxOutput,
    PartBoxRegressor,
    box_hit,
    clean_mask,
    closing,
    decode_part_boxes,
    dilate,
    erode,
    extract_parts,
    extract_parts_batch,
    extraction_steps,
    fill_holes,
    find_steps,
    mask_box,
    opening,
    part_box_loss,
    part_box_targets,
    part_hit_rate,
    parts_from_mask,
    segment_foreground,
    silhouette_profiles,
)

pytestmark = pytest.mark.usefixtures("one_thread")

S = 96  # canvas side


# ------------------------------------------------------------------------------------------- builders
def _canvas() -> np.ndarray:
    return np.zeros((S, S), dtype=bool)


def _render(mask, colour=(40, 80, 160), bg=(250, 250, 248), noise=3.0, seed=0) -> np.ndarray:
    """uint8 image: the garment in one colour on a plain light background, with Gaussian pixel noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((S, S, 3))
    img[:] = bg
    img[mask] = colour
    img += rng.normal(0.0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _tshirt() -> np.ndarray:
    """Torso [30, 66) x [20, 85), short sleeves sticking out sideways [14, 30) and [66, 82) x [20, 38), a
    neckline cut [42, 54) x [20, 26)."""
    m = _canvas()
    m[20:85, 30:66] = True
    m[20:38, 14:30] = True
    m[20:38, 66:82] = True
    m[20:26, 42:54] = False
    return m


def _hanging_sleeves() -> np.ndarray:
    """Long sleeves hanging beside the torso: shoulder blocks down to row 32, then an 8 px gap to the torso."""
    m = _canvas()
    m[20:85, 30:66] = True
    m[20:70, 10:22] = True
    m[20:32, 22:30] = True
    m[20:70, 74:86] = True
    m[20:32, 66:74] = True
    return m


def _slanted_sleeves() -> np.ndarray:
    """Torso [34, 62) x [20, 90); the left sleeve runs down-left at 45 degrees: at row y its columns are
    ``[max(20, 54 - y), min(34, 70 - y))``, attached to the torso down to row 36 (armpit: row 37). The right
    sleeve is the mirror image."""
    m = _canvas()
    m[20:90, 34:62] = True
    y, x = np.mgrid[0:S, 0:S]
    left = (x >= 20) & (x < 34) & (y >= 54 - x) & (y < 70 - x)
    return m | left | left[:, ::-1]


def _tank_top() -> np.ndarray:
    """Torso [30, 66) x [30, 85) and two straps [33, 39) and [57, 63) x [18, 30)."""
    m = _canvas()
    m[30:85, 30:66] = True
    m[18:30, 33:39] = True
    m[18:30, 57:63] = True
    return m


def _stand_collar() -> np.ndarray:
    """T-shirt (torso from row 26) with a collar [40, 56) x [20, 26) standing above the shoulders."""
    m = _canvas()
    m[26:85, 30:66] = True
    m[26:44, 14:30] = True
    m[26:44, 66:82] = True
    m[20:26, 40:56] = True
    return m


def _skirt() -> np.ndarray:
    """A trapezoid: rows [20, 80), half width growing from 15 to 28 around column 48."""
    m = _canvas()
    for y in range(20, 80):
        hw = 15 + (y - 20) * 13 / 59
        m[y, int(round(48 - hw)):int(round(48 + hw))] = True
    return m


def _trousers() -> np.ndarray:
    m = _canvas()
    m[20:35, 30:66] = True
    m[35:90, 30:46] = True
    m[35:90, 50:66] = True
    return m


# ------------------------------------------------------------------------------------------- oracles
def _morph_loop(mask: np.ndarray, size: int, op) -> np.ndarray:
    """Dilation (op=max) / erosion (op=min) by a per-pixel loop over the window clipped at the border."""
    H, W = mask.shape
    r = size // 2
    out = np.zeros_like(mask)
    for i in range(H):
        for j in range(W):
            win = mask[max(0, i - r):min(H, i + r + 1), max(0, j - r):min(W, j + r + 1)]
            out[i, j] = op(win)
    return out


def _fill_holes_bfs(mask: np.ndarray) -> np.ndarray:
    """Background reachable from the border by 8-connected steps stays background; the rest is filled."""
    H, W = mask.shape
    seen = np.zeros_like(mask)
    q = deque((i, j) for i in range(H) for j in range(W)
              if (i in (0, H - 1) or j in (0, W - 1)) and not mask[i, j])
    for i, j in q:
        seen[i, j] = True
    while q:
        i, j = q.popleft()
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if 0 <= a < H and 0 <= b < W and not mask[a, b] and not seen[a, b]:
                    seen[a, b] = True
                    q.append((a, b))
    return ~seen


# ------------------------------------------------------------------------------------------- morphology
@pytest.mark.parametrize("size", [1, 3, 5])
def test_dilate_erode_match_the_loop_oracle(size):
    rng = np.random.default_rng(size)
    for trial in range(3):
        m = rng.random((11, 14)) < (0.3 + 0.2 * trial)
        assert np.array_equal(dilate(m, size), _morph_loop(m, size, np.max))
        assert np.array_equal(erode(m, size), _morph_loop(m, size, np.min))
        # torch in -> torch out, batches work, same values
        t = torch.from_numpy(np.stack([m, ~m]))
        d = dilate(t, size)
        assert isinstance(d, torch.Tensor) and d.dtype == torch.bool
        assert np.array_equal(d[1].numpy(), _morph_loop(~m, size, np.max))


def test_opening_closing_are_compositions_and_keep_rectangles():
    rng = np.random.default_rng(1)
    m = rng.random((12, 12)) < 0.5
    assert np.array_equal(opening(m, 3), _morph_loop(_morph_loop(m, 3, np.min), 3, np.max))
    assert np.array_equal(closing(m, 5), _morph_loop(_morph_loop(m, 5, np.max), 5, np.min))
    t = _tshirt()  # a union of rectangles at least 5 px wide survives both, even at concave corners
    assert np.array_equal(opening(t, 3), t) and np.array_equal(closing(t, 5), t)


def test_fill_holes_matches_flood_fill():
    rng = np.random.default_rng(2)
    for p in (0.3, 0.5, 0.7):
        m = rng.random((13, 17)) < p
        assert np.array_equal(fill_holes(m), _fill_holes_bfs(m))
    ring = _canvas()
    ring[10:30, 10:30] = True
    ring[15:25, 15:25] = False
    assert fill_holes(ring)[10:30, 10:30].all()


def test_clean_mask_removes_specks_and_fills_a_logo():
    m = _tshirt()
    noisy = m.copy()
    noisy[5, 5] = noisy[90, 7] = noisy[50, 90] = True      # specks in the background
    noisy[60, 33] = noisy[70, 60] = False                   # pin holes in the garment
    noisy[50:56, 45:51] = False                             # a 6x6 light print: too big for the closing
    assert not closing(noisy, 5)[52, 47]
    assert np.array_equal(clean_mask(noisy), m)


@pytest.mark.parametrize("bad", [0, 2, 4, 2.5])
def test_structuring_element_size_must_be_odd_positive(bad):
    with pytest.raises(ValueError, match="odd integer"):
        dilate(_tshirt(), bad)


# ------------------------------------------------------------------------------------------- segmentation
def test_segment_foreground_finds_the_garment_and_background():
    m = _tshirt()
    img = _render(m, noise=0.0)
    mask, dist, bg = segment_foreground(img)
    assert np.allclose(bg * 255, (250, 250, 248), atol=0.5)
    assert np.array_equal(mask, m)
    assert dist.shape == (S, S) and 0 <= dist.min() and dist.max() <= 1
    # float images in [0, 1] and channel-first tensors give the same mask
    assert np.array_equal(segment_foreground(img / 255.0)[0], m)
    assert np.array_equal(segment_foreground(torch.from_numpy(img).permute(2, 0, 1))[0], m)


def test_profiles_by_hand():
    m = np.zeros((6, 9), dtype=bool)
    m[1, 3:6] = True            # collar row
    m[2:5, 1:8] = True          # body
    m[3, 2] = False             # not in the centre run? (it is: centre column 4; run 3..7)
    m[4, 2:4] = False           # breaks the run left of the centre: run 4..7
    p = silhouette_profiles(m)
    assert p["box"] == [1, 1, 8, 5] and p["centre"] == 4
    assert np.isnan(p["left"][0]) and p["left"][1] == 3 and p["right"][1] == 5 and p["width"][1] == 3
    assert p["width"][0] == 0 and p["width"][2] == 7
    assert p["torso_left"][3] == 3 and p["torso_left"][4] == 4 and p["torso_right"][4] == 7
    assert p["top"][1] == 2 and p["top"][4] == 1 and np.isnan(p["top"][0])


def test_find_steps():
    s = [10, 10, 14, 15, np.nan, 30, 22, 27]
    assert find_steps(s, 3).tolist() == [2, 7]
    assert find_steps(-np.asarray(s, float), 3).tolist() == [6]
    with pytest.raises(ValueError):
        find_steps(s, 0)


def test_mask_box():
    assert mask_box(_tshirt()) == [14, 20, 82, 85]
    assert mask_box(_canvas()) is None


# ------------------------------------------------------------------------------------------- part extraction
def _noisy_tshirt_image():
    m = _tshirt()
    img = _render(m, seed=3).astype(np.int16)
    img[5, 5] = img[88, 10] = (30, 30, 30)                  # dark specks on the background
    img[50:56, 45:51] = (250, 250, 248)                     # a white print on the shirt
    return np.clip(img, 0, 255).astype(np.uint8)


def test_tshirt_short_sleeves_jump_row_and_boxes():
    r = extract_parts(_noisy_tshirt_image())
    assert r.case == "sleeved" and r.garment_box == [14, 20, 82, 85]
    assert r.jumps["left"] == (30, 38) and r.jumps["right"] == (65, 38)   # armpit: first torso-only row
    assert r.jumps["left_first"] == 38 and r.jumps["neck_kind"] == "neckline"
    assert r.parts["torso"] == [30, 20, 66, 85]
    assert r.parts["left_sleeve"] == [14, 20, 30, 38]
    assert r.parts["right_sleeve"] == [66, 20, 82, 38]
    # collar: the neckline columns, from the top down to the neckline bottom (row 25) + round(0.05 * 65) + 1
    assert (r.jumps["neck_left"], r.jumps["neck_right"]) == (42, 54)
    assert r.parts["collar"] == [42, 20, 54, 29]
    # fastening: 20 % of the torso width (7 px), centred on the torso centre (48), full torso height
    fx1, fy1, fx2, fy2 = r.parts["fastening"]
    assert fx2 - fx1 == 7 and abs((fx1 + fx2) / 2 - 48) <= 0.5 and (fy1, fy2) == (20, 85)


def test_hanging_sleeves_jump_where_the_gap_opens():
    r = parts_from_mask(_hanging_sleeves())
    assert r.case == "sleeved"
    assert r.jumps["left"] == (30, 32) and r.jumps["right"] == (65, 32)
    assert r.parts["left_sleeve"] == [10, 20, 30, 70]
    assert r.parts["right_sleeve"] == [66, 20, 86, 70]
    assert r.parts["torso"] == [30, 20, 66, 85]


def test_slanted_sleeves_armpit_from_the_construction():
    m = _slanted_sleeves()
    # construction: column 33 (next to the torso) is sleeve for rows 21..36, so the armpit row is 37
    assert m[36, 33] and not m[37, 33]
    img = _render(m, seed=4)
    exact = extract_parts(img, close_size=1, open_size=1)   # no closing: the wedge below the armpit stays open
    assert exact.jumps["left"] == (34, 37) and exact.jumps["right"] == (61, 37)
    r = extract_parts(img)                             # the 5x5 closing fills the tip of the 45-degree wedge,
    assert r.case == "sleeved"                         # which moves the armpit down by at most 4 rows
    (xl, yl), (xr, yr) = r.jumps["left"], r.jumps["right"]
    assert 37 <= yl <= 41 and 37 <= yr <= 41 and xl == 34 and xr == 61
    assert exact.parts["left_sleeve"] == [20, 21, 34, 50] and exact.parts["right_sleeve"] == [62, 21, 76, 50]
    # the opening trims the 1-2 px wide tip of each cuff
    assert np.abs(np.subtract(r.parts["left_sleeve"], [20, 21, 34, 50])).max() <= 2
    assert np.abs(np.subtract(r.parts["right_sleeve"], [62, 21, 76, 50])).max() <= 2
    assert r.parts["torso"] == [34, 20, 62, 90]


def test_tank_top_is_sleeveless_with_a_neckline_between_the_straps():
    r = extract_parts(_render(_tank_top(), colour=(160, 40, 40), seed=5))
    assert r.case == "sleeveless"
    assert r.parts["left_sleeve"] is None and r.parts["right_sleeve"] is None
    assert r.parts["torso"] == [30, 18, 66, 85] == r.garment_box
    assert r.parts["collar"] == [39, 18, 57, 33]   # between the straps; bottom: row 30 + round(0.05 * 67)
    assert r.parts["fastening"][1:4:2] == [18, 85]


def test_stand_collar_above_the_shoulders():
    r = parts_from_mask(_stand_collar())
    assert r.case == "sleeved" and r.jumps["neck_kind"] == "collar"
    assert r.parts["collar"] == [40, 20, 56, 29]   # shoulder level 26 + round(0.05 * 65)
    assert r.jumps["left"] == (30, 44)


def test_flat_top_uses_the_static_pose_estimate():
    m = _canvas()
    m[20:85, 30:66] = True
    assert parts_from_mask(m).case == "lower"        # a solid wide top: the top band rule says lower body
    r = parts_from_mask(m, body="upper")
    assert r.case == "sleeveless" and r.jumps["neck_kind"] == "estimate"
    assert r.parts["collar"] == [42, 20, 54, 30]      # middle third, 0.15 * 65 deep


@pytest.mark.parametrize("build", [_skirt, _trousers])
def test_lower_body_gives_only_the_garment_box(build):
    m = build()
    r = extract_parts(_render(m, colour=(10, 120, 40), seed=6))
    assert r.case == "lower"
    assert r.parts["torso"] == r.garment_box == mask_box(m)
    assert all(r.parts[p] is None for p in PART_NAMES if p != "torso")


def test_body_overrides_the_silhouette_rule():
    assert parts_from_mask(_skirt(), body="upper").case == "sleeveless"
    assert parts_from_mask(_tank_top(), body="lower").case == "lower"
    assert parts_from_mask(_tshirt(), body="lower").case == "lower"
    assert parts_from_mask(_tshirt(), body="upper").case == "sleeved"
    with pytest.raises(ValueError, match="body"):
        parts_from_mask(_tshirt(), body="top")


def test_empty_image():
    r = extract_parts(_render(_canvas(), seed=7))
    assert r.case == "empty" and r.garment_box is None and all(v is None for v in r.parts.values())


def test_extraction_steps_hold_every_stage():
    img = _noisy_tshirt_image()
    st = extraction_steps(img)
    for key in ("image", "background", "distance", "mask_raw", "mask_closed", "mask_filled", "mask_clean",
                "left", "right", "width", "torso_left", "torso_right", "top", "case", "parts", "jumps"):
        assert key in st, key
    assert st["mask_raw"].shape == (S, S) and st["image"].shape == (S, S, 3)
    assert np.array_equal(st["mask_clean"], clean_mask(segment_foreground(img)[0]))
    assert st["width"][30] == 82 - 14 and st["width"][60] == 36
    assert st["parts"] == extract_parts(img).parts


def test_batch_matches_single_images():
    imgs = [_noisy_tshirt_image(), _render(_tank_top(), seed=8), _render(_skirt(), seed=9)]
    batch = extract_parts_batch(np.stack(imgs))
    assert [r.case for r in batch] == ["sleeved", "sleeveless", "lower"]
    for r, img in zip(batch, imgs):
        assert r.parts == extract_parts(img).parts
    tensor_batch = extract_parts_batch(torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2), body=[None, "lower", None])
    assert [r.case for r in tensor_batch] == ["sleeved", "lower", "lower"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="one image"):
        extract_parts(np.zeros((2, S, S, 3), np.uint8))
    with pytest.raises(ValueError):
        segment_foreground(np.zeros((2, 2, 2, 2, 3)))
    with pytest.raises(ValueError, match="border"):
        segment_foreground(np.zeros((4, 4, 3)), border=2)
    with pytest.raises(ValueError, match="colour channels"):
        segment_foreground(torch.zeros(S, S, 3))              # a channel-last tensor
    with pytest.raises(ValueError, match="uint8 or floating"):
        segment_foreground(np.zeros((S, S, 3), np.int32))


# ------------------------------------------------------------------------------------------- scoring
def _numpy_iou(a, b) -> float:
    """IoU of two boxes in plain float64 numpy (the formula parts.py used before it took metrics.box_iou)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ix = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    iy = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = ix * iy
    union = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0) + max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0) - inter
    return inter / union if union > 0 else 0.0


def test_part_ious_are_float64_and_equal_the_numpy_formula():
    # part_hit_rate's mean IoU goes through fashionlab.metrics.box_iou; its values must stay the float64 ones
    rng = np.random.default_rng(10)
    lo = rng.integers(0, 50, (40, 2, 2))
    hi = lo + rng.integers(0, 30, (40, 2, 2))          # width or height 0 sometimes: degenerate boxes
    boxes = np.concatenate([lo, hi], axis=2)            # (40, 2, 4): a prediction and a ground truth
    for p, g in boxes:
        r = part_hit_rate([{"torso": p.tolist()}], [{"torso": g}], parts=("torso",))
        assert r["torso"]["mean_iou"] == _numpy_iou(p, g)  # exact
        assert box_hit(p, g) == (_numpy_iou(p, g) >= 0.5)
    assert part_hit_rate([{"torso": [3, 3, 3, 9]}], [{"torso": [3, 3, 3, 9]}], parts=("torso",))[
        "torso"]["mean_iou"] == 0.0                        # degenerate: 0, not NaN


def test_box_hit_rules():
    gt = [10, 10, 20, 20]
    assert box_hit([10, 10, 20, 21], gt) and not box_hit([15, 10, 30, 20], gt)        # IoU 10/11 vs 5/20
    assert box_hit([15, 10, 30, 20], gt, rule="centre") is False                       # centre x 22.5
    assert box_hit([12, 12, 26, 14], gt, rule="centre") is True                        # centre (19, 13)
    assert box_hit([20, 10, 20, 20], gt, rule="centre") is False                       # x = 20 is outside
    assert box_hit(None, gt) is False
    with pytest.raises(ValueError):
        box_hit(gt, gt, rule="pointing")


def test_part_hit_rate_by_hand():
    preds = [{"torso": [0, 0, 10, 10], "collar": [0, 0, 2, 2], "left_sleeve": [0, 0, 1, 1]},
             {"torso": [0, 0, 10, 5], "collar": None}]
    gts = [{"torso": [0, 0, 10, 10], "neck_detail": [0, 0, 2, 4], "left_sleeve": None},
           {"torso": [0, 0, 10, 10], "neck_detail": [5, 5, 6, 6]}]
    r = part_hit_rate(preds, gts, parts=("torso", "collar", "left_sleeve"), gt_names={"collar": "neck_detail"})
    assert r["torso"] == {"hit_rate": 1.0, "mean_iou": 0.75, "n": 2, "extra": 0}
    assert r["collar"]["hit_rate"] == 0.5 and r["collar"]["mean_iou"] == 0.25 and r["collar"]["n"] == 2
    assert r["left_sleeve"]["n"] == 0 and np.isnan(r["left_sleeve"]["hit_rate"]) and r["left_sleeve"]["extra"] == 1
    assert r["overall"]["hit_rate"] == 0.75 and r["overall"]["n"] == 4 and r["overall"]["extra"] == 1


# ------------------------------------------------------------------------------------------- §7.5 regressor
def test_regressor_output_shapes_and_valid_boxes():
    torch.manual_seed(0)
    net = PartBoxRegressor()
    out = net(torch.randn(3, 3, 64, 48))
    assert out.boxes.shape == (3, 5, 4) and out.logits.shape == (3, 5)
    b = out.boxes
    assert (b >= 0).all() and (b <= 1).all() and (b[..., 2] >= b[..., 0]).all() and (b[..., 3] >= b[..., 1]).all()
    with pytest.raises(ValueError):
        net(torch.randn(3, 64, 64))


def test_regressor_loss_decreases_on_one_batch():
    torch.manual_seed(0)
    parts = [extract_parts(_render(m, seed=i)).parts for i, m in enumerate([_tshirt(), _tank_top(), _skirt(),
                                                                            _hanging_sleeves()])]
    targets, present = part_box_targets(parts, S)
    assert present.tolist()[2] == [1, 0, 0, 0, 0] and present.tolist()[0] == [1] * 5
    assert torch.allclose(targets[0, 0], torch.tensor([30, 20, 66, 85]) / S)
    x = torch.rand(4, 3, 48, 48)
    net = PartBoxRegressor(width=8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = part_box_loss(net(x), targets, present).item()
    for _ in range(25):
        opt.zero_grad()
        loss = part_box_loss(net(x), targets, present)
        loss.backward()
        opt.step()
    assert loss.item() < 0.75 * first
    with pytest.raises(ValueError):
        part_box_loss(net(x), targets[:, :3], present)


def test_targets_and_decoding_round_trip():
    parts = [{"torso": [30, 20, 66, 85], "collar": None}]
    t, p = part_box_targets(parts, (96, 100), names=("torso", "collar"))
    logits = torch.tensor([[5.0, -5.0]])
    dec = decode_part_boxes(PartBoxOutput(t, logits), (96, 100), names=("torso", "collar"))
    assert dec == [{"torso": [30, 20, 66, 85], "collar": None}]
