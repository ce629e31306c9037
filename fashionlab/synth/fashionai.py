"""Write FashionSynth datasets in the real FashionAI and ASEN formats, with the full ground truth beside them.

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"; docs/architecture.md, principle 2:
synthetic data speaks the real formats). :func:`generate_fashionai` renders ``num_images`` garments and writes, into
one folder:

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

import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..taxonomy import FASHIONAI
from .cli import SynthCommand, main as cli_main, option
from .garments import ATTRIBUTES, LENGTH_ATTRIBUTES, NUM_VALUES, PRESETS, RenderConfig, render, sample_garment
from .writer import (Preset, config_tag, ensure, generate, load_ground_truth as _load_ground_truth,
                     resolve_render_config, write_json, write_lines)

__all__ = ["VERSION", "ATTRIBUTE_SHARES", "MAYBE", "plan_splits", "image_name", "FashionAIPreset",
           "generate_fashionai", "ensure_fashionai", "load_ground_truth", "COMMAND", "main_fashionai"]

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


def _label_chars(n: int, value: int, maybe) -> str:
    chars = ["n"] * n
    for m in maybe:
        chars[m] = "m"
    chars[value] = "y"
    return "".join(chars)


@dataclass
class FashionAIPreset(Preset):
    """The FashionAI / ASEN preset (docs/formats.md §5.1, §5.2) for :mod:`fashionlab.synth.writer`: ``seed``, the
    render ``config``, the train/valid/test fractions ``split`` and the ``query_fraction`` of valid and test
    (module docstring)."""

    name = "fashionai"
    version = VERSION
    label = "FashionSynth"
    own_files = ("Annotations/label.csv", "filenames_train.txt", "filenames_valid.txt", "filenames_test.txt",
                 "label_train.txt", "query_valid.txt", "candidate_valid.txt", "query_test.txt",
                 "candidate_test.txt", "meta.json")
    image_globs = tuple(f"Images/{a}_labels/*.jpg" for a in ATTRIBUTES)
    folders = tuple(f"Images/{a}_labels" for a in ATTRIBUTES) + ("Annotations",)

    seed: int
    config: RenderConfig
    split: tuple = (0.8, 0.1, 0.1)
    query_fraction: float = 0.2

    def is_ours(self, out: Path) -> bool:
        """A FashionSynth FashionAI dataset (``format`` "fashionai"; datasets of the first versions have none)."""
        try:
            return json.loads((out / "synth.json").read_text()).get("format", self.name) == self.name
        except (OSError, ValueError, AttributeError):
            return False

    def plan(self, num: int) -> list[dict]:
        """:func:`plan_splits`, with a warning when valid or test lacks a query of some attribute."""
        plan = plan_splits(num, self.seed, split=self.split, query_fraction=self.query_fraction)
        for name in ("valid", "test"):
            have = {p["attribute"] for p in plan if p["split"] == name and p["role"] == "query"}
            if any(p["split"] == name for p in plan) and len(have) < len(ATTRIBUTES):
                missing = [a for a in ATTRIBUTES if a not in have]
                warnings.warn(f"FashionSynth: with {num} images the {name} split has no query for {missing}: "
                              f"their mAP cannot be measured; use at least 1000 images", stacklevel=4)
        return plan

    def render_one(self, item: dict, out: Path | None) -> tuple[dict, float]:
        """Draw the garment with the item's (attribute, value) forced and render it; generators
        ``[seed, index]`` (garment and picture) and ``[seed, index, 1]`` (the "maybe" marks)."""
        seed, index = self.seed, item["index"]
        a, v = item["attribute"], item["value"]
        rng = np.random.default_rng([seed, index])
        t0 = time.perf_counter()
        spec = sample_garment(rng, attribute=a, value=v)
        img, gt = render(spec, self.config, rng)
        dt = time.perf_counter() - t0
        maybe = _maybe(spec, a, v, self.config, np.random.default_rng([seed, index, 1]))
        filename = f"Images/{a}_labels/{image_name(seed, index)}.jpg"
        if out is not None:
            Image.fromarray(img).save(out / filename, quality=_JPEG_QUALITY)
        record = {"index": index, "split": item["split"], "id": item["id"], "role": item["role"],
                  "filename": filename, "attribute": a, "attribute_index": ATTRIBUTES.index(a), "value": v,
                  "value_name": FASHIONAI.value_name(a, v), "maybe": maybe}
        record.update(gt)
        return record, dt

    def write_splits(self, out: Path, records: list[dict]) -> tuple[dict, dict]:
        """FashionAI's ``Annotations/label.csv`` and the ASEN split files."""
        write_lines(out / "Annotations" / "label.csv",
                    (f"{r['filename']},{r['attribute']}_labels,"
                     f"{_label_chars(NUM_VALUES[r['attribute']], r['value'], r['maybe'])}" for r in records))
        by_split = {s: [r for r in records if r["split"] == s] for s in SPLITS}
        for s in SPLITS:
            by_split[s].sort(key=lambda r: r["id"])
            write_lines(out / f"filenames_{s}.txt", (r["filename"] for r in by_split[s]))
        write_lines(out / "label_train.txt",
                    (f"{r['id']} {r['attribute_index']} {r['value']}" for r in by_split["train"]))
        n_q, n_c = {}, {}
        for si, s in enumerate(SPLITS[1:], start=1):
            queries = [r for r in by_split[s] if r["role"] == "query"]
            order = np.random.default_rng([self.seed, 0x0E7A, si]).permutation(len(queries))
            write_lines(out / f"query_{s}.txt", (f"{queries[o]['id']} {queries[o]['attribute_index']} "
                                                 f"{queries[o]['value']}" for o in order))
            cands = [r for r in by_split[s] if r["role"] == "candidate"]
            write_lines(out / f"candidate_{s}.txt",
                        (f"{r['id']} {r['attribute_index']} {r['value']}" for r in cands))
            n_q[s], n_c[s] = len(queries), len(cands)
        write_json(out / "meta.json", FASHIONAI.to_meta())
        per_attr = {s: {a: [0] * NUM_VALUES[a] for a in ATTRIBUTES} for s in SPLITS}
        for r in records:
            per_attr[r["split"]][r["attribute"]][r["value"]] += 1
        synth = {
            "seed": int(self.seed),
            "num_images": len(records),
            "image_size": self.config.image_size,
            "config": self.config.to_dict(),
            "split_fractions": list(self.split),
            "query_fraction": self.query_fraction,
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
        return synth, {"queries": n_q, "candidates": n_c}

    def folder_name(self, num: int) -> str:
        """``fashionai-n<N>-s<seed>-px<P>``, plus ``-c<hash>`` for a config other than ``wild``."""
        return (f"fashionai-n{num}-s{self.seed}-px{self.config.image_size}"
                f"{config_tag(self.config, PRESETS['wild'])}")


def generate_fashionai(out_dir, num_images: int, seed: int = 0, image_size: int | None = None,
                       config: RenderConfig | str | None = None, progress: bool = True, workers: int = 1,
                       split=(0.8, 0.1, 0.1), query_fraction: float = 0.2) -> dict:
    """Render a FashionSynth dataset in the FashionAI / ASEN formats (docs/formats.md §5.1, §5.2) into ``out_dir``.

    FashionSynth is our own generator (docs/architecture.md, "FashionSynth"); the layout and the ground-truth
    schema are in the module docstring and ``data/README.md``. A previous FashionSynth FashionAI dataset in
    ``out_dir`` is replaced (its own files only); a non-empty folder that is not one is refused. ``config`` is a
    :class:`RenderConfig`, a preset name ("wild", "clean", ...) or None for "wild"; ``image_size`` (default: the
    config's, 128 for the presets) overrides its canvas size. ``workers > 1`` renders in that many processes
    (the files are the same). Same seed and options give byte-identical files.

    Returns statistics (:func:`fashionlab.synth.writer.generate`): ``num_images``, ``splits``, ``queries``,
    ``candidates``, ``seconds`` (wall), ``render_seconds`` and ``images_per_second`` (rendering only, per core:
    sampling the garment and drawing it, without JPEG encoding and writing), ``written_per_second``
    (everything, wall clock).
    """
    preset = FashionAIPreset(seed, resolve_render_config(config, image_size, PRESETS["wild"]), split,
                             query_fraction)
    return generate(preset, out_dir, num_images, workers=workers, progress=progress)


def ensure_fashionai(num_images: int, seed: int = 0, image_size: int = 128, root=None,
                     config: RenderConfig | str | None = None, progress: bool = True, workers: int = 1) -> Path:
    """Path of a complete FashionSynth FashionAI dataset, generating it first if needed.

    The dataset lives in ``<root>/fashionai-n<N>-s<seed>-px<P>`` (plus ``-c<hash>`` for a non-default
    config), where ``root`` defaults to ``fashionlab.config.data_dir() / "synth"``. It is generated only when
    its completion marker (``.complete``, holding the generator version) is missing or from another version.
    Generation writes into a temporary folder beside it and renames it when done, so an interrupted run never
    leaves a folder that looks complete, and two processes asking at once both end up with a good copy
    (:func:`fashionlab.synth.writer.build_once`).
    """
    preset = FashionAIPreset(seed, resolve_render_config(config, image_size, PRESETS["wild"]))
    return ensure(preset, num_images, root=root, workers=workers, progress=progress)


def load_ground_truth(root, split: str | None = None, splits: tuple[str, ...] = SPLITS) -> list[dict]:
    """The records of ``<root>/ground_truth.jsonl`` (all, or one ``split`` of ``splits`` in id order); a line
    that is not JSON raises ``ValueError`` naming the file and line."""
    return _load_ground_truth(root, split, splits)


#: ``fashionlab synth fashionai`` (:mod:`fashionlab.synth.cli`; the common options are declared there).
COMMAND = SynthCommand(
    name="fashionai", generate=generate_fashionai,
    help="FashionAI attributes; ASEN split files and FashionAI label.csv",
    description="Render a FashionSynth dataset in the FashionAI and ASEN formats.",
    count=option("--num-images", type=int, required=True),
    options=(option("--preset", keyword="config", choices=sorted(PRESETS), default="wild",
                    help="render config (default wild)"),),
    image_size=128,
    report="wrote {num_images} images to {out} (rendering {images_per_second:.0f} images/s per core; "
           "{written_per_second:.0f} images/s with JPEG encoding and writing)")


def main_fashionai(argv=None) -> int:
    """Command line: ``python -m fashionlab.synth.fashionai --out DIR --num-images N [--seed S] [--image-size PX]``
    (the options of :data:`COMMAND`)."""
    return cli_main("fashionai", argv)


if __name__ == "__main__":
    sys.exit(main_fashionai())
