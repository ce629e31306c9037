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

Fairness: one backbone family (SmallCNN, output stride 8) for every stage-2 network, the same epochs, batch,
optimiser (Adam, cosine schedule), augmentation and model selection (best validation epoch) for all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .registry import Outcome, register

__all__ = ["METHODS", "HLSConfig", "HLS_CONFIGS", "HLSData", "load_data", "build_stage2_backbone", "train_detector",
           "detect", "train_stl", "train_mtl", "train_per_type", "predict", "pipeline_crops", "evaluate_method",
           "detection_rows", "paper_rows", "hls"]

METHODS = ("Baseline STL", "STL w/ HLS", "MTL w/ RNN+VA")
DETECTOR = "Faster R-CNN (SmallCNN, from scratch)"
TEST_SETS = ("GT crops", "detected crops")


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
    # backbone fields read by paper03.build_backbone
    backbone: str = "smallcnn"
    stage: str | None = None
    final_relu: bool = True
    local_backbone: str | None = None
    local_width: int | None = None


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


def load_data(cfg: HLSConfig, data: Path | None, seed: int, progress: bool = False) -> HLSData:
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
    from ..metrics import balance_by_downsampling, imbalance_ratios, mean_imbalance_ratio, scumble

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
# stage 1: object-type detection
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
    """Run ``detector`` on ``uint8 (N, S, S, 3)`` scenes; per scene ``(boxes (k, 4) x1 y1 x2 y2, scores (k,),
    labels (k,) 0-based object types)``."""
    import torch

    dev = device or next(detector.parameters()).device
    was = detector.training
    detector.eval()
    out = []
    with torch.no_grad():
        for b in range(0, len(images), batch):
            xs = [torch.from_numpy(im).permute(2, 0, 1).float().div_(255).to(dev) for im in images[b:b + batch]]
            for r in detector(xs):
                out.append((r["boxes"].cpu().numpy(), r["scores"].cpu().numpy(), r["labels"].cpu().numpy() - 1))
    detector.train(was)
    return out


def _detection_metrics(data: HLSData, split: str, dets) -> dict:
    from ..metrics import coco_detection_metrics

    ds = data.scenes[split]
    gt = [(ds.boxes[i], ds.object_types[i]) for i in range(len(ds))]
    return coco_detection_metrics(gt, dets, data.type_names)


def train_detector(data: HLSData, cfg: HLSConfig, seed: int, device=None, progress: bool = False):
    """Stage 1 (§3.2.1): a small Faster R-CNN trained from scratch on the training scenes (random horizontal
    flips), AdamW with a cosine schedule, the epoch with the best validation mAP kept. Returns
    ``(detector, history)``."""
    import torch

    from ..engine import fit, seed_everything
    from ..models import build_detector

    seed_everything(seed)
    scale = cfg.scene_size / 128  # build_detector's anchors (12-96 px) suit garments in a 128 px scene
    det = build_detector(num_classes=data.num_types, image_size=cfg.scene_size, width=cfg.det_width,
                         representation_dim=cfg.det_representation,
                         anchor_sizes=tuple(max(4, round(a * scale)) for a in (12, 24, 48, 96)))
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
        m = _detection_metrics(data, "validation", detect(model, data.scene_images["validation"]))
        return {"valid_mAP": 100 * m["mAP"], "valid_AR@100": 100 * m["AR@100"]}

    history = fit(det, step, batches, opt, cfg.det_epochs, scheduler=sched, scheduler_interval="step",
                  device=device, seed=seed, eval_fn=eval_fn, monitor="valid_mAP", mode="max", restore_best=True,
                  progress=progress, verbose=False)
    return det, history


# ----------------------------------------------------------------------------------------------------------
# stage 2: category and attribute classification
# ----------------------------------------------------------------------------------------------------------
def build_stage2_backbone(cfg: HLSConfig):
    """The backbone of every stage-2 network: SmallCNN at output stride 8 (an 8 x 8 grid at 64 px for the
    attention of MTL w/ RNN+VA), notebook 03's builder."""
    from .paper03 import build_backbone

    return build_backbone(cfg)


def _as_float(x):
    return x.float().div_(255)


def _crop_batches(crops: dict, batch: int, seed: int, epoch: int, keys=("object_type", "category", "attributes"),
                  index: np.ndarray | None = None):
    import torch

    n = len(crops["category"]) if index is None else len(index)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    if index is not None:
        order = index[order]
    for b in range(0, len(order), batch):
        i = order[b:b + batch]
        yield (torch.from_numpy(crops["images"][i]),) + tuple(torch.from_numpy(np.asarray(crops[k][i])) for k in keys)


def _adam(model, cfg: HLSConfig, steps: int):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    return opt, sched


def predict(model, images: np.ndarray, object_type=None, category=None, kind: str = "category",
            batch: int = 256, device=None) -> np.ndarray | dict:
    """Logits of a stage-2 network on ``uint8 (M, 3, c, c)`` crops. ``kind``: ``"category"`` or ``"attributes"``
    for an :class:`~fashionlab.models.STLClassifier` (given ``object_type`` or ``category`` as its condition
    when it has one), ``"mtl"`` for :class:`~fashionlab.models.MTLRNNVA` (returns ``{"category", "attributes",
    "attention"}``; ``category=None``: its own predicted category feeds the second step)."""
    import torch

    if len(images) == 0:  # shapes of an empty batch: run one blank crop and keep none of it
        blank = np.zeros((1,) + tuple(images.shape[1:]), np.uint8)
        one = lambda v: None if v is None else np.zeros(1, np.int64)  # noqa: E731
        r = predict(model, blank, one(object_type), one(category), kind, batch, device)
        return {k: v[:0] for k, v in r.items()} if kind == "mtl" else r[:0]
    dev = device or next(model.parameters()).device
    was = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for b in range(0, len(images), batch):
            x = _as_float(torch.from_numpy(images[b:b + batch]).to(dev))
            sl = slice(b, b + batch)
            if kind == "mtl":
                t = torch.from_numpy(np.asarray(object_type[sl])).to(dev)
                c = None if category is None else torch.from_numpy(np.asarray(category[sl])).to(dev)
                o = model(x, t, category=c)
                outs.append({"category": o.category.float().cpu(), "attributes": o.attributes.float().cpu(),
                             "attention": o.attention.float().cpu()})
            else:
                cond = object_type if kind == "category" else category
                if getattr(model, "condition_classes", None):
                    c = torch.from_numpy(np.asarray(cond[sl])).to(dev)
                    outs.append(model(x, c).float().cpu())
                else:
                    outs.append(model(x).float().cpu())
    model.train(was)
    if kind == "mtl":
        return {k: torch.cat([o[k] for o in outs]).numpy() for k in ("category", "attributes", "attention")}
    return torch.cat(outs).numpy()


def _val_metrics(kind: str, logits: np.ndarray, crops: dict) -> dict:
    from ..metrics import attribute_recall_at_k, topk_accuracy

    if kind == "category":
        ok = len(crops["category"]) > 0
        return {"valid_top1": 100 * topk_accuracy(logits, crops["category"], ks=(1,))[1] if ok else 0.0}
    ok = len(crops["attributes"]) > 0 and np.asarray(crops["attributes"]).any()
    return {"valid_recall@3": 100 * attribute_recall_at_k(logits, crops["attributes"], 3) if ok else 0.0}


def train_stl(data: HLSData, cfg: HLSConfig, kind: str, hls: bool, seed: int, device=None, progress: bool = False,
              index: np.ndarray | None = None, categories: np.ndarray | None = None):
    """One STL network (§3.2, Fig. 1a): ``kind`` ``"category"`` (softmax, CE) or ``"attributes"`` (sigmoid,
    BCE); with ``hls`` the network is conditioned on the ground-truth object type (category network) or
    category (attribute network), as STL w/ HLS. ``index``/``categories``: train on a subset of the training
    crops and only these categories (Table 5's per-object-type networks; labels re-indexed). Returns
    ``(model, history)``."""
    import torch
    import torch.nn.functional as F

    from ..engine import fit, seed_everything
    from ..models import STLClassifier, augment

    seed_everything(seed)
    tr, va = data.crops["train"], data.crops["validation"]
    if categories is not None:
        remap = np.full(data.num_categories, -1, dtype=np.int64)
        remap[categories] = np.arange(len(categories))
        tr = {**tr, "category": remap[tr["category"]]}
        keep = np.isin(va["category"], categories)
        va = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in va.items()}
        va["category"] = remap[va["category"]]
    n_out = (len(categories) if categories is not None else data.num_categories) if kind == "category" \
        else data.num_attributes
    cond = (data.num_types if kind == "category" else data.num_categories) if hls else None
    model = STLClassifier(build_stage2_backbone(cfg), n_out, condition_classes=cond, embed_dim=cfg.embed_dim,
                          dropout=cfg.dropout)
    n = len(tr["category"]) if index is None else len(index)
    opt, sched = _adam(model, cfg, cfg.epochs * -(-n // cfg.batch))

    def step(m, batch):
        x, t, c, a = batch
        gen = torch.Generator(device=x.device).manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        x = augment(_as_float(x), generator=gen, rotation=cfg.rotation, zoom=cfg.zoom)
        cnd = (t if kind == "category" else c) if hls else None
        out = m(x, cnd) if hls else m(x)
        if kind == "category":
            return F.cross_entropy(out, c)
        return F.binary_cross_entropy_with_logits(out, a)

    def eval_fn(m, epoch):
        logits = predict(m, va["images"], object_type=va["object_type"], category=va["category"], kind=kind)
        return _val_metrics(kind, logits, va)

    history = fit(model, step, lambda e: _crop_batches(tr, cfg.batch, seed, e, index=index), opt, cfg.epochs,
                  scheduler=sched, scheduler_interval="step", device=device, seed=seed, eval_fn=eval_fn,
                  monitor="valid_top1" if kind == "category" else "valid_recall@3",
                  mode="max", restore_best=True, progress=progress, verbose=False)
    return model, history


def train_mtl(data: HLSData, cfg: HLSConfig, seed: int, device=None, progress: bool = False):
    """MTL w/ RNN+VA (§3.2, Fig. 1b, Eq. 1-7): one network, CE + BCE summed; the ground-truth category feeds the
    decoder's second step in training (teacher forcing), the network's own prediction at validation and test.
    The kept epoch maximises validation top-1 + recall@3. Returns ``(model, history)``."""
    import torch

    from ..engine import fit, seed_everything
    from ..models import MTLRNNVA, augment, hls_loss

    seed_everything(seed)
    tr, va = data.crops["train"], data.crops["validation"]
    model = MTLRNNVA(build_stage2_backbone(cfg), data.num_types, data.num_categories, data.num_attributes,
                     hidden_dim=cfg.hidden_dim, attention_units=cfg.attention_units, embed_dim=cfg.embed_dim,
                     fc_dim=cfg.fc_dim, dropout=cfg.dropout)
    opt, sched = _adam(model, cfg, cfg.epochs * -(-len(tr["category"]) // cfg.batch))

    def step(m, batch):
        x, t, c, a = batch
        gen = torch.Generator(device=x.device).manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        x = augment(_as_float(x), generator=gen, rotation=cfg.rotation, zoom=cfg.zoom)
        out = m(x, t, category=c)
        return hls_loss(out.category, out.attributes, c, a)

    def eval_fn(m, epoch):
        p = predict(m, va["images"], object_type=va["object_type"], kind="mtl")
        r = {**_val_metrics("category", p["category"], va), **_val_metrics("attributes", p["attributes"], va)}
        return {"valid_sum": r["valid_top1"] + r["valid_recall@3"], **r}

    history = fit(model, step, lambda e: _crop_batches(tr, cfg.batch, seed, e), opt, cfg.epochs, scheduler=sched,
                  scheduler_interval="step", device=device, seed=seed, eval_fn=eval_fn, monitor="valid_sum",
                  mode="max", restore_best=True, progress=progress, verbose=False)
    return model, history


def train_per_type(data: HLSData, cfg: HLSConfig, seed: int, device=None, progress: bool = False) -> dict:
    """Table 5: one Baseline-STL category network per object type, each trained on its type's crops and
    categories. Returns ``{type index: (model, categories, history)}``."""
    out = {}
    for t in range(data.num_types):
        cats = np.flatnonzero(data.category_type == t)
        idx = np.flatnonzero(np.isin(data.crops["train"]["category"], cats))
        if len(cats) == 0 or len(idx) == 0:
            continue
        model, hist = train_stl(data, cfg, "category", False, seed + 100 + t, device, progress, index=idx,
                                categories=cats)
        out[t] = (model, cats, hist)
    return out


# ----------------------------------------------------------------------------------------------------------
# the merged pipeline and evaluation
# ----------------------------------------------------------------------------------------------------------
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


def method_outputs(method: str, models: dict, crops: dict) -> dict:
    """Category logits, attribute logits and (MTL) attention of ``method`` on ``crops`` (``images`` and the
    ``object_type`` to share). HLS uses predictions: the category network's prediction is the attribute
    network's condition; MTL feeds its own predicted category to its second step."""
    if method == "MTL w/ RNN+VA":
        return predict(models["mtl"], crops["images"], object_type=crops["object_type"], kind="mtl")
    key = "hls" if method == "STL w/ HLS" else "stl"
    cat = predict(models[key]["category"], crops["images"], object_type=crops["object_type"], kind="category")
    att = predict(models[key]["attributes"], crops["images"], category=cat.argmax(1), kind="attributes")
    return {"category": cat, "attributes": att}


def evaluate_method(logits: dict, crops: dict, data: HLSData, cfg: HLSConfig) -> dict:
    """The stage-2 metrics of one method on one test set, in percent: top-1/3/5 category (§4.2), conventional and
    altered recall@3/5 of the attributes (docs/protocols.md §4.3), hierarchy violations of the predicted
    attributes (sigmoid >= ``cfg.threshold``) against the predicted category, and its share of items."""
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
    top = top_attributes(att, cfg.violation_k)
    v = hierarchy_violations(top, cat.argmax(1), data.applicable)
    r["hierarchy violations"] = 100 * v["rate"]
    r["items with a violation"] = 100 * v["items"]
    prob = 1 / (1 + np.exp(-att))
    v = hierarchy_violations(prob >= cfg.threshold, cat.argmax(1), data.applicable)
    r[f"hierarchy violations (p >= {cfg.threshold})"] = 100 * v["rate"]
    r[f"attributes with p >= {cfg.threshold} per item"] = v["predicted"] / len(cat)
    return r


def top_attributes(scores: np.ndarray, k: int) -> np.ndarray:
    """``bool (M, A)``: the ``k`` highest-scoring attributes of each item, the predictions recall@k counts
    (ties to the lower index, as :func:`fashionlab.metrics.attribute_recall_at_k`)."""
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    out = np.zeros(np.shape(scores), dtype=bool)
    np.put_along_axis(out, order, True, axis=1)
    return out


def per_type_accuracy(models: dict, per_type: dict, crops: dict, data: HLSData, route: np.ndarray) -> dict:
    """Table 5 on ``crops``: top-1 category per true object type and overall (percent) of the one network for all
    categories (``models["stl"]["category"]``) and of the per-type networks, each item routed to the network
    of ``route`` (its true type on GT crops, the detector's on detected crops)."""
    allcat = predict(models["stl"]["category"], crops["images"], kind="category").argmax(1)
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
# the paper's numbers
# ----------------------------------------------------------------------------------------------------------
PAPER_TABLE4 = {  # Faster R-CNN column: (training, evaluation) -> (mAP, AR@100)
    ("DF2", "DF2"): (73.0, 83.7), ("DF2", "Mallzee"): (73.9, 84.2), ("Mallzee", "Mallzee"): (80.6, 85.8),
}
PAPER_TABLE5 = {  # EfficientNet-B4, Accuracy@1
    "Full-body only": 94.90, "Lower-body only": 94.44, "Footwear only": 93.86, "Upper-body only": 88.15,
    "Full dataset": 92.24,
}
PAPER_TABLE6 = {  # Mallzee: category top-1/3/5, attributes top-1/3/5
    "Baseline STL": (90.10, 98.55, 99.48, 78.75, 94.32, 96.78),
    "STL w/ HLS": (90.67, 98.72, 99.53, 77.62, 93.70, 96.80),
    "MTL w/ RNN+VA": (87.63, 98.01, 99.31, 62.74, 83.81, 90.32),
}
PAPER_TABLE7 = {  # DeepFashion: category top-3/5, attributes recall@3/5 (altered in parentheses)
    "Baseline STL": (93.71, 97.40, 34.71, 43.90, 65.79, 73.57),
    "STL w/ HLS": (93.99, 97.49, 36.20, 45.62, 66.19, 73.73),
    "MTL w/ RNN+VA": (93.72, 97.57, 26.85, 35.22, 53.01, 66.4),
}


def paper_rows() -> list[dict]:
    """Tables 4-7 of the paper as result rows (percent); ``"dataset"`` names the real dataset, ``"table"`` the
    table."""
    rows = []
    for (train, ev), (m, ar) in PAPER_TABLE4.items():
        ds = f"{ev} (trained on {train}, paper 06)"
        rows += [{"method": "Faster R-CNN", "dataset": ds, "table": "Table 4", "metric": "mAP", "value": m},
                 {"method": "Faster R-CNN", "dataset": ds, "table": "Table 4", "metric": "AR@100", "value": ar}]
    for what, v in PAPER_TABLE5.items():
        method = "one model for all categories" if what == "Full dataset" else "one model per object type"
        rows.append({"method": method, "dataset": "Mallzee (paper 06)", "table": "Table 5", "metric": "top-1 category",
                     "attribute": what, "value": v})
    names6 = ("top-1 category", "top-3 category", "top-5 category", "recall@1 attributes", "recall@3 attributes",
              "recall@5 attributes")
    for method, v in PAPER_TABLE6.items():
        rows += [{"method": method, "dataset": "Mallzee (paper 06)", "table": "Table 6", "metric": n, "value": x}
                 for n, x in zip(names6, v)]
    names7 = ("top-3 category", "top-5 category", "recall@3 attributes", "recall@5 attributes",
              "altered recall@3 attributes", "altered recall@5 attributes")
    for method, v in PAPER_TABLE7.items():
        rows += [{"method": method, "dataset": "DeepFashion (paper 06)", "table": "Table 7", "metric": n, "value": x}
                 for n, x in zip(names7, v)]
    return rows


# ----------------------------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------------------------
@register("hls", "Hierarchical label sharing (paper 06): object-type detection (Faster R-CNN, COCO mAP / AR@100), "
                 "Baseline STL vs STL w/ HLS vs MTL w/ RNN+VA on category and attribute classification, "
                 "one model vs one per object type, hierarchy violations", notebook="06_hls_pipeline.ipynb")
def hls(mode: str, data: Path | None, seed: int, progress: bool = True, config: HLSConfig | None = None) -> Outcome:
    """The ``hls`` experiment (module docstring). ``data``: a folder in the outfit preset's layout."""
    from ..engine import device as pick_device

    t0 = time.perf_counter()
    cfg = config or HLS_CONFIGS[mode]
    dev = pick_device(verbose=False)
    seconds = {}
    d = load_data(cfg, data, seed, progress=progress)
    seconds["data"] = time.perf_counter() - t0

    t = time.perf_counter()
    detector, det_hist = train_detector(d, cfg, seed, dev, progress)
    seconds["detector"] = time.perf_counter() - t
    dets = detect(detector, d.scene_images["test"])
    det_m = _detection_metrics(d, "test", dets)
    scene_ds = "outfit scenes (test)"
    rows = detection_rows(det_m, scene_ds)

    t = time.perf_counter()
    models, hist = {}, {}
    for key, hls_on in (("stl", False), ("hls", True)):
        models[key] = {}
        for kind in ("category", "attributes"):
            models[key][kind], hist[f"{key} {kind}"] = train_stl(d, cfg, kind, hls_on, seed, dev, progress)
    models["mtl"], hist["mtl"] = train_mtl(d, cfg, seed, dev, progress)
    seconds["stage 2"] = time.perf_counter() - t
    per_type = {}
    if cfg.per_type:
        t = time.perf_counter()
        per_type = train_per_type(d, cfg, seed, dev, progress)
        seconds["per type"] = time.perf_counter() - t

    gt_crops = dict(d.crops["test"])
    det_crops = pipeline_crops(d, dets, cfg, "test")
    results, outputs = {}, {}
    for name, crops in zip(TEST_SETS, (gt_crops, det_crops)):
        for method in METHODS:
            outputs[(name, method)] = method_outputs(method, models, crops)
            results[(name, method)] = evaluate_method(outputs[(name, method)], crops, d, cfg)
            rows += [{"method": method, "dataset": name, "metric": k, "value": v}
                     for k, v in results[(name, method)].items()]
    rows.append({"method": DETECTOR, "dataset": "detected crops", "metric": "retention",
                 "value": 100 * det_crops["retention"]})
    if len(det_crops["category"]):
        rows.append({"method": DETECTOR, "dataset": "detected crops", "metric": "object type accuracy",
                     "value": 100 * float((det_crops["object_type"] == det_crops["true_type"]).mean())})
    table5 = {}
    if per_type:
        table5["GT crops"] = per_type_accuracy(models, per_type, gt_crops, d, gt_crops["object_type"])
        if len(det_crops["category"]):
            table5["detected crops"] = per_type_accuracy(models, per_type, det_crops, d, det_crops["object_type"])
        for name, res in table5.items():
            for method, accs in res.items():
                rows += [{"method": method, "dataset": f"Table 5, {name}", "metric": "top-1 category",
                          **({} if k == "overall" else {"attribute": k}), "value": v} for k, v in accs.items()]

    imb = imbalance_stats(d)
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
    extra = {"config": cfg, "data": d, "detector": detector, "detections": dets, "models": models,
             "per_type": per_type, "histories": {"detector": det_hist, **hist}, "results": results,
             "outputs": outputs, "gt_crops": gt_crops, "det_crops": det_crops, "table5": table5,
             "detection": det_m, "imbalance": imb, "seconds": seconds}
    return Outcome(rows=rows, paper_rows=paper_rows(), dataset=d.description, device=str(dev), notes=notes,
                   extra=extra)
