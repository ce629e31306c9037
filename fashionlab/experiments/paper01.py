"""Notebooks 01 and 02's experiments: paper 01 (``01_multicolumn_recognition_and_retrieval.txt``).

``recognition`` (paper 01 Fig. 4)
    SC, MC, SC-Rec+Ret and MC-Rec+Ret. Metric ``accuracy``: top-1 accuracy *within the annotated dimension*
    (the argmax over that dimension's values: the column's softmax for MC, the dimension's block of the single
    softmax for SC), per dimension and overall (the unweighted mean of the eight), on the test split's annotated
    items (queries + candidates). Metric ``accuracy (unannotated dims)``: the same prediction on every dimension
    an image was *not* annotated with, scored against FashionSynth's full ground truth (``ground_truth.jsonl``);
    the paper could only show examples of this (Fig. 5). Skipped, with a note, on data without ground truth.
``retrieval`` (paper 01 Table II)
    SiaNet, TriNet, Att-TriNet, Att-TriNet+Reg, CSN (paper 01's modified CSN) and MTL Ret+Reg. Metrics:
    ``triplet accuracy`` on fixed test triplets (:class:`~fashionlab.datasets.Paper01TripletPool` over the test
    split's annotated items, seed 0, docs/protocols.md §4.2 with the method's own similarity), ``R@5``,
    ``R@10``, ``R@20`` (hit rate averaged over dimensions, :func:`~fashionlab.metrics.recall_at_k`) and ``mAP``
    (ASEN protocol, §4.1), so later notebooks compare on the same yardstick.

Fairness: every method of an experiment trains on the *same* triplets (paper 01's pool, rebuilt each epoch
from ``(seed, epoch)``, the first ``triplets_per_epoch`` of it), in the same order, with the same number of
optimizer steps, the same backbone (the mode's: SmallCNN, or VGG-16 in ``full``), the same optimizer and schedule, the same initial seed,
and is selected on the same validation criterion (recognition: validation accuracy; retrieval: validation
triplet accuracy, §4.2). Recognition-only methods (SC, MC) apply the cross-entropy to the three images of each
triplet (each is annotated under the triplet's dimension), so they see exactly the images the joint models see.

The recipe, one public step at a time (a notebook can call each, or pass its own module into :func:`train`):
:func:`load_data` -> :func:`build_model` (the modules of :mod:`fashionlab.models.multitask`, each owning its
loss) -> :func:`train` (:func:`fashionlab.engine.fit`, trained models cached) -> :func:`evaluate` ->
:func:`report` (a :class:`Paper01Result`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets.sources import fashionai_data, is_real
from .paper01_tables import PAPER_DATASET, common_notes, paper_rows, recognition_notes, retrieval_notes
from .registry import Result, added_field, map_rows, register, with_start

__all__ = ["Paper01Config", "PAPER01_CONFIGS", "RECOGNITION_METHODS", "RETRIEVAL_METHODS", "Paper01Data",
           "Paper01Result", "load_data", "build_model", "train", "evaluate", "report", "item_embeddings",
           "embed_images", "triplet_scores", "retrieval_scores", "predict_values", "recognition_accuracy",
           "unannotated_accuracy", "train_variant", "joint_gradient_norms", "paper_rows", "PAPER_DATASET"]

RECOGNITION_METHODS = ("SC", "MC", "SC-Rec+Ret", "MC-Rec+Ret")
RETRIEVAL_METHODS = ("SiaNet", "TriNet", "Att-TriNet", "Att-TriNet+Reg", "CSN", "MTL Ret+Reg")


@dataclass(frozen=True)
class Paper01Config:
    """Sizes of paper 01's experiments per mode (the logic is the same in every mode).

    Paper 01's own settings that we keep: embedding 64, margin h = 0.3, λ1 = 5e-3, λ2 = 5e-4, α = 0.3, β = 0.7,
    learned masks N(0.9, 0.7), batch 32 triplets, Adam. What we change for a CPU (quick, default): a SmallCNN
    of ``width`` from scratch instead of an ImageNet VGG-16, small images; everywhere: lr 1e-3 halved every third
    of training (the triplet baseline's schedule) instead of 1e-5 for 150+ epochs.

    ``backbone``/``stage``: the shared trunk of every network (:func:`fashionlab.models.build_backbone`);
    ``full`` uses the paper's, VGG-16 with all layers before Pool5 (``vgg16``, ``conv5``: 512 x 14 x 14 at
    224 px), followed by the models' global average pooling. ``pretrained``: ``scratch`` (default) or
    ``imagenet`` (torchvision's ImageNet VGG-16, the paper's start; ``fashionlab reproduce --pretrained
    imagenet``). Plain VGG-16 trains poorly from scratch; ``vgg16_bn`` is the backbone to try then.
    """

    input_size: int
    width: int  # SmallCNN width, the same for every method (Att-TriNet: each of its 8 networks)
    epochs: int
    triplets_per_epoch: int
    batch: int  # triplets per step (3x as many images)
    lr: float
    dim: int = 64
    margin: float = 0.3  # paper 01's h, for every triplet loss (TriNet too: "same distance ... and margin")
    alpha: float = 0.3  # Eq. 6
    beta: float = 0.7
    lambda1: float = 5e-3  # Eq. 5
    lambda2: float = 5e-4
    contrastive_margin: float = 1.0  # SiaNet, on L2-normalised embeddings (distances in [0, 2])
    # SiaNet's pairs: "both" = positive (anchor, positive) and negative (anchor, negative) pairs, the usual
    # contrastive loss; "positive" = positive pairs only, as paper 01's text describes its SiaNet ("narrowing the
    # distances", "ignorance of opposite relationships between anchor and negative")
    sianet_pairs: str = "both"
    # the trunk (added fields: left out of the trained-model cache key at their defaults)
    backbone: str = added_field("smallcnn")
    stage: str | None = added_field(None)
    pretrained: str = added_field("scratch")  # "scratch" or "imagenet" (torchvision backbones only)


PAPER01_CONFIGS = {
    "quick": Paper01Config(input_size=32, width=8, epochs=2, triplets_per_epoch=1024, batch=32, lr=2e-3),
    # about 1.5-2 minutes per method on a 2-core CPU, validation included (8192 triplets per epoch took 3.3-3.5
    # minutes per method and notebook 02 27 minutes: over the 15-minute budget)
    "default": Paper01Config(input_size=64, width=16, epochs=12, triplets_per_epoch=4096, batch=32, lr=1e-3),
    # a GPU: the paper's VGG-16 (all layers before Pool5) at 224 px; ``width`` is the SmallCNN's, unused here
    "full": Paper01Config(input_size=224, width=32, epochs=30, triplets_per_epoch=28800, batch=32, lr=1e-3,
                          backbone="vgg16", stage="conv5"),
}


# ----------------------------------------------------------------------------------------------------------
# step 1: the data
# ----------------------------------------------------------------------------------------------------------
class Paper01Data:
    """One dataset folder in the ASEN split layout (docs/formats.md §5.1) ready for paper 01: ``splits``,
    ``images`` (each split decoded once at ``cfg.input_size``), ``labels`` (``(n, 3)`` rows (image, dimension,
    value); valid/test: queries then candidates), ``values`` (``(images, C)`` value of every (image, dimension),
    -1 where not annotated), ``sampler`` (paper 01's triplet pool, rebuilt each epoch) and ``eval_triplets``
    (the fixed valid/test triplets, seed 0)."""

    def __init__(self, root: Path, cfg: Paper01Config, seed: int = 0, progress: bool = False, mode: str = "",
                 label: str = "", stream: bool | None = None, real: bool = False):
        from ..datasets import Paper01TripletPool, image_source, read_asen_split

        self.root, self.cfg, self.seed, self.mode = Path(root), cfg, seed, mode
        self.label = label or self.root.name
        self.splits = {s: read_asen_split(root, s) for s in ("train", "valid", "test")}
        self.schema = self.splits["train"].schema
        self.C = len(self.schema.attributes)
        self.images = {s: image_source(root, sp.filenames, cfg.input_size, stream=stream, mode=mode, real=real,
                                       progress=progress, source=f"filenames_{s}.txt")
                       for s, sp in self.splits.items()}
        self.labels = {"train": self.splits["train"].labels}
        for s in ("valid", "test"):
            sp = self.splits[s]
            self.labels[s] = np.concatenate([sp.queries, sp.candidates]).astype(np.int64)
        self.values = {}
        for s, lab in self.labels.items():
            v = np.full((self.splits[s].num_images, self.C), -1, dtype=np.int64)
            v[lab[:, 0], lab[:, 1]] = lab[:, 2]
            self.values[s] = v
        self.sampler = Paper01TripletPool(self.labels["train"], self.schema, seed=seed, skip_rare=True,
                                          resample_each_epoch=True)
        self.eval_triplets = {s: Paper01TripletPool(self.labels[s], self.schema, seed=0, skip_rare=True).triplets()
                              for s in ("valid", "test")}

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        """The epoch's training triplets ``(anchor, positive, negative, dimension)`` in batches of ``cfg.batch``
        (the first ``cfg.triplets_per_epoch`` of the pool rebuilt from ``(seed, epoch)``)."""
        t = self.sampler.triplets(epoch)[: self.cfg.triplets_per_epoch]
        b = self.cfg.batch
        return [t[s:s + b] for s in range(0, len(t) - b + 1, b)]

    def prefetched_batches(self, epoch: int, device=None):
        """:meth:`train_batches` with their images decoded ahead in ``DataLoader`` workers when streaming (else the
        list itself): what the recipe hands to ``fit``."""
        from ..datasets import triplet_ids

        return self.images["train"].prefetch(self.train_batches(epoch), ids_of=triplet_ids, device=device)

    def triplet_inputs(self, t: np.ndarray, device=None):
        """``(x, attr, value)`` of a batch of triplets ``t`` (B, 4): the ``3B`` training images (anchors, then
        positives, then negatives; random flips), each image's dimension (the triplet's) and its value there:
        the input of every model's ``loss(x, attr, value)``."""
        import torch

        ids = t[:, :3].T.reshape(-1)
        x = self.images["train"].batch(ids, train=True, device=device)
        attr = np.tile(t[:, 3], 3)
        val = self.values["train"][ids, attr]
        return x, torch.from_numpy(attr).to(device), torch.from_numpy(val).to(device)

    def __repr__(self) -> str:
        n = {s: sp.num_images for s, sp in self.splits.items()}
        return (f"Paper01Data({self.label}: {n['train']} train / {n['valid']} valid / {n['test']} test images at "
                f"{self.cfg.input_size} px, {self.C} dimensions, {len(self.labels['train'])} training labels, "
                f"{self.cfg.triplets_per_epoch} triplets per epoch in batches of {self.cfg.batch})")


def load_data(cfg: Paper01Config, mode: str = "default", data: Path | None = None, seed: int = 0,
              progress: bool = False) -> Paper01Data:
    """Step 1: the dataset folder (``data``, ``$FASHIONLAB_FASHIONAI`` or FashionSynth sized for ``mode``)."""
    root, label = fashionai_data(mode, data, seed, progress)
    return Paper01Data(root, cfg, seed=seed, progress=progress, mode=mode, label=label, real=is_real(data))


# ----------------------------------------------------------------------------------------------------------
# step 2: the model
# ----------------------------------------------------------------------------------------------------------
def build_model(method: str, cfg: Paper01Config, data: Paper01Data, seed: int = 0):
    """Step 2: a fresh, untrained model of ``method`` (one of :data:`RECOGNITION_METHODS` or
    :data:`RETRIEVAL_METHODS`), the architectures of paper 01 Fig. 4 / Table II on ``cfg``'s backbone (a SmallCNN,
    or VGG-16 in ``full``: :func:`fashionlab.models.multitask.trunk`), built right
    after seeding every RNG with ``seed`` (the same initial state for every method). Every model exposes
    ``cond(x, c)`` and ``loss(x, attr, value)`` (:mod:`fashionlab.models.multitask`). ``data``: the
    :class:`Paper01Data`, or just the value counts (a sequence or an ``AttributeSchema``)."""
    from ..engine import seed_everything
    from ..models import build_backbone
    from ..models.multitask import AttNets, GlobalNet, JointNet, trunk

    nv = data.schema.num_values if isinstance(data, Paper01Data) else getattr(data, "num_values", data)
    w, d = cfg.width, cfg.dim
    joint = dict(margin=cfg.margin, lambda1=cfg.lambda1, lambda2=cfg.lambda2, alpha=cfg.alpha, beta=cfg.beta)
    att = dict(margin=cfg.margin, alpha=cfg.alpha, beta=cfg.beta)
    builders = {
        "SC": lambda: JointNet(w, nv, d, head="single", retrieval=False, **joint),
        "MC": lambda: JointNet(w, nv, d, head="multi", retrieval=False, **joint),
        "SC-Rec+Ret": lambda: JointNet(w, nv, d, head="single", retrieval=True, **joint),
        "MC-Rec+Ret": lambda: JointNet(w, nv, d, head="multi", retrieval=True, **joint),
        "SiaNet": lambda: GlobalNet(w, d, "contrastive", cfg.margin, cfg.contrastive_margin, cfg.sianet_pairs),
        "TriNet": lambda: GlobalNet(w, d, "triplet", cfg.margin),
        "Att-TriNet": lambda: AttNets(w, nv, d, reg=False, **att),
        "Att-TriNet+Reg": lambda: AttNets(w, nv, d, reg=True, **att),
        "CSN": lambda: JointNet(w, nv, d, head=None, retrieval=True, **joint),
        "MTL Ret+Reg": lambda: JointNet(w, nv, d, head="multi", retrieval=True, **joint),
    }
    if method not in builders:
        raise KeyError(f"unknown method {method!r}; paper 01's: {', '.join(builders)}")
    make = None
    if cfg.backbone != "smallcnn" or cfg.pretrained != "scratch":  # SmallCNN from scratch: the models as built
        make = lambda: build_backbone(cfg.backbone, width=w, stage=cfg.stage, pretrained=cfg.pretrained)  # noqa: E731
    seed_everything(seed)
    with trunk(make):
        return builders[method]()


# ----------------------------------------------------------------------------------------------------------
# step 3: training
# ----------------------------------------------------------------------------------------------------------
def selects_on(method: str) -> str:
    """``"recognition"`` (validation accuracy) for :data:`RECOGNITION_METHODS`, else ``"retrieval"``
    (validation triplet accuracy, docs/protocols.md §4.2): the criterion and the experiment of ``method``."""
    return "recognition" if method in RECOGNITION_METHODS else "retrieval"


def train(method: str, model, data: Paper01Data, cfg: Paper01Config | None = None, seed: int = 0, device=None,
          progress: bool = False, cache: bool = True):
    """Step 3: train ``model`` on paper 01's triplets with its own ``model.loss(x, attr, value)`` (Eq. 1 or the
    single-column CE, Eq. 4-5, combined by Eq. 6) through :func:`fashionlab.engine.fit`: Adam at ``cfg.lr``,
    halved every third of the epochs, the epoch with the best validation score kept (accuracy for recognition
    methods, triplet accuracy otherwise). The trained model is cached under the data folder (same method, mode,
    seed, config, data and model: loaded, not retrained). ``cache=False`` always trains and keeps nothing: for a
    module whose behaviour the cache's code digest cannot see (a notebook exercise's loss or head reached
    through a global name or an inherited method, which the student may still change).
    ``device`` defaults to the model's. Returns the :class:`~fashionlab.engine.History`."""
    import torch

    from ..engine import fit
    from ..metrics import triplet_accuracy

    cfg = cfg or data.cfg
    device = device if device is not None else next(model.parameters()).device
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.epochs // 3), gamma=0.5)
    select = selects_on(method)

    def step(model, t):  # one batch of triplets -> (loss, metrics), the model's own loss (Eq. 1-6)
        return model.loss(*data.triplet_inputs(t, device))

    def eval_fn(model, epoch):
        if select == "recognition":
            return {"valid_accuracy": 100 * recognition_accuracy(model, data, "valid", device)["overall"]}
        s_pos, s_neg, _ = triplet_scores(item_embeddings(model, data, "valid", device), data, "valid")
        return {"valid_triplet_acc": 100 * triplet_accuracy(s_pos, s_neg)}

    key = {"experiment": select, "method": method, "mode": data.mode, "seed": seed, "config": cfg,
           "dataset": data.label}
    history = fit(model, step, lambda epoch: data.prefetched_batches(epoch, device), opt, cfg.epochs,
                  scheduler=sched, device=device, seed=seed,
                  eval_fn=eval_fn, monitor="valid_accuracy" if select == "recognition" else "valid_triplet_acc",
                  mode="max", restore_best=True, progress=progress, verbose=True, cache_key=key if cache else None)
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------------------
# step 4: evaluation (every pass over a split goes through engine.extract_features)
# ----------------------------------------------------------------------------------------------------------
def embed_images(model, data: Paper01Data, split: str, ids, conds, device=None, batch: int = 256):
    """``model.cond`` of images ``ids`` of ``split`` under dimensions ``conds`` (one int or one per image):
    ``(len(ids), d)`` unit-norm conditioned embeddings on the CPU."""
    import torch

    from ..engine import extract_features

    ids = np.asarray(ids)
    conds = np.array(np.broadcast_to(np.asarray(conds), (len(ids),)), dtype=np.int64)
    imgs = data.images[split]

    def batches():
        starts = list(range(0, len(ids), batch))
        for s, chunk in zip(starts, imgs.prefetch([ids[s:s + batch] for s in starts], device=device)):
            yield imgs.batch(chunk), torch.from_numpy(conds[s:s + batch])

    return extract_features(lambda b: model.cond(b[0], b[1]), batches(), device=device, model=model,
                            out_device="cpu")


def item_embeddings(model, data: Paper01Data, split: str, device=None, batch: int = 256):
    """Conditioned embeddings of every annotated item of ``split`` (queries then candidates), ``(n, d)``."""
    lab = data.labels[split]
    return embed_images(model, data, split, lab[:, 0], lab[:, 1], device, batch)


def triplet_scores(emb, data: Paper01Data, split: str):
    """Similarities anchor-positive and anchor-negative of the fixed triplets of ``split`` (dot products of the
    unit-norm conditioned embeddings of the items), and the triplets' dimensions."""
    import torch

    lab = data.labels[split]
    row = {(int(i), int(a)): r for r, (i, a) in enumerate(lab[:, :2])}
    t = data.eval_triplets[split]
    ra, rp, rn = (torch.tensor([row[(int(x), int(a))] for x, a in zip(t[:, k], t[:, 3])]) for k in range(3))
    e = emb.float()
    return (e[ra] * e[rp]).sum(1), (e[ra] * e[rn]).sum(1), t[:, 3]


def retrieval_scores(model, data: Paper01Data, split: str, device=None) -> dict:
    """``{"triplet", "recall", "map"}``: triplet accuracy on the fixed triplets (docs/protocols.md §4.2), R@5/10/20
    and the ASEN-protocol mAP (§4.1) of the conditioned embeddings, fractions per dimension and overall."""
    from ..metrics import attribute_map, recall_at_k, triplet_accuracy

    emb = item_embeddings(model, data, split, device)
    sp = data.splits[split]
    nq = len(sp.queries)
    q, c = sp.queries, sp.candidates
    s_pos, s_neg, cond = triplet_scores(emb, data, split)
    return {
        "triplet": triplet_accuracy(s_pos, s_neg, conditions=cond),
        "recall": recall_at_k(emb[:nq], q[:, 1], q[:, 2], emb[nq:], c[:, 1], c[:, 2], ks=(5, 10, 20)),
        "map": attribute_map(emb[:nq], q[:, 1], q[:, 2], emb[nq:], c[:, 1], c[:, 2]),
    }


def predict_values(model, data: Paper01Data, split: str, ids, device=None, batch: int = 256) -> np.ndarray:
    """``(len(ids), C)`` predicted value of every dimension of images ``ids`` (argmax within each dimension)."""
    from ..engine import extract_features

    imgs = data.images[split]

    def batches():
        for chunk in imgs.prefetch([ids[s:s + batch] for s in range(0, len(ids), batch)], device=device):
            yield imgs.batch(chunk)

    return extract_features(lambda x: model.rec.predict(model.logits(x)), batches(), device=device, model=model,
                            out_device="cpu").numpy()


def recognition_accuracy(model, data: Paper01Data, split: str, device=None) -> dict:
    """Accuracy within the annotated dimension (paper 01's "normal" accuracy, Fig. 4), per dimension
    (fractions) and their unweighted mean."""
    lab = data.labels[split]
    pred = predict_values(model, data, split, lab[:, 0], device)
    ok = pred[np.arange(len(lab)), lab[:, 1]] == lab[:, 2]
    per = {a: float(ok[lab[:, 1] == a].mean()) for a in range(data.C) if (lab[:, 1] == a).any()}
    return {"per": per, "overall": float(np.mean(list(per.values())))}


def unannotated_accuracy(model, data: Paper01Data, split: str, device=None) -> dict | None:
    """Accuracy on the dimensions an image was not annotated with (what paper 01 Fig. 5 shows), against
    FashionSynth's ground truth: ``{"all", "visible"}`` each ``{"per", "overall", "n"}``; None when the folder
    has no ``ground_truth.jsonl``."""
    if not (data.root / "ground_truth.jsonl").exists():
        return None
    from ..synth import load_ground_truth

    attrs = list(data.schema.attributes)
    truth = np.full((data.splits[split].num_images, data.C), -1, dtype=np.int64)
    for r in load_ground_truth(data.root, split):
        truth[r["id"]] = [int(r["values"][a]) for a in attrs]
    ids = np.unique(data.labels[split][:, 0])
    pred = predict_values(model, data, split, ids, device)
    unannotated = (data.values[split][ids] < 0) & (truth[ids] >= 0)
    # "Invisible" value of each dimension (value 0 in FashionAI), -1 where the schema has none
    invisible = np.array([list(data.schema.values.get(a, ())).index("Invisible")
                          if "Invisible" in data.schema.values.get(a, ()) else -1 for a in attrs])
    out = {}
    for key, mask in (("all", unannotated), ("visible", unannotated & (truth[ids] != invisible[None, :]))):
        per = {a: float((pred[mask[:, a], a] == truth[ids[mask[:, a]], a]).mean())
               for a in range(data.C) if mask[:, a].any()}
        out[key] = {"per": per, "overall": float(np.mean(list(per.values()))) if per else float("nan"),
                    "n": int(mask.sum())}
    return out


def evaluate(method: str, model, data: Paper01Data, device=None, split: str = "test") -> dict:
    """Step 4: score ``model`` on ``split`` as ``method``'s experiment does. Recognition methods:
    ``{"accuracy": recognition_accuracy, "unannotated": unannotated_accuracy (None without ground truth)}``;
    retrieval methods: :func:`retrieval_scores`."""
    if selects_on(method) == "recognition":
        return {"accuracy": recognition_accuracy(model, data, split, device),
                "unannotated": unannotated_accuracy(model, data, split, device)}
    return retrieval_scores(model, data, split, device)


# ----------------------------------------------------------------------------------------------------------
# step 5: the report
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Paper01Result(Result):
    """``recognition`` / ``retrieval``: the rows, plus the data, the config, the trained models, their
    training histories and their test scores (:func:`evaluate`'s dicts), each keyed by method."""

    data: Paper01Data | None = None
    config: Paper01Config | None = None
    models: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)


def _pct(x: float) -> float:
    return round(100 * float(x), 2)


def _attr_rows(method: str, metric: str, per: dict, overall: float, attributes) -> list[dict]:
    rows = [{"method": method, "metric": metric, "attribute": attributes[a], "value": _pct(v)}
            for a, v in sorted(per.items()) if a != "overall"]
    rows.append({"method": method, "metric": metric, "value": _pct(overall)})
    return rows


def report(experiment: str, data: Paper01Data, cfg: Paper01Config, models: dict, histories: dict,
           scores: dict) -> Paper01Result:
    """Step 5: the results table of ``experiment`` from the methods' test scores, with the notes."""
    attrs = list(data.schema.attributes)
    te = data.splits["test"]
    if experiment == "recognition":
        metrics = (("accuracy", "accuracy", None), ("accuracy (unannotated dims)", "unannotated", "all"),
                   ("accuracy (unannotated dims, visible)", "unannotated", "visible"))
        rows = []
        for metric, key, sub in metrics:
            for m, s in scores.items():
                r = s[key] if sub is None else (s[key] or {}).get(sub)
                if r is not None and (sub != "visible" or r["per"]):
                    rows += _attr_rows(m, metric, r["per"], r["overall"], attrs)
        notes = recognition_notes((data.root / "ground_truth.jsonl").exists())
        dataset = f"{data.label}, test split: {len(te.queries) + len(te.candidates)} annotated items"
    else:
        rows = []
        for m, r in scores.items():
            per = {k: v for k, v in r["triplet"].items() if k != "overall"}
            rows += _attr_rows(m, "triplet accuracy", per, r["triplet"]["overall"], attrs)
        rows += [{"method": m, "metric": f"R@{k}", "value": _pct(r["recall"][k]["overall"])}
                 for m, r in scores.items() for k in (5, 10, 20)]
        for m, r in scores.items():
            rows += map_rows(m, r["map"], attrs)
        notes = retrieval_notes(len(data.eval_triplets["test"]))
        dataset = f"{data.label}, test split: {len(te.queries)} queries, {len(te.candidates)} candidates"
    notes += common_notes(cfg, data, list(models), histories)
    return Paper01Result(rows=rows, paper_rows=paper_rows(experiment), dataset=dataset, notes=notes, data=data,
                         config=cfg, models=models, histories=histories, scores=scores)


def _experiment(name: str, methods, mode: str, data: Path | None, seed: int, progress: bool, device,
                models: dict | None, config: Paper01Config | None = None) -> Paper01Result:
    """The recipe of both experiments: load the data, then per method build (or take ``models[method]``, e.g.
    a student's module), train, evaluate; then report. ``config``: instead of ``PAPER01_CONFIGS[mode]`` (e.g.
    a mode's config with its counts scaled down, :func:`fashionlab.experiments.scaled_down`)."""
    cfg = with_start(config or PAPER01_CONFIGS[mode], name, mode)
    d = load_data(cfg, mode, data, seed, progress)
    trained, histories, scores = {}, {}, {}
    for m in methods:
        model = (models or {}).get(m)
        model = model if model is not None else build_model(m, cfg, d, seed)
        histories[m] = train(m, model, d, cfg, seed, device, progress)
        trained[m], scores[m] = model, evaluate(m, model, d, device)
    return report(name, d, cfg, trained, histories, scores)


@register("recognition", "paper 01 Fig. 4: single- vs multi-column recognition, alone and joint with retrieval",
          notebook="01_multicolumn_recognition")
def recognition(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
                models: dict | None = None, config: Paper01Config | None = None) -> Paper01Result:
    """SC, MC, SC-Rec+Ret and MC-Rec+Ret (paper 01 Fig. 4) through :func:`_experiment`'s steps."""
    return _experiment("recognition", RECOGNITION_METHODS, mode, data, seed, progress, device, models, config)


@register("retrieval", "paper 01 Table II: attribute-aware retrieval, SiaNet to MTL Ret+Reg",
          notebook="02_conditional_similarity")
def retrieval(mode: str, data: Path | None, seed: int, progress: bool = True, device=None,
              models: dict | None = None, config: Paper01Config | None = None) -> Paper01Result:
    """SiaNet, TriNet, Att-TriNet(+Reg), CSN and MTL Ret+Reg (paper 01 Table II) through the same steps."""
    return _experiment("retrieval", RETRIEVAL_METHODS, mode, data, seed, progress, device, models, config)


# ----------------------------------------------------------------------------------------------------------
# investigations of notebooks 01-02 and scripts/ablate_paper01.py
# ----------------------------------------------------------------------------------------------------------
def train_variant(method: str, data: Paper01Data, seed: int = 0, progress: bool = False, device=None,
                  **changes) -> dict:
    """Train ``method`` with some :class:`Paper01Config` fields changed (e.g. ``alpha=0.7, beta=0.3`` for Eq. 6's
    weights, ``lambda1=0`` for Eq. 5) and score it on the test split: the ablations of notebooks 01 and 02.

    The same steps as the experiments (build, train, evaluate); recognition methods are scored on accuracy,
    retrieval methods on triplet accuracy. Returns ``{"method", "changes", "seed", "accuracy" or "triplet
    accuracy" (percent), "best_epoch", "model", "history"}``."""
    cfg = dataclasses.replace(data.cfg, **changes)
    model = build_model(method, cfg, data, seed)
    hist = train(method, model, data, cfg, seed, device, progress)
    out = {"method": method, "changes": dict(changes), "seed": seed, "best_epoch": hist.best_epoch,
           "model": model, "history": hist}
    if selects_on(method) == "recognition":
        out["accuracy"] = _pct(recognition_accuracy(model, data, "test", device)["overall"])
    else:
        out["triplet accuracy"] = _pct(retrieval_scores(model, data, "test", device)["triplet"]["overall"])
    return out


def joint_gradient_norms(model, data: Paper01Data, alpha: float | None = None, beta: float | None = None,
                         num_batches: int = 8, seed: int = 0) -> dict:
    """How hard each term of Eq. 6 pulls on the shared embedding network of a joint model (SC/MC-Rec+Ret,
    MTL Ret+Reg): the L2 norm of the gradient of ``alpha * CE`` and of ``beta * (triplet + Eq. 5 regularisers)``
    with respect to the embedding network's parameters (backbone + FC), each averaged over ``num_batches``
    training batches of epoch ``seed``'s triplets. ``alpha``/``beta`` default to the data's config (paper 01:
    0.3 / 0.7). The model is copied; BatchNorm runs in training mode on the copy, as during training.

    Returns ``{"alpha*CE": float, "beta*triplet": float, "ratio": beta*triplet / alpha*CE}``."""
    import copy

    import torch

    alpha = data.cfg.alpha if alpha is None else alpha
    beta = data.cfg.beta if beta is None else beta
    m = copy.deepcopy(model).train()
    dev = next(m.parameters()).device
    params = [p for p in m.embedding.parameters() if p.requires_grad]
    sums = {"alpha*CE": 0.0, "beta*triplet": 0.0}
    batches = data.train_batches(seed)[:num_batches]
    with torch.random.fork_rng(devices=[]):  # the same augmentation on every call, the caller's RNG untouched
        torch.manual_seed(seed)
        for t in batches:
            ce, trip, _ = m.loss_terms(*data.triplet_inputs(t, dev))
            for key, loss in (("alpha*CE", alpha * ce), ("beta*triplet", beta * trip)):
                g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                sums[key] += float(torch.sqrt(sum((x.float() ** 2).sum() for x in g if x is not None)))
    out = {k: v / len(batches) for k, v in sums.items()}
    out["ratio"] = out["beta*triplet"] / out["alpha*CE"] if out["alpha*CE"] > 0 else float("inf")
    return out
