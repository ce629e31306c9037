"""Readers for the list files of the DeepFashion Category and Attribute Prediction benchmark (docs/formats.md §5.3),
and for the DeepFashion ``label_{valid,test}.txt`` of the ASEN split files (§5.1).

The benchmark ships its annotations as text lists in ``Anno/`` (``Anno_coarse/`` in later copies) and ``Eval/``:

=============================  ======================================================================
``list_attr_cloth.txt``        attribute names and types (1 texture, 2 fabric, 3 shape, 4 part, 5 style)
``list_attr_img.txt``          per image, one label per attribute: ``1`` yes, ``-1`` no, ``0`` unknown
``list_category_cloth.txt``    category names and types (1 upper, 2 lower, 3 full body)
``list_category_img.txt``      per image, the 1-based category label
``list_bbox.txt``              per image, ``x_1 y_1 x_2 y_2`` of the garment (pixels)
``list_eval_partition.txt``    per image, ``train``, ``val`` or ``test`` (in ``Eval/``)
=============================  ======================================================================

Every list file has the number of entries on line 1 and a column header on line 2 (e.g. ``image_name
attribute_labels``); the data lines follow. Fields are separated by runs of spaces (tabs are accepted too).

Quirk (§5.3): attribute names contain single spaces (``abstract chevron``), and in the real
``list_attr_cloth.txt`` entry 446 separates name and type by a single space. So a name is everything before the
**last** field, and the last field is the type. Category names are read the same way.

The full ``list_attr_img.txt`` has 289,222 lines of 1,000 labels (about 0.9 GB of text). It is read in a stream
of batches into an ``int8`` matrix with a vectorised byte parser, so memory stays near the size of the result
(289 MB) and the parse takes seconds, not minutes. Labels are kept as in the file (``-1``, ``0``, ``1``);
:meth:`DeepFashionAttributes.positives` gives mmfashion's binarisation (docs/protocols.md §4.3: ``-1`` and
``0`` map to 0, ``1`` stays 1).

Errors follow :mod:`~fashionlab.datasets.readers`: a missing file is a :class:`FileNotFoundError` that says where
it was looked for and what the file is; a malformed file is a
:class:`~fashionlab.datasets.readers.DataFormatError` whose message starts with ``<path>:<1-based line>:`` and
says what was expected.

ASEN (§5.1) groups the 1,000 attributes by type into five retrieval "attributes" (``texture-related`` with 156
values, ``fabric-related`` 218, ``shape-related`` 180, ``part-related`` 216, ``style-related`` 230); the value
index of an attribute is the rank of its global id (0-based line index in ``list_attr_cloth.txt``) among the ids
of its type: see :func:`type_ranks` and :meth:`DeepFashionAttributes.group_schema`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..taxonomy import AttributeSchema
from .readers import DataFormatError, _check_file, read_lines, show

__all__ = [
    "TYPE_NAMES",
    "CATEGORY_TYPE_NAMES",
    "DEEPFASHION_SPLITS",
    "DeepFashionAttributes",
    "read_attr_cloth",
    "read_attr_img",
    "read_category_cloth",
    "read_category_img",
    "read_bbox",
    "read_eval_partition",
    "read_deepfashion",
    "read_asen_deepfashion_labels",
    "type_ranks",
]

#: Attribute types of ``list_attr_cloth.txt`` (§5.3); also the order of ASEN's five DeepFashion attributes (§5.1).
TYPE_NAMES = {1: "texture", 2: "fabric", 3: "shape", 4: "part", 5: "style"}
#: Category types of ``list_category_cloth.txt`` (§5.3). Real DeepFashion uses 1-3; type 4 "footwear" is the
#: FashionSynth outfit extension (:mod:`fashionlab.synth.outfit`, paper 06's footwear object type), accepted only
#: when reading such a dataset (``footwear=True``, or a folder holding FashionSynth's ``objects.jsonl``).
CATEGORY_TYPE_NAMES = {1: "upper", 2: "lower", 3: "full", 4: "footwear"}
_DEEPFASHION_CATEGORY_TYPES = {k: v for k, v in CATEGORY_TYPE_NAMES.items() if k <= 3}
#: The values of ``list_eval_partition.txt`` (§5.3).
DEEPFASHION_SPLITS = ("train", "val", "test")

_LABEL_VALUES = ("-1", "0", "1")


# ----------------------------------------------------------------------------------------------------------------
# count line and header


def _split_count_header(path: Path, lines: list[str], what: str, header: str) -> tuple[int, list[str]]:
    """Check line 1 (the entry count) and line 2 (the column header, by its first field) of a list file.

    Returns ``(count, data lines)``; data line ``i`` is line ``i + 3`` of the file. The count must equal the
    number of data lines (trailing blank lines are not counted).
    """
    _check_count_line(path, lines[0] if lines else None, what)
    count = int(lines[0].split()[0])
    _check_header_line(path, lines[1] if len(lines) > 1 else None, what, header)
    data = lines[2:]
    if count != len(data):
        raise DataFormatError(path, 1, f"line 1 gives {count} entries but {what} has {len(data)} data lines (from "
                                       f"line 3 on); expected the count to equal the number of data lines")
    return count, data


def _check_count_line(path: Path, line: str | None, what: str) -> None:
    if line is None:
        raise DataFormatError(path, 1, f"empty {what}; expected the number of entries on line 1, the column header "
                                       f"on line 2, then the data lines (docs/formats.md §5.3)")
    tok = line.split()
    if len(tok) != 1 or not (tok[0].isascii() and tok[0].isdigit()):
        raise DataFormatError(path, 1, f"{show(line.strip())} in {what}; expected line 1 to be the number of entries "
                                       f"(one non-negative integer), then the column header on line 2")


def _check_header_line(path: Path, line: str | None, what: str, header: str) -> None:
    first = header.split()[0]
    if line is None:
        raise DataFormatError(path, 2, f"missing column header in {what}; expected line 2 to be {header!r}")
    tok = line.split()
    if not tok or tok[0] != first:
        raise DataFormatError(path, 2, f"{show(line.strip())} in {what}; expected the column header {header!r} on "
                                       f"line 2 (line 1 = count, line 2 = header, data from line 3)")


def _check_unique(path: Path, names: Sequence[str], what: str, first_line: int = 3) -> None:
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        j = seen.setdefault(n, i)
        if j != i:
            raise DataFormatError(path, i + first_line, f"image {show(n)} listed twice in {what} (first on line "
                                                        f"{j + first_line}); expected each image once")


# ----------------------------------------------------------------------------------------------------------------
# name + type lists (list_attr_cloth.txt, list_category_cloth.txt)


def _read_named_types(path, what: str, header: str, kind: str,
                      type_names: dict[int, str]) -> tuple[list[str], np.ndarray]:
    path = Path(path)
    lines = read_lines(path, what)
    _, data = _split_count_header(path, lines, what, header)
    names: list[str] = []
    types = np.zeros(len(data), dtype=np.int8)
    lo, hi = min(type_names), max(type_names)
    legend = ", ".join(f"{k} {v}" for k, v in type_names.items())
    for i, ln in enumerate(data):
        n = i + 3
        s = ln.strip()
        tok = s.split()
        if len(tok) < 2:
            got = "blank line" if not tok else f"1 field {show(s)}"
            raise DataFormatError(path, n, f"{got} in {what}; expected '<{kind} name> <{kind} type {lo}..{hi}>' (the "
                                           f"name may contain spaces; the last field is the type)")
        t = tok[-1]
        if not (t.isascii() and t.isdigit()) or not lo <= int(t) <= hi:
            raise DataFormatError(path, n, f"{kind} type {show(t)} in {show(s)} of {what}; expected an integer {lo}..{hi} "
                                           f"({legend}) as the last field")
        names.append(s[: -len(t)].strip())
        types[i] = int(t)
    return names, types


def read_attr_cloth(path) -> tuple[list[str], np.ndarray]:
    """``list_attr_cloth.txt`` (§5.3): ``1000`` / ``attribute_name  attribute_type`` / ``a-line  3`` ...

    Returns ``(names, types)``: the attribute names (list position = global attribute id, the column of
    ``list_attr_img.txt`` and the id in ASEN's ``label_{valid,test}.txt``) and their types, ``int8`` in 1..5
    (:data:`TYPE_NAMES`). Names contain spaces and one real entry separates name and type by a single space,
    so the **last** field is the type and everything before it (stripped, inner spaces kept) the name.
    """
    return _read_named_types(path, "attribute list (list_attr_cloth.txt)", "attribute_name  attribute_type",
                             "attribute", TYPE_NAMES)


def read_category_cloth(path, footwear: bool = False) -> tuple[list[str], np.ndarray]:
    """``list_category_cloth.txt`` (§5.3): ``50`` / ``category_name  category_type`` / ``Anorak  1`` ...

    Returns ``(names, types)``: the category names (position + 1 = the label of ``list_category_img.txt``) and
    their types, ``int8`` in 1..3 (:data:`CATEGORY_TYPE_NAMES`: upper, lower, full body); with ``footwear=True``
    also 4 (footwear, the FashionSynth outfit extension; real DeepFashion has no type 4). Parsed like
    :func:`read_attr_cloth` (the last field is the type).
    """
    return _read_named_types(path, "category list (list_category_cloth.txt)", "category_name  category_type",
                             "category", CATEGORY_TYPE_NAMES if footwear else _DEEPFASHION_CATEGORY_TYPES)


# ----------------------------------------------------------------------------------------------------------------
# per-image lists with few fields (category, bbox, partition)


def _read_image_rows(path, what: str, header: str, fields: str,
                     nfields: int) -> tuple[Path, list[str], list[list[str]]]:
    """Image name + ``nfields`` fields per data line. Returns (path, image names, the other fields per line)."""
    path = Path(path)
    lines = read_lines(path, what)
    _, data = _split_count_header(path, lines, what, header)
    names: list[str] = []
    rows: list[list[str]] = []
    for i, ln in enumerate(data):
        tok = ln.split()
        if len(tok) != nfields + 1:
            got = "blank line" if not tok else f"{len(tok)} field(s) {show(ln.strip())}"
            raise DataFormatError(path, i + 3, f"{got} in {what}; expected '<image name> {fields}' "
                                               f"({nfields + 1} fields separated by spaces)")
        names.append(tok[0])
        rows.append(tok[1:])
    _check_unique(path, names, what)
    return path, names, rows


def _ints(path: Path, rows: list[list[str]], what: str, expected: str) -> np.ndarray:
    out = np.zeros((len(rows), len(rows[0]) if rows else 0), dtype=np.int64)
    for i, r in enumerate(rows):
        for j, tok in enumerate(r):
            digits = tok[1:] if tok[:1] == "-" else tok
            if not (digits.isascii() and digits.isdigit()) or len(tok) > 18:
                raise DataFormatError(path, i + 3, f"field {j + 2} is {show(tok)} in {what}; expected {expected}")
            out[i, j] = int(tok)
    return out


def read_category_img(path, num_categories: int | None = None) -> tuple[list[str], np.ndarray]:
    """``list_category_img.txt`` (§5.3): ``289222`` / ``image_name  category_label`` / ``img/...jpg  3`` ...

    Returns ``(image names, categories)``: ``int64``, **0-based** (the file's 1-based label minus one), so
    ``category_names[categories[i]]`` is the category of image ``i``. Labels must lie in ``1..num_categories``
    (the length of ``list_category_cloth.txt``; without it only ``>= 1`` is checked). Only 46 of the 50 real
    categories occur (Cape, Nightdress, Shirtdress and Sundress were merged into Dress).
    """
    what = "category label list (list_category_img.txt)"
    path, names, rows = _read_image_rows(path, what, "image_name  category_label", "<category label>", 1)
    rng = f"1..{num_categories} (the categories of list_category_cloth.txt)" if num_categories else "an integer >= 1"
    labels = _ints(path, rows, what, f"a category label {rng}").reshape(-1)
    hi = num_categories if num_categories is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((labels < 1) | (labels > hi))
    if len(bad):
        i = int(bad[0])
        raise DataFormatError(path, i + 3, f"category label {labels[i]} of {show(names[i])} out of range in {what}; "
                                           f"expected {rng}")
    return names, labels - 1


def read_bbox(path) -> tuple[list[str], np.ndarray]:
    """``list_bbox.txt`` (§5.3): ``289222`` / ``image_name  x_1  y_1  x_2  y_2`` / ``img/...jpg  072 079 232 273``.

    Returns ``(image names, boxes)``: ``int64 (n, 4)`` as ``x_1, y_1, x_2, y_2`` in pixels (leading zeros are
    fine). Coordinates must be non-negative with ``x_1 <= x_2`` and ``y_1 <= y_2``.
    """
    what = "bounding box list (list_bbox.txt)"
    path, names, rows = _read_image_rows(path, what, "image_name  x_1  y_1  x_2  y_2", "<x_1> <y_1> <x_2> <y_2>", 4)
    boxes = _ints(path, rows, what, "a non-negative integer pixel coordinate").reshape(-1, 4)
    bad = np.flatnonzero((boxes < 0).any(axis=1) | (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3]))
    if len(bad):
        i = int(bad[0])
        raise DataFormatError(path, i + 3, f"bounding box {boxes[i].tolist()} of {show(names[i])} in {what}; expected "
                                           f"non-negative x_1 y_1 x_2 y_2 with x_1 <= x_2 and y_1 <= y_2")
    return names, boxes


def read_eval_partition(path) -> tuple[list[str], np.ndarray]:
    """``list_eval_partition.txt`` (§5.3, in ``Eval/``): ``289222`` / ``image_name  evaluation_status`` /
    ``img/...jpg  train``.

    Returns ``(image names, partition)``: a ``numpy`` array of ``str``, each ``train``, ``val`` or ``test``
    (:data:`DEEPFASHION_SPLITS`; note ``val``, not ASEN's ``valid``).
    """
    what = "evaluation partition (list_eval_partition.txt)"
    path, names, rows = _read_image_rows(path, what, "image_name  evaluation_status", "<train|val|test>", 1)
    for i, (s,) in enumerate(rows):
        if s not in DEEPFASHION_SPLITS:
            raise DataFormatError(path, i + 3, f"evaluation status {show(s)} of {show(names[i])} in {what}; expected one "
                                               f"of {', '.join(DEEPFASHION_SPLITS)}")
    return names, np.array([r[0] for r in rows], dtype="<U5")


# ----------------------------------------------------------------------------------------------------------------
# list_attr_img.txt: a streamed, vectorised parse

# byte classes of the fast path: 0 separator (space, tab, newline), 1 '-', 2 '0', 3 '1', 4 anything else
_CLASS = np.full(256, 4, dtype=np.uint8)
_CLASS[[ord(" "), ord("\t"), ord("\n")]] = 0
_CLASS[ord("-")], _CLASS[ord("0")], _CLASS[ord("1")] = 1, 2, 3
_CLASS_VALUE = np.array([0, -1, 0, 1, 0], dtype=np.int8)  # class of a token's first byte -> label


def _fast_labels(rests: list[str], num: int) -> np.ndarray | None:
    """Parse the label fields of a batch of lines (name removed) into ``int8 (len(rests), num)``.

    Only the plain layout is handled (tokens ``-1``, ``0``, ``1`` separated by spaces, tabs or newlines, exactly
    ``num`` per line); anything else returns ``None`` and the caller re-parses the batch line by line, which
    either accepts it (unusual whitespace) or reports the exact line and field.
    """
    try:
        data = ("".join(rests) + "  ").encode("ascii")
    except UnicodeEncodeError:
        return None
    code = _CLASS[np.frombuffer(data, dtype=np.uint8)]
    if np.any(code == 4):
        return None
    field_byte = code > 0
    start = field_byte.copy()
    start[1:] &= ~field_byte[:-1]
    s = np.flatnonzero(start)  # first byte of every token
    # each line's text ends in a separator, so tokens never span lines; count tokens per line
    ends = np.cumsum(np.fromiter((len(r) for r in rests), dtype=np.int64, count=len(rests)))
    per_line = np.diff(np.searchsorted(s, ends), prepend=0)
    if len(s) != num * len(rests) or np.any(per_line != num):
        return None
    c0, c1, c2 = code[s], code[s + 1], code[s + 2]
    ok = ((c0 >= 2) & (c1 == 0)) | ((c0 == 1) & (c1 == 3) & (c2 == 0))  # "0" / "1" / "-1", nothing longer
    if not ok.all():
        return None
    return _CLASS_VALUE[c0].reshape(len(rests), num)


def _slow_labels(path: Path, rests: list[str], first_line: int, num: int, what: str,
                 attribute_names: Sequence[str] | None) -> np.ndarray:
    out = np.zeros((len(rests), num), dtype=np.int8)
    for i, rest in enumerate(rests):
        tok = rest.split()
        if len(tok) != num:
            raise DataFormatError(path, first_line + i, f"{len(tok)} label field(s) after the image name in {what}; "
                                                        f"expected {num} (one per attribute of list_attr_cloth.txt), "
                                                        f"each -1, 0 or 1")
        for j, t in enumerate(tok):
            if t not in _LABEL_VALUES:
                attr = f" ({show(attribute_names[j])})" if attribute_names is not None and j < len(attribute_names) else ""
                raise DataFormatError(path, first_line + i, f"label {show(t)} of attribute {j}{attr} (field {j + 2}) in "
                                                            f"{what}; expected -1, 0 or 1")
        out[i] = np.array([int(t) for t in tok], dtype=np.int8)
    return out


def read_attr_img(path, num_attributes: int | None, attribute_names: Sequence[str] | None = None,
                  batch_chars: int = 1 << 23) -> tuple[list[str], np.ndarray]:
    """``list_attr_img.txt`` (§5.3): ``289222`` / ``image_name  attribute_labels`` / ``img/...jpg  -1 -1 1 ...``.

    Returns ``(image names, labels)``: ``labels`` is ``int8 (n, num_attributes)`` with the file's values ``1``
    (has the attribute), ``-1`` (has not) and ``0`` (unknown; the coarse release uses only 1 and -1, §5.3).
    Column ``j`` is global attribute ``j`` of ``list_attr_cloth.txt``. ``num_attributes`` is the length of that
    list (``None``: taken from the first data line); ``attribute_names`` only make error messages clearer.

    Every line must hold an image name (no spaces) and exactly ``num_attributes`` labels, each exactly ``-1``,
    ``0`` or ``1``; any line ending, a byte order mark and trailing blank lines are fine. The file is streamed
    in batches of about ``batch_chars`` characters and each batch is parsed as one byte array, so the full
    289,222 x 1,000 file needs little more memory than the 289 MB result.
    """
    what = "attribute label list (list_attr_img.txt)"
    path = _check_file(Path(path), f"DeepFashion {what}")
    if num_attributes is not None and num_attributes < 1:
        raise ValueError(f"num_attributes must be positive (the length of list_attr_cloth.txt), got {num_attributes}")
    try:
        return _read_attr_img(path, num_attributes, attribute_names, batch_chars, what)
    except UnicodeDecodeError:
        read_lines(path, what)  # raises the DataFormatError with the line of the bad byte
        raise  # pragma: no cover - read_lines decodes the same bytes


def _read_attr_img(path: Path, num: int | None, attribute_names, batch_chars: int, what: str):
    size = path.stat().st_size
    with open(path, encoding="utf-8-sig", newline=None) as f:  # universal newlines: LF, CRLF, bare CR -> "\n"
        first = f.readline()
        _check_count_line(path, first or None, what)
        count = int(first.split()[0])
        second = f.readline()
        _check_header_line(path, second or None, what, "image_name  attribute_labels")
        names: list[str] = []
        labels = None
        cap = 0
        line_no = 3  # the number of the next line read
        blank_at = None  # first of a run of blank lines (fine at the end of the file only)
        overflow = 0  # data lines beyond ``cap`` (only counted, for the count error)
        while True:
            batch = f.readlines(batch_chars)
            if not batch:
                break
            rests: list[str] = []
            batch_first = None
            for ln in batch:
                parts = ln.split(None, 1)
                if not parts:
                    if blank_at is None:
                        blank_at = line_no
                    line_no += 1
                    continue
                if blank_at is not None:
                    raise DataFormatError(path, blank_at, f"blank line inside {what}; expected '<image name> "
                                                          f"<label> ...' on every line from line 3 on")
                if labels is None:
                    if num is None:
                        num = len(parts[1].split()) if len(parts) > 1 else 0
                        if num == 0:
                            raise DataFormatError(path, line_no, f"no labels after the image name in {what}; "
                                                                 f"expected '<image name> <label> ...'")
                    # a data line takes at least 2 bytes per label: a truthful count fits the file size
                    cap = min(count, size // (2 * num) + 1)
                    labels = np.zeros((cap, num), dtype=np.int8)
                if len(names) >= cap:
                    overflow += 1
                    line_no += 1
                    continue
                if batch_first is None:
                    batch_first = line_no
                names.append(parts[0])
                rest = parts[1] if len(parts) > 1 else ""
                rests.append(rest if rest.endswith("\n") else rest + "\n")
                line_no += 1
            if rests:
                row0 = len(names) - len(rests)
                block = _fast_labels(rests, num)
                if block is None:
                    block = _slow_labels(path, rests, batch_first, num, what, attribute_names)
                labels[row0:row0 + len(rests)] = block
    n = len(names) + overflow
    if n != count:
        raise DataFormatError(path, 1, f"line 1 gives {count} entries but {what} has {n} data lines (from line 3 "
                                       f"on); expected the count to equal the number of data lines")
    if labels is None:
        labels = np.zeros((0, num or 0), dtype=np.int8)
    _check_unique(path, names, what)
    return names, labels


# ----------------------------------------------------------------------------------------------------------------
# the dataset


def type_ranks(types) -> np.ndarray:
    """The rank of every attribute among the attributes of its type, in global-id order: ``int64``, same length.

    This is ASEN's DeepFashion value index (docs/formats.md §5.1): global attribute ``g`` of type ``t`` is value
    ``type_ranks(types)[g]`` of ASEN attribute ``t - 1``.
    """
    types = np.asarray(types)
    ranks = np.zeros(len(types), dtype=np.int64)
    for t in np.unique(types):
        cols = np.flatnonzero(types == t)
        ranks[cols] = np.arange(len(cols))
    return ranks


def _type_code(t) -> int:
    if isinstance(t, str):
        for k, v in TYPE_NAMES.items():
            if t in (v, f"{v}-related"):
                return k
        raise ValueError(f"unknown attribute type {t!r}; expected one of {list(TYPE_NAMES.values())} or 1..5")
    if isinstance(t, (int, np.integer)) and int(t) in TYPE_NAMES:
        return int(t)
    legend = ", ".join(f"{k} {v}" for k, v in TYPE_NAMES.items())
    raise ValueError(f"unknown attribute type {t!r}; expected 1..5 ({legend}) or a type name")


@dataclass(repr=False)
class DeepFashionAttributes:
    """The DeepFashion Category and Attribute Prediction annotations (docs/formats.md §5.3), aligned by image.

    Attributes
    ----------
    root: the dataset folder (image names are relative to it, e.g. ``img/Sheer_Pleated-Front_Blouse/...jpg``).
    image_names: image ``i`` of every array below, in the order of ``list_attr_img.txt``.
    attribute_names: the attribute names of ``list_attr_cloth.txt``; position = global attribute id.
    attribute_types: ``int8`` type 1..5 of each attribute (:data:`TYPE_NAMES`).
    labels: ``int8 (n, A)``: ``1`` yes, ``-1`` no, ``0`` unknown.
    category_names, category_types: ``list_category_cloth.txt`` (types ``int8`` 1..3); ``None`` when not read.
    categories: ``int64 (n,)`` **0-based** index into ``category_names`` (the file's label minus one); ``-1``
        where unknown (never produced by :func:`read_deepfashion`, which needs every image in every file, but
        allowed for hand-built or filtered data); ``None`` when not read.
    bboxes: ``int64 (n, 4)`` ``x_1 y_1 x_2 y_2``; ``None`` when not read.
    partition: ``numpy`` array of ``str`` (``train`` / ``val`` / ``test``); ``None`` when not read.
    files: which file each part came from.
    """

    root: Path
    image_names: list[str]
    attribute_names: list[str]
    attribute_types: np.ndarray
    labels: np.ndarray
    category_names: list[str] | None = None
    category_types: np.ndarray | None = None
    categories: np.ndarray | None = None
    bboxes: np.ndarray | None = None
    partition: np.ndarray | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.image_names)

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_names)

    def split_indices(self, split: str) -> np.ndarray:
        """The image indices (``int64``, ascending) of ``split``: ``"train"``, ``"val"`` or ``"test"``."""
        if split not in DEEPFASHION_SPLITS:
            hint = " (DeepFashion calls it 'val')" if split == "valid" else ""
            raise ValueError(f"unknown split {split!r}{hint}; expected one of {DEEPFASHION_SPLITS}")
        if self.partition is None:
            raise ValueError("no evaluation partition was read (list_eval_partition.txt, in Eval/ of the release); "
                             "pass require=('attributes', 'partition') to read_deepfashion to insist on it")
        return np.flatnonzero(self.partition == split)

    def type_indices(self, t) -> np.ndarray:
        """The attribute columns (global ids, ``int64``, file order) of type ``t``: 1..5 or a name of
        :data:`TYPE_NAMES` (``"texture"``; ``"texture-related"`` as in ASEN's meta.json also works)."""
        return np.flatnonzero(self.attribute_types == _type_code(t))

    def positives(self, t=None) -> np.ndarray:
        """Boolean matrix ``labels == 1`` over the columns of type ``t`` (all columns when ``None``).

        This is mmfashion's binarisation (docs/protocols.md §4.3): ``-1`` and ``0`` both count as negative.
        """
        lab = self.labels if t is None else self.labels[:, self.type_indices(t)]
        return lab == 1

    def group_schema(self, types=None, asen_names: bool = False) -> AttributeSchema:
        """ASEN's view of the attributes (docs/formats.md §5.1): one schema attribute per type, its values the
        attribute names of that type in global-id order, so value index = :func:`type_ranks` of the global id.

        ``types`` picks types (1..5 or names, kept in 1..5 order); default all types that have attributes. The
        schema attributes are the :data:`TYPE_NAMES` (``texture``, ...), or with ``asen_names`` the names of
        ASEN's meta.json (``texture-related``, ...). On the real list the value counts are 156, 218, 180, 216, 230.
        """
        present = sorted({int(t) for t in np.unique(self.attribute_types)})
        if types is None:
            chosen = present
        else:
            chosen = sorted({_type_code(t) for t in types})
            missing = [TYPE_NAMES[t] for t in chosen if t not in present]
            if missing:
                raise ValueError(f"no attributes of type {missing} in list_attr_cloth.txt; types present: "
                                 f"{[TYPE_NAMES[t] for t in present]}")
        label = (lambda t: f"{TYPE_NAMES[t]}-related") if asen_names else (lambda t: TYPE_NAMES[t])
        attrs = tuple(label(t) for t in chosen)
        values = {label(t): tuple(self.attribute_names[j] for j in self.type_indices(t)) for t in chosen}
        return AttributeSchema(name="DeepFashion", attributes=attrs, num_values=tuple(len(values[a]) for a in attrs),
                               values=values)

    def __repr__(self) -> str:
        counts = ", ".join(f"{TYPE_NAMES.get(int(t), t)} {int(c)}" for t, c in
                           zip(*np.unique(self.attribute_types, return_counts=True)))
        extra = []
        if self.categories is not None:
            extra.append(f"{len(self.category_names or [])} categories")
        if self.bboxes is not None:
            extra.append("bboxes")
        if self.partition is not None:
            extra.append("/".join(f"{s} {int(np.sum(self.partition == s))}" for s in DEEPFASHION_SPLITS))
        more = (", " + ", ".join(extra)) if extra else ""
        from ..config import display_path  # no machine paths in notebook outputs

        return (f"DeepFashionAttributes({self.num_images} images, {self.num_attributes} attributes ({counts}){more}, "
                f"root={display_path(self.root)!r})")


# ----------------------------------------------------------------------------------------------------------------
# finding and aligning the files

_FOLDERS = ("Anno", "Anno_coarse", "Eval", ".")

_FILES = {
    "attr_cloth": ("list_attr_cloth.txt", "attribute names and types"),
    "attr_img": ("list_attr_img.txt", "per-image attribute labels"),
    "category_cloth": ("list_category_cloth.txt", "category names and types"),
    "category_img": ("list_category_img.txt", "per-image category labels"),
    "bbox": ("list_bbox.txt", "per-image bounding boxes"),
    "partition": ("list_eval_partition.txt", "train/val/test partition"),
}

#: What ``require=`` of :func:`read_deepfashion` may name, and the files each part needs.
_PARTS = {
    "attributes": ("attr_cloth", "attr_img"),
    "categories": ("category_cloth", "category_img"),
    "bboxes": ("bbox",),
    "partition": ("partition",),
}


def _find(root: Path, key: str) -> Path | None:
    name = _FILES[key][0]
    for d in _FOLDERS:
        p = root / d / name if d != "." else root / name
        if p.is_file():
            return p
    return None


def _not_found(root: Path, key: str, why: str = "") -> FileNotFoundError:
    name, desc = _FILES[key]
    where = "Eval/" if key == "partition" else "Anno/"
    looked = ", ".join(str(root / d) if d != "." else str(root) for d in _FOLDERS)
    return FileNotFoundError(f"DeepFashion {name} ({desc}; Category and Attribute Prediction benchmark, {where}) not "
                             f"found{why}; looked in {looked}")


def _align(path: Path, names: list[str], ref: list[str], ref_index: dict[str, int], ref_path: Path,
           what: str) -> np.ndarray | None:
    """Row order that aligns a per-image file with the reference image list: ``None`` when it is already in the
    same order, else ``order`` with ``rows[order]`` in reference order. Extra or missing images are errors."""
    if names == ref:
        return None
    pos = np.empty(len(ref), dtype=np.int64)
    pos.fill(-1)
    for i, n in enumerate(names):  # duplicates were rejected by the reader
        j = ref_index.get(n)
        if j is None:
            raise DataFormatError(path, i + 3, f"image {show(n)} of {what} is not in {ref_path.name} ({ref_path}); "
                                               f"expected the same images in every list file")
        pos[j] = i
    missing = np.flatnonzero(pos < 0)
    if len(missing):
        j = int(missing[0])
        raise DataFormatError(path, None, f"image {show(ref[j])} (line {j + 3} of {ref_path}) is missing from {what} "
                                          f"({len(missing)} image(s) missing); expected the same images in every "
                                          f"list file")
    return pos


def read_deepfashion(root, require: Sequence[str] = ("attributes",),
                     footwear: bool | None = None) -> DeepFashionAttributes:
    """Read the DeepFashion Category and Attribute Prediction list files under ``root`` (docs/formats.md §5.3).

    Each file is looked for in ``root/Anno``, ``root/Anno_coarse``, ``root/Eval`` and ``root`` itself, first hit
    wins (the real release has ``Anno/`` and ``Eval/list_eval_partition.txt``). The attribute files
    (``list_attr_cloth.txt``, ``list_attr_img.txt``) are always needed; categories (``list_category_cloth.txt`` +
    ``list_category_img.txt``), boxes (``list_bbox.txt``) and the partition (``list_eval_partition.txt``) are read
    when present. ``require`` names the parts that must be there: any of ``"attributes"``, ``"categories"``,
    ``"bboxes"``, ``"partition"``; a missing one is a :class:`FileNotFoundError` that says what the file is and
    where it was looked for. One file of the category pair without the other is an error too.

    All per-image files must list the same images, each once; a file in another order than
    ``list_attr_img.txt`` is aligned by image name. An image listed twice, missing from a file or unknown to
    ``list_attr_img.txt`` is a :class:`~fashionlab.datasets.readers.DataFormatError` naming the file and line.

    ``footwear`` allows category type 4 (footwear) in ``list_category_cloth.txt``, the FashionSynth outfit
    extension (``crops/`` of :func:`fashionlab.synth.outfit.generate_outfits`); None (default) allows it exactly
    when ``root`` holds FashionSynth's ``objects.jsonl``, so real DeepFashion folders keep the strict 1..3.
    """
    root = Path(root)
    req = {require} if isinstance(require, str) else set(require)
    req |= {"attributes"}
    unknown = req - set(_PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)} in require; expected some of {list(_PARTS)}")
    if not root.is_dir():
        raise FileNotFoundError(f"DeepFashion folder not found: {root} (expected Anno/ and Eval/ of the Category and "
                                f"Attribute Prediction benchmark)")
    found = {k: _find(root, k) for k in _FILES}
    for part, keys in _PARTS.items():
        there = [k for k in keys if found[k] is not None]
        for k in keys:
            if found[k] is None and (part in req or there):
                why = "" if part in req else f" (its partner {_FILES[there[0]][0]} was found at {found[there[0]]})"
                raise _not_found(root, k, why)
    files = {k: p for k, p in found.items() if p is not None}

    attr_names, attr_types = read_attr_cloth(files["attr_cloth"])
    ref_path = files["attr_img"]
    image_names, labels = read_attr_img(ref_path, len(attr_names), attribute_names=attr_names)
    ref_index = {n: i for i, n in enumerate(image_names)}

    def aligned(key: str, names: list[str], values: np.ndarray, what: str) -> np.ndarray:
        order = _align(files[key], names, image_names, ref_index, ref_path, what)
        return values if order is None else values[order]

    out = DeepFashionAttributes(root=root, image_names=image_names, attribute_names=attr_names,
                                attribute_types=attr_types, labels=labels, files=files)
    if "category_cloth" in files:
        if footwear is None:
            footwear = (root / "objects.jsonl").is_file()
        out.category_names, out.category_types = read_category_cloth(files["category_cloth"], footwear=footwear)
        names, cats = read_category_img(files["category_img"], len(out.category_names))
        out.categories = aligned("category_img", names, cats, "list_category_img.txt")
    if "bbox" in files:
        names, boxes = read_bbox(files["bbox"])
        out.bboxes = aligned("bbox", names, boxes, "list_bbox.txt")
    if "partition" in files:
        names, part = read_eval_partition(files["partition"])
        out.partition = aligned("partition", names, part, "list_eval_partition.txt")
    return out


# ----------------------------------------------------------------------------------------------------------------
# ASEN's DeepFashion label_{valid,test}.txt (§5.1)


def read_asen_deepfashion_labels(path, num_attributes: int | None = None) -> list[tuple[int, list[tuple[int, int]]]]:
    """ASEN's DeepFashion ``label_valid.txt`` / ``label_test.txt`` (docs/formats.md §5.1).

    Each line is ``<image id>`` followed by ``<type> <global attribute id>`` pairs, tab-separated with many
    trailing tabs and CRLF line ends in the real copy (any whitespace and line ending is accepted), e.g.
    ``0\\t3\\t226\\t2\\t254\\t2\\t268``. The type is 1..5 (:data:`TYPE_NAMES`); the global id is the 0-based line
    index into ``list_attr_cloth.txt`` (checked against ``num_attributes`` when given, e.g. 1000). The image id
    is the line index into ``filenames_<split>.txt`` (checked: non-negative, each once).

    Returns ``[(image id, [(type, global id), ...]), ...]`` in file order. The ASEN value index of a pair is the
    rank of the global id among the ids of its type (:func:`type_ranks`).
    """
    what = "ASEN DeepFashion label file"
    lines = read_lines(path, what)
    out: list[tuple[int, list[tuple[int, int]]]] = []
    seen: dict[int, int] = {}
    gid_rng = f"0..{num_attributes - 1}" if num_attributes else ">= 0"
    for i, ln in enumerate(lines):
        n = i + 1
        tok = ln.split()
        bad = next((t for t in tok if not (t.isascii() and t.isdigit())), None)
        if len(tok) < 3 or len(tok) % 2 == 0 or bad is not None:
            got = ("blank line" if not tok else f"field {show(bad)}" if bad is not None
                   else f"{len(tok)} field(s) {show(' '.join(tok))}")
            raise DataFormatError(path, n, f"{got} in {what}; expected '<image id>' then one or more '<type 1..5> "
                                           f"<global attribute id>' pairs, non-negative integers separated by tabs")
        v = [int(t) for t in tok]
        if v[0] in seen:
            raise DataFormatError(path, n, f"image id {v[0]} repeated in {what} (first on line {seen[v[0]]})")
        seen[v[0]] = n
        pairs = list(zip(v[1::2], v[2::2]))
        for t, g in pairs:
            if t not in TYPE_NAMES:
                raise DataFormatError(path, n, f"attribute type {t} in {what}; expected 1..5 "
                                               f"({', '.join(f'{k} {x}' for k, x in TYPE_NAMES.items())})")
            if num_attributes is not None and g >= num_attributes:
                raise DataFormatError(path, n, f"global attribute id {g} out of range in {what}; expected {gid_rng} "
                                               f"(0-based line index into list_attr_cloth.txt)")
        out.append((v[0], pairs))
    return out
