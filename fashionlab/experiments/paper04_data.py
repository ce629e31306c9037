"""Paper 04's data object: one shop dataset (FashionSynth's ``shop`` preset or a real ADDE-layout folder) with the
images at two sizes, the labels, jump detection's parts (§4.3) and, on FashionSynth, the true parts and cases.

:func:`shop_data` finds or renders the folder; :class:`ShopSearchData` loads it for the recipe in
:mod:`fashionlab.experiments.paper04` (``paper04.load_data`` builds one). The images are decoded into memory
(FashionSynth in ``quick`` and ``default`` mode) or streamed from disk (a ``--data`` folder, ``full`` mode,
``FASHIONLAB_STREAM=1``: :func:`fashionlab.datasets.image_source`); jump detection then runs in one streamed pass
over each split, batch by batch, keeping only its small per-image results.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["ShopSearchData", "shop_data"]


class ShopSearchData:
    """One shop dataset ready for the experiment: labels, images at two sizes, parts from jump detection and (on
    FashionSynth) the true parts and cases.

    Per split (``"train"``, ``"test"``): ``images[split]`` (uint8 ``(N, 3, S, S)`` at ``image_size``), ``inputs``
    (the same at ``input_size``), ``labels`` (``(N, A)``, -1 = missing, as in the label files), ``match_labels``
    (missing = -1, not applicable = the extra value ``K_a``), ``jump`` (:class:`~fashionlab.parts.PartExtraction`
    per image), ``boxes``/``present`` (jump detection's parts at ``input_size``, ``(N, P, 4)`` / ``(N, P)``),
    ``gt_boxes``/``gt_present``, ``case`` (the "Extract Parts?" target: the true case on FashionSynth, else the
    jump rule's), ``records`` (ground truth or None). ``queries``/``gallery``: test image ids (§6).

    ``sources[split]``: where the pixels come from (:func:`~fashionlab.datasets.image_source` with
    ``image_size`` and ``input_size``): a :class:`~fashionlab.datasets.TwoScaleImages` decoded into memory, whose
    tensors ``images``/``inputs`` are, or, when ``streams`` (``stream`` if given, else a real dataset, ``real``, or
    ``full`` ``mode``; ``$FASHIONLAB_STREAM`` forces either), a
    :class:`~fashionlab.datasets.StreamingTwoScaleImages`: then ``images``/``inputs`` are its views, indexed the
    same way and decoded on indexing, and every pass of the recipe prefetches its batches through
    ``sources[split].prefetch`` so that the pixels held are a few batches, never a split.
    """

    #: images per call of jump detection (§4.3) in the pass over a split, and per batch read ahead when streaming
    JUMP_BATCH = 256

    def __init__(self, root: Path, cfg, progress: bool = False, description: str = "", stream: bool | None = None,
                 mode: str | None = None, real: bool = False):
        import torch

        from ..datasets import StreamingTwoScaleImages, image_source, read_adde_split
        from ..models.partsearch import CASES3
        from ..parts import PART_NAMES, SYNTH_PART_NAMES

        self.root, self.cfg = Path(root), cfg
        self.description = description or f"ADDE-layout folder {self.root.name}"
        self.part_names = PART_NAMES
        self.splits = {s: read_adde_split(self.root, s) for s in ("train", "test")}
        sp = self.splits["test"]
        self.schema = sp.schema
        self.attributes = tuple(sp.attributes)
        self.general = sp.general or self.attributes[:1]
        self.special = sp.special or self.attributes[len(self.general):]
        self.num_values = dict(zip(self.attributes, sp.attr_num))
        self.queries, self.gallery = sp.queries, sp.gallery
        if not len(self.queries) or not len(self.gallery):
            raise ValueError(f"{self.root}: the test split needs query_test.txt and gallery_test.txt (paper 04 §6)")
        gt_file = self.root / "ground_truth.jsonl"
        self.has_gt = gt_file.is_file()
        cases = CASES3
        self.images, self.inputs, self.labels, self.match_labels, self.records = {}, {}, {}, {}, {}
        self.jump, self.boxes, self.present, self.gt_boxes, self.gt_present, self.case = {}, {}, {}, {}, {}, {}
        self.jump_case = {}
        self.jump_seconds = 0.0
        self.sources = {}
        for s, split in self.splits.items():
            src = self.sources[s] = image_source(self.root, split.filenames, cfg.image_size, cfg.input_size,
                                                 stream=stream, mode=mode, real=real, progress=progress,
                                                 source=str(split.files["filenames"]))
            self.images[s], self.inputs[s] = src.view("hi"), src.view("lo")
            self.labels[s] = split.labels
            recs = None
            if self.has_gt:
                from ..synth.shop import load_shop_ground_truth

                recs = load_shop_ground_truth(self.root, s)
            self.records[s] = recs
            self.match_labels[s] = self._match_labels(split.labels, recs)
            self.jump[s] = self._extract(s)
            k = cfg.input_size / cfg.image_size
            self.boxes[s], self.present[s] = self.box_array([j.parts for j in self.jump[s]], k)
            rule = np.array([cases.index(j.case) if j.case in cases else 0 for j in self.jump[s]])
            if recs is not None:
                gt_parts = [{p: r["parts"].get(SYNTH_PART_NAMES.get(p, p)) for p in PART_NAMES} for r in recs]
                self.gt_boxes[s], self.gt_present[s] = self.box_array(gt_parts, k)
                self.case[s] = np.array([cases.index(r["part_case"]) for r in recs])
            else:
                self.case[s] = rule
            self.jump_case[s] = rule
        self._mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
        self._std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
        self.streams = isinstance(self.sources["train"], StreamingTwoScaleImages)

    def __repr__(self) -> str:
        n = {s: len(self.labels[s]) for s in self.splits}
        return (f"ShopSearchData({self.description}: train {n['train']}, test {n['test']} images = "
                f"{len(self.queries)} queries + {len(self.gallery)} gallery; general {list(self.general)}, special "
                f"{list(self.special)}; parts {list(self.part_names)} by jump detection"
                f"{', true parts and cases known' if self.has_gt else ''})")

    # -- loading -------------------------------------------------------------------------------------------
    def chunks(self, split: str, ids=None, batch: int = 256) -> list[np.ndarray]:
        """Image ids of ``split`` (default: all, in order) in consecutive chunks of ``batch``: an evaluation
        pass's batches, for ``sources[split].prefetch``."""
        ids = np.arange(len(self.labels[split])) if ids is None else np.asarray(ids)
        return [ids[s:s + batch] for s in range(0, len(ids), batch)]

    def _match_labels(self, labels: np.ndarray, recs) -> np.ndarray:
        """Labels for exact matching: missing = -1; not applicable (ground truth says None) = the extra value K_a."""
        out = labels.copy()
        if recs is None:
            return out
        for j, a in enumerate(self.attributes):
            na = np.array([r["attributes"].get(a) is None for r in recs])
            out[na, j] = self.num_values[a]
        return out

    def _extract(self, split: str) -> list:
        """Jump detection (§4.3, :func:`fashionlab.parts.extract_parts_batch`) on every image of ``split`` at
        ``image_size``, :attr:`JUMP_BATCH` images per call, in one pass over the split (prefetched when the images
        stream): only the small per-image results are kept. Adds the time of the detection alone (not of reading
        the images) to ``jump_seconds`` (§7.6's rate)."""
        import torch

        from ..parts import extract_parts_batch

        out = []
        for ids in self.sources[split].prefetch(self.chunks(split, batch=self.JUMP_BATCH)):
            x = self.images[split][torch.from_numpy(ids)]
            t0 = time.perf_counter()
            out += extract_parts_batch(x)
            self.jump_seconds += time.perf_counter() - t0
        return out

    def box_array(self, parts: list[dict], k: float):
        """Part dicts (``{part: [x1, y1, x2, y2]}`` at ``image_size``) as ``(N, P, 4)`` boxes scaled by ``k`` and
        ``(N, P)`` presence."""
        boxes = np.zeros((len(parts), len(self.part_names), 4), dtype=np.float32)
        present = np.zeros((len(parts), len(self.part_names)), dtype=bool)
        for i, d in enumerate(parts):
            for j, p in enumerate(self.part_names):
                if d.get(p) is not None:
                    boxes[i, j] = np.asarray(d[p], dtype=np.float32) * k
                    present[i, j] = True
        return boxes, present

    # -- batches -------------------------------------------------------------------------------------------
    def train_labels(self, split: str, ids) -> dict:
        """``{attribute: (B,) labels}`` for Eq. 1 / Eq. 3 (-1 = no label), plus ``"general"`` (the combination
        of the general attributes: §4.5's stricter rule, anchor and positive share every general attribute)."""
        lab = self.labels[split][np.asarray(ids)]
        out = {a: lab[:, j] for j, a in enumerate(self.attributes)}
        g = lab[:, [self.attributes.index(a) for a in self.general]]
        code = np.zeros(len(g), dtype=np.int64)
        for j, a in enumerate(self.general):
            code = code * (self.num_values[a] + 1) + g[:, j]
        out["general"] = np.where((g >= 0).all(1), code, -1)
        return out

    def batch(self, split: str, ids, train: bool = False, device=None, parts: str = "jump"):
        """Normalised inputs ``(B, 3, s, s)``, part boxes ``(B, P, 4)``, ``present`` ``(B, P)`` (``parts``: "jump",
        "gt" or "none"), with the same random horizontal flip of image and boxes when ``train`` (the sleeves
        swap sides). Streamed images: the staged batch of a ``sources[split].prefetch`` pass (else read now)."""
        import torch

        ids = np.asarray(ids)
        x = self.inputs[split][torch.from_numpy(ids)].float()
        if parts == "gt":
            b, p = self.gt_boxes[split][ids], self.gt_present[split][ids]
        elif parts == "none":
            b, p = np.zeros((len(ids), len(self.part_names), 4), np.float32), np.zeros((len(ids), len(self.part_names)), bool)
        else:
            b, p = self.boxes[split][ids], self.present[split][ids]
        boxes, present = torch.from_numpy(b.copy()), torch.from_numpy(p.copy())
        if train:
            flip = torch.rand(len(ids)) < 0.5
            x[flip] = x[flip].flip(-1)
            w = float(self.cfg.input_size)
            fb = boxes[flip]
            fb = torch.stack([w - fb[..., 2], fb[..., 1], w - fb[..., 0], fb[..., 3]], -1)
            perm = list(range(len(self.part_names)))  # a mirrored left sleeve is a right sleeve
            li, ri = self.part_names.index("left_sleeve"), self.part_names.index("right_sleeve")
            perm[li], perm[ri] = ri, li
            boxes[flip], present[flip] = fb[:, perm], present[flip][:, perm]
        x = x.sub_(self._mean).div_(self._std)
        if device is not None:
            x, boxes, present = x.to(device), boxes.to(device), present.to(device)
        return x, boxes, present


def shop_data(cfg, data: Path | None, seed: int, progress: bool = True) -> tuple[Path, str]:
    """The dataset folder and its description: a real ADDE-layout folder (``data``) or FashionSynth's shop preset
    (rendered once into ``data/synth``)."""
    if data is not None:
        if not Path(data).is_dir():
            raise FileNotFoundError(f"--data {data}: not a folder. Expected an ADDE-layout dataset (imgs_train.txt, "
                                    "labels_train.txt, attr_num.txt, ... and the images; docs/formats.md §5.6)")
        return Path(data), f"ADDE-layout folder {Path(data).name}"
    from ..synth.shop import ensure_shop

    root = ensure_shop(cfg.num_images, seed=seed, image_size=cfg.image_size, designs=cfg.designs, progress=progress,
                       query_fraction=cfg.query_fraction, train_fraction=cfg.train_fraction)
    return root, (f"FashionSynth shop, {cfg.num_images} images from {cfg.designs} designs at {cfg.image_size} px "
                  f"(networks see {cfg.input_size} px), seed {seed}")

