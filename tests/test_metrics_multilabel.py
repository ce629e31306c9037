"""Tests of the multi-label retrieval metrics of paper 05 (M3-Net): MAP@all, MAP@k, Recall@k.

Oracles: hand-computed examples, the teaching loop (ranking_stats_reference), brute-force loops, scikit-learn
(AP over the whole list) and torchmetrics (AP@k after undoing its normaliser, Recall@k as is).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fashionlab import metrics as M

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS = ("ap", "ap_at_k", "recall_at_k")


# --------------------------------------------------------------------------------------------------------
# data helpers
# --------------------------------------------------------------------------------------------------------
def random_case(seed=0, nq=40, nc=60, density=0.15, levels=None, dtype=np.float64):
    """Random scores and relevance. ``levels``: integer scores in 0..levels-1 (many ties); some queries get no
    relevant candidate (rows 0 and 1), one gets all candidates relevant (row 2)."""
    rng = np.random.default_rng(seed)
    if levels is None:
        scores = rng.standard_normal((nq, nc))
    else:
        scores = rng.integers(0, levels, (nq, nc)).astype(np.float64)
    rel = rng.random((nq, nc)) < density
    rel[:2] = False
    rel[2] = True
    return scores.astype(dtype), rel


def assert_stats_close(a, b, atol=1e-12):
    for key in KEYS:
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=0, atol=atol, err_msg=key)
    assert np.array_equal(np.asarray(a["num_relevant"]), np.asarray(b["num_relevant"]))
    assert a["k"] == b["k"]


def stable_desc_order(scores):
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))


# --------------------------------------------------------------------------------------------------------
# multilabel_relevance
# --------------------------------------------------------------------------------------------------------
def test_multilabel_relevance_by_hand():
    q = [[1, 1, 0],   # "print" + "tribal"
         [0, 0, 1],
         [0, 0, 0]]   # no class: relevant to nothing
    c = [[1, 0, 0],   # print only
         [1, 1, 0],   # print + tribal
         [1, 1, 1],   # all three
         [0, 0, 0],   # no class
         [0, 1, 1]]
    anyrel = M.multilabel_relevance(q, c)
    allrel = M.multilabel_relevance(q, c, mode="all")
    assert anyrel.dtype == torch.bool and anyrel.shape == (3, 5)
    assert anyrel.tolist() == [[True, True, True, False, True],
                               [False, False, True, False, True],
                               [False] * 5]
    assert allrel.tolist() == [[False, True, True, False, False],  # needs both print and tribal (Fig. 4)
                               [False, False, True, False, True],
                               [False] * 5]


@pytest.mark.parametrize("mode", ["any", "all"])
def test_multilabel_relevance_matches_loop(mode):
    rng = np.random.default_rng(1)
    q = rng.random((37, 9)) < 0.25
    c = rng.random((53, 9)) < 0.3
    q[:3] = False  # queries without a class
    q[3] = True
    c[:2] = False
    expected = np.zeros((37, 53), dtype=bool)
    for i in range(37):
        for j in range(53):
            qs = {m for m in range(9) if q[i, m]}
            cs = {m for m in range(9) if c[j, m]}
            if mode == "any":
                expected[i, j] = len(qs & cs) > 0
            else:
                expected[i, j] = len(qs) > 0 and qs <= cs
    for q_in, c_in in [(q, c), (q.astype(np.int64), c.astype(np.int64)),
                       (torch.from_numpy(q).float(), torch.from_numpy(c).to(torch.uint8)),
                       (q.tolist(), c.tolist())]:
        got = M.multilabel_relevance(q_in, c_in, mode=mode)
        assert got.dtype == torch.bool
        assert np.array_equal(got.numpy(), expected)


def test_multilabel_relevance_chunks_and_empty(monkeypatch):
    rng = np.random.default_rng(2)
    q, c = rng.random((20, 6)) < 0.3, rng.random((30, 6)) < 0.3
    full = M.multilabel_relevance(q, c, mode="all")
    monkeypatch.setattr(M.retrieval, "_CPU_CHUNK_ELEMENTS", 31)  # one query per chunk
    assert torch.equal(M.multilabel_relevance(q, c, mode="all"), full)
    assert M.multilabel_relevance(np.zeros((0, 6)), c).shape == (0, 30)
    assert M.multilabel_relevance(q, np.zeros((0, 6))).shape == (20, 0)
    assert not M.multilabel_relevance(np.zeros((4, 0)), np.zeros((5, 0)), mode="all").any()


def test_multilabel_relevance_errors():
    q, c = np.eye(3), np.eye(3)
    with pytest.raises(ValueError, match="mode"):
        M.multilabel_relevance(q, c, mode="some")
    with pytest.raises(ValueError, match="classes differ"):
        M.multilabel_relevance(q, c[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        M.multilabel_relevance(q[0], c)
    with pytest.raises(ValueError, match="0/1"):
        M.multilabel_relevance(q * 2, c)


# --------------------------------------------------------------------------------------------------------
# ranking_stats: hand-computed examples
# --------------------------------------------------------------------------------------------------------
def test_ranking_stats_by_hand():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5],
                           [0.1, 0.5, 0.9, 0.3, 0.7],    # ranking: 2, 4, 1, 3, 0
                           [0.3, 0.2, 0.1, 0.4, 0.5]])   # no relevant candidate
    rel = torch.tensor([[1, 0, 0, 1, 1],
                        [1, 0, 0, 0, 1],
                        [0, 0, 0, 0, 0]], dtype=torch.bool)
    st = M.ranking_stats(scores, rel, k=2)
    # row 0: hits at ranks 1, 4, 5; row 1: candidate 4 at rank 2, candidate 0 at rank 5
    assert st["ap"].tolist() == pytest.approx([(1 + 2 / 4 + 3 / 5) / 3, (1 / 2 + 2 / 5) / 2, 0.0], abs=1e-15)
    assert st["ap_at_k"].tolist() == pytest.approx([1 / 2, (1 / 2) / 2, 0.0], abs=1e-15)  # / min(R, k) = 2
    assert st["recall_at_k"].tolist() == pytest.approx([1 / 3, 1 / 2, 0.0], abs=1e-15)
    assert st["num_relevant"].tolist() == [3, 2, 0]
    assert st["num_relevant"].dtype == torch.long
    assert all(st[key].dtype == torch.float64 for key in KEYS)
    assert st["k"] == 2
    # k = 4: row 0 has R = 3 <= k, so the normaliser is R
    st4 = M.ranking_stats(scores, rel, k=4)
    assert st4["ap_at_k"].tolist() == pytest.approx([(1 + 2 / 4) / 3, (1 / 2) / 2, 0.0], abs=1e-15)
    assert st4["recall_at_k"].tolist() == pytest.approx([2 / 3, 1 / 2, 0.0], abs=1e-15)


def test_ap_at_k_normaliser_is_min_r_k():
    # R = 3 > k = 2 and the top 2 are both relevant: a perfect top k scores 1 (dividing by R would give 2/3)
    st = M.ranking_stats([[5.0, 4.0, 3.0, 2.0, 1.0]], [[1, 1, 0, 0, 1]], k=2)
    assert st["ap_at_k"].item() == 1.0
    assert st["recall_at_k"].item() == pytest.approx(2 / 3, abs=1e-15)
    # R <= k: the same as dividing by R
    st = M.ranking_stats([[5.0, 4.0, 3.0, 2.0, 1.0]], [[0, 1, 0, 0, 1]], k=3)
    assert st["ap_at_k"].item() == pytest.approx((1 / 2) / 2, abs=1e-15)


def test_ties_broken_by_candidate_order():
    # all scores equal: the ranking is the candidate order
    rel = torch.tensor([[0, 1, 1, 0, 1]], dtype=torch.bool)
    st = M.ranking_stats(torch.zeros(1, 5), rel, k=2)
    assert st["ap"].item() == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3, abs=1e-15)
    assert st["ap_at_k"].item() == pytest.approx((1 / 2) / 2, abs=1e-15)
    assert st["recall_at_k"].item() == pytest.approx(1 / 3, abs=1e-15)
    # two tied groups: scores 1, 2, 1, 2 -> ranking 1, 3, 0, 2
    scores = torch.tensor([[1.0, 2.0, 1.0, 2.0]] * 4)
    rel = torch.eye(4, dtype=torch.bool)
    st = M.ranking_stats(scores, rel, k=1)
    assert st["ap"].tolist() == [1 / 3, 1.0, 1 / 4, 1 / 2]
    assert st["ap_at_k"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert st["recall_at_k"].tolist() == [0.0, 1.0, 0.0, 0.0]
    # -0.0 and +0.0 are the same score
    st = M.ranking_stats(torch.tensor([[-0.0, 0.0, -1.0]], dtype=torch.float64), [[False, True, True]], k=1)
    assert st["ap"].item() == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-15)


def test_k_larger_than_number_of_candidates():
    scores, rel = random_case(seed=3, nq=10, nc=7, density=0.4)
    st = M.ranking_stats(scores, rel, k=100)
    assert torch.equal(st["ap_at_k"], st["ap"])  # the top k is the whole list, min(R, k) = R
    has = st["num_relevant"] > 0
    assert (st["recall_at_k"][has] == 1.0).all() and (st["recall_at_k"][~has] == 0.0).all()
    assert st["k"] == 100


def test_no_relevant_and_degenerate_shapes():
    st = M.ranking_stats(np.zeros((3, 4)), np.zeros((3, 4), dtype=bool))
    for key in KEYS:
        assert st[key].tolist() == [0.0, 0.0, 0.0]
    st = M.ranking_stats(np.zeros((3, 0)), np.zeros((3, 0), dtype=bool))  # no candidate at all
    assert st["ap"].tolist() == [0.0] * 3 and st["num_relevant"].tolist() == [0] * 3
    st = M.ranking_stats(np.zeros((0, 5)), np.zeros((0, 5), dtype=bool))
    assert st["ap"].shape == (0,)
    summary = M.retrieval_summary(st)
    assert np.isnan(summary["MAP@all"]["overall"])


def test_input_types():
    scores, rel = random_case(seed=4, nq=12, nc=30, levels=6)  # integer-valued: exact in every dtype
    ref = M.ranking_stats_reference(scores, rel, k=5)
    variants = [
        (scores, rel),
        (torch.from_numpy(scores).float(), torch.from_numpy(rel)),
        (torch.from_numpy(scores).to(torch.bfloat16), torch.from_numpy(rel).to(torch.int64)),
        (scores.astype(np.int64), rel.astype(np.float32)),
        (scores.tolist(), rel.tolist()),
        (torch.from_numpy(scores).requires_grad_(), rel),
    ]
    for s, r in variants:
        assert_stats_close(M.ranking_stats(s, r, k=5), ref)


def test_argument_errors():
    scores, rel = random_case(seed=5, nq=4, nc=6)
    with pytest.raises(ValueError, match="shape"):
        M.ranking_stats(scores, rel[:, :5])
    with pytest.raises(ValueError, match="2-D"):
        M.ranking_stats(scores[0], rel[0])
    with pytest.raises(ValueError, match="0/1"):
        M.ranking_stats(scores, rel * 3)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must"):
            M.ranking_stats(scores, rel, k=k)
    with pytest.raises(ValueError, match="chunk_size"):
        M.ranking_stats(scores, rel, chunk_size=0)
    bad = scores.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.ranking_stats(bad, rel)
    with pytest.raises(ValueError, match="NaN"):
        M.ranking_stats_reference(bad, rel)
    with pytest.raises(ValueError):
        M.ranking_stats_reference(scores, rel[:, :5])
    with pytest.raises(ValueError, match="'k'"):
        M.retrieval_summary({"ap": np.zeros(2), "ap_at_k": np.zeros(2), "recall_at_k": np.zeros(2)})
    with pytest.raises(ValueError, match="groups"):
        M.retrieval_summary(M.ranking_stats(scores, rel), groups=[0, 1])


# --------------------------------------------------------------------------------------------------------
# ranking_stats == teaching reference == brute force; chunking
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [None, 4], ids=["continuous", "ties"])
@pytest.mark.parametrize("k", [1, 5, 60, 100])
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_matches_reference(levels, k, chunk_size):
    scores, rel = random_case(seed=6, levels=levels)
    if levels is not None:
        assert all(len(np.unique(row)) < len(row) for row in scores)  # the data really has ties
    ref = M.ranking_stats_reference(scores, rel, k=k)
    got = M.ranking_stats(scores, rel, k=k, chunk_size=chunk_size)
    assert_stats_close(got, ref)
    assert (ref["num_relevant"][:2] == 0).all() and ref["num_relevant"][2] == scores.shape[1]
    assert ref["ap"][2] == 1.0 and ref["ap_at_k"][2] == 1.0  # every candidate relevant


def test_reference_matches_brute_force():
    # the reference loop itself against a from-the-definition computation (Python sort, precision lists)
    scores, rel = random_case(seed=7, nq=15, nc=25, levels=3)
    k = 6
    ref = M.ranking_stats_reference(scores, rel, k=k)
    for q in range(len(scores)):
        order = stable_desc_order(scores[q].tolist())
        ranks = [i + 1 for i, j in enumerate(order) if rel[q, j]]
        r = len(ranks)
        prec = [(h + 1) / rank for h, rank in enumerate(ranks)]
        assert ref["ap"][q] == pytest.approx(sum(prec) / r if r else 0.0, abs=1e-15)
        top = [p for p, rank in zip(prec, ranks) if rank <= k]
        assert ref["ap_at_k"][q] == pytest.approx(sum(top) / min(r, k) if r else 0.0, abs=1e-15)
        assert ref["recall_at_k"][q] == pytest.approx(len(top) / r if r else 0.0, abs=1e-15)


@pytest.mark.parametrize("levels", [None, 3], ids=["continuous", "ties"])
def test_chunked_equals_unchunked(levels, monkeypatch):
    scores, rel = random_case(seed=8, nq=50, nc=80, levels=levels, density=0.5)
    whole = M.ranking_stats(scores, rel, k=10, chunk_size=50)
    for chunk_size in (1, 3, 49, 1000):
        part = M.ranking_stats(scores, rel, k=10, chunk_size=chunk_size)
        for key in (*KEYS, "num_relevant"):
            assert torch.equal(part[key], whole[key]), (chunk_size, key)
    monkeypatch.setattr(M.retrieval, "_CPU_CHUNK_ELEMENTS", 200)  # the default chunking: 2 queries per chunk
    default = M.ranking_stats(scores, rel, k=10)
    for key in (*KEYS, "num_relevant"):
        assert torch.equal(default[key], whole[key]), key


def test_with_multilabel_relevance_end_to_end():
    # a "print" + "tribal" query; with "all" only the candidate that has both is relevant (paper 05, Fig. 4)
    q = [[1, 1, 0]]
    c = [[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]]
    scores = [[0.9, 0.8, 0.7, 0.1]]
    st_any = M.ranking_stats(scores, M.multilabel_relevance(q, c, "any"), k=2)
    st_all = M.ranking_stats(scores, M.multilabel_relevance(q, c, "all"), k=2)
    assert st_any["ap"].item() == 1.0 and st_any["recall_at_k"].item() == 0.5
    assert st_all["ap"].item() == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-15)
    assert st_all["ap_at_k"].item() == pytest.approx((1 / 2) / 2, abs=1e-15)
    assert st_all["recall_at_k"].item() == 0.5


# --------------------------------------------------------------------------------------------------------
# retrieval_summary
# --------------------------------------------------------------------------------------------------------
def test_retrieval_summary_by_hand():
    stats = {"ap": torch.tensor([1.0, 0.5, 0.0, 0.25]), "ap_at_k": torch.tensor([1.0, 0.0, 0.0, 0.5]),
             "recall_at_k": torch.tensor([0.5, 0.5, 0.0, 1.0]), "num_relevant": torch.tensor([2, 2, 0, 1]),
             "k": 100}
    res = M.retrieval_summary(stats)
    assert list(res) == ["MAP@all", "MAP@100", "Recall@100"]
    assert res == {"MAP@all": {"overall": 43.75}, "MAP@100": {"overall": 37.5}, "Recall@100": {"overall": 50.0}}
    res = M.retrieval_summary(stats, groups=np.array([1, 1, 1, 0]))
    # overall is query-weighted: (3 * 50 + 1 * 25) / 4 = 43.75, not (50 + 25) / 2
    assert res["MAP@all"] == {"overall": 43.75, 0: 25.0, 1: 50.0}
    assert res["MAP@100"] == {"overall": 37.5, 0: 50.0, 1: pytest.approx(100 / 3, abs=1e-12)}
    assert res["Recall@100"] == {"overall": 50.0, 0: 100.0, 1: pytest.approx(100 / 3, abs=1e-12)}
    assert all(type(key) is int for key in res["MAP@all"] if key != "overall")
    assert list(M.retrieval_summary({**stats, "k": 5})) == ["MAP@all", "MAP@5", "Recall@5"]


def test_retrieval_summary_of_reference_and_vectorised_agree():
    scores, rel = random_case(seed=9, nq=45, levels=5)
    groups = np.random.default_rng(9).integers(0, 3, 45)
    a = M.retrieval_summary(M.ranking_stats(scores, rel, k=10), groups=torch.from_numpy(groups))
    b = M.retrieval_summary(M.ranking_stats_reference(scores, rel, k=10), groups=groups.tolist())
    assert a.keys() == b.keys() == {"MAP@all", "MAP@10", "Recall@10"}
    for name in a:
        assert a[name].keys() == b[name].keys() == {"overall", 0, 1, 2}
        for key in a[name]:
            assert a[name][key] == pytest.approx(b[name][key], abs=1e-10)
    ref = M.ranking_stats_reference(scores, rel, k=10)
    assert a["MAP@all"]["overall"] == pytest.approx(100 * ref["ap"].mean(), abs=1e-10)
    for g in range(3):
        assert a["Recall@10"][g] == pytest.approx(100 * ref["recall_at_k"][groups == g].mean(), abs=1e-10)


# --------------------------------------------------------------------------------------------------------
# scikit-learn and torchmetrics
# --------------------------------------------------------------------------------------------------------
def test_ap_matches_sklearn_without_ties():
    from sklearn.metrics import average_precision_score

    scores, rel = random_case(seed=10, nq=30, nc=50)
    ap = M.ranking_stats(scores, rel)["ap"].numpy()
    checked = 0
    for q in range(len(scores)):
        assert len(np.unique(scores[q])) == len(scores[q])  # no ties: sklearn's thresholds = single items
        if not rel[q].any():
            with warnings.catch_warnings():  # sklearn 1.9: "No positive class found", returns 0 (older: nan)
                warnings.simplefilter("ignore")
                sk = average_precision_score(rel[q], scores[q])
            assert ap[q] == 0.0
            assert sk == 0.0 or np.isnan(sk)
            continue
        assert ap[q] == pytest.approx(average_precision_score(rel[q], scores[q]), abs=1e-12)
        checked += 1
    assert checked == 28


@pytest.mark.parametrize("k", [1, 3, 10, 50, 80])
def test_matches_torchmetrics_where_definitions_match(k):
    # torchmetrics 1.9.0, retrieval_average_precision(preds, target, top_k=k): keeps the top k by topk, then
    # returns mean_j (j / rank_j) over the relevant items j = 1..h found there, i.e. it divides by h = the
    # number of relevant items *in the top k* (0 when h = 0), not by min(R, k) (ours) nor by R. So
    #     ours_ap_at_k * min(R, k) == tm_ap_at_k * h,   with h = recall_at_k * R.
    # retrieval_recall(top_k=k) = (relevant in the top k) / R: the same definition as ours, compared as is.
    # Without top_k its AP is over the whole list, equal to ours. torchmetrics also zeroes the relevance of
    # items scored <= 0 (shift the scores positive) and ranks with topk/argsort (tie order unspecified: use
    # tie-free scores); it computes in float32.
    from torchmetrics.functional.retrieval import retrieval_average_precision, retrieval_recall

    scores, rel = random_case(seed=11, nq=40, nc=60, density=0.3)
    st = M.ranking_stats(scores, rel, k=k)
    for q in range(len(scores)):
        preds = torch.from_numpy(scores[q] - scores[q].min() + 1.0)
        target = torch.from_numpy(rel[q])
        r = int(st["num_relevant"][q])
        h = round(float(st["recall_at_k"][q]) * r)
        tm_ap_k = retrieval_average_precision(preds, target, top_k=k).item()
        assert st["ap_at_k"][q].item() * min(r, k) == pytest.approx(tm_ap_k * h, abs=1e-5)
        assert st["recall_at_k"][q].item() == pytest.approx(retrieval_recall(preds, target, top_k=k).item(),
                                                            abs=1e-6)
        assert st["ap"][q].item() == pytest.approx(retrieval_average_precision(preds, target).item(), abs=1e-6)


def test_torchmetrics_ap_at_k_normaliser_differs():
    # the hand example: relevant at ranks 1, 4, 5 (R = 3). top_k = 2: torchmetrics 1 / 1 (one hit in the top
    # 2), ours 1 / min(3, 2) = 0.5; top_k = 4: torchmetrics (1 + 2/4) / 2, ours (1 + 2/4) / 3
    from torchmetrics.functional.retrieval import retrieval_average_precision

    preds = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    target = torch.tensor([True, False, False, True, True])
    assert retrieval_average_precision(preds, target, top_k=2).item() == 1.0
    assert retrieval_average_precision(preds, target, top_k=4).item() == pytest.approx(0.75, abs=1e-7)
    assert M.ranking_stats(preds[None], target[None], k=2)["ap_at_k"].item() == 0.5
    assert M.ranking_stats(preds[None], target[None], k=4)["ap_at_k"].item() == pytest.approx(0.5, abs=1e-15)


# --------------------------------------------------------------------------------------------------------
# GPU
# --------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("levels", [None, 3], ids=["continuous", "ties"])
def test_same_values_on_cuda(levels):
    scores, rel = random_case(seed=12, nq=50, nc=300, levels=levels, density=0.2)
    cpu = M.ranking_stats(scores, rel, k=20, chunk_size=7)
    s_gpu, r_gpu = torch.from_numpy(scores).cuda(), torch.from_numpy(rel).cuda()
    for chunk_size in (None, 7):
        gpu = M.ranking_stats(s_gpu, r_gpu, k=20, chunk_size=chunk_size)
        assert gpu["ap"].device.type == "cuda"
        for key in KEYS:
            np.testing.assert_allclose(gpu[key].cpu().numpy(), cpu[key].numpy(), rtol=0, atol=1e-12)
        assert torch.equal(gpu["num_relevant"].cpu(), cpu["num_relevant"])
    s32 = M.ranking_stats(s_gpu.float(), r_gpu, k=20)  # float32 scores on the GPU: same ranking (levels) or close
    if levels is not None:
        assert_stats_close({key: v.cpu() if torch.is_tensor(v) else v for key, v in s32.items()}, cpu)
    rng = np.random.default_rng(12)
    q, c = rng.random((40, 7)) < 0.3, rng.random((70, 7)) < 0.3
    for mode in ("any", "all"):
        on_gpu = M.multilabel_relevance(torch.from_numpy(q).cuda(), torch.from_numpy(c).cuda(), mode=mode)
        assert on_gpu.device.type == "cuda"
        assert torch.equal(on_gpu.cpu(), M.multilabel_relevance(q, c, mode=mode))
    with pytest.raises(ValueError, match="device"):
        M.ranking_stats(s_gpu, torch.from_numpy(rel))
    with pytest.raises(ValueError, match="device"):
        M.multilabel_relevance(torch.from_numpy(q).cuda(), c)
