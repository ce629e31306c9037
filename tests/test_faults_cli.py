"""Faults at the command line and in checkpoints (issue 19, items 3 and 4): outputs checked before any work,
OS errors as one line naming the path (the traceback only under ``--debug``), damaged or foreign checkpoint and
weights files named with what they hold versus what was expected, ``fashionlab reproduce --resume``, and a
scaled-down ``reproduce`` killed with SIGTERM and SIGKILL part-way through training.

Each case goes through the command line (``fashionlab.cli.main`` or a subprocess) or the public API
(``engine.load_checkpoint``, ``engine.fit``, ``engine.run_checkpoints``, ``models.backbone``)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from fashionlab import cli, engine
from fashionlab.engine import CheckpointError, fit, load_checkpoint, run_checkpoints

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parent.parent
INTERNALS = ("Traceback", "site-packages/torch", "site-packages/numpy", "PIL/", "weights_only")


def no_internals(text: str) -> None:
    """Nothing from inside torch, numpy or PIL, no traceback, never torch's advice to pass weights_only=False."""
    for bad in INTERNALS:
        assert bad not in text, f"{bad!r} in {text!r}"


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("fashionlab: error: ")
    no_internals(err)
    return lines[0]


# ----------------------------------------------------------------------------------------------------------
# outputs are checked before any work starts; OS errors are one line
# ----------------------------------------------------------------------------------------------------------
def _reproduce(capsys, *args):
    rc = cli.main(["reproduce", "random-baseline", "--quiet", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _no_run(out: str) -> None:
    assert "[1/1]" not in out and "device" not in out  # refused before the device was picked or anything ran


def test_out_under_a_file_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    rc, out, err = _reproduce(capsys, "--out", str(blocker / "r"))
    line = one_error_line(err)
    assert rc == 2 and str(blocker) in line and "is a file, not a folder" in line and "results folder (--out)" in line
    _no_run(out)
    assert blocker.read_text() == "not a folder" and not (tmp_path / "data").exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))
    blocker = tmp_path / "r"
    blocker.write_text("x")
    rc, out, err = _reproduce(capsys, "--out", str(blocker))
    line = one_error_line(err)
    assert rc == 2 and f"{blocker} is a file, not a folder" in line
    _no_run(out)


def test_out_a_broken_symbolic_link_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))
    link = tmp_path / "r"
    link.symlink_to(tmp_path / "gone")
    rc, out, err = _reproduce(capsys, "--out", str(link / "sub"))
    line = one_error_line(err)
    assert rc == 2 and str(link) in line and "broken symbolic link" in line
    _no_run(out)


def test_out_with_a_name_too_long_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))
    bad = tmp_path / ("x" * 300) / "r"
    rc, out, err = _reproduce(capsys, "--out", str(bad))
    line = one_error_line(err)
    assert rc == 2 and "x" * 300 in line and "too long" in line.lower()
    _no_run(out)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root writes into read-only folders")
def test_out_in_a_read_only_folder_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, out, err = _reproduce(capsys, "--out", str(ro / "r"))
    finally:
        ro.chmod(0o755)
    line = one_error_line(err)
    assert rc == 2 and str(ro / "r") in line and "ermission denied" in line
    _no_run(out)


def test_checkpoint_folder_checked_before_the_run(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    data.write_text("FASHIONLAB_DATA should be a folder")
    monkeypatch.setenv("FASHIONLAB_DATA", str(data))
    rc, out, err = _reproduce(capsys, "--out", str(tmp_path / "r"))
    line = one_error_line(err)
    assert rc == 2 and "checkpoint folder" in line and f"{data} is a file, not a folder" in line
    _no_run(out)
    assert not (tmp_path / "r").exists()  # the check of --out left nothing behind


def test_the_output_checks_leave_nothing_behind(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    assert cli.check_output_dir(target, "results folder") == target
    assert list(tmp_path.iterdir()) == []


def test_os_error_during_a_run_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    from fashionlab import experiments

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "data" / "fashionai" / "meta.json"))

    monkeypatch.setattr(experiments, "run", denied)
    rc, out, err = _reproduce(capsys, "--out", str(tmp_path / "r"))
    line = one_error_line(err)
    assert rc == 2 and line.endswith(f"{tmp_path / 'data' / 'fashionai' / 'meta.json'}: Permission denied")
    # --debug (anywhere on the line) adds the traceback
    rc = cli.main(["reproduce", "random-baseline", "--quiet", "--out", str(tmp_path / "r"), "--debug"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" in err and "PermissionError" in err and err.rstrip().endswith("Permission denied")


def test_an_unexpected_error_is_one_line_with_a_hint(tmp_path, capsys, monkeypatch):
    from fashionlab import experiments

    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path / "data"))

    def boom(*a, **k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore torch text")

    monkeypatch.setattr(experiments, "run", boom)
    rc, out, err = _reproduce(capsys, "--out", str(tmp_path / "r"))
    line = one_error_line(err)
    assert rc == 2 and "RuntimeError: CUDA error" in line and "--debug shows the traceback" in line


def test_check_data_is_wired(tmp_path, capsys):
    pytest.importorskip("fashionlab.datasets.manifest")
    assert "check-data" in cli.build_parser().format_help()
    rc = cli.main(["check-data", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "missing") in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------------------------
# checkpoints: empty, truncated, corrupt, foreign, another architecture
# ----------------------------------------------------------------------------------------------------------
def toy(width=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))


def _good_checkpoint(path: Path) -> bytes:
    torch.save({"model": toy().state_dict(), "epoch": 1}, path)
    return path.read_bytes()


def _expect(path: Path, *needles: str, model=None) -> str:
    with pytest.raises(CheckpointError) as ei:
        load_checkpoint(path, model=model if model is not None else toy())
    msg = str(ei.value)
    assert msg.startswith(f"{path}: "), msg
    for n in needles:
        assert n in msg, (n, msg)
    no_internals(msg)
    return msg


def test_empty_checkpoint(tmp_path):
    p = tmp_path / "last.pt"
    p.write_bytes(b"")
    _expect(p, "empty (0 bytes)", "expected a file written by torch.save")


def test_truncated_checkpoint(tmp_path):
    p = tmp_path / "last.pt"
    good = _good_checkpoint(p)
    p.write_bytes(good[: len(good) // 2])
    _expect(p, "truncated or corrupt", f"{len(good) // 2} bytes", "a zip archive", "expected a complete file")


def test_corrupt_checkpoint_bytes(tmp_path):
    p = tmp_path / "last.pt"
    p.write_bytes(bytes(range(256)) * 8)
    _expect(p, "not a readable checkpoint", "expected a complete file written by torch.save")


def test_text_file_as_checkpoint(tmp_path):
    p = tmp_path / "last.pt"
    p.write_text("epoch,loss\n1,0.5\n")
    _expect(p, "not a readable checkpoint", "neither a zip archive nor a pickle")


def test_checkpoint_with_pickled_objects_is_not_loaded(tmp_path):
    import argparse

    p = tmp_path / "last.pt"
    torch.save({"model": argparse.Namespace(evil=True)}, p)
    _expect(p, "pickled Python objects (argparse.Namespace)", "can run code")


def test_foreign_file_holding_a_tensor(tmp_path):
    p = tmp_path / "last.pt"
    torch.save(torch.zeros(3, 4), p)
    _expect(p, "holds a single tensor of shape [3, 4]", "expected a checkpoint written by engine.fit", "'model'")


def test_checkpoint_of_another_architecture(tmp_path):
    p = tmp_path / "best.pt"
    torch.save({"model": toy(width=5).state_dict(), "epoch": 1}, p)
    model = toy(width=3)
    before = [v.clone() for v in model.state_dict().values()]
    msg = _expect(p, "written for another model", "shapes differ", "0.weight: file [5, 4] vs model [3, 4]", model=model)
    assert "3 shapes differ" in msg
    assert all(torch.equal(a, b) for a, b in zip(before, model.state_dict().values()))  # model untouched


def test_checkpoint_that_is_a_folder(tmp_path):
    (tmp_path / "last.pt").mkdir()
    _expect(tmp_path / "last.pt", "is a folder")


# ----------------------------------------------------------------------------------------------------------
# fit(resume=True): damaged last.pt, a run past the epochs asked for, another optimizer
# ----------------------------------------------------------------------------------------------------------
def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return lambda epoch: [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]


def _step(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def _fit(ckdir, epochs, model=None, opt=None, **kw):
    model = model if model is not None else toy()
    opt = opt if opt is not None else torch.optim.SGD(model.parameters(), lr=0.1)
    return model, fit(model, _step, _data(), opt, epochs, device="cpu", checkpoint_dir=ckdir, progress=False,
                      verbose=False, **kw)


def test_resume_past_the_epochs_asked_for_says_so(tmp_path):
    _fit(tmp_path, 2)
    with pytest.raises(CheckpointError) as ei:
        _fit(tmp_path, 1, resume=True)
    msg = str(ei.value)
    assert str(tmp_path / "last.pt") in msg and "after epoch 2" in msg and "past the 1 epoch(s) asked for" in msg


def test_resume_from_a_truncated_last_pt(tmp_path):
    _fit(tmp_path, 1)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as ei:
        _fit(tmp_path, 2, resume=True)
    assert str(ei.value).startswith(f"{last}: ")
    no_internals(str(ei.value))


def test_resume_with_another_optimizer_names_it_and_leaves_the_model(tmp_path):
    _fit(tmp_path, 1)  # SGD
    model = toy()
    model[0].weight.data.fill_(0.5)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError) as ei:
        _fit(tmp_path, 2, model=model, opt=opt, resume=True)
    msg = str(ei.value)
    assert msg.startswith(f"{tmp_path / 'last.pt'}: ") and "optimizer state" in msg and "Adam" in msg
    assert torch.all(model[0].weight == 0.5)  # what was loaded before the failure was put back


def test_resume_a_foreign_last_pt(tmp_path):
    torch.save({"model": toy().state_dict(), "epoch": 1}, tmp_path / "last.pt")  # a best.pt-like file
    with pytest.raises(CheckpointError, match=r"expected a checkpoint written by engine.fit with the keys"):
        _fit(tmp_path, 2, resume=True)


# ----------------------------------------------------------------------------------------------------------
# the trained-model cache: a damaged entry warns (naming the file and why) and trains afresh
# ----------------------------------------------------------------------------------------------------------
KEY = {"experiment": "toy", "method": "MLP", "mode": "quick", "seed": 0}


def _cached(tmp_path, monkeypatch, model=None):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    model = model if model is not None else toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, fit(model, _step, _data(), opt, 2, device="cpu", progress=False, verbose=False, cache_key=KEY)


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_damaged_trained_model_cache_warns_and_retrains(tmp_path, monkeypatch, damage):
    m1, h1 = _cached(tmp_path, monkeypatch)
    path = next((tmp_path / "checkpoints" / "toy").glob("MLP-*.pt"))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
        reason = "truncated or corrupt"
    else:
        torch.save({"weights": torch.zeros(2)}, path)
        reason = "holds a state dict of 1 tensors (weights); expected a trained-model file with the keys"
    with pytest.warns(UserWarning) as rec:
        m2, h2 = _cached(tmp_path, monkeypatch)
    msgs = [str(w.message) for w in rec if "trained-model file" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith(f"{path}: not a usable trained-model file (") and reason in msgs[0]
    assert msgs[0].endswith("training again")
    assert [r["loss"] for r in h2] == [r["loss"] for r in h1]  # retrained from the untouched model: same run
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


# ----------------------------------------------------------------------------------------------------------
# ImageNet weights files given to models.backbone(weights_path=...)
# ----------------------------------------------------------------------------------------------------------
def _backbone(path):
    from fashionlab.models import backbone

    with pytest.raises(CheckpointError) as ei:
        backbone("resnet18", weights_path=path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: "), msg
    no_internals(msg)
    return msg


def test_truncated_imagenet_weights(tmp_path):
    p = tmp_path / "resnet18-f37072fd.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 512)}, p)
    p.write_bytes(p.read_bytes()[:-400])
    msg = _backbone(p)
    assert "resnet18 ImageNet weights file" in msg and "truncated or corrupt" in msg


def test_imagenet_weights_of_another_architecture(tmp_path):
    import torchvision

    sd = torchvision.models.resnet18(weights=None, num_classes=10).state_dict()
    sd.pop("layer4.1.bn2.running_var")
    sd["head.weight"] = torch.zeros(1)
    p = tmp_path / "resnet18-f37072fd.pth"
    torch.save(sd, p)
    msg = _backbone(p)
    assert "do not fit torchvision's resnet18" in msg and "1 of the model's" in msg
    assert "layer4.1.bn2.running_var" in msg and "1 unexpected keys (head.weight)" in msg
    assert "fc.weight: file [10, 512] vs model [1000, 512]" in msg and "expected resnet18's ImageNet weights" in msg


def test_imagenet_weights_file_of_something_else(tmp_path):
    p = tmp_path / "resnet18-f37072fd.pth"
    torch.save({"epoch": 3, "note": "not weights"}, p)
    msg = _backbone(p)
    assert "holds a dict with keys [epoch, note]" in msg and "expected a resnet18 ImageNet weights file" in msg


# ----------------------------------------------------------------------------------------------------------
# run checkpoints (what `reproduce --resume` uses), in process
# ----------------------------------------------------------------------------------------------------------
class Stop(Exception):
    pass


def _run_fit(tmp_path, monkeypatch, epochs=3, fail_in_epoch=None, resume=False):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    model = toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = _data()

    def batches(epoch):
        if epoch == fail_in_epoch:
            def gen():
                yield data(epoch)[0]
                raise Stop()
            return gen()
        return data(epoch)

    with run_checkpoints(resume=resume):
        h = fit(model, _step, batches, opt, epochs, device="cpu", progress=False, verbose=True, cache_key=KEY)
    return model, h


def test_run_checkpoints_resume_and_clean_up(tmp_path, monkeypatch, capsys):
    ref_model, ref_hist = _run_fit(tmp_path / "ref", monkeypatch)
    assert not list((tmp_path / "ref").rglob("*.resume"))  # removed once the model was trained
    with pytest.raises(Stop):
        _run_fit(tmp_path / "run", monkeypatch, fail_in_epoch=2)
    resume_dirs = list((tmp_path / "run").rglob("*.resume"))
    assert len(resume_dirs) == 1 and (resume_dirs[0] / "last.pt").exists()
    assert load_checkpoint(resume_dirs[0] / "last.pt")["epoch"] == 2
    (resume_dirs[0] / "last.pt.tmp").write_bytes(b"half a file")  # what SIGKILL inside torch.save leaves
    capsys.readouterr()
    model, hist = _run_fit(tmp_path / "run", monkeypatch, resume=True)
    out = capsys.readouterr().out
    assert "resuming from $FASHIONLAB_DATA/checkpoints/toy/" in out and "after epoch 2 of 3" in out
    assert "epoch 1/3" not in out and "epoch 3/3" in out
    assert [r["loss"] for r in hist] == [r["loss"] for r in ref_hist]
    assert all(torch.equal(a, b) for a, b in zip(ref_model.state_dict().values(), model.state_dict().values()))
    assert not resume_dirs[0].exists() and not list((tmp_path / "run").rglob("*.tmp"))


def test_run_checkpoints_without_resume_start_afresh_and_say_so(tmp_path, monkeypatch, capsys):
    with pytest.raises(Stop):
        _run_fit(tmp_path, monkeypatch, fail_in_epoch=1)
    capsys.readouterr()
    _run_fit(tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "holds an interrupted run of this model; starting afresh" in out and "epoch 1/3" in out


def test_run_checkpoints_resume_from_a_damaged_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(Stop):
        _run_fit(tmp_path, monkeypatch, fail_in_epoch=2)
    last = next(tmp_path.rglob("*.resume")) / "last.pt"
    last.write_bytes(b"")
    with pytest.raises(CheckpointError) as ei:
        _run_fit(tmp_path, monkeypatch, resume=True)
    assert str(ei.value).startswith(f"{last}: the checkpoint is empty (0 bytes)")


# ----------------------------------------------------------------------------------------------------------
# a scaled-down `fashionlab reproduce` killed part-way through training, then resumed
# ----------------------------------------------------------------------------------------------------------
DRIVER = textwrap.dedent('''
    """`fashionlab reproduce` with triplet-baseline's quick config scaled down; STALL_EPOCH stalls training after
    the first batch of that epoch (0-based) and prints STALLED, so the test can kill it there."""
    import dataclasses, os, sys, time

    from fashionlab.experiments import baselines

    cfg = baselines.TRIPLET_CONFIGS["quick"]
    baselines.TRIPLET_CONFIGS["quick"] = dataclasses.replace(cfg, width=8, input_size=32, epochs=3,
                                                             triplets_per_epoch=128, batch=32)
    stall = os.environ.get("STALL_EPOCH")
    if stall is not None:
        original = baselines.TripletData.batches

        def batches(self, epoch):
            out = original(self, epoch)
            if epoch != int(stall):
                return out

            def stalled():
                for i, b in enumerate(out):
                    if i == 1:
                        print("STALLED", flush=True)
                        time.sleep(120)
                    yield b
            return stalled()

        baselines.TripletData.batches = batches

    from fashionlab.cli import main

    sys.exit(main(sys.argv[1:]))
''')


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "fashionai"
    rc = subprocess.run([sys.executable, "-m", "fashionlab", "synth", "fashionai", "--out", str(root),
                         "--num-images", "1000", "--seed", "1", "--image-size", "64", "--quiet"],
                        cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    return root


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), FASHIONLAB_PROGRESS="0", OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")
    env.pop("FASHIONLAB_MODE", None)
    env.update(extra)
    return env


def _reproduce_cmd(driver, dataset, out, *extra):
    return [sys.executable, str(driver), "reproduce", "triplet-baseline", "--mode", "quick", "--data", str(dataset),
            "--out", str(out), "--device", "cpu", "--quiet", *extra]


def _numbers(out: Path) -> list:
    doc = json.loads((out / "triplet-baseline.json").read_text())
    return [(r["method"], r.get("attribute"), r["value"]) for r in doc["rows"]]


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    path = tmp_path_factory.mktemp("driver") / "driver.py"
    path.write_text(DRIVER)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, driver, dataset):
    """The numbers of the scaled-down run that was never interrupted."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    ref = subprocess.run(_reproduce_cmd(driver, dataset, tmp / "results"), cwd=ROOT,
                         env=_env(FASHIONLAB_DATA=str(tmp / "data")), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    return _numbers(tmp / "results")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_reproduce_killed_part_way_then_resumed(tmp_path, driver, dataset, uninterrupted, sig):
    expected = uninterrupted

    # previous results in the results folder; the run is killed in epoch 2 of 3
    results = tmp_path / "results"
    results.mkdir()
    (results / "triplet-baseline.json").write_text('{"experiment": "triplet-baseline", "rows": []}\n')
    (results / "triplet-baseline.md").write_text("# previous results\n")
    previous = _files(results)
    data = tmp_path / "data"
    proc = subprocess.Popen(_reproduce_cmd(driver, dataset, results), cwd=ROOT,
                            env=_env(FASHIONLAB_DATA=str(data), STALL_EPOCH="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        seen.append(line)
        if line.strip() == "STALLED" or time.monotonic() > deadline:
            break
    assert seen and seen[-1].strip() == "STALLED", "".join(seen) + proc.stderr.read()
    assert any(s.startswith("epoch 1/3") for s in seen)
    proc.send_signal(getattr(signal, sig))
    rest, err = proc.communicate(timeout=60)
    if sig == "SIGTERM":
        assert proc.returncode == 143
        assert err.strip().splitlines()[-1].startswith("fashionlab: interrupted (SIGTERM)") and "--resume" in err
        no_internals(err)
    else:
        assert proc.returncode == -signal.SIGKILL

    # previous results intact, no debris: only the checkpoint of the last complete epoch
    assert _files(results) == previous
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name]
    kept = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    assert len(kept) == 2 and all(".resume/" in k for k in kept) and {Path(k).name for k in kept} == {"best.pt",
                                                                                                     "last.pt"}
    assert load_checkpoint(data / kept[1])["epoch"] == 1

    # --resume continues from epoch 2 and ends with the uninterrupted run's numbers
    res = subprocess.run(_reproduce_cmd(driver, dataset, results, "--resume"), cwd=ROOT,
                         env=_env(FASHIONLAB_DATA=str(data)), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "resuming from $FASHIONLAB_DATA/checkpoints/triplet-baseline/" in res.stdout
    assert "after epoch 1 of 3" in res.stdout and "epoch 1/3" not in res.stdout and "epoch 3/3" in res.stdout
    assert _numbers(results) == expected
    assert sorted(_files(results)) == ["triplet-baseline.json", "triplet-baseline.md"]
    left = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    assert len(left) == 1 and left[0].endswith(".pt") and ".resume" not in left[0]  # only the trained model
