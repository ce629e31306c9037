"""FashionSynth's garment geometry in body units: the mannequin, outlines, neck-detail shapes, whole garments.

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"); no paper describes it. This
module holds the shapes that :mod:`fashionlab.synth.garments` (single garments) and
:mod:`fashionlab.synth.outfit` (outfit scenes) draw; it draws nothing itself.

Body units
----------
Geometry is built in *body units*: the mannequin's shoulder half-width is about 1, the origin is the base of
the neck, y points down; the head top is at y = -1.25, the waist at 2.0, the knee at 4.5, the feet at 6.5.
A renderer maps body units to pixels by one similarity transform (scale, rotation, position). Points are
``(x, y)`` tuples, polygons and polylines lists of points; the right side of the figure (as seen in the picture)
has x > 0, and :func:`mirror` gives the left side.

What is here
------------
* :data:`LENGTHS`: the drawn length of every value of the four FashionAI length attributes (sleeve: position
  along the arm from the shoulder, 0, to the wrist, 1; the others: the hem's y), and :func:`drawn_length`, the
  length drawn for a value and a jitter in [-1, 1] (never past half the gap to the neighbouring value).
* :data:`MANNEQUIN`: the mannequin as ``(polygon, code)`` pairs (code 1 skin, 2 hair, 3 shoes), with the arm
  axis (:func:`arm_point`, :func:`arm_half_width`) that sleeves follow.
* Outline helpers: :func:`mirror`, :func:`full_outline`, :func:`ellipse`, :func:`circle`, :func:`scale_points`,
  :func:`clip_box`, :func:`bbox`, :func:`side_outline` (a side seam on a fixed grid of heights, so that a longer
  hem moves pixels only near the hem), :func:`hem_band`.
* :data:`NECK_SHAPES`: the neck details of the four families (collar, lapel, neckline, neck), per value.
* :func:`garment_geometry`: one garment of a category with given FashionAI values, as a :class:`Geometry`: what
  to draw in the garment layer (fabric, trim, neckline cuts) and the detail layer, and the point sets of the
  attribute regions and garment parts that the renderer turns into ground-truth boxes.
* :func:`edge_mask`: the pixel outline of a boolean mask (the renderers' dark garment edge).

Everything here is deterministic: no random draws.
"""
from __future__ import annotations

import math

import numpy as np

from ..taxonomy import FASHIONAI

__all__ = [
    "ATTRIBUTE_INDEX", "DETAIL_ATTRIBUTES", "LENGTHS", "DEFAULT_FASTENING", "FASTENING_ZONE", "MANNEQUIN",
    "NECK_SHAPES", "Geometry", "mirror", "full_outline", "ellipse", "circle", "scale_points", "clip_box", "bbox",
    "drawn_length", "arm_point", "arm_half_width", "side_outline", "hem_band", "garment_geometry", "edge_mask",
]

#: Position of each FashionAI attribute in a value vector (``FASHIONAI.attributes`` order).
ATTRIBUTE_INDEX: dict[str, int] = {a: i for i, a in enumerate(FASHIONAI.attributes)}
_AI = ATTRIBUTE_INDEX
#: The four neck-detail dimensions (one family per upper or full-body garment).
DETAIL_ATTRIBUTES = ("collar_design", "lapel_design", "neckline_design", "neck_design")

#: Drawn lengths per value index (None: no length). Sleeves: position along the arm from the shoulder (0) to the
#: wrist (1); the hand ends at 1.16. Others: y of the hem in body units.
LENGTHS = {
    "sleeve_length": (None, None, 0.10, 0.30, 0.48, 0.66, 0.84, 1.00, 1.17),
    "coat_length": (None, 1.60, 2.55, 3.15, 3.75, 4.45, 5.25, 6.20),
    "skirt_length": (None, 3.35, 4.35, 5.20, 6.00, 6.55),
    "pant_length": (None, 3.75, 4.45, 5.10, 5.65, 6.30),
}
#: The fastening drawn when a garment names none (FashionSynth v1: only coats are buttoned).
DEFAULT_FASTENING: dict[str, str] = {"top": "none", "coat": "buttons", "dress": "none"}

# ------------------------------------------------------------------------------------------ outlines

def mirror(pts):
    """The points reflected at the centre line (x -> -x): the left side from the right one."""
    return [(-x, y) for x, y in pts]


def full_outline(right):
    """Full symmetric polygon from its right half, listed from the top centre down to the bottom centre."""
    return list(right) + [(-x, y) for x, y in reversed(right[1:-1])]


def ellipse(cx, cy, rx, ry, a0=0.0, a1=360.0, n=16):
    """``n`` points on the ellipse around ``(cx, cy)`` with radii ``rx``, ``ry`` from angle ``a0`` to ``a1`` (degrees,
    y down, so 0-180 is the lower half); a full turn leaves out the repeated end point."""
    ts = np.radians(np.linspace(a0, a1, n, endpoint=(a1 - a0) < 360))
    return list(zip((cx + rx * np.cos(ts)).tolist(), (cy + ry * np.sin(ts)).tolist()))


def scale_points(pts, k):
    """The points scaled by ``k`` about the origin (the neck base)."""
    return [(x * k, y * k) for x, y in pts]


def _clip_half(pts, axis, val, keep_ge):
    out = []
    n = len(pts)
    for i in range(n):
        p, q = pts[i], pts[(i + 1) % n]
        pin = (p[axis] >= val) if keep_ge else (p[axis] <= val)
        qin = (q[axis] >= val) if keep_ge else (q[axis] <= val)
        if pin:
            out.append(p)
        if pin != qin:
            t = (val - p[axis]) / (q[axis] - p[axis])
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def clip_box(pts, x0, y0, x1, y1):
    """The polygon ``pts`` clipped to the box ``[x0, x1] x [y0, y1]`` (Sutherland-Hodgman; [] when nothing is left)."""
    for axis, val, ge in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not pts:
            return []
        pts = _clip_half(pts, axis, val, ge)
    return pts


def bbox(point_lists):
    """``(x0, y0, x1, y1)`` holding every point of every list in ``point_lists`` (None when there is none)."""
    xs = [x for pts in point_lists for x, _ in pts]
    ys = [y for pts in point_lists for _, y in pts]
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def drawn_length(attr: str, v: int, j: float, L: float) -> float:
    """The length drawn for value ``v`` of the length attribute ``attr`` (:data:`LENGTHS`) with jitter ``j`` in
    [-1, 1] scaled by ``L`` (``RenderConfig.length_jitter``): at most ``L`` times half the gap to the neighbouring
    value, so the drawn length stays monotone in the value index."""
    tab = LENGTHS[attr]
    base = tab[v]
    lo = tab[v - 1] if v - 1 >= 0 and tab[v - 1] is not None else None
    hi = tab[v + 1] if v + 1 < len(tab) else None
    down = (base - lo) / 2 if lo is not None else (hi - base) / 2
    up = (hi - base) / 2 if hi is not None else (base - lo) / 2
    return base + j * L * (up if j > 0 else down)


# mannequin (body units); codes in the mannequin layer: 1 skin, 2 hair, 3 shoes
_A0 = np.array([1.02, 0.30])
_AW = np.array([1.75, 2.95])
_AD = _AW - _A0
_AU = _AD / np.linalg.norm(_AD)
_AN = np.array([_AU[1], -_AU[0]])  # outward normal of the right arm


def arm_point(t, off):
    """The point at ``t`` along the right arm's axis (0 shoulder, 1 wrist, about 1.17 the finger tips), ``off`` body
    units to the outside of the axis (negative: the inside)."""
    c = _A0 + t * _AD + _AN * off
    return float(c[0]), float(c[1])


def arm_half_width(t):
    """Half the width of the mannequin's arm at ``t`` along it (0.19 at the shoulder, 0.11 at the wrist)."""
    return 0.19 - 0.08 * min(max(t, 0.0), 1.0)


def _build_mannequin():
    body_r = [(0.0, 0.04), (0.19, 0.05), (0.98, 0.22), (1.05, 0.42), (0.87, 0.95), (0.72, 2.0), (0.93, 2.85),
              (0.87, 3.4), (0.66, 4.5), (0.49, 6.2), (0.20, 6.2), (0.14, 4.5), (0.03, 3.3), (0.0, 3.3)]
    body = full_outline(body_r)
    neck = [(-0.15, -0.45), (0.15, -0.45), (0.19, 0.12), (-0.19, 0.12)]
    head = ellipse(0.0, -0.80, 0.33, 0.43, n=18)
    hair = ellipse(0.0, -0.86, 0.36, 0.40, 180, 360, n=10) + [(0.35, -0.72), (0.0, -0.98), (-0.35, -0.72)]
    ts = (0.0, 0.25, 0.5, 0.75, 1.0)
    outer = [arm_point(t, arm_half_width(t)) for t in ts]
    inner = [arm_point(t, -arm_half_width(t)) for t in ts]
    hand = [arm_point(1.06, 0.125), arm_point(1.16, 0.05), arm_point(1.17, 0.0), arm_point(1.16, -0.07),
            arm_point(1.06, -0.12)]
    cap = [arm_point(-0.04, 0.1), arm_point(-0.06, 0.0)]
    arm_r = cap + outer + hand + inner[::-1]
    shoe_r = [(0.16, 6.15), (0.52, 6.15), (0.58, 6.44), (0.54, 6.52), (0.12, 6.52)]
    return [(body, 1), (neck, 1), (head, 1), (hair, 2), (arm_r, 1), (mirror(arm_r), 1), (shoe_r, 3),
            (mirror(shoe_r), 3)]


#: The mannequin, ``[(polygon, code), ...]`` in drawing order: body, neck, head (code 1 skin), hair (2), both arms
#: (1), both shoes (3).
MANNEQUIN = _build_mannequin()


def side_outline(knots, slope, hem, step=0.2):
    """Right-side outline points from the first knot down to the hem (linear between knots, then a slope).

    Vertices sit on the knots and on a fixed grid of heights (multiples of ``step``), so every vertex above
    the hem is the same whatever the hem: a longer hem changes the outline only near the hem (PIL rasterises
    an edge from its end points, so moving an end point could shift pixels all along a long edge).
    """
    def x_at(y):
        for (x0, y0), (x1, y1) in zip(knots, knots[1:]):
            if y <= y1:
                return x0 + (y - y0) / (y1 - y0) * (x1 - x0)
        x1, y1 = knots[-1]
        return x1 + slope * (y - y1)

    y_first = knots[0][1]
    ys = {k[1] for k in knots[1:] if k[1] < hem}
    ys.update(i * step for i in range(int(math.floor(y_first / step)) + 1, int(math.ceil(hem / step)))
              if i * step < hem)
    return [knots[0]] + [(x_at(y), y) for y in sorted(ys)] + [(x_at(hem), hem)]


def circle(cx, cy, r, n=8):
    """An ``n``-point circle (buttons)."""
    return ellipse(cx, cy, r, r, n=n)


# neck-detail shapes (body units, before detail_scale). Each value: dict(cuts=[poly], polys=[(poly, fill,
# outline)], lines=[polyline]); fill/outline codes of the detail layer: 1 detail tone, 2 dark, 3 inner colour
def _neckline_shapes():
    top = -1.0
    s = {
        1: [(-2.6, top), (2.6, top), (2.6, 0.72), (-2.6, 0.72)],
        2: [(-0.30, top), (0.30, top), (0.32, 0.02), (0.0, 1.35), (-0.32, 0.02)],
        3: [(-0.76, top), (0.76, top), (0.76, 0.20), (-0.76, 0.20)],
        4: [(-0.30, top), (0.30, top), (0.33, 0.02), (0.0, 0.72), (-0.33, 0.02)],
        5: [(-0.42, top), (0.42, top), (0.42, 0.62), (-0.42, 0.62)],
        6: [(-2.6, top), (2.6, top), (2.6, 0.48), (-2.6, 0.48)],
        7: [(-0.37, top), (0.37, top)] + ellipse(0.0, 0.0, 0.37, 0.44, 0, 180, n=13),
        8: [(-0.62, top), (0.62, top), (0.62, 0.55), (0.50, 0.45), (0.36, 0.42), (0.22, 0.46), (0.10, 0.56),
            (0.0, 0.72), (-0.10, 0.56), (-0.22, 0.46), (-0.36, 0.42), (-0.50, 0.45), (-0.62, 0.55)],
        9: [(-0.30, top), (2.6, top), (2.6, 0.98), (0.92, 0.98), (-0.30, 0.06)],
    }
    return {v: dict(cuts=[p], polys=[], lines=[]) for v, p in s.items()}


def _collar_shapes():
    flap = [(0.02, 0.10), (0.30, -0.06), (0.44, 0.14), (0.22, 0.46)]
    stand = [(-0.22, -0.16), (0.22, -0.16), (0.30, 0.03), (-0.30, 0.03)]
    pp = ellipse(0.20, 0.14, 0.21, 0.18, n=14)
    pur = full_outline([(0.0, 0.04), (0.30, -0.04), (0.64, 0.06), (0.78, 0.26), (0.72, 0.52), (0.48, 0.66),
                 (0.18, 0.66), (0.0, 0.58)])
    outer = ellipse(0.0, -0.05, 0.39, 0.32, 0, 180, n=13)
    inner = ellipse(0.0, -0.05, 0.25, 0.15, 180, 0, n=13)
    ribs = []
    for ang in np.radians(np.arange(18, 180, 18)):
        ca, sa = math.cos(ang), math.sin(ang)
        ribs.append([(0.25 * ca, -0.05 + 0.15 * sa), (0.39 * ca, -0.05 + 0.32 * sa)])
    return {
        1: dict(cuts=[], polys=[(stand, 1, 2), (flap, 1, 2), (mirror(flap), 1, 2)], lines=[]),
        2: dict(cuts=[], polys=[(pp, 1, 2), (mirror(pp), 1, 2)], lines=[]),
        3: dict(cuts=[], polys=[(pur, 1, 2)], lines=[[(0.0, 0.04), (0.0, 0.58)]]),
        4: dict(cuts=[], polys=[(outer + inner, 1, 2)], lines=ribs),
    }


def _lapel_shapes():
    def vee(bottom, top=-0.06):
        return [(-0.22, top), (0.22, top), (0.0, bottom)]

    notched = [(0.14, -0.02), (0.22, -0.12), (0.38, -0.06), (0.50, 0.20), (0.38, 0.27), (0.60, 0.40), (0.03, 1.15)]
    shawl = [(0.14, -0.02), (0.22, -0.12), (0.36, -0.08), (0.48, 0.12), (0.52, 0.42), (0.42, 0.75), (0.22, 1.0),
             (0.03, 1.20)]
    plus = [(0.14, -0.02), (0.24, -0.14), (0.50, -0.08), (0.78, 0.16), (0.88, 0.50), (0.78, 0.88), (0.50, 1.18),
            (0.03, 1.38)]
    opening = [(-0.30, -0.06), (0.30, -0.06)] + ellipse(0.0, -0.06, 0.30, 0.48, 0, 180, n=13)
    band = ellipse(0.0, -0.06, 0.38, 0.56, 0, 180, n=13) + ellipse(0.0, -0.06, 0.30, 0.48, 180, 0, n=13)
    return {
        1: dict(cuts=[], polys=[(vee(1.15), 3, None), (notched, 1, 2), (mirror(notched), 1, 2)], lines=[]),
        2: dict(cuts=[], polys=[(opening, 3, None), (band, 1, 2)], lines=[[(0.0, 0.42), (0.0, 0.92)]]),
        3: dict(cuts=[], polys=[(vee(1.20), 3, None), (shawl, 1, 2), (mirror(shawl), 1, 2)], lines=[]),
        4: dict(cuts=[], polys=[(vee(1.38, -0.08), 3, None), (plus, 1, 2), (mirror(plus), 1, 2)], lines=[]),
    }


def _neck_shapes():
    turtle = [(-0.27, -0.46), (0.27, -0.46), (0.30, 0.06), (-0.30, 0.06)]
    ruffle = [(-0.30, 0.06), (-0.27, -0.14), (-0.42, -0.30), (-0.29, -0.25), (-0.21, -0.37), (-0.11, -0.27),
              (0.0, -0.39), (0.11, -0.27), (0.21, -0.37), (0.29, -0.25), (0.42, -0.30), (0.27, -0.14), (0.30, 0.06)]
    low = [(-0.26, -0.18), (0.26, -0.18), (0.30, 0.06), (-0.30, 0.06)]
    cowl = full_outline([(0.0, -0.04), (0.30, -0.06), (0.45, 0.04), (0.43, 0.28), (0.28, 0.50), (0.0, 0.60)])
    folds = [[(-0.34, 0.10), (-0.17, 0.24), (0.0, 0.28), (0.17, 0.24), (0.34, 0.10)],
             [(-0.38, 0.24), (-0.20, 0.41), (0.0, 0.46), (0.20, 0.41), (0.38, 0.24)]]
    return {
        1: dict(cuts=[], polys=[(turtle, 1, 2)], lines=[[(-0.28, -0.18), (0.28, -0.18)]]),
        2: dict(cuts=[], polys=[(ruffle, 1, 2)], lines=[[(-0.27, -0.14), (0.27, -0.14)]]),
        3: dict(cuts=[], polys=[(low, 1, 2)], lines=[]),
        4: dict(cuts=[], polys=[(cowl, 1, 2)], lines=folds),
    }


#: The neck details: ``NECK_SHAPES[family][value]`` is ``dict(cuts=[...], polys=[(poly, fill, outline)],
#: lines=[...])`` in body units before ``RenderConfig.detail_scale`` (cuts clear the garment layer: necklines).
NECK_SHAPES = {
    "neckline_design": _neckline_shapes(),
    "collar_design": _collar_shapes(),
    "lapel_design": _lapel_shapes(),
    "neck_design": _neck_shapes(),
}


class Geometry:
    """Garment geometry in body units: what to draw in each layer, and the region/part point sets.

    ``g_polys`` / ``g_lines``: ``(points, code)`` of the garment layer (1 fabric, 2 dark trim); ``cuts``: polygons
    cleared from it (necklines); ``d_polys``: ``(points, fill, outline)`` and ``d_lines``: ``(points, code)`` of
    the detail layer (1 detail tone, 2 dark, 3 inner colour); ``regions``: attribute -> point lists of where it
    shows; ``parts``: garment part (torso, left_sleeve, right_sleeve, neck_detail, fastening, skirt, left_leg,
    right_leg) -> point lists."""

    __slots__ = ("g_polys", "g_lines", "cuts", "d_polys", "d_lines", "regions", "parts")

    def __init__(self):
        self.g_polys = []  # (poly, code) garment layer: 1 fabric, 2 dark trim
        self.g_lines = []  # (polyline, code)
        self.cuts = []  # polys cleared from the garment layer (necklines)
        self.d_polys = []  # (poly, fill, outline) detail layer
        self.d_lines = []  # (polyline, code)
        self.regions = {}  # attribute -> list of point lists
        self.parts = {}  # part -> list of point lists


def hem_band(poly, hem):
    """The part of ``poly`` from 0.4 body units above the hem ``hem`` to just below it (a length's region)."""
    return clip_box(poly, -1e3, hem - 0.4, 1e3, hem + 0.12)


def garment_geometry(category, values, jitter, width, flare, k=1.0, L=0.5, fastening=None) -> Geometry:
    """The :class:`Geometry` of one garment (FashionSynth, our own generator).

    ``category`` is one of top, coat, dress, skirt, pants; ``values`` and ``jitter`` the eight FashionAI value
    indices and length jitters (``FASHIONAI.attributes`` order, as in ``GarmentSpec``); ``width`` (1.0-1.12) and
    ``flare`` (0-1) vary the cut; ``k`` scales the neck details (``RenderConfig.detail_scale``); ``L`` is
    ``RenderConfig.length_jitter``; ``fastening`` is a style name or None for the category's default
    (:data:`DEFAULT_FASTENING`; an explicit style also adds ``regions["fastening"]``, the centre-front zone
    :data:`FASTENING_ZONE`). The values are not validated here (``GarmentSpec`` does that).
    """
    geo = Geometry()
    v = values
    w = width
    if category in ("top", "coat", "dress"):
        _upper(geo, category, v, jitter, w, flare, k, L, fastening)
    elif category == "skirt":
        hem = drawn_length("skirt_length", v[_AI["skirt_length"]], jitter[_AI["skirt_length"]], L)
        knots = [(0.76 * w, 1.95), (0.99 * w, 2.85)]
        side = side_outline(knots, 0.06 + 0.14 * flare, hem)
        hw = side[-1][0]
        poly = full_outline([(0.0, 1.95)] + side + [(hw * 0.5, hem + 0.03), (0.0, hem + 0.04)])
        geo.g_polys.append((poly, 1))
        geo.g_lines.append(([(-0.77 * w, 2.08), (0.77 * w, 2.08)], 2))
        geo.regions["skirt_length"] = [hem_band(poly, hem)]
        geo.parts["skirt"] = [poly]
    else:  # pants
        hem = drawn_length("pant_length", v[_AI["pant_length"]], jitter[_AI["pant_length"]], L)
        wide = 0.20 * flare
        outer = side_outline([(0.76 * w, 1.95), (0.99 * w, 2.85), (0.95, 3.4), (0.75 + wide * 0.4, 4.5),
                       (0.58 + wide, 6.2)], -0.05, hem)
        inner = side_outline([(0.02, 3.32), (0.09, 4.5), (0.14, 6.2)], 0.02, hem)
        right = outer + inner[::-1]
        poly = right + [(0.0, 3.30)] + mirror(right)[::-1]
        geo.g_polys.append((poly, 1))
        geo.g_lines.append(([(-0.77 * w, 2.08), (0.77 * w, 2.08)], 2))
        geo.g_lines.append(([(0.0, 2.08), (0.0, 2.9)], 2))
        leg = [p for p in outer if p[1] >= 3.3] + inner[::-1]
        band = hem_band(poly, hem)
        geo.regions["pant_length"] = [band]
        geo.parts["right_leg"] = [leg]
        geo.parts["left_leg"] = [mirror(leg)]
    return geo


#: x extent (body units) of the centre-front zone that holds every fastening style.
FASTENING_ZONE: tuple[float, float] = (-0.22, 0.34)


def _draw_fastening(geo, style, y0, hem, lapels):
    """Draw a centre-front fastening from ``y0`` down to the hem (dark trim in the garment layer).

    "buttons": the front edge at the centre line and one column of buttons beside it (FashionSynth v1's coat
    fastening, unchanged); "zip": a double seam with a pull tab at the top; "double": double-breasted, the front
    edge off-centre and two columns of buttons. Buttons sit every 0.5 (0.45 for "double") body units from 0.55
    down to 0.25 above the hem, none under lapels (above 1.5). Lines use the fixed grid of vertices of
    :func:`side_outline`, so a longer hem changes pixels only near the hem.
    """
    def column(x):
        ys = [y0] + [i * 0.2 for i in range(int(y0 / 0.2) + 1, int(math.ceil((hem + 0.04) / 0.2)))] + [hem + 0.04]
        return [(x, y) for y in ys]

    def buttons(xs, step):
        y = 0.55
        while y <= hem - 0.25:
            if not (lapels and y < 1.5):
                for x in xs:
                    geo.g_polys.append((circle(x, y, 0.05), 2))
            y += step

    if style == "buttons":
        geo.g_lines.append((column(0.0), 2))
        buttons((0.10,), 0.5)
        box = (-0.12, 0.16)
    elif style == "zip":
        geo.g_lines.append((column(-0.035), 2))
        geo.g_lines.append((column(0.035), 2))
        geo.g_polys.append(([(0.04, y0 + 0.04), (0.14, y0 + 0.04), (0.14, y0 + 0.24), (0.04, y0 + 0.24)], 2))
        box = (-0.12, 0.16)
    elif style == "double":
        geo.g_lines.append((column(0.26), 2))
        buttons((-0.12, 0.12), 0.45)
        box = (-0.20, 0.30)
    else:  # pragma: no cover - validated in GarmentSpec
        raise ValueError(f"unknown fastening {style!r}")
    geo.parts["fastening"] = [[(box[0], y0), (box[1], y0), (box[1], hem), (box[0], hem)]]


def _upper(geo, category, v, jitter, w, flare, k, L, fastening=None):
    sv = v[_AI["sleeve_length"]]
    sleeveless = sv == 1
    right = [(0.0, 0.10), (0.16, 0.085), (0.30, 0.02)]
    if sleeveless:
        right += [(0.70, 0.135), (0.64, 0.40), (0.68, 0.72), (0.79, 0.92), (0.91, 0.98)]
    else:
        right += [(1.0, 0.18), (0.91, 0.98)]
    if category == "dress":
        hem = drawn_length("skirt_length", v[_AI["skirt_length"]], jitter[_AI["skirt_length"]], L)
        knots = [(0.91, 0.98), (0.78 * w, 2.0), (0.99 * w, 2.85)]
        slope = 0.06 + 0.14 * flare
    else:
        hem = drawn_length("coat_length", v[_AI["coat_length"]], jitter[_AI["coat_length"]], L)
        ease = 1.04 if category == "coat" else 1.0
        knots = [(0.91, 0.98), (0.78 * w * ease, 2.0), (0.99 * w * ease, 2.85)]
        slope = (0.04 + 0.08 * flare) if category == "coat" else (0.02 + 0.04 * flare)
    side = side_outline(knots, slope, hem)
    hw = side[-1][0]
    right += side[1:] + [(hw * 0.5, hem + 0.03), (0.0, hem + 0.04)]
    torso = full_outline(right)
    geo.g_polys.append((torso, 1))
    geo.parts["torso"] = [torso]

    # sleeves (region: both sleeves and both armholes)
    arm_zone = [(0.58, 0.06), (1.32, 0.06), (1.32, 1.04), (0.58, 1.04)]
    sleeve_pts = [arm_zone, mirror(arm_zone)]
    if not sleeveless:
        t = drawn_length("sleeve_length", sv, jitter[_AI["sleeve_length"]], L)
        hw_s = arm_half_width(t) + 0.07 + (0.04 if t < 0.4 else 0.0)
        S, P_ = (1.0, 0.18), (0.91, 0.98)
        Q = arm_point(-0.03, arm_half_width(0.0) + 0.07)
        O, I = arm_point(t, hw_s), arm_point(t, -hw_s)
        sl = [S, Q, O, I, P_] if I[1] > P_[1] + 0.02 else [S, Q, O, I]
        geo.g_polys.append((sl, 1))
        geo.g_polys.append((mirror(sl), 1))
        if t >= 0.25:
            geo.g_lines.append(([S, P_], 2))
            geo.g_lines.append(([(-S[0], S[1]), (-P_[0], P_[1])], 2))
        sleeve_pts += [sl, mirror(sl)]
        geo.parts["right_sleeve"] = [sl]
        geo.parts["left_sleeve"] = [mirror(sl)]
    geo.regions["sleeve_length"] = sleeve_pts

    if category == "dress":
        geo.g_lines.append(([(-0.78 * w, 2.0), (0.78 * w, 2.0)], 2))
        geo.regions["skirt_length"] = [hem_band(torso, hem)]
        geo.parts["skirt"] = [clip_box(torso, -1e3, 2.0, 1e3, 1e3)]
    else:
        geo.regions["coat_length"] = [hem_band(torso, hem)]

    fam = next((a for a in DETAIL_ATTRIBUTES if v[_AI[a]]), None)
    style = fastening if fastening is not None else DEFAULT_FASTENING[category]
    lapels = fam == "lapel_design"
    y0 = 0.9 if lapels else 0.10
    if style != "none":
        _draw_fastening(geo, style, y0, hem, lapels)
    if fastening is not None:  # the centre-front zone where any fastening lives (only for explicit styles)
        geo.regions["fastening"] = [[(FASTENING_ZONE[0], y0), (FASTENING_ZONE[1], y0), (FASTENING_ZONE[1], hem),
                                     (FASTENING_ZONE[0], hem)]]
    if fam is None:
        return
    shape = NECK_SHAPES[fam][v[_AI[fam]]]
    reg = []
    # the garment box (body units) before cuts, to clip neckline cuts for the region
    gx0, gy0, gx1, gy1 = bbox([p for p, _ in geo.g_polys])
    for c in shape["cuts"]:
        c = scale_points(c, k)
        geo.cuts.append(c)
        cc = clip_box(c, gx0, gy0, gx1, gy1)
        if cc:
            reg.append(cc)
    for poly, fill, outline in shape["polys"]:
        poly = scale_points(poly, k)
        geo.d_polys.append((poly, fill, outline))
        reg.append(poly)
    for line in shape["lines"]:
        line = scale_points(line, k)
        geo.d_lines.append((line, 2))
        reg.append(line)
    geo.regions[fam] = reg
    geo.parts["neck_detail"] = reg


# ----------------------------------------------------------------------------------------- raster

def edge_mask(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The pixels of the boolean ``mask`` within ``width`` pixels of its border (4-neighbourhood; the image border
    counts as outside): the outline the renderers draw in the dark trim colour."""
    inner = mask
    for _ in range(width):
        e = inner.copy()
        e[1:-1, 1:-1] &= inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
        e[0, :] = e[-1, :] = False
        e[:, 0] = e[:, -1] = False
        inner = e
    return mask & ~inner
