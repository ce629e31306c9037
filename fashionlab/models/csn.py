"""Conditional Similarity Network (Veit et al., CVPR 2017) and paper 01's modified CSN.

Sources: paper 01 (``01_multicolumn_recognition_and_retrieval.txt``), sections "CSN" (Eq. 3-5) and the
paragraph after Eq. 5 (the modifications), "Training Details" (embedding 64, margin h = 0.3, λ1 = 5e-3,
λ2 = 5e-4, masks initialised N(0.9, 0.7)); the original code, docs/implementations.md §6.

One embedding ``f(x)`` in R^d is shared by every condition (attribute dimension) ``t``; a mask ``m_t`` in R^d
selects the part of it that matters for ``t``:

* ``masks="fixed"``: disjoint blocks of ones, ``d / T`` dimensions per condition (CSN's default), not trained.
  When ``T`` does not divide ``d`` the blocks differ in size by one (the first ``d mod T`` blocks are one
  longer) so that they still cover all of ``d``; the original code leaves the last ``d mod T`` dimensions
  unused. For ``d = 64, T = 8``: 8 dimensions each, as in the original.
* ``masks="learned"``: ``nn.Embedding(T, d)`` initialised N(0.9, 0.7) and passed through a ReLU (CSN
  ``--learned``). **0.7 is the standard deviation** (``init_std``), not the variance: paper 01 writes
  "0.9 mean and 0.7 variance", but it adopts CSN, whose code calls ``weight.data.normal_(0.9, 0.7)`` and
  PyTorch's ``normal_(mean, std)`` takes a standard deviation; paper 01 most likely restated that call. For a
  variance of 0.7 pass ``init_std=0.7 ** 0.5`` (about 0.837). About 10% of the entries start negative and are
  zeroed by the ReLU either way.
* ``masks="prein"``: learned, initialised at 1 on the condition's own block and 0.1 elsewhere (CSN ``--prein``).

Two variants compare two conditioned embeddings:

* ``variant="original"`` (CSN, Eq. 3): ``g_t(x) = f(x) ⊙ m_t``, distance ``D = ||g_t(x_i) - g_t(x_j)||_2``
  (``F.pairwise_distance`` as in CSN's ``tripletnet.py``, which adds ``eps = 1e-6`` to the difference).
  Trained with :func:`~fashionlab.losses.csn_triplet_loss` on distances (Eq. 4).
* ``variant="modified"`` (paper 01, after Eq. 5): the mask is made to sum to one by **L1 normalisation of the
  non-negative (ReLU'd) mask**, ``m̃_t = relu(m_t) / ||relu(m_t)||_1`` (an attention distribution over the
  ``d`` dimensions; a fixed mask becomes ``1/8`` on its block), the masked embedding is L2-normalised,
  ``g_t(x) = normalize(f(x) ⊙ m̃_t)``, and the similarity is the inner product ``<g_t(x_i), g_t(x_j)>`` (the
  cosine). Trained with :func:`~fashionlab.losses.triplet_ranking_loss` on similarities, margin ``h``.
  Note: because ``g_t`` is L2-normalised afterwards, dividing the mask by any positive number changes nothing
  in the forward pass; the sum-to-one normalisation makes masks readable as attention weights (heatmaps,
  notebook 02) and comparable across conditions, it does not change which images are near.

:meth:`ConditionalSimilarityNet.score` is always a *similarity* (higher = more alike): ``-D`` for the
original variant, the inner product for the modified one, so rankings and
:func:`~fashionlab.metrics.triplet_accuracy` use one convention. Both variants add the regularisers of Eq. 5
(:func:`~fashionlab.losses.csn_regularizers`): λ1 on the norm of the *unmasked* embeddings and λ2 on the L1
norm of the masks **as multiplied in by the original variant, i.e. after the ReLU and before the sum-to-one
normalisation** (the normalised mask has L1 norm 1 by construction, so penalising it would do nothing).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import csn_regularizers, csn_triplet_loss, triplet_ranking_loss

__all__ = ["ConditionalSimilarityNet", "CSNTripletOutput", "block_masks"]


def block_masks(num_conditions: int, dim: int, off: float = 0.0) -> torch.Tensor:
    """``(num_conditions, dim)``: 1 on condition ``t``'s contiguous block, ``off`` elsewhere.

    ``off=0`` gives CSN's fixed disjoint masks, ``off=0.1`` its ``--prein`` initialisation (§6). Blocks have
    ``dim // num_conditions`` dimensions, the first ``dim % num_conditions`` one more, so they cover ``dim``.
    """
    T, d = int(num_conditions), int(dim)
    if T < 1 or d < T:
        raise ValueError(f"need 1 <= num_conditions <= dim, got num_conditions={T}, dim={d}")
    masks = torch.full((T, d), float(off))
    sizes = [d // T + (1 if t < d % T else 0) for t in range(T)]
    start = 0
    for t, s in enumerate(sizes):
        masks[t, start:start + s] = 1.0
        start += s
    return masks


class CSNTripletOutput(NamedTuple):
    """What :meth:`ConditionalSimilarityNet.triplet_loss` returns.

    ``loss`` = ``triplet + embed_reg + mask_reg`` (Eq. 4 + Eq. 5); ``s_pos``/``s_neg`` the ``(B,)`` similarities
    anchor-positive and anchor-negative (``-distance`` for the original variant), ready for
    :func:`~fashionlab.metrics.triplet_accuracy`; ``embeddings`` the three unmasked ``(B, d)`` embeddings;
    ``masks`` the ``(B, d)`` masks that λ2 penalises.
    """

    loss: torch.Tensor
    triplet: torch.Tensor
    embed_reg: torch.Tensor
    mask_reg: torch.Tensor
    s_pos: torch.Tensor
    s_neg: torch.Tensor
    embeddings: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    masks: torch.Tensor


class ConditionalSimilarityNet(nn.Module):
    """CSN (Veit et al. 2017; docs/implementations.md §6) and paper 01's modified CSN (Eq. 3-5 and the
    paragraph after them). See the module docstring for the masks and the two variants.

    ``embedding_net``: maps images to ``(B, dim)`` unmasked embeddings ``f(x)``; it should *not* normalise them
    (e.g. ``GlobalPoolEmbedding(backbone, 64, normalize=False)``, or ``RecognitionNet(...).embedding`` to share
    the embedding with the recognition branch, paper 01 Fig. 1). ``num_conditions``: number of attribute
    dimensions (8 for FashionAI). ``masks``: ``"fixed"``, ``"learned"`` or ``"prein"``. ``variant``:
    ``"original"`` or ``"modified"`` (the defaults, fixed + original, are CSN's own; paper 01's "CSN" row is
    ``masks="learned", variant="modified"``). ``init_mean``/``init_std``: the learned-mask initialisation.

    Methods: ``embed(x)`` = ``f(x)``; ``mask(c)`` the ``(B, d)`` mask multiplied in (ReLU'd, and normalised to
    sum to one for the modified variant); ``regularized_mask(c)`` the mask λ2 sees; ``mask_matrix()`` every
    condition's mask, ``(T, d)``; ``condition(f, c)`` the conditioned embedding; ``forward(x, c)`` =
    ``condition(embed(x), c)``; ``score(u, v)`` the similarity of conditioned embeddings;
    ``triplet_loss(xa, xp, xn, c)`` and ``triplet_loss_from_embeddings(fa, fp, fn, c)`` the training loss.
    """

    def __init__(self, embedding_net: nn.Module, num_conditions: int, dim: int = 64, masks: str = "fixed",
                 variant: str = "original", init_mean: float = 0.9, init_std: float = 0.7, eps: float = 1e-12):
        super().__init__()
        if masks not in ("fixed", "learned", "prein"):
            raise ValueError(f"masks must be 'fixed', 'learned' or 'prein', got {masks!r}")
        if variant not in ("original", "modified"):
            raise ValueError(f"variant must be 'original' or 'modified', got {variant!r}")
        self.embedding_net = embedding_net
        self.num_conditions = int(num_conditions)
        self.dim = int(dim)
        self.mask_type = masks
        self.variant = variant
        self.eps = float(eps)
        self.masks = nn.Embedding(self.num_conditions, self.dim)
        with torch.no_grad():
            if masks == "fixed":
                self.masks.weight.copy_(block_masks(self.num_conditions, self.dim))
                self.masks.weight.requires_grad_(False)
            elif masks == "prein":
                self.masks.weight.copy_(block_masks(self.num_conditions, self.dim, off=0.1))
            else:
                self.masks.weight.normal_(float(init_mean), float(init_std))

    @property
    def learned(self) -> bool:
        return self.mask_type != "fixed"

    # -- masks ------------------------------------------------------------------------------------------
    def _relu_masks(self, weight: torch.Tensor) -> torch.Tensor:
        return F.relu(weight) if self.learned else weight  # CSN applies the ReLU to learned masks only

    def _normalise(self, m: torch.Tensor) -> torch.Tensor:
        if self.variant == "original":
            return m
        return m / m.sum(-1, keepdim=True).clamp_min(self.eps)  # L1 normalisation of a non-negative mask

    def regularized_mask(self, c: torch.Tensor) -> torch.Tensor:
        """``(B, d)``: the masks of conditions ``c`` after the ReLU (learned/prein) and before any
        normalisation; what the λ2 term of Eq. 5 penalises."""
        return self._relu_masks(self.masks(torch.as_tensor(c, device=self.masks.weight.device).long()))

    def mask(self, c: torch.Tensor) -> torch.Tensor:
        """``(B, d)``: the masks of conditions ``c`` as multiplied into ``f``; they sum to one per row in the
        modified variant."""
        return self._normalise(self.regularized_mask(c))

    def mask_matrix(self) -> torch.Tensor:
        """``(T, d)``: every condition's effective mask (for heatmaps: dimensions x attributes)."""
        return self._normalise(self._relu_masks(self.masks.weight))

    # -- embeddings -------------------------------------------------------------------------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The unmasked embedding ``f(x)``, ``(B, d)``."""
        return self.embedding_net(x)

    def condition(self, f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Conditioned embedding of ``f`` under conditions ``c``: ``f ⊙ m_c`` (original, Eq. 3) or
        ``normalize(f ⊙ m̃_c)`` (modified)."""
        g = f * self.mask(c).to(f.dtype)
        return F.normalize(g, dim=-1) if self.variant == "modified" else g

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.condition(self.embed(x), c)

    def score(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Similarity of conditioned embeddings, higher = more alike: ``-||u - v||_2`` (original, Eq. 3; with
        CSN's ``pairwise_distance`` eps) or ``<u, v>`` (modified). Row-wise for equal shapes."""
        if self.variant == "original":
            return -F.pairwise_distance(u, v, p=2)
        return (u * v).sum(-1)

    # -- training loss ----------------------------------------------------------------------------------
    def triplet_loss_from_embeddings(self, fa: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, c: torch.Tensor,
                                     margin: float = 0.3, lambda1: float = 5e-3,
                                     lambda2: float = 5e-4) -> CSNTripletOutput:
        """Eq. 4 + Eq. 5 from precomputed unmasked embeddings (anchor, positive, negative) of one condition
        ``c`` per triplet. Original variant: :func:`csn_triplet_loss` on Euclidean distances; modified:
        :func:`triplet_ranking_loss` on inner products. Both: :func:`csn_regularizers` on the unmasked
        embeddings and on :meth:`regularized_mask`. Margin and λ's default to paper 01's values."""
        ga, gp, gn = self.condition(fa, c), self.condition(fp, c), self.condition(fn, c)
        s_pos, s_neg = self.score(ga, gp), self.score(ga, gn)
        if self.variant == "original":
            trip = csn_triplet_loss(-s_pos, -s_neg, margin=margin)
        else:
            trip = triplet_ranking_loss(s_pos, s_neg, margin=margin)
        m = self.regularized_mask(c)
        embed_reg, mask_reg = csn_regularizers((fa, fp, fn), m, lambda1=lambda1, lambda2=lambda2)
        return CSNTripletOutput(trip + embed_reg + mask_reg, trip, embed_reg, mask_reg, s_pos, s_neg,
                                (fa, fp, fn), m)

    def triplet_loss(self, xa: torch.Tensor, xp: torch.Tensor, xn: torch.Tensor, c: torch.Tensor,
                     margin: float = 0.3, lambda1: float = 5e-3, lambda2: float = 5e-4) -> CSNTripletOutput:
        """:meth:`triplet_loss_from_embeddings` on the images ``xa``, ``xp``, ``xn`` (embedded in one pass).
        The three batches go through ``embedding_net`` as one batch of ``3B`` (BatchNorm statistics are taken
        over all of them; CSN runs three passes)."""
        b = xa.shape[0]
        f = self.embed(torch.cat([xa, xp, xn]))
        return self.triplet_loss_from_embeddings(f[:b], f[b:2 * b], f[2 * b:], c, margin, lambda1, lambda2)

    def extra_repr(self) -> str:
        return f"num_conditions={self.num_conditions}, dim={self.dim}, masks={self.mask_type!r}, variant={self.variant!r}"
