"""Scaling a mode's config down without changing its code path (issue 20: "full mode cannot rot").

Every experiment's per-mode config is a frozen dataclass whose fields are of two kinds: those that define the
code path (backbone names and stages, image sizes, heads, losses, two-stage schedules, learning rates...) and
*counts* (how many images are rendered, triplets per epoch, batch size, epochs, evaluation sizes).
:func:`scaled_down` changes counts only, and refuses any other field, so a scaled-down ``full`` config runs the
very code ``full`` mode runs, in seconds: ``tests/test_full_mode.py`` and ``make gpu-check`` use it::

    from fashionlab.experiments import run, scaled_down
    from fashionlab.experiments.paper03 import ASEN_CONFIGS

    cfg = scaled_down(ASEN_CONFIGS["full"], num_images=120, epochs=1, stage2_epochs=1, triplets_per_epoch=2,
                      batch=2, detail_epochs=0)
    run("asen", mode="full", config=cfg, out=None)

Every registered experiment that trains takes ``config=`` (``fashionlab.experiments.run(name, config=cfg)``).
"""
from __future__ import annotations

import dataclasses

__all__ = ["COUNT_FIELDS", "CONFIG_TABLES", "MODE_SIZED_DATA", "scaled_down", "count_fields", "mode_config",
           "small_fashionai", "small_evaluation"]

#: Config fields that are counts: sizes of the data, of the training and of the evaluation. Anything else
#: (architecture, image sizes, losses, schedules, rates) defines the code path and is not changed here.
COUNT_FIELDS = frozenset({
    # data
    "num_images", "fai_num_images", "designs", "num_scenes", "regressor_images",
    # training
    "epochs", "stage2_epochs", "fai_epochs", "det_epochs", "detail_epochs", "detail_stage2_epochs",
    "regressor_epochs", "triplets_per_epoch", "fai_triplets_per_epoch", "batch", "det_batch",
    # evaluation
    "rounds", "k", "topn",
})


def count_fields(cfg) -> tuple[str, ...]:
    """The fields of config ``cfg`` (a dataclass) that :func:`scaled_down` may change."""
    return tuple(f.name for f in dataclasses.fields(cfg) if f.name in COUNT_FIELDS)


def scaled_down(cfg, **counts):
    """``cfg`` (a mode's config dataclass) with the given counts replaced, everything else kept.

    Raises ``TypeError`` when ``cfg`` is not a dataclass instance and ``ValueError`` for a field that ``cfg``
    lacks or that is not a count (:data:`COUNT_FIELDS`: those define the code path), or for a count below 0
    (``epochs=0`` of a stage that may be skipped, e.g. ``detail_epochs``, is allowed; the recipe decides)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"scaled_down expects a config dataclass instance, got {type(cfg).__name__}")
    names = {f.name for f in dataclasses.fields(cfg)}
    for k, v in counts.items():
        if k not in names:
            raise ValueError(f"{type(cfg).__name__} has no field {k!r}; its counts: {', '.join(count_fields(cfg))}")
        if k not in COUNT_FIELDS:
            raise ValueError(f"{type(cfg).__name__}.{k} is not a count (it defines the code path); scaled_down "
                             f"changes only {', '.join(count_fields(cfg))}")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ValueError(f"{type(cfg).__name__}.{k} must be an int >= 0 (or None), got {v!r}")
    return dataclasses.replace(cfg, **counts)


#: experiment name -> (module of fashionlab.experiments, name of its per-mode config dict). ``random-baseline``
#: has no config (it trains nothing; its sizes are the data's).
CONFIG_TABLES = {
    "triplet-baseline": ("baselines", "TRIPLET_CONFIGS"),
    "recognition": ("paper01", "PAPER01_CONFIGS"),
    "retrieval": ("paper01", "PAPER01_CONFIGS"),
    "asen": ("paper03", "ASEN_CONFIGS"),
    "part-search": ("paper04", "PART_SEARCH_CONFIGS"),
    "m3net": ("paper05", "M3_CONFIGS"),
    "hls": ("paper06", "HLS_CONFIGS"),
}

#: Experiments whose data folder comes from the run mode (:data:`fashionlab.datasets.sources.SYNTH_SIZES`), not
#: from their config: a scaled-down run passes them a small folder as ``data`` (:func:`small_fashionai`).
MODE_SIZED_DATA = ("random-baseline", "triplet-baseline", "recognition", "retrieval")


def mode_config(name: str, mode: str = "full"):
    """Experiment ``name``'s config for ``mode`` (``None`` for an experiment without one)."""
    import importlib

    if name not in CONFIG_TABLES:
        return None
    module, table = CONFIG_TABLES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), table)[mode]


def small_fashionai(num_images: int, mode: str = "full", seed: int = 0, progress: bool = False):
    """A FashionSynth FashionAI folder of ``num_images`` images at ``mode``'s image size (224 px for ``full``),
    rendered once under the data folder (``$FASHIONLAB_DATA``): the ``data`` of a scaled-down run of the
    experiments in :data:`MODE_SIZED_DATA`. Below about 240 images the valid and test splits have no query."""
    from ..datasets.sources import SYNTH_SIZES
    from ..synth import ensure_fashionai

    return ensure_fashionai(num_images=num_images, seed=seed, image_size=SYNTH_SIZES[mode].image_size,
                            progress=progress)


def small_evaluation(root, dest=None, queries_per_attribute: int = 1, candidates_per_attribute: int = 3):
    """A view of the ASEN-layout folder ``root`` (docs/formats.md §5.1) with small evaluation sets: for each
    attribute of the valid and test splits, its first ``queries_per_attribute`` queries and
    ``candidates_per_attribute`` candidates (one of the same value as each kept query first, so every kept query
    has a relevant candidate). Everything else (images, ``filenames_*.txt``, training labels, ``meta.json``,
    FashionSynth's ``ground_truth.jsonl``) is linked, not copied, so image ids and the ground truth stay valid.

    The evaluation of a paper-sized backbone on a CPU embeds every query and candidate; this bounds that work
    (an evaluation size, a count) when a scaled-down ``full`` run only checks the code path. The view is written
    to ``dest`` (default: ``<root>-eval<Q>x<C>`` beside it), once; returns its path."""
    from pathlib import Path

    import numpy as np

    root = Path(root)
    dest = Path(dest) if dest is not None else root.with_name(
        f"{root.name}-eval{queries_per_attribute}x{candidates_per_attribute}")
    if (dest / ".complete").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    trimmed = {f"{k}_{s}.txt" for k in ("query", "candidate") for s in ("valid", "test")}
    for p in root.iterdir():
        link = dest / p.name
        if p.name in trimmed or p.name.startswith(".") or link.exists():
            continue
        link.symlink_to(p.resolve(), target_is_directory=p.is_dir())
    for split in ("valid", "test"):
        q = np.loadtxt(root / f"query_{split}.txt", dtype=np.int64, ndmin=2)
        c = np.loadtxt(root / f"candidate_{split}.txt", dtype=np.int64, ndmin=2)
        keep_q, keep_c = [], []
        for a in np.unique(q[:, 1]):
            qa, ca = q[q[:, 1] == a][:queries_per_attribute], c[c[:, 1] == a]
            if not len(ca):
                continue
            first = [int(np.flatnonzero(ca[:, 2] == v)[0]) for v in qa[:, 2] if np.any(ca[:, 2] == v)]
            order = list(dict.fromkeys(first + list(range(len(ca)))))[:max(candidates_per_attribute, len(first))]
            keep_q.append(qa)
            keep_c.append(ca[sorted(order)])
        if not keep_q:
            raise ValueError(f"{root}: no query of the {split} split has a candidate of its attribute")
        for name, rows in ((f"query_{split}.txt", keep_q), (f"candidate_{split}.txt", keep_c)):
            rows = np.concatenate(rows)
            if name.startswith("candidate"):
                rows = rows[np.argsort(rows[:, 0], kind="stable")]
            (dest / name).write_text("".join(f"{i} {a} {v}\n" for i, a, v in rows.tolist()), encoding="utf-8")
    (dest / ".complete").write_text("small evaluation view\n", encoding="utf-8")
    return dest
