"""Notebook 05's experiment: M3-Net, attribute- and class-specific representations (paper 05,
``05_m3net_attribute_class_duet.txt``).

``m3net`` (paper Tables 2 and 3)
    Methods ``ASEN`` (ASEN_g of notebook 03: ASA + ACA, trained on triplets of the single-label split),
    ``M3-Net_a``, ``M3-Net_c`` and ``M3-Net`` (:class:`~fashionlab.models.M3Net`, variants ``attribute``,
    ``class``, ``full``, trained with Eq. 11), on two datasets:

    * ``multi-label``: FashionSynth's multi-label preset (:mod:`fashionlab.synth.multilabel`), DeepFashion's
      attribute benchmark in miniature (groups texture, shape, part; several classes per group per garment),
      read through :func:`fashionlab.datasets.read_deepfashion` (the list files) and
      :func:`~fashionlab.datasets.read_asen_split` (its ASEN-style split). ASEN trains on the split's
      ``label_train.txt`` (one class per group per image, as the real DeepFashion split files keep one); M3-Net
      on the full multi-label rows of ``list_attr_img.txt``.
    * ``FashionAI``: FashionSynth's FashionAI preset (one attribute labelled per training image, one value per
      attribute: classes = values), as in notebooks 00-03.

    Metrics (:func:`fashionlab.metrics.ranking_stats`), per attribute and overall (query-weighted) on the test
    split: ``MAP@all`` (AP over the whole ranked candidate list), ``MAP@100`` (AP of the top 100, normalised by
    ``min(R, 100)``), ``Recall@100`` (share of the R relevant candidates in the top 100). Queries and candidates
    of attribute ``n`` are the test split's query and candidate images that have a class of ``n``; a candidate is
    relevant when it shares at least one class of ``n`` with the query (multi-label relevance; on FashionAI, the
    same value). Ranking: ASEN by cosine of its attribute-specific embeddings; the M3-Nets as §4.2 prescribes,
    class-specific space first, then attribute space (:func:`~fashionlab.models.class_first_scores`, with the
    high-likelihood classes of threshold γ = 0.8, :func:`~fashionlab.models.predicted_classes`).

    Extra rows: ``M3-Net (attribute space only)`` and ``M3-Net_a (attribute space only)`` (φ_n ranked by cosine,
    no class tier: how much of the gain is the class-first protocol), ``MAP@all, queries with 2+ classes`` and
    ``MAP@all (all query classes)`` (the stricter relevance "candidate has every class of the query", paper
    Fig. 4) on the multi-label preset; ``classes excluded at γ`` (the §3.1 "94%") and ``class prediction F1 at
    gamma`` (micro-F1 of those classes against the truth, weighted by the test images of each attribute); the
    attention study: ``attention mass in class region`` and ``attention area (80% of mass)`` of the attribute-level attention α_n and the class-level attention
    (``ᾱ_m ⊙ α_n`` normalised: where φ̄_m looks on ψ) of M3-Net, against FashionSynth's per-class region boxes.

Fairness: one backbone family for all (SmallCNN, output stride 8, last ReLU dropped, as notebook 03), the same
number of epochs and triplets per epoch, the same optimiser and schedule (Adam, ×0.975 per epoch as §4.2) at the
learning rate that suited each family in calibration (:class:`M3Config`), model selection by validation MAP@all. ASEN keeps notebook 03's margin (0.2); the M3-Nets use the
paper's ζ = 0.4 and λ = 1.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .registry import Outcome, register

__all__ = ["METHODS", "M3Config", "M3_CONFIGS", "M3Data", "multilabel_data", "fashionai_data", "build_method",
           "dataset_config", "train_method", "embed_m3", "embed_asen", "evaluate", "attention_study", "paper_rows", "m3net"]

METHODS = ("ASEN", "M3-Net_a", "M3-Net_c", "M3-Net")
VARIANT = {"M3-Net_a": "attribute", "M3-Net_c": "class", "M3-Net": "full"}
DATASETS = ("multi-label", "FashionAI")
METRICS = ("MAP@all", "MAP@100", "Recall@100")


@dataclass(frozen=True)
class M3Config:
    """Sizes and settings of the ``m3net`` experiment per mode (the logic is the same in every mode).

    Kept from the paper (§3.2, §4.2): ζ = 0.4 on cosine similarity, λ_M = λ_CC = λ_CI = 1, γ = 0.8, the
    learning rate decayed by 0.975 per epoch, triplets resampled every epoch, ``w_p`` = 1 on FashionAI.
    Changed for a CPU: SmallCNN from scratch (width ``width``; ResNet-50 without its last block, ImageNet
    weights, in the paper) giving ``C = 4·width`` channels, so the representations are ``C``-dimensional (1024
    in the paper); lr 3e-3 for the M3-Nets instead of 1e-4 (from scratch, few epochs: 3e-3 gave M3-Net_a and
    M3-Net 5-6 MAP@all points more than 1e-3 after 8 epochs while calibrating) and ``asen_lr`` 1e-3 for ASEN
    (notebook 03's; on the multi-label preset, 12 x 4096 triplets, ASEN reached 55.0 MAP@all at 1e-3 and 44.8 at
    3e-3), so each method trains at the better of the two rates it was tried with; a few thousand triplets per epoch instead of 40k;
    fewer epochs on FashionAI (``fai_epochs``) to fit the CPU budget. ``w_p`` on the
    multi-label preset is ``pos_weight`` (the paper's 100 is for DeepFashion's 1,000 classes with about 0.3%
    positives; ours have about one positive in six, see the notes). ``margin`` is ASEN's (0.2, notebook 03).
    """

    num_images: int  # multi-label preset
    image_size: int  # rendered = input size of every method
    fai_num_images: int  # FashionAI preset
    width: int
    epochs: int  # multi-label preset
    triplets_per_epoch: int
    batch: int  # triplets per step (3x as many images)
    lr: float  # the M3-Nets
    asen_lr: float = 1e-3  # ASEN (notebook 03's)
    fai_epochs: int | None = None  # FashionAI preset (default: epochs, triplets_per_epoch)
    fai_triplets_per_epoch: int | None = None
    lr_decay: float = 0.975
    cond_dim: int = 32
    mlp_hidden: int = 64
    dim: int = 64  # ASEN's embedding
    margin: float = 0.2  # ASEN
    zeta: float = 0.4  # M3-Net (Eq. 8)
    pos_weight: float = 4.0  # w_p, multi-label preset
    gamma: float = 0.8
    momentum: float = 0.9  # class prototypes
    k: int = 100
    datasets: tuple[str, ...] = DATASETS
    # backbone fields read by paper03.build_backbone
    backbone: str = "smallcnn"
    local_backbone: str | None = None
    local_width: int | None = None
    stage: str | None = None
    output_stride: int = 8
    final_relu: bool = False


M3_CONFIGS = {
    "quick": M3Config(num_images=600, image_size=48, fai_num_images=1000, width=8, epochs=1, triplets_per_epoch=256,
                      batch=32, lr=2e-3, asen_lr=2e-3, k=20),
    # a 2-core CPU, about 12 minutes: 4 x 12 epochs of 4096 triplets on the multi-label preset and 4 x 8 epochs of
    # 3072 on FashionAI. The methods are still improving after 20 epochs (calibration, lr 1e-3, 20 x 4096 on the
    # multi-label preset: M3-Net_a 77.9 and M3-Net 77.4 MAP@all, validation still rising; at 8 x 3072 they were
    # 61.8 and 59.4; at lr 3e-3, 20 x 4096: 82.6 and 78.8, so more epochs do not close the gap at this rate).
    "default": M3Config(num_images=12000, image_size=64, fai_num_images=16000, width=16, epochs=12,
                        triplets_per_epoch=4096, batch=32, lr=3e-3, fai_epochs=8, fai_triplets_per_epoch=3072),
    # a GPU: larger images and backbone, the paper's 1024-d representations and 40k triplets per epoch
    "full": M3Config(num_images=60000, image_size=224, fai_num_images=60000, width=32, epochs=30,
                     triplets_per_epoch=40000, batch=16, lr=1e-4, backbone="resnet50", stage="layer3",
                     cond_dim=512, mlp_hidden=512, dim=1024),
}


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------
class M3Data:
    """One dataset in the form every method needs.

    ``images[split]``: :class:`~fashionlab.experiments.paper03.TwoScaleImages` (one scale: the input);
    ``attributes``, ``num_classes`` (``M_n``), ``class_names``; ``class_attribute`` ``(K,)`` and ``offsets``
    (``N + 1``) place the ``K = Σ M_n`` classes side by side; ``train_positives`` ``(n_train, K)`` and
    ``train_labelled`` ``(n_train, N)`` (what M3-Net learns from); ``asen_labels`` (``(id, attribute, value)``
    rows of the single-label split, what ASEN learns from); ``eval_sets[split]``: per attribute ``n`` a dict
    ``q_ids``, ``q_lab`` ``(Q, M_n)`` bool, ``c_ids``, ``c_lab``. ``regions`` (multi-label preset): per test
    image id, ``{(n, m): box}`` of FashionSynth's class regions, and ``region_size`` the canvas they refer to.
    """

    def __init__(self, name, root, description, attributes, num_classes, class_names, splits, filenames,
                 train_positives, train_labelled, asen_labels, eval_sets, image_size, progress=False,
                 regions=None, region_size=None):
        from .paper03 import TwoScaleImages

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
        self.images = {s: TwoScaleImages(root, filenames[s], image_size, image_size, progress=progress,
                                         source=f"filenames_{s}.txt") for s in splits}
        self.regions, self.region_size = regions, region_size

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


def multilabel_data(cfg: M3Config, data: Path | None, seed: int, progress: bool = False) -> M3Data:
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
                  evals, cfg.image_size, progress, regions, size)


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


def fashionai_data(cfg: M3Config, seed: int, progress: bool = False) -> M3Data:
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
                  {s: sp.filenames for s, sp in splits.items()}, pos, labelled, lab, evals, cfg.image_size, progress)


# ----------------------------------------------------------------------------------------------------------
# models and training
# ----------------------------------------------------------------------------------------------------------
def build_method(method: str, cfg: M3Config, d: M3Data):
    """A fresh model of ``method``: ASEN_g (notebook 03) for ``ASEN``, :class:`~fashionlab.models.M3Net` of the
    matching variant for the others."""
    from ..models import ASENGlobal, M3Net
    from .paper03 import build_backbone

    if method == "ASEN":
        return ASENGlobal(build_backbone(cfg), len(d.attributes), embed_dim=cfg.dim, cond_dim=cfg.cond_dim)
    if method not in VARIANT:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    return M3Net(build_backbone(cfg), d.num_classes, variant=VARIANT[method], cond_dim=cfg.cond_dim,
                 mlp_hidden=cfg.mlp_hidden)


class _Batches:
    """Training batches per epoch: ASEN++ triplets of the single-label split (ASEN) or class-level triplets
    (:class:`~fashionlab.datasets.ClassTripletSampler`) of the multi-label rows (M3-Net)."""

    def __init__(self, method: str, cfg: M3Config, d: M3Data, seed: int):
        from ..datasets import AsenPPTripletSampler, ClassTripletSampler

        self.batch = cfg.batch
        if method == "ASEN":
            self.sampler = AsenPPTripletSampler(d.asen_labels, [int(m) for m in d.num_classes],
                                                num_triplets=cfg.triplets_per_epoch, seed=seed, skip_rare=True)
        else:
            self.sampler = ClassTripletSampler(d.train_positives, d.class_attribute, d.train_labelled,
                                               num_triplets=cfg.triplets_per_epoch, seed=seed)

    def __call__(self, epoch: int) -> list[np.ndarray]:
        t = self.sampler.triplets(epoch)
        return [t[s:s + self.batch] for s in range(0, len(t) - self.batch + 1, self.batch)]


def _m3_step(cfg: M3Config, d: M3Data, protos, dev, pos_weight: float):
    import torch
    import torch.nn.functional as F

    from ..models import m3net_loss

    images = d.images["train"]
    targets_all = torch.from_numpy(d.train_positives)

    def step(model, t):
        b = len(t)
        ids = t[:, :3].T.reshape(-1)
        x, _ = images.batch(ids, train=True, device=dev, hires=False)
        fmap = model.features(x)
        total, parts, acc = 0.0, torch.zeros(3, device=dev), 0.0
        for n in np.unique(t[:, 3]):
            r = np.flatnonzero(t[:, 3] == n)
            idx = np.concatenate([r, r + b, r + 2 * b])
            att = model.attribute_level(fmap[idx], int(n))
            lo, hi = d.offsets[n], d.offsets[n + 1]
            targets = targets_all[ids[idx]][:, lo:hi].to(dev)
            keys = torch.from_numpy(t[r, 4]).to(dev)
            cls = model.class_level(att.fmap, int(n), (keys - int(lo)).repeat(3))
            k = len(r)
            ea, ep, en = cls.embedding[:k], cls.embedding[k:2 * k], cls.embedding[2 * k:]
            both = torch.cat([keys, keys])
            if not bool(protos.seen[keys].all()):  # a class met for the first time starts from this batch
                protos.update(both, torch.cat([ea, ep]).detach())
            lo_ = m3net_loss(att.logits, targets, ea, ep, en, protos.get(keys), margin=cfg.zeta,
                             pos_weight=pos_weight)
            protos.update(both, torch.cat([ea, ep]).detach())
            w = k / b
            total = total + w * lo_.loss
            parts = parts + w * torch.stack([lo_.multilabel, lo_.prototypical, lo_.instance]).detach()
            acc += w * float((F.cosine_similarity(ea, ep) > F.cosine_similarity(ea, en)).float().mean())
        return total, {"L_M": parts[0], "L_CC": parts[1], "L_CI": parts[2], "acc": acc}

    return step


def dataset_config(cfg: M3Config, dataset: str) -> M3Config:
    """``cfg`` with the FashionAI preset's epochs and triplets when ``dataset`` is ``"FashionAI"``."""
    from dataclasses import replace

    if dataset != "FashionAI":
        return cfg
    return replace(cfg, epochs=cfg.fai_epochs or cfg.epochs,
                   triplets_per_epoch=cfg.fai_triplets_per_epoch or cfg.triplets_per_epoch)


def train_method(method: str, cfg: M3Config, d: M3Data, seed: int = 0, progress: bool = False):
    """Train ``method`` on ``d`` for ``cfg.epochs`` epochs (Adam, lr ×0.975 per epoch), keeping the epoch with
    the best validation MAP@all. ASEN: cosine triplet ranking loss (notebook 03). M3-Net variants: Eq. 11 with
    class prototypes (:class:`~fashionlab.models.ClassPrototypes`, kept on the model as ``model.prototypes``).
    Returns ``(model, history)``."""
    import torch

    from ..engine import device as pick_device, fit, seed_everything
    from ..models import ClassPrototypes
    from .paper03 import _single_step

    cfg = dataset_config(cfg, d.name)
    dev = pick_device(verbose=False)
    seed_everything(seed)
    model = build_method(method, cfg, d).to(dev)
    if method == "ASEN":
        step = _single_step("ASEN_g", cfg, d, dev)
    else:
        model.prototypes = ClassPrototypes(int(d.offsets[-1]), model.in_channels, cfg.momentum).to(dev)
        step = _m3_step(cfg, d, model.prototypes, dev, cfg.pos_weight if d.name == "multi-label" else 1.0)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.asen_lr if method == "ASEN" else cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)

    def eval_fn(m, epoch):
        return {"valid_MAP@all": evaluate(method, m, d, "valid", cfg, dev)["summary"]["MAP@all"]["overall"]}

    history = fit(model, step, _Batches(method, cfg, d, seed), opt, cfg.epochs, scheduler=sched, device=dev,
                  seed=seed, eval_fn=eval_fn, monitor="valid_MAP@all", mode="max", restore_best=True,
                  progress=progress, verbose=progress)
    model.eval()
    return model, history


# ----------------------------------------------------------------------------------------------------------
# retrieval
# ----------------------------------------------------------------------------------------------------------
def embed_m3(model, d: M3Data, split: str, ids, n: int, dev, batch: int = 256, attention: bool = False) -> dict:
    """M3-Net's outputs for images ``ids`` of ``split`` under attribute ``n``: ``attr`` ``(B, C)`` (φ_n),
    ``probs`` ``(B, M_n)`` (``P_n``), ``cls`` ``(B, M_n, C)`` (φ̄_m for every class m); with ``attention`` also
    ``alpha`` ``(B, H, W)`` and ``alpha_c`` ``(B, M_n, H, W)``."""
    import torch

    out = {k: [] for k in ("attr", "probs", "cls", "alpha", "alpha_c")}
    images = d.images[split]
    with torch.no_grad():
        for s in range(0, len(ids), batch):
            x, _ = images.batch(np.asarray(ids[s:s + batch]), device=dev, hires=False)
            a = model.attribute_level(model.features(x), n)
            c = model.all_classes(a.fmap, n)
            out["attr"].append(a.embedding.float().cpu())
            out["probs"].append(torch.sigmoid(a.logits.float()).cpu())
            out["cls"].append(c.embedding.float().cpu())
            if attention:
                out["alpha"].append(a.attention.float().cpu())
                out["alpha_c"].append(c.attention.float().cpu())
    return {k: torch.cat(v) for k, v in out.items() if v}


def embed_asen(model, d: M3Data, split: str, ids, n: int, dev, batch: int = 256):
    """ASEN's ``(B, D)`` attribute-specific embeddings of images ``ids`` of ``split`` under attribute ``n``."""
    import torch

    out = []
    images = d.images[split]
    with torch.no_grad():
        for s in range(0, len(ids), batch):
            x, _ = images.batch(np.asarray(ids[s:s + batch]), device=dev, hires=False)
            out.append(model(x, torch.full((len(x),), n, dtype=torch.long, device=dev)).embedding.float().cpu())
    return torch.cat(out)


def evaluate(method: str, model, d: M3Data, split: str, cfg: M3Config, dev, attribute_only: bool = False) -> dict:
    """Retrieval on ``split`` (module docstring): per attribute, rank the candidates for every query, score
    with multi-label relevance. Returns ``summary`` (:func:`~fashionlab.metrics.retrieval_summary`, percent),
    ``per_query`` (per attribute: ``ap``, ``ap_at_k``, ``recall_at_k``, ``num_classes`` of the query,
    ``ap_all_classes`` (relevance = has every query class)), ``excluded`` (per attribute: the share of
    classes below γ, over the split's query and candidate images) and ``f1`` (per attribute: micro-F1 of the
    high-likelihood classes, :func:`~fashionlab.models.predicted_classes`, against the true classes: how good the
    first tier's class sets are). ``attribute_only``: rank an M3-Net by its attribute-specific representations
    alone."""
    import torch
    import torch.nn.functional as F

    from ..metrics import multilabel_relevance, ranking_stats, retrieval_summary
    from ..models import class_first_scores, predicted_classes

    stats, groups, per_query, excluded, f1 = [], [], {}, {}, {}
    for n, es in enumerate(d.eval_sets[split]):
        if not len(es["q_ids"]) or not len(es["c_ids"]):
            continue
        if method == "ASEN":
            q = F.normalize(embed_asen(model, d, split, es["q_ids"], n, dev), dim=1)
            c = F.normalize(embed_asen(model, d, split, es["c_ids"], n, dev), dim=1)
            scores = q @ c.T
        else:
            qe = embed_m3(model, d, split, es["q_ids"], n, dev)
            ce = embed_m3(model, d, split, es["c_ids"], n, dev)
            probs = torch.cat([qe["probs"], ce["probs"]])
            excluded[n] = 1.0 - float(probs.gt(cfg.gamma).float().mean())
            truth = torch.from_numpy(np.concatenate([es["q_lab"], es["c_lab"]]))
            pred = predicted_classes(probs, cfg.gamma)
            tp = float((pred & truth).sum())
            f1[n] = 2 * tp / max(1.0, float(pred.sum() + truth.sum()))
            if attribute_only:
                scores = F.normalize(qe["attr"], dim=1) @ F.normalize(ce["attr"], dim=1).T
            else:
                scores = class_first_scores(qe["attr"], ce["attr"], qe["cls"], ce["cls"],
                                            predicted_classes(qe["probs"], cfg.gamma),
                                            predicted_classes(ce["probs"], cfg.gamma))
        ql, cl = torch.from_numpy(es["q_lab"]), torch.from_numpy(es["c_lab"])
        st = ranking_stats(scores, multilabel_relevance(ql, cl, "any"), k=cfg.k)
        st_all = ranking_stats(scores, multilabel_relevance(ql, cl, "all"), k=cfg.k)
        stats.append(st)
        groups.append(torch.full((len(es["q_ids"]),), n, dtype=torch.long))
        per_query[n] = {"ap": st["ap"].numpy(), "ap_at_k": st["ap_at_k"].numpy(),
                        "recall_at_k": st["recall_at_k"].numpy(), "num_classes": es["q_lab"].sum(1),
                        "ap_all_classes": st_all["ap"].numpy()}
    merged = {k: (torch.cat([s[k] for s in stats]) if torch.is_tensor(v) else v) for k, v in stats[0].items()}
    summary = retrieval_summary(merged, torch.cat(groups))
    return {"summary": summary, "per_query": per_query, "excluded": excluded, "f1": f1}


# ----------------------------------------------------------------------------------------------------------
# attention at two granularities (beyond the paper: Fig. 3 measured)
# ----------------------------------------------------------------------------------------------------------
def _spread(att, boxes, size: int, mass: float = 0.8):
    """For ``(P, H, W)`` non-negative maps and ``(P, 4)`` pixel boxes on a ``size`` canvas: the share of each
    map's mass inside its box (the map upsampled to the canvas, nearest) and the share of the map's cells that
    hold ``mass`` of it (the smallest such set)."""
    import torch
    import torch.nn.functional as F

    p, h, w = att.shape
    a = att / att.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    up = F.interpolate(a[:, None], size=(size, size), mode="nearest")[:, 0] * (h * w / size ** 2)
    ys = torch.arange(size).view(1, size, 1)
    xs = torch.arange(size).view(1, 1, size)
    b = torch.as_tensor(np.asarray(boxes), dtype=torch.float32)
    inside = ((xs >= b[:, 0, None, None]) & (xs < b[:, 2, None, None]) & (ys >= b[:, 1, None, None])
              & (ys < b[:, 3, None, None]))
    in_box = (up * inside).sum(dim=(1, 2))
    srt = a.reshape(p, -1).sort(dim=1, descending=True).values.cumsum(dim=1)
    area = ((srt < mass).sum(dim=1) + 1).float() / (h * w)
    return in_box.numpy(), area.numpy()


def attention_study(model, d: M3Data, cfg: M3Config, dev, max_images: int = 400) -> dict | None:
    """Beyond the paper (Fig. 3 shows pictures): for test images and each of their classes that has a
    FashionSynth region, the attribute-level attention ``α_n`` and the class-level attention of M3-Net on ψ,
    ``ᾱ_m ⊙ α_n`` (renormalised; SCA-C acts on the attribute-attended map), compared by the share of attention
    mass inside the class's region and the share of the map holding 80% of the mass (narrower = smaller).
    Per attribute: ``{"attribute": (mass, area), "class": (mass, area), "pairs": count}``; None without
    region ground truth."""
    if d.regions is None:
        return None
    import torch

    ids = np.array(sorted(d.regions))[:max_images]
    out = {}
    for n, a in enumerate(d.attributes):
        e = embed_m3(model, d, "test", ids, n, dev, attention=True)
        att_a, att_c, boxes = [], [], []
        for row, i in enumerate(ids):
            for (nn_, m), box in d.regions[int(i)].items():
                if nn_ != n:
                    continue
                att_a.append(e["alpha"][row])
                att_c.append(e["alpha_c"][row, m] * e["alpha"][row])
                boxes.append(box)
        if not boxes:
            continue
        ma, aa = _spread(torch.stack(att_a), boxes, d.region_size)
        mc, ac = _spread(torch.stack(att_c), boxes, d.region_size)
        out[a] = {"attribute": (float(ma.mean()), float(aa.mean())), "class": (float(mc.mean()), float(ac.mean())),
                  "pairs": len(boxes), "per_pair": {"attribute": (ma, aa), "class": (mc, ac)}}
    return out


# ----------------------------------------------------------------------------------------------------------
# the paper's numbers
# ----------------------------------------------------------------------------------------------------------
PAPER_DEEPFASHION_ATTRIBUTES = ["texture", "fabric", "shape", "part", "style"]
#: Table 2 (DeepFashion, multi-label): MAP@all per attribute, MAP@all overall, MAP@100, Recall@100.
PAPER_TABLE2 = {
    "ASEN": [21.03, 11.61, 14.68, 7.81, 4.66, 12.33, 20.60, 5.10],
    "ASEN_v2": [21.86, 11.67, 14.58, 7.93, 4.68, 12.51, 20.55, 4.99],
    "ASEN++": [22.20, 11.71, 14.70, 8.15, 4.72, 12.74, 20.79, 5.21],
    "MODC": [22.26, 11.98, 14.68, 7.96, 5.23, 12.78, 22.21, 6.06],
    "M3-Net_a": [27.37, 18.34, 22.96, 14.66, 9.74, 19.03, 28.14, 10.59],
    "M3-Net_c": [30.09, 19.60, 25.24, 16.43, 11.32, 20.92, 30.58, 12.10],
    "M3-Net": [30.79, 20.20, 27.11, 17.28, 11.61, 21.78, 35.08, 12.88],
}
PAPER_FASHIONAI_ATTRIBUTES = ["skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                              "lapel_design", "neckline_design", "neck_design"]
#: Table 3 (FashionAI, single-label): the same columns.
PAPER_TABLE3 = {
    "ASEN": [64.61, 49.98, 49.75, 65.76, 70.30, 62.86, 52.14, 56.42, 57.37, 64.70, 22.77],
    "ASEN_v2": [65.58, 54.42, 52.03, 67.41, 71.36, 66.76, 60.91, 59.58, 61.13, 67.85, 24.14],
    "ASEN++": [66.31, 57.51, 55.43, 68.83, 72.79, 66.85, 66.78, 67.02, 64.27, 70.62, 25.30],
    "MODC": [74.54, 67.48, 68.25, 77.69, 81.11, 76.90, 77.46, 77.10, 74.32, 80.29, 30.26],
    "M3-Net_a": [73.21, 69.58, 65.27, 78.79, 80.80, 78.05, 77.04, 73.40, 73.93, 81.57, 30.48],
    "M3-Net_c": [74.33, 65.91, 64.27, 78.26, 82.00, 78.85, 74.80, 72.39, 72.88, 82.58, 30.77],
    "M3-Net": [75.27, 70.04, 67.90, 79.31, 82.82, 78.58, 76.81, 75.51, 75.04, 87.04, 32.01],
}


def paper_rows() -> list[dict]:
    """Tables 2 and 3 as result rows; ``"dataset"`` says which real dataset, ``"table"`` which table."""
    rows = []
    for table, ds, attrs, source in (("Table 2", "DeepFashion (real images, paper 05)", PAPER_DEEPFASHION_ATTRIBUTES,
                                      PAPER_TABLE2),
                                     ("Table 3", "FashionAI (real images, paper 05)", PAPER_FASHIONAI_ATTRIBUTES,
                                      PAPER_TABLE3)):
        for method, v in source.items():
            base = {"method": method, "dataset": ds, "table": table}
            rows += [{**base, "metric": "MAP@all", "attribute": a, "value": x} for a, x in zip(attrs, v)]
            rows += [{**base, "metric": m, "value": x} for m, x in zip(METRICS, v[len(attrs):])]
    return rows


# ----------------------------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------------------------
def _summary_rows(method: str, dataset: str, summary: dict, attributes) -> list[dict]:
    rows = []
    for metric, vals in summary.items():
        for key, v in vals.items():
            row = {"method": method, "metric": metric, "value": round(float(v), 2), "dataset": dataset}
            if key != "overall":
                row["attribute"] = attributes[int(key)]
            rows.append(row)
    return rows


def _multi_class_rows(method: str, result: dict) -> list[dict]:
    """MAP@all over the multi-label preset's queries with 2+ classes in the group, with the usual ("any")
    and the strict ("all") relevance."""
    pq = result["per_query"]
    many = np.concatenate([p["num_classes"] >= 2 for p in pq.values()])
    ap = np.concatenate([p["ap"] for p in pq.values()])
    ap_all = np.concatenate([p["ap_all_classes"] for p in pq.values()])
    if not many.any():
        return []
    base = {"method": method, "dataset": "multi-label"}
    return [{**base, "metric": "MAP@all, queries with 2+ classes", "value": round(100 * float(ap[many].mean()), 2)},
            {**base, "metric": "MAP@all (all query classes), queries with 2+ classes",
             "value": round(100 * float(ap_all[many].mean()), 2)}]


@register("m3net", "M3-Net (paper 05): ASEN vs M3-Net_a / M3-Net_c / M3-Net on FashionSynth's multi-label and "
                   "FashionAI presets, MAP@all / MAP@100 / Recall@100", notebook="05_m3net.ipynb")
def m3net(mode: str, data: Path | None, seed: int, progress: bool = True, config: M3Config | None = None) -> Outcome:
    """The ``m3net`` experiment (module docstring). ``data``: a DeepFashion-format folder (list files plus the
    ASEN-style split) replacing the multi-label preset."""
    from ..engine import device as pick_device

    t_start = time.perf_counter()
    cfg = config or M3_CONFIGS[mode]
    dev = pick_device(verbose=False)
    rows, notes, extra = [], [], {"config": cfg, "models": {}, "histories": {}, "results": {}, "data": {},
                                  "seconds": {}}
    for ds in cfg.datasets:
        d = multilabel_data(cfg, data, seed, progress) if ds == "multi-label" else fashionai_data(cfg, seed, progress)
        extra["data"][ds] = d
        for method in METHODS:
            t0 = time.perf_counter()
            model, hist = train_method(method, cfg, d, seed, progress)
            res = evaluate(method, model, d, "test", cfg, dev)
            extra["seconds"][(ds, method)] = time.perf_counter() - t0
            extra["models"][(ds, method)], extra["histories"][(ds, method)] = model, hist
            extra["results"][(ds, method)] = res
            rows += _summary_rows(method, ds, res["summary"], d.attributes)
            if ds == "multi-label":
                rows += _multi_class_rows(method, res)
            if res["excluded"]:
                ex = 100 * float(np.mean(list(res["excluded"].values())))
                weights = [len(es["q_ids"]) + len(es["c_ids"]) for es in d.eval_sets["test"]]
                f1 = 100 * float(np.average([res["f1"].get(n, 0.0) for n in range(len(weights))], weights=weights))
                rows += [{"method": method, "metric": "classes excluded at gamma", "value": round(ex, 2),
                          "dataset": ds},
                         {"method": method, "metric": "class prediction F1 at gamma", "value": round(f1, 2),
                          "dataset": ds}]
        for method in ("M3-Net_a", "M3-Net"):  # the second tier alone: where the two differ
            name = f"{method} (attribute space only)"
            res = evaluate(method, extra["models"][(ds, method)], d, "test", cfg, dev, attribute_only=True)
            extra["results"][(ds, name)] = res
            rows += _summary_rows(name, ds, res["summary"], d.attributes)
            if ds == "multi-label":
                rows += _multi_class_rows(name, res)
        full = extra["models"][(ds, "M3-Net")]
        if ds == "multi-label":
            study = attention_study(full, d, cfg, dev)
            extra["attention"] = study
            if study:
                for a, s in study.items():
                    for level in ("attribute", "class"):
                        rows += [{"method": f"M3-Net, {level} level", "metric": "attention mass in class region",
                                  "attribute": a, "value": round(100 * s[level][0], 2), "dataset": ds},
                                 {"method": f"M3-Net, {level} level", "metric": "attention area (80% of mass)",
                                  "attribute": a, "value": round(100 * s[level][1], 2), "dataset": ds}]
        notes.append(f"{ds}: {d.description}; {len(d.train_positives)} training images, test queries per attribute "
                     + ", ".join(f"{a} {len(es['q_ids'])}" for a, es in zip(d.attributes, d.eval_sets['test']))
                     + "; training seconds " + ", ".join(f"{m} {extra['seconds'][(ds, m)]:.0f}" for m in METHODS))
    notes += [
        f"every method: SmallCNN width {cfg.width} (output stride {cfg.output_stride}, last ReLU dropped) at "
        f"{cfg.image_size} px, {cfg.epochs} epochs x {cfg.triplets_per_epoch} triplets on the multi-label preset and "
        f"{dataset_config(cfg, 'FashionAI').epochs} x {dataset_config(cfg, 'FashionAI').triplets_per_epoch} on "
        f"FashionAI (batch {cfg.batch}), Adam lr {cfg.lr} (M3-Nets) / {cfg.asen_lr} (ASEN), x {cfg.lr_decay} per epoch, "
        "best validation MAP@all epoch kept",
        f"M3-Nets: zeta {cfg.zeta}, lambda 1, gamma {cfg.gamma}, w_p {cfg.pos_weight} (multi-label) / 1 (FashionAI), "
        f"class prototypes = moving average (momentum {cfg.momentum}) of normalised class-specific representations",
        f"ASEN: ASEN_g of notebook 03 ({cfg.dim}-d), margin {cfg.margin}, ASEN++ triplets of the single-label split",
        f"MAP@{cfg.k}: AP of the top {cfg.k} normalised by min(R, {cfg.k}); Recall@{cfg.k} = relevant in the top "
        f"{cfg.k} / R; relevance = shares a class of the attribute with the query",
    ]
    desc = "; ".join(f"{ds}: {extra['data'][ds].description}" for ds in cfg.datasets)
    extra["total_seconds"] = time.perf_counter() - t_start
    return Outcome(rows=rows, paper_rows=paper_rows(), dataset=desc, device=dev.type, notes=notes, extra=extra)
