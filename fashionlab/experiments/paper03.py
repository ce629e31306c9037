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

Recipe (each step public, so a notebook can run them one at a time and pass in a module of its own):
:func:`load_data` → :func:`build_model` → :func:`train` (``engine.fit`` with the model's loss, trained models
cached under the data folder) → :func:`evaluate` → :func:`report` (an :class:`AsenResult`). :func:`asen`, the
registered experiment, is these steps in order for every method. The slides' numbers and the report text are in
:mod:`~fashionlab.experiments.paper03_tables`, the ground-truth scoring and oracle crops in
:mod:`~fashionlab.experiments.paper03_regions`.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..datasets import TwoScaleImages  # noqa: F401  (re-exported)
from ..models import random_embeddings
from .paper03_data import AsenData
from .paper03_regions import attention_scores, oracle_boxes, pointing_game, region_crop_images, union_regions
from .paper03_tables import PAPER_ATTRIBUTES, PAPER_DATASET, notes, paper_rows
from .registry import Result, added_field, map_rows, register, with_start

__all__ = ["METHODS", "SINGLE_BRANCH", "STAGE2", "SMALL_REGION_ATTRIBUTES", "AsenConfig", "ASEN_CONFIGS", "AsenData",
           "AsenResult", "DetailStudy", "load_data", "build_backbone", "build_model", "build_asen", "cache_key", "train",
           "feature_fn", "embed_items", "evaluate", "report", "detail_study", "asen",
           # beside the recipe (paper03_regions, paper03_tables)
           "TwoScaleImages", "union_regions", "oracle_boxes", "region_crop_images", "pointing_game",
           "attention_scores", "paper_rows", "PAPER_ATTRIBUTES", "PAPER_DATASET"]

METHODS = ("Triplet", "CSN", "ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_g", "ASEN_l", "ASEN")
#: The attributes whose regions are small (the neck details): where the local branch should help most.
SMALL_REGION_ATTRIBUTES = ("collar_design", "lapel_design", "neckline_design", "neck_design")
#: Trained from scratch with the triplet loss (stage 1); the two-branch models of stage 2 and, for each, the
#: methods read off it (its combined feature, its local branch alone, its global branch alone).
SINGLE_BRANCH = ("Triplet", "CSN", "ASEN_g w/o ASA", "ASEN_g w/o ACA", "ASEN_g")
STAGE2 = {"ASEN": ("ASEN_l", "ASEN", "ASEN_g after stage 2"), "ASEN_full": ("ASEN_l (whole image)", "ASEN_full")}
ATTENTION_METHODS = ("ASEN_g", "ASEN_g w/o ASA")
DETAIL_METRIC = "mAP, neck-detail study"
DETAIL_SCORES = ("pointing game, neck-detail study", "box IoU, neck-detail study")


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
    pretrained: str = added_field("scratch")  # "scratch" or "imagenet": torchvision backbones' start (--pretrained)
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
# step 1: the data (:class:`AsenData`, in paper03_data)
# ----------------------------------------------------------------------------------------------------------
def load_data(cfg: AsenConfig, data: Path | None = None, seed: int = 0, progress: bool = False) -> AsenData:
    """Step 1: the :class:`AsenData` of ``data`` (``--data``), else of ``$FASHIONLAB_FASHIONAI`` (real FashionAI),
    else of a FashionSynth dataset of the ``cfg.preset`` preset (``asen``: paper 03's "unrestricted images",
    small details in a large cluttered picture), ``cfg.num_images`` images rendered at ``cfg.image_size`` px
    (rendered on first use)."""
    import os

    if data is not None:
        root, label = Path(data), f"{Path(data).name} (from --data)"
    elif os.environ.get("FASHIONLAB_FASHIONAI"):
        from ..datasets.sources import fashionai_data

        root, label = fashionai_data("default", None, seed, progress)
    else:
        from ..synth import ensure_fashionai

        root = ensure_fashionai(num_images=cfg.num_images, seed=seed, image_size=cfg.image_size, config=cfg.preset,
                                progress=progress)
        label = (f"FashionSynth fashionai, preset {cfg.preset}, {cfg.num_images} images, {cfg.image_size} px "
                 f"(global view {cfg.global_size} px), seed {seed}")
    mode = next((m for m, c in ASEN_CONFIGS.items() if c == cfg), "custom")
    from ..datasets.sources import is_real

    return AsenData(root, cfg, seed, progress, description=label, mode=mode, real=is_real(data))


# ----------------------------------------------------------------------------------------------------------
# step 2: the models
# ----------------------------------------------------------------------------------------------------------
def build_backbone(cfg: AsenConfig, local: bool = False):
    """The backbone of every method (``local=False``) or of ASEN's local branch:
    :func:`fashionlab.models.build_backbone` with ``cfg``'s name, width, output stride, last ReLU and stage."""
    from ..models import build_backbone as make

    name = (cfg.local_backbone or cfg.backbone) if local else cfg.backbone
    width = (cfg.local_width or cfg.width) if local else cfg.width
    if cfg.pretrained == "scratch":
        return make(name, width=width, output_stride=cfg.output_stride, final_relu=cfg.final_relu, stage=cfg.stage)
    return make(name, width=width, output_stride=cfg.output_stride, final_relu=cfg.final_relu, stage=cfg.stage,
                pretrained=cfg.pretrained)


def build_model(method: str, cfg: AsenConfig, data, seed: int | None = 0, stage1=None):
    """Step 2: a fresh model of ``method``, its weights drawn after ``seed_everything(seed)`` (``seed=None``: from
    the current RNG state). ``data``: the :class:`AsenData` (or the number of attributes).

    * ``Triplet``: :class:`~fashionlab.models.GlobalPoolEmbedding` (backbone, pooling, FC, L2 norm);
    * ``CSN``: :class:`~fashionlab.models.ConditionalSimilarityNet` (learned masks, ``variant="modified"``) on the
      same pooled embedding;
    * ``ASEN_g``, ``ASEN_g w/o ASA``, ``ASEN_g w/o ACA``: :class:`~fashionlab.models.ASENGlobal` (slides
      "Attribute-aware Spatial/Channel Attention"; "Study on attention and loss function");
    * ``ASEN``, ``ASEN_full``: stage 2 of Algorithm 1 (docs/implementations.md §3 "Model"),
      :class:`~fashionlab.models.ASENPlusPlus` (``ASEN_full``: :class:`~fashionlab.models.ASENWholeImage`) around
      a *copy* of the trained stage-1 global branch ``stage1``. Its local branch is a copy of that branch
      (``cfg.local_init="global"``) or a fresh ASEN_g on :func:`build_backbone` ``(local=True)`` (``"scratch"``);
      either way it shares the global branch's attribute table. Loss weights and margin: ``cfg``'s.
    """
    from ..engine import seed_everything
    from ..models import (ASENGlobal, ASENPlusPlus, ASENWholeImage, ConditionalSimilarityNet,
                          GlobalPoolEmbedding)

    n = data if isinstance(data, int) else len(data.attributes)
    if seed is not None:
        seed_everything(seed)  # the same initial RNG state for every method
    if method in STAGE2:
        if stage1 is None:
            raise ValueError(f"{method} is built around a trained ASEN_g: pass stage1=")
        g = copy.deepcopy(stage1)
        if cfg.local_init == "global":
            loc = copy.deepcopy(g)
            loc.attribute_embedding = g.attribute_embedding
        elif cfg.local_init == "scratch":
            loc = ASENGlobal(build_backbone(cfg, local=True), g.num_attributes, embed_dim=g.embed_dim,
                             attribute_embedding=g.attribute_embedding)
        else:
            raise ValueError(f"local_init must be 'global' or 'scratch', got {cfg.local_init!r}")
        cls = ASENWholeImage if method == "ASEN_full" else ASENPlusPlus
        return cls(g, loc, threshold=cfg.threshold, local_size=cfg.local_size, beta=cfg.mix_beta,
                   loss_weights=cfg.loss_weights, margin=cfg.margin)
    if method == "Triplet":
        return GlobalPoolEmbedding(build_backbone(cfg), cfg.dim, normalize=True)
    if method == "CSN":
        return ConditionalSimilarityNet(GlobalPoolEmbedding(build_backbone(cfg), cfg.dim, normalize=False),
                                        n, dim=cfg.dim, masks=cfg.csn_masks, variant="modified")
    flags = {"ASEN_g": {}, "ASEN_g w/o ASA": {"use_asa": False}, "ASEN_g w/o ACA": {"use_aca": False}}
    if method not in flags:
        raise ValueError(f"unknown method {method!r}; expected one of {SINGLE_BRANCH + tuple(STAGE2)}")
    return ASENGlobal(build_backbone(cfg), n, embed_dim=cfg.dim, cond_dim=cfg.cond_dim, **flags[method])


def build_asen(global_branch, cfg: AsenConfig, whole_image: bool = False):
    """``build_model("ASEN")`` (``"ASEN_full"`` with ``whole_image``) around ``global_branch``, without reseeding."""
    return build_model("ASEN_full" if whole_image else "ASEN", cfg, global_branch.num_attributes, seed=None,
                       stage1=global_branch)


# ----------------------------------------------------------------------------------------------------------
# step 3: training
# ----------------------------------------------------------------------------------------------------------
def _weights_digest(model) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(method: str, model, data: AsenData, seed: int = 0) -> dict:
    """What names a training of ``method`` in the trained-model cache (:func:`fashionlab.engine.fit`): experiment,
    method, mode, seed, config, dataset (and its focus / oracle crops), stage, and a digest of the model's
    initial weights (so stage 2 is keyed by the stage-1 model it starts from, and a model built differently
    trains afresh)."""
    return {"experiment": "asen", "method": method, "mode": data.mode, "seed": seed, "config": data.cfg,
            "dataset": data.description, "focus": data.focus, "oracle_scale": data.oracle_scale,
            "stage": 2 if method in STAGE2 else 1, "init": _weights_digest(model)}


def train(method: str, model, data: AsenData, seed: int = 0, device=None, progress: bool = False,
          verbose: bool | None = None):
    """Step 3: train ``model`` as ``method`` through :func:`fashionlab.engine.fit`, keeping the epoch with the
    best validation mAP (as the ASEN code does); returns the :class:`~fashionlab.engine.History`.

    * single-branch methods (stage 1 for ``ASEN_g``): ``cfg.epochs`` epochs of ASEN++ triplets, the triplet
      ranking loss on cosine similarity (slides "Triplet ranking based metric learning", margin 0.2; CSN adds
      its regularisers): :func:`~fashionlab.models.attribute_triplet_loss`, Adam at ``cfg.lr`` halved every
      third of the epochs;
    * ``ASEN``/``ASEN_full`` (stage 2 of Algorithm 1, docs/implementations.md §3 "Training"): the model's own
      loss ``α L_g + β L_l + γ L_a`` (:meth:`~fashionlab.models.ASENPlusPlus.loss`) for ``cfg.stage2_epochs``
      epochs on the triplets of the epochs after stage 1's, local branch at ``lr``, global branch and the
      shared attribute table at a tenth of it.

    ``device``: default the model's. A second call with the same :func:`cache_key` loads the trained model
    (and says so) instead of training. ``verbose``: one line per epoch (default: ``progress``)."""
    import torch

    from ..engine import fit
    from ..models import triplet_step

    cfg = data.cfg
    dev = device if device is not None else next(model.parameters()).device
    model.to(dev)
    key = cache_key(method, model, data, seed)
    if method in STAGE2:
        epochs, offset = cfg.stage2_epochs, cfg.epochs
        params = model.param_groups(lr_local=cfg.lr * cfg.stage2_lr_local, lr_global=cfg.lr * cfg.stage2_lr_global)
        step = triplet_step(data.images["train"], device=dev, hires=True)
    else:
        epochs, offset, params = cfg.epochs, 0, model.parameters()
        step = triplet_step(data.images["train"], margin=cfg.margin, lambda1=cfg.lambda1, lambda2=cfg.lambda2,
                            device=dev)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.5)

    def eval_fn(m, epoch):
        return {"valid_mAP": 100 * float(evaluate(method, m, data, dev, split="valid")["overall"])}

    from ..datasets import triplet_ids

    def batches(e):  # decoded ahead in DataLoader workers when the images stream (else the list itself)
        return data.images["train"].prefetch(data.train_batches(offset + e), ids_of=triplet_ids, device=dev)

    history = fit(model, step, batches, opt, epochs, scheduler=sched,
                  device=dev, seed=seed + offset, eval_fn=eval_fn, monitor="valid_mAP", mode="max",
                  restore_best=True, progress=progress, verbose=progress if verbose is None else verbose,
                  cache_key=key)
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------------------
# step 4: evaluation
# ----------------------------------------------------------------------------------------------------------
def feature_fn(method: str, model, mix_beta: float = 0.6):
    """``(fn, hires)``: ``fn(lo, hi, attr)`` gives the ``(B, D)`` retrieval feature of ``method`` (the item
    embedded under attribute ``attr``; ``Triplet`` ignores it), ``hires`` whether it needs the high-resolution
    images. ASEN: :func:`~fashionlab.models.combined_feature` of both branches (docs/implementations.md §3 "Test
    feature"); ``ASEN_l``/``ASEN_l (whole image)``: the local branch alone; ``ASEN_g after stage 2``: the global
    one."""
    if method == "Triplet":
        return (lambda lo, hi, a: model(lo)), False
    if method == "CSN":
        return (lambda lo, hi, a: model(lo, a)), False
    if method in SINGLE_BRANCH:
        return (lambda lo, hi, a: model(lo, a).embedding), False
    if method in STAGE2:
        return (lambda lo, hi, a: model.feature(lo, a, hi, beta=mix_beta)), True
    if method in ("ASEN_l", "ASEN_l (whole image)"):
        return (lambda lo, hi, a: model(lo, a, hi).local_embedding), True
    if method == "ASEN_g after stage 2":
        return (lambda lo, hi, a: model.global_branch(lo, a).embedding), False
    raise ValueError(f"unknown method {method!r}")


def embed_items(method: str, model, data: AsenData, split: str, items: np.ndarray | None = None, device=None,
                mix_beta: float | None = None):
    """``(n, D)`` CPU tensor: ``method``'s retrieval feature (:func:`feature_fn`) of ``items`` of ``split``
    (``(n, >=2)`` rows ``(image id, attribute, ...)``, each image embedded under that attribute; default
    :meth:`AsenData.items`), through :func:`fashionlab.engine.extract_features`: the attribute-specific
    embeddings of the slides' "Overview" that the mAP ranks."""
    from ..engine import extract_features

    fn, hires = feature_fn(method, model, data.cfg.mix_beta if mix_beta is None else mix_beta)
    items = data.items(split) if items is None else np.asarray(items, dtype=np.int64)
    return extract_features(lambda b: fn(*b), data.images[split].item_batches(items, hires=hires), device=device,
                            model=model, out_device="cpu")


def evaluate(method: str, model, data: AsenData, device=None, split: str = "test",
             mix_beta: float | None = None) -> dict:
    """Step 4: ASEN-protocol mAP (docs/protocols.md §4.1) of ``method``'s feature on ``split``: each query and
    candidate embedded under its own listed attribute (:func:`embed_items`), ranked by dot product within the
    attribute. Returns :func:`fashionlab.metrics.attribute_map`'s ``{attribute index: AP, "overall": mAP}``
    (fractions; overall weighted by queries)."""
    from ..metrics import attribute_map

    q, c = data.queries_candidates(split)
    emb = embed_items(method, model, data, split, np.concatenate([q, c]), device, mix_beta)
    nq = len(q)
    return attribute_map(emb[:nq], q[:, 1], q[:, 2], emb[nq:], c[:, 1], c[:, 2])


def random_scores(data: AsenData, seed: int = 0) -> dict:
    """The ``Random baseline`` row's mAP: random unit vectors for the test queries and candidates."""
    from ..metrics import attribute_map

    q, c = data.queries_candidates("test")
    emb = random_embeddings(len(q) + len(c), seed=seed)
    return attribute_map(emb[:len(q)], q[:, 1], q[:, 2], emb[len(q):], c[:, 1], c[:, 2])


# ----------------------------------------------------------------------------------------------------------
# step 5: the report, the neck-detail study and the experiment
# ----------------------------------------------------------------------------------------------------------
@dataclass
class DetailStudy:
    """What :func:`detail_study` returns: its rows (metrics :data:`DETAIL_METRIC`, :data:`DETAIL_SCORES`), the
    models and histories it trained, ASEN_g's attention scores and the view's config."""

    rows: list[dict] = field(default_factory=list)
    models: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    attention: dict | None = None
    config: AsenConfig | None = None


@dataclass
class AsenResult(Result):
    """What ``experiments.run("asen")`` returns: the rows, plus the data, the config, the trained models and
    histories by method (``models["ASEN_l"]`` is the ASEN model, read through its local branch), the mAP
    ``scores`` by method (:func:`evaluate`'s dicts), the ``attention`` scores of :data:`ATTENTION_METHODS`
    (:func:`attention_scores`) and the neck-detail ``study``."""

    data: AsenData | None = None
    config: AsenConfig | None = None
    models: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    attention: dict = field(default_factory=dict)
    study: DetailStudy | None = None


def _pct(x) -> float:
    return round(100 * float(x), 2)


def _score_rows(method: str, metric: str, scores: dict, attributes) -> list[dict]:
    rows = [{"method": method, "metric": metric, "attribute": attributes[a], "value": _pct(v)}
            for a, v in sorted(scores["per"].items())]
    rows.append({"method": method, "metric": metric, "value": _pct(scores["overall"])})
    return rows


def report(data: AsenData, scores: dict, models: dict, histories: dict, attention: dict,
           study: DetailStudy | None = None) -> AsenResult:
    """Step 5: the :class:`AsenResult`: mAP rows of every method in ``scores`` (the ``Random baseline`` first), the
    attention rows (``pointing game``, ``box IoU``), the study's rows, the slides' rows and the notes."""
    attrs = data.attributes
    rows = [r for m, s in scores.items() for r in map_rows(m, s, attrs)]
    for metric in ("pointing game", "box IoU"):
        for m, a in attention.items():
            rows += _score_rows(m, metric, a[metric], attrs)
    if study is not None:
        rows += study.rows
    q, c = data.queries_candidates("test")
    return AsenResult(rows=rows, paper_rows=paper_rows(),
                      dataset=f"{data.description}, test split: {len(q)} queries, {len(c)} candidates",
                      notes=notes(data.cfg, data, histories, attention, study), data=data, config=data.cfg,
                      models=models, histories=histories, scores=scores, attention=attention, study=study)


def detail_study(data: AsenData, seed: int = 0, progress: bool = False, device=None,
                 attributes=SMALL_REGION_ATTRIBUTES, verbose: bool | None = None) -> DetailStudy:
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
    * ASEN_g's ``pointing game`` and ``box IoU`` on these attributes."""
    cfg, attrs = data.cfg, data.attributes
    study = DetailStudy()
    focus = data.focused(attributes)
    study.rows = map_rows("Random baseline", random_scores(focus, seed), attrs, metric=DETAIL_METRIC)

    def run(name, view, method=None, stage1=None, reads=None):
        method = method or name
        m = build_model(method, cfg, view, seed=seed, stage1=stage1)
        study.histories[name] = train(method, m, view, seed=seed, device=device, progress=progress,
                                      verbose=verbose)
        study.models[name] = m
        for r in reads or (name,):
            study.rows += map_rows(r, evaluate(r if reads else method, m, view, device), attrs, metric=DETAIL_METRIC)
        return m

    if data.has_truth:
        for scale in cfg.oracle_scales:
            run(f"Triplet, oracle crop x{scale:g}", data.focused(attributes, oracle_scale=scale), "Triplet")
    long = data.focused(attributes, cfg=replace(cfg, epochs=cfg.detail_epochs, stage2_epochs=cfg.detail_stage2_epochs))
    for m in ("Triplet", "ASEN_g"):
        run(m, long)
    run("ASEN", long, stage1=study.models["ASEN_g"], reads=("ASEN", "ASEN_l", "ASEN_g after stage 2"))
    study.config = long.cfg
    study.attention = attention_scores(study.models["ASEN_g"], long, "test", device) if data.has_truth else None
    if study.attention is not None:
        for metric, key in zip(DETAIL_SCORES, ("pointing game", "box IoU")):
            study.rows += _score_rows("ASEN_g", metric, study.attention[key], attrs)
    return study


@register("asen", "paper 03: ASEN's attention and two branches vs Triplet and CSN, ablations, attention scores",
          notebook="03_asen_attention")
def asen(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
         config: AsenConfig | None = None, dataset: AsenData | None = None,
         verbose: bool | None = None) -> AsenResult:
    """The ``asen`` experiment (module docstring): the recipe's steps in order, for every method. ``dataset``: an
    :class:`AsenData` already loaded (a notebook's; its config is used); ``verbose``: one line per training
    epoch, and a line for each model loaded from the cache (default: ``progress``)."""
    cfg = with_start(dataset.cfg if dataset is not None else (config or ASEN_CONFIGS[mode]), "asen", mode)
    if dataset is not None and dataset.cfg != cfg:
        raise ValueError(f"dataset= was loaded with pretrained={dataset.cfg.pretrained!r}, but this run asks for "
                         f"{cfg.pretrained!r}: load the data with a config whose pretrained is {cfg.pretrained!r}")
    d = dataset if dataset is not None else load_data(cfg, data, seed, progress)
    models, histories = {}, {}
    scores = {"Random baseline": random_scores(d, seed)}
    for m in SINGLE_BRANCH:
        models[m] = build_model(m, cfg, d, seed=seed)
        histories[m] = train(m, models[m], d, seed=seed, device=device, progress=progress, verbose=verbose)
        scores[m] = evaluate(m, models[m], d, device)
    for m, reads in STAGE2.items():
        if m == "ASEN_full" and not cfg.whole_image_ablation:
            continue
        models[m] = build_model(m, cfg, d, seed=seed, stage1=models["ASEN_g"])
        histories[m] = train(m, models[m], d, seed=seed, device=device, progress=progress, verbose=verbose)
        for r in reads:
            models.setdefault(r, models[m])
            scores[r] = evaluate(r, models[m], d, device)
    order = ["Random baseline", *METHODS, "ASEN_g after stage 2", "ASEN_l (whole image)", "ASEN_full"]
    scores = {m: scores[m] for m in order if m in scores}
    attention = ({m: attention_scores(models[m], d, "test", device) for m in ATTENTION_METHODS}
                 if d.has_truth else {})
    study = detail_study(d, seed, progress, device, verbose=verbose) if cfg.detail_epochs > 0 else None
    return report(d, scores, models, histories, attention, study)
