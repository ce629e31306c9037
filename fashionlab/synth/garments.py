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

What the values look like (body units, see below; ``LENGTHS`` and the ``_*_shapes`` tables hold the numbers):

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
pixels by one similarity transform (random scale, rotation and position, see :class:`RenderConfig`).

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
FashionAI attributes), ``garment_box`` ([x1, y1, x2, y2]), ``regions`` ({attribute: box or null}), ``parts``
({part: box or null} for torso, left_sleeve, right_sleeve, neck_detail, fastening, skirt, left_leg,
right_leg), ``colour``, ``colour2``, ``pattern`` (names), ``scale`` (pixels per body unit / image size),
``rotation`` (degrees) and ``image_size``; a spec with an explicit ``fastening`` adds ``fastening`` (its name)
and ``regions["fastening"]`` (the centre-front zone that holds every fastening style). Boxes are integer pixel
coordinates of the rendered image with x2, y2 exclusive (``image[y1:y2, x1:x2]`` is the region). An attribute's region is null exactly when its value
is 0 "Invisible". Regions: sleeves (both sleeves and both armholes), the hem band (coat, skirt and pant
length: the garment from 0.4 body units above the hem to just below it) and the neck-detail area (collar,
lapel, neckline, neck: every piece and cut of the detail). Detail, sleeve and fastening boxes contain every pixel
that changes when that attribute's value changes; for a length, the pixels that change between two values lie
between the two values' hem bands (both tested). Boxes are conservative (one pixel of padding); detail regions
cover about 1-3% of the image on average at the default settings (at most about 8%, for strapless and
off-shoulder necklines).
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

__all__ = [
    "ATTRIBUTES", "NUM_VALUES", "CATEGORIES", "BODY_TYPE", "CATEGORY_ATTRIBUTES", "NECK_FAMILIES",
    "LENGTH_ATTRIBUTES", "DETAIL_ATTRIBUTES", "FASTENINGS", "CATEGORY_FASTENINGS", "DEFAULT_FASTENING",
    "GarmentSpec", "RenderConfig", "PRESETS", "sample_garment",
    "set_value", "applicable_categories", "allowed_values", "render",
]

ATTRIBUTES: tuple[str, ...] = FASHIONAI.attributes
NUM_VALUES: dict[str, int] = dict(zip(FASHIONAI.attributes, FASHIONAI.num_values))
_AI = {a: i for i, a in enumerate(ATTRIBUTES)}
LENGTH_ATTRIBUTES = ("skirt_length", "sleeve_length", "coat_length", "pant_length")
DETAIL_ATTRIBUTES = ("collar_design", "lapel_design", "neckline_design", "neck_design")

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

# Drawn lengths per value index (None: no length). Sleeves: position along the arm from the shoulder (0) to the
# wrist (1); the hand ends at 1.16. Others: y of the hem in body units.
LENGTHS = {
    "sleeve_length": (None, None, 0.10, 0.30, 0.48, 0.66, 0.84, 1.00, 1.17),
    "coat_length": (None, 1.60, 2.55, 3.15, 3.75, 4.45, 5.25, 6.20),
    "skirt_length": (None, 3.35, 4.35, 5.20, 6.00, 6.55),
    "pant_length": (None, 3.75, 4.45, 5.10, 5.65, 6.30),
}

#: Centre-front fastenings the renderer draws (``GarmentSpec.fastening``): "none" (a pullover), "buttons"
#: (FashionSynth v1's coat fastening), "zip", "double" (double-breasted). Not a FashionAI attribute.
FASTENINGS: tuple[str, ...] = ("none", "buttons", "zip", "double")
#: The fastenings each upper or full-body category can have (lower-body garments have none drawn).
CATEGORY_FASTENINGS: dict[str, tuple[str, ...]] = {
    "top": ("none", "buttons", "zip"), "coat": ("buttons", "zip", "double"), "dress": ("none", "buttons", "zip"),
}
#: The fastening drawn when ``GarmentSpec.fastening`` is None (FashionSynth v1: only coats are buttoned).
DEFAULT_FASTENING: dict[str, str] = {"top": "none", "coat": "buttons", "dress": "none"}

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


# ------------------------------------------------------------------------------------------ geometry

def _mirror(pts):
    return [(-x, y) for x, y in pts]


def _full(right):
    """Full symmetric polygon from its right half, listed from the top centre down to the bottom centre."""
    return list(right) + [(-x, y) for x, y in reversed(right[1:-1])]


def _ellipse(cx, cy, rx, ry, a0=0.0, a1=360.0, n=16):
    ts = np.radians(np.linspace(a0, a1, n, endpoint=(a1 - a0) < 360))
    return list(zip((cx + rx * np.cos(ts)).tolist(), (cy + ry * np.sin(ts)).tolist()))


def _scale(pts, k):
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


def _clip_box(pts, x0, y0, x1, y1):
    for axis, val, ge in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not pts:
            return []
        pts = _clip_half(pts, axis, val, ge)
    return pts


def _bbox(point_lists):
    xs = [x for pts in point_lists for x, _ in pts]
    ys = [y for pts in point_lists for _, y in pts]
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def _drawn_length(attr: str, v: int, j: float, L: float) -> float:
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


def _arm_point(t, off):
    c = _A0 + t * _AD + _AN * off
    return float(c[0]), float(c[1])


def _arm_hw(t):
    return 0.19 - 0.08 * min(max(t, 0.0), 1.0)


def _build_mannequin():
    body_r = [(0.0, 0.04), (0.19, 0.05), (0.98, 0.22), (1.05, 0.42), (0.87, 0.95), (0.72, 2.0), (0.93, 2.85),
              (0.87, 3.4), (0.66, 4.5), (0.49, 6.2), (0.20, 6.2), (0.14, 4.5), (0.03, 3.3), (0.0, 3.3)]
    body = _full(body_r)
    neck = [(-0.15, -0.45), (0.15, -0.45), (0.19, 0.12), (-0.19, 0.12)]
    head = _ellipse(0.0, -0.80, 0.33, 0.43, n=18)
    hair = _ellipse(0.0, -0.86, 0.36, 0.40, 180, 360, n=10) + [(0.35, -0.72), (0.0, -0.98), (-0.35, -0.72)]
    ts = (0.0, 0.25, 0.5, 0.75, 1.0)
    outer = [_arm_point(t, _arm_hw(t)) for t in ts]
    inner = [_arm_point(t, -_arm_hw(t)) for t in ts]
    hand = [_arm_point(1.06, 0.125), _arm_point(1.16, 0.05), _arm_point(1.17, 0.0), _arm_point(1.16, -0.07),
            _arm_point(1.06, -0.12)]
    cap = [_arm_point(-0.04, 0.1), _arm_point(-0.06, 0.0)]
    arm_r = cap + outer + hand + inner[::-1]
    shoe_r = [(0.16, 6.15), (0.52, 6.15), (0.58, 6.44), (0.54, 6.52), (0.12, 6.52)]
    return [(body, 1), (neck, 1), (head, 1), (hair, 2), (arm_r, 1), (_mirror(arm_r), 1), (shoe_r, 3),
            (_mirror(shoe_r), 3)]


_MANNEQUIN = _build_mannequin()


def _side(knots, slope, hem, step=0.2):
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


def _circle(cx, cy, r, n=8):
    return _ellipse(cx, cy, r, r, n=n)


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
        7: [(-0.37, top), (0.37, top)] + _ellipse(0.0, 0.0, 0.37, 0.44, 0, 180, n=13),
        8: [(-0.62, top), (0.62, top), (0.62, 0.55), (0.50, 0.45), (0.36, 0.42), (0.22, 0.46), (0.10, 0.56),
            (0.0, 0.72), (-0.10, 0.56), (-0.22, 0.46), (-0.36, 0.42), (-0.50, 0.45), (-0.62, 0.55)],
        9: [(-0.30, top), (2.6, top), (2.6, 0.98), (0.92, 0.98), (-0.30, 0.06)],
    }
    return {v: dict(cuts=[p], polys=[], lines=[]) for v, p in s.items()}


def _collar_shapes():
    flap = [(0.02, 0.10), (0.30, -0.06), (0.44, 0.14), (0.22, 0.46)]
    stand = [(-0.22, -0.16), (0.22, -0.16), (0.30, 0.03), (-0.30, 0.03)]
    pp = _ellipse(0.20, 0.14, 0.21, 0.18, n=14)
    pur = _full([(0.0, 0.04), (0.30, -0.04), (0.64, 0.06), (0.78, 0.26), (0.72, 0.52), (0.48, 0.66),
                 (0.18, 0.66), (0.0, 0.58)])
    outer = _ellipse(0.0, -0.05, 0.39, 0.32, 0, 180, n=13)
    inner = _ellipse(0.0, -0.05, 0.25, 0.15, 180, 0, n=13)
    ribs = []
    for ang in np.radians(np.arange(18, 180, 18)):
        ca, sa = math.cos(ang), math.sin(ang)
        ribs.append([(0.25 * ca, -0.05 + 0.15 * sa), (0.39 * ca, -0.05 + 0.32 * sa)])
    return {
        1: dict(cuts=[], polys=[(stand, 1, 2), (flap, 1, 2), (_mirror(flap), 1, 2)], lines=[]),
        2: dict(cuts=[], polys=[(pp, 1, 2), (_mirror(pp), 1, 2)], lines=[]),
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
    opening = [(-0.30, -0.06), (0.30, -0.06)] + _ellipse(0.0, -0.06, 0.30, 0.48, 0, 180, n=13)
    band = _ellipse(0.0, -0.06, 0.38, 0.56, 0, 180, n=13) + _ellipse(0.0, -0.06, 0.30, 0.48, 180, 0, n=13)
    return {
        1: dict(cuts=[], polys=[(vee(1.15), 3, None), (notched, 1, 2), (_mirror(notched), 1, 2)], lines=[]),
        2: dict(cuts=[], polys=[(opening, 3, None), (band, 1, 2)], lines=[[(0.0, 0.42), (0.0, 0.92)]]),
        3: dict(cuts=[], polys=[(vee(1.20), 3, None), (shawl, 1, 2), (_mirror(shawl), 1, 2)], lines=[]),
        4: dict(cuts=[], polys=[(vee(1.38, -0.08), 3, None), (plus, 1, 2), (_mirror(plus), 1, 2)], lines=[]),
    }


def _neck_shapes():
    turtle = [(-0.27, -0.46), (0.27, -0.46), (0.30, 0.06), (-0.30, 0.06)]
    ruffle = [(-0.30, 0.06), (-0.27, -0.14), (-0.42, -0.30), (-0.29, -0.25), (-0.21, -0.37), (-0.11, -0.27),
              (0.0, -0.39), (0.11, -0.27), (0.21, -0.37), (0.29, -0.25), (0.42, -0.30), (0.27, -0.14), (0.30, 0.06)]
    low = [(-0.26, -0.18), (0.26, -0.18), (0.30, 0.06), (-0.30, 0.06)]
    cowl = _full([(0.0, -0.04), (0.30, -0.06), (0.45, 0.04), (0.43, 0.28), (0.28, 0.50), (0.0, 0.60)])
    folds = [[(-0.34, 0.10), (-0.17, 0.24), (0.0, 0.28), (0.17, 0.24), (0.34, 0.10)],
             [(-0.38, 0.24), (-0.20, 0.41), (0.0, 0.46), (0.20, 0.41), (0.38, 0.24)]]
    return {
        1: dict(cuts=[], polys=[(turtle, 1, 2)], lines=[[(-0.28, -0.18), (0.28, -0.18)]]),
        2: dict(cuts=[], polys=[(ruffle, 1, 2)], lines=[[(-0.27, -0.14), (0.27, -0.14)]]),
        3: dict(cuts=[], polys=[(low, 1, 2)], lines=[]),
        4: dict(cuts=[], polys=[(cowl, 1, 2)], lines=folds),
    }


_SHAPES = {
    "neckline_design": _neckline_shapes(),
    "collar_design": _collar_shapes(),
    "lapel_design": _lapel_shapes(),
    "neck_design": _neck_shapes(),
}


class _Geo:
    """Garment geometry in body units: what to draw in each layer, and the region/part point sets."""

    __slots__ = ("g_polys", "g_lines", "cuts", "d_polys", "d_lines", "regions", "parts")

    def __init__(self):
        self.g_polys = []  # (poly, code) garment layer: 1 fabric, 2 dark trim
        self.g_lines = []  # (polyline, code)
        self.cuts = []  # polys cleared from the garment layer (necklines)
        self.d_polys = []  # (poly, fill, outline) detail layer
        self.d_lines = []  # (polyline, code)
        self.regions = {}  # attribute -> list of point lists
        self.parts = {}  # part -> list of point lists


def _hem_band(poly, hem):
    return _clip_box(poly, -1e3, hem - 0.4, 1e3, hem + 0.12)


def _geometry(category, values, jitter, width, flare, k=1.0, L=0.5, fastening=None) -> _Geo:
    geo = _Geo()
    v = values
    w = width
    if category in ("top", "coat", "dress"):
        _upper(geo, category, v, jitter, w, flare, k, L, fastening)
    elif category == "skirt":
        hem = _drawn_length("skirt_length", v[_AI["skirt_length"]], jitter[_AI["skirt_length"]], L)
        knots = [(0.76 * w, 1.95), (0.99 * w, 2.85)]
        side = _side(knots, 0.06 + 0.14 * flare, hem)
        hw = side[-1][0]
        poly = _full([(0.0, 1.95)] + side + [(hw * 0.5, hem + 0.03), (0.0, hem + 0.04)])
        geo.g_polys.append((poly, 1))
        geo.g_lines.append(([(-0.77 * w, 2.08), (0.77 * w, 2.08)], 2))
        geo.regions["skirt_length"] = [_hem_band(poly, hem)]
        geo.parts["skirt"] = [poly]
    else:  # pants
        hem = _drawn_length("pant_length", v[_AI["pant_length"]], jitter[_AI["pant_length"]], L)
        wide = 0.20 * flare
        outer = _side([(0.76 * w, 1.95), (0.99 * w, 2.85), (0.95, 3.4), (0.75 + wide * 0.4, 4.5),
                       (0.58 + wide, 6.2)], -0.05, hem)
        inner = _side([(0.02, 3.32), (0.09, 4.5), (0.14, 6.2)], 0.02, hem)
        right = outer + inner[::-1]
        poly = right + [(0.0, 3.30)] + _mirror(right)[::-1]
        geo.g_polys.append((poly, 1))
        geo.g_lines.append(([(-0.77 * w, 2.08), (0.77 * w, 2.08)], 2))
        geo.g_lines.append(([(0.0, 2.08), (0.0, 2.9)], 2))
        leg = [p for p in outer if p[1] >= 3.3] + inner[::-1]
        band = _hem_band(poly, hem)
        geo.regions["pant_length"] = [band]
        geo.parts["right_leg"] = [leg]
        geo.parts["left_leg"] = [_mirror(leg)]
    return geo


#: x extent (body units) of the centre-front zone that holds every fastening style.
_FASTENING_ZONE = (-0.22, 0.34)


def _fastening(geo, style, y0, hem, lapels):
    """Draw a centre-front fastening from ``y0`` down to the hem (dark trim in the garment layer).

    "buttons": the front edge at the centre line and one column of buttons beside it (FashionSynth v1's coat
    fastening, unchanged); "zip": a double seam with a pull tab at the top; "double": double-breasted, the front
    edge off-centre and two columns of buttons. Buttons sit every 0.5 (0.45 for "double") body units from 0.55
    down to 0.25 above the hem, none under lapels (above 1.5). Lines use the fixed grid of vertices of
    :func:`_side`, so a longer hem changes pixels only near the hem.
    """
    def column(x):
        ys = [y0] + [i * 0.2 for i in range(int(y0 / 0.2) + 1, int(math.ceil((hem + 0.04) / 0.2)))] + [hem + 0.04]
        return [(x, y) for y in ys]

    def buttons(xs, step):
        y = 0.55
        while y <= hem - 0.25:
            if not (lapels and y < 1.5):
                for x in xs:
                    geo.g_polys.append((_circle(x, y, 0.05), 2))
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
        hem = _drawn_length("skirt_length", v[_AI["skirt_length"]], jitter[_AI["skirt_length"]], L)
        knots = [(0.91, 0.98), (0.78 * w, 2.0), (0.99 * w, 2.85)]
        slope = 0.06 + 0.14 * flare
    else:
        hem = _drawn_length("coat_length", v[_AI["coat_length"]], jitter[_AI["coat_length"]], L)
        ease = 1.04 if category == "coat" else 1.0
        knots = [(0.91, 0.98), (0.78 * w * ease, 2.0), (0.99 * w * ease, 2.85)]
        slope = (0.04 + 0.08 * flare) if category == "coat" else (0.02 + 0.04 * flare)
    side = _side(knots, slope, hem)
    hw = side[-1][0]
    right += side[1:] + [(hw * 0.5, hem + 0.03), (0.0, hem + 0.04)]
    torso = _full(right)
    geo.g_polys.append((torso, 1))
    geo.parts["torso"] = [torso]

    # sleeves (region: both sleeves and both armholes)
    arm_zone = [(0.58, 0.06), (1.32, 0.06), (1.32, 1.04), (0.58, 1.04)]
    sleeve_pts = [arm_zone, _mirror(arm_zone)]
    if not sleeveless:
        t = _drawn_length("sleeve_length", sv, jitter[_AI["sleeve_length"]], L)
        hw_s = _arm_hw(t) + 0.07 + (0.04 if t < 0.4 else 0.0)
        S, P_ = (1.0, 0.18), (0.91, 0.98)
        Q = _arm_point(-0.03, _arm_hw(0.0) + 0.07)
        O, I = _arm_point(t, hw_s), _arm_point(t, -hw_s)
        sl = [S, Q, O, I, P_] if I[1] > P_[1] + 0.02 else [S, Q, O, I]
        geo.g_polys.append((sl, 1))
        geo.g_polys.append((_mirror(sl), 1))
        if t >= 0.25:
            geo.g_lines.append(([S, P_], 2))
            geo.g_lines.append(([(-S[0], S[1]), (-P_[0], P_[1])], 2))
        sleeve_pts += [sl, _mirror(sl)]
        geo.parts["right_sleeve"] = [sl]
        geo.parts["left_sleeve"] = [_mirror(sl)]
    geo.regions["sleeve_length"] = sleeve_pts

    if category == "dress":
        geo.g_lines.append(([(-0.78 * w, 2.0), (0.78 * w, 2.0)], 2))
        geo.regions["skirt_length"] = [_hem_band(torso, hem)]
        geo.parts["skirt"] = [_clip_box(torso, -1e3, 2.0, 1e3, 1e3)]
    else:
        geo.regions["coat_length"] = [_hem_band(torso, hem)]

    fam = next((a for a in DETAIL_ATTRIBUTES if v[_AI[a]]), None)
    style = fastening if fastening is not None else DEFAULT_FASTENING[category]
    lapels = fam == "lapel_design"
    y0 = 0.9 if lapels else 0.10
    if style != "none":
        _fastening(geo, style, y0, hem, lapels)
    if fastening is not None:  # the centre-front zone where any fastening lives (only for explicit styles)
        geo.regions["fastening"] = [[(_FASTENING_ZONE[0], y0), (_FASTENING_ZONE[1], y0), (_FASTENING_ZONE[1], hem),
                                     (_FASTENING_ZONE[0], hem)]]
    if fam is None:
        return
    shape = _SHAPES[fam][v[_AI[fam]]]
    reg = []
    # the garment box (body units) before cuts, to clip neckline cuts for the region
    gx0, gy0, gx1, gy1 = _bbox([p for p, _ in geo.g_polys])
    for c in shape["cuts"]:
        c = _scale(c, k)
        geo.cuts.append(c)
        cc = _clip_box(c, gx0, gy0, gx1, gy1)
        if cc:
            reg.append(cc)
    for poly, fill, outline in shape["polys"]:
        poly = _scale(poly, k)
        geo.d_polys.append((poly, fill, outline))
        reg.append(poly)
    for line in shape["lines"]:
        line = _scale(line, k)
        geo.d_lines.append((line, 2))
        reg.append(line)
    geo.regions[fam] = reg
    geo.parts["neck_detail"] = reg


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
        g = _geometry(category, vals, jit, 1.12, 1.0, k, L)
        pts += [p for p, _ in g.g_polys] + [p for p, _, _ in g.d_polys] + [p for p, _ in g.d_lines]
    if BODY_TYPE[category] != "lower":
        pts.append([(0.0, -1.28)])  # keep the head in the picture
    return _bbox(pts)


# ----------------------------------------------------------------------------------------- rendering



def _edge(mask: np.ndarray, width: int = 1) -> np.ndarray:
    inner = mask
    for _ in range(width):
        e = inner.copy()
        e[1:-1, 1:-1] &= inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
        e[0, :] = e[-1, :] = False
        e[:, 0] = e[:, -1] = False
        inner = e
    return mask & ~inner


def _box_px(point_lists, S, pad):
    b = _bbox(point_lists)
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

    geo = _geometry(spec.category, spec.values, spec.jitter, spec.width, spec.flare, float(cfg.detail_scale),
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
        for pts, code in _MANNEQUIN:
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
        sub[(G == 2) | _edge(G > 0, lw)] = dark

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
