"""The data of paper 03's recipe (:mod:`fashionlab.experiments.paper03`): :class:`AsenData`, one dataset folder
in the ASEN split layout with its two-scale images, ASEN++'s triplet sampler and FashionSynth's region ground
truth; :func:`~fashionlab.experiments.paper03.load_data` makes one."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from .paper03_regions import region_crop_images, union_regions

__all__ = ["AsenData"]


class AsenData:
    """One dataset folder in the ASEN split layout (slides "Experiment Setup": triplets sampled from the
    training images, queries and candidates with annotations on the same attribute; docs/formats.md §5.1): its
    splits, a :class:`~fashionlab.datasets.TwoScaleImages` per split (``images``; streamed from disk for real data
    and ``full`` mode, :func:`~fashionlab.datasets.image_source`), ASEN++'s triplet sampler
    (docs/implementations.md §3 "TripletSampler") and, for FashionSynth, the region ground truth
    (``ground_truth.jsonl``, docs/architecture.md "FashionSynth"). ``description`` says what the folder is;
    ``mode`` names the config it was loaded for (the trained-model cache's file names)."""

    def __init__(self, root: Path, cfg, seed: int, progress: bool = False, description: str = "",
                 mode: str = "custom", stream: bool | None = None, real: bool = False):
        from ..datasets import AsenPPTripletSampler, image_source, read_asen_split

        self.root, self.cfg, self.seed = Path(root), cfg, seed
        self.description, self.mode = description or self.root.name, mode
        self.splits = {s: read_asen_split(root, s) for s in ("train", "valid", "test")}
        self.schema = self.splits["train"].schema
        self.attributes = list(self.schema.attributes)
        self.images = {s: image_source(root, sp.filenames, cfg.image_size, cfg.global_size, stream=stream, mode=mode,
                                       real=real, progress=progress, source=f"filenames_{s}.txt")
                       for s, sp in self.splits.items()}
        self.sampler = AsenPPTripletSampler(self.splits["train"].labels, self.schema,
                                            num_triplets=cfg.triplets_per_epoch, seed=seed, skip_rare=True)
        self.has_truth = (self.root / "ground_truth.jsonl").exists()
        self.focus: tuple[int, ...] | None = None  # attribute indices; None = every attribute
        self.oracle_scale: float | None = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s} {len(im)}" for s, im in self.images.items())
        focus = "" if self.focus is None else f", only {[self.attributes[a] for a in self.focus]}"
        oracle = "" if self.oracle_scale is None else f", oracle crops x{self.oracle_scale:g}"
        return (f"AsenData({self.description}: images {sizes}; {len(self.attributes)} attributes; "
                f"{self.cfg.global_size} px global view of {self.cfg.image_size} px images{focus}{oracle})")

    def focused(self, attributes, cfg=None, oracle_scale: float | None = None) -> "AsenData":
        """A view of this dataset restricted to ``attributes`` (names): training triplets, queries and candidates
        of the other attributes are dropped (the images are shared, not copied). ``cfg`` replaces the config
        (e.g. more epochs). ``oracle_scale``: every method's global view becomes an *oracle crop*, the
        high-resolution image cropped around the ground-truth region of those attributes (a square of
        ``oracle_scale`` times the region's longer side, centred on it; the whole image where none is
        visible) and resized to ``global_size`` (FashionSynth only; :func:`region_crop_images`; streamed images
        are decoded into memory for it)."""
        view = copy.copy(self)
        view.focus = tuple(self.attributes.index(a) for a in attributes)
        view.cfg = cfg or self.cfg
        if oracle_scale is not None:
            if not self.has_truth:
                raise ValueError(f"{self.root}: oracle crops need FashionSynth's ground_truth.jsonl")
            from ..synth import load_ground_truth

            view.oracle_scale = float(oracle_scale)
            images = {s: im.decoded() if hasattr(im, "decoded") else im for s, im in self.images.items()}
            view.images = {s: region_crop_images(im, union_regions(load_ground_truth(self.root, s), attributes,
                                                                    im.image_size), oracle_scale)
                           for s, im in images.items()}
        return view

    def _keep(self, rows: np.ndarray, col: int) -> np.ndarray:
        return rows if self.focus is None else rows[np.isin(rows[:, col], self.focus)]

    def queries_candidates(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(queries, candidates)`` of ``split``, rows ``(image id, attribute, value)`` (only the focus
        attributes in a :meth:`focused` view)."""
        sp = self.splits[split]
        return (self._keep(np.asarray(sp.queries, dtype=np.int64), 1),
                self._keep(np.asarray(sp.candidates, dtype=np.int64), 1))

    def items(self, split: str) -> np.ndarray:
        """``(n, 3)`` ``(image id, attribute, value)``: the queries, then the candidates of ``split``."""
        return np.concatenate(self.queries_candidates(split))

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of ``(anchor, positive, negative, attribute)`` image ids of training epoch ``epoch``
        (Algorithm 1's "sampled minibatch"; ASEN++ resamples the triplets every epoch, docs/implementations.md §3).
        A :meth:`focused` view keeps the triplets of its attributes (fewer batches per epoch)."""
        t = self._keep(self.sampler.triplets(epoch), 3)
        b = self.cfg.batch
        return [t[s:s + b] for s in range(0, len(t) - b + 1, b)]

    def regions(self, split: str) -> tuple[np.ndarray, np.ndarray, int]:
        """FashionSynth ground truth of ``split``'s items (:meth:`items` order): ``(boxes (n, 4) float,
        has_region (n,) bool, image size in pixels)``; the box is the region of the item's listed attribute
        (``[x1, y1, x2, y2]``, x2/y2 exclusive), absent where that attribute is Invisible."""
        from ..synth import load_ground_truth

        recs = load_ground_truth(self.root, split)
        items = self.items(split)
        boxes = np.zeros((len(items), 4), dtype=np.float32)
        has = np.zeros(len(items), dtype=bool)
        size = int(recs[0]["image_size"]) if recs else self.cfg.image_size
        for r, (i, a, _) in enumerate(items):
            b = recs[int(i)]["regions"].get(self.attributes[int(a)])
            if b is not None:
                boxes[r], has[r] = b, True
        return boxes, has, size
