"""The ``m3net`` experiment (paper 05) on tiny data: rows, consistency of the aggregates, the data path through
the DeepFashion reader, the recipe's steps called one at a time (a model built outside the recipe, the
trained-model cache), and the paper's numbers against the paper's text."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from fashionlab import config, experiments
from fashionlab.experiments import paper05

from conftest import run_tiny_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = paper05.M3Config(num_images=300, image_size=48, fai_num_images=1000, width=8, epochs=1, triplets_per_epoch=96,
                        batch=32, lr=2e-3, k=20, cond_dim=16, mlp_hidden=16, dim=16)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_tiny_experiment(tmp_path_factory, "m3net", paper05.M3_CONFIGS, TINY)


def test_registered_with_a_config_per_mode():
    exp = experiments.get("m3net")
    assert exp.notebook == "05_m3net.ipynb"
    assert set(paper05.M3_CONFIGS) == {"quick", "default", "full"}
    assert paper05.M3_CONFIGS["default"].zeta == 0.4 and paper05.M3_CONFIGS["default"].gamma == 0.8


def test_rows_cover_methods_metrics_and_datasets(quick):
    res, out = quick
    assert isinstance(res, paper05.M3Result)
    rows = res.rows
    got = {(r["dataset"], r["method"], r["metric"]) for r in rows if "attribute" not in r}
    for ds in paper05.DATASETS:
        for m in paper05.METHODS + ("M3-Net (attribute space only)", "M3-Net_a (attribute space only)"):
            for metric in ("MAP@all", "MAP@20", "Recall@20"):
                assert (ds, m, metric) in got
        for m in paper05.METHODS[1:]:
            assert (ds, m, "classes excluded at gamma") in got
            assert (ds, m, "class prediction F1 at gamma") in got
    assert ("multi-label", "M3-Net", "MAP@all (all query classes), queries with 2+ classes") in got
    assert any(r["metric"] == "attention area (80% of mass)" for r in rows)
    for r in rows:
        assert 0.0 <= r["value"] <= 100.0, r
    assert (out / "m3net.json").exists() and "### multi-label" in (out / "m3net.md").read_text()


def test_overall_is_the_query_weighted_mean(quick):
    res, _ = quick
    for ds in paper05.DATASETS:
        r = res.evaluations[(ds, "M3-Net")]
        aps = np.concatenate([p["ap"] for p in r["per_query"].values()])
        assert abs(100 * aps.mean() - r["summary"]["MAP@all"]["overall"]) < 1e-6
        # strict relevance can only lower AP where the query has several classes
        for p in r["per_query"].values():
            single = p["num_classes"] == 1
            assert np.allclose(p["ap"][single], p["ap_all_classes"][single])


def test_multilabel_data_matches_the_ground_truth(quick):
    res, _ = quick
    d = res.data["multi-label"]
    from fashionlab.synth import load_multilabel_ground_truth

    gt = {r["name"]: r for r in load_multilabel_ground_truth(d.root, "test")}
    for n, es in enumerate(d.eval_sets["test"]):
        names = d.class_names[d.attributes[n]]
        for ids, lab in ((es["q_ids"], es["q_lab"]), (es["c_ids"], es["c_lab"])):
            for i, row in zip(ids[:20], lab[:20]):
                want = set(gt[d.filenames["test"][i]]["classes"].get(d.attributes[n], []))
                assert {names[m] for m in np.flatnonzero(row)} == want
    # a folder passed as --data goes through the same reader
    again = paper05.load_data(TINY, "multi-label", d.root, 0)
    assert again.num_classes == d.num_classes
    assert np.array_equal(again.train_positives, d.train_positives)


def test_typed_result_holds_models_histories_and_attention(quick):
    res, _ = quick
    assert res.config == TINY and set(res.data) == set(paper05.DATASETS)
    for ds in paper05.DATASETS:
        for m in paper05.METHODS:
            assert not res.models[(ds, m)].training  # left in eval mode
            assert len(res.histories[(ds, m)]) == TINY.epochs
    assert set(res.attention) == set(res.data["multi-label"].attributes)
    saved = res.to_json()  # the file's rows are the result's, each with the start of the backbones
    assert [{k: v for k, v in r.items() if k != "start"} for r in saved["rows"]] == res.rows
    assert {r["start"] for r in saved["rows"]} == {saved["start"]} == {"scratch"}


def _data_root(path):
    """The FASHIONLAB_DATA folder the fixture rendered into (it holds ``checkpoints/``)."""
    for p in path.parents:
        if (p / "checkpoints" / "m3net").is_dir():
            return p
    raise AssertionError(f"no checkpoints folder above {path}")


def test_notebook_path_reuses_the_recipes_model_and_takes_a_module_of_ones_own(quick, monkeypatch, capsys):
    """The steps one at a time, as notebook 05 calls them: a model built outside the run, trained with the
    same key, is loaded from the cache (and evaluates exactly as the recipe's); a different module trains,
    and a second training of the same module loads."""
    import torch

    from fashionlab.models import M3Net, build_backbone

    res, _ = quick
    d = res.data["multi-label"]
    monkeypatch.setenv("FASHIONLAB_DATA", str(_data_root(d.root)))
    monkeypatch.setitem(paper05.M3_CONFIGS, "quick", TINY)
    model = paper05.build_model("M3-Net", TINY, d, seed=0)
    hist = paper05.train("M3-Net", model, d, TINY, seed=0, device=torch.device("cpu"))
    assert "loaded the trained m3net M3-Net" in capsys.readouterr().out
    assert hist.best == res.histories[("multi-label", "M3-Net")].best
    mine = paper05.evaluate("M3-Net", model, d)
    assert mine["summary"] == res.evaluations[("multi-label", "M3-Net")]["summary"]

    def student():
        torch.manual_seed(1)
        return M3Net(build_backbone("smallcnn", width=8, output_stride=8, final_relu=False), d.num_classes,
                     variant="attribute", cond_dim=8, mlp_hidden=8)

    small = replace(TINY, triplets_per_epoch=64)
    paper05.train("M3-Net_a", student(), d, small, seed=0, mode="student")
    assert "loaded" not in capsys.readouterr().out
    again = student()
    paper05.train("M3-Net_a", again, d, small, seed=0, mode="student")
    assert "loaded the trained m3net M3-Net_a" in capsys.readouterr().out
    out = paper05.evaluate("M3-Net_a", again, d, split="valid", gamma=0.5)
    assert set(out["summary"]) == {"MAP@all", "MAP@20", "Recall@20"}


def test_evaluation_puts_the_model_in_eval_mode_and_restores_it(quick):
    res, _ = quick
    d = res.data["multi-label"]
    model = res.models[("multi-label", "M3-Net")]
    want = paper05.evaluate("M3-Net", model, d)["summary"]
    model.train()
    try:
        assert paper05.evaluate("M3-Net", model, d)["summary"] == want  # BatchNorm in eval mode: same numbers
        assert model.training
    finally:
        model.eval()


def test_paper_rows_are_the_papers_numbers():
    text_path = config.project_root().parent / "shared" / "papers" / "05_m3net_attribute_class_duet.txt"
    if not text_path.exists():
        pytest.skip("paper text not available")
    text = text_path.read_text()
    numbers = set(re.findall(r"\d+\.\d\d", text))
    rows = paper05.paper_rows()
    assert len(rows) == 7 * (8 + 11)
    for r in rows:
        assert f"{r['value']:.2f}" in numbers, r
