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

The recipe, step by step (a notebook calls them one at a time and may pass its own module into ``train`` and
``evaluate``): :func:`load_data` → :func:`build_model` → :func:`train` (``engine.fit`` with the model's loss:
``M3Net.loss``, Eq. 7-11, or ASEN's ``attribute_triplet_loss``; the trained model is cached) →
:func:`evaluate` → :func:`report` (the typed :class:`M3Result`). The data containers live in
:mod:`.paper05_data`, the paper's tables and the notes' prose in :mod:`.paper05_tables`.

Fairness: one backbone family for all (SmallCNN, output stride 8, last ReLU dropped, as notebook 03), the same
number of epochs and triplets per epoch, the same optimiser and schedule (Adam, ×0.975 per epoch as §4.2) at the
learning rate that suited each family in calibration (:class:`M3Config`), model selection by validation MAP@all. ASEN keeps notebook 03's margin (0.2); the M3-Nets use the
paper's ζ = 0.4 and λ = 1.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .paper05_data import M3Data, fashionai_data, multilabel_data
from .paper05_tables import METRICS, config_notes, paper_rows
from .registry import Result, added_field, register, with_start

__all__ = ["METHODS", "DATASETS", "METRICS", "M3Config", "M3_CONFIGS", "M3Data", "M3Result", "load_data",
           "dataset_config", "build_model", "triplet_batches", "train", "embed", "evaluate", "attention_study",
           "report", "paper_rows", "m3net"]

METHODS = ("ASEN", "M3-Net_a", "M3-Net_c", "M3-Net")
VARIANT = {"M3-Net_a": "attribute", "M3-Net_c": "class", "M3-Net": "full"}
DATASETS = ("multi-label", "FashionAI")


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
    # the backbone (fashionlab.models.build_backbone)
    backbone: str = "smallcnn"
    local_backbone: str | None = None
    local_width: int | None = None
    stage: str | None = None
    output_stride: int = 8
    final_relu: bool = False
    pretrained: str = added_field("scratch")  # "scratch" or "imagenet": torchvision backbones' start (--pretrained)


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



def dataset_config(cfg: M3Config, dataset: str) -> M3Config:
    """``cfg`` with the FashionAI preset's epochs and triplets when ``dataset`` is ``"FashionAI"``."""
    if dataset != "FashionAI":
        return cfg
    return replace(cfg, epochs=cfg.fai_epochs or cfg.epochs,
                   triplets_per_epoch=cfg.fai_triplets_per_epoch or cfg.triplets_per_epoch)


def _mode_of(cfg: M3Config) -> str:
    """The mode whose config ``cfg`` is (for the trained-model cache's file name), else ``"custom"``."""
    return next((m for m, c in M3_CONFIGS.items() if c == cfg), "custom")


# ----------------------------------------------------------------------------------------------------------
# step 1: the data
# ----------------------------------------------------------------------------------------------------------
def load_data(cfg: M3Config, dataset: str = "multi-label", data: Path | None = None, seed: int = 0,
              progress: bool = False) -> M3Data:
    """Step 1: ``dataset`` (``"multi-label"``: ``data``, a DeepFashion-format folder, or FashionSynth's
    multi-label preset; ``"FashionAI"``: FashionSynth's FashionAI preset) as an :class:`M3Data`, with its
    config (``dataset_config``) attached as ``.cfg``."""
    mode = next((m for m, c in M3_CONFIGS.items() if c == cfg), None)  # full mode streams its images
    if dataset == "multi-label":
        d = multilabel_data(cfg, data, seed, progress, mode=mode)
    elif dataset == "FashionAI":
        d = fashionai_data(cfg, seed, progress, mode=mode)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    d.cfg = dataset_config(cfg, d.name)
    return d


# ----------------------------------------------------------------------------------------------------------
# step 2: a model
# ----------------------------------------------------------------------------------------------------------
def build_model(method: str, cfg: M3Config, data: M3Data, seed: int | None = 0):
    """Step 2: a fresh model of ``method``, its weights drawn after ``engine.seed_everything(seed)`` (None:
    not reseeded). ``ASEN``: ASEN_g of notebook 03 (ASA + ACA); the others: :class:`~fashionlab.models.M3Net`
    of the matching variant (§3.1, §4.2), class prototypes with momentum ``cfg.momentum``. Every backbone:
    :func:`~fashionlab.models.build_backbone` (SmallCNN, output stride 8, last ReLU dropped)."""
    from ..engine import seed_everything
    from ..models import ASENGlobal, M3Net, build_backbone

    if method != "ASEN" and method not in VARIANT:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if seed is not None:
        seed_everything(seed)
    net = build_backbone(cfg.backbone, width=cfg.width, output_stride=cfg.output_stride,
                         final_relu=cfg.final_relu, stage=cfg.stage,
                         **({} if cfg.pretrained == "scratch" else {"pretrained": cfg.pretrained}))
    if method == "ASEN":
        return ASENGlobal(net, len(data.attributes), embed_dim=cfg.dim, cond_dim=cfg.cond_dim)
    return M3Net(net, data.num_classes, variant=VARIANT[method], cond_dim=cfg.cond_dim, mlp_hidden=cfg.mlp_hidden,
                 momentum=cfg.momentum)


# ----------------------------------------------------------------------------------------------------------
# step 3: training
# ----------------------------------------------------------------------------------------------------------
def triplet_batches(method: str, data: M3Data, cfg: M3Config, seed: int = 0):
    """``make_batches(epoch)`` for ``engine.fit``: the epoch's triplets in batches of ``cfg.batch`` rows.
    ASEN: ASEN++ triplets ``(a, p, n, attribute)`` of the single-label split; the M3-Nets: class-level
    triplets ``(a, p, n, attribute, class)`` of the multi-label rows
    (:class:`~fashionlab.datasets.ClassTripletSampler`: a and p have the class, n is labelled for the
    attribute but lacks it)."""
    from ..datasets import AsenPPTripletSampler, ClassTripletSampler

    if method == "ASEN":
        sampler = AsenPPTripletSampler(data.asen_labels, [int(m) for m in data.num_classes],
                                       num_triplets=cfg.triplets_per_epoch, seed=seed, skip_rare=True)
    else:
        sampler = ClassTripletSampler(data.train_positives, data.class_attribute, data.train_labelled,
                                      num_triplets=cfg.triplets_per_epoch, seed=seed)

    def batches(epoch: int) -> list[np.ndarray]:
        t = sampler.triplets(epoch)
        return [t[s:s + cfg.batch] for s in range(0, len(t) - cfg.batch + 1, cfg.batch)]

    return batches


def train(method: str, model, data: M3Data, cfg: M3Config, seed: int = 0, device=None, progress: bool = False,
          mode: str | None = None):
    """Step 3: train ``model`` as ``method`` on ``data`` through :func:`fashionlab.engine.fit`: Adam at
    ``cfg.lr`` (``cfg.asen_lr`` for ASEN), ×``cfg.lr_decay`` per epoch (§4.2), ``cfg.epochs`` epochs of fresh
    triplets, the epoch with the best validation MAP@all kept. The loss: ASEN's triplet ranking loss on cosine
    similarity (:func:`~fashionlab.models.attribute_triplet_loss`, margin ``cfg.margin``); for an M3-Net its
    own :meth:`~fashionlab.models.M3Net.loss`, Eq. 11 (ζ = ``cfg.zeta``, ``w_p`` = ``cfg.pos_weight`` on the
    multi-label preset, 1 on FashionAI). The trained model is cached (key: experiment, method, mode, seed,
    config, dataset; ``mode`` defaults to the mode whose config ``cfg`` is): a second call loads it and says
    so. ``device``: where to train (default: the model's device). Returns the
    :class:`~fashionlab.engine.History`; ``model`` is left in eval mode."""
    import torch

    from ..engine import fit
    from ..models import attribute_triplet_loss

    mode = mode or _mode_of(cfg)
    cfg = dataset_config(cfg, data.name)
    dev = device if device is not None else next(model.parameters()).device
    model.to(dev)
    pos_weight = cfg.pos_weight if data.name == "multi-label" else 1.0

    if method == "ASEN":
        def step(model, t):  # the triplet ranking loss under the triplet's attribute (notebook 03)
            x, _, attr = data.images["train"].triplet_batch(t, device=dev)
            return attribute_triplet_loss(model, x, attr, margin=cfg.margin)
    else:
        def step(model, t):  # Eq. 11: L_M + L_CC + L_CI on the class of each triplet
            return model.loss(data.triplet_images(t, dev), data.triplet_targets(t), t[:, 3], t[:, 4],
                              margin=cfg.zeta, pos_weight=pos_weight)

    opt = torch.optim.Adam(model.parameters(), lr=cfg.asen_lr if method == "ASEN" else cfg.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)

    def eval_fn(m, epoch):
        return {"valid_MAP@all": evaluate(method, m, data, dev, split="valid")["summary"]["MAP@all"]["overall"]}

    key = {"experiment": "m3net", "method": method, "mode": mode, "seed": seed, "config": cfg,
           "dataset": data.description, "pos_weight": pos_weight}
    from ..datasets import triplet_ids

    epoch_batches = triplet_batches(method, data, cfg, seed)

    def batches(e):  # decoded ahead in DataLoader workers when the images stream (else the list itself)
        return data.images["train"].prefetch(epoch_batches(e), ids_of=triplet_ids, device=dev)

    history = fit(model, step, batches, opt, cfg.epochs, scheduler=sched,
                  device=dev, seed=seed, eval_fn=eval_fn, monitor="valid_MAP@all", mode="max", restore_best=True,
                  progress=progress, verbose=True, cache_key=key)
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------------------
# step 4: evaluation
# ----------------------------------------------------------------------------------------------------------
def _image_batches(images, ids, batch: int = 256):
    chunks = [np.asarray(ids[s:s + batch]) for s in range(0, len(ids), batch)]
    for chunk in images.prefetch(chunks):
        yield images.batch(chunk, hires=False)[0]


def embed(method: str, model, data: M3Data, split: str, ids, n: int, device=None, attention: bool = False) -> dict:
    """The representations of images ``ids`` of ``split`` under attribute ``n``, through
    :func:`fashionlab.engine.extract_features` (eval mode, no gradients), on the CPU. ASEN: ``{"emb": (B, D)}``.
    An M3-Net: ``attr`` ``(B, C)`` (φ_n, Eq. 2), ``probs`` ``(B, M_n)`` (``P_n``, Eq. 3), ``cls``
    ``(B, M_n, C)`` (φ̄_m for every class m, Eq. 6); with ``attention`` also ``alpha`` ``(B, H, W)`` (α_n)
    and ``alpha_c`` ``(B, M_n, H, W)`` (ᾱ_m)."""
    import torch

    from ..engine import extract_features

    def asen(x):
        return {"emb": model(x, torch.full((len(x),), n, dtype=torch.long, device=x.device)).embedding}

    def m3(x):
        a = model.attribute_level(model.features(x), n)
        c = model.all_classes(a.fmap, n)
        out = {"attr": a.embedding, "probs": torch.sigmoid(a.logits.float()), "cls": c.embedding}
        if attention:
            out.update(alpha=a.attention, alpha_c=c.attention)
        return out

    return extract_features(asen if method == "ASEN" else m3, _image_batches(data.images[split], ids), device,
                            model=model, out_device="cpu")


def evaluate(method: str, model, data: M3Data, device=None, split: str = "test", gamma: float | None = None,
             attribute_only: bool = False) -> dict:
    """Step 4: retrieval on ``split`` (module docstring): per attribute, rank the candidates for every query,
    score with multi-label relevance (:func:`~fashionlab.metrics.ranking_stats`, ``k = data.cfg.k``). ASEN
    ranks by cosine of its embeddings; an M3-Net class-first (§4.2,
    :func:`~fashionlab.models.class_first_scores`, the classes above ``gamma``, default ``data.cfg.gamma``),
    or by φ_n alone with ``attribute_only``. Returns ``summary`` (percent, per attribute and overall),
    ``per_query`` (per attribute: ``ap``, ``ap_at_k``, ``recall_at_k``, ``num_classes`` of the query,
    ``ap_all_classes``: relevance = has every query class), ``excluded`` (per attribute: the share of classes
    below γ over the split's queries and candidates) and ``f1`` (per attribute: micro-F1 of the classes above
    γ against the true ones)."""
    import torch
    import torch.nn.functional as F

    from ..metrics import multilabel_relevance, ranking_stats, retrieval_summary
    from ..models import class_first_scores, predicted_classes

    gamma = data.cfg.gamma if gamma is None else gamma
    stats, groups, per_query, excluded, f1 = [], [], {}, {}, {}
    for n, es in enumerate(data.eval_sets[split]):
        if not len(es["q_ids"]) or not len(es["c_ids"]):
            continue
        qe = embed(method, model, data, split, es["q_ids"], n, device)
        ce = embed(method, model, data, split, es["c_ids"], n, device)
        if method == "ASEN":
            scores = F.normalize(qe["emb"], dim=1) @ F.normalize(ce["emb"], dim=1).T
        else:
            probs = torch.cat([qe["probs"], ce["probs"]])
            excluded[n] = 1.0 - float(probs.gt(gamma).float().mean())
            truth = torch.from_numpy(np.concatenate([es["q_lab"], es["c_lab"]]))
            pred = predicted_classes(probs, gamma)
            f1[n] = 2 * float((pred & truth).sum()) / max(1.0, float(pred.sum() + truth.sum()))
            if attribute_only:
                scores = F.normalize(qe["attr"], dim=1) @ F.normalize(ce["attr"], dim=1).T
            else:
                scores = class_first_scores(qe["attr"], ce["attr"], qe["cls"], ce["cls"],
                                            predicted_classes(qe["probs"], gamma),
                                            predicted_classes(ce["probs"], gamma))
        ql, cl = torch.from_numpy(es["q_lab"]), torch.from_numpy(es["c_lab"])
        st = ranking_stats(scores, multilabel_relevance(ql, cl, "any"), k=data.cfg.k)
        st_all = ranking_stats(scores, multilabel_relevance(ql, cl, "all"), k=data.cfg.k)
        stats.append(st)
        groups.append(torch.full((len(es["q_ids"]),), n, dtype=torch.long))
        per_query[n] = {"ap": st["ap"].numpy(), "ap_at_k": st["ap_at_k"].numpy(),
                        "recall_at_k": st["recall_at_k"].numpy(), "num_classes": es["q_lab"].sum(1),
                        "ap_all_classes": st_all["ap"].numpy()}
    merged = {k: (torch.cat([s[k] for s in stats]) if torch.is_tensor(v) else v) for k, v in stats[0].items()}
    summary = retrieval_summary(merged, torch.cat(groups))
    return {"summary": summary, "per_query": per_query, "excluded": excluded, "f1": f1}


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


def attention_study(model, data: M3Data, device=None, max_images: int = 400) -> dict | None:
    """Beyond the paper (Fig. 3 shows pictures): for test images and each of their classes that has a
    FashionSynth region, the attribute-level attention ``α_n`` and the class-level attention of M3-Net on ψ,
    ``ᾱ_m ⊙ α_n`` (renormalised; SCA-C acts on the attribute-attended map), compared by the share of attention
    mass inside the class's region and the share of the map holding 80% of the mass (narrower = smaller).
    Per attribute: ``{"attribute": (mass, area), "class": (mass, area), "pairs": count, "per_pair": ...}``;
    None without region ground truth."""
    if data.regions is None:
        return None
    import torch

    ids = np.array(sorted(data.regions))[:max_images]
    out = {}
    for n, a in enumerate(data.attributes):
        e = embed("M3-Net", model, data, "test", ids, n, device, attention=True)
        att_a, att_c, boxes = [], [], []
        for row, i in enumerate(ids):
            for (nn_, m), box in data.regions[int(i)].items():
                if nn_ != n:
                    continue
                att_a.append(e["alpha"][row])
                att_c.append(e["alpha_c"][row, m] * e["alpha"][row])
                boxes.append(box)
        if not boxes:
            continue
        ma, aa = _spread(torch.stack(att_a), boxes, data.region_size)
        mc, ac = _spread(torch.stack(att_c), boxes, data.region_size)
        out[a] = {"attribute": (float(ma.mean()), float(aa.mean())), "class": (float(mc.mean()), float(ac.mean())),
                  "pairs": len(boxes), "per_pair": {"attribute": (ma, aa), "class": (mc, ac)}}
    return out


# ----------------------------------------------------------------------------------------------------------
# step 5: the report
# ----------------------------------------------------------------------------------------------------------
@dataclass
class M3Result(Result):
    """``m3net``: the rows, plus ``config``; ``data`` (dataset name → :class:`M3Data`); ``models``,
    ``histories``, ``train_seconds`` and ``evaluations`` (the output of :func:`evaluate`) keyed by
    ``(dataset, method)`` (evaluations also under ``"M3-Net (attribute space only)"`` and
    ``"M3-Net_a (attribute space only)"``); ``attention``: :func:`attention_study` of M3-Net on the multi-label
    preset."""

    config: M3Config | None = None
    data: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    train_seconds: dict = field(default_factory=dict)
    evaluations: dict = field(default_factory=dict)
    attention: dict | None = None


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


def _class_rows(method: str, ds: str, d: M3Data, ev: dict) -> list[dict]:
    """The share of classes below γ (§3.1's "94%") and the micro-F1 of the classes above it, weighted by the
    test images of each attribute."""
    if not ev["excluded"]:
        return []
    ex = 100 * float(np.mean(list(ev["excluded"].values())))
    weights = [len(es["q_ids"]) + len(es["c_ids"]) for es in d.eval_sets["test"]]
    f1 = 100 * float(np.average([ev["f1"].get(n, 0.0) for n in range(len(weights))], weights=weights))
    return [{"method": method, "metric": "classes excluded at gamma", "value": round(ex, 2), "dataset": ds},
            {"method": method, "metric": "class prediction F1 at gamma", "value": round(f1, 2), "dataset": ds}]


def _attention_rows(study: dict | None, ds: str) -> list[dict]:
    rows = []
    for a, s in (study or {}).items():
        for level in ("attribute", "class"):
            rows += [{"method": f"M3-Net, {level} level", "metric": "attention mass in class region",
                      "attribute": a, "value": round(100 * s[level][0], 2), "dataset": ds},
                     {"method": f"M3-Net, {level} level", "metric": "attention area (80% of mass)",
                      "attribute": a, "value": round(100 * s[level][1], 2), "dataset": ds}]
    return rows


def report(res: M3Result) -> M3Result:
    """Step 5: fill ``res.rows`` (per dataset: the summary rows of every evaluation, the 2+-class rows on the
    multi-label preset, the class rows of the M3-Nets, the attention rows), ``paper_rows`` (Tables 2 and 3),
    ``dataset`` and ``notes`` from the evaluations held in ``res``."""
    rows, notes = [], []
    for ds, d in res.data.items():
        for (ds_, method), ev in res.evaluations.items():
            if ds_ != ds:
                continue
            rows += _summary_rows(method, ds, ev["summary"], d.attributes)
            if ds == "multi-label":
                rows += _multi_class_rows(method, ev)
            if method in METHODS:
                rows += _class_rows(method, ds, d, ev)
        if ds == "multi-label":
            rows += _attention_rows(res.attention, ds)
        notes.append(f"{ds}: {d.description}; {len(d.train_positives)} training images, test queries per attribute "
                     + ", ".join(f"{a} {len(es['q_ids'])}" for a, es in zip(d.attributes, d.eval_sets['test'])))
    res.rows, res.paper_rows = rows, paper_rows()
    res.notes = notes + config_notes(res.config)
    res.dataset = "; ".join(f"{ds}: {d.description}" for ds, d in res.data.items())
    return res


# ----------------------------------------------------------------------------------------------------------
# the experiment: the steps in order
# ----------------------------------------------------------------------------------------------------------
@register("m3net", "M3-Net (paper 05): ASEN vs M3-Net_a / M3-Net_c / M3-Net on FashionSynth's multi-label and "
                   "FashionAI presets, MAP@all / MAP@100 / Recall@100", notebook="05_m3net.ipynb")
def m3net(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
          config: M3Config | None = None) -> M3Result:
    """The ``m3net`` experiment (module docstring). ``data``: a DeepFashion-format folder (list files plus the
    ASEN-style split) replacing the multi-label preset."""
    cfg = with_start(config or M3_CONFIGS[mode], "m3net", mode)
    res = M3Result(config=cfg)
    for ds in cfg.datasets:
        d = res.data[ds] = load_data(cfg, ds, data, seed, progress)
        for method in METHODS:
            t0 = time.perf_counter()
            model = build_model(method, cfg, d, seed)
            res.histories[(ds, method)] = train(method, model, d, cfg, seed, device, progress, mode=mode)
            res.evaluations[(ds, method)] = evaluate(method, model, d, device)
            res.models[(ds, method)], res.train_seconds[(ds, method)] = model, time.perf_counter() - t0
        for method in ("M3-Net_a", "M3-Net"):  # the second tier alone: where the two differ
            res.evaluations[(ds, f"{method} (attribute space only)")] = evaluate(
                method, res.models[(ds, method)], d, device, attribute_only=True)
        if ds == "multi-label":
            res.attention = attention_study(res.models[(ds, "M3-Net")], d, device)
    return report(res)
