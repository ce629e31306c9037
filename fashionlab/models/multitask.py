"""Paper 01's methods as modules that own their loss (``01_multicolumn_recognition_and_retrieval.txt``,
Fig. 4 and Table II): every model exposes ``cond(x, c)``, a unit-norm embedding of images ``x`` under
attribute dimensions ``c``, and ``loss(x, attr, value)``, the training loss of one batch of triplets.

A batch of triplets is given as ``x``: ``(3B, 3, H, W)`` images, anchors then positives then negatives;
``attr``: ``(3B,)`` the triplet's dimension for each image; ``value``: ``(3B,)`` each image's value of that
dimension. ``loss`` returns ``(loss, {"acc": ..., ...})`` (the form :func:`fashionlab.engine.fit` takes).

* :class:`GlobalNet`: SiaNet (contrastive loss) and TriNet (triplet ranking loss): one attribute-unaware
  embedding.
* :class:`AttNets`: Att-TriNet(+Reg): one network per dimension, optionally with a multi-column head each.
* :class:`JointNet`: SC / MC (recognition only, Eq. 1), paper 01's modified CSN (Eq. 3-5) and the joint
  SC/MC-Rec+Ret and MTL Ret+Reg models (Eq. 6) on one shared embedding.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import contrastive_loss, joint_loss, triplet_ranking_loss
from . import backbones as _backbones
from .backbones import GlobalPoolEmbedding
from .csn import ConditionalSimilarityNet
from .recognition import MultiColumnHead, RecognitionNet, multi_column_loss

__all__ = ["GlobalNet", "AttNets", "JointNet", "trunk"]

_TRUNK: ContextVar = ContextVar("fashionlab_multitask_trunk", default=None)


@contextlib.contextmanager
def trunk(make):
    """Within the block, every backbone the networks of this module build is ``make()`` (e.g. paper 01's VGG-16
    cut before pool5: ``lambda: backbone("vgg16", "conv5")``) instead of ``SmallCNN(width=width)``; ``make=None``
    changes nothing. Heads size themselves from the backbone's ``out_channels``."""
    token = _TRUNK.set(make)
    try:
        yield
    finally:
        _TRUNK.reset(token)


def SmallCNN(width: int):  # noqa: N802  (the name the classes below have always called)
    """The backbone of each network of this module: :class:`~fashionlab.models.SmallCNN` of ``width``, or, inside
    a :func:`trunk` block, that block's backbone. A function of that name rather than a backbone argument, so
    that the classes' code (which the trained-model cache key digests) and their SmallCNN models are unchanged."""
    make = _TRUNK.get()
    return _backbones.SmallCNN(width=width) if make is None else make()


def _split(e: torch.Tensor):
    b = e.shape[0] // 3
    return b, e[:b], e[b:2 * b], e[2 * b:]


class GlobalNet(nn.Module):
    """SiaNet / TriNet of paper 01 Table II: one attribute-unaware embedding, L2-normalised.

    ``objective="triplet"`` (TriNet): :func:`~fashionlab.losses.triplet_ranking_loss` on cosine similarity
    with margin ``margin`` (paper 01's h, "same distance ... and margin"). ``objective="contrastive"``
    (SiaNet): :func:`~fashionlab.losses.contrastive_loss` with ``contrastive_margin`` on positive pairs
    (anchor, positive) and negative pairs (anchor, negative) (``pairs="both"``), or on positive pairs only
    (``pairs="positive"``, as paper 01's text describes its SiaNet)."""

    def __init__(self, width: int, dim: int = 64, objective: str = "triplet", margin: float = 0.3,
                 contrastive_margin: float = 1.0, pairs: str = "both"):
        super().__init__()
        self.embedding = GlobalPoolEmbedding(SmallCNN(width=width), dim, normalize=True)
        self.objective, self.margin, self.contrastive_margin, self.pairs = objective, margin, contrastive_margin, pairs

    def cond(self, x, c):
        return self.embedding(x)

    def loss(self, x, attr, value):
        b, ea, ep, en = _split(self.cond(x, attr))
        s_pos, s_neg = (ea * ep).sum(1), (ea * en).sum(1)
        if self.objective == "triplet":
            loss = triplet_ranking_loss(s_pos, s_neg, self.margin)
        elif self.pairs == "both":  # positive pairs (anchor, positive), negative pairs (anchor, negative)
            same = torch.cat([torch.ones(b), torch.zeros(b)]).to(x.device)
            loss = contrastive_loss(torch.cat([ea, ea]), torch.cat([ep, en]), same, margin=self.contrastive_margin)
        elif self.pairs == "positive":  # only pull same-valued pairs together
            loss = contrastive_loss(ea, ep, torch.ones(b, device=x.device), margin=self.contrastive_margin)
        else:
            raise ValueError(f"sianet_pairs must be 'both' or 'positive', got {self.pairs!r}")
        return loss, {"acc": (s_pos > s_neg).float().mean()}

    def extra_repr(self) -> str:
        return f"objective={self.objective!r}, margin={self.margin}, pairs={self.pairs!r}"


class AttNets(nn.Module):
    """Att-TriNet(+Reg) of paper 01 Table II: one network per attribute dimension (each sees only its
    dimension's triplets); with ``reg`` each also carries a multi-column recognition head (only its own
    column is ever trained) and the loss is Eq. 6, ``alpha * CE + beta * triplet``."""

    def __init__(self, width: int, num_values, dim: int = 64, reg: bool = False, margin: float = 0.3,
                 alpha: float = 0.3, beta: float = 0.7):
        super().__init__()
        self.nets = nn.ModuleList(GlobalPoolEmbedding(SmallCNN(width=width), dim, normalize=False)
                                  for _ in num_values)
        self.heads = nn.ModuleList(MultiColumnHead(dim, num_values) for _ in num_values) if reg else None
        self.margin, self.alpha, self.beta = margin, alpha, beta

    def raw(self, x, c):
        """Unnormalised embeddings, each image through the network of its dimension."""
        c = torch.as_tensor(c, device=x.device).long()
        parts = {}
        for a in torch.unique(c).tolist():
            rows = (c == a).nonzero().flatten()
            parts[a] = (rows, self.nets[a](x[rows]))
        dim = next(iter(parts.values()))[1].shape[1]
        out = x.new_zeros(len(x), dim)
        for rows, e in parts.values():
            out = out.index_copy(0, rows, e)
        return out

    def cond(self, x, c):
        return F.normalize(self.raw(x, c), dim=-1)

    def loss(self, x, attr, value):
        f = self.raw(x, attr)
        _, ea, ep, en = _split(F.normalize(f, dim=-1))
        s_pos, s_neg = (ea * ep).sum(1), (ea * en).sum(1)
        loss = triplet_ranking_loss(s_pos, s_neg, self.margin)
        if self.heads is not None:
            ce = f.new_zeros(())
            for a in torch.unique(attr).tolist():
                rows = (attr == a).nonzero().flatten()
                ce = ce + multi_column_loss(self.heads[a](f[rows]), attr[rows], value[rows], reduction="sum")
            loss = joint_loss(ce / len(attr), loss, self.alpha, self.beta)
        return loss, {"acc": (s_pos > s_neg).float().mean()}

    def extra_repr(self) -> str:
        return f"margin={self.margin}, alpha={self.alpha}, beta={self.beta}"


class JointNet(nn.Module):
    """A recognition net and/or paper 01's modified CSN (learned masks) on one shared ``dim``-d embedding.

    ``head=None, retrieval=True``: the CSN row; ``head="single"|"multi", retrieval=False``: SC / MC;
    ``head=..., retrieval=True``: SC/MC-Rec+Ret and MTL Ret+Reg. :meth:`loss_terms` gives the recognition
    loss (Eq. 1 or the single-column CE, over all ``3B`` images) and the retrieval loss (Eq. 4 + the Eq. 5
    regularisers ``lambda1 ||f|| + lambda2 ||m||``); :meth:`loss` combines them by Eq. 6."""

    def __init__(self, width: int, num_values, dim: int = 64, head: str | None = "multi", retrieval: bool = True,
                 margin: float = 0.3, lambda1: float = 5e-3, lambda2: float = 5e-4, alpha: float = 0.3,
                 beta: float = 0.7):
        super().__init__()
        if head is not None:
            self.rec = RecognitionNet(SmallCNN(width=width), num_values, head=head, dim=dim)
            emb = self.rec.embedding
        else:
            self.rec = None
            emb = GlobalPoolEmbedding(SmallCNN(width=width), dim, normalize=False)
        self.csn = (ConditionalSimilarityNet(emb, len(num_values), dim=dim, masks="learned", variant="modified")
                    if retrieval else None)
        self.embedding = emb
        self.margin, self.lambda1, self.lambda2, self.alpha, self.beta = margin, lambda1, lambda2, alpha, beta

    def cond(self, x, c):
        if self.csn is None:  # recognition only: the plain embedding, normalised
            return F.normalize(self.embedding(x), dim=-1)
        return self.csn(x, torch.as_tensor(c, device=x.device).long())

    def logits(self, x):
        return self.rec(x)

    def loss_terms(self, x, attr, value):
        """``(ce, triplet, metrics)``: the recognition loss (None without a head), the retrieval loss with its
        Eq. 5 regularisers (None without the CSN) and the batch's accuracies, from one pass of the embedding."""
        f = self.embedding(x)
        b = f.shape[0] // 3
        out, ce, trip = {}, None, None
        if self.rec is not None:
            logits = self.rec.head(f)
            ce = self.rec.loss(logits, attr, value)
            out["rec_acc"] = (self.rec.predict(logits).gather(1, attr[:, None]).squeeze(1) == value).float().mean()
        if self.csn is not None:
            o = self.csn.triplet_loss_from_embeddings(f[:b], f[b:2 * b], f[2 * b:], attr[:b], margin=self.margin,
                                                      lambda1=self.lambda1, lambda2=self.lambda2)
            trip = o.loss
            out["acc"] = (o.s_pos > o.s_neg).float().mean()
        return ce, trip, out

    def loss(self, x, attr, value):
        """Eq. 6, ``alpha * CE + beta * (triplet + Eq. 5)``, or the one term the model has."""
        ce, trip, out = self.loss_terms(x, attr, value)
        if ce is not None and trip is not None:
            return joint_loss(ce, trip, self.alpha, self.beta), out
        return (ce if ce is not None else trip), out

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, lambda1={self.lambda1}, lambda2={self.lambda2}, alpha={self.alpha}, "
                f"beta={self.beta}")
