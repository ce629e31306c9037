"""Readers for the real annotation formats (data-formats §5.1 ASEN split files, §5.2 FashionAI ``label.csv``).

The same functions read the real files (``../shared/realdata``, or a user's own copy of the ASEN data) and the
files FashionSynth writes, so the real-data path runs on every experiment (DESIGN.md, principle 2).

Robustness rules, learned from the reference loaders (reference-implementations §2 "Loader quirks", §10):

* line endings may be LF, CRLF or a bare CR, in any mix; a missing final newline is fine (DARN file lists);
  trailing blank lines are ignored; a UTF-8 byte order mark is dropped;
* every problem is an exception, never ``None``: a missing file is a :class:`FileNotFoundError` that names the
  path and what the file is; a malformed file is a :class:`DataFormatError` whose message starts with
  ``<path>:<1-based line>:`` and says what was expected.

Ids and indices: an *image id* is the 0-based line index into ``filenames_<split>.txt`` (§5.1); an *attribute
index* is a position in ``meta.json``'s ``ATTRIBUTES``; a *value index* a position among that attribute's values.
Item arrays are ``int64`` of shape ``(n, 3)``: ``(image id, attribute index, value index)``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..taxonomy import FASHIONAI, AttributeSchema

__all__ = [
    "DataFormatError",
    "AsenSplit",
    "FashionAILabels",
    "SPLITS",
    "read_meta",
    "find_meta",
    "read_lines",
    "read_filenames",
    "read_items",
    "read_label_file",
    "read_asen_split",
    "read_fashionai_labels",
]

#: The split names of the ASEN data (§5.1).
SPLITS = ("train", "valid", "test")

_NEWLINE = re.compile(r"\r\n|\r|\n")


class DataFormatError(ValueError):
    """A data file does not follow its format. ``path`` and ``line`` (1-based, or ``None``) say where."""

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


# ----------------------------------------------------------------------------------------------------------------
# low-level helpers


def _check_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise FileNotFoundError(f"{what} {path} is not a file")
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_lines(path, what: str = "file") -> list[str]:
    """The lines of a text file, without line ends, whatever they are (LF, CRLF, bare CR; data-formats §5.1).

    Trailing blank lines are dropped; a missing final newline is fine. ``what`` describes the file in the
    :class:`FileNotFoundError` raised when it is missing. Each returned line ``i`` is line ``i + 1`` of the file.
    """
    path = _check_file(Path(path), what)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFormatError(path, line, f"{what} is not UTF-8 text ({e.reason})") from None
    lines = _NEWLINE.split(text)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_filenames(path, what: str = "image file list") -> list[str]:
    """An ASEN ``filenames_<split>.txt`` (§5.1): one relative image path per line; line index = image id.

    Surrounding whitespace (e.g. a stray ``\\r``) is stripped. A blank line before the end is an error, because
    it would shift every later image id.
    """
    lines = read_lines(path, what)
    names = [ln.strip() for ln in lines]
    for i, name in enumerate(names):
        if not name:
            raise DataFormatError(
                path, i + 1, "blank line inside an image file list (line index = image id); expected a relative image path"
            )
    return names


def _parse_int_lines(path: Path, lines: Sequence[str], what: str, pairs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse whitespace-separated integer lines. Returns (rows (n, 3), 1-based line number of each row).

    ``pairs=False``: exactly 3 fields per line. ``pairs=True``: ``id a1 v1 a2 v2 ...`` (odd count >= 3), expanded
    to one row per (attribute, value) pair.
    """
    tokens = [ln.split() for ln in lines]
    counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    for i, n in enumerate(counts):
        bad = n < 3 or n % 2 == 0 if pairs else n != 3
        if bad:
            if n == 0:
                msg = "blank line"
            else:
                msg = f"{n} field(s) {lines[i].strip()!r}"
            expected = (
                "'<image id> <attribute index> <value index>' optionally followed by more '<attribute> <value>' pairs"
                if pairs
                else "'<image id> <attribute index> <value index>' (3 integers)"
            )
            raise DataFormatError(path, i + 1, f"malformed {what} line: {msg}; expected {expected}")
    flat = [tok for t in tokens for tok in t]
    try:
        values = np.array(flat, dtype=np.str_).astype(np.int64) if flat else np.zeros(0, np.int64)
    except (ValueError, OverflowError):
        for i, t in enumerate(tokens):
            for tok in t:
                try:
                    ok = abs(int(tok)) < 2**63
                except ValueError:
                    ok = False
                if not ok:
                    raise DataFormatError(
                        path, i + 1, f"non-integer field {tok!r} in {what} line {lines[i].strip()!r}; expected "
                                     f"integers (64-bit)"
                    ) from None
        raise  # pragma: no cover - numpy and int() disagree
    line_no = np.arange(1, len(lines) + 1, dtype=np.int64)
    if not pairs or np.all(counts == 3):
        return values.reshape(-1, 3), line_no
    # expand multi-pair lines: id a1 v1 a2 v2 ...
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    npairs = (counts - 1) // 2
    row_line = np.repeat(line_no, npairs)
    row_start = np.repeat(starts, npairs)
    k = np.arange(len(row_line)) - np.repeat(np.cumsum(npairs) - npairs, npairs)
    ids = values[row_start]
    attrs = values[row_start + 1 + 2 * k]
    vals = values[row_start + 2 + 2 * k]
    return np.stack([ids, attrs, vals], axis=1), row_line


def _check_ranges(path, rows: np.ndarray, line_no: np.ndarray, schema: AttributeSchema | None, num_images: int | None,
                  what: str, images_what: str = "the image file list") -> None:
    if len(rows) == 0:
        return
    ids, attrs, vals = rows[:, 0], rows[:, 1], rows[:, 2]
    hi = num_images if num_images is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((ids < 0) | (ids >= hi))
    if len(bad):
        i = bad[0]
        rng = f"0..{num_images - 1} ({num_images} images in {images_what})" if num_images is not None else ">= 0"
        raise DataFormatError(path, int(line_no[i]), f"image id {ids[i]} out of range in {what}; expected {rng}")
    if schema is None:
        bad = np.flatnonzero((attrs < 0) | (vals < 0))
        if len(bad):
            i = bad[0]
            raise DataFormatError(path, int(line_no[i]), f"negative attribute or value index in {what}: {rows[i].tolist()}")
        return
    na = schema.num_attributes
    bad = np.flatnonzero((attrs < 0) | (attrs >= na))
    if len(bad):
        i = bad[0]
        raise DataFormatError(
            path, int(line_no[i]),
            f"attribute index {attrs[i]} out of range in {what}; {schema.name} has {na} attributes (0..{na - 1}: "
            f"{', '.join(schema.attributes)})",
        )
    nv = np.asarray(schema.num_values, dtype=np.int64)[attrs]
    bad = np.flatnonzero((vals < 0) | (vals >= nv))
    if len(bad):
        i = bad[0]
        a = int(attrs[i])
        raise DataFormatError(
            path, int(line_no[i]),
            f"value index {vals[i]} out of range for attribute {a} ({schema.attributes[a]!r}) in {what}; "
            f"expected 0..{schema.num_values[a] - 1}",
        )


def read_items(path, schema: AttributeSchema | None = None, num_images: int | None = None,
               what: str = "query/candidate file") -> np.ndarray:
    """An ASEN ``query_<split>.txt`` or ``candidate_<split>.txt`` (§5.1): ``<image id> <attribute> <value>`` lines.

    Returns an ``int64`` array ``(n, 3)``. With ``schema`` the attribute and value indices are checked against it;
    with ``num_images`` the image ids against the file list. Errors name the file and the 1-based line.
    """
    lines = read_lines(path, what)
    rows, line_no = _parse_int_lines(Path(path), lines, what, pairs=False)
    _check_ranges(path, rows, line_no, schema, num_images, what)
    return rows


def read_label_file(path, schema: AttributeSchema | None = None, num_images: int | None = None) -> np.ndarray:
    """An ASEN ``label_train.txt`` (§5.1): ``<image id> <attr> <value>``, or several pairs ``id a1 v1 a2 v2 ...``.

    Multi-pair lines are expanded to one row per pair, so the result is always an ``int64`` array ``(n, 3)`` of
    ``(image id, attribute index, value index)``. Works without the train file list (the real zhengguorong copy
    lacks it): then only ``id >= 0`` is checked; pass ``num_images`` to check ids against a list, ``schema`` to
    check attribute and value indices.
    """
    what = "training label file"
    lines = read_lines(path, what)
    rows, line_no = _parse_int_lines(Path(path), lines, what, pairs=True)
    _check_ranges(path, rows, line_no, schema, num_images, what)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# meta.json


def _schema_from_dict(path: Path, meta, name: str) -> AttributeSchema:
    if not isinstance(meta, dict) or "ATTRIBUTES" not in meta or "ATTRIBUTES_NUM" not in meta:
        keys = list(meta) if isinstance(meta, dict) else type(meta).__name__
        raise DataFormatError(path, None, f"meta for {name!r} needs keys 'ATTRIBUTES' and 'ATTRIBUTES_NUM'; found {keys}")
    attrs = meta["ATTRIBUTES"]
    nums = meta["ATTRIBUTES_NUM"]
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs) or not attrs:
        raise DataFormatError(path, None, f"meta for {name!r}: 'ATTRIBUTES' must be a non-empty list of names")
    if len(set(attrs)) != len(attrs):
        raise DataFormatError(path, None, f"meta for {name!r}: duplicated attribute names in 'ATTRIBUTES'")
    if not isinstance(nums, dict):
        raise DataFormatError(path, None, f"meta for {name!r}: 'ATTRIBUTES_NUM' must map attribute name -> value count")
    for a in attrs:
        if a not in nums:
            raise DataFormatError(path, None, f"meta for {name!r}: attribute {a!r} has no entry in 'ATTRIBUTES_NUM'")
        n = nums[a]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DataFormatError(path, None, f"meta for {name!r}: value count of {a!r} must be a positive integer, got {n!r}")
    values = meta.get("ATTRIBUTES_VALUES", {}) or {}
    for a in values:
        if a not in attrs:
            raise DataFormatError(path, None, f"meta for {name!r}: 'ATTRIBUTES_VALUES' names unknown attribute {a!r}")
    try:
        return AttributeSchema.from_meta(meta, name=name)
    except (ValueError, TypeError, KeyError) as e:
        raise DataFormatError(path, None, f"meta for {name!r}: {e}") from None


def _is_nested(meta) -> bool:
    return isinstance(meta, dict) and "ATTRIBUTES" not in meta and bool(meta) and all(
        isinstance(v, dict) and "ATTRIBUTES" in v for v in meta.values()
    )


def read_meta(path, dataset: str | None = None) -> AttributeSchema:
    """Read an ASEN ``meta.json`` (data-formats §5.1) into an :class:`~fashionlab.taxonomy.AttributeSchema`.

    Two layouts exist: the flat one (Maryeon/asen: ``ATTRIBUTES``, ``ATTRIBUTES_NUM`` and optionally
    ``ATTRIBUTES_VALUES``) and the nested one keyed by dataset name (zhengguorong/asenpp:
    ``{"FashionAI": {...}, "DARN": {...}, "DeepFashion": {...}}``). For a nested file ``dataset`` picks the
    entry (exact name, else case-insensitive); without it the error lists the datasets. ``path`` may also be the
    folder that holds ``meta.json``. For a flat file ``dataset`` only names the schema.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "meta.json"
    _check_file(path, "meta.json (attribute names and value counts)")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"invalid JSON in meta file: {e.msg} (column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, f"meta file is not UTF-8 text ({e.reason})") from None
    if _is_nested(meta):
        names = list(meta)
        if dataset is None:
            raise DataFormatError(
                path, None, f"meta file holds several datasets {names}; pass dataset=<one of them> to pick one"
            )
        key = dataset if dataset in meta else next((k for k in names if k.lower() == dataset.lower()), None)
        if key is None:
            raise DataFormatError(path, None, f"no dataset {dataset!r} in meta file; it holds {names}")
        return _schema_from_dict(path, meta[key], key)
    return _schema_from_dict(path, meta, dataset or path.parent.name or "dataset")


def find_meta(root) -> tuple[Path, str | None]:
    """Where the ``meta.json`` of an ASEN dataset folder is, and which dataset key to read from it.

    ``root/meta.json`` first (flat, or nested keyed by ``root``'s folder name), else ``root/../meta.json`` keyed
    by ``root``'s folder name (the zhengguorong layout ``data/meta.json`` + ``data/FashionAI/...``, §5.1).
    """
    root = Path(root)
    for cand in (root / "meta.json", root.parent / "meta.json"):
        if cand.is_file():
            return cand, root.resolve().name
    raise FileNotFoundError(
        f"meta.json (attribute names and value counts) not found for dataset folder {root}: looked for "
        f"{root / 'meta.json'} and {root.parent / 'meta.json'}; pass meta=<path or AttributeSchema>"
    )


# ----------------------------------------------------------------------------------------------------------------
# ASEN split


@dataclass
class AsenSplit:
    """One split of an ASEN-format dataset (data-formats §5.1).

    Attributes
    ----------
    root: the dataset folder (``data/<DS>``); ``filenames`` are relative to it (the images may live elsewhere:
        pass an image root to the torch datasets).
    split: ``"train"``, ``"valid"`` or ``"test"``.
    schema: the attribute schema from ``meta.json``.
    filenames: relative image paths; position = image id.
    queries, candidates: ``int64 (n, 3)`` arrays ``(image id, attribute, value)``; empty ``(0, 3)`` for train.
    labels: ``int64 (n, 3)`` training labels from ``label_train.txt`` (multi-pair lines expanded); empty for
        valid/test.
    files: which file each array came from (for error messages).
    """

    root: Path
    split: str
    schema: AttributeSchema
    filenames: list[str]
    queries: np.ndarray
    candidates: np.ndarray
    labels: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.filenames)

    def items(self, which: str) -> np.ndarray:
        """The item array named ``which``: ``"queries"``, ``"candidates"`` or ``"labels"``."""
        if which not in ("queries", "candidates", "labels"):
            raise ValueError(f"which must be 'queries', 'candidates' or 'labels', got {which!r}")
        return getattr(self, which)

    def counts_per_attribute(self, which: str) -> np.ndarray:
        """Number of rows per attribute index in ``queries``/``candidates``/``labels``."""
        return np.bincount(self.items(which)[:, 1], minlength=self.schema.num_attributes)

    def __repr__(self) -> str:
        return (
            f"AsenSplit({self.schema.name} {self.split}: {len(self.filenames)} images, {len(self.queries)} queries, "
            f"{len(self.candidates)} candidates, {len(self.labels)} label rows, root={str(self.root)!r})"
        )


def read_asen_split(root, split: str, meta=None, check_disjoint: bool = True) -> AsenSplit:
    """Read one split of an ASEN / ASEN++ dataset folder (data-formats §5.1).

    ``root`` is ``data/<DS>`` holding ``filenames_<split>.txt`` and, for ``valid``/``test``, ``query_<split>.txt``
    and ``candidate_<split>.txt``; for ``train``, ``label_train.txt``. ``meta`` is an
    :class:`AttributeSchema`, a path to a ``meta.json``, or ``None`` to look in ``root`` then ``root/..`` (nested
    files keyed by ``root``'s folder name, see :func:`find_meta`).

    Every id, attribute and value index is range-checked; with ``check_disjoint`` an image that is both a query
    and a candidate is an error (the real splits are disjoint, §5.1, and an overlap lets a query retrieve itself).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ASEN dataset folder not found: {root}")
    if isinstance(meta, AttributeSchema):
        schema = meta
    elif meta is not None:
        schema = read_meta(meta, dataset=root.resolve().name if _is_nested_file(meta) else None)
    else:
        meta_path, key = find_meta(root)
        schema = read_meta(meta_path, dataset=key)

    files: dict[str, Path] = {}
    fn_path = root / f"filenames_{split}.txt"
    if split == "train" and not fn_path.is_file():
        raise FileNotFoundError(
            f"training image list not found: {fn_path}. The real train file list (filenames_train.txt) ships with the "
            f"ASEN data (data.zip of Maryeon/asenpp, data-formats §5.1); the zhengguorong copy lacks it. To read the "
            f"labels alone use read_label_file({str(root / 'label_train.txt')!r})."
        )
    filenames = read_filenames(fn_path, what=f"image file list of the {split} split")
    files["filenames"] = fn_path
    empty = np.zeros((0, 3), dtype=np.int64)
    queries = candidates = labels = empty
    if split == "train":
        lp = root / "label_train.txt"
        labels = read_label_file(lp, schema=schema, num_images=len(filenames))
        files["labels"] = lp
    else:
        qp, cp = root / f"query_{split}.txt", root / f"candidate_{split}.txt"
        queries = read_items(qp, schema, len(filenames), what=f"query file of the {split} split")
        candidates = read_items(cp, schema, len(filenames), what=f"candidate file of the {split} split")
        files["queries"], files["candidates"] = qp, cp
        if check_disjoint and len(queries) and len(candidates):
            both = np.isin(queries[:, 0], candidates[:, 0])
            if both.any():
                i = int(np.flatnonzero(both)[0])
                img = int(queries[i, 0])
                j = int(np.flatnonzero(candidates[:, 0] == img)[0])
                raise DataFormatError(
                    qp, i + 1,
                    f"image id {img} ({filenames[img]}) is a query and also a candidate (line {j + 1} of {cp.name}); "
                    f"queries and candidates must be disjoint images ({int(both.sum())} such queries; pass "
                    f"check_disjoint=False to allow)",
                )
    return AsenSplit(root=root, split=split, schema=schema, filenames=filenames, queries=queries,
                     candidates=candidates, labels=labels, files=files)


def _is_nested_file(path) -> bool:
    path = Path(path)
    if path.is_dir():
        path = path / "meta.json"
    try:
        return _is_nested(json.loads(path.read_bytes().decode("utf-8-sig")))
    except (OSError, ValueError):
        return False  # read_meta reports the problem


# ----------------------------------------------------------------------------------------------------------------
# FashionAI label.csv


@dataclass
class FashionAILabels:
    """Rows of a FashionAI ``Annotations/label.csv`` (data-formats §5.2).

    Row ``i`` describes image ``paths[i]`` (relative to the folder that holds ``Annotations/``) under attribute
    ``attributes[i]`` (name without ``_labels``; index ``attribute_index[i]`` in ``schema``) with value
    ``values[i]`` (position of ``y``) and secondary "maybe" values ``maybe[i]`` (positions of ``m``, a tuple,
    usually empty). ``line`` holds the 1-based line number of each row.
    """

    path: Path
    schema: AttributeSchema
    paths: list[str]
    attributes: list[str]
    attribute_index: np.ndarray
    values: np.ndarray
    maybe: list[tuple[int, ...]]
    line: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def items(self) -> np.ndarray:
        """``int64 (n, 3)`` items ``(row index, attribute index, value index)``: row index = id into ``paths``."""
        return np.stack([np.arange(len(self), dtype=np.int64), self.attribute_index, self.values], axis=1)

    @property
    def has_maybe(self) -> np.ndarray:
        """Boolean mask of the rows with at least one ``m``."""
        return np.fromiter((bool(m) for m in self.maybe), dtype=bool, count=len(self))

    def __repr__(self) -> str:
        return f"FashionAILabels({len(self)} rows, {int(self.has_maybe.sum())} with 'm', path={str(self.path)!r})"


def read_fashionai_labels(path, schema: AttributeSchema | None = None) -> FashionAILabels:
    """Read a FashionAI ``Annotations/label.csv`` (data-formats §5.2).

    No header; three comma-separated columns: relative image path, task name with the ``_labels`` suffix, one
    character per value (``y`` the label, ``n`` no, ``m`` maybe). The task (suffix stripped) must be an attribute
    of ``schema`` (default :data:`~fashionlab.taxonomy.FASHIONAI`), the string length must equal its value count
    and there must be exactly one ``y``. The value index is the position of ``y``; ``m`` positions are kept.
    """
    schema = schema or FASHIONAI
    path = Path(path)
    lines = read_lines(path, "FashionAI label.csv")
    nv = schema.num_values
    paths: list[str] = []
    attributes: list[str] = []
    aidx: list[int] = []
    values: list[int] = []
    maybe: list[tuple[int, ...]] = []
    line_no: list[int] = []
    for i, ln in enumerate(lines):
        n = i + 1
        if not ln.strip():
            raise DataFormatError(path, n, "blank line; expected '<image path>,<task>_labels,<y/n/m string>'")
        parts = [p.strip() for p in ln.split(",")]
        if len(parts) != 3:
            raise DataFormatError(
                path, n, f"{len(parts)} comma-separated field(s) in {ln.strip()!r}; expected 3: "
                         f"'<image path>,<task>_labels,<y/n/m string>'"
            )
        img, task, code = parts
        if not img:
            raise DataFormatError(path, n, "empty image path")
        attr = task[: -len("_labels")] if task.endswith("_labels") else task
        try:
            a = schema.index(attr)
        except KeyError:
            raise DataFormatError(
                path, n, f"unknown attribute {task!r}; expected one of {[x + '_labels' for x in schema.attributes]}"
            ) from None
        if len(code) != nv[a]:
            raise DataFormatError(
                path, n, f"label string {code!r} has {len(code)} characters; {attr} has {nv[a]} values"
            )
        bad = set(code) - {"y", "n", "m"}
        if bad:
            raise DataFormatError(path, n, f"label string {code!r} has characters {sorted(bad)}; expected only y, n, m")
        ys = [k for k, c in enumerate(code) if c == "y"]
        if len(ys) != 1:
            raise DataFormatError(path, n, f"label string {code!r} has {len(ys)} 'y'; expected exactly one")
        paths.append(img)
        attributes.append(attr)
        aidx.append(a)
        values.append(ys[0])
        maybe.append(tuple(k for k, c in enumerate(code) if c == "m"))
        line_no.append(n)
    return FashionAILabels(
        path=path, schema=schema, paths=paths, attributes=attributes,
        attribute_index=np.asarray(aidx, dtype=np.int64), values=np.asarray(values, dtype=np.int64),
        maybe=maybe, line=np.asarray(line_no, dtype=np.int64),
    )
