"""Tests of fashionlab.searchdemo: the SearchSession logic of the notebook-04 demo (Eq. 4 search, §4.6
manipulation, §5 relevance feedback with Eq. 5 / Eq. 6) and the widget driven by its buttons. Oracles: Eq. 4 / 6
computed with numpy loops over gallery items and attributes; a toy catalogue of 2-d unit vectors (one direction
per attribute value) where the answer after a manipulation is known by construction."""
import numpy as np
import pytest
import torch

from fashionlab.searchdemo import SearchResult, SearchSession, search_demo

pytestmark = pytest.mark.usefixtures("one_thread")

ATTRS = ["colour", "collar"]
NAMES = {"colour": ["red", "green", "blue"], "collar": ["round", "v-neck"]}
ANGLES = {"colour": [0.0, 120.0, 240.0], "collar": [0.0, 90.0]}


def _unit(deg):
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r)])


def _catalogue():
    """Gallery: every (colour, collar) pair once, signatures = the unit vector of each value (times a scale,
    which the normalisation removes), "general" the same for all. Queries: (red, round), (blue, v-neck) and
    (green, unknown collar). Prototypes: the exact value vectors."""
    pairs = [(c, k) for c in range(3) for k in range(2)]
    scale = np.arange(1, len(pairs) + 1, dtype=float)[:, None]
    gallery = {"colour": np.stack([_unit(ANGLES["colour"][c]) for c, _ in pairs]) * scale,
               "collar": np.stack([_unit(ANGLES["collar"][k]) for _, k in pairs]) * scale,
               "general": np.ones((len(pairs), 2))}
    qlab = np.array([[0, 0], [2, 1], [1, -1]])
    query = {"colour": np.stack([_unit(ANGLES["colour"][c]) for c in qlab[:, 0]]),
             "collar": np.stack([_unit(ANGLES["collar"][max(k, 0)] + 30.0) for k in qlab[:, 1]]),
             "general": np.ones((3, 2))}
    protos = {a: {v: torch.tensor(_unit(ang)) for v, ang in enumerate(ANGLES[a])} for a in ATTRS}
    return query, gallery, protos, qlab, np.array(pairs)


def _session(**kw):
    query, gallery, protos, qlab, glab = _catalogue()
    args = dict(query_signatures=query, gallery_signatures=gallery, prototypes=protos, query_labels=qlab,
                gallery_labels=glab, attributes=ATTRS, value_names=NAMES, manipulable=ATTRS)
    args.update(kw)
    return SearchSession(**args)


def _random_session(n_query=3, n_gallery=9, seed=0, **kw):
    rng = np.random.default_rng(seed)
    dims = {"colour": 3, "collar": 4, "general": 5}
    q = {a: rng.normal(size=(n_query, d)) for a, d in dims.items()}
    g = {a: rng.normal(size=(n_gallery, d)) for a, d in dims.items()}
    qlab = np.stack([rng.integers(0, 3, n_query), rng.integers(0, 2, n_query)], 1)
    glab = np.stack([rng.integers(0, 3, n_gallery), rng.integers(0, 2, n_gallery)], 1)
    protos = {a: {v: torch.tensor(rng.normal(size=dims[a])) for v in range(len(NAMES[a]))} for a in ATTRS}
    s = SearchSession(q, g, protos, qlab, glab, ATTRS, NAMES, ATTRS, **kw)
    return s, q, g, protos


def _eq6_loop(qsig, gallery, weights=None):
    """D(r) = sum_v w_v |q_v/|q_v| - g_v(r)/|g_v(r)||, one gallery item and one attribute at a time."""
    n = len(next(iter(gallery.values())))
    out = np.zeros(n)
    for r in range(n):
        for a in qsig:
            u = np.asarray(qsig[a], float) / np.linalg.norm(qsig[a])
            v = np.asarray(gallery[a][r], float) / np.linalg.norm(gallery[a][r])
            out[r] += (1.0 if weights is None else weights[a]) * np.sqrt(((u - v) ** 2).sum())
    return out


def _pair_sum(gallery, attribute, rows):
    """sum over unordered pairs k < j of the picked rows of |g_k/|g_k| - g_j/|g_j||."""
    total = 0.0
    for i, k in enumerate(rows):
        for j in rows[i + 1:]:
            u = gallery[attribute][k] / np.linalg.norm(gallery[attribute][k])
            v = gallery[attribute][j] / np.linalg.norm(gallery[attribute][j])
            total += np.sqrt(((u - v) ** 2).sum())
    return total


# ------------------------------------------------------------------------------------------- SearchSession
def test_plain_ranking_is_the_brute_force_eq4_ranking():
    s, q, g, _ = _random_session()
    for i in range(3):
        res = s.rank(i, k=9)
        assert isinstance(res, SearchResult) and res.weights is None and res.liked == ()
        d = _eq6_loop({a: q[a][i] for a in q}, g)
        np.testing.assert_array_equal(res.indices, np.argsort(d, kind="stable"))
        np.testing.assert_allclose(res.distances, np.sort(d), atol=1e-6)
    assert len(s.rank(0, k=4).indices) == 4


def test_ties_keep_gallery_order():
    gallery = _catalogue()[1]
    gallery = {a: np.repeat(t[:1], 6, axis=0) for a, t in gallery.items()}      # six identical items
    s = _session(gallery_signatures=gallery)
    np.testing.assert_array_equal(s.rank(0, k=6).indices, np.arange(6))


def test_manipulation_puts_the_item_with_the_demanded_values_first():
    s = _session()
    glab = _catalogue()[4]
    for q, changes in [(0, {"colour": 2}), (0, {"colour": "green"}), (1, {"collar": 0}),
                       (0, {"colour": 1, "collar": 1})]:
        res = s.rank(q, changes, k=6)
        want = s.query_labels[q].copy()
        for a, v in changes.items():
            want[ATTRS.index(a)] = NAMES[a].index(v) if isinstance(v, str) else v
        np.testing.assert_array_equal(res.target, want)
        np.testing.assert_array_equal(glab[res.indices[0]], want)
        off = 0.0 if "collar" in changes else 2 * np.sin(np.deg2rad(15))   # query collars are 30 deg off
        assert res.distances[0] == pytest.approx(off, abs=1e-6)
        assert res.exact[0] and res.exact.sum() == 1          # every pair exists once in the gallery
    # without the change query 0 = (red, round) finds itself first; "keep" entries change nothing
    np.testing.assert_array_equal(glab[s.rank(0, k=1).indices[0]], [0, 0])
    np.testing.assert_array_equal(s.rank(0, {"colour": None, "collar": -1}, k=6).indices, s.rank(0, k=6).indices)


def test_exact_flags_follow_the_known_target_values():
    glab = _catalogue()[4].copy()
    glab[3] = [1, -1]                                      # (green, ?) in the gallery
    s = _session(gallery_labels=glab)
    res = s.rank(2, k=6)                                   # query 2 = (green, unknown collar)
    np.testing.assert_array_equal(res.target, [1, -1])
    assert sorted(res.indices[res.exact].tolist()) == [2, 3]   # only the colour is compared
    res = s.rank(2, {"collar": 1}, k=6)                    # now (green, v-neck): item 3 has no collar label
    np.testing.assert_array_equal(res.target, [1, 1])
    hand = [bool(glab[r, 0] == 1 and glab[r, 1] == 1) for r in res.indices]
    np.testing.assert_array_equal(res.exact, hand)
    assert res.exact.sum() == 0                            # (green, v-neck) was item 3, now unlabelled


def test_target_applies_the_changes_to_the_query_labels():
    s = _session()
    np.testing.assert_array_equal(s.target(0), [0, 0])
    np.testing.assert_array_equal(s.target(0, {"colour": 2}), [2, 0])
    np.testing.assert_array_equal(s.target(1, {"colour": "red", "collar": "round"}), [0, 0])
    np.testing.assert_array_equal(s.target(2, {"collar": 1}), [1, 1])
    assert s.query_labels[0].tolist() == [0, 0]           # the labels are not modified


def test_one_liked_image_replaces_the_query():
    s, _, g, _ = _random_session()
    for liked in (0, 5, 8):
        res = s.rank(1, {"colour": 2}, k=9, liked=[liked])
        assert res.indices[0] == liked and res.distances[0] == pytest.approx(0.0, abs=1e-6)
        assert res.weights is None and res.liked == (liked,)
        np.testing.assert_array_equal(res.indices, np.argsort(_eq6_loop({a: g[a][liked] for a in g}, g),
                                                              kind="stable"))
        np.testing.assert_array_equal(res.target, s.target(1, {"colour": 2}))   # still the demanded labels


@pytest.mark.parametrize("liked", [[2, 7], [1, 4, 6]])
def test_several_liked_images_give_eq5_weights_and_keep_the_manipulation(liked):
    s, q, g, protos = _random_session()
    res = s.rank(0, {"collar": 1}, k=9, liked=liked)
    assert set(res.weights) == {"colour", "collar", "general"}
    for a in res.weights:
        assert res.weights[a] == pytest.approx(1.0 / (_pair_sum(g, a, liked) + s.eps), rel=1e-9)
    manipulated = {a: q[a][0] for a in q}
    manipulated["collar"] = protos["collar"][1].numpy()
    d = _eq6_loop(manipulated, g, res.weights)
    np.testing.assert_array_equal(res.indices, np.argsort(d, kind="stable"))
    np.testing.assert_allclose(res.distances, np.sort(d), rtol=1e-6, atol=1e-6)
    # explicit weights give the same ranking
    again = s.rank(0, {"collar": 1}, k=9, weights=res.weights)
    np.testing.assert_array_equal(again.indices, res.indices)


def test_identical_picks_give_finite_weights():
    _, gallery, _, _, glab = _catalogue()
    gallery = {a: np.concatenate([t, t[:1]]) for a, t in gallery.items()}   # item 6 = item 0
    s = _session(gallery_signatures=gallery, gallery_labels=np.concatenate([glab, glab[:1]]))
    res = s.rank(1, k=3, liked=[0, 6])
    assert all(np.isfinite(v) and v > 0 for v in res.weights.values())


def test_describe_names_labels_and_predictions():
    s = _session(predicted=np.array([[0, 1], [2, 1], [1, 0]]))
    assert s.describe(0) == {"labels": {"colour": "red", "collar": "round"},
                             "predicted": {"colour": "red", "collar": "v-neck"}}
    assert s.describe(2)["labels"] == {"colour": "green", "collar": "?"}
    assert _session().describe(1)["predicted"] == {"colour": "blue", "collar": "v-neck"}   # default: the labels


def test_bad_inputs_raise_clear_errors():
    _, gallery, protos, qlab, _ = _catalogue()
    with pytest.raises(ValueError, match="query_labels must have shape"):
        _session(query_labels=qlab[:, :1])
    with pytest.raises(ValueError, match="gallery_labels: attribute 'colour' has values out of range"):
        _session(gallery_labels=np.array([[3, 0]] * 6))
    with pytest.raises(ValueError, match="predicted must have shape"):
        _session(predicted=qlab[:2])
    with pytest.raises(ValueError, match="value_names has no names"):
        _session(value_names={"colour": NAMES["colour"]})
    with pytest.raises(ValueError, match="manipulable attribute 'pattern' is not in attributes"):
        _session(manipulable=["pattern"])
    with pytest.raises(ValueError, match="'collar' has no prototypes"):
        _session(prototypes={"colour": protos["colour"]})
    with pytest.raises(ValueError, match="prototypes\\['collar'\\]\\[0\\] has 3 dims"):
        _session(prototypes={**protos, "collar": {0: torch.zeros(3)}})
    with pytest.raises(ValueError, match="different keys"):
        _session(gallery_signatures={a: t for a, t in gallery.items() if a != "general"})
    with pytest.raises(ValueError, match="gallery_signatures\\['collar'\\] has 5 rows"):
        _session(gallery_signatures={**gallery, "collar": gallery["collar"][:5]})
    with pytest.raises(ValueError, match="gallery_images has 5 images for 6 items"):
        _session(gallery_images=np.zeros((5, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="query_images must be"):
        _session(query_images=np.zeros((3, 4, 4), np.uint8))
    s = _session()
    with pytest.raises(ValueError, match="query must be an index in 0..2"):
        s.rank(3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        s.rank(0, k=0)
    assert len(s.rank(0, k=7).indices) == 6                # k above the gallery size: the whole gallery
    with pytest.raises(ValueError, match="cannot change attribute 'pattern'"):
        s.rank(0, {"pattern": 1})
    with pytest.raises(ValueError, match="value 5 of attribute 'colour' is out of range"):
        s.target(0, {"colour": 5})
    with pytest.raises(ValueError, match="no value named 'pink'"):
        s.rank(0, {"colour": "pink"})
    with pytest.raises(ValueError, match="liked must hold gallery indices"):
        s.rank(0, liked=[6])
    with pytest.raises(ValueError, match="repeated"):
        s.rank(0, liked=[1, 1])
    with pytest.raises(ValueError, match="not both"):
        s.rank(0, liked=[1, 2], weights={"colour": 1, "collar": 1, "general": 1})
    with pytest.raises(ValueError, match="weights has no entry"):
        s.rank(0, weights={"colour": 1})
    no_blue = _session(prototypes={**protos, "colour": {0: protos["colour"][0]}})
    with pytest.raises(ValueError, match="no prototype for value 2 \\(blue\\)"):
        no_blue.rank(0, {"colour": 2})


# ------------------------------------------------------------------------------------------- widget
def test_widget_manipulation_and_feedback_buttons():
    pytest.importorskip("ipywidgets")
    rng = np.random.default_rng(1)
    s = _session(query_images=rng.integers(0, 256, (3, 3, 10, 8), dtype=np.uint8),          # channels first
                 gallery_images=rng.integers(0, 256, (6, 10, 8, 3), dtype=np.uint8))
    box = search_demo(s, k=4, thumb=24)
    assert set(box.changes) == set(ATTRS) and box.changes["colour"].value == -1
    assert box.query_image.value[:4] == b"\x89PNG" and "predicted" in box.query_info.value
    assert len(box.likes) == len(box.result_images) == 4
    first = box.result.indices.tolist()
    assert box.result.target.tolist() == [0, 0] and first[0] == 0
    assert "green" in box.result_images[0].layout.border                  # item 0 is the exact match

    box.changes["colour"].value = 2                                       # (red, round) -> (blue, round)
    assert box.result.target.tolist() == [2, 0] and box.result.indices[0] == 4
    assert box.result.indices.tolist() != first
    borders = ["green" in im.layout.border for im in box.result_images]
    assert borders == box.result.exact.tolist() and borders[0]

    box.feedback_button.click()                                           # nothing ticked yet
    assert "tick" in box.weights_html.value and box.result.liked == ()
    shown = box.result.indices.tolist()
    box.likes[1].value = box.likes[2].value = True
    box.feedback_button.click()
    picks = (shown[1], shown[2])
    assert box.result.liked == picks and box.result.weights is not None
    assert box.result.target.tolist() == [2, 0]                           # the manipulation stays applied
    assert "Eq. 5 weights" in box.weights_html.value
    shares = [float(x.split(": ")[1]) for x in box.weights_html.value.split("): ")[1].split(", ")]
    assert sum(shares) == pytest.approx(1.0, abs=0.02) and len(shares) == 3
    expect = s.rank(0, {"colour": 2}, k=4, liked=list(picks))
    np.testing.assert_array_equal(box.result.indices, expect.indices)
    assert [c.value for c in box.likes] == [r in picks for r in box.result.indices.tolist()]

    box.k.value = 6
    assert len(box.likes) == 6 and box.result.liked == picks
    box.reset_button.click()
    assert box.changes["colour"].value == -1 and box.weights_html.value == ""
    assert box.result.liked == () and box.result.indices[0] == 0

    box.likes[3].value = True                                             # one pick replaces the query
    pick = box.result.indices[3]
    box.feedback_button.click()
    assert box.result.indices[0] == pick and "replaced" in box.weights_html.value
    box.query.value = 1                                                   # a new query forgets the picks
    assert box.result.liked == () and box.result.target.tolist() == [2, 1]


def test_widget_rows_wrap_and_static_view_says_what_it_is():
    """Issue 22: the dropdown row wraps (at 1400 px the last dropdowns used to scroll off; make browser-check
    measures it in Chromium), and a static view shows a note, not ``VBox(children=(...))``."""
    pytest.importorskip("ipywidgets")
    from fashionlab.searchdemo import STATIC_HTML, STATIC_NOTE

    box = search_demo(_session(), k=3, thumb=16)
    assert list(box.controls.children) == list(box.changes.values())
    assert box.controls.layout.flex_flow == "row wrap"
    assert all(dd.style.description_width == "initial" for dd in box.changes.values())   # names not cut
    bundle = box._repr_mimebundle_()
    assert bundle["text/plain"] == repr(box) == STATIC_NOTE and len(STATIC_NOTE) <= 110   # ipywidgets cuts at 110
    assert "live kernel" in STATIC_NOTE and "VBox" not in bundle["text/plain"]
    assert bundle["text/html"] == STATIC_HTML and "live kernel" in STATIC_HTML
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id


def test_notebook04_static_widget_output_is_the_note():
    """The committed output of notebook 04's widget cell is what the widget shows without a kernel (its text/plain
    and text/html), and the markdown above it says so."""
    import json
    from pathlib import Path

    from fashionlab.searchdemo import STATIC_HTML, STATIC_NOTE

    path = Path(__file__).resolve().parents[1] / "notebooks" / "04_part_guided_search.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    i = next(i for i, c in enumerate(cells) if c["cell_type"] == "code" and "search_demo(session" in "".join(c["source"]))
    (out,) = cells[i]["outputs"]
    assert "".join(out["data"]["text/plain"]) == STATIC_NOTE
    assert "".join(out["data"]["text/html"]) == STATIC_HTML
    assert "static copy" in "".join(cells[i - 1]["source"]) and "see nothing" not in "".join(cells[i - 1]["source"])
