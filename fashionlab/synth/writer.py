"""The shared writer of FashionSynth datasets: one flow for every preset (folder, render loop, ground truth, cache).

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"). It writes several kinds of
dataset, each in a real dataset's file formats: :mod:`~fashionlab.synth.fashionai` (FashionAI and ASEN files),
:mod:`~fashionlab.synth.shop` (ADDE files), :mod:`~fashionlab.synth.multilabel` (DeepFashion and ASEN files) and
:mod:`~fashionlab.synth.outfit` (DeepFashion2, COCO and DeepFashion files). Such a kind is a *preset*: a
:class:`Preset` subclass whose instance holds the seed, the render config and the preset's own options, and
contributes three steps:

``plan(num)``
    the list of items to render, one dict per image or scene with its global ``"index"`` (0 .. num-1) and
    whatever the preset needs (split, role, ...). Invalid options raise here, before any file is touched.
``render_one(item, out)``
    render one item, write its pictures under the folder ``out`` (nothing when ``out`` is None) and return
    ``(record, seconds)``: its ground-truth record (a JSON-ready dict with ``"index"``) and the time spent
    rendering, without encoding and writing. Everything random comes from generators seeded with the seed and
    the item's index, so the files do not depend on the order or the process an item is rendered in.
``write_splits(out, records)``
    write the format's files (split lists, labels, annotations) from the records in index order and return
    ``(synth, stats)``: the body of ``synth.json`` (it must hold ``"splits"``) and the preset's statistics.

and declares, as class attributes, ``name`` (the ``format`` in ``synth.json`` and the command name),
``version``, ``label`` (for messages), ``unit`` ("images" or "scenes"), ``own_files`` and ``image_globs`` (what
it writes, relative to the folder, so that a previous dataset of the same preset can be replaced) and
``folders`` (sub-folders to create), plus :meth:`Preset.folder_name` for the cache.

:func:`generate` runs the steps the presets share: plan; prepare the folder (:func:`prepare_folder`: a previous
dataset of the same preset is cleared, its own files only; a folder with anything else is refused); render, in
this process or in worker processes (:func:`render_plan`); ``write_splits``; ``ground_truth.jsonl`` (one record
per line in index order; record keys starting with ``_`` are working data for ``write_splits`` and are not
written); ``synth.json`` (``generator``, ``version``, ``format``, then the preset's body); the statistics and a
summary line. :func:`ensure` is the cache: the dataset of a preset and a size under
``fashionlab.config.data_dir() / "synth"``, generated once (:func:`build_once`). The same seed and options give
byte-identical files, whatever the number of workers.

Helpers shared by the presets: :func:`write_lines`, :func:`write_json`, :func:`write_list_file` (DeepFashion list
files, docs/formats.md §5.3), :func:`resolve_render_config`, :func:`config_tag`, :func:`load_ground_truth`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Callable, ClassVar, Iterable

__all__ = ["Preset", "generate", "ensure", "render_plan", "prepare_folder", "build_once", "load_ground_truth",
           "write_lines", "write_json", "write_list_file", "resolve_render_config", "config_tag", "WRITER_FILES"]

#: The files the writer itself adds to every dataset (besides the preset's ``own_files``).
WRITER_FILES: tuple[str, ...] = ("ground_truth.jsonl", "synth.json", ".complete")


class Preset(ABC):
    """One kind of FashionSynth dataset with its options (module docstring): what :func:`generate` needs.

    Subclasses are dataclasses with at least the fields ``seed`` (int) and ``config`` (a frozen config with
    ``image_size`` and ``to_dict()``, e.g. :class:`~fashionlab.synth.garments.RenderConfig`), and set the class
    attributes below. Instances are pickled to worker processes, so they hold plain data only.
    """

    #: ``format`` in ``synth.json``, the command name (``fashionlab synth <name>``) and the cache prefix.
    name: ClassVar[str]
    #: Generator version: written to ``synth.json`` and the ``.complete`` marker; a cached dataset of another
    #: version is generated again.
    version: ClassVar[str]
    #: Name in messages ("FashionSynth shop").
    label: ClassVar[str]
    #: What one item is ("images" or "scenes"): the statistics' ``num_<unit>`` and ``<unit>_per_second``.
    unit: ClassVar[str] = "images"
    #: The preset's own files, relative to the dataset folder (the writer adds :data:`WRITER_FILES`).
    own_files: ClassVar[tuple[str, ...]] = ()
    #: Glob patterns (relative to the folder) of the pictures ``render_one`` writes.
    image_globs: ClassVar[tuple[str, ...]] = ()
    #: Sub-folders to create before rendering.
    folders: ClassVar[tuple[str, ...]] = ()

    seed: int
    config: object

    @abstractmethod
    def plan(self, num: int) -> list[dict]:
        """The items to render, in index order (``item["index"] == position``)."""

    @abstractmethod
    def render_one(self, item: dict, out: Path | None) -> tuple[dict, float]:
        """Render ``item``, write its pictures under ``out`` (if not None); ``(record, render seconds)``."""

    @abstractmethod
    def write_splits(self, out: Path, records: list[dict]) -> tuple[dict, dict]:
        """Write the format's files from ``records`` (index order); ``(synth.json body, statistics)``."""

    @abstractmethod
    def folder_name(self, num: int) -> str:
        """The name of the cached dataset of ``num`` items (:func:`ensure`)."""

    def is_ours(self, out: Path) -> bool:
        """Whether the folder ``out`` holds a dataset of this preset (its ``synth.json`` names our format)."""
        try:
            return json.loads((out / "synth.json").read_text()).get("format") == self.name
        except (OSError, ValueError, AttributeError):
            return False

    def summary(self, stats: dict, where: str) -> str:
        """The line printed after generation (``where``: the folder as displayed)."""
        u = self.unit
        return (f"{self.label}: {stats[f'num_{u}']} {u} ({stats['image_size']} px) in {where}: rendering "
                f"{stats[f'{u}_per_second']:.0f} {u}/s per core, {stats['written_per_second']:.0f} {u}/s written")


# ------------------------------------------------------------------------------------------------ the flow

def generate(preset: Preset, out_dir, num: int, workers: int = 1, progress: bool = True) -> dict:
    """Write the dataset of ``preset`` with ``num`` items into ``out_dir`` (the flow of the module docstring).

    ``workers > 1`` renders in that many processes (same files). Returns the statistics: ``out_dir``,
    ``num_<unit>``, ``image_size``, ``seed``, ``splits``, the preset's own (from ``write_splits``), ``seconds``
    (wall clock), ``render_seconds`` (summed over items), ``<unit>_per_second`` (rendering only, per core) and
    ``written_per_second`` (everything, wall clock).
    """
    t_start = time.perf_counter()
    plan = preset.plan(num)
    out = Path(out_dir)
    prepare_folder(out, preset.own_files + WRITER_FILES, preset.image_globs, preset.is_ours,
                   f"{preset.label} dataset (format {preset.name!r})")
    for folder in preset.folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    records, render_time = render_plan(preset, plan, out, workers=workers, progress=progress, t_start=t_start)
    synth, extra = preset.write_splits(out, records)
    write_lines(out / "ground_truth.jsonl",
                (json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) for r in records))
    write_json(out / "synth.json", {"generator": "FashionSynth", "version": preset.version, "format": preset.name,
                                    **synth})
    seconds = time.perf_counter() - t_start
    n, u = len(records), preset.unit
    stats = {"out_dir": str(out), f"num_{u}": n, "image_size": preset.config.image_size, "seed": int(preset.seed),
             "splits": synth["splits"], **extra, "seconds": seconds, "render_seconds": render_time,
             f"{u}_per_second": n / max(render_time, 1e-9), "written_per_second": n / max(seconds, 1e-9)}
    if progress:
        from ..config import display_path

        print(preset.summary(stats, display_path(out)), flush=True)
    return stats


def ensure(preset: Preset, num: int, root=None, workers: int = 1, progress: bool = True) -> Path:
    """Path of a complete dataset of ``preset`` with ``num`` items, generating it first if needed.

    The dataset lives in ``<root>/<preset.folder_name(num)>``, ``root`` defaulting to
    ``fashionlab.config.data_dir() / "synth"``; it is generated (:func:`generate`) only when its completion
    marker is missing or from another version (:func:`build_once`).
    """
    if root is None:
        from ..config import data_dir

        root = data_dir() / "synth"
    path = Path(root) / preset.folder_name(num)
    return build_once(path, lambda tmp: generate(preset, tmp, num, workers=workers, progress=progress),
                      preset.version)


def _render_chunk(args):
    preset, items, out = args
    return [preset.render_one(item, Path(out)) for item in items]


def render_plan(preset: Preset, plan: list[dict], out: Path, workers: int = 1, progress: bool = True,
                t_start: float | None = None) -> tuple[list[dict], float]:
    """Render every item of ``plan`` with ``preset.render_one``, in this process or in ``workers`` processes
    (chunks of 16-512 items), printing progress ten times. Returns the records in index order and the summed
    render time; the files do not depend on ``workers``."""
    t_start = time.perf_counter() if t_start is None else t_start
    records: list[dict] = [None] * len(plan)  # type: ignore[list-item]
    render_time = 0.0
    step = max(1, len(plan) // 10)
    done = 0

    def collect(rec, dt):
        nonlocal render_time, done
        records[rec["index"]] = rec
        render_time += dt
        done += 1
        if progress and (done % step == 0 or done == len(plan)):
            el = time.perf_counter() - t_start
            print(f"  {preset.label}: {done}/{len(plan)} {preset.unit} ({done / max(el, 1e-9):.0f}/s)", flush=True)

    if workers <= 1:
        for item in plan:
            collect(*preset.render_one(item, out))
    else:
        from concurrent.futures import ProcessPoolExecutor

        csize = max(16, min(512, len(plan) // (workers * 8) or 1))
        chunks = [(preset, plan[i:i + csize], str(out)) for i in range(0, len(plan), csize)]
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for res in ex.map(_render_chunk, chunks):
                for rec, dt in res:
                    collect(rec, dt)
    return records, render_time


def prepare_folder(out: Path, own_files: Iterable[str], image_globs: Iterable[str], is_ours: Callable[[Path], bool],
                   what: str) -> None:
    """Create ``out``; clear a previous dataset there (only its own files: ``own_files`` and the files matching
    the globs ``image_globs``, relative to ``out``), and refuse (``FileExistsError``) a non-empty folder for
    which ``is_ours(out)`` is false; ``what`` names the kind of dataset in the error."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not is_ours(out):
            raise FileExistsError(f"{out} exists and is not a {what} (no matching synth.json); "
                                  f"choose an empty or new folder")
        for pattern in image_globs:
            for f in out.glob(pattern):
                f.unlink()
        for name in own_files:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def build_once(path: Path, generate: Callable[[Path], object], version: str) -> Path:
    """``path``, after ``generate(tmp)`` has written a dataset there unless a complete one (marker ``.complete``
    holding ``version``) already exists. Generation writes into a temporary folder beside ``path`` and renames it
    when done, so an interrupted run never leaves a folder that looks complete, and two processes asking at once
    both end up with a good copy."""
    path = Path(path)
    marker = path / ".complete"

    def complete() -> bool:
        try:
            return json.loads(marker.read_text()).get("version") == version
        except (OSError, ValueError):
            return False

    if complete():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        generate(tmp)
        (tmp / ".complete").write_text(json.dumps({"version": version}) + "\n")
        if path.exists() and not complete():
            shutil.rmtree(path)  # interrupted or outdated
        try:
            os.rename(tmp, path)
        except OSError:
            if not complete():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_ground_truth(root, split: str | None = None, splits: tuple[str, ...] | None = None,
                      id_key: str = "id") -> list[dict]:
    """The records of ``<root>/ground_truth.jsonl`` of a FashionSynth dataset: all (index order), or those of one
    ``split`` (one of ``splits`` when given) sorted by ``id_key``. A line that is not JSON raises ``ValueError``
    naming the file and line."""
    path = Path(root) / "ground_truth.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no FashionSynth ground truth here (is {root} a FashionSynth dataset?)")
    if split is not None and splits is not None and split not in splits:
        raise ValueError(f"unknown split {split!r}; expected one of {splits}")
    recs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: invalid JSON ({e.msg})") from None
    if split is not None:
        recs = sorted((r for r in recs if r["split"] == split), key=lambda r: r[id_key])
    return recs


# ------------------------------------------------------------------------------------------------ files

def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` to ``path``, one per line, UTF-8 with LF endings (the split files' convention)."""
    with open(path, "w", newline="\n", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def write_json(path: Path, obj, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON (``indent`` spaces, None: one line) and a final LF to ``path``."""
    with open(path, "w", newline="\n", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


def write_list_file(path: Path, header: str, rows, min_width: int, gap: int) -> None:
    """A DeepFashion list file (docs/formats.md §5.3): the count, the column ``header``, then one line per
    ``(name, rest)`` row with the name left-justified to ``max(min_width, longest name + gap)`` characters."""
    rows = list(rows)
    width = max([min_width] + [len(n) + gap for n, _ in rows])
    write_lines(path, [str(len(rows)), header] + [n.ljust(width) + rest for n, rest in rows])


# ------------------------------------------------------------------------------------------------ configs

def resolve_render_config(config, image_size: int | None, default, default_name: str | None = None):
    """The render config of a preset: ``config`` (a :class:`~fashionlab.synth.garments.RenderConfig`), a name
    (``default_name`` for ``default``, else one of :data:`~fashionlab.synth.garments.PRESETS`) or None for
    ``default``; ``image_size`` (None: the config's) overrides its canvas size."""
    from .garments import PRESETS, RenderConfig

    if isinstance(config, str):
        if default_name is not None and config == default_name:
            config = default
        elif config in PRESETS:
            config = PRESETS[config]
        else:
            expected = f"{default_name!r} or one of {list(PRESETS)}" if default_name else f"one of {list(PRESETS)}"
            raise ValueError(f"unknown config {config!r}; expected {expected}")
    config = config or default
    if not isinstance(config, RenderConfig):
        raise TypeError(f"config must be a RenderConfig, a preset name or None, got {type(config).__name__}")
    if image_size is not None:
        config = replace(config, image_size=int(image_size))
    return config


def config_tag(config, reference) -> str:
    """``""`` when ``config`` equals ``reference`` at ``config``'s image size, else ``"-c"`` and the first 8 hex
    digits of the MD5 of its sorted JSON: the part of a cache folder name that tells configs apart."""
    if config == replace(reference, image_size=config.image_size):
        return ""
    return "-c" + hashlib.md5(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
