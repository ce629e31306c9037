"""The ImageNet start (the ``pretrained`` config field, ``--pretrained``, ``$FASHIONLAB_PRETRAINED``) and the
EfficientNet backbones, with a fake ImageNet file: nothing is downloaded."""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from fashionlab import engine
from fashionlab.experiments import baselines, paper01, paper04, paper06
from fashionlab.experiments.registry import Result, to_markdown, with_start
from fashionlab.models.backbones import (ImageNetBackbone, backbone, pretrained_start, pretrained_weights_candidates,
                                         pretrained_weights_file)


@pytest.fixture
def fake_resnet50(hub_dir):
    """A torchvision-shaped ResNet-50 state dict (random values) under torchvision's file name in the hub cache."""
    import torchvision.models as tvm

    torch.manual_seed(123)
    state = tvm.resnet50(weights=None).state_dict()
    path = pretrained_weights_file("resnet50")
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path, state


def _signature_path(model, cfg, mode="full"):
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    key = {"experiment": "triplet-baseline", "method": "Triplet", "mode": mode, "seed": 0, "config": cfg}
    return engine.trained_model_path(key, engine._model_signature(model, lambda m, b: None, opt, cfg.epochs, 0, None))


def test_imagenet_start_loads_the_file_and_gets_its_own_cache_entry(fake_resnet50):
    path, state = fake_resnet50
    full = baselines.TRIPLET_CONFIGS["full"]
    with pretrained_start("imagenet"):
        cfg = with_start(full, "triplet-baseline", "full")
    assert cfg.pretrained == "imagenet" and full.pretrained == "scratch"
    model = baselines.build_model(cfg)
    assert isinstance(model.backbone, ImageNetBackbone) and f"weights={path.name!r}" in repr(model)
    got = model.backbone.state_dict()
    assert got and all(torch.equal(v, state[k]) for k, v in got.items())  # every backbone weight is the file's
    scratch = baselines.build_model(full)
    assert "weights=" not in repr(scratch) and type(scratch.backbone).__name__ == "Backbone"
    assert not torch.equal(scratch.backbone.state_dict()["conv1.weight"], state["conv1.weight"])
    assert _signature_path(model, cfg) != _signature_path(scratch, full)


def test_added_fields_stay_out_of_the_cache_key_at_their_defaults():
    quick = paper01.PAPER01_CONFIGS["quick"]
    key = engine._jsonable(quick)
    assert "pretrained" not in key and "backbone" not in key and "stage" not in key  # the keys cached before
    assert engine._jsonable(dataclasses.replace(quick, pretrained="imagenet"))["pretrained"] == "imagenet"
    assert engine._jsonable(paper01.PAPER01_CONFIGS["full"])["backbone"] == "vgg16"


def test_env_var_and_run_argument_reach_the_config(fake_resnet50, monkeypatch):
    full = baselines.TRIPLET_CONFIGS["full"]
    assert with_start(full, "triplet-baseline", "full").pretrained == "scratch"  # nothing asked: scratch
    monkeypatch.setenv("FASHIONLAB_PRETRAINED", "imagenet")
    assert with_start(full, "triplet-baseline", "full").pretrained == "imagenet"
    with pretrained_start("scratch"):  # experiments.run(pretrained=...) wins over the environment
        assert with_start(full, "triplet-baseline", "full").pretrained == "scratch"
    monkeypatch.setenv("FASHIONLAB_PRETRAINED", "imagenette")
    with pytest.raises(ValueError, match="FASHIONLAB_PRETRAINED.*imagenette"):
        with_start(full, "triplet-baseline", "full")


def test_cli_pretrained_flag_sets_the_switch(monkeypatch):
    from fashionlab import cli

    monkeypatch.setenv("FASHIONLAB_PRETRAINED", "")  # recorded, so main()'s setting is undone afterwards
    assert cli.build_parser().parse_args(["reproduce", "x"]).pretrained is None
    seen = {}

    def fake_get(name):
        seen["env"] = os.environ.get("FASHIONLAB_PRETRAINED")
        raise KeyError("stop here")

    import fashionlab.experiments as experiments

    monkeypatch.setattr(experiments, "get", fake_get)
    assert cli.main(["reproduce", "x", "--pretrained", "imagenet"]) == 2
    assert seen["env"] == "imagenet"
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["reproduce", "x", "--pretrained", "imagenette"])


@pytest.mark.parametrize("exp, configs", [("recognition", paper01.PAPER01_CONFIGS),
                                          ("part-search", paper04.PART_SEARCH_CONFIGS),
                                          ("hls", paper06.HLS_CONFIGS),
                                          ("triplet-baseline", baselines.TRIPLET_CONFIGS)])
def test_imagenet_start_with_a_smallcnn_config_is_refused(hub_dir, exp, configs):
    with pretrained_start("imagenet"), pytest.raises(ValueError) as err:
        with_start(configs["quick"], exp, "quick")
    assert f"experiment {exp!r}, mode 'quick'" in str(err.value) and "smallcnn" in str(err.value)


def test_missing_weights_are_reported_before_any_work(hub_dir):
    with pretrained_start("imagenet"), pytest.raises(FileNotFoundError) as err:
        with_start(paper01.PAPER01_CONFIGS["full"], "recognition", "full")
    msg = str(err.value)
    assert pretrained_weights_candidates("vgg16")[0][1] in msg and "FASHIONLAB_DOWNLOAD_WEIGHTS" in msg
    assert "--download-weights" in msg and str(hub_dir) in msg


def test_results_record_the_start():
    r = Result(rows=[{"method": "m", "metric": "mAP", "value": 1.0}], paper_rows=[{"method": "p", "metric": "mAP",
                                                                                  "value": 2.0}],
               experiment="x", mode="full", start="imagenet")
    doc = r.to_json()
    assert doc["start"] == "imagenet" and doc["rows"][0]["start"] == "imagenet" and "start" not in doc["paper_rows"][0]
    assert "start `imagenet`" in to_markdown(doc)
    old = {k: v for k, v in doc.items() if k != "start"}  # a results file written before the field existed
    assert "start" not in to_markdown(old).split("\n")[2]


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b4"])
def test_efficientnet_stages(name):
    net = backbone(name)
    assert net.stride == 32 and net.out_channels == {"efficientnet_b0": 1280, "efficientnet_b4": 1792}[name]
    y = net(torch.zeros(1, 3, 64, 64))
    assert tuple(y.shape[1:]) == net.output_shape(64) == (net.out_channels, 2, 2)
    mid = backbone(name, "stage4")
    assert mid.stride == 16 and mid.output_size(224) == (14, 14)
    assert pretrained_weights_candidates(name)[0][0] == "IMAGENET1K_V1"
