"""Paper 04's two-path network for part-guided attribute search (Ak et al., §4.2-§4.5, Fig. 3), its losses, and
the "Classic" baseline of §7.

:class:`PartSearchNet` (Fig. 3):

* a conv trunk (AlexNet conv1-conv5 in the paper; any :class:`~fashionlab.models.Backbone` here);
* the **general path** (red in Fig. 3): the whole conv5 map → FC → ReLU → FC = the general signature ``fc_7``,
  one softmax classifier per general attribute (category ...), and the **"Extract Parts?"** head, a fully
  connected layer with 3 outputs (:data:`CASES3`: lower-body item, item with sleeves, sleeveless item; §4.3);
* the **special-attribute branches** (green): one per special attribute, fed by RoI pooling of that attribute's
  part of the conv5 map (``torchvision.ops.roi_align``, the paper's ``crop_and_resize``, §6) or of the whole map
  when extraction is off for that image (§4.3: lower-body items; sleeveless items for the sleeve branch; our
  addition: a part the jump detection did not find), each giving a signature ``fc_7v`` and a classifier.

Which part feeds which branch is the ``part_of`` table, e.g. ``{"collar": ("collar",), "sleeve_length":
("left_sleeve", "right_sleeve"), "colour": ("torso",)}`` (§6: "for pattern and color special attributes, chest
part of the image is used"); a branch with two parts averages their pooled features, a branch with ``()`` always
sees the whole map. ``use_parts=False`` is the ``w/o parts`` ablation of §7 (every branch sees the whole map).

Losses: :func:`attribute_loss` (Eq. 1-2, cross-entropy summed over the attributes, missing labels ignored),
:func:`batch_triplets` (§6's sampling: per mini-batch and attribute, anchor and positive share the label, the
negative has another) and :func:`signature_triplet_loss` (Eq. 3, the hinge on Euclidean distances between
L2-normalised signatures, summed over the ``S + 1`` signatures).

:class:`AttributeClassifierNet` is §7's "Classic" baseline: one path, a shared representation and one softmax
per attribute; its search representation is the recognised attributes (:meth:`AttributeClassifierNet.signatures`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CASES3", "PartSearchOutput", "PartSearchNet", "AttributeClassifierNet", "attribute_loss",
           "batch_triplets", "signature_triplet_loss"]

#: The three outputs of the "Extract Parts?" head (§4.3), in this order.
CASES3 = ("lower", "sleeved", "sleeveless")
_SLEEVES = ("left_sleeve", "right_sleeve")


class PartSearchOutput(NamedTuple):
    """:class:`PartSearchNet` output. ``signatures``: ``{"general": (B, d), special attribute: (B, d)}`` (the
    ``fc_7v`` of Eq. 3-6); ``logits``: ``{attribute: (B, K_a)}`` for every general and special attribute (Eq. 2);
    ``case_logits``: ``(B, 3)`` "Extract Parts?" scores (:data:`CASES3`); ``used_parts``: ``(B, S)`` bool, whether
    special branch s pooled a part (True) or the whole map (False), in ``special`` order."""

    signatures: dict
    logits: dict
    case_logits: torch.Tensor
    used_parts: torch.Tensor


def _mlp(in_features: int, hidden: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))


class PartSearchNet(nn.Module):
    """Fig. 3's two-path CNN (§4.2): general path + "Extract Parts?" head + one RoI-pooled branch per special
    attribute, each ending in a signature vector ``fc_7v`` and a softmax classifier (Eq. 1-3).

    ``general``/``special``: ``{attribute: number of values}``; ``part_of``: ``{special attribute: part names}``
    (names from ``part_names``; missing or ``()`` = always the whole map); ``dim``: signature size; ``hidden``:
    the first FC layer of each branch; ``pool``: RoI output grid (``pool x pool``). The backbone must expose
    ``out_channels``.
    """

    def __init__(self, backbone: nn.Module, general: Mapping[str, int], special: Mapping[str, int],
                 part_of: Mapping[str, Sequence[str]], part_names: Sequence[str], dim: int = 64, hidden: int = 256,
                 pool: int = 3, use_parts: bool = True):
        super().__init__()
        from torchvision.ops import roi_align  # noqa: F401  (fail early if torchvision is missing)

        if not general or not special:
            raise ValueError("PartSearchNet needs at least one general and one special attribute")
        self.backbone = backbone
        self.general, self.special = dict(general), dict(special)
        self.part_names = tuple(part_names)
        unknown = {a: p for a, parts in part_of.items() for p in parts if p not in self.part_names}
        if unknown:
            raise ValueError(f"part_of names parts that are not in part_names {self.part_names}: {unknown}")
        extra = set(part_of) - set(self.special)
        if extra:
            raise ValueError(f"part_of has attributes that are not special attributes: {sorted(extra)}")
        self.part_of = {a: tuple(part_of.get(a, ())) for a in self.special}
        self.use_parts, self.pool = bool(use_parts), int(pool)
        c = int(backbone.out_channels)
        flat = c * self.pool * self.pool
        self.general_fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.general_sig = nn.Linear(hidden, dim)
        self.case_head = nn.Linear(hidden, len(CASES3))
        self.branches = nn.ModuleDict({a: _mlp(flat, hidden, dim) for a in self.special})
        self.classifiers = nn.ModuleDict({a: nn.Linear(dim, k) for a, k in {**self.general, **self.special}.items()})
        # RoI slots of the branches: one per (branch, part); None = the whole map
        self._slots = [(a, p) for a in self.special for p in (self.part_of[a] or (None,))]

    def _allowed(self, present: torch.Tensor, case: torch.Tensor) -> torch.Tensor:
        """(B, P) bool: part p may be pooled for image b (§4.3's three cases)."""
        ok = present.bool() & self.use_parts
        ok = ok & (case != CASES3.index("lower"))[:, None]
        sleeve_cols = [self.part_names.index(s) for s in _SLEEVES if s in self.part_names]
        if sleeve_cols:
            ok[:, sleeve_cols] &= (case != CASES3.index("sleeveless"))[:, None]
        return ok

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None, present: torch.Tensor | None = None,
                case: torch.Tensor | None = None) -> PartSearchOutput:
        """``x``: ``(B, 3, H, W)`` images; ``boxes``: ``(B, P, 4)`` part boxes ``[x1, y1, x2, y2]`` in input pixels
        (P = ``len(part_names)``), ``present``: ``(B, P)`` which boxes exist (None: no parts, whole maps only);
        ``case``: ``(B,)`` indices into :data:`CASES3` (the rule's case while training) or None to use the
        head's own prediction (test time, §4.3)."""
        from torchvision.ops import roi_align

        feats = self.backbone(x)
        b, _, fh, fw = feats.shape
        h, w = x.shape[-2:]
        full = torch.tensor([0.0, 0.0, float(w), float(h)], device=x.device, dtype=feats.dtype)
        scale = fw / float(w)
        # the general path sees the whole map, RoI-pooled to the same grid as the branches
        rois_full = torch.cat([torch.arange(b, device=x.device, dtype=feats.dtype)[:, None], full.expand(b, 4)], 1)
        pooled_full = roi_align(feats, rois_full, self.pool, spatial_scale=scale, sampling_ratio=2, aligned=True)
        g_hidden = self.general_fc(pooled_full)
        case_logits = self.case_head(g_hidden)
        signatures = {"general": self.general_sig(g_hidden)}
        if case is None:
            case = case_logits.argmax(1)
        case = case.to(x.device)
        if boxes is None or present is None:
            allowed = torch.zeros(b, len(self.part_names), dtype=torch.bool, device=x.device)
            boxes = full.expand(b, len(self.part_names), 4)
        else:
            if boxes.shape != (b, len(self.part_names), 4) or present.shape != (b, len(self.part_names)):
                raise ValueError(f"boxes must be (B, {len(self.part_names)}, 4) and present (B, "
                                 f"{len(self.part_names)}); got {tuple(boxes.shape)} and {tuple(present.shape)}")
            allowed = self._allowed(present.to(x.device), case)
            boxes = boxes.to(device=x.device, dtype=feats.dtype)
        # one roi_align call for every (image, slot)
        slot_boxes, slot_ok = [], []
        for a, p in self._slots:
            if p is None:
                slot_boxes.append(full.expand(b, 4))
                slot_ok.append(torch.zeros(b, dtype=torch.bool, device=x.device))
            else:
                j = self.part_names.index(p)
                ok = allowed[:, j]
                slot_boxes.append(torch.where(ok[:, None], boxes[:, j], full.expand(b, 4)))
                slot_ok.append(ok)
        sb = torch.stack(slot_boxes, 1)  # (B, T, 4)
        t = sb.shape[1]
        idx = torch.arange(b, device=x.device, dtype=feats.dtype)[:, None, None].expand(b, t, 1)
        rois = torch.cat([idx, sb], 2).reshape(-1, 5)
        pooled = roi_align(feats, rois, self.pool, spatial_scale=scale, sampling_ratio=2, aligned=True)
        pooled = pooled.reshape(b, t, *pooled.shape[1:])
        ok = torch.stack(slot_ok, 1)  # (B, T)
        used = []
        s = 0
        for a in self.special:
            n = len(self.part_of[a] or (None,))
            okb = ok[:, s:s + n].float()
            any_ok = okb.sum(1, keepdim=True) > 0
            wts = torch.where(any_ok, okb, torch.ones_like(okb))
            wts = wts / wts.sum(1, keepdim=True)
            feat = (pooled[:, s:s + n] * wts[:, :, None, None, None]).sum(1)
            signatures[a] = self.branches[a](feat)
            used.append(any_ok[:, 0])
            s += n
        logits = {a: self.classifiers[a](signatures["general"]) for a in self.general}
        logits.update({a: self.classifiers[a](signatures[a]) for a in self.special})
        return PartSearchOutput(signatures, logits, case_logits, torch.stack(used, 1))

    def loss(self, x: torch.Tensor, boxes: torch.Tensor, present: torch.Tensor, labels: Mapping[str, torch.Tensor],
             case: torch.Tensor, ranking: bool = True, margin: float = 0.3):
        """§6's training loss of one batch: ``L_attribute`` (Eq. 1-2, with the "Extract Parts?" head's
        cross-entropy against ``case``, the case the branches are fed by while training) plus, when ``ranking``,
        ``L_triplet`` (Eq. 3, margin ``margin``) on every signature. ``labels``: ``{attribute: (B,)}`` and
        ``"general"`` (see :func:`signature_triplet_loss`). Returns ``(loss, {"L_attribute", "L_triplet"})``."""
        out = self(x, boxes, present, case=case)
        l_att = attribute_loss(out.logits, labels) + F.cross_entropy(out.case_logits, case)
        metrics = {"L_attribute": l_att}
        if not ranking:
            return l_att, metrics
        l_tri = signature_triplet_loss(out.signatures, labels, margin=margin)
        metrics["L_triplet"] = l_tri
        return l_att + l_tri, metrics


class AttributeClassifierNet(nn.Module):
    """§7's "Classic" baseline: a plain multi-attribute classification network (one path: trunk → pooled map → two
    FC layers → one softmax per attribute), trained with Eq. 1 only. For search, an image is represented by its
    recognised attributes: :meth:`signatures` gives each attribute's softmax vector (keyed like
    :class:`PartSearchNet`'s signatures: the general attributes' vectors concatenated under ``"general"``), so
    the same Eq. 4 search and §4.6 prototype manipulation apply."""

    def __init__(self, backbone: nn.Module, general: Mapping[str, int], special: Mapping[str, int],
                 hidden: int = 256, pool: int = 3):
        super().__init__()
        self.backbone = backbone
        self.general, self.special = dict(general), dict(special)
        self.pool = int(pool)
        flat = int(backbone.out_channels) * self.pool * self.pool
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden),
                                nn.ReLU(inplace=True))
        self.classifiers = nn.ModuleDict({a: nn.Linear(hidden, k) for a, k in {**self.general, **self.special}.items()})

    def forward(self, x: torch.Tensor) -> dict:
        """``{attribute: (B, K_a) logits}`` (Eq. 2)."""
        h = self.fc(F.adaptive_avg_pool2d(self.backbone(x), self.pool))
        return {a: head(h) for a, head in self.classifiers.items()}

    def loss(self, x: torch.Tensor, boxes, present, labels: Mapping[str, torch.Tensor], case=None,
             ranking: bool = False, margin: float = 0.3):
        """§7's Classic training loss of one batch: ``L_attribute`` (Eq. 1-2) only. Takes the arguments of
        :meth:`PartSearchNet.loss` so one training step serves both; ``boxes``, ``present``, ``case``, ``ranking``
        and ``margin`` are not used (no parts, no ranking loss). Returns ``(loss, {"L_attribute"})``."""
        loss = attribute_loss(self(x), labels)
        return loss, {"L_attribute": loss}

    @torch.no_grad()
    def signatures(self, x: torch.Tensor, logits: Mapping[str, torch.Tensor] | None = None) -> dict:
        """The Classic search representation: ``{"general": concatenated general softmaxes, special attribute:
        its softmax (B, K_a)}``; ``logits``: this batch's :meth:`forward` output when already computed."""
        logits = self.forward(x) if logits is None else logits
        sig = {"general": torch.cat([logits[a].softmax(1) for a in self.general], 1)}
        sig.update({a: logits[a].softmax(1) for a in self.special})
        return sig


def attribute_loss(logits: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 1-2: ``L_attribute = Σ_a CE(softmax(x_a), g_a)``, summed over the attributes (general and special) and
    averaged over the images that have a label (label < 0 = missing or not applicable, ignored). An attribute
    with no label in the batch adds 0."""
    total = None
    for a, lg in logits.items():
        if a not in labels:
            continue
        y = labels[a].to(lg.device).long()
        keep = y >= 0
        term = F.cross_entropy(lg[keep], y[keep]) if keep.any() else lg.sum() * 0.0
        total = term if total is None else total + term
    if total is None:
        raise ValueError(f"no labels for any of the attributes {list(logits)}")
    return total


def batch_triplets(labels: torch.Tensor, generator: torch.Generator | None = None):
    """§6's triplet sampling inside a mini-batch for one attribute: every image with a label (>= 0) that has
    another image of the same label and one of a different label in the batch is an anchor; its positive is a
    random other image with the same label, its negative a random image with a different (valid) label.
    Returns index tensors ``(anchor, positive, negative)`` (possibly empty)."""
    y = labels.long().cpu()
    n = y.numel()
    valid = y >= 0
    same = (y[:, None] == y[None, :]) & valid[:, None] & valid[None, :]
    same.fill_diagonal_(False)
    diff = (y[:, None] != y[None, :]) & valid[:, None] & valid[None, :]
    anchors = torch.nonzero(same.any(1) & diff.any(1)).flatten()
    if anchors.numel() == 0:
        e = torch.zeros(0, dtype=torch.long)
        return e, e, e
    r = torch.rand(anchors.numel(), n, generator=generator)
    pos = torch.where(same[anchors], r, torch.full_like(r, -1.0)).argmax(1)
    r = torch.rand(anchors.numel(), n, generator=generator)
    neg = torch.where(diff[anchors], r, torch.full_like(r, -1.0)).argmax(1)
    return anchors, pos, neg


def signature_triplet_loss(signatures: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor],
                           margin: float = 0.3, generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 3: ``L_triplet = Σ_v mean max(0, m + d(f_v(â), f_v(p)') - d(f_v(â), f_v(n)'))`` over the ``S + 1``
    signatures ``v`` that have labels (``"general"``: anchor and positive share every general attribute, §4.5),
    with d the Euclidean distance between L2-normalised signatures (the prime, §4.6) and triplets from
    :func:`batch_triplets`. Averaged over each signature's triplets (the paper sums over images; the mean only
    rescales the learning rate), summed over signatures."""
    total = None
    for v, sig in signatures.items():
        if v not in labels:
            continue
        a, p, n = (i.to(sig.device) for i in batch_triplets(labels[v], generator))
        if a.numel() == 0:
            term = sig.sum() * 0.0
        else:
            f = F.normalize(sig, dim=1)
            term = F.relu(margin + (f[a] - f[p]).norm(dim=1) - (f[a] - f[n]).norm(dim=1)).mean()
        total = term if total is None else total + term
    if total is None:
        raise ValueError(f"no labels for any of the signatures {list(signatures)}")
    return total
