"""The registered experiments of notebook 00, end to end on tiny data, and the command line."""
import json

import numpy as np
import pytest

from fashionlab import cli, config, experiments
from fashionlab.experiments import baselines


@pytest.fixture
def tiny_synth(tmp_path_factory, monkeypatch):
    """Point the data folder at a temporary one and shrink quick mode's dataset."""
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("FASHIONLAB_DATA", str(data))
    monkeypatch.setitem(baselines.SYNTH_SIZES, "quick", baselines.SynthSize(num_images=1000, image_size=32))
    return data


def test_registry_lists_notebook_00_experiments():
    assert {"random-baseline", "triplet-baseline"} <= set(experiments.names())


def test_random_baseline_rows_match_the_schema(tiny_synth, tmp_path):
    res = experiments.run("random-baseline", mode="quick", seed=1, out=tmp_path, progress=False)
    rows = res.rows
    per_attr = [r for r in rows if "attribute" in r]
    overall = [r for r in rows if "attribute" not in r]
    assert len(overall) == 1 and overall[0]["method"] == "Random baseline" and overall[0]["metric"] == "mAP"
    assert {r["attribute"] for r in per_attr} == set(baselines.PAPER_TABLES["FashionAI"]["attributes"])
    assert all(0 < r["value"] < 100 for r in rows)
    # the overall figure is the query-weighted mean of the per-attribute ones
    from fashionlab.datasets import read_asen_split

    sp = read_asen_split(next((tiny_synth / "synth").iterdir()), "test")
    n = np.bincount(sp.queries[:, 1])
    weighted = sum(n[i] * r["value"] for i, r in enumerate(per_attr)) / n.sum()
    assert abs(weighted - overall[0]["value"]) < 0.02
    saved = json.loads((tmp_path / "random-baseline.json").read_text())
    assert saved["paper_rows"][-1]["value"] == 15.79 and saved["mode"] == "quick"


def test_triplet_baseline_trains_through_every_layer(tiny_synth, monkeypatch):
    cfg = baselines.TripletConfig(backbone="smallcnn", width=8, input_size=32, epochs=2, triplets_per_epoch=128,
                                  batch=16, lr=1e-3)
    monkeypatch.setitem(baselines.TRIPLET_CONFIGS, "quick", cfg)
    res = experiments.run("triplet-baseline", mode="quick", seed=0, out=None, progress=False)
    hist = res.history
    assert len(hist) == 2 and all(np.isfinite(h["loss"]) for h in hist)
    assert "valid_mAP" in hist[0] and hist.best_epoch in (1, 2)
    overall = [r for r in res.rows if "attribute" not in r][0]
    assert overall["method"] == "Triplet network" and 0 < overall["value"] < 100
    # a second run loads the trained network from the cache and gives the same numbers
    again = experiments.run("triplet-baseline", mode="quick", seed=0, out=None, progress=False)
    assert again.rows == res.rows and again.history == hist
    for a, b in zip(res.model.state_dict().values(), again.model.state_dict().values()):
        assert a.equal(b)


def test_triplet_recipe_steps_take_a_module_of_ones_own(tiny_synth, monkeypatch):
    """The notebook path: the steps one by one, with a module built outside the recipe."""
    import torch

    cfg = baselines.TripletConfig(backbone="smallcnn", width=8, input_size=32, epochs=1, triplets_per_epoch=64,
                                  batch=16, lr=1e-3)
    data = baselines.load_data(cfg, "quick", seed=0)
    assert "TripletData(" in repr(data) and data.batches(0)[0].shape == (16, 4)

    class Mine(torch.nn.Module):  # a student's embedding: a different network, the same contract
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 2), torch.nn.AdaptiveAvgPool2d(1),
                                           torch.nn.Flatten(), torch.nn.Linear(4, 8))

        def forward(self, x):
            return torch.nn.functional.normalize(self.net(x), dim=1)

    torch.manual_seed(0)
    mine = Mine()
    hist = baselines.train(mine, data, cfg, seed=0, device=torch.device("cpu"), mode="quick", method="mine")
    scores = baselines.evaluate(mine, data, "test")
    assert len(hist) == 1 and 0 <= scores["overall"] <= 1 and mine.training  # eval mode set and restored


@pytest.fixture
def real():
    path = config.shared_realdata()
    if path is None:
        pytest.skip("../shared/realdata not present")
    return path


@pytest.mark.realdata
def test_random_baseline_on_the_real_fashionai_split_reproduces_the_paper(real):
    res = experiments.run("random-baseline", mode="quick", seed=0, out=None, progress=False,
                          data=real / "zhengguorong_asenpp/data/FashionAI")
    ours = {r.get("attribute", "overall"): r["value"] for r in res.rows}
    paper = {r.get("attribute", "overall"): r["value"] for r in res.paper_rows}
    assert abs(ours["overall"] - paper["overall"]) < 0.5
    assert all(abs(ours[a] - paper[a]) < 1.5 for a in paper)


@pytest.mark.realdata
def test_random_baseline_on_real_deepfashion_uses_its_paper_row(real):
    res = experiments.run("random-baseline", mode="quick", seed=0, out=None, progress=False,
                          data=real / "zhengguorong_asenpp/data/DeepFashion")
    ours = {r.get("attribute", "overall"): r["value"] for r in res.rows}
    assert res.paper_rows[-1]["value"] == 3.38
    assert abs(ours["overall"] - 3.38) < 0.3


def test_cli_synth_and_reproduce(tmp_path, capsys, monkeypatch):
    assert cli.main(["synth", "fashionai", "--out", str(tmp_path / "s"), "--num-images", "1000", "--seed", "2",
                     "--image-size", "32", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and (tmp_path / "s" / "meta.json").exists()
    assert cli.main(["reproduce", "random-baseline", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "r"),
                     "--quiet"]) == 0
    assert (tmp_path / "r" / "random-baseline.md").exists()
    assert cli.main(["reproduce", "no-such-experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert cli.main(["reproduce", "random-baseline", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "r"),
                     "--device", "cpu", "--quiet"]) == 0
    assert "device cpu (asked for by argument)" in capsys.readouterr().out
    assert cli.main(["reproduce", "random-baseline", "--device", "tpu", "--quiet"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_cli_reports_bad_data_with_file_and_line(tmp_path, capsys):
    assert cli.main(["synth", "fashionai", "--out", str(tmp_path / "s"), "--num-images", "1000", "--seed", "2",
                     "--image-size", "32", "--quiet"]) == 0
    q = tmp_path / "s" / "query_test.txt"
    lines = q.read_text().splitlines()
    lines[2] = "12 not-a-number 3"
    q.write_text("\n".join(lines) + "\n")
    assert cli.main(["reproduce", "random-baseline", "--data", str(tmp_path / "s"), "--out", str(tmp_path / "r"),
                     "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "query_test.txt:3" in err


def test_fashionai_env_var_points_experiments_at_a_real_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_FASHIONAI", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="FASHIONLAB_FASHIONAI=.*not a folder"):
        baselines.fashionai_data("quick", None, 0)
    (tmp_path / "FashionAI").mkdir()
    monkeypatch.setenv("FASHIONLAB_FASHIONAI", str(tmp_path / "FashionAI"))
    root, label = baselines.fashionai_data("quick", None, 0)
    assert root == tmp_path / "FashionAI" and "FASHIONLAB_FASHIONAI" in label
