"""The data of notebook 05's experiment (paper 05, ``m3net``): one dataset in the form every method needs.

:func:`multilabel_data` reads a DeepFashion-format folder (the list files of docs/formats.md §5.3 plus an ASEN-style
split, docs/formats.md §5.1) or FashionSynth's multi-label preset; :func:`fashionai_data` FashionSynth's
FashionAI preset (classes = values). Both return an :class:`M3Data`. The recipe (:mod:`.paper05`) calls them
through its ``load_data`` step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["M3Data", "multilabel_data", "fashionai_data"]


class M3Data:
    """One dataset in the form every method needs.

    ``images[split]``: :class:`~fashionlab.datasets.TwoScaleImages` (one scale: the input; streamed from disk for
    a ``--data`` folder and ``full`` mode, :func:`~fashionlab.datasets.image_source`);
    ``attributes``, ``num_classes`` (``M_n``), ``class_names``; ``class_attribute`` ``(K,)`` and ``offsets``
    (``N + 1``) place the ``K = Σ M_n`` classes side by side; ``train_positives`` ``(n_train, K)`` and
    ``train_labelled`` ``(n_train, N)`` (what M3-Net learns from); ``asen_labels`` (``(id, attribute, value)``
    rows of the single-label split, what ASEN learns from); ``eval_sets[split]``: per attribute ``n`` a dict
    ``q_ids``, ``q_lab`` ``(Q, M_n)`` bool, ``c_ids``, ``c_lab``. ``regions`` (multi-label preset): per test
    image id, ``{(n, m): box}`` of FashionSynth's class regions, and ``region_size`` the canvas they refer to.
    ``cfg``: the experiment's config for this dataset (set by the recipe's ``load_data``; the evaluation reads
    ``gamma`` and ``k`` from it). :meth:`triplet_images` and :meth:`triplet_targets` give what a training step
    needs for a batch of triplets.
    """

    def __init__(self, name, root, description, attributes, num_classes, class_names, splits, filenames,
                 train_positives, train_labelled, asen_labels, eval_sets, image_size, progress=False,
                 regions=None, region_size=None, stream: bool | None = None, mode: str | None = None,
                 real: bool = False):
        from ..datasets import image_source

        self.name, self.root, self.description = name, Path(root), description
        self.attributes = list(attributes)
        self.num_classes = tuple(int(m) for m in num_classes)
        self.class_names = class_names
        self.offsets = np.concatenate([[0], np.cumsum(self.num_classes)]).astype(np.int64)
        self.class_attribute = np.repeat(np.arange(len(self.num_classes)), self.num_classes)
        self.train_positives = np.asarray(train_positives, dtype=bool)
        self.train_labelled = np.asarray(train_labelled, dtype=bool)
        self.asen_labels = np.asarray(asen_labels, dtype=np.int64)
        self.eval_sets = eval_sets
        self.filenames = filenames
        self.images = {s: image_source(root, filenames[s], image_size, image_size, stream=stream, mode=mode,
                                       real=real, progress=progress, source=f"filenames_{s}.txt") for s in splits}
        self.regions, self.region_size = regions, region_size
        self.cfg = None
        self._targets = None

    def triplet_images(self, t, device=None):
        """The ``(3B, 3, H, W)`` training images of triplets ``t`` (rows ``(anchor, positive, negative, ...)``):
        anchors, then positives, then negatives, normalised, with random horizontal flips."""
        return self.images["train"].batch(np.asarray(t)[:, :3].T.reshape(-1), train=True, device=device,
                                          hires=False)[0]

    def triplet_targets(self, t):
        """The ``(3B, K)`` bool class rows (``train_positives``) of the same images, as a tensor."""
        import torch

        if self._targets is None:
            self._targets = torch.from_numpy(self.train_positives)
        return self._targets[np.asarray(t)[:, :3].T.reshape(-1)]

    def __repr__(self) -> str:
        return (f"M3Data({self.name}: {len(self.attributes)} attributes, {sum(self.num_classes)} classes, "
                f"{len(self.train_positives)} training images)")


def _eval_sets_from_matrix(q_ids, c_ids, positives: np.ndarray, offsets) -> list[dict]:
    """Per attribute: the query and candidate images with a class of it and their class rows."""
    sets = []
    for n in range(len(offsets) - 1):
        lab = positives[:, offsets[n]:offsets[n + 1]]
        q = q_ids[lab[q_ids].any(axis=1)]
        c = c_ids[lab[c_ids].any(axis=1)]
        sets.append({"q_ids": q, "q_lab": lab[q], "c_ids": c, "c_lab": lab[c]})
    return sets


def multilabel_data(cfg: M3Config, data: Path | None, seed: int, progress: bool = False,
                    mode: str | None = None) -> M3Data:
    """The multi-label dataset: ``data`` (a folder with DeepFashion's ``Anno/`` list files and the ASEN-style
    split files beside them) or FashionSynth's multi-label preset (``cfg.num_images`` images at
    ``cfg.image_size`` px). Multi-label truth from ``list_attr_img.txt`` (1 = positive; 0 and -1 = not, as
    mmfashion, docs/protocols.md §4.3), roles (train / query / candidate) from the split files."""
    from ..datasets import read_asen_split, read_deepfashion

    if data is None:
        from ..synth import ensure_multilabel

        root = ensure_multilabel(num_images=cfg.num_images, seed=seed, image_size=cfg.image_size,
                                 progress=progress)
        desc = f"FashionSynth multi-label preset, {cfg.num_images} images, {cfg.image_size} px, seed {seed}"
    else:
        root, desc = Path(data), f"{Path(data).name} (from --data)"
    df = read_deepfashion(root)
    splits = {s: read_asen_split(root, s) for s in ("train", "valid", "test")}
    schema = splits["train"].schema
    types = _group_types(df, schema)
    cols = [df.type_indices(t) for t in types]
    num_classes = [len(c) for c in cols]
    if tuple(num_classes) != tuple(schema.num_values):
        raise ValueError(f"{root}: meta.json gives {schema.num_values} classes per group, the list files "
                         f"{num_classes}")
    order = np.concatenate(cols)
    row_of = {name: i for i, name in enumerate(df.image_names)}
    pos = {}
    for s, sp in splits.items():
        missing = [f for f in sp.filenames if f not in row_of]
        if missing:
            raise ValueError(f"{root}: {len(missing)} images of filenames_{s}.txt are not in list_attr_img.txt "
                             f"(first: {missing[0]})")
        rows = np.array([row_of[f] for f in sp.filenames], dtype=np.int64)
        pos[s] = df.labels[rows][:, order] == 1
    offsets = np.concatenate([[0], np.cumsum(num_classes)])
    labelled = np.stack([pos["train"][:, offsets[n]:offsets[n + 1]].any(axis=1) for n in range(len(types))], 1)
    evals = {}
    for s in ("valid", "test"):
        sp = splits[s]
        evals[s] = _eval_sets_from_matrix(np.unique(sp.queries[:, 0]), np.unique(sp.candidates[:, 0]), pos[s],
                                          offsets)
    names = {a: tuple(df.attribute_names[i] for i in c) for a, c in zip(schema.attributes, cols)}
    regions, size = _class_regions(root, schema.attributes, names, splits["test"].filenames)
    return M3Data("multi-label", root, desc, schema.attributes, num_classes, names, ("train", "valid", "test"),
                  {s: sp.filenames for s, sp in splits.items()}, pos["train"], labelled, splits["train"].labels,
                  evals, cfg.image_size, progress, regions, size, mode=mode, real=data is not None)


def _group_types(df, schema) -> list[int]:
    """The DeepFashion type number (1..5) of each group of the split's ``meta.json`` (by name: ``texture`` or
    ``texture-related`` both mean type 1)."""
    from ..datasets import TYPE_NAMES

    by_name = {v: k for k, v in TYPE_NAMES.items()}
    out = []
    for a in schema.attributes:
        key = a.split("-")[0].strip().lower()
        if key not in by_name:
            raise ValueError(f"attribute group {a!r} of meta.json is not a DeepFashion type "
                             f"({', '.join(TYPE_NAMES.values())})")
        out.append(by_name[key])
    return out


def _class_regions(root: Path, attributes, names, test_files):
    """FashionSynth's per-class region boxes of the test images (None for real data)."""
    if not (root / "ground_truth.jsonl").exists():
        return None, None
    from ..synth import load_multilabel_ground_truth

    idx = {f: i for i, f in enumerate(test_files)}
    out, size = {}, None
    for r in load_multilabel_ground_truth(root):
        i = idx.get(r.get("name"))
        if i is None or r.get("asen_split") != "test":
            continue
        size = int(r["image_size"])
        boxes = {}
        for n, a in enumerate(attributes):
            for m, cname in enumerate(names[a]):
                b = r["class_regions"].get(cname)
                if b is not None:
                    boxes[(n, m)] = b
        out[i] = boxes
    return out, size


def fashionai_data(cfg: M3Config, seed: int, progress: bool = False, mode: str | None = None) -> M3Data:
    """FashionSynth's FashionAI preset in the ASEN split layout (``cfg.fai_num_images`` images at
    ``cfg.image_size`` px): classes = values; training images labelled under one attribute (FashionAI)."""
    from ..datasets import read_asen_split
    from ..synth import ensure_fashionai

    root = ensure_fashionai(num_images=cfg.fai_num_images, seed=seed, image_size=cfg.image_size, progress=progress)
    splits = {s: read_asen_split(root, s) for s in ("train", "valid", "test")}
    schema = splits["train"].schema
    offsets = np.concatenate([[0], np.cumsum(schema.num_values)])
    lab = splits["train"].labels
    pos = np.zeros((splits["train"].num_images, offsets[-1]), dtype=bool)
    pos[lab[:, 0], offsets[lab[:, 1]] + lab[:, 2]] = True
    labelled = np.zeros((len(pos), len(schema.attributes)), dtype=bool)
    labelled[lab[:, 0], lab[:, 1]] = True
    evals = {}
    for s in ("valid", "test"):
        q, c = splits[s].queries, splits[s].candidates
        sets = []
        for n, m in enumerate(schema.num_values):
            qn, cn = q[q[:, 1] == n], c[c[:, 1] == n]
            sets.append({"q_ids": qn[:, 0], "q_lab": np.eye(m, dtype=bool)[qn[:, 2]],
                         "c_ids": cn[:, 0], "c_lab": np.eye(m, dtype=bool)[cn[:, 2]]})
        evals[s] = sets
    names = {a: schema.values.get(a, tuple(str(v) for v in range(m))) for a, m in zip(schema.attributes,
                                                                                       schema.num_values)}
    desc = f"FashionSynth fashionai, {cfg.fai_num_images} images, {cfg.image_size} px, seed {seed}"
    return M3Data("FashionAI", root, desc, schema.attributes, schema.num_values, names, ("train", "valid", "test"),
                  {s: sp.filenames for s, sp in splits.items()}, pos, labelled, lab, evals, cfg.image_size, progress,
                  mode=mode)
