"""Training engine: device choice, seeding, the fit loop, checkpoints and feature extraction.

Every notebook trains through :func:`fit` and embeds images through :func:`extract_features`, so the
things that are easy to get wrong are done once, here (docs/architecture.md, layout: ``engine.py``):

* **Device-agnostic, GPU-ready** (docs/architecture.md, principle 5). :func:`device` picks CUDA, then MPS, then CPU and says
  which. On CUDA, :func:`fit` turns on mixed precision (``torch.autocast``; bf16 where the GPU has it,
  else fp16 with a ``GradScaler``) and the ``channels_last`` memory format. On CPU and MPS the default
  path is plain fp32 with nothing CUDA-only in it; both features can still be asked for explicitly.
* **Three modes, one code path** (docs/architecture.md, principle 4). The loop does not know the mode: quick, default and full
  runs differ only in the sizes the experiment passes in.
* **Honest, repeatable numbers** (docs/architecture.md, principle 6). :func:`fit` reseeds every RNG at the start of each epoch
  from ``(seed, epoch)``, so the data order, dropout and augmentation of epoch ``e`` do not depend on what
  ran before. Together with the checkpoint (model, optimizer, scheduler, scaler, history, RNG states)
  this makes a run stopped after epoch 2 and resumed with ``resume=True`` end with the same weights as a
  run that never stopped (bitwise on CPU; ``tests/test_engine.py`` checks it).

A minimal use, as a notebook would write it::

    def step(model, batch):                      # batch arrives already on the device
        images, labels = batch
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        return loss, {"acc": (logits.argmax(1) == labels).float().mean()}

    def batches(epoch):                          # data order is a function of the epoch
        return DataLoader(train_set, batch_size=64, shuffle=True)

    history = fit(model, step, batches, torch.optim.Adam(model.parameters(), 1e-3), epochs=10,
                  eval_fn=lambda m, e: {"val_mAP": evaluate(m)}, checkpoint_dir="runs/asen")
    history.plot()
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import time
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as _dist

__all__ = [
    "device",
    "seed_everything",
    "epoch_seed",
    "fit",
    "History",
    "extract_features",
    "to_device",
    "resolve_amp",
    "load_checkpoint",
    "read_torch_file",
    "state_dict_mismatch",
    "CheckpointError",
    "run_checkpoints",
    "resume_checkpoint_dir",
    "retraining",
    "trained_model_path",
]

_AMP_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


# ----------------------------------------------------------------------------------------------------------
# device and seeds
# ----------------------------------------------------------------------------------------------------------
def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def device(prefer: str | torch.device | None = None, verbose: bool = True) -> torch.device:
    """Pick the device to compute on: CUDA, then Apple MPS, then CPU (docs/architecture.md principle 5).

    ``prefer`` (or, when it is ``None``, the environment variable ``FASHIONLAB_DEVICE``) forces a choice:
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"`` for the default order. An explicit
    choice that this machine cannot honour raises ``RuntimeError`` rather than silently running elsewhere.
    With ``verbose`` one short line says what was picked, e.g. ``fashionlab: device cpu (no CUDA or MPS
    found)``.
    """
    choice = prefer if prefer is not None else (os.environ.get("FASHIONLAB_DEVICE") or "auto")
    source = "argument" if prefer is not None else "FASHIONLAB_DEVICE"
    if isinstance(choice, torch.device):
        dev = choice
        why = "as asked"
    else:
        text = str(choice).strip().lower()
        if text in ("", "auto"):
            if torch.cuda.is_available():
                dev, why = torch.device("cuda"), "CUDA found"
            elif _mps_available():
                dev, why = torch.device("mps"), "Apple MPS found"
            else:
                dev, why = torch.device("cpu"), "no CUDA or MPS found"
        else:
            try:
                dev = torch.device(text)
            except RuntimeError as exc:
                raise ValueError(f"unknown device {choice!r} (from {source}); use cpu, cuda, cuda:N, mps or auto") from exc
            why = f"asked for by {source}"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {str(dev)!r} was asked for ({why}) but CUDA is not available here")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"device {str(dev)!r} asked for but only {torch.cuda.device_count()} CUDA device(s) exist")
        dev = torch.device("cuda", index)
        why = f"{why}: {torch.cuda.get_device_name(index)}"
    elif dev.type == "mps" and not _mps_available():
        raise RuntimeError(f"device 'mps' was asked for ({why}) but Apple MPS is not available here")
    if verbose:
        print(f"fashionlab: device {dev} ({why})")
    return dev


_device = device  # fit() and extract_features() take a ``device`` argument that hides the function


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device) with ``seed``.

    Returns a fresh CPU ``torch.Generator`` seeded with ``seed``: hand it to a ``DataLoader(generator=...)``
    or ``torch.randperm(..., generator=...)`` when a stream of its own is wanted. With ``deterministic``
    cuDNN autotuning is turned off and deterministic kernels are preferred (slower on GPU; CPU results are
    already repeatable). Part of "honest numbers" (docs/architecture.md principle 6): a notebook seeds once in its
    first cells, and :func:`fit` reseeds per epoch.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The 63-bit seed that :func:`fit` uses for ``epoch`` of a run seeded with ``seed``.

    Derived with NumPy's ``SeedSequence`` so that nearby ``(seed, epoch)`` pairs give unrelated streams.
    Use it in ``make_batches`` when a private generator is wanted:
    ``torch.Generator().manual_seed(epoch_seed(seed, epoch))``. Implements the per-epoch reseeding that
    makes resumed runs repeat uninterrupted ones (docs/architecture.md principle 6).
    """
    words = np.random.SeedSequence([int(seed) % 2**63, int(epoch)]).generate_state(2, dtype=np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1])) % 2**63


def _seed_epoch(seed: int, epoch: int) -> None:
    s = epoch_seed(seed, epoch)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def _rng_state() -> dict:
    """All global RNG states in plain types and tensors (so ``torch.load(weights_only=True)`` reads them)."""
    npst = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": npst["bit_generator"],
            "key": torch.from_numpy(np.asarray(npst["state"]["key"], dtype=np.int64)),
            "pos": int(npst["state"]["pos"]),
            "has_gauss": int(npst["has_gauss"]),
            "gauss": float(npst["gauss"]),
        },
        "torch": torch.random.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------------------
# batches, precision
# ----------------------------------------------------------------------------------------------------------
def to_device(batch: Any, dev: torch.device | str, channels_last: bool = False, non_blocking: bool = True) -> Any:
    """Move a batch to ``dev``: tensors, and tensors nested in tuples, lists and dicts; other values pass through.

    With ``channels_last`` 4-d floating-point tensors (image batches) are stored in that memory format
    (docs/architecture.md principle 5: faster convolutions on CUDA tensor cores).
    """
    if isinstance(batch, torch.Tensor):
        out = batch.to(dev, non_blocking=non_blocking)
        if channels_last and out.dim() == 4 and out.is_floating_point():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(batch, Mapping):
        return {k: to_device(v, dev, channels_last, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, dev, channels_last, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, dev, channels_last, non_blocking) for v in batch)
    return batch


def resolve_amp(amp: bool | str | None, dev: torch.device) -> torch.dtype | None:
    """The autocast dtype that ``amp`` asks for on ``dev``, or ``None`` for plain fp32 (docs/architecture.md principle 5).

    ``None`` (auto): bf16 on a CUDA GPU that supports it, fp16 on other CUDA GPUs, off elsewhere.
    ``False``/``"off"``: off. ``True``: like auto, but on CPU it means bf16. ``"bf16"``/``"fp16"``: that
    dtype on any device (CPU autocast supports both; fp16 on CPU is mainly for testing the code path).
    """
    dev = torch.device(dev)
    if amp is False or (isinstance(amp, str) and amp.lower() in ("off", "no", "none", "fp32", "false")):
        return None
    if isinstance(amp, str):
        key = amp.lower()
        if key not in _AMP_DTYPES:
            raise ValueError(f"amp={amp!r}: expected None (auto), True, False, 'bf16' or 'fp16'")
        return _AMP_DTYPES[key]
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp is True:
        return torch.bfloat16 if dev.type == "cpu" else torch.float16
    return None  # auto off the GPU: plain fp32


def _autocast(dev: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=dev.type, dtype=dtype, enabled=dtype is not None)


# ----------------------------------------------------------------------------------------------------------
# history
# ----------------------------------------------------------------------------------------------------------
class History(list):
    """What :func:`fit` records: a list with one dict per finished epoch.

    Each record has ``epoch`` (1-based), ``loss`` (mean training loss over the epoch's batches), ``lr``
    (of the first parameter group, at the start of the epoch), ``seconds``, the means of any extra
    metrics that ``step_fn`` returned (as ``train_<name>``), and whatever ``eval_fn`` returned. When a
    metric is monitored, ``monitor``, ``mode``, ``best_epoch`` and ``best`` say which epoch was best.
    ``history["loss"]`` gives a column; ``to_dict``/``from_dict`` round-trip through JSON, so the curves
    can be stored beside a result and redrawn later (docs/architecture.md principle 6: every figure comes from a run).
    """

    def __init__(self, records: Iterable[Mapping] = (), monitor: str | None = None, mode: str = "max",
                 best_epoch: int | None = None, best: float | None = None):
        super().__init__(dict(r) for r in records)
        self.monitor = monitor
        self.mode = mode
        self.best_epoch = best_epoch
        self.best = best

    def __getitem__(self, key):
        if isinstance(key, str):
            return [r.get(key, float("nan")) for r in self]
        out = super().__getitem__(key)
        return History(out, self.monitor, self.mode, self.best_epoch, self.best) if isinstance(key, slice) else out

    def keys(self) -> list[str]:
        """Every metric name recorded in some epoch, in first-seen order."""
        seen: dict[str, None] = {}
        for r in self:
            seen.update(dict.fromkeys(r))
        return list(seen)

    @property
    def last(self) -> dict:
        """The record of the last finished epoch (empty dict before any)."""
        return self[-1] if len(self) else {}

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``{"records": [...], "monitor", "mode", "best_epoch", "best"}``."""
        return {"records": [dict(r) for r in self], "monitor": self.monitor, "mode": self.mode,
                "best_epoch": self.best_epoch, "best": self.best}

    @classmethod
    def from_dict(cls, d: Mapping) -> "History":
        """Inverse of :meth:`to_dict`. A plain list of records is accepted too."""
        if isinstance(d, (list, tuple)):
            return cls(d)
        return cls(d.get("records", ()), d.get("monitor"), d.get("mode", "max"), d.get("best_epoch"), d.get("best"))

    def __repr__(self) -> str:
        best = f", best {self.monitor}={self.best:.4g} at epoch {self.best_epoch}" if self.best_epoch else ""
        return f"History({len(self)} epochs, keys={self.keys()}{best})"

    def plot(self, keys: Iterable[str] | None = None, title: str | None = None):
        """Plot training loss (left) and the other recorded metrics (right) against the epoch; returns the figure.

        ``keys`` picks the metrics of the right panel (default: every numeric key except epoch, loss, lr and
        seconds). The best epoch, when known, is marked. Uses matplotlib; call ``plt.show()`` or let Jupyter
        display the returned figure.
        """
        import matplotlib.pyplot as plt

        epochs = self["epoch"]
        skip = {"epoch", "loss", "lr", "seconds"}
        if keys is None:
            keys = [k for k in self.keys() if k not in skip
                    and all(isinstance(r.get(k, 0.0), (int, float)) for r in self)]
        keys = list(keys)
        ncols = 2 if keys else 1
        fig, axes = plt.subplots(1, ncols, figsize=(5.0 * ncols, 3.4), squeeze=False)
        ax = axes[0, 0]
        ax.plot(epochs, self["loss"], marker="o", label="train loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title("training loss")
        ax.grid(alpha=0.3)
        if keys:
            ax2 = axes[0, 1]
            for k in keys:
                ax2.plot(epochs, self[k], marker="o", label=k)
            if self.best_epoch is not None:
                ax2.axvline(self.best_epoch, color="grey", ls="--", lw=1, label=f"best ({self.monitor})")
            ax2.set_xlabel("epoch")
            ax2.set_title("metrics")
            ax2.grid(alpha=0.3)
            ax2.legend(fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig


# ----------------------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be used: empty, truncated, corrupt, not written by torch, or
    written for another model. The message names the file, what it holds and what was expected."""


_FIT_KEYS = ("model", "optimizer", "epoch", "history", "rng")


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` into ``<path>.tmp`` beside ``path`` (flushed to disk), then rename it over ``path``: a
    run killed while saving leaves the previous file whole. The temporary file is removed on any error."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _remove_stale_tmp(*paths: Path) -> None:
    """Remove the ``<path>.tmp`` files that a run killed inside :func:`_atomic_save` (SIGKILL) left behind."""
    for p in paths:
        with contextlib.suppress(OSError):
            Path(p).with_name(Path(p).name + ".tmp").unlink()


def _short_reason(exc: BaseException) -> str:
    """torch's error in a few words: its first line, cut, never torch's advice about ``weights_only``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "weights_only" in text or "weights-only" in text.lower():
        text = ""
    text = re.split(r"(?<=\.) ", text)[0]  # the first sentence: torch's advice follows it
    text = text[:120] + ("..." if len(text) > 120 else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """Read a file written by ``torch.save`` safely (tensors and plain containers only) or raise
    :class:`CheckpointError` naming ``path`` and what is wrong with it (empty, truncated or corrupt, holding
    Python objects other than tensors). ``what`` says what the file should be (in the message). A missing
    file raises ``FileNotFoundError``, an unreadable one ``PermissionError``, both naming the path."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, f"no such {what}", str(path))
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; expected a {what} file (written by torch.save)")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the {what} is empty (0 bytes); expected a file written by torch.save "
                              "(a run killed while writing it, or a failed copy)")
    with open(path, "rb") as f:  # PermissionError here names the path
        head = f.read(4)
    kind = ("a zip archive" if head[:2] == b"PK" else "a pickle" if head[:1] == b"\x80" else
            "neither a zip archive nor a pickle")
    import pickle

    try:
        with warnings.catch_warnings():  # torch's notes about pickle protocols are no use to the reader
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg)
        if m:
            raise CheckpointError(
                f"{path}: holds pickled Python objects ({m.group(1)}), not just tensors and plain containers, so it "
                f"is not a {what} that fashionlab or torchvision writes; fashionlab does not load such files because "
                "reading them can run code from the file") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", msg, re.S)
        reason = f"UnpicklingError: {detail.group(1).strip()[:120]}" if detail else _short_reason(exc)
        raise CheckpointError(f"{path}: not a readable {what} ({size} bytes, {kind}): the file is corrupt or not "
                              f"in torch's format ({reason}); expected a complete file written by torch.save"
                              ) from None
    except Exception as exc:  # EOFError, RuntimeError (zip), IndexError, OSError(EINVAL), KeyError...
        raise CheckpointError(f"{path}: not a readable {what} ({size} bytes, {kind}): the file is truncated or "
                              f"corrupt ({_short_reason(exc)}); expected a complete file written by torch.save"
                              ) from None


def _describe(obj: Any) -> str:
    """What a loaded file holds, in a few words."""
    if isinstance(obj, Mapping):
        keys = list(obj)
        shown = ", ".join(map(str, keys[:6])) + (f", ... ({len(keys)} keys)" if len(keys) > 6 else "")
        if keys and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return f"a state dict of {len(keys)} tensors ({shown})"
        return f"a dict with keys [{shown}]"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {list(obj.shape)}"
    return f"a {type(obj).__name__}"


def state_dict_mismatch(found: Mapping, expected: Mapping, limit: int = 3) -> str | None:
    """``None`` when the state dict ``found`` (from a file) fits ``expected`` (a model's ``state_dict()``) key
    for key and shape for shape; else a one-line summary of what differs: the keys missing from the file,
    the unexpected ones, the shapes that differ (a few examples of each, with counts)."""
    if not isinstance(found, Mapping):
        return f"it holds {_describe(found)}, not a state dict"
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    shapes = []
    for k, v in expected.items():
        if k in found:
            f = found[k]
            if not isinstance(f, torch.Tensor):
                shapes.append(f"{k}: file holds a {type(f).__name__}, model a tensor {list(v.shape)}")
            elif tuple(f.shape) != tuple(v.shape):
                shapes.append(f"{k}: file {list(f.shape)} vs model {list(v.shape)}")
    if not (missing or extra or shapes):
        return None
    ex = lambda xs: ", ".join(map(str, xs[:limit])) + (", ..." if len(xs) > limit else "")  # noqa: E731
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(expected)} keys missing ({ex(missing)})")
    if extra:
        parts.append(f"{len(extra)} unexpected keys ({ex(extra)})")
    if shapes:
        parts.append(f"{len(shapes)} shapes differ ({ex(shapes)})")
    return "; ".join(parts)


def _load_weights(model: nn.Module, state: Any, path: Path, what: str) -> None:
    """``model.load_state_dict(state)`` with a :class:`CheckpointError` that summarises a mismatch."""
    net = _unwrap(model)
    diff = state_dict_mismatch(state, net.state_dict())
    if diff is not None:
        raise CheckpointError(f"{path}: the {what} was written for another model ({diff}); expected the weights "
                              f"of {type(net).__name__} with {len(net.state_dict())} tensors")
    try:
        net.load_state_dict(state)
    except Exception as exc:  # dtype trouble and the like
        raise CheckpointError(f"{path}: the {what} does not fit {type(net).__name__} ({_short_reason(exc)})") from None


def _require_keys(obj: Any, path: Path, what: str, keys: Iterable[str]) -> Mapping:
    keys = list(keys)
    if not isinstance(obj, Mapping) or any(k not in obj for k in keys):
        raise CheckpointError(f"{path}: holds {_describe(obj)}; expected a {what} with the keys {keys}")
    return obj


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, map_location: Any = "cpu") -> dict:
    """Read a checkpoint written by :func:`fit` (``last.pt`` or ``best.pt``); load its weights into ``model`` if given.

    Returns the checkpoint dict (``model``, ``epoch``, ``history`` and, for ``last.pt``, ``optimizer``,
    ``scheduler``, ``scaler``, ``rng``). Only plain tensors and containers are unpickled
    (``weights_only=True``). Use it to evaluate the best model of an earlier run (docs/architecture.md, principle 6: numbers
    come from a saved, re-loadable model). An empty, truncated or foreign file, or one written for another
    architecture, raises :class:`CheckpointError` naming the file and what differs.
    """
    path = Path(path)
    ckpt = _require_keys(read_torch_file(path, "checkpoint"), path, "checkpoint written by engine.fit", ["model"])
    if model is not None:
        _load_weights(model, ckpt["model"], path, "checkpoint")
    if map_location not in (None, "cpu"):
        ckpt = dict(ckpt, model={k: v.to(map_location) if isinstance(v, torch.Tensor) else v
                                 for k, v in ckpt["model"].items()})
    return ckpt


def _restore_training_state(ckpt: Mapping, path: Path, model, optimizer, scheduler, scaler, what: str) -> None:
    """Load model, optimizer, scheduler and scaler state from ``ckpt``; on any failure put back what was there
    and raise :class:`CheckpointError` naming ``path``."""
    import copy

    net = _unwrap(model)
    saved = (copy.deepcopy(net.state_dict()), copy.deepcopy(optimizer.state_dict()),
             copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None,
             copy.deepcopy(scaler.state_dict()) if scaler is not None else None)
    try:
        _load_weights(model, ckpt["model"], path, what)
        try:
            _check_optimizer_state(ckpt["optimizer"], optimizer)
        except ValueError as exc:
            raise CheckpointError(f"{path}: the optimizer state in the {what} does not fit this "
                                  f"{type(optimizer).__name__}: {exc}; expected the optimizer built the same way "
                                  "as for the run that wrote it") from None
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except Exception as exc:
            raise CheckpointError(f"{path}: the optimizer state in the {what} does not fit this "
                                  f"{type(optimizer).__name__} ({_short_reason(exc)}); expected the optimizer "
                                  "built the same way as for the run that wrote it") from None
        try:
            if scheduler is not None and ckpt.get("scheduler") is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            if scaler is not None and ckpt.get("scaler") is not None:
                scaler.load_state_dict(ckpt["scaler"])
        except Exception as exc:
            raise CheckpointError(f"{path}: the scheduler/scaler state in the {what} does not fit "
                                  f"({_short_reason(exc)})") from None
    except BaseException:
        net.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
        if scheduler is not None:
            scheduler.load_state_dict(saved[2])
        if scaler is not None:
            scaler.load_state_dict(saved[3])
        raise


# per-group flags that torch versions add or drop; any other difference means another kind of optimizer
_OPTIMIZER_FLAGS = {"foreach", "maximize", "capturable", "differentiable", "fused", "decoupled_weight_decay",
                    "initial_lr"}


def _check_optimizer_state(saved: Any, optimizer: torch.optim.Optimizer) -> None:
    """Raise ``ValueError`` when ``saved`` (an optimizer ``state_dict``) is not the state of an optimizer like
    ``optimizer``: other hyperparameters (SGD's ``momentum`` against Adam's ``betas``) or other groups.
    ``load_state_dict`` itself would accept it and fail later, in the first step."""
    if not isinstance(saved, Mapping) or not isinstance(saved.get("param_groups"), (list, tuple)):
        raise ValueError(f"it holds {_describe(saved)}, not an optimizer state")
    mine = optimizer.state_dict()["param_groups"]
    if len(saved["param_groups"]) != len(mine):
        raise ValueError(f"{len(saved['param_groups'])} parameter groups, the optimizer has {len(mine)}")
    for g_saved, g_mine in zip(saved["param_groups"], mine):
        if not isinstance(g_saved, Mapping):
            raise ValueError("a parameter group is not a dict")
        missing = sorted(set(g_mine) - set(g_saved) - _OPTIMIZER_FLAGS)
        extra = sorted(set(g_saved) - set(g_mine) - _OPTIMIZER_FLAGS)
        if missing or extra:
            raise ValueError("its hyperparameters " + ", ".join(filter(None, [
                f"lack {missing}" if missing else "", f"include {extra}" if extra else ""]))
                + " (another kind of optimizer?)")


def _history_of(ckpt: Mapping, path: Path, what: str) -> "History":
    try:
        return History.from_dict(ckpt["history"])
    except Exception as exc:
        raise CheckpointError(f"{path}: the training history in the {what} is damaged ({_short_reason(exc)})") from None


def _set_rng_state_checked(state: Any, path: Path, what: str) -> None:
    try:
        _set_rng_state(state)
    except Exception as exc:
        raise CheckpointError(f"{path}: the RNG states in the {what} are damaged ({_short_reason(exc)})") from None


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


# ----------------------------------------------------------------------------------------------------------
# trained-model cache: a run that was trained once is loaded, not trained again
# ----------------------------------------------------------------------------------------------------------
_RETRAIN: contextvars.ContextVar[bool | None] = contextvars.ContextVar("fashionlab_retrain", default=None)


@contextlib.contextmanager
def retraining(on: bool = True):
    """Within this block every :func:`fit` with a ``cache_key`` trains afresh (and overwrites its cache entry).

    ``fashionlab reproduce --retrain`` and ``experiments.run(..., retrain=True)`` use it; outside such a block
    the environment variable ``FASHIONLAB_RETRAIN=1`` does the same."""
    token = _RETRAIN.set(bool(on))
    try:
        yield
    finally:
        _RETRAIN.reset(token)


def _retrain_requested(retrain: bool | None) -> bool:
    if retrain is not None:
        return bool(retrain)
    ctx = _RETRAIN.get()
    if ctx is not None:
        return ctx
    return os.environ.get("FASHIONLAB_RETRAIN", "").strip().lower() in ("1", "true", "yes", "on")


#: Metadata flag of a config dataclass field: left out of the trained-model cache key while at its default
#: (``dataclasses.field(default=..., metadata={KEY_OMITS_DEFAULT: True})``, :func:`fashionlab.experiments.registry.added_field`).
KEY_OMITS_DEFAULT = "fashionlab_key_omits_default"


def _jsonable(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        # a field marked KEY_OMITS_DEFAULT (added after trained models were cached) is left out at its default,
        # so the keys of the models cached before it existed stay the same
        return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)
                if not (f.metadata.get(KEY_OMITS_DEFAULT) and getattr(x, f.name) == f.default)}
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in x]
        return sorted(items, key=repr) if isinstance(x, (set, frozenset)) else items
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, (Path, torch.device, torch.dtype)):
        return str(x)
    if callable(x):
        return getattr(x, "__qualname__", repr(x))
    return repr(x)


def _code_digest(code: types.CodeType) -> str:
    """A digest of what a code object *does*: its bytecode, names and constants (nested functions included),
    not where it stands in its file, so moving code around (or editing a file while a notebook runs) does not
    look like a change of the model."""
    h = hashlib.sha256(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for c in code.co_consts:
        h.update(_code_digest(c).encode() if isinstance(c, types.CodeType) else repr(c).encode())
    return h.hexdigest()[:16]


def _behaviour(obj: Any) -> Any:
    """What decides the behaviour of a function (its code and, for a closure, the code of the functions it
    closes over) or of a class (the code of every method defined on it)."""
    obj = getattr(obj, "__func__", obj)  # bound methods
    if isinstance(obj, type):
        return {name: _behaviour(v) for name, v in sorted(vars(obj).items())
                if isinstance(v, (types.FunctionType, staticmethod, classmethod, property))}
    if isinstance(obj, (staticmethod, classmethod)):
        return _behaviour(obj.__func__)
    if isinstance(obj, property):
        return [_behaviour(f) for f in (obj.fget, obj.fset) if f is not None]
    code = getattr(obj, "__code__", None)
    if code is None:  # a callable object (an nn.Module as step, a functools.partial...): its type
        return getattr(type(obj), "__qualname__", repr(type(obj)))
    cells = [c.cell_contents for c in (obj.__closure__ or ()) if _has_contents(c)]
    return ([_code_digest(code)] + [_behaviour(c) for c in cells if isinstance(c, types.FunctionType)]
            + [[repr(c), {f"{k.__module__}.{k.__qualname__}": _behaviour(k) for k in {type(m) for m in c.modules()}
                          if not k.__module__.startswith("torch")}]
               for c in cells if isinstance(c, nn.Module)])  # a loss module the step closes over


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def _model_signature(model: nn.Module, step_fn: Any, optimizer: torch.optim.Optimizer, epochs: int,
                     seed: int, scheduler: Any) -> dict:
    """What defines a trained model besides the caller's key: the architecture (``repr`` and every
    parameter's shape), the code of the classes it is built from and of the step function (the loss),
    the optimizer's settings, the number of epochs and the seed."""
    net = _unwrap(model)
    classes = sorted({type(m) for m in net.modules()}, key=lambda c: (c.__module__, c.__qualname__))
    return {
        "repr": repr(net),
        "shapes": [(k, list(v.shape), str(v.dtype)) for k, v in net.state_dict().items()],
        "code": {f"{c.__module__}.{c.__qualname__}": _behaviour(c) for c in classes
                 if not c.__module__.startswith("torch")},
        "step": _behaviour(step_fn),
        "optimizer": [type(optimizer).__name__] + [{k: _jsonable(v) for k, v in g.items() if k != "params"}
                                                   for g in optimizer.param_groups],
        "scheduler": type(scheduler).__name__ if scheduler is not None else None,
        "epochs": int(epochs),
        "seed": int(seed),
    }


def trained_model_path(cache_key: Mapping, signature: Mapping | None = None, folder: str | os.PathLike | None = None) -> Path:
    """Where :func:`fit` keeps the trained model for ``cache_key``: ``<data>/checkpoints/<experiment>/
    <method>-<mode>-seed<seed>-<hash>.pt``, the hash over the whole key and the model's signature."""
    from .config import data_dir

    blob = json.dumps({"key": _jsonable(cache_key), "signature": _jsonable(signature or {})}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    slug = lambda s: re.sub(r"[^A-Za-z0-9._+-]+", "_", str(s)).strip("_") or "x"  # noqa: E731
    name = "-".join(slug(cache_key[k]) for k in ("method", "mode") if k in cache_key)
    if "seed" in cache_key:
        name += f"-seed{cache_key['seed']}"
    base = Path(folder) if folder is not None else data_dir() / "checkpoints"
    return base / slug(cache_key.get("experiment", "misc")) / f"{name or 'model'}-{digest}.pt"


def _load_trained(path: Path, model: nn.Module, optimizer, scheduler, scaler, dev: torch.device) -> History | None:
    """The cached trained model at ``path`` loaded into ``model``/``optimizer``/...; ``None`` (with a warning
    that names the file and why it cannot be used) when it is damaged or foreign: the caller then trains
    afresh from the untouched model."""
    rng_before = _rng_state()
    try:
        state = _require_keys(read_torch_file(path, "trained-model file"), path, "trained-model file",
                              ("model", "optimizer", "history", "rng"))
        history = _history_of(state, path, "trained-model file")
        _set_rng_state_checked(state["rng"], path, "trained-model file")  # the code after fit sees a fresh run's RNGs
        _restore_training_state(state, path, model, optimizer, scheduler, scaler, "trained-model file")
    except (CheckpointError, OSError) as exc:  # a truncated or foreign file: say which and why, then train afresh
        _set_rng_state(rng_before)
        reason = str(exc)
        prefix = f"{path}: "
        reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        warnings.warn(f"{path}: not a usable trained-model file ({reason}); training again", stacklevel=3)
        return None
    _move_optimizer_state(optimizer, dev)
    return history


# ----------------------------------------------------------------------------------------------------------
# run checkpoints: what `fashionlab reproduce --resume` continues
# ----------------------------------------------------------------------------------------------------------
_RUN_CHECKPOINTS: contextvars.ContextVar[bool | None] = contextvars.ContextVar("fashionlab_run_checkpoints",
                                                                               default=None)


@contextlib.contextmanager
def run_checkpoints(resume: bool = False):
    """Within this block every :func:`fit` with a ``cache_key`` (and no ``checkpoint_dir`` of its own) keeps a
    checkpoint of its run after every epoch in :func:`resume_checkpoint_dir` (under the data folder's
    ``checkpoints/``), written atomically and removed when the model is trained. With ``resume`` a run
    whose checkpoint is there continues from its last complete epoch and ends where an uninterrupted run
    ends. ``fashionlab reproduce`` runs inside this block (``--resume`` sets ``resume``)."""
    token = _RUN_CHECKPOINTS.set(bool(resume))
    try:
        yield
    finally:
        _RUN_CHECKPOINTS.reset(token)


def resume_checkpoint_dir(cache_path: str | os.PathLike) -> Path:
    """The folder of the per-epoch checkpoint (``last.pt``, ``best.pt``) of the run that trains the model cached
    at ``cache_path`` (:func:`trained_model_path`): beside it, ``<name>.resume/``. The name carries the same
    digest as the cache entry, so only a run with the same model, config, epochs and seed resumes from it."""
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.stem + ".resume")


# ----------------------------------------------------------------------------------------------------------
# fit
# ----------------------------------------------------------------------------------------------------------
def _progress_default() -> bool:
    return os.environ.get("FASHIONLAB_PROGRESS", "1").strip().lower() not in ("0", "false", "off", "no")


def _split_step_output(out: Any) -> tuple[torch.Tensor, Mapping]:
    if isinstance(out, torch.Tensor):
        return out, {}
    if isinstance(out, Mapping):
        if "loss" not in out:
            raise TypeError("step_fn returned a dict without a 'loss' entry")
        return out["loss"], {k: v for k, v in out.items() if k != "loss"}
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor):
        return out[0], (out[1] or {})
    raise TypeError("step_fn must return a loss tensor, (loss, dict of metrics) or a dict with 'loss'; "
                    f"got {type(out).__name__}")


def _as_float(v: Any) -> float:
    return float(v.detach().float().mean().item()) if isinstance(v, torch.Tensor) else float(v)


def _improved(value: float, best: float | None, mode: str) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def fit(
    model: nn.Module,
    step_fn: Callable[[nn.Module, Any], Any],
    make_batches: Callable[[int], Iterable] | Iterable,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    device: torch.device | str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    amp: bool | str | None = None,
    channels_last: bool | None = None,
    grad_clip: float | None = None,
    seed: int = 0,
    eval_fn: Callable[[nn.Module, int], Mapping[str, float]] | None = None,
    monitor: str | None = None,
    mode: str = "max",
    restore_best: bool = False,
    progress: bool | None = None,
    verbose: bool = True,
    cache_key: Mapping | None = None,
    retrain: bool | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History` (docs/architecture.md layout, ``engine.py``).

    Arguments, in the order a reader meets them:

    * ``step_fn(model, batch)`` computes the loss of one batch (already moved to the device) and returns
      the loss tensor, or ``(loss, {"acc": ..., ...})``; extra metrics are averaged over the epoch and
      recorded as ``train_<name>``. The loop does backward, clipping, the optimizer step and AMP scaling.
    * ``make_batches(epoch)`` returns the batches of epoch ``epoch`` (0-based), e.g. a ``DataLoader`` or a
      list of tensors. A plain iterable (a ``DataLoader``) is accepted too and iterated every epoch. Every
      RNG is reseeded from ``(seed, epoch)`` just before it is called, so a shuffling ``DataLoader``,
      dropout and random augmentation are a function of the epoch only (resumable, docs/architecture.md, principle 6). A
      ``DataLoader`` must be iterated afresh each epoch for this: no ``persistent_workers``.
    * ``scheduler`` is stepped once per epoch (``scheduler_interval="epoch"``) or after every optimizer
      step (``"step"``); ``ReduceLROnPlateau`` gets the monitored metric (or the training loss).
    * ``device``: default :func:`device` (CUDA, MPS, CPU); the model is moved there.
    * ``amp``: mixed precision, see :func:`resolve_amp`; default on for CUDA only (docs/architecture.md, principle 5).
      ``channels_last``: default on for CUDA only.
    * ``checkpoint_dir``: after every epoch ``last.pt`` holds model, optimizer, scheduler, scaler, epoch,
      history and RNG states; ``best.pt`` holds the weights of the best epoch by ``monitor``.
      ``resume=True`` continues from ``last.pt`` when it exists (else it starts afresh) and ends where an
      uninterrupted run ends. Build model, optimizer and scheduler the same way as for the first run. A
      damaged or foreign ``last.pt``, or one past ``epochs``, raises :class:`CheckpointError` naming it.
      Inside :func:`run_checkpoints` (``fashionlab reproduce``) a ``fit`` with a ``cache_key`` keeps such a
      checkpoint in :func:`resume_checkpoint_dir` and removes it once the model is trained and cached.
    * ``eval_fn(model, epoch)`` runs after each epoch in ``eval`` mode without gradients and returns a dict
      of metrics (e.g. ``{"val_mAP": 61.2}``), recorded in the history. ``monitor`` (default: its first
      key) with ``mode`` ``"max"``/``"min"`` picks the best epoch; ``restore_best`` loads its weights into
      ``model`` at the end.
    * Each history record's ``seconds`` is the epoch's wall time including ``eval_fn``.
    * ``progress``: a tqdm bar per epoch with the running loss (default on unless the environment variable
      ``FASHIONLAB_PROGRESS=0``); ``verbose``: one summary line per epoch (without timings, so notebook
      outputs stay clean).
    * ``cache_key``: a dict naming the run, at least ``experiment``, ``method``, ``mode`` and ``seed``, plus
      whatever else decides the result (the config, the dataset). The trained model is then kept in
      :func:`trained_model_path` (under the data folder) with its history, optimizer state and the RNG
      states it left, and a later call with the same key, the same model definition (architecture and the
      code of its classes), step function, optimizer settings, epochs and seed loads it instead of
      training, says so, and returns the stored history: the code after ``fit`` then runs exactly as after
      a fresh run. ``retrain=True`` (or :func:`retraining`, ``FASHIONLAB_RETRAIN=1``, ``--retrain``)
      trains anyway and overwrites the entry.
    * Under ``torchrun`` (a process group with more than one rank, docs/distributed.md) every rank calls ``fit``
      alike: each trains on its contiguous shard of every global batch (:func:`fashionlab.distributed.shard`;
      the reseeding above makes every rank draw the same batches), gradients are summed with each rank's share
      as weight (exact for a loss that is a mean over the batch, whatever the step calls: ``model(...)``,
      ``model.loss(...)``, submodules), the history holds global means, BatchNorm becomes ``SyncBatchNorm`` on
      CUDA while training, and only rank 0 logs and writes checkpoints and the cache entry.
    """
    from tqdm.auto import tqdm

    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    dev = device if isinstance(device, torch.device) else _device(device, verbose=False)
    amp_dtype = resolve_amp(amp, dev)
    use_cl = (dev.type == "cuda") if channels_last is None else bool(channels_last)
    use_scaler = amp_dtype == torch.float16
    scaler = torch.amp.GradScaler(dev.type, enabled=use_scaler) if use_scaler else None
    progress = _progress_default() if progress is None else progress
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    world = _dist.world_size()  # > 1 under torchrun (docs/distributed.md); every rank runs this function
    main = _dist.is_main()  # rank 0 logs and writes (checkpoints, the trained-model cache)
    verbose, progress = verbose and main, progress and main

    model.to(dev)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    _move_optimizer_state(optimizer, dev)

    cache_path = None
    auto_ckdir = False  # a run checkpoint kept for `fashionlab reproduce --resume` (run_checkpoints)
    if cache_key is not None:
        from .config import display_path

        cache_path = trained_model_path(cache_key, _model_signature(model, step_fn, optimizer, epochs, seed, scheduler))
        _remove_stale_tmp(cache_path)
        run_ck = _RUN_CHECKPOINTS.get()
        auto_ckdir = run_ck is not None and checkpoint_dir is None
        if _dist.broadcast_object(cache_path.exists()) and not _retrain_requested(retrain):  # rank 0's view
            cached = _load_trained(cache_path, model, optimizer, scheduler, scaler, dev)
            if world > 1 and int(_dist.all_reduce_sum(torch.tensor(float(cached is not None))).item()) not in (0, world):
                raise CheckpointError(f"{cache_path}: some ranks could read the trained-model file and others not; "
                                      "the data folder must be the same on every node (docs/distributed.md)")
            if cached is not None:
                if verbose:
                    what = " ".join(str(cache_key[k]) for k in ("experiment", "method") if k in cache_key)
                    print(f"fashionlab: loaded the trained {what or 'model'} from {display_path(cache_path)} "
                          f"({len(cached)} epochs, trained earlier with the same config; retrain=True or "
                          "--retrain trains it again)")
                if auto_ckdir and main:
                    import shutil

                    shutil.rmtree(resume_checkpoint_dir(cache_path), ignore_errors=True)  # a finished run's leftover
                return cached
        if auto_ckdir:
            checkpoint_dir, resume = resume_checkpoint_dir(cache_path), bool(run_ck)
            last = Path(checkpoint_dir) / "last.pt"
            if not resume and last.exists() and main:
                import shutil

                if verbose:
                    print(f"fashionlab: {display_path(last)} holds an interrupted run of this model; starting afresh "
                          "(fashionlab reproduce --resume would have continued it)")
                shutil.rmtree(checkpoint_dir)

    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckdir is not None and main:
        ckdir.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(ckdir / "last.pt", ckdir / "best.pt")
    history = History(monitor=monitor, mode=mode)
    start = 0
    best_state: dict | None = None

    if resume:
        if ckdir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        last = ckdir / "last.pt"
        if _dist.broadcast_object(last.exists()):  # rank 0's view; every rank then reads the file
            ckpt = _require_keys(read_torch_file(last, "checkpoint"), last, "checkpoint written by engine.fit",
                                 _FIT_KEYS)
            try:
                start = int(ckpt["epoch"])
            except (TypeError, ValueError):
                raise CheckpointError(f"{last}: its 'epoch' is {ckpt['epoch']!r}; expected a whole number") from None
            if start > epochs:
                raise CheckpointError(
                    f"{last}: holds a run stopped after epoch {start}, past the {epochs} epoch(s) asked for; pass "
                    f"epochs={start} or more to continue it, or remove the file (or resume=False) to train {epochs} "
                    "epoch(s) afresh")
            if int(ckpt.get("seed", seed)) != int(seed):
                warnings.warn(f"resuming a run that was seeded with {ckpt['seed']} using seed={seed}: "
                              "the remaining epochs will not match an uninterrupted run")
            resumed = _history_of(ckpt, last, "checkpoint")
            if restore_best and (ckdir / "best.pt").exists():
                best = ckdir / "best.pt"
                best_ckpt = _require_keys(read_torch_file(best, "checkpoint"), best,
                                          "checkpoint written by engine.fit", ["model"])
                diff = state_dict_mismatch(best_ckpt["model"], _unwrap(model).state_dict())
                if diff is not None:
                    raise CheckpointError(f"{best}: the checkpoint was written for another model ({diff})")
                best_state = best_ckpt["model"]
            _restore_training_state(ckpt, last, model, optimizer, scheduler, scaler, "checkpoint")
            _set_rng_state_checked(ckpt["rng"], last, "checkpoint")
            history = resumed
            history.mode = mode
            history.monitor = history.monitor or monitor
            if verbose:
                shown = display_path(last) if auto_ckdir else last.name
                print(f"fashionlab: resuming from {shown} after epoch {start} of {epochs}")
        elif verbose and auto_ckdir:
            print(f"fashionlab: no interrupted run of this model to resume ({display_path(last)} does not exist); "
                  "starting from epoch 1")
        elif verbose:
            print(f"fashionlab: no {last.name} in checkpoint_dir yet; starting from epoch 1")

    if world > 1:
        _dist.broadcast_module(_unwrap(model))  # every rank starts from rank 0's weights
    sync_bn = _dist.sync_batchnorm(_unwrap(model), on=world > 1 and dev.type == "cuda")
    sync_bn.__enter__()
    try:
        history, best_state = _train_epochs(
            model, step_fn, make_batches, optimizer, epochs, start, history, best_state, scheduler=scheduler,
            scheduler_interval=scheduler_interval, plateau=plateau, dev=dev, amp_dtype=amp_dtype, use_cl=use_cl,
            scaler=scaler, grad_clip=grad_clip, seed=seed, eval_fn=eval_fn, mode=mode, restore_best=restore_best,
            progress=progress, verbose=verbose, ckdir=ckdir, world=world, main=main, tqdm=tqdm)
    finally:
        sync_bn.__exit__(None, None, None)

    if restore_best and best_state is not None:
        _unwrap(model).load_state_dict(best_state)
    if cache_path is not None and main:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict() if scheduler is not None else None,
                      "scaler": scaler.state_dict() if scaler is not None else None,
                      "history": history.to_dict(), "rng": _rng_state(), "key": json.dumps(_jsonable(cache_key))},
                     cache_path)
    if auto_ckdir and ckdir is not None and main:
        import shutil

        shutil.rmtree(ckdir, ignore_errors=True)  # the model is trained and cached: nothing left to resume
    _dist.barrier()  # the other ranks leave once rank 0's files are written
    return history


def _train_epochs(model, step_fn, make_batches, optimizer, epochs, start, history, best_state, *, scheduler,
                  scheduler_interval, plateau, dev, amp_dtype, use_cl, scaler, grad_clip, seed, eval_fn, mode,
                  restore_best, progress, verbose, ckdir, world, main, tqdm):
    """The epochs of :func:`fit` from ``start``: returns ``(history, best_state)``. With ``world`` > 1 each rank
    trains on its shard of every global batch, the gradients are summed with each rank's share as weight
    (:func:`fashionlab.distributed.reduce_gradients`), the logged loss and metrics are the global means,
    floating-point buffers (BatchNorm statistics) are averaged after each epoch, and only rank 0 (``main``)
    writes checkpoints."""
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        _seed_epoch(seed, epoch)
        model.train()
        lr = float(optimizer.param_groups[0]["lr"])
        batches = make_batches(epoch) if callable(make_batches) else make_batches
        total = None
        try:
            total = len(batches)  # type: ignore[arg-type]
        except TypeError:
            pass
        bar = tqdm(batches, total=total, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not progress, dynamic_ncols=True)
        loss_sum = torch.zeros((), dtype=torch.float32 if dev.type == "mps" else torch.float64, device=dev)
        extra_sums: dict[str, Any] = {}  # tensors stay on the device: no GPU sync per step
        n = 0
        for batch in bar:
            weight = 1.0
            if world > 1:
                n_global = _dist.batch_length(batch)
                if n_global is not None and n_global >= world:  # else every rank computes the whole batch
                    batch = _dist.shard(batch)
                    weight = _dist.batch_length(batch) / n_global
                else:
                    weight = 1.0 / world
            batch = to_device(batch, dev, channels_last=use_cl)
            with _autocast(dev, amp_dtype):
                loss, extras = _split_step_output(step_fn(model, batch))
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                _dist.reduce_gradients(model.parameters(), weight)
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                _dist.reduce_gradients(model.parameters(), weight)
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
            if scheduler is not None and scheduler_interval == "step" and not plateau:
                scheduler.step()
            loss_sum += loss.detach().to(loss_sum.dtype) * weight
            for k, v in extras.items():
                v = v.detach().float().mean() if isinstance(v, torch.Tensor) else float(v)
                extra_sums[f"train_{k}"] = extra_sums.get(f"train_{k}", 0.0) + v * weight
            n += 1
            if progress and (n % 10 == 1 or n == total):
                bar.set_postfix(loss=f"{loss_sum.item() * world / n:.4f}")  # rank 0's shard under torchrun
        bar.close()
        if n == 0:
            raise ValueError(f"make_batches({epoch}) gave no batches")
        if world > 1:  # the global means: each rank's sums are weighted by its share of every batch
            keys = sorted(extra_sums)
            sums = _dist.all_reduce_sum(torch.tensor([float(loss_sum.item())] + [_as_float(extra_sums[k]) for k in keys],
                                                     dtype=torch.float64))
            loss_sum = sums[0]
            extra_sums = {k: float(v) for k, v in zip(keys, sums[1:].tolist())}
            _dist.average_buffers(_unwrap(model))
        mean_loss = loss_sum.item() / n
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"training loss is {mean_loss} in epoch {epoch + 1}; lower the learning "
                                     "rate, check the data, or turn amp off")

        record: dict[str, Any] = {"epoch": epoch + 1, "loss": mean_loss, "lr": lr}
        record.update({k: _as_float(v) / n for k, v in extra_sums.items()})

        improved = False
        if eval_fn is not None:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                metrics = dict(eval_fn(model, epoch) or {})
            model.train(was_training)
            if world > 1:  # rank 0's metrics decide the best epoch on every rank
                metrics = _dist.broadcast_object({k: _as_float(v) if isinstance(v, torch.Tensor) else v
                                                  for k, v in metrics.items()})
            record.update({k: _as_float(v) if isinstance(v, (torch.Tensor, int, float)) else v
                           for k, v in metrics.items()})
            if history.monitor is None and metrics:
                history.monitor = next(iter(metrics))
            if history.monitor is not None:
                if history.monitor not in record:
                    raise KeyError(f"monitor {history.monitor!r} is not among the metrics eval_fn returned: "
                                   f"{sorted(metrics)}")
                value = record[history.monitor]
                if _improved(value, history.best, mode):
                    improved = True
                    history.best, history.best_epoch = float(value), epoch + 1
        if scheduler is not None and (scheduler_interval == "epoch" or plateau):
            if plateau:
                scheduler.step(record.get(history.monitor, mean_loss) if history.monitor else mean_loss)
            else:
                scheduler.step()
        record["seconds"] = time.perf_counter() - t0
        history.append(record)

        if improved:
            if restore_best:
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in _unwrap(model).state_dict().items()}
            if ckdir is not None and main:
                _atomic_save({"model": _unwrap(model).state_dict(), "epoch": epoch + 1,
                              "metrics": {k: v for k, v in record.items() if isinstance(v, (int, float))},
                              "history": history.to_dict()}, ckdir / "best.pt")
        if ckdir is not None and main:
            _atomic_save({
                "model": _unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch + 1,
                "seed": int(seed),
                "history": history.to_dict(),
                "rng": _rng_state(),
            }, ckdir / "last.pt")
        if verbose:
            print(_summary_line(record, epochs, history.monitor if improved else None))
    return history, best_state


def _summary_line(record: Mapping, epochs: int, best_key: str | None) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    for k, v in record.items():
        if k in ("epoch", "loss", "lr", "seconds") or not isinstance(v, (int, float)):
            continue
        parts.append(f"{k} {v:.4g}" + (" *" if k == best_key else ""))
    return "  ".join(parts)


def _move_optimizer_state(optimizer: torch.optim.Optimizer, dev: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.device != dev and k != "step":
                state[k] = v.to(dev)


# ----------------------------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------------------------
def _modules_of(model_fn: Any) -> list[nn.Module]:
    if isinstance(model_fn, nn.Module):
        return [model_fn]
    owner = getattr(model_fn, "__self__", None)  # a bound method such as net.embed
    return [owner] if isinstance(owner, nn.Module) else []


def _cat(chunks: list[Any]) -> Any:
    first = chunks[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(chunks, 0)
    if isinstance(first, Mapping):
        return {k: _cat([c[k] for c in chunks]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([c[i] for c in chunks]) for i in range(len(first)))
    raise TypeError(f"model_fn returned {type(first).__name__}; expected a tensor, tuple or dict of tensors")


def _gather_tree(out: Any) -> Any:
    """Every rank's rows of each tensor in ``out`` (a tensor, tuple or dict of them), concatenated in rank order."""
    if isinstance(out, torch.Tensor):
        return _dist.all_gather_cat(out) if out.dim() >= 1 else out
    if isinstance(out, Mapping):
        return {k: _gather_tree(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_gather_tree(v) for v in out)
    return out


def _post(out: Any, out_device: torch.device | None) -> Any:
    if isinstance(out, torch.Tensor):
        out = out.float() if out.is_floating_point() else out
        return out.to(out_device) if out_device is not None else out
    if isinstance(out, Mapping):
        return {k: _post(v, out_device) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_post(v, out_device) for v in out)
    return out


def extract_features(
    model_fn: Callable[[Any], Any] | nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    *,
    model: nn.Module | None = None,
    amp: bool | str | None = None,
    channels_last: bool | None = None,
    out_device: torch.device | str | None = None,
    progress: bool | None = False,
) -> Any:
    """Run ``model_fn`` over every batch of ``loader`` for inference and concatenate the outputs along dim 0.

    The shared first half of every retrieval evaluation (docs/architecture.md "Evaluation"): embed queries and
    candidates once, then rank. Runs under ``torch.inference_mode`` with the model(s) in ``eval`` mode
    (their previous mode is restored afterwards) and, on CUDA, under autocast (docs/architecture.md, principle 5); outputs are
    returned as float32, in loader order, on ``out_device`` (default: the compute device, where the
    vectorised metrics then run).

    ``model_fn`` is a module or any callable. A module receives the batch, or its first element when
    the batch is a tuple/list (``(images, labels)`` loaders); any other callable receives the whole batch
    moved to the device, e.g. ``lambda b: net(b[0], b[1])`` for attribute-conditioned embeddings. Modules
    to put in eval mode are found from ``model_fn`` (a module or a bound method) or given as ``model``.
    The output may be a tensor, a tuple or a dict of tensors (concatenated element-wise). ``device``
    defaults to the device of those modules' parameters, else :func:`device`.

    Under ``torchrun`` (docs/distributed.md) every rank iterates the same ``loader``, embeds its contiguous
    shard of each batch (:func:`fashionlab.distributed.shard`) and the shards are gathered back in order, so
    every rank returns the same features as one process; a batch smaller than the number of ranks is embedded
    whole on every rank. The loader itself still builds whole batches on each rank.
    """
    from tqdm.auto import tqdm

    modules = _modules_of(model_fn) + ([model] if model is not None else [])
    if device is None:
        params = [p for m in modules for p in m.parameters()]
        dev = params[0].device if params else _device(verbose=False)
    else:
        dev = device if isinstance(device, torch.device) else _device(device, verbose=False)
    amp_dtype = resolve_amp(amp, dev)
    use_cl = (dev.type == "cuda") if channels_last is None else bool(channels_last)
    out_dev = torch.device(out_device) if out_device is not None else None
    world = _dist.world_size()
    progress = (_progress_default() if progress is None else progress) and _dist.is_main()

    modes = [m.training for m in modules]
    for m in modules:
        m.to(dev).eval()
    chunks = []
    try:
        with torch.inference_mode(), _autocast(dev, amp_dtype):
            for batch in tqdm(loader, desc="features", leave=False, disable=not progress):
                n = _dist.batch_length(batch) if world > 1 else None
                sharded = n is not None and n >= world  # else every rank embeds the whole (small) batch
                if sharded:
                    batch = _dist.shard(batch)
                batch = to_device(batch, dev, channels_last=use_cl)
                if isinstance(model_fn, nn.Module) and isinstance(batch, (tuple, list)):
                    out = model_fn(batch[0])
                else:
                    out = model_fn(batch)
                if sharded:
                    out = _gather_tree(out)
                chunks.append(_post(out, out_dev))
    finally:
        for m, was in zip(modules, modes):
            m.train(was)
    if not chunks:
        raise ValueError("extract_features: the loader gave no batches")
    return _cat(chunks)
