"""Notebook 06's experiment: the hierarchical label sharing (HLS) pipeline of paper 06
(``06_hierarchical_label_sharing.txt``): object-type detection, then category and attribute classification.

``hls`` (paper Tables 4-7)
    Data: FashionSynth's outfit preset (:mod:`fashionlab.synth.outfit`): scenes of one mannequin in a complete
    outfit, every garment boxed with its object type (upper body, lower body, full body, footwear), category
    (a hierarchy like Table 1) and attributes (prints for every category, styles for some, like Table 2), read
    through :func:`fashionlab.datasets.read_coco_detection` (the COCO JSON) and
    :func:`fashionlab.datasets.read_deepfashion` (the stage-2 crops in DeepFashion's list-file layout).

    * Stage 1 (§3.2.1, Table 4): a Faster R-CNN (:func:`fashionlab.models.build_detector`, a small backbone
      from scratch) trained on the training scenes; COCO ``mAP`` (AP@[.5:.95]), ``AP50`` and ``AR@100`` on the
      test scenes (pycocotools, :func:`fashionlab.metrics.coco_detection_metrics`).
    * Stage 2 (§3.2.2, Tables 6-7), three methods on the same backbone family, trained on the ground-truth
      crops of the training scenes:

      - ``Baseline STL``: two networks, backbone -> GAP -> dense; softmax for the category, sigmoid for the
        attributes (:class:`fashionlab.models.STLClassifier`);
      - ``STL w/ HLS``: the same two networks, the category network also given the object type (embedded,
        concatenated to the pooled features), the attribute network the category;
      - ``MTL w/ RNN+VA``: one network, additive attention over the feature grid and a GRU decoder in two steps
        (Eq. 1-7, :class:`fashionlab.models.MTLRNNVA`), trained on CE + BCE.

      HLS passes *predicted* labels at test time (the detector's object type, the category network's
      category); in training the shared labels are the ground truth (teacher forcing). The augmentation of
      §3.2 (flip, rotation and zoom, :func:`fashionlab.models.augment`) is used by every method.
    * Metrics per method on two test sets: ``GT crops`` (crops around the ground-truth boxes, the object type
      the ground truth: what DeepFashion papers report, "the cheat") and ``detected crops`` (the merged
      pipeline: crops around the detector's boxes that match a garment at IoU >= 0.5, the object type the
      detector's; ``retention`` is the share of garments matched, §5.2.2's "retention rate"):
      ``top-1/3/5 category``; ``recall@3/5 attributes`` (the conventional per-attribute recall of the top-k
      attributes of each item, and the ``altered`` mmfashion variant over the 50 best attributes,
      docs/protocols.md §4.3, :func:`fashionlab.metrics.attribute_recall_at_k`); ``hierarchy violations``
      (beyond the paper: percent of the predicted attributes that cannot apply to the predicted category,
      :func:`fashionlab.metrics.hierarchy_violations`; the predictions are each item's top-3 attributes, those
      recall@3 counts, and in a second row the attributes with sigmoid >= 0.5, which are few: most garments
      have one attribute or none, and the networks rarely pass 0.5).
    * Table 5: one category network for all categories (the Baseline STL's) against one network per object
      type, top-1 per object type and overall, on GT crops routed by the true type and on detected crops
      routed by the detector's type (a mis-typed garment reaches a network that cannot name its category).

The recipe, step by step (what :func:`hls` runs and a notebook can call one at a time): :func:`load_data` ->
:func:`build_model` (``DETECTOR`` or one of ``METHODS``) -> :func:`train` (``engine.fit`` with a ``cache_key``: a
second run loads the trained network) -> :func:`evaluate` -> :func:`report` (an :class:`HLSResult`). What is not
a step lives beside the data and the models: the outfit data (:class:`~fashionlab.datasets.outfits.OutfitData`,
here ``HLSData``), the detected-crops test set and the imbalance statistics in :mod:`fashionlab.datasets.outfits`;
the batches, training step, optimiser, model selection and inference of the networks in
:mod:`fashionlab.models.hls_pipeline`; the paper's tables in :mod:`fashionlab.experiments.paper06_tables`. They
are re-exported here under their old names.

Memory: FashionSynth's scenes and crops in ``quick`` and ``default`` mode are decoded into memory; with
``--data`` and in ``full`` mode (or ``FASHIONLAB_STREAM=1``) they are streamed from disk
(:func:`~fashionlab.datasets.image_array`): the detector's batches, detection, the stage-2 batches and
predictions, and the detected crops (§5.2.1, cut from their scene when read) hold a few batches at a time, with
the same numbers.

Fairness: one backbone family (the mode's: SmallCNN at output stride 8, or EfficientNet-B4 in ``full``) for
every stage-2 network, the same epochs, batch,
optimiser (Adam, cosine schedule), augmentation and model selection (best validation epoch) for all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.outfits import OUTFIT_SPLITS, OutfitData, imbalance_stats, pipeline_crops, read_outfits
from ..models.hls_pipeline import (MONITOR, adam, crop_batches, detect, method_outputs, predict, scene_batches,
                                   stage2_step, top_attributes, validation_fn)
from .paper06_tables import PAPER_TABLE4, PAPER_TABLE5, PAPER_TABLE6, PAPER_TABLE7, paper_rows  # noqa: F401
from .registry import Result, added_field, register, with_start

__all__ = ["METHODS", "DETECTOR", "TEST_SETS", "HLSConfig", "HLS_CONFIGS", "HLSData", "HLSResult", "load_data",
           "build_model", "train", "evaluate", "report", "cache_key", "build_stage2_backbone", "build_detector_backbone", "stage2_step",
           "validation_fn", "crop_batches", "adam", "detect", "predict", "method_outputs", "pipeline_crops",
           "stage2_scores", "top_attributes", "train_per_type", "per_type_accuracy", "imbalance_stats",
           "detection_metrics", "detection_rows", "paper_rows", "SPLITS", "MONITOR", "scene_batches", "hls"]

METHODS = ("Baseline STL", "STL w/ HLS", "MTL w/ RNN+VA")
DETECTOR = "Faster R-CNN (SmallCNN, from scratch)"
TEST_SETS = ("GT crops", "detected crops")
EXPERIMENT = "hls"


@dataclass(frozen=True)
class HLSConfig:
    """Sizes and settings of the ``hls`` experiment per mode (the logic is the same in every mode).

    Kept from the paper: Faster R-CNN for stage 1; GAP + dense heads, softmax / sigmoid, CE / BCE for STL;
    Eq. 1-7 for MTL w/ RNN+VA with the sum of the two losses; flips, rotation and zoom of ±10 % (Keras'
    ``RandomRotation(0.1)`` turns by up to a tenth of a full circle, ``rotation`` here); Adam; model selection
    on the validation set. Changed for a CPU: small backbones trained from scratch (the paper fine-tunes an
    ImageNet Faster R-CNN InceptionV2 and EfficientNet-B4), 128 px scenes and 64 px crops, a few epochs.

    ``full`` uses the paper's stage-2 backbone, EfficientNet-B4 (``efficientnet_b4``, after its 1x1 head conv:
    1792 x 7 x 7 at 224 px, the grid MTL w/ RNN+VA attends over) on 224 px crops (B4's own resolution is 380 px;
    224 keeps a 7 x 7 grid at a third of the cost and the crops' memory within bounds: garments are at most about
    200 px in a 256 px scene). Stage 1 has no InceptionV2 in torchvision: the closest is the same single-map
    Faster R-CNN on ResNet-50 cut after ``layer3`` (``det_backbone="resnet50"``, ``det_stage="layer3"``: one
    1024-channel map at stride 16, as the TF Object Detection API's Faster R-CNN takes InceptionV2's stride-16
    Mixed_4e map, and as its ``faster_rcnn_resnet50`` takes this very cut); torchvision's FPN detectors
    (``fasterrcnn_resnet50_fpn``) are further from the paper (several maps) and from this recipe's detector
    code. ``pretrained``: ``scratch`` or ``imagenet`` (both backbones; the paper's start is ImageNet for both).
    """

    num_scenes: int
    epochs: int  # stage 2
    det_epochs: int
    scene_size: int = 128
    crop_size: int = 64
    width: int = 16  # stage-2 SmallCNN width
    det_width: int = 16
    det_representation: int = 64  # the detector's box-head width
    batch: int = 64
    det_batch: int = 8
    lr: float = 2e-3
    det_lr: float = 1e-3
    rotation: float = 0.1  # fraction of a full turn (Keras RandomRotation semantics)
    zoom: float = 0.1
    embed_dim: int = 16
    hidden_dim: int = 128
    attention_units: int = 64
    fc_dim: int = 128
    dropout: float = 0.2
    violation_k: int = 3  # hierarchy violations count the top-k attributes of each item (recall@k's predictions)
    threshold: float = 0.5  # ... and, in a second row, the attributes with sigmoid >= threshold
    det_score: float = 0.5  # the pipeline keeps detections scoring at least this
    topn: int = 50  # the altered recall's top-N attributes (mmfashion)
    per_type: bool = True  # Table 5
    output_stride: int = 8
    # the stage-2 backbone (fashionlab.models.build_backbone)
    backbone: str = "smallcnn"
    stage: str | None = None
    final_relu: bool = True
    # the stage-1 backbone and the start (added fields: left out of the trained-model cache key at their defaults)
    det_backbone: str = added_field("smallcnn")  # smallcnn: models.hls.detector_backbone of det_width
    det_stage: str | None = added_field(None)
    pretrained: str = added_field("scratch")  # "scratch" or "imagenet" (torchvision backbones only)


HLS_CONFIGS = {
    "quick": HLSConfig(num_scenes=300, epochs=2, det_epochs=2, width=8, det_width=8, batch=32),
    # a 2-core CPU, about 10 minutes (575-590 s measured): the detector about 5 (8 epochs of 1,920 scenes; in a
    # 6-epoch calibration run its validation mAP still rose by about a point per epoch at the end), the five
    # stage-2 networks and the four per-type ones about 4 (8 epochs of 7,308 crops each)
    "default": HLSConfig(num_scenes=2400, epochs=8, det_epochs=8),
    # a GPU: more scenes, larger pictures, the paper's EfficientNet-B4 for stage 2 and the closest torchvision
    # backbone to its InceptionV2 for stage 1 (ResNet-50 to layer3); width/det_width are the SmallCNNs', unused
    "full": HLSConfig(num_scenes=20000, epochs=30, det_epochs=30, scene_size=256, crop_size=224, width=32,
                      det_width=32, lr=1e-3, backbone="efficientnet_b4", det_backbone="resnet50", det_stage="layer3"),
}


# ----------------------------------------------------------------------------------------------------------
# step 1: load the data (fashionlab.datasets.outfits)
# ----------------------------------------------------------------------------------------------------------
SPLITS = OUTFIT_SPLITS
HLSData = OutfitData  # the data object of the recipe (fashionlab.datasets.outfits)


def _mode_of(cfg: HLSConfig) -> str:
    """The name of ``cfg`` in :data:`HLS_CONFIGS` (whatever its start), ``"custom"`` for another config."""
    return next((m for m, c in HLS_CONFIGS.items() if replace(c, pretrained=cfg.pretrained) == cfg), "custom")


def load_data(cfg: HLSConfig, data: Path | None = None, seed: int = 0, progress: bool = False,
              mode: str | None = None) -> HLSData:
    """The outfit dataset (:func:`fashionlab.datasets.outfits.read_outfits`): ``data`` (a folder in the outfit
    preset's layout: ``annotations/instances_{split}.json``, ``{split}/image/``, ``crops/`` in DeepFashion's
    list-file layout) or FashionSynth's outfit preset (``cfg.num_scenes`` scenes at ``cfg.scene_size`` px, crops
    at ``cfg.crop_size`` px). The scenes and crops (§3.2.1, §3.2.2) are decoded into memory, or streamed from disk
    batch by batch for ``data`` and in ``full`` ``mode`` (default: the mode whose config ``cfg`` is;
    :func:`~fashionlab.datasets.image_array`, ``$FASHIONLAB_STREAM`` forces either)."""
    mode = _mode_of(cfg) if mode is None else mode
    if data is not None:
        return read_outfits(data, cfg.scene_size, cfg.crop_size, mode=mode, real=True)
    from ..synth.outfit import ensure_outfits

    root = ensure_outfits(cfg.num_scenes, seed=seed, image_size=cfg.scene_size, crop_size=cfg.crop_size,
                          progress=progress)
    return read_outfits(root, cfg.scene_size, cfg.crop_size,
                        f"FashionSynth outfit preset, {cfg.num_scenes} scenes, {cfg.scene_size} px, seed {seed}",
                        mode=mode, real=False)


# ----------------------------------------------------------------------------------------------------------
# step 2: build a model
# ----------------------------------------------------------------------------------------------------------
def build_stage2_backbone(cfg: HLSConfig):
    """The backbone of every stage-2 network: SmallCNN at output stride 8 (an 8 x 8 grid at 64 px for the
    attention of MTL w/ RNN+VA), :func:`fashionlab.models.build_backbone`."""
    from ..models import build_backbone

    if cfg.pretrained == "scratch":
        return build_backbone(cfg.backbone, width=cfg.width, output_stride=cfg.output_stride,
                              final_relu=cfg.final_relu, stage=cfg.stage)
    return build_backbone(cfg.backbone, width=cfg.width, output_stride=cfg.output_stride, final_relu=cfg.final_relu,
                          stage=cfg.stage, pretrained=cfg.pretrained)


def build_detector_backbone(cfg: HLSConfig):
    """The stage-1 detector's backbone: None for ``det_backbone="smallcnn"`` (then
    :func:`fashionlab.models.build_detector` builds its SmallCNN of ``det_width``), else ``cfg.det_backbone`` cut at
    ``cfg.det_stage`` (:func:`fashionlab.models.backbone`), ImageNet-initialised when ``cfg.pretrained`` says so."""
    from ..models import build_backbone

    if cfg.det_backbone == "smallcnn":
        if cfg.pretrained == "fashionsynth":  # the pretrained SmallCNN's first four blocks (detector_backbone's cut)
            from collections import OrderedDict

            from ..models.backbones import PretrainedBackbone

            net = build_backbone("smallcnn", width=cfg.det_width, pretrained="fashionsynth")
            return PretrainedBackbone(OrderedDict(list(net.named_children())[:4]), 4 * cfg.det_width, "smallcnn",
                                      "block4", weights=net.weights, width=cfg.det_width)
        if cfg.pretrained != "scratch":
            build_backbone("smallcnn", pretrained=cfg.pretrained)  # raises: no ImageNet SmallCNN
        return None
    return build_backbone(cfg.det_backbone, stage=cfg.det_stage, pretrained=cfg.pretrained)


def build_model(method: str, cfg: HLSConfig, data: HLSData, seed: int = 0):
    """A fresh, untrained model of ``method``, its weights drawn after seeding every RNG with ``seed``:

    * ``DETECTOR``: the stage-1 Faster R-CNN (§3.2.1, :func:`fashionlab.models.build_detector`), anchors scaled
      with the scene size (its 12-96 px defaults suit a 128 px scene);
    * ``"Baseline STL"`` / ``"STL w/ HLS"`` (§3.2, Fig. 1a): an ``nn.ModuleDict`` of two
      :class:`~fashionlab.models.STLClassifier` s, ``"category"`` (softmax) and ``"attributes"`` (sigmoid); with
      HLS the first is conditioned on the object type and the second on the category (each built after its own
      reseed, so either network starts the same whether built alone or in the pair);
    * ``"MTL w/ RNN+VA"`` (§3.2, Fig. 1b, Eq. 1-7): one :class:`~fashionlab.models.MTLRNNVA`."""
    from torch import nn

    from ..engine import seed_everything
    from ..models import MTLRNNVA, STLClassifier, build_detector

    if method == DETECTOR:
        seed_everything(seed)
        scale = cfg.scene_size / 128
        body = build_detector_backbone(cfg)
        return build_detector(num_classes=data.num_types, image_size=cfg.scene_size, width=cfg.det_width,
                              representation_dim=cfg.det_representation,
                              anchor_sizes=tuple(max(4, round(a * scale)) for a in (12, 24, 48, 96)),
                              **({} if body is None else {"backbone": body}))
    if method == "MTL w/ RNN+VA":
        seed_everything(seed)
        return MTLRNNVA(build_stage2_backbone(cfg), data.num_types, data.num_categories, data.num_attributes,
                        hidden_dim=cfg.hidden_dim, attention_units=cfg.attention_units, embed_dim=cfg.embed_dim,
                        fc_dim=cfg.fc_dim, dropout=cfg.dropout)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected {DETECTOR!r} or one of {METHODS}")
    hls = method == "STL w/ HLS"
    nets = {}
    for kind, n_out, cond in (("category", data.num_categories, data.num_types),
                              ("attributes", data.num_attributes, data.num_categories)):
        seed_everything(seed)
        nets[kind] = STLClassifier(build_stage2_backbone(cfg), n_out, condition_classes=cond if hls else None,
                                   embed_dim=cfg.embed_dim, dropout=cfg.dropout)
    return nn.ModuleDict(nets)


# ----------------------------------------------------------------------------------------------------------
# step 3: train (engine.fit with the step, batches and optimiser of fashionlab.models.hls_pipeline, a cache key
# per network)
# ----------------------------------------------------------------------------------------------------------
def cache_key(method: str, cfg: HLSConfig, data: HLSData, seed: int, **extra) -> dict:
    """The ``engine.fit`` cache key of one trained network: experiment, method, mode (the name of ``cfg`` in
    :data:`HLS_CONFIGS`, ``"custom"`` for another config), seed, config, dataset, plus ``extra`` (the ``stage``:
    which network of a method)."""
    return {"experiment": EXPERIMENT, "method": method, "mode": _mode_of(cfg), "seed": int(seed), "config": cfg,
            "dataset": data.description, **extra}


def _fit_stage2(net, task: str, data: HLSData, cfg: HLSConfig, seed: int, device, progress: bool, key: dict,
                index: np.ndarray | None = None, categories: np.ndarray | None = None):
    """One stage-2 network through ``engine.fit`` (Adam, cosine schedule, the best validation epoch kept).
    ``index``/``categories``: a subset of the training crops and only these categories, labels re-indexed
    (Table 5's per-type networks)."""
    from ..datasets import StreamingArray, take_rows
    from ..engine import fit

    tr, va = data.crops["train"], data.crops["validation"]
    if categories is not None:
        remap = np.full(data.num_categories, -1, dtype=np.int64)
        remap[categories] = np.arange(len(categories))
        tr = {**tr, "category": remap[tr["category"]]}
        keep = np.isin(va["category"], categories)
        va = {k: (take_rows(v, keep) if isinstance(v, (np.ndarray, StreamingArray)) else v) for k, v in va.items()}
        va["category"] = remap[va["category"]]
    opt, sched = adam(net, cfg, len(tr["category"]) if index is None else len(index))
    return fit(net, stage2_step(net, task, cfg), lambda epoch: crop_batches(tr, cfg.batch, seed, epoch, index=index),
               opt, cfg.epochs, scheduler=sched, scheduler_interval="step", device=device, seed=seed,
               eval_fn=validation_fn(task, va), monitor=MONITOR[task], mode="max", restore_best=True,
               progress=progress, cache_key=key)


def _fit_detector(det, data: HLSData, cfg: HLSConfig, seed: int, device, progress: bool, key: dict):
    """Stage 1 (§3.2.1): the detector on the training scenes (random horizontal flips), AdamW with a one-cycle
    schedule, the epoch with the best validation mAP kept; the loss is torchvision's Faster R-CNN loss
    (RPN objectness + box regression, head classification + box regression), summed."""
    import torch

    from ..engine import fit

    ds, imgs = data.scenes["train"], data.scene_images["train"]
    steps = -(-len(ds) // cfg.det_batch)
    opt = torch.optim.AdamW(det.parameters(), lr=cfg.det_lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.det_lr, total_steps=max(1, steps * cfg.det_epochs),
                                                pct_start=0.15)

    def batches(epoch):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(ds))
        flip = rng.random(len(ds)) < 0.5
        return scene_batches(imgs, ds, order, cfg.det_batch, flip)

    def step(model, batch):
        x, t = batch
        losses = model(x, t)
        return sum(losses.values()), {k.replace("loss_", ""): float(v.detach()) for k, v in losses.items()}

    def eval_fn(model, epoch):
        m = detection_metrics(data, "validation", detect(model, data.scene_images["validation"]))
        return {"valid_mAP": 100 * m["mAP"], "valid_AR@100": 100 * m["AR@100"]}

    return fit(det, step, batches, opt, cfg.det_epochs, scheduler=sched, scheduler_interval="step", device=device,
               seed=seed, eval_fn=eval_fn, monitor="valid_mAP", mode="max", restore_best=True, progress=progress,
               cache_key=key)


def train(method: str, model, data: HLSData, cfg: HLSConfig, seed: int = 0, device=None, progress: bool = False):
    """Train ``model`` (from :func:`build_model`, or a module of one's own with the same interface) as ``method``
    through ``engine.fit``, each network with its :func:`cache_key` (a second call loads it and says so).
    Returns the ``History``; for the STL methods a dict ``{"category": History, "attributes": History}``."""
    if method == DETECTOR:
        return _fit_detector(model, data, cfg, seed, device, progress, cache_key(method, cfg, data, seed))
    if method == "MTL w/ RNN+VA":
        return _fit_stage2(model, "mtl", data, cfg, seed, device, progress, cache_key(method, cfg, data, seed))
    return {kind: _fit_stage2(model[kind], kind, data, cfg, seed, device, progress,
                              cache_key(method, cfg, data, seed, stage=kind)) for kind in ("category", "attributes")}


def train_per_type(data: HLSData, cfg: HLSConfig, seed: int, device=None, progress: bool = False) -> dict:
    """Table 5: one Baseline-STL category network per object type, each trained on its type's crops and
    categories (seed ``seed + 100 + type``). Returns ``{type index: (model, categories, history)}``."""
    from ..engine import seed_everything
    from ..models import STLClassifier

    out = {}
    for t in range(data.num_types):
        cats = np.flatnonzero(data.category_type == t)
        idx = np.flatnonzero(np.isin(data.crops["train"]["category"], cats))
        if len(cats) == 0 or len(idx) == 0:
            continue
        s = seed + 100 + t
        seed_everything(s)
        net = STLClassifier(build_stage2_backbone(cfg), len(cats), embed_dim=cfg.embed_dim, dropout=cfg.dropout)
        key = cache_key("one model per object type", cfg, data, s, stage=data.type_names[t])
        hist = _fit_stage2(net, "category", data, cfg, s, device, progress, key, index=idx, categories=cats)
        out[t] = (net, cats, hist)
    return out


# ----------------------------------------------------------------------------------------------------------
# step 4: evaluate (every no-grad pass through engine.extract_features)
# ----------------------------------------------------------------------------------------------------------
def detection_metrics(data: HLSData, split: str, dets) -> dict:
    """COCO mAP, AP50, AR@100 and AP per object type (§4.2, Table 4) of ``dets`` on ``split``'s scenes."""
    from ..metrics import coco_detection_metrics

    ds = data.scenes[split]
    gt = [(ds.boxes[i], ds.object_types[i]) for i in range(len(ds))]
    return coco_detection_metrics(gt, dets, data.type_names)


def stage2_scores(logits: dict, crops: dict, data: HLSData, cfg: HLSConfig) -> dict:
    """The stage-2 metrics of one method on one test set, in percent: top-1/3/5 category (§4.2), conventional and
    altered recall@3/5 of the attributes (docs/protocols.md §4.3), hierarchy violations of the predicted
    attributes (top ``cfg.violation_k``, and sigmoid >= ``cfg.threshold``) against the predicted category."""
    from ..metrics import attribute_recall_at_k, hierarchy_violations, topk_accuracy

    if len(crops["category"]) == 0:
        return {}
    cat, att = logits["category"], logits["attributes"]
    k = [kk for kk in (1, 3, 5) if kk <= cat.shape[1]]
    top = topk_accuracy(cat, crops["category"], ks=k)
    r = {f"top-{kk} category": 100 * v for kk, v in top.items()}
    for kk in (3, 5):
        r[f"recall@{kk} attributes"] = 100 * attribute_recall_at_k(att, crops["attributes"], kk)
        r[f"altered recall@{kk} attributes"] = 100 * attribute_recall_at_k(att, crops["attributes"], kk,
                                                                            topn=cfg.topn)
    v = hierarchy_violations(top_attributes(att, cfg.violation_k), cat.argmax(1), data.applicable)
    r["hierarchy violations"] = 100 * v["rate"]
    r["items with a violation"] = 100 * v["items"]
    v = hierarchy_violations(1 / (1 + np.exp(-att)) >= cfg.threshold, cat.argmax(1), data.applicable)
    r[f"hierarchy violations (p >= {cfg.threshold})"] = 100 * v["rate"]
    r[f"attributes with p >= {cfg.threshold} per item"] = v["predicted"] / len(cat)
    return r


def evaluate(method: str, model, data: HLSData, cfg: HLSConfig, test_sets: dict | None = None,
             device=None) -> dict:
    """Score ``method``'s trained ``model`` on every test set (default ``{"GT crops": data.crops["test"]}``;
    the experiment adds ``"detected crops"``, :func:`pipeline_crops`). Returns ``{test set: {"outputs": logits
    (:func:`method_outputs`), "scores": metrics (:func:`stage2_scores`)}}``."""
    test_sets = {"GT crops": data.crops["test"]} if test_sets is None else test_sets
    out = {}
    for name, crops in test_sets.items():
        logits = method_outputs(method, model, crops, device)
        out[name] = {"outputs": logits, "scores": stage2_scores(logits, crops, data, cfg)}
    return out


def per_type_accuracy(all_categories, per_type: dict, crops: dict, data: HLSData, route: np.ndarray) -> dict:
    """Table 5 on ``crops``: top-1 category per true object type and overall (percent) of the one network for all
    categories (``all_categories``, the Baseline STL's category network) and of the per-type networks, each item
    routed to the network of ``route`` (its true type on GT crops, the detector's on detected crops)."""
    from ..datasets import take_rows

    allcat = predict(all_categories, crops["images"], kind="category").argmax(1)
    per = np.full(len(crops["category"]), -1, dtype=np.int64)
    for t, (model, cats, _) in per_type.items():
        sel = np.flatnonzero(route == t)
        if len(sel):
            per[sel] = cats[predict(model, take_rows(crops["images"], sel), kind="category").argmax(1)]
    true_type = data.category_type[crops["category"]]
    out = {}
    for name, pred in (("one model for all categories", allcat), ("one model per object type", per)):
        ok = pred == crops["category"]
        out[name] = {"overall": 100 * float(ok.mean()),
                     **{data.type_names[t]: 100 * float(ok[true_type == t].mean())
                        for t in range(data.num_types) if (true_type == t).any()}}
    return out


# ----------------------------------------------------------------------------------------------------------
# step 5: report
# ----------------------------------------------------------------------------------------------------------
@dataclass
class HLSResult(Result):
    """What ``experiments.run("hls")`` returns: the rows, plus the named objects notebook 06 draws on.

    ``data`` (:class:`HLSData`), ``config``; stage 1: ``detector``, its ``detections`` on the test scenes and
    their ``detection`` metrics; stage 2: ``models`` (method -> model of :func:`build_model`), ``per_type``
    (Table 5's networks, :func:`train_per_type`), ``histories`` (``"detector"`` and each method's, as
    :func:`train` returns them); ``gt_crops`` / ``det_crops`` (the two test sets, :func:`pipeline_crops`),
    ``outputs`` and ``scores`` keyed by ``(test set, method)``, ``table5``, ``imbalance``
    (:func:`imbalance_stats`) and ``seconds`` per stage."""

    config: HLSConfig | None = None
    data: HLSData | None = None
    detector: Any = None
    detections: list = field(default_factory=list)
    detection: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    per_type: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    gt_crops: dict = field(default_factory=dict)
    det_crops: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    table5: dict = field(default_factory=dict)
    imbalance: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)


def detection_rows(m: dict, dataset: str) -> list[dict]:
    """Table 4's metrics of the detector as result rows (percent)."""
    rows = [{"method": DETECTOR, "dataset": dataset, "metric": k, "value": 100 * m[k]}
            for k in ("mAP", "AP50", "AR@100")]
    rows += [{"method": DETECTOR, "dataset": dataset, "metric": "AP", "attribute": t, "value": 100 * v}
             for t, v in m.get("per_class", {}).items()]
    return rows


def report(cfg: HLSConfig, data: HLSData, detection: dict, scores: dict, det_crops: dict, table5: dict,
           **objects) -> HLSResult:
    """The :class:`HLSResult`: rows of Table 4 (the detector on the test scenes), of Tables 6-7 (``scores``,
    ``(test set, method) -> metrics``), the pipeline's retention and object-type accuracy, Table 5, the paper's
    rows (:func:`paper_rows`) and the notes; ``objects`` are the result's other fields."""
    rows = detection_rows(detection, "outfit scenes (test)")
    for (name, method), res in scores.items():
        rows += [{"method": method, "dataset": name, "metric": k, "value": v} for k, v in res.items()]
    rows.append({"method": DETECTOR, "dataset": "detected crops", "metric": "retention",
                 "value": 100 * det_crops["retention"]})
    if len(det_crops["category"]):
        rows.append({"method": DETECTOR, "dataset": "detected crops", "metric": "object type accuracy",
                     "value": 100 * float((det_crops["object_type"] == det_crops["true_type"]).mean())})
    for name, res in table5.items():
        for method, accs in res.items():
            rows += [{"method": method, "dataset": f"Table 5, {name}", "metric": "top-1 category",
                      **({} if k == "overall" else {"attribute": k}), "value": v} for k, v in accs.items()]
    d = data
    notes = [
        f"{d.description}; stage-2 crops: {len(d.crops['train']['category'])} train, "
        f"{len(d.crops['test']['category'])} test; {d.num_types} object types, {d.num_categories} categories, "
        f"{d.num_attributes} attributes ({sum(k == 'print' for k in d.attribute_kinds)} prints).",
        f"Detector kept the epoch with the best validation mAP; pipeline: detections scoring >= {cfg.det_score}, "
        f"class-agnostic NMS 0.6, matched to garments at IoU 0.5; retention {100 * det_crops['retention']:.1f}%.",
        f"'altered recall@k' keeps the {cfg.topn} best attributes (mmfashion); with {d.num_attributes} attributes "
        f"it {'equals' if d.num_attributes <= cfg.topn else 'differs from'} the conventional recall.",
        f"Hierarchy violations: predicted attributes (each item's top {cfg.violation_k}; second row: sigmoid >= "
        f"{cfg.threshold}) that cannot apply to the predicted category, percent of all predicted attributes.",
    ]
    if cfg.det_backbone != "smallcnn" or cfg.pretrained != "scratch":  # the method's name says SmallCNN, scratch
        notes.append(f"The row '{DETECTOR}' is this config's detector: Faster R-CNN on {cfg.det_backbone} "
                     f"(cut after {cfg.det_stage}), start {cfg.pretrained}; stage 2 on {cfg.backbone}.")
    return HLSResult(rows=rows, paper_rows=paper_rows(), dataset=d.description, notes=notes, config=cfg, data=d,
                     detection=detection, scores=scores, det_crops=det_crops, table5=table5, **objects)


# ----------------------------------------------------------------------------------------------------------
# the experiment: the steps in order
# ----------------------------------------------------------------------------------------------------------
@register("hls", "Hierarchical label sharing (paper 06): object-type detection (Faster R-CNN, COCO mAP / AR@100), "
                 "Baseline STL vs STL w/ HLS vs MTL w/ RNN+VA on category and attribute classification, "
                 "one model vs one per object type, hierarchy violations", notebook="06_hls_pipeline.ipynb")
def hls(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
        config: HLSConfig | None = None) -> HLSResult:
    """The ``hls`` experiment (module docstring). ``data``: a folder in the outfit preset's layout."""
    cfg = with_start(config or HLS_CONFIGS[mode], EXPERIMENT, mode)
    seconds, t = {}, time.perf_counter()
    d = load_data(cfg, data, seed, progress=progress, mode=mode)
    seconds["data"] = time.perf_counter() - t

    t = time.perf_counter()
    detector = build_model(DETECTOR, cfg, d, seed)
    histories = {"detector": train(DETECTOR, detector, d, cfg, seed, device, progress)}
    seconds["detector"] = time.perf_counter() - t
    dets = detect(detector, d.scene_images["test"], device=device)
    test_sets = {"GT crops": dict(d.crops["test"]),
                 "detected crops": pipeline_crops(d, dets, cfg.crop_size, cfg.det_score, "test")}

    t = time.perf_counter()
    models, evals = {}, {}
    for method in METHODS:
        models[method] = build_model(method, cfg, d, seed)
        histories[method] = train(method, models[method], d, cfg, seed, device, progress)
        evals[method] = evaluate(method, models[method], d, cfg, test_sets, device)
    seconds["stage 2"] = time.perf_counter() - t
    per_type, table5 = {}, {}
    if cfg.per_type:
        t = time.perf_counter()
        per_type = train_per_type(d, cfg, seed, device, progress)
        seconds["per type"] = time.perf_counter() - t
        for name, crops in test_sets.items():
            if len(crops["category"]):
                table5[name] = per_type_accuracy(models["Baseline STL"]["category"], per_type, crops, d,
                                                 crops["object_type"])
    keys = [(name, method) for name in TEST_SETS for method in METHODS]
    return report(cfg, d, detection_metrics(d, "test", dets), {k: evals[k[1]][k[0]]["scores"] for k in keys},
                  test_sets["detected crops"], table5, detector=detector, detections=dets, models=models,
                  per_type=per_type, histories=histories, gt_crops=test_sets["GT crops"],
                  outputs={k: evals[k[1]][k[0]]["outputs"] for k in keys}, imbalance=imbalance_stats(d),
                  seconds=seconds)
