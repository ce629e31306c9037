"""FashionSynth "outfit": one mannequin per scene in a complete outfit, one box per object (paper 06 stand-in).

Paper 06 (hierarchical label sharing, §3-§4.1) runs a two-stage pipeline: a detector finds *object types*
(upper body, lower body, full body, footwear; Table 1) in full scenes, then a classifier labels each detected
crop with a garment *category* (Table 1, 22 categories) and multi-label *attributes* (Table 2: prints valid for
every category, styles valid for some categories only). Its own Mallzee data are not public and DeepFashion2
has no attributes and no footwear (docs/formats.md §5.4). This module writes FashionSynth's stand-in (our own
generator, :mod:`fashionlab.synth.garments`, not the paper's data): scenes of one front-facing mannequin
wearing 2-4 garments (a pair of shoes counts as one garment), the scene boxes in the DeepFashion2 per-image
JSON and in COCO detection JSON, and square stage-2 crops of every object in DeepFashion's Category & Attribute
Prediction list files (§5.3).

Taxonomy (module constants)
---------------------------
:data:`OBJECT_TYPES` ``("upper body", "lower body", "full body", "footwear")``. :data:`CATEGORIES` (14, grouped
by object type, :data:`CATEGORY_TYPE`), shaped so that every class shows in a 64 px crop:

* upper body: ``t-shirt`` (short sleeves, crew or V neck), ``shirt`` (pointed collar, a full column of buttons,
  long sleeves with cuffs), ``sweater`` (long sleeves, rib collar, ribbed hem and cuff bands), ``coat`` (a long
  outer layer to mid-thigh with long sleeves and lapels, worn open over the upper garment, which shows in the
  opening; closed when double-breasted, belted or puffer);
* lower body: ``trousers`` (to the ankle), ``shorts`` (to mid-thigh), ``skirt``;
* full body: ``dress`` (one piece to the knee or calf), ``jumpsuit`` (a top and trousers in one fabric with a
  waist seam);
* footwear: ``boots`` (a shaft well above the ankle), ``heels`` (raised heel on a thin heel post, pointed toe,
  skin at the instep), ``trainers`` (chunky light sole, light laces, a side stripe), ``sandals`` (a sole and
  thin straps over bare skin), ``flats`` (a low shell on a thin sole, the top of the foot showing).

:data:`PRINTS` (valid for every category): FashionSynth's fabric patterns ``striped``, ``checked``,
``polka dots``, ``zigzag`` (solid = no print attribute). :data:`STYLES` ({style: categories}, 20 styles, like
Table 2): shared styles ``chest pocket`` (t-shirt, shirt), ``cropped`` (t-shirt, sweater; hem above the waist,
midriff showing), ``belted`` (coat, dress, jumpsuit), ``cargo pockets`` (trousers, shorts), ``wide leg``
(trousers, jumpsuit), ``a-line`` and ``frill`` (skirt, dress), ``mules`` (flats, heels: backless, the heel of
the foot showing), ``ankle strap`` (heels, sandals); single-category styles ``polo collar`` (t-shirt: a small
collar and a two-button placket, deliberately close to a shirt collar), ``short-sleeved`` (shirt: then close to
a t-shirt), ``turtleneck`` (sweater), ``puffer`` (coat: quilting lines and a zip), ``double-breasted`` (coat:
two columns of buttons), ``cutoff`` (shorts: a light frayed jagged hem, close to a frill), ``pleated`` (skirt:
fanning pleat lines, close to stripes), ``wrap`` (dress: deep V, a diagonal overlap edge and a tie),
``chelsea`` (boots: a dark elastic side panel and a pull tab), ``gladiator`` (sandals: straps up the shin, close
to a boot shaft), ``high-top`` (trainers: the collar above the ankle, close to a boot). :data:`ATTRIBUTES`
= PRINTS + styles; :func:`applicable_mask` is the (category x attribute) mask of Table 2's "applies to" column,
and every label respects it.

Class imbalance is built in and natural: outfits are upper + lower garment (75%) or one full-body garment,
with a coat over them in 22% and shoes in 96% of the scenes; categories and styles are drawn with skewed rates
(:data:`CATEGORY_WEIGHTS`, :data:`STYLE_RATES`: t-shirts and trousers common, jumpsuits rare), and each shoe is
its own object, so footwear is the majority object type (as in the paper's Mallzee data, §4.1: "footwear often
come in pairs"). :func:`generate_outfits` measures it (counts, IR, MeanIR and SCUMBLE of Eq. 8-10, via
:mod:`fashionlab.metrics`) into ``synth.json``.

Scenes (:func:`render_outfit`)
------------------------------
Body units and the mannequin are those of :mod:`fashionlab.synth.geometry` (neck base at the origin, y down, head
top -1.25, waist 2.0, knee 4.5, ankle 6.2; the ground is at :data:`GROUND` = 6.68). Upper garments, coats and
dresses come from the garment geometry (:func:`~fashionlab.synth.geometry.garment_geometry`: sleeves, hems, neck
details, fastenings); lower garments, jumpsuits, the style details and all footwear are drawn here. Everything goes
through one similarity transform: the figure (head to ground) fills :attr:`OutfitConfig.height` of the image height,
at a random position and a small rotation. Drawing order: lower garment (or the full-body garment), the upper
garment over it, the coat over the top, then the two shoes (the left shoe points left, the right shoe right, side
profile, about 1.3 body units long: 14-20 px at 128 px). Hems stop above the ankle, so the feet always show. A scene
with no shoes shows bare feet (part of the mannequin, not an object).

Each object is drawn into its own label layer (fabric, trim, detail tone, skin inside a shoe, light accents,
sole), outlined, and composited over what is below; an *owner map* records which object each pixel shows. An
object's box ``[x1, y1, x2, y2]`` (ints, x2/y2 exclusive) is the box of the pixels it owns in the final picture,
so occluded parts are excluded and the box is tight: rendering the scene without that object changes pixels
only inside it (tested). Background (light colour, mild clutter), layout and pixel noise take a fixed number of
draws from the scene's random stream, whatever the outfit.

Visibility rules. An object is annotated only when it owns at least :attr:`OutfitConfig.min_visible_fraction`
(15%) of its unoccluded pixels and at least :attr:`OutfitConfig.min_visible_pixels` (24 px at 128 px, scaled
with the image area); otherwise it is drawn but not annotated (like the paper's annotators, who labelled
garments "fully visible or visible to a significant degree"), e.g. a t-shirt under a closed coat. A style whose
region (the pocket, the collar, the hem band ...) is less than half visible on a partly occluded garment is
dropped from its labels (e.g. cargo pockets under a long coat); prints stay.

Files (:func:`generate_outfits`)
--------------------------------
``{split}/image/NNNNNN.jpg``
    the scenes (JPEG 95), ``split`` in train / validation / test (80/10/10 over scenes, shuffled); NNNNNN is the
    1-based scene number over the whole dataset (DeepFashion2's layout, docs/formats.md §5.4).
``{split}/annos/NNNNNN.json``
    DeepFashion2 per-image JSON: ``source`` "shop", ``pair_id`` (the scene number), and ``item1`` ... ``itemN``
    with ``category_name`` (garment category), ``category_id`` (1-based in :data:`CATEGORIES`), ``style`` 0,
    ``bounding_box`` [x1, y1, x2, y2], ``landmarks`` [], ``segmentation`` [], ``scale`` (box area below 2% of the
    image: 1, below 10%: 2, else 3), ``occlusion`` (visible fraction >= 0.8: 1, >= 0.5: 2, else 3), ``zoom_in``
    1, ``viewpoint`` 2 (frontal), plus two **FashionSynth extensions** that real DeepFashion2 does not have:
    ``object_type`` (name) and ``attributes`` (list of names). Items are in drawing order.
``annotations/instances_{split}.json``
    COCO detection JSON: ``info``, ``licenses`` [], ``images`` [{id (scene number), file_name "NNNNNN.jpg"
    (relative to ``{split}/image/``), width, height}], ``categories`` = the four object types, ids 1..4,
    supercategory "garment", ``annotations`` [{id (1-based over the dataset), image_id, category_id (object
    type), bbox [x, y, w, h] with w = x2 - x1, area = w * h, iscrowd 0, and the extensions ``garment_category``
    and ``attributes``}], and the top-level extensions ``garment_categories`` [{id, name, object_type}] and
    ``attribute_names`` [{id, name, kind "print" | "style", applies_to [categories]}].
``crops/``
    stage 2: :func:`square_crop` of every annotated object (``crop_size`` px, the same function a pipeline
    applies to detector boxes) in DeepFashion's Category & Attribute Prediction layout (§5.3):
    ``crops/img/<category>/NNNNNN_KK.jpg`` (scene number, item number), ``crops/Anno/list_category_cloth.txt``
    (category types 1 upper, 2 lower, 3 full, and **4 footwear**, the FashionSynth extension of
    :data:`fashionlab.datasets.deepfashion.CATEGORY_TYPE_NAMES`), ``list_category_img.txt``,
    ``list_attr_cloth.txt`` (prints type 1 texture, styles type 5 style), ``list_attr_img.txt`` (1 / -1),
    ``list_bbox.txt`` (the object's box inside the crop), ``crops/Eval/list_eval_partition.txt`` (train / val /
    test = the scene's split), and ``crops/objects.jsonl`` (per crop, in list order: ``name``, ``split``,
    ``scene`` (its image path), ``scene_id``, ``item`` (1-based item number in the DF2 JSON), ``box``,
    ``object_type``, ``category``, ``attributes``). ``read_deepfashion(root / "crops", require=("categories",
    "partition"))`` reads them.
``ground_truth.jsonl``
    one line per scene in scene order: ``index`` (0-based), ``id`` (scene number), ``file`` (image path),
    ``split``, ``width``, ``height``, ``objects`` (as :func:`render_outfit` returns them), ``dropped`` (objects
    drawn but not annotated: category and visible fraction), ``outfit`` (the garments: category, styles, print,
    colour). :func:`load_outfit_ground_truth` reads it.
``synth.json``
    generator, version, format "outfit", seed, config, split sizes, the taxonomy, counts (object types,
    categories, attributes, all and per split; dropped objects and hidden styles) and the imbalance statistics.

Each scene has its own generators (``numpy.random.default_rng([seed, index])`` for the outfit,
``[seed, index, 1]`` for the picture), so the same seed and options give the same files whatever the number of
worker processes.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import patterns as P
from .cli import SynthCommand, main as cli_main, option
from .garments import JsonConfig
from .geometry import (ATTRIBUTE_INDEX, LENGTHS, MANNEQUIN, arm_half_width, arm_point, edge_mask,
                       garment_geometry, mirror, side_outline)
from .writer import Preset, ensure, generate, load_ground_truth, write_json, write_lines, write_list_file

__all__ = [
    "VERSION", "OBJECT_TYPES", "CATEGORIES", "CATEGORY_TYPE", "PRINTS", "PRINT_PATTERNS", "STYLES", "ATTRIBUTES",
    "CATEGORY_WEIGHTS", "STYLE_RATES", "SPLITS", "PARTITION_NAMES", "GROUND", "OutfitConfig", "OUTFIT_CONFIG",
    "Garment", "OutfitSpec", "applicable_mask", "sample_outfit", "render_outfit", "square_crop",
    "OutfitPreset", "generate_outfits", "ensure_outfits", "load_outfit_ground_truth", "outfit_statistics",
    "COMMAND", "main_outfit", "run_outfit_cli",
]

#: Generator version, written to synth.json and the ``.complete`` marker.
VERSION = "1.0"

# ------------------------------------------------------------------------------------------------ taxonomy

#: Object types (paper 06, Table 1; the detector's classes, COCO category ids 1..4 in this order).
OBJECT_TYPES: tuple[str, ...] = ("upper body", "lower body", "full body", "footwear")
_CATS_BY_TYPE = {
    "upper body": ("t-shirt", "shirt", "sweater", "coat"),
    "lower body": ("trousers", "shorts", "skirt"),
    "full body": ("dress", "jumpsuit"),
    "footwear": ("boots", "heels", "trainers", "sandals", "flats"),
}
#: Garment categories, grouped by object type in :data:`OBJECT_TYPES` order (Table 1's Mallzee column, reduced).
CATEGORIES: tuple[str, ...] = tuple(c for t in OBJECT_TYPES for c in _CATS_BY_TYPE[t])
#: Category -> its object type.
CATEGORY_TYPE: dict[str, str] = {c: t for t in OBJECT_TYPES for c in _CATS_BY_TYPE[t]}
#: Print attributes (Table 2: "all objects & categories"), FashionSynth's fabric patterns; solid has no print.
PRINTS: tuple[str, ...] = ("striped", "checked", "polka dots", "zigzag")
#: Print attribute -> the pattern name in :data:`fashionlab.synth.patterns.PATTERNS`.
PRINT_PATTERNS: dict[str, str] = {"striped": "stripes", "checked": "checks", "polka dots": "dots", "zigzag": "zigzag"}
_PATTERN_PRINT = {v: k for k, v in PRINT_PATTERNS.items()}
#: Style attributes and the categories each applies to (Table 2's "applies to" column), grouped by object type.
STYLES: dict[str, tuple[str, ...]] = {
    "polo collar": ("t-shirt",),
    "chest pocket": ("t-shirt", "shirt"),
    "short-sleeved": ("shirt",),
    "cropped": ("t-shirt", "sweater"),
    "turtleneck": ("sweater",),
    "puffer": ("coat",),
    "double-breasted": ("coat",),
    "belted": ("coat", "dress", "jumpsuit"),
    "cargo pockets": ("trousers", "shorts"),
    "cutoff": ("shorts",),
    "wide leg": ("trousers", "jumpsuit"),
    "pleated": ("skirt",),
    "a-line": ("skirt", "dress"),
    "frill": ("skirt", "dress"),
    "wrap": ("dress",),
    "chelsea": ("boots",),
    "mules": ("flats", "heels"),
    "ankle strap": ("heels", "sandals"),
    "gladiator": ("sandals",),
    "high-top": ("trainers",),
}
#: All attributes: prints, then styles (the column order of every label vector).
ATTRIBUTES: tuple[str, ...] = PRINTS + tuple(STYLES)
_ATTR_INDEX = {a: i for i, a in enumerate(ATTRIBUTES)}
_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}

#: Category frequencies within a garment slot (skewed on purpose).
CATEGORY_WEIGHTS: dict[str, dict[str, float]] = {
    "upper body": {"t-shirt": 0.50, "shirt": 0.27, "sweater": 0.23},
    "lower body": {"trousers": 0.56, "skirt": 0.25, "shorts": 0.19},
    "full body": {"dress": 0.80, "jumpsuit": 0.20},
    "footwear": {"trainers": 0.36, "boots": 0.22, "flats": 0.16, "heels": 0.15, "sandals": 0.11},
}
#: Outfit make-up: P(upper + lower instead of one full-body garment), P(coat on top), P(shoes).
OUTFIT_RATES = {"two_piece": 0.75, "coat": 0.22, "shoes": 0.96}
#: P(style | category) (skewed). Exclusive choices: a coat is open, double-breasted or puffer (belted closes an
#: open coat with buttons; a puffer is never belted); mules and an ankle strap exclude each other on heels, and
#: gladiator and ankle strap on sandals.
STYLE_RATES: dict[str, dict[str, float]] = {
    "t-shirt": {"polo collar": 0.20, "chest pocket": 0.15, "cropped": 0.12},
    "shirt": {"chest pocket": 0.40, "short-sleeved": 0.30},
    "sweater": {"turtleneck": 0.30, "cropped": 0.15},
    "coat": {"puffer": 0.28, "double-breasted": 0.22, "belted": 0.25},
    "trousers": {"wide leg": 0.25, "cargo pockets": 0.18},
    "shorts": {"cargo pockets": 0.35, "cutoff": 0.40},
    "skirt": {"a-line": 0.40, "pleated": 0.30, "frill": 0.20},
    "dress": {"a-line": 0.40, "belted": 0.25, "wrap": 0.18, "frill": 0.15},
    "jumpsuit": {"wide leg": 0.50, "belted": 0.40},
    "boots": {"chelsea": 0.40},
    "heels": {"mules": 0.25, "ankle strap": 0.30},
    "trainers": {"high-top": 0.25},
    "sandals": {"gladiator": 0.30, "ankle strap": 0.35},
    "flats": {"mules": 0.30},
}
#: P(print) per slot kind; garments: stripes 0.15, checks 0.11, dots 0.08, zigzag 0.06 (shirts: more checks).
_PRINT_RATES = {
    "garment": {"solid": 0.60, "stripes": 0.15, "checks": 0.11, "dots": 0.08, "zigzag": 0.06},
    "shirt": {"solid": 0.50, "stripes": 0.17, "checks": 0.23, "dots": 0.06, "zigzag": 0.04},
    "footwear": {"solid": 0.88, "stripes": 0.05, "checks": 0.03, "dots": 0.03, "zigzag": 0.01},
}
_SHOE_COLOURS = {
    "boots": ("brown", "black", "black", "beige", "grey", "navy", "red"),
    "heels": ("black", "red", "beige", "pink", "navy", "white", "purple"),
    "trainers": ("white", "white", "grey", "black", "blue", "red", "green", "navy", "orange"),
    "sandals": ("brown", "beige", "black", "white", "pink", "yellow"),
    "flats": ("black", "beige", "red", "navy", "pink", "brown", "teal"),
}

#: Scene splits (DeepFashion2 folder names) and their names in the crops' list_eval_partition.txt.
SPLITS: tuple[str, ...] = ("train", "validation", "test")
PARTITION_NAMES: dict[str, str] = {"train": "train", "validation": "val", "test": "test"}
#: y of the ground (body units); the ankle is at 6.2.
GROUND = 6.68

for _s, _cs in STYLES.items():
    assert all(c in CATEGORIES for c in _cs), _s
for _c, _r in STYLE_RATES.items():
    assert all(_c in STYLES[s] for s in _r), _c


def applicable_mask() -> np.ndarray:
    """Which attributes can apply to which category (FashionSynth outfit taxonomy, our own generator, imitating
    paper 06's Table 2): bool ``(len(CATEGORIES), len(ATTRIBUTES))``, True where attribute ``j`` can label a
    garment of category ``i``. Prints apply to every category; a style to the categories in :data:`STYLES`."""
    m = np.zeros((len(CATEGORIES), len(ATTRIBUTES)), dtype=bool)
    m[:, : len(PRINTS)] = True
    for s, cats in STYLES.items():
        for c in cats:
            m[_CAT_INDEX[c], _ATTR_INDEX[s]] = True
    return m


# ------------------------------------------------------------------------------------------------ config/spec

@dataclass(frozen=True)
class OutfitConfig(JsonConfig):
    """How an outfit scene is drawn (FashionSynth outfit preset).

    image_size: square canvas side (px). height: range of the figure's height (head top to ground) as a fraction
    of the image side. max_rotation: degrees. clutter, clutter_contrast, background_range, noise_sigma: as in
    :class:`fashionlab.synth.garments.RenderConfig` (light background, mild clutter, pixel noise). margin: free
    border fraction. min_visible_fraction, min_visible_pixels: the annotation rule (module docstring; the pixel
    count is for a 128 px image and scales with the image area). style_min_visible: the visible share of a
    style's region below which the style label is dropped on an occluded garment.
    """

    image_size: int = 128
    height: tuple[float, float] = (0.80, 0.95)
    max_rotation: float = 3.0
    clutter: int = 4
    clutter_contrast: float = 0.3
    background_range: tuple[int, int] = (175, 238)
    noise_sigma: float = 4.0
    margin: float = 0.01
    min_visible_fraction: float = 0.15
    min_visible_pixels: int = 24
    style_min_visible: float = 0.5
    _TUPLE_FIELDS = ("height", "background_range")

    def __post_init__(self):
        if int(self.image_size) < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")
        lo, hi = self.height
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"height must be (lo, hi) with 0 < lo <= hi <= 1, got {self.height}")



#: The default scene config (128 px).
OUTFIT_CONFIG = OutfitConfig()


@dataclass(frozen=True)
class Garment:
    """One garment of an outfit: ``category``, ``styles`` (a tuple of style names allowed for the category),
    ``pattern`` (a :data:`~fashionlab.synth.patterns.PATTERNS` name; "solid" = no print), ``colour`` and
    ``colour2`` (fabric colours), ``pattern_params`` (period in body units, phases, orientation), ``tint`` and
    ``shape`` (the category's cut: hem, sleeve, neck, width, ...; see :func:`sample_outfit`)."""

    category: str
    styles: tuple[str, ...] = ()
    pattern: str = "solid"
    colour: str = "blue"
    colour2: str = "white"
    pattern_params: tuple[float, float, float, int] = (0.4, 0.0, 0.0, 0)
    tint: tuple[int, int, int] = (0, 0, 0)
    shape: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; expected one of {list(CATEGORIES)}")
        bad = [s for s in self.styles if s not in STYLES or self.category not in STYLES[s]]
        if bad:
            raise ValueError(f"style(s) {bad} do not apply to {self.category!r} (see STYLES)")
        if self.pattern not in P.PATTERNS:
            raise ValueError(f"unknown pattern {self.pattern!r}")

    @property
    def object_type(self) -> str:
        """The garment's object type (:data:`CATEGORY_TYPE`)."""
        return CATEGORY_TYPE[self.category]

    @property
    def attributes(self) -> list[str]:
        """Print (if any) then styles, in :data:`ATTRIBUTES` order."""
        names = ([_PATTERN_PRINT[self.pattern]] if self.pattern != "solid" else []) + list(self.styles)
        return sorted(names, key=_ATTR_INDEX.__getitem__)


@dataclass(frozen=True)
class OutfitSpec:
    """An outfit: ``garments`` in drawing order (lower or full-body garment, upper garment, coat, footwear; a
    footwear garment is drawn as two shoes), the mannequin's ``skin`` and ``hair`` tone indices."""

    garments: tuple[Garment, ...]
    skin: int = 0
    hair: int = 0

    def describe(self) -> str:
        """One line, e.g. ``"trousers (striped); t-shirt (polo collar); boots (chelsea)"``."""
        return "; ".join(f"{g.category}" + (f" ({', '.join(g.attributes)})" if g.attributes else "")
                         for g in self.garments)


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _pick(rng, weights: dict):
    keys = list(weights)
    w = np.asarray([weights[k] for k in keys], dtype=float)
    c = np.cumsum(w / w.sum())
    return keys[min(int(np.searchsorted(c, rng.random(), side="right")), len(keys) - 1)]


def _second_colour(colour: str) -> str:
    r, g, b = P.COLOURS[colour]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 150 else "black"


def _sample_styles(rng, cat: str) -> tuple[str, ...]:
    rates = STYLE_RATES.get(cat, {})
    draws = rng.random(len(rates))
    chosen = [s for (s, p), u in zip(rates.items(), draws) if u < p]
    if cat == "coat" and "puffer" in chosen:
        chosen = [s for s in chosen if s not in ("double-breasted", "belted")]
    if cat == "heels" and "mules" in chosen:
        chosen = [s for s in chosen if s != "ankle strap"]
    if cat == "sandals" and "gladiator" in chosen:
        chosen = [s for s in chosen if s != "ankle strap"]
    return tuple(sorted(chosen, key=_ATTR_INDEX.__getitem__))


def _sample_shape(rng, cat: str, styles) -> dict:
    u = rng.random(6)
    w = 1.0 + 0.1 * u[0]
    if cat == "t-shirt":
        hem = 1.45 + 0.2 * u[1] if "cropped" in styles else 2.45 + 0.3 * u[1]
        neck = "polo" if "polo collar" in styles else ("crew" if u[2] < 0.7 else "vee")
        return {"hem": hem, "sleeve": 3 if u[3] < 0.85 else 4, "neck": neck, "width": w}
    if cat == "shirt":
        return {"hem": 2.55 + 0.3 * u[1], "sleeve": 3 if "short-sleeved" in styles else 7, "width": w}
    if cat == "sweater":
        hem = 1.45 + 0.2 * u[1] if "cropped" in styles else 2.45 + 0.25 * u[1]
        return {"hem": hem, "sleeve": 7, "width": w}
    if cat == "coat":
        return {"hem": 3.25 + 0.4 * u[1], "width": 1.0 + 0.06 * u[0], "lapel": 1 if u[2] < 0.7 else 3}
    if cat == "dress":
        sleeve = (1, 2, 3, 5, 7)[int(u[2] * 5)]
        neck = 2 if "wrap" in styles else (3, 4, 5, 7)[int(u[3] * 4)]
        return {"hem": 4.2 + 1.1 * u[1], "sleeve": sleeve, "neck": neck, "width": w}
    if cat == "jumpsuit":
        return {"hem": 5.9 + 0.2 * u[1], "sleeve": (1, 3)[int(u[2] * 2)], "neck": (4, 5, 7)[int(u[3] * 3)],
                "width": w}
    if cat == "trousers":
        return {"hem": 5.9 + 0.2 * u[1], "width": w}
    if cat == "shorts":
        return {"hem": 3.72 + 0.38 * u[1], "width": w}
    if cat == "skirt":
        hem = (3.25 + 0.25 * u[2], 4.2 + 0.3 * u[2], 5.0 + 0.3 * u[2])[int(u[1] * 3)]
        return {"hem": hem, "width": w}
    if cat == "boots":
        return {"shaft": 5.45 + 0.25 * u[1]}
    return {}


def _sample_garment(rng, cat: str, taken: set) -> Garment:
    styles = _sample_styles(rng, cat)
    kind = "footwear" if CATEGORY_TYPE[cat] == "footwear" else ("shirt" if cat == "shirt" else "garment")
    pattern = _pick(rng, _PRINT_RATES[kind])
    if kind == "footwear":
        pal = [c for c in _SHOE_COLOURS[cat]]
        colour = pal[int(rng.integers(len(pal)))]
        period = float(rng.uniform(0.2, 0.26))
    else:
        pal = [c for c in P.COLOUR_NAMES if c not in taken] or list(P.COLOUR_NAMES)
        colour = pal[int(rng.integers(len(pal)))]
        period = float(rng.uniform(0.34, 0.5))
    taken.add(colour)
    px, py = (float(x) for x in rng.random(2))
    orient = int(rng.integers(4)) if pattern == "stripes" else int(rng.integers(2))
    tint = tuple(int(t) for t in rng.integers(-10, 11, 3))
    shape = _sample_shape(rng, cat, styles)
    return Garment(cat, styles, pattern, colour, _second_colour(colour), (period, px, py, orient), tint, shape)


def sample_outfit(rng=None) -> OutfitSpec:
    """Draw a random outfit (FashionSynth outfit preset, our own generator; paper 06's Table 1 object types and
    Table 2 attributes). ``rng``: a Generator or a seed.

    An upper and a lower garment (75%) or one full-body garment; a coat over the top (22%); shoes (96%; always
    with a full-body garment, so every outfit has 2-4 garments). Categories follow :data:`CATEGORY_WEIGHTS`,
    styles :data:`STYLE_RATES`, prints their skewed rates; garment colours differ within an outfit.
    """
    rng = _as_rng(rng)
    r = rng.random(3)
    taken: set = set()
    garments = []
    two_piece = r[0] < OUTFIT_RATES["two_piece"]
    if two_piece:
        garments.append(_sample_garment(rng, _pick(rng, CATEGORY_WEIGHTS["lower body"]), taken))
        garments.append(_sample_garment(rng, _pick(rng, CATEGORY_WEIGHTS["upper body"]), taken))
    else:
        garments.append(_sample_garment(rng, _pick(rng, CATEGORY_WEIGHTS["full body"]), taken))
    if r[1] < OUTFIT_RATES["coat"]:
        garments.append(_sample_garment(rng, "coat", taken))
    if r[2] < OUTFIT_RATES["shoes"] or not two_piece:
        garments.append(_sample_garment(rng, _pick(rng, CATEGORY_WEIGHTS["footwear"]), taken))
    return OutfitSpec(tuple(garments), skin=int(rng.integers(len(P.SKINS))), hair=int(rng.integers(len(P.HAIRS))))


# ------------------------------------------------------------------------------------------------ geometry
# An object's drawing is a list of ops in body units: ("poly", pts, code, outline code or None), ("line", pts,
# code) or ("cut", pts) (clears the layer). Layer codes: 1 fabric, 2 dark trim, 3 detail tone, 4 skin,
# 5 light accent, 6 sole, 7 contrast (elastic). Style regions: {style: [polygons]}.

def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _circle(cx, cy, r, n=8):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return list(zip((cx + r * np.cos(t)).tolist(), (cy + r * np.sin(t)).tolist()))


def _hw_at(poly, y) -> float:
    """Largest |x| where the horizontal line at ``y`` crosses ``poly`` (0 when it does not)."""
    best = 0.0
    n = len(poly)
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
        if (y0 - y) * (y1 - y) <= 0 and y0 != y1:
            x = x0 + (y - y0) / (y1 - y0) * (x1 - x0)
            best = max(best, abs(x))
    return best


def _values_for(hem_attr, hem, sleeve=None, fam=None, fam_value=0):
    """FashionAI value and jitter vectors that make geometry.garment_geometry draw ``hem`` (body units) exactly."""
    vals = [0] * 8
    jit = [0.0] * 8
    tab = LENGTHS[hem_attr]
    cands = [i for i, y in enumerate(tab) if y is not None]
    v = min(cands, key=lambda i: abs(tab[i] - hem))
    lo = tab[v - 1] if v - 1 >= 0 and tab[v - 1] is not None else None
    hi = tab[v + 1] if v + 1 < len(tab) else None
    down = (tab[v] - lo) / 2 if lo is not None else (hi - tab[v]) / 2
    up = (hi - tab[v]) / 2 if hi is not None else (tab[v] - lo) / 2
    d = hem - tab[v]
    vals[ATTRIBUTE_INDEX[hem_attr]] = v
    jit[ATTRIBUTE_INDEX[hem_attr]] = float(np.clip(d / (up if d > 0 else down), -1.0, 1.0))
    if sleeve is not None:
        vals[ATTRIBUTE_INDEX["sleeve_length"]] = sleeve
    if fam is not None:
        vals[ATTRIBUTE_INDEX[fam]] = fam_value
    return tuple(vals), tuple(jit)


def _ops_from_geo(geo, extra_cuts=()):
    ops = [("poly", p, c, None) for p, c in geo.g_polys]
    ops += [("line", p, c) for p, c in geo.g_lines]
    ops += [("cut", p) for p in list(extra_cuts) + list(geo.cuts)]
    for p, fill, outline in geo.d_polys:
        ops.append(("cut", p) if fill == 3 else ("poly", p, fill if fill != 1 else 3, outline))
    ops += [("line", p, c) for p, c in geo.d_lines]
    return ops


def _flare(pts, y0, amount):
    return [(x * (1.0 + amount * max(0.0, y - y0)), y) for x, y in pts]


def _frill(poly, hem):
    """A scalloped ruffle band at the hem of ``poly``, in the detail tone."""
    yt, yb = hem - 0.32, hem + 0.12
    wt, wb = _hw_at(poly, yt), _hw_at(poly, hem) + 0.1
    n = max(4, int(round(2 * wb / 0.28)))
    bottom = []
    for i in range(n + 1):
        x = wb - 2 * wb * i / n
        bottom.append((x, yb if i % 2 == 0 else yb - 0.12))
    band = [(-wt, yt), (wt, yt)] + bottom
    lines = [[(-wt, yt + 0.03), (wt, yt + 0.03)]]
    return band, lines


def _belt(half_width, y=1.93):
    hw = half_width + 0.03
    return [("poly", _rect(-hw, y, hw, y + 0.17), 2, None), ("poly", _rect(-0.1, y - 0.02, 0.1, y + 0.19), 5, 2)], \
        [_rect(-hw, y - 0.02, hw, y + 0.2)]


def _cuff_lines(sleeve_t, back=0.1):
    hw = arm_half_width(sleeve_t) + 0.07
    a = arm_point(sleeve_t - back, hw)
    b = arm_point(sleeve_t - back, -hw)
    return [[a, b], mirror([a, b])]


def _upper_ops(g: Garment):
    s = g.shape
    cat = g.category
    st = set(g.styles)
    regions: dict = {}
    extra = []
    w = s.get("width", 1.05)
    if cat == "coat":
        if "puffer" in st:
            closure, fam, fv, k, w = "zip", "neck_design", 3, 1.0, w + 0.08
        elif "double-breasted" in st:
            closure, fam, fv, k = "double", "lapel_design", s.get("lapel", 1), 1.0
        elif "belted" in st:
            closure, fam, fv, k = "buttons", "lapel_design", s.get("lapel", 1), 1.0
        else:
            closure, fam, fv, k = "none", "lapel_design", s.get("lapel", 1), 1.0
        vals, jit = _values_for("coat_length", s["hem"], 7, fam, fv)
        geo = garment_geometry("coat", vals, jit, w, 0.5, k, 1.0, closure)
        torso = geo.parts["torso"][0]
        cuts = [_rect(-0.36, 0.9, 0.36, s["hem"] + 0.3)] if closure == "none" else []
        ops = _ops_from_geo(geo, cuts)
        if "puffer" in st:
            y = 0.55
            while y < s["hem"] - 0.15:
                hw = _hw_at(torso, y)
                extra.append(("line", [(-hw, y), (hw, y)], 2))
                y += 0.38
            for t in (0.3, 0.55, 0.8):
                hw = arm_half_width(t) + 0.07
                seg = [arm_point(t, hw), arm_point(t, -hw)]
                extra += [("line", seg, 2), ("line", mirror(seg), 2)]
            regions["puffer"] = [torso]
        if "double-breasted" in st:
            regions["double-breasted"] = [_rect(-0.4, 0.6, 0.45, s["hem"])]
        if "belted" in st:
            ops_b, reg = _belt(_hw_at(torso, 2.0))
            extra += ops_b
            regions["belted"] = reg
        extra += [("line", ln, 2) for ln in _cuff_lines(1.0)]
        return ops + extra, regions
    if cat == "dress":
        vals, jit = _values_for("skirt_length", s["hem"], s["sleeve"], "neckline_design", s["neck"])
        geo = garment_geometry("dress", vals, jit, w, 0.1, 0.9, 1.0, None)
        torso = geo.parts["torso"][0]
        if "a-line" in st:
            new = _flare(torso, 2.0, 0.24)
            geo.g_polys[0] = (new, 1)
            torso = new
            regions["a-line"] = [_rect(-3, 3.0, 3, s["hem"] + 0.2)]
        ops = _ops_from_geo(geo)
        if "frill" in st:
            band, lines = _frill(torso, s["hem"])
            extra.append(("poly", band, 3, 2))
            extra += [("line", ln, 2) for ln in lines]
            regions["frill"] = [band]
        if "wrap" in st:
            hh = _hw_at(torso, s["hem"] - 0.05)
            extra.append(("line", [(0.0, 1.3 * 0.9), (0.55, 1.98), (0.42 * hh, s["hem"])], 2))
            bx, by = 0.62, 2.0
            extra.append(("poly", [(bx, by), (bx + 0.22, by - 0.14), (bx + 0.22, by + 0.14)], 3, 2))
            extra.append(("poly", [(bx, by), (bx + 0.05, by + 0.45), (bx + 0.16, by + 0.42)], 3, 2))
            regions["wrap"] = [_rect(-0.5, 0.2, 1.0, s["hem"])]
        if "belted" in st:
            ops_b, reg = _belt(_hw_at(torso, 2.0))
            extra += ops_b
            regions["belted"] = reg
        return ops + extra, regions
    # t-shirt, shirt, sweater (garments' "top")
    fastening = None
    if cat == "t-shirt":
        fam, fv, k = {"crew": ("neckline_design", 7, 0.55), "vee": ("neckline_design", 4, 0.7),
                      "polo": ("collar_design", 1, 0.72)}[s["neck"]]
    elif cat == "shirt":
        fam, fv, k, fastening = "collar_design", 1, 0.9, "buttons"
    else:
        fam, fv, k = ("neck_design", 1, 0.95) if "turtleneck" in st else ("collar_design", 4, 0.85)
    vals, jit = _values_for("coat_length", s["hem"], s["sleeve"], fam, fv)
    geo = garment_geometry("top", vals, jit, w, 0.2, k, 1.0, fastening)
    torso = geo.parts["torso"][0]
    ops = _ops_from_geo(geo)
    t_sleeve = LENGTHS["sleeve_length"][s["sleeve"]]
    if cat == "t-shirt" and s["neck"] == "polo":
        extra.append(("line", [(0.0, 0.12), (0.0, 0.78)], 2))
        extra += [("poly", _circle(0.08, y, 0.05), 2, None) for y in (0.36, 0.62)]
        regions["polo collar"] = [_rect(-0.45, -0.25, 0.45, 0.82)]
    if cat == "sweater":
        hb = s["hem"] - 0.2
        hw = _hw_at(torso, hb)
        extra.append(("line", [(-hw, hb), (hw, hb)], 2))
        for i in range(-4, 5):
            x = hw * i / 4.5
            extra.append(("line", [(x, hb), (x, s["hem"])], 2))
        extra += [("line", ln, 2) for ln in _cuff_lines(t_sleeve, 0.14)]
        if "turtleneck" in st:
            regions["turtleneck"] = [_rect(-0.4, -0.55, 0.4, 0.12)]
    if cat == "shirt":
        if t_sleeve >= 0.9:
            extra += [("line", ln, 2) for ln in _cuff_lines(t_sleeve, 0.12)]
        else:
            regions["short-sleeved"] = [_rect(0.6, 0.0, 1.5, 1.2), _rect(-1.5, 0.0, -0.6, 1.2)]
    if "chest pocket" in st:
        pk = _rect(0.3, 0.55, 0.62, 0.9)
        extra.append(("poly", pk, 3, 2))
        extra.append(("line", [(0.3, 0.63), (0.62, 0.63)], 2))
        regions["chest pocket"] = [pk]
    if "cropped" in st:
        regions["cropped"] = [_rect(-1.3, s["hem"] - 0.3, 1.3, 1.95)]
    return ops + extra, regions


def _legs(w, hem, wide, top=1.95, crotch=3.3):
    outer = side_outline([(0.76 * w, top), (0.99 * w, 2.85), (0.95 + 0.1 * wide, 3.4),
                          (0.75 + 0.45 * wide, 4.5), (0.58 + 0.55 * wide, 6.2)], -0.05 + 0.1 * wide, hem)
    inner = side_outline([(0.02, crotch + 0.02), (0.09 - 0.05 * wide, 4.5), (0.14 - 0.1 * wide, 6.2)], 0.02, hem)
    right = outer + inner[::-1]
    return right + [(0.0, crotch)] + mirror(right)[::-1], outer, inner


def _lower_ops(g: Garment):
    s = g.shape
    cat = g.category
    st = set(g.styles)
    regions: dict = {}
    w = s.get("width", 1.05)
    hem = s["hem"]
    ops = []
    if cat == "skirt":
        if "a-line" in st:
            knots, slope = [(0.76 * w, 1.95), (0.99 * w, 2.6)], 0.42
            regions["a-line"] = [_rect(-3, 2.9, 3, hem + 0.2)]
        else:
            knots, slope = [(0.76 * w, 1.95), (0.99 * w, 2.75)], -0.03
        right = side_outline(knots, slope, hem)
        hw = right[-1][0]
        poly = [(0.0, 1.95)] + right + [(hw * 0.5, hem + 0.03), (0.0, hem + 0.04)]
        poly = poly + [(-x, y) for x, y in reversed(poly[1:-1])]
        ops.append(("poly", poly, 1, None))
        ops.append(("line", [(-0.77 * w, 2.08), (0.77 * w, 2.08)], 2))
        if "pleated" in st:
            for i in range(-3, 4):
                f = i / 3.6
                ops.append(("line", [(f * 0.75 * w, 2.1), (f * (hw - 0.05), hem)], 2))
            regions["pleated"] = [_rect(-3, 2.1, 3, hem)]
        if "frill" in st:
            band, lines = _frill(poly, hem)
            ops.append(("poly", band, 3, 2))
            ops += [("line", ln, 2) for ln in lines]
            regions["frill"] = [band]
        return ops, regions
    wide = 0.9 if "wide leg" in st else 0.0
    poly, outer, inner = _legs(w, hem, wide if cat != "shorts" else 0.25)
    ops.append(("poly", poly, 1, None))
    ops.append(("line", [(-0.77 * w, 2.08), (0.77 * w, 2.08)], 2))
    ops.append(("line", [(0.0, 2.08), (0.0, 2.9)], 2))
    if "wide leg" in st:
        regions["wide leg"] = [_rect(-3, 4.4, 3, hem + 0.1)]
    if "cargo pockets" in st:
        y0 = 3.35 if cat == "trousers" else 2.95
        x1 = min(_hw_at(poly, y0), _hw_at(poly, y0 + 0.62)) - 0.04
        pk = _rect(x1 - 0.34, y0, x1, y0 + 0.6)
        flap = _rect(x1 - 0.36, y0 - 0.02, x1 + 0.01, y0 + 0.16)
        for pts in (pk, flap):
            ops.append(("poly", pts, 3, 2))
            ops.append(("poly", mirror(pts), 3, 2))
        regions["cargo pockets"] = [pk, mirror(pk)]
    if "cutoff" in st:
        xo = outer[-1][0]
        xi = inner[-1][0]
        n = 7
        jag = [(xo - (xo - xi) * i / n, hem + (0.09 if i % 2 else -0.02)) for i in range(n + 1)]
        band = [(xo, hem - 0.14), (xi, hem - 0.14)] + jag[::-1]
        ops.append(("poly", band, 5, None))
        ops.append(("poly", mirror(band), 5, None))
        for i in range(1, n):
            x = xo - (xo - xi) * i / n
            ops.append(("line", [(x, hem - 0.12), (x, hem + 0.05)], 2 if i % 2 else 3))
            ops.append(("line", [(-x, hem - 0.12), (-x, hem + 0.05)], 2 if i % 2 else 3))
        regions["cutoff"] = [_rect(-2, hem - 0.2, 2, hem + 0.15)]
    return ops, regions


def _jumpsuit_ops(g: Garment):
    s = g.shape
    st = set(g.styles)
    regions: dict = {}
    w = s.get("width", 1.05)
    wide = 0.9 if "wide leg" in st else 0.0
    poly, _, _ = _legs(w, s["hem"], wide, top=1.9)
    vals, jit = _values_for("coat_length", 2.2, s["sleeve"], "neckline_design", s["neck"])
    geo = garment_geometry("top", vals, jit, w, 0.0, 0.85, 1.0, "zip")
    ops = [("poly", poly, 1, None)] + _ops_from_geo(geo)
    ops.append(("line", [(-0.78 * w, 2.0), (0.78 * w, 2.0)], 2))
    ops.append(("line", [(0.0, 2.0), (0.0, 2.9)], 2))
    if "wide leg" in st:
        regions["wide leg"] = [_rect(-3, 4.4, 3, s["hem"] + 0.1)]
    if "belted" in st:
        ops_b, reg = _belt(_hw_at(geo.parts["torso"][0], 2.0), 1.9)
        ops += ops_b
        regions["belted"] = reg
    return ops, regions


# footwear, in local coordinates (u towards the toe, y down); the ankle (leg end at y 6.2) spans u in ±0.145
_ANKLE_X = 0.345
_G = GROUND
_BARE_FOOT = [(-0.14, 6.12), (0.14, 6.12), (0.2, 6.36), (0.55, 6.46), (0.85, 6.52), (0.97, 6.58), (0.95, _G - 0.03),
              (-0.2, _G - 0.03), (-0.21, 6.5), (-0.16, 6.34)]


def _shoe_local(g: Garment):
    cat = g.category
    st = set(g.styles)
    ops = []
    if cat == "boots":
        top = g.shape.get("shaft", 5.55)
        ops.append(("poly", [(-0.18, top), (0.18, top), (0.19, 6.22), (0.42, 6.34), (0.78, 6.4), (0.98, 6.47),
                             (1.03, 6.56), (1.0, 6.6), (-0.22, 6.6), (-0.22, 6.35), (-0.19, 6.2)], 1, None))
        ops.append(("poly", [(-0.23, 6.57), (1.02, 6.57), (1.0, _G), (-0.23, _G)], 6, None))
        ops.append(("line", [(-0.18, top + 0.07), (0.18, top + 0.07)], 2))
        if "chelsea" in st:
            ops.append(("poly", [(-0.07, top + 0.05), (0.1, top + 0.05), (0.05, 6.15), (-0.02, 6.15)], 7, None))
            ops.append(("poly", _rect(-0.2, top - 0.16, -0.09, top + 0.02), 7, None))
        return ops
    if cat == "trainers":
        top = 5.7 if "high-top" in st else 6.12
        ops.append(("poly", [(-0.2, top), (0.16, top), (0.2, 6.2), (0.3, 6.3), (0.6, 6.37), (0.9, 6.42),
                             (1.03, 6.5), (1.03, 6.54), (-0.23, 6.54), (-0.23, 6.3)], 1, None))
        ops.append(("poly", [(-0.26, 6.51), (1.05, 6.51), (1.07, 6.6), (1.0, _G), (-0.24, _G), (-0.27, 6.6)], 5, 2))
        ops.append(("line", [(-0.05, 6.46), (0.6, 6.4)], 5))
        y0 = top + 0.06 if "high-top" in st else 6.2
        n = 5 if "high-top" in st else 3
        for i in range(n):
            y = y0 + (6.36 - y0) * i / max(1, n - 1)
            x = 0.16 + 0.3 * (y - 6.12) / 0.25 if y > 6.12 else 0.16
            ops.append(("line", [(x - 0.06, y - 0.04), (x + 0.12, y + 0.02)], 5))
        if "high-top" in st:
            ops.append(("poly", _circle(-0.04, 6.0, 0.07), 5, 2))
        return ops
    if cat == "heels":
        foot = [(-0.14, 6.12), (0.14, 6.12), (0.22, 6.3), (0.55, 6.47), (0.85, 6.56), (1.0, 6.6), (0.95, 6.63),
                (0.5, 6.58), (0.02, 6.43), (-0.2, 6.38), (-0.21, 6.24)]
        ops.append(("poly", foot, 4, None))
        ops.append(("poly", [(-0.22, 6.38), (0.05, 6.42), (0.45, 6.59), (1.12, 6.63), (1.1, _G - 0.01),
                             (0.45, 6.65), (0.04, 6.49), (-0.22, 6.45)], 6, None))
        ops.append(("poly", [(-0.22, 6.44), (-0.11, 6.44), (-0.15, _G), (-0.19, _G)], 6, None))
        ops.append(("poly", [(0.4, 6.44), (0.72, 6.49), (1.0, 6.56), (1.14, 6.635), (0.45, 6.61)], 1, None))
        if "mules" not in st:
            ops.append(("poly", [(-0.23, 6.2), (-0.04, 6.26), (0.04, 6.43), (-0.22, 6.42)], 1, None))
        if "ankle strap" in st:
            ops.append(("poly", _rect(-0.17, 6.06, 0.17, 6.15), 1, 2))
        return ops
    # sandals, flats: a flat bare foot on a thin sole
    ops.append(("poly", _BARE_FOOT, 4, None))
    if cat == "sandals":
        ops.append(("poly", [(-0.24, 6.6), (1.0, 6.6), (1.0, _G), (-0.24, _G)], 6, None))
        ops.append(("poly", [(0.56, 6.43), (0.72, 6.46), (0.74, 6.61), (0.56, 6.61)], 1, None))
        ops.append(("poly", [(0.1, 6.24), (0.26, 6.33), (0.28, 6.61), (0.1, 6.61)], 1, None))
        ops.append(("poly", [(-0.22, 6.36), (-0.06, 6.36), (-0.04, 6.61), (-0.22, 6.61)], 1, None))
        if "ankle strap" in st:
            ops.append(("poly", _rect(-0.17, 6.06, 0.17, 6.15), 1, 2))
        if "gladiator" in st:
            for y in (5.5, 5.68, 5.86, 6.04):
                ops.append(("poly", _rect(-0.17, y, 0.17, y + 0.08), 1, 2))
            ops.append(("poly", _rect(0.07, 5.5, 0.14, 6.3), 1, None))
        return ops
    # flats
    ops.append(("poly", [(-0.24, 6.62), (1.0, 6.62), (0.98, _G), (-0.24, _G)], 6, None))
    if "mules" in st:
        shell = [(0.3, 6.5), (0.6, 6.49), (0.85, 6.5), (1.0, 6.56), (1.01, 6.63), (0.28, 6.63)]
    else:
        shell = [(-0.23, 6.4), (0.0, 6.47), (0.3, 6.52), (0.6, 6.49), (0.85, 6.5), (1.0, 6.56), (1.01, 6.63),
                 (-0.23, 6.63)]
    ops.append(("poly", shell, 1, None))
    return ops


def _shoe_ops(g: Garment, side: int):
    """The shoe ops in body units: ``side`` +1 for the right shoe (image right, pointing right), -1 the left."""
    out = []
    for op in _shoe_local(g):
        pts = [(side * (_ANKLE_X + u), y) for u, y in op[1]]
        out.append((op[0], pts) + tuple(op[2:]))
    return out


def _bare_feet():
    return [[(s * (_ANKLE_X + u), y) for u, y in _BARE_FOOT] for s in (1, -1)]


# --------------------------------------------------------------------------------------------- rendering

_FRAME = (-2.0, -1.32, 2.0, GROUND + 0.04)  # body-unit box holding every outfit (sleeves, toes, head, soles)
_LIGHT = (238, 238, 232)
_SOLE = {"trainers": (236, 236, 230), "sandals": (150, 108, 70), "default": (44, 38, 34)}


def _objects_of(spec: OutfitSpec):
    """(garment index, side, ops, regions) per object in drawing order."""
    objs = []
    for gi, g in enumerate(spec.garments):
        t = g.object_type
        if t == "footwear":
            objs.append((gi, "left", _shoe_ops(g, -1), {}))
            objs.append((gi, "right", _shoe_ops(g, 1), {}))
        elif g.category == "jumpsuit":
            objs.append((gi, None, *_jumpsuit_ops(g)))
        elif t == "lower body":
            objs.append((gi, None, *_lower_ops(g)))
        else:
            objs.append((gi, None, *_upper_ops(g)))
    return objs


def _layout(cfg: OutfitConfig, lay):
    S = cfg.image_size
    angle = (2.0 * lay[0] - 1.0) * cfg.max_rotation
    th = math.radians(angle)
    c, s = math.cos(th), math.sin(th)
    fx0, fy0, fx1, fy1 = _FRAME
    rx = [c * x - s * y for x in (fx0, fx1) for y in (fy0, fy1)]
    ry = [s * x + c * y for x in (fx0, fx1) for y in (fy0, fy1)]
    m = cfg.margin * S
    h = cfg.height[0] + (cfg.height[1] - cfg.height[0]) * lay[1]
    u = h * S / (fy1 - fy0)
    u = min(u, (S - 2 * m) / (max(rx) - min(rx)), (S - 2 * m) / (max(ry) - min(ry)))
    lo_x, hi_x = m - u * min(rx), S - m - u * max(rx)
    lo_y, hi_y = m - u * min(ry), S - m - u * max(ry)
    cx = lo_x + lay[2] * (hi_x - lo_x)
    cy = lo_y + lay[3] * (hi_y - lo_y)
    return u, c, s, cx, cy, angle


def _render(spec: OutfitSpec, cfg: OutfitConfig, rng: np.random.Generator, hide=()):
    S = int(cfg.image_size)
    lay = rng.random(4)
    clutter = rng.random((int(cfg.clutter), 10))
    bg_col = tuple(int(c) for c in rng.integers(int(cfg.background_range[0]), int(cfg.background_range[1]), 3))
    noise_draw = rng.integers(0, 2**31 - 1, 3)
    u, c, s, cx, cy, angle = _layout(cfg, lay)
    a_, b_, c_, d_ = u * c, -u * s, u * s, u * c

    def xf(pts):
        return [(a_ * x + b_ * y + cx, c_ * x + d_ * y + cy) for x, y in pts]

    lw = max(1, S // 150)
    img = Image.new("RGB", (S, S), bg_col)
    P.draw_clutter(ImageDraw.Draw(img), S, clutter, bg_col, float(cfg.clutter_contrast))
    draw = ImageDraw.Draw(img)
    skin = P.SKINS[spec.skin]
    skin_dark = P.shade(skin, "dark")
    tones = {1: skin, 2: P.HAIRS[spec.hair]}
    for pts, code in MANNEQUIN:
        if code == 3:
            continue  # garments' mannequin shoes: the outfit draws its own footwear
        draw.polygon(xf(pts), fill=tones[code], outline=skin_dark, width=lw)
    if not any(g.object_type == "footwear" for g in spec.garments):
        for pts in _bare_feet():
            draw.polygon(xf(pts), fill=skin, outline=skin_dark, width=lw)
    out = np.array(img)
    owner = np.full((S, S), -1, dtype=np.int16)

    objs = _objects_of(spec)
    info = []
    for oi, (gi, side, ops, regions) in enumerate(objs):
        g = spec.garments[gi]
        if oi in hide:
            info.append(None)
            continue
        layer = Image.new("L", (S, S), 0)
        dl = ImageDraw.Draw(layer)
        for op in ops:
            if op[0] == "poly":
                dl.polygon(xf(op[1]), fill=op[2], outline=op[3], width=lw if op[3] is not None else 0)
            elif op[0] == "line":
                dl.line(xf(op[1]), fill=op[2], width=lw)
            else:
                dl.polygon(xf(op[1]), fill=0)
        box = layer.getbbox()
        if box is None:
            info.append((0, None, None))
            continue
        x0, y0, x1, y1 = box
        L = np.asarray(layer)[y0:y1, x0:x1]
        m = L > 0
        c1 = tuple(int(v) for v in np.clip(np.asarray(P.COLOURS[g.colour]) + np.asarray(g.tint), 0, 255))
        dark = P.shade(c1, "dark")
        sub = out[y0:y1, x0:x1]
        m1 = L == 1
        if g.pattern == "solid":
            sub[m1] = c1
        elif m1.any():
            X = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
            Y = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
            lx = np.float32(c / u) * X + np.float32(s / u) * Y
            ly = np.float32(-s / u) * X + np.float32(c / u) * Y
            fab = P.fabric(g.pattern, g.pattern_params, lx, ly, c1, P.COLOURS[g.colour2])
            sub[m1] = fab[m1]
        sub[L == 3] = P.shade(c1, "detail")
        sub[L == 4] = skin
        sub[L == 5] = _LIGHT
        sub[L == 6] = _SOLE.get(g.category, _SOLE["default"])
        lum = 0.299 * c1[0] + 0.587 * c1[1] + 0.114 * c1[2]
        sub[L == 7] = (30, 28, 28) if lum > 90 else (150, 140, 128)
        sub[(L == 2) | edge_mask(m, lw)] = dark
        owner[y0:y1, x0:x1][m] = oi
        info.append((int(m.sum()), box, m))

    if cfg.noise_sigma > 0:
        tile = P.noise_tile(S, float(cfg.noise_sigma))
        T = tile.shape[0]
        ox, oy = int(noise_draw[0] % (T - S + 1)), int(noise_draw[1] % (T - S + 1))
        win = tile[oy:oy + S, ox:ox + S]
        if noise_draw[2] % 2:
            win = win[::-1]
        out = np.clip(out.astype(np.int16) + win, 0, 255).astype(np.uint8)

    # --- ground truth from the owner map
    min_px = max(1, round(cfg.min_visible_pixels * (S / 128) ** 2))
    objects, dropped = [], []
    for oi, (gi, side, ops, regions) in enumerate(objs):
        if info[oi] is None:
            continue
        full, box, _ = info[oi]
        g = spec.garments[gi]
        if not full:
            dropped.append({"category": g.category, "side": side, "visible_fraction": 0.0})
            continue
        x0, y0, x1, y1 = box
        vis = owner[y0:y1, x0:x1] == oi
        n_vis = int(vis.sum())
        frac = n_vis / full
        if n_vis < min_px or frac < cfg.min_visible_fraction:
            dropped.append({"category": g.category, "side": side, "visible_fraction": round(frac, 4)})
            continue
        ys, xs = np.nonzero(vis)
        vbox = [int(x0 + xs.min()), int(y0 + ys.min()), int(x0 + xs.max() + 1), int(y0 + ys.max() + 1)]
        attrs = g.attributes
        hidden = []
        if frac < 1.0 and regions:
            for st, polys in regions.items():
                if st not in attrs:
                    continue
                rl = Image.new("L", (x1 - x0, y1 - y0), 0)
                dr = ImageDraw.Draw(rl)
                for pts in polys:
                    dr.polygon([(x - x0, y - y0) for x, y in xf(pts)], fill=1)
                R = np.asarray(rl) > 0
                own = R & (owner[y0:y1, x0:x1] == oi)
                tot = R & info[oi][2]
                if tot.sum() and own.sum() < cfg.style_min_visible * tot.sum():
                    hidden.append(st)
        if hidden:
            attrs = [a for a in attrs if a not in hidden]
        obj = {"box": vbox, "object_type": g.object_type, "category": g.category, "attributes": attrs,
               "visible_fraction": round(frac, 4), "garment": gi, "side": side}
        if hidden:
            obj["hidden_attributes"] = hidden
        objects.append(obj)
    return out, objects, dropped, {"scale": round(u / S, 5), "rotation": round(angle, 3)}


def render_outfit(spec: OutfitSpec | None = None, config: OutfitConfig | None = None, rng=0, return_info=False):
    """Render one outfit scene (FashionSynth outfit preset, our own generator; the object types of paper 06's
    Table 1 and the attributes of its Table 2).

    ``spec``: an :class:`OutfitSpec` or None to draw one (:func:`sample_outfit`, from a seed taken first from
    ``rng``). ``config`` defaults to :data:`OUTFIT_CONFIG`. ``rng`` is a seed or a Generator; background,
    layout, clutter and noise take a fixed number of draws after that, so the same spec with equally seeded
    generators gives the same scene, and removing a garment from a spec changes only the pixels it showed.

    Returns ``(image, objects)``: uint8 ``(S, S, 3)`` and one dict per annotated object in drawing order:
    ``box`` [x1, y1, x2, y2] (ints, x2/y2 exclusive: the box of the object's visible pixels), ``object_type``,
    ``category``, ``attributes`` (names in :data:`ATTRIBUTES` order), ``visible_fraction``, ``garment`` (index
    in ``spec.garments``), ``side`` ("left" / "right" for a shoe, else None) and, where a style was dropped
    because its region is hidden, ``hidden_attributes``. Objects under the visibility rule (module docstring)
    are left out. With ``return_info=True`` a third item gives the spec, the dropped objects and the layout.
    """
    cfg = config or OUTFIT_CONFIG
    g = _as_rng(rng)
    if spec is None:
        spec = sample_outfit(np.random.default_rng(int(g.integers(0, 2**63 - 1))))
    img, objects, dropped, layout = _render(spec, cfg, g)
    if return_info:
        return img, objects, {"spec": spec, "dropped": dropped, **layout}
    return img, objects


# ------------------------------------------------------------------------------------------------- crops

def _crop_window(box, pad):
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 < x1:
        x1, x2 = x2, x1
    if y2 < y1:
        y1, y2 = y2, y1
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + float(pad))
    n = max(2, int(math.ceil(side)))
    x0 = int(math.floor((x1 + x2) / 2.0 - n / 2.0 + 0.5))
    y0 = int(math.floor((y1 + y2) / 2.0 - n / 2.0 + 0.5))
    return x0, y0, n


def square_crop(image, box, size: int = 64, pad: float = 0.1) -> np.ndarray:
    """Square crop around ``box`` resized to ``size`` x ``size`` (FashionSynth outfit preset, our own code; the
    stage-2 input of paper 06's pipeline, §3). Used both for the crops on disk and at run time on detector boxes.

    The window is centred on the box, with side ``max(w, h) * (1 + pad)`` (at least 2 px; a degenerate box
    counts as 1 px wide); where it leaves the image, the border pixels are repeated (edge padding). ``image``:
    a numpy array (H, W, 3) / (H, W) or a PIL image; ``box``: [x1, y1, x2, y2] (floats allowed, swapped
    corners are sorted). Returns uint8 ``(size, size, 3)`` (PIL bilinear resize).
    """
    arr = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    H, W = arr.shape[:2]
    if H == 0 or W == 0:
        raise ValueError("empty image")
    if not all(np.isfinite(float(v)) for v in box):
        raise ValueError(f"box must hold finite numbers, got {box}")
    x0, y0, n = _crop_window(box, pad)
    rows = np.clip(np.arange(y0, y0 + n), 0, H - 1)
    cols = np.clip(np.arange(x0, x0 + n), 0, W - 1)
    win = arr[rows[:, None], cols[None, :]]
    return np.asarray(Image.fromarray(win).resize((int(size), int(size)), Image.BILINEAR))


def _box_in_crop(box, size, pad):
    x0, y0, n = _crop_window(box, pad)
    f = size / n
    x1, y1, x2, y2 = box
    vals = [(x1 - x0) * f, (y1 - y0) * f, (x2 - x0) * f, (y2 - y0) * f]
    return [int(min(max(round(v), 0), size)) for v in vals]


# ------------------------------------------------------------------------------------------------ dataset

_JPEG_QUALITY = 95
_NAME_WIDTH = 40
_CROP_PAD = 0.1


def _scene_name(number: int) -> str:
    return f"{number:06d}.jpg"


def _plan(num_scenes: int, seed: int, split=(0.8, 0.1, 0.1)) -> list[dict]:
    n = int(num_scenes)
    if n < 1:
        raise ValueError(f"num_scenes must be positive, got {num_scenes}")
    n_val, n_test = int(round(split[1] * n)), int(round(split[2] * n))
    perm = np.random.default_rng([seed, 0x0F17]).permutation(n)
    split_of = np.empty(n, dtype=object)
    sizes = {"train": n - n_val - n_test, "validation": n_val, "test": n_test}
    start = 0
    for s in SPLITS:
        split_of[perm[start:start + sizes[s]]] = s
        start += sizes[s]
    return [{"index": i, "split": str(split_of[i])} for i in range(n)]


def _occlusion(frac: float) -> int:
    return 1 if frac >= 0.8 else (2 if frac >= 0.5 else 3)


def _scale_level(box, S) -> int:
    a = (box[2] - box[0]) * (box[3] - box[1]) / float(S * S)
    return 1 if a < 0.02 else (2 if a < 0.10 else 3)


def _onehot(names, vocab) -> np.ndarray:
    idx = {v: i for i, v in enumerate(vocab)}
    y = np.zeros((len(names), len(vocab)), dtype=np.int8)
    for i, ns in enumerate(names):
        for n in ([ns] if isinstance(ns, str) else ns):
            y[i, idx[n]] = 1
    return y


def _imbalance(y: np.ndarray, vocab) -> dict:
    """Counts, IR per label (Eq. 8), MeanIR (Eq. 9) and SCUMBLE (Eq. 10) of a 0/1 matrix."""
    from ..metrics import imbalance_ratios, mean_imbalance_ratio, scumble

    counts = y.sum(axis=0)
    if not counts.any():
        return {"counts": {v: 0 for v in vocab}, "ir": {v: None for v in vocab}, "ir_max": None, "mean_ir": None,
                "scumble": None, "instances": int(len(y))}
    ir = imbalance_ratios(y)
    return {
        "instances": int(len(y)),
        "counts": {v: int(c) for v, c in zip(vocab, counts)},
        "ir": {v: (None if np.isnan(r) else round(float(r), 4)) for v, r in zip(vocab, ir)},
        "ir_max": round(float(np.nanmax(ir)), 4),
        "mean_ir": round(mean_imbalance_ratio(y), 4),
        "scumble": round(scumble(y), 4) + 0.0,
    }


def outfit_statistics(records: list[dict]) -> dict:
    """Counts and imbalance statistics (FashionSynth outfit preset, our own generator; paper 06's Eq. 8-10 over
    its Table 1-2 labels) of scene records (``ground_truth.jsonl`` lines):
    per object (object types, categories, attributes: one instance per annotated object) and per scene (the
    sets of object types and categories present). Written to ``synth.json`` as ``imbalance``."""
    objs = [o for r in records for o in r["objects"]]
    return {
        "object_types": _imbalance(_onehot([o["object_type"] for o in objs], OBJECT_TYPES), OBJECT_TYPES),
        "categories": _imbalance(_onehot([o["category"] for o in objs], CATEGORIES), CATEGORIES),
        "attributes": _imbalance(_onehot([o["attributes"] for o in objs], ATTRIBUTES), ATTRIBUTES),
        "scene_object_types": _imbalance(_onehot([sorted({o["object_type"] for o in r["objects"]})
                                                  for r in records], OBJECT_TYPES), OBJECT_TYPES),
        "scene_categories": _imbalance(_onehot([sorted({o["category"] for o in r["objects"]}) for r in records],
                                               CATEGORIES), CATEGORIES),
    }


def _list_file(path: Path, header: str, rows) -> None:
    """A DeepFashion list file of the crops: names padded to 40 characters, at least two spaces after (§5.3)."""
    write_list_file(path, header, rows, _NAME_WIDTH, 2)


@dataclass
class OutfitPreset(Preset):
    """The outfit preset (paper 06's stand-in: DeepFashion2, COCO and DeepFashion crop files) for
    :mod:`fashionlab.synth.writer`: ``seed``, the scene ``config``, the stage-2 ``crop_size`` and the
    train/validation/test fractions ``split`` over scenes (module docstring)."""

    name = "outfit"
    version = VERSION
    label = "FashionSynth outfit"
    unit = "scenes"
    own_files = ("crops/Anno/list_category_cloth.txt", "crops/Anno/list_category_img.txt",
                 "crops/Anno/list_attr_cloth.txt", "crops/Anno/list_attr_img.txt", "crops/Anno/list_bbox.txt",
                 "crops/Eval/list_eval_partition.txt", "crops/objects.jsonl") + tuple(
        f"annotations/instances_{s}.json" for s in SPLITS)
    image_globs = tuple(f"{s}/image/*.jpg" for s in SPLITS) + tuple(f"{s}/annos/*.json" for s in SPLITS) + (
        "crops/img/*/*.jpg",)
    folders = tuple(f"{s}/{d}" for s in SPLITS for d in ("image", "annos")) + tuple(
        f"crops/img/{c}" for c in CATEGORIES) + ("annotations", "crops/Anno", "crops/Eval")

    seed: int
    config: OutfitConfig
    crop_size: int = 64
    split: tuple = (0.8, 0.1, 0.1)

    def __post_init__(self):
        self.split = tuple(float(s) for s in self.split)
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"split must be three fractions summing to 1, got {self.split}")

    def plan(self, num: int) -> list[dict]:
        """The split of every scene (80/10/10 shuffled by default)."""
        return _plan(num, self.seed, self.split)

    def render_one(self, item: dict, out: Path | None) -> tuple[dict, float]:
        """The outfit (generator ``[seed, index]``), its scene (``[seed, index, 1]``) and the square crops of its
        annotated objects; the record's ``_crops`` (crop names and boxes) is for :meth:`write_splits`."""
        seed, index, config, crop_size = self.seed, item["index"], self.config, self.crop_size
        t0 = time.perf_counter()
        spec = sample_outfit(np.random.default_rng([seed, index]))
        img, objects, dropped, layout = _render(spec, config, np.random.default_rng([seed, index, 1]))
        dt = time.perf_counter() - t0
        number = index + 1
        split = item["split"]
        file = f"{split}/image/{_scene_name(number)}"
        crops = []
        for k, o in enumerate(objects, 1):
            name = f"img/{o['category']}/{number:06d}_{k:02d}.jpg"
            crops.append({"name": name, "box_in_crop": _box_in_crop(o["box"], crop_size, _CROP_PAD)})
            if out is not None:
                Image.fromarray(square_crop(img, o["box"], crop_size, _CROP_PAD)).save(out / "crops" / name,
                                                                                     quality=_JPEG_QUALITY)
        if out is not None:
            Image.fromarray(img).save(out / file, quality=_JPEG_QUALITY)
        rec = {"index": index, "id": number, "file": file, "split": split, "width": config.image_size,
               "height": config.image_size, "objects": objects, "dropped": dropped,
               "outfit": [{"category": g.category, "styles": list(g.styles), "print": _PATTERN_PRINT.get(g.pattern),
                           "colour": g.colour} for g in spec.garments],
               **layout, "_crops": crops}
        return rec, dt

    def write_splits(self, out: Path, records: list[dict]) -> tuple[dict, dict]:
        """DeepFashion2 per-image JSON, COCO JSON per split, the crops' DeepFashion list files and
        ``crops/objects.jsonl``."""
        S = self.config.image_size

        # --- DeepFashion2 per-image JSON and COCO per split
        cat_id = {c: i + 1 for i, c in enumerate(CATEGORIES)}
        type_id = {t: i + 1 for i, t in enumerate(OBJECT_TYPES)}
        coco = {s: {"images": [], "annotations": []} for s in SPLITS}
        ann_id = 0
        for r in records:
            df2 = {"source": "shop", "pair_id": r["id"]}
            for k, o in enumerate(r["objects"], 1):
                df2[f"item{k}"] = {
                    "category_name": o["category"], "category_id": cat_id[o["category"]], "style": 0,
                    "bounding_box": list(o["box"]), "landmarks": [], "segmentation": [],
                    "scale": _scale_level(o["box"], S), "occlusion": _occlusion(o["visible_fraction"]), "zoom_in": 1,
                    "viewpoint": 2, "object_type": o["object_type"], "attributes": list(o["attributes"]),
                }
                ann_id += 1
                x1, y1, x2, y2 = o["box"]
                coco[r["split"]]["annotations"].append({
                    "id": ann_id, "image_id": r["id"], "category_id": type_id[o["object_type"]],
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                    "garment_category": o["category"], "attributes": list(o["attributes"])})
            write_json(out / r["split"] / "annos" / f"{r['id']:06d}.json", df2, indent=None)
            coco[r["split"]]["images"].append({"id": r["id"], "file_name": _scene_name(r["id"]), "width": S,
                                               "height": S})
        mask = applicable_mask()
        attr_names = [{"id": j + 1, "name": a, "kind": "print" if a in PRINTS else "style",
                       "applies_to": [c for i, c in enumerate(CATEGORIES) if mask[i, j]]}
                      for j, a in enumerate(ATTRIBUTES)]
        for s in SPLITS:
            write_json(out / "annotations" / f"instances_{s}.json", {
                "info": {"description": f"FashionSynth outfit ({s}): paper 06 stand-in, our own generator",
                         "version": VERSION, "year": 2024, "contributor": "fashionlab FashionSynth",
                         "seed": int(self.seed)},
                "licenses": [],
                "images": coco[s]["images"],
                "annotations": coco[s]["annotations"],
                "categories": [{"id": type_id[t], "name": t, "supercategory": "garment"} for t in OBJECT_TYPES],
                "garment_categories": [{"id": cat_id[c], "name": c, "object_type": CATEGORY_TYPE[c]}
                                       for c in CATEGORIES],
                "attribute_names": attr_names,
            }, indent=None)

        # --- stage-2 crops: DeepFashion list files (docs/formats.md §5.3)
        crop_rows = []
        for r in records:
            for k, (o, cr) in enumerate(zip(r["objects"], r["_crops"]), 1):
                crop_rows.append((cr["name"], r, k, o, cr["box_in_crop"]))
        ctype = {"upper body": 1, "lower body": 2, "full body": 3, "footwear": 4}
        anno = out / "crops" / "Anno"
        write_lines(anno / "list_category_cloth.txt", [str(len(CATEGORIES)), "category_name  category_type"] +
                    [c.ljust(15) + str(ctype[CATEGORY_TYPE[c]]) for c in CATEGORIES])
        _list_file(anno / "list_category_img.txt", "image_name  category_label",
                   ((n, str(cat_id[o["category"]])) for n, _, _, o, _ in crop_rows))
        write_lines(anno / "list_attr_cloth.txt", [str(len(ATTRIBUTES)), "attribute_name  attribute_type"] +
                    [a.ljust(29) + ("1" if a in PRINTS else "5") for a in ATTRIBUTES])
        _list_file(anno / "list_attr_img.txt", "image_name  attribute_labels",
                   ((n, " ".join(" 1" if a in o["attributes"] else "-1" for a in ATTRIBUTES))
                    for n, _, _, o, _ in crop_rows))
        width_digits = max(3, len(str(self.crop_size)))
        _list_file(anno / "list_bbox.txt", "image_name  x_1  y_1  x_2  y_2",
                   ((n, " ".join(f"{v:0{width_digits}d}" for v in b)) for n, _, _, _, b in crop_rows))
        _list_file(out / "crops" / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status",
                   ((n, PARTITION_NAMES[r["split"]]) for n, r, _, _, _ in crop_rows))
        write_lines(out / "crops" / "objects.jsonl", (json.dumps({
            "name": n, "split": r["split"], "scene": r["file"], "scene_id": r["id"], "item": k, "box": o["box"],
            "box_in_crop": b, "object_type": o["object_type"], "category": o["category"],
            "attributes": o["attributes"]})
            for n, r, k, o, b in crop_rows))

        # --- statistics
        imb = outfit_statistics(records)
        objs = [o for r in records for o in r["objects"]]
        by_split = {s: [r for r in records if r["split"] == s] for s in SPLITS}
        counts = {
            "scenes": len(records),
            "objects": len(objs),
            "objects_per_scene": round(len(objs) / max(1, len(records)), 3),
            "garments_per_scene": {str(k): sum(1 for r in records if len(r["outfit"]) == k) for k in range(1, 5)},
            "object_types": imb["object_types"]["counts"],
            "categories": imb["categories"]["counts"],
            "attributes": imb["attributes"]["counts"],
            "objects_by_split": {s: sum(len(r["objects"]) for r in by_split[s]) for s in SPLITS},
            "categories_by_split": {s: {c: sum(1 for r in by_split[s] for o in r["objects"] if o["category"] == c)
                                        for c in CATEGORIES} for s in SPLITS},
            "dropped_objects": sum(len(r["dropped"]) for r in records),
            "dropped_by_category": {c: sum(1 for r in records for d in r["dropped"] if d["category"] == c)
                                    for c in CATEGORIES},
            "hidden_style_labels": sum(len(o.get("hidden_attributes", [])) for o in objs),
            "objects_without_attributes": sum(1 for o in objs if not o["attributes"]),
        }
        synth = {
            "paper": "06 hierarchical label sharing (Tables 1-2, §4.1)",
            "seed": int(self.seed),
            "num_scenes": len(records),
            "image_size": S,
            "crop_size": int(self.crop_size),
            "crop_pad": _CROP_PAD,
            "config": self.config.to_dict(),
            "split_fractions": list(self.split),
            "splits": {s: len(by_split[s]) for s in SPLITS},
            "taxonomy": {"object_types": list(OBJECT_TYPES), "categories": {c: CATEGORY_TYPE[c] for c in CATEGORIES},
                         "prints": list(PRINTS), "styles": {s: list(c) for s, c in STYLES.items()}},
            "counts": counts,
            "imbalance": imb,
            "files": {"images": "{split}/image/NNNNNN.jpg", "deepfashion2": "{split}/annos/NNNNNN.json",
                      "coco": "annotations/instances_{split}.json", "crops": "crops/ (DeepFashion list files)",
                      "crop_index": "crops/objects.jsonl", "ground_truth": "ground_truth.jsonl"},
        }
        return synth, {"num_objects": len(objs), "counts": counts, "imbalance": imb}

    def summary(self, stats: dict, where: str) -> str:
        return (f"FashionSynth outfit: {stats['num_scenes']} scenes, {stats['num_objects']} objects "
                f"({stats['image_size']} px, crops {self.crop_size} px) in {where}: rendering "
                f"{stats['scenes_per_second']:.0f} scenes/s per core, {stats['written_per_second']:.0f} scenes/s "
                f"written")

    def folder_name(self, num: int) -> str:
        """``outfit-n<N>-s<seed>-px<P>-crop<C>``."""
        return f"outfit-n{int(num)}-s{int(self.seed)}-px{int(self.config.image_size)}-crop{int(self.crop_size)}"


def _default_workers(num_scenes: int, workers: int | None) -> int:
    """``workers``, or for None: 2 for 400 scenes or more when the machine has 2 cores or more, else 1."""
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if num_scenes >= 400 else 1
    return workers


def generate_outfits(out_dir, num_scenes: int, seed: int = 0, image_size: int = 128, crop_size: int = 64,
                     progress: bool = True, workers: int | None = None, config: OutfitConfig | None = None,
                     split=(0.8, 0.1, 0.1)) -> dict:
    """Render a FashionSynth outfit dataset (our own generator; paper 06's two-stage data: Table 1's object
    types for detection, Table 2's categories and attributes for the crops) into ``out_dir``.

    Writes the scenes in DeepFashion2's layout with per-image JSON, COCO detection JSON per split, the stage-2
    crops in DeepFashion's Category & Attribute Prediction list files, ``ground_truth.jsonl`` and ``synth.json``
    (module docstring). ``config`` (default :data:`OUTFIT_CONFIG`) with ``image_size`` overriding its canvas;
    ``split`` the train/validation/test fractions over scenes. ``workers``: processes (None: 2 for 400 scenes
    or more when the machine has 2 cores or more, else 1); the files do not depend on it. A previous outfit
    dataset in ``out_dir`` is replaced; a non-empty folder that is not one is refused.

    Returns statistics (:func:`fashionlab.synth.writer.generate`): ``out_dir``, ``num_scenes``, ``num_objects``,
    ``splits``, ``counts``, ``imbalance``, ``seconds`` (wall), ``render_seconds``, ``scenes_per_second``
    (rendering, per core) and ``written_per_second`` (everything, wall clock).
    """
    preset = OutfitPreset(seed, replace(config or OUTFIT_CONFIG, image_size=int(image_size)), int(crop_size), split)
    return generate(preset, out_dir, num_scenes, workers=_default_workers(num_scenes, workers), progress=progress)


def ensure_outfits(num_scenes: int, seed: int = 0, image_size: int = 128, crop_size: int = 64,
                   progress: bool = True, root=None, workers: int | None = None) -> Path:
    """Path of a complete FashionSynth outfit dataset (our own generator; paper 06's Tables 1-2 stand-in),
    generating it first if needed: ``<root>/outfit-n<N>-s<seed>-px<P>-crop<C>``, ``root`` defaulting to
    ``fashionlab.config.data_dir() / "synth"``. Written into a temporary folder renamed when complete
    (:func:`~fashionlab.synth.writer.build_once`; the ``.complete`` marker holds :data:`VERSION`)."""
    preset = OutfitPreset(seed, replace(OUTFIT_CONFIG, image_size=int(image_size)), int(crop_size))
    return ensure(preset, num_scenes, root=root, workers=_default_workers(num_scenes, workers), progress=progress)


def load_outfit_ground_truth(root, split: str | None = None) -> list[dict]:
    """The scene records of ``<root>/ground_truth.jsonl`` of a FashionSynth outfit dataset (our own generator;
    paper 06 stand-in): all scenes, or those of ``split`` ("train", "validation" or "test"; "val" is accepted),
    in scene order. Each has ``file``, ``width``, ``height``, ``objects`` (box, object_type, category,
    attributes, ...) and the fields listed in the module docstring."""
    if split == "val":
        split = "validation"
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} (or None for all)")
    recs = load_ground_truth(root)
    return recs if split is None else [r for r in recs if r["split"] == split]


#: ``fashionlab synth outfit`` (:mod:`fashionlab.synth.cli`; the common options are declared there).
COMMAND = SynthCommand(
    name="outfit", generate=generate_outfits,
    help="paper 06's outfit scenes (object types, categories, attributes); DeepFashion2 + COCO boxes and "
         "DeepFashion-format crops",
    description="Render a FashionSynth outfit dataset (paper 06 stand-in): scenes with DeepFashion2 and COCO "
                "boxes, and DeepFashion-format crops.",
    count=option("--scenes", type=int, required=True, help="number of scenes"),
    options=(option("--crop-size", type=int, default=64, help="stage-2 crop side in pixels (default 64)"),),
    image_size=128, image_help="scene side in pixels",
    workers=None, workers_help="processes (default: 2 for 400+ scenes)",
    report="wrote {num_scenes} scenes ({num_objects} objects) to {out} (rendering {scenes_per_second:.0f} scenes/s "
           "per core; {written_per_second:.0f} scenes/s with crops, encoding and writing)")


def main_outfit(argv=None) -> int:
    """Command line: ``fashionlab synth outfit --scenes N [--seed S] --out DIR [--image-size PX]
    [--crop-size PX] [--workers W]`` (FashionSynth outfit preset, paper 06 stand-in; the options of
    :data:`COMMAND`)."""
    return cli_main("outfit", argv)


def run_outfit_cli(args) -> dict:
    """Run ``fashionlab synth outfit`` from parsed arguments (``out``, ``scenes``, ``seed``, ``image_size``,
    ``crop_size``, ``workers``, ``quiet``); prints :data:`COMMAND`'s report line and returns
    :func:`generate_outfits`' statistics. (What ``fashionlab/cli.py`` calls until it registers the synth commands
    through :func:`fashionlab.synth.cli.add_synth_parser`.)"""
    stats = generate_outfits(Path(args.out), args.scenes, seed=args.seed, image_size=args.image_size,
                             crop_size=args.crop_size, progress=not args.quiet, workers=args.workers)
    print(COMMAND.report.format(out=args.out, **stats))
    return stats


if __name__ == "__main__":
    sys.exit(main_outfit())
