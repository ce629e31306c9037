"""Config, taxonomy, the experiment registry and results files, notebook hygiene, the CLI parser."""
import dataclasses
import json

import pytest
import torch

from fashionlab import config, nbtools
from fashionlab.experiments import registry
from fashionlab.taxonomy import FASHIONAI, AttributeSchema


def test_mode_from_env_and_argument(monkeypatch):
    monkeypatch.delenv("FASHIONLAB_MODE", raising=False)
    assert config.get_mode() == "default"
    monkeypatch.setenv("FASHIONLAB_MODE", "Quick ")
    assert config.get_mode() == "quick"
    assert config.get_mode("full") == "full"
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        config.get_mode("fast")


def test_fashionai_schema_matches_the_real_meta_counts():
    # docs/formats.md §5.1/§5.2: eight dimensions, value 0 is Invisible everywhere
    assert FASHIONAI.num_values == (6, 9, 8, 6, 5, 5, 10, 5)
    assert all(FASHIONAI.values[a][0] == "Invisible" for a in FASHIONAI.attributes)
    meta = FASHIONAI.to_meta()
    assert set(meta) == {"ATTRIBUTES", "ATTRIBUTES_NUM", "ATTRIBUTES_VALUES"}
    assert AttributeSchema.from_meta(meta, "FashionAI") == FASHIONAI
    with pytest.raises(KeyError, match="unknown attribute 'hat_size'"):
        FASHIONAI.index("hat_size")
    with pytest.raises(ValueError, match="3 values but 2 names"):
        AttributeSchema("x", ("a",), (3,), {"a": ("u", "v")})


@pytest.fixture
def toy_experiment():
    name = "toy-for-tests"

    @dataclasses.dataclass
    class ToyResult(registry.Result):
        x: int = 0

    def fn(mode, data, seed, progress, device):
        assert isinstance(device, torch.device)  # resolved once by run()
        rows = [{"method": "M", "metric": "mAP", "attribute": "a", "value": 10.0 + seed},
                {"method": "M", "metric": "mAP", "value": 12.5},
                {"method": "M", "metric": "R@5", "value": 40.0}]
        paper = [{"method": "M", "metric": "mAP", "value": 50.0, "dataset": "Real (paper)"}]
        return ToyResult(rows=rows, paper_rows=paper, dataset="toy", x=1)

    registry.register(name, "toy")(fn)
    yield name
    registry._REGISTRY.pop(name)


def test_run_writes_the_results_schema(tmp_path, toy_experiment):
    res = registry.run(toy_experiment, mode="quick", seed=3, out=tmp_path)
    saved = json.loads((tmp_path / f"{toy_experiment}.json").read_text())
    assert set(saved) == {"experiment", "mode", "seed", "device", "start", "seconds", "dataset", "rows", "paper_rows"}
    assert saved["start"] == "none" and all(r["start"] == "none" for r in saved["rows"])  # no config: no network
    assert all("start" not in r for r in saved["paper_rows"])
    assert saved["mode"] == "quick" and saved["seed"] == 3 and saved["rows"][0]["value"] == 13.0
    assert res.x == 1 and "x" not in saved and res.seed == 3 and res.experiment == toy_experiment
    assert res.to_json() == {**saved, "seconds": round(res.seconds, 1)}
    assert res.table("mAP").loc["M", "a"] == 13.0 and res.table("mAP").loc["M", "overall"] == 12.5
    md = (tmp_path / f"{toy_experiment}.md").read_text()
    assert "| M | 13.00 | 12.50 |" in md  # attribute column, then overall
    assert "| M | 40.00 |" in md and "## Paper: Real (paper)" in md
    assert registry.load(toy_experiment, tmp_path) == saved


def test_run_rejects_rows_without_schema_keys(tmp_path):
    registry.register("broken-for-tests", "x")(
        lambda mode, data, seed, progress, device: registry.Result(rows=[{"method": "M", "value": 1.0}]))
    try:
        with pytest.raises(ValueError, match=r"rows\[0\] lacks \['metric'\]"):
            registry.run("broken-for-tests", mode="quick", out=None)
    finally:
        registry._REGISTRY.pop("broken-for-tests")


def test_run_wants_a_typed_result():
    registry.register("untyped-for-tests", "x")(lambda mode, data, seed, progress, device: {"rows": []})
    try:
        with pytest.raises(TypeError, match="not an experiments.Result"):
            registry.run("untyped-for-tests", mode="quick", out=None)
    finally:
        registry._REGISTRY.pop("untyped-for-tests")


def test_unknown_experiment_and_missing_results(tmp_path):
    with pytest.raises(KeyError, match="unknown experiment 'nope'"):
        registry.get("nope")
    with pytest.raises(FileNotFoundError, match="fashionlab reproduce nope"):
        registry.load("nope", tmp_path)


def test_nbtools_strips_metadata_and_finds_machine_paths():
    nb = {"metadata": {"widgets": {}}, "cells": [
        {"cell_type": "code", "metadata": {"execution": {"t": 1}, "tags": ["parameters"]},
         "outputs": [{"output_type": "stream", "text": "saved to /work/main/data/x\n"}]},
        {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "text": "data/x ok"}]}]}
    nb = nbtools.clean_notebook(nb)
    assert nb["cells"][0]["metadata"] == {"tags": ["parameters"]} and "widgets" not in nb["metadata"]
    found = nbtools.machine_paths(nb)
    assert len(found) == 1 and found[0].startswith("cell 0")


def test_cli_parser():
    from fashionlab.cli import build_parser

    args = build_parser().parse_args(["synth", "fashionai", "--out", "d", "--num-images", "10", "--seed", "4"])
    assert (args.synth_command, args.num_images, args.seed, args.image_size, args.preset) == ("fashionai", 10, 4, 128, "wild")
    args = build_parser().parse_args(["reproduce", "random-baseline", "--mode", "quick"])
    assert args.name == "random-baseline" and args.mode == "quick"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "x", "--mode", "fast"])


def test_display_path_never_shows_a_machine_path(tmp_path, monkeypatch):
    root = config.project_root()
    assert config.display_path(root / "data" / "synth" / "x") == "data/synth/x"
    assert config.display_path(root) == "."
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    assert config.display_path(tmp_path / "synth" / "y") == "$FASHIONLAB_DATA/synth/y"
    assert config.display_path("/somewhere/else/z") == "z"
