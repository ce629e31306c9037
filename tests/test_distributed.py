"""Many processes through torchrun (docs/distributed.md), on CPU with the gloo backend.

* 2 processes train a tiny model with :func:`fashionlab.engine.fit` on the same global batches as 1 process: the
  per-step losses and the final weights agree to float rounding (the model has no BatchNorm: on CPU there is no
  SyncBatchNorm, and per-rank batch statistics would make the losses differ, see tests/_ddp_worker.py);
* :func:`fashionlab.engine.extract_features` of the same weights gives the same features and identical mAP;
* ``torchrun --nproc_per_node=2 -m fashionlab reproduce random-baseline`` writes NAME.json and NAME.md once and
  prints the report once (on the hand-written ASEN fixture, so nothing is rendered).

The 2 processes of tests/_ddp_worker.py are started with torchrun's environment variables on a free port of
127.0.0.1 while the 1-process reference runs in the test process; the command line goes through torchrun itself.
About 40 s of CPU time in all (each process imports torch; the command line imports every recipe).
"""
from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionlab import distributed

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_ddp_worker.py"

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is needed")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), FASHIONLAB_PROGRESS="0", OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "FASHIONLAB_MODE", "FASHIONLAB_DEVICE"):
        env.pop(k, None)
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The worker's outputs: ``{(world, rank): dict}`` for 1 process and for each of 2 processes."""
    out = tmp_path_factory.mktemp("ddp")
    port = str(_free_port())
    pair = [subprocess.Popen([sys.executable, str(WORKER), str(out)], cwd=ROOT,
                             env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                                      MASTER_PORT=port),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:  # the 1-process reference runs here, meanwhile (no process group in this process: WORLD_SIZE unset)
        spec = importlib.util.spec_from_file_location("_ddp_worker", WORKER)
        worker = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(worker)
        threads = torch.get_num_threads()
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("WORLD_SIZE", raising=False)
            try:
                worker.main(out)
            finally:
                torch.set_num_threads(threads)
        for p in pair:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in pair:
            if p.poll() is None:
                p.kill()
    return {(w, r): torch.load(out / f"w{w}-r{r}.pt", weights_only=True) for w, r in [(1, 0), (2, 0), (2, 1)]}


def test_two_processes_train_like_one(runs):
    one, r0, r1 = runs[1, 0], runs[2, 0], runs[2, 1]
    assert (one["world"], r0["world"], r1["rank"]) == (1, 2, 1)
    # one global batch per epoch: the history's loss is the step's loss, the global mean over both shards
    loss1, loss2 = np.array(one["loss"]), np.array(r0["loss"])
    assert len(loss1) == 6
    assert np.abs(loss1 - loss2).max() < 1e-5, (loss1, loss2)
    assert r0["loss"] == r1["loss"] and r0["acc"] == r1["acc"]  # every rank logs the same global means
    assert np.abs(np.array(one["acc"]) - np.array(r0["acc"])).max() < 1e-5
    assert loss1[-1] < loss1[0]  # it did train
    for k, w in one["weights"].items():
        torch.testing.assert_close(r0["weights"][k], w, atol=1e-5, rtol=1e-5)
        assert torch.equal(r0["weights"][k], r1["weights"][k])  # the ranks never drift apart


def test_two_processes_evaluate_like_one(runs):
    one, r0, r1 = runs[1, 0], runs[2, 0], runs[2, 1]
    assert one["features"].shape == r0["features"].shape == (96, 8)  # gathered back whole, in order
    torch.testing.assert_close(r0["features"], one["features"], atol=1e-6, rtol=1e-6)
    assert torch.equal(r0["features"], r1["features"])
    assert r0["map"] == one["map"] == r1["map"]


@pytest.mark.slow
def test_reproduce_under_torchrun_writes_once(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    out = tmp_path / "results"
    proc = subprocess.run(cmd + ["--standalone", "--nproc_per_node=2", "-m", "fashionlab", "reproduce",
                                 "random-baseline", "--mode", "quick", "--data", str(ROOT / "tests/fixtures/asen_flat"),
                                 "--out", str(out)],
                          cwd=ROOT, env=_env(FASHIONLAB_DATA=str(tmp_path / "data")), capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["random-baseline.json", "random-baseline.md"]
    assert proc.stdout.count("random-baseline done in") == 1, proc.stdout
    assert proc.stdout.count("results are in") == 1
    assert proc.stdout.count("fashionlab: device") == 1


def test_shard_cuts_every_batch_field_into_contiguous_slices():
    ids = np.arange(10)
    batch = {"ids": ids, "x": torch.arange(20).view(10, 2), "const": torch.ones(3), "k": 4}
    parts = [distributed.shard(batch, world=3, r=r) for r in range(3)]
    assert [len(p["ids"]) for p in parts] == [4, 3, 3]
    assert np.array_equal(np.concatenate([p["ids"] for p in parts]), ids)
    assert torch.equal(torch.cat([p["x"] for p in parts]), batch["x"])
    assert all(p["const"] is batch["const"] and p["k"] == 4 for p in parts)  # not batch-shaped: passed whole
    assert distributed.shard(batch) is batch  # no process group: unchanged
    assert distributed.shard_bounds(8, 2, 1) == (4, 8)
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)


def test_sync_batchnorm_swaps_and_restores(monkeypatch):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Sequential(torch.nn.BatchNorm2d(4)))
    bn = net[1][0]
    keys = {k: v.clone() for k, v in net.state_dict().items()}
    with distributed.sync_batchnorm(net, on=True):  # no process group: nothing to swap
        assert net[1][0] is bn
    monkeypatch.setattr(distributed, "world_size", lambda: 2)  # as under torchrun on CUDA
    with distributed.sync_batchnorm(net, on=True):
        sync = net[1][0]
        assert isinstance(sync, torch.nn.SyncBatchNorm)
        assert sync.weight is bn.weight and sync.running_mean is bn.running_mean  # shared, not copied
        assert list(net.state_dict()) == list(keys)
    assert net[1][0] is bn
    assert all(torch.equal(v, keys[k]) for k, v in net.state_dict().items())
