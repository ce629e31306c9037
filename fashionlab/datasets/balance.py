"""Class balancing of a dataset by down-sampling (paper 06 §4.1's remedy for the object-type imbalance that
:func:`fashionlab.metrics.imbalance_ratios` measures)."""
from __future__ import annotations

import numpy as np

__all__ = ["balance_by_downsampling"]


def balance_by_downsampling(classes, per_class: int | None = None, seed: int = 0) -> np.ndarray:
    """Paper 06 §4.1's remedy for imbalance: randomly down-sample every class to ``per_class`` instances (default:
    the size of the rarest class), e.g. 42,000 objects per object type. ``classes``: one class id per instance.
    Returns the kept instance indices, sorted; a class smaller than ``per_class`` keeps all of its instances."""
    c = np.asarray(classes)
    if c.ndim != 1:
        raise ValueError(f"classes must be 1-D (one class per instance), got shape {c.shape}")
    values, counts = np.unique(c, return_counts=True)
    n = int(counts.min()) if per_class is None else int(per_class)
    if n < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(c == v), size=min(n, k), replace=False) for v, k in zip(values, counts)]
    return np.sort(np.concatenate(keep))
