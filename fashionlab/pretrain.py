"""Pretraining on FashionSynth: the stand-in for the ImageNet start that every paper takes for granted (issue 21).

All six papers fine-tune an ImageNet network (VGG-16, AlexNet, ResNet-50, EfficientNet); the laptop modes train a
small network from scratch. ImageNet files cannot be fetched offline and a CPU cannot pretrain on ImageNet, but the
question "does a pretrained start change the result?" can be asked on FashionSynth. This module plays ImageNet's
part with three rules, fixed before any experiment was compared:

* **A corpus no experiment evaluates on.** :func:`pretraining_corpus` renders its own garments (``sample_garment``
  with :data:`CORPUS_SEED`, which no dataset uses; every dataset seed of the experiments is 0-99) with every
  single-garment preset mixed in turn (``wild``, ``hard``, ``clean``, ``asen`` and the shop and multi-label
  presets' render settings), at 64 px.
* **An objective that does not see the scored attributes.** ``contrastive`` (the default): SimCLR's NT-Xent loss
  between two augmented views of each image (random resized crop, flip, colour jitter, grey-scale; Chen et al.
  2020, Eq. 1) through a two-layer projection head; it reads no label at all. ``generic`` classifies garment
  type, main colour and fabric pattern (ImageNet-like generic labels; paper 04's shop preset and papers 05-06
  score some of these, so it is offered for comparison, not used by default); ``both`` adds the two losses.
* **Chosen by a measurement that is not an experiment's comparison.** :func:`linear_probe` fits a linear
  classifier per FashionAI attribute on frozen pooled features of a separate probe set (its own seed);
  ``benchmarks/pretrain_objectives.py`` prints that measurement (README, "A pretrained start without
  ImageNet"). Measured before any experiment ran from the pretrained start: every objective beats the untrained
  network on the mean probe accuracy, ``generic`` and ``both`` by under a point more than ``contrastive``; the
  default is ``contrastive``, the best objective that reads no label the experiments score (``generic`` sees
  garment type, colour and pattern, which papers 04-06 score).

:func:`pretrain` trains one backbone (a :class:`~fashionlab.models.SmallCNN` of a width, or a torchvision backbone
in ``full`` mode) through :func:`fashionlab.engine.fit`, whose trained-model cache keeps the weights under the data
folder (``<data>/checkpoints/pretrain/``, keyed by backbone, objective, corpus and config): a second call loads
them. ``fashionlab pretrain [--mode M] [--width W ...]`` trains the backbones of every experiment's config in that
mode and prints the one-time cost. The experiments use the weights through the start ``fashionsynth``
(``fashionlab reproduce --pretrained fashionsynth``, ``experiments.run(..., pretrained="fashionsynth")``,
``FASHIONLAB_PRETRAINED=fashionsynth``); :func:`load_pretrained` is what their backbone factory calls. Where the
user has ImageNet weights (``full`` mode, ``--pretrained imagenet``), those remain the first choice.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OBJECTIVES", "CORPUS_SEED", "PROBE_SEED", "PretrainConfig", "PRETRAIN_CONFIGS", "pretraining_corpus",
           "augment", "PretrainNet", "nt_xent", "pretrain", "load_pretrained", "pretrain_tag", "linear_probe",
           "pooled_features", "mode_backbones", "corpus_presets", "mode_scope"]

#: The pretraining objectives (module docstring).
OBJECTIVES = ("contrastive", "generic", "both")
#: The seed of the pretraining corpus's garments and scenes: no dataset of the experiments uses it.
CORPUS_SEED = 7919
#: The seed of the linear-probe images (neither the corpus nor any experiment's data).
PROBE_SEED = 104729
#: Bump when the corpus or the training changes in a way the config does not show (part of the cache key).
VERSION = 1


@dataclass(frozen=True)
class PretrainConfig:
    """How one backbone is pretrained. ``num_images`` corpus images at ``image_size`` px; ``epochs`` passes of
    batches of ``batch`` images with Adam at ``lr``; ``objective`` one of :data:`OBJECTIVES`; ``temperature`` the
    NT-Xent temperature τ; ``proj_dim`` the projection head's output size; ``crop_scale`` the area range of the
    random resized crop and ``view_size`` its output side in px (the experiments' inputs are 48-80 px; a 48 px
    view costs half of a 64 px one)."""

    num_images: int = 16000
    image_size: int = 64
    epochs: int = 4
    batch: int = 256
    lr: float = 2e-3
    objective: str = "contrastive"
    temperature: float = 0.2
    proj_dim: int = 64
    crop_scale: tuple[float, float] = (0.35, 1.0)
    view_size: int = 48

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if min(self.num_images, self.image_size, self.epochs, self.batch) < 1:
            raise ValueError("num_images, image_size, epochs and batch must be >= 1")


#: Per mode. ``quick`` pretrains a tiny backbone in seconds (CI); ``default`` is the one-time cost on a laptop CPU
#: (README: minutes per width); ``full`` pretrains the papers' backbones at 224 px on a GPU.
PRETRAIN_CONFIGS = {
    "quick": PretrainConfig(num_images=256, epochs=1, batch=64, view_size=32),
    "default": PretrainConfig(),
    "full": PretrainConfig(num_images=100_000, image_size=224, epochs=30, batch=256, lr=1e-3, view_size=224),
}


def corpus_presets():
    """The render settings the corpus cycles through: FashionSynth's four named presets and the shop and
    multi-label presets' settings (their own garments; sizes are set per call)."""
    from .synth import MULTILABEL_CONFIG, PRESETS, SHOP_CONFIG

    return {**PRESETS, "shop": SHOP_CONFIG, "multilabel": MULTILABEL_CONFIG}


def pretraining_corpus(num_images: int, image_size: int = 64, seed: int = CORPUS_SEED, progress: bool = False):
    """Render the pretraining corpus: ``num_images`` garments drawn with ``seed`` (:data:`CORPUS_SEED` by default),
    image ``i`` with the ``i mod 6``-th preset of :func:`corpus_presets`, at ``image_size`` px.

    Returns ``(images, labels)``: a ``(N, 3, S, S)`` uint8 tensor and a dict of int64 arrays of generic labels
    (``category``, ``colour``, ``pattern``, used only by the ``generic`` objective) and the FashionAI attribute
    values (``values``, ``(N, 8)``, used only by :func:`linear_probe`, never by pretraining)."""
    from .synth import CATEGORIES, render, sample_garment
    from .synth.patterns import COLOUR_NAMES, PATTERNS

    presets = [dataclasses.replace(c, image_size=int(image_size)) for c in corpus_presets().values()]
    rng = np.random.default_rng(seed)
    images = torch.empty((num_images, 3, image_size, image_size), dtype=torch.uint8)
    cat, col, pat = (np.empty(num_images, np.int64) for _ in range(3))
    values = np.empty((num_images, 8), np.int64)
    it = range(num_images)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="rendering the pretraining corpus", leave=False)
    pattern_names = list(PATTERNS)
    for i in it:
        spec = sample_garment(rng)
        img, _ = render(spec, presets[i % len(presets)], rng)
        images[i] = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        cat[i], col[i], pat[i] = (CATEGORIES.index(spec.category), COLOUR_NAMES.index(spec.colour),
                                  pattern_names.index(spec.pattern))
        values[i] = spec.values
    return images, {"category": cat, "colour": col, "pattern": pat, "values": values}


# ----------------------------------------------------------------------------------------------------------
# the objective
# ----------------------------------------------------------------------------------------------------------
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def augment(x: torch.Tensor, crop_scale=(0.35, 1.0), colour: bool = True, size: int | None = None) -> torch.Tensor:
    """One random view of a uint8 batch ``x`` ``(B, 3, S, S)``, as normalised floats of side ``size`` (default S): a random
    resized crop (area fraction in ``crop_scale``, aspect 3/4-4/3) and horizontal flip by one affine resampling,
    then, with ``colour``, brightness, contrast and saturation jitter (each ×U(0.6, 1.4)) and grey-scale with
    probability 0.2 (SimCLR's augmentations, Chen et al. 2020 §3, without blur at this size). Uses torch's
    global RNG (:func:`fashionlab.engine.fit` reseeds it per epoch)."""
    B, dev = x.shape[0], x.device
    x = x.float() / 255.0
    area = torch.empty(B, device=dev).uniform_(*crop_scale)
    logr = torch.empty(B, device=dev).uniform_(np.log(3 / 4), np.log(4 / 3))
    sw = (area * logr.exp()).sqrt().clamp(max=1.0)
    sh = (area / logr.exp()).sqrt().clamp(max=1.0)
    tx = (torch.rand(B, device=dev) * 2 - 1) * (1 - sw)
    ty = (torch.rand(B, device=dev) * 2 - 1) * (1 - sh)
    flip = torch.where(torch.rand(B, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sw * flip, tx, sh, ty
    grid = F.affine_grid(theta, [B, 3, size or x.shape[2], size or x.shape[3]], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if colour:
        f = lambda: torch.empty(B, 1, 1, 1, device=dev).uniform_(0.6, 1.4)  # noqa: E731
        x = x * f()
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * f() + m
        g = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
        x = (x - g) * f() + g
        grey = (torch.rand(B, 1, 1, 1, device=dev) < 0.2).float()
        x = grey * g + (1 - grey) * x
        x = x.clamp(0, 1)
    return (x - _MEAN.to(dev)) / _STD.to(dev)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent loss (Chen et al. 2020, Eq. 1) averaged over the 2B views: for view ``i`` with positive
    ``j``, ``-log exp(sim(i, j)/τ) / Σ_{k≠i} exp(sim(i, k)/τ)`` with cosine similarity ``sim``."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, target)


class PretrainNet(nn.Module):
    """A backbone with the pretraining heads: global average pooling, then a two-layer projection head
    (``contrastive``) and/or linear classifiers of garment type, colour and pattern (``generic``). Only the
    backbone is kept (:func:`load_pretrained`)."""

    def __init__(self, backbone: nn.Module, objective: str, proj_dim: int = 64, num_classes=(5, 1, 1)):
        super().__init__()
        self.backbone, self.objective = backbone, objective
        c = int(backbone.out_channels)
        if objective in ("contrastive", "both"):
            self.projection = nn.Sequential(nn.Linear(c, c), nn.ReLU(inplace=True), nn.Linear(c, proj_dim))
        if objective in ("generic", "both"):
            self.heads = nn.ModuleList(nn.Linear(c, int(k)) for k in num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally pooled backbone features ``(B, C)``."""
        return self.backbone(x).mean(dim=(2, 3))

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None, cfg: PretrainConfig):
        """The objective on a uint8 batch ``x`` (and its ``(B, 3)`` generic labels): returns ``(loss, metrics)``."""
        total, metrics = 0.0, {}
        if self.objective in ("contrastive", "both"):
            v1, v2 = (augment(x, cfg.crop_scale, size=cfg.view_size) for _ in range(2))
            h = self.features(torch.cat([v1, v2]))
            z = self.projection(h)
            c = nt_xent(z[: len(x)], z[len(x):], cfg.temperature)
            total, metrics["nt_xent"] = total + c, float(c.detach())
        if self.objective in ("generic", "both"):
            h = self.features(augment(x, cfg.crop_scale, colour=False, size=cfg.view_size))  # colour is one of the labels
            ce = sum(F.cross_entropy(head(h), labels[:, k]) for k, head in enumerate(self.heads)) / len(self.heads)
            total, metrics["generic_ce"] = total + ce, float(ce.detach())
        return total, metrics


# ----------------------------------------------------------------------------------------------------------
# training and the cache
# ----------------------------------------------------------------------------------------------------------
def _spec(name: str, width: int | None, stage: str | None) -> dict:
    return {"backbone": name, "width": int(width) if name == "smallcnn" else None,
            "stage": None if name == "smallcnn" else stage}


def _scratch_backbone(name: str, width: int | None, stage: str | None):
    from .models.backbones import SmallCNN, backbone

    return SmallCNN(width=int(width)) if name == "smallcnn" else backbone(name, stage=stage)


def pretrain_tag(name: str = "smallcnn", width: int | None = 32, stage: str | None = None,
                 cfg: PretrainConfig | None = None) -> str:
    """A short name of one pretrained backbone, written into the ``repr`` of the backbones that start from it (so
    a model started from it never shares a trained-model cache entry with another start):
    ``fashionsynth-contrastive-smallcnn16-<hash>``."""
    cfg = cfg or PRETRAIN_CONFIGS["default"]
    blob = json.dumps({"spec": _spec(name, width, stage), "cfg": dataclasses.asdict(cfg), "v": VERSION,
                       "seed": CORPUS_SEED}, sort_keys=True)
    short = f"{name}{width}" if name == "smallcnn" else f"{name}-{stage}"
    return f"fashionsynth-{cfg.objective}-{short}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


class _LazyCorpus:
    """The corpus of :func:`pretrain`, rendered on first use: a cached pretraining loads without rendering it."""

    def __init__(self, num_images: int, image_size: int, progress: bool):
        self.args, self._data = (num_images, image_size, progress), None

    def data(self):
        if self._data is None:
            n, size, progress = self.args
            images, labels = pretraining_corpus(n, size, progress=progress)
            self._data = (images, torch.from_numpy(np.stack([labels["category"], labels["colour"],
                                                             labels["pattern"]], 1)))
        return self._data

    def view(self, k: int):
        """Item ``k`` of the rendered pair (0: the images, 1: the generic labels), indexed like a tensor."""
        corpus = self

        class _View:
            def __getitem__(self, idx):
                return corpus.data()[k][idx]

        return _View()


def pretrain(name: str = "smallcnn", width: int | None = 32, stage: str | None = None, mode: str | None = None,
             cfg: PretrainConfig | None = None, device=None, progress: bool | None = None, verbose: bool = True,
             retrain: bool | None = None):
    """Pretrain the backbone ``name`` (``width`` for SmallCNN, ``stage`` for a torchvision one) on the corpus with
    ``cfg`` (default: :data:`PRETRAIN_CONFIGS` of ``mode``) through :func:`fashionlab.engine.fit`; a cached result
    (same backbone, config and code) is loaded instead of trained, and says so. Returns ``(net, history,
    seconds)``: the :class:`PretrainNet` (backbone and heads), fit's history and the wall seconds of this call."""
    from .config import get_mode
    from .engine import fit, seed_everything

    mode = get_mode(mode)
    cfg = cfg or PRETRAIN_CONFIGS[mode]
    t0 = time.perf_counter()
    corpus = _LazyCorpus(cfg.num_images, cfg.image_size, bool(progress))  # rendered only if fit trains
    images, generic = corpus.view(0), corpus.view(1)
    from .synth import CATEGORIES
    from .synth.patterns import COLOUR_NAMES, PATTERNS

    seed_everything(0)
    net = PretrainNet(_scratch_backbone(name, width, stage), cfg.objective, cfg.proj_dim,
                      (len(CATEGORIES), len(COLOUR_NAMES), len(PATTERNS)))
    n_batches = max(1, cfg.num_images // cfg.batch)

    def batches(epoch: int):
        g = torch.Generator().manual_seed(1000 + epoch)
        order = torch.randperm(cfg.num_images, generator=g)[: n_batches * cfg.batch]
        return list(order.view(n_batches, cfg.batch))

    def step(model, idx):
        dev = next(model.parameters()).device
        return model.loss(images[idx].to(dev, non_blocking=True), generic[idx].to(dev), cfg)

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=1e-5)
    key = {"experiment": "pretrain", "method": pretrain_tag(name, width, stage, cfg), "mode": mode, "seed": 0,
           "spec": _spec(name, width, stage), "config": dataclasses.asdict(cfg), "corpus_seed": CORPUS_SEED,
           "version": VERSION}
    hist = fit(net, step, batches, opt, cfg.epochs, device=device, progress=progress, verbose=verbose,
               cache_key=key, retrain=retrain)
    return net, hist, time.perf_counter() - t0


_MODE: ContextVar[str | None] = ContextVar("fashionlab_pretrain_mode", default=None)


@contextlib.contextmanager
def mode_scope(mode: str | None):
    """Within the block, :func:`load_pretrained` uses ``mode``'s pretraining config (``experiments.run`` sets the
    run's mode here, so a quick run pretrains the quick backbone)."""
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


def load_pretrained(net: nn.Module, name: str = "smallcnn", width: int | None = None, stage: str | None = None,
                    mode: str | None = None) -> str:
    """Load the FashionSynth-pretrained weights of backbone ``name`` into ``net`` (a freshly built backbone of that
    kind: a SmallCNN of ``width``, possibly with its last stride or ReLU changed, which changes no weight), training
    them first when they are not cached (:func:`pretrain`). Returns the weights' tag (:func:`pretrain_tag`).
    ``mode`` picks the pretraining config (default: the enclosing :func:`mode_scope`, else ``$FASHIONLAB_MODE``)."""
    from .config import get_mode

    mode = get_mode(mode or _MODE.get())
    if mode == "full" and name == "smallcnn":
        mode = "default"  # a SmallCNN in a full-mode config (tests): the laptop pretraining
    cfg = PRETRAIN_CONFIGS[mode]
    width = getattr(net, "width", width)
    pnet, hist, seconds = pretrain(name, width, stage, mode=mode, cfg=cfg, verbose=False)
    state = pnet.backbone.state_dict()
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("num_batches_tracked")]:
        raise ValueError(f"pretrained {name} (width {width}, stage {stage}) does not fit this network: missing "
                         f"{list(missing)[:4]}, unexpected {list(unexpected)[:4]}")
    return pretrain_tag(name, width, stage, cfg)


def mode_backbones(mode: str) -> list[tuple[str, int | None, str | None]]:
    """The distinct backbones ``(name, width, stage)`` of every experiment's config in ``mode``: what ``fashionlab
    pretrain --mode M`` pretrains."""
    from .experiments.scaling import CONFIG_TABLES, mode_config

    out = []
    for exp in CONFIG_TABLES:
        cfg = mode_config(exp, mode)
        for nf, wf, sf in (("backbone", "width", "stage"), ("local_backbone", "local_width", "stage"),
                           ("det_backbone", "det_width", "det_stage")):
            name = getattr(cfg, nf, None) or (getattr(cfg, "backbone", None) if nf == "local_backbone" and
                                              getattr(cfg, "local_width", None) else None)
            if not name:
                continue
            w = getattr(cfg, wf, None) or getattr(cfg, "width", None)
            spec = (name, int(w) if name == "smallcnn" and w else None, None if name == "smallcnn"
                    else getattr(cfg, sf, None))
            if spec not in out:
                out.append(spec)
    return out


# ----------------------------------------------------------------------------------------------------------
# what the features know: linear probes
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def pooled_features(backbone: nn.Module, images: torch.Tensor, batch: int = 512, device=None) -> torch.Tensor:
    """Globally pooled features ``(N, C)`` of uint8 ``images`` (normalised as in training), in eval mode, through
    :func:`fashionlab.engine.extract_features`."""
    from .engine import extract_features

    def embed(x):
        x = (x.float() / 255.0 - _MEAN.to(x.device)) / _STD.to(x.device)
        return backbone(x).mean(dim=(2, 3))

    return extract_features(embed, list(torch.split(images, batch)), device=device, model=backbone,
                            out_device="cpu")


def linear_probe(train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, test_y: np.ndarray,
                 steps: int = 300, weight_decay: float = 1e-4) -> float:
    """Accuracy (%) on ``test_x`` of a multinomial logistic regression fitted on frozen features ``train_x``
    (standardised with the training mean and spread) by full-batch L-BFGS: how linearly one attribute can be
    read from the features (Alain & Bengio 2016). Values absent from the training labels are never predicted."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = ((train_x - mu) / sd).double(), ((test_x - mu) / sd).double()
    ya, yb = torch.as_tensor(train_y), torch.as_tensor(test_y)
    k = int(max(ya.max(), yb.max())) + 1
    lin = nn.Linear(a.shape[1], k).double()
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(a), ya) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        logits = lin(b)
        logits[:, torch.bincount(ya, minlength=k) == 0] = float("-inf")
        return float((logits.argmax(1) == yb).double().mean() * 100)
