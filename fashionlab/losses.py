"""Losses shared by the notebooks.

Each function names the paper equation it implements. Similarities are inner products of L2-normalised
embeddings (cosine), as in ASEN/ASEN++ (docs/implementations.md §2 "Loss", §3 "Losses").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["TripletRankingLoss", "triplet_ranking_loss", "csn_triplet_loss", "csn_regularizers", "contrastive_loss", "joint_loss"]


def triplet_ranking_loss(s_pos: torch.Tensor, s_neg: torch.Tensor, margin: float = 0.2,
                         reduction: str = "mean") -> torch.Tensor:
    """Triplet ranking loss on similarities: ``max(0, m - s(I, I+) + s(I, I-))`` (ASEN slides, "Triplet ranking
    based metric learning"; the same as MarginRankingLoss(margin) with target +1 on ``(s_pos, s_neg)``).

    ``s_pos``/``s_neg`` are the anchor-positive and anchor-negative similarities (higher = more similar).
    ``reduction``: ``"mean"`` (the references average over the batch), ``"sum"`` (the slides' Σ) or ``"none"``.
    """
    return _reduce(F.relu(margin - s_pos + s_neg), reduction)


class TripletRankingLoss(torch.nn.Module):
    """:func:`triplet_ranking_loss` on a stacked batch of embeddings: ``forward(e)`` takes the ``(3B, D)``
    embeddings of B anchors, then their B positives, then their B negatives, scores ``s(a, p)`` and
    ``s(a, n)`` as inner products (cosine for L2-normalised embeddings) and returns ``(loss, {"acc": ...})``,
    the fraction of triplets already ranked right. The loss of the plain triplet network (ASEN slides,
    "Triplet ranking based metric learning"), in the form ``engine.fit``'s step returns."""

    def __init__(self, margin: float = 0.2):
        super().__init__()
        self.margin = float(margin)

    def forward(self, e: torch.Tensor):
        if e.shape[0] % 3:
            raise ValueError(f"TripletRankingLoss: expected 3B stacked embeddings (anchors, positives, negatives), "
                             f"got {e.shape[0]} rows")
        ea, ep, en = e.chunk(3)
        s_pos, s_neg = (ea * ep).sum(1), (ea * en).sum(1)
        return triplet_ranking_loss(s_pos, s_neg, self.margin), {"acc": (s_pos > s_neg).float().mean()}

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"mean"``, ``"sum"`` or ``"none"`` (per-item) reduction, as in torch's losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def csn_triplet_loss(d_pos: torch.Tensor, d_neg: torch.Tensor, margin: float = 0.3,
                     reduction: str = "mean") -> torch.Tensor:
    """Triplet loss of CSN on *distances*, paper 01 Eq. 4: ``max(0, h + D(a, p) - D(a, n))``, i.e. the negative
    must be farther from the anchor than the positive by at least the margin ``h``.

    The same as CSN's ``MarginRankingLoss(margin)(d_neg, d_pos, target=+1)`` (docs/implementations.md §6;
    CSN's default margin is 0.2, paper 01 uses ``h = 0.3``, the default here). ``d_pos``/``d_neg``: ``(B,)``
    Euclidean distances of the masked embeddings (Eq. 3). Equal to
    ``triplet_ranking_loss(-d_pos, -d_neg, margin)``. ``reduction``: ``"mean"`` (CSN), ``"sum"``, ``"none"``.
    """
    return _reduce(F.relu(margin + d_pos - d_neg), reduction)


def csn_regularizers(embeddings, masks, lambda1: float = 5e-3,
                     lambda2: float = 5e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """The two regularisers of CSN, paper 01 Eq. 5, normalised exactly as CSN's ``main.py`` does
    (docs/implementations.md §6). Returns ``(embed_term, mask_term)``:

    * ``embed_term = λ1 · mean_i ||F_i||_F / sqrt(B)``: ``F_i`` the ``(B, d)`` *unmasked* embeddings of image
      ``i`` of the triplet (anchor, positive, negative), ``||.||_F`` the Frobenius norm of the whole batch (CSN's
      ``embedded_x.norm(2)``), averaged over the three images, divided by ``sqrt(B)``. It keeps ``f`` from
      growing (paper 01: "the general unmasked feature embedding f(·) is L2 normalized").
    * ``mask_term = λ2 · ||M||_1 / B``: ``M`` the ``(B, d)`` masks of the batch (after the ReLU), ``||.||_1`` the
      sum of absolute values of all entries (CSN's ``mask.norm(1)``), divided by ``B``. It makes masks sparse
      (paper 01: "the mask vector is also L1 normalized").

    ``embeddings``: one ``(B, d)`` tensor or a sequence of them (the three triplet images); ``masks``: a
    ``(B, d)`` tensor or a sequence of them (their L1 norms are averaged, as CSN averages the three images'
    masks, which are the same since the triplet shares one condition). Defaults: paper 01's λ1 = 5e-3,
    λ2 = 5e-4 (CSN's own defaults too).
    """
    embs = [embeddings] if isinstance(embeddings, torch.Tensor) else list(embeddings)
    ms = [masks] if isinstance(masks, torch.Tensor) else list(masks)
    if not embs or not ms:
        raise ValueError("csn_regularizers needs at least one embedding batch and one mask batch")
    b = embs[0].shape[0]
    embed_norm = torch.stack([e.norm(2) for e in embs]).mean()
    mask_norm = torch.stack([m.norm(1) for m in ms]).mean()
    return lambda1 * embed_norm / (b ** 0.5), lambda2 * mask_norm / b


def contrastive_loss(x1: torch.Tensor, x2: torch.Tensor, same, margin: float = 1.0,
                     reduction: str = "mean") -> torch.Tensor:
    """Contrastive loss of a Siamese network (Hadsell, Chopra & LeCun, CVPR 2006, Eq. 4), the SiaNet baseline
    of paper 01 Table II:

    ``L = same · ½ D² + (1 - same) · ½ max(0, m - D)²``,  ``D = ||x1 - x2||_2``

    Pairs with the same label (``same = 1``) are pulled together; pairs with different labels are pushed
    apart until they are at least ``margin`` away, and cost nothing beyond it. (Hadsell et al. write the
    label the other way round, ``Y = 0`` for similar pairs.) Paper 01 describes SiaNet as taking "a pair of
    image instances that share the exact same label" and "narrowing the distances between these two image
    inputs", and blames its low accuracy (0.604) on its "ignorance of opposite relationships between anchor
    and negative": each pair is judged alone, never a positive against a negative as a triplet is. With
    positive pairs only the loss has a trivial minimum (every image on one point); pass dissimilar pairs too
    (``same = 0``) to get Hadsell's form. ``x1``, ``x2``: ``(B, d)`` embeddings; ``same``: ``(B,)`` bool/0-1.
    """
    same = torch.as_tensor(same, device=x1.device).to(x1.dtype).reshape(-1)
    diff = x1 - x2
    d2 = diff.pow(2).sum(-1)
    d = torch.linalg.vector_norm(diff, dim=-1)  # its gradient at D = 0 is 0, not nan
    loss = 0.5 * same * d2 + 0.5 * (1 - same) * F.relu(margin - d).pow(2)
    return _reduce(loss, reduction)


def joint_loss(ce: torch.Tensor, triplet: torch.Tensor, alpha: float = 0.3, beta: float = 0.7) -> torch.Tensor:
    """The multi-task loss of paper 01, Eq. 6: ``α · L_CE + β · L_triplet`` with α = 0.3, β = 0.7 ("Training
    Details"). ``ce``: the recognition loss (Eq. 1, mean over images); ``triplet``: the retrieval loss (Eq. 4,
    plus the Eq. 5 regularisers where they apply, mean over triplets), both on the shared embedding."""
    return alpha * ce + beta * triplet
