"""Attribute recognition heads of paper 01 (``01_multicolumn_recognition_and_retrieval.txt``, section
"Attribute Recognition Network", Fig. 2, Eq. 1-2) and the network that carries them.

The single-label annotation problem: a FashionAI image is annotated under **one** attribute dimension ``a``
with one value ``v`` (value 0, "Invisible", is a real value, not a missing label). Paper 01 relabels the image
with *all* ``C`` dimensions, keeping ``(a, v)`` and setting the one-hot label of every other dimension to the
all-zero vector. Two heads read the same pooled embedding ``f(x)``:

* :class:`SingleColumnHead` (Fig. 2a): one softmax over the values of every dimension concatenated
  (``sum(num_values)`` classes, 54 for FashionAI). The label of ``(a, v)`` is ``offset[a] + v`` with
  ``offset[a] = sum(num_values[:a])`` (:func:`value_offsets`, :func:`single_column_labels`); the loss is
  :func:`single_column_loss`.
* :class:`MultiColumnHead` (Fig. 2b): one linear layer + softmax per dimension (8 "columns" for FashionAI).
  The loss of Eq. 1 sums the cross-entropies of all ``C`` columns against one-hot targets that are zero for
  the unannotated columns (:func:`multi_column_loss`); a zero target multiplies the log-probabilities by
  zero, so those columns contribute zero loss and *exactly* zero gradient, and Eq. 1 equals Eq. 2, the
  cross-entropy of the annotated column alone (:func:`multi_column_loss_annotated`).

Logit layout: the multi-column head returns a **list** of ``C`` tensors, ``logits[c]`` of shape
``(B, num_values[c])``, because the columns have different widths and a list keeps each column's softmax
separate by construction. :func:`pad_columns` turns the list into a ``(B, C, max(num_values))`` tensor padded
with ``-inf`` (a padded entry can never win an argmax nor take softmax mass), for code that wants one tensor.

Both heads predict every dimension of an image: ``head.predict(logits)`` gives ``(B, C)`` value indices,
the argmax inside each dimension's block (multi-attribute recognition, paper 01 Fig. 5).

:class:`RecognitionNet` is backbone -> global average pooling -> FC to a ``dim``-d embedding (64 in paper 01,
"Training Details") -> head. Its embedding module (``net.embedding``, a
:class:`~fashionlab.models.backbones.GlobalPoolEmbedding` without normalisation) is what the joint model of
Eq. 6 shares with the retrieval branch (:class:`~fashionlab.models.csn.ConditionalSimilarityNet`).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import _reduce
from .backbones import GlobalPoolEmbedding

__all__ = [
    "value_offsets",
    "single_column_labels",
    "pad_columns",
    "SingleColumnHead",
    "MultiColumnHead",
    "RecognitionNet",
    "multi_column_loss",
    "multi_column_loss_annotated",
    "single_column_loss",
]


def _counts(num_values) -> tuple[int, ...]:
    """Value counts from a sequence of ints or an :class:`~fashionlab.taxonomy.AttributeSchema`."""
    counts = getattr(num_values, "num_values", num_values)
    counts = tuple(int(k) for k in counts)
    if not counts:
        raise ValueError("num_values is empty: at least one attribute dimension is needed")
    bad = [k for k in counts if k < 1]
    if bad:
        raise ValueError(f"every attribute needs at least one value, got counts {counts}")
    return counts


def _check_labels(attr: torch.Tensor, value: torch.Tensor, counts: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    attr = torch.as_tensor(attr).long().reshape(-1)
    value = torch.as_tensor(value, device=attr.device).long().reshape(-1)
    if attr.numel() != value.numel():
        raise ValueError(f"attr and value differ in length: {attr.numel()} vs {value.numel()}")
    if attr.numel():
        if int(attr.min()) < 0 or int(attr.max()) >= len(counts):
            raise ValueError(f"attribute indices must lie in [0, {len(counts)}), got {attr.min()}..{attr.max()}")
        k = torch.as_tensor(counts, device=attr.device)[attr]
        if bool(((value < 0) | (value >= k)).any()):
            i = int(((value < 0) | (value >= k)).nonzero()[0])
            raise ValueError(f"value {int(value[i])} out of range for attribute {int(attr[i])} "
                             f"with {counts[int(attr[i])]} values (sample {i})")
    return attr, value


def value_offsets(num_values, device=None) -> torch.Tensor:
    """``offset[a] = sum(num_values[:a])``: where attribute ``a``'s block starts in the single column.

    For FashionAI (counts 6, 9, 8, 6, 5, 5, 10, 5): ``[0, 6, 15, 23, 29, 34, 39, 49]``, 54 classes in all.
    ``num_values``: a sequence of counts or an ``AttributeSchema``.
    """
    counts = _counts(num_values)
    return torch.tensor((0,) + counts[:-1], device=device).cumsum(0)


def single_column_labels(attr, value, num_values) -> torch.Tensor:
    """Class index in the single column (paper 01 Fig. 2a) of ``(attribute a, value v)``: ``offset[a] + v``."""
    counts = _counts(num_values)
    attr, value = _check_labels(attr, value, counts)
    return value_offsets(counts, device=attr.device)[attr] + value


def pad_columns(logits: Sequence[torch.Tensor], fill: float = float("-inf")) -> torch.Tensor:
    """Stack the multi-column logits (a list of ``(B, K_c)``) into ``(B, C, max K_c)``, padded with ``fill``.

    With ``-inf`` padding, ``softmax(dim=-1)`` of the result equals each column's own softmax (padded entries
    get probability 0) and ``argmax(dim=-1)`` is each column's prediction.
    """
    kmax = max(t.shape[1] for t in logits)
    out = logits[0].new_full((logits[0].shape[0], len(logits), kmax), fill)
    for c, t in enumerate(logits):
        out[:, c, : t.shape[1]] = t
    return out


class SingleColumnHead(nn.Module):
    """The single-column head of paper 01 (Fig. 2a): one linear layer and ONE softmax over the values of all
    attribute dimensions concatenated (``sum(num_values)`` classes; 54 for FashionAI).

    ``forward(f)`` gives ``(B, sum(num_values))`` logits; class ``offset[a] + v`` is value ``v`` of
    attribute ``a`` (:func:`single_column_labels`). ``predict(logits)`` gives ``(B, C)``: for each attribute,
    the argmax within its own block. ``predict_global(logits)`` gives the ``(attribute, value)`` of the argmax
    over all classes, which is what a single softmax by itself "predicts".
    """

    def __init__(self, in_features: int, num_values):
        super().__init__()
        self.num_values = _counts(num_values)
        self.num_attributes = len(self.num_values)
        self.num_classes = sum(self.num_values)
        self.fc = nn.Linear(int(in_features), self.num_classes)
        self.register_buffer("offsets", value_offsets(self.num_values), persistent=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def labels(self, attr, value) -> torch.Tensor:
        """Single-column class indices ``offset[attr] + value``."""
        return single_column_labels(attr, value, self.num_values).to(self.offsets.device)

    def columns(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """The logits split into the ``C`` per-attribute blocks (views), like the multi-column output."""
        return list(torch.split(logits, list(self.num_values), dim=1))

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` long: for every attribute ``a`` the argmax of ``logits`` within ``a``'s block."""
        return pad_columns(self.columns(logits)).argmax(-1)

    def predict_global(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(attr, value)``, each ``(B,)``: the class with the highest score among all ``sum(num_values)``."""
        k = logits.argmax(1)
        attr = torch.searchsorted(self.offsets.to(k.device), k, right=True) - 1
        return attr, k - self.offsets.to(k.device)[attr]

    def loss(self, logits: torch.Tensor, attr, value, reduction: str = "mean") -> torch.Tensor:
        """:func:`single_column_loss` with this head's value counts."""
        return single_column_loss(logits, attr, value, self.num_values, reduction=reduction)


class MultiColumnHead(nn.Module):
    """The multi-column head of paper 01 (Fig. 2b): ``C`` independent linear layers, one softmax each.

    ``forward(f)`` returns a list of ``C`` tensors, ``logits[c]`` of shape ``(B, num_values[c])``; column
    ``c``'s layer is ``head.columns[c]``. ``predict(logits)`` gives ``(B, C)``, the argmax of each column, i.e.
    a value for every dimension of every image (multi-attribute recognition, Fig. 5). ``padded(logits)`` is
    :func:`pad_columns`. Trained with :func:`multi_column_loss` (Eq. 1) or, identically,
    :func:`multi_column_loss_annotated` (Eq. 2).
    """

    def __init__(self, in_features: int, num_values):
        super().__init__()
        self.num_values = _counts(num_values)
        self.num_attributes = len(self.num_values)
        self.columns = nn.ModuleList(nn.Linear(int(in_features), k) for k in self.num_values)

    def forward(self, f: torch.Tensor) -> list[torch.Tensor]:
        return [col(f) for col in self.columns]

    @staticmethod
    def padded(logits: Sequence[torch.Tensor], fill: float = float("-inf")) -> torch.Tensor:
        """:func:`pad_columns`: ``(B, C, max K)`` with ``fill`` in the padding."""
        return pad_columns(logits, fill)

    def predict(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(B, C)`` long: the argmax of every column."""
        return pad_columns(logits).argmax(-1)

    def loss(self, logits: Sequence[torch.Tensor], attr, value, reduction: str = "mean") -> torch.Tensor:
        """:func:`multi_column_loss` (Eq. 1)."""
        return multi_column_loss(logits, attr, value, reduction=reduction)


def multi_column_loss(logits: Sequence[torch.Tensor], attr, value, reduction: str = "mean") -> torch.Tensor:
    """Eq. 1 of paper 01, written out: ``L(x) = - sum_{c=1..C} sum_k y_{c,k} log p_{c,k}(x)``.

    ``logits``: the ``C`` columns of :class:`MultiColumnHead`; ``attr``, ``value``: ``(B,)`` the annotated
    dimension and its value per image. The target ``y_c`` of column ``c`` is ``one_hot(value)`` where
    ``attr == c`` and the **all-zero vector** elsewhere (the relabelling trick). Every column's loss is computed
    and summed, as the equation reads; the zero targets contribute ``0 * log p = 0`` to the loss and exactly
    zero gradient to the column (``d/dz [0 * log_softmax(z)] = 0``). The result therefore equals
    :func:`multi_column_loss_annotated` (Eq. 2). ``reduction`` over images: ``"mean"`` (default; the
    ``1/N`` of Eq. 6), ``"sum"`` or ``"none"`` (per image).
    """
    counts = tuple(t.shape[1] for t in logits)
    attr, value = _check_labels(attr, value, counts)
    attr, value = attr.to(logits[0].device), value.to(logits[0].device)
    total = logits[0].new_zeros(logits[0].shape[0])
    for c, z in enumerate(logits):
        annotated = (attr == c).to(z.dtype).unsqueeze(1)                  # (B, 1): 1 where c is the labelled dim
        y = F.one_hot(value.clamp(max=z.shape[1] - 1), z.shape[1]).to(z.dtype) * annotated  # zero rows elsewhere
        total = total - (y * F.log_softmax(z, dim=1)).sum(1)
    return _reduce(total, reduction)


def multi_column_loss_annotated(logits: Sequence[torch.Tensor], attr, value, reduction: str = "mean") -> torch.Tensor:
    """Eq. 2 of paper 01: ``L(x) = - log p_{c, v}(x)`` with ``c`` the annotated dimension and ``v`` its value,
    i.e. the cross-entropy of the annotated column only (the other columns are not evaluated at all).

    Same arguments and reduction as :func:`multi_column_loss`, to which it is equal.
    """
    counts = tuple(t.shape[1] for t in logits)
    attr, value = _check_labels(attr, value, counts)
    attr, value = attr.to(logits[0].device), value.to(logits[0].device)
    per_image = logits[0].new_zeros(logits[0].shape[0])
    for c, z in enumerate(logits):
        rows = (attr == c).nonzero().flatten()
        if rows.numel():
            per_image = per_image.index_put((rows,), F.cross_entropy(z[rows], value[rows], reduction="none"))
    return _reduce(per_image, reduction)


def single_column_loss(logits: torch.Tensor, attr, value, num_values, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the single-column head (paper 01 Fig. 2a, the "SC" baseline of Fig. 4): one softmax over
    all ``sum(num_values)`` classes, target ``offset[attr] + value`` (:func:`single_column_labels`).

    Unlike Eq. 1, the softmax normalises over the values of *every* dimension, so an image labelled
    "sleeve length = long" is also pushed away from every collar, neckline... value.
    """
    counts = _counts(num_values)
    if logits.shape[1] != sum(counts):
        raise ValueError(f"single-column logits have {logits.shape[1]} classes but num_values sum to {sum(counts)}")
    target = single_column_labels(attr, value, counts).to(logits.device)
    return F.cross_entropy(logits, target, reduction=reduction)


class RecognitionNet(nn.Module):
    """Paper 01's recognition network (section "Attribute Recognition Network"; "Training Details"):
    backbone -> global average pooling -> FC to a ``dim``-d embedding (64) -> recognition head.

    ``backbone_net``: a feature-map module with ``out_channels`` (e.g. ``backbone("vgg16")`` or
    ``SmallCNN()``); ``num_values``: value counts or an ``AttributeSchema``; ``head``: ``"multi"``
    (:class:`MultiColumnHead`, "MC") or ``"single"`` (:class:`SingleColumnHead`, "SC").

    ``net.embedding`` is the shared :class:`GlobalPoolEmbedding` (``normalize=False``: the raw FC output,
    which CSN's λ1 regulariser and masks expect); ``net.embed(x)`` gives ``(B, dim)``; ``net.head(f)`` gives
    the logits from an embedding, so the joint model of Eq. 6 computes ``f`` once for both branches.
    ``forward(x)`` returns the logits (a list of columns for ``"multi"``, a ``(B, sum K)`` tensor for
    ``"single"``), or ``(logits, f)`` with ``return_embedding=True``. ``loss(logits, attr, value)`` picks
    Eq. 1 or the single-column loss; ``predict(logits)`` gives ``(B, C)`` values for every dimension.
    """

    def __init__(self, backbone_net: nn.Module, num_values, head: str = "multi", dim: int = 64,
                 in_features: int | None = None):
        super().__init__()
        if head not in ("multi", "single"):
            raise ValueError(f"head must be 'multi' or 'single', got {head!r}")
        self.num_values = _counts(num_values)
        self.head_type = head
        self.dim = int(dim)
        self.embedding = GlobalPoolEmbedding(backbone_net, self.dim, normalize=False, in_features=in_features)
        cls = MultiColumnHead if head == "multi" else SingleColumnHead
        self.head = cls(self.dim, self.num_values)

    @property
    def backbone(self) -> nn.Module:
        return self.embedding.backbone

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, dim)`` representation embedding ``f(x)`` (not normalised)."""
        return self.embedding(x)

    def forward(self, x: torch.Tensor, return_embedding: bool = False):
        f = self.embedding(x)
        logits = self.head(f)
        return (logits, f) if return_embedding else logits

    def loss(self, logits, attr, value, reduction: str = "mean") -> torch.Tensor:
        """Eq. 1 (multi-column) or :func:`single_column_loss` (single-column)."""
        return self.head.loss(logits, attr, value, reduction=reduction)

    def predict(self, logits) -> torch.Tensor:
        """``(B, C)``: a value for every attribute dimension (argmax within each dimension)."""
        return self.head.predict(logits)
