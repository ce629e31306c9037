"""Paper 03's experiment (``asen``) end to end in quick mode, its attention scores against oracles, and the
FashionSynth ``asen`` preset it runs on."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionlab import experiments
from fashionlab.datasets import TwoScaleImages
from fashionlab.experiments import paper03
from fashionlab.synth import PRESETS, RenderConfig, render, sample_garment, set_value
from fashionlab.synth.garments import ATTRIBUTES, DETAIL_ATTRIBUTES, LENGTH_ATTRIBUTES, NUM_VALUES, allowed_values

SLIDES = Path(__file__).resolve().parents[2] / "shared" / "papers" / "03_asen_attribute_specific_embedding_slides.txt"
EXTRA = ("ASEN_g after stage 2", "ASEN_l (whole image)", "ASEN_full")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The experiment in quick mode, once, on a FashionSynth dataset in a temporary FASHIONLAB_DATA."""
    data = tmp_path_factory.mktemp("data")
    out = tmp_path_factory.mktemp("results")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHIONLAB_DATA", str(data))
        mp.setenv("FASHIONLAB_PROGRESS", "0")
        mp.delenv("FASHIONLAB_FASHIONAI", raising=False)
        res = experiments.run("asen", mode="quick", seed=0, out=out, progress=False)
    torch.set_num_threads(old)
    return res, out


# ---------------------------------------------------------------------------------------------- registry, paper

def test_registered_with_a_config_per_mode():
    assert "asen" in experiments.names()
    assert set(paper03.ASEN_CONFIGS) == {"quick", "default", "full"}
    for cfg in paper03.ASEN_CONFIGS.values():
        assert cfg.margin == 0.2 and cfg.threshold == 0.4 and cfg.mix_beta == 0.6     # ASEN++ (docs/implementations.md §3)
        assert cfg.loss_weights == (1.0, 0.1, 0.1) and cfg.preset == "asen"
        assert cfg.global_size < cfg.image_size and cfg.local_size <= cfg.global_size  # crops come from hi-res
    assert paper03.METHODS == ("Triplet", "CSN", "ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_g", "ASEN_l", "ASEN")


def _numbers_in(text: str) -> set[float]:
    return {float(x) for x in re.findall(r"(?<![\w.])\d+\.\d+", text)}


@pytest.mark.skipif(not SLIDES.exists(), reason="the slides text is not beside the checkout")
def test_paper_rows_hold_only_numbers_from_the_text():
    text = SLIDES.read_text(encoding="utf-8")
    numbers = _numbers_in(text)
    rows = paper03.paper_rows()
    assert rows and all(r["value"] in numbers for r in rows), [r for r in rows if r["value"] not in numbers]
    assert {r["dataset"] for r in rows} == {paper03.PAPER_DATASET}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    assert methods[:6] == ["Random baseline", "Triplet", "CSN", "ASEN_g", "ASEN_l", "ASEN"]
    assert {"ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_full"} <= set(methods)
    # each row: 8 attributes + overall, and the row's numbers appear in this order on one line of the slides
    lines = [_line_numbers(l) for l in text.splitlines()]
    for m in methods:
        sub = [r for r in rows if r["method"] == m]
        assert [r.get("attribute") for r in sub] == paper03.PAPER_ATTRIBUTES + [None]
        vals = [r["value"] for r in sub]
        assert any(v == vals for v in lines), m
    ours = {"Random baseline", *paper03.METHODS}
    assert ours <= set(methods) | {"Triplet"}


def _line_numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\w.])\d+\.\d+", line)]


# ---------------------------------------------------------------------------------------------- the oracles

def test_pointing_game_known_peak_ties_and_chance():
    att = torch.zeros(3, 4, 4)
    att[0, 1, 2] = 1.0            # peak in cell row 1, column 2: pixels x [32, 48), y [16, 32) of a 64 px image
    att[1, 3, 0] = 1.0            # peak far away, bottom-left
    att[2] = 1.0 / 16             # uniform: every cell is a peak
    box = torch.tensor([40.0, 20.0, 44.0, 24.0])            # inside cell (1, 2) only
    s = paper03.pointing_game(att, box.expand(3, 4), 64)
    assert s[0] == 1.0 and s[1] == 0.0 and s[2] == pytest.approx(1 / 16)
    # a box touching a cell's edge from outside does not overlap it (x2 exclusive)
    s = paper03.pointing_game(att[:1], torch.tensor([[0.0, 0.0, 32.0, 64.0]]), 64)
    assert s[0] == 0.0
    # two tied peaks, one inside: half a hit; a box spanning 2 x 2 cells under a uniform map: 4 / 16
    two = torch.zeros(1, 4, 4)
    two[0, 1, 2] = two[0, 3, 3] = 0.5
    assert paper03.pointing_game(two, box[None], 64)[0] == pytest.approx(0.5)
    assert paper03.pointing_game(att[2:], torch.tensor([[10.0, 10.0, 30.0, 30.0]]), (64, 64))[0] == pytest.approx(0.25)
    # non-square images and maps: cell (0, 1) of a 2 x 3 map over 60 x 90 pixels is x [30, 60), y [0, 30)
    m = torch.zeros(1, 2, 3)
    m[0, 0, 1] = 2.0
    assert paper03.pointing_game(m, torch.tensor([[31.0, 1.0, 33.0, 3.0]]), (60, 90))[0] == 1.0
    assert paper03.pointing_game(m, torch.tensor([[61.0, 1.0, 63.0, 3.0]]), (60, 90))[0] == 0.0


def test_backbone_output_stride_and_whole_image_localisation():
    from fashionlab.models import ASENWholeImage, build_backbone

    cfg = paper03.ASEN_CONFIGS["quick"]
    net = paper03.build_backbone(replace(cfg, output_stride=8))
    assert repr(net) == repr(build_backbone("smallcnn", cfg.width, output_stride=8, final_relu=False))
    assert net.stride == 8 and tuple(net(torch.zeros(1, 3, 64, 64)).shape[-2:]) == (8, 8)
    assert paper03.build_backbone(replace(cfg, output_stride=16)).stride == 16
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    assert (paper03.build_backbone(replace(cfg, final_relu=True))(x) >= 0).all()
    assert (paper03.build_backbone(replace(cfg, final_relu=False))(x) < 0).any()   # ends at the BatchNorm
    g = paper03.build_model("ASEN_g", cfg, 8).eval()
    full = paper03.build_model("ASEN_full", cfg, 8, stage1=g).eval()
    crop = paper03.build_asen(g, cfg).eval()
    assert isinstance(full, ASENWholeImage) and not isinstance(crop, ASENWholeImage)
    assert full.loss_weights == cfg.loss_weights and full.margin == cfg.margin
    with pytest.raises(ValueError, match="stage1"):
        paper03.build_model("ASEN", cfg, 8)
    assert full.local_branch.attribute_embedding is full.global_branch.attribute_embedding   # one shared table
    assert full.global_branch is not g                                                      # stage 1 kept as is
    x_hi = torch.randn(2, 3, 64, 64)
    x = torch.nn.functional.interpolate(x_hi, size=32, mode="bilinear", antialias=True)
    out = full(x, [0, 5], x_hi)
    assert torch.equal(out.boxes, torch.tensor([[0.0, 0, 64, 64]] * 2))
    assert crop(x, [0, 5], x_hi).boxes.shape == (2, 4)


def test_two_scale_images_share_flips(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    names = []
    for i in range(6):
        arr = np.zeros((32, 32, 3), dtype=np.uint8)
        arr[:, : 8 + 3 * i] = rng.integers(0, 255, 3)          # a left-hand band: flips are visible
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
        names.append(f"{i}.png")
    im = TwoScaleImages(tmp_path, names, 32, 16)
    torch.manual_seed(3)
    lo, hi = im.batch(np.arange(6), train=True)
    assert lo.shape == (6, 3, 16, 16) and hi.shape == (6, 3, 32, 32)
    down = torch.nn.functional.interpolate(hi, size=16, mode="bilinear", antialias=True)
    assert (lo - down).abs().max() < 0.05                                # the same (flipped) picture
    lo2, hi2 = im.batch(np.arange(6), hires=False)
    assert hi2 is None and lo2.shape == lo.shape
    # a triplet batch: anchors, then positives, then negatives, each triplet's attribute three times
    t = np.array([[0, 1, 2, 7], [3, 4, 5, 2]])
    x, x_hr, attr = im.triplet_batch(t, train=False, hires=True)
    assert torch.equal(x, im.batch([0, 3, 1, 4, 2, 5])[0]) and x_hr.shape == (6, 3, 32, 32)
    assert attr.tolist() == [7, 2, 7, 2, 7, 2]
    # evaluation batches: in order, unflipped, 4 at a time
    items = np.array([[5, 1], [0, 3], [2, 0], [4, 4], [1, 6]])
    got = list(im.item_batches(items, batch=4))
    assert [len(b[0]) for b in got] == [4, 1] and got[0][1] is None
    assert torch.equal(torch.cat([b[0] for b in got]), im.batch(items[:, 0])[0])
    assert torch.cat([b[2] for b in got]).tolist() == [1, 3, 0, 4, 6]


def test_oracle_boxes_and_crops(tmp_path):
    """An oracle crop of a flat square patch, at scale 1, is the patch's colour; at scale 2 the patch fills the
    central half; the square is centred on the box and sized on its longer side."""
    from PIL import Image

    assert torch.allclose(paper03.oracle_boxes([[40, 20, 60, 30]], 1.5), torch.tensor([[35.0, 10, 65, 40]]))
    assert torch.allclose(paper03.oracle_boxes([[0, 0, 8, 4], [5, 5, 5, 5]], 1.0),
                          torch.tensor([[0.0, -2, 8, 6], [4.5, 4.5, 5.5, 5.5]]))
    arr = np.zeros((64, 64, 3), dtype=np.uint8)
    arr[8:24, 16:32] = 200                                           # box [16, 8, 32, 24]
    Image.fromarray(arr).save(tmp_path / "0.png")
    Image.fromarray(arr[:, ::-1].copy()).save(tmp_path / "1.png")    # mirrored: box [32, 8, 48, 24]
    im = TwoScaleImages(tmp_path, ["0.png", "1.png"], 64, 8)
    boxes = np.array([[16, 8, 32, 24], [32, 8, 48, 24]], dtype=np.float32)
    one = paper03.region_crop_images(im, boxes, 1.0)
    assert one.hi is im.hi and one.lo.shape == (2, 3, 8, 8) and im.lo is not one.lo
    assert (one.lo[:, :, 1:-1, 1:-1] == 200).all()
    two = paper03.region_crop_images(im, boxes, 2.0).lo.float()
    assert (two[:, :, 3:5, 3:5] == 200).all() and (two[:, :, 0, 0] == 0).all()
    with pytest.raises(ValueError, match="boxes for 2 images"):
        paper03.region_crop_images(im, boxes[:1], 1.0)


def test_union_regions():
    recs = [{"image_size": 100, "regions": {"collar_design": [10, 10, 20, 20], "neck_design": [15, 5, 30, 18],
                                            "skirt_length": [0, 50, 100, 100]}},
            {"image_size": 100, "regions": {"collar_design": None, "skirt_length": [0, 50, 100, 100]}}]
    got = paper03.union_regions(recs, ["collar_design", "neck_design"], 50)      # decoded at half the size
    assert np.allclose(got, [[5, 2.5, 15, 10], [0, 0, 50, 50]])


def test_focused_view_keeps_only_its_attributes(quick):
    res, _ = quick
    d = res.data
    neck = [d.attributes.index(a) for a in paper03.SMALL_REGION_ATTRIBUTES]
    v = d.focused(paper03.SMALL_REGION_ATTRIBUTES)
    assert v.images is d.images and d.focus is None and v.focus == tuple(neck)
    full = np.concatenate(d.train_batches(3))
    kept = np.concatenate(v.train_batches(3))
    assert set(np.unique(kept[:, 3])) <= set(neck)
    expect = full[np.isin(full[:, 3], neck)]                      # same triplets, same order (whole batches)
    assert np.array_equal(kept, expect[:len(kept)]) and len(expect) - len(kept) < d.cfg.batch
    q, c = v.queries_candidates("test")
    sq = d.splits["test"].queries
    assert np.array_equal(q, sq[np.isin(sq[:, 1], neck)]) and set(np.unique(c[:, 1])) <= set(neck)
    assert np.array_equal(v.items("test"), np.concatenate([q, c]))


def test_detail_study_rows(quick):
    """The neck-detail study: its methods, neck attributes only, overall = query-weighted mean of the four."""
    res, _ = quick
    d, study = res.data, res.study
    cfg = paper03.ASEN_CONFIGS["quick"]
    rows = [r for r in res.rows if r["metric"] == paper03.DETAIL_METRIC]
    oracle = [f"Triplet, oracle crop x{s:g}" for s in cfg.oracle_scales]
    methods = ["Random baseline", *oracle, "Triplet", "ASEN_g", "ASEN", "ASEN_l", "ASEN_g after stage 2"]
    assert list(dict.fromkeys(r["method"] for r in rows)) == methods
    q = d.focused(paper03.SMALL_REGION_ATTRIBUTES).queries_candidates("test")[0]
    nq = {d.attributes[a]: n for a, n in zip(*np.unique(q[:, 1], return_counts=True))}
    assert set(nq) == set(paper03.SMALL_REGION_ATTRIBUTES)
    for m in methods:
        per = {r["attribute"]: r["value"] for r in rows if r["method"] == m and "attribute" in r}
        overall = [r["value"] for r in rows if r["method"] == m and "attribute" not in r]
        assert set(per) == set(nq)
        assert overall[0] == pytest.approx(sum(per[a] * nq[a] for a in nq) / sum(nq.values()), abs=0.02)
    assert len(study.histories["ASEN_g"]) == cfg.detail_epochs
    assert len(study.histories["ASEN"]) == cfg.detail_stage2_epochs
    assert len(study.histories[oracle[0]]) == cfg.epochs
    for metric in paper03.DETAIL_SCORES:
        got = [r for r in res.rows if r["metric"] == metric]
        assert {r["method"] for r in got} == {"ASEN_g"}
        assert {r["attribute"] for r in got if "attribute" in r} <= set(paper03.SMALL_REGION_ATTRIBUTES)


# ---------------------------------------------------------------------------------------------- the preset

def test_asen_preset_leaves_the_others_alone_and_keeps_details_small():
    assert PRESETS["wild"] == RenderConfig() and PRESETS["hard"].scale == (0.09, 0.16)
    assert PRESETS["clean"].background == "plain" and PRESETS["clean"].clutter == 0
    asen = PRESETS["asen"]
    assert asen.clutter > PRESETS["wild"].clutter and asen.clutter_contrast > PRESETS["wild"].clutter_contrast
    S = asen.image_size
    side = {a: [] for a in ATTRIBUTES}
    area = {a: [] for a in ATTRIBUTES}
    for ai, a in enumerate(ATTRIBUTES):
        for i in range(25):
            rng = np.random.default_rng([7, ai, i])
            _, gt = render(sample_garment(rng, attribute=a), asen, rng)
            x1, y1, x2, y2 = gt["regions"][a]
            assert 0 <= x1 < x2 <= S and 0 <= y1 < y2 <= S
            area[a].append((x2 - x1) * (y2 - y1) / S / S)
            side[a].append(max(x2 - x1, y2 - y1) / S)
    for a in DETAIL_ATTRIBUTES:
        # a few percent of the picture; in the default mode's 48 px global view about 8-15 px across
        assert 0.01 < np.mean(area[a]) < 0.07, (a, np.mean(area[a]))
        assert 7 <= 48 * np.mean(side[a]) <= 16, (a, 48 * np.mean(side[a]))
    for a in LENGTH_ATTRIBUTES:                      # the regions that need the whole garment are larger
        assert np.mean(side[a]) > max(np.mean(side[d]) for d in DETAIL_ATTRIBUTES), a


def test_asen_preset_regions_hold_every_changed_pixel():
    """As FashionSynth's own region test, on the ``asen`` preset: changing one attribute changes pixels only in
    its region boxes (lengths: between the two hems)."""
    cfg = PRESETS["asen"]
    for a in ATTRIBUTES:
        base = sample_garment(np.random.default_rng([5, 1]), attribute=a, value=1)
        res = []
        for v in range(1, NUM_VALUES[a]):
            if v in allowed_values(base.category, a):
                spec = set_value(base, a, v)
                res.append((spec, *render(spec, cfg, np.random.default_rng([5, 2]))))
        for (s1, im1, g1), (s2, im2, g2) in zip(res, res[1:]):
            diff = (im1 != im2).any(axis=2)
            assert diff.sum() >= 3
            allowed = np.zeros_like(diff)
            for k, att in enumerate(ATTRIBUTES):
                if s1.values[k] != s2.values[k]:
                    boxes = [b for b in (g1["regions"][att], g2["regions"][att]) if b]
                    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
                    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
                    if att in LENGTH_ATTRIBUTES:
                        gb = [g1["garment_box"], g2["garment_box"]]
                        x1, x2 = min([x1] + [b[0] for b in gb]), max([x2] + [b[2] for b in gb])
                    allowed[y1:y2, x1:x2] = True
            assert not (diff & ~allowed).any(), (a, s1.value(a), s2.value(a))


# ---------------------------------------------------------------------------------------------- the experiment

def test_rows_methods_and_metrics(quick):
    res, out = quick
    saved = json.loads((out / "asen.json").read_text())
    assert (out / "asen.md").exists() and saved["mode"] == "quick" and saved["experiment"] == "asen"
    assert saved["paper_rows"] == paper03.paper_rows()
    attrs = list(ATTRIBUTES)
    assert isinstance(res, paper03.AsenResult) and res.config == paper03.ASEN_CONFIGS["quick"]
    rows = res.rows
    for r in rows:
        assert {"method", "metric", "value"} <= set(r) <= {"method", "metric", "value", "attribute"}
        assert 0 <= r["value"] <= 100 and r.get("attribute", attrs[0]) in attrs, r
    maps = [r for r in rows if r["metric"] == "mAP"]
    assert list(dict.fromkeys(r["method"] for r in maps)) == ["Random baseline", *paper03.METHODS, *EXTRA]
    assert {r["metric"] for r in rows} == {"mAP", "pointing game", "box IoU", paper03.DETAIL_METRIC,
                                           *paper03.DETAIL_SCORES}
    for metric in ("pointing game", "box IoU"):
        assert {r["method"] for r in rows if r["metric"] == metric} == {"ASEN_g", "ASEN_g w/o ASA"}
    # every method: 8 attributes + overall; overall = the query-weighted mean of the attributes (§4.1)
    nq = np.bincount(res.data.splits["test"].queries[:, 1], minlength=8)
    for m in ["Random baseline", *paper03.METHODS, *EXTRA]:
        sub = [r for r in maps if r["method"] == m]
        per = {r["attribute"]: r["value"] for r in sub if "attribute" in r}
        overall = [r["value"] for r in sub if "attribute" not in r]
        assert list(per) == attrs and len(overall) == 1
        assert overall[0] == pytest.approx(sum(per[a] * nq[i] for i, a in enumerate(attrs)) / nq.sum(), abs=0.02)
    hist = res.histories
    assert set(hist) == {*paper03.SINGLE_BRANCH, "ASEN", "ASEN_full"}
    assert len(hist["ASEN"]) == paper03.ASEN_CONFIGS["quick"].stage2_epochs
    assert len(hist["ASEN_g"]) == paper03.ASEN_CONFIGS["quick"].epochs
    assert all(np.isfinite(h["loss"]) for h_ in hist.values() for h in h_)
    assert {"L_g", "L_l", "L_a"} <= {k[len("train_"):] for k in hist["ASEN"][0] if k.startswith("train_")}
    assert res.models["ASEN_l"] is res.models["ASEN"]
    assert list(res.scores) == ["Random baseline", *paper03.METHODS, *EXTRA]
    assert any("Algorithm 1" in n for n in saved["notes"])


def test_uniform_attention_scores_chance(quick):
    """ASEN_g w/o ASA attends uniformly: its pointing game is the share of grid cells touching the region and
    its box is the whole image (IoU = the region's share of the image), computed here independently."""
    res, _ = quick
    d = res.data
    cfg = d.cfg
    boxes, has, size = d.regions("test")
    h = w = paper03.build_backbone(cfg).output_size(cfg.global_size)[0]
    cell = size / h
    chance, area = [], []
    for x1, y1, x2, y2 in boxes[has]:
        cols = sum(1 for j in range(w) if j * cell < x2 and (j + 1) * cell > x1)
        rows = sum(1 for i in range(h) if i * cell < y2 and (i + 1) * cell > y1)
        chance.append(cols * rows / (h * w))
        area.append((x2 - x1) * (y2 - y1) / size ** 2)
    scores = res.attention["ASEN_g w/o ASA"]
    assert scores["n"] == int(has.sum()) > 0
    assert scores["pointing game"]["overall"] == pytest.approx(np.mean(chance), abs=1e-6)
    assert scores["box IoU"]["overall"] == pytest.approx(np.mean(area), abs=1e-6)
    row = [r for r in res.rows if r["method"] == "ASEN_g w/o ASA" and r["metric"] == "box IoU"
           and "attribute" not in r]
    assert row[0]["value"] == round(100 * np.mean(area), 2)
    att = res.attention["ASEN_g"]["attention"]
    assert att.shape == (scores["n"], h, w) and torch.allclose(att.sum(dim=(1, 2)), torch.ones(len(att)), atol=1e-5)


def test_asen_feature_is_the_combined_branches(quick):
    """The ASEN test feature is β·cos_g + (1-β)·cos_l (docs/implementations.md §3): check on a few test items."""
    res, _ = quick
    d, model = res.data, res.models["ASEN"]
    items = d.items("test")[:6]
    lo, hi = d.images["test"].batch(items[:, 0])
    a = torch.from_numpy(items[:, 1])
    with torch.no_grad():
        f = paper03.feature_fn("ASEN", model, 0.6)[0](lo, hi, a)
        g = paper03.feature_fn("ASEN_g after stage 2", model)[0](lo, hi, a)
        l = paper03.feature_fn("ASEN_l", model)[0](lo, hi, a)
    assert torch.allclose(f @ f.T, 0.6 * (g @ g.T) + 0.4 * (l @ l.T), atol=1e-5)


def test_notebook_path_own_module_and_the_cache(quick, tmp_path, monkeypatch, capsys):
    """What notebook 03 does: build a model outside the recipe (here with a backbone of one's own), pass it to
    train and evaluate; the same build trained again with the same key loads from the cache (and says so), with
    the same weights, history and mAP; another initialisation trains afresh."""
    from fashionlab.models import ASENGlobal, SmallCNN

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    res, _ = quick
    view = res.data.focused(paper03.SMALL_REGION_ATTRIBUTES[:2], cfg=replace(res.data.cfg, epochs=1))

    def mine(seed):
        torch.manual_seed(seed)
        return ASENGlobal(SmallCNN(width=4), len(view.attributes), embed_dim=16, cond_dim=8)

    m1 = mine(0)
    h1 = paper03.train("ASEN_g", m1, view, seed=0, device="cpu", verbose=True)
    first = capsys.readouterr().out
    assert "loaded the trained" not in first and "epoch 1/1" in first and len(h1) == 1
    s1 = paper03.evaluate("ASEN_g", m1, view)
    assert set(s1) == {view.attributes.index(a) for a in paper03.SMALL_REGION_ATTRIBUTES[:2]} | {"overall"}
    assert len(list((tmp_path / "checkpoints" / "asen").glob("ASEN_g-quick-seed0-*.pt"))) == 1

    m2 = mine(0)
    h2 = paper03.train("ASEN_g", m2, view, seed=0, device="cpu", verbose=True)
    assert "loaded the trained asen ASEN_g" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert list(h2) == list(h1) and paper03.evaluate("ASEN_g", m2, view) == s1

    paper03.train("ASEN_g", mine(1), view, seed=0, device="cpu", verbose=True)   # other initial weights
    assert "loaded the trained" not in capsys.readouterr().out
