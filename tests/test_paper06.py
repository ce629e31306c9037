"""The ``hls`` experiment (paper 06) on tiny data: rows, consistency of the pipeline with its parts, the
hierarchy-violation metric against a recount, and the paper's numbers against the paper's text."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fashionlab import experiments
from fashionlab.experiments import paper06

from conftest import run_tiny_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = paper06.HLSConfig(num_scenes=60, epochs=1, det_epochs=1, width=4, det_width=4, batch=32, det_batch=8,
                         hidden_dim=16, attention_units=8, fc_dim=16, embed_dim=4)
PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "06_hierarchical_label_sharing.txt"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_tiny_experiment(tmp_path_factory, "hls", paper06.HLS_CONFIGS, TINY)


def test_registered_with_a_config_per_mode():
    exp = experiments.get("hls")
    assert exp.notebook == "06_hls_pipeline.ipynb"
    assert set(paper06.HLS_CONFIGS) == {"quick", "default", "full"}
    assert paper06.HLS_CONFIGS["default"].zoom == 0.1


def test_rows_cover_the_issue_metrics(quick):
    res, out = quick
    got = {(r["dataset"], r["method"], r["metric"]) for r in res.rows if "attribute" not in r}
    for metric in ("mAP", "AR@100"):
        assert ("outfit scenes (test)", paper06.DETECTOR, metric) in got
    for method in paper06.METHODS:
        for metric in ("top-1 category", "top-3 category", "top-5 category", "recall@3 attributes",
                       "recall@5 attributes", "altered recall@3 attributes", "hierarchy violations"):
            assert ("GT crops", method, metric) in got, (method, metric)
    assert ("detected crops", paper06.DETECTOR, "retention") in got
    assert any(r["dataset"].startswith("Table 5") and r["method"] == "one model per object type"
               for r in res.rows)
    for r in res.rows:
        assert np.isfinite(r["value"]) and -1e-9 <= r["value"] <= 100 + 1e-9, r
    assert (out / "hls.json").exists() and (out / "hls.md").exists()


def test_rows_agree_with_a_recount(quick):
    """The GT-crop top-1 and violation rows are recomputed here from the returned logits by plain loops."""
    res, _ = quick
    d, cfg = res.data, res.config
    crops = res.gt_crops
    for method in paper06.METHODS:
        out = res.outputs[("GT crops", method)]
        cat = out["category"].argmax(1)
        row = {r["metric"]: r["value"] for r in res.rows if r["dataset"] == "GT crops" and r["method"] == method
               and "attribute" not in r}
        assert row["top-1 category"] == pytest.approx(100 * np.mean(cat == crops["category"]))
        for key, chosen in (("hierarchy violations",
                             lambda i: sorted(range(d.num_attributes), key=lambda a: -out["attributes"][i, a])
                             [:cfg.violation_k]),
                            (f"hierarchy violations (p >= {cfg.threshold})",
                             lambda i: [a for a in range(d.num_attributes)
                                        if 1 / (1 + np.exp(-out["attributes"][i, a])) >= cfg.threshold])):
            predicted = violating = 0
            for i in range(len(cat)):
                for a in chosen(i):
                    predicted += 1
                    violating += not d.applicable[cat[i], a]
            expected = 100 * violating / predicted if predicted else 0.0
            assert row[key] == pytest.approx(expected), key


def test_hls_uses_predicted_labels(quick):
    """STL w/ HLS at test time: the attribute network is conditioned on the category network's prediction."""
    res, _ = quick
    crops = res.gt_crops
    models = res.models["STL w/ HLS"]
    cat = paper06.predict(models["category"], crops["images"], object_type=crops["object_type"])
    att = paper06.predict(models["attributes"], crops["images"], category=cat.argmax(1), kind="attributes")
    np.testing.assert_allclose(att, res.outputs[("GT crops", "STL w/ HLS")]["attributes"], rtol=1e-5, atol=1e-5)


def test_pipeline_crops_match_garments(quick):
    res, _ = quick
    det = res.det_crops
    assert 0.0 <= det["retention"] <= 1.0
    assert len(det["category"]) == round(det["retention"] * det["garments"])
    d = res.data
    for k in range(len(det["category"])):
        i = det["scene"][k]
        gt = d.scenes["test"]
        j = np.flatnonzero(gt.categories[i] == det["category"][k])
        assert len(j) >= 1


def test_imbalance_stats_are_consistent(quick):
    res, _ = quick
    imb = res.imbalance
    assert imb["object types, down-sampled"]["MeanIR"] == pytest.approx(1.0)
    assert imb["object types, down-sampled"]["SCUMBLE"] == pytest.approx(0.0)
    assert imb["categories"]["MeanIR"] >= 1.0


@pytest.mark.skipif(not PAPER.exists(), reason="the paper text (../shared/papers) is not here")
def test_paper_numbers_appear_in_the_paper():
    text = PAPER.read_text()
    for r in paper06.paper_rows():
        v = r["value"]
        pattern = re.escape(f"{v:.2f}") + "|" + re.escape(f"{v:.1f}") + "|" + re.escape(f"{v:g}")
        assert re.search(pattern, text), r


def test_data_argument_reads_a_folder_in_the_outfit_layout(quick, tmp_path, monkeypatch):
    """``--data``: the same loader on an explicit folder gives the same crops and scenes, streamed from disk (a
    user's folder may not fit in memory); a folder without the COCO JSON names the file it wanted."""
    res, _ = quick
    d = res.data
    monkeypatch.delenv("FASHIONLAB_STREAM", raising=False)
    again = paper06.load_data(TINY, d.root, seed=0)
    assert again.category_names == d.category_names and again.attribute_names == d.attribute_names
    assert again.streams
    for s in paper06.SPLITS:
        np.testing.assert_array_equal(again.crops[s]["category"], d.crops[s]["category"])
        np.testing.assert_array_equal(again.scene_images[s][:], d.scene_images[s])
        np.testing.assert_array_equal(again.crops[s]["images"][:], d.crops[s]["images"])
    with pytest.raises(FileNotFoundError, match="instances_train.json"):
        paper06.load_data(TINY, tmp_path, seed=0)


def test_unmatched_detections_are_counted_per_type(quick):
    res, _ = quick
    det = res.det_crops
    assert int(det["unmatched_by_type"].sum()) == det["unmatched_detections"]


def test_typed_result(quick):
    res, _ = quick
    assert isinstance(res, paper06.HLSResult) and not hasattr(res, "extra")
    assert set(res.models) == set(paper06.METHODS)
    assert set(res.histories) == {"detector", *paper06.METHODS}
    assert set(res.histories["STL w/ HLS"]) == {"category", "attributes"}


def test_notebook_path_reuses_the_trained_model(quick, monkeypatch, capsys):
    """A model built outside the recipe goes through train and evaluate; training it a second time with the same
    cache key loads it (and says so), and gives the same evaluation as the recipe's own run."""
    import torch

    res, _ = quick
    monkeypatch.setenv("FASHIONLAB_DATA", str(res.data.root.parents[1]))
    monkeypatch.setitem(paper06.HLS_CONFIGS, "quick", TINY)
    d = paper06.load_data(TINY, seed=0)
    mine = paper06.build_model("STL w/ HLS", TINY, d, seed=0)
    capsys.readouterr()
    hist = paper06.train("STL w/ HLS", mine, d, TINY, seed=0, device=torch.device("cpu"))
    out = capsys.readouterr().out
    assert out.count("loaded the trained hls STL w/ HLS") == 2, out
    assert set(hist) == {"category", "attributes"}
    ev = paper06.evaluate("STL w/ HLS", mine, d, TINY, {"GT crops": res.gt_crops})
    assert ev["GT crops"]["scores"] == res.scores[("GT crops", "STL w/ HLS")]
    for a, b in zip(mine.parameters(), res.models["STL w/ HLS"].parameters()):
        torch.testing.assert_close(a, b.cpu())
    key = paper06.cache_key("STL w/ HLS", TINY, d, 0, stage="category")
    assert key["mode"] == "quick" and key["config"] == TINY


def test_ground_truth_boxes_as_detections_keep_every_garment(quick):
    """``pipeline_crops`` (datasets/outfits.py, §5.2.1) given the test scenes' own boxes and types as detections:
    every garment is matched (retention 1), the object types are the true ones, nothing is left unmatched, and the
    crops are the size asked for; with every score under ``min_score`` nothing is kept."""
    from fashionlab.datasets.outfits import pipeline_crops

    res, _ = quick
    d = res.data
    ds = d.scenes["test"]
    dets = [(np.asarray(ds.boxes[i], np.float32), np.ones(len(ds.boxes[i]), np.float32),
             np.asarray(ds.object_types[i], np.int64)) for i in range(len(ds))]
    out = pipeline_crops(d, dets, crop_size=24, min_score=0.5, split="test")
    assert out["retention"] == 1.0 and out["unmatched_detections"] == 0
    assert out["garments"] == len(out["category"]) == sum(len(b) for b, _, _ in dets)
    np.testing.assert_array_equal(out["object_type"], out["true_type"])
    assert out["images"].shape[1:] == (3, 24, 24)
    none = pipeline_crops(d, [(b, s * 0.4, t) for b, s, t in dets], crop_size=24, min_score=0.5, split="test")
    assert none["retention"] == 0.0 and len(none["category"]) == 0 and none["images"].shape == (0, 3, 24, 24)


def test_moved_helpers_are_re_exported():
    """What left the recipe for datasets/ and models/ is still importable from it under the old names (notebook 06
    and older code use them), and the recipe defines none of them again."""
    from fashionlab.datasets import outfits
    from fashionlab.models import hls_pipeline

    assert paper06.HLSData is outfits.OutfitData and paper06.SPLITS == outfits.OUTFIT_SPLITS
    for name in ("read_outfits", "imbalance_stats", "pipeline_crops"):
        assert getattr(paper06, name, getattr(outfits, name)) is getattr(outfits, name)
    for name in hls_pipeline.__all__:
        assert getattr(paper06, name) is getattr(hls_pipeline, name), name
    for name in paper06.__all__:
        assert hasattr(paper06, name), name
