"""Full mode cannot rot (issue 20): every experiment's ``full`` code path, one step on CPU.

``full`` mode is meant for a GPU (paper-sized backbones, 224 px and the papers' other sizes, large datasets) and
no CI machine runs it. Here each experiment runs end to end with its ``full`` config in which only the *counts*
are scaled down (:func:`fashionlab.experiments.scaled_down`: images rendered, triplets per epoch, batch size,
epochs, evaluation sizes): the backbones (ResNet-50/34 cut after layer3 etc., untrained since no ImageNet
weights are present), image sizes, heads, losses, two-stage schedules and every other setting are ``full``'s.
A tiny FashionSynth set is rendered at the full mode's image size into a temporary ``FASHIONLAB_DATA``. Each run
must finish and return finite numbers for every method. ``make gpu-check`` runs the same path on CUDA, longer.
"""
from __future__ import annotations

import dataclasses
import math
import time

import pytest

from fashionlab import experiments
from fashionlab.experiments import scaled_down
from fashionlab.experiments.scaling import (CONFIG_TABLES, COUNT_FIELDS, MODE_SIZED_DATA, mode_config,
                                            small_fashionai)

pytestmark = pytest.mark.slow

#: The FashionAI folder of the experiments whose data the mode sizes: the fewest images whose valid and test
#: splits still hold queries (160 and 200 do not).
SMALL_FASHIONAI = 240

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
        with pytest.warns(UserWarning, match="no query for"):  # a few attributes lack queries at this size
            root = small_fashionai(SMALL_FASHIONAI)
        yield root


@pytest.mark.filterwarnings("ignore:FashionSynth. with:UserWarning")
@pytest.mark.parametrize("name", list(ONE_STEP))
def test_full_mode_runs_one_step_end_to_end(name, full_env):
    counts = ONE_STEP[name]
    options = {} if counts is None else {"config": scaled_down(mode_config(name, "full"), **counts)}
    if name in MODE_SIZED_DATA:
        options["data"] = full_env
    t0 = time.perf_counter()
    res = experiments.run(name, mode="full", seed=0, out=None, progress=False, device="cpu", **options)
    print(f"{name}: {time.perf_counter() - t0:.1f} s")
    assert res.mode == "full" and res.rows
    for row in res.rows:
        v = row["value"]
        assert isinstance(v, (int, float)) and not isinstance(v, bool), row
        assert math.isfinite(v), row
    reported = {r["method"] for r in res.rows}
    missing = set(METHODS[name]) - reported
    assert not missing, f"{name}: no rows for {sorted(missing)}"
