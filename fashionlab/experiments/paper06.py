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
second run loads the trained network) -> :func:`evaluate` -> :func:`report` (an :class:`HLSResult`).

Fairness: one backbone family (SmallCNN, output stride 8) for every stage-2 network, the same epochs, batch,
optimiser (Adam, cosine schedule), augmentation and model selection (best validation epoch) for all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .paper06_tables import PAPER_TABLE4, PAPER_TABLE5, PAPER_TABLE6, PAPER_TABLE7, paper_rows  # noqa: F401
from .registry import Result, register

__all__ = ["METHODS", "DETECTOR", "TEST_SETS", "HLSConfig", "HLS_CONFIGS", "HLSData", "HLSResult", "load_data",
           "build_model", "train", "evaluate", "report", "cache_key", "build_stage2_backbone", "stage2_step",
           "validation_fn", "crop_batches", "adam", "detect", "predict", "method_outputs", "pipeline_crops",
           "stage2_scores", "top_attributes", "train_per_type", "per_type_accuracy", "imbalance_stats",
           "detection_rows", "paper_rows", "hls"]

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


HLS_CONFIGS = {
    "quick": HLSConfig(num_scenes=300, epochs=2, det_epochs=2, width=8, det_width=8, batch=32),
    # a 2-core CPU, about 10 minutes (575-590 s measured): the detector about 5 (8 epochs of 1,920 scenes; in a
    # 6-epoch calibration run its validation mAP still rose by about a point per epoch at the end), the five
    # stage-2 networks and the four per-type ones about 4 (8 epochs of 7,308 crops each)
    "default": HLSConfig(num_scenes=2400, epochs=8, det_epochs=8),
    # a GPU: more scenes, larger pictures and backbones
    "full": HLSConfig(num_scenes=20000, epochs=30, det_epochs=30, scene_size=256, crop_size=128, width=32,
                      det_width=32, lr=1e-3),
}


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------
def _load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


class HLSData:
    """The outfit dataset in the form the experiment needs.

    ``scenes[split]``: the :class:`~fashionlab.datasets.DetectionDataset` of the split's COCO JSON and
    ``scene_images[split]`` its pictures, ``uint8 (N, S, S, 3)``. ``crops[split]``: a dict of ``images``
    (``uint8 (M, 3, c, c)``), ``object_type``, ``category`` (``int64 (M,)``) and ``attributes`` (``float32
    (M, A)``) read from the DeepFashion-layout crops. ``applicable`` ``(C, A)`` bool: which attributes can
    apply to which category (the hierarchy); ``category_type`` ``(C,)``: the object type of each category.
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
        return (f"HLSData({self.num_types} object types, {self.num_categories} categories, {self.num_attributes} "
                f"attributes; scenes {n}; crops {m})")


SPLITS = ("train", "validation", "test")
_DF_SPLIT = {"train": "train", "validation": "val", "test": "test"}


def load_data(cfg: HLSConfig, data: Path | None = None, seed: int = 0, progress: bool = False) -> HLSData:
    """The outfit dataset: ``data`` (a folder in the outfit preset's layout: ``annotations/instances_{split}.json``,
    ``{split}/image/``, ``crops/`` in DeepFashion's list-file layout) or FashionSynth's outfit preset
    (``cfg.num_scenes`` scenes at ``cfg.scene_size`` px, crops at ``cfg.crop_size`` px)."""
    from ..datasets import read_coco_detection, read_deepfashion

    if data is None:
        from ..synth.outfit import ensure_outfits

        root = ensure_outfits(cfg.num_scenes, seed=seed, image_size=cfg.scene_size, crop_size=cfg.crop_size,
                              progress=progress)
        desc = f"FashionSynth outfit preset, {cfg.num_scenes} scenes, {cfg.scene_size} px, seed {seed}"
    else:
        root, desc = Path(data), f"{Path(data).name} (from --data)"
    scenes, scene_images = {}, {}
    for s in SPLITS:
        ds = read_coco_detection(root / "annotations" / f"instances_{s}.json")
        scenes[s] = ds
        scene_images[s] = (np.stack([_load_rgb(ds.image_path(i), cfg.scene_size) for i in range(len(ds))])
                           if len(ds) else np.zeros((0, cfg.scene_size, cfg.scene_size, 3), np.uint8))
    ref = scenes["train"]
    if ref.category_names is None or ref.attribute_names is None or getattr(ref, "applicable", None) is None:
        raise ValueError(f"{root}: the COCO JSON has no garment categories / attributes (the FashionSynth extension "
                         f"keys garment_categories, attribute_names); stage 2 needs them")
    df = read_deepfashion(root / "crops", require=("attributes", "categories", "partition"))
    if list(df.attribute_names) != list(ref.attribute_names) or list(df.category_names) != list(ref.category_names):
        raise ValueError(f"{root}: crops/Anno and the COCO JSON disagree on the category or attribute names")
    type_of_df = {1: "upper body", 2: "lower body", 3: "full body", 4: "footwear"}
    type_index = {t: i for i, t in enumerate(ref.type_names)}
    cat_type = np.array([type_index[type_of_df[int(t)]] for t in df.category_types], dtype=np.int64)
    crops = {}
    for s in SPLITS:
        idx = df.split_indices(_DF_SPLIT[s])
        imgs = (np.stack([_load_rgb(df.root / df.image_names[i], cfg.crop_size) for i in idx])
                if len(idx) else np.zeros((0, cfg.crop_size, cfg.crop_size, 3), np.uint8))
        cats = df.categories[idx].astype(np.int64)
        crops[s] = {"images": np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)), "category": cats,
                    "object_type": cat_type[cats], "attributes": df.positives()[idx].astype(np.float32),
                    "names": [df.image_names[i] for i in idx]}
    kinds = tuple("print" if int(t) == 1 else "style" for t in df.attribute_types)
    return HLSData(root, desc, scenes, scene_images, crops, ref.type_names, ref.category_names,
                   ref.attribute_names, kinds, ref.applicable, cat_type)


def imbalance_stats(data: HLSData, split: str = "train") -> dict:
    """IR / MeanIR / SCUMBLE (Eq. 8-10) of the object types, categories and attributes of ``split``'s objects,
    before and after balancing the object types by down-sampling (§4.1)."""
    from ..datasets import balance_by_downsampling
    from ..metrics import imbalance_ratios, mean_imbalance_ratio, scumble

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



# ----------------------------------------------------------------------------------------------------------
# step 2: build a model
# ----------------------------------------------------------------------------------------------------------
def build_stage2_backbone(cfg: HLSConfig):
    """The backbone of every stage-2 network: SmallCNN at output stride 8 (an 8 x 8 grid at 64 px for the
    attention of MTL w/ RNN+VA), :func:`fashionlab.models.build_backbone`."""
    from ..models import build_backbone

    return build_backbone(cfg.backbone, width=cfg.width, output_stride=cfg.output_stride, final_relu=cfg.final_relu,
                          stage=cfg.stage)


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
        return build_detector(num_classes=data.num_types, image_size=cfg.scene_size, width=cfg.det_width,
                              representation_dim=cfg.det_representation,
                              anchor_sizes=tuple(max(4, round(a * scale)) for a in (12, 24, 48, 96)))
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
# step 3: train (engine.fit, the loss of fashionlab.models.hls_loss, a cache key per network)
# ----------------------------------------------------------------------------------------------------------
def cache_key(method: str, cfg: HLSConfig, data: HLSData, seed: int, **extra) -> dict:
    """The ``engine.fit`` cache key of one trained network: experiment, method, mode (the name of ``cfg`` in
    :data:`HLS_CONFIGS`, ``"custom"`` for another config), seed, config, dataset, plus ``extra`` (the ``stage``:
    which network of a method)."""
    mode = next((m for m, c in HLS_CONFIGS.items() if c == cfg), "custom")
    return {"experiment": EXPERIMENT, "method": method, "mode": mode, "seed": int(seed), "config": cfg,
            "dataset": data.description, **extra}


def crop_batches(crops: dict, batch: int, seed: int, epoch: int, keys=("object_type", "category", "attributes"),
                 index: np.ndarray | None = None):
    """The training batches of ``epoch``: ``(uint8 images, *keys)`` tensors in an order drawn from
    ``(seed, epoch)``; ``index`` restricts them to those crops."""
    import torch

    n = len(crops["category"]) if index is None else len(index)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    if index is not None:
        order = index[order]
    for b in range(0, len(order), batch):
        i = order[b:b + batch]
        yield (torch.from_numpy(crops["images"][i]),) + tuple(torch.from_numpy(np.asarray(crops[k][i])) for k in keys)


def adam(model, cfg: HLSConfig, n_items: int):
    """Adam at ``cfg.lr`` with a cosine schedule over ``cfg.epochs`` epochs of ``n_items`` crops (stepped per
    batch): the optimiser of every stage-2 network."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * -(-n_items // cfg.batch)))
    return opt, sched


def stage2_step(net, task: str, cfg: HLSConfig):
    """The training step of a stage-2 network for ``engine.fit``: augment the batch (§3.2, flips, rotation, zoom,
    :func:`fashionlab.models.augment`), run the network and return :func:`fashionlab.models.hls_loss`:

    * ``task="category"``: categorical cross-entropy of the softmax; a conditioned network (STL w/ HLS) gets the
      ground-truth object type (teacher forcing);
    * ``task="attributes"``: binary cross-entropy of the sigmoids; a conditioned network gets the true category;
    * ``task="mtl"``: MTL w/ RNN+VA, the sum CE + BCE, the true category fed to the decoder's step 2 (Eq. 6)."""
    import torch

    from ..models import augment, hls_loss

    conditioned = bool(getattr(net, "condition_classes", None))

    def step(m, batch):
        x, t, c, a = batch
        gen = torch.Generator(device=x.device).manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        x = augment(x.float().div_(255), generator=gen, rotation=cfg.rotation, zoom=cfg.zoom)
        if task == "mtl":
            out = m(x, t, category=c)
            return hls_loss(out.category, out.attributes, c, a)
        if conditioned:
            out = m(x, t if task == "category" else c)
        else:
            out = m(x)
        return hls_loss(out, None, c) if task == "category" else hls_loss(None, out, attributes=a)

    return step


def validation_fn(task: str, crops: dict):
    """``eval_fn`` for ``engine.fit``: validation top-1 (``task="category"``), recall@3 (``"attributes"``) or
    their sum (``"mtl"``, the network predicting its own category for step 2), in percent."""
    from ..metrics import attribute_recall_at_k, topk_accuracy

    def top1(logits):
        return {"valid_top1": 100 * topk_accuracy(logits, crops["category"], ks=(1,))[1]
                if len(crops["category"]) else 0.0}

    def recall3(logits):
        ok = len(crops["attributes"]) > 0 and np.asarray(crops["attributes"]).any()
        return {"valid_recall@3": 100 * attribute_recall_at_k(logits, crops["attributes"], 3) if ok else 0.0}

    def eval_fn(m, epoch):
        if task == "mtl":
            p = predict(m, crops["images"], object_type=crops["object_type"], kind="mtl")
            r = {**top1(p["category"]), **recall3(p["attributes"])}
            return {"valid_sum": r["valid_top1"] + r["valid_recall@3"], **r}
        logits = predict(m, crops["images"], object_type=crops["object_type"], category=crops["category"], kind=task)
        return top1(logits) if task == "category" else recall3(logits)

    return eval_fn


MONITOR = {"category": "valid_top1", "attributes": "valid_recall@3", "mtl": "valid_sum"}


def _fit_stage2(net, task: str, data: HLSData, cfg: HLSConfig, seed: int, device, progress: bool, key: dict,
                index: np.ndarray | None = None, categories: np.ndarray | None = None):
    """One stage-2 network through ``engine.fit`` (Adam, cosine schedule, the best validation epoch kept).
    ``index``/``categories``: a subset of the training crops and only these categories, labels re-indexed
    (Table 5's per-type networks)."""
    from ..engine import fit

    tr, va = data.crops["train"], data.crops["validation"]
    if categories is not None:
        remap = np.full(data.num_categories, -1, dtype=np.int64)
        remap[categories] = np.arange(len(categories))
        tr = {**tr, "category": remap[tr["category"]]}
        keep = np.isin(va["category"], categories)
        va = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in va.items()}
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
        return _scene_batches(imgs, ds, order, cfg.det_batch, flip)

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
def _scene_batches(images: np.ndarray, ds, order: np.ndarray, batch: int, flip: np.ndarray | None):
    import torch

    for b in range(0, len(order), batch):
        idx = order[b:b + batch]
        imgs, targets = [], []
        for j, i in enumerate(idx):
            x = torch.from_numpy(images[i]).permute(2, 0, 1).float().div_(255)
            boxes = torch.as_tensor(ds.boxes[i], dtype=torch.float32).reshape(-1, 4)
            if flip is not None and flip[b + j]:
                x = x.flip(-1)
                w = x.shape[-1]
                boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
            imgs.append(x)
            targets.append({"boxes": boxes, "labels": torch.as_tensor(ds.object_types[i], dtype=torch.int64) + 1})
        yield imgs, targets


def detect(detector, images: np.ndarray, batch: int = 16, device=None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run ``detector`` on ``uint8 (N, S, S, 3)`` scenes (``engine.extract_features``, detections padded to the
    detector's ``detections_per_img`` per scene and cut back); per scene ``(boxes (k, 4) x1 y1 x2 y2, scores
    (k,), labels (k,) 0-based object types)``."""
    import torch

    from ..engine import extract_features

    if len(images) == 0:
        return []
    k = int(detector.roi_heads.detections_per_img)

    def scenes():
        for b in range(0, len(images), batch):
            yield [torch.from_numpy(im).permute(2, 0, 1).float().div_(255) for im in images[b:b + batch]]

    def padded(xs):
        res = detector(xs)
        dev = xs[0].device
        out = {"boxes": torch.zeros(len(res), k, 4, device=dev), "scores": torch.zeros(len(res), k, device=dev),
               "labels": torch.zeros(len(res), k, dtype=torch.int64, device=dev),
               "n": torch.tensor([len(r["scores"]) for r in res], device=dev)}
        for j, r in enumerate(res):
            n = len(r["scores"])
            out["boxes"][j, :n], out["scores"][j, :n], out["labels"][j, :n] = r["boxes"], r["scores"], r["labels"]
        return out

    f = extract_features(padded, scenes(), device=device, model=detector, out_device="cpu")
    return [(f["boxes"][i, :n].numpy(), f["scores"][i, :n].numpy(), f["labels"][i, :n].numpy() - 1)
            for i, n in enumerate(f["n"].tolist())]


def detection_metrics(data: HLSData, split: str, dets) -> dict:
    """COCO mAP, AP50, AR@100 and AP per object type (§4.2, Table 4) of ``dets`` on ``split``'s scenes."""
    from ..metrics import coco_detection_metrics

    ds = data.scenes[split]
    gt = [(ds.boxes[i], ds.object_types[i]) for i in range(len(ds))]
    return coco_detection_metrics(gt, dets, data.type_names)


def predict(model, images: np.ndarray, object_type=None, category=None, kind: str = "category",
            batch: int = 256, device=None) -> np.ndarray | dict:
    """Logits of a stage-2 network on ``uint8 (M, 3, c, c)`` crops (``engine.extract_features``). ``kind``:
    ``"category"`` or ``"attributes"`` for an :class:`~fashionlab.models.STLClassifier` (given ``object_type``
    or ``category`` as its condition when it has one), ``"mtl"`` for :class:`~fashionlab.models.MTLRNNVA`
    (returns ``{"category", "attributes", "attention"}``; ``category=None``: its own predicted category feeds
    the second step)."""
    import torch

    from ..engine import extract_features

    if len(images) == 0:  # shapes of an empty batch: run one blank crop and keep none of it
        blank = np.zeros((1,) + tuple(images.shape[1:]), np.uint8)
        one = lambda v: None if v is None else np.zeros(1, np.int64)  # noqa: E731
        r = predict(model, blank, one(object_type), one(category), kind, batch, device)
        return {k: v[:0] for k, v in r.items()} if kind == "mtl" else r[:0]
    cond = object_type if kind in ("category", "mtl") else category
    conditioned = kind == "mtl" or bool(getattr(model, "condition_classes", None))
    as_tensor = lambda v, sl: None if v is None else torch.from_numpy(np.asarray(v[sl]))  # noqa: E731

    def batches():
        for b in range(0, len(images), batch):
            sl = slice(b, b + batch)
            yield (torch.from_numpy(images[sl]), as_tensor(cond if conditioned else None, sl),
                   as_tensor(category if kind == "mtl" else None, sl))

    def run(bt):
        x, c, c2 = bt
        x = x.float().div_(255)
        if kind == "mtl":
            o = model(x, c, category=c2)
            return {"category": o.category, "attributes": o.attributes, "attention": o.attention}
        return model(x, c) if conditioned else model(x)

    out = extract_features(run, batches(), device=device, model=model, out_device="cpu")
    return {k: v.numpy() for k, v in out.items()} if kind == "mtl" else out.numpy()


def method_outputs(method: str, model, crops: dict, device=None) -> dict:
    """Category logits, attribute logits and (MTL) attention of ``method``'s ``model`` on ``crops`` (``images``
    and the ``object_type`` to share). HLS uses predictions: the category network's prediction is the attribute
    network's condition; MTL feeds its own predicted category to its second step."""
    if method == "MTL w/ RNN+VA":
        return predict(model, crops["images"], object_type=crops["object_type"], kind="mtl", device=device)
    cat = predict(model["category"], crops["images"], object_type=crops["object_type"], kind="category",
                  device=device)
    att = predict(model["attributes"], crops["images"], category=cat.argmax(1), kind="attributes", device=device)
    return {"category": cat, "attributes": att}


def top_attributes(scores: np.ndarray, k: int) -> np.ndarray:
    """``bool (M, A)``: the ``k`` highest-scoring attributes of each item, the predictions recall@k counts
    (ties to the lower index, as :func:`fashionlab.metrics.attribute_recall_at_k`)."""
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    out = np.zeros(np.shape(scores), dtype=bool)
    np.put_along_axis(out, order, True, axis=1)
    return out


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


def pipeline_crops(data: HLSData, dets, cfg: HLSConfig, split: str = "test", iou: float = 0.5) -> dict:
    """The merged pipeline's stage-2 inputs (§5.2.1): every detection scoring at least ``cfg.det_score`` (after
    class-agnostic NMS at IoU 0.6, so one garment yields one box), cropped like the training crops
    (:func:`fashionlab.synth.outfit.square_crop`), with the detector's object type. Detections are matched to the
    split's garments at ``iou`` (:func:`fashionlab.metrics.match_detections`); the returned dict holds the
    matched crops with the *true* category and attributes of their garment (for scoring), the detector's
    ``object_type`` and ``true_type``, ``scene``/``box`` of each, and ``retention`` = matched garments / all
    garments, plus ``unmatched_detections`` and ``unmatched_by_type`` (per predicted object type)."""
    import torch
    from torchvision.ops import nms

    from ..metrics import match_detections
    from ..synth.outfit import square_crop

    ds, imgs = data.scenes[split], data.scene_images[split]
    cat_index = {n: i for i, n in enumerate(data.category_names)}
    out = {k: [] for k in ("images", "object_type", "true_type", "category", "attributes", "scene", "box")}
    n_gt = n_matched = n_extra = 0
    extra_by_type = np.zeros(data.num_types, dtype=np.int64)
    for i, (boxes, scores, labels) in enumerate(dets):
        keep = scores >= cfg.det_score
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
            out["images"].append(square_crop(imgs[i], boxes[d], cfg.crop_size).transpose(2, 0, 1))
            out["object_type"].append(int(labels[d]))
            out["true_type"].append(int(ds.object_types[i][g]))
            out["category"].append(int(ds.categories[i][g]))
            out["attributes"].append(ds.attributes[i][g].astype(np.float32))
            out["scene"].append(i)
            out["box"].append(boxes[d].astype(np.float32))
    res = {k: np.asarray(v) for k, v in out.items()}
    if not len(res["images"]):
        c = cfg.crop_size
        res.update(images=np.zeros((0, 3, c, c), np.uint8), attributes=np.zeros((0, data.num_attributes), np.float32))
    res["object_type"] = res["object_type"].astype(np.int64)
    res["category"] = res["category"].astype(np.int64)
    res["retention"] = n_matched / max(1, n_gt)
    res["unmatched_detections"] = n_extra
    res["unmatched_by_type"] = extra_by_type
    res["garments"] = n_gt
    return res


def per_type_accuracy(all_categories, per_type: dict, crops: dict, data: HLSData, route: np.ndarray) -> dict:
    """Table 5 on ``crops``: top-1 category per true object type and overall (percent) of the one network for all
    categories (``all_categories``, the Baseline STL's category network) and of the per-type networks, each item routed to the network
    of ``route`` (its true type on GT crops, the detector's on detected crops)."""
    allcat = predict(all_categories, crops["images"], kind="category").argmax(1)
    per = np.full(len(crops["category"]), -1, dtype=np.int64)
    for t, (model, cats, _) in per_type.items():
        sel = np.flatnonzero(route == t)
        if len(sel):
            per[sel] = cats[predict(model, crops["images"][sel], kind="category").argmax(1)]
    true_type = data.category_type[crops["category"]]
    out = {}
    for name, pred in (("one model for all categories", allcat), ("one model per object type", per)):
        ok = pred == crops["category"]
        out[name] = {"overall": 100 * float(ok.mean()),
                     **{data.type_names[t]: 100 * float(ok[true_type == t].mean())
                        for t in range(data.num_types) if (true_type == t).any()}}
    return out


def detection_rows(m: dict, dataset: str) -> list[dict]:
    """Table 4's metrics of the detector as result rows (percent)."""
    rows = [{"method": DETECTOR, "dataset": dataset, "metric": k, "value": 100 * m[k]}
            for k in ("mAP", "AP50", "AR@100")]
    rows += [{"method": DETECTOR, "dataset": dataset, "metric": "AP", "attribute": t, "value": 100 * v}
             for t, v in m.get("per_class", {}).items()]
    return rows


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
    cfg = config or HLS_CONFIGS[mode]
    seconds, t = {}, time.perf_counter()
    d = load_data(cfg, data, seed, progress=progress)
    seconds["data"] = time.perf_counter() - t

    t = time.perf_counter()
    detector = build_model(DETECTOR, cfg, d, seed)
    histories = {"detector": train(DETECTOR, detector, d, cfg, seed, device, progress)}
    seconds["detector"] = time.perf_counter() - t
    dets = detect(detector, d.scene_images["test"], device=device)
    test_sets = {"GT crops": dict(d.crops["test"]), "detected crops": pipeline_crops(d, dets, cfg, "test")}

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
