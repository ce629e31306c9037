"""The outfit scenes of paper 06's pipeline read into memory: :class:`OutfitData` and :func:`read_outfits`.

A folder in FashionSynth's outfit-preset layout (:mod:`fashionlab.synth.outfit`) holds two views of the same
garments: the scenes with their boxes, ``annotations/instances_{split}.json`` (COCO detection JSON with
FashionSynth's category / attribute keys, :func:`~fashionlab.datasets.read_coco_detection`) and
``{split}/image/``, for stage 1 (paper 06 §3.2.1); and the ground-truth crops in DeepFashion's list-file layout
under ``crops/`` (docs/formats.md §5.3, :func:`~fashionlab.datasets.read_deepfashion`) for stage 2 (§3.2.2).
:func:`imbalance_stats` measures the label imbalance of the crops (paper 06 §4.1, Eq. 8-10);
:func:`pipeline_crops` makes the merged pipeline's test set, crops around a detector's boxes (§5.2.1).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["OUTFIT_SPLITS", "OutfitData", "read_outfits", "imbalance_stats", "pipeline_crops"]

OUTFIT_SPLITS = ("train", "validation", "test")
_DF_SPLIT = {"train": "train", "validation": "val", "test": "test"}
_DF_TYPE = {1: "upper body", 2: "lower body", 3: "full body", 4: "footwear"}  # list_category_cloth.txt's types


def _load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    from .images import load_resized  # every PIL mode, errors that name the file

    return load_resized(path, size)


class OutfitData:
    """The outfit dataset in the form paper 06's experiment needs.

    ``scenes[split]``: the :class:`~fashionlab.datasets.DetectionDataset` of the split's COCO JSON and
    ``scene_images[split]`` its pictures, ``uint8 (N, S, S, 3)``. ``crops[split]``: a dict of ``images``
    (``uint8 (M, 3, c, c)``), ``object_type``, ``category`` (``int64 (M,)``) and ``attributes`` (``float32
    (M, A)``) read from the DeepFashion-layout crops. ``applicable`` ``(C, A)`` bool: which attributes can
    apply to which category (the hierarchy, paper 06 Tables 1-2); ``category_type`` ``(C,)``: the object type of
    each category.

    The pictures are in-memory numpy arrays, or, when they stream (a ``--data`` folder, ``full`` mode,
    ``FASHIONLAB_STREAM=1``: :func:`~fashionlab.datasets.image_array`), :class:`~fashionlab.datasets.StreamingArray`
    s indexed the same way and read from disk batch by batch (:attr:`streams`).
    """

    def __init__(self, root: Path, description: str, scenes, scene_images, crops, type_names, category_names,
                 attribute_names, attribute_kinds, applicable, category_type):
        self.root, self.description = Path(root), description
        self.scenes, self.scene_images, self.crops = scenes, scene_images, crops
        self.type_names = tuple(type_names)
        self.category_names = tuple(category_names)
        self.attribute_names = tuple(attribute_names)
        self.attribute_kinds = tuple(attribute_kinds)
        self.applicable = np.asarray(applicable, dtype=bool)
        self.category_type = np.asarray(category_type, dtype=np.int64)

    @property
    def streams(self) -> bool:
        """Whether the pictures are read from disk on demand (:class:`~fashionlab.datasets.StreamingArray`)."""
        from .streaming import StreamingArray

        return isinstance(self.scene_images["train"], StreamingArray)

    @property
    def num_types(self) -> int:
        return len(self.type_names)

    @property
    def num_categories(self) -> int:
        return len(self.category_names)

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_names)

    def __repr__(self) -> str:
        n = {s: len(v) for s, v in self.scene_images.items()}
        m = {s: len(v["category"]) for s, v in self.crops.items()}
        return (f"{type(self).__name__}({self.num_types} object types, {self.num_categories} categories, "
                f"{self.num_attributes} attributes; scenes {n}; crops {m})")


def read_outfits(root, scene_size: int, crop_size: int, description: str | None = None, *,
                 stream: bool | None = None, mode: str | None = None, real: bool | None = None) -> OutfitData:
    """Read an outfit folder (module docstring): every split's scenes resized to ``scene_size`` px and crops to
    ``crop_size`` px, decoded into memory or streamed from disk (:func:`~fashionlab.datasets.image_array`:
    ``stream`` if given, else streaming for ``real`` data, default: ``description`` not given, i.e. a
    ``--data`` folder, and ``full`` ``mode``; ``$FASHIONLAB_STREAM`` forces either). Raises :class:`ValueError` when
    the COCO JSON lacks the garment categories / attributes or disagrees with the crops' list files on their
    names."""
    from .deepfashion import read_deepfashion
    from .detection import read_coco_detection
    from .streaming import image_array

    root = Path(root)
    desc = f"{root.name} (from --data)" if description is None else description
    real = description is None if real is None else real
    scenes, scene_images = {}, {}
    for s in OUTFIT_SPLITS:
        ds = read_coco_detection(root / "annotations" / f"instances_{s}.json")
        scenes[s] = ds
        scene_images[s] = image_array(ds.image_root, ds.files, scene_size, layout="hwc", stream=stream, mode=mode,
                                      real=real)
    ref = scenes["train"]
    if ref.category_names is None or ref.attribute_names is None or getattr(ref, "applicable", None) is None:
        raise ValueError(f"{root}: the COCO JSON has no garment categories / attributes (the FashionSynth extension "
                         f"keys garment_categories, attribute_names); stage 2 needs them")
    df = read_deepfashion(root / "crops", require=("attributes", "categories", "partition"))
    if list(df.attribute_names) != list(ref.attribute_names) or list(df.category_names) != list(ref.category_names):
        raise ValueError(f"{root}: crops/Anno and the COCO JSON disagree on the category or attribute names")
    type_index = {t: i for i, t in enumerate(ref.type_names)}
    cat_type = np.array([type_index[_DF_TYPE[int(t)]] for t in df.category_types], dtype=np.int64)
    crops = {}
    for s in OUTFIT_SPLITS:
        idx = df.split_indices(_DF_SPLIT[s])
        imgs = image_array(df.root, [df.image_names[i] for i in idx], crop_size, layout="chw", stream=stream,
                           mode=mode, real=real)
        cats = df.categories[idx].astype(np.int64)
        crops[s] = {"images": imgs, "category": cats,
                    "object_type": cat_type[cats], "attributes": df.positives()[idx].astype(np.float32),
                    "names": [df.image_names[i] for i in idx]}
    kinds = tuple("print" if int(t) == 1 else "style" for t in df.attribute_types)
    return OutfitData(root, desc, scenes, scene_images, crops, ref.type_names, ref.category_names,
                      ref.attribute_names, kinds, ref.applicable, cat_type)


def imbalance_stats(data: OutfitData, split: str = "train") -> dict:
    """IR / MeanIR / SCUMBLE (paper 06 §4.1, Eq. 8-10) of the object types, categories and attributes of
    ``split``'s objects, before and after balancing the object types by down-sampling (§4.1)."""
    from ..metrics import imbalance_ratios, mean_imbalance_ratio, scumble
    from .balance import balance_by_downsampling

    c = data.crops[split]
    one_hot = lambda y, n: np.eye(n, dtype=bool)[y]  # noqa: E731
    out = {}
    for name, lab in (("object types", one_hot(c["object_type"], data.num_types)),
                      ("categories", one_hot(c["category"], data.num_categories)),
                      ("attributes", c["attributes"] > 0)):
        present = lab[:, lab.any(0)]
        out[name] = {"counts": lab.sum(0).astype(int).tolist(), "IR": imbalance_ratios(present).tolist(),
                     "MeanIR": mean_imbalance_ratio(present), "SCUMBLE": scumble(present)}
    keep = balance_by_downsampling(c["object_type"], seed=0)
    lab = one_hot(c["object_type"][keep], data.num_types)
    out["object types, down-sampled"] = {"counts": lab.sum(0).astype(int).tolist(),
                                          "MeanIR": mean_imbalance_ratio(lab), "SCUMBLE": scumble(lab),
                                          "kept": int(len(keep))}
    att = c["attributes"][keep] > 0
    att = att[:, att.any(0)]
    out["attributes, after down-sampling the object types"] = {"MeanIR": mean_imbalance_ratio(att),
                                                                "SCUMBLE": scumble(att)}
    return out


def pipeline_crops(data: OutfitData, dets, crop_size: int, min_score: float = 0.5, split: str = "test",
                   iou: float = 0.5) -> dict:
    """The merged pipeline's stage-2 inputs (§5.2.1): every detection scoring at least ``min_score`` (after
    class-agnostic NMS at IoU 0.6, so one garment yields one box), cropped like the training crops
    (:func:`fashionlab.synth.outfit.square_crop`), with the detector's object type. Detections are matched to the
    split's garments at ``iou`` (:func:`fashionlab.metrics.match_detections`); the returned dict holds the
    matched crops with the *true* category and attributes of their garment (for scoring), the detector's
    ``object_type`` and ``true_type``, ``scene``/``box`` of each, and ``retention`` = matched garments / all
    garments, plus ``unmatched_detections`` and ``unmatched_by_type`` (per predicted object type). With
    streamed scenes the crops are a :class:`~fashionlab.datasets.StreamingCrops` (cut from the scene when a batch
    of them is read), else an in-memory array; the pixels are the same."""
    import torch
    from torchvision.ops import nms

    from ..metrics import match_detections
    from ..synth.outfit import square_crop
    from .streaming import StreamingArray, StreamingCrops

    ds, imgs = data.scenes[split], data.scene_images[split]
    lazy = isinstance(imgs, StreamingArray)
    out = {k: [] for k in ("images", "object_type", "true_type", "category", "attributes", "scene", "box")}
    n_gt = n_matched = n_extra = 0
    extra_by_type = np.zeros(data.num_types, dtype=np.int64)
    for i, (boxes, scores, labels) in enumerate(dets):
        keep = scores >= min_score
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if len(boxes):
            k = nms(torch.as_tensor(boxes), torch.as_tensor(scores), 0.6).numpy()
            boxes, scores, labels = boxes[k], scores[k], labels[k]
        pairs = match_detections(ds.boxes[i], boxes, scores, iou_threshold=iou)
        n_gt += len(ds.boxes[i])
        n_matched += len(pairs)
        n_extra += len(boxes) - len(pairs)
        unmatched = np.setdiff1d(np.arange(len(boxes)), np.array([d for _, d in pairs], dtype=np.int64))
        extra_by_type += np.bincount(labels[unmatched].astype(np.int64), minlength=data.num_types)
        for g, d in pairs:
            if not lazy:
                out["images"].append(square_crop(imgs[i], boxes[d], crop_size).transpose(2, 0, 1))
            out["object_type"].append(int(labels[d]))
            out["true_type"].append(int(ds.object_types[i][g]))
            out["category"].append(int(ds.categories[i][g]))
            out["attributes"].append(ds.attributes[i][g].astype(np.float32))
            out["scene"].append(i)
            out["box"].append(boxes[d].astype(np.float32))
    res = {k: np.asarray(v) for k, v in out.items()}
    if lazy and len(res["scene"]):
        res["images"] = StreamingCrops(imgs, res["scene"], np.stack(out["box"]), crop_size)
    if not len(res["images"]):
        c = crop_size
        res.update(images=np.zeros((0, 3, c, c), np.uint8), attributes=np.zeros((0, data.num_attributes), np.float32))
    res["object_type"] = res["object_type"].astype(np.int64)
    res["category"] = res["category"].astype(np.int64)
    res["retention"] = n_matched / max(1, n_gt)
    res["unmatched_detections"] = n_extra
    res["unmatched_by_type"] = extra_by_type
    res["garments"] = n_gt
    return res
