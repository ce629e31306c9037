"""FashionSynth shop dataset (paper 04 §3, §4.1, §6; fashionlab.synth.shop) and its ADDE-layout reader
(docs/formats.md §5.6; fashionlab.datasets.read_adde_split)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fashionlab.datasets import (DataFormatError, indices_to_onehot, onehot_to_indices, read_adde_split,
                                 read_attr_num, read_id_list, read_onehot_labels)
from fashionlab.synth import NECK_FAMILIES, GarmentSpec, allowed_values, render, sample_garment, set_value
from fashionlab.synth.garments import CATEGORY_FASTENINGS, DEFAULT_FASTENING, FASTENINGS, PRESETS
from fashionlab.synth.shop import (ATTR_NUM, ATTRIBUTES, COLLAR_VALUES, GENERAL, LENGTH_DIMENSION, SHOP_CONFIG,
                                   SHOP_SCHEMA, SPECIAL, applicable, ensure_shop, fastening_visible, garment_for,
                                   generate_shop, label_lines, load_mask, load_shop_ground_truth, main_shop,
                                   make_designs, onehot_labels, render_shop, sample_design, shop_values)

SIZE = 64
BG = (232, 232, 228)  # the plain background of RenderConfig(background="plain")


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shop") / "s"
    generate_shop(out, 120, seed=5, image_size=SIZE, missing_rate=0.2, progress=False)
    return out


# ------------------------------------------------------------------------------------------------ attributes

def test_schema_general_special_and_value_counts():
    assert GENERAL == ("category",) and "gender" not in ATTRIBUTES  # nothing in a garment shows gender
    assert set(SPECIAL) == {"collar", "colour", "fastening", "length", "pattern", "sleeve_length"}
    assert ATTRIBUTES == GENERAL + SPECIAL == SHOP_SCHEMA.attributes
    assert ATTR_NUM == SHOP_SCHEMA.num_values == (5, 21, 14, 4, 17, 5, 8)
    for a in ATTRIBUTES:
        names = SHOP_SCHEMA.values[a]
        assert len(set(names)) == len(names) >= 4, a  # several distinct values per attribute
    assert len(COLLAR_VALUES) == 21 and SHOP_SCHEMA.values["fastening"] == ("Pullover", "Buttons", "Zip",
                                                                            "Double-Breasted")


def test_every_value_occurs_and_inapplicable_attributes_are_none():
    seen = {a: set() for a in ATTRIBUTES}
    rng = np.random.default_rng(0)
    for _ in range(600):
        d = sample_design(rng)
        vals = d.attributes()
        app = applicable(d.category)
        for a, v in vals.items():
            assert (v is None) == (not app[a]), (d, a)
            if v is not None:
                assert 0 <= v < SHOP_SCHEMA.num_values[SHOP_SCHEMA.index(a)]
                seen[a].add(v)
        if d.category in ("skirt", "pants"):
            assert vals["collar"] is None and vals["sleeve_length"] is None and vals["fastening"] is None
        else:
            assert d.fastening in CATEGORY_FASTENINGS[d.category]
    for a, n in zip(ATTRIBUTES, ATTR_NUM):
        assert seen[a] == set(range(n)), (a, sorted(set(range(n)) - seen[a]))


def test_garment_spec_fastening():
    coat = sample_garment(np.random.default_rng(1), category="coat")
    top = sample_garment(np.random.default_rng(2), category="top")
    assert coat.fastening is None and coat.fastening_style == "buttons" and top.fastening_style == "none"
    assert sample_garment(np.random.default_rng(3), category="skirt").fastening_style is None
    with pytest.raises(ValueError, match="cannot have fastening 'double'"):
        replace(top, fastening="double")
    with pytest.raises(ValueError, match="no drawn fastening"):
        replace(sample_garment(np.random.default_rng(3), category="pants"), fastening="zip")
    with pytest.raises(ValueError, match="unknown fastening"):
        replace(coat, fastening="velcro")
    # the explicit default draws exactly what FashionSynth v1 draws (presets stay byte-identical)
    for spec in (coat, top):
        for preset in ("wild", "clean"):
            a, ga = render(spec, PRESETS[preset], 7)
            b, gb = render(replace(spec, fastening=DEFAULT_FASTENING[spec.category]), PRESETS[preset], 7)
            assert np.array_equal(a, b) and ga["parts"] == gb["parts"]
            assert "fastening" not in ga and "fastening" not in ga["regions"]
            assert gb["fastening"] == spec.fastening_style
    # every style looks different on a long top and on a coat
    for spec in (set_value(top, "coat_length", 4), set_value(set_value(coat, "collar_design", 1), "coat_length", 5)):
        imgs = [render(replace(spec, fastening=f), SHOP_CONFIG, 0)[0] for f in CATEGORY_FASTENINGS[spec.category]]
        for i in range(len(imgs)):
            for j in range(i + 1, len(imgs)):
                assert (imgs[i] != imgs[j]).any(axis=2).sum() >= 5
    assert set(FASTENINGS) == {"none", "buttons", "zip", "double"}


def test_hidden_fastening_is_detected():
    vals = dict.fromkeys(("skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                          "lapel_design", "neckline_design", "neck_design"), 0)
    vals.update(sleeve_length=7, coat_length=1, lapel_design=4)  # cropped coat, lapels reaching the hem
    coat = GarmentSpec("coat", tuple(vals.values()), fastening="zip")
    assert fastening_visible(coat, replace(SHOP_CONFIG, image_size=SIZE)) is False
    vals.update(coat_length=5, lapel_design=0, collar_design=1)
    assert fastening_visible(replace(coat, values=tuple(vals.values())), replace(SHOP_CONFIG, image_size=SIZE))
    assert fastening_visible(sample_garment(np.random.default_rng(0), category="skirt")) is None


# ------------------------------------------------------------------------------------------------ label files

def test_onehot_labels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    n = 50
    idx = np.stack([rng.integers(-1, k, n) for k in ATTR_NUM], axis=1)
    idx[0] = -1  # an image with no label at all
    lines = label_lines(idx)
    assert all(len(ln.split()) == sum(ATTR_NUM) for ln in lines)
    path = tmp_path / "labels_train.txt"
    path.write_text("\n".join(lines) + "\n")
    back = read_onehot_labels(path, ATTR_NUM, num_images=n, names=ATTRIBUTES)
    assert back.dtype == np.int64 and np.array_equal(back, idx)
    assert np.array_equal(indices_to_onehot(idx, ATTR_NUM), np.array([ln.split() for ln in lines], dtype=int))
    assert np.array_equal(onehot_to_indices(indices_to_onehot(idx, ATTR_NUM), ATTR_NUM), idx)
    d = dict(zip(ATTRIBUTES, [None if v < 0 else int(v) for v in idx[3]]))
    assert np.array_equal(onehot_labels(d), indices_to_onehot(idx[3:4], ATTR_NUM)[0])
    # CRLF and no final newline read the same
    path.write_bytes(("\r\n".join(lines)).encode())
    assert np.array_equal(read_onehot_labels(path, ATTR_NUM), idx)
    (tmp_path / "attr_num.txt").write_text("16 17 19 14 10 15 2 11 16 7 9 15\n")  # Shopping100k, §5.6
    assert read_attr_num(tmp_path / "attr_num.txt") == (16, 17, 19, 14, 10, 15, 2, 11, 16, 7, 9, 15)


def _raises(path, line, match, fn, *args, **kw):
    with pytest.raises(DataFormatError, match=match) as e:
        fn(*args, **kw)
    assert e.value.path == str(path) and e.value.line == line, (e.value.path, e.value.line)
    assert str(e.value).startswith(f"{path}:{line}:" if line else f"{path}:")
    return e.value


def test_malformed_files_name_file_and_line(tmp_path):
    an = tmp_path / "attr_num.txt"
    an.write_text("2\n3\nthree\n")
    _raises(an, 3, "positive integers", read_attr_num, an)
    an.write_text("2\n0\n")
    _raises(an, 2, "positive integers", read_attr_num, an)
    an.write_text("\n\n")
    _raises(an, None, "empty", read_attr_num, an)

    lab = tmp_path / "labels.txt"
    num = (2, 3)
    lab.write_text("1 0 0 1 0\n0 1 0 0\n")
    _raises(lab, 2, "4 fields.*expected 5", read_onehot_labels, lab, num)
    lab.write_text("1 0 0 1 0\n\n0 1 0 0 1\n")
    _raises(lab, 2, "blank line", read_onehot_labels, lab, num)
    lab.write_text("1 0 0 1 0\n0 1 0 2 0\n")
    e = _raises(lab, 2, "field 4 is '2'.*column 2 of the block of colour", read_onehot_labels, lab, num,
                names=("category", "colour"))
    assert "expected 0 or 1" in e.reason
    lab.write_text("1 0 0 1 0\n0 1 1 0 1\n")
    _raises(lab, 2, "2 ones in the block of attribute 1.*fields 3-5", read_onehot_labels, lab, num)
    lab.write_text("1 0 0 1 0\n0 1 0 0 1\n1 0 0 0 0\n")
    _raises(lab, 3, "3 label lines for 2 images", read_onehot_labels, lab, num, num_images=2)
    _raises(lab, None, "3 label lines for 4 images", read_onehot_labels, lab, num, num_images=4)

    ids = tmp_path / "query_test.txt"
    ids.write_text("0\n5\n")
    _raises(ids, 2, "image id 5 out of range", read_id_list, ids, 4)
    ids.write_text("0\n1 2\n")
    _raises(ids, 2, "one non-negative integer", read_id_list, ids)
    ids.write_text("3\n1\n3\n")
    _raises(ids, 3, "repeated.*first on line 1", read_id_list, ids)
    with pytest.raises(FileNotFoundError, match="attr_num.txt"):
        read_attr_num(tmp_path / "nope" / "attr_num.txt")


def test_split_level_errors(tiny, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad, ignore=shutil.ignore_patterns("Images", "Masks"))
    (bad / "attr_num.txt").write_text("5\n21\n14\n4\n17\n5\n9\n")
    _raises(bad / "attr_num.txt", None, "do not match", read_adde_split, bad, "train")
    (bad / "attr_num.txt").write_text("\n".join(map(str, ATTR_NUM)) + "\n")
    lines = (bad / "labels_test.txt").read_text().splitlines()
    (bad / "labels_test.txt").write_text("\n".join(lines[:-1]) + "\n")
    _raises(bad / "labels_test.txt", None, f"{len(lines) - 1} label lines for {len(lines)} images",
            read_adde_split, bad, "test")
    (bad / "labels_test.txt").write_text("\n".join(lines) + "\n")
    q = (bad / "query_test.txt").read_text().split()
    g = (bad / "gallery_test.txt").read_text().split()
    (bad / "query_test.txt").write_text("\n".join(q + [g[0]]) + "\n")
    _raises(bad / "query_test.txt", len(q) + 1, "also in the gallery", read_adde_split, bad, "test")
    with pytest.raises(ValueError, match="unknown split"):
        read_adde_split(bad, "valid")


# ------------------------------------------------------------------------------------------------ the dataset

def test_dataset_reads_back(tiny):
    synth = json.loads((tiny / "synth.json").read_text())
    assert synth["format"] == "shop" and synth["splits"] == {"train": 96, "test": 24}
    assert [int(x) for x in (tiny / "attr_num.txt").read_text().split()] == list(ATTR_NUM)
    recs = load_shop_ground_truth(tiny)
    assert [r["index"] for r in recs] == list(range(120))
    n_missing = 0
    for split in ("train", "test"):
        s = read_adde_split(tiny, split)
        gt = load_shop_ground_truth(tiny, split)
        assert s.attr_num == ATTR_NUM and s.schema.attributes == ATTRIBUTES
        assert s.general == GENERAL and s.special == SPECIAL and s.schema.values == SHOP_SCHEMA.values
        assert s.filenames == [r["filename"] for r in gt]
        want = np.array([[(-1 if r["labels"][a] is None else r["labels"][a]) for a in ATTRIBUTES] for r in gt])
        assert np.array_equal(s.labels, want)
        # labels agree with the full ground truth where present; missing only where unlabelled or inapplicable
        for r, row in zip(gt, s.labels):
            for k, a in enumerate(ATTRIBUTES):
                if row[k] >= 0:
                    assert row[k] == r["attributes"][a]
                else:
                    assert r["attributes"][a] is None or a in r["missing"]
            assert row[0] >= 0  # the category (general) is always labelled
            n_missing += len(r["missing"])
        counts = s.value_counts()
        for a, n in zip(ATTRIBUTES, ATTR_NUM):
            assert len(counts[a]) == n and counts[a].tolist() == synth["label_counts"][split][a]
            assert int((s.labels[:, ATTRIBUTES.index(a)] < 0).sum()) == synth["unlabelled"][split][a]
        assert np.array_equal(s.onehot().sum(axis=1), (s.labels >= 0).sum(axis=1))
        if split == "test":
            assert len(s.queries) == synth["queries"] >= 1 and len(s.gallery) == synth["gallery"]
            assert sorted(s.queries.tolist() + s.gallery.tolist()) == list(range(s.num_images))
            assert {r["role"] for r in gt} == {"query", "gallery"}
            assert [r["id"] for r in gt if r["role"] == "query"] == s.queries.tolist()
            assert s.complete(SPECIAL).dtype == bool
        else:
            assert len(s.queries) == 0 and {r["role"] for r in gt} == {"train"}
    assert n_missing > 0  # 20% of the applicable special labels


def test_images_masks_and_part_boxes(tiny):
    from PIL import Image

    recs = load_shop_ground_truth(tiny)
    cases = set()
    for r in recs:
        img = np.asarray(Image.open(tiny / r["filename"]).convert("RGB"))
        m = load_mask(tiny, r)
        assert img.shape == (SIZE, SIZE, 3) and m.shape == (SIZE, SIZE) and m.any()
        x1, y1, x2, y2 = r["garment_box"]
        assert not m[:y1].any() and not m[y2:].any() and not m[:, :x1].any() and not m[:, x2:].any()
        assert m[y1:y2, x1:x2].mean() > 0.3
        assert abs((SIZE - y2) - y1) <= 1 and abs((SIZE - x2) - x1) <= 2  # centred
        for group in ("parts", "regions", "attribute_regions"):
            for b in r[group].values():
                assert b is None or (0 <= b[0] < b[2] <= SIZE and 0 <= b[1] < b[3] <= SIZE)
        upper = r["body"] != "lower"
        assert (r["parts"]["torso"] is not None) == upper and (r["parts"]["neck_detail"] is not None) == upper
        sleeves = r["part_case"] == "sleeved"
        assert (r["parts"]["left_sleeve"] is not None) == sleeves == (r["parts"]["right_sleeve"] is not None)
        assert r["parts"]["left_sleeve"] is None or r["parts"]["left_sleeve"][0] < r["parts"]["right_sleeve"][0]
        assert (r["parts"]["fastening"] is not None) == (r["attributes"]["fastening"] not in (None, 0))
        assert r["part_case"] == ("lower" if not upper else r["part_case"])
        cases.add(r["part_case"])
        if r["fastening_visible"] is False:
            assert r["labels"]["fastening"] is None and "fastening" in r["missing"]
        for a in SPECIAL:
            assert (r["attribute_regions"][a] is None) == (r["attributes"][a] is None), (a, r["index"])
    assert cases == {"lower", "sleeved", "sleeveless"}  # the three outputs of §4.3's "Extract Parts?" head


def test_mask_is_exact_and_centring_is_a_shift():
    cfg = replace(SHOP_CONFIG, image_size=96)
    for i in range(12):
        spec = garment_for(sample_design(np.random.default_rng([8, i])), np.random.default_rng([9, i]))
        img, m, gt = render_shop(spec, cfg, [1, i])
        off, m0, gt0 = render_shop(spec, cfg, [1, i], centre=False)
        assert np.array_equal(m, np.roll(m0, gt["shift"][1], axis=0))
        assert np.array_equal(img, np.roll(off, gt["shift"][1], axis=0))
        assert (img[~m] == BG).all()  # everything off the garment is the plain background
        dy = gt["shift"][1]
        for k, b in gt0["parts"].items():
            if b is not None and gt["parts"][k] is not None:
                assert gt["parts"][k] == [b[0], max(0, b[1] + dy), b[2], min(96, b[3] + dy)]
        assert gt0["shift"] == [0, 0]
    with pytest.raises(ValueError, match="plain background"):
        render_shop(spec, PRESETS["wild"], 0, centre=True)
    with pytest.raises(TypeError, match="seed"):
        render_shop(spec, cfg, np.random.default_rng(0))


def _changed(s1, s2):
    v1, v2 = shop_values(s1), shop_values(s2)
    return [a for a in ATTRIBUTES if v1[a] != v2[a]]


@pytest.mark.parametrize("size", [64, 96])
def test_part_boxes_hold_every_changed_pixel(size):
    """Change one special attribute of a shop garment: pixels change, and only inside that attribute's box
    (``attribute_regions``; collar and fastening also inside their ``parts`` boxes); for a length, between the
    two hems across the garment (as FashionSynth's own region test)."""
    cfg = replace(SHOP_CONFIG, image_size=size)
    checked = set()
    for seed in range(4):
        for cat in ("top", "coat", "dress", "skirt", "pants"):
            base = sample_garment(np.random.default_rng([seed, 6]), category=cat)
            if base.fastening_style is not None:
                base = replace(base, fastening=base.fastening_style)
            variants = []
            for a in SPECIAL:
                if shop_values(base)[a] is None:
                    continue
                if a == "colour":
                    opts = [replace(base, colour=c) for c in ("red", "navy", "beige") if c != base.colour]
                elif a == "pattern":
                    opts = [replace(base, pattern=p) for p in ("solid", "stripes", "dots") if p != base.pattern]
                elif a == "fastening":
                    opts = [replace(base, fastening=f) for f in CATEGORY_FASTENINGS[cat] if f != base.fastening]
                elif a == "collar":
                    opts = [set_value(base, f, v) for f, v in COLLAR_VALUES if f in NECK_FAMILIES[cat]][seed % 2::2]
                else:
                    dim = LENGTH_DIMENSION[cat] if a == "length" else "sleeve_length"
                    opts = [set_value(base, dim, v) for v in allowed_values(cat, dim) if v != base.value(dim)][:3]
                variants += [(a, o) for o in opts if _changed(base, o)]
            img0, _, g0 = render_shop(base, cfg, [seed, 7], mask=False, centre=False)
            for a, spec in variants:
                img1, _, g1 = render_shop(spec, cfg, [seed, 7], mask=False, centre=False)
                diff = (img0 != img1).any(axis=2)
                assert diff.sum() >= 3, (size, cat, a)
                allowed = np.zeros_like(diff)
                changed = _changed(base, spec)
                if "collar" in changed and cat == "coat":  # lapels cover the top of the fastening
                    changed.append("fastening")
                for att in changed:
                    boxes = [b for b in (g0["attribute_regions"][att], g1["attribute_regions"][att]) if b]
                    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
                    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
                    if att == "length":  # between the two hems, anywhere across the garment
                        gb = [g0["garment_box"], g1["garment_box"]]
                        x1, x2 = min([x1] + [b[0] for b in gb]), max([x2] + [b[2] for b in gb])
                    allowed[y1:y2, x1:x2] = True
                outside = diff & ~allowed
                assert not outside.any(), (size, cat, a, changed, np.argwhere(outside)[:3])
                if changed == ["fastening"] or (changed == ["collar"] and cat != "coat"):
                    part = "fastening" if changed == ["fastening"] else "neck_detail"
                    inside = np.zeros_like(diff)
                    for b in (g0["parts"][part], g1["parts"][part]):
                        if b:
                            inside[b[1]:b[3], b[0]:b[2]] = True
                    assert not (diff & ~inside).any(), (size, cat, a)
                checked.add(a)
    assert checked == set(SPECIAL)


# ------------------------------------------------------------------------------------------------ determinism

def test_same_seed_same_bytes(tiny, tmp_path):
    out = tmp_path / "again"
    generate_shop(out, 120, seed=5, image_size=SIZE, missing_rate=0.2, progress=False)
    assert _digest(out) == _digest(tiny)
    other = tmp_path / "other"
    generate_shop(other, 120, seed=6, image_size=SIZE, missing_rate=0.2, progress=False)
    assert (other / "labels_train.txt").read_bytes() != (tiny / "labels_train.txt").read_bytes()
    par = tmp_path / "par"
    generate_shop(par, 120, seed=5, image_size=SIZE, missing_rate=0.2, progress=False, workers=2)
    assert _digest(par) == _digest(tiny)
    # a folder that is not a shop dataset is refused
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a FashionSynth shop dataset"):
        generate_shop(tmp_path / "foreign", 10, progress=False)


def test_designs_give_exact_matches(tmp_path):
    cat = make_designs(40, seed=1)
    assert cat == make_designs(40, seed=1) and len(set(cat)) == 40
    near = 0
    for d in cat:
        v = d.attributes()
        near += any(sum(v[a] != e.attributes()[a] for a in ATTRIBUTES) == 1 for e in cat if e is not d)
    assert near >= 30  # most designs have a neighbour at one special-attribute manipulation (§7.2)
    out = tmp_path / "d"
    stats = generate_shop(out, 80, seed=2, image_size=32, designs=6, progress=False)
    assert stats["queries_with_exact_match"] >= 1
    by_design = {}
    for r in load_shop_ground_truth(out):
        assert r["design"] is not None
        by_design.setdefault(r["design"], []).append(r["attributes"])
    assert all(all(x == xs[0] for x in xs) for xs in by_design.values()) and len(by_design) > 1


def test_ensure_shop_and_cli(tmp_path, capsys):
    p = ensure_shop(30, seed=1, image_size=32, progress=False, root=tmp_path)
    assert p == tmp_path / "shop-n30-s1-px32" and (p / ".complete").is_file()
    stamp = (p / "synth.json").stat().st_mtime_ns
    assert ensure_shop(30, seed=1, image_size=32, progress=False, root=tmp_path) == p
    assert (p / "synth.json").stat().st_mtime_ns == stamp  # not generated again
    q = ensure_shop(30, seed=1, image_size=32, progress=False, root=tmp_path, designs=5, missing_rate=0.0)
    assert q.name == "shop-n30-s1-px32-d5-m0"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["shop-n30-s1-px32", "shop-n30-s1-px32-d5-m0"]
    assert main_shop(["--out", str(tmp_path / "x"), "--num-images", "20", "--image-size", "32"]) == 0
    assert "images/s" in capsys.readouterr().out
    from fashionlab.cli import main

    assert main(["synth", "shop", "--out", str(tmp_path / "y"), "--num-images", "20", "--image-size", "32",
                 "--quiet"]) == 0
    assert len(read_adde_split(tmp_path / "y", "train").filenames) == 16
