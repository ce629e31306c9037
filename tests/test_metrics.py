"""Tests of fashionlab.metrics against independent oracles.

Oracles: the teaching loop (attribute_map_reference), scikit-learn, torchmetrics, pytorch-metric-learning,
brute-force loops, and the real ASEN split files (random embeddings reproduce the papers' random baselines).
Convention differences between the oracles and the ASEN protocol are noted where they matter; the module
docstring of fashionlab.metrics summarises them.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionlab import metrics as M
from fashionlab.config import shared_realdata

SORTS = ("packed", "torch")


# --------------------------------------------------------------------------------------------------------
# data helpers
# --------------------------------------------------------------------------------------------------------
def make_retrieval(seed=0, n_attr=4, n_q=(15, 30, 9, 12), cand_per_query=4, dim=8, quantise=None,
                   missing_value=True, dtype=np.float64):
    """Random attribute-specific retrieval data.

    ``quantise``: round embeddings to integers in [-q, q] (dot products are exact in float32 and float64 and
    there are many ties). ``missing_value``: some query values never occur among the candidates, so those
    queries have no relevant candidate. The last attribute gets queries but no candidate at all.
    """
    rng = np.random.default_rng(seed)
    n_values = [3, 5, 2, 4, 6, 3][:n_attr]
    q_attr = np.concatenate([np.full(n, a) for a, n in enumerate(n_q[:n_attr])])
    c_attr = np.concatenate([np.full(cand_per_query * n, a) for a, n in enumerate(n_q[:n_attr - 1])])
    rng.shuffle(q_attr)
    rng.shuffle(c_attr)
    q_val = np.array([rng.integers(0, n_values[a]) for a in q_attr])
    # candidates of attribute 0 never take value 0 when missing_value: queries with value 0 have R = 0
    c_val = np.array([rng.integers(1 if (missing_value and a == 0) else 0, n_values[a]) for a in c_attr])
    q_emb = rng.standard_normal((len(q_attr), dim))
    c_emb = rng.standard_normal((len(c_attr), dim))
    if quantise is not None:
        q_emb = np.clip(np.round(q_emb * quantise / 2), -quantise, quantise)
        c_emb = np.clip(np.round(c_emb * quantise / 2), -quantise, quantise)
    return q_emb.astype(dtype), q_attr, q_val, c_emb.astype(dtype), c_attr, c_val


def per_attribute_lists(q_emb, q_attr, q_val, c_emb, c_attr, c_val):
    """Yield (query row, scores over the same-attribute candidates in candidate order, relevance)."""
    for i in range(len(q_emb)):
        sel = np.flatnonzero(c_attr == q_attr[i])
        yield i, c_emb[sel] @ q_emb[i], c_val[sel] == q_val[i]


def stable_desc_order(scores):
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))


# --------------------------------------------------------------------------------------------------------
# average_precision (single ranking) and the tie rule
# --------------------------------------------------------------------------------------------------------
def test_average_precision_by_hand():
    assert M.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 / 1 + 2 / 3) / 2, abs=1e-15)
    assert M.average_precision([0.1, 0.9, 0.5], [1, 0, 0]) == pytest.approx(1 / 3, abs=1e-15)
    assert M.average_precision([0.1, 0.9, 0.5], [0, 0, 0]) == 0.0  # no relevant item: AP = 0 (ASEN)
    assert M.average_precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([True, True, True])) == 1.0


def test_average_precision_ties_earlier_item_first():
    # equal scores: the earlier item ranks first (stable descending sort)
    assert M.average_precision([1.0, 1.0], [1, 0]) == 1.0
    assert M.average_precision([1.0, 1.0], [0, 1]) == 0.5
    assert M.average_precision([0.0, 0.0, 0.0, 0.0], [0, 0, 1, 1]) == pytest.approx((1 / 3 + 2 / 4) / 2, abs=1e-15)


def test_expected_random_ap_by_enumeration():
    # every placement of the R relevant items among N ranks is equally likely under a random ranking
    from itertools import combinations

    for n in range(1, 8):
        for r in range(0, n + 1):
            aps = [M.average_precision(-np.arange(n), np.isin(np.arange(n), pos)) for pos in combinations(range(n), r)]
            assert M.expected_random_ap(r, n) == pytest.approx(np.mean(aps), abs=1e-12)
    assert np.allclose(M.expected_random_ap(np.array([0, 1, 3]), np.array([5, 5, 20])),
                       [M.expected_random_ap(0, 5), M.expected_random_ap(1, 5), M.expected_random_ap(3, 20)])
    assert M.expected_random_ap(300, 2000) == pytest.approx(300 / 2000, abs=0.01)   # large N: the share R/N
    with pytest.raises(ValueError):
        M.expected_random_ap(3, 2)


@pytest.mark.parametrize("sort", SORTS)
def test_ties_broken_by_candidate_order(sort):
    # all scores equal (zero query): the ranking is the candidate order
    c_val = np.array([0, 1, 1, 0, 1, 0, 0])
    q = np.zeros((2, 3))
    c = np.random.default_rng(0).standard_normal((7, 3))
    res = M.attribute_map(q, [0, 0], [1, 0], c, np.zeros(7, int), c_val, sort=sort)
    ap1 = M.average_precision(np.zeros(7), c_val == 1)
    ap0 = M.average_precision(np.zeros(7), c_val == 0)
    assert res[0] == pytest.approx((ap1 + ap0) / 2, abs=1e-15)
    assert ap1 == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3, abs=1e-15)
    # two tied groups: within a group, candidate order
    q = np.array([[1.0]])
    c = np.array([[1.0], [2.0], [1.0], [2.0]])  # scores 1, 2, 1, 2 -> ranking 1, 3, 0, 2
    for rel_idx, expected in [(1, 1.0), (3, 0.5), (0, 1 / 3), (2, 0.25)]:
        c_val = np.zeros(4, int)
        c_val[rel_idx] = 1
        assert M.attribute_map(q, [0], [1], c, np.zeros(4, int), c_val, sort=sort)[0] == expected


@pytest.mark.parametrize("sort", SORTS)
def test_negative_zero_ties_with_positive_zero(sort):
    scores = torch.tensor([[-0.0, 0.0, -1.0], [0.0, -0.0, 1.0]], dtype=torch.float64)
    q_values, c_values = np.array([1, 1]), np.array([0, 1, 1])
    if sort == "packed":
        ap, first, n_rel = M.retrieval._chunk_packed(scores, q_values, c_values)
    else:
        ap, first, n_rel = M.retrieval._chunk_torch(scores, torch.from_numpy(q_values), torch.from_numpy(c_values))
    # row 0: -0.0 and +0.0 tie -> order 0, 1, 2 -> relevant at ranks 2, 3; row 1: order 2, 0, 1 -> ranks 1, 3
    assert ap.tolist() == pytest.approx([(1 / 2 + 2 / 3) / 2, (1 + 2 / 3) / 2], abs=1e-15)
    assert first.tolist() == [2, 1]
    assert n_rel.tolist() == [2, 2]


def test_stable_descending_sort_keeps_index_order_on_ties():
    # the property the "torch" backend relies on
    x = torch.tensor([1.0, 2.0, 1.0, 2.0, 1.0, 0.0, 2.0] * 300, dtype=torch.float64)
    order = torch.sort(x, descending=True, stable=True).indices
    v = x[order]
    tie = v[1:] == v[:-1]
    assert bool((order[1:][tie] > order[:-1][tie]).all())


def test_packed_falls_back_on_float64_near_ties():
    # 1.0 and the next double share the truncated key: the check must detect it and keep the exact order
    q = np.array([[1.0]])
    c = np.array([[1.0], [np.nextafter(1.0, 2.0)], [0.5]])
    c_val = np.array([1, 0, 0])
    for sort in SORTS:
        res = M.attribute_map(q, [0], [1], c, np.zeros(3, int), c_val, sort=sort)
        assert res[0] == 0.5, sort  # the relevant candidate is second
    scores = torch.tensor([[1.0, np.nextafter(1.0, 2.0), 0.5]], dtype=torch.float64)
    assert M.retrieval._relevant_flat_packed(scores.numpy(), np.array([[True, False, False]])) is None


# --------------------------------------------------------------------------------------------------------
# vectorised == teaching reference loop
# --------------------------------------------------------------------------------------------------------
def assert_maps_equal(a, b, tol):
    assert a.keys() == b.keys()
    for k in a:
        assert abs(a[k] - b[k]) <= tol, (k, a[k], b[k])


@pytest.mark.parametrize("quantise", [None, 2], ids=["continuous", "ties"])
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("chunk_size", [None, 1, 4])
def test_vectorised_matches_reference(quantise, sort, chunk_size):
    data = make_retrieval(seed=1, quantise=quantise)
    if quantise is not None:  # the data really has ties
        q_emb, q_attr, _, c_emb, c_attr, _ = data
        s = c_emb[c_attr == 1] @ q_emb[q_attr == 1].T
        assert any(len(np.unique(col)) < len(col) for col in s.T)
    ref_ap = M.attribute_ap_reference(*data)
    stats = M.attribute_retrieval_stats(*data, chunk_size=chunk_size, sort=sort)
    np.testing.assert_allclose(stats["ap"].numpy(), ref_ap, rtol=0, atol=1e-12)
    ref, ref_counts = M.attribute_map_reference(*data, return_counts=True)
    res, counts = M.attribute_map(*data, chunk_size=chunk_size, sort=sort, return_counts=True)
    assert_maps_equal(res, ref, 1e-12)
    assert counts == ref_counts
    assert counts == {"overall": 66, 0: 15, 1: 30, 2: 9, 3: 12}
    assert all(isinstance(k, int) for k in res if k != "overall")
    assert all(0.0 <= v <= 1.0 for v in res.values())


def test_queries_without_relevant_candidate_count_as_zero():
    data = make_retrieval(seed=2)
    q_emb, q_attr, q_val, c_emb, c_attr, c_val = data
    stats = M.attribute_retrieval_stats(*data)
    no_rel = (q_attr == 3) | ((q_attr == 0) & (q_val == 0))  # attribute 3 has no candidates at all
    assert no_rel.sum() > 12
    assert (stats["n_relevant"].numpy() == 0).tolist() == no_rel.tolist()
    assert (stats["ap"].numpy()[no_rel] == 0).all()
    assert (stats["first_hit"].numpy()[no_rel] == 0).all()
    assert (stats["n_candidates"].numpy()[q_attr == 3] == 0).all()
    res = M.attribute_map(*data)
    assert res[3] == 0.0
    # they are still averaged: overall = sum of all APs / all queries
    assert res["overall"] == pytest.approx(stats["ap"].sum().item() / len(q_attr), abs=1e-12)
    mask = (q_attr == 0) & (q_val != 0)
    assert res[0] == pytest.approx(stats["ap"].numpy()[mask].sum() / (q_attr == 0).sum(), abs=1e-12)


def test_overall_is_query_weighted_not_mean_of_attribute_means():
    data = make_retrieval(seed=3)
    res, counts = M.attribute_map(*data, return_counts=True)
    attrs = [k for k in res if k != "overall"]
    weighted = sum(counts[a] * res[a] for a in attrs) / sum(counts[a] for a in attrs)
    assert res["overall"] == pytest.approx(weighted, abs=1e-12)
    assert abs(res["overall"] - np.mean([res[a] for a in attrs])) > 1e-3  # the two differ on this data


def test_input_types_and_dtypes():
    data = make_retrieval(seed=4, quantise=3)  # integer-valued: exact in float32 and float64
    ref = M.attribute_map_reference(*data)
    q_emb, q_attr, q_val, c_emb, c_attr, c_val = data
    as_t = [torch.from_numpy(np.asarray(x)) for x in data]
    as_32 = [torch.from_numpy(x.astype(np.float32)) if x.dtype.kind == "f" else x for x in data]
    as_int = [x.astype(np.int64) for x in data]
    as_16 = [torch.from_numpy(x).to(torch.bfloat16) if x.dtype.kind == "f" else x for x in data]  # |v| <= 3
    for variant in (as_t, as_32, as_16, as_int, [x.tolist() for x in data]):
        for sort in SORTS:
            assert_maps_equal(M.attribute_map(*variant, sort=sort), ref, 1e-12)
    assert M.attribute_retrieval_stats(*as_32)["ap"].dtype == torch.float64
    with_grad = [x.requires_grad_() if x.is_floating_point() else x for x in as_t]  # model outputs
    assert_maps_equal(M.attribute_map(*with_grad), ref, 1e-12)


def test_embeddings_used_as_given():
    # scaling a query changes nothing (the ranking is per query), but the candidates' norms matter
    q_emb, q_attr, q_val, c_emb, c_attr, c_val = make_retrieval(seed=5)
    base = M.attribute_map(q_emb, q_attr, q_val, c_emb, c_attr, c_val)
    scaled_q = M.attribute_map(q_emb * 7.0, q_attr, q_val, c_emb, c_attr, c_val)
    assert_maps_equal(base, scaled_q, 1e-12)
    c_scaled = c_emb * np.random.default_rng(0).uniform(0.1, 10, (len(c_emb), 1))
    assert M.attribute_map(q_emb, q_attr, q_val, c_scaled, c_attr, c_val)["overall"] != base["overall"]


def test_argument_errors():
    data = make_retrieval(seed=0)
    with pytest.raises(ValueError):
        M.attribute_map(*data, sort="quick")
    with pytest.raises(ValueError):
        M.attribute_map(*data, chunk_size=0)
    q_emb, q_attr, q_val, c_emb, c_attr, c_val = data
    with pytest.raises(ValueError):
        M.attribute_map(q_emb, q_attr[:-1], q_val, c_emb, c_attr, c_val)
    with pytest.raises(ValueError):
        M.attribute_map(q_emb[:, :3], q_attr, q_val, c_emb, c_attr, c_val)


# --------------------------------------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------------------------------------
def test_per_query_ap_matches_sklearn_without_ties():
    from sklearn.metrics import average_precision_score

    data = make_retrieval(seed=6)
    ap = M.attribute_retrieval_stats(*data)["ap"].numpy()
    checked = 0
    for i, scores, rel in per_attribute_lists(*data):
        if rel.sum() == 0:
            # sklearn warns "No positive class found" and returns 0 here (older versions: nan); ASEN: 0
            assert ap[i] == 0.0
            continue
        assert len(np.unique(scores)) == len(scores)  # no ties: sklearn's thresholds = single items
        assert ap[i] == pytest.approx(average_precision_score(rel, scores), abs=1e-12)
        assert M.average_precision(scores, rel) == pytest.approx(ap[i], abs=1e-15)
        checked += 1
    assert checked > 30


def test_sklearn_tie_convention_differs():
    # sklearn groups tied scores into one threshold (all tied items enter at once); we rank them by order
    from sklearn.metrics import average_precision_score

    assert average_precision_score([1, 0], [1.0, 1.0]) == 0.5
    assert M.average_precision([1.0, 1.0], [1, 0]) == 1.0
    assert average_precision_score([0, 1], [1.0, 1.0]) == 0.5 == M.average_precision([1.0, 1.0], [0, 1])


# --------------------------------------------------------------------------------------------------------
# torchmetrics
# --------------------------------------------------------------------------------------------------------
def test_matches_torchmetrics_retrieval_map_without_ties():
    from torchmetrics.functional.retrieval import retrieval_average_precision
    from torchmetrics.retrieval import RetrievalMAP

    data = make_retrieval(seed=7)
    ap = M.attribute_retrieval_stats(*data)["ap"].numpy()
    res = M.attribute_map(*data)
    metric = RetrievalMAP(empty_target_action="neg")  # no relevant item -> AP 0, like ASEN
    for i, scores, rel in per_attribute_lists(*data):
        if len(scores) == 0:
            continue  # torchmetrics needs at least one document per query; ASEN gives AP 0 (checked above)
        # torchmetrics (1.9) zeroes the relevance of items scored <= 0 ("not retrieved"): shift the scores
        # to be positive (the ranking does not change); it ranks with topk, so only compare without ties
        preds = torch.from_numpy(scores - scores.min() + 1.0)
        target = torch.from_numpy(rel)
        tm = retrieval_average_precision(preds, target).item()  # float32 arithmetic inside
        assert tm == pytest.approx(ap[i], abs=1e-6)
        metric.update(preds, target, indexes=torch.full((len(scores),), i, dtype=torch.long))
    # queries without candidates have AP 0 and count in ASEN's mean but never reach torchmetrics
    q_attr = data[1]
    n_with = int((q_attr != 3).sum())
    assert metric.compute().item() * n_with / len(q_attr) == pytest.approx(res["overall"], abs=1e-6)


# --------------------------------------------------------------------------------------------------------
# pytorch-metric-learning
# --------------------------------------------------------------------------------------------------------
def integer_data_without_ties(seed):
    """Integer embeddings whose dot products are exact in float32 (|sum| < 2**24) and distinct per query, so
    PML (which casts to float32 and ranks with topk) orders exactly like us."""
    for s in range(seed, seed + 100):
        rng = np.random.default_rng(s)
        data = list(make_retrieval(seed=s, n_attr=3, n_q=(20, 25, 10), dim=16))
        data[0] = rng.integers(-1024, 1025, data[0].shape).astype(np.float64)
        data[3] = rng.integers(-1024, 1025, data[3].shape).astype(np.float64)
        ok = all(len(np.unique(sc)) == len(sc) for _, sc, _ in per_attribute_lists(*data))
        if ok:
            return data
    raise AssertionError("no tie-free draw")


def test_matches_pytorch_metric_learning_accuracy_calculator():
    from pytorch_metric_learning.distances import DotProductSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    data = integer_data_without_ties(seed=8)
    q_emb, q_attr, q_val, c_emb, c_attr, c_val = data
    stats = M.attribute_retrieval_stats(*data)
    r_at_1 = M.recall_at_k(*data, ks=(1,))[1]
    # k=None: the whole gallery, so PML's mean_average_precision = (1/R) sum hits/rank = ASEN's AP. But PML
    # drops "lone" queries (no relevant reference) where ASEN counts AP = 0, casts to float32, ranks with topk
    # (undefined tie order), and with reference=None would exclude self-matches (our sets are disjoint).
    calc = AccuracyCalculator(include=("mean_average_precision", "precision_at_1"), k=None,
                              device=torch.device("cpu"),
                              knn_func=CustomKNN(DotProductSimilarity(normalize_embeddings=False)))
    for a in range(2):  # attribute 2 has no candidates: every query would be lone
        qs, cs = q_attr == a, c_attr == a
        acc = calc.get_accuracy(q_emb[qs], q_val[qs], c_emb[cs], c_val[cs], ref_includes_query=False)
        ap = stats["ap"].numpy()[qs]
        not_lone = stats["n_relevant"].numpy()[qs] > 0
        assert acc["mean_average_precision"] == pytest.approx(ap[not_lone].mean(), abs=1e-6)
        # precision@1 over the non-lone queries = our hit rate at 1 rescaled to all queries
        assert acc["precision_at_1"] * not_lone.mean() == pytest.approx(r_at_1[a], abs=1e-12)


# --------------------------------------------------------------------------------------------------------
# recall@k, triplet accuracy, top-k accuracy
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantise", [None, 2], ids=["continuous", "ties"])
@pytest.mark.parametrize("sort", SORTS)
def test_recall_at_k_matches_brute_force(quantise, sort):
    data = make_retrieval(seed=9, quantise=quantise)
    q_attr = data[1]
    ks = (1, 2, 5, 10, 1000)
    res = M.recall_at_k(*data, ks=ks, chunk_size=5, sort=sort)
    for k in ks:
        hits = {}
        for i, scores, rel in per_attribute_lists(*data):
            top = stable_desc_order(scores)[:k]
            hits.setdefault(int(q_attr[i]), []).append(any(rel[j] for j in top))
        per_attr = {a: float(np.mean(h)) for a, h in hits.items()}
        for a, v in per_attr.items():
            assert res[k][a] == pytest.approx(v, abs=1e-12)
        assert res[k]["overall"] == pytest.approx(np.mean(list(per_attr.values())), abs=1e-12)
        all_hits = [x for h in hits.values() for x in h]
        assert res[k]["query_weighted"] == pytest.approx(np.mean(all_hits), abs=1e-12)
    assert res[1000][3] == 0.0  # no candidates -> never a hit


def test_triplet_accuracy_matches_loop():
    rng = np.random.default_rng(10)
    d_pos = rng.integers(0, 4, 500).astype(float)  # many exact ties: a tie is wrong (margin 0, strict)
    d_neg = rng.integers(0, 4, 500).astype(float)
    cond = rng.integers(0, 4, 500)
    expected = np.mean([dp < dn for dp, dn in zip(d_pos, d_neg)])
    assert M.triplet_accuracy(d_pos, d_neg, similarity=False) == pytest.approx(expected, abs=1e-15)
    assert M.triplet_accuracy(-d_pos, -d_neg, similarity=True) == pytest.approx(expected, abs=1e-15)
    by_cond = M.triplet_accuracy(torch.from_numpy(d_pos), torch.from_numpy(d_neg), similarity=False,
                                 conditions=cond)
    assert by_cond["overall"] == pytest.approx(expected, abs=1e-15)
    for c in range(4):
        sel = cond == c
        assert by_cond[c] == pytest.approx(np.mean(d_pos[sel] < d_neg[sel]), abs=1e-15)
    assert M.triplet_accuracy([1.0], [1.0]) == 0.0
    with pytest.raises(ValueError):
        M.triplet_accuracy([], [])


def test_topk_accuracy_matches_torchmetrics():
    from torchmetrics.functional.classification import multiclass_accuracy

    g = torch.Generator().manual_seed(11)
    logits = torch.randn(300, 12, generator=g)
    targets = torch.randint(0, 12, (300,), generator=g)
    res = M.topk_accuracy(logits, targets, ks=(1, 3, 5, 12))
    for k in (1, 3, 5):
        tm = multiclass_accuracy(logits, targets, num_classes=12, top_k=k, average="micro").item()
        assert res[k] == pytest.approx(tm, abs=1e-6)
    assert res[12] == 1.0
    # ties: the lower class index ranks first
    assert M.topk_accuracy(torch.zeros(2, 4), torch.tensor([0, 3]), ks=(1, 3)) == {1: 0.5, 3: 0.5}
    with pytest.raises(ValueError):
        M.topk_accuracy(logits, targets, ks=(13,))


# --------------------------------------------------------------------------------------------------------
# GPU
# --------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("quantise", [None, 2], ids=["continuous", "ties"])
def test_same_values_on_cuda(quantise):
    data = make_retrieval(seed=12, quantise=quantise)
    cpu = M.attribute_retrieval_stats(*data, chunk_size=3)
    cuda_data = [torch.as_tensor(np.asarray(x)).cuda() for x in data]
    gpu = M.attribute_retrieval_stats(*cuda_data, chunk_size=3)
    assert gpu["ap"].device.type == "cuda"
    np.testing.assert_allclose(gpu["ap"].cpu().numpy(), cpu["ap"].numpy(), rtol=0, atol=1e-12)
    for key in ("first_hit", "n_relevant", "n_candidates"):
        assert torch.equal(gpu[key].cpu(), cpu[key])
    assert_maps_equal(M.attribute_map(*cuda_data), M.attribute_map_reference(*data), 1e-12)
    r_gpu, r_cpu = M.recall_at_k(*cuda_data), M.recall_at_k(*data)
    for k in r_cpu:
        assert_maps_equal(r_gpu[k], r_cpu[k], 1e-12)
    with pytest.raises(ValueError):
        M.attribute_map(*cuda_data, sort="packed")


# --------------------------------------------------------------------------------------------------------
# real split files: random embeddings reproduce the papers' random baselines (ASEN tables)
# --------------------------------------------------------------------------------------------------------
def read_split(path: Path):
    """(attribute, value) columns of an ASEN ``query_/candidate_*.txt``, read by the project's reader (CRLF or LF)."""
    from fashionlab.datasets import read_items

    arr = read_items(path)
    return arr[:, 1], arr[:, 2]


def random_unit(n, dim, rng):
    x = rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.realdata
@pytest.mark.parametrize("dataset, expected", [
    ("FashionAI", {0: 17.2, 1: 12.5, 2: 13.4, 3: 17.4, 4: 22.4, 5: 21.6, 6: 11.1, 7: 21.2, "overall": 15.8}),
    ("DeepFashion", {0: 6.7, 1: 2.7, 2: 3.2, 3: 2.5, 4: 2.0, "overall": 3.4}),
])
def test_random_baseline_on_real_split(dataset, expected):
    root = shared_realdata()
    if root is None:
        pytest.skip("no shared/realdata")
    folder = root / "zhengguorong_asenpp" / "data" / dataset
    q_attr, q_val = read_split(folder / "query_test.txt")
    c_attr, c_val = read_split(folder / "candidate_test.txt")
    if dataset == "FashionAI":
        assert (len(q_attr), len(c_attr)) == (3600, 14400)
        assert np.bincount(q_attr).tolist() == [422, 623, 535, 422, 341, 289, 703, 265]
    else:
        assert (len(q_attr), len(c_attr)) == (5525, 22100)
        assert q_val.max() > 200 and c_val.max() > 200
    overall = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        q_emb, c_emb = random_unit(len(q_attr), 64, rng), random_unit(len(c_attr), 64, rng)
        res = M.attribute_map(q_emb, q_attr, q_val, c_emb, c_attr, c_val)
        for key, value in expected.items():
            tol = 0.5 if key == "overall" else 1.0
            assert 100 * res[key] == pytest.approx(value, abs=tol), (seed, key)
        overall.append(res["overall"])
    assert abs(overall[0] - overall[1]) < 0.002  # stable across seeds
    if dataset == "DeepFashion":  # 23-29 queries per split have no relevant candidate (still averaged)
        stats = M.attribute_retrieval_stats(q_emb, q_attr, q_val, c_emb, c_attr, c_val)
        assert 20 <= int((stats["n_relevant"] == 0).sum()) <= 30
