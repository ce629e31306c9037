"""Label-imbalance measures of paper 06 (Eq. 8-10) against hand computations and their limiting cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fashionlab.datasets.balance import balance_by_downsampling
from fashionlab.metrics import imbalance_ratios, mean_imbalance_ratio, scumble


def test_ir_and_mean_ir_by_hand():
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]])
    # counts 4, 2, 1 -> IR 1, 2, 4; MeanIR 7/3
    assert np.allclose(imbalance_ratios(y), [1, 2, 4])
    assert math.isclose(mean_imbalance_ratio(y), 7 / 3)
    # a label no instance has is not part of the label set
    y0 = np.hstack([y, np.zeros((5, 1), dtype=int)])
    ir = imbalance_ratios(y0)
    assert np.isnan(ir[3]) and math.isclose(mean_imbalance_ratio(y0), 7 / 3)


def test_scumble_by_hand():
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]])
    ir = np.array([1.0, 2.0, 4.0])
    inst2 = 1 - math.sqrt(1 * 2) / ((1 + 2) / 2)           # labels {0, 1}
    inst4 = 1 - (1 * 2 * 4) ** (1 / 3) / ((1 + 2 + 4) / 3)   # labels {0, 1, 2}
    assert math.isclose(scumble(y), (0 + inst2 + 0 + inst4 + 0) / 5)
    assert np.allclose(imbalance_ratios(y), ir)


def test_balanced_data_gives_the_optimal_values():
    y = np.eye(4, dtype=bool).repeat(5, axis=0)              # one label per instance, 5 each
    assert mean_imbalance_ratio(y) == 1.0 and scumble(y) == 0.0
    pairs = np.array([[1, 1, 0, 0], [0, 0, 1, 1]] * 3)        # co-occurring but equally frequent labels
    assert scumble(pairs) == 0.0
    assert 0.0 < scumble(np.array([[1, 1]] + [[1, 0]] * 9)) < 1.0


def test_downsampling_balances_classes():
    c = np.array([0] * 50 + [1] * 10 + [2] * 30)
    keep = balance_by_downsampling(c, seed=1)
    assert np.array_equal(np.bincount(c[keep]), [10, 10, 10])
    assert np.array_equal(keep, np.unique(keep))
    assert np.array_equal(keep, balance_by_downsampling(c, seed=1))
    keep20 = balance_by_downsampling(c, per_class=20, seed=0)
    assert np.array_equal(np.bincount(c[keep20]), [20, 10, 20])
    onehot = np.eye(3, dtype=bool)[c[keep]]
    assert mean_imbalance_ratio(onehot) == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        imbalance_ratios(np.ones(3))
    with pytest.raises(ValueError, match="0/1"):
        scumble(np.array([[2, 0]]))
    with pytest.raises(ValueError, match="no instance"):
        imbalance_ratios(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="per_class"):
        balance_by_downsampling([0, 1], per_class=0)
