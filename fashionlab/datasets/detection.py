"""Readers for object detection annotations: COCO detection JSON and DeepFashion2's per-image JSON files
(docs/formats.md §5.4), for stage 1 of paper 06 (object type detection; paper 06 §4.1, Table 1).

Both readers return a :class:`DetectionDataset`: per image a file name, a size, and per object a box
``x1 y1 x2 y2`` (pixels, ``float32``) and an *object type* (paper 06's four low-granularity classes, or the COCO
categories of the file), optionally a garment *category* and multi-hot *attributes*. :func:`to_coco` writes a
dataset back as a COCO dict, so a DeepFashion2 folder can be evaluated with ``pycocotools`` and the two readers
can be checked against each other.

**COCO** (:func:`read_coco_detection`): ``images`` ``[{id, file_name, width, height}]``, ``annotations``
``[{id, image_id, category_id, bbox: [x, y, w, h], iscrowd}]`` and ``categories`` ``[{id, name}]``. The COCO
categories are the object types, in id order. FashionSynth adds optional keys, read when present:

* per annotation ``garment_category`` (a name) and ``attributes`` (a list of names);
* top level ``garment_categories`` ``[{id, name, object_type}]`` (``object_type``: a COCO category name or id)
  and ``attribute_names`` ``[{id, name, kind, applies_to}]`` (``applies_to``: a list of garment category names
  or ids, or object type names meaning all their categories, or ``"all"``; missing means all categories).

**DeepFashion2** (:func:`read_deepfashion2`, §5.4): one JSON file per image, ``<split>/annos/000001.json``, image
``<split>/image/000001.jpg``; image-level keys ``source`` and ``pair_id``; items ``item1`` ... ``itemN`` with
``category_name``, ``category_id`` (1 short sleeve top ... 13 sling dress), ``bounding_box`` ``[x1, y1, x2, y2]``
and ``style``, ``landmarks``, ``segmentation``, ``scale``, ``occlusion``, ``zoom_in``, ``viewpoint`` (ignored
here). The image id is the number in the file name. DeepFashion2 has **no attributes** (§5.4) and no object
types: the types come from paper 06's Table 1 re-mapping (:data:`DF2_OBJECT_TYPES`) unless an item carries
FashionSynth's ``object_type`` key; FashionSynth items may also carry ``attributes`` (a list of names).

Errors follow :mod:`~fashionlab.datasets.readers`: a missing file or image is a :class:`FileNotFoundError` that
names it; a malformed file is a :class:`~fashionlab.datasets.readers.DataFormatError` whose message starts with
the file and names the JSON key path (``annotations[12].bbox``, ``item3.category_name``) and what was expected.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .readers import DataFormatError, _check_file, show

__all__ = [
    "OBJECT_TYPES",
    "DF2_CATEGORIES",
    "DF2_OBJECT_TYPES",
    "DetectionDataset",
    "read_coco_detection",
    "read_deepfashion2",
    "to_coco",
]

#: Paper 06's object types (Table 1), the classes of its stage-1 detector.
OBJECT_TYPES = ("upper body", "lower body", "full body", "footwear")

#: The 13 DeepFashion2 categories in ``category_id`` order (id = position + 1; docs/formats.md §5.4).
DF2_CATEGORIES = (
    "short sleeve top", "long sleeve top", "short sleeve outwear", "long sleeve outwear", "vest", "sling",
    "shorts", "trousers", "skirt", "short sleeve dress", "long sleeve dress", "vest dress", "sling dress",
)

#: Paper 06's Table 1: DeepFashion2 category name -> object type (DF2 has no footwear).
DF2_OBJECT_TYPES = {
    **{c: "upper body" for c in DF2_CATEGORIES[:6]},
    **{c: "lower body" for c in DF2_CATEGORIES[6:9]},
    **{c: "full body" for c in DF2_CATEGORIES[9:]},
}

_ITEM_KEY = re.compile(r"item([0-9]+)\Z")  # ASCII digits only
_INSTANCES = re.compile(r"instances_(.+)\.json\Z")


# ----------------------------------------------------------------------------------------------------------------
# the dataset


@dataclass(repr=False)
class DetectionDataset:
    """Detection annotations of a set of images: boxes with object types, optionally categories and attributes.

    Attributes
    ----------
    files: image file names, relative to ``image_root`` (``image_path(i)``).
    image_root: the folder of the images.
    image_ids: ``int64 (N,)`` ids of the images (COCO ``images[].id``; DeepFashion2: the number in the file name).
    sizes: ``int64 (N, 2)`` width, height in pixels.
    boxes: per image a ``float32 (k, 4)`` array ``x1, y1, x2, y2`` (pixels; COCO ``[x, y, w, h]`` converted).
    object_types: per image an ``int64 (k,)`` array of 0-based indices into ``type_names``.
    categories: per image an ``int64 (k,)`` array of 0-based indices into ``category_names``; ``None`` when the
        source has no garment categories.
    attributes: per image a ``uint8 (k, A)`` multi-hot array over ``attribute_names``; ``None`` when the source
        has no attributes.
    type_names, category_names, attribute_names: the vocabularies (tuples; the last two ``None`` when absent).
    source: the file (COCO) or folder (DeepFashion2) that was read.
    category_types: ``int64 (C,)`` object-type index of each category (``-1`` where unknown); ``None`` without
        categories.
    applicable: ``bool (C, A)``: which attributes apply to which category (COCO ``attribute_names[].applies_to``);
        ``None`` when the source does not say.
    attribute_kinds: ``attribute_names[].kind`` of each attribute (``None`` entries where not given); ``None``
        without attributes or when no attribute has a kind.
    """

    files: list[str]
    image_root: Path
    image_ids: np.ndarray
    sizes: np.ndarray
    boxes: list[np.ndarray]
    object_types: list[np.ndarray]
    categories: list[np.ndarray] | None = None
    attributes: list[np.ndarray] | None = None
    type_names: tuple[str, ...] = OBJECT_TYPES
    category_names: tuple[str, ...] | None = None
    attribute_names: tuple[str, ...] | None = None
    source: Path | None = None
    category_types: np.ndarray | None = None
    applicable: np.ndarray | None = None
    attribute_kinds: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.files)
        per_image = {"image_ids": self.image_ids, "sizes": self.sizes, "boxes": self.boxes,
                     "object_types": self.object_types, "categories": self.categories, "attributes": self.attributes}
        for name, value in per_image.items():
            if value is not None and len(value) != n:
                raise ValueError(f"DetectionDataset: {name} has {len(value)} entries for {n} images")

    def __len__(self) -> int:
        return len(self.files)

    def image_path(self, i: int) -> Path:
        """The path of image ``i``: ``image_root / files[i]``."""
        return Path(self.image_root) / self.files[i]

    @property
    def num_objects(self) -> int:
        """The number of objects (boxes) over all images."""
        return int(sum(len(b) for b in self.boxes))

    def subset(self, indices) -> "DetectionDataset":
        """The images at ``indices`` (integer indices in any order, or a boolean mask of length ``len(self)``),
        with their objects; vocabularies and the other dataset-level fields are shared."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask of shape {idx.shape} for {len(self)} images")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"image index out of range for {len(self)} images")
        pick = (lambda xs: None if xs is None else [xs[int(i)] for i in idx])
        return replace(self, files=pick(self.files), image_ids=self.image_ids[idx], sizes=self.sizes[idx],
                       boxes=pick(self.boxes), object_types=pick(self.object_types),
                       categories=pick(self.categories), attributes=pick(self.attributes))

    def __repr__(self) -> str:
        from ..config import display_path  # no machine paths in notebook outputs

        counts = np.bincount(np.concatenate(self.object_types) if self.object_types else np.zeros(0, np.int64),
                             minlength=len(self.type_names))
        per_type = ", ".join(f"{n} {int(c)}" for n, c in zip(self.type_names, counts))
        extra = ""
        if self.category_names is not None:
            extra += f", {len(self.category_names)} categories"
        if self.attribute_names is not None:
            extra += f", {len(self.attribute_names)} attributes"
        src = display_path(self.source) if self.source is not None else None
        return (f"DetectionDataset({len(self)} images, {self.num_objects} objects ({per_type}){extra}, "
                f"source={src!r})")


# ----------------------------------------------------------------------------------------------------------------
# JSON helpers


def _load_json(path: Path, what: str):
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, f"{what} is not UTF-8 text ({e.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"{what} is not valid JSON: {e.msg} (column {e.colno})") from None


def _kind(x) -> str:
    return "null" if x is None else type(x).__name__


def _get(path: Path, obj: Mapping, key: str, where: str, what: str):
    if key not in obj:
        raise DataFormatError(path, None, f"{where}: missing key {key!r}; expected {what}")
    return obj[key]


def _int(path: Path, value, where: str, what: str = "an integer") -> int:
    """A JSON integer (a whole-valued JSON number such as ``640.0`` is accepted; ``true``, strings such as ``"3"``,
    ``3.5``, NaN and values beyond 64 bits are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()) or not -2**63 <= value < 2**63:
        raise DataFormatError(path, None, f"{where}: {show(value)} ({_kind(value)}); expected {what} (a JSON integer "
                                          f"that fits 64 bits)")
    return int(value)


def _str(path: Path, value, where: str, what: str = "a string") -> str:
    if not isinstance(value, str) or not value:
        raise DataFormatError(path, None, f"{where}: {show(value)} ({_kind(value)}); expected {what}")
    return value


def _list(path: Path, value, where: str, what: str) -> list:
    if not isinstance(value, list):
        raise DataFormatError(path, None, f"{where}: {_kind(value)} {_short(value)}; expected {what}")
    return value


def _dict(path: Path, value, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise DataFormatError(path, None, f"{where}: {_kind(value)} {_short(value)}; expected {what}")
    return value


def _short(value, n: int = 60) -> str:
    s = repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def _box(path: Path, value, where: str, width: int, height: int, coco: bool) -> list[float]:
    """Check a box and return it as ``x1, y1, x2, y2``; ``coco``: the value is ``[x, y, w, h]``."""
    layout = "[x, y, width, height]" if coco else "[x1, y1, x2, y2]"
    if (not isinstance(value, list) or len(value) != 4
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value)):
        raise DataFormatError(path, None, f"{where}: {_short(value)}; expected a box {layout} of 4 finite numbers")
    if coco:
        x, y, w, h = value
        x1, y1, x2, y2 = x, y, x + w, y + h
    else:
        x1, y1, x2, y2 = value
        w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise DataFormatError(path, None, f"{where}: box {value} has width {w:g} and height {h:g}; expected both > 0 "
                                          f"(box layout {layout})")
    if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
        raise DataFormatError(path, None, f"{where}: box {value} (x1, y1, x2, y2 = {x1:g}, {y1:g}, {x2:g}, {y2:g}) "
                                          f"lies outside the {width}x{height} image by more than a pixel; expected "
                                          f"-1 <= x1, -1 <= y1, x2 <= width + 1, y2 <= height + 1")
    return [x1, y1, x2, y2]


def _unique(path: Path, values: Sequence, where: str, key: str, what: str) -> dict:
    """Map each value to its position; a repeated value is an error naming ``where[i].key``."""
    seen: dict = {}
    for i, v in enumerate(values):
        if v in seen:
            raise DataFormatError(path, None, f"{where}[{i}].{key}: {what} {show(v)} repeated (first at {where}"
                                              f"[{seen[v]}]); expected each {what} once")
        seen[v] = i
    return seen


def _pack(boxes: list[list[float]], types: list[int], cats: list[int] | None, attrs: list[list[int]] | None,
          num_attributes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    t = np.asarray(types, dtype=np.int64)
    c = None if cats is None else np.asarray(cats, dtype=np.int64)
    a = None
    if attrs is not None:
        a = np.zeros((len(attrs), num_attributes), dtype=np.uint8)
        for k, cols in enumerate(attrs):
            a[k, cols] = 1
    return b, t, c, a


# ----------------------------------------------------------------------------------------------------------------
# COCO


def _coco_image_root(json_path: Path) -> Path:
    m = _INSTANCES.match(json_path.name)
    if m:
        cand = json_path.parent.parent / m.group(1) / "image"
        if cand.is_dir():
            return cand
    return json_path.parent


def read_coco_detection(json_path, image_root=None) -> DetectionDataset:
    """Read a COCO detection JSON (``images`` / ``annotations`` / ``categories``) with FashionSynth's optional
    garment categories and attributes (module docstring; DeepFashion2's COCO conversion, docs/formats.md §5.4).

    The COCO categories are the object types (``type_names``, in id order; index = rank of the id). ``bbox``
    ``[x, y, w, h]`` becomes ``x1, y1, x2, y2 = x, y, x + w, y + h``. Images keep the file's order and those
    without annotations are kept (empty arrays); objects keep the file's order within an image.

    Extensions, read when present: per annotation ``garment_category`` (a name of the top-level
    ``garment_categories``; then every annotation must have one, and its ``object_type`` must be the
    annotation's ``category_id``) and ``attributes`` (names of the top-level ``attribute_names``; a missing key
    means none); top level ``garment_categories`` ``[{id, name, object_type}]`` (sets ``category_types``) and
    ``attribute_names`` ``[{id, name, kind, applies_to}]`` (sets ``applicable`` when some entry has
    ``applies_to`` and there are garment categories; an annotation may not carry an attribute that does not apply
    to its garment category). Vocabularies are in id order.

    ``image_root`` defaults to ``<json folder>/../<split>/image`` for a file named ``instances_<split>.json`` when
    that folder exists (FashionSynth's layout), else the JSON's folder.

    Errors: :class:`FileNotFoundError` for a missing file; :class:`DataFormatError` naming the file and key path
    (``annotations[12].bbox``) for missing keys, duplicate image / category ids, an unknown ``image_id``,
    ``category_id``, garment category or attribute name, a box with non-positive width or height or outside its
    image by more than a pixel, and ``iscrowd`` = 1 (crowd regions are not supported).
    """
    path = _check_file(Path(json_path), "COCO detection JSON")
    data = _dict(path, _load_json(path, "COCO detection JSON"), "top level",
                 "an object with keys 'images', 'annotations', 'categories'")
    top = "top level"
    images = _list(path, _get(path, data, "images", top, "a list of {id, file_name, width, height}"), "images",
                   "a list of {id, file_name, width, height}")
    anns = _list(path, _get(path, data, "annotations", top, "a list of {image_id, category_id, bbox}"),
                 "annotations", "a list of {image_id, category_id, bbox}")
    cats = _list(path, _get(path, data, "categories", top, "a list of {id, name}"), "categories",
                 "a list of {id, name}")

    # images
    ids, files, sizes = [], [], []
    for i, im in enumerate(images):
        w = f"images[{i}]"
        im = _dict(path, im, w, "an object {id, file_name, width, height}")
        ids.append(_int(path, _get(path, im, "id", w, "the image id"), f"{w}.id"))
        files.append(_str(path, _get(path, im, "file_name", w, "the image file name"), f"{w}.file_name",
                          "a file name (relative to the image folder)"))
        size = []
        for key in ("width", "height"):
            v = _int(path, _get(path, im, key, w, f"the image {key} in pixels"), f"{w}.{key}", "a positive integer")
            if v <= 0:
                raise DataFormatError(path, None, f"{w}.{key}: {v}; expected a positive integer (pixels)")
            size.append(v)
        sizes.append(size)
    image_index = _unique(path, ids, "images", "id", "image id")

    # object types = COCO categories, in id order
    cat_ids, cat_names = [], []
    for j, c in enumerate(cats):
        w = f"categories[{j}]"
        c = _dict(path, c, w, "an object {id, name}")
        cat_ids.append(_int(path, _get(path, c, "id", w, "the category id"), f"{w}.id"))
        cat_names.append(_str(path, _get(path, c, "name", w, "the category name"), f"{w}.name"))
    _unique(path, cat_ids, "categories", "id", "category id")
    _unique(path, cat_names, "categories", "name", "category name")
    order = sorted(range(len(cat_ids)), key=lambda j: cat_ids[j])
    type_names = tuple(cat_names[j] for j in order)
    type_of_id = {cat_ids[j]: r for r, j in enumerate(order)}
    type_of_name = {cat_names[j]: r for r, j in enumerate(order)}

    # garment categories (extension)
    category_names = category_types = None
    gindex: dict[str, int] = {}
    if "garment_categories" in data:
        gcs = _list(path, data["garment_categories"], "garment_categories", "a list of {id, name, object_type}")
        g_ids, g_names, g_types = [], [], []
        for j, g in enumerate(gcs):
            w = f"garment_categories[{j}]"
            g = _dict(path, g, w, "an object {id, name, object_type}")
            g_ids.append(_int(path, _get(path, g, "id", w, "the garment category id"), f"{w}.id"))
            g_names.append(_str(path, _get(path, g, "name", w, "the garment category name"), f"{w}.name"))
            t = g.get("object_type")
            if t is None:
                g_types.append(-1)
            elif isinstance(t, str) and t in type_of_name:
                g_types.append(type_of_name[t])
            elif not isinstance(t, (str, bool)) and isinstance(t, int) and t in type_of_id:
                g_types.append(type_of_id[t])
            else:
                raise DataFormatError(path, None, f"{w}.object_type: unknown object type {show(t)}; expected a name or id "
                                                  f"of 'categories' ({', '.join(type_names)})")
        _unique(path, g_ids, "garment_categories", "id", "garment category id")
        _unique(path, g_names, "garment_categories", "name", "garment category name")
        gorder = sorted(range(len(g_ids)), key=lambda j: g_ids[j])
        category_names = tuple(g_names[j] for j in gorder)
        category_types = np.asarray([g_types[j] for j in gorder], dtype=np.int64)
        gindex = {n: r for r, n in enumerate(category_names)}
        gindex_by_id = {g_ids[j]: r for r, j in enumerate(gorder)}

    # attribute names (extension)
    attribute_names = attribute_kinds = applicable = None
    aindex: dict[str, int] = {}
    if "attribute_names" in data:
        ans = _list(path, data["attribute_names"], "attribute_names", "a list of {id, name, kind, applies_to}")
        a_ids, a_names, a_kinds, a_applies = [], [], [], []
        for j, a in enumerate(ans):
            w = f"attribute_names[{j}]"
            a = _dict(path, a, w, "an object {id, name, kind, applies_to}")
            a_ids.append(_int(path, _get(path, a, "id", w, "the attribute id"), f"{w}.id"))
            a_names.append(_str(path, _get(path, a, "name", w, "the attribute name"), f"{w}.name"))
            kind = a.get("kind")
            if kind is not None:
                _str(path, kind, f"{w}.kind")
            a_kinds.append(kind)
            a_applies.append((a.get("applies_to"), f"{w}.applies_to"))
        _unique(path, a_ids, "attribute_names", "id", "attribute id")
        _unique(path, a_names, "attribute_names", "name", "attribute name")
        aorder = sorted(range(len(a_ids)), key=lambda j: a_ids[j])
        attribute_names = tuple(a_names[j] for j in aorder)
        attribute_kinds = tuple(a_kinds[j] for j in aorder) if any(k is not None for k in a_kinds) else None
        aindex = {n: r for r, n in enumerate(attribute_names)}
        if category_names is not None and any(spec is not None for spec, _ in a_applies):
            applicable = np.zeros((len(category_names), len(attribute_names)), dtype=bool)
            for r, j in enumerate(aorder):
                spec, w = a_applies[j]
                applicable[:, r] = _applies_to(path, spec, w, category_names, category_types, type_names,
                                               gindex, gindex_by_id)

    # annotations
    n = len(ids)
    per_boxes: list[list[list[float]]] = [[] for _ in range(n)]
    per_types: list[list[int]] = [[] for _ in range(n)]
    per_cats: list[list[int]] | None = [[] for _ in range(n)] if category_names is not None else None
    per_attrs: list[list[list[int]]] | None = [[] for _ in range(n)] if attribute_names is not None else None
    for k, a in enumerate(anns):
        w = f"annotations[{k}]"
        a = _dict(path, a, w, "an object {image_id, category_id, bbox}")
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, False):
            raise DataFormatError(path, None, f"{w}.iscrowd: {show(crowd)}; crowd annotations (iscrowd = 1, RLE "
                                              f"regions) are not supported; expected 0 or no key")
        image_id = _int(path, _get(path, a, "image_id", w, "the id of an image in 'images'"), f"{w}.image_id")
        if image_id not in image_index:
            raise DataFormatError(path, None, f"{w}.image_id: unknown image id {image_id}; expected the id of an "
                                              f"image in 'images' ({n} images)")
        i = image_index[image_id]
        cid = _int(path, _get(path, a, "category_id", w, "the id of a category in 'categories'"), f"{w}.category_id")
        if cid not in type_of_id:
            raise DataFormatError(path, None, f"{w}.category_id: unknown category id {cid}; expected one of "
                                              f"{sorted(type_of_id)} ('categories')")
        box = _box(path, _get(path, a, "bbox", w, "a box [x, y, width, height]"), f"{w}.bbox", sizes[i][0],
                   sizes[i][1], coco=True)
        per_boxes[i].append(box)
        per_types[i].append(type_of_id[cid])
        if "garment_category" in a and category_names is None:
            raise DataFormatError(path, None, f"{w}.garment_category: the file has no top-level "
                                              f"'garment_categories'; expected that list to name the categories")
        if per_cats is not None:
            g = _str(path, _get(path, a, "garment_category", w, "a name of 'garment_categories'"),
                     f"{w}.garment_category", "a name of 'garment_categories'")
            if g not in gindex:
                raise DataFormatError(path, None, f"{w}.garment_category: unknown garment category {show(g)}; expected "
                                                  f"one of {list(category_names)}")
            t = int(category_types[gindex[g]])
            if t >= 0 and t != type_of_id[cid]:
                raise DataFormatError(path, None, f"{w}.garment_category: {show(g)} has object type "
                                                  f"{type_names[t]!r} (garment_categories) but category_id {cid} is "
                                                  f"{type_names[type_of_id[cid]]!r}; expected them to agree")
            per_cats[i].append(gindex[g])
        if "attributes" in a and attribute_names is None:
            raise DataFormatError(path, None, f"{w}.attributes: the file has no top-level 'attribute_names'; "
                                              f"expected that list to name the attributes")
        if per_attrs is not None:
            names = _list(path, a.get("attributes", []), f"{w}.attributes", "a list of attribute names")
            cols = _attribute_columns(path, names, f"{w}.attributes", aindex, attribute_names)
            if applicable is not None and per_cats is not None:
                c = per_cats[i][-1]
                bad = [attribute_names[x] for x in cols if not applicable[c, x]]
                if bad:
                    raise DataFormatError(path, None, f"{w}.attributes: {bad} do not apply to garment category "
                                                      f"{category_names[c]!r} (attribute_names[].applies_to); "
                                                      f"expected only applicable attributes")
            per_attrs[i].append(cols)

    root = Path(image_root) if image_root is not None else _coco_image_root(path)
    return _assemble(files, root, ids, sizes, per_boxes, per_types, per_cats, per_attrs, type_names,
                     category_names, attribute_names, path, category_types, applicable, attribute_kinds)


def _applies_to(path: Path, spec, where: str, category_names, category_types, type_names, gindex,
                gindex_by_id) -> np.ndarray:
    """The column of ``applicable`` for one attribute from its ``applies_to``."""
    col = np.zeros(len(category_names), dtype=bool)
    if spec is None or spec == "all":
        col[:] = True
        return col
    entries = _list(path, spec, where, "a list of garment category names or ids, object type names, or 'all'")
    for e_i, e in enumerate(entries):
        if e == "all":
            col[:] = True
        elif isinstance(e, str) and e in gindex:
            col[gindex[e]] = True
        elif isinstance(e, str) and e in type_names:
            col |= category_types == type_names.index(e)
        elif not isinstance(e, (str, bool)) and isinstance(e, int) and e in gindex_by_id:
            col[gindex_by_id[e]] = True
        else:
            raise DataFormatError(path, None, f"{where}[{e_i}]: unknown {show(e)}; expected a garment category name or id, "
                                              f"an object type name ({', '.join(type_names)}) or 'all'")
    return col


def _attribute_columns(path: Path, names: list, where: str, aindex: Mapping[str, int],
                       attribute_names: Sequence[str] | None) -> list[int]:
    cols: list[int] = []
    for j, a in enumerate(names):
        _str(path, a, f"{where}[{j}]", "an attribute name")
        if a not in aindex:
            known = "names of 'attribute_names'" if attribute_names is not None else "known attribute names"
            raise DataFormatError(path, None, f"{where}[{j}]: unknown attribute {show(a)}; expected one of the {known}"
                                              f"{'' if attribute_names is None else ' ' + str(list(attribute_names))}")
        if aindex[a] in cols:
            raise DataFormatError(path, None, f"{where}[{j}]: attribute {show(a)} listed twice; expected each once")
        cols.append(aindex[a])
    return cols


def _assemble(files, root, ids, sizes, per_boxes, per_types, per_cats, per_attrs, type_names, category_names,
              attribute_names, source, category_types=None, applicable=None, attribute_kinds=None):
    na = len(attribute_names) if attribute_names is not None else 0
    boxes, types, cats, attrs = [], [], [], []
    for i in range(len(files)):
        b, t, c, a = _pack(per_boxes[i], per_types[i], None if per_cats is None else per_cats[i],
                           None if per_attrs is None else per_attrs[i], na)
        boxes.append(b)
        types.append(t)
        cats.append(c)
        attrs.append(a)
    return DetectionDataset(
        files=list(files), image_root=Path(root), image_ids=np.asarray(ids, dtype=np.int64).reshape(-1),
        sizes=np.asarray(sizes, dtype=np.int64).reshape(-1, 2), boxes=boxes, object_types=types,
        categories=cats if per_cats is not None else None, attributes=attrs if per_attrs is not None else None,
        type_names=tuple(type_names), category_names=category_names, attribute_names=attribute_names,
        source=Path(source), category_types=category_types, applicable=applicable, attribute_kinds=attribute_kinds)


# ----------------------------------------------------------------------------------------------------------------
# DeepFashion2


def _image_size(image: Path, anno: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    if not image.is_file():
        raise FileNotFoundError(f"image {image} of annotation file {anno} not found (DeepFashion2 layout: "
                                f"<split>/image/<stem>.jpg next to <split>/annos/<stem>.json; pass image_dir=...)")
    try:
        with Image.open(image) as im:  # reads the header only
            return im.size
    except (UnidentifiedImageError, OSError) as e:
        raise DataFormatError(image, None, f"cannot read the image header of {image.name} (for {anno.name}): "
                                           f"{e}; expected a JPEG or another image PIL can open") from None


def read_deepfashion2(folder, image_dir=None, type_map: Mapping[str, str] | None = None,
                      category_names: Sequence[str] | None = None,
                      attribute_names: Sequence[str] | None = None) -> DetectionDataset:
    """Read a DeepFashion2 split folder (docs/formats.md §5.4): ``<folder>/annos/*.json``, one file per image, and
    the images ``<folder>/image/<same stem>.jpg`` (or in ``image_dir``).

    Files are read in name order; the image id is the number in the file name (``000123.json`` -> 123, as
    DeepFashion2 does). Items ``item1`` ... ``itemN`` are taken in numeric order (``item2`` before ``item10``);
    other keys (``source``, ``pair_id``) and item keys other than ``category_name``, ``category_id``,
    ``bounding_box``, ``object_type`` and ``attributes`` (``style``, ``landmarks``, ``segmentation``, ``scale``,
    ``occlusion``, ``zoom_in``, ``viewpoint``) are ignored. ``bounding_box`` is ``[x1, y1, x2, y2]``. An image
    file with no items is kept (empty arrays). The image size comes from the image header (PIL, no decode).

    Object types (``type_names`` = :data:`OBJECT_TYPES`): an item's ``object_type`` key (FashionSynth) when
    present, else ``type_map[category_name]`` (default :data:`DF2_OBJECT_TYPES`, paper 06's Table 1). All items
    of a category must have the same object type.

    Categories: by default the category names found, ordered by ``category_id`` (the same id must always carry
    the same name and vice versa); pass ``category_names`` (e.g. :data:`DF2_CATEGORIES`) to fix the vocabulary
    and its order. ``category_types`` is each category's object type (as seen on its items, else from the map,
    else ``-1``).

    Attributes: when some item carries FashionSynth's ``attributes`` key (a list of names): the names found,
    sorted, or ``attribute_names`` when given (then only those are allowed). DeepFashion2 itself has none
    (``attributes`` is ``None``).

    Errors: :class:`FileNotFoundError` for a missing folder or image; :class:`DataFormatError` naming the file and
    key (``item3.bounding_box``) for a file name that is not a number, missing keys, an unknown category or
    object type, inconsistent category ids and names, and bad boxes (as :func:`read_coco_detection`).
    """
    folder = Path(folder)
    annos = folder / "annos"
    if not annos.is_dir():
        raise FileNotFoundError(f"DeepFashion2 annotation folder not found: {annos} (expected <split>/annos/*.json, "
                                f"docs/formats.md §5.4)")
    image_root = Path(image_dir) if image_dir is not None else folder / "image"
    tmap = dict(DF2_OBJECT_TYPES if type_map is None else type_map)
    for c, t in tmap.items():
        if t not in OBJECT_TYPES:
            raise ValueError(f"type_map[{c!r}] = {t!r}; expected one of {OBJECT_TYPES}")
    fixed_cats = None if category_names is None else {n: r for r, n in enumerate(category_names)}
    fixed_attrs = None if attribute_names is None else {n: r for r, n in enumerate(attribute_names)}

    paths = sorted(p for p in annos.iterdir() if p.suffix == ".json" and p.is_file())
    files, ids, sizes = [], [], []
    first_file_of_id: dict[int, Path] = {}
    # raw objects per image: (box, type, category name, category id, attribute names)
    raw: list[list[tuple[list[float], int, str, int, list[str] | None]]] = []
    id_name: dict[int, tuple[str, Path, str]] = {}
    name_id: dict[str, tuple[int, Path, str]] = {}
    type_seen: dict[str, tuple[str, Path, str]] = {}
    seen_attrs: set[str] = set()
    any_attrs = False
    for p in paths:
        if not p.stem.isascii() or not p.stem.isdigit():
            raise DataFormatError(p, None, f"file name {show(p.name)} is not a number; expected <image id>.json such as "
                                           f"000001.json (DeepFashion2: image id = the number in the file name)")
        image_id = int(p.stem)
        if image_id in first_file_of_id:
            raise DataFormatError(p, None, f"image id {image_id} repeated (also {first_file_of_id[image_id].name}); "
                                           f"expected one annotation file per image id")
        first_file_of_id[image_id] = p
        doc = _dict(p, _load_json(p, "DeepFashion2 annotation file"), "top level",
                    "an object with keys 'item1' ... 'itemN' (and 'source', 'pair_id')")
        image_name = p.stem + ".jpg"
        width, height = _image_size(image_root / image_name, p)
        odd = next((k for k in doc if k.startswith("item") and not _ITEM_KEY.match(k)), None)
        if odd is not None:
            raise DataFormatError(p, None, f"key {show(odd)} is not an item key; expected 'item1' ... 'itemN' "
                                           f"(item followed by ASCII digits)")
        items = sorted(((int(m.group(1)), k) for k in doc if (m := _ITEM_KEY.match(k))), key=lambda x: x[0])
        objs = []
        for _, key in items:
            item = _dict(p, doc[key], key, "an object with 'category_name', 'category_id', 'bounding_box'")
            cname = _str(p, _get(p, item, "category_name", key, "the category name"), f"{key}.category_name")
            cid = _int(p, _get(p, item, "category_id", key, "the category id (1..13 in DeepFashion2)"),
                       f"{key}.category_id")
            if fixed_cats is not None and cname not in fixed_cats:
                raise DataFormatError(p, None, f"{key}.category_name: unknown category {show(cname)}; expected one of "
                                               f"{list(category_names)}")
            if cid in id_name and id_name[cid][0] != cname:
                prev, f0, k0 = id_name[cid]
                raise DataFormatError(p, None, f"{key}.category_id: id {cid} names {show(cname)} here but {show(prev)} in "
                                               f"{f0.name} ({k0}); expected one name per category id")
            if cname in name_id and name_id[cname][0] != cid:
                prev, f0, k0 = name_id[cname]
                raise DataFormatError(p, None, f"{key}.category_name: {show(cname)} has id {cid} here but {prev} in "
                                               f"{f0.name} ({k0}); expected one id per category name")
            id_name.setdefault(cid, (cname, p, key))
            name_id.setdefault(cname, (cid, p, key))
            if "object_type" in item:
                t = item["object_type"]
                if t not in OBJECT_TYPES:
                    raise DataFormatError(p, None, f"{key}.object_type: unknown object type {show(t)}; expected one of "
                                                   f"{list(OBJECT_TYPES)}")
            elif cname in tmap:
                t = tmap[cname]
            else:
                raise DataFormatError(p, None, f"{key}.category_name: no object type for category {cname!r}; "
                                               f"expected a category of the type map ({', '.join(tmap)}) or an "
                                               f"'object_type' key; pass type_map={{{cname!r}: ...}}")
            if cname in type_seen and type_seen[cname][0] != t:
                prev, f0, k0 = type_seen[cname]
                where = f"{key}.object_type" if "object_type" in item else f"{key}.category_name"
                raise DataFormatError(p, None, f"{where}: category {show(cname)} is {show(t)} here but {show(prev)} in "
                                               f"{f0.name} ({k0}); expected one object type per category")
            type_seen.setdefault(cname, (t, p, key))
            box = _box(p, _get(p, item, "bounding_box", key, "a box [x1, y1, x2, y2]"), f"{key}.bounding_box",
                       width, height, coco=False)
            anames = None
            if "attributes" in item:
                any_attrs = True
                anames = _list(p, item["attributes"], f"{key}.attributes", "a list of attribute names")
                for j, a in enumerate(anames):
                    _str(p, a, f"{key}.attributes[{j}]", "an attribute name")
                    if fixed_attrs is not None and a not in fixed_attrs:
                        raise DataFormatError(p, None, f"{key}.attributes[{j}]: unknown attribute {show(a)}; expected "
                                                       f"one of {list(attribute_names)}")
                    if a in anames[:j]:
                        raise DataFormatError(p, None, f"{key}.attributes[{j}]: attribute {show(a)} listed twice; "
                                                       f"expected each once")
                seen_attrs.update(anames)
            objs.append((box, OBJECT_TYPES.index(t), cname, cid, anames))
        files.append(image_name)
        ids.append(image_id)
        sizes.append((width, height))
        raw.append(objs)

    if category_names is not None:
        cat_names = tuple(category_names)
    else:
        cat_names = tuple(name for _, name in sorted((cid, v[0]) for cid, v in id_name.items()))
    cindex = {n: r for r, n in enumerate(cat_names)}
    # a category's object type: as seen on its items (one per category, checked), else from the map, else -1
    cat_types = np.array([OBJECT_TYPES.index(type_seen[n][0]) if n in type_seen
                          else OBJECT_TYPES.index(tmap[n]) if n in tmap else -1 for n in cat_names], dtype=np.int64)
    attr_names = None
    if attribute_names is not None:
        attr_names = tuple(attribute_names)
    elif any_attrs:
        attr_names = tuple(sorted(seen_attrs))
    aindex = {n: r for r, n in enumerate(attr_names or ())}

    per_boxes, per_types, per_cats, per_attrs = [], [], [], []
    for objs in raw:
        per_boxes.append([o[0] for o in objs])
        per_types.append([o[1] for o in objs])
        per_cats.append([cindex[o[2]] for o in objs])
        per_attrs.append([[aindex[a] for a in (o[4] or ())] for o in objs])
    return _assemble(files, image_root, ids, sizes, per_boxes, per_types, per_cats,
                     per_attrs if attr_names is not None else None, OBJECT_TYPES, cat_names, attr_names, folder,
                     category_types=cat_types)


# ----------------------------------------------------------------------------------------------------------------
# COCO writer


def to_coco(dataset: DetectionDataset) -> dict[str, Any]:
    """The dataset as a COCO detection dict (the layout :func:`read_coco_detection` reads, with FashionSynth's
    extensions when the dataset has categories / attributes), e.g. to evaluate a DeepFashion2 folder
    (docs/formats.md §5.4) with ``pycocotools``: ``json.dump(to_coco(ds), f)`` then ``COCO(f)``.

    ``images`` keep the dataset order and ids; ``categories`` are the object types with ids 1..T;
    ``annotations`` get ids 1..K in image order, ``bbox`` ``[x1, y1, x2 - x1, y2 - y1]``, ``area`` = w * h,
    ``iscrowd`` 0, and ``garment_category`` / ``attributes`` (names) when present. ``garment_categories`` get
    ids 1..C and their ``object_type`` name (from ``category_types``; left out where unknown);
    ``attribute_names`` get ids 1..A, ``kind`` (when known) and ``applies_to`` (category names, when
    ``applicable`` is known). Reading the result back gives the same arrays (boxes to float32 precision).
    """
    ds = dataset
    images = [{"id": int(ds.image_ids[i]), "file_name": ds.files[i], "width": int(ds.sizes[i, 0]),
               "height": int(ds.sizes[i, 1])} for i in range(len(ds))]
    out: dict[str, Any] = {
        "images": images,
        "annotations": [],
        "categories": [{"id": t + 1, "name": name, "supercategory": "garment"} for t, name in enumerate(ds.type_names)],
    }
    if ds.category_names is not None:
        gcs = []
        for c, name in enumerate(ds.category_names):
            g = {"id": c + 1, "name": name}
            t = int(ds.category_types[c]) if ds.category_types is not None else -1
            if t >= 0:
                g["object_type"] = ds.type_names[t]
            gcs.append(g)
        out["garment_categories"] = gcs
    if ds.attribute_names is not None:
        ans = []
        for a, name in enumerate(ds.attribute_names):
            entry: dict[str, Any] = {"id": a + 1, "name": name}
            if ds.attribute_kinds is not None and ds.attribute_kinds[a] is not None:
                entry["kind"] = ds.attribute_kinds[a]
            if ds.applicable is not None and ds.category_names is not None:
                entry["applies_to"] = [ds.category_names[c] for c in np.flatnonzero(ds.applicable[:, a])]
            ans.append(entry)
        out["attribute_names"] = ans
    k = 0
    for i in range(len(ds)):
        for j, (x1, y1, x2, y2) in enumerate(np.asarray(ds.boxes[i], dtype=np.float64)):
            k += 1
            w, h = x2 - x1, y2 - y1
            ann: dict[str, Any] = {"id": k, "image_id": int(ds.image_ids[i]),
                                   "category_id": int(ds.object_types[i][j]) + 1,
                                   "bbox": [float(x1), float(y1), float(w), float(h)], "area": float(w * h),
                                   "iscrowd": 0}
            if ds.categories is not None:
                ann["garment_category"] = ds.category_names[int(ds.categories[i][j])]
            if ds.attributes is not None:
                ann["attributes"] = [ds.attribute_names[a] for a in np.flatnonzero(ds.attributes[i][j])]
            out["annotations"].append(ann)
    return out
