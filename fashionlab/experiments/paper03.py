"""Notebook 03's experiment: ASEN, attribute-specific embeddings with attention (paper 03,
``03_asen_attribute_specific_embedding_slides.txt``; ASEN++ = docs/implementations.md §3).

``asen`` (slides "Attribute-Specific Fashion Retrieval", FashionAI table; "Ablation Study")
    Methods ``Triplet``, ``CSN``, ``ASEN_g w/o ASA``, ``ASEN_g w/o ACA``, ``ASEN_g``, ``ASEN_l``, ``ASEN``, plus
    a ``Random baseline`` row (random unit vectors, the floor of every table). Metric ``mAP`` per attribute and
    overall (the ASEN protocol, docs/protocols.md §4.1: each item embedded under its own listed attribute,
    overall weighted by queries) on the test split.

    * ``Triplet``: attribute-unaware triplet network: backbone → global average pooling → FC → L2 norm.
    * ``CSN``: CSN's masks (learned, N(0.9, 0.7), ReLU; docs/implementations.md §6) over the same pooled embedding, as the ASEN
      code runs its CSN baseline (§2 "CSN baseline inside asen"): masked, then L2-normalised and compared by dot
      product, with CSN's regularisers (λ1 = 5e-3, λ2 = 5e-4).
      (:class:`~fashionlab.models.ConditionalSimilarityNet`'s ``variant="modified"`` computes exactly this: its
      sum-to-one mask scaling cancels in the L2 normalisation.)
    * ``ASEN_g`` (+ ``w/o ASA``, ``w/o ACA``): :class:`~fashionlab.models.ASENGlobal`, the global branch with
      attribute-aware spatial attention (ASA) and channel attention (ACA), or without one of them.
    * ``ASEN``: ASEN++'s two-branch model (:class:`~fashionlab.models.ASENPlusPlus`), trained as Algorithm 1:
      stage 1 is the global branch alone (it *is* ``ASEN_g``), stage 2 the joint loss
      ``α L_g + β L_l + γ L_a`` (:func:`~fashionlab.models.asenpp_loss`), where the local branch embeds a
      high-resolution crop around the global attention (:func:`~fashionlab.models.attention_box`). Test feature:
      :func:`~fashionlab.models.combined_feature` (β = 0.6).
    * ``ASEN_l``: the local branch of that model alone.

    Extra rows: ``ASEN_g after stage 2`` (the global branch of the trained ASEN alone: the control for "ASEN only
    trained longer"); the localisation ablation (slides "Study on localization strategy") ``ASEN_full``, the same
    stage 2 with the local branch fed the whole image instead of the crop, and its local branch alone,
    ``ASEN_l (whole image)``; metrics ``pointing game`` and ``box IoU`` of ``ASEN_g`` and ``ASEN_g w/o ASA``
    against FashionSynth's region ground truth, per attribute (what the slides can only show as pictures,
    "Spatial Attention Visualization").

Beyond the slides, the neck-detail study (:func:`detail_study`, metric ``mAP, neck-detail study``): the same
methods trained on the four neck attributes alone, on oracle crops around the ground-truth region and for three
times as many detail triplets, to find out why the local branch did not help on them in the main run.

Data: FashionSynth's ``asen`` preset (:data:`fashionlab.synth.PRESETS`): garments on a cluttered canvas whose neck
details cover a few percent of the picture, rendered at ``image_size`` (the high-resolution image, 128 px in
default mode) and seen by every method at ``global_size`` (the whole image downscaled, 48 px; ASEN's 224 px
input); only ASEN's local branch looks at the high-resolution pixels.
``--data``/``$FASHIONLAB_FASHIONAI`` run it on a real FashionAI folder (no region ground truth there: the
attention rows are skipped).

Fairness: every method trains on the same triplets (ASEN++'s sampler, docs/implementations.md §3: an attribute, two values,
anchor and positive of one, negative of the other; resampled every epoch from ``(seed, epoch)``), in the same
order, with the same backbone family (SmallCNN, output stride 8 on a CPU), margin 0.2 on cosine similarity,
the same optimiser and schedule for ``epochs`` epochs, and the same validation criterion (validation mAP, best
epoch kept, as the ASEN code does). ASEN adds stage 2 on top of stage 1 (as in the paper); the
``ASEN_g after stage 2`` row shows what those extra epochs give the global branch alone.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..datasets import TwoScaleImages
from .baselines import map_rows, random_embeddings
from .registry import Outcome, register

__all__ = ["METHODS", "SMALL_REGION_ATTRIBUTES", "AsenConfig", "ASEN_CONFIGS", "AsenData", "TwoScaleImages",
           "asen_data", "build_backbone", "build_model", "build_asen", "train_single", "train_asen",
           "feature_fn", "embed_items", "evaluate_map", "pointing_game", "box_iou", "attention_scores",
           "union_regions", "oracle_boxes", "region_crop_images", "detail_study", "paper_rows", "asen"]

METHODS = ("Triplet", "CSN", "ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_g", "ASEN_l", "ASEN")
#: The attributes whose regions are small (the neck details): where the local branch should help most.
SMALL_REGION_ATTRIBUTES = ("collar_design", "lapel_design", "neckline_design", "neck_design")
SINGLE_BRANCH = ("Triplet", "CSN", "ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_g")
ATTENTION_METHODS = ("ASEN_g", "ASEN_g w/o ASA")
PAPER_DATASET = "FashionAI (real images, ASEN slides)"


@dataclass(frozen=True)
class AsenConfig:
    """Sizes and settings of the ``asen`` experiment per mode (the logic is the same in every mode).

    Kept from the papers (docs/implementations.md §2, §3): margin 0.2 on cosine similarity, Adam, batches of triplets from
    ASEN++'s sampler, ASA as a scaled dot product, ACA with reduction 2, a squared localisation box from the
    min-max normalised attention, stage-2 weights α = 1, β = 0.1, γ = 0.1 and learning rates local = stage 1's,
    global = a tenth of it, test mix β = 0.6. The localisation threshold is ASEN++'s default, 0.4, not the 0.1
    of its stage-2 configs: on our 6 x 6 maps (ResNet-50 gives 14 x 14) 0.1 keeps cells spanning about 0.9 of
    the image side, so the "crop" is nearly the whole picture; 0.4 gives about 0.6 and still contains the
    detail regions (measured on a trained ASEN_g while calibrating).
    Changed for a CPU: a SmallCNN from scratch (width ``width``, output stride 8 so that the 48 px global view
    gives a 6 x 6 attention grid, and without its last ReLU, ``final_relu=False``) instead of an ImageNet
    ResNet-50/ResNet-34. The last ReLU goes because a from-scratch network's post-ReLU features are all
    positive and alike, so every image starts at cosine ~1 from every other and the triplet loss sat on a
    plateau for the first 3-6 of 16 epochs (measured while calibrating); ending at the BatchNorm centres the
    features and every method learns from the first epoch. Also: a 64-d embedding and 64-d
    attribute vectors instead of 1024/512; lr 1e-3 halved every third of a stage instead of 1e-4 for 50 + 20
    epochs. The local branch starts from the stage-1 global branch's weights (``local_init="global"``; ASEN++
    starts it from ImageNet weights, not from scratch, and we have none) and shares its attribute table.
    """

    num_images: int
    image_size: int  # the rendered (high-resolution) canvas: what the local branch crops from
    global_size: int  # every method's input: the whole image downscaled (224 in the paper)
    local_size: int  # the crop, resized (112 in ASEN++)
    width: int  # SmallCNN width of every method's backbone (and of ASEN's global branch)
    epochs: int  # stage 1 = every single-branch method
    stage2_epochs: int
    triplets_per_epoch: int
    batch: int  # triplets per step (3x as many images)
    lr: float
    local_width: int | None = None  # SmallCNN width of the local branch (default: width)
    backbone: str = "smallcnn"
    local_backbone: str | None = None  # default: backbone
    stage: str | None = None  # torchvision backbones: truncation stage
    output_stride: int = 8  # SmallCNN: 8 (last block's stride removed) or 16 (as built)
    final_relu: bool = False  # SmallCNN: False ends the backbone at its last BatchNorm (centred features)
    dim: int = 64
    cond_dim: int = 64
    margin: float = 0.2
    threshold: float = 0.4
    mix_beta: float = 0.6  # test feature: beta * cos_g + (1 - beta) * cos_l
    loss_weights: tuple[float, float, float] = (1.0, 0.1, 0.1)  # alpha L_g + beta L_l + gamma L_a
    stage2_lr_local: float = 1.0  # stage-2 learning rates, as fractions of lr
    stage2_lr_global: float = 0.1
    local_init: str = "global"  # "global": start from the stage-1 global branch; "scratch"
    csn_masks: str = "learned"
    lambda1: float = 5e-3
    lambda2: float = 5e-4
    whole_image_ablation: bool = True  # train ASEN_full too (one more stage 2)
    preset: str = "asen"
    # the neck-detail study (beyond the slides; :func:`detail_study`): trained on the small-region attributes'
    # triplets only; 0 epochs = no study
    detail_epochs: int = 36  # Triplet and ASEN_g on the whole global view: 3x the detail triplets of stage 1
    detail_stage2_epochs: int = 12
    oracle_scales: tuple[float, ...] = (1.5, 3.5)  # side of the ground-truth crop / side of the region


ASEN_CONFIGS = {
    "quick": AsenConfig(num_images=1000, image_size=64, global_size=32, local_size=24, width=8, epochs=2,
                        stage2_epochs=1, triplets_per_epoch=384, batch=32, lr=2e-3, detail_epochs=2,
                        detail_stage2_epochs=1),
    # a 2-core CPU, about 15 minutes: 5 single-branch trainings of 12 epochs and two stage 2s of 6 (ASEN,
    # ASEN_full). (16 + 8 epochs of 6144 triplets, calibrated first, would take about 25 minutes: estimated
    # from paper 01's measured 3.3-3.5 minutes per method for 12 x 8192 triplets of the same backbone.)
    "default": AsenConfig(num_images=36000, image_size=128, global_size=48, local_size=48, width=16, epochs=12,
                          stage2_epochs=6, triplets_per_epoch=4096, batch=32, lr=1e-3),
    # the papers' sizes, for a GPU: ResNet-50 (global) and ResNet-34 (local) cut after layer3, 224 px global view
    # of a 448 px image, 112 px crops, 1024-d embeddings, 512-d attribute vectors
    "full": AsenConfig(num_images=24000, image_size=448, global_size=224, local_size=112, width=32, epochs=30,
                       stage2_epochs=12, triplets_per_epoch=32000, batch=16, lr=1e-4, backbone="resnet50",
                       local_backbone="resnet34", stage="layer3", dim=1024, cond_dim=512, detail_epochs=90,
                       detail_stage2_epochs=24),
}


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------
def asen_data(cfg: AsenConfig, data: Path | None, seed: int, progress: bool = True) -> tuple[Path, str]:
    """The dataset folder: ``data`` (``--data``), else ``$FASHIONLAB_FASHIONAI``, else a FashionSynth dataset of
    the ``cfg.preset`` preset (``asen``: paper 03's "unrestricted images", small details in a large cluttered
    picture), ``cfg.num_images`` images rendered at ``cfg.image_size`` px."""
    import os

    if data is not None:
        return Path(data), f"{Path(data).name} (from --data)"
    if os.environ.get("FASHIONLAB_FASHIONAI"):
        from .baselines import fashionai_data

        return fashionai_data("default", None, seed, progress)
    from ..synth import ensure_fashionai

    root = ensure_fashionai(num_images=cfg.num_images, seed=seed, image_size=cfg.image_size, config=cfg.preset,
                            progress=progress)
    return root, (f"FashionSynth fashionai, preset {cfg.preset}, {cfg.num_images} images, {cfg.image_size} px "
                  f"(global view {cfg.global_size} px), seed {seed}")


def union_regions(records, attributes, image_size: int) -> np.ndarray:
    """``(n, 4)`` per image (``records`` in id order), in pixels of images decoded at ``image_size``: the box
    around the ground-truth regions of ``attributes`` visible in it, or the whole image where none is."""
    out = np.zeros((len(records), 4), dtype=np.float32)
    for i, r in enumerate(records):
        size = float(r.get("image_size", image_size))  # the canvas the ground truth was written for
        b = [r["regions"][a] for a in attributes if r["regions"].get(a) is not None]
        if b:
            b = np.asarray(b, dtype=np.float32)
            out[i] = np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]) * (image_size / size)
        else:
            out[i] = [0, 0, image_size, image_size]
    return out


def oracle_boxes(boxes, scale: float):
    """``(n, 4)`` float tensor: for each ``[x1, y1, x2, y2]`` of ``boxes``, the square of side ``scale`` times the
    box's longer side (at least 1 px), centred on the box (it may reach beyond the canvas). The crop a perfect
    localiser would cut (the detail study, :func:`region_crop_images`)."""
    import torch

    b = torch.as_tensor(np.asarray(boxes), dtype=torch.float32).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    half = scale * torch.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]).clamp_min(1.0) / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], 1)


def region_crop_images(images: TwoScaleImages, boxes, scale: float) -> TwoScaleImages:
    """A copy of ``images`` whose global view is an oracle crop (beyond the slides; the detail study): for
    image ``i``, the square of side ``scale`` times the longer side of ``boxes[i]`` centred on it, cut from the
    high-resolution image (bilinear, :func:`torchvision.ops.roi_align`; beyond the canvas the pixels are black)
    and resized to ``global_size``: what a perfect localiser would hand a network, at the global view's input
    size. The high-resolution images are shared."""
    import torch
    from torchvision.ops import roi_align

    sq = oracle_boxes(boxes, scale)
    if len(sq) != len(images):
        raise ValueError(f"got {len(sq)} boxes for {len(images)} images")
    g = images.global_size
    lo = torch.empty((len(images), 3, g, g), dtype=torch.uint8)
    chunk = 2048
    for s in range(0, len(images), chunk):
        x = images.hi.data[s:s + chunk].float()
        rois = torch.cat([torch.arange(len(x), dtype=torch.float32)[:, None], sq[s:s + chunk]], 1)
        y = roi_align(x, rois, output_size=(g, g), spatial_scale=1.0, sampling_ratio=2, aligned=True)
        lo[s:s + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    out = copy.copy(images)
    out.lo = lo
    return out


class AsenData:
    """One dataset folder in the ASEN split layout (slides "Experiment Setup": triplets sampled from the
    training images, queries and candidates with annotations on the same attribute; docs/formats.md §5.1): its
    splits, :class:`TwoScaleImages` per split, ASEN++'s triplet sampler (docs/implementations.md §3 "TripletSampler") and,
    for FashionSynth, the region ground truth (``ground_truth.jsonl``, docs/architecture.md "FashionSynth")."""

    def __init__(self, root: Path, cfg: AsenConfig, seed: int, progress: bool = False):
        from ..datasets import AsenPPTripletSampler, read_asen_split

        self.root, self.cfg, self.seed = Path(root), cfg, seed
        self.splits = {s: read_asen_split(root, s) for s in ("train", "valid", "test")}
        self.schema = self.splits["train"].schema
        self.attributes = list(self.schema.attributes)
        self.images = {s: TwoScaleImages(root, sp.filenames, cfg.image_size, cfg.global_size, progress=progress,
                                         source=f"filenames_{s}.txt") for s, sp in self.splits.items()}
        self.sampler = AsenPPTripletSampler(self.splits["train"].labels, self.schema,
                                            num_triplets=cfg.triplets_per_epoch, seed=seed, skip_rare=True)
        self.has_truth = (self.root / "ground_truth.jsonl").exists()
        self.focus: tuple[int, ...] | None = None  # attribute indices; None = every attribute

    def focused(self, attributes, cfg: AsenConfig | None = None, oracle_scale: float | None = None) -> "AsenData":
        """A view of this dataset restricted to ``attributes`` (names): training triplets, queries and candidates
        of the other attributes are dropped (the images are shared, not copied). ``cfg`` replaces the config
        (e.g. more epochs). ``oracle_scale``: every method's global view becomes an *oracle crop*, the
        high-resolution image cropped around the ground-truth region of those attributes (a square of
        ``oracle_scale`` times the region's longer side, centred on it; the whole image where none is
        visible) and resized to ``global_size`` (FashionSynth only; :func:`region_crop_images`)."""
        view = copy.copy(self)
        view.focus = tuple(self.attributes.index(a) for a in attributes)
        view.cfg = cfg or self.cfg
        if oracle_scale is not None:
            if not self.has_truth:
                raise ValueError(f"{self.root}: oracle crops need FashionSynth's ground_truth.jsonl")
            from ..synth import load_ground_truth

            view.images = {s: region_crop_images(im, union_regions(load_ground_truth(self.root, s), attributes,
                                                                    im.image_size), oracle_scale)
                           for s, im in self.images.items()}
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
        (Algorithm 1's "sampled minibatch"; ASEN++ resamples the triplets every epoch, docs/implementations.md §3). A
        :meth:`focused` view keeps the triplets of its attributes (fewer batches per epoch)."""
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


# ----------------------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------------------
def build_backbone(cfg: AsenConfig, local: bool = False):
    """The backbone of every method (``local=False``) or of ASEN's local branch:
    :func:`fashionlab.models.build_backbone` with ``cfg``'s name, width, output stride, last ReLU and stage."""
    from ..models import build_backbone as make

    name = (cfg.local_backbone or cfg.backbone) if local else cfg.backbone
    width = (cfg.local_width or cfg.width) if local else cfg.width
    return make(name, width=width, output_stride=cfg.output_stride, final_relu=cfg.final_relu, stage=cfg.stage)


def build_model(method: str, cfg: AsenConfig, num_attributes: int):
    """A fresh single-branch model of ``method`` (one of ``Triplet``, ``CSN``, ``ASEN_g w/o ASA``,
    ``ASEN_g w/o ACA``, ``ASEN_g``): the baselines of the slides' FashionAI table and the ablations of
    "Study on attention and loss function"."""
    from ..models import ASENGlobal, ConditionalSimilarityNet, GlobalPoolEmbedding

    if method == "Triplet":
        return GlobalPoolEmbedding(build_backbone(cfg), cfg.dim, normalize=True)
    if method == "CSN":
        return ConditionalSimilarityNet(GlobalPoolEmbedding(build_backbone(cfg), cfg.dim, normalize=False),
                                        num_attributes, dim=cfg.dim, masks=cfg.csn_masks, variant="modified")
    flags = {"ASEN_g": {}, "ASEN_g w/o ASA": {"use_asa": False}, "ASEN_g w/o ACA": {"use_aca": False}}
    if method not in flags:
        raise ValueError(f"unknown single-branch method {method!r}; expected one of {SINGLE_BRANCH}")
    return ASENGlobal(build_backbone(cfg), num_attributes, embed_dim=cfg.dim, cond_dim=cfg.cond_dim,
                      **flags[method])


@lru_cache(maxsize=1)
def _whole_image_class():
    import torch

    from ..models import ASENPlusPlus

    class WholeImageASEN(ASENPlusPlus):
        """ASEN_full (slides "Study on localization strategy"): the local branch sees the whole
        high-resolution image, resized to ``local_size``, instead of the attention crop."""

        def localize(self, attention, input_size, image_size):
            h, w = image_size
            box = torch.tensor([0.0, 0.0, float(w), float(h)], device=attention.device)
            return box.expand(attention.shape[0], 4)

    return WholeImageASEN


def build_asen(global_branch, cfg: AsenConfig, whole_image: bool = False):
    """ASEN (ASEN++'s two branches, docs/implementations.md §3 "Model") around a trained stage-1 global branch (copied, so the
    stage-1 model stays as it is). The local branch is a copy of the global branch (``local_init="global"``) or
    a fresh :class:`~fashionlab.models.ASENGlobal` on :func:`build_backbone` ``(local=True)``
    (``"scratch"``); either way it shares the global branch's attribute table. ``whole_image``: ASEN_full."""
    from ..models import ASENGlobal, ASENPlusPlus

    g = copy.deepcopy(global_branch)
    if cfg.local_init == "global":
        loc = copy.deepcopy(g)
        loc.attribute_embedding = g.attribute_embedding
    elif cfg.local_init == "scratch":
        loc = ASENGlobal(build_backbone(cfg, local=True), g.num_attributes, embed_dim=g.embed_dim,
                         attribute_embedding=g.attribute_embedding)
    else:
        raise ValueError(f"local_init must be 'global' or 'scratch', got {cfg.local_init!r}")
    cls = _whole_image_class() if whole_image else ASENPlusPlus
    return cls(g, loc, threshold=cfg.threshold, local_size=cfg.local_size, beta=cfg.mix_beta,
               loss_weights=cfg.loss_weights, margin=cfg.margin)


def feature_fn(method: str, model, mix_beta: float = 0.6):
    """``(fn, hires)``: ``fn(lo, hi, attr)`` gives the ``(B, D)`` retrieval feature of ``method`` (the item
    embedded under attribute ``attr``; ``Triplet`` ignores it), ``hires`` whether it needs the high-resolution
    images. ASEN: :func:`~fashionlab.models.combined_feature` of both branches (docs/implementations.md §3 "Test feature");
    ``ASEN_l``/``ASEN_l (whole image)``: the local branch alone; ``ASEN_g after stage 2``: the global one."""
    if method == "Triplet":
        return (lambda lo, hi, a: model(lo)), False
    if method == "CSN":
        return (lambda lo, hi, a: model(lo, a)), False
    if method in SINGLE_BRANCH:
        return (lambda lo, hi, a: model(lo, a).embedding), False
    if method in ("ASEN", "ASEN_full"):
        return (lambda lo, hi, a: model.feature(lo, a, hi, beta=mix_beta)), True
    if method in ("ASEN_l", "ASEN_l (whole image)"):
        return (lambda lo, hi, a: model(lo, a, hi).local_embedding), True
    if method == "ASEN_g after stage 2":
        return (lambda lo, hi, a: model.global_branch(lo, a).embedding), False
    raise ValueError(f"unknown method {method!r}")


# ----------------------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------------------
def _embed(fn, model, images: TwoScaleImages, items: np.ndarray, dev, hires: bool, batch: int = 256):
    import torch

    from ..engine import extract_features

    def batches():
        for s in range(0, len(items), batch):
            it = items[s:s + batch]
            lo, hi = images.batch(it[:, 0], hires=hires)
            yield lo, hi, torch.from_numpy(np.ascontiguousarray(it[:, 1]))

    return extract_features(lambda b: fn(*b), batches(), device=dev, model=model, out_device="cpu")


def embed_items(method: str, model, data: AsenData, split: str, items: np.ndarray | None = None, dev=None,
                mix_beta: float | None = None):
    """``(n, D)`` CPU tensor: ``method``'s retrieval feature (:func:`feature_fn`) of ``items`` of ``split``
    (``(n, >=2)`` rows ``(image id, attribute, ...)``, each image embedded under that attribute; default
    :meth:`AsenData.items`): the attribute-specific embeddings of the slides' "Overview" that the mAP ranks."""
    from ..engine import device as pick_device

    dev = dev or pick_device(verbose=False)
    fn, hires = feature_fn(method, model, data.cfg.mix_beta if mix_beta is None else mix_beta)
    items = data.items(split) if items is None else np.asarray(items, dtype=np.int64)
    return _embed(fn, model, data.images[split], items, dev, hires)


def evaluate_map(method: str, model, data: AsenData, split: str, dev, mix_beta: float | None = None) -> dict:
    """ASEN-protocol mAP (docs/protocols.md §4.1) of ``method``'s feature on ``split``: each query and
    candidate embedded under its own listed attribute, ranked by dot product within the attribute."""
    from ..metrics import attribute_map

    q, c = data.queries_candidates(split)
    emb = embed_items(method, model, data, split, np.concatenate([q, c]), dev, mix_beta)
    nq = len(q)
    return attribute_map(emb[:nq], q[:, 1], q[:, 2], emb[nq:], c[:, 1], c[:, 2])


def pointing_game(attention, boxes, image_size):
    """Pointing-game score of attention maps against region boxes (beyond the paper: the slides only show
    attention maps, "Spatial Attention Visualization"; the pointing game of Zhang et al., ECCV 2016, with a
    tolerance of half a cell).

    ``attention`` ``(B, h, w)`` over an image of ``image_size`` ``(H, W)`` pixels (cell ``(i, j)`` covers
    ``[j W/w, (j+1) W/w) x [i H/h, (i+1) H/h)``); ``boxes`` ``(B, 4)`` ``[x1, y1, x2, y2]`` in those pixels,
    x2/y2 exclusive. A map scores 1 when its peak cell overlaps the box (equivalently: the cell centre lies
    within half a cell of the box). Ties count fractionally: the score is the fraction of the maximal cells that
    overlap the box, i.e. the expected hit of a random tie-break, so a uniform map (ASEN_g w/o ASA) scores the
    chance level, the share of cells touching the box. Returns ``(B,)`` float scores in [0, 1].
    """
    import torch

    att = torch.as_tensor(attention).detach().float()
    if att.dim() == 2:
        att = att.unsqueeze(0)
    b, h, w = att.shape
    H, W = (int(image_size), int(image_size)) if isinstance(image_size, (int, float)) else map(int, image_size)
    bx = torch.as_tensor(boxes, dtype=torch.float32, device=att.device).reshape(b, 4)
    mx = att.amax(dim=(1, 2), keepdim=True)
    peak = att >= mx - 1e-6 * mx.abs().clamp_min(1e-12)
    ys = torch.arange(h + 1, device=att.device, dtype=torch.float32) * (H / h)
    xs = torch.arange(w + 1, device=att.device, dtype=torch.float32) * (W / w)
    over_y = (ys[None, :-1] < bx[:, 3:4]) & (ys[None, 1:] > bx[:, 1:2])      # (B, h)
    over_x = (xs[None, :-1] < bx[:, 2:3]) & (xs[None, 1:] > bx[:, 0:1])      # (B, w)
    inside = over_y[:, :, None] & over_x[:, None, :]
    return (peak & inside).sum(dim=(1, 2)).float() / peak.sum(dim=(1, 2)).float()


def box_iou(a, b):
    """Row-wise intersection over union of two ``(B, 4)`` box sets ``[x1, y1, x2, y2]`` (continuous
    coordinates, as :func:`~fashionlab.models.attention_box` returns and FashionSynth's regions use): the
    localisation quality of ASEN++'s weakly supervised boxes (slides "Weakly-supervised Localization")
    against the region ground truth. Returns ``(B,)``; 0 for disjoint boxes."""
    import torch

    a = torch.as_tensor(a, dtype=torch.float32).reshape(-1, 4)
    b = torch.as_tensor(b, dtype=torch.float32, device=a.device).reshape(-1, 4)
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_min(0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_min(0)
    inter = iw * ih
    area = lambda z: (z[:, 2] - z[:, 0]).clamp_min(0) * (z[:, 3] - z[:, 1]).clamp_min(0)  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))


def attention_scores(model, data: AsenData, split: str = "test", dev=None) -> dict | None:
    """Score an :class:`~fashionlab.models.ASENGlobal`'s spatial attention against FashionSynth's regions on
    ``split``'s items whose listed attribute is visible: :func:`pointing_game` of the map, and :func:`box_iou`
    of the box ASEN++ would crop (:func:`~fashionlab.models.attention_box`: threshold ``cfg.threshold`` after
    bilinear upsampling to the global input, squared; slides "Weakly-supervised Localization") with the region.

    Returns ``{"pointing game": {"per": {attr index: fraction}, "overall"}, "box IoU": {...}, "n": items,
    "attention", "boxes", "regions", "items"}`` (the last four for plots), or ``None`` without ground truth.
    Overall = mean over items (like the mAP's query weighting)."""
    import torch

    from ..engine import device as pick_device
    from ..models import attention_box

    if not data.has_truth:
        return None
    dev = dev or pick_device(verbose=False)
    boxes, has, size = data.regions(split)
    items = data.items(split)[has]
    gt = torch.from_numpy(boxes[has])
    att = _embed(lambda lo, hi, a: model(lo, a).attention, model, data.images[split], items, dev, False)
    g = data.cfg.global_size
    hits = pointing_game(att, gt, (size, size))
    pred = attention_box(att, data.cfg.threshold, image_size=(size, size), work_size=(g, g), square=True)
    iou = box_iou(pred, gt)
    out = {"n": int(len(items)), "attention": att, "boxes": pred, "regions": gt, "items": items}
    for key, v in (("pointing game", hits), ("box IoU", iou)):
        per = {int(a): float(v[torch.from_numpy(items[:, 1] == a)].mean()) for a in np.unique(items[:, 1])}
        out[key] = {"per": per, "overall": float(v.mean())}
    return out


# ----------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------
def _single_step(method: str, cfg, data, dev):  # TRANSITIONAL: paper05 still imports it; use models.triplet_step
    from ..models import triplet_step

    return triplet_step(data.images["train"], margin=cfg.margin, lambda1=getattr(cfg, "lambda1", 5e-3),
                        lambda2=getattr(cfg, "lambda2", 5e-4), device=dev)


def _fit(model, step, params, data: AsenData, epochs: int, epoch_offset: int, method: str, seed: int,
         progress: bool, dev):
    import torch

    from ..engine import fit

    cfg = data.cfg
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.5)

    def eval_fn(m, epoch):
        return {"valid_mAP": 100 * float(evaluate_map(method, m, data, "valid", dev)["overall"])}

    history = fit(model, step, lambda e: data.train_batches(epoch_offset + e), opt, epochs, scheduler=sched,
                  device=dev, seed=seed + epoch_offset, eval_fn=eval_fn, monitor="valid_mAP", mode="max",
                  restore_best=True, progress=progress, verbose=progress)
    model.eval()
    return history


def train_single(method: str, data: AsenData, seed: int = 0, progress: bool = False):
    """Train a single-branch ``method`` (``Triplet``, ``CSN``, ``ASEN_g`` and its ablations; ``ASEN_g`` is also
    Algorithm 1's stage 1) for ``cfg.epochs`` epochs with the triplet ranking loss (slides "Triplet ranking
    based metric learning", margin 0.2 on cosine; CSN adds its regularisers), keeping the epoch with the best
    validation mAP. Returns ``(model, history)``."""
    from ..engine import device as pick_device, seed_everything

    dev = pick_device(verbose=False)
    seed_everything(seed)  # the same initial RNG state for every method
    model = build_model(method, data.cfg, len(data.attributes)).to(dev)
    from ..models import triplet_step

    step = triplet_step(data.images["train"], margin=data.cfg.margin, lambda1=data.cfg.lambda1,
                        lambda2=data.cfg.lambda2, device=dev)
    history = _fit(model, step, model.parameters(), data, data.cfg.epochs,
                   0, method, seed, progress, dev)
    return model, history


def train_asen(global_branch, data: AsenData, seed: int = 0, progress: bool = False, whole_image: bool = False):
    """Stage 2 of Algorithm 1 (slides "Localization and Training"; docs/implementations.md §3 "Training"): from the trained
    stage-1 global branch, train both branches with ``α L_g + β L_l + γ L_a`` (local branch at ``lr``, global
    branch and the shared attribute table at a tenth of it) for ``cfg.stage2_epochs`` epochs on fresh triplets
    (the epochs after stage 1's), keeping the epoch with the best validation mAP of the combined feature.
    ``whole_image``: ASEN_full (the local branch sees the whole image). Returns ``(model, history)``."""
    from ..engine import device as pick_device, seed_everything

    cfg = data.cfg
    dev = pick_device(verbose=False)
    seed_everything(seed)
    model = build_asen(global_branch, cfg, whole_image=whole_image).to(dev)
    params = model.param_groups(lr_local=cfg.lr * cfg.stage2_lr_local, lr_global=cfg.lr * cfg.stage2_lr_global)
    from ..models import triplet_step

    history = _fit(model, triplet_step(data.images["train"], device=dev, hires=True), params, data, cfg.stage2_epochs, cfg.epochs,
                   "ASEN_full" if whole_image else "ASEN", seed, progress, dev)
    return model, history


# ----------------------------------------------------------------------------------------------------------
# the paper's numbers and the experiment
# ----------------------------------------------------------------------------------------------------------
PAPER_ATTRIBUTES = ["skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                    "lapel_design", "neckline_design", "neck_design"]
#: The slides' FashionAI table ("Attribute-Specific Fashion Retrieval"): mAP per attribute, overall last.
#: "Triplet network" is named ``Triplet`` here, as our row.
PAPER_FASHIONAI = {
    "Random baseline": [17.20, 12.50, 13.35, 17.45, 22.36, 21.63, 11.09, 21.19, 15.79],
    "Triplet": [48.38, 28.14, 29.82, 54.56, 62.58, 38.31, 26.64, 40.02, 38.52],
    "CSN": [61.97, 45.06, 47.30, 62.85, 69.83, 54.14, 46.56, 54.47, 53.52],
    "ASEN_g": [64.14, 54.62, 51.59, 65.90, 71.45, 66.16, 60.04, 60.28, 60.60],
    "ASEN_l": [50.42, 39.93, 40.85, 51.87, 67.64, 54.38, 50.57, 64.11, 50.34],
    "ASEN": [66.34, 57.53, 55.51, 68.77, 72.94, 66.95, 66.81, 67.01, 64.31],
}
#: The slides' ablation tables ("Study on attention and loss function", "Study on localization strategy"),
#: rows not already in the FashionAI table. (The ablation table repeats ASEN_g with lapel_design 65.16, the
#: FashionAI table has 66.16; ASEN's row is the same in all three tables.)
PAPER_ABLATION = {
    "ASEN_g w/o ASA": [62.09, 46.18, 49.23, 62.79, 67.34, 58.07, 46.85, 56.20, 54.27],
    "ASEN_g w/o ACA": [62.84, 51.46, 49.07, 66.08, 70.36, 61.47, 58.14, 58.02, 58.53],
    "ASEN w/o L_g": [53.73, 13.60, 38.55, 57.07, 22.59, 22.15, 11.44, 21.65, 28.82],
    "ASEN w/o L_l": [65.63, 57.78, 54.82, 68.66, 72.20, 67.10, 66.55, 67.56, 64.08],
    "ASEN w/o L_a": [64.95, 55.96, 53.76, 67.38, 74.12, 66.74, 64.51, 66.48, 63.05],
    "ASEN_full": [66.51, 55.43, 55.37, 67.61, 68.58, 62.30, 59.09, 57.45, 60.81],
}


DETAIL_METRIC = "mAP, neck-detail study"
DETAIL_SCORES = ("pointing game, neck-detail study", "box IoU, neck-detail study")


def detail_study(data: AsenData, seed: int = 0, progress: bool = False, dev=None,
                 attributes=SMALL_REGION_ATTRIBUTES) -> dict:
    """Why the local branch does not help on the neck details in the main run (beyond the slides): every model
    trained on the triplets of ``attributes`` only and scored on their queries (same test items as the main
    table, so per-attribute numbers compare; "overall" is over these attributes only).

    * ``Triplet, oracle crop xS``: the plain triplet network on *oracle crops* (:func:`region_crop_images`: the
      ground-truth region, enlarged S times, cut from the high-resolution image and resized to the global view's
      size), ``cfg.epochs`` epochs: are the details learnable from pixels at all when the network is shown where
      they are? S = 1.5 also magnifies them; with a large S the crop is about the whole image at about the global
      view's resolution, only centred on the detail.
    * ``Triplet`` and ``ASEN_g`` on the whole global view for ``cfg.detail_epochs`` epochs (3 x the detail
      triplets of the main run's stage 1): does longer training let the attention find the details?
    * ``ASEN``, ``ASEN_l``, ``ASEN_g after stage 2``: Algorithm 1's stage 2 (``cfg.detail_stage2_epochs``) on that
      ASEN_g: once the attention is on the region, does the local branch's crop help?
    * ASEN_g's ``pointing game`` and ``box IoU`` on these attributes.

    Returns ``{"rows", "models", "histories", "attention", "config"}``; ``rows`` have the metrics
    :data:`DETAIL_METRIC` and :data:`DETAIL_SCORES`."""
    import dataclasses

    from ..engine import device as pick_device
    from ..metrics import attribute_map

    dev = dev or pick_device(verbose=False)
    cfg = data.cfg
    attrs = data.attributes
    q, c = data.focused(attributes).queries_candidates("test")
    emb = random_embeddings(len(q) + len(c), seed=seed)
    rows = map_rows("Random baseline", attribute_map(emb[:len(q)], q[:, 1], q[:, 2], emb[len(q):], c[:, 1], c[:, 2]),
                    attrs, metric=DETAIL_METRIC)
    models, histories = {}, {}

    def add(name, model, view, method=None):
        rows.extend(map_rows(name, evaluate_map(method or name, model, view, "test", dev), attrs,
                             metric=DETAIL_METRIC))

    for scale in cfg.oracle_scales:
        view = data.focused(attributes, oracle_scale=scale) if data.has_truth else None
        if view is None:
            break
        name = f"Triplet, oracle crop x{scale:g}"
        models[name], histories[name] = train_single("Triplet", view, seed, progress)
        add(name, models[name], view, "Triplet")
    long = data.focused(attributes, cfg=dataclasses.replace(cfg, epochs=cfg.detail_epochs,
                                                            stage2_epochs=cfg.detail_stage2_epochs))
    for m in ("Triplet", "ASEN_g"):
        models[m], histories[m] = train_single(m, long, seed, progress)
        add(m, models[m], long)
    models["ASEN"], histories["ASEN"] = train_asen(models["ASEN_g"], long, seed, progress)
    for m in ("ASEN", "ASEN_l", "ASEN_g after stage 2"):
        add(m, models["ASEN"], long)
    attention = attention_scores(models["ASEN_g"], long, "test", dev) if data.has_truth else None
    if attention is not None:
        for metric, key in zip(DETAIL_SCORES, ("pointing game", "box IoU")):
            rows += _score_rows("ASEN_g", metric, attention[key], attrs)
    return {"rows": rows, "models": models, "histories": histories, "attention": attention, "config": long.cfg}


def paper_rows() -> list[dict]:
    """The slides' FashionAI table, then their ablation rows, as result rows (``"dataset"`` says it is real
    FashionAI; ``"table"`` which slide table the row comes from)."""
    rows = []
    for table, source in (("FashionAI", PAPER_FASHIONAI), ("ablation", PAPER_ABLATION)):
        for method, values in source.items():
            rows += [{"method": method, "metric": "mAP", "attribute": a, "value": v, "dataset": PAPER_DATASET,
                      "table": table} for a, v in zip(PAPER_ATTRIBUTES, values[:-1])]
            rows.append({"method": method, "metric": "mAP", "value": values[-1], "dataset": PAPER_DATASET,
                         "table": table})
    return rows


def _pct(x) -> float:
    return round(100 * float(x), 2)


def _score_rows(method: str, metric: str, scores: dict, attributes) -> list[dict]:
    rows = [{"method": method, "metric": metric, "attribute": attributes[a], "value": _pct(v)}
            for a, v in sorted(scores["per"].items())]
    rows.append({"method": method, "metric": metric, "value": _pct(scores["overall"])})
    return rows


def _notes(cfg: AsenConfig, data: AsenData, histories: dict, attention: dict, study: dict | None = None) -> list[str]:
    steps = cfg.triplets_per_epoch // cfg.batch
    bb = (f"SmallCNN width {cfg.width} (output stride {cfg.output_stride}"
          f"{'' if cfg.final_relu else ', last ReLU dropped'})" if cfg.backbone == "smallcnn"
          else f"{cfg.backbone} cut after {cfg.stage}")
    lb = (f"SmallCNN width {cfg.local_width or cfg.width}" if (cfg.local_backbone or cfg.backbone) == "smallcnn"
          else f"{cfg.local_backbone or cfg.backbone} cut after {cfg.stage}")
    notes = [
        f"every method: {bb} on the {cfg.global_size} px global view of the {cfg.image_size} px image, "
        f"{cfg.dim}-d L2-normalised embedding, {cfg.epochs} epochs x {cfg.triplets_per_epoch} ASEN++ triplets "
        f"(batch {cfg.batch}, {steps * cfg.epochs} steps; the same triplets in the same order for every method, "
        f"resampled each epoch), margin {cfg.margin} on cosine similarity, Adam lr {cfg.lr} halved every "
        f"{max(1, cfg.epochs // 3)} epochs, best validation-mAP epoch kept",
        f"CSN: CSN's learned masks ({cfg.csn_masks}, N(0.9, 0.7), ReLU) on the pooled {cfg.dim}-d embedding, "
        f"L2-normalised and compared by dot product as the ASEN code's CSN baseline, with CSN's regularisers "
        f"(lambda1 {cfg.lambda1}, lambda2 {cfg.lambda2})",
        f"ASEN_g: ASA (scaled dot product) + ACA (reduction 2), {cfg.cond_dim}-d attribute vectors; w/o ASA = "
        "global average pooling in place of ASA; w/o ACA = no channel gate (the FC kept)",
        f"ASEN (Algorithm 1): stage 1 = ASEN_g; stage 2 = {cfg.stage2_epochs} epochs on the next epochs' "
        f"triplets, loss {cfg.loss_weights[0]} L_g + {cfg.loss_weights[1]} L_l + {cfg.loss_weights[2]} L_a, "
        f"local branch ({lb}, initialised from the stage-1 global branch: {cfg.local_init == 'global'}, sharing "
        f"the attribute table) at lr {cfg.lr * cfg.stage2_lr_local:g}, global branch at "
        f"{cfg.lr * cfg.stage2_lr_global:g}; the local branch embeds a {cfg.local_size} px crop of the "
        f"{cfg.image_size} px image around the global attention (min-max normalised map > {cfg.threshold}, "
        f"bounding box squared); test feature [sqrt(b) g, sqrt(1-b) l] with b = {cfg.mix_beta}; ASEN_l = the "
        "local branch alone; 'ASEN_g after stage 2' = the global branch alone (the control for ASEN's extra "
        "epochs)",
        "mAP: ASEN protocol (docs/protocols.md §4.1), test split, overall weighted by queries; Random baseline: "
        "random unit vectors",
        "paper rows: the slides' FashionAI table ('Triplet' is its 'Triplet network') and ablation tables, on real "
        "FashionAI (ResNet-50 / ResNet-34 ImageNet backbones, 224 px); the ablation table repeats ASEN_g with "
        "lapel_design 65.16 (66.16 in the FashionAI table, used here)",
    ]
    if cfg.whole_image_ablation:
        notes.append("ASEN_full / ASEN_l (whole image): the same stage 2 with the local branch fed the whole "
                     f"{cfg.image_size} px image resized to {cfg.local_size} px instead of the crop (slides "
                     "'Study on localization strategy')")
    if attention:
        n = next(iter(attention.values()))["n"]
        notes.append(f"pointing game / box IoU: on the {n} test items whose listed attribute is visible, against "
                     "FashionSynth's region boxes (ground_truth.jsonl); pointing game = the attention's peak cell "
                     "overlaps the region (ties counted fractionally, so the uniform map of w/o ASA scores "
                     "chance); box IoU = IoU of ASEN++'s squared localisation box with the region (a uniform map "
                     "gives the whole image); overall = mean over items")
    else:
        notes.append("pointing game / box IoU skipped: the data folder has no ground_truth.jsonl (real data)")
    notes.append("best validation epoch: " + ", ".join(f"{m} {h.best_epoch}" for m, h in histories.items()))
    if study is not None:
        sc = study["config"]
        notes.append(
            f"neck-detail study (beyond the slides): every model trained on the triplets of the four neck "
            f"attributes only (about half of each epoch's {cfg.triplets_per_epoch}) and scored on their test "
            f"queries ('overall' = these four); 'Triplet, oracle crop xS' = the triplet network, {cfg.epochs} "
            f"epochs, on the ground-truth neck region enlarged S times, cut from the {cfg.image_size} px image and "
            f"resized to {cfg.global_size} px; Triplet and ASEN_g on the whole {cfg.global_size} px view for "
            f"{sc.epochs} epochs, then ASEN's stage 2 for {sc.stage2_epochs}; pointing game / box IoU of that "
            "ASEN_g. Best validation epoch: "
            + ", ".join(f"{m} {h.best_epoch}" for m, h in study["histories"].items()))

    if data.sampler.skipped:
        notes.append(f"training triplets skip values with too few images: {[str(s) for s in data.sampler.skipped]}")
    return notes


@register("asen", "paper 03: ASEN's attention and two branches vs Triplet and CSN, ablations, attention scores",
          notebook="03_asen_attention")
def asen(mode: str, data: Path | None, seed: int, progress: bool = True, config: AsenConfig | None = None) -> Outcome:
    """The ``asen`` experiment (module docstring): the slides' FashionAI table and ablations on FashionSynth's
    ``asen`` preset (or real FashionAI), plus attention scores against the region ground truth."""
    from ..engine import device as pick_device
    from ..metrics import attribute_map

    cfg = config or ASEN_CONFIGS[mode]
    root, label = asen_data(cfg, data, seed, progress)
    d = AsenData(root, cfg, seed, progress)
    attrs = d.attributes
    dev = pick_device(verbose=False)

    te = d.splits["test"]
    q, c = te.queries, te.candidates
    emb = random_embeddings(len(q) + len(c), seed=seed)
    rows = map_rows("Random baseline", attribute_map(emb[:len(q)], q[:, 1], q[:, 2], emb[len(q):], c[:, 1], c[:, 2]),
                    attrs)
    models, histories, scores = {}, {}, {}
    for m in SINGLE_BRANCH:
        models[m], histories[m] = train_single(m, d, seed, progress)
        scores[m] = evaluate_map(m, models[m], d, "test", dev)
    models["ASEN"], histories["ASEN"] = train_asen(models["ASEN_g"], d, seed, progress)
    models["ASEN_l"] = models["ASEN"]
    for m in ("ASEN_l", "ASEN", "ASEN_g after stage 2"):
        scores[m] = evaluate_map(m, models["ASEN"], d, "test", dev)
    extra_methods = ["ASEN_g after stage 2"]
    if cfg.whole_image_ablation:
        models["ASEN_full"], histories["ASEN_full"] = train_asen(models["ASEN_g"], d, seed, progress,
                                                                 whole_image=True)
        models["ASEN_l (whole image)"] = models["ASEN_full"]
        for m in ("ASEN_l (whole image)", "ASEN_full"):
            scores[m] = evaluate_map(m, models["ASEN_full"], d, "test", dev)
        extra_methods += ["ASEN_l (whole image)", "ASEN_full"]
    for m in METHODS + tuple(extra_methods):
        rows += map_rows(m, scores[m], attrs)

    attention = {}
    if d.has_truth:
        for m in ATTENTION_METHODS:
            attention[m] = attention_scores(models[m], d, "test", dev)
        for metric in ("pointing game", "box IoU"):
            for m in ATTENTION_METHODS:
                rows += _score_rows(m, metric, attention[m][metric], attrs)

    study = None
    if cfg.detail_epochs > 0:
        study = detail_study(d, seed, progress, dev)
        rows += study["rows"]

    return Outcome(rows=rows, paper_rows=paper_rows(),
                   dataset=f"{label}, test split: {len(q)} queries, {len(c)} candidates",
                   device=str(dev), notes=_notes(cfg, d, histories, attention, study),
                   extra={"models": models, "histories": histories, "config": cfg, "data": d, "scores": scores,
                          "attention": attention, "detail_study": study})
