"""FashionSynth v1: procedural front-facing garments on a mannequin, with exact ground truth.

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"); no paper describes it. It draws one
garment per image, in the attribute taxonomy of FashionAI (:data:`fashionlab.taxonomy.FASHIONAI`, docs/formats.md
§5.2: eight dimensions, value 0 = "Invisible"), and returns, besides the pixels, the value of *every* attribute,
the garment box and the box of the region where each attribute lives.

Garments
--------
Five categories on three body types (``BODY_TYPE``): ``top`` and ``coat`` (upper body), ``dress`` (full body),
``skirt`` and ``pants`` (lower body). A category carries a subset of the eight dimensions
(``CATEGORY_ATTRIBUTES``); every other dimension is 0 "Invisible".

* Lengths are visible on every garment that carries them: ``sleeve_length`` (top, coat, dress),
  ``coat_length`` (top, coat: the hem of an upper-body garment; a top reaches the knee at most, longer upper
  garments are coats, ``CATEGORY_VALUES``), ``skirt_length`` (skirt, dress), ``pant_length`` (pants). The
  drawn length is monotone in the value index, with a small random jitter (``RenderConfig.length_jitter``)
  that never crosses half the gap to the neighbouring value. The index order is the length order, so
  coat_length's "Micro" lies between "Long" and "Knee" (FashionAI's translation of an extra-long class).
* Neck details come in four *families*, one per upper/full-body garment (``NECK_FAMILIES``): a plain
  neckline (``neckline_design``, top and dress), a collar (``collar_design``, all three), lapels
  (``lapel_design``, coat only) or a high neck (``neck_design``, all three). The family's dimension gets a
  non-zero value and the other three are "Invisible": a collar, lapels or a high neck cover the neckline, so
  the neckline is never visible together with them (a consistent rule, as in FashionAI where one image shows
  one neck design).
* Fastenings (not a FashionAI attribute; ``GarmentSpec.fastening``, added for paper 04's "fastening", see
  :mod:`fashionlab.synth.shop`): a centre-front closure from the neck (from below the lapels on a coat with
  lapels) to the hem, in dark trim: "none" (a pullover), "buttons" (the front edge with one column of
  buttons), "zip" (a double seam with a pull tab) or "double" (double-breasted: an off-centre front edge and
  two columns of buttons). Tops and dresses take none, buttons or zip; coats buttons, zip or double
  (``CATEGORY_FASTENINGS``). With ``fastening=None`` (what :func:`sample_garment` returns) the category's
  default is drawn, as in FashionSynth v1: coats buttoned, tops and dresses without.
* Physical constraints between neckline and sleeves: "Strapless Neck" and "OneShoulder Neckline" garments
  are "Sleeveless"; "Off Shoulder" garments have sleeves of "Short Sleeves" or longer. These are the only
  dependencies between attributes; colour, pattern and mannequin tone are drawn from their own random stream
  and are independent of every attribute.

What the values look like (body units, see below; :mod:`fashionlab.synth.geometry`'s ``LENGTHS`` and
``NECK_SHAPES`` hold the numbers):

* sleeve_length: Sleeveless (narrow shoulders cut in, bare arm), Cup (a small cap over the shoulder), then
  sleeves ending along the arm at 30% (Short), 48% (Elbow), 66% (3/4), 84% (Wrist: a strip of wrist shows),
  100% (Long: ends at the hand) and 117% (Extra Long: covers the hand) of the shoulder-to-wrist length.
* coat_length: hem at y = 1.6 (High Waist), 2.55 (Regular, hip), 3.15 (Long), 3.75 (Micro, mid-thigh),
  4.45 (Knee), 5.25 (Midi), 6.2 (Ankle&Floor). skirt_length: 3.35 (Short), 4.35 (Knee), 5.2 (Midi),
  6.0 (Ankle), 6.55 (Floor: covers the feet). pant_length: 3.75 (Short Pant), 4.45 (Mid Length, knee),
  5.1 (3/4), 5.65 (Cropped), 6.3 (Full Length).
* collar_design: Shirt Collar (a neck stand and two pointed flaps), Peter Pan (two small rounded flaps),
  Puritan (one wide flat collar over the shoulders), Rib Collar (a striped ring around the neck base).
* lapel_design (open coat front showing the inner layer): Notched (lapels with a notch under the collar),
  Collarless (round opening with a plain trim band), Shawl Collar (smooth rounded lapels), Plus Size Shawl
  (much wider rounded lapels).
* neckline_design (skin shows through the cut): Strapless (straight top edge across the chest, bare shoulders),
  Deep V (down to mid-chest), Straight Neck (wide flat boat neck), V Neck (short V), Square, Off Shoulder
  (top edge across the upper arms), Round (deep scoop), Sweetheart (two curves meeting in a centre dip),
  OneShoulder (diagonal edge from one shoulder to the other armpit).
* neck_design: Turtle Neck (tall tube with a fold line), Ruffle Semi-High (medium tube with a flared
  scalloped edge), Low Turtle Neck (short plain tube), Draped Collar (cowl folds hanging on the chest).

Geometry is built in *body units* (the mannequin's shoulder half-width is about 1; origin at the base of the
neck, y down; the head top is at y = -1.25, the waist at 2.0, the knee at 4.5, the feet at 6.5) and mapped to
pixels by one similarity transform (random scale, rotation and position, see :class:`RenderConfig`). The shapes
(mannequin, outlines, neck details, whole garments) are in :mod:`fashionlab.synth.geometry`.

Rendering
---------
:func:`render` draws a cluttered background (random shapes), a mannequin (skin or dress-form tone), the
garment (fabric pattern in garment coordinates, dark outlines and seams) and its details (collars, lapels,
high necks in a lighter or darker tone of the garment colour; the inside of an open coat in an "inner"
colour), then adds Gaussian pixel noise. Everything random in the picture comes from the ``rng`` argument, in
a fixed number of draws that does not depend on the garment, so two specs rendered with equally seeded
generators share background, pose and noise and differ only where the garments differ.

Ground truth (the dict returned by :func:`render`)
-------------------------------------------------
``category`` (str), ``body`` ("upper" | "lower" | "full"), ``values`` ({attribute: value index} for all eight
FashionAI attributes), ``garment_box`` ([x1, y1, x2, y2]), ``regions`` ({attribute: box or null}), ``parts`` ({part:
box or null} for torso, left_sleeve, right_sleeve, neck_detail, fastening, skirt, left_leg, right_leg), ``colour``,
``colour2``, ``pattern`` (names), ``scale`` (pixels per body unit / image size), ``rotation`` (degrees) and
``image_size``; a spec with an explicit ``fastening`` adds ``fastening`` (its name) and ``regions["fastening"]``
(the centre-front zone that holds every fastening style). Boxes are integer pixel coordinates of the rendered image
with x2, y2 exclusive (``image[y1:y2, x1:x2]`` is the region). An attribute's region is null exactly when its value
is 0 "Invisible". Regions: sleeves (both sleeves and both armholes), the hem band (coat, skirt and pant length: the
garment from 0.4 body units above the hem to just below it) and the neck-detail area (collar, lapel, neckline, neck:
every piece and cut of the detail). Detail, sleeve and fastening boxes contain every pixel that changes when that
attribute's value changes; for a length, the pixels that change between two values lie between the two values' hem
bands (both tested). Boxes are conservative (one pixel of padding); detail regions cover about 1-3% of the image on
average at the default settings (at most about 8%, for strapless and off-shoulder necklines).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..taxonomy import FASHIONAI
from . import patterns as P
# DEFAULT_FASTENING, DETAIL_ATTRIBUTES and LENGTHS are re-exported: they belong to the garments' vocabulary too
from .geometry import (ATTRIBUTE_INDEX, DEFAULT_FASTENING, DETAIL_ATTRIBUTES, LENGTHS, MANNEQUIN, bbox, edge_mask,
                       garment_geometry)

__all__ = [
    "ATTRIBUTES", "NUM_VALUES", "CATEGORIES", "BODY_TYPE", "CATEGORY_ATTRIBUTES", "NECK_FAMILIES",
    "LENGTH_ATTRIBUTES", "DETAIL_ATTRIBUTES", "LENGTHS", "FASTENINGS", "CATEGORY_FASTENINGS", "DEFAULT_FASTENING",
    "GarmentSpec", "RenderConfig", "PRESETS", "sample_garment",
    "set_value", "applicable_categories", "allowed_values", "render",
]

ATTRIBUTES: tuple[str, ...] = FASHIONAI.attributes
NUM_VALUES: dict[str, int] = dict(zip(FASHIONAI.attributes, FASHIONAI.num_values))
_AI = ATTRIBUTE_INDEX
LENGTH_ATTRIBUTES = ("skirt_length", "sleeve_length", "coat_length", "pant_length")

CATEGORIES: tuple[str, ...] = ("top", "coat", "dress", "skirt", "pants")
BODY_TYPE = {"top": "upper", "coat": "upper", "dress": "full", "skirt": "lower", "pants": "lower"}
#: Probability of each category when nothing forces it.
CATEGORY_WEIGHTS = {"top": 0.26, "coat": 0.22, "dress": 0.20, "skirt": 0.16, "pants": 0.16}
#: Neck-detail families per category with their probabilities (one family per garment).
NECK_FAMILIES: dict[str, dict[str, float]] = {
    "top": {"neckline_design": 0.40, "collar_design": 0.30, "neck_design": 0.30},
    "coat": {"lapel_design": 0.50, "collar_design": 0.25, "neck_design": 0.25},
    "dress": {"neckline_design": 0.55, "collar_design": 0.20, "neck_design": 0.25},
}
_CAT_LENGTHS = {
    "top": ("sleeve_length", "coat_length"), "coat": ("sleeve_length", "coat_length"),
    "dress": ("skirt_length", "sleeve_length"), "skirt": ("skirt_length",), "pants": ("pant_length",),
}
#: Attributes a category can show (lengths always; one of the neck families).
CATEGORY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    c: tuple(a for a in ATTRIBUTES if a in _CAT_LENGTHS[c] or a in NECK_FAMILIES.get(c, {})) for c in CATEGORIES
}

#: Centre-front fastenings the renderer draws (``GarmentSpec.fastening``): "none" (a pullover), "buttons"
#: (FashionSynth v1's coat fastening), "zip", "double" (double-breasted). Not a FashionAI attribute.
FASTENINGS: tuple[str, ...] = ("none", "buttons", "zip", "double")
#: The fastenings each upper or full-body category can have (lower-body garments have none drawn).
CATEGORY_FASTENINGS: dict[str, tuple[str, ...]] = {
    "top": ("none", "buttons", "zip"), "coat": ("buttons", "zip", "double"), "dress": ("none", "buttons", "zip"),
}
#: Visible values a category allows where it does not allow them all: a "top" reaches the knee at most
#: (longer upper-body garments are coats; an ankle-length top would look like a dress).
CATEGORY_VALUES: dict[tuple[str, str], tuple[int, ...]] = {("top", "coat_length"): (1, 2, 3, 4, 5)}


def allowed_values(category: str, attribute: str) -> tuple[int, ...]:
    """The visible values ``attribute`` can take on ``category`` (empty when the category does not carry it)."""
    if attribute not in CATEGORY_ATTRIBUTES[category]:
        return ()
    return CATEGORY_VALUES.get((category, attribute), tuple(range(1, NUM_VALUES[attribute])))


_NECKLINE_SLEEVELESS = (1, 9)  # Strapless, OneShoulder -> Sleeveless
_NECKLINE_OFF_SHOULDER = 6  # Off Shoulder -> sleeves Short or longer
_FALLBACK_NECKLINE = 3  # Straight Neck: compatible with every sleeve


def _compatible(neckline: int, sleeve: int) -> bool:
    if neckline in _NECKLINE_SLEEVELESS:
        return sleeve == 1
    if neckline == _NECKLINE_OFF_SHOULDER:
        return sleeve >= 3
    return True


# --------------------------------------------------------------------------------------------- specs

class JsonConfig:
    """JSON round trip of FashionSynth's frozen config dataclasses (written to ``synth.json``): tuples become
    lists in :meth:`to_dict` and the fields named in ``_TUPLE_FIELDS`` become tuples again in :meth:`from_dict`."""

    _TUPLE_FIELDS: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict (tuples as lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict):
        """The inverse of :meth:`to_dict`."""
        d = dict(d)
        for key in cls._TUPLE_FIELDS:
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class RenderConfig(JsonConfig):
    """How hard the pictures are: every knob is independent of the attribute values.

    image_size:
        Canvas side in pixels (square images). 128 is the default; 64 and 224+ work.
    scale:
        Range of the garment scale, in pixels per body unit divided by ``image_size`` (a body unit is about
        half the shoulder width). It is capped so that the largest garment of the category fits the canvas
        at the drawn rotation; ``(1.0, 1.0)`` means "as large as fits".
    max_rotation:
        Rotations are uniform in ``[-max_rotation, max_rotation]`` degrees.
    clutter:
        Number of random shapes drawn on the background.
    position_jitter:
        With ``position="random"``: the fraction of the free room the garment may wander from the centre
        (1: anywhere it fits; 0: centred).
    background_range:
        Each channel of the background colour is uniform in this range of grey levels; ``(40, 236)`` gives
        any colour, a high narrow range such as ``(170, 236)`` light pastel walls.
    clutter_contrast:
        How far each clutter shape's colour goes from the background colour towards its own random colour
        (0: invisible clutter, 1: fully saturated shapes that compete with the garment for attention).
    noise_sigma:
        Standard deviation of the Gaussian pixel noise, in grey levels.
    detail_scale:
        Size factor of the neck details (collars, lapels, necklines, high necks) relative to the body;
        useful range about 0.8 to 1.6.
    length_jitter:
        Random length variation as a fraction of half the gap to the neighbouring value (0: every value at
        its nominal length; 1: adjacent values may touch).
    margin:
        Free border, as a fraction of the canvas, that the garment's frame keeps.
    position:
        ``"random"`` (uniform over the positions where the frame fits) or ``"center"``.
    background:
        ``"random"`` (random colour plus clutter) or ``"plain"`` (light grey, no clutter).
    mannequin:
        Draw the mannequin (head, neck, arms, legs) under the garment.
    """

    image_size: int = 128
    scale: tuple[float, float] = (1.0, 1.0)
    max_rotation: float = 8.0
    clutter: int = 4
    clutter_contrast: float = 0.3
    background_range: tuple[int, int] = (170, 236)
    position_jitter: float = 1.0
    noise_sigma: float = 5.0
    detail_scale: float = 1.0
    length_jitter: float = 0.5
    margin: float = 0.02
    position: str = "random"
    background: str = "random"
    mannequin: bool = True
    _TUPLE_FIELDS = ("scale", "background_range")

    def __post_init__(self):
        if int(self.image_size) < 16:
            raise ValueError(f"image_size must be at least 16, got {self.image_size}")
        lo, hi = self.scale
        if not (0 < lo <= hi):
            raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi, got {self.scale}")
        if not 0 <= self.length_jitter <= 1:
            raise ValueError(f"length_jitter must be in [0, 1], got {self.length_jitter}")
        if self.position not in ("random", "center"):
            raise ValueError(f"position must be 'random' or 'center', got {self.position!r}")
        if self.background not in ("random", "plain"):
            raise ValueError(f"background must be 'random' or 'plain', got {self.background!r}")
        if not 0 <= self.clutter_contrast <= 1:
            raise ValueError(f"clutter_contrast must be in [0, 1], got {self.clutter_contrast}")
        if self.clutter < 0 or self.noise_sigma < 0 or self.detail_scale <= 0:
            raise ValueError("clutter and noise_sigma must be >= 0 and detail_scale > 0")



#: Named difficulty presets.
#:
#: ``wild`` (the default, = ``RenderConfig()``) is calibrated so that the plain triplet network of notebook 00,
#: trained from scratch on a CPU in default mode, lands well between the random baseline and 100: each garment
#: as large as its category's frame allows (so scale varies only with category and rotation), a small rotation,
#: pixel noise, a light random background with muted clutter. The details stay small (a collar is about 13 px
#: of a 128 px canvas).
#: ``hard`` is FashionSynth's first "wild" design: random scale (x1.8) and position, saturated clutter on any
#: background colour. A from-scratch CNN trained on ~20k triplets learned nothing on it (mAP at the random
#: floor, measured while calibrating); it is kept for GPU runs and for exercises.
#: ``clean`` is a centred, upright garment on a plain background without noise (illustrations, notebook 04).
#: ``asen`` is the picture paper 03 needs (ASEN slides, "Key Problems": a high-resolution image in which some
#: attributes occupy a minor part of the clothes): the ``wild`` garment and layout, neck details 1.4 times
#: larger (still small: collar, lapel, neckline and neck regions cover 2-6% of the image on average, 22-36 px
#: of a 128 px canvas, against 1.4-3.6% in ``wild``) and twice the clutter at a higher contrast (8 shapes at
#: 0.4). Rendered at 128 px and seen by ASEN's global branch at 48 px, a detail is 8-15 px across; the
#: local branch's crop of the 128 px image shows it about twice as large. Smaller, freely placed garments
#: (0.075-0.105 of the canvas per body unit) made the task too hard for a from-scratch CNN in the CPU
#: budget (ASEN_g at 20 mAP, random 16: measured while calibrating, like ``hard``).
PRESETS: dict[str, RenderConfig] = {
    "wild": RenderConfig(),
    "hard": RenderConfig(scale=(0.09, 0.16), max_rotation=10.0, clutter=12, clutter_contrast=1.0,
                         background_range=(40, 236), noise_sigma=6.0),
    "clean": RenderConfig(scale=(1.0, 1.0), max_rotation=0.0, clutter=0, noise_sigma=0.0, position="center",
                          background="plain"),
    "asen": RenderConfig(clutter=8, clutter_contrast=0.4, detail_scale=1.4),
}


@dataclass(frozen=True)
class GarmentSpec:
    """One garment: its category, the value of every FashionAI attribute and its appearance.

    ``values`` holds the eight value indices in ``FASHIONAI.attributes`` order; ``jitter`` one number in
    [-1, 1] per attribute (used by the length attributes: where in its band the drawn length falls).
    ``width`` (1.0-1.12) and ``flare`` (0-1) vary the cut. Appearance: ``colour`` and ``colour2`` (names in
    :data:`fashionlab.synth.patterns.COLOURS`), ``pattern`` with ``pattern_params`` (period in body units,
    two phases, orientation), a small ``tint``, the ``inner`` colour seen inside an open coat, and the
    mannequin's ``skin`` and ``hair`` tones (indices). ``fastening`` (one of ``FASTENINGS`` allowed for the
    category by ``CATEGORY_FASTENINGS``, or None for the category's default, see the module docstring) is the
    centre-front closure; :func:`sample_garment` leaves it None. A spec is validated: attributes the category
    does not carry must be 0, exactly one neck family is visible on upper and full-body garments, and the
    neckline and sleeve constraints hold.
    """

    category: str
    values: tuple[int, ...]
    jitter: tuple[float, ...] = (0.0,) * 8
    width: float = 1.06
    flare: float = 0.5
    colour: str = "blue"
    colour2: str = "white"
    pattern: str = "solid"
    pattern_params: tuple[float, float, float, int] = (0.35, 0.0, 0.0, 0)
    tint: tuple[int, int, int] = (0, 0, 0)
    inner: str = "white"
    skin: int = 0
    hair: int = 0
    fastening: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "values", tuple(int(v) for v in self.values))
        object.__setattr__(self, "jitter", tuple(float(j) for j in self.jitter))
        _validate(self.category, self.values)
        if len(self.jitter) != len(ATTRIBUTES):
            raise ValueError(f"jitter needs {len(ATTRIBUTES)} numbers, got {len(self.jitter)}")
        if self.colour not in P.COLOURS or self.colour2 not in P.COLOURS or self.inner not in P.COLOURS:
            raise ValueError(f"unknown colour in {self.colour!r}, {self.colour2!r}, {self.inner!r}")
        if self.pattern not in P.PATTERNS:
            raise ValueError(f"unknown pattern {self.pattern!r}; expected one of {list(P.PATTERNS)}")
        if self.fastening is not None:
            if self.fastening not in FASTENINGS:
                raise ValueError(f"unknown fastening {self.fastening!r}; expected one of {list(FASTENINGS)} or None")
            allowed = CATEGORY_FASTENINGS.get(self.category, ())
            if self.fastening not in allowed:
                raise ValueError(f"a {self.category} cannot have fastening {self.fastening!r}; "
                                 + (f"possible: {list(allowed)}" if allowed else
                                    "lower-body garments have no drawn fastening (use None)"))

    @property
    def body(self) -> str:
        return BODY_TYPE[self.category]

    @property
    def neck_family(self) -> str | None:
        """The visible neck-detail dimension, or None for lower-body garments."""
        for a in DETAIL_ATTRIBUTES:
            if self.values[_AI[a]]:
                return a
        return None

    @property
    def fastening_style(self) -> str | None:
        """The drawn fastening: ``fastening`` when set, else the category's default (``DEFAULT_FASTENING``:
        a coat is buttoned, a top or dress has none); None for lower-body garments."""
        if self.fastening is not None:
            return self.fastening
        return DEFAULT_FASTENING.get(self.category)

    def value(self, attribute: str | int) -> int:
        return self.values[_attr_index(attribute)]

    def value_dict(self) -> dict[str, int]:
        """{attribute name: value index} for all eight attributes."""
        return dict(zip(ATTRIBUTES, self.values))

    def describe(self) -> str:
        """A one-line human description, e.g. ``"top: Short Sleeves, Regular, V Neck; red stripes"``."""
        names = [FASHIONAI.value_name(a, v) for a, v in zip(ATTRIBUTES, self.values) if v]
        if self.fastening is not None:
            names.append(f"{self.fastening} fastening")
        pat = "" if self.pattern == "solid" else f" {self.pattern}"
        return f"{self.category}: {', '.join(names)}; {self.colour}{pat}"


def _attr_index(attribute: str | int) -> int:
    if isinstance(attribute, (int, np.integer)):
        if not 0 <= int(attribute) < len(ATTRIBUTES):
            raise KeyError(f"attribute index {attribute} out of range 0..{len(ATTRIBUTES) - 1}")
        return int(attribute)
    a = str(attribute)
    if a.endswith("_labels"):
        a = a[: -len("_labels")]
    return FASHIONAI.index(a)


def _validate(category: str, values: Sequence[int]) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {list(CATEGORIES)}")
    if len(values) != len(ATTRIBUTES):
        raise ValueError(f"values needs {len(ATTRIBUTES)} indices (FASHIONAI order), got {len(values)}")
    for a, v in zip(ATTRIBUTES, values):
        if not 0 <= v < NUM_VALUES[a]:
            raise ValueError(f"{a}: value {v} out of range 0..{NUM_VALUES[a] - 1}")
    for a in _CAT_LENGTHS[category]:
        if values[_AI[a]] == 0:
            raise ValueError(f"a {category} always shows {a}; value 0 (Invisible) is not possible")
    for a, v in zip(ATTRIBUTES, values):
        if v and a not in CATEGORY_ATTRIBUTES[category]:
            raise ValueError(f"a {category} has no {a}; its value must be 0 (Invisible), got {v}")
        if v and v not in allowed_values(category, a):
            raise ValueError(f"a {category} cannot have {a} = {FASHIONAI.value_name(a, v)!r}")
    fams = [a for a in DETAIL_ATTRIBUTES if values[_AI[a]]]
    if category in NECK_FAMILIES and len(fams) != 1:
        raise ValueError(f"a {category} shows exactly one of {list(NECK_FAMILIES[category])}, got {fams or 'none'}")
    nl, sl = values[_AI["neckline_design"]], values[_AI["sleeve_length"]]
    if nl and not _compatible(nl, sl):
        raise ValueError(f"neckline {FASHIONAI.value_name('neckline_design', nl)!r} does not go with sleeve "
                         f"{FASHIONAI.value_name('sleeve_length', sl)!r}")


def applicable_categories(attribute: str | int, value: int) -> tuple[str, ...]:
    """Categories on which ``attribute`` can take ``value`` (for value 0: where it is Invisible)."""
    a = ATTRIBUTES[_attr_index(attribute)]
    if not 0 <= value < NUM_VALUES[a]:
        raise ValueError(f"{a}: value {value} out of range 0..{NUM_VALUES[a] - 1}")
    if value > 0:
        return tuple(c for c in CATEGORIES if value in allowed_values(c, a))
    out = []
    for c in CATEGORIES:
        if a not in CATEGORY_ATTRIBUTES[c]:
            out.append(c)
        elif a in DETAIL_ATTRIBUTES and len(NECK_FAMILIES[c]) > 1:
            out.append(c)  # another family covers it
    return tuple(out)


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _choice(rng: np.random.Generator, items: Sequence, weights=None):
    if weights is None:
        return items[int(rng.integers(len(items)))]
    w = np.asarray(weights, dtype=float)
    c = np.cumsum(w / w.sum())
    return items[min(int(np.searchsorted(c, rng.random(), side="right")), len(items) - 1)]


def _sample_appearance(app: np.random.Generator) -> dict:
    colour = _choice(app, P.COLOUR_NAMES)
    colour2 = _choice(app, [c for c in P.COLOUR_NAMES if c != colour])
    pattern = _choice(app, list(P.PATTERNS), list(P.PATTERNS.values()))
    period = float(app.uniform(0.24, 0.46))
    px, py = (float(x) for x in app.random(2))
    orient = int(_choice(app, (0, 1, 2, 3), (0.35, 0.35, 0.15, 0.15)))
    tint = tuple(int(t) for t in app.integers(-12, 13, 3))
    inner = _choice(app, [c for c in P.INNER_COLOURS if c != colour])
    skin = int(app.integers(len(P.SKINS)))
    hair = int(app.integers(len(P.HAIRS)))
    return dict(colour=colour, colour2=colour2, pattern=pattern, pattern_params=(period, px, py, orient),
                tint=tint, inner=inner, skin=skin, hair=hair)


def sample_garment(rng=None, category: str | None = None, attribute: str | int | None = None,
                   value: int | None = None) -> GarmentSpec:
    """Draw a random garment (FashionSynth, our own generator; docs/architecture.md "FashionSynth").

    ``rng`` is a ``numpy.random.Generator`` (or a seed). Optionally force the ``category`` and/or one
    ``attribute`` (name, name with ``_labels`` or index) to ``value``; ``value=0`` asks for a garment on which
    that attribute is Invisible (a category without it, or another neck family), ``value=None`` for a random
    visible value. Every other attribute is uniform over its visible values (subject to the
    neckline/sleeve constraints, see the module docstring).

    The first draw from ``rng`` seeds a separate appearance stream (colour, pattern, tint, mannequin tone),
    so the appearance is independent of every attribute and, for equally seeded generators, identical
    whatever attribute value is forced: a grid with one column per value can share one colour.
    """
    rng = _as_rng(rng)
    app = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
    appearance = _sample_appearance(app)

    a = None
    if attribute is not None:
        a = ATTRIBUTES[_attr_index(attribute)]
        if value is None:
            value = 1 + int(rng.integers(NUM_VALUES[a] - 1))
        value = int(value)
        cands = applicable_categories(a, value)
    elif value is not None:
        raise ValueError("value given without attribute")
    else:
        cands = CATEGORIES
    if category is not None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; expected one of {list(CATEGORIES)}")
        if category not in cands:
            raise ValueError(f"{a}={value} is not possible on a {category}; possible on {list(cands)}")
        cat = category
    else:
        cat = _choice(rng, cands, [CATEGORY_WEIGHTS[c] for c in cands])

    vals = [0] * len(ATTRIBUTES)
    for la in _CAT_LENGTHS[cat]:
        vals[_AI[la]] = _choice(rng, allowed_values(cat, la))
    fam = None
    if cat in NECK_FAMILIES:
        fams = NECK_FAMILIES[cat]
        if a in DETAIL_ATTRIBUTES:
            allowed = [f for f in fams if (f == a) == (value > 0)]
        else:
            allowed = list(fams)
        fam = _choice(rng, allowed, [fams[f] for f in allowed])
        vals[_AI[fam]] = 1 + int(rng.integers(NUM_VALUES[fam] - 1))
    if a is not None and value > 0:
        vals[_AI[a]] = value
    # neckline/sleeve constraints: redraw the one that was not forced
    nl, sl = vals[_AI["neckline_design"]], vals[_AI["sleeve_length"]]
    r = rng.random()
    if nl and not _compatible(nl, sl):
        if a == "sleeve_length":
            ok = [v for v in range(1, NUM_VALUES["neckline_design"]) if _compatible(v, sl)]
            vals[_AI["neckline_design"]] = ok[int(r * len(ok))]
        else:
            ok = [v for v in range(1, NUM_VALUES["sleeve_length"]) if _compatible(nl, v)]
            vals[_AI["sleeve_length"]] = ok[int(r * len(ok))]

    jit = rng.uniform(-1.0, 1.0, len(ATTRIBUTES))
    jitter = tuple(float(j) if (a_ in LENGTH_ATTRIBUTES and v) else 0.0 for a_, j, v in zip(ATTRIBUTES, jit, vals))
    width = float(rng.uniform(1.0, 1.12))
    flare = float(rng.random())
    return GarmentSpec(category=cat, values=tuple(vals), jitter=jitter, width=width, flare=flare, **appearance)


def set_value(spec: GarmentSpec, attribute: str | int, value: int) -> GarmentSpec:
    """The same garment with ``attribute`` set to a visible ``value`` (everything else kept).

    Setting a neck-detail dimension switches the garment's neck family if needed (the old family becomes
    Invisible). The neckline/sleeve constraints are kept by adjusting the other one: a strapless or
    one-shoulder neckline makes the garment sleeveless, an off-shoulder one lengthens cup sleeves to short;
    sleeves on a strapless or one-shoulder garment turn its neckline into a straight neck.
    Raises ``ValueError`` when the category cannot show the value (e.g. lapels on a dress, or value 0: use
    :func:`sample_garment` with ``value=0`` to get a garment where an attribute is Invisible).
    """
    a = ATTRIBUTES[_attr_index(attribute)]
    value = int(value)
    if value == 0:
        raise ValueError(f"set_value sets visible values only; for {a}=0 (Invisible) use "
                         f"sample_garment(rng, attribute={a!r}, value=0)")
    if value not in allowed_values(spec.category, a):
        raise ValueError(f"a {spec.category} cannot have {a} = {value}; possible on "
                         f"{list(applicable_categories(a, value))}")
    vals = list(spec.values)
    if a in DETAIL_ATTRIBUTES:
        for f in DETAIL_ATTRIBUTES:
            vals[_AI[f]] = 0
    vals[_AI[a]] = value
    nl, sl = vals[_AI["neckline_design"]], vals[_AI["sleeve_length"]]
    if nl and not _compatible(nl, sl):
        if a == "sleeve_length":
            vals[_AI["neckline_design"]] = _FALLBACK_NECKLINE
        elif nl in _NECKLINE_SLEEVELESS:
            vals[_AI["sleeve_length"]] = 1
        else:
            vals[_AI["sleeve_length"]] = max(3, sl)
    return replace(spec, values=tuple(vals))


@lru_cache(maxsize=256)
def _frame_box(category: str, k: float, L: float) -> tuple[float, float, float, float]:
    """Body-unit box holding every garment of ``category`` (all values, longest jitter, widest cut)."""
    pts = []
    jit = (1.0,) * len(ATTRIBUTES)
    lengths = _CAT_LENGTHS[category]
    base = [0] * len(ATTRIBUTES)
    for la in lengths:
        base[_AI[la]] = max(allowed_values(category, la))
    fams = list(NECK_FAMILIES.get(category, {})) or [None]
    variants = []
    for fam in fams:
        for fv in (range(1, NUM_VALUES[fam]) if fam else [0]):
            vals = list(base)
            if fam:
                vals[_AI[fam]] = fv
            variants.append(vals)
            if "sleeve_length" in lengths:
                vals2 = list(vals)
                vals2[_AI["sleeve_length"]] = 1
                variants.append(vals2)
    for vals in variants:
        g = garment_geometry(category, vals, jit, 1.12, 1.0, k, L)
        pts += [p for p, _ in g.g_polys] + [p for p, _, _ in g.d_polys] + [p for p, _ in g.d_lines]
    if BODY_TYPE[category] != "lower":
        pts.append([(0.0, -1.28)])  # keep the head in the picture
    return bbox(pts)


# ----------------------------------------------------------------------------------------- rendering

def _box_px(point_lists, S, pad):
    b = bbox(point_lists)
    if b is None:
        return None
    x0, y0, x1, y1 = b
    bx = [max(0, math.floor(x0 - pad)), max(0, math.floor(y0 - pad)),
          min(S, math.floor(x1 + pad) + 1), min(S, math.floor(y1 + pad) + 1)]
    if bx[2] <= bx[0] or bx[3] <= bx[1]:
        return None
    return bx


def render(spec: GarmentSpec, config: RenderConfig | None = None, rng=None, as_pil: bool = False):
    """Render one garment (FashionSynth v1, our own generator; docs/architecture.md "FashionSynth").

    Returns ``(image, ground_truth)``: a uint8 ``(H, W, 3)`` array (a PIL image with ``as_pil=True``) and the
    ground-truth dict described in the module docstring. ``config`` defaults to the "wild" preset. Layout,
    background, clutter and noise come from ``rng`` (a Generator or a seed) in a fixed number of draws that
    does not depend on ``spec``: the same spec and equally seeded generators give the same pixels.
    """
    cfg = config or PRESETS["wild"]
    rng = _as_rng(rng)
    S = int(cfg.image_size)
    # --- every random draw of the scene, in a fixed order and number
    lay = rng.random(4)
    clutter = rng.random((int(cfg.clutter), 10))
    bg_col = tuple(int(c) for c in rng.integers(int(cfg.background_range[0]), int(cfg.background_range[1]), 3))
    noise_draw = rng.integers(0, 2**31 - 1, 3)

    # --- layout: scale, rotation and position of the category's frame
    angle = (2.0 * lay[0] - 1.0) * cfg.max_rotation
    th = math.radians(angle)
    c, s = math.cos(th), math.sin(th)
    fx0, fy0, fx1, fy1 = _frame_box(spec.category, float(cfg.detail_scale), float(cfg.length_jitter))
    rx = [c * x - s * y for x in (fx0, fx1) for y in (fy0, fy1)]
    ry = [s * x + c * y for x in (fx0, fx1) for y in (fy0, fy1)]
    rx0, rx1, ry0, ry1 = min(rx), max(rx), min(ry), max(ry)
    m = cfg.margin * S
    avail = S - 2 * m
    smin, smax = cfg.scale
    u = S * (smin + (smax - smin) * lay[1])
    u = min(u, avail / (rx1 - rx0), avail / (ry1 - ry0))
    j = float(cfg.position_jitter)
    px, py = (0.5, 0.5) if cfg.position == "center" else (0.5 + j * (lay[2] - 0.5), 0.5 + j * (lay[3] - 0.5))
    lo_x, hi_x = m - u * rx0, S - m - u * rx1
    lo_y, hi_y = m - u * ry0, S - m - u * ry1
    cx = lo_x + px * (hi_x - lo_x)
    cy = lo_y + py * (hi_y - lo_y)
    a_, b_, c_, d_ = u * c, -u * s, u * s, u * c

    def xf(pts):
        return [(a_ * x + b_ * y + cx, c_ * x + d_ * y + cy) for x, y in pts]

    geo = garment_geometry(spec.category, spec.values, spec.jitter, spec.width, spec.flare, float(cfg.detail_scale),
                    float(cfg.length_jitter), spec.fastening)
    lw = max(1, S // 150)

    # --- background
    if cfg.background == "plain":
        img = Image.new("RGB", (S, S), (232, 232, 228))
    else:
        img = Image.new("RGB", (S, S), bg_col)
        P.draw_clutter(ImageDraw.Draw(img), S, clutter, bg_col, float(cfg.clutter_contrast))
    draw = ImageDraw.Draw(img)

    # --- mannequin, drawn straight onto the picture
    if cfg.mannequin:
        skin = P.SKINS[spec.skin]
        tones = {1: skin, 2: P.HAIRS[spec.hair], 3: (40, 36, 34)}
        skin_dark = P.shade(skin, "dark")
        for pts, code in MANNEQUIN:
            draw.polygon(xf(pts), fill=tones[code], outline=skin_dark if code != 3 else None, width=lw)

    # --- garment: a label layer (1 fabric, 2 trim; neckline cuts cleared), composited inside its box
    c1 = tuple(int(x) for x in np.clip(np.asarray(P.COLOURS[spec.colour]) + np.asarray(spec.tint), 0, 255))
    dark = P.shade(c1, "dark")
    layer = Image.new("L", (S, S), 0)
    dg = ImageDraw.Draw(layer)
    for pts, code in geo.g_polys:
        dg.polygon(xf(pts), fill=code)
    for pts, code in geo.g_lines:
        dg.line(xf(pts), fill=code, width=lw)
    for pts in geo.cuts:
        dg.polygon(xf(pts), fill=0)
    gbox = layer.getbbox()
    out = np.array(img)
    if gbox is not None:
        x0, y0, x1, y1 = gbox
        G = np.asarray(layer)[y0:y1, x0:x1]
        sub = out[y0:y1, x0:x1]
        m1 = G == 1
        if spec.pattern == "solid":
            sub[m1] = c1
        else:
            X = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
            Y = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
            lx = np.float32(c / u) * X + np.float32(s / u) * Y
            ly = np.float32(-s / u) * X + np.float32(c / u) * Y
            fab = P.fabric(spec.pattern, spec.pattern_params, lx, ly, c1, P.COLOURS[spec.colour2])
            sub[m1] = fab[m1]
        sub[(G == 2) | edge_mask(G > 0, lw)] = dark

    # --- details on top: collars, lapels, high necks (detail tone), coat openings (inner colour)
    dbox = None
    if geo.d_polys or geo.d_lines:
        dlayer = Image.new("L", (S, S), 0)
        dd = ImageDraw.Draw(dlayer)
        for pts, fill, outline in geo.d_polys:
            dd.polygon(xf(pts), fill=fill, outline=outline, width=lw)
        for pts, code in geo.d_lines:
            dd.line(xf(pts), fill=code, width=lw)
        dbox = dlayer.getbbox()
        if dbox is not None:
            x0, y0, x1, y1 = dbox
            D = np.asarray(dlayer)[y0:y1, x0:x1]
            sub = out[y0:y1, x0:x1]
            sub[D == 1] = P.shade(c1, "detail")
            sub[D == 2] = dark
            sub[D == 3] = P.COLOURS[spec.inner]

    # --- noise: a random window of a fixed noise tile (see patterns.noise_tile)
    if cfg.noise_sigma > 0:
        tile = P.noise_tile(S, float(cfg.noise_sigma))
        T = tile.shape[0]
        ox, oy = int(noise_draw[0] % (T - S + 1)), int(noise_draw[1] % (T - S + 1))
        win = tile[oy:oy + S, ox:ox + S]
        if noise_draw[2] % 2:
            win = win[::-1]
        out = np.clip(out.astype(np.int16) + win, 0, 255).astype(np.uint8)

    # --- ground truth
    pad = 2 + lw // 2  # outline width plus one pixel of polygon rasterisation
    boxes = [list(b) for b in (gbox, dbox) if b is not None]
    garment_box = ([min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                    max(b[3] for b in boxes)] if boxes else None)
    regions = {}
    for a, val in zip(ATTRIBUTES, spec.values):
        pl = geo.regions.get(a) if val else None
        regions[a] = _box_px([xf(p) for p in pl if p], S, pad) if pl else None
    if spec.fastening is not None:  # an explicit fastening (upper and full-body garments only): its zone
        pl = geo.regions.get("fastening")
        regions["fastening"] = _box_px([xf(p) for p in pl], S, pad) if pl else None
    parts = {}
    for name in ("torso", "left_sleeve", "right_sleeve", "neck_detail", "fastening", "skirt", "left_leg",
                 "right_leg"):
        pl = geo.parts.get(name)
        parts[name] = _box_px([xf(p) for p in pl if p], S, pad) if pl else None
    gt = {
        "category": spec.category,
        "body": BODY_TYPE[spec.category],
        "values": spec.value_dict(),
        "garment_box": garment_box,
        "regions": regions,
        "parts": parts,
        "colour": spec.colour,
        "colour2": spec.colour2,
        "pattern": spec.pattern,
        **({"fastening": spec.fastening} if spec.fastening is not None else {}),
        "scale": round(float(u) / S, 5),
        "rotation": round(float(angle), 3),
        "image_size": S,
    }
    return (Image.fromarray(out) if as_pil else out), gt
