"""Tests of fashionlab.engine: device, seeds, the fit loop (AMP, channels_last, checkpoints, resume), features."""
from __future__ import annotations

import json
import random
from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import fashionlab
from fashionlab.engine import (
    History,
    epoch_seed,
    extract_features,
    fit,
    load_checkpoint,
    resolve_amp,
    seed_everything,
    to_device,
)

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------------------------------
# toy problem: two Gaussian blobs, a small MLP with dropout and batch norm
# ----------------------------------------------------------------------------------------------------------
def toy_data(n=256, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, d, generator=g) + 1.5 * (2 * y[:, None].float() - 1)
    return x, y


def toy_model(seed=0, d=8):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2))


def shuffled_batches(x, y, bs=32):
    """Data order as a function of the epoch: fit reseeds torch before calling it."""

    def make(epoch):
        perm = torch.randperm(len(x))
        return [(x[perm[i:i + bs]], y[perm[i:i + bs]]) for i in range(0, len(x), bs)]

    return make


def ce_step(model, batch):
    xb, yb = batch
    logits = model(xb)
    return F.cross_entropy(logits, yb), {"acc": (logits.argmax(1) == yb).float().mean()}


# ----------------------------------------------------------------------------------------------------------
# device and seeds
# ----------------------------------------------------------------------------------------------------------
def test_device_picks_cpu_here_and_says_so(capsys, monkeypatch):
    monkeypatch.delenv("FASHIONLAB_DEVICE", raising=False)
    dev = fashionlab.device()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "fashionlab: device" in out
    if not torch.cuda.is_available() and not (torch.backends.mps.is_available()):
        assert dev == CPU and "cpu" in out
    elif torch.cuda.is_available():
        assert dev.type == "cuda"


def test_device_explicit_choice_and_env(capsys, monkeypatch):
    assert fashionlab.device("cpu", verbose=False) == CPU
    assert capsys.readouterr().out == ""
    assert fashionlab.device(torch.device("cpu"), verbose=False) == CPU
    monkeypatch.setenv("FASHIONLAB_DEVICE", "cpu")
    assert fashionlab.device(verbose=False) == CPU
    with pytest.raises(ValueError, match="unknown device"):
        fashionlab.device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            fashionlab.device("cuda")
        monkeypatch.setenv("FASHIONLAB_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="FASHIONLAB_DEVICE"):
            fashionlab.device()


def test_seed_everything_repeats_every_rng():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    g = seed_everything(123)
    first = draw()
    a = torch.rand(3, generator=g)
    g2 = seed_everything(123)
    assert draw() == first
    assert torch.equal(torch.rand(3, generator=g2), a)
    assert epoch_seed(0, 1) != epoch_seed(0, 2) != epoch_seed(1, 1)
    assert epoch_seed(5, 3) == epoch_seed(5, 3) and 0 <= epoch_seed(5, 3) < 2**63


def test_to_device_nested():
    P = namedtuple("P", "img label")
    batch = {"a": torch.zeros(2, 3, 4, 4), "b": [torch.ones(2), "name", 3], "c": P(torch.zeros(1, 3, 2, 2), 7)}
    out = to_device(batch, CPU, channels_last=True)
    assert out["a"].is_contiguous(memory_format=torch.channels_last)
    assert out["b"][1:] == ["name", 3] and isinstance(out["c"], P) and out["c"].label == 7
    assert torch.equal(out["b"][0], torch.ones(2))


def test_resolve_amp():
    assert resolve_amp(None, CPU) is None  # default on CPU: plain fp32
    assert resolve_amp(False, CPU) is None and resolve_amp("off", CPU) is None
    assert resolve_amp(True, CPU) is torch.bfloat16
    assert resolve_amp("fp16", CPU) is torch.float16 and resolve_amp("bf16", CPU) is torch.bfloat16
    with pytest.raises(ValueError):
        resolve_amp("int8", CPU)


# ----------------------------------------------------------------------------------------------------------
# fit
# ----------------------------------------------------------------------------------------------------------
def test_fit_learns_and_records_history(capsys):
    x, y = toy_data()
    model = toy_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    hist = fit(model, ce_step, shuffled_batches(x, y), opt, epochs=4, scheduler=sched, device=CPU, progress=False)
    assert isinstance(hist, History) and len(hist) == 4
    assert hist["epoch"] == [1, 2, 3, 4]
    assert hist["loss"][-1] < hist["loss"][0] < 1.0
    assert hist["lr"] == pytest.approx([1e-2, 5e-3, 2.5e-3, 1.25e-3])
    assert hist[-1]["train_acc"] > 0.9 and all(r["seconds"] > 0 for r in hist)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch 1/4  loss") and "train_acc" in lines[0]
    assert "seconds" not in lines[0] and "lr" not in lines[0]  # notebook outputs stay free of timings


def test_fit_accepts_a_dataloader_and_a_dict_loss():
    x, y = toy_data(128)
    model = toy_model()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    hist = fit(model, lambda m, b: {"loss": F.cross_entropy(m(b[0]), b[1])}, loader,
               torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False, verbose=False)
    assert len(hist) == 2 and hist.keys() == ["epoch", "loss", "lr", "seconds"]


@pytest.mark.parametrize("data", ["callable", "dataloader"])
def test_resume_matches_uninterrupted_run(tmp_path, data):
    """4 epochs straight == 2 epochs, stop, resume for 2 more: same weights, history, optimizer state."""
    x, y = toy_data()

    def run(epochs, ckdir, resume=False, init_seed=0):
        model = toy_model(seed=init_seed)  # a resumed run may start from other weights: they get replaced
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
        batches = (shuffled_batches(x, y) if data == "callable"
                   else DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True))
        hist = fit(model, ce_step, batches, opt, epochs, scheduler=sched, device=CPU, seed=7,
                   checkpoint_dir=ckdir, resume=resume, progress=False, verbose=False,
                   eval_fn=lambda m, e: {"val_acc": (m(x).argmax(1) == y).float().mean()})
        return model, opt, hist

    straight, opt_a, hist_a = run(4, tmp_path / "a")
    random.random(), np.random.rand(), torch.rand(5)  # history of the process must not matter
    run(2, tmp_path / "b")
    resumed, opt_b, hist_b = run(4, tmp_path / "b", resume=True, init_seed=99)

    for (k, va), (_, vb) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(va, vb), k  # bitwise on CPU
    for sa, sb in zip(opt_a.state.values(), opt_b.state.values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in hist_a] == \
           [{k: v for k, v in r.items() if k not in drop} for r in hist_b]
    assert hist_a.best_epoch == hist_b.best_epoch
    # the run without interruption differs from one with another seed: the check above is not vacuous
    other = toy_model()
    fit(other, ce_step, shuffled_batches(x, y), torch.optim.Adam(other.parameters(), lr=5e-3), 1,
        device=CPU, seed=8, progress=False, verbose=False)
    assert not torch.equal(other[0].weight, straight[0].weight)


def test_resume_when_finished_or_missing(tmp_path, capsys):
    x, y = toy_data(64)
    model = toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h1 = fit(model, ce_step, shuffled_batches(x, y), opt, 2, device=CPU, checkpoint_dir=tmp_path,
             resume=True, progress=False)
    assert "no last.pt" in capsys.readouterr().out and len(h1) == 2
    w = model[0].weight.detach().clone()
    h2 = fit(model, ce_step, shuffled_batches(x, y), opt, 2, device=CPU, checkpoint_dir=tmp_path,
             resume=True, progress=False)
    assert h2 == h1 and torch.equal(model[0].weight, w)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(model, ce_step, shuffled_batches(x, y), opt, 2, device=CPU, resume=True, progress=False)


def test_eval_fn_best_checkpoint_and_restore_best(tmp_path):
    x, y = toy_data(64)
    model = toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scores = iter([0.3, 0.9, 0.5])  # best at epoch 2
    seen = []

    def eval_fn(m, epoch):
        seen.append((epoch, m.training, torch.is_grad_enabled()))
        return {"val_mAP": next(scores), "note": "text is kept"}

    weights = []
    hist = fit(model, ce_step, shuffled_batches(x, y), opt, 3, device=CPU, checkpoint_dir=tmp_path,
               eval_fn=lambda m, e: (weights.append(m[0].weight.detach().clone()), eval_fn(m, e))[1],
               restore_best=True, progress=False, verbose=False)
    assert seen == [(0, False, False), (1, False, False), (2, False, False)]
    assert hist.monitor == "val_mAP" and hist.best_epoch == 2 and hist.best == 0.9
    assert hist["val_mAP"] == [0.3, 0.9, 0.5] and hist[0]["note"] == "text is kept"
    assert torch.equal(model[0].weight, weights[1])  # restore_best
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == 2 and torch.equal(best["model"]["0.weight"], weights[1])
    last = load_checkpoint(tmp_path / "last.pt", model=toy_model(5))
    assert last["epoch"] == 3 and {"optimizer", "scheduler", "scaler", "rng", "history"} <= set(last)
    assert torch.equal(last["model"]["0.weight"], weights[2])
    with pytest.raises(KeyError, match="nope"):
        fit(toy_model(), ce_step, shuffled_batches(x, y), opt, 1, device=CPU, eval_fn=lambda m, e: {"mAP": 1.0},
            monitor="nope", progress=False, verbose=False)


def test_monitor_min_and_plateau_scheduler():
    x, y = toy_data(64)
    model = toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=0, factor=0.5)
    vals = iter([1.0, 2.0, 3.0, 0.5])
    hist = fit(model, ce_step, shuffled_batches(x, y), opt, 4, scheduler=sched, device=CPU,
               eval_fn=lambda m, e: {"val_loss": next(vals)}, mode="min", progress=False, verbose=False)
    assert hist.best_epoch == 4 and hist.best == 0.5
    assert hist["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_history_json_roundtrip_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = History([{"epoch": 1, "loss": 1.0, "lr": 0.1, "seconds": 0.5, "val_mAP": 10.0},
                 {"epoch": 2, "loss": 0.5, "lr": 0.1, "seconds": 0.5, "val_mAP": 20.0}],
                monitor="val_mAP", best_epoch=2, best=20.0)
    back = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back == h and back.best_epoch == 2 and back.monitor == "val_mAP" and back["loss"] == [1.0, 0.5]
    assert isinstance(back[:1], History) and len(back[:1]) == 1
    assert "best val_mAP=20" in repr(back)
    fig = h.plot()
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    plt.close(fig)
    fig = History([{"epoch": 1, "loss": 1.0, "lr": 0.1, "seconds": 0.1}]).plot(title="t")
    assert len(fig.axes) == 1
    plt.close(fig)


def test_nan_loss_raises():
    model = nn.Linear(2, 1)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        fit(model, lambda m, b: m(b).sum() * float("nan"), lambda e: [torch.ones(4, 2)],
            torch.optim.SGD(model.parameters(), lr=0.1), 1, device=CPU, progress=False, verbose=False)
    with pytest.raises(TypeError, match="step_fn"):
        fit(model, lambda m, b: 1.0, lambda e: [torch.ones(4, 2)],
            torch.optim.SGD(model.parameters(), lr=0.1), 1, device=CPU, progress=False, verbose=False)


def test_progress_bar_can_run_and_be_silenced(capsys, monkeypatch):
    x, y = toy_data(64)
    model = toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, ce_step, shuffled_batches(x, y), opt, 1, device=CPU, progress=True, verbose=False)
    assert "epoch 1/1" in capsys.readouterr().err  # tqdm writes to stderr
    monkeypatch.setenv("FASHIONLAB_PROGRESS", "0")
    fit(model, ce_step, shuffled_batches(x, y), opt, 1, device=CPU, verbose=False)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------------------------------
# mixed precision and channels_last, exercised on CPU
# ----------------------------------------------------------------------------------------------------------
def conv_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def image_batches(epoch):
    g = torch.Generator().manual_seed(epoch)
    return [(torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 2, (8,), generator=g)) for _ in range(3)]


@pytest.mark.parametrize("amp,dtype", [(None, None), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_on_cpu(amp, dtype, tmp_path):
    seen = []

    def step(model, batch):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        xb, yb = batch
        logits = model(xb)
        if dtype is not None:
            assert logits.dtype == dtype  # the linear layer ran in reduced precision
        return F.cross_entropy(logits.float(), yb)

    model = conv_model()
    hist = fit(model, step, image_batches, torch.optim.SGD(model.parameters(), lr=0.1), 2, amp=amp, device=CPU,
               checkpoint_dir=tmp_path, progress=False, verbose=False)
    assert all(s[0] == (dtype is not None) for s in seen)
    if dtype is not None:
        assert all(s[1] == dtype for s in seen)
    assert all(np.isfinite(hist["loss"])) and model[0].weight.dtype == torch.float32
    scaler_state = load_checkpoint(tmp_path / "last.pt")["scaler"]
    assert (scaler_state is not None) == (amp == "fp16")  # GradScaler only for fp16


def test_channels_last_on_cpu_when_asked():
    seen = []

    def step(model, batch):
        xb, yb = batch
        seen.append(xb.is_contiguous(memory_format=torch.channels_last))
        return F.cross_entropy(model(xb), yb)

    model = conv_model()
    fit(model, step, image_batches, torch.optim.SGD(model.parameters(), lr=0.1), 1, channels_last=True,
        device=CPU, progress=False, verbose=False)
    assert all(seen) and model[0].weight.is_contiguous(memory_format=torch.channels_last)
    seen.clear()
    fit(conv_model(), step, image_batches, torch.optim.SGD(model.parameters(), lr=0.1), 1, device=CPU,
        progress=False, verbose=False)
    assert not any(seen)  # default on CPU: off


def test_grad_clip_limits_the_update():
    model = nn.Linear(4, 1, bias=False)
    nn.init.zeros_(model.weight)
    fit(model, lambda m, b: 1000 * m(b).sum(), lambda e: [torch.ones(2, 4)],
        torch.optim.SGD(model.parameters(), lr=1.0), 1, grad_clip=1.0, device=CPU, progress=False, verbose=False)
    assert model.weight.norm().item() == pytest.approx(1.0, rel=1e-5)


# ----------------------------------------------------------------------------------------------------------
# extract_features
# ----------------------------------------------------------------------------------------------------------
def test_extract_features_eval_mode_order_and_outputs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5))
    x = torch.randn(10, 4)
    loader = DataLoader(TensorDataset(x, torch.arange(10)), batch_size=3)
    feats = extract_features(net, loader, CPU)
    assert net.training  # mode restored
    assert feats.shape == (10, 6) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, net[0](x))  # dropout off: eval mode, loader order
    assert not feats.requires_grad

    both = extract_features(lambda b: {"z": net(b[0]), "i": b[1]}, loader, CPU, model=net)
    assert torch.equal(both["i"], torch.arange(10)) and torch.allclose(both["z"], feats)
    tup = extract_features(net.forward, [x[:4], x[4:]])  # a bound method; device from its parameters
    assert torch.allclose(tup, feats)
    bf = extract_features(net, loader, CPU, amp="bf16")
    assert bf.dtype == torch.float32 and torch.allclose(bf, feats, atol=0.05)
    with pytest.raises(ValueError, match="no batches"):
        extract_features(net, [], CPU)


# ----------------------------------------------------------------------------------------------------------
# CUDA (skipped without it)
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_uses_amp_and_channels_last(tmp_path):
    from fashionlab.models import GlobalPoolEmbedding, SmallCNN

    dev = fashionlab.device("cuda")
    seen = []
    net = nn.Sequential(GlobalPoolEmbedding(SmallCNN(width=8), 8, normalize=False), nn.Linear(8, 2))

    def step(model, batch):
        xb, yb = batch
        seen.append((xb.device.type, xb.is_contiguous(memory_format=torch.channels_last),
                     torch.is_autocast_enabled("cuda")))
        return F.cross_entropy(model(xb).float(), yb)

    def batches(epoch):
        g = torch.Generator().manual_seed(epoch)
        return [(torch.randn(16, 3, 64, 64, generator=g), torch.randint(0, 2, (16,), generator=g)) for _ in range(4)]

    hist = fit(net, step, batches, torch.optim.Adam(net.parameters(), 1e-3), 2, device=dev,
               checkpoint_dir=tmp_path, progress=False, verbose=False)
    assert all(s == ("cuda", True, True) for s in seen) and len(hist) == 2
    hist2 = fit(net, step, batches, torch.optim.Adam(net.parameters(), 1e-3), 3, device=dev,
                checkpoint_dir=tmp_path, resume=True, progress=False, verbose=False)
    assert len(hist2) == 3
    feats = extract_features(net, batches(0), dev)
    assert feats.device.type == "cuda" and feats.dtype == torch.float32 and feats.shape == (64, 2)


# ----------------------------------------------------------------------------------------------------------
# trained-model cache (fit(cache_key=...))
# ----------------------------------------------------------------------------------------------------------
def _cached_run(tmp_path, monkeypatch, key, model=None, epochs=2, lr=1e-2, **kw):
    monkeypatch.setenv("FASHIONLAB_DATA", str(tmp_path))
    x, y = toy_data(128)
    model = model if model is not None else toy_model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = fit(model, ce_step, shuffled_batches(x, y), opt, epochs=epochs, device=CPU, progress=False,
               cache_key=key, **kw)
    after = torch.rand(3)  # what the code after fit draws: must not depend on whether fit trained or loaded
    return model, hist, after


KEY = {"experiment": "toy", "method": "MLP", "mode": "quick", "seed": 0, "config": {"width": 32}}


def test_cache_loads_a_trained_model_and_says_so(tmp_path, monkeypatch, capsys):
    m1, h1, r1 = _cached_run(tmp_path, monkeypatch, KEY)
    files = list((tmp_path / "checkpoints" / "toy").glob("MLP-quick-seed0-*.pt"))
    assert len(files) == 1 and not list(tmp_path.rglob("*.tmp"))
    capsys.readouterr()
    m2, h2, r2 = _cached_run(tmp_path, monkeypatch, KEY)
    out = capsys.readouterr().out
    assert "loaded the trained toy MLP" in out and "epoch 1/2" not in out   # no training lines
    assert h2 == h1 and len(h2) == 2
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(r1, r2)   # the RNGs are left as a fresh run leaves them


@pytest.mark.parametrize("change", ["config", "epochs", "lr", "architecture", "retrain", "env"])
def test_cache_retrains_when_anything_that_matters_changes(tmp_path, monkeypatch, capsys, change):
    _cached_run(tmp_path, monkeypatch, KEY)
    capsys.readouterr()
    kw = {}
    if change == "config":
        kw["key"] = {**KEY, "config": {"width": 33}}
    elif change == "epochs":
        kw["epochs"] = 3
    elif change == "lr":
        kw["lr"] = 2e-2
    elif change == "architecture":
        torch.manual_seed(0)
        kw["model"] = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    elif change == "retrain":
        kw["retrain"] = True
    else:
        monkeypatch.setenv("FASHIONLAB_RETRAIN", "1")
    _cached_run(tmp_path, monkeypatch, kw.pop("key", KEY), **kw)
    out = capsys.readouterr().out
    assert "loaded the trained" not in out and "epoch 1/" in out


def test_cache_retraining_context_and_damaged_file(tmp_path, monkeypatch, capsys):
    from fashionlab.engine import retraining

    _cached_run(tmp_path, monkeypatch, KEY)
    with retraining():
        capsys.readouterr()
        _cached_run(tmp_path, monkeypatch, KEY)
        assert "loaded the trained" not in capsys.readouterr().out
    path = next((tmp_path / "checkpoints" / "toy").glob("*.pt"))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="not a usable trained-model file"):
        _cached_run(tmp_path, monkeypatch, KEY)
    assert "epoch 1/2" in capsys.readouterr().out


def test_cache_signature_follows_the_code_not_its_place_in_the_file():
    """Moving a step function down its file (or editing the file while a notebook runs) keeps the cache entry;
    changing what the function computes does not."""
    from fashionlab.engine import _behaviour

    def compiled(src, first_line):
        ns = {}
        exec(compile("\n" * first_line + src, "<step>", "exec"), {"F": F}, ns)
        return ns["step"]

    a = "def step(model, batch):\n    return F.cross_entropy(model(batch[0]), batch[1])\n"
    b = "def step(model, batch):\n    return F.nll_loss(model(batch[0]), batch[1])\n"
    assert _behaviour(compiled(a, 0)) == _behaviour(compiled(a, 40))
    assert _behaviour(compiled(a, 0)) != _behaviour(compiled(b, 0))

    def loss_class(reduce):  # two classes of the same name whose forward differs
        class Loss(nn.Module):
            def forward(self, x):
                return x.mean() if reduce == "mean" else x.sum()
        if reduce == "sum":
            class Loss(nn.Module):  # noqa: F811
                def forward(self, x):
                    return x.sum()
        return Loss

    Loss, OtherLoss = loss_class("mean"), loss_class("sum")
    assert Loss.__qualname__ == OtherLoss.__qualname__

    def closing_over(loss):
        def step(model, batch):
            return loss(model(batch))
        return step

    assert _behaviour(closing_over(Loss())) == _behaviour(closing_over(Loss()))
    assert _behaviour(closing_over(Loss())) != _behaviour(closing_over(OtherLoss()))
