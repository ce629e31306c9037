"""Label imbalance of multi-label data, paper 06 §4.1, Eq. 8-10 (Charte et al.'s measures): :func:`imbalance_ratios`
(IRLbl, Eq. 8), :func:`mean_imbalance_ratio` (MeanIR, Eq. 9) and :func:`scumble` (SCUMBLE, Eq. 10).

The paper's remedy, down-sampling every class, is a data operation:
:func:`fashionlab.datasets.balance.balance_by_downsampling`.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["imbalance_ratios", "mean_imbalance_ratio", "scumble"]


def _label_matrix(labels) -> np.ndarray:
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 2:
        raise ValueError(f"labels must be a 2-D (instances, labels) 0/1 matrix, got shape {y.shape}")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels must hold 0/1 (or bool) values")
        y = y.astype(bool)
    return y


def imbalance_ratios(labels) -> np.ndarray:
    """IR of every label, paper 06 Eq. 8 (Charte et al.'s IRLbl): the count of the most frequent label divided by
    the count of this label, over the instances of ``labels`` (``(instances, labels)`` 0/1). 1 for the majority
    label, larger for rarer ones; NaN for a label no instance has (it is not in the data's label set)."""
    y = _label_matrix(labels)
    counts = y.sum(axis=0).astype(float)
    if not (counts > 0).any():
        raise ValueError("no instance has any label")
    with np.errstate(divide="ignore"):
        ir = counts.max() / counts
    ir[counts == 0] = np.nan
    return ir


def mean_imbalance_ratio(labels) -> float:
    """MeanIR, paper 06 Eq. 9: the mean of :func:`imbalance_ratios` over the labels that occur. 1 for perfectly
    balanced data."""
    return float(np.nanmean(imbalance_ratios(labels)))


def scumble(labels) -> float:
    """SCUMBLE, paper 06 Eq. 10 (Charte et al. 2014): how much rare and frequent labels co-occur,
    ``(1/|D|) Σ_i [1 - (Π_{l ∈ Y_i} IR_l)^{1/|Y_i|} / IR̄_i]`` with the product and the mean ``IR̄_i`` over the
    labels of instance ``i`` (the geometric over the arithmetic mean of their IRs). An instance with no label or
    one label contributes 0 (its IRs are all equal), as does one whose labels are equally frequent; 0 for the
    whole set when every instance is like that (the paper's balanced DeepFashion2: 0), up to 1."""
    y = _label_matrix(labels)
    ir = imbalance_ratios(y)
    log_ir = np.log(np.where(np.isnan(ir), 1.0, ir))
    n_lab = y.sum(axis=1)
    has = n_lab > 0
    geo = np.exp((y * log_ir).sum(axis=1)[has] / n_lab[has])
    arith = (y * np.where(np.isnan(ir), 0.0, ir)).sum(axis=1)[has] / n_lab[has]
    per = np.zeros(len(y))
    # the geometric mean never exceeds the arithmetic one, so each term is >= 0; clip the last-bit rounding of
    # exp(log) that makes a one-label instance come out at -1e-16 instead of 0
    per[has] = np.maximum(1.0 - geo / arith, 0.0)
    return float(per.mean())
