"""Attribute-based fashion search (paper 04, Ak et al.): search by query, attribute manipulation, relevance
feedback and the top-k retrieval accuracy of its experiments (§4.6, §5, §7).

The network of paper 04 gives every image ``S + 1`` *signature vectors* ``fc_7v`` (one per special attribute
- collar, sleeve length, ... - plus one for the general attributes). Here signatures are a mapping
``{attribute name: (N, d_v) array or tensor}`` (the dimensions ``d_v`` may differ); any mapping key works,
e.g. ``"general"`` for the ``(S+1)``-th one. A list is read as ``{0: ..., 1: ...}``.

Equations (d = Euclidean distance; the prime on the gallery signature in the paper marks its normalised
copy, §4.6: "a normalization operation is used for Eq. 4 to give same importance for each embedding"):

* Eq. 4  ``D(i, r) = Σ_v d(f_v(i)/||f_v(i)||, f_v(r)/||f_v(r)||)`` - :func:`signature_distance`, per
  attribute :func:`attribute_distances`, ranking :func:`search`.
* §4.6 manipulation: replace ``f_v(i)`` of the undesired attribute by the *prototype* of the desired value,
  the mean signature of the training images with that label - :func:`prototypes`, :func:`manipulate`.
* Eq. 5  ``w_v = 1 / Σ_{k<j} d(f_v(k), f_v(j))`` over the pairs of images the user picked - :func:`feedback_weights`;
  §5: with a single picked image the query is replaced by it - :func:`relevance_feedback`.
* Eq. 6  ``D(i, r) = Σ_v w_v d(f_v(i), f_v(r))`` - :func:`signature_distance` with ``weights``.

§7 protocol: a query is a hit at k when one of its k nearest gallery images has *exactly* the demanded values
of every compared (special) attribute (:func:`topk_retrieval_accuracy`; Fig. 6 (a) direct retrieval, where the
demanded values are the query's own; Fig. 6 (b) and Table 2 after manipulating one random special attribute,
:func:`random_manipulations`, per manipulated attribute via ``groups``). Items with a missing label (< 0) are
left out, as in §7 ("we only include results which have a valid attribute label for all special
attributes"). :func:`extraction_rate` times feature extraction (§7.6).

Ties in distance are broken by gallery order (stable sort), like :mod:`fashionlab.metrics`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Hashable

import numpy as np
import torch

__all__ = [
    "normalise_signatures",
    "attribute_distances",
    "signature_distance",
    "search",
    "prototypes",
    "manipulate",
    "feedback_weights",
    "relevance_feedback",
    "manipulation_targets",
    "random_manipulations",
    "topk_retrieval_accuracy",
    "extraction_rate",
]

Signatures = Mapping[Hashable, Any]


# ----------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------
def _signatures(sig: Any, name: str) -> dict[Hashable, torch.Tensor]:
    """``{attribute: (N, d) floating tensor}``; lists become ``{0: ..., 1: ...}``; a 1-D vector is one item."""
    if isinstance(sig, (list, tuple)):
        sig = dict(enumerate(sig))
    if not isinstance(sig, Mapping) or not sig:
        raise ValueError(f"{name} must be a non-empty mapping {{attribute: (N, d) array}} (or a list of arrays)")
    out: dict[Hashable, torch.Tensor] = {}
    n = None
    for a, v in sig.items():
        t = v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
        if t.dim() == 1:
            t = t[None]
        if t.dim() != 2:
            raise ValueError(f"{name}[{a!r}] must be (N, d) or (d,), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            t = t.to(torch.float64)
        if n is not None and t.shape[0] != n:
            raise ValueError(f"{name}: every attribute needs the same number of items; {a!r} has {t.shape[0]}, "
                             f"expected {n}")
        n = t.shape[0]
        out[a] = t
    return out


def _same_keys(q: dict, g: dict) -> None:
    if set(q) != set(g):
        raise ValueError(f"query and gallery signatures have different attributes: {sorted(map(str, q))} vs "
                         f"{sorted(map(str, g))}")


def _labels(labels: Any, attributes: Sequence | None, name: str) -> tuple[np.ndarray, list]:
    """Labels as an ``(N, A)`` int64 matrix with its attribute names. Mapping ``{attribute: (N,)}`` (columns
    in ``attributes`` order, default the mapping's order) or an ``(N, A)`` array (``attributes`` = column
    indices, default all)."""
    if isinstance(labels, Mapping):
        attrs = list(labels) if attributes is None else list(attributes)
        missing = [a for a in attrs if a not in labels]
        if missing:
            raise ValueError(f"{name} has no labels for {missing}")
        cols = [np.asarray(labels[a].detach().cpu() if isinstance(labels[a], torch.Tensor) else labels[a]).ravel()
                for a in attrs]
        if len({c.size for c in cols}) > 1:
            raise ValueError(f"{name}: every attribute needs one label per item")
        return np.stack(cols, 1).astype(np.int64), attrs
    a = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a mapping {{attribute: (N,) labels}} or an (N, A) array, got shape {a.shape}")
    attrs = list(range(a.shape[1])) if attributes is None else list(attributes)
    return a[:, attrs].astype(np.int64), attrs


# ----------------------------------------------------------------------------------------------------------
# Eq. 4 and Eq. 6: distances and search
# ----------------------------------------------------------------------------------------------------------
def normalise_signatures(signatures: Signatures, eps: float = 1e-12) -> dict[Hashable, torch.Tensor]:
    """§4.6's normalisation for Eq. 4: every signature vector divided by its L2 norm (``max(norm, eps)``), so
    each attribute's distances lie in [0, 2] and weigh the same in the sum."""
    return {a: t / t.norm(dim=1, keepdim=True).clamp_min(eps) for a, t in _signatures(signatures, "signatures").items()}


def _pairwise(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (Q, N) via ``|q|² + |g|² - 2 q·g`` (clamped at 0: rounding may go below)."""
    dtype = torch.promote_types(q.dtype, g.dtype)
    q, g = q.to(dtype), g.to(device=q.device, dtype=dtype)
    sq = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return sq.clamp_min(0).sqrt()


def attribute_distances(query: Signatures, gallery: Signatures, normalize: bool = True) -> dict[Hashable, torch.Tensor]:
    """The per-attribute terms of Eq. 4: ``{v: (Q, N) tensor of d(fc_7v(i), fc_7v(r)')}``, Euclidean distance
    between (by default L2-normalised, §4.6) signatures."""
    q, g = _signatures(query, "query"), _signatures(gallery, "gallery")
    _same_keys(q, g)
    if normalize:
        q, g = normalise_signatures(q), normalise_signatures(g)
    out = {}
    for a in q:
        if q[a].shape[1] != g[a].shape[1]:
            raise ValueError(f"attribute {a!r}: query signatures have {q[a].shape[1]} dims, gallery {g[a].shape[1]}")
        out[a] = _pairwise(q[a], g[a])
    return out


def signature_distance(query: Signatures, gallery: Signatures, weights: Mapping | None = None,
                       normalize: bool = True) -> torch.Tensor:
    """Eq. 4, ``D(i, r) = Σ_v d(fc_7v(i), fc_7v(r)')`` (``weights=None``), or Eq. 6,
    ``D(i, r) = Σ_v w_v d(fc_7v(i), fc_7v(r)')`` (``weights = {v: w_v}``, e.g. from :func:`feedback_weights`).

    ``query``/``gallery``: ``{v: (Q, d_v)}`` / ``{v: (N, d_v)}`` signatures with the same keys. Returns the
    ``(Q, N)`` distance matrix (smaller = more similar).
    """
    dists = attribute_distances(query, gallery, normalize)
    if weights is not None:
        missing = [a for a in dists if a not in weights]
        if missing:
            raise ValueError(f"weights has no entry for attributes {missing}")
        bad = [a for a in dists if not np.isfinite(float(weights[a])) or float(weights[a]) < 0]
        if bad:
            raise ValueError(f"weights must be finite and >= 0; not so for {bad} (an infinite Eq. 5 weight comes "
                             "from identical picked images: pass eps > 0 to feedback_weights)")
    total = None
    for a, d in dists.items():
        term = d if weights is None else float(weights[a]) * d
        total = term if total is None else total + term
    return total


def search(query: Signatures, gallery: Signatures, k: int = 20, weights: Mapping | None = None,
           normalize: bool = True) -> torch.Tensor:
    """§4.6 search: indices ``(Q, k)`` of the k gallery items with the smallest Eq. 4 (or, with ``weights``,
    Eq. 6) distance, nearest first; ties broken by gallery order."""
    d = signature_distance(query, gallery, weights, normalize)
    if not 1 <= k <= d.shape[1]:
        raise ValueError(f"k must be in 1..{d.shape[1]} (gallery size), got {k}")
    return torch.sort(d, dim=1, stable=True).indices[:, :k]


# ----------------------------------------------------------------------------------------------------------
# §4.6: attribute manipulation with prototypes
# ----------------------------------------------------------------------------------------------------------
def prototypes(signatures: Signatures, labels: Mapping) -> dict[Hashable, dict[int, torch.Tensor]]:
    """§4.6's 'generic' representation of each attribute value: the mean of the (unnormalised, as in the paper:
    "passing images with same attribute label to the fc_7v layer and averaging the extracted features")
    signatures ``fc_7v`` of the training images with that label.

    ``signatures``: ``{v: (N, d_v)}``; ``labels``: ``{v: (N,) int}`` for the manipulable attributes (a key
    without labels, e.g. ``"general"``, gets no prototypes). Labels < 0 (missing) are ignored. Returns
    ``{v: {value: (d_v,) tensor}}``.
    """
    sig = _signatures(signatures, "signatures")
    if not isinstance(labels, Mapping):
        raise ValueError("labels must be a mapping {attribute: (N,) int labels}")
    out: dict[Hashable, dict[int, torch.Tensor]] = {}
    for a, lab in labels.items():
        if a not in sig:
            raise ValueError(f"labels given for {a!r}, which has no signatures")
        y = torch.as_tensor(np.asarray(lab.detach().cpu() if isinstance(lab, torch.Tensor) else lab)).reshape(-1)
        if y.numel() != sig[a].shape[0]:
            raise ValueError(f"{a!r}: {y.numel()} labels for {sig[a].shape[0]} signatures")
        y = y.to(sig[a].device)
        out[a] = {int(v): sig[a][y == v].mean(0) for v in torch.unique(y).tolist() if v >= 0}
    return out


def manipulate(query_signatures: Signatures, attribute, value, prototypes: Mapping, rows=None) -> dict:
    """§4.6 attribute manipulation: the signature ``fc_7v`` of the manipulated attribute(s) is replaced by the
    prototype of the desired value; every other signature stays (so untouched attributes are kept).

    ``attribute``: one key, or a list of keys to change several at once (§7 allows two); ``value``: for each
    attribute an int (the same for all queries) or a ``(Q,)`` array (one value per query); ``prototypes``: from
    :func:`prototypes`; ``rows``: optional boolean mask or indices of the queries to change (the others keep
    their signature). Returns a new signature dict; the input is not modified.
    """
    q = {a: t.clone() for a, t in _signatures(query_signatures, "query_signatures").items()}
    attrs = list(attribute) if isinstance(attribute, (list, tuple)) else [attribute]
    values = list(value) if isinstance(attribute, (list, tuple)) else [value]
    if len(values) != len(attrs):
        raise ValueError(f"{len(attrs)} attributes but {len(values)} values")
    n = next(iter(q.values())).shape[0]
    sel = np.ones(n, dtype=bool) if rows is None else np.zeros(n, dtype=bool)
    if rows is not None:
        sel[np.asarray(rows.cpu() if isinstance(rows, torch.Tensor) else rows)] = True
    for a, v in zip(attrs, values):
        if a not in q:
            raise ValueError(f"no query signatures for attribute {a!r}")
        if a not in prototypes:
            raise ValueError(f"no prototypes for attribute {a!r}")
        v = np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v, dtype=np.int64)
        if v.ndim and v.size != n:
            raise ValueError(f"attribute {a!r}: {v.size} values for {n} queries")
        vals = np.broadcast_to(v.ravel() if v.ndim else v, (n,))
        for val in np.unique(vals[sel]).tolist():
            if val not in prototypes[a]:
                raise ValueError(f"attribute {a!r} has no prototype for value {val} (known: {sorted(prototypes[a])})")
            idx = torch.from_numpy(np.flatnonzero(sel & (vals == val))).to(q[a].device)
            q[a][idx] = prototypes[a][val].to(q[a])
    return q


# ----------------------------------------------------------------------------------------------------------
# §5: relevance feedback, Eq. 5
# ----------------------------------------------------------------------------------------------------------
def feedback_weights(liked_signatures: Signatures, normalize: bool = True, eps: float = 0.0) -> dict:
    """Eq. 5: ``w_v = 1 / Σ_{k<j} d(fc_7v(k), fc_7v(j)')`` over every pair of the images the user picked.

    An attribute on which the picked images agree (small distances) gets a large weight: the user cares
    about it. ``liked_signatures``: ``{v: (n, d_v)}`` with n >= 2 picked images; ``normalize`` as in Eq. 4.
    Each unordered pair counts once (summing over ordered pairs doubles every sum and halves every weight,
    which changes no ranking). If the picked images are identical on an attribute the sum is 0 and its
    weight is ``inf`` unless ``eps > 0`` (``1 / (sum + eps)``). Returns ``{v: float}``.
    """
    sig = _signatures(liked_signatures, "liked_signatures")
    n = next(iter(sig.values())).shape[0]
    if n < 2:
        raise ValueError(f"Eq. 5 needs at least 2 picked images, got {n} (with one, use relevance_feedback, "
                         "which replaces the query by it)")
    if normalize:
        sig = normalise_signatures(sig)
    iu = torch.triu_indices(n, n, offset=1)
    weights = {}
    for a, t in sig.items():
        total = float(_pairwise(t, t)[iu[0], iu[1]].sum())
        weights[a] = 1.0 / (total + eps) if total + eps > 0 else float("inf")
    return weights


def relevance_feedback(query_signatures: Signatures, liked_signatures: Signatures, normalize: bool = True,
                       eps: float = 0.0) -> tuple[dict, dict]:
    """§5 relevance feedback: returns ``(query signatures for the next search, weights for Eq. 6)``.

    With one picked image the query is replaced by that image and the weights stay 1 ("when only a single
    image is chosen, the query image is replaced with the chosen image"); with two or more the query stays
    and the weights come from Eq. 5 (:func:`feedback_weights`).
    """
    q = _signatures(query_signatures, "query_signatures")
    liked = _signatures(liked_signatures, "liked_signatures")
    _same_keys(q, liked)
    if next(iter(liked.values())).shape[0] == 1:
        return {a: t.clone() for a, t in liked.items()}, {a: 1.0 for a in liked}
    return q, feedback_weights(liked, normalize, eps)


# ----------------------------------------------------------------------------------------------------------
# §7: queries, targets and top-k retrieval accuracy
# ----------------------------------------------------------------------------------------------------------
def manipulation_targets(query_labels, attribute_index, new_value, attributes: Sequence | None = None) -> np.ndarray:
    """§7.2: the values a manipulated query demands: the query's labels with column ``attribute_index[i]`` set
    to ``new_value[i]`` (``attribute_index < 0``: no manipulation, the query's own labels = direct retrieval,
    §7.1). ``query_labels``: mapping or ``(Q, A)`` array (see :func:`topk_retrieval_accuracy`). Returns
    ``(Q, A)`` int64."""
    t, _ = _labels(query_labels, attributes, "query_labels")
    t = t.copy()
    a = np.broadcast_to(np.asarray(attribute_index, dtype=np.int64), (t.shape[0],))
    v = np.broadcast_to(np.asarray(new_value, dtype=np.int64), (t.shape[0],))
    if np.any(a >= t.shape[1]):
        raise ValueError(f"attribute_index must be < {t.shape[1]} (number of attributes)")
    rows = np.flatnonzero(a >= 0)
    t[rows, a[rows]] = v[rows]
    return t


def random_manipulations(query_labels, gallery_labels, attributes: Sequence | None = None, rng=None,
                         require_target: bool = True,
                         manipulable: Mapping | Sequence | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """§7 search strategy: "for each query image, a random special attribute is manipulated".

    For each query: an attribute chosen uniformly among those with a possible change, then a new value
    uniformly among the values of that attribute seen in the (valid) gallery and different from the query's.
    With ``require_target`` only changes whose demanded label combination exists in the gallery are
    possible (every query can then score; the ADDE-M protocol, docs/protocols.md §4.6, enumerates only
    such changes). Returns ``(attribute_index (Q,), new_value (Q,), targets (Q, A))``; a query with a
    missing label or no possible change gets index -1, value -1 and a target row of -1 (left out by
    :func:`topk_retrieval_accuracy`). ``manipulable``: the column indices that may change (§7: the special
    attributes; default every column), or ``{column: allowed new values or None}``; the other columns are still
    compared (they must keep the query's value).
    """
    q, attrs = _labels(query_labels, attributes, "query_labels")
    if manipulable is None:
        allowed = {j: None for j in range(len(attrs))}
    elif isinstance(manipulable, Mapping):
        allowed = {int(j): (None if v is None else {int(x) for x in v}) for j, v in manipulable.items()}
    else:
        allowed = {int(j): None for j in manipulable}
    bad = [j for j in allowed if not 0 <= j < len(attrs)]
    if bad:
        raise ValueError(f"manipulable columns {bad} out of range 0..{len(attrs) - 1}")
    g, _ = _labels(gallery_labels, attrs, "gallery_labels")
    rng = np.random.default_rng(rng)
    g = g[(g >= 0).all(1)]
    seen = [np.unique(g[:, j]) for j in range(g.shape[1])]
    existing = set(map(tuple, g.tolist()))
    idx = np.full(len(q), -1, dtype=np.int64)
    val = np.full(len(q), -1, dtype=np.int64)
    for i, row in enumerate(q):
        if (row < 0).any():
            continue
        options = {}
        for j, ok in allowed.items():
            vs = [int(v) for v in seen[j] if v != row[j] and (ok is None or int(v) in ok)]
            if require_target:
                vs = [v for v in vs if tuple(row[:j]) + (v,) + tuple(row[j + 1:]) in existing]
            if vs:
                options[j] = vs
        if options:
            j = list(options)[rng.integers(len(options))]
            idx[i], val[i] = j, options[j][rng.integers(len(options[j]))]
    targets = manipulation_targets(q, idx, val)
    targets[idx < 0] = -1
    return idx, val, targets


def topk_retrieval_accuracy(distances, target_labels, gallery_labels, ks: Sequence[int] = (1, 5, 10, 20, 30),
                            attributes: Sequence | None = None, groups=None,
                            skip_unanswerable: bool = True) -> dict[Any, dict]:
    """§7 top-k retrieval accuracy (Fig. 6, Table 2): a query is a hit at k when at least one of its k
    nearest gallery items (ascending ``distances``, ties by gallery order) has *exactly* the demanded value of
    every compared attribute.

    ``distances``: ``(Q, N)`` (e.g. :func:`signature_distance` after :func:`manipulate`). ``target_labels``:
    the demanded values, ``(Q, A)`` array or ``{attribute: (Q,)}`` mapping - the query's own labels for direct
    retrieval (§7.1), :func:`manipulation_targets` after manipulation (§7.2). ``gallery_labels``: the same
    layout with N rows. ``attributes``: the compared attributes (the special ones; default all).
    ``groups``: optional ``(Q,)`` label per query (e.g. the manipulated attribute's index, for Table 2); group
    -1 is only counted in ``"overall"``.

    Left out, following §7: queries with a missing (< 0) demanded value; gallery items with a missing label
    (ranked after every valid item, never a hit); with ``skip_unanswerable``, queries whose demanded
    combination no gallery item has. Returns ``{"overall": {k: accuracy}, group: {k: accuracy}, ...,
    "counts": {"overall": scored queries, group: ..., "skipped": left out}}`` (fractions; NaN if nothing
    is scored).
    """
    d = distances.detach() if isinstance(distances, torch.Tensor) else torch.as_tensor(np.asarray(distances))
    if d.dim() != 2:
        raise ValueError(f"distances must be (Q, N), got shape {tuple(d.shape)}")
    t, attrs = _labels(target_labels, attributes, "target_labels")
    g, _ = _labels(gallery_labels, attrs, "gallery_labels")
    Q, N = d.shape
    if t.shape[0] != Q or g.shape[0] != N:
        raise ValueError(f"distances are {Q}x{N} but there are {t.shape[0]} targets and {g.shape[0]} gallery items")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive, got {ks}")
    grp = None if groups is None else np.asarray(groups).ravel()
    if grp is not None and grp.size != Q:
        raise ValueError(f"{grp.size} groups for {Q} queries")

    g_valid = (g >= 0).all(1)
    keep = (t >= 0).all(1)
    if skip_unanswerable:
        rows, inverse = np.unique(np.concatenate([t, g[g_valid]]), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        keep &= np.isin(inverse[:Q], inverse[Q:])
    d = d.to(torch.float64).clone()
    d[:, torch.from_numpy(~g_valid)] = float("inf")              # invalid gallery items go last
    kmax = min(max(ks), N)
    order = torch.sort(d, dim=1, stable=True).indices[:, :kmax].cpu().numpy()
    match = (g[order] == t[:, None, :]).all(2)                    # (Q, kmax): exact match of every attribute
    first = np.where(match.any(1), match.argmax(1) + 1, np.iinfo(np.int64).max)

    def acc(sel: np.ndarray) -> dict[int, float]:
        n = int(sel.sum())
        return {k: (float((first[sel] <= k).mean()) if n else float("nan")) for k in ks}

    out: dict[Any, dict] = {"overall": acc(keep)}
    counts: dict[Any, int] = {"overall": int(keep.sum()), "skipped": int(Q - keep.sum())}
    if grp is not None:
        for gv in sorted(set(grp.tolist()) - {-1}):
            sel = keep & (grp == gv)
            out[gv] = acc(sel)
            counts[gv] = int(sel.sum())
    out["counts"] = counts
    return out


# ----------------------------------------------------------------------------------------------------------
# §7.6: feature extraction rate
# ----------------------------------------------------------------------------------------------------------
def extraction_rate(fn: Callable[[Any], Any], images, batch: int = 64, warmup: int = 1) -> float:
    """§7.6 run-time: images per second of ``fn`` (e.g. a model's signature extraction, or part extraction)
    over ``images`` in batches of ``batch`` (``fn`` gets ``images[i:i + batch]``; the paper reports 7,500
    images per minute, i.e. 125/s, for its network). ``warmup`` batches run first, untimed; the timed pass
    runs under ``torch.no_grad()`` and waits for CUDA if it is in use. Measures, asserts nothing.
    """
    n = len(images)
    if n == 0:
        raise ValueError("no images to time")
    if batch < 1 or warmup < 0:
        raise ValueError(f"batch must be >= 1 and warmup >= 0, got {batch}, {warmup}")

    def sync():
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    with torch.no_grad():
        for i in range(min(warmup, -(-n // batch))):
            fn(images[i * batch:(i + 1) * batch])
        sync()
        start = time.perf_counter()
        for i in range(0, n, batch):
            fn(images[i:i + batch])
        sync()
        elapsed = time.perf_counter() - start
    return n / max(elapsed, 1e-12)
