"""Notebook 00's experiments: the random baseline and the plain triplet network.

``random-baseline``
    Random unit vectors as embeddings, scored with the ASEN protocol (docs/protocols.md §4.1). It is the
    floor every later table starts from: the paper's "Random baseline" row (ASEN slides, FashionAI table).
``triplet-baseline``
    The smallest real training run through every layer of fashionlab: a backbone, global average pooling and
    a linear embedding (no attribute conditioning), ASEN-style triplets (docs/implementations.md §3), the
    margin ranking loss max(0, m - s(a, p) + s(a, n)) on cosine similarities (m = 0.2), and the attribute-
    specific mAP. It is the paper's "Triplet network" row, and it calibrates FashionSynth: its mAP must land
    well between the random baseline and 100.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets.sources import SYNTH_SIZES, SynthSize, fashionai_data, is_real  # noqa: F401  (public here too)
from ..models import random_embeddings
from .registry import Result, added_field, map_rows, register, with_start

# ASEN slides (paper 03), FashionAI / DARN / DeepFashion tables: attribute mAP in percent, overall last.
PAPER_TABLES = {
    "FashionAI": {
        "attributes": ["skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                       "lapel_design", "neckline_design", "neck_design"],
        "Random baseline": [17.20, 12.50, 13.35, 17.45, 22.36, 21.63, 11.09, 21.19, 15.79],
        "Triplet network": [48.38, 28.14, 29.82, 54.56, 62.58, 38.31, 26.64, 40.02, 38.52],
    },
    "DARN": {
        "attributes": ["clothes category", "clothes button", "clothes color", "clothes length",
                       "clothes pattern", "clothes shape", "collar shape", "sleeve length", "sleeve shape"],
        "Random baseline": [8.49, 24.45, 12.54, 29.90, 43.26, 39.76, 15.22, 63.03, 55.54, 32.26],
        "Triplet network": [23.59, 38.07, 16.83, 39.77, 49.56, 47.00, 23.43, 68.49, 56.48, 40.14],
    },
    "DeepFashion": {
        "attributes": ["texture-related", "fabric-related", "shape-related", "part-related", "style-related"],
        "Random baseline": [6.69, 2.69, 3.23, 2.55, 1.97, 3.38],
        "Triplet network": [13.26, 6.28, 9.49, 4.4, 3.33, 7.36],
    },
}


def paper_rows(method: str, dataset: str = "FashionAI") -> list[dict]:
    """The paper's row for ``method`` on ``dataset`` as result rows (per attribute, then overall)."""
    table = PAPER_TABLES[dataset]
    values = table[method]
    label = f"{dataset} (real images, ASEN slides)"
    rows = [{"method": method, "metric": "mAP", "attribute": a, "value": v, "dataset": label}
            for a, v in zip(table["attributes"], values[:-1])]
    rows.append({"method": method, "metric": "mAP", "value": values[-1], "dataset": label})
    return rows


def _dataset_name(schema) -> str:
    for name, table in PAPER_TABLES.items():
        if list(schema.attributes) == table["attributes"]:
            return name
    return "FashionAI"


@dataclass
class RandomBaselineResult(Result):
    """``random-baseline``: the rows, and the split that was scored."""

    split: object = None


@register("random-baseline", "random embeddings scored with the ASEN mAP protocol", notebook="00_attributes_data_protocol")
def random_baseline(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
                    split: str = "test") -> RandomBaselineResult:
    from ..datasets import read_asen_split
    from ..metrics import attribute_map

    root, label = fashionai_data(mode, data, seed, progress, check_images=False)  # reads no image
    sp = read_asen_split(root, split)
    q, c = sp.queries, sp.candidates
    emb = random_embeddings(len(q) + len(c), seed=seed)
    res = attribute_map(emb[: len(q)], q[:, 1], q[:, 2], emb[len(q):], c[:, 1], c[:, 2])
    return RandomBaselineResult(rows=map_rows("Random baseline", res, sp.schema.attributes),
                                paper_rows=paper_rows("Random baseline", _dataset_name(sp.schema)),
                                dataset=f"{label}, {split} split: {len(q)} queries, {len(c)} candidates", split=sp)


@dataclass(frozen=True)
class TripletConfig:
    """Sizes of the triplet baseline per mode (the logic is the same in every mode)."""

    backbone: str
    input_size: int
    epochs: int
    triplets_per_epoch: int
    batch: int
    lr: float
    dim: int = 64
    width: int = 32  # SmallCNN width
    stage: str | None = None  # torchvision backbones: truncation stage
    margin: float = 0.2  # ASEN/ASEN++ margin (docs/implementations.md §2, §3)
    pretrained: str = added_field("scratch")  # "scratch" or "imagenet": torchvision backbones' start (--pretrained)


TRIPLET_CONFIGS = {
    "quick": TripletConfig(backbone="smallcnn", width=16, input_size=64, epochs=2, triplets_per_epoch=1536,
                           batch=32, lr=2e-3),
    "default": TripletConfig(backbone="smallcnn", width=32, input_size=64, epochs=24, triplets_per_epoch=4096,
                             batch=32, lr=1e-3),
    # what the ASEN reference trains (ResNet-50 cut after layer3, 224 px, batch 16, lr 1e-4); for a GPU
    "full": TripletConfig(backbone="resnet50", stage="layer3", input_size=224, epochs=50, triplets_per_epoch=100_000,
                          batch=16, lr=1e-4, dim=1024),
}


# ----------------------------------------------------------------------------------------------------------
# the triplet network as a recipe: load_data -> build_model -> train -> evaluate -> report
# ----------------------------------------------------------------------------------------------------------
class TripletData:
    """An ASEN-layout dataset folder ready for triplet training (docs/formats.md §5.1): ``splits`` (train,
    valid, test :class:`~fashionlab.datasets.AsenSplit`), ``images`` (each split decoded once at
    ``cfg.input_size``, or streamed from disk: :func:`~fashionlab.datasets.image_source` with ``stream``,
    ``mode``, ``real``) and ``sampler``, ASEN++'s triplet sampler (docs/implementations.md §3 "TripletSampler"),
    whose ``batches(epoch)`` gives the epoch's triplets ``(anchor, positive, negative, attribute)`` in batches."""

    def __init__(self, root: Path, cfg: "TripletConfig", seed: int = 0, progress: bool = False, label: str = "",
                 stream: bool | None = None, mode: str | None = None, real: bool = False):
        from ..datasets import AsenPPTripletSampler, image_source, read_asen_split

        self.root, self.cfg, self.seed, self.label = Path(root), cfg, seed, label or Path(root).name
        self.splits = {s: read_asen_split(root, s) for s in ("train", "valid", "test")}
        self.images = {s: image_source(root, sp.filenames, cfg.input_size, stream=stream, mode=mode, real=real,
                                       progress=progress, source=f"filenames_{s}.txt")
                       for s, sp in self.splits.items()}
        self.sampler = AsenPPTripletSampler(self.splits["train"].labels, self.splits["train"].schema,
                                            num_triplets=cfg.triplets_per_epoch, seed=seed)

    @property
    def attributes(self) -> list[str]:
        return list(self.splits["train"].schema.attributes)

    def batches(self, epoch: int) -> list:
        """The epoch's triplets, ``(B, 4)`` rows per batch (the last incomplete batch dropped)."""
        t, b = self.sampler.triplets(epoch), self.cfg.batch
        return [t[s:s + b] for s in range(0, len(t) - b + 1, b)]

    def prefetched_batches(self, epoch: int, device=None):
        """:meth:`batches` with their images decoded ahead in ``DataLoader`` workers when streaming (else the
        list itself): what :func:`train` hands to ``fit``."""
        from ..datasets import triplet_ids

        return self.images["train"].prefetch(self.batches(epoch), ids_of=triplet_ids, device=device)

    def triplet_images(self, t, device=None):
        """The ``(3B, 3, H, W)`` training images of a batch of triplets: anchors, then positives, then negatives
        (with random flips)."""
        return self.images["train"].batch(t[:, :3].T.reshape(-1), train=True, device=device)

    def __repr__(self) -> str:
        n = {s: len(sp.filenames) for s, sp in self.splits.items()}
        return (f"TripletData({self.label}: {n['train']} train / {n['valid']} valid / {n['test']} test images at "
                f"{self.cfg.input_size} px, {len(self.attributes)} attributes, {self.cfg.triplets_per_epoch} "
                f"triplets per epoch in batches of {self.cfg.batch})")


def load_data(cfg: "TripletConfig", mode: str = "default", data: Path | None = None, seed: int = 0,
              progress: bool = False) -> TripletData:
    """Step 1: the dataset folder (``data``, ``$FASHIONLAB_FASHIONAI`` or FashionSynth sized for ``mode``)."""
    root, label = fashionai_data(mode, data, seed, progress)
    return TripletData(root, cfg, seed=seed, progress=progress, label=label, mode=mode, real=is_real(data))


def build_model(cfg: TripletConfig):
    """Step 2: backbone → global average pooling → linear → L2 normalisation (the plain "Triplet network")."""
    from ..models import GlobalPoolEmbedding, SmallCNN, backbone, build_backbone

    if cfg.backbone == "smallcnn" and cfg.pretrained == "imagenet":
        raise ValueError("smallcnn has no ImageNet weights (it is trained from scratch); pretrained='imagenet' needs "
                         "a torchvision backbone")
    if cfg.pretrained == "fashionsynth":  # fashionlab's own pretraining (fashionlab.pretrain, notebook 07)
        net = build_backbone(cfg.backbone, width=cfg.width, stage=cfg.stage, pretrained="fashionsynth")
    else:
        net = (SmallCNN(width=cfg.width) if cfg.backbone == "smallcnn"
               else backbone(cfg.backbone, stage=cfg.stage, pretrained=cfg.pretrained == "imagenet"))
    return GlobalPoolEmbedding(net, cfg.dim, normalize=True)


def embed_split_items(model, images, split, device=None, batch: int = 256):
    """Embeddings of the queries and candidates of an ASEN split (one embedding per image, attribute-unaware),
    through :func:`fashionlab.engine.extract_features`."""
    import torch

    from ..engine import extract_features

    def batches(ids):
        for chunk in images.prefetch([ids[s:s + batch] for s in range(0, len(ids), batch)], device=device):
            yield images.batch(chunk)

    out = []
    for items in (split.queries, split.candidates):
        out.append(extract_features(model, batches(items[:, 0]), device=device) if len(items) else torch.empty(0))
    return out


def evaluate(model, data: TripletData, split: str = "test", device=None) -> dict:
    """Step 4: ASEN-protocol mAP (docs/protocols.md §4.1) of the attribute-unaware embedding on ``split``:
    per-attribute fractions and ``"overall"``."""
    from ..metrics import attribute_map

    sp = data.splits[split]
    qe, ce = embed_split_items(model, data.images[split], sp, device)
    q, c = sp.queries, sp.candidates
    return attribute_map(qe, q[:, 1], q[:, 2], ce, c[:, 1], c[:, 2])


def train(model, data: TripletData, cfg: TripletConfig, seed: int = 0, device=None, progress: bool = False,
          mode: str = "", loss=None, method: str = "Triplet network"):
    """Step 3: train with the triplet ranking loss ``max(0, m - s(a, p) + s(a, n))`` on cosine similarities
    (:class:`~fashionlab.losses.TripletRankingLoss`, or ``loss``) through :func:`fashionlab.engine.fit`: Adam,
    the learning rate halved every third of the epochs, the epoch with the best validation mAP kept. The
    trained model is cached under the data folder (same data, config, model and seed: loaded, not retrained).
    Returns the :class:`~fashionlab.engine.History`."""
    import torch

    from ..engine import fit
    from ..losses import TripletRankingLoss

    loss = loss if loss is not None else TripletRankingLoss(cfg.margin)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.epochs // 3), gamma=0.5)

    def step(model, t):
        return loss(model(data.triplet_images(t, device)))

    def eval_fn(model, epoch):
        return {"valid_mAP": 100 * float(evaluate(model, data, "valid", device)["overall"])}

    key = {"experiment": "triplet-baseline", "method": method, "mode": mode, "seed": seed, "config": cfg,
           "dataset": data.label, "loss": repr(loss)}
    return fit(model, step, lambda epoch: data.prefetched_batches(epoch, device), opt, cfg.epochs, scheduler=sched,
               device=device, seed=seed, eval_fn=eval_fn, monitor="valid_mAP", mode="max", restore_best=True,
               progress=progress, verbose=True, cache_key=key)


@dataclass
class TripletResult(Result):
    """``triplet-baseline``: the rows, plus the data, the trained model, its history and the config."""

    data: TripletData | None = None
    model: object = None
    history: object = None
    config: TripletConfig | None = None
    test: dict = field(default_factory=dict)


def report(data: TripletData, model, history, test: dict, cfg: TripletConfig) -> TripletResult:
    """Step 5: the results table (our test mAP beside the paper's "Triplet network" row)."""
    sp = data.splits["test"]
    return TripletResult(
        rows=map_rows("Triplet network", test, sp.schema.attributes),
        paper_rows=paper_rows("Triplet network", _dataset_name(sp.schema)),
        dataset=f"{data.label}, test split: {len(sp.queries)} queries, {len(sp.candidates)} candidates",
        notes=[f"{cfg.backbone} at {cfg.input_size} px, {cfg.epochs} epochs x {cfg.triplets_per_epoch} triplets, "
               f"best validation epoch {history.best_epoch}"],
        data=data, model=model, history=history, config=cfg, test=test)


@register("triplet-baseline", "plain triplet network (backbone + pooled embedding), ASEN triplets, mAP",
          notebook="00_attributes_data_protocol")
def triplet_baseline(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
                     model=None, config: TripletConfig | None = None) -> TripletResult:
    """The recipe: load the data, build the network (or take ``model``, e.g. one a student built), train,
    evaluate on the test split, report. ``config``: instead of ``TRIPLET_CONFIGS[mode]`` (e.g. a mode's config
    with its counts scaled down, :func:`fashionlab.experiments.scaled_down`)."""
    from ..engine import seed_everything

    cfg = with_start(config or TRIPLET_CONFIGS[mode], "triplet-baseline", mode)
    seed_everything(seed)
    d = load_data(cfg, mode, data, seed, progress)
    model = (model if model is not None else build_model(cfg)).to(device)
    history = train(model, d, cfg, seed=seed, device=device, progress=progress, mode=mode)
    return report(d, model, history, evaluate(model, d, "test", device), cfg)
