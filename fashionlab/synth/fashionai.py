"""Write FashionSynth datasets in the real FashionAI and ASEN formats, with the full ground truth beside them.

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"; docs/architecture.md, principle 2: synthetic data speaks the
real formats). :func:`generate_fashionai` renders ``num_images`` garments and writes, into one folder:

``Images/<attribute>_labels/<32 hex>.jpg``
    the images (JPEG quality 95), in the folder of the attribute they are annotated under, like the
    FashionAI archives. The name is the MD5 of ``"fashionsynth-v1:<seed>:<index>"``.
``Annotations/label.csv``
    FashionAI's original label file (docs/formats.md §5.2): no header, one row per image in index order,
    ``Images/<attr>_labels/<name>.jpg,<attr>_labels,<one char per value>`` with exactly one ``y``, ``n``
    elsewhere and sometimes an ``m`` ("maybe") on a plausible neighbouring value: the adjacent length when the
    drawn length lies in the outer tenth of its band, or (3% of detail rows) a similar shape (``MAYBE``).
``filenames_*.txt``, ``label_train.txt``, ``query_*.txt``, ``candidate_*.txt``, ``meta.json``
    the ASEN split files (docs/formats.md §5.1). Paths are relative to the dataset folder; ids are line numbers
    in ``filenames_<split>.txt``; ``label_train.txt`` and the query/candidate files hold
    ``<id> <attribute idx> <value idx>``. Queries and candidates are disjoint images (about 20% / 80% of a
    split; queries listed in shuffled order, candidates in id order, as in the real files); ``meta.json`` is
    ``FASHIONAI.to_meta()``.
``ground_truth.jsonl``
    one JSON object per image, in index order (train, then valid, then test) with keys ``index`` (global),
    ``split``, ``id`` (line in ``filenames_<split>.txt``), ``role`` ("train" | "query" | "candidate"),
    ``filename``, ``attribute`` (the annotated dimension), ``attribute_index``, ``value``, ``value_name``,
    ``maybe`` (value indices marked ``m`` in label.csv), and the renderer's ground truth: ``category``, ``body``,
    ``values`` (all eight attributes, name -> value index; 0 = Invisible), ``garment_box``, ``regions``
    (attribute -> [x1, y1, x2, y2] or null), ``parts`` (part -> box or null), ``colour``, ``colour2``,
    ``pattern``, ``scale``, ``rotation``, ``image_size``. Boxes are pixels of the written image, x2/y2
    exclusive (see :mod:`fashionlab.synth.garments`).
``synth.json``
    generator name and version, seed, options (render config), split sizes and per-attribute counts.

Every image is annotated under ONE attribute, FashionAI style. The annotated (attribute, value) pairs are
planned per split (:func:`plan_splits`): attribute shares follow the real FashionAI valid split, values are
balanced within an attribute (Invisible at half weight), every value gets at least a few images in train and
in the candidates of valid and test (with tiny datasets the valid and test splits grow to make room for one
candidate per value, ``ceil(54 / 0.8) = 68`` images each). A garment is then drawn with that value forced
(:func:`~fashionlab.synth.garments.sample_garment`), so Invisible examples show a garment without that
dimension. Each image has its own generator ``numpy.random.default_rng([seed, index])``: images do not depend
on the order they are made in, and the same seed and options give byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..taxonomy import FASHIONAI
from .garments import ATTRIBUTES, LENGTH_ATTRIBUTES, NUM_VALUES, PRESETS, RenderConfig, render, sample_garment

__all__ = ["VERSION", "ATTRIBUTE_SHARES", "MAYBE", "plan_splits", "image_name", "generate_fashionai",
           "ensure_fashionai", "build_once", "prepare_folder", "write_lines", "load_ground_truth", "main_fashionai"]

#: Generator version, written to synth.json and checked by :func:`ensure_fashionai`.
VERSION = "1.2"
SPLITS = ("train", "valid", "test")
#: Relative share of each attribute among the annotated images: the per-attribute query counts of the real
#: FashionAI valid split (docs/formats.md §5.1).
ATTRIBUTE_SHARES = dict(zip(ATTRIBUTES, (439, 596, 515, 419, 356, 330, 668, 277)))
#: Similar detail values that label.csv may mark ``m`` ("maybe") beside the ``y``.
MAYBE = {
    "collar_design": {1: 4, 2: 3, 3: 2, 4: 1},
    "lapel_design": {1: 3, 2: 3, 3: 4, 4: 3},
    "neckline_design": {1: 8, 2: 4, 3: 5, 4: 2, 5: 3, 6: 3, 7: 3, 8: 1, 9: 1},
    "neck_design": {1: 3, 2: 3, 3: 1, 4: 2},
}
_MAYBE_DETAIL_P = 0.03
_MAYBE_LENGTH_EDGE = 0.9
_JPEG_QUALITY = 95


def image_name(seed: int, index: int) -> str:
    """The 32-hex image name of image ``index`` of a dataset generated with ``seed``."""
    return hashlib.md5(f"fashionsynth-v1:{seed}:{index}".encode()).hexdigest()


def _allocate(n: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``n`` into integer counts proportional to ``weights`` with at least ``minimum`` each (largest
    remainder, ties by position)."""
    k = len(weights)
    m = max(0, min(minimum, n // k))
    rest = n - m * k
    quota = rest * weights / weights.sum()
    counts = np.floor(quota).astype(int)
    left = rest - counts.sum()
    order = np.lexsort((np.arange(k), -(quota - counts)))
    counts[order[:left]] += 1
    return counts + m


def plan_splits(num_images: int, seed: int, split=(0.8, 0.1, 0.1), query_fraction: float = 0.2,
                invisible_weight: float = 0.5, min_per_value: int = 5) -> list[dict]:
    """The annotation plan: for each global image index, its split, id, role and annotated (attribute, value).

    Returns a list of ``{"index", "split", "id", "role", "attribute", "value"}`` in index order (train ids
    first, then valid, then test). See the module docstring for the rules.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be positive, got {num_images}")
    cells = [(ai, v) for ai, a in enumerate(ATTRIBUTES) for v in range(NUM_VALUES[a])]
    C = len(cells)
    shares = np.array([ATTRIBUTE_SHARES[a] for a in ATTRIBUTES], dtype=float)
    shares /= shares.sum()
    w = np.array([shares[ai] * (invisible_weight if v == 0 else 1.0) /
                  (invisible_weight + NUM_VALUES[ATTRIBUTES[ai]] - 1) for ai, v in cells])
    n_eval_min = math.ceil(C / (1.0 - query_fraction))
    sizes = {}
    for name, frac in zip(SPLITS[1:], split[1:]):
        sizes[name] = max(int(round(frac * num_images)), min(n_eval_min, num_images // 4)) if frac > 0 else 0
    sizes["train"] = num_images - sizes["valid"] - sizes["test"]
    plan = []
    index = 0
    for si, name in enumerate(SPLITS):
        n = sizes[name]
        counts = _allocate(n, w, min_per_value)
        roles = np.zeros(C, dtype=int)  # queries per cell
        if name != "train":
            roles = np.array([min(max(k - 1, 0), int(math.floor(query_fraction * k))) for k in counts])
            missing = int(round(query_fraction * n)) - roles.sum()
            # hand out the remaining queries one at a time to the attribute furthest below its query share
            # (then to its value furthest below), so every attribute gets queries even in a tiny split
            attr_of = np.array([ai for ai, _ in cells])
            while missing > 0:
                open_ = roles < counts - 1
                if not open_.any():
                    break
                target = np.bincount(attr_of, weights=query_fraction * counts, minlength=len(ATTRIBUTES))
                have = np.bincount(attr_of, weights=roles, minlength=len(ATTRIBUTES))
                deficit = np.where(np.bincount(attr_of, weights=open_, minlength=len(ATTRIBUTES)) > 0,
                                   target - have, -np.inf)
                ai = int(np.argmax(deficit))
                frac = np.where(open_ & (attr_of == ai), query_fraction * counts - roles, -np.inf)
                ci = int(np.argmax(frac))
                roles[ci] += 1
                missing -= 1
        items = []
        for ci, (k, q) in enumerate(zip(counts, roles)):
            ai, v = cells[ci]
            role = "train" if name == "train" else None
            for j in range(int(k)):
                items.append((ai, v, role or ("query" if j < q else "candidate")))
        order = np.random.default_rng([seed, 0x5EED, si]).permutation(len(items))
        for i, o in enumerate(order):
            ai, v, role = items[o]
            plan.append({"index": index, "split": name, "id": i, "role": role, "attribute": ATTRIBUTES[ai],
                         "value": int(v)})
            index += 1
    return plan


def _maybe(spec, attribute: str, value: int, config: RenderConfig, rng: np.random.Generator) -> list[int]:
    """Values marked ``m`` beside the ``y`` (see the module docstring); uses ``rng`` for detail attributes."""
    r = rng.random()
    if value == 0:
        return []
    n = NUM_VALUES[attribute]
    if attribute in LENGTH_ATTRIBUTES:
        j = spec.value(attribute) and spec.jitter[ATTRIBUTES.index(attribute)]
        if config.length_jitter > 0 and abs(j) > _MAYBE_LENGTH_EDGE:
            nb = value + (1 if j > 0 else -1)
            if 1 <= nb < n:
                return [nb]
        return []
    if r < _MAYBE_DETAIL_P:
        return [MAYBE[attribute][value]]
    return []


def _render_one(seed: int, item: dict, config: RenderConfig, out_dir: Path | None):
    index = item["index"]
    a, v = item["attribute"], item["value"]
    rng = np.random.default_rng([seed, index])
    t0 = time.perf_counter()
    spec = sample_garment(rng, attribute=a, value=v)
    img, gt = render(spec, config, rng)
    dt = time.perf_counter() - t0
    maybe = _maybe(spec, a, v, config, np.random.default_rng([seed, index, 1]))
    filename = f"Images/{a}_labels/{image_name(seed, index)}.jpg"
    if out_dir is not None:
        Image.fromarray(img).save(out_dir / filename, quality=_JPEG_QUALITY)
    record = {"index": index, "split": item["split"], "id": item["id"], "role": item["role"],
              "filename": filename, "attribute": a, "attribute_index": ATTRIBUTES.index(a), "value": v,
              "value_name": FASHIONAI.value_name(a, v), "maybe": maybe}
    record.update(gt)
    return record, dt


def _render_chunk(args):
    seed, items, config_dict, out_dir = args
    config = RenderConfig.from_dict(config_dict)
    return [_render_one(seed, it, config, Path(out_dir)) for it in items]


def render_plan(plan: list[dict], seed: int, config: RenderConfig, out: Path, render_one, render_chunk,
                extra: tuple = (), workers: int = 1, progress: bool = True, label: str = "FashionSynth",
                t_start: float | None = None) -> tuple[list[dict], float]:
    """Render every item of ``plan`` (each a dict with its ``"index"``) for a FashionSynth generator, in this
    process or in ``workers`` processes, printing progress ten times. ``render_one(seed, item, config, *extra,
    out)`` returns ``(record, seconds)``; ``render_chunk((seed, items, config_dict, *extra, out_str))`` the same
    for a chunk (a module-level function, so that it pickles). Returns the records in index order and the summed
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
            print(f"  {label}: {done}/{len(plan)} images ({done / max(el, 1e-9):.0f}/s)", flush=True)

    if workers <= 1:
        for item in plan:
            collect(*render_one(seed, item, config, *extra, out))
    else:
        from concurrent.futures import ProcessPoolExecutor

        csize = max(16, min(512, len(plan) // (workers * 8) or 1))
        chunks = [(seed, plan[i:i + csize], config.to_dict(), *extra, str(out)) for i in range(0, len(plan), csize)]
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for res in ex.map(render_chunk, chunks):
                for rec, dt in res:
                    collect(rec, dt)
    return records, render_time


def _label_chars(n: int, value: int, maybe) -> str:
    chars = ["n"] * n
    for m in maybe:
        chars[m] = "m"
    chars[value] = "y"
    return "".join(chars)


def write_lines(path: Path, lines) -> None:
    """Write ``lines`` to ``path``, one per line, UTF-8 with LF endings (the split files' convention)."""
    with open(path, "w", newline="\n", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


_OWN_FILES = ("Annotations/label.csv", "filenames_train.txt", "filenames_valid.txt", "filenames_test.txt",
              "label_train.txt", "query_valid.txt", "candidate_valid.txt", "query_test.txt", "candidate_test.txt",
              "meta.json", "ground_truth.jsonl", "synth.json", ".complete")


def prepare_folder(out: Path, own_files, image_globs, is_ours, what: str) -> None:
    """Create ``out``; clear a previous FashionSynth dataset there (only its own files: ``own_files`` and the
    files matching the globs ``image_globs``, relative to ``out``), and refuse a folder with other content
    (``is_ours(out)`` false). Shared by every FashionSynth generator; ``what`` names the kind in the error."""
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


def _prepare_folder(out: Path) -> None:
    prepare_folder(out, _OWN_FILES, [f"Images/{a}_labels/*.jpg" for a in ATTRIBUTES],
                   lambda o: (o / "synth.json").is_file(), "FashionSynth dataset")


def generate_fashionai(out_dir, num_images: int, seed: int = 0, image_size: int | None = None,
                       config: RenderConfig | str | None = None, progress: bool = True, workers: int = 1,
                       split=(0.8, 0.1, 0.1), query_fraction: float = 0.2) -> dict:
    """Render a FashionSynth dataset in the FashionAI / ASEN formats (docs/formats.md §5.1, §5.2) into ``out_dir``.

    FashionSynth is our own generator (docs/architecture.md, "FashionSynth"); the layout and the ground-truth schema are
    in the module docstring and ``data/README.md``. A previous FashionSynth dataset in ``out_dir`` is replaced
    (its own files only); a non-empty folder that is not one is refused. ``config`` is a
    :class:`RenderConfig`, a preset name ("wild", "clean") or None for "wild"; ``image_size`` (default: the
    config's, 128 for the presets) overrides its canvas size. ``workers > 1`` renders in that many processes
    (the files are the same). Same seed and options give byte-identical files.

    Returns statistics: ``num_images``, ``splits``, ``queries``, ``candidates``, ``seconds`` (wall),
    ``render_seconds`` and ``images_per_second`` (rendering only, per core: sampling the garment and drawing
    it, without JPEG encoding and writing), ``written_per_second`` (everything, wall clock).
    """
    t_start = time.perf_counter()
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"unknown preset {config!r}; expected one of {list(PRESETS)}")
        config = PRESETS[config]
    config = config or PRESETS["wild"]
    if image_size is not None:
        config = replace(config, image_size=int(image_size))
    out = Path(out_dir)
    _prepare_folder(out)
    for a in ATTRIBUTES:
        (out / "Images" / f"{a}_labels").mkdir(parents=True, exist_ok=True)
    (out / "Annotations").mkdir(exist_ok=True)

    plan = plan_splits(num_images, seed, split=split, query_fraction=query_fraction)
    for name in ("valid", "test"):
        have = {p["attribute"] for p in plan if p["split"] == name and p["role"] == "query"}
        if any(p["split"] == name for p in plan) and len(have) < len(ATTRIBUTES):
            missing = [a for a in ATTRIBUTES if a not in have]
            warnings.warn(f"FashionSynth: with {num_images} images the {name} split has no query for {missing}: "
                          f"their mAP cannot be measured; use at least 1000 images", stacklevel=2)
    records, render_time = render_plan(plan, seed, config, out, _render_one, _render_chunk, workers=workers,
                                       progress=progress, label="FashionSynth", t_start=t_start)

    # --- FashionAI label.csv
    write_lines(out / "Annotations" / "label.csv",
                (f"{r['filename']},{r['attribute']}_labels,"
                 f"{_label_chars(NUM_VALUES[r['attribute']], r['value'], r['maybe'])}" for r in records))
    # --- ASEN split files
    by_split = {s: [r for r in records if r["split"] == s] for s in SPLITS}
    for s in SPLITS:
        by_split[s].sort(key=lambda r: r["id"])
        write_lines(out / f"filenames_{s}.txt", (r["filename"] for r in by_split[s]))
    write_lines(out / "label_train.txt",
                (f"{r['id']} {r['attribute_index']} {r['value']}" for r in by_split["train"]))
    n_q, n_c = {}, {}
    for si, s in enumerate(SPLITS[1:], start=1):
        queries = [r for r in by_split[s] if r["role"] == "query"]
        order = np.random.default_rng([seed, 0x0E7A, si]).permutation(len(queries))
        write_lines(out / f"query_{s}.txt",
                    (f"{queries[o]['id']} {queries[o]['attribute_index']} {queries[o]['value']}" for o in order))
        cands = [r for r in by_split[s] if r["role"] == "candidate"]
        write_lines(out / f"candidate_{s}.txt", (f"{r['id']} {r['attribute_index']} {r['value']}" for r in cands))
        n_q[s], n_c[s] = len(queries), len(cands)
    with open(out / "meta.json", "w", newline="\n", encoding="utf-8") as f:
        json.dump(FASHIONAI.to_meta(), f, indent=2)
        f.write("\n")
    # --- full ground truth
    write_lines(out / "ground_truth.jsonl", (json.dumps(r) for r in records))
    per_attr = {s: {a: [0] * NUM_VALUES[a] for a in ATTRIBUTES} for s in SPLITS}
    for r in records:
        per_attr[r["split"]][r["attribute"]][r["value"]] += 1
    synth = {
        "generator": "FashionSynth",
        "version": VERSION,
        "format": "fashionai",
        "seed": int(seed),
        "num_images": len(records),
        "image_size": config.image_size,
        "config": config.to_dict(),
        "split_fractions": list(split),
        "query_fraction": query_fraction,
        "splits": {s: len(by_split[s]) for s in SPLITS},
        "queries": n_q,
        "candidates": n_c,
        "counts": per_attr,
        "files": {
            "images": "Images/<attribute>_labels/<32 hex>.jpg",
            "fashionai_labels": "Annotations/label.csv",
            "asen": ["filenames_train.txt", "filenames_valid.txt", "filenames_test.txt", "label_train.txt",
                     "query_valid.txt", "candidate_valid.txt", "query_test.txt", "candidate_test.txt",
                     "meta.json"],
            "ground_truth": "ground_truth.jsonl",
        },
    }
    with open(out / "synth.json", "w", newline="\n", encoding="utf-8") as f:
        json.dump(synth, f, indent=2)
        f.write("\n")

    seconds = time.perf_counter() - t_start
    stats = {
        "out_dir": str(out),
        "num_images": len(records),
        "image_size": config.image_size,
        "seed": int(seed),
        "splits": synth["splits"],
        "queries": n_q,
        "candidates": n_c,
        "seconds": seconds,
        "render_seconds": render_time,
        "images_per_second": len(records) / max(render_time, 1e-9),
        "written_per_second": len(records) / max(seconds, 1e-9),
    }
    if progress:
        from ..config import display_path

        print(f"FashionSynth: {len(records)} images ({config.image_size} px) in {display_path(out)}: rendering "
              f"{stats['images_per_second']:.0f} images/s per core, {stats['written_per_second']:.0f} images/s "
              f"written", flush=True)
    return stats


def _config_tag(config: RenderConfig | None) -> str:
    if config is None:
        return ""
    ref = replace(PRESETS["wild"], image_size=config.image_size)
    if config == ref:
        return ""
    digest = hashlib.md5(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    return f"-c{digest}"


def ensure_fashionai(num_images: int, seed: int = 0, image_size: int = 128, root=None,
                     config: RenderConfig | str | None = None, progress: bool = True, workers: int = 1) -> Path:
    """Path of a complete FashionSynth FashionAI dataset, generating it first if needed.

    The dataset lives in ``<root>/fashionai-n<N>-s<seed>-px<P>`` (plus ``-c<hash>`` for a non-default
    config), where ``root`` defaults to ``fashionlab.config.data_dir() / "synth"``. It is generated only when
    its completion marker (``.complete``, holding the generator version) is missing or from another version.
    Generation writes into a temporary folder beside it and renames it when done, so an interrupted run never
    leaves a folder that looks complete, and two processes asking at once both end up with a good copy.
    """
    if isinstance(config, str):
        config = PRESETS[config]
    if config is not None:
        config = replace(config, image_size=int(image_size))
    if root is None:
        from ..config import data_dir

        root = data_dir() / "synth"
    root = Path(root)
    path = root / f"fashionai-n{num_images}-s{seed}-px{image_size}{_config_tag(config)}"
    return build_once(path, lambda tmp: generate_fashionai(tmp, num_images, seed=seed, image_size=image_size,
                                                           config=config, progress=progress, workers=workers),
                      VERSION)


def build_once(path: Path, generate, version: str) -> Path:
    """``path``, after ``generate(tmp)`` has written a dataset there unless a complete one (marker ``.complete``
    holding ``version``) already exists. Generation writes into a temporary folder beside ``path`` and renames it
    when done, so an interrupted run never leaves a folder that looks complete, and two processes asking at once
    both end up with a good copy. Shared by every FashionSynth ``ensure_*``."""
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


def load_ground_truth(root, split: str | None = None, splits: tuple[str, ...] = SPLITS) -> list[dict]:
    """The records of ``<root>/ground_truth.jsonl`` (all, or one ``split`` of ``splits`` in id order); a line
    that is not JSON raises ``ValueError`` naming the file and line."""
    path = Path(root) / "ground_truth.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no FashionSynth ground truth here (is {root} a FashionSynth dataset?)")
    if split is not None and split not in splits:
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
        recs = sorted((r for r in recs if r["split"] == split), key=lambda r: r["id"])
    return recs


def main_fashionai(argv=None) -> int:
    """Command line: ``python -m fashionlab.synth.fashionai --out DIR --num-images N [--seed S] [--image-size PX]``."""
    p = argparse.ArgumentParser(prog="fashionlab synth fashionai",
                                description="Render a FashionSynth dataset in the FashionAI and ASEN formats.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-images", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=128, help="canvas side in pixels (default 128)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="wild")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    generate_fashionai(args.out, args.num_images, seed=args.seed, image_size=args.image_size, config=args.preset,
                       progress=not args.quiet, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main_fashionai())
