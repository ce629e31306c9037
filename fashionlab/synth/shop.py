"""FashionSynth "shop": single clean garments with general and special attributes, like Shopping100k (paper 04).

Paper 04 (part-guided attribute search) builds Shopping100k (§3): shop images with one pure clothing item, front
view, simple background and no person ("a CNN ... selecting the image with no human and single-frontal view"),
12 attributes with 151 values, at least 5-6 labelled attributes per image and some labels missing (§7: "attribute
labels may be missing some special attributes"). §4.1 splits the attributes into *general* ones (category,
gender, ...) and *special* ones (sleeve length, collar, ...) that live in a part of the garment; §4.3 extracts
those parts (torso, left/right sleeve, collar, fastening) from the silhouette, with an "Extract Parts?" head of
three cases: lower-body item (no extraction), item with sleeves, sleeveless item. §6: 80% of the images train,
the rest is split into a retrieval gallery (19,000) and queries (2,000). Shopping100k itself is not public
(docs/formats.md §5.6, docs/implementations.md §8); this module writes FashionSynth's stand-in, in the ADDE
split-file layout that later work used for Shopping100k (docs/formats.md §5.6).

The pictures
------------
Every image is one FashionSynth garment (:func:`~fashionlab.synth.garments.render`, our own generator) drawn with
:data:`SHOP_CONFIG`: the ``clean`` preset (upright, no noise, plain light-grey background (232, 232, 228), no
clutter) without the mannequin, so only the garment shows (necklines and armholes show the background), with
neck details 1.2 times larger than in ``clean``. The garment is centred horizontally; vertically the renderer
centres the *frame of its category* (the box that holds the longest garment of the category and, for upper and
full-body garments, room for a head), so every garment of a category has the same scale (§4.3: "all images in
the dataset share similar poses"); :func:`render_shop` then moves the picture up or down by whole pixels so that
the garment box is centred, as in a product photo (exact on the plain background; every box moves with it).

Attributes (:data:`SHOP_SCHEMA`; value names in ``SHOP_SCHEMA.values``)
-----------------------------------------------------------------------
General (§4.1): ``category`` (5: top, coat, dress, skirt, pants). *Gender is left out*: a FashionSynth garment
carries no cue of it (no cut, size or style differs by gender), so a gender label could not be derived honestly.

Special (§4.1, Table 2), each visible in the picture:

* ``collar`` (21): the neck detail, one of FashionSynth's four families (:data:`COLLAR_VALUES`): 4 collars
  (Shirt, Peter Pan, Puritan, Rib), 4 lapel styles (coats), 9 necklines, 4 high necks (FashionAI names).
  Not applicable to skirts and pants.
* ``colour`` (14): the garment's main colour (:data:`~fashionlab.synth.patterns.COLOURS`; patterned fabric mixes
  it with a second colour that is not an attribute).
* ``fastening`` (4): pullover (none), buttons, zip, double-breasted (``GarmentSpec.fastening``); tops and dresses
  take the first three, coats the last three; not applicable to skirts and pants.
* ``length`` (17): the hem, in the length dimension of the category (:data:`LENGTH_VALUES`): 7 upper-body
  lengths (top: the first five only; coat), 5 skirt lengths (skirt, dress) and 5 trouser lengths (pants).
* ``pattern`` (5): solid, stripes, checks, dots, zigzag.
* ``sleeve_length`` (8): Sleeveless to Extra Long Sleeves; not applicable to skirts and pants.

Values are drawn as FashionSynth draws them (:func:`~fashionlab.synth.garments.sample_garment`: uniform within an
attribute, only the neckline/sleeve constraints tie attributes together; fastening uniform over the category's
styles), or, with ``designs=D``, from a catalogue of ``D`` designs (:func:`make_designs`): each image then shows
one design (all attribute values fixed) with its own cut, hem jitter, second colour and pattern phase, so that
exact attribute matches exist in a gallery (§7 counts a hit only for an item "with exactly the same attributes"),
and most designs have a neighbour that differs in one special attribute (§7.2, attribute manipulation).

Labels, like Shopping100k's, are sometimes missing: an applicable special attribute is unlabelled with
probability ``missing_rate`` (default 0.1), and a fastening that the picture does not show (covered by lapels or
a deep neckline on a short garment: the renders with each of the category's styles are not all different) is
always unlabelled. Attributes that do not apply (a skirt's sleeves) are unlabelled too. The category is always
labelled. The ground truth keeps every value.

Files (:func:`generate_shop`, all text files LF, paths relative to the dataset folder)
------------------------------------------------------------------------------------
``Images/<category>/<32 hex>.jpg``
    the pictures (JPEG quality 95); the name is the MD5 of ``"fashionsynth-shop-v1:<seed>:<index>"``.
``Masks/<category>/<32 hex>.png``
    the foreground mask (1-bit PNG, white = garment; neckline cuts and armholes are background).
``imgs_train.txt``, ``imgs_test.txt``
    one image path per line (docs/formats.md §5.6); the line index is the image id of the split.
``labels_train.txt``, ``labels_test.txt``
    one line per image (same order): the concatenated one-hot blocks of the attributes in :data:`ATTRIBUTES`
    order, ``sum(attr_num)`` = 74 space-separated ``0``/``1``; an all-zero block = label missing (§5.6).
``attr_num.txt``
    the value count of each attribute, one per line (``5 21 14 4 17 5 8``).
``meta.json``
    ``SHOP_SCHEMA.to_meta()`` (ASEN ``meta.json`` keys: names, counts, value names) plus ``GENERAL`` and
    ``SPECIAL``, the two attribute groups of §4.1.
``query_test.txt``, ``gallery_test.txt``
    the test split's queries and retrieval gallery (§6), one image id (line of ``imgs_test.txt``) per line,
    disjoint, ascending. Our files, not ADDE's.
``ground_truth.jsonl``
    one JSON object per image in index order (train, then test): ``index``, ``split``, ``id``, ``role`` ("train"
    | "query" | "gallery"), ``filename``, ``mask``, ``design`` (catalogue index or null), ``attributes`` (every
    attribute's value index, null where it does not apply), ``attribute_names``, ``labels`` (as written: null
    where unlabelled), ``missing`` (applicable attributes left unlabelled), ``fastening_visible``, ``part_case``
    (§4.3's "Extract Parts?" target, named as :data:`fashionlab.parts.CASES`: "lower", "sleeved" or
    "sleeveless"), ``attribute_regions`` (attribute -> box holding every pixel that changes when its value
    changes: the neck-detail region for collar, the centre-front zone for fastening, both sleeves and armholes
    for sleeve length, the hem band for length, the garment box for category, colour and pattern), and the
    renderer's ground truth: ``category``, ``body``,
    ``values`` (FashionAI's eight attributes), ``garment_box``, ``regions``, ``parts`` (torso, left_sleeve,
    right_sleeve, neck_detail = the paper's collar part, fastening, skirt, left_leg, right_leg: box or null;
    "left"/"right" as seen in the picture), ``colour``, ``colour2``, ``pattern``, ``fastening``, ``scale``,
    ``rotation``, ``image_size``, and ``shift`` (``[0, dy]``: how far the picture was moved to centre the
    garment). Boxes are ``[x1, y1, x2, y2]`` pixels of the written image, x2/y2 exclusive.
``synth.json``
    generator, version, seed, options, split sizes, per-attribute label counts and how many queries have an
    exact match (same value of every attribute) in the gallery.

Each image has its own generators (``numpy.random.default_rng([seed, index, k])``): images do not depend on the
order they are made in, and the same seed and options give byte-identical files. :func:`ensure_shop` caches a
dataset under ``fashionlab.config.data_dir() / "synth"``; ``fashionlab.datasets.read_adde_split`` reads it back.
"""
from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..taxonomy import FASHIONAI, AttributeSchema
from . import patterns as P
from .cli import SynthCommand, main as cli_main, option
from .garments import (BODY_TYPE, CATEGORIES, CATEGORY_FASTENINGS, DETAIL_ATTRIBUTES, NECK_FAMILIES, NUM_VALUES,
                       PRESETS, GarmentSpec, RenderConfig, allowed_values, render, sample_garment, set_value)
from .writer import (Preset, config_tag, ensure, generate, load_ground_truth, resolve_render_config, write_json,
                     write_lines)

__all__ = [
    "VERSION", "SPLITS", "GENERAL", "SPECIAL", "ATTRIBUTES", "COLLAR_VALUES", "LENGTH_DIMENSION", "LENGTH_VALUES",
    "FASTENING_NAMES", "image_name",
    "ATTR_NUM", "SHOP_SCHEMA", "SHOP_CONFIG", "ShopDesign", "shop_values", "applicable", "sample_design",
    "make_designs", "garment_for", "render_shop", "fastening_visible", "onehot_labels", "label_lines",
    "ShopPreset", "generate_shop", "ensure_shop", "load_shop_ground_truth", "load_mask", "COMMAND", "main_shop",
]

#: Generator version, written to synth.json and checked by :func:`ensure_shop`.
VERSION = "1.1"  # 1.1: part_case "sleeves" renamed "sleeved" (as fashionlab.parts)
#: The splits of the ADDE layout (docs/formats.md §5.6); the test split holds the queries and the gallery (§6).
SPLITS = ("train", "test")
#: General attributes (§4.1). Gender is left out: nothing in a FashionSynth garment shows it.
GENERAL: tuple[str, ...] = ("category",)
#: Special attributes (§4.1, Table 2), in file order.
SPECIAL: tuple[str, ...] = ("collar", "colour", "fastening", "length", "pattern", "sleeve_length")
#: Every attribute in the order of the one-hot blocks and of ``attr_num.txt``.
ATTRIBUTES: tuple[str, ...] = GENERAL + SPECIAL

#: ``collar`` values: (FashionAI neck-detail dimension, its value index), family by family.
COLLAR_VALUES: tuple[tuple[str, int], ...] = tuple((f, v) for f in DETAIL_ATTRIBUTES for v in range(1, NUM_VALUES[f]))
#: The FashionAI length dimension that gives each category's ``length``.
LENGTH_DIMENSION = {"top": "coat_length", "coat": "coat_length", "dress": "skirt_length", "skirt": "skirt_length",
                    "pants": "pant_length"}
#: ``length`` values: (FashionAI length dimension, its value index).
LENGTH_VALUES: tuple[tuple[str, int], ...] = tuple(
    (d, v) for d in ("coat_length", "skirt_length", "pant_length") for v in range(1, NUM_VALUES[d]))
#: Display names of the fastenings (:data:`~fashionlab.synth.garments.FASTENINGS` order).
FASTENING_NAMES = {"none": "Pullover", "buttons": "Buttons", "zip": "Zip", "double": "Double-Breasted"}
_FASTENINGS = tuple(FASTENING_NAMES)
_PATTERNS = tuple(P.PATTERNS)
_SLEEVE_NAMES = FASHIONAI.values["sleeve_length"][1:]

_VALUE_NAMES: dict[str, tuple[str, ...]] = {
    "category": CATEGORIES,
    "collar": tuple(FASHIONAI.value_name(f, v) for f, v in COLLAR_VALUES),
    "colour": P.COLOUR_NAMES,
    "fastening": tuple(FASTENING_NAMES.values()),
    "length": tuple(f"{d.replace('_', ' ')}: {FASHIONAI.value_name(d, v)}" for d, v in LENGTH_VALUES),
    "pattern": _PATTERNS,
    "sleeve_length": _SLEEVE_NAMES,
}
#: The attribute schema (names, value counts and value names), as in an ASEN ``meta.json``.
SHOP_SCHEMA = AttributeSchema(name="FashionSynth-Shop", attributes=ATTRIBUTES,
                              num_values=tuple(len(_VALUE_NAMES[a]) for a in ATTRIBUTES), values=_VALUE_NAMES)
#: Value count per attribute (the content of ``attr_num.txt``).
ATTR_NUM: tuple[int, ...] = SHOP_SCHEMA.num_values
_COLLAR_INDEX = {fv: i for i, fv in enumerate(COLLAR_VALUES)}
_LENGTH_INDEX = {dv: i for i, dv in enumerate(LENGTH_VALUES)}

#: The render config of the shop pictures: ``clean`` without the mannequin, neck details 1.2x (module docstring).
SHOP_CONFIG = replace(PRESETS["clean"], mannequin=False, detail_scale=1.2)

_JPEG_QUALITY = 95
#: Fewest differing pixels (at 64 px; scaled with the image area) for two fastenings to count as distinguishable.
_MIN_VISIBLE_PIXELS = 4


# ------------------------------------------------------------------------------------------------ attributes

def applicable(category: str) -> dict[str, bool]:
    """Which attributes apply to ``category`` (collar, fastening and sleeve length do not apply to lower-body
    garments)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {list(CATEGORIES)}")
    upper = BODY_TYPE[category] != "lower"
    return {a: upper or a not in ("collar", "fastening", "sleeve_length") for a in ATTRIBUTES}


def shop_values(spec: GarmentSpec) -> dict[str, int | None]:
    """The value index of every shop attribute of ``spec`` (:data:`ATTRIBUTES` order); None where it does not
    apply. The fastening is the drawn one (``spec.fastening_style``)."""
    cat = spec.category
    out: dict[str, int | None] = {"category": CATEGORIES.index(cat)}
    fam = spec.neck_family
    out["collar"] = _COLLAR_INDEX[(fam, spec.value(fam))] if fam else None
    out["colour"] = P.COLOUR_NAMES.index(spec.colour)
    style = spec.fastening_style
    out["fastening"] = _FASTENINGS.index(style) if style is not None else None
    dim = LENGTH_DIMENSION[cat]
    out["length"] = _LENGTH_INDEX[(dim, spec.value(dim))]
    out["pattern"] = _PATTERNS.index(spec.pattern)
    sl = spec.value("sleeve_length")
    out["sleeve_length"] = sl - 1 if sl else None
    return out


def _value_names(values: dict[str, int | None]) -> dict[str, str | None]:
    return {a: (None if v is None else SHOP_SCHEMA.values[a][v]) for a, v in values.items()}


@dataclass(frozen=True)
class ShopDesign:
    """One product design: everything the labels describe (category, FashionAI values, colour, pattern,
    fastening), nothing else (cut, hem jitter, second colour and pattern phase vary per image)."""

    category: str
    values: tuple[int, ...]
    colour: str
    pattern: str
    fastening: str | None

    def spec(self) -> GarmentSpec:
        """A validated garment with this design and default appearance."""
        return GarmentSpec(self.category, self.values, colour=self.colour, pattern=self.pattern,
                           colour2="white" if self.colour != "white" else "black", fastening=self.fastening)

    def attributes(self) -> dict[str, int | None]:
        return shop_values(self.spec())


def sample_design(rng) -> ShopDesign:
    """A random design: :func:`~fashionlab.synth.garments.sample_garment`'s category, attribute values, colour and
    pattern, and a fastening uniform over the category's styles (None for lower-body garments)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    spec = sample_garment(rng)
    styles = CATEGORY_FASTENINGS.get(spec.category)
    fastening = styles[int(rng.integers(len(styles)))] if styles else None
    return ShopDesign(spec.category, spec.values, spec.colour, spec.pattern, fastening)


def _variant(design: ShopDesign, rng: np.random.Generator) -> ShopDesign | None:
    """``design`` with one special attribute changed to another value it can take, or None if that change would
    also change another attribute (the neckline/sleeve constraints) or is impossible."""
    app = applicable(design.category)
    attrs = [a for a in SPECIAL if app[a]]
    a = attrs[int(rng.integers(len(attrs)))]
    if a == "colour":
        opts = [c for c in P.COLOUR_NAMES if c != design.colour]
        return replace(design, colour=opts[int(rng.integers(len(opts)))])
    if a == "pattern":
        opts = [p for p in _PATTERNS if p != design.pattern]
        return replace(design, pattern=opts[int(rng.integers(len(opts)))])
    if a == "fastening":
        opts = [f for f in CATEGORY_FASTENINGS[design.category] if f != design.fastening]
        return replace(design, fastening=opts[int(rng.integers(len(opts)))])
    spec = design.spec()
    if a == "collar":
        opts = [(f, v) for f, v in COLLAR_VALUES if f in NECK_FAMILIES[design.category] and (f, v) != (
            spec.neck_family, spec.value(spec.neck_family))]
    else:
        dim = LENGTH_DIMENSION[design.category] if a == "length" else "sleeve_length"
        opts = [(dim, v) for v in allowed_values(design.category, dim) if v != spec.value(dim)]
    if not opts:
        return None
    dim, v = opts[int(rng.integers(len(opts)))]
    new = set_value(spec, dim, v)
    before, after = shop_values(spec), shop_values(new)
    if sum(before[k] != after[k] for k in ATTRIBUTES) != 1:
        return None
    return replace(design, values=new.values)


def make_designs(num_designs: int, seed: int = 0) -> list[ShopDesign]:
    """A catalogue of ``num_designs`` distinct designs (§7's exact-match retrieval needs repeated designs).

    A quarter (at least one) are drawn with :func:`sample_design`; every further design is a random existing one
    with one special attribute changed (:func:`_variant`), so most designs have a neighbour at one attribute
    manipulation (§7.2). Deterministic in ``seed``.
    """
    if num_designs < 1:
        raise ValueError(f"num_designs must be positive, got {num_designs}")
    rng = np.random.default_rng([seed, 0xDE51])
    designs: list[ShopDesign] = []
    seen: set[ShopDesign] = set()
    n_base = max(1, math.ceil(num_designs / 4))
    attempts = 0
    while len(designs) < num_designs:
        attempts += 1
        if len(designs) < n_base or attempts > 50 * num_designs:
            d = sample_design(rng)
        else:
            d = _variant(designs[int(rng.integers(len(designs)))], rng)
        if d is not None and d not in seen:
            seen.add(d)
            designs.append(d)
    return designs


def garment_for(design: ShopDesign, rng) -> GarmentSpec:
    """A garment showing ``design``: the cut (width, flare), hem jitter, second colour, pattern phase and tint
    come from ``rng`` (through :func:`~fashionlab.synth.garments.sample_garment` with the design's category)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    base = sample_garment(rng, category=design.category)
    colour2 = base.colour2 if base.colour2 != design.colour else base.colour
    inner = base.inner if base.inner != design.colour else base.colour
    return replace(base, values=design.values, colour=design.colour, colour2=colour2, pattern=design.pattern,
                   inner=inner, fastening=design.fastening)


# ------------------------------------------------------------------------------------------------ rendering

def fastening_visible(spec: GarmentSpec, config: RenderConfig | None = None, image: np.ndarray | None = None,
                      rng_seed=0) -> bool | None:
    """Whether the picture shows ``spec``'s fastening: the renders of the garment with each fastening style its
    category allows are pairwise different (in at least a few pixels). None for lower-body garments.

    Lapels reach below the hem of a short coat, and a deep neckline can cut away the whole front of a short
    top: such a fastening cannot be told from the others, and :func:`generate_shop` leaves it unlabelled.
    ``image`` (the render of ``spec`` itself) saves one render; all renders use ``rng_seed``.
    """
    styles = CATEGORY_FASTENINGS.get(spec.category)
    if not styles:
        return None
    cfg = config or SHOP_CONFIG
    thr = max(1, round(_MIN_VISIBLE_PIXELS * (cfg.image_size / 64) ** 2))
    imgs = []
    for s in styles:
        if image is not None and s == spec.fastening_style:
            imgs.append(image)
        else:
            imgs.append(render(replace(spec, fastening=s), cfg, np.random.default_rng(rng_seed))[0])
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            if int((imgs[i] != imgs[j]).any(axis=2).sum()) < thr:
                return False
    return True


def _attribute_regions(spec: GarmentSpec, gt: dict) -> dict[str, list | None]:
    fam = spec.neck_family
    dim = LENGTH_DIMENSION[spec.category]
    return {
        "category": gt["garment_box"],
        "collar": gt["regions"][fam] if fam else None,
        "colour": gt["garment_box"],
        "fastening": gt["regions"].get("fastening"),
        "length": gt["regions"][dim],
        "pattern": gt["garment_box"],
        "sleeve_length": gt["regions"]["sleeve_length"],
    }


def _shift_box(box, dy: int, size: int):
    if box is None:
        return None
    y1, y2 = max(0, box[1] + dy), min(size, box[3] + dy)
    return [box[0], y1, box[2], y2] if y2 > y1 else None


def render_shop(spec: GarmentSpec, config: RenderConfig | None = None, rng=0, mask: bool = True,
                centre: bool | None = None):
    """Render ``spec`` as a shop picture (§3). Returns ``(image, mask, ground_truth)``.

    ``image`` is the renderer's uint8 ``(S, S, 3)`` picture with ``config`` (default :data:`SHOP_CONFIG`); a
    spec whose ``fastening`` is None gets its category's default style made explicit. With ``centre`` (default:
    when the config has a plain background and no noise) the picture is moved vertically by a whole number of
    pixels ``dy`` so that the garment box is centred (rows that wrap round are background, so the move is exact);
    every box moves with it and ``ground_truth["shift"]`` is ``[0, dy]``. Pixel comparisons between two garments
    (e.g. the same garment with another collar) need ``centre=False``: ``dy`` depends on the garment's extent.
    ``mask`` is a bool ``(S, S)`` foreground mask (None with ``mask=False``): the pixels that differ between the
    garment rendered all black and all white with the same ``rng`` seed (exact; background, cuts and armholes are
    False). ``ground_truth`` is the renderer's dict plus ``attributes``, ``attribute_names``,
    ``fastening_visible``, ``part_case``, ``attribute_regions`` and ``shift`` (see the module docstring). ``rng``
    must be a seed (an int or a sequence of ints), because the mask and the fastening check render the scene
    again.
    """
    if isinstance(rng, np.random.Generator):
        raise TypeError("render_shop needs a seed (int or sequence of ints), not a Generator: the mask and the "
                        "fastening check re-render the same scene")
    cfg = config or SHOP_CONFIG
    plain = cfg.background == "plain" and cfg.noise_sigma == 0
    if centre is None:
        centre = plain
    elif centre and not plain:
        raise ValueError("centre=True needs a config with a plain background and no noise (background='plain', "
                         "noise_sigma=0): only then is moving the picture exact")
    if spec.fastening is None and spec.fastening_style is not None:
        spec = replace(spec, fastening=spec.fastening_style)
    img, gt = render(spec, cfg, np.random.default_rng(rng))
    m = None
    if mask:
        solid = dict(pattern="solid", tint=(0, 0, 0))
        black = render(replace(spec, colour="black", colour2="black", inner="black", **solid), cfg,
                       np.random.default_rng(rng))[0]
        white = render(replace(spec, colour="white", colour2="white", inner="white", **solid), cfg,
                       np.random.default_rng(rng))[0]
        m = (black != white).any(axis=2)
    values = shop_values(spec)
    sl = spec.value("sleeve_length")
    gt["attributes"] = values
    gt["attribute_names"] = _value_names(values)
    gt["fastening_visible"] = fastening_visible(spec, cfg, img, rng)
    gt["part_case"] = "lower" if not sl else ("sleeveless" if sl == 1 else "sleeved")
    dy = 0
    if centre and gt["garment_box"] is not None:
        S = img.shape[0]
        _, y1, _, y2 = gt["garment_box"]
        dy = ((S - y2) - y1) // 2  # the rows that wrap round lie outside the garment: background
        if dy:
            img = np.roll(img, dy, axis=0)
            m = np.roll(m, dy, axis=0) if m is not None else None
            gt["garment_box"] = _shift_box(gt["garment_box"], dy, S)
            gt["regions"] = {k: _shift_box(b, dy, S) for k, b in gt["regions"].items()}
            gt["parts"] = {k: _shift_box(b, dy, S) for k, b in gt["parts"].items()}
    gt["shift"] = [0, int(dy)]
    gt["attribute_regions"] = _attribute_regions(spec, gt)
    return img, m, gt


# ------------------------------------------------------------------------------------------------ label files

def onehot_labels(labels: dict[str, int | None] | np.ndarray, attr_num=ATTR_NUM) -> np.ndarray:
    """The concatenated one-hot vector (int64, ``sum(attr_num)``) of one image's labels (docs/formats.md §5.6).

    ``labels`` is {attribute: value index or None} in :data:`ATTRIBUTES` order, or a sequence of value indices
    with -1 for missing. A missing label leaves its block all zero.
    """
    idx = [(-1 if v is None else int(v)) for v in (labels.values() if isinstance(labels, dict) else labels)]
    if len(idx) != len(attr_num):
        raise ValueError(f"{len(idx)} labels for {len(attr_num)} attributes")
    out = np.zeros(int(sum(attr_num)), dtype=np.int64)
    start = 0
    for k, (v, n) in enumerate(zip(idx, attr_num)):
        if not -1 <= v < n:
            raise ValueError(f"label {v} of attribute {k} out of range -1..{n - 1}")
        if v >= 0:
            out[start + v] = 1
        start += n
    return out


def label_lines(labels: np.ndarray, attr_num=ATTR_NUM) -> list[str]:
    """The lines of a ``labels_<split>.txt`` for an int array ``(n, A)`` of value indices (-1 = missing): one
    line per image, ``sum(attr_num)`` space-separated 0/1 (§5.6)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1, len(attr_num))
    return [" ".join(map(str, onehot_labels(row, attr_num).tolist())) for row in labels]


# ------------------------------------------------------------------------------------------------ generator

def image_name(seed: int, index: int) -> str:
    """The 32-hex name of image ``index`` of a shop dataset generated with ``seed``."""
    return hashlib.md5(f"fashionsynth-shop-v1:{seed}:{index}".encode()).hexdigest()


def _plan(num_images: int, seed: int, train_fraction: float, query_fraction: float) -> list[dict]:
    if num_images < 2:
        raise ValueError(f"num_images must be at least 2 (one train and one test image), got {num_images}")
    if not 0 < train_fraction < 1 or not 0 < query_fraction < 1:
        raise ValueError(f"train_fraction and query_fraction must lie in (0, 1), got {train_fraction}, "
                         f"{query_fraction}")
    n_train = min(num_images - 1, max(1, int(round(train_fraction * num_images))))
    n_test = num_images - n_train
    n_query = min(n_test - 1, max(1, int(round(query_fraction * n_test)))) if n_test > 1 else 0
    queries = set(np.random.default_rng([seed, 0x9E5]).choice(n_test, n_query, replace=False).tolist())
    plan = []
    for i in range(num_images):
        if i < n_train:
            plan.append({"index": i, "split": "train", "id": i, "role": "train"})
        else:
            j = i - n_train
            plan.append({"index": i, "split": "test", "id": j, "role": "query" if j in queries else "gallery"})
    return plan


@dataclass
class ShopPreset(Preset):
    """The shop preset (paper 04 §3, §6; ADDE layout, docs/formats.md §5.6) for :mod:`fashionlab.synth.writer`:
    ``seed``, the render ``config``, ``designs`` (catalogue size or None), ``missing_rate``, ``train_fraction``
    and ``query_fraction`` (module docstring). The catalogue is drawn once (:func:`make_designs`)."""

    name = "shop"
    version = VERSION
    label = "FashionSynth shop"
    own_files = ("imgs_train.txt", "imgs_test.txt", "labels_train.txt", "labels_test.txt", "attr_num.txt",
                 "meta.json", "query_test.txt", "gallery_test.txt")
    image_globs = tuple(f"{top}/{c}/*.{ext}" for top, ext in (("Images", "jpg"), ("Masks", "png"))
                        for c in CATEGORIES)
    folders = tuple(f"{top}/{c}" for top in ("Images", "Masks") for c in CATEGORIES)

    seed: int
    config: RenderConfig
    designs: int | None = None
    missing_rate: float = 0.1
    train_fraction: float = 0.8
    query_fraction: float = 0.1
    catalogue: list | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not 0 <= self.missing_rate <= 1:
            raise ValueError(f"missing_rate must lie in [0, 1], got {self.missing_rate}")
        if self.designs is not None:
            self.catalogue = make_designs(self.designs, self.seed)

    def plan(self, num: int) -> list[dict]:
        """Train ids first, then test; ``query_fraction`` of the test images are queries (§6)."""
        return _plan(num, self.seed, self.train_fraction, self.query_fraction)

    def render_one(self, item: dict, out: Path | None) -> tuple[dict, float]:
        """Draw the design (generator ``[seed, index, 2]``), the garment (``[seed, index]``), the picture with its
        mask (``[seed, index, 1]``) and the missing labels (``[seed, index, 3]``)."""
        seed, index = self.seed, item["index"]
        t0 = time.perf_counter()
        if self.catalogue is None:
            d_index = None
            design = sample_design(np.random.default_rng([seed, index, 2]))
        else:
            d_index = int(np.random.default_rng([seed, index, 2]).integers(len(self.catalogue)))
            design = self.catalogue[d_index]
        spec = garment_for(design, np.random.default_rng([seed, index]))
        img, mask, gt = render_shop(spec, self.config, [seed, index, 1])
        dt = time.perf_counter() - t0
        drop = np.random.default_rng([seed, index, 3]).random(len(SPECIAL)) < self.missing_rate
        labels = dict(gt["attributes"])
        missing = []
        for a, d in zip(SPECIAL, drop):
            if labels[a] is None:
                continue
            if d or (a == "fastening" and not gt["fastening_visible"]):
                labels[a] = None
                missing.append(a)
        name = image_name(seed, index)
        filename = f"Images/{spec.category}/{name}.jpg"
        mask_name = f"Masks/{spec.category}/{name}.png"
        if out is not None:
            Image.fromarray(img).save(out / filename, quality=_JPEG_QUALITY)
            Image.fromarray(mask).convert("1").save(out / mask_name, optimize=True)
        record = {"index": index, "split": item["split"], "id": item["id"], "role": item["role"],
                  "filename": filename, "mask": mask_name, "design": d_index, "attributes": gt.pop("attributes"),
                  "attribute_names": gt.pop("attribute_names"), "labels": labels, "missing": missing}
        record.update(gt)
        return record, dt

    def write_splits(self, out: Path, records: list[dict]) -> tuple[dict, dict]:
        """The ADDE files (``imgs_*``, ``labels_*``, ``attr_num.txt``), ``meta.json`` and the test split's
        query and gallery lists."""
        by_split = {s: sorted((r for r in records if r["split"] == s), key=lambda r: r["id"]) for s in SPLITS}
        for s in SPLITS:
            write_lines(out / f"imgs_{s}.txt", (r["filename"] for r in by_split[s]))
            rows = np.array([[(-1 if r["labels"][a] is None else r["labels"][a]) for a in ATTRIBUTES]
                             for r in by_split[s]], dtype=np.int64).reshape(-1, len(ATTRIBUTES))
            write_lines(out / f"labels_{s}.txt", label_lines(rows))
        write_lines(out / "attr_num.txt", (str(n) for n in ATTR_NUM))
        meta = SHOP_SCHEMA.to_meta()
        meta["GENERAL"], meta["SPECIAL"] = list(GENERAL), list(SPECIAL)
        write_json(out / "meta.json", meta)
        queries = [r for r in by_split["test"] if r["role"] == "query"]
        gallery = [r for r in by_split["test"] if r["role"] == "gallery"]
        write_lines(out / "query_test.txt", (str(r["id"]) for r in queries))
        write_lines(out / "gallery_test.txt", (str(r["id"]) for r in gallery))

        counts = {s: {a: [0] * n for a, n in zip(ATTRIBUTES, ATTR_NUM)} for s in SPLITS}
        missing = {s: {a: 0 for a in ATTRIBUTES} for s in SPLITS}
        for r in records:
            for a in ATTRIBUTES:
                v = r["labels"][a]
                if v is None:
                    missing[r["split"]][a] += 1
                else:
                    counts[r["split"]][a][v] += 1
        key = lambda r: tuple(r["attributes"][a] for a in ATTRIBUTES)  # noqa: E731
        in_gallery = {}
        for r in gallery:
            in_gallery[key(r)] = in_gallery.get(key(r), 0) + 1
        matched = sum(1 for r in queries if key(r) in in_gallery)
        synth = {
            "seed": int(self.seed),
            "num_images": len(records),
            "image_size": self.config.image_size,
            "config": self.config.to_dict(),
            "designs": self.designs,
            "missing_rate": self.missing_rate,
            "train_fraction": self.train_fraction,
            "query_fraction": self.query_fraction,
            "splits": {s: len(by_split[s]) for s in SPLITS},
            "queries": len(queries),
            "gallery": len(gallery),
            "queries_with_exact_match": matched,
            "attributes": {"general": list(GENERAL), "special": list(SPECIAL)},
            "attr_num": list(ATTR_NUM),
            "label_counts": counts,
            "unlabelled": missing,
            "files": {
                "images": "Images/<category>/<32 hex>.jpg",
                "masks": "Masks/<category>/<32 hex>.png",
                "adde": ["imgs_train.txt", "imgs_test.txt", "labels_train.txt", "labels_test.txt", "attr_num.txt"],
                "meta": "meta.json",
                "retrieval": ["query_test.txt", "gallery_test.txt"],
                "ground_truth": "ground_truth.jsonl",
            },
        }
        return synth, {"queries": len(queries), "gallery": len(gallery), "queries_with_exact_match": matched}

    def summary(self, stats: dict, where: str) -> str:
        return (super().summary(stats, where) + f"; {stats['queries_with_exact_match']}/{stats['queries']} queries "
                f"have an exact match in the gallery")

    def folder_name(self, num: int) -> str:
        """``shop-n<N>-s<seed>-px<P>`` plus ``-d<designs>``, ``-m<missing_rate>``, ``-q<query_fraction>``,
        ``-t<train_fraction>`` and ``-c<hash>`` for options other than the defaults."""
        name = f"shop-n{num}-s{self.seed}-px{self.config.image_size}"
        if self.designs is not None:
            name += f"-d{self.designs}"
        if self.missing_rate != 0.1:
            name += f"-m{self.missing_rate:g}"
        if self.query_fraction != 0.1:
            name += f"-q{self.query_fraction:g}"
        if self.train_fraction != 0.8:
            name += f"-t{self.train_fraction:g}"
        return name + config_tag(self.config, SHOP_CONFIG)


def generate_shop(out_dir, num_images: int, seed: int = 0, image_size: int | None = 128,
                  config: RenderConfig | str | None = None, designs: int | None = None, missing_rate: float = 0.1,
                  train_fraction: float = 0.8, query_fraction: float = 0.1, progress: bool = True,
                  workers: int = 1) -> dict:
    """Render a FashionSynth shop dataset (paper 04 §3, §4.1, §6) into ``out_dir``; layout in the module docstring.

    ``config`` is a :class:`RenderConfig`, ``"shop"`` / None for :data:`SHOP_CONFIG`, or a preset name;
    ``image_size`` overrides its canvas size. ``designs`` (None: every image its own design) draws the images
    from a catalogue of that many designs (:func:`make_designs`). ``missing_rate`` is the chance that an
    applicable special attribute is unlabelled. ``train_fraction`` of the images train (§6: 80%); of the test
    images, ``query_fraction`` are queries (§6: 2,000 of 21,000, about 0.1), the rest the gallery.
    ``workers > 1`` renders in that many processes (same files). A previous shop dataset in ``out_dir`` is
    replaced (its own files only); a non-empty folder that is not one is refused. Same seed and options give
    byte-identical files.

    Returns statistics (:func:`fashionlab.synth.writer.generate`): ``num_images``, ``splits``, ``queries``,
    ``gallery``, ``queries_with_exact_match``, ``seconds``, ``render_seconds``, ``images_per_second``
    (rendering with the mask and fastening check, per core), ``written_per_second``.
    """
    preset = ShopPreset(seed, resolve_render_config(config, image_size, SHOP_CONFIG, "shop"), designs,
                        missing_rate, train_fraction, query_fraction)
    return generate(preset, out_dir, num_images, workers=workers, progress=progress)


def ensure_shop(num_images: int, seed: int = 0, image_size: int = 128, progress: bool = True, root=None,
                config: RenderConfig | str | None = None, designs: int | None = None, missing_rate: float = 0.1,
                workers: int = 1, query_fraction: float = 0.1, train_fraction: float = 0.8) -> Path:
    """Path of a complete FashionSynth shop dataset (paper 04 §3), generating it first if needed.

    The dataset lives in ``<root>/shop-n<N>-s<seed>-px<P>`` (plus ``-d<designs>``, ``-m<missing_rate>``,
    ``-q<query_fraction>``, ``-t<train_fraction>`` and ``-c<hash>`` for non-default options), where ``root``
    defaults to ``fashionlab.config.data_dir() / "synth"``. As :func:`~fashionlab.synth.fashionai.ensure_fashionai`:
    generated only when the completion marker (``.complete``, holding the generator version) is missing or from
    another version, into a temporary folder that is renamed when done.
    """
    preset = ShopPreset(seed, resolve_render_config(config, image_size, SHOP_CONFIG, "shop"), designs,
                        missing_rate, train_fraction, query_fraction)
    return ensure(preset, num_images, root=root, workers=workers, progress=progress)


def load_shop_ground_truth(root, split: str | None = None) -> list[dict]:
    """The records of ``<root>/ground_truth.jsonl`` of a shop dataset (all, or one ``split`` in id order)."""
    return load_ground_truth(root, split, splits=SPLITS)


def load_mask(root, record: dict) -> np.ndarray:
    """The foreground mask (bool ``(S, S)``) of a ground-truth ``record`` of the dataset in ``root``."""
    path = Path(root) / record["mask"]
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


#: ``fashionlab synth shop`` (:mod:`fashionlab.synth.cli`; the common options are declared there).
COMMAND = SynthCommand(
    name="shop", generate=generate_shop,
    help="paper 04's shop dataset (Shopping100k stand-in); ADDE split files",
    description="Render a FashionSynth shop dataset (paper 04's Shopping100k stand-in) in the ADDE split-file "
                "layout.",
    count=option("--num-images", type=int, required=True),
    options=(option("--designs", type=int, default=None, help="draw the images from a catalogue of D designs"),
             option("--missing-rate", type=float, default=0.1,
                    help="chance that an applicable special attribute is unlabelled (default 0.1)")),
    image_size=128,
    report="wrote {num_images} images to {out} (rendering {images_per_second:.0f} images/s per core with masks; "
           "{written_per_second:.0f} images/s with encoding and writing)")


def main_shop(argv=None) -> int:
    """Command line: ``python -m fashionlab.synth.shop --out DIR --num-images N [--seed S] [--image-size PX]``
    (the options of :data:`COMMAND`)."""
    return cli_main("shop", argv)


if __name__ == "__main__":
    sys.exit(main_shop())
