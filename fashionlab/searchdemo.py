"""Interactive fashion search demo of notebook 04 (paper 04, Ak et al.): pick a query, change attributes from
dropdowns, see the top-k; tick the results you like and see the re-weighted search.

The ranking logic lives in :class:`SearchSession`, which has no widget code and is tested on its own; the
widget :func:`search_demo` is a thin layer over it. All formulas come from :mod:`fashionlab.search`:

* §4.6, Eq. 4 search ``D(i, r) = Σ_v d(f_v(i), f_v(r)')`` over L2-normalised signatures -
  :meth:`SearchSession.rank` without ``liked``.
* §4.6 attribute manipulation: the query's signature of a changed attribute is replaced by the prototype (mean
  training signature) of the desired value - :meth:`SearchSession.rank` with ``changes``; the label row the
  search then demands (§7.2) - :meth:`SearchSession.target`.
* §5 relevance feedback: one picked image replaces the query; two or more give the Eq. 5 weights
  ``w_v = 1 / Σ_{k<j} d(f_v(k), f_v(j)')`` and the next search uses Eq. 6 ``D(i, r) = Σ_v w_v d(f_v(i), f_v(r)')``
  - :meth:`SearchSession.rank` with ``liked``; in the widget the button "Search again with my picks".

Signatures are ``{key: (n, d) array or tensor}`` (one key per special attribute plus e.g. ``"general"``);
labels are ``(n, A)`` int arrays with -1 for unknown, columns in ``attributes`` order.
"""
from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .search import manipulate, manipulation_targets, relevance_feedback, signature_distance

__all__ = ["SearchResult", "SearchSession", "search_demo"]

KEEP = -1          # dropdown value of "(keep)": no change of that attribute
#: what a static view of the widget's cell shows (its text/plain, at most the 110 characters ipywidgets keeps, and
#: its text/html): JupyterLab and Colab with a kernel show the widget itself
STATIC_NOTE = "fashionlab's search widget (notebook 04) needs a live kernel: run the notebook's cells to use it"
STATIC_HTML = ("<p><b>Search widget.</b> It needs a live kernel: run the notebook in JupyterLab or Colab to pick a "
               "query, change its attributes from the dropdowns, tick the results you like and search again. A static "
               "copy of the notebook (GitHub, the course website) shows this note in its place.</p>")


def _tensor_dict(sig: Any, name: str) -> dict:
    """``{key: (n, d) floating tensor}`` with the same n for every key."""
    if not isinstance(sig, Mapping) or not sig:
        raise ValueError(f"{name} must be a non-empty mapping {{attribute: (n, d) array}}")
    out, n = {}, None
    for a, v in sig.items():
        t = v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
        if t.dim() != 2:
            raise ValueError(f"{name}[{a!r}] must be (n, d), got shape {tuple(t.shape)}")
        if n is not None and t.shape[0] != n:
            raise ValueError(f"{name}[{a!r}] has {t.shape[0]} rows, the other attributes {n}")
        n = t.shape[0]
        out[a] = t if t.is_floating_point() else t.to(torch.float64)
    return out


def _int_matrix(x: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (items x attributes), got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.array_equal(a, np.round(a)):
            raise ValueError(f"{name} must hold integer label indices")
    return a.astype(np.int64)


def _images(x: Any, n: int, name: str) -> np.ndarray | None:
    """``(n, H, W, 3)`` uint8 (channels-first input is transposed; floats are read as 0..1)."""
    if x is None:
        return None
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    if a.ndim == 4 and a.shape[1] == 3 and a.shape[3] != 3:
        a = a.transpose(0, 2, 3, 1)
    if a.ndim != 4 or a.shape[3] != 3:
        raise ValueError(f"{name} must be (n, H, W, 3) or (n, 3, H, W), got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} images for {n} items")
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float64) * 255.0 if np.issubdtype(a.dtype, np.floating) else a), 0, 255)
    return np.ascontiguousarray(a.astype(np.uint8))


@dataclass
class SearchResult:
    """One ranking of :meth:`SearchSession.rank`: ``indices`` (k gallery indices, nearest first),
    ``distances`` (their Eq. 4 / Eq. 6 distances), ``exact`` (gallery labels equal ``target`` on every attribute
    whose target is known, §7), ``target`` (the demanded ``(A,)`` label row), ``weights`` (the Eq. 5 weights
    used by Eq. 6, or None for Eq. 4), ``liked`` (the picked gallery indices, empty without feedback)."""
    indices: np.ndarray
    distances: np.ndarray
    exact: np.ndarray
    target: np.ndarray
    weights: dict | None
    liked: tuple = ()


class SearchSession:
    """The search of paper 04 for one query at a time: §4.6 (Eq. 4 search, attribute manipulation with
    prototypes) and §5 (relevance feedback, Eq. 5 weights, Eq. 6 search), without any widget.

    ``query_signatures`` / ``gallery_signatures``: ``{key: (Q, d) / (N, d)}`` with the same keys (special
    attributes and e.g. ``"general"``). ``prototypes``: ``{attribute: {value: (d,)}}`` from
    :func:`fashionlab.search.prototypes`. ``query_labels`` / ``gallery_labels``: ``(Q, A)`` / ``(N, A)`` ints,
    -1 = unknown, columns in ``attributes`` order. ``value_names``: ``{attribute: [value names]}``.
    ``manipulable``: the attributes offered for manipulation (each needs signatures and prototypes).
    ``predicted``: the network's ``(Q, A)`` predictions for the queries (shown in the demo; default the labels).
    ``query_images`` / ``gallery_images``: optional ``(n, H, W, 3)`` or ``(n, 3, H, W)`` pictures for display.
    ``eps``: added to the Eq. 5 sums so that identical picks give a large, finite weight.
    """

    def __init__(self, query_signatures: Mapping, gallery_signatures: Mapping, prototypes: Mapping,
                 query_labels, gallery_labels, attributes: Sequence[str], value_names: Mapping[str, Sequence[str]],
                 manipulable: Sequence[str], query_images=None, gallery_images=None, predicted=None,
                 eps: float = 1e-6):
        self.query_signatures = _tensor_dict(query_signatures, "query_signatures")
        self.gallery_signatures = _tensor_dict(gallery_signatures, "gallery_signatures")
        qs, gs = self.query_signatures, self.gallery_signatures
        if set(qs) != set(gs):
            raise ValueError(f"query and gallery signatures have different keys: {sorted(map(str, qs))} vs "
                             f"{sorted(map(str, gs))}")
        for a in qs:
            if qs[a].shape[1] != gs[a].shape[1]:
                raise ValueError(f"signatures of {a!r}: query has {qs[a].shape[1]} dims, gallery {gs[a].shape[1]}")
        self.n_queries = next(iter(qs.values())).shape[0]
        self.n_gallery = next(iter(gs.values())).shape[0]

        self.attributes = list(attributes)
        if not self.attributes or len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"attributes must be a non-empty list of distinct names, got {self.attributes}")
        missing = [a for a in self.attributes if a not in value_names]
        if missing:
            raise ValueError(f"value_names has no names for attributes {missing}")
        self.value_names = {a: list(value_names[a]) for a in self.attributes}
        A = len(self.attributes)
        self.query_labels = _int_matrix(query_labels, (self.n_queries, A), "query_labels")
        self.gallery_labels = _int_matrix(gallery_labels, (self.n_gallery, A), "gallery_labels")
        self.predicted = (self.query_labels.copy() if predicted is None
                          else _int_matrix(predicted, (self.n_queries, A), "predicted"))
        for name, lab in (("query_labels", self.query_labels), ("gallery_labels", self.gallery_labels),
                          ("predicted", self.predicted)):
            for j, a in enumerate(self.attributes):
                bad = (lab[:, j] < -1) | (lab[:, j] >= len(self.value_names[a]))
                if bad.any():
                    i = int(bad.argmax())
                    raise ValueError(f"{name}: attribute {a!r} has values out of range "
                                     f"-1..{len(self.value_names[a]) - 1} (e.g. {int(lab[i, j])} in row {i})")

        self.manipulable = list(manipulable)
        for a in self.manipulable:
            if a not in self.attributes:
                raise ValueError(f"manipulable attribute {a!r} is not in attributes {self.attributes}")
            if a not in qs:
                raise ValueError(f"manipulable attribute {a!r} has no signatures (keys: {list(qs)})")
            if a not in prototypes or not prototypes[a]:
                raise ValueError(f"manipulable attribute {a!r} has no prototypes")
        self.prototypes = {}
        for a in self.manipulable:
            protos = {}
            for v, p in prototypes[a].items():
                if not 0 <= int(v) < len(self.value_names[a]):
                    raise ValueError(f"prototypes[{a!r}] has value {v}, out of range 0..{len(self.value_names[a]) - 1}")
                t = p.detach() if isinstance(p, torch.Tensor) else torch.as_tensor(np.asarray(p))
                if t.reshape(-1).shape[0] != qs[a].shape[1]:
                    raise ValueError(f"prototypes[{a!r}][{v}] has {t.numel()} dims, signatures {qs[a].shape[1]}")
                protos[int(v)] = t.reshape(-1).to(qs[a].dtype)
            self.prototypes[a] = protos
        self.query_images = _images(query_images, self.n_queries, "query_images")
        self.gallery_images = _images(gallery_images, self.n_gallery, "gallery_images")
        self.eps = float(eps)

    # ------------------------------------------------------------------------------------------ checks
    def _query(self, query) -> int:
        q = int(query)
        if q != query or not 0 <= q < self.n_queries:
            raise ValueError(f"query must be an index in 0..{self.n_queries - 1}, got {query!r}")
        return q

    def _changes(self, changes: Mapping | None, manipulable: bool) -> dict[str, int]:
        """``changes`` without "keep" entries (None or -1), checked; a value may be an index or a value name."""
        out = {}
        if changes is not None and not isinstance(changes, Mapping):
            raise ValueError(f"changes must be a mapping {{attribute: value}}, got {type(changes).__name__}")
        for a, v in (changes or {}).items():
            if v is None or (not isinstance(v, str) and v == KEEP):
                continue
            allowed = self.manipulable if manipulable else self.attributes
            if a not in allowed:
                raise ValueError(f"cannot change attribute {a!r}: choose among {allowed}")
            if isinstance(v, str):
                if v not in self.value_names[a]:
                    raise ValueError(f"attribute {a!r} has no value named {v!r} (values: {self.value_names[a]})")
                v = self.value_names[a].index(v)
            if not 0 <= int(v) < len(self.value_names[a]) or int(v) != v:
                raise ValueError(f"value {v!r} of attribute {a!r} is out of range 0..{len(self.value_names[a]) - 1}")
            if manipulable and int(v) not in self.prototypes[a]:
                raise ValueError(f"attribute {a!r} has no prototype for value {int(v)} "
                                 f"({self.value_names[a][int(v)]}); known: {sorted(self.prototypes[a])}")
            out[a] = int(v)
        return out

    def _name(self, attribute: str, value: int) -> str:
        names = self.value_names[attribute]
        return names[value] if 0 <= value < len(names) else "?"

    # ------------------------------------------------------------------------------------------ API
    def target(self, query: int, changes: Mapping | None = None) -> np.ndarray:
        """§7.2 demanded label row ``(A,)``: the query's labels with ``changes = {attribute: value}`` (index or
        value name; None / -1 = keep) applied (:func:`fashionlab.search.manipulation_targets`, one attribute at
        a time); -1 = unknown."""
        q = self._query(query)
        t = self.query_labels[q:q + 1]
        for a, v in self._changes(changes, manipulable=False).items():
            t = manipulation_targets(t, self.attributes.index(a), v)
        return t[0].copy()

    def rank(self, query: int, changes: Mapping | None = None, k: int = 10, weights: Mapping | None = None,
             liked: Sequence[int] | None = None) -> SearchResult:
        """The k nearest gallery items of one query (stable sort: ties by gallery order; a k above the gallery
        size gives the whole gallery).

        §4.6: the query's signatures with every ``changes`` entry ``{attribute: value}`` replaced by the
        prototype of that value (:func:`fashionlab.search.manipulate`), ranked by Eq. 4. §5 with ``liked``
        (gallery indices the user picked): one pick replaces the query (and any manipulation) by that image,
        ranked by Eq. 4; two or more keep the (manipulated) query and rank by Eq. 6 with the Eq. 5 weights of the
        picks (:func:`fashionlab.search.relevance_feedback`, ``eps`` of the session). ``weights``: explicit Eq. 6
        weights ``{key: w}`` instead (not together with ``liked``). ``exact`` and ``target`` refer to the demanded
        labels, :meth:`target`, also after feedback.
        """
        q = self._query(query)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        k = min(int(k), self.n_gallery)
        ch = self._changes(changes, manipulable=True)
        liked = [] if liked is None else list(liked)
        if liked and weights is not None:
            raise ValueError("give either weights or liked (which computes the Eq. 5 weights), not both")
        for r in liked:
            if int(r) != r or not 0 <= int(r) < self.n_gallery:
                raise ValueError(f"liked must hold gallery indices in 0..{self.n_gallery - 1}, got {r!r}")
        liked = [int(r) for r in liked]
        if len(set(liked)) != len(liked):
            raise ValueError(f"liked has repeated gallery indices: {liked}")
        if weights is not None:
            missing = [a for a in self.query_signatures if a not in weights]
            if missing:
                raise ValueError(f"weights has no entry for {missing}")
            weights = {a: float(weights[a]) for a in self.query_signatures}

        sig = {a: t[q:q + 1] for a, t in self.query_signatures.items()}
        if ch:
            sig = manipulate(sig, list(ch), list(ch.values()), self.prototypes)
        if liked:
            picked = {a: t[liked] for a, t in self.gallery_signatures.items()}
            sig, w = relevance_feedback(sig, picked, eps=self.eps)
            weights = w if len(liked) > 1 else None      # one pick: plain Eq. 4 from the picked image
        d = signature_distance(sig, self.gallery_signatures, weights)[0]
        order = torch.sort(d, stable=True).indices[:k].cpu().numpy()
        target = self.target(q, ch)
        known = target >= 0
        exact = (self.gallery_labels[order][:, known] == target[known]).all(1)
        return SearchResult(order, d[order].cpu().numpy(), exact, target, weights, tuple(liked))

    def describe(self, query: int) -> dict[str, dict[str, str]]:
        """The query's labels and the network's predictions by value name ("?" = unknown):
        ``{"labels": {attribute: name}, "predicted": {attribute: name}}``."""
        q = self._query(query)
        return {"labels": {a: self._name(a, int(self.query_labels[q, j])) for j, a in enumerate(self.attributes)},
                "predicted": {a: self._name(a, int(self.predicted[q, j])) for j, a in enumerate(self.attributes)}}


# ---------------------------------------------------------------------------------------------- widget
def _png(image: np.ndarray | None, size: int, text: str = "") -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 picture scaled to ``size`` px wide (a grey tile if None)."""
    from PIL import Image, ImageDraw

    if image is None:
        pic = Image.new("RGB", (size, size), (200, 200, 200))
        ImageDraw.Draw(pic).text((4, 4), text, fill=(60, 60, 60))
    else:
        pic = Image.fromarray(image)
        h = max(1, round(size * pic.height / pic.width))
        pic = pic.resize((size, h), Image.NEAREST if pic.width < size else Image.BILINEAR)
    buf = io.BytesIO()
    pic.save(buf, format="PNG")
    return buf.getvalue()


@functools.cache
def _demo_class():
    """``SearchDemo``, an ``ipywidgets.VBox`` whose static representation says what it is (:data:`STATIC_NOTE`,
    :data:`STATIC_HTML`) instead of ``VBox(children=(...))`` (made once, on first use: ipywidgets is imported only
    when a widget is made)."""
    import ipywidgets as w

    class SearchDemo(w.VBox):
        def __repr__(self) -> str:
            return STATIC_NOTE

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            data["text/html"] = STATIC_HTML
            return data

    return SearchDemo


def search_demo(session: SearchSession, k: int = 8, thumb: int = 72):
    """Widget of notebook 04 over a :class:`SearchSession`: query picker and picture with its predicted
    attributes, one dropdown per manipulable attribute (§4.6 manipulation), a k slider, the top-k row (exact
    matches of the demanded labels in a green frame, others grey), an "I like this" box under each result and
    "Search again with my picks" (§5 relevance feedback: Eq. 5 weights, Eq. 6 search; the weights are shown
    normalised to sum 1), and "Reset".

    The rows of controls wrap (flex-flow ``row wrap``), so every dropdown stays inside an ordinary window (checked in
    Chromium at 1400 px by ``make browser-check``). A static view of the cell (before running, GitHub, the course
    website) shows :data:`STATIC_NOTE` / :data:`STATIC_HTML` rather than the widget's ``repr``.

    Returns an ``ipywidgets.VBox`` (``SearchDemo``) with its parts as attributes: ``query``, ``query_image``,
    ``query_info``, ``changes`` ({attribute: Dropdown}), ``controls`` (the row that holds them), ``k``,
    ``result_images``, ``captions``, ``likes`` (Checkboxes), ``feedback_button``, ``reset_button``, ``weights_html``,
    ``status_html``, ``session`` and ``result`` (the last :class:`SearchResult`).
    """
    import ipywidgets as w

    s = session
    k0 = max(1, min(int(k), s.n_gallery))
    query = w.IntSlider(value=0, min=0, max=s.n_queries - 1, description="query")
    query_image = w.Image(format="png", width=2 * thumb)
    query_info = w.HTML()
    changes = {a: w.Dropdown(options=[("(keep)", KEEP)] + [(s.value_names[a][v], v) for v in sorted(s.prototypes[a])],
                             value=KEEP, description=str(a), style={"description_width": "initial"})
               for a in s.manipulable}
    k_slider = w.IntSlider(value=k0, min=1, max=min(s.n_gallery, max(k0, 20)), description="k")
    feedback_button = w.Button(description="Search again with my picks", layout=w.Layout(width="auto"))
    reset_button = w.Button(description="Reset")
    status_html, weights_html = w.HTML(), w.HTML()
    results = w.HBox(layout=w.Layout(flex_flow="row wrap"))
    result_images, captions, likes = [], [], []
    liked: list[int] = []                   # the picks of the last "Search again", kept until reset / new query

    def show_query():
        i = query.value
        img = None if s.query_images is None else s.query_images[i]
        query_image.value = _png(img, 2 * thumb, f"q{i}")
        d = s.describe(i)
        rows = "".join(f"<tr><td>{a}</td><td><b>{d['predicted'][a]}</b></td><td>{d['labels'][a]}</td></tr>"
                       for a in s.attributes)
        query_info.value = f"<table><tr><th></th><th>predicted</th><th>label</th></tr>{rows}</table>"

    def refresh(*_):
        ch = {a: dd.value for a, dd in changes.items()}
        res = s.rank(query.value, ch, k_slider.value, liked=liked or None)
        box.result = res
        for widgets in (result_images, captions, likes):
            widgets.clear()
        tiles = []
        for r, dist, ok in zip(res.indices.tolist(), res.distances.tolist(), res.exact.tolist()):
            img = None if s.gallery_images is None else s.gallery_images[r]
            pic = w.Image(value=_png(img, thumb, f"#{r}"), format="png", width=thumb,
                          layout=w.Layout(border=f"3px solid {'green' if ok else 'lightgrey'}"))
            cap = w.HTML(f"#{r} d={dist:.3f}")
            like = w.Checkbox(value=r in liked, description="I like this", indent=False,
                              layout=w.Layout(width=f"{thumb + 30}px"))
            like.gallery_index = r
            result_images.append(pic)
            captions.append(cap)
            likes.append(like)
            tiles.append(w.VBox([pic, cap, like]))
        results.children = tiles
        target = ", ".join(f"{a}={s._name(a, int(v))}" for a, v in zip(s.attributes, res.target) if v >= 0)
        status_html.value = f"demanded: {target or '(nothing known)'} - exact matches in the top {len(res.indices)}: " \
                            f"{int(res.exact.sum())}"
        if not liked:
            weights_html.value = ""
        elif res.weights is None:
            weights_html.value = f"one pick (#{liked[0]}): the query is replaced by it (§5), Eq. 4 search"
        else:
            total = sum(res.weights.values())
            weights_html.value = "Eq. 5 weights (normalised): " + ", ".join(
                f"{a}: {v / total:.2f}" for a, v in res.weights.items())

    def new_query(*_):
        liked.clear()
        show_query()
        refresh()

    def feedback(*_):
        picks = [c.gallery_index for c in likes if c.value]
        if not picks:
            weights_html.value = "tick 'I like this' under at least one picture first"
            return
        liked[:] = picks
        refresh()

    def reset(*_):
        liked.clear()
        for dd in changes.values():
            dd.unobserve(refresh, "value")
            dd.value = KEEP
            dd.observe(refresh, "value")
        refresh()

    wrap = functools.partial(w.Layout, flex_flow="row wrap")
    controls = (w.HBox(list(changes.values()), layout=wrap(grid_gap="4px 16px")) if changes
                else w.HTML("(no manipulable attributes)"))
    box = _demo_class()([w.HBox([w.VBox([query, query_image]), query_info], layout=wrap()), controls, k_slider,
                         status_html, results, w.HBox([feedback_button, reset_button], layout=wrap()), weights_html])
    box.controls = controls
    query.observe(new_query, "value")
    k_slider.observe(refresh, "value")
    for dd in changes.values():
        dd.observe(refresh, "value")
    feedback_button.on_click(feedback)
    reset_button.on_click(reset)
    box.session, box.query, box.query_image, box.query_info = s, query, query_image, query_info
    box.changes, box.k, box.result_images, box.captions, box.likes = changes, k_slider, result_images, captions, likes
    box.feedback_button, box.reset_button, box.weights_html, box.status_html = (feedback_button, reset_button,
                                                                                weights_html, status_html)
    show_query()
    refresh()
    return box
