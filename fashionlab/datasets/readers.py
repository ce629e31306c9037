"""Readers for the real annotation formats (docs/formats.md §5.1 ASEN split files, §5.2 FashionAI ``label.csv``,
§5.6 ADDE split files with one-hot labels, used for Shopping100k and FashionSynth's shop dataset).

The same functions read the real files (a user's own copy of the ASEN data, or the real split files of the course
materials, ``../shared/realdata``, which the tests use when present) and the files FashionSynth writes, so the
real-data path runs on every experiment (docs/architecture.md, principle 2).

Robustness rules, learned from the reference loaders (docs/implementations.md §2 "Loader quirks", §10):

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
    "DegenerateEvaluationWarning",
    "show",
    "is_int_token",
    "parse_int",
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
    "ADDE_SPLITS",
    "AddeSplit",
    "read_attr_num",
    "read_onehot_labels",
    "read_id_list",
    "onehot_to_indices",
    "indices_to_onehot",
    "read_adde_split",
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

#: Longest piece of a file's text echoed in an error message (:func:`show`).
SHOW_CHARS = 80

# an integer field: ASCII digits with an optional sign, nothing else (no '1_0', no non-ASCII digits, no '0x10')
_INT = re.compile(r"[+-]?[0-9]+\Z")
# anything that is not an ASCII digit, a sign or whitespace; a sign that does not start a number
_NOT_INT_CHAR = re.compile(r"[^0-9+\-\s]")
_BAD_SIGN = re.compile(r"[+\-](?![0-9])|[0-9][+\-]")


def _find_non_integer(text: str):
    """The first match of a character or sign that no strict integer field allows, or None (fast: one character
    class scan; the sign rule only runs when the text has a sign at all)."""
    m = _NOT_INT_CHAR.search(text)
    if m is None and ("-" in text or "+" in text):
        m = _BAD_SIGN.search(text)
    return m


class DegenerateEvaluationWarning(UserWarning):
    """An evaluation set that the protocol still scores, but where some numbers are fixed by the data, not the
    model: e.g. queries with no relevant candidate (AP 0 by the ASEN protocol, docs/protocols.md §4.1)."""


def show(value, limit: int = SHOW_CHARS) -> str:
    """How an error message quotes a piece of a file: ``repr`` of ``value``, cut to its first ``limit`` characters
    with the full length added (``'1 2 3 ...'... (5000000 characters)``), so a huge line is never echoed whole.
    Strings are cut before quoting; other values (a JSON list, a number) are cut in their ``repr``."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(r)} characters)"


def is_int_token(token: str) -> bool:
    """Whether ``token`` is an integer as the readers accept it: ASCII digits ``0-9`` with an optional ``+`` or
    ``-`` sign. Underscores (``1_0``), non-ASCII digits (``١٢``, ``１２``), ``0x10``, ``3.0`` are not."""
    return _INT.match(token) is not None


def parse_int(token: str, path, line: int | None, what: str, expected: str = "an integer") -> int:
    """``token`` as an ``int`` under the strict rule of :func:`is_int_token`; otherwise a
    :class:`DataFormatError` at ``path:line`` naming the field, ``what`` the file is and ``expected``."""
    if not is_int_token(token):
        raise DataFormatError(path, line, f"field {show(token)} in {what} is not an integer; expected {expected} "
                                          f"(ASCII digits 0-9 with an optional sign)")
    return int(token)



def _check_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise FileNotFoundError(f"{what} {path} is not a file")
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_lines(path, what: str = "file") -> list[str]:
    """The lines of a text file, without line ends, whatever they are (LF, CRLF, bare CR; docs/formats.md §5.1).

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
                msg = f"{n} field(s) {show(lines[i].strip())}"
            expected = (
                "'<image id> <attribute index> <value index>' optionally followed by more '<attribute> <value>' pairs"
                if pairs
                else "'<image id> <attribute index> <value index>' (3 integers)"
            )
            raise DataFormatError(path, i + 1, f"malformed {what} line: {msg}; expected {expected}")
    # strict integers (ASCII digits, optional sign): one regex over the whole text finds the first bad line
    text = "\n".join(lines)
    m = _find_non_integer(text)
    if m is not None:
        i = text.count("\n", 0, m.start())
        tok = next((t for t in tokens[i] if not is_int_token(t)), m.group())
        raise DataFormatError(path, i + 1, f"non-integer field {show(tok)} in {what} line {show(lines[i].strip())}; "
                                           f"expected integers (ASCII digits 0-9 with an optional sign)")
    flat = [tok for t in tokens for tok in t]
    try:
        values = np.array(flat, dtype=np.str_).astype(np.int64) if flat else np.zeros(0, np.int64)
    except (ValueError, OverflowError):
        for i, t in enumerate(tokens):
            for tok in t:
                if not (is_int_token(tok) and abs(int(tok)) < 2**63):
                    raise DataFormatError(
                        path, i + 1, f"integer field {show(tok)} out of range in {what} line {show(lines[i].strip())}; "
                                     f"expected integers that fit 64 bits"
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
        raise DataFormatError(path, None, f"meta for {name!r} needs keys 'ATTRIBUTES' and 'ATTRIBUTES_NUM'; found {show(keys)}")
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
            raise DataFormatError(path, None, f"meta for {name!r}: attribute {show(a)} has no entry in 'ATTRIBUTES_NUM'")
        n = nums[a]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise DataFormatError(path, None, f"meta for {name!r}: value count of {show(a)} must be a positive integer, got {show(n)}")
    values = meta.get("ATTRIBUTES_VALUES", {}) or {}
    for a in values:
        if a not in attrs:
            raise DataFormatError(path, None, f"meta for {name!r}: 'ATTRIBUTES_VALUES' names unknown attribute {show(a)}")
    try:
        return AttributeSchema.from_meta(meta, name=name)
    except (ValueError, TypeError, KeyError) as e:
        raise DataFormatError(path, None, f"meta for {name!r}: {e}") from None


def _is_nested(meta) -> bool:
    return isinstance(meta, dict) and "ATTRIBUTES" not in meta and bool(meta) and all(
        isinstance(v, dict) and "ATTRIBUTES" in v for v in meta.values()
    )


def read_meta(path, dataset: str | None = None) -> AttributeSchema:
    """Read an ASEN ``meta.json`` (docs/formats.md §5.1) into an :class:`~fashionlab.taxonomy.AttributeSchema`.

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
    """One split of an ASEN-format dataset (docs/formats.md §5.1).

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
    """Read one split of an ASEN / ASEN++ dataset folder (docs/formats.md §5.1).

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
            f"ASEN data (data.zip of Maryeon/asenpp, docs/formats.md §5.1); the zhengguorong copy lacks it. To read the "
            f"labels alone use read_label_file({str(root / 'label_train.txt')!r})."
        )
    filenames = read_filenames(fn_path, what=f"image file list of the {split} split")
    if not filenames:
        raise DataFormatError(fn_path, None, f"empty image file list of the {split} split; expected one relative "
                                             f"image path per line (line index = image id)")
    files["filenames"] = fn_path
    empty = np.zeros((0, 3), dtype=np.int64)
    queries = candidates = labels = empty
    if split == "train":
        lp = root / "label_train.txt"
        labels = read_label_file(lp, schema=schema, num_images=len(filenames))
        if not len(labels):
            raise DataFormatError(lp, None, "empty training label file: nothing to train on; expected "
                                            "'<image id> <attribute index> <value index>' lines")
        files["labels"] = lp
    else:
        qp, cp = root / f"query_{split}.txt", root / f"candidate_{split}.txt"
        queries = read_items(qp, schema, len(filenames), what=f"query file of the {split} split")
        candidates = read_items(cp, schema, len(filenames), what=f"candidate file of the {split} split")
        files["queries"], files["candidates"] = qp, cp
        _check_evaluation_set(qp, cp, queries, candidates, schema, split)
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


def _check_evaluation_set(qp: Path, cp: Path, queries: np.ndarray, candidates: np.ndarray, schema: AttributeSchema,
                          split: str) -> None:
    """Refuse an evaluation set the ASEN protocol cannot score (docs/protocols.md §4.1) and warn where its numbers
    would be fixed by the data: no query (mAP = 0/0) or no candidate is a :class:`DataFormatError`; no query with a
    relevant candidate (every AP 0 by the protocol; a multi-label protocol such as paper 05's may still find
    relevant items) and an attribute with queries but no candidate (AP 0 for all its queries) are a
    :class:`DegenerateEvaluationWarning`. Some queries without a relevant candidate are normal
    (AP 0, still counted) and pass silently: a multi-label protocol (paper 05) may find relevant items for them."""
    import warnings

    items = "'<image id> <attribute index> <value index>' lines"
    if not len(queries):
        raise DataFormatError(qp, None, f"empty query file of the {split} split: mAP over no query is undefined; "
                                        f"expected at least one {items}")
    if not len(candidates):
        raise DataFormatError(cp, None, f"empty candidate file of the {split} split: {len(queries)} queries "
                                        f"({qp.name}) have nothing to rank; expected at least one {items}")
    width = int(max(queries[:, 2].max(), candidates[:, 2].max())) + 1
    q_key = queries[:, 1] * width + queries[:, 2]
    has_rel = np.isin(q_key, candidates[:, 1] * width + candidates[:, 2])
    if not has_rel.any():  # the protocol defines the value (every AP 0); a multi-label protocol may differ
        warnings.warn(f"{qp}: none of the {len(queries)} queries of the {split} split has a relevant candidate "
                      f"(same attribute and value) in {cp}: under the ASEN protocol every AP is 0 "
                      f"(docs/protocols.md §4.1)", DegenerateEvaluationWarning, stacklevel=3)
    lonely = [a for a in np.unique(queries[:, 1]).tolist() if not np.any(candidates[:, 1] == a)]
    if lonely:
        names = ", ".join(f"{schema.attributes[a]!r} ({int(np.sum(queries[:, 1] == a))} queries)" for a in lonely)
        warnings.warn(f"{cp}: no candidate for attribute(s) {names} of {qp.name}; their queries score AP 0 "
                      f"(docs/protocols.md §4.1)", DegenerateEvaluationWarning, stacklevel=3)


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
    """Rows of a FashionAI ``Annotations/label.csv`` (docs/formats.md §5.2).

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
    """Read a FashionAI ``Annotations/label.csv`` (docs/formats.md §5.2).

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
                path, n, f"{len(parts)} comma-separated field(s) in {show(ln.strip())}; expected 3: "
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
                path, n, f"unknown attribute {show(task)}; expected one of {[x + '_labels' for x in schema.attributes]}"
            ) from None
        if len(code) != nv[a]:
            raise DataFormatError(
                path, n, f"label string {show(code)} has {len(code)} characters; {attr} has {nv[a]} values: expected "
                         f"{nv[a]} characters, one y/n/m per value"
            )
        bad = set(code) - {"y", "n", "m"}
        if bad:
            raise DataFormatError(path, n, f"label string {show(code)} has characters {show(sorted(bad))}; "
                                           f"expected only y, n, m")
        ys = [k for k, c in enumerate(code) if c == "y"]
        if len(ys) != 1:
            raise DataFormatError(path, n, f"label string {show(code)} has {len(ys)} 'y'; expected exactly one")
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


# ----------------------------------------------------------------------------------------------------------------
# ADDE split files (Shopping100k, FashionSynth shop)

#: The split names of the ADDE files (§5.6).
ADDE_SPLITS = ("train", "test")


def read_attr_num(path) -> tuple[int, ...]:
    """An ADDE ``attr_num.txt`` (docs/formats.md §5.6): the value count of each attribute, in the order of the one-hot
    blocks of ``labels_<split>.txt``. Whitespace-separated positive integers, one per line or several on a line
    (Shopping100k's counts are 16, 17, 19, 14, 10, 15, 2, 11, 16, 7, 9, 15)."""
    what = "attribute value-count file (attr_num.txt)"
    lines = read_lines(path, what)
    counts: list[int] = []
    for i, ln in enumerate(lines):
        for tok in ln.split():
            if not is_int_token(tok) or int(tok) < 1:
                raise DataFormatError(path, i + 1, f"value count {show(tok)} in {what}; expected whitespace-separated "
                                                   f"positive integers (one per attribute)")
            counts.append(int(tok))
    if not counts:
        raise DataFormatError(path, None, f"empty {what}; expected one positive integer per attribute")
    return tuple(counts)


def _block_names(attr_num: Sequence[int], names: Sequence[str] | None) -> list[str]:
    if names is not None and len(names) == len(attr_num):
        return [str(n) for n in names]
    return [f"attribute {k}" for k in range(len(attr_num))]


def read_onehot_labels(path, attr_num: Sequence[int], num_images: int | None = None,
                       names: Sequence[str] | None = None) -> np.ndarray:
    """An ADDE ``labels_<split>.txt`` (docs/formats.md §5.6): one line per image (same order as ``imgs_<split>.txt``),
    the concatenated one-hot blocks of every attribute, ``sum(attr_num)`` whitespace-separated ``0``/``1``.

    A block holds at most one ``1``; an all-zero block means the label is missing. Returns the value indices,
    ``int64 (n, len(attr_num))``, with ``-1`` for a missing label. With ``num_images`` the line count is checked
    against the image list. ``names`` (attribute names) make the error messages clearer. Every error names the
    file and the 1-based line, and for a bad field the column and its attribute block.
    """
    what = "one-hot label file"
    attr_num = [int(n) for n in attr_num]
    if not attr_num or min(attr_num) < 1:
        raise ValueError(f"attr_num must be a non-empty list of positive value counts, got {attr_num}")
    lines = read_lines(path, what)
    total = sum(attr_num)
    names = _block_names(attr_num, names)
    starts = np.concatenate([[0], np.cumsum(attr_num)[:-1]]).astype(np.int64)
    block_of = np.repeat(np.arange(len(attr_num)), attr_num)
    tokens = [ln.split() for ln in lines]
    for i, t in enumerate(tokens):
        if len(t) != total:
            got = "blank line" if not t else f"{len(t)} fields"
            raise DataFormatError(path, i + 1, f"{got} in {what}; expected {total} 0/1 fields (the one-hot blocks "
                                               f"of {len(attr_num)} attributes with {list(attr_num)} values, "
                                               f"attr_num.txt)")
    if num_images is not None and len(lines) != num_images:
        line = num_images + 1 if len(lines) > num_images else None
        raise DataFormatError(path, line, f"{len(lines)} label lines for {num_images} images in the image list; "
                                          f"expected one line per image")
    arr = np.array(tokens, dtype=np.str_).reshape(len(lines), total)
    ones = arr == "1"
    bad = ~(ones | (arr == "0"))
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        b = int(block_of[j])
        raise DataFormatError(path, i + 1, f"field {j + 1} is {show(str(arr[i, j]))}; expected 0 or 1 (column "
                                           f"{j - starts[b] + 1} of the block of {names[b]})")
    if len(lines) == 0:
        return np.zeros((0, len(attr_num)), dtype=np.int64)
    sums = np.add.reduceat(ones.astype(np.int64), starts, axis=1)
    bad = np.argwhere(sums > 1)
    if len(bad):
        i, b = (int(x) for x in bad[0])
        cols = [int(c) + 1 for c in np.flatnonzero(ones[i, starts[b]:starts[b] + attr_num[b]])]
        raise DataFormatError(path, i + 1, f"{int(sums[i, b])} ones in the block of {names[b]} (fields "
                                           f"{starts[b] + 1}-{starts[b] + attr_num[b]}, ones at block columns {cols}); "
                                           f"expected at most one (all zero = label missing)")
    return onehot_to_indices(ones.astype(np.int64), attr_num)


def onehot_to_indices(onehot: np.ndarray, attr_num: Sequence[int]) -> np.ndarray:
    """Concatenated one-hot rows ``(n, sum(attr_num))`` -> value indices ``int64 (n, A)``, -1 where a block is all
    zero (label missing). A block with several ones is a ``ValueError``."""
    onehot = np.asarray(onehot)
    attr_num = [int(n) for n in attr_num]
    if onehot.ndim != 2 or onehot.shape[1] != sum(attr_num):
        raise ValueError(f"one-hot rows must have shape (n, {sum(attr_num)}), got {onehot.shape}")
    out = np.full((onehot.shape[0], len(attr_num)), -1, dtype=np.int64)
    start = 0
    for k, n in enumerate(attr_num):
        block = onehot[:, start:start + n] != 0
        cnt = block.sum(axis=1)
        if (cnt > 1).any():
            raise ValueError(f"row {int(np.flatnonzero(cnt > 1)[0])}: several ones in block {k}")
        has = cnt == 1
        out[has, k] = block[has].argmax(axis=1)
        start += n
    return out


def indices_to_onehot(indices: np.ndarray, attr_num: Sequence[int]) -> np.ndarray:
    """Value indices ``(n, A)`` (-1 = missing) -> concatenated one-hot rows ``int64 (n, sum(attr_num))``."""
    idx = np.asarray(indices, dtype=np.int64)
    attr_num = [int(n) for n in attr_num]
    if idx.ndim != 2 or idx.shape[1] != len(attr_num):
        raise ValueError(f"indices must have shape (n, {len(attr_num)}), got {idx.shape}")
    hi = np.asarray(attr_num)
    if ((idx < -1) | (idx >= hi)).any():
        r, k = (int(x) for x in np.argwhere((idx < -1) | (idx >= hi))[0])
        raise ValueError(f"row {r}: value index {idx[r, k]} out of range -1..{attr_num[k] - 1} for attribute {k}")
    out = np.zeros((idx.shape[0], int(hi.sum())), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(hi)[:-1]])
    rows, cols = np.nonzero(idx >= 0)
    out[rows, starts[cols] + idx[rows, cols]] = 1
    return out


def read_id_list(path, num_images: int | None = None, what: str = "image id list") -> np.ndarray:
    """A file of image ids, one integer per line (e.g. a shop dataset's ``query_test.txt``); ``int64 (n,)``.

    With ``num_images`` every id is checked to lie in ``0..num_images - 1``; a repeated id is an error."""
    lines = read_lines(path, what)
    ids = []
    for i, ln in enumerate(lines):
        t = ln.split()
        if len(t) != 1 or not is_int_token(t[0]) or int(t[0]) < 0:
            raise DataFormatError(path, i + 1, f"{show(ln.strip())} in {what}; expected one non-negative integer image "
                                               f"id per line (ASCII digits 0-9)")
        v = int(t[0])
        if num_images is not None and v >= num_images:
            raise DataFormatError(path, i + 1, f"image id {v} out of range in {what}; expected 0..{num_images - 1} "
                                               f"({num_images} images)")
        ids.append(v)
    arr = np.asarray(ids, dtype=np.int64)
    uniq, first, counts = np.unique(arr, return_index=True, return_counts=True)
    if (counts > 1).any():
        v = int(uniq[counts > 1][0])
        line = int(np.flatnonzero(arr == v)[1]) + 1
        raise DataFormatError(path, line, f"image id {v} repeated in {what} (first on line "
                                          f"{int(first[counts > 1][0]) + 1})")
    return arr


@dataclass
class AddeSplit:
    """One split of an ADDE-layout dataset (docs/formats.md §5.6): Shopping100k's split files or FashionSynth's shop.

    Attributes
    ----------
    root: the dataset folder; ``filenames`` are relative to it.
    split: ``"train"`` or ``"test"``.
    attr_num: the value count of each attribute (``attr_num.txt``).
    schema: names and value names from ``meta.json`` when the folder has one, else ``attribute_<k>`` names.
    filenames: ``imgs_<split>.txt``; position = image id.
    labels: ``int64 (n, A)`` value indices from ``labels_<split>.txt``; -1 = label missing (all-zero block).
    queries, gallery: ``int64`` image ids from ``query_<split>.txt`` / ``gallery_<split>.txt`` when present
        (FashionSynth shop: the test split, paper 04 §6), else empty.
    general, special: the attribute groups of paper 04 §4.1 (``GENERAL`` / ``SPECIAL`` of ``meta.json``; empty
        when unknown).
    files: which file each array came from.
    """

    root: Path
    split: str
    attr_num: tuple[int, ...]
    schema: AttributeSchema
    filenames: list[str]
    labels: np.ndarray
    queries: np.ndarray
    gallery: np.ndarray
    general: tuple[str, ...] = ()
    special: tuple[str, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.filenames)

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.schema.attributes

    def onehot(self) -> np.ndarray:
        """The label rows as concatenated one-hot vectors ``int64 (n, sum(attr_num))`` (missing = zero block)."""
        return indices_to_onehot(self.labels, self.attr_num)

    def labelled(self, attribute: str | int) -> np.ndarray:
        """Boolean mask of the images whose ``attribute`` (name or index) is labelled."""
        k = attribute if isinstance(attribute, (int, np.integer)) else self.schema.index(attribute)
        return self.labels[:, int(k)] >= 0

    def complete(self, attributes: Sequence[str] | None = None) -> np.ndarray:
        """Boolean mask of the images with a label for every one of ``attributes`` (default: all). Paper 04 §7
        scores only queries "which have a valid attribute label for all special attributes"."""
        ks = range(len(self.attr_num)) if attributes is None else [self.schema.index(a) for a in attributes]
        return np.all(self.labels[:, list(ks)] >= 0, axis=1) if len(self.labels) else np.zeros(0, dtype=bool)

    def value_counts(self) -> dict[str, np.ndarray]:
        """{attribute: labelled images per value} (``int64`` of length ``attr_num[k]``)."""
        return {a: np.bincount(self.labels[self.labels[:, k] >= 0, k], minlength=n)
                for k, (a, n) in enumerate(zip(self.schema.attributes, self.attr_num))}

    def __repr__(self) -> str:
        return (f"AddeSplit({self.schema.name} {self.split}: {self.num_images} images, {len(self.attr_num)} "
                f"attributes, {int((self.labels < 0).sum())} missing labels, {len(self.queries)} queries, "
                f"{len(self.gallery)} gallery, root={str(self.root)!r})")


def read_adde_split(root, split: str, meta=None) -> AddeSplit:
    """Read one split of an ADDE-layout dataset folder (docs/formats.md §5.6).

    ``root`` holds ``imgs_<split>.txt``, ``labels_<split>.txt`` and ``attr_num.txt``; optionally ``meta.json``
    (attribute names, value names and, for FashionSynth's shop dataset, the ``GENERAL`` / ``SPECIAL`` groups of
    paper 04 §4.1) and ``query_<split>.txt`` / ``gallery_<split>.txt`` (one image id per line, disjoint). ``meta``
    is an :class:`AttributeSchema` or a path to use instead of ``root/meta.json``. The value counts of the
    schema must equal ``attr_num.txt``. Errors name the file and line.
    """
    if split not in ADDE_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {ADDE_SPLITS}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ADDE dataset folder not found: {root}")
    files: dict[str, Path] = {"attr_num": root / "attr_num.txt"}
    attr_num = read_attr_num(files["attr_num"])
    general: tuple[str, ...] = ()
    special: tuple[str, ...] = ()
    meta_path = None
    if isinstance(meta, AttributeSchema):
        schema = meta
    else:
        meta_path = Path(meta) if meta is not None else root / "meta.json"
        if meta_path.is_dir():
            meta_path = meta_path / "meta.json"
        if meta is None and not meta_path.is_file():
            meta_path = None
            schema = AttributeSchema(name=root.name or "dataset",
                                     attributes=tuple(f"attribute_{k}" for k in range(len(attr_num))),
                                     num_values=attr_num)
        else:
            schema = read_meta(meta_path, dataset=None)
            raw = json.loads(meta_path.read_bytes().decode("utf-8-sig"))
            general, special = tuple(raw.get("GENERAL", ())), tuple(raw.get("SPECIAL", ()))
            for a in general + special:
                if a not in schema.attributes:
                    raise DataFormatError(meta_path, None, f"GENERAL/SPECIAL names unknown attribute {show(a)}; "
                                                           f"attributes are {list(schema.attributes)}")
            files["meta"] = meta_path
    if tuple(schema.num_values) != tuple(attr_num):
        src = meta_path if meta_path is not None else f"schema {schema.name!r}"
        raise DataFormatError(files["attr_num"], None, f"value counts {list(attr_num)} do not match {src} "
                                                       f"({dict(zip(schema.attributes, schema.num_values))})")
    files["filenames"] = root / f"imgs_{split}.txt"
    filenames = read_filenames(files["filenames"], what=f"image list of the {split} split (imgs_{split}.txt)")
    if not filenames:
        raise DataFormatError(files["filenames"], None, f"empty image list of the {split} split; expected one "
                                                        f"relative image path per line (line index = image id)")
    files["labels"] = root / f"labels_{split}.txt"
    labels = read_onehot_labels(files["labels"], attr_num, num_images=len(filenames), names=schema.attributes)
    empty = np.zeros(0, dtype=np.int64)
    ids = {}
    for kind in ("query", "gallery"):
        path = root / f"{kind}_{split}.txt"
        ids[kind] = empty
        if path.is_file():
            ids[kind] = read_id_list(path, len(filenames), what=f"{kind} id list of the {split} split")
            if not len(ids[kind]):
                raise DataFormatError(path, None, f"empty {kind} id list of the {split} split: an evaluation set "
                                                  f"needs at least one {kind} image; expected one image id per line "
                                                  f"(or no {path.name} at all)")
            files[kind] = path
    both = np.intersect1d(ids["query"], ids["gallery"])
    if len(both):
        v = int(both[0])
        line = int(np.flatnonzero(ids["query"] == v)[0]) + 1
        raise DataFormatError(files["query"], line, f"image id {v} is a query and also in the gallery "
                                                    f"({files['gallery'].name}); they must be disjoint")
    return AddeSplit(root=root, split=split, attr_num=attr_num, schema=schema, filenames=filenames, labels=labels,
                     queries=ids["query"], gallery=ids["gallery"], general=general, special=special, files=files)
