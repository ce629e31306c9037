"""FashionSynth multilabel dataset (paper 05's DeepFashion stand-in; fashionlab.synth.multilabel): DeepFashion list
files (docs/formats.md §5.3) and ASEN DeepFashion split files (§5.1), parsed here by plain independent code."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fashionlab.cli import main as cli_main
from fashionlab.datasets import read_asen_split, read_meta
from fashionlab.synth import (CATEGORY_ATTRIBUTES, MULTILABEL_CONFIG, MULTILABEL_SCHEMA, ensure_multilabel,
                              generate_multilabel, generate_shop, load_multilabel_ground_truth, render, sample_garment,
                              set_value)
from fashionlab.synth.garments import CATEGORY_FASTENINGS, NECK_FAMILIES, NUM_VALUES
from fashionlab.synth.multilabel import (ATTR_CLOTH, CLASS_GROUP, CLASS_NAMES, GROUP_TYPES, GROUPS, NECK_CLASSES,
                                         PATTERN_PERIOD, asen_value, label_vector, render_multilabel,
                                         sample_multilabel_garment, second_colour)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 48
N = 60
SEED = 3
TYPES = {1: "texture", 3: "shape", 4: "part"}


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multilabel") / "m"
    generate_multilabel(out, N, seed=SEED, image_size=SIZE, progress=False)
    return out


@pytest.fixture(scope="module")
def gt(ds) -> list[dict]:
    return load_multilabel_ground_truth(ds)


def _list_file(path: Path, header: str) -> list[list[str]]:
    """Plain §5.3 parsing: line 1 the count, line 2 the header, fields separated by runs of spaces."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and "\r" not in path.read_text(encoding="utf-8")
    lines = lines[:-1]
    assert int(lines[0]) == len(lines) - 2, path
    assert lines[1] == header, path
    return [ln.split() for ln in lines[2:]]


def _attr_cloth(root: Path) -> list[tuple[str, int]]:
    lines = (root / "Anno" / "list_attr_cloth.txt").read_text().split("\n")[:-1]
    assert int(lines[0]) == len(lines) - 2 and lines[1] == "attribute_name  attribute_type"
    out = []
    for ln in lines[2:]:
        name, typ = ln.rsplit(None, 1)  # the type is the last token (names contain spaces)
        assert re.search(r"\S  +\d$", ln), ln  # at least two spaces before the type
        out.append((name.strip(), int(typ)))
    return out


def _deepfashion_labels(path: Path) -> dict[int, list[tuple[int, int]]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.decode().split("\r\n")[:-1]
    assert len({ln.count("\t") for ln in lines}) == 1  # padded with trailing tabs to one width
    out = {}
    for ln in lines:
        f = [int(x) for x in ln.split("\t") if x != ""]
        assert len(f) % 2 == 1
        out[f[0]] = list(zip(f[1::2], f[2::2]))
    return out


# ------------------------------------------------------------------------------------------------ schema

def test_schema_groups_and_classes():
    assert MULTILABEL_SCHEMA.name == "FashionSynth-MultiLabel" and MULTILABEL_SCHEMA.attributes == GROUPS
    assert GROUP_TYPES == {"texture": 1, "shape": 3, "part": 4}
    assert 30 <= len(CLASS_NAMES) <= 40 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)
    for g in GROUPS:
        vals = MULTILABEL_SCHEMA.values[g]
        assert len(vals) == MULTILABEL_SCHEMA.num_values[MULTILABEL_SCHEMA.index(g)] >= 8
        # value index = rank of the global id among the global ids of that type
        gids = sorted(i for i, (c, t) in enumerate(ATTR_CLOTH) if t == GROUP_TYPES[g])
        assert [CLASS_NAMES[i] for i in gids] == list(vals)
        for v, c in enumerate(vals):
            assert asen_value(c) == (GROUPS.index(g), v)
    assert MULTILABEL_CONFIG.image_size == 64 and MULTILABEL_CONFIG.detail_scale == 1.4
    with pytest.raises(KeyError, match="unknown class"):
        label_vector(["plaid"])


def test_every_class_occurs_with_several_classes_per_group():
    counts = {c: 0 for c in CLASS_NAMES}
    per_group = {g: [] for g in GROUPS}
    cfg = replace(MULTILABEL_CONFIG, image_size=SIZE)
    n = 300
    for i in range(n):
        spec = sample_multilabel_garment(np.random.default_rng([11, i]), cfg)
        _, g = render_multilabel(spec, cfg, [11, i, 1])
        for grp, cs in g["classes"].items():
            per_group[grp].append(len(cs))
            for c in cs:
                counts[c] += 1
    assert min(counts.values()) >= 0.01 * n, {c: k for c, k in counts.items() if k < 0.01 * n}
    assert np.mean(per_group["texture"]) > 1.3 and np.mean(per_group["shape"]) > 1.3
    assert np.mean(np.array(per_group["part"]) >= 2) > 0.2  # neck + fastening on many upper garments


# ------------------------------------------------------------------------------------------------ files

def test_same_seed_gives_byte_identical_files(ds, tmp_path):
    generate_multilabel(tmp_path / "again", N, seed=SEED, image_size=SIZE, progress=False)
    assert _digest(tmp_path / "again") == _digest(ds)
    # regenerating into the same folder replaces our own files and gives the same bytes
    before = _digest(tmp_path / "again")
    generate_multilabel(tmp_path / "again", N, seed=SEED, image_size=SIZE, progress=False)
    assert _digest(tmp_path / "again") == before
    other = tmp_path / "other"
    generate_multilabel(other, N, seed=SEED + 1, image_size=SIZE, progress=False)
    assert _digest(other)["Anno/list_attr_img.txt"] != before["Anno/list_attr_img.txt"]


def test_deepfashion_list_files_parse(ds, gt):
    cloth = _attr_cloth(ds)
    assert [c for c, _ in cloth] == list(CLASS_NAMES)
    assert {t for _, t in cloth} == {1, 3, 4}
    assert all(TYPES[t] == CLASS_GROUP[c] for c, t in cloth)

    cats = _list_file(ds / "Anno" / "list_category_cloth.txt", "category_name  category_type")
    assert [(n, int(t)) for n, t in cats] == [("Top", 1), ("Coat", 1), ("Skirt", 2), ("Pants", 2), ("Dress", 3)]

    names = [r["name"] for r in gt]
    assert [r["index"] for r in gt] == list(range(N))
    attr = _list_file(ds / "Anno" / "list_attr_img.txt", "image_name  attribute_labels")
    cat = _list_file(ds / "Anno" / "list_category_img.txt", "image_name  category_label")
    bbox = _list_file(ds / "Anno" / "list_bbox.txt", "image_name  x_1  y_1  x_2  y_2")
    part = _list_file(ds / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status")
    for rows in (attr, cat, bbox, part):
        assert [r[0] for r in rows] == names
    for r, a, c, b, p in zip(gt, attr, cat, bbox, part):
        assert (ds / r["name"]).is_file() and r["name"].startswith("img/") and r["name"].endswith(".jpg")
        assert len(a) == 1 + len(cloth) and set(a[1:]) <= {"1", "-1"}
        pos = {cloth[i][0] for i, v in enumerate(a[1:]) if v == "1"}
        assert pos == {x for cs in r["classes"].values() for x in cs}  # list_attr_img agrees with ground truth
        assert cats[int(c[1]) - 1][0].lower() == r["category"] and int(cats[int(c[1]) - 1][1]) == {
            "upper": 1, "lower": 2, "full": 3}[r["body"]]
        assert all(re.fullmatch(r"\d{3}", x) for x in b[1:]) and [int(x) for x in b[1:]] == r["garment_box"]
        x1, y1, x2, y2 = r["garment_box"]
        assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE
        assert p[1] == r["split"] in ("train", "val", "test")
    # names are padded so that the second field starts in the same column (71, as in the real files)
    for f in ("Anno/list_attr_img.txt", "Anno/list_bbox.txt", "Eval/list_eval_partition.txt"):
        lines = (ds / f).read_text().split("\n")[2:-1]
        assert {len(ln) - len(ln[len(ln.split()[0]):].lstrip()) for ln in lines} <= {71, 72}, f
    text = (ds / "Anno/list_attr_img.txt").read_text()
    assert "  1 -1" in text or " -1  1" in text  # each value in two characters, one space between


def test_asen_split_files(ds, gt):
    splits = {"train": "train", "val": "valid", "test": "test"}
    meta = read_meta(ds)
    assert meta.attributes == GROUPS and meta.values == MULTILABEL_SCHEMA.values
    by = {s: sorted((r for r in gt if r["split"] == s), key=lambda r: r["asen_id"]) for s in splits}
    assert sum(len(v) for v in by.values()) == N and len(by["val"]) == len(by["test"]) == 6
    for s, a in splits.items():
        sp = read_asen_split(ds, a)
        assert sp.filenames == [r["name"] for r in by[s]]
        assert all(r["asen_split"] == a for r in by[s])
    cloth = _attr_cloth(ds)
    # label_train: one positive class per group where the image has one
    tr = read_asen_split(ds, "train")
    rows = {}
    for i, attr, v in tr.labels.tolist():
        rows.setdefault(i, []).append((attr, v))
    assert sorted(rows) == list(range(len(by["train"])))
    for r in by["train"]:
        pairs = rows[r["asen_id"]]
        assert sorted(a for a, _ in pairs) == [GROUPS.index(g) for g in GROUPS if r["classes"][g]]
        for a, v in pairs:
            assert MULTILABEL_SCHEMA.values[GROUPS[a]][v] in r["classes"][GROUPS[a]]
        assert [list(p) for p in pairs] == r["asen_labels"]
    for s in ("val", "test"):
        a = splits[s]
        sp = read_asen_split(ds, a)
        q, c = sp.queries, sp.candidates
        assert len(q) == 1 and len(c) == 5  # 1:4 at query_fraction 0.2
        assert sorted(q[:, 0].tolist() + c[:, 0].tolist()) == list(range(len(by[s])))  # each image once, disjoint
        assert q[:, 0].min() > c[:, 0].max()  # candidates first, then queries (ASEN's DeepFashion layout)
        assert all(by[s][i]["role"] == "query" for i in q[:, 0]) and all(
            by[s][i]["role"] == "candidate" for i in c[:, 0])
        labels = _deepfashion_labels(ds / f"label_{a}.txt")
        assert sorted(labels) == list(range(len(by[s])))
        for r in by[s]:
            pairs = labels[r["asen_id"]]
            gids = [g for _, g in pairs]
            assert gids == sorted(gids)
            assert all(cloth[g][1] == t for t, g in pairs)  # 1-based type, 0-based line of list_attr_cloth
            assert {cloth[g][0] for g in gids} == {x for cs in r["classes"].values() for x in cs}
        # value index = rank of the global id among the sorted global ids of that type (docs/formats.md §5.1)
        for i, attr, v in np.concatenate([q, c]).tolist():
            t = GROUP_TYPES[GROUPS[attr]]
            type_ids = sorted(g for g, (_, tt) in enumerate(cloth) if tt == t)
            hits = [g for tt, g in labels[i] if tt == t and type_ids.index(g) == v]
            assert len(hits) == 1, (s, i, attr, v)
            assert [attr, v] == by[s][i]["asen_labels"][0]


def test_synth_json_statistics(ds, gt):
    synth = json.loads((ds / "synth.json").read_text())
    assert synth["format"] == "multilabel" and synth["seed"] == SEED and synth["num_images"] == N
    assert synth["splits"] == {"train": 48, "val": 6, "test": 6}
    counts = synth["class_counts"]
    assert list(counts) == list(CLASS_NAMES)
    assert counts == {c: sum(c in r["classes"][CLASS_GROUP[c]] for r in gt) for c in CLASS_NAMES}
    assert synth["mean_classes_per_image"]["texture"] == 2.0  # one pattern and one colour class each
    assert synth["mean_classes_per_image"]["shape"] > 1.3
    assert synth["share_multi_class"]["texture"] == 1.0
    assert load_multilabel_ground_truth(ds, "val") == [r for r in gt if r["split"] == "val"]
    with pytest.raises(ValueError, match="unknown split"):
        load_multilabel_ground_truth(ds, "valid")


# ------------------------------------------------------------------------------------------------ regions

def test_region_boxes_lie_inside_the_image(gt):
    for r in gt:
        assert set(r["class_regions"]) == {c for cs in r["classes"].values() for c in cs}
        for c, (x1, y1, x2, y2) in r["class_regions"].items():
            assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE, (r["index"], c)
        if r["body"] == "lower":
            assert r["classes"]["part"] == [] and r["fastening_visible"] is None
        for c in ("solid", "striped", "checked", "dotted", "zigzag"):
            if c in r["class_regions"]:
                assert r["class_regions"][c] == r["garment_box"]


def _diff_inside(a: np.ndarray, b: np.ndarray, boxes) -> tuple[int, int]:
    d = (a != b).any(axis=2)
    inside = np.zeros_like(d)
    for x1, y1, x2, y2 in boxes:
        inside[y1:y2, x1:x2] = True
    return int(d.sum()), int((d & ~inside).sum())


def test_part_class_boxes_hold_the_pixels_that_change():
    cfg = MULTILABEL_CONFIG
    neck_of = {fv: c for c, fvs in NECK_CLASSES.items() for fv in fvs}
    checked = {"fastening": 0, "neck": 0}
    for i in range(24):
        spec = sample_multilabel_garment(np.random.default_rng([5, i]), cfg)
        if spec.fastening is None:
            continue
        seed = [5, i, 1]
        img, g = render_multilabel(spec, cfg, seed)
        # fastening: every other style of the category; the zone box holds every changed pixel
        for style in CATEGORY_FASTENINGS[spec.category]:
            if style == spec.fastening:
                continue
            img2, g2 = render_multilabel(replace(spec, fastening=style), cfg, seed)
            fast = [c for c in g["classes"]["part"] + g2["classes"]["part"]
                    if c in ("button", "zip", "double-breasted")]
            if not fast:
                continue
            n, outside = _diff_inside(img, img2, [g["class_regions"].get(c) or g2["class_regions"][c] for c in fast])
            assert outside == 0 and n > 0, (i, spec.fastening, style)
            checked["fastening"] += 1
        # neck: another class of neck detail (same or another family); the two neck boxes hold the change
        fam = spec.neck_family
        mine = neck_of[(fam, spec.value(fam))]
        options = [(f, v) for f in NECK_FAMILIES[spec.category] for v in range(1, NUM_VALUES[f])
                   if neck_of[(f, v)] != mine and f in CATEGORY_ATTRIBUTES[spec.category]]
        f, v = options[i % len(options)]
        other = set_value(spec, f, v)
        if other.value("sleeve_length") != spec.value("sleeve_length"):
            continue  # the neckline/sleeve constraint changed the sleeves too
        img2, g2 = render_multilabel(other, cfg, seed)
        assert neck_of[(f, v)] in g2["classes"]["part"] and mine in g["classes"]["part"]
        n, outside = _diff_inside(img, img2, [g["class_regions"][mine], g2["class_regions"][neck_of[(f, v)]]])
        assert outside == 0 and n > 0, (i, mine, neck_of[(f, v)])
        checked["neck"] += 1
    assert checked["fastening"] >= 8 and checked["neck"] >= 8, checked


def test_silhouette_only_where_the_flare_shows():
    cfg = MULTILABEL_CONFIG
    # a maxi skirt shows its flare: fitted below 0.25, flared above 0.75, nothing in between
    skirt = set_value(sample_garment(np.random.default_rng(1), category="skirt"), "skirt_length", 4)
    for flare, cls in ((0.05, "fitted"), (0.95, "flared"), (0.5, None)):
        _, g = render_multilabel(replace(skirt, flare=flare), cfg, 0)
        assert [c for c in g["classes"]["shape"] if c in ("fitted", "flared")] == ([cls] if cls else [])
        assert g["class_regions"].get(cls, g["garment_box"]) == g["garment_box"]
    # a top never does (flare widens a garment below the hips only)
    top = sample_garment(np.random.default_rng(2), category="top")
    for flare in (0.0, 1.0):
        _, g = render_multilabel(replace(top, flare=flare), cfg, 0)
        assert g["silhouette_visible"] is False and not {"fitted", "flared"} & set(g["classes"]["shape"])
    a = render(replace(top, flare=0.0), cfg, np.random.default_rng(0))[0]
    b = render(replace(top, flare=1.0), cfg, np.random.default_rng(0))[0]
    assert (a == b).all()


def test_pattern_period_and_second_colour(gt):
    lo, hi = PATTERN_PERIOD
    for r in gt:
        assert 0.9 * lo * SIZE <= r["pattern_period_px"] <= 1.1 * hi * SIZE
        assert r["colour2"] == second_colour(r["colour"]) in ("white", "black")
    assert second_colour("navy") == "white" and second_colour("yellow") == "black"


# ------------------------------------------------------------------------------------------------ folders

def test_refuses_a_folder_that_is_not_ours(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a FashionSynth multilabel dataset"):
        generate_multilabel(foreign, 12, image_size=SIZE, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"
    shop = tmp_path / "shop"
    generate_shop(shop, 4, image_size=SIZE, progress=False)
    with pytest.raises(FileExistsError):
        generate_multilabel(shop, 12, image_size=SIZE, progress=False)
    with pytest.raises(ValueError, match="split"):
        generate_multilabel(tmp_path / "bad", 12, split=(0.5, 0.5, 0.5), progress=False)


def test_ensure_multilabel_caches_and_cli(tmp_path, capsys):
    p = ensure_multilabel(16, seed=1, image_size=SIZE, progress=False, root=tmp_path)
    assert p.name == f"multilabel-n16-s1-px{SIZE}" and (p / ".complete").is_file()
    stamp = (p / "synth.json").stat().st_mtime_ns
    assert ensure_multilabel(16, seed=1, image_size=SIZE, progress=False, root=tmp_path) == p
    assert (p / "synth.json").stat().st_mtime_ns == stamp
    q = ensure_multilabel(16, seed=1, image_size=SIZE, progress=False, root=tmp_path, config="wild")
    assert q.name.startswith(f"multilabel-n16-s1-px{SIZE}-c")
    out = tmp_path / "cli"
    assert cli_main(["synth", "multilabel", "--out", str(out), "--num-images", "16", "--seed", "1",
                     "--image-size", str(SIZE), "--quiet"]) == 0
    assert "wrote 16 images" in capsys.readouterr().out
    assert _digest(out) == {k: v for k, v in _digest(p).items() if k != ".complete"}
