"""FashionSynth: garments, rendering and the FashionAI / ASEN dataset writer (fashionlab.synth)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fashionlab.synth import (ATTRIBUTES, PRESETS, GarmentSpec, RenderConfig, allowed_values,
                              applicable_categories, ensure_fashionai, generate_fashionai, load_ground_truth,
                              plan_splits, render, sample_garment, set_value)
from fashionlab.synth.garments import DETAIL_ATTRIBUTES, LENGTH_ATTRIBUTES, NUM_VALUES
from fashionlab.taxonomy import FASHIONAI

# the format tests write tiny datasets on purpose; their "no query for ..." warning is tested on its own below
pytestmark = pytest.mark.filterwarnings("ignore:FashionSynth. with .* images the")

WILD = PRESETS["wild"]
N_CELLS = sum(FASHIONAI.num_values)  # 54 (attribute, value) pairs


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "fa"
    generate_fashionai(out, 300, seed=3, image_size=64, progress=False)
    return out


def _read_items(path: Path) -> np.ndarray:
    rows = [list(map(int, line.split())) for line in path.read_text().splitlines() if line.strip()]
    return np.array(rows, dtype=int).reshape(-1, 3)


# ------------------------------------------------------------------------------------------ garments

def test_forced_values_and_invisible():
    rng = np.random.default_rng(0)
    for a in ATTRIBUTES:
        for v in range(NUM_VALUES[a]):
            for _ in range(3):
                spec = sample_garment(rng, attribute=a, value=v)
                assert spec.value(a) == v
                assert spec.category in applicable_categories(a, v)
    # value 0 means Invisible: a category without the dimension, or another neck family
    for _ in range(50):
        s = sample_garment(rng, attribute="lapel_design", value=0)
        assert s.value("lapel_design") == 0
        s = sample_garment(rng, attribute="sleeve_length", value=0)
        assert s.category in ("skirt", "pants")
    with pytest.raises(ValueError, match="not possible on a dress"):
        sample_garment(rng, category="dress", attribute="lapel_design", value=1)
    with pytest.raises(KeyError, match="unknown attribute"):
        sample_garment(rng, attribute="heel_height", value=1)


def test_spec_consistency_rules():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        s = sample_garment(rng)
        fams = [a for a in DETAIL_ATTRIBUTES if s.value(a)]
        assert len(fams) == (0 if s.body == "lower" else 1)
        for a in ATTRIBUTES:
            if s.value(a):
                assert s.value(a) in allowed_values(s.category, a)
        nl, sl = s.value("neckline_design"), s.value("sleeve_length")
        if nl in (1, 9):  # strapless, one shoulder
            assert sl == 1
        if nl == 6:  # off shoulder
            assert sl >= 3
    with pytest.raises(ValueError, match="exactly one"):
        GarmentSpec("top", (0, 3, 2, 0, 1, 0, 4, 0))
    with pytest.raises(ValueError, match="has no pant_length"):
        GarmentSpec("skirt", (2, 0, 0, 3, 0, 0, 0, 0))
    spec = sample_garment(np.random.default_rng(2), category="dress", attribute="neckline_design", value=4)
    s2 = set_value(spec, "neckline_design", 1)  # strapless makes it sleeveless
    assert s2.value("sleeve_length") == 1
    s3 = set_value(spec, "collar_design", 2)  # switching family hides the neckline
    assert s3.value("neckline_design") == 0 and s3.value("collar_design") == 2
    with pytest.raises(ValueError):
        set_value(spec, "lapel_design", 1)
    with pytest.raises(ValueError):
        set_value(spec, "neckline_design", 0)


def test_appearance_is_independent_of_attributes():
    # by construction: the appearance stream is seeded by the first draw, whatever value is forced
    for seed in range(20):
        looks = {(s.colour, s.colour2, s.pattern, s.pattern_params, s.skin)
                 for v in range(NUM_VALUES["neckline_design"])
                 for s in [sample_garment(np.random.default_rng(seed), attribute="neckline_design", value=v)]}
        assert len(looks) == 1
    # and statistically: chi-square of colour (and pattern) against every attribute's value
    rng = np.random.default_rng(3)
    specs = []
    for i in range(4000):
        a = ATTRIBUTES[i % len(ATTRIBUTES)]
        specs.append(sample_garment(rng, attribute=a, value=int(rng.integers(NUM_VALUES[a]))))
    colours = sorted({s.colour for s in specs})
    patterns = sorted({s.pattern for s in specs})
    for a in ATTRIBUTES:
        vals = np.array([s.value(a) for s in specs])
        for names, key in ((colours, "colour"), (patterns, "pattern")):
            idx = np.array([names.index(getattr(s, key)) for s in specs])
            table = np.zeros((NUM_VALUES[a], len(names)))
            np.add.at(table, (vals, idx), 1)
            table = table[table.sum(1) > 0]
            expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
            chi2 = ((table - expected) ** 2 / expected).sum()
            df = (table.shape[0] - 1) * (table.shape[1] - 1)
            assert chi2 < df + 5 * np.sqrt(2 * df), (a, key, chi2, df)


# ----------------------------------------------------------------------------------------- rendering

def test_render_types_and_determinism():
    spec = sample_garment(np.random.default_rng(4))
    a, gt = render(spec, WILD, np.random.default_rng(5))
    b, _ = render(spec, WILD, np.random.default_rng(5))
    c, _ = render(spec, WILD, np.random.default_rng(6))
    assert a.dtype == np.uint8 and a.shape == (128, 128, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    im, _ = render(spec, replace(WILD, image_size=224), 5, as_pil=True)
    assert im.size == (224, 224) and im.mode == "RGB"
    assert set(gt["values"]) == set(ATTRIBUTES)
    json.dumps(gt)  # plain JSON types


@pytest.mark.parametrize("size", [64, 128])
def test_every_value_differs_only_in_its_region(size):
    """Render one garment with one attribute changed: the pixels change, and only inside the region boxes."""
    cfg = replace(WILD, image_size=size)
    for seed in range(3):
        for a in ATTRIBUTES:
            base = sample_garment(np.random.default_rng([seed, 1]), attribute=a, value=1)
            res = []
            for v in range(1, NUM_VALUES[a]):
                if v not in allowed_values(base.category, a):
                    continue
                spec = set_value(base, a, v)
                img, gt = render(spec, cfg, np.random.default_rng([seed, 2]))
                res.append((spec, img, gt))
            for i in range(len(res)):
                for j in range(i + 1, len(res)):
                    (s1, im1, g1), (s2, im2, g2) = res[i], res[j]
                    diff = (im1 != im2).any(axis=2)
                    assert diff.sum() >= 3, (size, seed, a, s1.value(a), s2.value(a))
                    allowed = np.zeros_like(diff)
                    for k, att in enumerate(ATTRIBUTES):
                        if s1.values[k] == s2.values[k]:
                            continue
                        boxes = [b for b in (g1["regions"][att], g2["regions"][att]) if b]
                        x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
                        x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
                        if att in LENGTH_ATTRIBUTES:  # between the two hems, anywhere across the garment
                            gb = [g1["garment_box"], g2["garment_box"]]
                            x1, x2 = min([x1] + [b[0] for b in gb]), max([x2] + [b[2] for b in gb])
                        allowed[y1:y2, x1:x2] = True
                    outside = diff & ~allowed
                    assert not outside.any(), (size, seed, a, s1.value(a), s2.value(a), np.argwhere(outside)[:3])


def test_boxes_inside_image_and_details_small():
    S = 128
    areas = {a: [] for a in ATTRIBUTES}
    for i in range(400):
        rng = np.random.default_rng([9, i])
        spec = sample_garment(rng)
        img, gt = render(spec, WILD, rng)
        boxes = [gt["garment_box"]] + [b for b in gt["regions"].values() if b] + [b for b in gt["parts"].values() if b]
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 < x2 <= S and 0 <= y1 < y2 <= S
        for a in ATTRIBUTES:
            assert (gt["regions"][a] is None) == (gt["values"][a] == 0)
            if gt["regions"][a]:
                x1, y1, x2, y2 = gt["regions"][a]
                areas[a].append((x2 - x1) * (y2 - y1) / S / S)
        # the garment box is the garment: its border rows/columns hold garment pixels, outside is scene
        x1, y1, x2, y2 = gt["garment_box"]
        assert x2 - x1 >= 8 and y2 - y1 >= 8
    # details are small on average; the largest are strapless / off-shoulder necklines, which span the shoulders
    for a in DETAIL_ATTRIBUTES:
        assert np.mean(areas[a]) < 0.04 and np.max(areas[a]) < 0.12, (a, np.mean(areas[a]), np.max(areas[a]))


def test_lengths_are_monotone_and_bands_do_not_overlap():
    cfg = replace(PRESETS["clean"], length_jitter=1.0)
    for a, cat in (("coat_length", "coat"), ("skirt_length", "skirt"), ("pant_length", "pants"),
                   ("skirt_length", "dress"), ("sleeve_length", "top")):
        base = sample_garment(np.random.default_rng(11), category=cat, attribute=a, value=3)
        k = ATTRIBUTES.index(a)
        ends = []
        for v in allowed_values(cat, a):
            if a == "sleeve_length" and v == 1:
                continue  # sleeveless: no sleeve end
            lo_hi = []
            for j in (-1.0, 1.0):  # the extremes of the value's band
                jit = list(base.jitter)
                jit[k] = j
                spec = replace(set_value(base, a, v), jitter=tuple(jit))
                _, gt = render(spec, cfg, 0)
                lo_hi.append(gt["parts"]["right_sleeve"][3] if a == "sleeve_length" else gt["garment_box"][3])
            ends.append(lo_hi)
        for (lo1, hi1), (lo2, hi2) in zip(ends, ends[1:]):
            assert lo1 <= hi1 <= lo2 <= hi2, (a, cat, ends)
        assert ends[0][1] < ends[-1][0]


def test_preview_grid():
    from fashionlab.synth.preview import value_grid, value_row

    cfg = replace(WILD, image_size=40)
    grid, gts = value_grid(["coat_length", "neck_design"], config=cfg, seed=1)
    assert grid.shape == (2 * 42 - 2, 8 * 42 - 2, 3) and grid.dtype == np.uint8
    assert [g["values"]["coat_length"] for g in gts[0]] == list(range(8))
    assert [g["values"]["coat_length"] for _, g in value_row("coat_length", cfg, category="top", invisible=False)] == \
        [1, 2, 3, 4, 5]


def test_config_validation():
    with pytest.raises(ValueError):
        RenderConfig(scale=(0.2, 0.1))
    with pytest.raises(ValueError):
        RenderConfig(position="left")
    assert RenderConfig.from_dict(WILD.to_dict()) == WILD


def test_render_speed():
    specs = [(sample_garment(np.random.default_rng([0, i])), np.random.default_rng([1, i])) for i in range(300)]
    import time

    t0 = time.perf_counter()
    for spec, rng in specs:
        render(spec, WILD, rng)
    rate = len(specs) / (time.perf_counter() - t0)
    assert rate > 200, f"{rate:.0f} images/s at 128 px"  # about 1,500/s on one core; lenient for slow CI


# ------------------------------------------------------------------------------------- dataset writer

def test_plan_covers_every_value():
    for n in (300, 2000):
        plan = plan_splits(n, seed=0)
        assert [p["index"] for p in plan] == list(range(n))
        for split in ("train", "valid", "test"):
            roles = ("train",) if split == "train" else ("candidate",)
            cells = {(p["attribute"], p["value"]) for p in plan if p["split"] == split and p["role"] in roles}
            assert len(cells) == N_CELLS, (n, split)
    plan = plan_splits(20000, seed=0)
    sizes = {s: sum(p["split"] == s for p in plan) for s in ("train", "valid", "test")}
    assert sizes == {"train": 16000, "valid": 2000, "test": 2000}
    q = sum(p["role"] == "query" for p in plan if p["split"] == "test")
    assert q == 400
    # values balanced within an attribute, Invisible rarer; every value several times in each split
    for split in ("train", "test"):
        for a in ATTRIBUTES:
            counts = np.bincount([p["value"] for p in plan if p["split"] == split and p["attribute"] == a],
                                 minlength=NUM_VALUES[a])
            assert counts.min() >= 5 and counts[1:].max() - counts[1:].min() <= 1 and counts[0] < counts[1]


def test_split_files_consistent(tiny):
    root = tiny
    meta = json.loads((root / "meta.json").read_text())
    assert set(meta) == {"ATTRIBUTES", "ATTRIBUTES_NUM", "ATTRIBUTES_VALUES"}
    assert meta["ATTRIBUTES"] == list(FASHIONAI.attributes)
    gts = load_ground_truth(root)
    assert len(gts) == 300
    by_file = {g["filename"]: g for g in gts}
    label_rows = (root / "Annotations" / "label.csv").read_text().splitlines()
    assert len(label_rows) == 300
    labels = {}
    for row in label_rows:
        path, task, chars = row.split(",")
        attr = task[: -len("_labels")]
        assert path.startswith(f"Images/{task}/") and path.endswith(".jpg")
        assert len(path.split("/")[-1]) == 32 + 4
        assert len(chars) == NUM_VALUES[attr] and chars.count("y") == 1 and set(chars) <= set("ynm")
        labels[path] = (attr, chars.index("y"))
        assert (root / path).is_file()
    seen = set()
    for split in ("train", "valid", "test"):
        files = (root / f"filenames_{split}.txt").read_text().splitlines()
        assert not (seen & set(files))
        seen |= set(files)
        if split == "train":
            groups = {"train": _read_items(root / "label_train.txt")}
        else:
            groups = {r: _read_items(root / f"{r}_{split}.txt") for r in ("query", "candidate")}
            assert not set(groups["query"][:, 0]) & set(groups["candidate"][:, 0])
        ids = np.concatenate([g[:, 0] for g in groups.values()])
        assert sorted(ids.tolist()) == list(range(len(files)))  # one annotation per image
        for role, items in groups.items():
            for i, ai, v in items:
                path = files[i]
                attr = FASHIONAI.attributes[ai]
                assert f"/{attr}_labels/" in path and labels[path] == (attr, v)
                g = by_file[path]
                assert (g["split"], g["id"], g["role"], g["attribute"], g["value"]) == (split, i, role, attr, v)
                assert g["values"][attr] == v  # the annotated value is the garment's value
        if split != "train":
            assert 0.1 < len(groups["query"]) / len(files) < 0.3
    assert len(seen) == 300
    synth = json.loads((root / "synth.json").read_text())
    assert synth["generator"] == "FashionSynth" and synth["seed"] == 3 and synth["num_images"] == 300


def test_every_value_in_train_and_candidates(tiny):
    train = _read_items(tiny / "label_train.txt")
    assert len({(a, v) for _, a, v in train}) == N_CELLS
    for split in ("valid", "test"):
        cand = _read_items(tiny / f"candidate_{split}.txt")
        assert len({(a, v) for _, a, v in cand}) == N_CELLS


def test_same_seed_same_bytes(tiny, tmp_path):
    again = tmp_path / "again"
    generate_fashionai(again, 300, seed=3, image_size=64, progress=False)
    assert _digest(again) == _digest(tiny)
    other = tmp_path / "other"
    generate_fashionai(other, 300, seed=4, image_size=64, progress=False)
    d_other = _digest(other)
    assert d_other["meta.json"] == _digest(tiny)["meta.json"]
    assert d_other["Annotations/label.csv"] != _digest(tiny)["Annotations/label.csv"]
    imgs = [k for k in d_other if k.startswith("Images/")]
    assert len(imgs) == 300 and not set(imgs) & set(_digest(tiny))


def test_workers_give_the_same_files(tiny, tmp_path):
    out = tmp_path / "par"
    stats = generate_fashionai(out, 300, seed=3, image_size=64, progress=False, workers=2)
    assert _digest(out) == _digest(tiny)
    assert stats["images_per_second"] > 0 and stats["num_images"] == 300


def test_ensure_fashionai(tmp_path, capsys):
    p = ensure_fashionai(120, seed=1, image_size=32, root=tmp_path, progress=False)
    assert p == tmp_path / "fashionai-n120-s1-px32" and (p / ".complete").is_file()
    stamp = (p / "synth.json").stat().st_mtime_ns
    assert ensure_fashionai(120, seed=1, image_size=32, root=tmp_path, progress=False) == p
    assert (p / "synth.json").stat().st_mtime_ns == stamp  # not generated again
    # an interrupted run (no marker) is replaced; no temporary folders are left behind
    (p / ".complete").unlink()
    (p / "junk.txt").write_text("half written")
    assert ensure_fashionai(120, seed=1, image_size=32, root=tmp_path, progress=False) == p
    assert not (p / "junk.txt").exists() and (p / ".complete").is_file()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["fashionai-n120-s1-px32"]
    q = ensure_fashionai(120, seed=1, image_size=32, root=tmp_path, config="clean", progress=False)
    assert q != p and q.name.startswith("fashionai-n120-s1-px32-c")


def test_cli_entry_point(tmp_path, capsys):
    from fashionlab.synth import main_fashionai

    assert main_fashionai(["--out", str(tmp_path / "x"), "--num-images", "80", "--seed", "2",
                           "--image-size", "48"]) == 0
    assert "images/s" in capsys.readouterr().out
    assert len((tmp_path / "x" / "Annotations" / "label.csv").read_text().splitlines()) == 80


def test_difficulty_knobs_are_validated_and_change_only_the_scene():
    from fashionlab.synth import RenderConfig

    for bad in (dict(clutter_contrast=1.5), dict(clutter_contrast=-0.1)):
        with pytest.raises(ValueError, match="clutter_contrast"):
            RenderConfig(**bad)
    spec = sample_garment(np.random.default_rng(5), category="top")
    img_lo, gt_lo = render(spec, replace(PRESETS["wild"], clutter_contrast=0.0), np.random.default_rng(9))
    img_hi, gt_hi = render(spec, replace(PRESETS["wild"], clutter_contrast=1.0), np.random.default_rng(9))
    assert gt_lo["garment_box"] == gt_hi["garment_box"] and gt_lo["regions"] == gt_hi["regions"]
    assert not np.array_equal(img_lo, img_hi)  # the clutter is drawn in other colours
    x1, y1, x2, y2 = gt_lo["garment_box"]
    outside = np.ones(img_lo.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    # with contrast 0 the clutter takes the background colour: the background is nearly flat (noise only)
    assert img_lo[outside].std(0).mean() < img_hi[outside].std(0).mean()
    # the calibrated default ("wild") and the first, harder design are both available
    assert PRESETS["wild"] == RenderConfig() and PRESETS["hard"].scale == (0.09, 0.16)


def test_too_small_a_dataset_says_which_attributes_lack_queries(tmp_path):
    with pytest.warns(UserWarning, match=r"test split has no query for \[.*'neck_design'\]"):
        generate_fashionai(tmp_path / "tiny", num_images=200, seed=0, image_size=32, progress=False)
