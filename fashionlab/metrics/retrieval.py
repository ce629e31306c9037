"""Retrieval metrics: attribute-specific mAP and recall@k (ASEN protocol, docs/protocols.md §4.1; paper 03,
ASEN), triplet accuracy (CSN protocol, docs/protocols.md §4.2) and multi-label ranking metrics (paper 05, M3-Net,
sections 4.2-4.3: MAP@all, MAP@k, Recall@k). The design notes' view of evaluation: ``docs/architecture.md``,
section "Evaluation".

Attribute-specific retrieval (ASEN protocol, docs/protocols.md §4.1)
    :func:`attribute_map` is the shared yardstick. For every attribute ``a``, each query with attribute ``a``
    ranks *every* candidate with attribute ``a`` by dot product (the embeddings are used as given: no
    normalisation happens here). A candidate is relevant iff its value equals the query's value. Per query

    .. math::  \\mathrm{AP} = \\frac{1}{R} \\sum_{i:\\,rel_i = 1} \\frac{\\mathrm{hits}(i)}{i}

    over the whole ranked list (``R`` = number of relevant candidates, ``hits(i)`` = relevant items in ranks
    ``1..i``); ``AP = 0`` when ``R = 0`` and that query still counts. ``mAP(a)`` is the mean AP over a's
    queries and ``overall = sum_a |Q_a| mAP(a) / sum_a |Q_a|`` is the *query-weighted* mean (ASEN's
    AverageMeter), not the mean of the attribute means. Ties in score are broken by candidate order: the
    earlier candidate (lower index in the candidate list) ranks first, i.e. a *stable* descending sort. (The
    ASEN code does not define ties: v1 uses an unstable quicksort, v2/++ reverses an ascending argsort.
    Continuous embeddings have no ties, so this only matters for quantised or degenerate embeddings.)

    Three implementations of that one definition:

    * :func:`attribute_map_reference` / :func:`attribute_ap_reference`: a per-query Python loop that follows
      the protocol text line by line (numpy argsort, a 0/1 list, a scan). Slow; for teaching and as an oracle.
    * :func:`attribute_map` / :func:`attribute_retrieval_stats`: vectorised torch on the embeddings' device,
      queries processed in chunks so memory stays bounded. Per chunk: one matmul, one sort per row that carries
      the relevance flag along, then the ranks of the relevant items (``nonzero``) give AP and the first hit.
    * :func:`average_precision`: AP of a single ranking (notebook 00 derives it by hand).

    Sorting backends (``sort=`` argument; all give the same ranking):

    * ``"torch"``: ``torch.sort(descending=True, stable=True)`` + gather. Any device; the GPU path.
    * ``"packed"`` (CPU only): each score (as a monotone 64-bit integer image of the float64 value), the
      candidate index and the relevance bit are packed into one ``int64`` and the keys are sorted by numpy's
      SIMD sort, several times faster than ``torch.sort`` on a CPU. The key keeps only the top ``64 - b`` bits
      of the score (``b`` = index bits + 1). Two *different* float64 scores that agree in those bits would be
      ordered by index; this is detected and that chunk is redone with ``"torch"`` (float32 scores never
      collide).
    * ``"auto"`` (default): packed on CPU, torch elsewhere.

    NaN scores are not supported (their rank is undefined). float16/bfloat16 embeddings are upcast to float32.

Other retrieval metrics
    :func:`recall_at_k` (hit rate in the top k of the same-attribute candidates; paper 01 reports it averaged
    over attribute dimensions), :func:`triplet_accuracy` (CSN, docs/protocols.md §4.2).

Multi-label retrieval from a score matrix (paper 05, M3-Net, sections 4.2-4.3: MAP@all, MAP@100, Recall@100)
    :func:`multilabel_relevance` turns 0/1 class indicators of one attribute group into a (Q, C) relevance
    matrix ("any" shared class, or "all" of the query's classes); :func:`ranking_stats` ranks every candidate
    per query (stable descending sort, as above) and returns per-query AP over the whole list, AP@k (normalised
    by ``min(R, k)``) and Recall@k (relevant in the top k / R); :func:`retrieval_summary` gives the
    query-weighted percentages, overall and per attribute; :func:`ranking_stats_reference` is the teaching loop.

Differences with the library metrics used as test oracles (see ``tests/test_metrics.py``):

* scikit-learn ``average_precision_score``: same value when scores have no ties. Tied scores form one
  threshold (all tied items enter together), so with ties it differs from a stable ranking. With no positive
  it warns ("No positive class found") and returns 0 (1.9; older versions returned nan); ASEN: 0 as well.
* torchmetrics ``retrieval_average_precision`` / ``RetrievalMAP`` (1.9, since Lightning-AI/torchmetrics#3104):
  treats items with score ``<= 0`` as not retrieved (their relevance is zeroed), so scores must be shifted
  positive to compare; ranks with
  ``topk`` (tie order unspecified); computes the ratios in float32; ``empty_target_action="neg"`` gives
  AP = 0 for queries without a relevant item, like ASEN.
  With ``top_k=k`` (1.9) it averages the precisions at the relevant items of the top k over the number of
  *relevant items found in the top k*, not over ``min(R, k)`` like :func:`ranking_stats`' ``ap_at_k`` nor
  over ``R``; ``retrieval_recall(top_k=k)`` is relevant-in-top-k / R, the same as ``recall_at_k`` there
  (it ranks with ``argsort``, tie order unspecified).
* pytorch-metric-learning ``AccuracyCalculator``: ``mean_average_precision`` is the same formula over the
  ``k`` nearest neighbours, divided by the number of relevant references ``R`` (so with ``k`` = the whole
  gallery it equals ASEN's AP), but queries without any relevant reference ("lone" queries) are *dropped*
  instead of counted as 0; it casts to float32 and uses ``topk`` (tie order unspecified); it excludes
  self-matches when the reference set is the query set (ASEN's queries and candidates are disjoint images,
  so there is nothing to exclude here). ``precision_at_1`` over non-lone queries times their share equals
  our recall@1.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from ._common import _check_k, _float_tensor, _indicator_tensor, _label_tensor, _tensor, _to_numpy

__all__ = [
    "attribute_map",
    "attribute_retrieval_stats",
    "attribute_map_reference",
    "attribute_ap_reference",
    "average_precision",
    "recall_at_k",
    "triplet_accuracy",
    "multilabel_relevance",
    "ranking_stats",
    "retrieval_summary",
    "ranking_stats_reference",
]

# Default queries per chunk: one chunk's score matrix holds about this many entries. CPU: 1 MiB per float64
# buffer (about 3.5 MiB of working memory in all), large enough to amortise the per-chunk Python overhead.
# GPU: about 0.4 GiB in all (scores, sorted values, int64 sort indices, masks) for float64.
_CPU_CHUNK_ELEMENTS = 1 << 17
_GPU_CHUNK_ELEMENTS = 1 << 24


def _prepare(q_emb, q_attr, q_val, c_emb, c_attr, c_val):
    """Embeddings in their common float dtype on one device, and the four label vectors as long tensors there."""
    q = _float_tensor(q_emb, "q_emb")
    c = _float_tensor(c_emb, "c_emb")
    if q.device != c.device:
        raise ValueError(f"q_emb is on {q.device} but c_emb is on {c.device}")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"embedding sizes differ: {q.shape[1]} (queries) vs {c.shape[1]} (candidates)")
    dtype = torch.promote_types(q.dtype, c.dtype)
    q, c = q.to(dtype), c.to(dtype)
    dev = q.device
    return (q, _label_tensor(q_attr, len(q), dev, "q_attr"), _label_tensor(q_val, len(q), dev, "q_val"),
            c, _label_tensor(c_attr, len(c), dev, "c_attr"), _label_tensor(c_val, len(c), dev, "c_val"))


# ----------------------------------------------------------------------------------------------------------
# per-chunk kernels: scores (m, N) of m queries against the N candidates of one attribute
#   -> AP, first-hit rank and R per query
# Both kernels find the flat indices ``row * N + rank`` (0-based rank, row-major, ranks ascending) of the
# relevant items in the ranked lists. Row r owns the R_r entries starting at start_r = R_0 + ... + R_{r-1};
# the j-th of them (j = 1..R_r) is the j-th hit, at rank pos + 1, so (docs/protocols.md §4.1, step 4)
#     AP_r = (1/R_r) * sum_j  j / rank_j          and the first hit is at rank_1.
# ----------------------------------------------------------------------------------------------------------
def _relevant_flat_torch(scores: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """Flat indices of the relevant items after a stable descending sort (ties: earlier candidate first)."""
    scores = scores + 0.0  # -0.0 -> +0.0, so that radix sorts (CUDA) treat both zeros as equal
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rel_sorted = torch.gather(rel, 1, order)
    return torch.nonzero(rel_sorted.flatten()).flatten()


def _ap_from_flat_torch(flat: torch.Tensor, n_rel: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    m = n_rel.numel()
    dev = flat.device
    rows = torch.repeat_interleave(torch.arange(m, device=dev), n_rel, output_size=flat.numel())
    pos = flat - rows * n  # 0-based rank within the row
    start = torch.cumsum(n_rel, 0) - n_rel
    hits = torch.arange(1, flat.numel() + 1, device=dev) - start[rows]  # hits so far: 1..R in each row
    precision = hits.to(torch.float64) / (pos + 1).to(torch.float64)  # precision at each hit
    ap_sum = torch.zeros(m, dtype=torch.float64, device=dev).index_add_(0, rows, precision)
    ap = ap_sum / n_rel.clamp(min=1)  # rows without a relevant item: 0 / 1 = 0
    has = n_rel > 0
    first = torch.zeros_like(n_rel)
    first[has] = pos[start[has]] + 1
    return ap, first


def _chunk_torch(scores: torch.Tensor, q_values: torch.Tensor, c_values: torch.Tensor):
    """Any device: ``torch.sort(stable=True)`` + gather + nonzero."""
    rel = q_values[:, None] == c_values[None, :]
    n_rel = rel.sum(1)
    ap, first = _ap_from_flat_torch(_relevant_flat_torch(scores, rel), n_rel, scores.shape[1])
    return ap, first, n_rel


_ALL_BUT_SIGN = np.int64(0x7FFF_FFFF_FFFF_FFFF)


class _PackedWorkspace:
    """Buffers for :func:`_relevant_flat_packed`, reused across the chunks of one attribute.

    Fresh multi-MiB numpy arrays per chunk would cost page faults that take longer than the arithmetic.
    """

    def __init__(self, m: int, n: int):
        self.key = np.empty((m, n), dtype=np.int64)
        self.tmp = np.empty((m, n), dtype=np.int64)
        self.rel = np.empty((m, n), dtype=bool)
        self.low = np.empty((m, n), dtype=np.uint8)
        self.index_bits = np.arange(n, dtype=np.int64) << 1


def _relevant_flat_packed(scores: np.ndarray, rel: np.ndarray, ws: _PackedWorkspace | None = None):
    """Same result as :func:`_relevant_flat_torch` on a CPU, via one int64 key per entry (``None``: use torch).

    key = [top 64-b bits of a monotone integer image of -score] [b-1 bits: candidate index] [1 bit: relevant].
    Sorting the keys ascending orders by score descending, then by candidate index (the stable tie-break), and
    the relevance bit travels along: no argsort and no gather, and numpy sorts int64 values with SIMD code.
    """
    m, n = scores.shape
    ws = ws or _PackedWorkspace(m, n)
    key, tmp, low = ws.key[:m], ws.tmp[:m], ws.low[:m]
    b = max(1, (n - 1).bit_length()) + 1  # index bits + relevance bit
    low_mask = np.int64((1 << b) - 1)
    # 0 - x: descending -> ascending and -0.0 -> +0.0 (equal floats must give equal keys); float32 -> float64
    # is exact
    np.subtract(0.0, scores, out=key.view(np.float64), dtype=np.float64)
    # IEEE-754 bits read as int64 grow with the value for x >= 0 and shrink for x < 0; flipping the non-sign
    # bits of the negative ones gives a signed integer that grows with the float everywhere.
    np.right_shift(key, 63, out=tmp)
    tmp &= _ALL_BUT_SIGN
    key ^= tmp
    key &= ~low_mask
    key |= ws.index_bits
    key |= rel
    key.sort(axis=1)

    # Exactness check: within a run of equal truncated keys the order is by index. That is right for true
    # ties, wrong if the scores differ below the kept bits (possible for float64, never for float32 scores,
    # whose float64 images end in 29 zero bits). In that rare case the caller uses torch.sort instead.
    if scores.dtype == np.float64 and n > 1:
        xor = np.bitwise_xor(key[:, 1:], key[:, :-1], out=tmp[:, 1:]).view(np.uint64)
        if xor.min() <= np.uint64(low_mask):  # some neighbours share the truncated score
            r_idx, p_idx = np.nonzero(xor <= np.uint64(low_mask))
            left = (key[r_idx, p_idx] & low_mask) >> 1  # candidate indices of the two neighbours
            right = (key[r_idx, p_idx + 1] & low_mask) >> 1
            if np.any(scores[r_idx, left] != scores[r_idx, right]):
                return None
    if np.little_endian:  # the relevance bit is bit 0 of each key's first byte
        np.bitwise_and(key.view(np.uint8)[:, ::8], 1, out=low)
    else:
        np.bitwise_and(key, 1, out=low, casting="unsafe")
    return np.flatnonzero(low.view(bool))


def _ap_from_flat_numpy(flat: np.ndarray, n_rel: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of :func:`_ap_from_flat_torch` (single-threaded, so it does not stall on a busy CPU)."""
    m = n_rel.size
    start = np.cumsum(n_rel) - n_rel
    rank = flat + 1 - np.repeat(np.arange(m) * n, n_rel)  # 1-based rank of each hit
    hits = np.arange(1, flat.size + 1) - np.repeat(start, n_rel)  # hits so far: 1..R in each row
    precision = hits / rank
    has = n_rel > 0
    ap = np.zeros(m)
    first = np.zeros(m, dtype=np.int64)
    if has.any():
        ap[has] = np.add.reduceat(precision, start[has]) / n_rel[has]  # per-row sums of the precisions
        first[has] = rank[start[has]]
    return ap, first


def _chunk_packed(scores: torch.Tensor, q_values: np.ndarray, c_values: np.ndarray,
                  ws: _PackedWorkspace | None = None):
    """CPU: packed int64 keys + numpy SIMD sort (numpy in and out); falls back to :func:`_chunk_torch` on a
    float64 near-tie."""
    m, n = scores.shape
    ws = ws or _PackedWorkspace(m, n)
    rel = np.equal(q_values[:, None], c_values[None, :], out=ws.rel[:m])
    flat = _relevant_flat_packed(scores.numpy(), rel, ws)
    if flat is None:
        return [t.numpy() for t in _chunk_torch(scores, torch.from_numpy(q_values), torch.from_numpy(c_values))]
    n_rel = np.diff(np.searchsorted(flat, np.arange(m + 1) * n))  # R per row (flat is sorted)
    ap, first = _ap_from_flat_numpy(flat, n_rel, n)
    return ap, first, n_rel

# ----------------------------------------------------------------------------------------------------------
# vectorised attribute-specific retrieval
# ----------------------------------------------------------------------------------------------------------
def attribute_retrieval_stats(q_emb, q_attr, q_val, c_emb, c_attr, c_val, chunk_size: int | None = None,
                              sort: str = "auto") -> dict[str, torch.Tensor]:
    """Per-query ranking statistics of the ASEN protocol (docs/protocols.md §4.1), vectorised.

    Each query with attribute ``a`` ranks every candidate with attribute ``a`` by dot product (stable
    descending: ties go to the earlier candidate). Returns tensors in query order, on the embeddings' device:

    * ``"ap"`` (float64): average precision over the whole list; 0 when no candidate is relevant;
    * ``"first_hit"`` (int64): 1-based rank of the first relevant candidate, 0 when there is none;
    * ``"n_relevant"`` (int64): R, candidates with the same attribute and value;
    * ``"n_candidates"`` (int64): candidates with the same attribute (the list length).

    ``q_emb``/``c_emb``: (n, d) numpy arrays or tensors (numpy -> CPU tensors; the common float dtype is used,
    integer inputs become float64, half precision float32; no gradients). Labels: 1-D integer arrays or
    tensors. ``chunk_size`` = queries per chunk (default: a chunk's score matrix holds about 2**17 entries on
    CPU, 2**24 on GPU). ``sort``: ``"auto"`` (packed on CPU, torch elsewhere), ``"torch"`` or ``"packed"``
    (CPU only); all give identical rankings.
    """
    q, qa, qv, c, ca, cv = _prepare(q_emb, q_attr, q_val, c_emb, c_attr, c_val)
    _warn_no_candidates(len(q), len(c))
    dev = q.device
    if sort == "auto":
        sort = "packed" if dev.type == "cpu" else "torch"
    if sort not in ("torch", "packed"):
        raise ValueError(f"sort must be 'auto', 'torch' or 'packed', got {sort!r}")
    if sort == "packed" and dev.type != "cpu":
        raise ValueError("sort='packed' is CPU-only; use 'torch' or 'auto' for tensors on other devices")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    nq = len(q)
    out = {
        "ap": torch.zeros(nq, dtype=torch.float64, device=dev),
        "first_hit": torch.zeros(nq, dtype=torch.long, device=dev),
        "n_relevant": torch.zeros(nq, dtype=torch.long, device=dev),
        "n_candidates": torch.zeros(nq, dtype=torch.long, device=dev),
    }
    budget = _CPU_CHUNK_ELEMENTS if dev.type == "cpu" else _GPU_CHUNK_ELEMENTS
    for a in torch.unique(qa).tolist():
        q_idx = torch.nonzero(qa == a).flatten()
        c_idx = torch.nonzero(ca == a).flatten()  # ascending: candidate order is kept for the tie-break
        n = c_idx.numel()
        out["n_candidates"][q_idx] = n
        if n == 0:
            continue  # no candidate: every query of a has AP 0 and no hit
        q_a = q[q_idx]  # queries of attribute a, contiguous: chunks are row slices
        ct = c[c_idx].T.contiguous()
        step = min(chunk_size or max(1, budget // n), q_a.shape[0])
        scores_buf = torch.empty((step, n), dtype=q.dtype, device=dev)  # reused by every chunk
        results = [out["ap"][q_idx], out["first_hit"][q_idx], out["n_relevant"][q_idx]]  # per-attribute copies
        if sort == "packed":
            ws = _PackedWorkspace(step, n)
            qv_a, cv_a = qv[q_idx].numpy(), cv[c_idx].numpy()
            sinks = [r.numpy() for r in results]  # write through numpy views: cheaper per chunk on a CPU
        else:
            qv_a, cv_a = qv[q_idx], cv[c_idx]
            sinks = results
        for start in range(0, q_a.shape[0], step):
            end = min(start + step, q_a.shape[0])
            scores = torch.matmul(q_a[start:end], ct, out=scores_buf[:end - start])  # (m, n): one matmul
            if sort == "packed":
                chunk = _chunk_packed(scores, qv_a[start:end], cv_a, ws)
            else:
                chunk = _chunk_torch(scores, qv_a[start:end], cv_a)
            for sink, values in zip(sinks, chunk):
                sink[start:end] = values
        out["ap"][q_idx], out["first_hit"][q_idx], out["n_relevant"][q_idx] = results
    return out


_NO_QUERY = ("no queries: the mean over an empty query set is undefined (docs/protocols.md §4.1); expected at least "
             "one query (an empty query_<split>.txt?)")


def _warn_no_candidates(n_queries: int, n_candidates: int) -> None:
    if n_queries and not n_candidates:
        import warnings

        warnings.warn(f"no candidates: each of the {n_queries} queries scores AP 0 and no hit (docs/protocols.md "
                      f"§4.1); expected a non-empty candidate set (an empty candidate_<split>.txt?)", RuntimeWarning,
                      stacklevel=3)


def _aggregate(values: torch.Tensor, q_attr: torch.Tensor) -> tuple[dict, dict]:
    """Query-weighted overall mean + per-attribute means (int keys) and the query counts. No query: ValueError."""
    if not values.numel():
        raise ValueError(_NO_QUERY)
    means: dict[Any, float] = {"overall": float(values.mean())}
    counts: dict[Any, int] = {"overall": int(values.numel())}
    for a in torch.unique(q_attr).tolist():
        sel = q_attr == a
        means[int(a)] = float(values[sel].mean())
        counts[int(a)] = int(sel.sum())
    return means, counts


def attribute_map(q_emb, q_attr, q_val, c_emb, c_attr, c_val, chunk_size: int | None = None,
                  sort: str = "auto", return_counts: bool = False):
    """Attribute-specific mAP, ASEN protocol (docs/protocols.md §4.1; paper 03, ASEN), vectorised.

    Returns ``{"overall": float, a: float, ...}`` with fractions in [0, 1] (multiply by 100 for the papers'
    tables): ``a`` (int) for every attribute that has a query, ``mAP(a)`` = mean AP over its queries (AP = 0
    for a query with no relevant candidate; it still counts) and ``"overall"`` = mean AP over *all* queries,
    i.e. ``sum_a |Q_a| mAP(a) / sum_a |Q_a|``. No query at all is a ``ValueError`` (the mean is undefined); no
    candidate at all a ``RuntimeWarning`` (every AP is 0). Dot-product ranking, embeddings used as given; ties broken by
    candidate order (earlier first). Runs on the embeddings' device in chunks of ``chunk_size`` queries;
    ``sort`` picks the sorting backend (see the module docstring; all give the same values).

    With ``return_counts=True`` returns ``(maps, counts)`` where ``counts`` has the same keys and holds the
    number of queries (``counts["overall"]`` = all queries). Per-query values: :func:`attribute_retrieval_stats`.
    """
    stats = attribute_retrieval_stats(q_emb, q_attr, q_val, c_emb, c_attr, c_val, chunk_size=chunk_size, sort=sort)
    q_attr_t = _label_tensor(q_attr, stats["ap"].numel(), stats["ap"].device, "q_attr")
    maps, counts = _aggregate(stats["ap"], q_attr_t)
    return (maps, counts) if return_counts else maps


# ----------------------------------------------------------------------------------------------------------
# teaching reference (per-query loop, the protocol text line by line)
# ----------------------------------------------------------------------------------------------------------
def _ap_of_relevance_list(rel: Sequence[int]) -> float:
    """Steps 3-4 of docs/protocols.md §4.1: scan a 0/1 list in rank order; AP = (1/R) sum over hits of
    hits_so_far / rank."""
    n_relevant = sum(rel)
    if n_relevant == 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, r in enumerate(rel, start=1):
        if r == 1:
            hits += 1
            total += hits / rank
    return total / n_relevant


def attribute_ap_reference(q_emb, q_attr, q_val, c_emb, c_attr, c_val) -> np.ndarray:
    """Per-query AP (query order) by the plain loop of docs/protocols.md §4.1 (teaching oracle)."""
    q_emb, c_emb = _to_numpy(q_emb), _to_numpy(c_emb)
    q_attr, q_val = _to_numpy(q_attr).ravel(), _to_numpy(q_val).ravel()
    c_attr, c_val = _to_numpy(c_attr).ravel(), _to_numpy(c_val).ravel()
    aps = np.zeros(len(q_emb), dtype=np.float64)
    for a in sorted(set(q_attr.tolist())):
        q_rows = np.flatnonzero(q_attr == a)   # Q = queries with attribute a
        c_rows = np.flatnonzero(c_attr == a)   # C = candidates with attribute a (in list order)
        c_values = c_val[c_rows]
        sim = q_emb[q_rows] @ c_emb[c_rows].T  # one matmul per attribute: S = Q C^T
        for i, row in enumerate(q_rows):       # Python loop over the queries
            # 1. rank by descending similarity; the stable sort puts the earlier candidate first on a tie
            order = np.argsort(-sim[i], kind="stable")
            # 2. the 0/1 list, one entry per candidate in rank order
            rel = [1 if c_values[j] == q_val[row] else 0 for j in order]
            # 3.-4. AP over the whole list (0 when nothing is relevant)
            aps[row] = _ap_of_relevance_list(rel)
    return aps


def attribute_map_reference(q_emb, q_attr, q_val, c_emb, c_attr, c_val, return_counts: bool = False):
    """Attribute-specific mAP by a plain per-query loop (docs/protocols.md §4.1), for teaching.

    Same contract as :func:`attribute_map` (fractions; int attribute keys; ``"overall"`` query-weighted:
    ``sum_a |Q_a| mAP(a) / sum_a |Q_a|``, like ASEN's AverageMeter), numpy + Python, slow.
    """
    aps = attribute_ap_reference(q_emb, q_attr, q_val, c_emb, c_attr, c_val)
    q_attr = _to_numpy(q_attr).ravel()
    maps: dict[Any, float] = {}
    counts: dict[Any, int] = {}
    weighted_sum, total = 0.0, 0
    for a in sorted(set(q_attr.tolist())):
        ap_a = aps[q_attr == a]
        maps[int(a)] = float(np.mean(ap_a))                 # mAP(a)
        counts[int(a)] = len(ap_a)
        weighted_sum += len(ap_a) * maps[int(a)]            # AverageMeter.update(mAP(a), n=|Q_a|)
        total += len(ap_a)
    if not total:
        raise ValueError(_NO_QUERY)
    maps = {"overall": weighted_sum / total, **maps}
    counts = {"overall": total, **counts}
    return (maps, counts) if return_counts else maps


def average_precision(scores, relevant) -> float:
    """AP of one ranking (docs/protocols.md §4.1, steps 1-4): sort by descending score (ties: earlier item first), then
    ``AP = (1/R) sum_{i: rel_i=1} hits(i)/i`` over the whole list; 0 when nothing is relevant.

    >>> average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])   # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    s = _to_numpy(scores).astype(np.float64).ravel()
    r = _to_numpy(relevant).ravel()
    if s.shape != r.shape:
        raise ValueError(f"scores and relevant differ in length: {s.size} vs {r.size}")
    order = np.argsort(-s, kind="stable")
    return _ap_of_relevance_list([1 if r[j] else 0 for j in order])

def expected_random_ap(n_relevant, n_candidates):
    """Expected AP of a uniformly random ranking of ``n_candidates`` items of which ``n_relevant`` are relevant,
    under the AP of docs/protocols.md §4.1 (the ASEN protocol; 0 when nothing is relevant):

    ``E[AP] = (1/N) sum_{k=1..N} (1 + (k-1)(R-1)/(N-1)) / k = (H_N + (R-1)/(N-1) (N - H_N)) / N``,
    ``H_N = sum_{k=1..N} 1/k``.

    A relevant item sits at rank k with probability 1/N; each of the k-1 items above it is relevant with
    probability (R-1)/(N-1). For large N this tends to R/N, the share of relevant candidates; the H_N/N term
    is what a small gallery adds. It predicts the "Random baseline" rows of the ASEN tables from the split
    files alone (notebook 00). Works elementwise on arrays; ``R = 0`` gives 0, ``N = 1`` gives ``R``.

    >>> round(expected_random_ap(1, 2), 4)   # the relevant item first or second: (1 + 1/2) / 2
    0.75
    """
    r = np.asarray(n_relevant, dtype=np.float64)
    n = np.asarray(n_candidates, dtype=np.float64)
    if np.any(n < 1) or np.any(r < 0) or np.any(r > n):
        raise ValueError("expected_random_ap needs 0 <= n_relevant <= n_candidates and n_candidates >= 1")
    h = np.vectorize(lambda m: float(np.sum(1.0 / np.arange(1, int(m) + 1))))(n)
    share = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
    ap = np.where(r > 0, (h + share * (n - h)) / n, 0.0)
    return float(ap) if ap.ndim == 0 else ap


# ----------------------------------------------------------------------------------------------------------
# recall@k, triplet accuracy
# ----------------------------------------------------------------------------------------------------------
def recall_at_k(q_emb, q_attr, q_val, c_emb, c_attr, c_val, ks: Iterable[int] = (5, 10, 20),
                chunk_size: int | None = None, sort: str = "auto") -> dict[int, dict[Any, float]]:
    """Attribute-specific recall@k as a hit rate (the "R@k" of paper 01, averaged over attribute dimensions).

    A query is a hit at k when at least one relevant candidate (same attribute *and* value) is among the top
    k of the candidates with the query's attribute (dot product, ties broken by candidate order; k larger than
    the list = the whole list). A query with no relevant candidate is a miss. Returns, for each k,
    ``{"overall": mean over attributes of the per-attribute hit rates (paper 01's convention),
    "query_weighted": hit rate over all queries, a: hit rate of attribute a (int keys)}``, as fractions.
    Note that ``"overall"`` here is the unweighted mean over attributes, unlike :func:`attribute_map`.
    """
    stats = attribute_retrieval_stats(q_emb, q_attr, q_val, c_emb, c_attr, c_val, chunk_size=chunk_size, sort=sort)
    first = stats["first_hit"]
    q_attr_t = _label_tensor(q_attr, first.numel(), first.device, "q_attr")
    result: dict[int, dict[Any, float]] = {}
    for k in ks:
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        hit = ((first > 0) & (first <= k)).to(torch.float64)
        per_attr, _ = _aggregate(hit, q_attr_t)
        weighted = per_attr.pop("overall")
        result[k] = {"overall": float(np.mean(list(per_attr.values()))) if per_attr else float("nan"),
                     "query_weighted": weighted, **per_attr}
    return result


def triplet_accuracy(anchor_pos, anchor_neg, similarity: bool = True, conditions=None):
    """Triplet accuracy, CSN protocol (docs/protocols.md §4.2).

    ``anchor_pos``/``anchor_neg``: per-triplet similarity (``similarity=True``) or distance (``False``) of the
    anchor to the positive ("close") and to the negative ("far") image. A triplet is correct when the positive
    is strictly closer: ``s_pos > s_neg`` or ``d_pos < d_neg`` (margin 0; a tie is wrong). Returns the fraction
    of correct triplets (= CSN's batch-size-weighted average over batches). With ``conditions`` (one label per
    triplet) returns ``{"overall": fraction, c: fraction for condition c, ...}``.
    """
    p = _tensor(anchor_pos).reshape(-1)
    n = _tensor(anchor_neg).reshape(-1)
    if p.numel() != n.numel():
        raise ValueError(f"anchor_pos and anchor_neg differ in length: {p.numel()} vs {n.numel()}")
    if p.numel() == 0:
        raise ValueError("no triplets")
    n = n.to(p.device)
    correct = (p > n) if similarity else (p < n)
    correct = correct.to(torch.float64)
    if conditions is None:
        return float(correct.mean())
    cond = _label_tensor(conditions, correct.numel(), correct.device, "conditions")
    result, _ = _aggregate(correct, cond)
    return result


# ----------------------------------------------------------------------------------------------------------
# multi-label retrieval from a score matrix: MAP@all, MAP@k, Recall@k (paper 05, M3-Net, sections 4.2-4.3)
# ----------------------------------------------------------------------------------------------------------
_RELEVANCE_MODES = ("any", "all")


def multilabel_relevance(q_labels, c_labels, mode: str = "any") -> torch.Tensor:
    """Relevance matrix of multi-label retrieval within one attribute group (paper 05, M3-Net, section 4.3).

    ``q_labels`` (Q, M) and ``c_labels`` (C, M): 0/1 (or bool) indicators of the M classes of one attribute
    group (e.g. DeepFashion "texture": an image can be both "print" and "tribal"). Returns a (Q, C) bool
    tensor on their device:

    * ``mode="any"``: candidate ``j`` is relevant to query ``i`` iff they share at least one class,
      ``sum_m q[i, m] c[j, m] >= 1`` (the usual multi-label retrieval relevance);
    * ``mode="all"``: iff the candidate has every class of the query, ``sum_m q[i, m] c[j, m] = sum_m q[i, m]``
      (paper 05, Fig. 4: a "print" + "tribal" query should retrieve images that are both; extra classes of the
      candidate are allowed).

    A query without any class is relevant to nothing in both modes (in ``"all"`` it would otherwise be
    vacuously relevant to everything). The shared-class counts are float32 matmuls of 0/1 values: exact
    (integers far below 2**24, also with TF32, whose inputs 0 and 1 are exact and which accumulates in
    float32), computed for a few queries at a time so the temporary stays small next to the (Q, C) result.
    """
    q = _indicator_tensor(q_labels, "q_labels")
    c = _indicator_tensor(c_labels, "c_labels")
    if mode not in _RELEVANCE_MODES:
        raise ValueError(f"mode must be 'any' or 'all', got {mode!r}")
    if q.device != c.device:
        raise ValueError(f"q_labels is on {q.device} but c_labels is on {c.device}")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"numbers of classes differ: {q.shape[1]} (queries) vs {c.shape[1]} (candidates)")
    nq, nc = q.shape[0], c.shape[0]
    dev = q.device
    out = torch.zeros((nq, nc), dtype=torch.bool, device=dev)
    if nq == 0 or nc == 0 or q.shape[1] == 0:
        return out
    qf = q.to(torch.float32)
    ct = c.to(torch.float32).T.contiguous()
    n_classes = q.sum(1)  # classes per query
    budget = _CPU_CHUNK_ELEMENTS if dev.type == "cpu" else _GPU_CHUNK_ELEMENTS
    step = max(1, budget // nc)
    for start in range(0, nq, step):
        end = min(start + step, nq)
        shared = qf[start:end] @ ct  # (m, C): classes shared by query and candidate
        if mode == "any":
            out[start:end] = shared > 0
        else:
            need = n_classes[start:end, None]
            out[start:end] = (shared == need) & (need > 0)
    return out


def _ranking_from_flat(flat: torch.Tensor, n_rel: torch.Tensor, n: int, k: int):
    """AP, AP@k and Recall@k per row from the flat indices ``row * n + rank0`` of the relevant items.

    Row r owns the R_r entries starting at R_0 + ... + R_{r-1}; its j-th entry is its j-th hit (precision j /
    rank). ``flat`` is consumed (overwritten in place).
    """
    m = n_rel.numel()
    dev = flat.device
    rows = torch.repeat_interleave(torch.arange(m, device=dev), n_rel, output_size=flat.numel())
    rank = flat.sub_(rows, alpha=n).add_(1)  # 1-based rank of each relevant item
    start = torch.cumsum(n_rel, 0) - n_rel
    hits = torch.arange(1, flat.numel() + 1, device=dev).sub_(start[rows])  # 1..R within each row
    precision = hits.to(torch.float64).div_(rank)  # precision at each relevant item's rank
    del hits
    in_top = rank <= k
    ap = torch.zeros(m, dtype=torch.float64, device=dev).index_add_(0, rows, precision)
    ap.div_(n_rel.clamp(min=1))  # R = 0: 0 / 1 = 0
    ap_k = torch.zeros(m, dtype=torch.float64, device=dev).index_add_(0, rows, precision.mul_(in_top))
    ap_k.div_(n_rel.clamp(min=1, max=k))  # min(R, k); R = 0: 0 / 1 = 0
    hits_k = torch.zeros(m, dtype=torch.float64, device=dev).index_add_(0, rows, in_top.to(torch.float64))
    recall_k = hits_k.div_(n_rel.clamp(min=1))
    return ap, ap_k, recall_k


def ranking_stats(scores, relevant, k: int = 100, chunk_size: int | None = None) -> dict[str, Any]:
    """Per-query MAP@all, MAP@k and Recall@k ingredients of paper 05 (M3-Net), vectorised.

    Paper 05, section 4.2: "Same as existing works [6, 14, 19] [ASEN++, MODC, ASEN], we employ Mean Average
    Precision (MAP) and Recall as the evaluation metrics"; its tables (section 4.3) report "MAP@all, MAP@100,
    Recall@100" on DeepFashion (multi-label attributes), FashionAI and DARN. The paper gives no formulas; we
    follow the ASEN protocol (docs/protocols.md §4.1) and make the @k variants explicit.

    ``scores`` (Q, C): similarity of each query to each candidate (higher = more similar; numpy or tensor;
    integer scores become float64, half precision float32; NaN raises). ``relevant`` (Q, C): bool or 0/1
    (e.g. from :func:`multilabel_relevance`), on the same device. Each query ranks all C candidates by
    descending score, ties broken by candidate order (a stable sort: the candidate listed first ranks first).
    With ``R`` = relevant candidates of the query and ``P@i`` = (relevant items in ranks 1..i) / i:

    * ``"ap"``: AP over the whole list, ``(1/R) * sum_{i <= C, rel_i} P@i``; 0 when ``R = 0`` (the query
      still counts in the mean, as in ASEN). Its mean is MAP@all.
    * ``"ap_at_k"``: AP@k ``= (1/min(R, k)) * sum_{i <= k, rel_i} P@i``; 0 when ``R = 0``. Its mean is MAP@k.
      The paper does not define the normaliser; ``min(R, k)`` is the common choice (it makes a perfect top k
      score 1). Dividing by ``R`` instead gives the same value when ``R <= k`` but is harsher when ``R > k``:
      then at most k of the R relevant items fit in the top k, so even a perfect ranking scores only ``k/R``
      (the ``min(R, k)`` value times ``k/R``). torchmetrics 1.9 divides by yet another number, the relevant
      items found in the top k (see the module docstring).
    * ``"recall_at_k"``: (relevant items in ranks 1..k) / R; 0 when ``R = 0``. The fraction of the relevant
      items retrieved, not the hit rate of :func:`recall_at_k` (paper 01's R@k): with R in the hundreds, as
      on DeepFashion, Recall@100 is small (paper 05, Table 2: 5-13 %) while a hit rate would be near 100 %.
    * ``"num_relevant"`` (int64): R.
    * ``"k"``: the k asked for (int; :func:`retrieval_summary` puts it in the metric names). ``k > C`` is
      allowed: the top k is then the whole list, so ``ap_at_k == ap`` and ``recall_at_k`` is 1 (R > 0).

    Per-query values are float64 tensors in query order on the inputs' device. Queries are processed
    ``chunk_size`` at a time (default: a chunk holds about 2**17 scores on CPU, 2**24 on GPU). Memory per
    chunk of m queries, besides the inputs: about ``(2 s + 9) m C`` bytes while sorting (``s`` = bytes per
    score: a copy of the scores, the sorted values, int64 indices, the relevance in rank order), then about 41
    bytes per relevant entry (int64 positions, rows, hit counts, float64 precisions). For float64 scores that
    is at most about 41 bytes per entry: about 5 MiB per CPU chunk and 0.7 GiB per GPU chunk, whatever Q and
    C are (a 6,000 x 25,000 evaluation needs only its float32 scores, 0.6 GB, and bool relevance, 0.15 GB).
    Per chunk: one stable ``torch.sort`` per row, a gather of the relevance, the ranks of the relevant
    items (``nonzero``), and per-row sums of their precisions (``index_add_``).
    """
    s = _float_tensor(scores, "scores")
    rel = _indicator_tensor(relevant, "relevant")
    if rel.shape != s.shape:
        raise ValueError(f"relevant has shape {tuple(rel.shape)}, scores {tuple(s.shape)}; they must match")
    if rel.device != s.device:
        raise ValueError(f"scores is on {s.device} but relevant is on {rel.device}")
    k = _check_k(k)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    nq, n = s.shape
    dev = s.device
    out: dict[str, Any] = {
        "ap": torch.zeros(nq, dtype=torch.float64, device=dev),
        "ap_at_k": torch.zeros(nq, dtype=torch.float64, device=dev),
        "recall_at_k": torch.zeros(nq, dtype=torch.float64, device=dev),
        "num_relevant": torch.zeros(nq, dtype=torch.long, device=dev),
        "k": k,
    }
    if nq == 0 or n == 0:
        return out  # no candidate: R = 0 and every value is 0
    budget = _CPU_CHUNK_ELEMENTS if dev.type == "cpu" else _GPU_CHUNK_ELEMENTS
    step = min(chunk_size or max(1, budget // n), nq)
    for start in range(0, nq, step):
        end = min(start + step, nq)
        chunk_scores, chunk_rel = s[start:end], rel[start:end]
        if bool(torch.isnan(chunk_scores).any()):
            raise ValueError("scores contain NaN (their rank is undefined)")
        n_rel = chunk_rel.sum(1)
        flat = _relevant_flat_torch(chunk_scores, chunk_rel)  # stable descending sort (+0.0 == -0.0)
        ap, ap_k, recall_k = _ranking_from_flat(flat, n_rel, n, k)
        out["ap"][start:end] = ap
        out["ap_at_k"][start:end] = ap_k
        out["recall_at_k"][start:end] = recall_k
        out["num_relevant"][start:end] = n_rel
    return out


def retrieval_summary(stats: dict[str, Any], groups=None) -> dict[str, dict[Any, float]]:
    """MAP@all, MAP@k and Recall@k in percent (paper 05's tables), from :func:`ranking_stats` (or its reference).

    Returns ``{"MAP@all": {...}, f"MAP@{k}": {...}, f"Recall@{k}": {...}}`` with ``k = stats["k"]``; each inner
    dict has ``"overall"`` = 100 x the mean over *all* queries (query-weighted, like ASEN's AverageMeter,
    docs/protocols.md §4.1; queries with no relevant candidate count as 0) and, when ``groups``
    (Q,) integer attribute indices are given, ``g`` (int) = 100 x the mean over the queries of group ``g`` for
    every group that occurs, in increasing order. ``"overall"`` is then ``sum_g |Q_g| value(g) / sum_g |Q_g|``,
    not the mean of the group values. No query: ``"overall"`` is nan.
    """
    if "k" not in stats:
        raise ValueError("stats has no 'k': pass the dict returned by ranking_stats")
    k = _check_k(stats["k"])
    names = {"MAP@all": "ap", f"MAP@{k}": "ap_at_k", f"Recall@{k}": "recall_at_k"}
    values = {name: _tensor(stats[key]).detach().reshape(-1).to(torch.float64) for name, key in names.items()}
    nq = values["MAP@all"].numel()
    if any(v.numel() != nq for v in values.values()):
        raise ValueError("the per-query entries of stats differ in length")
    result: dict[str, dict[Any, float]] = {}
    for name, v in values.items():
        if groups is None:
            means: dict[Any, float] = {"overall": float(v.mean()) if nq else float("nan")}
        else:
            means, _ = _aggregate(v, _label_tensor(groups, nq, v.device, "groups"))
        result[name] = {key: 100.0 * value for key, value in means.items()}
    return result


def ranking_stats_reference(scores, relevant, k: int = 100) -> dict[str, Any]:
    """Per-query AP, AP@k, Recall@k and R by a plain per-query loop (teaching oracle of :func:`ranking_stats`).

    Same definitions (paper 05, section 4.2, "MAP@all, MAP@100, Recall@100"; docs/protocols.md
    §4.1): rank by descending score with a stable sort (ties: the candidate listed first ranks first), walk
    the 0/1 list and sum ``hits / rank`` at each relevant item; AP divides by R, AP@k sums only ranks
    ``<= k`` and divides by ``min(R, k)``, Recall@k = (hits in ranks ``<= k``) / R; all 0 when R = 0.
    Returns numpy arrays (float64; ``"num_relevant"`` int64) and ``"k"``, the same keys as
    :func:`ranking_stats`. Slow: one Python loop step per query and candidate.
    """
    s = _to_numpy(scores).astype(np.float64)
    r = _to_numpy(relevant)
    if s.ndim != 2 or r.shape != s.shape:
        raise ValueError(f"scores {s.shape} and relevant {r.shape} must be 2-D with the same shape")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN (their rank is undefined)")
    k = _check_k(k)
    nq = s.shape[0]
    ap, ap_k, recall_k = np.zeros(nq), np.zeros(nq), np.zeros(nq)
    num_relevant = np.zeros(nq, dtype=np.int64)
    for q in range(nq):
        # 1. rank by descending score; the stable sort keeps the earlier candidate first on a tie
        order = np.argsort(-s[q], kind="stable")
        # 2. the 0/1 list, one entry per candidate in rank order
        rel = [1 if r[q, j] else 0 for j in order]
        n_relevant = sum(rel)
        num_relevant[q] = n_relevant
        if n_relevant == 0:
            continue  # AP = AP@k = Recall@k = 0, and the query still counts
        # 3. walk the list: precision at each relevant item
        hits, total, hits_k, total_k = 0, 0.0, 0, 0.0
        for rank, x in enumerate(rel, start=1):
            if x == 1:
                hits += 1
                total += hits / rank
                if rank <= k:
                    hits_k += 1
                    total_k += hits / rank
        ap[q] = total / n_relevant
        ap_k[q] = total_k / min(n_relevant, k)
        recall_k[q] = hits_k / n_relevant
    return {"ap": ap, "ap_at_k": ap_k, "recall_at_k": recall_k, "num_relevant": num_relevant, "k": k}

