"""Manifests of dataset folders and ``fashionlab check-data DIR``: is every file of a dataset there and intact?

A FashionSynth dataset (``fashionlab synth ...`` and the datasets the experiments render once and cache) carries
``manifest.json``, written when the dataset is complete: each file's path relative to the folder, its size in
bytes and its SHA-256::

    {"manifest": "fashionlab", "version": 1, "algorithm": "sha256",
     "files": [{"path": "Images/coat_length_labels/0a1b....jpg", "size": 5123, "sha256": "9f86..."}, ...]}

(the manifest itself and the cache's completion marker ``.complete`` are not listed). Two levels of checking:

* cheap (:func:`quick_check`): every listed file exists and has its size. The experiments run it before
  training (a truncated or deleted image of a cached dataset is found in a fraction of a second, and the dataset
  is rendered again; in a folder given with ``--data`` it is an error naming the files);
* full (:func:`check_folder`, ``fashionlab check-data DIR``): sizes and hashes. A real dataset folder has no
  manifest: then the files named by its split and label files (the layouts of docs/formats.md: ASEN split
  files §5.1, FashionAI ``label.csv`` §5.2, DeepFashion list files §5.3, DeepFashion2 §5.4, ADDE split files
  §5.6) must exist, be non-empty and decode (images with PIL, JSON with the json module).

Every missing or damaged file is named, one per line. :func:`add_check_data_parser` and :func:`run_check_data`
are the ``check-data`` sub-command of :mod:`fashionlab.cli`; :func:`main` runs it on its own
(``python -m fashionlab.datasets.manifest DIR``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

__all__ = ["MANIFEST_NAME", "NOT_LISTED", "Problem", "CheckReport", "sha256_file", "build_manifest",
           "write_manifest", "read_manifest", "list_files", "quick_check", "check_manifest", "listed_files",
           "check_files", "check_folder", "describe_problems", "add_check_data_parser", "run_check_data", "main"]

#: The manifest's file name, at the top of the dataset folder.
MANIFEST_NAME = "manifest.json"
#: Files a manifest never lists: itself and the cache's completion marker (written after it).
NOT_LISTED = (MANIFEST_NAME, ".complete")
#: Extensions decoded as images by the full check of a folder without a manifest.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Problem:
    """One missing or damaged file: ``path`` relative to the folder checked and what is wrong with it."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class CheckReport:
    """The result of :func:`check_folder`: ``root``, what was checked against (``kind``), how many files
    (``checked``), the :class:`Problem` list (empty: the folder is intact) and ``notes`` (facts that are not
    problems, e.g. files present but not in the manifest)."""

    root: Path
    kind: str
    checked: int
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file is missing or damaged."""
        return not self.problems


# ------------------------------------------------------------------------------------------------ writing

def sha256_file(path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of the file ``path``, as 64 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def list_files(root) -> list[str]:
    """Every regular file under ``root``, as sorted POSIX paths relative to it (symbolic links not followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out.append((rel / name).as_posix())
    return sorted(out)


def build_manifest(root) -> dict:
    """The manifest of the folder ``root`` (module docstring): every file but :data:`NOT_LISTED`, sorted."""
    root = Path(root)
    files = []
    for rel in list_files(root):
        if rel in NOT_LISTED:
            continue
        p = root / rel
        files.append({"path": rel, "size": p.stat().st_size, "sha256": sha256_file(p)})
    return {"manifest": "fashionlab", "version": 1, "algorithm": "sha256", "files": files}


def write_manifest(root) -> Path:
    """Write ``<root>/manifest.json`` (:func:`build_manifest`; written to a temporary name and renamed, so a
    manifest on disk is always whole) and return its path."""
    root = Path(root)
    path = root / MANIFEST_NAME
    manifest = build_manifest(root)
    tmp = root / f".{MANIFEST_NAME}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="\n", encoding="utf-8") as f:
        json.dump(manifest, f, indent=0)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_manifest(root) -> dict[str, tuple[int, str]] | None:
    """``{relative path: (size, sha256)}`` from ``<root>/manifest.json``, or None when the folder has none. A
    manifest that cannot be read raises ``ValueError`` naming the file and what was expected."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable manifest ({type(e).__name__}: {e}); expected the JSON written by "
                         f"fashionlab (delete it to check the folder without a manifest)") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or data.get("algorithm") != "sha256":
        raise ValueError(f"{path}: not a fashionlab manifest; expected an object with \"algorithm\": \"sha256\" "
                         f"and a \"files\" list")
    out = {}
    for i, e in enumerate(files):
        ok = (isinstance(e, dict) and isinstance(e.get("path"), str) and type(e.get("size")) is int
              and e["size"] >= 0 and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64)
        rel = PurePosixPath(e["path"]) if ok else None
        if not ok or rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{path}: files[{i}] is not a valid entry; expected {{\"path\": a relative path "
                             f"inside the folder, \"size\": bytes >= 0, \"sha256\": 64 hex digits}}")
        out[e["path"]] = (e["size"], e["sha256"])
    return out


# ------------------------------------------------------------------------------------------------ checking

def quick_check(root, manifest: dict | None = None) -> list[Problem]:
    """The cheap check of a folder with a manifest: every listed file exists and has its listed size (no
    hashing). ``manifest`` defaults to the folder's own (:func:`read_manifest`); a folder without one gives
    ``[]`` here (use :func:`check_files` on the files its split files name)."""
    root = Path(root)
    manifest = read_manifest(root) if manifest is None else manifest
    problems = []
    for rel, (size, _) in (manifest or {}).items():
        st, problem = _stat(root, rel)
        if problem:
            problems.append(problem)
            continue
        if st.st_size != size:
            problems.append(Problem(rel, f"{st.st_size} bytes, expected {size} (truncated or changed)"))
    return problems


def check_manifest(root, manifest: dict | None = None) -> list[Problem]:
    """The full check of a folder with a manifest: sizes (:func:`quick_check`), then the SHA-256 of every
    file of the right size."""
    root = Path(root)
    manifest = read_manifest(root) if manifest is None else manifest
    problems = quick_check(root, manifest)
    bad = {p.path for p in problems}
    for rel, (_, digest) in (manifest or {}).items():
        if rel in bad:
            continue
        try:
            if sha256_file(root / rel) != digest:
                problems.append(Problem(rel, "content differs from the manifest (SHA-256 mismatch)"))
        except OSError as e:
            problems.append(Problem(rel, f"cannot be read ({e.strerror or e})"))
    return problems


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def listed_files(root) -> tuple[str, list[str]]:
    """``(layout, paths)``: the files a real dataset folder's split and label files name, relative to ``root``
    (sorted, each once), and which layouts were found, e.g. ``"ASEN split files (filenames_*.txt)"``. Raises
    ``ValueError`` naming the folder when none of the layouts of the module docstring is there."""
    root = Path(root)
    layouts, files = [], set()
    asen = sorted(root.glob("filenames_*.txt"))
    if asen:
        layouts.append("ASEN split files (filenames_*.txt)")
        for p in asen:
            files.update(_lines(p))
    adde = sorted(root.glob("imgs_*.txt"))
    if adde:
        layouts.append("ADDE split files (imgs_*.txt)")
        for p in adde:
            files.update(_lines(p))
    for anno in ("Annotations/label.csv",):
        if (root / anno).is_file():
            layouts.append(f"FashionAI {anno}")
            files.update(line.split(",")[0].strip() for line in _lines(root / anno))
    lists = [p for p in ("Eval/list_eval_partition.txt", "Anno/list_category_img.txt", "Anno/list_attr_img.txt",
                         "Anno/list_bbox.txt") if (root / p).is_file()]
    if lists:
        layouts.append(f"DeepFashion list files ({', '.join(lists)})")
        for p in lists:
            files.update(line.split()[0] for line in _lines(root / p)[2:])
    df2 = sorted(d for d in root.iterdir() if (d / "annos").is_dir() and (d / "image").is_dir()) \
        if root.is_dir() else []
    if df2:
        layouts.append(f"DeepFashion2 ({', '.join(d.name + '/annos' for d in df2)})")
        for d in df2:
            for a in sorted((d / "annos").glob("*.json")):
                files.add(f"{d.name}/annos/{a.name}")
                files.add(f"{d.name}/image/{a.stem}.jpg")
    if not layouts:
        raise ValueError(f"{root}: no manifest ({MANIFEST_NAME}) and no split or label files naming the images; "
                         f"expected filenames_*.txt (ASEN), imgs_*.txt (ADDE), Annotations/label.csv (FashionAI), "
                         f"Eval/list_eval_partition.txt or Anno/list_*_img.txt (DeepFashion) or <split>/annos "
                         f"with <split>/image (DeepFashion2)")
    return "; ".join(layouts), sorted(files)


def _decode_problem(path: Path) -> str | None:
    """Why the file cannot be decoded (an image by PIL, a JSON file by json), or None."""
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im.load()
        except Exception as e:  # noqa: BLE001  PIL raises many types for a damaged file
            return f"does not decode as an image ({type(e).__name__}: {str(e)[:120]})"
    elif ext == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return f"is not valid JSON ({str(e)[:120]})"
    return None


def check_files(root, paths: Iterable[str], decode: bool = True) -> list[Problem]:
    """Each of ``paths`` (relative to ``root``) exists, is a non-empty file and, with ``decode``, decodes
    (:data:`IMAGE_EXTENSIONS` with PIL, ``.json`` with json)."""
    root = Path(root)
    problems = []
    for rel in paths:
        p = root / rel
        st, problem = _stat(root, rel)
        if problem:
            problems.append(problem)
            continue
        if not p.is_file():
            problems.append(Problem(rel, "is not a file"))
        elif st.st_size == 0:
            problems.append(Problem(rel, "empty (0 bytes)"))
        elif decode:
            why = _decode_problem(p)
            if why:
                problems.append(Problem(rel, why))
    return problems


def check_folder(root, full: bool = True) -> CheckReport:
    """Check the dataset folder ``root`` (module docstring): against its manifest (sizes, and hashes when
    ``full``), else the files its split and label files name (exist and non-empty, and decode when ``full``).
    Raises ``FileNotFoundError`` when ``root`` is not a folder, ``ValueError`` when there is nothing to check
    against (naming the folder and what was expected)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; expected a dataset folder")
    manifest = read_manifest(root)
    if manifest is not None:
        problems = check_manifest(root, manifest) if full else quick_check(root, manifest)
        report = CheckReport(root, f"{MANIFEST_NAME} ({'sizes and SHA-256' if full else 'sizes'})", len(manifest),
                             problems)
        extra = [r for r in list_files(root) if r not in manifest and r not in NOT_LISTED]
        if extra:
            report.notes.append(f"{len(extra)} file(s) not in the manifest (not checked), e.g. {extra[0]}")
        return report
    layout, paths = listed_files(root)
    what = "exist, non-empty, decode" if full else "exist, non-empty"
    return CheckReport(root, f"{layout} ({what})", len(paths), check_files(root, paths, decode=full))


def describe_problems(root, problems: list[Problem], limit: int = 10) -> str:
    """One message for an error: how many files of ``root`` are missing or damaged, the first ``limit`` of
    them, and how to see them all."""
    shown = "; ".join(str(p) for p in problems[:limit])
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    return (f"{root}: {len(problems)} file(s) missing or damaged: {shown}{more} "
            f"(`fashionlab check-data {root}` lists them all)")


# ------------------------------------------------------------------------------------------------ command line

def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("dir", help="the dataset folder")
    p.add_argument("--quick", action="store_true",
                   help="sizes and existence only (no hashing, no decoding): what the experiments run")
    p.set_defaults(func=run_check_data)
    return p


def add_check_data_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``check-data DIR [--quick]`` on ``subparsers`` (what ``add_subparsers()`` returns); it sets
    ``func=run_check_data``. Returns the parser."""
    return _configure(subparsers.add_parser(
        "check-data", help="verify a dataset folder: name every missing or damaged file",
        description="Verify a dataset folder: a FashionSynth dataset against its manifest.json (sizes and "
                    "SHA-256), a real dataset folder by the files its split and label files name (they must exist, "
                    "be non-empty and decode). Exit status 0: intact; 1: files missing or damaged (each named); "
                    "2: nothing to check."))


def run_check_data(args: argparse.Namespace) -> int:
    """``fashionlab check-data``: print what was checked and every missing or damaged file (one per line, on
    stdout); returns 0 when intact, 1 when a file is missing or damaged, 2 when the folder cannot be checked
    (one line on stderr naming it)."""
    try:
        report = check_folder(args.dir, full=not args.quick)
    except (OSError, ValueError) as e:
        print(f"fashionlab check-data: error: {e}", file=sys.stderr)
        return 2
    for p in report.problems:
        print(f"{report.root / p.path}: {p.reason}")
    for n in report.notes:
        print(f"note: {n}")
    verdict = ("intact" if report.ok else
               f"{len(report.problems)} of {report.checked} file(s) missing or damaged")
    print(f"{report.root}: checked {report.checked} file(s) against {report.kind}: {verdict}")
    return 0 if report.ok else 1


def main(argv=None) -> int:
    """``python -m fashionlab.datasets.manifest DIR [--quick]``: :func:`run_check_data` on its own."""
    p = _configure(argparse.ArgumentParser(prog="fashionlab check-data",
                                           description="Verify a dataset folder (fashionlab check-data)."))
    return run_check_data(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


def _stat(root: Path, rel: str):
    """``(stat, None)`` for ``root/rel``, or ``(None, Problem)`` when it is missing or cannot be read."""
    try:
        return (root / rel).stat(), None
    except FileNotFoundError:
        return None, Problem(rel, "missing")
    except OSError as e:
        return None, Problem(rel, f"cannot be read ({e.strerror or e})")
