"""Smoke tests of the benchmark scripts: every model they time builds and takes one training step.

The benchmarks print figures and assert nothing (speed is not a unit test); these tests only make sure that
``make bench`` does not crash halfway through its table, which it did once (a multi-column head returns one
logit tensor per dimension).
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench_training = _load("bench_training")


@pytest.mark.parametrize("name,size,build", bench_training.MODELS, ids=[f"{m[0]}@{m[1]}" for m in bench_training.MODELS])
def test_every_benchmarked_model_trains_one_step(name, size, build):
    if size >= 224:
        pytest.skip("the 224 px ResNet-50 row is too slow for the unit suite; the other rows cover the code path")
    torch.manual_seed(0)
    ips = bench_training.throughput(build(), size, batch=2, dev=torch.device("cpu"), steps=1, warmup=0)
    assert math.isfinite(ips) and ips > 0


def test_streaming_benchmark_times_every_configuration(tmp_path, monkeypatch):
    """``benchmarks/bench_streaming.py`` on a tiny set, in this process: the cached path and streaming with a worker."""
    import warnings

    bench_streaming = _load("bench_streaming")
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FashionSynth: too few images for every query
        for config in ("cached", "stream1"):
            r = bench_streaming.one(config, 60, 32, 16)
            assert r["images"] == 60 and r["images_per_s"] > 0 and r["peak_rss_mb"] > 0
