"""Input handling shared by the metric modules of :mod:`fashionlab.metrics` (private helpers, no metric here).

Inputs may be torch tensors, numpy arrays or lists: tensors are used as they are (on their device), the others
become CPU tensors; :func:`_to_numpy` goes the other way for the teaching loops.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch


def _tensor(x: Any) -> torch.Tensor:
    """Tensors as they are; numpy arrays and lists become CPU tensors (no copy when possible)."""
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _float_tensor(x: Any, name: str) -> torch.Tensor:
    """Embeddings as a 2-D floating tensor (detached); integer inputs become float64."""
    t = _tensor(x).detach()
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (items x dim), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)  # exact; numpy has no bfloat16 and CPU half matmuls are slow
    return t


def _label_tensor(x: Any, n: int, device: torch.device, name: str) -> torch.Tensor:
    t = _tensor(x).reshape(-1).to(device=device, dtype=torch.long)
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} entries, expected {n}")
    return t


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _indicator_tensor(x: Any, name: str) -> torch.Tensor:
    """A 2-D 0/1 (or bool) matrix as a bool tensor (detached; numpy and lists become CPU tensors)."""
    t = _tensor(x).detach()
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise ValueError(f"{name} must hold 0/1 (or bool) values")
        t = t != 0
    return t


def _check_k(k: Any) -> int:
    if isinstance(k, bool):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    try:
        k = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be a positive integer, got {k!r}") from None
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    return k
