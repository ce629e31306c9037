"""Full mode cannot rot (issue 20): every experiment's ``full`` code path, one step on CPU.

``full`` mode is meant for a GPU (paper-sized backbones, 224 px and the papers' other sizes, large datasets) and
no CI machine runs it. Here each experiment runs end to end with its ``full`` config in which only the *counts*
are scaled down (:func:`fashionlab.experiments.scaled_down`: images rendered, triplets per epoch, batch size,
epochs, evaluation sizes): the backbones (ResNet-50/34 cut after layer3 etc., untrained since no ImageNet
weights are present), image sizes, heads, losses, two-stage schedules and every other setting are ``full``'s.
A tiny FashionSynth set is rendered at the full mode's image size into a temporary ``FASHIONLAB_DATA``. Each run
must finish and return finite numbers for every method. ``make gpu-check`` runs the same path on CUDA, longer.

Cost, measured on a 2-core machine shared with other jobs (load average about 6: wall times are 2-3x the CPU
times): random-baseline 0.2 s; recognition 7 s CPU; retrieval 10 s CPU; triplet-baseline 15 s CPU; part-search
104 s CPU (161 s wall); hls 160 s CPU (171 s wall); asen 197 s CPU (471 s wall; half of it the detail study, which
``detail_epochs=0`` would skip); m3net about 700 s wall. The 224 px ResNet-50 passes dominate: asen trains
twelve models (stage 1, stage 2 and the detail study) and scores attention on the test images; m3net trains
eight and evaluates its FashionAI preset's whole valid and test sets (its recipe renders that folder itself, so
:func:`small_evaluation` cannot cut it); the Adam step over ResNet-50's weights alone took about 2 s.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
import warnings

import pytest

from fashionlab import experiments
from fashionlab.config import data_dir
from fashionlab.experiments import scaled_down
from fashionlab.experiments.scaling import (CONFIG_TABLES, COUNT_FIELDS, MODE_SIZED_DATA, mode_config,
                                            small_evaluation, small_fashionai)

pytestmark = pytest.mark.slow

#: The FashionAI folder of the experiments whose data the mode sizes: the fewest images whose valid and test
#: splits still hold queries (160 and 200 do not).
SMALL_FASHIONAI = 240

#: The evaluation sets (valid and test) of the ASEN-layout folders, cut to one query and three candidates per
#: attribute (:func:`~fashionlab.experiments.scaling.small_evaluation`): embedding the ~60 evaluation images of
#: the smallest FashionSynth split with a 224 px ResNet-50 after every training took most of the test's time.
SMALL_EVAL = dict(queries_per_attribute=1, candidates_per_attribute=3)

#: One step: batch 2, one epoch of one batch (each stage of a two-stage schedule too), the fewest images.
ONE_STEP = {
    "random-baseline": None,
    "triplet-baseline": dict(epochs=1, triplets_per_epoch=2, batch=2),
    "recognition": dict(epochs=1, triplets_per_epoch=2, batch=2),
    "retrieval": dict(epochs=1, triplets_per_epoch=2, batch=2),
    "asen": dict(num_images=240, epochs=1, stage2_epochs=1, triplets_per_epoch=2, batch=2, detail_epochs=1,
                 detail_stage2_epochs=1),
    "part-search": dict(num_images=120, designs=40, epochs=1, stage2_epochs=1, batch=2, rounds=1,
                        regressor_images=8, regressor_epochs=1),
    "m3net": dict(num_images=120, fai_num_images=240, epochs=1, triplets_per_epoch=2, batch=2, k=10),
    "hls": dict(num_scenes=60, epochs=1, det_epochs=1, batch=2, det_batch=2),
}

#: Methods each experiment must report.
METHODS = {
    "random-baseline": ("Random baseline",),
    "triplet-baseline": ("Triplet network",),
    "recognition": experiments.paper01.RECOGNITION_METHODS,
    "retrieval": experiments.paper01.RETRIEVAL_METHODS,
    "asen": experiments.paper03.METHODS,
    "part-search": experiments.paper04.METHODS,
    "m3net": experiments.paper05.METHODS,
    "hls": experiments.paper06.METHODS,
}


def test_every_registered_experiment_has_a_one_step_full_run():
    """A new experiment must say here how its full mode is scaled down, or this test fails."""
    assert set(ONE_STEP) == set(experiments.names())
    assert set(CONFIG_TABLES) | {"random-baseline"} == set(experiments.names())


@pytest.mark.parametrize("name", [n for n, c in ONE_STEP.items() if c])
def test_one_step_config_keeps_everything_but_counts(name):
    full = mode_config(name, "full")
    small = scaled_down(full, **ONE_STEP[name])
    for f in dataclasses.fields(full):
        if f.name not in COUNT_FIELDS:
            assert getattr(small, f.name) == getattr(full, f.name), f.name


def test_scaled_down_refuses_what_is_not_a_count():
    cfg = mode_config("asen", "full")
    with pytest.raises(ValueError, match="not a count"):
        scaled_down(cfg, global_size=64)
    with pytest.raises(ValueError, match="no field"):
        scaled_down(cfg, designs=3)
    with pytest.raises(ValueError, match="int >= 0"):
        scaled_down(cfg, batch=-1)
    with pytest.raises(TypeError):
        scaled_down(type(cfg), batch=2)
    assert scaled_down(cfg, batch=2).batch == 2 and scaled_down(cfg).backbone == "resnet50"


@pytest.fixture(scope="module")
def full_env(tmp_path_factory):
    """A temporary data folder, and the small 224 px FashionAI folder of :data:`MODE_SIZED_DATA`."""
    data = tmp_path_factory.mktemp("full-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASHIONLAB_DATA", str(data))
        mp.setenv("FASHIONLAB_PROGRESS", "0")
        mp.delenv("FASHIONLAB_FASHIONAI", raising=False)
        mp.delenv("FASHIONLAB_DEEPFASHION", raising=False)
        with warnings.catch_warnings():  # "no query for" a few attributes at this size: known
            warnings.simplefilter("ignore", UserWarning)
            root = small_fashionai(SMALL_FASHIONAI)
        yield small_evaluation(root, **SMALL_EVAL)


def run_one_step(name: str, small_root, device: str):
    """Run ``name`` in full mode with :data:`ONE_STEP`'s counts on ``device``; check that every row is a finite
    number and every method is reported. Returns the seconds it took."""
    counts = ONE_STEP[name]
    options = {} if counts is None else {"config": scaled_down(mode_config(name, "full"), **counts)}
    if name in MODE_SIZED_DATA:
        options["data"] = small_root
    elif name == "asen":  # the folder load_data would render for this config, with small evaluation sets
        from fashionlab.synth import ensure_fashionai

        cfg = options["config"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            root = ensure_fashionai(num_images=cfg.num_images, seed=0, image_size=cfg.image_size,
                                    config=cfg.preset, progress=False)
        options["data"] = small_evaluation(root, **SMALL_EVAL)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        res = experiments.run(name, mode="full", seed=0, out=None, progress=False, device=device, **options)
    finally:  # the trained-model cache: a paper-sized model and its Adam state are 100-130 MB a file
        shutil.rmtree(data_dir() / "checkpoints", ignore_errors=True)
    seconds = time.perf_counter() - t0
    print(f"{name} on {device}: {seconds:.1f} s wall, {time.process_time() - c0:.1f} s CPU (all threads)")
    assert res.mode == "full" and res.rows and res.device.startswith(device)
    for row in res.rows:
        v = row["value"]
        assert isinstance(v, (int, float)) and not isinstance(v, bool), row
        assert math.isfinite(v), row
    missing = set(METHODS[name]) - {r["method"] for r in res.rows}
    assert not missing, f"{name}: no rows for {sorted(missing)}"
    return seconds


#: The experiments whose one full-mode step costs minutes of CPU (VGG-16 or ResNet-50 at 224 px over several
#: methods and stages, about 90-700 s each on two busy cores): marked ``heavy``, run by ``make test-full``, not by
#: ``make test``, which keeps the triplet baseline's (about 15 s) and the tests of the scaling itself.
HEAVY = {"recognition", "retrieval", "asen", "part-search", "m3net", "hls"}


@pytest.mark.filterwarnings("ignore:FashionSynth. with:UserWarning")
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY else n for n in ONE_STEP])
def test_full_mode_runs_one_step_end_to_end(name, full_env):
    run_one_step(name, full_env, "cpu")


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:FashionSynth. with:UserWarning")
@pytest.mark.parametrize("name", list(ONE_STEP))
def test_full_mode_runs_one_step_on_cuda(name, full_env):
    """The same on CUDA, where ``engine.fit`` and ``extract_features`` turn on mixed precision and channels_last."""
    run_one_step(name, full_env, "cuda")


def test_gpu_check_refuses_without_cuda(monkeypatch, capsys):
    """``make gpu-check`` on a machine without CUDA: a clear message and exit status 2, nothing run."""
    import importlib.util
    from pathlib import Path

    import torch

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(mod.subprocess, "call", lambda *a, **k: pytest.fail("ran pytest without CUDA"))
    assert mod.main([]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "make gpu-check" in err


def test_gpu_check_times_every_experiments_network():
    """The networks ``make gpu-check`` times are the full configs' ones, and each builds and embeds (checked here
    at 64 px on the CPU; the GPU run uses the full sizes)."""
    import importlib.util
    from pathlib import Path

    import torch

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    nets = mod.networks()
    assert set(mod.EXPERIMENTS) <= set(experiments.names())
    assert {n[0] for n in nets} == set(mod.EXPERIMENTS)
    assert {n[3] for n in nets} >= {224, 112}  # the full mode's sizes
    for exp, label, build, size, batch in nets:
        with torch.inference_mode():
            out = build().eval()(torch.randn(1, 3, 64, 64))
        assert out.ndim == 2 and torch.isfinite(out).all(), label
        cfg = mode_config(exp)
        counts = mod.short_counts(exp, 50, cfg)
        scaled_down(cfg, **counts)  # only counts


def test_small_evaluation_keeps_ids_and_a_relevant_candidate_per_query(full_env):
    import numpy as np

    from fashionlab.datasets import read_asen_split

    whole = full_env.with_name(full_env.name.split("-eval")[0])
    for split in ("valid", "test"):
        small, big = read_asen_split(full_env, split), read_asen_split(whole, split)
        assert small.filenames == big.filenames  # image ids unchanged: the ground truth still applies
        assert 0 < len(small.queries) <= len(np.unique(big.queries[:, 1]))
        assert len(small.candidates) <= 3 * len(small.queries) and len(small.candidates) < len(big.candidates)
        for _, a, v in small.queries:
            assert np.any((small.candidates[:, 1] == a) & (small.candidates[:, 2] == v))
        rows = {tuple(r) for r in big.candidates.tolist()}
        assert all(tuple(r) in rows for r in small.candidates.tolist())
