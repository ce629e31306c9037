"""The FashionSynth pretraining (issue 21): the objective against independent oracles, the corpus, the cache, and
the ``fashionsynth`` start wired into the backbones, the experiments and the command line (quick sizes)."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from fashionlab import pretrain as P
from fashionlab.models.backbones import PretrainedBackbone, SmallCNN, build_backbone

TINY = P.PretrainConfig(num_images=96, epochs=1, batch=32, view_size=32)


def nt_xent_loop(z1, z2, tau):
    """NT-Xent written out view by view (SimCLR Eq. 1): the oracle of the vectorised :func:`fashionlab.pretrain.nt_xent`."""
    z = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n, total = len(z1), 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / tau) / den)
    return total / (2 * n)


def test_nt_xent_matches_the_loop_and_rewards_aligned_views():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert abs(float(P.nt_xent(z1, z2, 0.3)) - nt_xent_loop(z1, z2, 0.3)) < 1e-5
    aligned = P.nt_xent(z1, z1 + 1e-3 * z2, 0.1)
    assert float(aligned) < float(P.nt_xent(z1, z2, 0.1))
    # the lower bound: log(2n-1) minus what aligned pairs can gain; never negative
    assert float(aligned) >= 0


def test_augment_views_are_normalised_random_and_seeded():
    x = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    torch.manual_seed(1)
    a = P.augment(x, size=24)
    torch.manual_seed(1)
    b = P.augment(x, size=24)
    c = P.augment(x, size=24)
    assert a.shape == (6, 3, 24, 24) and a.dtype == torch.float32 and torch.equal(a, b) and not torch.equal(a, c)
    # without colour jitter and with the full-area crop, a uniform grey image stays that grey
    grey = torch.full((2, 3, 16, 16), 128, dtype=torch.uint8)
    v = P.augment(grey, crop_scale=(1.0, 1.0), colour=False)
    expect = (128 / 255 - P._MEAN) / P._STD
    assert torch.allclose(v, expect.expand_as(v), atol=1e-5)


def test_corpus_is_its_own_seed_and_mixes_every_preset():
    images, labels = P.pretraining_corpus(12, 32)
    again, _ = P.pretraining_corpus(12, 32)
    other, _ = P.pretraining_corpus(12, 32, seed=0)
    assert images.shape == (12, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert set(labels) == {"category", "colour", "pattern", "values"} and labels["values"].shape == (12, 8)
    assert len(P.corpus_presets()) == 6 and P.CORPUS_SEED not in range(100) and P.PROBE_SEED != P.CORPUS_SEED


def test_linear_probe_reads_a_linear_label_and_not_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = (x[:, 0] > 0).long().numpy() + 2 * (x[:, 1] > 0).long().numpy()
    assert P.linear_probe(x[:300], y[:300], x[300:], y[300:], steps=100) > 90
    noise = torch.randint(0, 4, (400,), generator=g).numpy()
    assert P.linear_probe(x[:300], noise[:300], x[300:], noise[300:], steps=100) < 45


@pytest.mark.parametrize("objective", P.OBJECTIVES)
def test_pretrain_trains_once_then_loads(objective, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    cfg = dataclasses.replace(TINY, objective=objective)
    net, hist, _ = P.pretrain("smallcnn", 8, cfg=cfg, mode="quick", progress=False)
    assert len(hist) == 1 and math.isfinite(hist[0]["loss"])
    net2, _, _ = P.pretrain("smallcnn", 8, cfg=cfg, mode="quick", progress=False)
    assert "loaded the trained pretrain" in capsys.readouterr().out
    for a, b in zip(net.backbone.state_dict().values(), net2.backbone.state_dict().values()):
        assert torch.equal(a, b)


def test_fashionsynth_start_loads_the_pretrained_weights_into_every_smallcnn_variant(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    monkeypatch.setitem(P.PRETRAIN_CONFIGS, "quick", TINY)
    pnet, _, _ = P.pretrain("smallcnn", 8, mode="quick", progress=False)
    with P.mode_scope("quick"):
        net = build_backbone("smallcnn", width=8, output_stride=8, final_relu=False, pretrained="fashionsynth")
    assert isinstance(net, PretrainedBackbone) and net.weights == P.pretrain_tag("smallcnn", 8, None, TINY)
    assert "weights='fashionsynth-contrastive-smallcnn8-" in repr(net)
    ref = pnet.backbone.state_dict()
    for k, v in net.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert net.block5.conv.stride == (1, 1) and isinstance(net.block5.relu, torch.nn.Identity)
    assert net(torch.zeros(1, 3, 48, 48)).shape[-1] == 6  # output stride 8
    scratch = build_backbone("smallcnn", width=8)
    assert type(scratch) is SmallCNN and "weights=" not in repr(scratch)


def test_mode_backbones_names_the_smallcnn_widths_of_the_default_configs():
    specs = P.mode_backbones("default")
    assert {w for n, w, _ in specs if n == "smallcnn"} == {16, 24, 32}
    assert {n for n, _, _ in P.mode_backbones("full")} >= {"resnet50", "vgg16", "alexnet"}


def test_experiment_rows_carry_the_fashionsynth_start(tmp_path, monkeypatch):
    """A quick triplet baseline from the pretrained start: the start in the result and in every row."""
    from fashionlab import experiments
    from fashionlab.experiments import baselines

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    monkeypatch.setenv("FASHIONLAB_PROGRESS", "0")
    monkeypatch.setitem(P.PRETRAIN_CONFIGS, "quick", TINY)
    monkeypatch.setitem(baselines.SYNTH_SIZES, "quick", baselines.SynthSize(num_images=1000, image_size=32))
    monkeypatch.setitem(baselines.TRIPLET_CONFIGS, "quick", baselines.TripletConfig(
        backbone="smallcnn", width=8, input_size=32, epochs=1, triplets_per_epoch=64, batch=16, lr=1e-3))
    res = experiments.run("triplet-baseline", mode="quick", pretrained="fashionsynth", out=None, progress=False)
    rows = res.to_json()["rows"]
    assert res.start == "fashionsynth" and rows and all(r["start"] == "fashionsynth" for r in rows)
    assert (tmp_path / "checkpoints" / "pretrain").is_dir()


def test_cli_pretrain_prints_the_cost_and_reuses_the_cache(tmp_path, monkeypatch, capsys):
    from fashionlab.cli import main

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    monkeypatch.setenv("FASHIONLAB_PROGRESS", "0")
    monkeypatch.setitem(P.PRETRAIN_CONFIGS, "quick", TINY)
    assert main(["pretrain", "--mode", "quick", "--width", "8"]) == 0
    out = capsys.readouterr().out
    assert "smallcnn width 8" in out and "done in" in out
    assert main(["pretrain", "--mode", "quick", "--width", "8"]) == 0
    assert "loaded the trained pretrain" in capsys.readouterr().out


def test_unknown_start_is_refused():
    with pytest.raises(ValueError, match="unknown start"):
        build_backbone("smallcnn", width=8, pretrained="imagenette")
    with pytest.raises(SystemExit):  # argparse refuses it before anything runs
        from fashionlab.cli import main

        main(["reproduce", "triplet-baseline", "--pretrained", "imagenette"])
