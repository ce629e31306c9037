"""FashionSynth "multilabel": garments with several classes per attribute group, in DeepFashion's file formats.

Paper 05 (M3-Net, §1, §3.1, §4.1) works on DeepFashion's coarse attribute benchmark: five attribute groups
(*attributes*: texture, fabric, shape, part, style), each with many *classes*, and an image belongs to several
classes of one group at once ("fit" and "flare" under "shape", Fig. 1). This module writes FashionSynth's
stand-in for it: every image is one FashionSynth garment (:mod:`fashionlab.synth.garments`, our own generator,
not the paper's data) labelled with the classes of three of DeepFashion's five groups, in DeepFashion's Category
& Attribute Prediction list files (docs/formats.md §5.3) and in the ASEN split files of ASEN's DeepFashion copy
(docs/formats.md §5.1), with the full ground truth beside them.

Groups and classes (:data:`MULTILABEL_SCHEMA`, :data:`ATTR_CLOTH`)
-----------------------------------------------------------------
The groups keep DeepFashion's type numbers (1 texture, 2 fabric, 3 shape, 4 part, 5 style); fabric and style are
left out (nothing in a FashionSynth picture shows a fabric or a style). Each group's classes come from several
independent *facets* of the garment, so that a garment has several classes of one group (32 classes in all):

``texture`` (type 1): every garment has exactly one class of each facet.

* pattern (:data:`PATTERN_CLASSES`): solid, striped, checked, dotted, zigzag (FashionSynth's patterns,
  :data:`~fashionlab.synth.patterns.PATTERNS`, with their probabilities: solid 36%, the others 15-18%).
* colour (:data:`COLOUR_FAMILIES`): the family of the garment's main colour ``GarmentSpec.colour`` (14 colours,
  uniform): "red orange yellow", "pink purple", "green teal", "blue navy", "brown beige", "black white grey".
  A patterned fabric mixes the main colour with a second one (``colour2``) that covers about half of a striped,
  checked or zigzag fabric. FashionSynth draws that second colour at random, which would make the one colour
  class ambiguous (an orange-and-grey striped top labelled "black white grey"); here it is white or black
  instead (:func:`second_colour`: white on a main colour darker than grey level 150, black on a lighter one), so
  a patterned garment reads as its main colour with white or black, as in "a red striped top".

``shape`` (type 3):

* length (:data:`LENGTH_CLASSES`): the hem of the garment's length dimension (coat_length for tops and coats,
  skirt_length for skirts and dresses, pant_length for pants), by the *nominal* hem height ``y`` of its value
  (:data:`~fashionlab.synth.geometry.LENGTHS`, body units, y down from the neck base; the knee is at 4.5, the feet
  at 6.5): "hip-length" (y < 3.0: High Waist, Regular), "mini" (3.0-4.0: a coat's Long and Micro, Short skirts,
  Short Pants), "knee-length" (4.0-4.8), "midi" (4.8-5.8: also 3/4 and Cropped pants) and "maxi" (y >= 5.8:
  ankle and floor). The drawn hem varies within its value's band (``RenderConfig.length_jitter``); at the
  default jitter (0.5) the drawn hems of two classes do not overlap, except midi pants and maxi skirts, which
  can touch (5.80-5.81 body units, a tenth of a pixel at 64 px).
* sleeve (:data:`SLEEVE_CLASSES`; tops, coats, dresses): "sleeveless" (Sleeveless, Cup Sleeves), "short-sleeve"
  (Short, Elbow) and "long-sleeve" (3/4, Wrist Length, Long, Extra Long).
* silhouette (:data:`SILHOUETTE_CLASSES`, from ``GarmentSpec.flare``, uniform in [0, 1]): "fitted" for a flare
  below 0.25, "flared" above 0.75, no class in between, and no class either where the flare does not show.
  Flare widens a garment below the hips only, so it does not show on tops, short coats or short skirts. Measured
  while building this module (20 garments per category and length value, ``MULTILABEL_CONFIG`` at 64 px, median
  number of pixels that differ between the same garment drawn with flare 0 and 1): 0 for every top and coat
  down to the "Long" hem, 4 at mid-thigh and about 20 at the knee; 50 and 93 for midi and ankle coats; 4 for a
  short dress, 35 at the knee and 74-157 below; 9 for a short skirt, 73 at the knee and 167-377 below; 3 for
  short pants, 29 at the knee and 67-170 below (about half as much between flare 0.25 and 0.75). So the facet is
  kept, decided per image: a garment gets "fitted" or "flared" only when its renders with flare 0.25 and 0.75
  (the class boundaries: the closest garments of the two classes) differ in at least ``SILHOUETTE_MIN_PIXELS``
  pixels (24 at 64 px, scaled with the image area) in the same scene. About 40% of the garments whose flare
  lies in a class pass (20% of all images get a silhouette class).

``part`` (type 4; tops, coats and dresses only: lower-body garments have no part class):

* neck (:data:`NECK_CLASSES`): FashionSynth's neck detail (one of four families, FashionAI names) grouped:
  "v-neck" (Deep V, V Neck, Sweetheart), "round neck" (Straight, Square, Round necklines and the Collarless coat
  opening), "bare shoulder" (Strapless, Off Shoulder, OneShoulder), "pointed collar" (Shirt Collar),
  "round collar" (Peter Pan, Puritan, Rib Collar), "lapels" (Notched, Shawl, Plus Size Shawl), "high neck"
  (Turtle, Ruffle Semi-High, Low Turtle) and "cowl neck" (Draped Collar).
* fastening (:data:`FASTENING_CLASSES`): "button", "zip", "double-breasted". ``GarmentSpec.fastening`` is set
  explicitly, uniform over the category's styles (:data:`~fashionlab.synth.garments.CATEGORY_FASTENINGS`: tops
  and dresses none/buttons/zip, coats buttons/zip/double), and the class is positive only when the style is not
  "none" and the picture shows it (:func:`~fashionlab.synth.shop.fastening_visible`: the renders with each of
  the category's styles are pairwise different; lapels over a short coat or a deep neckline can hide it).

Class names contain spaces, like DeepFashion's. ``list_attr_cloth.txt`` lists them in alphabetical order (as
the real file does), so the groups are interleaved; the *global id* of a class is its 0-based line there, and
its *value index* in the ASEN files is the rank of its global id among the global ids of its group (the rule
docs/formats.md §5.1 verified on the real files), i.e. its position in ``MULTILABEL_SCHEMA.values[group]``.

Region ground truth (``class_regions``)
---------------------------------------
Each positive class has a box ``[x1, y1, x2, y2]`` (pixels, x2/y2 exclusive) of where it lives: the garment box
for pattern, colour and silhouette classes, the hem band of the category's length dimension for a length class,
both sleeves and armholes for a sleeve class, the neck-detail region for a neck class and the centre-front
fastening zone for a fastening class (the renderer's ``regions``, see :mod:`fashionlab.synth.garments`). Neck and
fastening boxes hold every pixel that changes when the neck class or the fastening changes (tested here; the
renderer's tests check the same of sleeve boxes).

The pictures (:data:`MULTILABEL_CONFIG`)
----------------------------------------
The ``asen`` preset (the ``wild`` garment and layout, neck details 1.4 times larger, 8 clutter shapes at 0.4
contrast) at 64 px. FashionSynth draws pattern periods of 0.24-0.46 body units, 2-4 px at 64 px on a dress:
dots and checks then blur into noise. :func:`sample_multilabel_garment` therefore rescales the period (keeping
the phase and orientation) to ``PATTERN_PERIOD`` = 0.094-0.14 of the image side (6-9 px at 64 px), in the
same order as drawn, using the category's pixels per body unit in that config. Stripes, checks, dots and zigzags
and the neck details stay distinguishable by eye at 64 px (checked on preview grids).

Files (:func:`generate_multilabel`; text files UTF-8, LF unless said otherwise)
-------------------------------------------------------------------------------
``img/<Category>/img_%08d.jpg``
    the pictures (JPEG quality 95). ``<Category>`` is Top, Coat, Skirt, Pants or Dress; the number is the global
    index + 1 (unique over the dataset).
``Anno/list_attr_cloth.txt``, ``Anno/list_attr_img.txt``, ``Anno/list_category_cloth.txt``,
``Anno/list_category_img.txt``, ``Anno/list_bbox.txt``, ``Eval/list_eval_partition.txt``
    DeepFashion's list files (docs/formats.md §5.3): line 1 the count, line 2 the column header (exactly as §5.3
    spells it), then one line per entry with fields separated by runs of spaces. Names are padded to align the
    next column as in the real files: image names to 71 characters (the real files' column; the longest name
    plus one if that is longer), attribute names to 29, category names to 15 (at least two spaces follow).
    ``list_attr_cloth``: ``<name>  <type>`` (type = the last token; every class name is followed by at least
    two spaces). ``list_attr_img``: ``<image>  1 -1 ...``, one value per class in
    list_attr_cloth order, each written in two characters (`` 1`` / ``-1``) and separated by one space, as in
    the real file. ``list_category_cloth``: Top 1, Coat 1, Skirt 2, Pants 2, Dress 3 (DeepFashion types: 1 upper,
    2 lower, 3 full body), and ``list_category_img`` the 1-based line in it. ``list_bbox``: the garment box as
    zero-padded 3-digit numbers (wider numbers when the image is larger than 999 px), x_2/y_2 exclusive.
    ``list_eval_partition``: train | val | test. Every list file holds the images in global index order; the
    splits are interleaved, as in the real partition.
``filenames_{train,valid,test}.txt``, ``label_train.txt``, ``query_{valid,test}.txt``,
``candidate_{valid,test}.txt``, ``label_{valid,test}.txt``, ``meta.json``
    the ASEN split of the same images (docs/formats.md §5.1, DeepFashion variant); ASEN's "valid" is the
    partition's "val". ``filenames_<split>.txt`` holds paths relative to the folder (``img/...``); in valid and
    test the candidates come first, then the queries (each in index order), as in ASEN's DeepFashion files;
    ``query_`` and ``candidate_`` files list ``<id> <attr> <value>`` in id order, one line per image, with one
    group drawn at random among the groups where the image has a positive class and one of its positive classes
    in that group; queries are ``query_fraction`` of a split (at least one when the split has two images), and
    disjoint from the candidates. ``label_train.txt``: ``<id> <a1> <v1> <a2> <v2> ...`` with, for every group
    where the image has a positive class, ONE of them drawn at random (the real split keeps one).
    ``label_{valid,test}.txt`` (the real DeepFashion format: tab-separated, CRLF line ends, every line padded
    with trailing tabs to the field count of the longest line): ``<id>\\t<type>\\t<global id>...`` listing every
    positive class of the image in ascending global id with its DeepFashion type number. Attribute indices are
    positions in ``meta.json``'s ``ATTRIBUTES`` (0 texture, 1 shape, 2 part); value indices the rank rule above.
    ``meta.json`` is ``MULTILABEL_SCHEMA.to_meta()`` plus ``DEEPFASHION_TYPES`` ({group: type number}).
``ground_truth.jsonl``
    one JSON object per image, in global index order (the order of the list files): ``index``, ``name`` (the
    path in the list files), ``split`` ("train" | "val" | "test"), ``asen_split`` ("train" | "valid" | "test"),
    ``asen_id`` (its line in ``filenames_<asen_split>.txt``), ``role`` ("train" | "query" | "candidate"),
    ``asen_labels`` (the ``[attr, value]`` pairs written for it: label_train's pairs, or its one query/candidate
    pair), ``category_label`` (1-based, list_category_cloth), ``classes`` ({group: [class names]} in global id
    order, every group present), ``class_regions`` ({class name: box}), ``fastening_visible`` (None for lower-body
    garments), ``silhouette_visible`` (None when the flare lies between the two classes and was not checked),
    ``flare``, ``pattern_period_px``, and the renderer's ground truth: ``category``, ``body``, ``values`` (the
    eight FashionAI attributes), ``garment_box``, ``regions``, ``parts``, ``colour``, ``colour2``, ``pattern``,
    ``fastening`` (upper and full-body garments only), ``scale``, ``rotation``, ``image_size``.
``synth.json``
    generator, version, format ("multilabel"), seed, options (render config, split fractions, query fraction),
    split sizes, queries and candidates, per-class counts (all and per split), the mean number of positive
    classes per group per image and the share of images with two or more classes in each group.

Each image has its own generators (``numpy.random.default_rng([seed, index, k])``): images do not depend on the
order they are made in, and the same seed and options give byte-identical files. :func:`ensure_multilabel`
caches a dataset under ``fashionlab.config.data_dir() / "synth"``; :func:`fashionlab.datasets.read_asen_split`
reads its ASEN files.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..taxonomy import AttributeSchema
from . import patterns as P
from .cli import SynthCommand, main as cli_main, option
from .garments import CATEGORIES, CATEGORY_FASTENINGS, PRESETS, GarmentSpec, RenderConfig, render, sample_garment
from .geometry import LENGTHS
from .shop import LENGTH_DIMENSION, fastening_visible
from .writer import (Preset, config_tag, ensure, generate, load_ground_truth, resolve_render_config, write_json,
                     write_lines, write_list_file)

__all__ = [
    "VERSION", "SPLITS", "ASEN_SPLITS", "GROUPS", "GROUP_TYPES", "DEEPFASHION_TYPES", "FACETS",
    "PATTERN_CLASSES", "COLOUR_FAMILIES", "LENGTH_CLASSES", "SLEEVE_CLASSES", "SILHOUETTE_CLASSES", "NECK_CLASSES",
    "FASTENING_CLASSES", "CLASS_GROUP", "CLASS_FACET", "ATTR_CLOTH", "CLASS_NAMES", "CATEGORY_CLOTH",
    "CATEGORY_FOLDER", "PATTERN_PERIOD", "SILHOUETTE_MIN_PIXELS", "MULTILABEL_SCHEMA", "MULTILABEL_CONFIG",
    "image_name", "second_colour", "sample_multilabel_garment", "multilabel_classes", "render_multilabel",
    "label_vector", "asen_value", "MultilabelPreset", "generate_multilabel", "ensure_multilabel",
    "load_multilabel_ground_truth", "COMMAND", "main_multilabel",
]

#: Generator version, written to synth.json and checked by :func:`ensure_multilabel`.
VERSION = "1.0"
#: The partition's splits (``list_eval_partition.txt``) and their ASEN names (``filenames_<name>.txt``).
SPLITS: tuple[str, ...] = ("train", "val", "test")
ASEN_SPLITS: dict[str, str] = {"train": "train", "val": "valid", "test": "test"}

#: The attribute groups, in ``meta.json`` order (ASEN attribute index = position).
GROUPS: tuple[str, ...] = ("texture", "shape", "part")
#: DeepFashion's type number of each group (list_attr_cloth's type column; docs/formats.md §5.3).
GROUP_TYPES: dict[str, int] = {"texture": 1, "shape": 3, "part": 4}
#: All five DeepFashion types (fabric and style have no class here).
DEEPFASHION_TYPES: dict[int, str] = {1: "texture", 2: "fabric", 3: "shape", 4: "part", 5: "style"}
#: The facets of each group.
FACETS: dict[str, tuple[str, ...]] = {"texture": ("pattern", "colour"), "shape": ("length", "sleeve", "silhouette"),
                                      "part": ("neck", "fastening")}

#: FashionSynth pattern -> texture class.
PATTERN_CLASSES: dict[str, str] = {"solid": "solid", "stripes": "striped", "checks": "checked", "dots": "dotted",
                                   "zigzag": "zigzag"}
#: Texture colour class -> the FashionSynth colours (:data:`~fashionlab.synth.patterns.COLOURS`) in it.
COLOUR_FAMILIES: dict[str, tuple[str, ...]] = {
    "red orange yellow": ("red", "orange", "yellow"),
    "pink purple": ("pink", "purple"),
    "green teal": ("green", "teal"),
    "blue navy": ("blue", "navy"),
    "brown beige": ("brown", "beige"),
    "black white grey": ("white", "grey", "black"),
}
#: Shape length classes with the upper end (exclusive) of their nominal hem heights (body units, y down).
LENGTH_CLASSES: dict[str, float] = {"hip-length": 3.0, "mini": 4.0, "knee-length": 4.8, "midi": 5.8,
                                    "maxi": math.inf}
#: Shape sleeve class -> FashionAI sleeve_length values.
SLEEVE_CLASSES: dict[str, tuple[int, ...]] = {"sleeveless": (1, 2), "short-sleeve": (3, 4),
                                              "long-sleeve": (5, 6, 7, 8)}
#: Shape silhouette class -> the flare range it takes (no class in between, nor where the flare does not show).
SILHOUETTE_CLASSES: dict[str, tuple[float, float]] = {"fitted": (0.0, 0.25), "flared": (0.75, 1.0)}
#: Part neck class -> (FashionAI neck-detail dimension, value) pairs.
NECK_CLASSES: dict[str, tuple[tuple[str, int], ...]] = {
    "v-neck": (("neckline_design", 2), ("neckline_design", 4), ("neckline_design", 8)),
    "round neck": (("neckline_design", 3), ("neckline_design", 5), ("neckline_design", 7), ("lapel_design", 2)),
    "bare shoulder": (("neckline_design", 1), ("neckline_design", 6), ("neckline_design", 9)),
    "pointed collar": (("collar_design", 1),),
    "round collar": (("collar_design", 2), ("collar_design", 3), ("collar_design", 4)),
    "lapels": (("lapel_design", 1), ("lapel_design", 3), ("lapel_design", 4)),
    "high neck": (("neck_design", 1), ("neck_design", 2), ("neck_design", 3)),
    "cowl neck": (("neck_design", 4),),
}
#: FashionSynth fastening style -> part class ("none" has no class).
FASTENING_CLASSES: dict[str, str] = {"buttons": "button", "zip": "zip", "double": "double-breasted"}

_FACET_CLASSES: dict[tuple[str, str], tuple[str, ...]] = {
    ("texture", "pattern"): tuple(PATTERN_CLASSES.values()),
    ("texture", "colour"): tuple(COLOUR_FAMILIES),
    ("shape", "length"): tuple(LENGTH_CLASSES),
    ("shape", "sleeve"): tuple(SLEEVE_CLASSES),
    ("shape", "silhouette"): tuple(SILHOUETTE_CLASSES),
    ("part", "neck"): tuple(NECK_CLASSES),
    ("part", "fastening"): tuple(FASTENING_CLASSES.values()),
}
#: Class name -> its group.
CLASS_GROUP: dict[str, str] = {c: g for (g, _), cs in _FACET_CLASSES.items() for c in cs}
#: Class name -> its facet.
CLASS_FACET: dict[str, str] = {c: f for (_, f), cs in _FACET_CLASSES.items() for c in cs}
#: ``list_attr_cloth.txt``: (class name, DeepFashion type) in file order (alphabetical, as the real file);
#: the line index is the class's global id.
ATTR_CLOTH: tuple[tuple[str, int], ...] = tuple((c, GROUP_TYPES[CLASS_GROUP[c]]) for c in sorted(CLASS_GROUP))
#: Class names in list_attr_cloth order.
CLASS_NAMES: tuple[str, ...] = tuple(c for c, _ in ATTR_CLOTH)
_GLOBAL_ID = {c: i for i, c in enumerate(CLASS_NAMES)}
#: ``list_category_cloth.txt``: (category name, DeepFashion type: 1 upper, 2 lower, 3 full) grouped by type as
#: in the real file; ``list_category_img`` holds the 1-based line.
CATEGORY_CLOTH: tuple[tuple[str, int], ...] = (("Top", 1), ("Coat", 1), ("Skirt", 2), ("Pants", 2), ("Dress", 3))
#: FashionSynth category -> its name in list_category_cloth and image folder (``img/<name>/``).
CATEGORY_FOLDER: dict[str, str] = {"top": "Top", "coat": "Coat", "skirt": "Skirt", "pants": "Pants", "dress": "Dress"}
_CATEGORY_LABEL = {c: [n for n, _ in CATEGORY_CLOTH].index(CATEGORY_FOLDER[c]) + 1 for c in CATEGORIES}

#: Pattern period range as a fraction of the image side (6-9 px at 64 px); see the module docstring.
PATTERN_PERIOD: tuple[float, float] = (6 / 64, 9 / 64)
_DRAWN_PERIOD = (0.24, 0.46)  # the period range sample_garment draws (body units)
#: Fewest differing pixels (at 64 px; scaled with the image area) between a garment's renders with flare 0.25 and
#: 0.75 for its silhouette class to count as visible.
SILHOUETTE_MIN_PIXELS = 24

#: The attribute schema (groups, class counts, class names in value-index order), as in an ASEN ``meta.json``.
MULTILABEL_SCHEMA = AttributeSchema(
    name="FashionSynth-MultiLabel", attributes=GROUPS,
    num_values=tuple(sum(1 for c in CLASS_NAMES if CLASS_GROUP[c] == g) for g in GROUPS),
    values={g: tuple(c for c in CLASS_NAMES if CLASS_GROUP[c] == g) for g in GROUPS})
_VALUE_INDEX = {c: MULTILABEL_SCHEMA.values[CLASS_GROUP[c]].index(c) for c in CLASS_NAMES}

#: The render config: the ``asen`` preset at 64 px (module docstring).
MULTILABEL_CONFIG = replace(PRESETS["asen"], image_size=64)

_JPEG_QUALITY = 95
_NAME_WIDTH = 71  # column where the real list files' second field starts (image names padded to it)
_ATTR_WIDTH = 29  # list_attr_cloth: attribute names padded to this width
_CATEGORY_WIDTH = 15  # list_category_cloth: category names padded to this width

_COLOUR_CLASS = {col: fam for fam, cols in COLOUR_FAMILIES.items() for col in cols}
_NECK_CLASS = {fv: c for c, fvs in NECK_CLASSES.items() for fv in fvs}
_SLEEVE_CLASS = {v: c for c, vs in SLEEVE_CLASSES.items() for v in vs}
assert set(_COLOUR_CLASS) == set(P.COLOUR_NAMES) and set(PATTERN_CLASSES) == set(P.PATTERNS)
assert len(CLASS_GROUP) == sum(len(cs) for cs in _FACET_CLASSES.values())  # class names are unique


def _length_class(dimension: str, value: int) -> str:
    y = LENGTHS[dimension][value]
    return next(c for c, hi in LENGTH_CLASSES.items() if y < hi)


# ------------------------------------------------------------------------------------------------ garments

def image_name(index: int, category: str) -> str:
    """The list-file name of image ``index`` (0-based global index) showing a ``category`` garment:
    ``img/<Category>/img_<index + 1, 8 digits>.jpg``."""
    if category not in CATEGORY_FOLDER:
        raise ValueError(f"unknown category {category!r}; expected one of {list(CATEGORIES)}")
    return f"img/{CATEGORY_FOLDER[category]}/img_{index + 1:08d}.jpg"


def second_colour(colour: str) -> str:
    """The second fabric colour of a patterned garment whose main colour is ``colour``: ``"white"`` when the main
    colour's luminance (0.299 R + 0.587 G + 0.114 B) is below 150, else ``"black"`` (module docstring)."""
    if colour not in P.COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {list(P.COLOURS)}")
    r, g, b = P.COLOURS[colour]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 150 else "black"


@lru_cache(maxsize=64)
def _pixels_per_unit(category: str, config: RenderConfig) -> float:
    """Pixels per body unit of a ``category`` garment in ``config`` (upright; the renderer's layout scale)."""
    spec = sample_garment(np.random.default_rng(0), category=category)
    cfg = replace(config, max_rotation=0.0, clutter=0, noise_sigma=0.0, scale=(config.scale[0], config.scale[0]))
    return float(render(spec, cfg, np.random.default_rng(0))[1]["scale"]) * config.image_size


def sample_multilabel_garment(rng, config: RenderConfig | None = None) -> GarmentSpec:
    """A random garment for the multilabel dataset (module docstring).

    :func:`~fashionlab.synth.garments.sample_garment`'s garment (category, FashionAI values, cut, colour,
    pattern) with an explicit fastening, uniform over the category's styles (None for lower-body garments), the
    second fabric colour set to :func:`second_colour` of the main one, and the pattern period rescaled to
    :data:`PATTERN_PERIOD` of the image side of ``config`` (default :data:`MULTILABEL_CONFIG`), keeping its rank
    within the drawn range, its phase and orientation.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    cfg = config or MULTILABEL_CONFIG
    spec = sample_garment(rng)
    styles = CATEGORY_FASTENINGS.get(spec.category)
    fastening = styles[int(rng.integers(len(styles)))] if styles else None
    period, px, py, orient = spec.pattern_params
    t = min(max((period - _DRAWN_PERIOD[0]) / (_DRAWN_PERIOD[1] - _DRAWN_PERIOD[0]), 0.0), 1.0)
    frac = PATTERN_PERIOD[0] + t * (PATTERN_PERIOD[1] - PATTERN_PERIOD[0])
    new_period = frac * cfg.image_size / _pixels_per_unit(spec.category, cfg)
    return replace(spec, fastening=fastening, colour2=second_colour(spec.colour),
                   pattern_params=(float(new_period), px, py, orient))


def _silhouette_visible(spec: GarmentSpec, config: RenderConfig, seed) -> bool:
    """Whether ``spec``'s renders with flare at the two class boundaries differ in enough pixels (same scene)."""
    lo, hi = SILHOUETTE_CLASSES["fitted"][1], SILHOUETTE_CLASSES["flared"][0]
    a = render(replace(spec, flare=lo), config, np.random.default_rng(seed))[0]
    b = render(replace(spec, flare=hi), config, np.random.default_rng(seed))[0]
    thr = max(1, round(SILHOUETTE_MIN_PIXELS * (config.image_size / 64) ** 2))
    return int((a != b).any(axis=2).sum()) >= thr


def multilabel_classes(spec: GarmentSpec, gt: dict, fastening_shown: bool | None,
                       silhouette_shown: bool | None) -> tuple[dict[str, list[str]], dict[str, list[int]]]:
    """The positive classes of ``spec`` and their region boxes, from the renderer's ground truth ``gt``.

    ``fastening_shown`` and ``silhouette_shown`` say whether the picture shows the fastening and the flare
    (see :func:`render_multilabel`, which computes them). Returns ``({group: [class names in global id order]},
    {class name: [x1, y1, x2, y2]})``; every group is a key (an empty list where the image has no class of it).
    A class whose region is empty in the picture (never seen in practice) is left out.
    """
    found: list[tuple[str, list[int] | None]] = []
    box = gt["garment_box"]
    found.append((PATTERN_CLASSES[spec.pattern], box))
    found.append((_COLOUR_CLASS[spec.colour], box))
    dim = LENGTH_DIMENSION[spec.category]
    found.append((_length_class(dim, spec.value(dim)), gt["regions"][dim]))
    sl = spec.value("sleeve_length")
    if sl:
        found.append((_SLEEVE_CLASS[sl], gt["regions"]["sleeve_length"]))
    if silhouette_shown:
        if spec.flare < SILHOUETTE_CLASSES["fitted"][1]:
            found.append(("fitted", box))
        elif spec.flare > SILHOUETTE_CLASSES["flared"][0]:
            found.append(("flared", box))
    fam = spec.neck_family
    if fam is not None:
        found.append((_NECK_CLASS[(fam, spec.value(fam))], gt["regions"][fam]))
    style = spec.fastening_style
    if style in FASTENING_CLASSES and fastening_shown:
        found.append((FASTENING_CLASSES[style], gt["regions"].get("fastening")))
    classes: dict[str, list[str]] = {g: [] for g in GROUPS}
    regions: dict[str, list[int]] = {}
    for name, region in sorted(found, key=lambda cr: _GLOBAL_ID[cr[0]]):
        if region is None:
            continue
        classes[CLASS_GROUP[name]].append(name)
        regions[name] = [int(v) for v in region]
    return classes, regions


def render_multilabel(spec: GarmentSpec, config: RenderConfig | None = None, rng=0):
    """Render ``spec`` for the multilabel dataset. Returns ``(image, ground_truth)``.

    ``image`` is the renderer's uint8 ``(S, S, 3)`` picture with ``config`` (default :data:`MULTILABEL_CONFIG`);
    a spec whose ``fastening`` is None gets its category's default style made explicit. ``ground_truth`` is the
    renderer's dict plus ``classes``, ``class_regions`` (:func:`multilabel_classes`), ``fastening_visible``,
    ``silhouette_visible`` (checked only when the flare lies in a silhouette class; None otherwise), ``flare``
    and ``pattern_period_px``. ``rng`` must be a seed (an int or a sequence of ints): the visibility checks render
    the same scene again.
    """
    if isinstance(rng, np.random.Generator):
        raise TypeError("render_multilabel needs a seed (int or sequence of ints), not a Generator: the "
                        "fastening and silhouette checks re-render the same scene")
    cfg = config or MULTILABEL_CONFIG
    if spec.fastening is None and spec.fastening_style is not None:
        spec = replace(spec, fastening=spec.fastening_style)
    img, gt = render(spec, cfg, np.random.default_rng(rng))
    shown_f = fastening_visible(spec, cfg, img, rng)
    in_class = spec.flare < SILHOUETTE_CLASSES["fitted"][1] or spec.flare > SILHOUETTE_CLASSES["flared"][0]
    shown_s = _silhouette_visible(spec, cfg, rng) if in_class else None
    classes, regions = multilabel_classes(spec, gt, shown_f, shown_s)
    gt["fastening_visible"] = shown_f
    gt["silhouette_visible"] = shown_s
    gt["flare"] = round(float(spec.flare), 5)
    gt["pattern_period_px"] = round(float(spec.pattern_params[0]) * float(gt["scale"]) * cfg.image_size, 3)
    gt["classes"] = classes
    gt["class_regions"] = regions
    return img, gt


def label_vector(classes) -> np.ndarray:
    """The ``list_attr_img`` row of an image: int8 ``(len(CLASS_NAMES),)`` with 1 for its positive classes and -1
    elsewhere, in list_attr_cloth order. ``classes`` is ``{group: [names]}`` or an iterable of class names."""
    names = [c for cs in classes.values() for c in cs] if isinstance(classes, dict) else list(classes)
    out = -np.ones(len(CLASS_NAMES), dtype=np.int8)
    for c in names:
        if c not in _GLOBAL_ID:
            raise KeyError(f"unknown class {c!r}; expected one of {list(CLASS_NAMES)}")
        out[_GLOBAL_ID[c]] = 1
    return out


def asen_value(name: str) -> tuple[int, int]:
    """``(attribute index, value index)`` of class ``name`` in the ASEN files (value = rank of its global id
    among the global ids of its group)."""
    if name not in _GLOBAL_ID:
        raise KeyError(f"unknown class {name!r}; expected one of {list(CLASS_NAMES)}")
    return GROUPS.index(CLASS_GROUP[name]), _VALUE_INDEX[name]


# ------------------------------------------------------------------------------------------------ generator

def _plan(num_images: int, seed: int, split, query_fraction: float) -> list[dict]:
    """Split, ASEN id and role of every global index (module docstring)."""
    if int(num_images) < 1:
        raise ValueError(f"num_images must be positive, got {num_images}")
    split = tuple(float(s) for s in split)
    if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1.0) > 1e-6:
        raise ValueError(f"split must be three non-negative fractions (train, val, test) summing to 1, got {split}")
    if not 0 < query_fraction < 1:
        raise ValueError(f"query_fraction must lie in (0, 1), got {query_fraction}")
    n = int(num_images)
    n_val, n_test = int(round(split[1] * n)), int(round(split[2] * n))
    if n - n_val - n_test < 1:
        raise ValueError(f"with {n} images and split {split} no image is left for training")
    sizes = {"train": n - n_val - n_test, "val": n_val, "test": n_test}
    perm = np.random.default_rng([seed, 0x5EED]).permutation(n)
    split_of = np.empty(n, dtype=object)
    start = 0
    for s in SPLITS:
        split_of[perm[start:start + sizes[s]]] = s
        start += sizes[s]
    plan = [{"index": i, "split": str(split_of[i]), "asen_split": ASEN_SPLITS[str(split_of[i])]} for i in range(n)]
    for si, s in enumerate(SPLITS):
        members = [p for p in plan if p["split"] == s]
        if s == "train":
            for j, p in enumerate(members):
                p["role"], p["asen_id"] = "train", j
            continue
        m = len(members)
        n_q = min(m - 1, max(1, int(round(query_fraction * m)))) if m >= 2 else 0
        queries = set(np.random.default_rng([seed, 0x0E7A, si]).choice(m, n_q, replace=False).tolist())
        cands = [p for j, p in enumerate(members) if j not in queries]
        qs = [p for j, p in enumerate(members) if j in queries]
        for j, p in enumerate(cands):  # candidates first, then queries (ASEN's DeepFashion files)
            p["role"], p["asen_id"] = "candidate", j
        for j, p in enumerate(qs, start=len(cands)):
            p["role"], p["asen_id"] = "query", j
    return plan


@dataclass
class MultilabelPreset(Preset):
    """The multilabel preset (paper 05's DeepFashion stand-in; docs/formats.md §5.3, §5.1) for
    :mod:`fashionlab.synth.writer`: ``seed``, the render ``config``, the train/val/test fractions ``split`` and the
    ``query_fraction`` of val and test (module docstring)."""

    name = "multilabel"
    version = VERSION
    label = "FashionSynth multilabel"
    own_files = tuple(f"Anno/{f}.txt" for f in ("list_attr_cloth", "list_attr_img", "list_category_cloth",
                                                "list_category_img", "list_bbox")) + (
        "Eval/list_eval_partition.txt", "filenames_train.txt", "filenames_valid.txt", "filenames_test.txt",
        "label_train.txt", "label_valid.txt", "label_test.txt", "query_valid.txt", "candidate_valid.txt",
        "query_test.txt", "candidate_test.txt", "meta.json")
    image_globs = ("img/*/img_*.jpg",)
    folders = tuple(f"img/{folder}" for folder in CATEGORY_FOLDER.values()) + ("Anno", "Eval")

    seed: int
    config: RenderConfig
    split: tuple = (0.8, 0.1, 0.1)
    query_fraction: float = 0.2

    def plan(self, num: int) -> list[dict]:
        """Split, ASEN id and role of every global index (module docstring)."""
        return _plan(num, self.seed, self.split, self.query_fraction)

    def render_one(self, item: dict, out: Path | None) -> tuple[dict, float]:
        """The garment (generator ``[seed, index]``), its picture and visibility checks (``[seed, index, 1]``) and
        the ASEN labels picked for it (``[seed, index, 3]``)."""
        seed, index = self.seed, item["index"]
        t0 = time.perf_counter()
        spec = sample_multilabel_garment(np.random.default_rng([seed, index]), self.config)
        img, gt = render_multilabel(spec, self.config, [seed, index, 1])
        dt = time.perf_counter() - t0
        # ASEN labels: one class per group with positives (label_train), or one group and one class (query/candidate)
        pick = np.random.default_rng([seed, index, 3])
        groups = [g for g in GROUPS if gt["classes"][g]]
        per_group = {g: gt["classes"][g][int(pick.integers(len(gt["classes"][g])))] for g in groups}
        one = per_group[groups[int(pick.integers(len(groups)))]]
        chosen = list(per_group.values()) if item["role"] == "train" else [one]
        name = image_name(index, spec.category)
        if out is not None:
            Image.fromarray(img).save(out / name, quality=_JPEG_QUALITY)
        record = {"index": index, "name": name, "split": item["split"], "asen_split": item["asen_split"],
                  "asen_id": item["asen_id"], "role": item["role"],
                  "asen_labels": [list(asen_value(c)) for c in chosen],
                  "category_label": _CATEGORY_LABEL[spec.category],
                  "classes": gt.pop("classes"), "class_regions": gt.pop("class_regions")}
        record.update(gt)
        return record, dt

    def write_splits(self, out: Path, records: list[dict]) -> tuple[dict, dict]:
        """DeepFashion's list files (global index order) and ASEN's DeepFashion split files."""
        # --- DeepFashion list files (docs/formats.md §5.3), global index order
        write_lines(out / "Anno" / "list_attr_cloth.txt",
                    [str(len(ATTR_CLOTH)), "attribute_name  attribute_type"] +
                    [n.ljust(max(_ATTR_WIDTH, len(n) + 2)) + str(t) for n, t in ATTR_CLOTH])
        _list_file(out / "Anno" / "list_attr_img.txt", "image_name  attribute_labels",
                   ((r["name"], " ".join(f"{v:2d}" for v in label_vector(r["classes"]).tolist())) for r in records))
        write_lines(out / "Anno" / "list_category_cloth.txt",
                    [str(len(CATEGORY_CLOTH)), "category_name  category_type"] +
                    [n.ljust(max(_CATEGORY_WIDTH, len(n) + 2)) + str(t) for n, t in CATEGORY_CLOTH])
        _list_file(out / "Anno" / "list_category_img.txt", "image_name  category_label",
                   ((r["name"], str(r["category_label"])) for r in records))
        _list_file(out / "Anno" / "list_bbox.txt", "image_name  x_1  y_1  x_2  y_2",
                   ((r["name"], _box_field(r["garment_box"])) for r in records))
        _list_file(out / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status",
                   ((r["name"], r["split"]) for r in records))

        # --- ASEN split files (docs/formats.md §5.1, DeepFashion variant)
        by_split = {s: sorted((r for r in records if r["split"] == s), key=lambda r: r["asen_id"]) for s in SPLITS}
        for s in SPLITS:
            write_lines(out / f"filenames_{ASEN_SPLITS[s]}.txt", (r["name"] for r in by_split[s]))
        write_lines(out / "label_train.txt", (" ".join([str(r["asen_id"])] + [f"{a} {v}" for a, v in r["asen_labels"]])
                                              for r in by_split["train"]))
        n_q, n_c = {}, {}
        for s in SPLITS[1:]:
            a = ASEN_SPLITS[s]
            for role, counter in (("query", n_q), ("candidate", n_c)):
                rows = [r for r in by_split[s] if r["role"] == role]
                write_lines(out / f"{role}_{a}.txt",
                            (f"{r['asen_id']} {r['asen_labels'][0][0]} {r['asen_labels'][0][1]}" for r in rows))
                counter[a] = len(rows)
            _write_deepfashion_labels(out / f"label_{a}.txt", by_split[s])
        meta = MULTILABEL_SCHEMA.to_meta()
        meta["DEEPFASHION_TYPES"] = dict(GROUP_TYPES)
        write_json(out / "meta.json", meta)

        # --- statistics
        n = len(records)
        per_group = {g: np.array([len(r["classes"][g]) for r in records]) for g in GROUPS}
        mean_classes = {g: round(float(per_group[g].mean()), 4) for g in GROUPS}
        multi = {g: round(float((per_group[g] >= 2).mean()), 4) for g in GROUPS}
        counts = _class_counts(records)
        synth = {
            "seed": int(self.seed),
            "num_images": n,
            "image_size": self.config.image_size,
            "config": self.config.to_dict(),
            "split_fractions": [float(s) for s in self.split],
            "query_fraction": self.query_fraction,
            "splits": {s: len(by_split[s]) for s in SPLITS},
            "asen_splits": {ASEN_SPLITS[s]: len(by_split[s]) for s in SPLITS},
            "queries": n_q,
            "candidates": n_c,
            "groups": {g: {"type": GROUP_TYPES[g], "facets": list(FACETS[g]),
                           "classes": list(MULTILABEL_SCHEMA.values[g])} for g in GROUPS},
            "class_counts": counts,
            "class_counts_by_split": {s: _class_counts(by_split[s]) for s in SPLITS},
            "mean_classes_per_image": mean_classes,
            "share_multi_class": multi,
            "files": {
                "images": "img/<Category>/img_<index + 1, 8 digits>.jpg",
                "deepfashion": ["Anno/list_attr_cloth.txt", "Anno/list_attr_img.txt", "Anno/list_category_cloth.txt",
                                "Anno/list_category_img.txt", "Anno/list_bbox.txt", "Eval/list_eval_partition.txt"],
                "asen": ["filenames_train.txt", "filenames_valid.txt", "filenames_test.txt", "label_train.txt",
                         "query_valid.txt", "candidate_valid.txt", "query_test.txt", "candidate_test.txt",
                         "label_valid.txt", "label_test.txt", "meta.json"],
                "ground_truth": "ground_truth.jsonl",
            },
        }
        return synth, {"queries": n_q, "candidates": n_c, "class_counts": counts, "mean_classes": mean_classes,
                       "multi_class_share": multi}

    def summary(self, stats: dict, where: str) -> str:
        return (super().summary(stats, where) + "; classes per image: "
                + ", ".join(f"{g} {stats['mean_classes'][g]:.2f}" for g in GROUPS))

    def folder_name(self, num: int) -> str:
        """``multilabel-n<N>-s<seed>-px<P>``, plus ``-c<hash>`` for a config other than :data:`MULTILABEL_CONFIG`."""
        return (f"multilabel-n{num}-s{self.seed}-px{self.config.image_size}"
                f"{config_tag(self.config, MULTILABEL_CONFIG)}")


def _list_file(path: Path, header: str, rows) -> None:
    """A DeepFashion list file with the image names padded to column 71, as the real files (§5.3)."""
    write_list_file(path, header, rows, _NAME_WIDTH, 1)


def _box_field(box) -> str:
    return " ".join(f"{int(v):03d}" for v in box)


def _write_deepfashion_labels(path: Path, records: list[dict]) -> None:
    """``label_{valid,test}.txt``: tab-separated, CRLF, every line padded with tabs to the longest line."""
    rows = []
    for r in records:
        fields = [str(r["asen_id"])]
        for c in sorted((c for cs in r["classes"].values() for c in cs), key=_GLOBAL_ID.__getitem__):
            fields += [str(GROUP_TYPES[CLASS_GROUP[c]]), str(_GLOBAL_ID[c])]
        rows.append(fields)
    width = max((len(f) for f in rows), default=1)
    with open(path, "w", newline="", encoding="utf-8") as f:
        for fields in rows:
            f.write("\t".join(fields) + "\t" * (width - len(fields)) + "\r\n")


def _class_counts(records) -> dict[str, int]:
    counts = {c: 0 for c in CLASS_NAMES}
    for r in records:
        for cs in r["classes"].values():
            for c in cs:
                counts[c] += 1
    return counts


def generate_multilabel(out_dir, num_images: int, seed: int = 0, image_size: int | None = 64,
                        config: RenderConfig | str | None = None, progress: bool = True, workers: int = 1,
                        split=(0.8, 0.1, 0.1), query_fraction: float = 0.2) -> dict:
    """Render a FashionSynth multilabel dataset (paper 05's DeepFashion stand-in) into ``out_dir``.

    The classes, files and ground truth are described in the module docstring. ``config`` is a
    :class:`RenderConfig`, ``"multilabel"`` / None for :data:`MULTILABEL_CONFIG`, or a preset name;
    ``image_size`` (None: the config's) overrides its canvas size. ``split`` gives the train/val/test fractions
    of the partition (also the ASEN train/valid/test split); ``query_fraction`` of each of val and test are
    queries, the rest candidates. ``workers > 1`` renders in that many processes (same files). A previous
    multilabel dataset in ``out_dir`` is replaced (its own files only); a non-empty folder that is not one is
    refused (``FileExistsError``). Same seed and options give byte-identical files.

    Returns statistics (:func:`fashionlab.synth.writer.generate`): ``out_dir``, ``num_images``, ``image_size``,
    ``seed``, ``splits``, ``queries``, ``candidates``, ``class_counts``, ``mean_classes`` and
    ``multi_class_share`` (per group), ``seconds``, ``render_seconds``, ``images_per_second`` (rendering with the
    visibility checks, per core) and ``written_per_second`` (everything, wall clock).
    """
    preset = MultilabelPreset(seed, resolve_render_config(config, image_size, MULTILABEL_CONFIG, "multilabel"),
                              split, query_fraction)
    return generate(preset, out_dir, num_images, workers=workers, progress=progress)


def ensure_multilabel(num_images: int, seed: int = 0, image_size: int = 64, progress: bool = True, root=None,
                      config: RenderConfig | str | None = None, workers: int = 1) -> Path:
    """Path of a complete FashionSynth multilabel dataset, generating it first if needed.

    The dataset lives in ``<root>/multilabel-n<N>-s<seed>-px<P>`` (plus ``-c<hash>`` for a config other than
    :data:`MULTILABEL_CONFIG`), where ``root`` defaults to ``fashionlab.config.data_dir() / "synth"``. As
    :func:`~fashionlab.synth.fashionai.ensure_fashionai`: generated only when the completion marker
    (``.complete``, holding the generator version) is missing or from another version, into a temporary folder
    that is renamed when done.
    """
    preset = MultilabelPreset(seed, resolve_render_config(config, image_size, MULTILABEL_CONFIG, "multilabel"))
    return ensure(preset, num_images, root=root, workers=workers, progress=progress)


def load_multilabel_ground_truth(root, split: str | None = None) -> list[dict]:
    """The records of ``<root>/ground_truth.jsonl`` of a multilabel dataset: all, or those of one partition
    ``split`` ("train", "val" or "test"), in global index order (the order of the list files; sort by
    ``asen_id`` for the order of ``filenames_<asen_split>.txt``)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} (or None for all)")
    recs = load_ground_truth(root)
    return recs if split is None else [r for r in recs if r["split"] == split]


#: ``fashionlab synth multilabel`` (:mod:`fashionlab.synth.cli`; the common options are declared there).
COMMAND = SynthCommand(
    name="multilabel", generate=generate_multilabel,
    help="paper 05's multi-label dataset (DeepFashion stand-in); DeepFashion list files and ASEN split files",
    description="Render a FashionSynth multilabel dataset (paper 05's DeepFashion stand-in) in the DeepFashion "
                "list files and ASEN split files.",
    count=option("--num-images", type=int, required=True),
    image_size=64,
    report="wrote {num_images} images to {out} (rendering {images_per_second:.0f} images/s per core with the "
           "visibility checks; {written_per_second:.0f} images/s with encoding and writing)")


def main_multilabel(argv=None) -> int:
    """Command line: ``python -m fashionlab.synth.multilabel --out DIR --num-images N [--seed S]
    [--image-size PX]`` (the options of :data:`COMMAND`)."""
    return cli_main("multilabel", argv)


if __name__ == "__main__":
    sys.exit(main_multilabel())
