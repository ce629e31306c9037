"""Paper 01's experiments (``recognition``, ``retrieval``) end to end on a tiny FashionSynth dataset."""
import json
import shutil

import numpy as np
import pytest
import torch

from fashionlab import experiments
from fashionlab.experiments import baselines, paper01

ATTRS = baselines.PAPER_TABLES["FashionAI"]["attributes"]
TINY = paper01.Paper01Config(input_size=32, width=8, epochs=2, triplets_per_epoch=256, batch=16, lr=2e-3)


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    """FASHIONLAB_DATA at a temporary folder, quick mode shrunk to a 1000-image, 32 px dataset and a tiny budget."""
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHIONLAB_DATA", str(data))
        mp.setenv("FASHIONLAB_PROGRESS", "0")
        mp.setitem(baselines.SYNTH_SIZES, "quick", baselines.SynthSize(num_images=1000, image_size=32))
        mp.setitem(paper01.PAPER01_CONFIGS, "quick", TINY)
        yield data


@pytest.fixture(scope="module")
def recognition(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    return experiments.run("recognition", mode="quick", seed=0, out=out, progress=False), out


@pytest.fixture(scope="module")
def retrieval(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    return experiments.run("retrieval", mode="quick", seed=0, out=out, progress=False), out


def test_both_experiments_are_registered_with_a_config_per_mode():
    assert {"recognition", "retrieval"} <= set(experiments.names())
    assert set(paper01.PAPER01_CONFIGS) == {"quick", "default", "full"}
    for cfg in paper01.PAPER01_CONFIGS.values():
        assert cfg.dim == 64 and cfg.margin == 0.3 and (cfg.alpha, cfg.beta) == (0.3, 0.7)


def test_paper_rows_hold_only_numbers_from_the_text():
    assert paper01.paper_rows("recognition") == []
    rows = paper01.paper_rows("retrieval")
    assert rows == [{"method": "SiaNet", "metric": "triplet accuracy", "value": 60.4,
                     "dataset": "FashionAI (paper 01)"}]


def _check_schema(saved: dict, name: str):
    assert {"experiment", "mode", "seed", "device", "seconds", "dataset", "rows", "paper_rows"} <= set(saved)
    assert saved["experiment"] == name and saved["mode"] == "quick"
    for r in saved["rows"]:
        assert {"method", "metric", "value", "start"} <= set(r) <= {"method", "metric", "value", "attribute", "start"}
        assert r["start"] == saved["start"] == "scratch"
        assert 0 <= r["value"] <= 100, r
        assert r.get("attribute", ATTRS[0]) in ATTRS


def test_recognition_rows(recognition):
    res, out = recognition
    saved = json.loads((out / "recognition.json").read_text())
    _check_schema(saved, "recognition")
    assert (out / "recognition.md").exists()
    rows = res.rows
    assert list(dict.fromkeys(r["method"] for r in rows)) == ["SC", "MC", "SC-Rec+Ret", "MC-Rec+Ret"]
    metrics = ("accuracy", "accuracy (unannotated dims)", "accuracy (unannotated dims, visible)")
    assert {r["metric"] for r in rows} == set(metrics)
    for metric in metrics:
        for m in paper01.RECOGNITION_METHODS:
            sub = [r for r in rows if r["method"] == m and r["metric"] == metric]
            overall = [r["value"] for r in sub if "attribute" not in r]
            per = [r["value"] for r in sub if "attribute" in r]
            assert len(overall) == 1 and len(per) >= 1
            assert abs(np.mean(per) - overall[0]) < 0.02  # overall = unweighted mean of the dimensions
    hist = res.histories["MC-Rec+Ret"]
    assert len(hist) == TINY.epochs and all(np.isfinite(h["loss"]) for h in hist)


def test_recognition_without_ground_truth_skips_unannotated_dims(recognition, tiny_synth, tmp_path):
    root = next((tiny_synth / "synth").iterdir())
    copy = tmp_path / "real"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("ground_truth.jsonl"))
    res = experiments.run("recognition", mode="quick", data=copy, seed=0, out=None, progress=False)
    assert {r["metric"] for r in res.rows} == {"accuracy"}
    assert any("skipped" in n and "ground_truth.jsonl" in n for n in res.notes)


def test_retrieval_rows(retrieval):
    res, out = retrieval
    saved = json.loads((out / "retrieval.json").read_text())
    _check_schema(saved, "retrieval")
    rows = res.rows
    assert list(dict.fromkeys(r["method"] for r in rows)) == list(paper01.RETRIEVAL_METHODS)
    assert {r["metric"] for r in rows} == {"triplet accuracy", "R@5", "R@10", "R@20", "mAP"}
    for m in paper01.RETRIEVAL_METHODS:
        flat = {r["metric"]: r["value"] for r in rows if r["method"] == m and "attribute" not in r}
        assert set(flat) == {"triplet accuracy", "R@5", "R@10", "R@20", "mAP"}
        assert flat["R@5"] <= flat["R@10"] <= flat["R@20"]
        assert any(r["metric"] == "mAP" and "attribute" in r for r in rows if r["method"] == m)
    assert saved["paper_rows"][0]["dataset"] == "FashionAI (paper 01)"


def test_fixed_test_triplets_are_deterministic(retrieval):
    res, _ = retrieval
    d = res.data
    from fashionlab.datasets import Paper01TripletPool

    pool = Paper01TripletPool(d.labels["test"], d.schema, seed=0, skip_rare=True).triplets()
    assert len(pool) > 0
    np.testing.assert_array_equal(pool, d.eval_triplets["test"])
    # every triplet: anchor and positive share the value of the triplet's dimension, the negative does not
    v = d.values["test"]
    a = pool[:, 3]
    assert (v[pool[:, 0], a] == v[pool[:, 1], a]).all() and (v[pool[:, 0], a] != v[pool[:, 2], a]).all()


def test_att_trinet_embeds_each_image_with_its_dimensions_network():
    from fashionlab.models.multitask import AttNets, JointNet

    torch.manual_seed(0)
    net = AttNets(TINY.width, [6, 9, 8, 6, 5, 5, 10, 5], TINY.dim, reg=False).eval()
    x = torch.randn(6, 3, 32, 32)
    c = torch.tensor([0, 1, 0, 2, 1, 0])
    with torch.no_grad():
        before = net.cond(x, c)
        net.nets[0].fc.weight.add_(1.0)  # change only dimension 0's network
        after = net.cond(x, c)
    assert torch.allclose(before.norm(dim=1), torch.ones(6), atol=1e-5)
    changed = ~torch.isclose(before, after, atol=1e-6).all(1)
    assert changed.tolist() == (c == 0).tolist()
    # the MTL model's retrieval part is the modified CSN with learned masks on the recognition embedding
    mtl = JointNet(TINY.width, [6, 9, 8, 6, 5, 5, 10, 5], TINY.dim, head="multi", retrieval=True)
    assert mtl.csn.embedding_net is mtl.rec.embedding
    assert mtl.csn.variant == "modified" and mtl.csn.mask_type == "learned"


def test_train_variant_and_gradient_norms(recognition):
    res, _ = recognition
    d = res.data
    v = paper01.train_variant("MC-Rec+Ret", d, seed=0, epochs=1, alpha=0.7, beta=0.3)
    assert v["changes"] == {"epochs": 1, "alpha": 0.7, "beta": 0.3} and len(v["history"]) == 1
    assert 0 <= v["accuracy"] <= 100
    model = res.models["MC-Rec+Ret"]
    before = [p.detach().clone() for p in model.parameters()]
    g = paper01.joint_gradient_norms(model, d, num_batches=2)
    g2 = paper01.joint_gradient_norms(model, d, alpha=0.6, beta=1.4, num_batches=2)
    # each term's gradient is linear in its weight: doubling alpha and beta doubles both norms
    assert g2["alpha*CE"] == pytest.approx(2 * g["alpha*CE"], rel=1e-4)
    assert g2["beta*triplet"] == pytest.approx(2 * g["beta*triplet"], rel=1e-4)
    assert g["ratio"] == pytest.approx(g["beta*triplet"] / g["alpha*CE"])
    assert paper01.joint_gradient_norms(model, d, alpha=0.0, num_batches=1)["alpha*CE"] == 0.0
    # the model itself is untouched (the function works on a copy)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_sianet_pair_modes(recognition):
    """The paper's SiaNet (positive pairs only) never pushes a negative away: its loss is the mean squared distance
    of the positive pairs, independent of the negatives; an unknown mode is refused by name."""
    import dataclasses

    res, _ = recognition
    d = res.data
    pos = paper01.build_model("SiaNet", dataclasses.replace(d.cfg, sianet_pairs="positive"), d).eval()
    both = paper01.build_model("SiaNet", d.cfg, d).eval()  # the same weights (same seed)
    t = d.train_batches(0)[0][:6]
    with torch.no_grad():
        t_other_neg = t.copy()
        t_other_neg[:, 2] = t[::-1, 2]
        losses = []
        for model, tt in ((pos, t), (both, t), (pos, t_other_neg)):
            torch.manual_seed(0)  # the same random flips each time
            losses.append(model.loss(*d.triplet_inputs(tt))[0])
        lp, lb, lp2 = losses
    assert float(lp) == pytest.approx(float(lp2), abs=1e-6)  # negatives do not matter
    assert float(lp) != pytest.approx(float(lb))
    bad = paper01.build_model("SiaNet", dataclasses.replace(d.cfg, sianet_pairs="negative"), d)
    with pytest.raises(ValueError, match="sianet_pairs"):
        bad.loss(*d.triplet_inputs(t))


def test_notebook_path_own_model_trained_then_loaded_from_the_cache(recognition, capsys):
    """What notebooks 01-02 do: build a model outside the recipe, train and evaluate it through the public steps;
    a second train of a fresh model under the same key loads the first one's weights instead of training, says
    so, and returns the same history and test scores; the recipe's own MC-Rec+Ret (same key) is that model."""
    res, _ = recognition
    d, cfg = res.data, res.data.cfg
    model = paper01.build_model("MC-Rec+Ret", cfg, d, seed=0)
    assert type(model).__name__ == "JointNet" and hasattr(model, "loss")
    capsys.readouterr()
    hist = paper01.train("MC-Rec+Ret", model, d, cfg, seed=0, device=torch.device("cpu"))
    out = capsys.readouterr().out
    assert "loaded the trained recognition MC-Rec+Ret" in out  # the recipe trained it under the same key
    scores = paper01.evaluate("MC-Rec+Ret", model, d)
    ref = res.scores["MC-Rec+Ret"]
    assert scores["accuracy"] == ref["accuracy"] and hist.to_dict() == res.histories["MC-Rec+Ret"].to_dict()
    for a, b in zip(model.state_dict().values(), res.models["MC-Rec+Ret"].state_dict().values()):
        assert torch.equal(a, b)
    # a changed config is another key: trained afresh (one epoch), then loaded on the second call
    one = dataclasses_replace(cfg, epochs=1)
    m1 = paper01.build_model("MC", one, d)
    paper01.train("MC", m1, d, one)
    assert "epoch 1/1" in capsys.readouterr().out
    m2 = paper01.build_model("MC", one, d, seed=5)  # other initial weights: the cache replaces them
    paper01.train("MC", m2, d, one)
    assert "loaded the trained recognition MC" in capsys.readouterr().out
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)


def test_train_without_cache_always_trains_and_keeps_nothing(recognition, capsys):
    """``train(..., cache=False)`` (notebook 01's exercise model: a student's Eq. 1 loss and head) trains even
    where a cached model of the same key exists, and writes no cache file."""
    from fashionlab.engine import trained_model_path

    res, _ = recognition
    d = res.data
    one = dataclasses_replace(d.cfg, epochs=1, triplets_per_epoch=64)
    folder = trained_model_path({"experiment": "recognition", "method": "MC", "mode": d.mode, "seed": 0}).parent
    before = sorted(folder.glob("*.pt"))
    capsys.readouterr()
    for _ in range(2):
        paper01.train("MC", paper01.build_model("MC", one, d), d, one, cache=False)
        out = capsys.readouterr().out
        assert "epoch 1/1" in out and "loaded the trained" not in out
    assert sorted(folder.glob("*.pt")) == before


def test_recipe_takes_a_students_module(recognition, tiny_synth):
    """``models={method: module}`` replaces the recipe's model of that method (the rest unchanged)."""
    res, _ = recognition
    d = res.data
    mine = paper01.build_model("MC", d.cfg, d, seed=3)
    out = experiments.run("recognition", mode="quick", seed=0, out=None, progress=False, models={"MC": mine})
    assert out.models["MC"] is mine
    assert out.table("accuracy").loc["SC"].equals(res.table("accuracy").loc["SC"])


def dataclasses_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)
