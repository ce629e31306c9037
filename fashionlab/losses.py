"""Losses shared by the notebooks.

Each function names the paper equation it implements. Similarities are inner products of L2-normalised
embeddings (cosine), as in ASEN/ASEN++ (reference-implementations §2 "Loss", §3 "Losses").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["triplet_ranking_loss"]


def triplet_ranking_loss(s_pos: torch.Tensor, s_neg: torch.Tensor, margin: float = 0.2,
                         reduction: str = "mean") -> torch.Tensor:
    """Triplet ranking loss on similarities: ``max(0, m - s(I, I+) + s(I, I-))`` (ASEN slides, "Triplet ranking
    based metric learning"; the same as MarginRankingLoss(margin) with target +1 on ``(s_pos, s_neg)``).

    ``s_pos``/``s_neg`` are the anchor-positive and anchor-negative similarities (higher = more similar).
    ``reduction``: ``"mean"`` (the references average over the batch), ``"sum"`` (the slides' Σ) or ``"none"``.
    """
    loss = F.relu(margin - s_pos + s_neg)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
