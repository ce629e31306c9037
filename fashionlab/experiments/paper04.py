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

Fairness: every method trains on the same images in the same order with the same trunk (SmallCNN, output stride
8), optimiser, schedule and number of epochs (``epochs + stage2_epochs``; ``w/o parts`` and ``w/o parts & ranking``
share their first ``epochs``, which are identical by construction). All methods are scored on the same queries,
gallery and manipulations.

Data: FashionSynth's ``shop`` preset (:mod:`fashionlab.synth.shop`) with a design catalogue (so exact matches
exist), rendered at ``image_size`` (where jump detection runs) and seen by the networks at ``input_size``.
Attributes that do not apply (a skirt's collar) count as one more value, "n/a", when matching; they are not
trained on. ``--data`` runs on a real ADDE-layout folder (Shopping100k's split files with its images; not
public, docs/formats.md §5.6): no ground truth there, so the case target is jump detection's rule and the part
rows are skipped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .registry import Outcome, register

__all__ = ["METHODS", "PART_OF", "PartSearchConfig", "PART_SEARCH_CONFIGS", "ShopSearchData", "shop_data",
           "build_backbone", "build_method", "train_method", "train_regressor", "embed", "class_prototypes",
           "evaluate_search", "manipulation_protocol", "recognition_accuracy", "part_scores", "paper_rows",
           "part_search"]

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


PART_SEARCH_CONFIGS = {
    "quick": PartSearchConfig(num_images=480, designs=160, image_size=96, input_size=64, width=8, epochs=1,
                              stage2_epochs=1, regressor_images=32, regressor_epochs=10, rounds=2,
                              train_fraction=0.5, query_fraction=0.2),
    "default": PartSearchConfig(num_images=7200, designs=3000, image_size=128, input_size=80, width=24, epochs=8,
                                stage2_epochs=8),
    "full": PartSearchConfig(num_images=24000, designs=10000, image_size=128, input_size=96, width=32, epochs=20,
                             stage2_epochs=20, regressor_epochs=100),
}

KS = (5, 10, 20)


class ShopSearchData:
    """One shop dataset ready for the experiment: labels, images at two sizes, parts from jump detection and (on
    FashionSynth) the true parts and cases.

    Per split (``"train"``, ``"test"``): ``images[split]`` (uint8 ``(N, 3, S, S)`` at ``image_size``), ``inputs``
    (the same at ``input_size``), ``labels`` (``(N, A)``, -1 = missing, as in the label files), ``match_labels``
    (missing = -1, not applicable = the extra value ``K_a``), ``jump`` (:class:`~fashionlab.parts.PartExtraction`
    per image), ``boxes``/``present`` (jump detection's parts at ``input_size``, ``(N, P, 4)`` / ``(N, P)``),
    ``gt_boxes``/``gt_present``, ``case`` (the "Extract Parts?" target: the true case on FashionSynth, else the
    jump rule's), ``records`` (ground truth or None). ``queries``/``gallery``: test image ids (§6).
    """

    def __init__(self, root: Path, cfg: PartSearchConfig, progress: bool = False):
        import torch

        from ..datasets import read_adde_split
        from ..models.partsearch import CASES3
        from ..parts import PART_NAMES, SYNTH_PART_NAMES

        self.root, self.cfg = Path(root), cfg
        self.part_names = PART_NAMES
        self.splits = {s: read_adde_split(self.root, s) for s in ("train", "test")}
        sp = self.splits["test"]
        self.schema = sp.schema
        self.attributes = tuple(sp.attributes)
        self.general = sp.general or self.attributes[:1]
        self.special = sp.special or self.attributes[len(self.general):]
        self.num_values = dict(zip(self.attributes, sp.attr_num))
        self.queries, self.gallery = sp.queries, sp.gallery
        if not len(self.queries) or not len(self.gallery):
            raise ValueError(f"{self.root}: the test split needs query_test.txt and gallery_test.txt (paper 04 §6)")
        gt_file = self.root / "ground_truth.jsonl"
        self.has_gt = gt_file.is_file()
        cases = CASES3
        self.images, self.inputs, self.labels, self.match_labels, self.records = {}, {}, {}, {}, {}
        self.jump, self.boxes, self.present, self.gt_boxes, self.gt_present, self.case = {}, {}, {}, {}, {}, {}
        self.jump_case = {}
        self.jump_seconds = 0.0
        for s, split in self.splits.items():
            self.images[s], self.inputs[s] = self._decode(split, progress)
            self.labels[s] = split.labels
            recs = None
            if self.has_gt:
                from ..synth.shop import load_shop_ground_truth

                recs = load_shop_ground_truth(self.root, s)
            self.records[s] = recs
            self.match_labels[s] = self._match_labels(split.labels, recs)
            t0 = time.perf_counter()
            self.jump[s] = self._extract(self.images[s])
            self.jump_seconds += time.perf_counter() - t0
            k = cfg.input_size / cfg.image_size
            self.boxes[s], self.present[s] = self._box_array([j.parts for j in self.jump[s]], k)
            rule = np.array([cases.index(j.case) if j.case in cases else 0 for j in self.jump[s]])
            if recs is not None:
                gt_parts = [{p: r["parts"].get(SYNTH_PART_NAMES.get(p, p)) for p in PART_NAMES} for r in recs]
                self.gt_boxes[s], self.gt_present[s] = self._box_array(gt_parts, k)
                self.case[s] = np.array([cases.index(r["part_case"]) for r in recs])
            else:
                self.case[s] = rule
            self.jump_case[s] = rule
        self._mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
        self._std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255

    # -- loading -------------------------------------------------------------------------------------------
    def _decode(self, split, progress):
        import torch
        import torch.nn.functional as F

        from ..datasets import TensorImages

        hi = TensorImages(self.root, split.filenames, self.cfg.image_size, progress=progress,
                          source=str(split.files["filenames"])).data
        if self.cfg.input_size == self.cfg.image_size:
            return hi, hi
        lo = torch.empty((len(hi), 3, self.cfg.input_size, self.cfg.input_size), dtype=torch.uint8)
        for s in range(0, len(hi), 512):
            y = F.interpolate(hi[s:s + 512].float(), size=(self.cfg.input_size,) * 2, mode="bilinear",
                              antialias=True, align_corners=False)
            lo[s:s + 512] = y.round_().clamp_(0, 255).to(torch.uint8)
        return hi, lo

    def _match_labels(self, labels: np.ndarray, recs) -> np.ndarray:
        """Labels for exact matching: missing = -1; not applicable (ground truth says None) = the extra value K_a."""
        out = labels.copy()
        if recs is None:
            return out
        for j, a in enumerate(self.attributes):
            na = np.array([r["attributes"].get(a) is None for r in recs])
            out[na, j] = self.num_values[a]
        return out

    @staticmethod
    def _extract(images):
        from ..parts import extract_parts_batch

        out = []
        for s in range(0, len(images), 256):
            out += extract_parts_batch(images[s:s + 256])
        return out

    def _box_array(self, parts: list[dict], k: float):
        boxes = np.zeros((len(parts), len(self.part_names), 4), dtype=np.float32)
        present = np.zeros((len(parts), len(self.part_names)), dtype=bool)
        for i, d in enumerate(parts):
            for j, p in enumerate(self.part_names):
                if d.get(p) is not None:
                    boxes[i, j] = np.asarray(d[p], dtype=np.float32) * k
                    present[i, j] = True
        return boxes, present

    # -- batches -------------------------------------------------------------------------------------------
    def train_labels(self, split: str, ids) -> dict:
        """``{attribute: (B,) labels}`` for Eq. 1 / Eq. 3 (-1 = no label), plus ``"general"`` (the combination
        of the general attributes: §4.5's stricter rule, anchor and positive share every general attribute)."""
        lab = self.labels[split][np.asarray(ids)]
        out = {a: lab[:, j] for j, a in enumerate(self.attributes)}
        g = lab[:, [self.attributes.index(a) for a in self.general]]
        code = np.zeros(len(g), dtype=np.int64)
        for j, a in enumerate(self.general):
            code = code * (self.num_values[a] + 1) + g[:, j]
        out["general"] = np.where((g >= 0).all(1), code, -1)
        return out

    def batch(self, split: str, ids, train: bool = False, device=None, parts: str = "jump"):
        """Normalised inputs ``(B, 3, s, s)``, part boxes ``(B, P, 4)``, ``present`` ``(B, P)`` (``parts``: "jump",
        "gt" or "none"), with the same random horizontal flip of image and boxes when ``train`` (the sleeves
        swap sides)."""
        import torch

        ids = np.asarray(ids)
        x = self.inputs[split][torch.from_numpy(ids)].float()
        if parts == "gt":
            b, p = self.gt_boxes[split][ids], self.gt_present[split][ids]
        elif parts == "none":
            b, p = np.zeros((len(ids), len(self.part_names), 4), np.float32), np.zeros((len(ids), len(self.part_names)), bool)
        else:
            b, p = self.boxes[split][ids], self.present[split][ids]
        boxes, present = torch.from_numpy(b.copy()), torch.from_numpy(p.copy())
        if train:
            flip = torch.rand(len(ids)) < 0.5
            x[flip] = x[flip].flip(-1)
            w = float(self.cfg.input_size)
            fb = boxes[flip]
            fb = torch.stack([w - fb[..., 2], fb[..., 1], w - fb[..., 0], fb[..., 3]], -1)
            perm = list(range(len(self.part_names)))  # a mirrored left sleeve is a right sleeve
            li, ri = self.part_names.index("left_sleeve"), self.part_names.index("right_sleeve")
            perm[li], perm[ri] = ri, li
            boxes[flip], present[flip] = fb[:, perm], present[flip][:, perm]
        x = x.sub_(self._mean).div_(self._std)
        if device is not None:
            x, boxes, present = x.to(device), boxes.to(device), present.to(device)
        return x, boxes, present


def shop_data(cfg: PartSearchConfig, data: Path | None, seed: int, progress: bool = True) -> tuple[Path, str]:
    """The dataset folder and its description: a real ADDE-layout folder (``data``) or FashionSynth's shop preset
    (rendered once into ``data/synth``)."""
    if data is not None:
        if not Path(data).is_dir():
            raise FileNotFoundError(f"--data {data}: not a folder. Expected an ADDE-layout dataset (imgs_train.txt, "
                                    "labels_train.txt, attr_num.txt, ... and the images; docs/formats.md §5.6)")
        return Path(data), f"ADDE-layout folder {Path(data).name}"
    from ..synth.shop import ensure_shop

    root = ensure_shop(cfg.num_images, seed=seed, image_size=cfg.image_size, designs=cfg.designs, progress=progress,
                       query_fraction=cfg.query_fraction, train_fraction=cfg.train_fraction)
    return root, (f"FashionSynth shop, {cfg.num_images} images from {cfg.designs} designs at {cfg.image_size} px "
                  f"(networks see {cfg.input_size} px), seed {seed}")


# ----------------------------------------------------------------------------------------------------------
# models and training
# ----------------------------------------------------------------------------------------------------------
def build_backbone(cfg: PartSearchConfig):
    """SmallCNN of width ``cfg.width`` with output stride 8 (the last block's stride removed), so an 80 px input
    gives a 10 x 10 conv map to pool the parts from (AlexNet's conv5 is 13 x 13 at 227 px)."""
    from ..models import SmallCNN

    net = SmallCNN(width=cfg.width)
    net.block5.conv.stride = (1, 1)
    net.stride = net._stride()
    return net


def build_method(method: str, cfg: PartSearchConfig, num_values: dict, general, special):
    """A fresh network for ``method`` (one of :data:`METHODS`): ``num_values`` = ``{attribute: K}``, ``general`` /
    ``special`` the attribute groups of §4.1 (e.g. ``fashionlab.synth.shop.GENERAL`` / ``SPECIAL``)."""
    from ..models import AttributeClassifierNet, PartSearchNet
    from ..parts import PART_NAMES

    gen = {a: num_values[a] for a in general}
    spe = {a: num_values[a] for a in special}
    if method == "Classic":
        return AttributeClassifierNet(build_backbone(cfg), gen, spe, hidden=cfg.hidden, pool=cfg.pool)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    part_of = {a: PART_OF.get(a, ()) for a in special}
    return PartSearchNet(build_backbone(cfg), gen, spe, part_of, PART_NAMES, dim=cfg.dim, hidden=cfg.hidden,
                         pool=cfg.pool, use_parts=method == "Proposed")


def _step(method: str, data: ShopSearchData, ranking: bool, dev):
    import torch
    import torch.nn.functional as F

    from ..models import attribute_loss, signature_triplet_loss

    cfg = data.cfg

    def step(model, ids):
        ids = ids.cpu().numpy()
        x, boxes, present = data.batch("train", ids, train=True, device=dev)
        labels = {a: torch.from_numpy(v).to(dev) for a, v in data.train_labels("train", ids).items()}
        if method == "Classic":
            logits = model(x)
            loss = attribute_loss(logits, labels)
            return loss, {"L_attribute": loss}
        case = torch.from_numpy(data.case["train"][ids]).to(dev)
        out = model(x, boxes, present, case=case)
        l_att = attribute_loss(out.logits, labels) + F.cross_entropy(out.case_logits, case)
        metrics = {"L_attribute": l_att}
        if not ranking:
            return l_att, metrics
        l_tri = signature_triplet_loss(out.signatures, labels, margin=cfg.margin)
        metrics["L_triplet"] = l_tri
        return l_att + l_tri, metrics

    return step


def _batches(data: ShopSearchData):
    """Mini-batches of training image ids, a fresh shuffle per epoch (``fit`` seeds it from the epoch)."""
    import torch

    n = len(data.labels["train"])
    return lambda epoch: list(torch.randperm(n).split(data.cfg.batch))


def train_method(method: str, data: ShopSearchData, seed: int = 0, progress: bool = False, init=None,
                 ranking: bool | None = None, epochs: int | None = None, epoch_offset: int = 0):
    """Train ``method`` (§6): ``Classic`` and ``w/o parts & ranking`` with ``L_attribute`` (Eq. 1-2), the others
    with ``L_attribute`` for ``cfg.epochs`` then ``L_attribute + L_triplet`` (Eq. 3) for ``cfg.stage2_epochs``.
    ``init``: a model to continue from (a copy is trained); with ``ranking``/``epochs``/``epoch_offset`` one stage
    can be run alone (how the experiment shares stage 1 between the two whole-map methods).
    Returns ``(model, history)`` (history: one record per epoch)."""
    import copy

    import torch

    from ..engine import History, device as pick_device, fit, seed_everything

    cfg = data.cfg
    dev = pick_device(verbose=False)
    seed_everything(seed)
    model = (copy.deepcopy(init) if init is not None
             else build_method(method, cfg, data.num_values, data.general, data.special)).to(dev)
    if ranking is None:  # the whole schedule
        uses_ranking = method in ("w/o parts", "Proposed")
        stages = [(False, cfg.epochs, 0), (uses_ranking, cfg.stage2_epochs, cfg.epochs)]
    else:
        stages = [(ranking, cfg.epochs if epochs is None else epochs, epoch_offset)]
    records = []
    for rank, n_epochs, offset in stages:
        if n_epochs <= 0:
            continue
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr * (0.5 if offset else 1.0))
        h = fit(model, _step(method, data, rank, dev), _batches(data), opt, n_epochs, device=dev,
                seed=seed + offset, progress=progress, verbose=progress)
        records += [{**r, "epoch": r.get("epoch", 0) + offset, "stage": 2 if rank or offset else 1} for r in h]
    model.eval()
    return model, History(records)


# ----------------------------------------------------------------------------------------------------------
# signatures, prototypes, search
# ----------------------------------------------------------------------------------------------------------
def embed(method: str, model, data: ShopSearchData, split: str, ids=None, parts: str = "jump", dev=None,
          batch: int = 256) -> dict:
    """Signatures ``{"general" and each special attribute: (N, d) CPU tensor}`` of images ``ids`` of ``split``,
    plus ``"_logits"`` (``{attribute: (N, K)}``) and, for the two-path networks, ``"_case"`` (predicted case
    index). ``parts``: "jump" (jump detection, the paper), "gt" (true boxes) or a ``(boxes, present)`` pair of
    arrays for ``ids``."""
    import torch

    dev = dev or next(model.parameters()).device
    ids = np.arange(len(data.labels[split])) if ids is None else np.asarray(ids)
    sig, logits, cases = {}, {}, []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(ids), batch):
            chunk = ids[s:s + batch]
            if isinstance(parts, tuple):
                x, _, _ = data.batch(split, chunk, device=dev, parts="none")
                b = torch.from_numpy(parts[0][s:s + batch]).to(dev)
                p = torch.from_numpy(parts[1][s:s + batch]).to(dev)
            else:
                x, b, p = data.batch(split, chunk, device=dev, parts=parts)
            if method == "Classic":
                out_sig, out_logits = model.signatures(x), model(x)
            else:
                out = model(x, b, p)
                out_sig, out_logits = out.signatures, out.logits
                cases.append(out.case_logits.argmax(1).cpu())
            for k, v in out_sig.items():
                sig.setdefault(k, []).append(v.float().cpu())
            for k, v in out_logits.items():
                logits.setdefault(k, []).append(v.float().cpu())
    out = {k: torch.cat(v) for k, v in sig.items()}
    out["_logits"] = {k: torch.cat(v) for k, v in logits.items()}
    if cases:
        out["_case"] = torch.cat(cases).numpy()
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
# §7.5: the regression alternative to jump detection
# ----------------------------------------------------------------------------------------------------------
def train_regressor(data: ShopSearchData, seed: int = 0, progress: bool = False):
    """§7.5: a :class:`~fashionlab.parts.PartBoxRegressor` trained on ``cfg.regressor_images`` training images
    with their true part boxes (at ``cfg.regressor_size`` px). Returns ``(model, predict)`` where
    ``predict(split, ids)`` gives ``(boxes at input_size (n, P, 4), present (n, P), per-image dicts at
    image_size)``."""
    import torch
    import torch.nn.functional as F

    from ..engine import seed_everything
    from ..parts import PartBoxRegressor, decode_part_boxes, part_box_loss

    cfg = data.cfg
    if not data.has_gt:
        raise ValueError("the §7.5 regressor needs true part boxes (FashionSynth's ground truth)")
    seed_everything(seed)
    rng = np.random.default_rng([seed, 75])
    ids = np.sort(rng.choice(len(data.labels["train"]), min(cfg.regressor_images, len(data.labels["train"])),
                             replace=False))
    size = cfg.regressor_size

    def images(split, i):
        x = data.images[split][torch.from_numpy(np.asarray(i))].float() / 255.0
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)

    k = cfg.input_size
    target = torch.from_numpy(data.gt_boxes["train"][ids] / k)
    present = torch.from_numpy(data.gt_present["train"][ids]).float()
    model = PartBoxRegressor(len(data.part_names))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = images("train", ids)
    for epoch in range(cfg.regressor_epochs):
        for s in range(0, len(ids), 16):
            out = model(x[s:s + 16])
            loss = part_box_loss(out, target[s:s + 16], present[s:s + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()

    def predict(split, i):
        with torch.no_grad():
            out = model(images(split, i))
        dicts = decode_part_boxes(out, cfg.image_size, data.part_names)
        b, p = data._box_array(dicts, cfg.input_size / cfg.image_size)
        return b, p, dicts

    return model, predict, ids


# ----------------------------------------------------------------------------------------------------------
# the paper's numbers and the experiment
# ----------------------------------------------------------------------------------------------------------
#: Table 2 (top-20 accuracy after manipulating one attribute, fractions in the paper).
PAPER_TABLE2 = {
    "pattern": {"Classic": 0.43, "w/o parts & ranking": 0.44, "w/o parts": 0.48, "AMNet": 0.51, "Proposed": 0.54},
    "collar": {"Classic": 0.35, "w/o parts & ranking": 0.43, "w/o parts": 0.51, "AMNet": 0.39, "Proposed": 0.60},
    "fastening": {"Classic": 0.14, "w/o parts & ranking": 0.16, "w/o parts": 0.30, "AMNet": 0.38, "Proposed": 0.35},
    "sleeve_length": {"Classic": 0.23, "w/o parts & ranking": 0.32, "w/o parts": 0.37, "AMNet": 0.37,
                      "Proposed": 0.46},
    "colour": {"Classic": 0.51, "w/o parts & ranking": 0.63, "w/o parts": 0.67, "AMNet": 0.64, "Proposed": 0.72},
}
#: §7.1-7.2 text (Fig. 6 is a plot; only these numbers are stated). "w/o parts" is the text's "around 7.5%" below
#: Proposed.
PAPER_TOP20 = {"top-20 direct": {"Proposed": 56.5},
               "top-20 manipulation": {"Classic": 33.2, "w/o parts & ranking": 40.1, "w/o parts": 53.1 - 7.5,
                                       "AMNet": 45.8, "Proposed": 53.1}}


def paper_rows() -> list[dict]:
    rows = []
    for metric, by_method in PAPER_TOP20.items():
        for m, v in by_method.items():
            rows.append({"method": m, "metric": metric, "value": round(v, 2), "dataset": PAPER_DATASET})
    for a, by_method in PAPER_TABLE2.items():
        for m, v in by_method.items():
            rows.append({"method": m, "metric": "top-20 manipulation", "attribute": a, "value": round(100 * v, 2),
                         "dataset": PAPER_DATASET})
    return rows


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


def part_scores(predictions: list[dict], data: ShopSearchData, split: str = "test", ids=None) -> dict:
    """:func:`fashionlab.parts.part_hit_rate` of per-image part dicts (at ``image_size``) against the truth."""
    from ..parts import SYNTH_PART_NAMES, part_hit_rate

    recs = data.records[split]
    ids = range(len(recs)) if ids is None else ids
    return part_hit_rate(predictions, [recs[i]["parts"] for i in ids], data.part_names, gt_names=SYNTH_PART_NAMES)


@register("part-search", "Paper 04: part-guided attribute search (Fig. 6, Table 2; §7.5 part extraction)",
          notebook="04_part_guided_search.ipynb")
def part_search(mode: str, data: Path | None, seed: int, progress: bool = True,
                config: PartSearchConfig | None = None) -> Outcome:
    import torch

    from ..engine import device as pick_device
    from ..search import extraction_rate

    cfg = config or PART_SEARCH_CONFIGS[mode]
    t_start = time.perf_counter()
    root, desc = shop_data(cfg, data, seed, progress)
    d = ShopSearchData(root, cfg, progress=progress)
    dev = pick_device(verbose=False)
    protocol = manipulation_protocol(d, cfg.rounds, seed)
    models, histories, results, embs, recog = {}, {}, {}, {}, {}
    seconds = {}

    protos = {}

    def score(name, method, parts="jump"):
        """Embed the test split with ``parts`` and search (prototypes from the method's own training signatures,
        always with jump detection's parts, as the network was trained)."""
        model = models[method]
        if method not in protos:
            protos[method] = class_prototypes(embed(method, model, d, "train"), d)
        embs[name] = embed(method, model, d, "test", parts=parts)
        results[name] = evaluate_search(embs[name], protos[method], d, protocol)
        return embs[name]

    # Classic and Proposed: the whole schedule
    for m in ("Classic", "Proposed"):
        t0 = time.perf_counter()
        models[m], histories[m] = train_method(m, d, seed, progress)
        seconds[m] = time.perf_counter() - t0
    # the two whole-map methods share stage 1
    t0 = time.perf_counter()
    stage1, h1 = train_method("w/o parts", d, seed, progress, ranking=False, epochs=cfg.epochs)
    s1 = time.perf_counter() - t0
    for m, rank in (("w/o parts & ranking", False), ("w/o parts", True)):
        t0 = time.perf_counter()
        models[m], h2 = train_method(m, d, seed, progress, init=stage1, ranking=rank, epochs=cfg.stage2_epochs,
                                     epoch_offset=cfg.epochs)
        seconds[m] = s1 + time.perf_counter() - t0
        histories[m] = type(h1)(list(h1) + [{**r, "stage": 2} for r in h2])
    rows = []
    for m in METHODS:
        test = score(m, m)
        recog[m] = recognition_accuracy(test, d)
        rows += _search_rows(m, results[m], d)
    notes = []
    # §7.5: regressed parts; and the true parts, for Proposed
    reg_name = f"Regression ({min(cfg.regressor_images, len(d.labels['train']))} images)"
    part_rows, part_stats = [], {}
    if d.has_gt:
        t0 = time.perf_counter()
        _, predict, reg_ids = train_regressor(d, seed)
        reg_seconds = time.perf_counter() - t0
        test_ids = np.arange(len(d.labels["test"]))
        rb, rp, rdicts = predict("test", test_ids)
        part_stats["Jump detection"] = part_scores([j.parts for j in d.jump["test"]], d)
        part_stats[reg_name] = part_scores(rdicts, d)
        for name, st in part_stats.items():
            for p in list(d.part_names) + ["overall"]:
                if st[p]["n"]:
                    part_rows.append({"method": name, "metric": "part IoU", "attribute": p,
                                      "value": _pct(st[p]["mean_iou"])})
                    part_rows.append({"method": name, "metric": "part hit rate", "attribute": p,
                                      "value": _pct(st[p]["hit_rate"])})
        for name, parts in (("Proposed, regressed parts", (rb, rp)), ("Proposed, ground-truth parts", "gt")):
            score(name, "Proposed", parts=parts)
            rows += _search_rows(name, results[name], d)
        true_case = d.case["test"]
        rows.append({"method": "Proposed", "metric": "Extract-Parts accuracy",
                     "value": _pct((embs["Proposed"]["_case"] == true_case).mean())})
        rows.append({"method": "Jump detection", "metric": "Extract-Parts accuracy",
                     "value": _pct((d.jump_case["test"] == true_case).mean())})
        notes.append(f"§7.5 regressor: trained on {len(reg_ids)} training images with true boxes for "
                     f"{cfg.regressor_epochs} epochs at {cfg.regressor_size} px ({reg_seconds:.1f} s).")
    for m in METHODS:
        for a, v in recog[m].items():
            rows.append({"method": m, "metric": "recognition accuracy", "attribute": a, "value": _pct(v)})
    rows += part_rows
    # §7.6: extraction rates
    xs = d.inputs["test"][: min(512, len(d.inputs["test"]))]
    norm = (d._mean, d._std)

    def prep(x):
        return ((x.float() - norm[0]) / norm[1]).to(dev)

    full = torch.tensor([0.0, 0.0, float(cfg.input_size), float(cfg.input_size)])
    rates = {
        "Classic": extraction_rate(lambda x: models["Classic"].signatures(prep(x)), xs, batch=64),
        "Proposed": extraction_rate(lambda x: models["Proposed"](prep(x), full.expand(len(x), len(d.part_names), 4)
                                                                 .to(dev), torch.ones(len(x), len(d.part_names),
                                                                                      dtype=torch.bool, device=dev)),
                                    xs, batch=64),
        "jump detection": (len(d.jump["train"]) + len(d.jump["test"])) / max(d.jump_seconds, 1e-9),
    }
    counts = results["Proposed"]["manipulation"]["counts"]
    notes += [
        f"Queries {len(d.queries)}, gallery {len(d.gallery)}; direct retrieval scored "
        f"{results['Proposed']['direct']['counts']['overall']} queries (the others have a missing label or no exact "
        f"match in the gallery); manipulation: {cfg.rounds} random changes per query, {counts['overall']} scored.",
        f"§7.6 extraction rates on {dev.type} (images/s, batch 64, {cfg.input_size} px): Classic "
        f"{rates['Classic']:.0f}, Proposed {rates['Proposed']:.0f} (parts given); jump detection "
        f"{rates['jump detection']:.0f} images/s at {cfg.image_size} px (batched, 256 per call).",
        "Training seconds: " + ", ".join(f"{m} {seconds[m]:.0f}" for m in METHODS)
        + " (the two whole-map methods share stage 1).",
        f"Paper: 'w/o parts' top-20 manipulation = 53.1 - 7.5 (the text: 'decreases ... by around 7.5%'); Table 2 "
        f"values are fractions in the paper, shown x100; AMNet is the paper's external baseline (not run here).",
    ]
    extra = {"data": d, "models": models, "histories": histories, "results": results, "embeddings": embs,
             "protocol": protocol, "part_stats": part_stats, "rates": rates, "config": cfg,
             "seconds": time.perf_counter() - t_start}
    return Outcome(rows=rows, paper_rows=paper_rows(), dataset=desc, device=dev.type, notes=notes, extra=extra)
