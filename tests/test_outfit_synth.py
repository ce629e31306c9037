"""FashionSynth outfit preset (paper 06 stand-in): taxonomy, scenes, boxes, files and the imbalance statistics."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from fashionlab.datasets.deepfashion import CATEGORY_TYPE_NAMES, read_deepfashion
from fashionlab.metrics import imbalance_ratios, mean_imbalance_ratio, scumble
from fashionlab.synth.outfit import (ATTRIBUTES, CATEGORIES, CATEGORY_TYPE, OBJECT_TYPES, OUTFIT_CONFIG, PRINTS,
                                     SPLITS, STYLES, Garment, OutfitSpec, _render, applicable_mask,
                                     generate_outfits, load_outfit_ground_truth, render_outfit, sample_outfit,
                                     square_crop)

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = replace(OUTFIT_CONFIG, image_size=112)


def scenes(n, start=0):
    for seed in range(start, start + n):
        img, objs, info = render_outfit(None, CFG, rng=seed, return_info=True)
        yield seed, img, objs, info


def test_taxonomy_and_mask():
    m = applicable_mask()
    assert m.shape == (len(CATEGORIES), len(ATTRIBUTES)) and m.dtype == bool
    assert m[:, : len(PRINTS)].all()
    for s, cats in STYLES.items():
        col = m[:, ATTRIBUTES.index(s)]
        assert {CATEGORIES[i] for i in np.flatnonzero(col)} == set(cats)
    assert 15 <= len(STYLES) <= 22
    assert sum(len(c) > 1 for c in STYLES.values()) >= 4  # shared styles, as in Table 2
    assert [CATEGORY_TYPE[c] for c in CATEGORIES] == sorted((CATEGORY_TYPE[c] for c in CATEGORIES),
                                                             key=OBJECT_TYPES.index)
    with pytest.raises(ValueError, match="do not apply"):
        Garment("t-shirt", styles=("chelsea",))
    assert CATEGORY_TYPE_NAMES[4] == "footwear"


def test_deterministic():
    a, oa = render_outfit(None, CFG, rng=7)
    b, ob = render_outfit(None, CFG, rng=7)
    assert np.array_equal(a, b) and oa == ob
    assert sample_outfit(3) == sample_outfit(3)
    c, _ = render_outfit(None, CFG, rng=8)
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape == (112, 112, 3)


def test_labels_respect_mask_and_shoes_come_in_pairs():
    m = applicable_mask()
    n_garments = []
    for _, img, objs, info in scenes(40):
        spec = info["spec"]
        n_garments.append(len(spec.garments))
        for o in objs:
            row = m[CATEGORIES.index(o["category"])]
            assert all(row[ATTRIBUTES.index(a)] for a in o["attributes"]), o
            assert o["object_type"] == CATEGORY_TYPE[o["category"]]
            assert o["visible_fraction"] >= CFG.min_visible_fraction
        shoes = [o for o in objs if o["object_type"] == "footwear"]
        if any(g.object_type == "footwear" for g in spec.garments):
            assert len(shoes) == 2  # shoes are drawn last: never occluded
            assert [s["side"] for s in shoes] == ["left", "right"]
            assert shoes[0]["category"] == shoes[1]["category"]
            assert shoes[0]["attributes"] == shoes[1]["attributes"]
            assert shoes[0]["box"][2] <= shoes[1]["box"][0]  # the left shoe lies left of the right one
        else:
            assert not shoes
    assert min(n_garments) >= 2 and max(n_garments) <= 4


def test_boxes_inside_and_tight_on_visible_pixels():
    S = CFG.image_size
    checked = 0
    for seed, img, objs, info in scenes(12, start=100):
        spec = info["spec"]
        for o in objs:
            x1, y1, x2, y2 = o["box"]
            assert 0 <= x1 < x2 <= S and 0 <= y1 < y2 <= S
        # drop each garment in turn (shoes: hide one shoe) and compare with the full scene
        full = _render(spec, CFG, np.random.default_rng(seed + 10**6))
        _, full_objs = full[0], full[1]
        for k, o in enumerate(full_objs):
            if o["object_type"] == "footwear":
                oi = sum(2 if g.object_type == "footwear" else 1 for g in spec.garments[:o["garment"]])
                oi += 1 if o["side"] == "right" else 0
                other = _render(spec, CFG, np.random.default_rng(seed + 10**6), hide=(oi,))[0]
            else:
                rest = tuple(g for i, g in enumerate(spec.garments) if i != o["garment"])
                other = _render(replace(spec, garments=rest), CFG, np.random.default_rng(seed + 10**6))[0]
            diff = (full[0] != other).any(axis=2)
            ys, xs = np.nonzero(diff)
            assert len(ys)
            x1, y1, x2, y2 = o["box"]
            # every changed pixel lies in the box, and the box is tight: the changes reach all four sides
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [x1, y1, x2, y2], (seed, o)
            checked += 1
    assert checked > 30


def test_hidden_objects_are_left_out():
    # a closed coat over a t-shirt hides it: the t-shirt is drawn but not annotated
    rng = np.random.default_rng(0)
    spec = sample_outfit(rng)
    tee = Garment("t-shirt", shape={"hem": 2.6, "sleeve": 3, "neck": "crew", "width": 1.05}, colour="red")
    trousers = Garment("trousers", shape={"hem": 6.0, "width": 1.05}, colour="navy")
    coat = Garment("coat", styles=("puffer",), shape={"hem": 3.5, "width": 1.02, "lapel": 1}, colour="green")
    shoes = Garment("boots", shape={"shaft": 5.6}, colour="brown")
    spec = OutfitSpec((trousers, tee, coat, shoes), skin=spec.skin)
    _, objs, info = render_outfit(spec, CFG, rng=1, return_info=True)
    cats = [o["category"] for o in objs]
    assert "t-shirt" not in cats and {"coat", "trousers", "boots"} <= set(cats)
    assert any(d["category"] == "t-shirt" for d in info["dropped"])


def test_square_crop_border_and_degenerate_boxes():
    img = np.zeros((50, 80, 3), np.uint8)
    img[:, :40] = 200
    for box in ([0, 0, 10, 10], [70, 40, 80, 50], [-20, -5, 5, 5], [79, 49, 79, 49], [30, 30, 30, 30],
                [90, 60, 120, 90], [40, 10, 20, 30], [10.5, 3.2, 11.1, 40.7]):
        c = square_crop(img, box, size=32)
        assert c.shape == (32, 32, 3) and c.dtype == np.uint8
    # a box inside the left half stays in the left colour; PIL and grey input work
    c = square_crop(Image.fromarray(img), [5, 5, 15, 15], size=16)
    assert (c == 200).all()
    g = square_crop(img[..., 0], [60, 5, 70, 15], size=16)
    assert g.shape == (16, 16, 3) and (g == 0).all()
    # edge padding: a box at the corner repeats the border pixels
    c = square_crop(img, [0, 0, 4, 4], size=8, pad=3.0)
    assert (c == 200).all()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("outfit") / "ds"
    stats = generate_outfits(out, 40, seed=3, image_size=96, crop_size=48, progress=False, workers=1)
    return out, stats


def test_files_coco_df2_and_crops(dataset):
    from pycocotools.coco import COCO

    out, stats = dataset
    recs = load_outfit_ground_truth(out)
    assert len(recs) == 40 and [r["id"] for r in recs] == list(range(1, 41))
    assert sum(len(load_outfit_ground_truth(out, s)) for s in SPLITS) == 40
    assert load_outfit_ground_truth(out, "val") == load_outfit_ground_truth(out, "validation")
    n_ann = 0
    for s in SPLITS:
        coco = COCO(str(out / "annotations" / f"instances_{s}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(OBJECT_TYPES)
        split_recs = [r for r in recs if r["split"] == s]
        assert sorted(coco.getImgIds()) == [r["id"] for r in split_recs]
        for r in split_recs:
            assert (out / s / "image" / f"{r['id']:06d}.jpg").is_file()
            img = coco.loadImgs(r["id"])[0]
            assert img["file_name"] == f"{r['id']:06d}.jpg" and img["width"] == 96
            anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=r["id"])), key=lambda a: a["id"])
            df2 = json.loads((out / s / "annos" / f"{r['id']:06d}.json").read_text())
            assert df2["source"] == "shop" and df2["pair_id"] == r["id"]
            items = [df2[f"item{k}"] for k in range(1, len(r["objects"]) + 1)]
            assert len(df2) == 2 + len(items) == 2 + len(anns)
            for o, a, it in zip(r["objects"], anns, items):
                x1, y1, x2, y2 = o["box"]
                assert a["bbox"] == [x1, y1, x2 - x1, y2 - y1] and a["area"] == (x2 - x1) * (y2 - y1)
                assert a["category_id"] == OBJECT_TYPES.index(o["object_type"]) + 1 and a["iscrowd"] == 0
                assert a["garment_category"] == o["category"] == it["category_name"]
                assert a["attributes"] == o["attributes"] == it["attributes"]
                assert it["bounding_box"] == o["box"] and it["category_id"] == CATEGORIES.index(o["category"]) + 1
                assert it["object_type"] == o["object_type"] and it["viewpoint"] == 2
                assert it["scale"] in (1, 2, 3) and it["occlusion"] in (1, 2, 3)
            n_ann += len(anns)
    assert n_ann == stats["num_objects"] == sum(len(r["objects"]) for r in recs)
    coco = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert [c["name"] for c in coco["garment_categories"]] == list(CATEGORIES)
    assert [a["name"] for a in coco["attribute_names"]] == list(ATTRIBUTES)

    # stage-2 crops
    df = read_deepfashion(out / "crops", require=("categories", "partition", "bboxes"))
    assert df.num_images == n_ann and df.attribute_names == list(ATTRIBUTES)
    assert df.category_names == list(CATEGORIES)
    assert [CATEGORY_TYPE_NAMES[t] for t in df.category_types] == [
        {"upper body": "upper", "lower body": "lower", "full body": "full", "footwear": "footwear"}[CATEGORY_TYPE[c]]
        for c in CATEGORIES]
    index = [json.loads(line) for line in (out / "crops" / "objects.jsonl").read_text().splitlines()]
    assert [e["name"] for e in index] == df.image_names
    by_id = {r["id"]: r for r in recs}
    m = applicable_mask()
    for i, e in enumerate(index):
        o = by_id[e["scene_id"]]["objects"][e["item"] - 1]
        assert o["box"] == e["box"] and o["category"] == e["category"] == CATEGORIES[df.categories[i]]
        assert {"train": "train", "validation": "val", "test": "test"}[e["split"]] == df.partition[i]
        pos = [ATTRIBUTES[j] for j in np.flatnonzero(df.labels[i] == 1)]
        assert pos == o["attributes"] and m[df.categories[i], df.labels[i] == 1].all()
        assert (0 <= df.bboxes[i]).all() and (df.bboxes[i] <= 48).all()
    crop = np.asarray(Image.open(out / "crops" / index[0]["name"]))
    assert crop.shape == (48, 48, 3)
    # the crop on disk is square_crop of the scene
    scene = np.asarray(Image.open(out / index[0]["scene"]))
    again = square_crop(scene, index[0]["box"], 48)
    assert np.abs(again.astype(int) - crop.astype(int)).mean() < 12  # both went through JPEG once more


def test_imbalance_stats_match_a_recomputation(dataset):
    out, stats = dataset
    synth = json.loads((out / "synth.json").read_text())
    assert synth["format"] == "outfit" and synth["num_scenes"] == 40
    objs = [o for r in load_outfit_ground_truth(out) for o in r["objects"]]
    for key, vocab, labels in (("object_types", OBJECT_TYPES, [[o["object_type"]] for o in objs]),
                               ("categories", CATEGORIES, [[o["category"]] for o in objs]),
                               ("attributes", ATTRIBUTES, [o["attributes"] for o in objs])):
        y = np.array([[v in ls for v in vocab] for ls in labels])
        got = synth["imbalance"][key]
        assert got["counts"] == {v: int(c) for v, c in zip(vocab, y.sum(0))}
        assert synth["counts"][key] == got["counts"]
        ir = imbalance_ratios(y)
        assert [got["ir"][v] for v in vocab] == [None if np.isnan(r) else pytest.approx(r, abs=1e-4) for r in ir]
        assert got["mean_ir"] == pytest.approx(mean_imbalance_ratio(y), abs=1e-4)
        assert got["scumble"] == pytest.approx(scumble(y), abs=1e-4)
    # footwear is the majority object type (pairs), as in the paper's Mallzee data
    c = synth["counts"]["object_types"]
    assert c["footwear"] == max(c.values())


def test_cli_writes_a_folder(tmp_path):
    from fashionlab.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "outfit", "--scenes", "6", "--seed", "1", "--out", str(out), "--image-size", "96",
                 "--crop-size", "32", "--quiet"]) == 0
    synth = json.loads((out / "synth.json").read_text())
    assert synth["num_scenes"] == 6 and synth["image_size"] == 96 and synth["crop_size"] == 32
    assert (out / "annotations" / "instances_train.json").is_file()
    assert (out / "crops" / "Anno" / "list_attr_img.txt").is_file()
