"""Tests of fashionlab.search: Eq. 4 / Eq. 6 distances, prototypes and attribute manipulation (§4.6), relevance
feedback Eq. 5 (§5) and the top-k retrieval accuracy of §7 (paper 04). Oracles: plain Python loops over
queries, gallery items and attributes; a hand-computed Eq. 5 example; a toy catalogue whose answer after a
manipulation is known by construction."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from fashionlab.search import (
    attribute_distances,
    extraction_rate,
    feedback_weights,
    manipulate,
    manipulation_targets,
    normalise_signatures,
    prototypes,
    random_manipulations,
    relevance_feedback,
    search,
    signature_distance,
    topk_retrieval_accuracy,
)

pytestmark = pytest.mark.usefixtures("one_thread")

DIMS = {"collar": 3, "sleeve": 4, "general": 5}


def _random_signatures(n, seed):
    rng = np.random.default_rng(seed)
    return {a: rng.normal(size=(n, d)) for a, d in DIMS.items()}


# ------------------------------------------------------------------------------------------- oracles
def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _euclid(u, v):
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v)))


def _eq4_loop(q, g, weights=None, normalize=True):
    """D(i, r) = sum_v w_v d(f_v(i)/|f_v(i)|, f_v(r)/|f_v(r)|), one pair and one attribute at a time."""
    nq, ng = len(next(iter(q.values()))), len(next(iter(g.values())))
    out = np.zeros((nq, ng))
    for i in range(nq):
        for r in range(ng):
            total = 0.0
            for a in q:
                u, v = list(q[a][i]), list(g[a][r])
                if normalize:
                    u, v = _unit(u), _unit(v)
                total += (1.0 if weights is None else weights[a]) * _euclid(u, v)
            out[i, r] = total
    return out


def _topk_loop(dist, targets, gallery, ks):
    """For each query with a valid, answerable target: rank by (distance, index), hit if an exact match of
    all attributes is in the first k. Gallery rows with a missing label never match and rank last."""
    hits = {k: [] for k in ks}
    valid_g = [all(x >= 0 for x in row) for row in gallery]
    for i, t in enumerate(targets):
        if any(x < 0 for x in t) or not any(valid_g[r] and list(gallery[r]) == list(t) for r in range(len(gallery))):
            continue
        order = sorted(range(len(gallery)), key=lambda r: (0 if valid_g[r] else 1, dist[i][r], r))
        for k in ks:
            hits[k].append(any(list(gallery[r]) == list(t) for r in order[:k]))
    return {k: (sum(h) / len(h) if h else float("nan")) for k, h in hits.items()}


# ------------------------------------------------------------------------------------------- Eq. 4 / Eq. 6
def test_eq4_matches_the_loop():
    q, g = _random_signatures(4, 0), _random_signatures(7, 1)
    d = signature_distance(q, g)
    assert d.shape == (4, 7)
    assert np.allclose(d.numpy(), _eq4_loop(q, g), atol=1e-9)
    assert np.allclose(signature_distance(q, g, normalize=False).numpy(), _eq4_loop(q, g, normalize=False))
    per = attribute_distances(q, g)
    assert set(per) == set(DIMS) and np.allclose(sum(per.values()).numpy(), d.numpy())
    assert all(float(t.max()) <= 2 + 1e-9 for t in per.values())        # unit vectors: distances in [0, 2]


def test_eq6_weights_match_the_loop_and_tensors_work():
    q, g = _random_signatures(3, 2), _random_signatures(5, 3)
    w = {"collar": 2.0, "sleeve": 0.5, "general": 0.0}
    assert np.allclose(signature_distance(q, g, w).numpy(), _eq4_loop(q, g, w), atol=1e-9)
    qt = {a: torch.as_tensor(v, dtype=torch.float32) for a, v in q.items()}
    gt = {a: torch.as_tensor(v, dtype=torch.float32) for a, v in g.items()}
    assert np.allclose(signature_distance(qt, gt, w).numpy(), _eq4_loop(q, g, w), atol=1e-5)


def test_normalisation_gives_unit_vectors_and_scale_invariance():
    q, g = _random_signatures(3, 4), _random_signatures(6, 5)
    n = normalise_signatures(q)
    assert all(torch.allclose(t.norm(dim=1), torch.ones(3, dtype=t.dtype)) for t in n.values())
    scaled = {a: v * (10.0 if a == "collar" else 0.1) for a, v in g.items()}
    assert torch.allclose(signature_distance(q, g), signature_distance(q, scaled))


def test_search_is_the_stable_topk_of_the_loop():
    q, g = _random_signatures(5, 6), _random_signatures(9, 7)
    g["collar"][3] = g["collar"][1]                        # exact ties in Eq. 4 between items 1 and 3
    g["sleeve"][3] = g["sleeve"][1]
    g["general"][3] = g["general"][1]
    idx = search(q, g, k=4)
    D = _eq4_loop(q, g)
    for i in range(5):
        ref = sorted(range(9), key=lambda r: (round(D[i, r], 9), r))[:4]
        assert idx[i].tolist() == ref
    with pytest.raises(ValueError, match="k must be"):
        search(q, g, k=10)


def test_signature_input_checks():
    q, g = _random_signatures(2, 8), _random_signatures(3, 9)
    with pytest.raises(ValueError, match="different attributes"):
        signature_distance(q, {a: v for a, v in g.items() if a != "general"})
    with pytest.raises(ValueError, match="same number of items"):
        signature_distance({"a": np.ones((2, 3)), "b": np.ones((3, 3))}, {"a": np.ones((2, 3)), "b": np.ones((2, 3))})
    with pytest.raises(ValueError, match="dims"):
        signature_distance({"a": np.ones((2, 3))}, {"a": np.ones((2, 4))})
    with pytest.raises(ValueError, match="no entry"):
        signature_distance(q, g, weights={"collar": 1.0})
    # a list of arrays is read as attributes 0, 1, ...; a 1-D vector as one item
    lst = signature_distance([q["collar"], q["sleeve"]], [g["collar"][0], g["sleeve"][0]])
    assert lst.shape == (2, 1)


# ------------------------------------------------------------------------------------------- §4.6 manipulation
def _toy_catalogue():
    """Every (collar, sleeve) combination, 3 x 2 values, twice. Signatures: the one-hot code of the value,
    plus a small per-item offset; the general signature is the same for everyone."""
    rng = np.random.default_rng(0)
    labels = {"collar": [], "sleeve": []}
    sig = {"collar": [], "sleeve": [], "general": []}
    for _ in range(2):
        for c, s in itertools.product(range(3), range(2)):
            labels["collar"].append(c)
            labels["sleeve"].append(s)
            sig["collar"].append(np.eye(3)[c] + 0.05 * rng.normal(size=3))
            sig["sleeve"].append(np.eye(2)[s] + 0.05 * rng.normal(size=2))
            sig["general"].append(np.ones(4))
    return {a: np.array(v) for a, v in sig.items()}, {a: np.array(v) for a, v in labels.items()}


def test_prototypes_are_the_class_means():
    sig, lab = _toy_catalogue()
    lab_missing = {a: v.copy() for a, v in lab.items()}
    lab_missing["collar"][0] = -1                                 # a missing label is ignored
    p = prototypes(sig, lab_missing)
    assert set(p) == {"collar", "sleeve"} and sorted(p["collar"]) == [0, 1, 2]
    for a in ("collar", "sleeve"):
        for v in p[a]:
            members = [i for i in range(len(lab[a])) if lab_missing[a][i] == v]
            ref = np.mean([sig[a][i] for i in members], axis=0)
            assert np.allclose(p[a][v].numpy(), ref)
    with pytest.raises(ValueError, match="no signatures"):
        prototypes(sig, {"pattern": np.zeros(12)})


def test_manipulation_finds_the_item_with_the_new_value_and_keeps_the_rest():
    sig, lab = _toy_catalogue()
    p = prototypes(sig, lab)
    # queries: items 0..5 = (collar, sleeve) = (0,0), (0,1), (1,0), (1,1), (2,0), (2,1); change the collar to 2
    q = {a: v[:6] for a, v in sig.items()}
    moved = manipulate(q, "collar", 2, p)
    assert torch.equal(moved["sleeve"], torch.as_tensor(q["sleeve"]))          # untouched attribute kept
    assert torch.allclose(moved["collar"], p["collar"][2].expand(6, 3))
    top = search(moved, sig, k=2)
    for i in range(6):
        for r in top[i].tolist():
            assert lab["collar"][r] == 2 and lab["sleeve"][r] == lab["sleeve"][i]
    # per-query values, only some rows, two attributes at once
    moved = manipulate(q, ["collar", "sleeve"], [np.array([1, 1, 0, 0, 2, 2]), 1], p, rows=[0, 3])
    assert torch.allclose(moved["collar"][0], p["collar"][1]) and torch.allclose(moved["collar"][3], p["collar"][0])
    assert torch.allclose(moved["sleeve"][3], p["sleeve"][1])
    assert torch.equal(moved["collar"][1], torch.as_tensor(q["collar"][1]))
    assert np.array_equal(q["collar"], sig["collar"][:6])                       # input not modified
    top = search(moved, sig, k=1)[:, 0].tolist()
    assert (lab["collar"][top[0]], lab["sleeve"][top[0]]) == (1, 1)
    assert (lab["collar"][top[3]], lab["sleeve"][top[3]]) == (0, 1)


def test_manipulation_input_checks():
    sig, lab = _toy_catalogue()
    p = prototypes(sig, lab)
    with pytest.raises(ValueError, match="no prototype for value 7"):
        manipulate(sig, "collar", 7, p)
    with pytest.raises(ValueError, match="no prototypes"):
        manipulate(sig, "general", 0, p)
    with pytest.raises(ValueError, match="values"):
        manipulate(sig, ["collar", "sleeve"], [1], p)


# ------------------------------------------------------------------------------------------- §5, Eq. 5
def test_eq5_hand_example():
    # unit vectors, three picked images
    liked = {"colour": np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
             "collar": np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])}
    # colour: d12 = 0, d13 = d23 = sqrt 2        -> w = 1 / (2 sqrt 2)
    # collar: d12 = d23 = sqrt 2, d13 = 2         -> w = 1 / (2 + 2 sqrt 2)
    w = feedback_weights(liked)
    assert w["colour"] == pytest.approx(1 / (2 * math.sqrt(2)))
    assert w["collar"] == pytest.approx(1 / (2 + 2 * math.sqrt(2)))
    assert w["colour"] > w["collar"]            # the picked images agree more on colour: it matters more
    # the normalisation of Eq. 4 applies: scaled copies give the same weights
    scaled = {a: v * np.array([[3.0], [0.5], [7.0]]) for a, v in liked.items()}
    assert feedback_weights(scaled) == pytest.approx(w)
    raw = feedback_weights(scaled, normalize=False)
    assert raw["colour"] == pytest.approx(1 / (2.5 + math.hypot(3, 7) + math.hypot(0.5, 7)))


def test_eq6_search_follows_the_feedback():
    # gallery: items agree with the query on colour or on collar; liked images share the colour only
    q = {"colour": np.array([[1.0, 0.0]]), "collar": np.array([[1.0, 0.0]])}
    g = {"colour": np.array([[1.0, 0.1], [0.0, 1.0]]), "collar": np.array([[0.0, 1.0], [1.0, 0.05]])}
    assert search(q, g, k=1).item() == 1            # Eq. 4: item 1 is (slightly) nearer
    liked = {"colour": np.array([[1.0, 0.0], [1.0, 0.02]]), "collar": np.array([[1.0, 0.0], [0.0, 1.0]])}
    new_q, w = relevance_feedback(q, liked)
    assert new_q is not None and w["colour"] > 10 * w["collar"]
    assert search(new_q, g, k=1, weights=w).item() == 0


def test_single_pick_replaces_the_query_and_identical_picks_need_eps():
    q = {"a": np.array([[1.0, 0.0]]), "b": np.array([[0.0, 1.0]])}
    liked = {"a": np.array([[0.0, 2.0]]), "b": np.array([[3.0, 0.0]])}
    new_q, w = relevance_feedback(q, liked)
    assert w == {"a": 1.0, "b": 1.0} and torch.equal(new_q["a"], torch.tensor([[0.0, 2.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2"):
        feedback_weights(liked)
    same = {"a": np.array([[1.0, 0.0], [2.0, 0.0]]), "b": np.array([[1.0, 0.0], [0.0, 1.0]])}
    w = feedback_weights(same)
    assert math.isinf(w["a"])
    with pytest.raises(ValueError, match="finite"):
        signature_distance(q, same, weights=w)
    assert feedback_weights(same, eps=1e-6)["a"] == pytest.approx(1e6)


# ------------------------------------------------------------------------------------------- §7 accuracy
def test_topk_accuracy_hand_example():
    gallery = np.array([[0, 0], [0, 1], [1, 1], [-1, 1]])
    targets = np.array([[1, 1], [0, 0], [2, 2], [0, -1]])
    dist = np.array([[0.1, 0.2, 0.3, 0.0],     # target (1,1) = item 2, 3rd among the valid items
                     [0.5, 0.1, 0.1, 0.0],     # target (0,0) = item 0, 3rd
                     [0.0, 0.0, 0.0, 0.0],     # (2,2) not in the gallery: skipped
                     [0.0, 0.0, 0.0, 0.0]])    # missing target value: skipped
    r = topk_retrieval_accuracy(dist, targets, gallery, ks=(1, 2, 3))
    assert r["overall"] == {1: 0.0, 2: 0.0, 3: 1.0}
    assert r["counts"] == {"overall": 2, "skipped": 2}
    r = topk_retrieval_accuracy(dist, targets, gallery, ks=(3,), skip_unanswerable=False)
    assert r["overall"] == {3: 2 / 3} and r["counts"]["overall"] == 3


def test_topk_accuracy_matches_the_loop_with_groups_and_mappings():
    rng = np.random.default_rng(11)
    Q, N, A = 40, 60, 3
    gallery = rng.integers(0, 2, (N, A))
    gallery[rng.random((N, A)) < 0.05] = -1
    targets = rng.integers(0, 2, (Q, A))
    targets[rng.random((Q, A)) < 0.05] = -1
    dist = rng.integers(0, 6, (Q, N)).astype(float)          # many ties: order by gallery index
    groups = rng.integers(-1, 3, Q)
    ks = (1, 3, 10)
    r = topk_retrieval_accuracy(dist, targets, gallery, ks=ks, groups=groups)
    ref = _topk_loop(dist, targets, gallery, ks)
    assert r["overall"] == pytest.approx(ref, nan_ok=True)
    for gv in (0, 1, 2):
        sel = groups == gv
        assert r[gv] == pytest.approx(_topk_loop(dist[sel], targets[sel], gallery, ks), nan_ok=True)
    assert -1 not in r
    # mappings, a subset of the attributes and torch distances give the same numbers as arrays
    names = ["collar", "sleeve", "fastening"]
    tm = {n: targets[:, j] for j, n in enumerate(names)}
    gm = {n: torch.as_tensor(gallery[:, j]) for j, n in enumerate(names)}
    sub = topk_retrieval_accuracy(torch.as_tensor(dist), tm, gm, ks=ks, attributes=["collar", "fastening"])
    assert sub["overall"] == pytest.approx(_topk_loop(dist, targets[:, [0, 2]], gallery[:, [0, 2]], ks), nan_ok=True)


def test_topk_accuracy_input_checks():
    with pytest.raises(ValueError, match="targets"):
        topk_retrieval_accuracy(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="positive"):
        topk_retrieval_accuracy(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((3, 2)), ks=(0,))
    with pytest.raises(ValueError, match="no labels"):
        topk_retrieval_accuracy(np.zeros((2, 3)), {"a": [0, 0]}, {"b": [0, 0, 0]})


def test_manipulation_targets_and_random_manipulations():
    q = np.array([[0, 1, 2], [1, 1, 1], [0, -1, 0]])
    t = manipulation_targets(q, [0, -1, 2], [1, 5, 3])
    assert t.tolist() == [[1, 1, 2], [1, 1, 1], [0, -1, 3]]

    rng = np.random.default_rng(12)
    gallery = rng.integers(0, 3, (50, 3))
    queries = rng.integers(0, 3, (30, 3))
    queries[0, 1] = -1
    idx, val, tgt = random_manipulations(queries, gallery, rng=0)
    assert idx[0] == -1 and (tgt[0] == -1).all()
    existing = set(map(tuple, gallery.tolist()))
    for i in range(1, 30):
        if idx[i] < 0:
            continue
        diff = np.flatnonzero(tgt[i] != queries[i])
        assert diff.tolist() == [idx[i]] and tgt[i, idx[i]] == val[i] != queries[i, idx[i]]
        assert tuple(tgt[i]) in existing                       # require_target: every change has an answer
    again = random_manipulations(queries, gallery, rng=0)
    assert all(np.array_equal(a, b) for a, b in zip((idx, val, tgt), again))
    # the per-attribute accuracy of Table 2 groups queries by the manipulated attribute
    r = topk_retrieval_accuracy(rng.random((30, 50)), tgt, gallery, ks=(5,), groups=idx)
    assert r["counts"]["overall"] == sum(r["counts"][a] for a in range(3)) == int((idx >= 0).sum())


def test_end_to_end_manipulation_accuracy_on_the_toy_catalogue():
    sig, lab = _toy_catalogue()
    p = prototypes(sig, lab)
    labels = np.stack([lab["collar"], lab["sleeve"]], 1)
    q = {a: v[:6] for a, v in sig.items()}
    idx = np.array([0, 1, 0, 1, 0, 1])                          # manipulate collar or sleeve
    val = np.array([1, 0, 2, 0, 0, 0])
    names = ["collar", "sleeve"]
    moved = q
    for j, name in enumerate(names):
        moved = manipulate(moved, name, val, p, rows=idx == j)
    targets = manipulation_targets(labels[:6], idx, val)
    r = topk_retrieval_accuracy(signature_distance(moved, sig), targets, labels, ks=(1, 2), groups=idx)
    assert r["overall"] == {1: 1.0, 2: 1.0} and r[0] == {1: 1.0, 2: 1.0} and r[1] == {1: 1.0, 2: 1.0}
    # direct retrieval: the query's own labels are demanded, and the query itself is in the gallery
    direct = topk_retrieval_accuracy(signature_distance(q, sig), labels[:6], labels, ks=(1,))
    assert direct["overall"] == {1: 1.0}


# ------------------------------------------------------------------------------------------- §7.6
def test_extraction_rate_times_every_image_in_batches():
    seen = []
    rate = extraction_rate(lambda b: seen.append(len(b)), list(range(10)), batch=4, warmup=1)
    assert rate > 0 and seen == [4, 4, 4, 2]                   # one warm-up batch, then 10 images in 3 batches
    x = torch.randn(6, 3, 8, 8)
    assert extraction_rate(lambda b: b.mean(), x, batch=6, warmup=0) > 0
    with pytest.raises(ValueError):
        extraction_rate(lambda b: b, [], batch=2)
    with pytest.raises(ValueError):
        extraction_rate(lambda b: b, [1], batch=0)
