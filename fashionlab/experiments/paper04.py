"""Notebook 04's experiment: part-guided attribute search (paper 04, Ak et al., ``04_part_guided_attribute_search``).

``part-search`` (§7, Fig. 6, Table 2; §7.5; §7.6)
    Methods ``Classic``, ``w/o parts & ranking``, ``w/o parts``, ``Proposed`` (§7 "Baselines"); metrics
    ``top-5/10/20 direct`` (Fig. 6 (a): search by the query image) and ``top-5/10/20 manipulation`` (Fig. 6 (b):
    one random special attribute of the query changed to another value), per manipulated attribute
    ``top-20 manipulation`` (Table 2). A hit is a gallery image with *exactly* the demanded value of every
    attribute (:func:`fashionlab.search.topk_retrieval_accuracy`).

    * ``Proposed``: :class:`~fashionlab.models.PartSearchNet` (Fig. 3): general path, "Extract Parts?" head and one
      RoI-pooled branch per special attribute fed by its part from jump detection (§4.3,
      :func:`fashionlab.parts.extract_parts_batch`), trained as §6 says: first ``L_attribute`` (Eq. 1-2), then
      ``L_attribute + L_triplet`` (Eq. 3). At test time the head's own prediction decides the case.
    * ``w/o parts``: the same network with every branch on the whole conv map (``use_parts=False``), same schedule.
    * ``w/o parts & ranking``: the same without parts and without ``L_triplet`` (``L_attribute`` throughout).
    * ``Classic``: a plain multi-attribute classifier (:class:`~fashionlab.models.AttributeClassifierNet`) trained
      with ``L_attribute``; images are searched by their recognised attributes (softmax vectors), and a
      manipulation replaces the changed attribute's vector by the training images' mean for the new value (§7:
      "attributes of the query image are recognized ... Using the training set, the representation is changed").

    Search is Eq. 4 over the ``S + 1`` L2-normalised signatures; manipulation replaces the changed attribute's
    signature by its prototype, the mean training signature of the new value (§4.6).

    Extra rows: ``Proposed, regressed parts`` and ``Proposed, ground-truth parts`` (the trained Proposed network
    fed the parts of §7.5's regressor or the renderer's true boxes at test time: how much the part quality
    matters); ``part IoU`` and ``part hit rate`` (IoU >= 0.5) per part for ``Jump detection`` and for
    ``Regression (N images)`` (§7.5: a :class:`~fashionlab.parts.PartBoxRegressor` trained on N training images
    with true boxes), on the test images; ``Extract-Parts accuracy`` (the head of ``Proposed`` and jump
    detection's own rule, against the true case); ``recognition accuracy`` per attribute (not a table of the
    paper, which does no recognition experiment; it explains the Classic row). §7.6's extraction rates (images/s)
    are in the notes.

Fairness: every method trains on the same images in the same order with the same trunk (the mode's: SmallCNN at
output stride 8, or AlexNet up to conv5 in ``full``), optimiser, schedule and number of epochs (``epochs + stage2_epochs``; ``w/o parts`` and ``w/o parts & ranking``
share their first ``epochs``, which are identical by construction). All methods are scored on the same queries,
gallery and manipulations.

Data: FashionSynth's ``shop`` preset (:mod:`fashionlab.synth.shop`) with a design catalogue (so exact matches
exist), rendered at ``image_size`` (where jump detection runs) and seen by the networks at ``input_size``.
Attributes that do not apply (a skirt's collar) count as one more value, "n/a", when matching; they are not
trained on. ``--data`` runs on a real ADDE-layout folder (Shopping100k's split files with its images; not
public, docs/formats.md §5.6): no ground truth there, so the case target is jump detection's rule and the part
rows are skipped. FashionSynth's images in ``quick`` and ``default`` mode are decoded into memory; with ``--data``
and in ``full`` mode (or ``FASHIONLAB_STREAM=1``) they are streamed from disk: training, the signature passes and
§4.3's jump detection (one pass per split, keeping only the parts) read them batch by batch in ``DataLoader``
workers (:class:`ShopSearchData`), with the same numbers.

The recipe, step by step (a notebook calls the same steps): :func:`load_data` → :func:`build_model` →
:func:`train` (``engine.fit`` with the model's own ``.loss``, two stages, each cached under
``data/checkpoints/part-search/``) → :func:`evaluate` → :func:`report`; :func:`part_search` is those steps in order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .paper04_data import ShopSearchData, shop_data
from .paper04_tables import PAPER_NOTE, paper_rows
from .registry import Result, added_field, register, with_start

__all__ = ["METHODS", "PART_OF", "KS", "PartSearchConfig", "PART_SEARCH_CONFIGS", "ShopSearchData", "shop_data",
           "load_data", "build_backbone", "build_model", "Stage", "schedule", "training_step", "epoch_batches",
           "cache_key", "train", "embed", "class_prototypes", "manipulation_protocol", "evaluate_search",
           "recognition_accuracy", "SearchEvaluation", "evaluate", "train_regressor", "PartStudy", "study_parts",
           "part_scores", "extraction_rates", "PartSearchResult", "report", "paper_rows", "part_search"]


METHODS = ("Classic", "w/o parts & ranking", "w/o parts", "Proposed")
#: §6: which part feeds each special attribute's branch (pattern and colour: the chest = torso; length: the
#: hem has no part of §4.3, so the whole map).
PART_OF = {"collar": ("collar",), "colour": ("torso",), "fastening": ("fastening",), "length": (),
           "pattern": ("torso",), "sleeve_length": ("left_sleeve", "right_sleeve")}
PAPER_DATASET = "Shopping100k (real shop images, paper 04)"


@dataclass(frozen=True)
class PartSearchConfig:
    """Sizes and settings of the ``part-search`` experiment per mode (the logic is the same in every mode).

    Kept from the paper: the two-path network of Fig. 3 with one branch per special attribute, RoI pooling of
    the parts from the conv map, softmax cross-entropy per attribute (Eq. 1-2), the triplet ranking loss on
    every signature (Eq. 3) with §6's sampling, the two-stage schedule (``L_attribute``, then
    ``L_attribute + L_triplet``), Eq. 4 search over normalised signatures, prototype manipulation, §7's top-k
    protocol with one random special-attribute change per query. Changed for a CPU: a SmallCNN from scratch
    (AlexNet with ImageNet weights in the paper; we have no weights and no time), 80 px inputs, 64-d signatures,
    Adam at ``lr`` (SGD at 0.01 in the paper), ``epochs`` + ``stage2_epochs`` epochs (30 + unknown in the paper)
    with the second stage at half the learning rate (§6 keeps "the representations that is learned from the first
    optimization"; every method gets the same two-stage schedule, Classic and w/o parts & ranking without L_triplet),
    margin 0.3 (not given in the paper) on distances between unit vectors; ``rounds`` random manipulations per
    query (the paper draws one) to have more scored searches from a small query set.

    ``backbone``/``stage``: the trunk. ``smallcnn`` (quick, default) is a SmallCNN of ``width`` at output
    stride 8; ``full`` uses the paper's AlexNet cut after conv5's ReLU (``alexnet``, ``conv5``: the conv5 map the
    parts are RoI-pooled from, 256 x 13 x 13 at 224 px, stride 16; after pool5 it would be 6 x 6, too coarse for
    a collar) at 224 px, torchvision's AlexNet input (the original 227 px gives the same 13 x 13 map).
    ``pretrained``: ``scratch`` or ``imagenet`` (the paper's start; torchvision backbones only).
    """

    num_images: int
    designs: int
    image_size: int  # rendered size: jump detection runs here
    input_size: int  # what the networks see
    width: int
    epochs: int  # stage 1: L_attribute
    stage2_epochs: int  # stage 2: L_attribute + L_triplet
    batch: int = 64
    lr: float = 1e-3
    train_fraction: float = 0.4
    query_fraction: float = 0.1
    dim: int = 64
    hidden: int = 256
    pool: int = 3
    margin: float = 0.3
    rounds: int = 5
    regressor_images: int = 64
    regressor_epochs: int = 60
    regressor_size: int = 64
    # the trunk (added fields: left out of the trained-model cache key at their defaults)
    backbone: str = added_field("smallcnn")
    stage: str | None = added_field(None)
    pretrained: str = added_field("scratch")  # "scratch" or "imagenet" (torchvision backbones only)


PART_SEARCH_CONFIGS = {
    "quick": PartSearchConfig(num_images=480, designs=160, image_size=96, input_size=64, width=8, epochs=1,
                              stage2_epochs=1, regressor_images=32, regressor_epochs=10, rounds=2,
                              train_fraction=0.5, query_fraction=0.2),
    "default": PartSearchConfig(num_images=7200, designs=3000, image_size=128, input_size=80, width=24, epochs=8,
                                stage2_epochs=8),
    # a GPU: the paper's AlexNet (conv1-conv5) at 224 px; images rendered (and parts found) at 128 px, upscaled
    "full": PartSearchConfig(num_images=24000, designs=10000, image_size=128, input_size=224, width=32, epochs=20,
                             stage2_epochs=20, regressor_epochs=100, backbone="alexnet", stage="conv5"),
}

KS = (5, 10, 20)
#: Images per batch of the evaluation passes (signatures, the §7.5 regressor's boxes when streaming).
EVAL_BATCH = 256
#: Test images §7.6's extraction rates are timed on.
RATE_IMAGES = 512

#: Methods trained without L_triplet in stage 2 (§7 "Baselines"); any other name (a student's network) gets it.
NO_RANKING = ("Classic", "w/o parts & ranking")
#: Stage 1 of "w/o parts & ranking" is stage 1 of "w/o parts" (same network, same loss): one cache entry.
SHARED_STAGE1 = {"w/o parts & ranking": "w/o parts"}


def _mode_of(cfg: PartSearchConfig) -> str:
    return next((m for m, c in PART_SEARCH_CONFIGS.items() if replace(c, pretrained=cfg.pretrained) == cfg), "custom")


# ----------------------------------------------------------------------------------------------------------
# 1. data
# ----------------------------------------------------------------------------------------------------------
def load_data(cfg: PartSearchConfig, data: Path | None = None, seed: int = 0, progress: bool = False,
              mode: str | None = None) -> ShopSearchData:
    """Step 1: the shop dataset (§3) ready for training and search: a real ADDE-layout folder ``data`` or
    FashionSynth's shop preset (rendered once), at two sizes, with jump detection's parts (§4.3). The images are
    decoded into memory, or streamed from disk for ``data`` and in ``full`` ``mode`` (default: the mode whose
    config ``cfg`` is; ``$FASHIONLAB_STREAM`` forces either; :class:`ShopSearchData`)."""
    root, desc = shop_data(cfg, data, seed, progress)
    return ShopSearchData(root, cfg, progress=progress, description=desc, mode=_mode_of(cfg) if mode is None else mode,
                          real=data is not None)


# ----------------------------------------------------------------------------------------------------------
# 2. model
# ----------------------------------------------------------------------------------------------------------
def build_backbone(cfg: PartSearchConfig):
    """The trunk: ``cfg.backbone`` cut at ``cfg.stage`` (:func:`fashionlab.models.build_backbone`). SmallCNN: of
    width ``cfg.width`` with output stride 8 (the last block's stride removed), so an 80 px input gives a 10 x 10
    conv map to pool the parts from (AlexNet's conv5 is 13 x 13 at 224 or 227 px, the ``full`` trunk)."""
    from ..models import build_backbone as make

    if cfg.backbone == "smallcnn" and cfg.pretrained == "scratch":
        return make("smallcnn", width=cfg.width, output_stride=8)
    return make(cfg.backbone, width=cfg.width, output_stride=8, stage=cfg.stage, pretrained=cfg.pretrained)


def build_model(method: str, cfg: PartSearchConfig, data: ShopSearchData, seed: int = 0):
    """Step 2: a fresh network for ``method`` (one of :data:`METHODS`), its initial weights a function of ``seed``
    (seeded here, so a model built in a notebook starts where the recipe's does). ``Proposed``: Fig. 3's
    :class:`~fashionlab.models.PartSearchNet`; ``w/o parts`` and ``w/o parts & ranking``: the same with every
    branch on the whole map; ``Classic``: :class:`~fashionlab.models.AttributeClassifierNet` (§7)."""
    from ..engine import seed_everything
    from ..models import AttributeClassifierNet, PartSearchNet

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    seed_everything(seed)
    gen = {a: data.num_values[a] for a in data.general}
    spe = {a: data.num_values[a] for a in data.special}
    if method == "Classic":
        return AttributeClassifierNet(build_backbone(cfg), gen, spe, hidden=cfg.hidden, pool=cfg.pool)
    part_of = {a: PART_OF.get(a, ()) for a in data.special}
    return PartSearchNet(build_backbone(cfg), gen, spe, part_of, data.part_names, dim=cfg.dim, hidden=cfg.hidden,
                         pool=cfg.pool, use_parts=method == "Proposed")


# ----------------------------------------------------------------------------------------------------------
# 3. training (§6): L_attribute, then L_attribute + L_triplet; the loss is the model's own .loss
# ----------------------------------------------------------------------------------------------------------
class Stage(NamedTuple):
    """One stage of §6's schedule: ``ranking`` adds L_triplet (Eq. 3); ``offset`` = epochs trained before it."""

    stage: int
    ranking: bool
    epochs: int
    offset: int
    lr: float


def schedule(method: str, cfg: PartSearchConfig) -> list[Stage]:
    """§6: ``cfg.epochs`` of ``L_attribute`` (Eq. 1-2), then ``cfg.stage2_epochs`` at half the learning rate with
    ``L_triplet`` added, except for the methods of :data:`NO_RANKING`. Stages without epochs are left out."""
    stages = [Stage(1, False, cfg.epochs, 0, cfg.lr),
              Stage(2, method not in NO_RANKING, cfg.stage2_epochs, cfg.epochs, cfg.lr * 0.5)]
    return [s for s in stages if s.epochs > 0]


def training_step(data: ShopSearchData, ranking: bool, device, margin: float):
    """``fit``'s step: a batch of training image ids → flipped, normalised images with their parts, labels and
    case → ``model.loss(...)`` (:meth:`~fashionlab.models.PartSearchNet.loss`: Eq. 1-3)."""
    import torch

    def step(model, ids):
        ids = ids.cpu().numpy()
        x, boxes, present = data.batch("train", ids, train=True, device=device)
        labels = {a: torch.from_numpy(v).to(device) for a, v in data.train_labels("train", ids).items()}
        case = torch.from_numpy(data.case["train"][ids]).to(device)
        return model.loss(x, boxes, present, labels, case, ranking=ranking, margin=margin)

    return step


def epoch_batches(data: ShopSearchData, batch: int, device=None):
    """Mini-batches of training image ids, a fresh shuffle per epoch (``fit`` seeds it from the epoch); when the
    images stream, their pixels are decoded ahead in ``DataLoader`` workers (``sources["train"].prefetch``,
    pinned for a CUDA ``device``)."""
    import torch

    n = len(data.labels["train"])
    return lambda epoch: data.sources["train"].prefetch(list(torch.randperm(n).split(batch)), device=device)


def cache_key(method: str, stage: Stage, cfg: PartSearchConfig, data: ShopSearchData, seed: int) -> dict:
    """The trained-model cache key of one stage (``engine.fit(cache_key=...)``)."""
    return {"experiment": "part-search", "method": SHARED_STAGE1.get(method, method) if stage.stage == 1 else method,
            "mode": _mode_of(cfg), "seed": seed, "config": cfg, "dataset": data.description, "stage": stage.stage,
            "ranking": stage.ranking}


def train(method: str, model, data: ShopSearchData, cfg: PartSearchConfig | None = None, seed: int = 0, device=None,
          progress: bool = False, verbose: bool = True):
    """Step 3: train ``model`` as ``method`` through :func:`fashionlab.engine.fit`, one call per :func:`schedule`
    stage (a fresh Adam each), each stage kept in the trained-model cache and loaded on a re-run. ``device``:
    where to train (None: the model's device). Returns the :class:`~fashionlab.engine.History` (one record per
    epoch, with its ``stage``); the model is left in eval mode."""
    import torch

    from ..engine import History, fit

    cfg = cfg or data.cfg
    dev = device if device is not None else next(model.parameters()).device
    model.to(dev)
    records = []
    for st in schedule(method, cfg):
        opt = torch.optim.Adam(model.parameters(), lr=st.lr)
        h = fit(model, training_step(data, st.ranking, dev, cfg.margin), epoch_batches(data, cfg.batch, dev), opt,
                st.epochs, device=dev, seed=seed + st.offset, progress=progress, verbose=verbose,
                cache_key=cache_key(method, st, cfg, data, seed))
        records += [{**r, "epoch": r["epoch"] + st.offset, "stage": st.stage} for r in h]
    model.eval()
    return History(records)


# ----------------------------------------------------------------------------------------------------------
# 4. evaluation: signatures, prototypes, Eq. 4 search, §7's protocol
# ----------------------------------------------------------------------------------------------------------
def embed(model, data: ShopSearchData, split: str, ids=None, parts="jump", device=None,
          batch: int | None = None) -> dict:
    """Signatures ``{"general" and each special attribute: (N, d) CPU tensor}`` of images ``ids`` of ``split``
    (through :func:`fashionlab.engine.extract_features`), plus ``"_logits"`` (``{attribute: (N, K)}``) and, for the
    two-path networks, ``"_case"`` (the "Extract Parts?" head's case index). ``parts``: "jump" (jump detection, the
    paper), "gt" (true boxes) or a ``(boxes, present)`` pair of arrays for ``ids``. Streamed images are read
    ``batch`` at a time, ahead, by ``data.sources[split].prefetch``."""
    import torch

    from ..engine import extract_features
    from ..models import AttributeClassifierNet

    dev = device if device is not None else next(model.parameters()).device
    ids = np.arange(len(data.labels[split])) if ids is None else np.asarray(ids)
    batch = EVAL_BATCH if batch is None else batch
    classic = isinstance(model, AttributeClassifierNet)

    def fn(pos):
        if isinstance(parts, tuple):
            x, _, _ = data.batch(split, ids[pos], device=dev, parts="none")
            b, p = torch.from_numpy(parts[0][pos]).to(dev), torch.from_numpy(parts[1][pos]).to(dev)
        else:
            x, b, p = data.batch(split, ids[pos], device=dev, parts=parts)
        if classic:
            logits = model(x)
            return {"sig": model.signatures(x, logits), "logits": logits}
        out = model(x, b, p)
        return {"sig": out.signatures, "logits": out.logits, "case": out.case_logits.argmax(1)}

    positions = [np.arange(s, min(s + batch, len(ids))) for s in range(0, len(ids), batch)]

    def staged():  # each batch's positions once its images are staged (the list itself for the cache)
        for _, pos in zip(data.sources[split].prefetch([ids[p] for p in positions], device=dev), positions):
            yield pos

    got = extract_features(fn, staged(), device=dev, model=model, out_device="cpu")
    out = dict(got["sig"])
    out["_logits"] = got["logits"]
    if "case" in got:
        out["_case"] = got["case"].numpy()
    return out


def _signatures(emb: dict) -> dict:
    return {k: v for k, v in emb.items() if not k.startswith("_")}


def class_prototypes(train_emb: dict, data: ShopSearchData) -> dict:
    """§4.6: the prototype (mean training signature) of every value of every special attribute."""
    from ..search import prototypes

    lab = data.labels["train"]
    return prototypes(_signatures(train_emb), {a: lab[:, data.attributes.index(a)] for a in data.special})


def manipulation_protocol(data: ShopSearchData, rounds: int, seed: int = 0):
    """§7's search strategy, ``rounds`` times: for each query, one random special attribute changed to another of
    its (real, not "n/a") values such that some gallery image has the demanded combination. Returns the query
    rows ``(R·Q,)`` (positions in ``data.queries``), attribute columns, new values and demanded target labels."""
    from ..search import random_manipulations

    q = data.match_labels["test"][data.queries]
    g = data.match_labels["test"][data.gallery]
    allowed = {data.attributes.index(a): range(data.num_values[a]) for a in data.special}
    rows, cols, vals, targets = [], [], [], []
    for r in range(rounds):
        idx, val, tgt = random_manipulations(q, g, rng=np.random.default_rng([seed, 4, r]), manipulable=allowed)
        keep = idx >= 0
        rows.append(np.flatnonzero(keep))
        cols.append(idx[keep])
        vals.append(val[keep])
        targets.append(tgt[keep])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), np.concatenate(targets)


def evaluate_search(test_emb: dict, protos: dict, data: ShopSearchData, protocol, ks=KS) -> dict:
    """Top-k accuracy (§7): ``"direct"`` (Fig. 6 (a)) and ``"manipulation"`` (Fig. 6 (b), with per-attribute
    groups for Table 2) from test-split signatures ``test_emb`` of every test image."""
    import torch

    from ..search import manipulate, signature_distance, topk_retrieval_accuracy

    sig = _signatures(test_emb)
    qs = {k: v[torch.from_numpy(data.queries)] for k, v in sig.items()}
    gs = {k: v[torch.from_numpy(data.gallery)] for k, v in sig.items()}
    glab = data.match_labels["test"][data.gallery]
    qlab = data.match_labels["test"][data.queries]
    direct = topk_retrieval_accuracy(signature_distance(qs, gs), qlab, glab, ks)
    rows, cols, vals, targets = protocol
    base = {k: v[torch.from_numpy(rows)] for k, v in qs.items()}
    for j in np.unique(cols):
        a = data.attributes[j]
        base = manipulate(base, a, np.where(cols == j, vals, 0), protos, rows=np.flatnonzero(cols == j))
    man = topk_retrieval_accuracy(signature_distance(base, gs), targets, glab, ks, groups=cols)
    return {"direct": direct, "manipulation": man}


def recognition_accuracy(test_emb: dict, data: ShopSearchData) -> dict:
    """Per-attribute top-1 accuracy on the labelled test images (not reported by the paper)."""
    lab = data.labels["test"]
    out = {}
    for j, a in enumerate(data.attributes):
        y = lab[:, j]
        keep = y >= 0
        pred = test_emb["_logits"][a].argmax(1).numpy()
        out[a] = float((pred[keep] == y[keep]).mean()) if keep.any() else float("nan")
    return out


# ----------------------------------------------------------------------------------------------------------

@dataclass
class SearchEvaluation:
    """What :func:`evaluate` returns for one network: ``results`` (:func:`evaluate_search`: ``"direct"`` and
    ``"manipulation"`` top-k accuracies, fractions, with ``"counts"``), the test ``embeddings`` (:func:`embed`), the
    §4.6 ``prototypes`` from the training signatures, and per-attribute ``recognition`` accuracy."""

    method: str
    results: dict
    embeddings: dict
    prototypes: dict
    recognition: dict

    def top(self, k: int = 20, kind: str = "manipulation") -> float:
        """Top-``k`` accuracy (%) of ``kind`` ("direct" or "manipulation")."""
        return 100 * float(self.results[kind]["overall"][k])


def evaluate(method: str, model, data: ShopSearchData, device=None, protocol=None, parts="jump", prototypes=None,
             seed: int = 0) -> SearchEvaluation:
    """Step 4: §7's search experiment for a trained network: prototypes (§4.6) from its training signatures (jump
    detection's parts, as it was trained), test signatures with ``parts``, then direct and manipulated Eq. 4 search
    (``protocol``: :func:`manipulation_protocol`, drawn with ``seed`` when not given)."""
    if protocol is None:
        protocol = manipulation_protocol(data, data.cfg.rounds, seed)
    if prototypes is None:
        prototypes = class_prototypes(embed(model, data, "train", device=device), data)
    emb = embed(model, data, "test", parts=parts, device=device)
    return SearchEvaluation(method, evaluate_search(emb, prototypes, data, protocol), emb, prototypes,
                            recognition_accuracy(emb, data))


# ----------------------------------------------------------------------------------------------------------
# §7.5: how good are the parts? jump detection, a regressor trained on a few images, the true boxes
# ----------------------------------------------------------------------------------------------------------
def train_regressor(data: ShopSearchData, seed: int = 0, device=None):
    """§7.5: a :class:`~fashionlab.parts.PartBoxRegressor` trained (``engine.fit``, cached) on ``cfg.regressor_images``
    training images with their true part boxes (at ``cfg.regressor_size`` px). Returns ``(model, predict, ids)``
    where ``predict(split, ids)`` gives ``(boxes at input_size (n, P, 4), present (n, P), per-image dicts at
    image_size)``: in one batch from the in-memory images, in prefetched batches of :data:`EVAL_BATCH` when they
    stream."""
    import torch
    import torch.nn.functional as F

    from ..engine import extract_features, fit, seed_everything
    from ..parts import PartBoxOutput, PartBoxRegressor, decode_part_boxes, part_box_loss

    cfg = data.cfg
    if not data.has_gt:
        raise ValueError("the §7.5 regressor needs true part boxes (FashionSynth's ground truth)")
    dev = device if device is not None else torch.device("cpu")
    seed_everything(seed)
    rng = np.random.default_rng([seed, 75])
    ids = np.sort(rng.choice(len(data.labels["train"]), min(cfg.regressor_images, len(data.labels["train"])),
                             replace=False))
    size = cfg.regressor_size

    def images(split, i):
        x = data.images[split][torch.from_numpy(np.asarray(i))].float() / 255.0
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    target = torch.from_numpy(data.gt_boxes["train"][ids] / cfg.input_size)
    present = torch.from_numpy(data.gt_present["train"][ids]).float()
    model = PartBoxRegressor(len(data.part_names))
    x = images("train", ids)
    chunks = [(x[s:s + 16], target[s:s + 16], present[s:s + 16]) for s in range(0, len(ids), 16)]

    def step(net, batch):
        xb, tb, pb = batch
        return part_box_loss(net(xb), tb, pb)

    fit(model, step, chunks, torch.optim.Adam(model.parameters(), lr=3e-3), cfg.regressor_epochs, device=dev,
        seed=seed, progress=False, verbose=False,
        cache_key={"experiment": "part-search", "method": "part regressor", "mode": _mode_of(cfg), "seed": seed,
                   "config": cfg, "dataset": data.description, "images": ids.tolist()})
    model.eval()

    def predict(split, i):
        i = np.asarray(i)
        chunks = data.chunks(split, i, EVAL_BATCH) if data.streams else [i]  # the cache: one batch, as always
        batches = (images(split, c) for c in data.sources[split].prefetch(chunks, device=dev))
        out = PartBoxOutput(*extract_features(lambda b: tuple(model(b)), batches, device=dev, model=model,
                                              out_device="cpu"))
        dicts = decode_part_boxes(out, cfg.image_size, data.part_names)
        b, p = data.box_array(dicts, cfg.input_size / cfg.image_size)
        return b, p, dicts

    return model, predict, ids


def part_scores(predictions: list[dict], data: ShopSearchData, split: str = "test", ids=None) -> dict:
    """:func:`fashionlab.parts.part_hit_rate` of per-image part dicts (at ``image_size``) against the truth."""
    from ..parts import SYNTH_PART_NAMES, part_hit_rate

    recs = data.records[split]
    ids = range(len(recs)) if ids is None else ids
    return part_hit_rate(predictions, [recs[i]["parts"] for i in ids], data.part_names, gt_names=SYNTH_PART_NAMES)


@dataclass
class PartStudy:
    """§7.5 on FashionSynth: ``stats`` (:func:`part_scores` of jump detection and of the regressor, keyed by row
    name), ``evaluations`` of the trained Proposed network fed the regressed or the true parts at test time."""

    stats: dict
    evaluations: dict
    regressor_images: int
    seconds: float


def study_parts(data: ShopSearchData, proposed, evaluation: SearchEvaluation, protocol, seed: int = 0,
                device=None) -> PartStudy:
    """Score jump detection's and §7.5's regressed parts against the true boxes, and search with the trained
    Proposed network fed the regressed or the true parts (prototypes: ``evaluation``'s, from jump detection)."""
    t0 = time.perf_counter()
    _, predict, reg_ids = train_regressor(data, seed, device)
    seconds = time.perf_counter() - t0
    rb, rp, rdicts = predict("test", np.arange(len(data.labels["test"])))
    stats = {"Jump detection": part_scores([j.parts for j in data.jump["test"]], data),
             f"Regression ({len(reg_ids)} images)": part_scores(rdicts, data)}
    evals = {name: evaluate("Proposed", proposed, data, device, protocol, parts=parts,
                            prototypes=evaluation.prototypes)
             for name, parts in (("Proposed, regressed parts", (rb, rp)), ("Proposed, ground-truth parts", "gt"))}
    return PartStudy(stats, evals, len(reg_ids), seconds)


def extraction_rates(data: ShopSearchData, models: dict, device=None) -> dict:
    """§7.6: images per second of Classic's and Proposed's signature extraction (parts given) on up to
    :data:`RATE_IMAGES` test images (held in memory while timed, also when the images stream), and of jump
    detection (measured while the data was loaded)."""
    import torch

    from ..search import extraction_rate

    cfg = data.cfg
    dev = device if device is not None else next(models["Proposed"].parameters()).device
    xs = data.inputs["test"][: min(RATE_IMAGES, len(data.inputs["test"]))]

    def prep(x):
        return ((x.float() - data._mean) / data._std).to(dev)

    n_parts = len(data.part_names)
    full = torch.tensor([0.0, 0.0, float(cfg.input_size), float(cfg.input_size)])
    every = lambda x: torch.ones(len(x), n_parts, dtype=torch.bool, device=dev)  # noqa: E731
    return {
        "Classic": extraction_rate(lambda x: models["Classic"].signatures(prep(x)), xs, batch=64),
        "Proposed": extraction_rate(lambda x: models["Proposed"](prep(x), full.expand(len(x), n_parts, 4).to(dev),
                                                                 every(x)), xs, batch=64),
        "jump detection": (len(data.jump["train"]) + len(data.jump["test"])) / max(data.jump_seconds, 1e-9),
    }


# ----------------------------------------------------------------------------------------------------------
# 5. report
# ----------------------------------------------------------------------------------------------------------
@dataclass
class PartSearchResult(Result):
    """``part-search``'s typed result: the rows and, for the notebook, the ``data``, its ``config``, the trained
    ``models`` and their ``histories``, the ``evaluations`` (:class:`SearchEvaluation` per method, plus
    "Proposed, regressed parts" and "Proposed, ground-truth parts"), the manipulation ``protocol``, the §7.5
    ``parts`` study and the §7.6 extraction ``rates`` (images/s)."""

    data: ShopSearchData | None = None
    config: PartSearchConfig | None = None
    models: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    evaluations: dict = field(default_factory=dict)
    protocol: tuple | None = None
    parts: PartStudy | None = None
    rates: dict = field(default_factory=dict)


def _pct(x) -> float:
    return round(100 * float(x), 2)


def _search_rows(method: str, res: dict, data: ShopSearchData) -> list[dict]:
    rows = []
    for kind in ("direct", "manipulation"):
        for k in KS:
            rows.append({"method": method, "metric": f"top-{k} {kind}", "value": _pct(res[kind]["overall"][k])})
    for j, a in enumerate(data.attributes):
        if j in res["manipulation"]:
            rows.append({"method": method, "metric": "top-20 manipulation", "attribute": a,
                         "value": _pct(res["manipulation"][j][20])})
    return rows


def report(data: ShopSearchData, models: dict, histories: dict, evaluations: dict, protocol,
           parts: PartStudy | None, rates: dict, device=None) -> PartSearchResult:
    """Step 5: the results rows (Fig. 6 top-k, Table 2 per attribute, recognition accuracy, §7.5 part rows,
    "Extract-Parts" accuracy), the paper's rows and the notes, in a :class:`PartSearchResult`."""
    cfg = data.cfg
    evals = dict(evaluations)
    rows = [r for m in METHODS for r in _search_rows(m, evals[m].results, data)]
    notes, part_rows = [], []
    if parts is not None:
        evals.update(parts.evaluations)
        for name, st in parts.stats.items():
            for p in list(data.part_names) + ["overall"]:
                if st[p]["n"]:
                    part_rows.append({"method": name, "metric": "part IoU", "attribute": p,
                                      "value": _pct(st[p]["mean_iou"])})
                    part_rows.append({"method": name, "metric": "part hit rate", "attribute": p,
                                      "value": _pct(st[p]["hit_rate"])})
        for name, ev in parts.evaluations.items():
            rows += _search_rows(name, ev.results, data)
        true_case = data.case["test"]
        rows.append({"method": "Proposed", "metric": "Extract-Parts accuracy",
                     "value": _pct((evals["Proposed"].embeddings["_case"] == true_case).mean())})
        rows.append({"method": "Jump detection", "metric": "Extract-Parts accuracy",
                     "value": _pct((data.jump_case["test"] == true_case).mean())})
        notes.append(f"§7.5 regressor: trained on {parts.regressor_images} training images with true boxes for "
                     f"{cfg.regressor_epochs} epochs at {cfg.regressor_size} px ({parts.seconds:.1f} s).")
    for m in METHODS:
        for a, v in evals[m].recognition.items():
            rows.append({"method": m, "metric": "recognition accuracy", "attribute": a, "value": _pct(v)})
    rows += part_rows
    dev_type = getattr(device, "type", str(device or "cpu"))
    res = evals["Proposed"].results
    trained = {m: sum(histories[m]["seconds"]) for m in METHODS}
    notes += [
        f"Queries {len(data.queries)}, gallery {len(data.gallery)}; direct retrieval scored "
        f"{res['direct']['counts']['overall']} queries (the others have a missing label or no exact match in the "
        f"gallery); manipulation: {cfg.rounds} random changes per query, {res['manipulation']['counts']['overall']} "
        "scored.",
        f"§7.6 extraction rates on {dev_type} (images/s, batch 64, {cfg.input_size} px): Classic "
        f"{rates['Classic']:.0f}, Proposed {rates['Proposed']:.0f} (parts given); jump detection "
        f"{rates['jump detection']:.0f} images/s at {cfg.image_size} px (batched, 256 per call).",
        "Training seconds: " + ", ".join(f"{m} {trained[m]:.0f}" for m in METHODS)
        + " (the two whole-map methods share stage 1).",
        PAPER_NOTE,
    ]
    return PartSearchResult(rows=rows, paper_rows=paper_rows(), dataset=data.description, device=dev_type,
                            notes=notes, data=data, config=cfg, models=models, histories=histories,
                            evaluations=evals, protocol=protocol, parts=parts, rates=rates)


# ----------------------------------------------------------------------------------------------------------
# the experiment: the steps in order
# ----------------------------------------------------------------------------------------------------------
@register("part-search", "Paper 04: part-guided attribute search (Fig. 6, Table 2; §7.5 part extraction)",
          notebook="04_part_guided_search.ipynb")
def part_search(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
                config: PartSearchConfig | None = None, dataset: ShopSearchData | None = None) -> PartSearchResult:
    """Every method of §7 trained and searched on the same data; ``dataset``: an already loaded
    :func:`load_data` result for this config (a notebook's), so the images are not decoded twice."""
    cfg = with_start(config or PART_SEARCH_CONFIGS[mode], "part-search", mode)
    if dataset is not None and dataset.cfg != cfg:
        raise ValueError("dataset= was loaded with another config than this run's")
    d = dataset if dataset is not None else load_data(cfg, data, seed, progress, mode=mode)
    protocol = manipulation_protocol(d, cfg.rounds, seed)
    models, histories, evals = {}, {}, {}
    for m in METHODS:
        models[m] = build_model(m, cfg, d, seed)
        histories[m] = train(m, models[m], d, cfg, seed, device, progress)
        evals[m] = evaluate(m, models[m], d, device, protocol)
    parts = study_parts(d, models["Proposed"], evals["Proposed"], protocol, seed, device) if d.has_gt else None
    rates = extraction_rates(d, models, device)
    return report(d, models, histories, evals, protocol, parts, rates, device)
