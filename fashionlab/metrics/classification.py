"""Classification and multi-label attribute metrics: top-k accuracy, DeepFashion's attribute recall@k
(docs/protocols.md §4.3, mmfashion's attribute prediction; paper 06 §4.2, Table 7) and hierarchy violations
(paper 06 §3.1, Table 2).

* :func:`topk_accuracy`: micro top-k accuracy of a classifier (ties broken by class index, the lower first).
* :func:`attribute_recall_at_k`: DeepFashion attribute recall@k, conventional or mmfashion's "altered" top-50
  mean (docs/protocols.md §4.3), with its teaching loop :func:`attribute_recall_at_k_reference`.
* :func:`hierarchy_violations`: predicted attributes that cannot apply to the predicted category (the
  category -> attribute hierarchy of paper 06 §3.1).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from ._common import _check_k, _indicator_tensor, _tensor, _to_numpy

__all__ = [
    "topk_accuracy",
    "attribute_recall_at_k",
    "attribute_recall_at_k_reference",
    "hierarchy_violations",
]


def topk_accuracy(logits, targets, ks: Iterable[int] = (1, 3, 5)) -> dict[int, float]:
    """Classification top-k accuracy (micro: fraction of samples whose target is among the k highest logits).

    ``logits``: (n, C); ``targets``: (n,) class indices. Ties among logits are broken by class index (the
    lower index ranks first), the same rule as the retrieval metrics. Returns ``{k: fraction}``; k > C raises.
    """
    x = _tensor(logits)
    y = _tensor(targets)
    y = y.reshape(-1).to(device=x.device, dtype=torch.long)
    if x.dim() != 2 or x.shape[0] != y.numel():
        raise ValueError(f"logits must be (n, C) with n = len(targets); got {tuple(x.shape)} and "
                         f"{y.numel()} targets")
    if x.shape[0] == 0:
        raise ValueError("no samples")
    target_logit = x.gather(1, y[:, None])
    cls = torch.arange(x.shape[1], device=x.device)
    # 0-based rank of the target: classes with a higher logit, plus tied classes with a lower index
    rank = (x > target_logit).sum(1) + ((x == target_logit) & (cls[None, :] < y[:, None])).sum(1)
    out = {}
    for k in ks:
        k = int(k)
        if not 1 <= k <= x.shape[1]:
            raise ValueError(f"k must be in 1..{x.shape[1]} (number of classes), got {k}")
        out[k] = float((rank < k).to(torch.float64).mean())
    return out


# ----------------------------------------------------------------------------------------------------------
# multi-label attributes with a category hierarchy (paper 06): attribute recall@k, hierarchy violations
# ----------------------------------------------------------------------------------------------------------
def _score_and_label_matrices(scores, labels) -> tuple[torch.Tensor, torch.Tensor]:
    s = _tensor(scores).detach()
    if s.dim() != 2:
        raise ValueError(f"scores must be 2-D (images, attributes), got shape {tuple(s.shape)}")
    if not s.is_floating_point():
        s = s.to(torch.float64)
    y = _indicator_tensor(labels, "labels").to(s.device)
    if y.shape != s.shape:
        raise ValueError(f"scores {tuple(s.shape)} and labels {tuple(y.shape)} differ in shape")
    if s.shape[0] == 0:
        raise ValueError("no images")
    return s, y


def _recall_summary(recall: list[float], topn: int | None) -> float:
    """Mean of the per-attribute recalls (non-empty attributes only), or of the ``topn`` highest of them."""
    if not recall:
        raise ValueError("no attribute has a positive image: recall is undefined")
    if topn is None:
        return float(sum(recall) / len(recall))
    best = sorted(recall, reverse=True)[:topn]
    return float(sum(best) / min(topn, len(recall)))


def attribute_recall_at_k(scores, labels, k: int, topn: int | None = None) -> float:
    """Attribute "recall rate at top-k" of DeepFashion (paper 06 §4.2, Table 7; docs/protocols.md §4.3).

    ``scores``: ``(N, A)`` attribute scores (logits or probabilities); ``labels``: ``(N, A)`` 0/1 (or bool)
    ground truth. For every image the ``k`` highest-scored attributes are predicted positive (ties broken by
    attribute index, the lower first; mmfashion's ``argsort(...)[::-1]`` takes the higher index first, which
    only matters for exactly tied scores). For every attribute with at least one positive image,
    ``recall = tp / (tp + fn)`` over the images; attributes without a positive are left out (an error if none
    has one).

    * ``topn=None``: the conventional recall@k, the mean over those attributes (the paper's main Table 7
      numbers);
    * ``topn=50``: mmfashion's "altered" recall (the numbers in parentheses of Table 7): the sum of the ``topn``
      highest per-attribute recalls divided by ``min(topn, number of non-empty attributes)``, i.e. the mean of
      the best ``topn`` attributes. With 26 attributes it is the conventional value; with DeepFashion's 1,000
      it is an optimistic best-50 mean.

    Returns a fraction in [0, 1] (like :func:`topk_accuracy`; the paper prints percentages). Vectorised torch on
    the scores' device; :func:`attribute_recall_at_k_reference` is the same definition as a Python loop.
    """
    s, y = _score_and_label_matrices(scores, labels)
    k = _check_k(k)
    if k > s.shape[1]:
        raise ValueError(f"k must be in 1..{s.shape[1]} (number of attributes), got {k}")
    if topn is not None:
        topn = _check_k(topn)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    predicted = torch.zeros_like(y).scatter_(1, order, True)
    tp = (predicted & y).sum(0).to(torch.float64)
    pos = y.sum(0).to(torch.float64)
    recall = (tp[pos > 0] / pos[pos > 0]).cpu().tolist()
    return _recall_summary(recall, topn)


def attribute_recall_at_k_reference(scores, labels, k: int, topn: int | None = None) -> float:
    """:func:`attribute_recall_at_k` as a plain Python loop over images and attributes (the teaching version and
    the tests' oracle; docs/protocols.md §4.3): per image sort the attribute indices by (-score, index), take
    the first ``k``, count tp and fn per attribute, then average the recalls (see the vectorised version)."""
    s = _to_numpy(scores).tolist()
    y = _to_numpy(labels).tolist()
    n_attr = len(s[0])
    tp = [0] * n_attr
    fn = [0] * n_attr
    for row_s, row_y in zip(s, y):
        ranked = sorted(range(n_attr), key=lambda j: (-row_s[j], j))
        top = set(ranked[:k])
        for j in range(n_attr):
            if row_y[j]:
                if j in top:
                    tp[j] += 1
                else:
                    fn[j] += 1
    recall = [tp[j] / (tp[j] + fn[j]) for j in range(n_attr) if tp[j] + fn[j] > 0]
    return _recall_summary(recall, topn)


def hierarchy_violations(attribute_predicted, category_predicted, applicable) -> dict[str, float | int]:
    """How often predicted attributes break the category -> attribute hierarchy (beyond paper 06: §3.1 and Table 2
    state the hierarchy, e.g. "frill" applies to dresses and skirts, not to footwear; §5.2.2 / Fig. 3d shows a
    'shirt' predicted with the t-shirt-only attribute 'polo').

    ``attribute_predicted``: ``(N, A)`` bool, the attributes predicted for each item (e.g. its top-k);
    ``category_predicted``: ``(N,)`` the predicted category of each item; ``applicable``: ``(C, A)`` bool, which
    attributes can apply to each category. A *violation* is a predicted attribute that cannot apply to the
    item's predicted category. Returns ``{"rate": violations / predicted, "items": share of items with at least
    one violation, "predicted": number of predicted attributes, "violations": number of violations}``; with no
    predicted attribute (or no item) the rates are 0.0 and ``predicted`` is 0.
    """
    pred = _indicator_tensor(attribute_predicted, "attribute_predicted")
    app = _indicator_tensor(applicable, "applicable").to(pred.device)
    cat = _tensor(category_predicted).reshape(-1).to(device=pred.device, dtype=torch.long)
    if cat.numel() != pred.shape[0]:
        raise ValueError(f"{cat.numel()} categories for {pred.shape[0]} items")
    if app.shape[1] != pred.shape[1]:
        raise ValueError(f"applicable has {app.shape[1]} attributes, attribute_predicted {pred.shape[1]}")
    if cat.numel() and (int(cat.min()) < 0 or int(cat.max()) >= app.shape[0]):
        raise IndexError(f"category index out of range for {app.shape[0]} categories")
    viol = pred & ~app[cat]
    n_pred, n_viol = int(pred.sum()), int(viol.sum())
    items = float(viol.any(dim=1).to(torch.float64).mean()) if pred.shape[0] else 0.0
    return {"rate": n_viol / n_pred if n_pred else 0.0, "items": items, "predicted": n_pred, "violations": n_viol}
