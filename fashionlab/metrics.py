"""Evaluation metrics shared by the notebooks (``docs/architecture.md``, Evaluation; ``reference/evaluation-protocols.md``).

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

Other metrics
    :func:`recall_at_k` (hit rate in the top k of the same-attribute candidates; paper 01 reports it averaged
    over attribute dimensions), :func:`triplet_accuracy` (CSN, section 4.2), :func:`topk_accuracy`
    (classification).

Multi-label retrieval from a score matrix (paper 05, M3-Net, sections 4.2-4.3: MAP@all, MAP@100, Recall@100)
    :func:`multilabel_relevance` turns 0/1 class indicators of one attribute group into a (Q, C) relevance
    matrix ("any" shared class, or "all" of the query's classes); :func:`ranking_stats` ranks every candidate
    per query (stable descending sort, as above) and returns per-query AP over the whole list, AP@k (normalised
    by ``min(R, k)``) and Recall@k (relevant in the top k / R); :func:`retrieval_summary` gives the
    query-weighted percentages, overall and per attribute; :func:`ranking_stats_reference` is the teaching loop.

Hierarchical label sharing (paper 06, sections 4.2 and 5)
    :func:`attribute_recall_at_k` (DeepFashion attribute recall@k, conventional or mmfashion's "altered" top-50
    mean, docs/protocols.md §4.3) with its loop :func:`attribute_recall_at_k_reference`;
    :func:`hierarchy_violations` (predicted attributes that cannot apply to the predicted category);
    :func:`box_iou`, :func:`match_detections` (greedy by score, as COCO) and :func:`coco_detection_metrics`
    (pycocotools' mAP@[.5:.95], AP50, AP75, AR@1/10/100 and per-class AP of the object-type detector).

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

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "attribute_map",
    "attribute_retrieval_stats",
    "attribute_map_reference",
    "attribute_ap_reference",
    "average_precision",
    "recall_at_k",
    "triplet_accuracy",
    "topk_accuracy",
    "multilabel_relevance",
    "ranking_stats",
    "retrieval_summary",
    "ranking_stats_reference",
    "imbalance_ratios",
    "mean_imbalance_ratio",
    "scumble",
    "balance_by_downsampling",
    "attribute_recall_at_k",
    "attribute_recall_at_k_reference",
    "hierarchy_violations",
    "box_iou",
    "match_detections",
    "coco_detection_metrics",
]

# Default queries per chunk: one chunk's score matrix holds about this many entries. CPU: 1 MiB per float64
# buffer (about 3.5 MiB of working memory in all), large enough to amortise the per-chunk Python overhead.
# GPU: about 0.4 GiB in all (scores, sorted values, int64 sort indices, masks) for float64.
_CPU_CHUNK_ELEMENTS = 1 << 17
_GPU_CHUNK_ELEMENTS = 1 << 24


# ----------------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------------
def _tensor(x: Any) -> torch.Tensor:
    """Tensors as they are; numpy arrays and lists become CPU tensors (no copy when possible)."""
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _float_tensor(x: Any, name: str) -> torch.Tensor:
    """Embeddings as a 2-D floating tensor (detached); integer inputs become float64."""
    t = _tensor(x).detach()
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (items x dim), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)  # exact; numpy has no bfloat16 and CPU half matmuls are slow
    return t


def _label_tensor(x: Any, n: int, device: torch.device, name: str) -> torch.Tensor:
    t = _tensor(x).reshape(-1).to(device=device, dtype=torch.long)
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} entries, expected {n}")
    return t


def _prepare(q_emb, q_attr, q_val, c_emb, c_attr, c_val):
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


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# ----------------------------------------------------------------------------------------------------------
# per-chunk kernels: scores (m, N) of m queries against the N candidates of one attribute
#   -> AP, first-hit rank and R per query
# Both kernels find the flat indices ``row * N + rank`` (0-based rank, row-major, ranks ascending) of the
# relevant items in the ranked lists. Row r owns the R_r entries starting at start_r = R_0 + ... + R_{r-1};
# the j-th of them (j = 1..R_r) is the j-th hit, at rank pos + 1, so (section 4.1, step 4)
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


def _aggregate(values: torch.Tensor, q_attr: torch.Tensor) -> tuple[dict, dict]:
    """Query-weighted overall mean + per-attribute means (int keys) and the query counts."""
    means: dict[Any, float] = {"overall": float(values.mean()) if values.numel() else float("nan")}
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
    i.e. ``sum_a |Q_a| mAP(a) / sum_a |Q_a|``. Dot-product ranking, embeddings used as given; ties broken by
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
    """Steps 3-4 of section 4.1: scan a 0/1 list in rank order; AP = (1/R) sum over hits of hits_so_far / rank."""
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
    maps = {"overall": weighted_sum / total if total else float("nan"), **maps}
    counts = {"overall": total, **counts}
    return (maps, counts) if return_counts else maps


def average_precision(scores, relevant) -> float:
    """AP of one ranking (section 4.1, steps 1-4): sort by descending score (ties: earlier item first), then
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


# ----------------------------------------------------------------------------------------------------------
# recall@k, triplet accuracy, top-k accuracy
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
# multi-label retrieval from a score matrix: MAP@all, MAP@k, Recall@k (paper 05, M3-Net, sections 4.2-4.3)
# ----------------------------------------------------------------------------------------------------------
_RELEVANCE_MODES = ("any", "all")


def _indicator_tensor(x: Any, name: str) -> torch.Tensor:
    """A 2-D 0/1 (or bool) matrix as a bool tensor (detached; numpy and lists become CPU tensors)."""
    t = _tensor(x).detach()
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise ValueError(f"{name} must hold 0/1 (or bool) values")
        t = t != 0
    return t


def _check_k(k: Any) -> int:
    if isinstance(k, bool):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    try:
        k = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be a positive integer, got {k!r}") from None
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    return k


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

    Same definitions (paper 05, section 4.2, "MAP@all, MAP@100, Recall@100"; docs/protocols.md section
    4.1): rank by descending score with a stable sort (ties: the candidate listed first ranks first), walk
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


# ----------------------------------------------------------------------------------------------------------
# label imbalance of multi-label data (paper 06 §4.1, Eq. 8-10)
# ----------------------------------------------------------------------------------------------------------
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


def balance_by_downsampling(classes, per_class: int | None = None, seed: int = 0) -> np.ndarray:
    """Paper 06 §4.1's remedy for imbalance: randomly down-sample every class to ``per_class`` instances (default:
    the size of the rarest class), e.g. 42,000 objects per object type. ``classes``: one class id per instance.
    Returns the kept instance indices, sorted; a class smaller than ``per_class`` keeps all of its instances."""
    c = np.asarray(classes)
    if c.ndim != 1:
        raise ValueError(f"classes must be 1-D (one class per instance), got shape {c.shape}")
    values, counts = np.unique(c, return_counts=True)
    n = int(counts.min()) if per_class is None else int(per_class)
    if n < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(c == v), size=min(n, k), replace=False) for v, k in zip(values, counts)]
    return np.sort(np.concatenate(keep))


# ----------------------------------------------------------------------------------------------------------
# hierarchical label sharing (paper 06): attribute recall@k, hierarchy violations, detection metrics
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


def _boxes(x, name: str) -> torch.Tensor:
    t = _tensor(x).detach().to(device="cpu", dtype=torch.float64)
    if t.numel() == 0:
        return t.reshape(0, 4)
    if t.dim() != 2 or t.shape[1] != 4:
        raise ValueError(f"{name} must be (n, 4) boxes x1, y1, x2, y2; got shape {tuple(t.shape)}")
    return t


def box_iou(boxes1, boxes2) -> torch.Tensor:
    """Pairwise intersection over union ``(n, m)`` of boxes ``(n, 4)`` and ``(m, 4)`` in ``(x1, y1, x2, y2)``
    pixels (torchvision's ``box_iou``, in float64 on the CPU; accepts tensors, arrays or lists). The overlap
    measure of the COCO metrics (paper 06 §4.2)."""
    from torchvision.ops import box_iou as _iou

    return _iou(_boxes(boxes1, "boxes1"), _boxes(boxes2, "boxes2"))


def match_detections(gt_boxes, det_boxes, det_scores, iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """Greedy matching of detections to ground-truth boxes, as COCO's evaluation does per class (paper 06 §4.2).

    Detections are visited by descending score (ties: the lower index first); each takes the still-unmatched
    ground-truth box with the highest IoU, provided that IoU is ``>= iou_threshold``; otherwise it stays
    unmatched (a false positive). Every box and detection is used at most once. Class labels are not looked
    at: call it per class. Returns ``[(gt_index, det_index), ...]`` in the order the detections were visited.
    """
    gt = _boxes(gt_boxes, "gt_boxes")
    det = _boxes(det_boxes, "det_boxes")
    sc = _tensor(det_scores).detach().reshape(-1).to(device="cpu", dtype=torch.float64)
    if sc.numel() != det.shape[0]:
        raise ValueError(f"{sc.numel()} scores for {det.shape[0]} detections")
    if gt.shape[0] == 0 or det.shape[0] == 0:
        return []
    iou = box_iou(gt, det)
    free = torch.ones(gt.shape[0], dtype=torch.bool)
    pairs = []
    for d in torch.sort(sc, descending=True, stable=True).indices.tolist():
        cand = torch.where(free, iou[:, d], torch.full_like(iou[:, d], -1.0))
        g = int(cand.argmax())
        if float(cand[g]) >= iou_threshold:
            free[g] = False
            pairs.append((g, d))
    return pairs


def coco_detection_metrics(ground_truth, detections, class_names: Sequence[str]) -> dict[str, Any]:
    """COCO box metrics of the object-type detector (paper 06 §4.2, Table 4: mAP and AR@100), computed by
    pycocotools' ``COCOeval`` on in-memory ground truth and detections.

    ``ground_truth``: one ``(boxes (k, 4), labels (k,))`` per image, boxes ``x1, y1, x2, y2`` in pixels, labels
    0-based class indices into ``class_names``; ``detections``: one ``(boxes, scores, labels)`` per image (the
    same conventions; torchvision detectors' labels are 1-based with 0 the background, so pass
    ``labels - 1``). Boxes become COCO ``[x, y, w, h]`` with ``w = x2 - x1``, ``area = w · h``, ``iscrowd = 0``.

    Returns fractions: ``mAP`` (AP averaged over IoU 0.50:0.05:0.95, COCO's 101-point interpolated precision,
    the paper's main number), ``AP50``, ``AP75``, ``AR@1``, ``AR@10``, ``AR@100`` (recall given at most 1, 10, 100
    detections per image, averaged over the IoU thresholds and classes) and ``per_class`` ``{name: AP}``.
    COCO's size-range numbers (small / medium / large) are not returned: its pixel ranges are meant for
    full-size photos. Images without detections count as misses; no detection at all gives zeros (no crash).
    A class without ground truth is left out of COCO's means and gets ``nan`` in ``per_class``; with no ground
    truth at all every number is ``nan``. pycocotools (``pip install pycocotools``, in the ``dev`` extras) is
    imported only here.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("coco_detection_metrics needs pycocotools: pip install pycocotools "
                          "(or pip install -e '.[dev]')") from err
    import contextlib
    import io

    if len(ground_truth) != len(detections):
        raise ValueError(f"{len(ground_truth)} ground-truth images but {len(detections)} detection lists")
    names = [str(c) for c in class_names]
    n_cls = len(names)

    def xywh(b: torch.Tensor) -> list[list[float]]:
        return [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in b.tolist()]

    def labels_of(x, n: int, what: str) -> list[int]:
        lab = _tensor(x).reshape(-1).to(torch.long).tolist() if n else []
        if len(lab) != n:
            raise ValueError(f"{what}: {len(lab)} labels for {n} boxes")
        if any(not 0 <= c < n_cls for c in lab):
            raise IndexError(f"{what}: label out of range for {n_cls} classes")
        return lab

    images, annotations, results = [], [], []
    for i, ((g_boxes, g_labels), (d_boxes, d_scores, d_labels)) in enumerate(zip(ground_truth, detections)):
        images.append({"id": i + 1})
        gb = _boxes(g_boxes, "ground-truth boxes")
        for box, c in zip(xywh(gb), labels_of(g_labels, len(gb), f"image {i} ground truth")):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c + 1, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
        db = _boxes(d_boxes, "detection boxes")
        ds = _tensor(d_scores).reshape(-1).to(torch.float64).tolist() if len(db) else []
        if len(ds) != len(db):
            raise ValueError(f"image {i}: {len(ds)} scores for {len(db)} detections")
        for box, s, c in zip(xywh(db), ds, labels_of(d_labels, len(db), f"image {i} detections")):
            results.append({"image_id": i + 1, "category_id": c + 1, "bbox": box, "score": s})

    keys = ("mAP", "AP50", "AP75", "AR@1", "AR@10", "AR@100")
    if not annotations:
        return {**{k: float("nan") for k in keys}, "per_class": {c: float("nan") for c in names}}
    has_gt = {a["category_id"] - 1 for a in annotations}
    if not results:
        return {**{k: 0.0 for k in keys}, "per_class": {c: (0.0 if j in has_gt else float("nan"))
                                                         for j, c in enumerate(names)}}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": j + 1, "name": c} for j, c in enumerate(names)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(v) if v >= 0 else float("nan") for v in ev.stats]
    out: dict[str, Any] = dict(zip(keys, (stats[0], stats[1], stats[2], stats[6], stats[7], stats[8])))
    precision = ev.eval["precision"]  # (IoU thresholds, recall points, classes, area ranges, max detections)
    per_class = {}
    for j, c in enumerate(names):
        p = precision[:, :, j, 0, -1]
        p = p[p > -1]
        per_class[c] = float(p.mean()) if p.size else float("nan")
    out["per_class"] = per_class
    return out
