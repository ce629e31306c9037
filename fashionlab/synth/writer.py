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

:func:`generate` runs the steps the presets share: check the request (:func:`check_request`) and plan, so
that bad options fail before anything is written; accept the folder (:func:`check_target`: new, empty, a
previous dataset of the same preset, or one half-written by an older fashionlab; anything else is refused);
then, in a hidden temporary folder beside it (:func:`temp_folder`): render, in this process or in worker
processes (:func:`render_plan`); ``write_splits``; ``ground_truth.jsonl`` (one record per line in index order;
record keys starting with ``_`` are working data for ``write_splits`` and are not written); ``synth.json``
(``generator``, ``version``, ``format``, then the preset's body); ``manifest.json`` (each file's size and
SHA-256, :mod:`fashionlab.datasets.manifest`); last, the user's own files of a previous dataset are copied over
and the folder renamed into place (:func:`replace_folder`); the statistics and a summary line. SIGTERM is
turned into an exception like Ctrl-C (:func:`interrupts_as_exceptions`) so the temporary folder is always
removed; folders left by killed processes are removed by the next run (:func:`remove_stale`). :func:`ensure`
is the cache: the dataset of a preset and a size under ``fashionlab.config.data_dir() / "synth"``, generated
once and checked against its manifest (sizes) at every use (:func:`build_once`). The same seed and options
give byte-identical files, whatever the number of workers.

Helpers shared by the presets: :func:`write_lines`, :func:`write_json`, :func:`write_list_file` (DeepFashion list
files, docs/formats.md §5.3), :func:`resolve_render_config`, :func:`config_tag`, :func:`load_ground_truth`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Callable, ClassVar, Iterable

import numpy as np

__all__ = ["Preset", "generate", "ensure", "render_plan", "check_request", "check_target", "owned", "temp_folder",
           "replace_folder", "remove_stale", "interrupts_as_exceptions", "Terminated", "build_once",
           "load_ground_truth", "write_lines", "write_json", "write_list_file", "resolve_render_config",
           "config_tag", "WRITER_FILES"]

#: The files the writer itself adds to every dataset (besides the preset's ``own_files``).
WRITER_FILES: tuple[str, ...] = ("ground_truth.jsonl", "synth.json", "manifest.json", ".complete")


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

def generate(preset: Preset, out_dir, num: int, workers: int | None = 1, progress: bool = True) -> dict:
    """Write the dataset of ``preset`` with ``num`` items into ``out_dir`` (the flow of the module docstring).

    Nothing is written before the request is checked (``num`` and ``workers`` positive integers, the seed
    non-negative, the preset's options by ``plan``) and the folder is accepted (:func:`check_target`). The
    dataset is then written into a temporary folder beside ``out_dir`` and renamed into place only when
    complete (:func:`replace_folder`): an interrupted run (an exception, Ctrl-C, SIGTERM) removes the temporary
    folder and leaves a previous dataset in ``out_dir`` as it was; a run killed outright (SIGKILL) leaves at most
    that hidden temporary folder, which the next run removes (:func:`remove_stale`). Files of the user's own in
    a previous dataset's folder (anything the preset does not write) are kept. ``workers > 1`` renders in that
    many processes (same files).

    Returns the statistics: ``out_dir``, ``num_<unit>``, ``image_size``, ``seed``, ``splits``, the preset's own
    (from ``write_splits``), ``seconds`` (wall clock), ``render_seconds`` (summed over items),
    ``<unit>_per_second`` (rendering only, per core) and ``written_per_second`` (everything, wall clock).
    """
    t_start = time.perf_counter()
    check_request(preset, num, workers)
    plan = preset.plan(num)
    out = Path(out_dir)
    with interrupts_as_exceptions():
        remove_stale(out)
        check_target(out, preset)
        tmp = temp_folder(out)
        try:
            records, render_time, synth, extra = _write(preset, tmp, plan, workers or 1, progress, t_start)
            _carry_over(out, tmp, preset)
            replace_folder(tmp, out)
        finally:
            _remove(tmp)
    seconds = time.perf_counter() - t_start
    n, u = len(records), preset.unit
    stats = {"out_dir": str(out), f"num_{u}": n, "image_size": preset.config.image_size, "seed": int(preset.seed),
             "splits": synth["splits"], **extra, "seconds": seconds, "render_seconds": render_time,
             f"{u}_per_second": n / max(render_time, 1e-9), "written_per_second": n / max(seconds, 1e-9)}
    if progress:
        from ..config import display_path

        print(preset.summary(stats, display_path(out)), flush=True)
    return stats


def _write(preset: Preset, out: Path, plan: list[dict], workers: int, progress: bool, t_start: float):
    """Render ``plan`` into the new folder ``out`` and write the format's files, the ground truth, ``synth.json``
    and last the manifest. Returns ``(records, render seconds, synth.json body, the preset's statistics)``."""
    from ..datasets.manifest import write_manifest

    out.mkdir(parents=True, exist_ok=True)
    for folder in preset.folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
    records, render_time = render_plan(preset, plan, out, workers=workers, progress=progress, t_start=t_start)
    synth, extra = preset.write_splits(out, records)
    write_lines(out / "ground_truth.jsonl",
                (json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) for r in records))
    write_json(out / "synth.json", {"generator": "FashionSynth", "version": preset.version, "format": preset.name,
                                    **synth})
    write_manifest(out)
    return records, render_time, synth, extra


def check_request(preset: Preset, num, workers) -> None:
    """Raise ``ValueError`` (saying what was expected) unless ``num`` is a positive integer, ``workers`` None or
    a positive integer and the preset's seed a non-negative integer: checked before anything is written."""
    def is_int(x):
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    if not is_int(num) or num < 1:
        raise ValueError(f"the number of {preset.unit} must be a positive integer, got {num!r}")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not is_int(preset.seed) or preset.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {preset.seed!r}")


def ensure(preset: Preset, num: int, root=None, workers: int | None = 1, progress: bool = True) -> Path:
    """Path of a complete dataset of ``preset`` with ``num`` items, generating it first if needed.

    The dataset lives in ``<root>/<preset.folder_name(num)>``, ``root`` defaulting to
    ``fashionlab.config.data_dir() / "synth"``; it is generated (into a temporary folder, renamed when complete)
    only when its completion marker is missing or from another version, or when the cheap check against its
    manifest finds a file missing or of the wrong size (:func:`build_once`).
    """
    check_request(preset, num, workers)
    if root is None:
        from ..config import data_dir

        root = data_dir() / "synth"
    path = Path(root) / preset.folder_name(num)

    def write(tmp: Path) -> None:
        _write(preset, tmp, preset.plan(num), workers or 1, progress, time.perf_counter())

    def adopt(folder: Path) -> list:
        from ..datasets.manifest import check_files
        from ..datasets.manifest import list_files as walk

        if progress:
            print(f"{preset.label}: checking {folder} once (cached without a manifest by an older fashionlab)",
                  flush=True)
        return check_files(folder, [r for r in walk(folder) if owned(preset, r) and r != ".complete"])

    return build_once(path, write, preset.version, adopt=adopt, progress=progress)


def _render_chunk(args):
    preset, items, out = args
    return [preset.render_one(item, Path(out)) for item in items]


def render_plan(preset: Preset, plan: list[dict], out: Path, workers: int = 1, progress: bool = True,
                t_start: float | None = None) -> tuple[list[dict], float]:
    """Render every item of ``plan`` with ``preset.render_one``, in this process or in ``workers`` processes
    (chunks of 16-512 items), printing progress ten times. Returns the records in index order and the summed
    render time; the files do not depend on ``workers``. When interrupted, the chunks not started are cancelled
    and the running ones awaited, so no process writes into ``out`` afterwards."""
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
        ex = ProcessPoolExecutor(max_workers=workers)
        try:
            for res in ex.map(_render_chunk, chunks):
                for rec, dt in res:
                    collect(rec, dt)
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        ex.shutdown(wait=True)
    return records, render_time


# ------------------------------------------------------------------------------------------------ the folder

class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's ``KeyboardInterrupt`` while a dataset is written
    (:func:`interrupts_as_exceptions`), so that the temporary folder is removed."""


@contextmanager
def interrupts_as_exceptions():
    """While inside: SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``), as SIGINT raises
    ``KeyboardInterrupt``, so ``finally`` clauses run and remove temporary folders. Does nothing outside the
    main thread or when a handler other than the default is already installed (it is kept)."""
    if (threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM")
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum} (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _signals_deferred():
    """SIGINT and SIGTERM wait (blocked, POSIX main thread) until the block ends: the two renames of
    :func:`replace_folder` happen both or neither."""
    sigs = {getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n)}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def temp_folder(out: Path) -> Path:
    """A new, empty, hidden folder beside ``out`` (``.<name>.tmp-<pid>-<8 hex>``), creating ``out``'s parent
    folders first; an unwritable parent raises ``PermissionError`` naming it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    try:
        tmp.mkdir()
    except PermissionError:
        raise PermissionError(f"{out.parent}: cannot create a folder here (permission denied); "
                              f"expected a writable folder for {out.name}") from None
    return tmp


def _pid_alive(pid: int, folder: Path) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "posix":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
    try:  # no cheap liveness test: a folder untouched for a day is taken as abandoned
        return time.time() - folder.stat().st_mtime < 86400
    except OSError:
        return False


def remove_stale(out: Path) -> list[Path]:
    """Clean up after runs that were killed outright (SIGKILL, power loss) while writing ``out``: their hidden
    ``.<name>.tmp-<pid>-*`` folders are removed, and a previous dataset moved aside as ``.<name>.old-<pid>-*``
    is put back when ``out`` is missing (a kill between the two renames of :func:`replace_folder`), else
    removed. Folders of processes still running are left alone. Returns the folders removed or restored."""
    out = Path(out)
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-(\d+)-[0-9a-f]{{8}}")
    if not out.parent.is_dir():
        return []
    found = []
    for d in out.parent.iterdir():
        m = pattern.fullmatch(d.name)
        if m and d.is_dir() and not _pid_alive(int(m[2]), d):
            found.append((m[1] != "old", d))  # "old" first: it may be the dataset to put back
    done = []
    for _, d in sorted(found):
        if d.name.startswith(f".{out.name}.old-") and not out.exists():
            os.rename(d, out)
        else:
            _remove(d)
        done.append(d)
    return done


def owned(preset: Preset, rel: str) -> bool:
    """Whether the path ``rel`` (POSIX, relative to a dataset folder) is a file the preset or the writer
    writes: ``own_files``, :data:`WRITER_FILES`, the manifest or a match of ``image_globs``."""
    if rel in preset.own_files or rel in WRITER_FILES or rel == "manifest.json":
        return True
    p = PurePosixPath(rel)
    return any(len(PurePosixPath(g).parts) == len(p.parts) and p.match(g) for g in preset.image_globs)


def check_target(out: Path, preset: Preset) -> None:
    """Accept ``out`` as the place of a new dataset of ``preset`` (nothing is written): a missing or empty
    folder, a dataset of the same preset (its ``synth.json``), or a folder holding only files the preset writes
    and no ``synth.json`` (one left half-written by an older fashionlab, which wrote in place). Anything else
    raises ``FileExistsError`` naming the folder and what it holds."""
    from ..datasets.manifest import list_files as walk

    out = Path(out)
    what = f"{preset.label} dataset (format {preset.name!r})"
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is a file; expected a folder for a {what}")
    if not any(out.iterdir()) or preset.is_ours(out):
        return
    if (out / "synth.json").exists():
        try:
            fmt = json.loads((out / "synth.json").read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt is not None:
            raise FileExistsError(f"{out} holds a FashionSynth dataset of format {fmt!r}, not a {what}; "
                                  f"choose an empty or new folder")
    foreign = [r for r in walk(out) if not owned(preset, r)]
    if foreign:
        more = " and more" if len(foreign) > 1 else ""
        raise FileExistsError(f"{out} exists and is not a {what} (no matching synth.json; it holds "
                              f"{foreign[0]!r}{more}); choose an empty or new folder")


def _carry_over(out: Path, tmp: Path, preset: Preset) -> None:
    """Copy the user's own files (those the preset does not write) of a previous dataset in ``out`` into
    ``tmp`` (copies: ``out`` stays whole until the swap)."""
    from ..datasets.manifest import list_files as walk

    if not out.is_dir():
        return
    for rel in walk(out):
        if not owned(preset, rel) and not (tmp / rel).exists():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / rel, tmp / rel)


def replace_folder(tmp: Path, out: Path) -> None:
    """Put the complete folder ``tmp`` in the place of ``out``: rename ``out`` aside (if present), rename
    ``tmp`` to ``out``, remove the old one; SIGINT and SIGTERM wait until this is done."""
    tmp, out = Path(tmp), Path(out)
    with _signals_deferred():
        old = None
        if out.exists():
            old = _sibling(out, "old")
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            _remove(old)


def _remove(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)


def build_once(path: Path, generate: Callable[[Path], object], version: str,
               adopt: Callable[[Path], list] | None = None, progress: bool = True) -> Path:
    """``path``, after ``generate(tmp)`` has written a dataset into a new folder ``tmp`` unless a complete one
    (marker ``.complete`` holding ``version``) that passes the cheap check against its manifest (sizes,
    :func:`fashionlab.datasets.manifest.quick_check`) already exists.

    A damaged cached dataset (a file missing or truncated) is reported on stderr and generated again. A
    complete one without a manifest (cached by an older fashionlab) is checked with ``adopt(path)`` (a list of
    problems; empty: a manifest is written and the dataset kept) or, without ``adopt``, generated again.
    Generation writes into a temporary folder beside ``path`` and renames it when done (:func:`replace_folder`),
    so an interrupted run (also by SIGTERM) never leaves a folder that looks complete nor any debris, and two
    processes asking at once both end up with a good copy; folders of runs killed outright are removed
    (:func:`remove_stale`)."""
    from ..datasets.manifest import MANIFEST_NAME, describe_problems, write_manifest

    path = Path(path)
    marker = path / ".complete"

    def complete() -> bool:
        try:
            return json.loads(marker.read_text()).get("version") == version
        except (OSError, ValueError, AttributeError):
            return False

    from ..distributed import main_first

    with main_first(), interrupts_as_exceptions():  # under torchrun rank 0 renders, the others then find it
        remove_stale(path)
        if complete():
            problems = _cache_problems(path, adopt)
            if not problems:
                return path
            print(f"FashionSynth: {describe_problems(path, problems, limit=5)}; rendering it again",
                  file=sys.stderr, flush=True)
        tmp = temp_folder(path)
        try:
            generate(tmp)
            if not (tmp / MANIFEST_NAME).exists():
                write_manifest(tmp)
            (tmp / ".complete").write_text(json.dumps({"version": version}) + "\n")
            if not (complete() and not _cache_problems(path, None)):  # else another process was faster
                replace_folder(tmp, path)
        finally:
            _remove(tmp)
    return path


def _cache_problems(path: Path, adopt) -> list:
    from ..datasets.manifest import MANIFEST_NAME, Problem, quick_check, read_manifest, write_manifest

    try:
        manifest = read_manifest(path)
    except ValueError as e:
        return [Problem(MANIFEST_NAME, str(e))]
    if manifest is not None:
        return quick_check(path, manifest)
    if adopt is None:
        return [Problem(MANIFEST_NAME, "missing (cached by an older fashionlab)")]
    problems = adopt(path)
    if not problems:
        write_manifest(path)
    return problems


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
