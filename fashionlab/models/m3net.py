"""M3-Net (Jiao et al., "Learning Attribute and Class-Specific Representation Duet for Fine-grained Fashion
Analysis"): attribute-specific and class-specific representations with a multi-granularity loss.

Source: paper 05 (``05_m3net_attribute_class_duet.txt``), §3.1 (Algorithms 1-2, Eq. 1-6), §3.2 (Eq. 7-11) and
§4.2 (ablations ``M3-Net_a`` / ``M3-Net_c``, retrieval "prioritized in the class-specific embedding space,
followed by retrieval in the attribute-specific embedding space"). No public code exists (docs/implementations.md §8).

A fashion image has attributes ``A_n`` (texture, shape, ...) and each attribute classes ``C_{m_n}`` (striped,
floral, ...), several of which can hold at once. M3-Net refines one backbone map ``ψ`` in two steps:

* **attribute level** (Eq. 1-3): SCA-A (a spatial attention conditioned on the attribute) gives
  ``φ_n = α_n ⊙ ψ``; CCA-A (a channel attention conditioned on it) gives the attribute-specific vector
  ``φ_n = β_n ⊙ q1(φ_n)``; an attribute-specific MLP ``g_n`` gives the class probabilities ``P_n(I)``, and the
  classes above a threshold ``γ`` are the image's high-likelihood classes;
* **class level** (Eq. 4-6): for a class ``m`` of ``A_n``, SCA-C (one per attribute, conditioned on the class)
  narrows the attribute's attended map to ``φ̄_m = ᾱ_m ⊙ φ_n``; CCA-A and then CCA-C gate its channels, giving
  the class-specific vector ``φ̄_{m_n}``.

SCA and CCA are the same two modules as ASEN's ASA and ACA (:class:`~fashionlab.models.SpatialAttention`,
:class:`~fashionlab.models.ChannelAttention`, notebook 03), which already take any condition vector: SCA is
ASA's scaled-dot-product softmax over locations, kept as a map instead of being summed (Algorithm 1); CCA is
ACA's gate with ReLU on the label embedding and ``W_3`` of ``c'`` rows (Algorithm 2: ``β = σ(W_4 relu(W_3
[q_1(ψ); q_2(l)]))``, ``q_2(l) = relu(W_2 E_2(l))``). The label embeddings ``E_1``, ``E_2`` are one table per
level (attributes; the classes of each attribute), shared by the module's SCA and CCA.

One convention differs from Algorithm 1 by a constant factor: the spatial attention is scaled to *mean* one
over the ``h x w`` locations (``h·w·softmax``) and ``q_1`` is the *mean* over locations instead of the sum.
``q_1(α ⊙ ψ)`` is then exactly ASEN's attention-weighted average ``x_s``, and the class level's map
``ᾱ ⊙ φ_n`` keeps the scale of ``φ_n`` instead of shrinking by ``1/(h·w)`` per level. Cosine similarity cannot
see the factor; the layers after ``q_1`` can, and with it they start at the scale of ``ψ``.

``variant``: ``"full"`` (M3-Net), ``"attribute"`` (M3-Net_a: only the attribute-conditional modules; the class
level *is* the attribute level, so the class losses and the class-first retrieval act in the attribute space,
as MODC's class clusters do), ``"class"`` (M3-Net_c: only the class-conditional modules; the attribute level
is the plain average-pooled ``ψ`` with ``g_n`` on it, and SCA-C/CCA-C act on ``ψ`` directly).

Everything runs on the inputs' device and under ``torch.autocast``; nothing is CUDA-only.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .asen import ChannelAttention, SpatialAttention, cosine_triplet_loss

__all__ = [
    "M3_VARIANTS",
    "M3Net",
    "AttributeLevel",
    "ClassLevel",
    "conditional_spatial_attention",
    "ClassPrototypes",
    "multilabel_bce",
    "M3Loss",
    "m3net_loss",
    "predicted_classes",
    "class_first_scores",
]

#: The three networks of §4.2: M3-Net, M3-Net_a, M3-Net_c.
M3_VARIANTS = {"full": "M3-Net", "attribute": "M3-Net_a", "class": "M3-Net_c"}


def conditional_spatial_attention(sa: SpatialAttention, fmap: torch.Tensor, cond: torch.Tensor):
    """SCA, Algorithm 1 (paper 05 §3.1), with an ASEN :class:`~fashionlab.models.SpatialAttention` ``sa`` as
    ``T``, ``E_1``/``W_1`` and the scaled dot product: ``α = softmax_{h·w}(Σ_i [p_2(l) ⊙ p_1(ψ)]_i / √c')``,
    scaled to mean one (module docstring). Returns ``(α ⊙ ψ, α)``: the ``(B, C, H, W)`` attended map (Eq. 1 /
    Eq. 4) and the ``(B, H, W)`` attention."""
    s = sa.logits(fmap, cond)
    b, h, w = s.shape
    att = torch.softmax(s.float().reshape(b, h * w), dim=1).reshape(b, h, w) * (h * w)
    return fmap * att[:, None].to(fmap.dtype), att


def _q1(fmap: torch.Tensor) -> torch.Tensor:
    """``q_1`` of Algorithm 2: the map pooled over locations (the mean; module docstring)."""
    return fmap.mean(dim=(2, 3))


class AttributeLevel(NamedTuple):
    """Attribute-level outputs for one attribute ``n``: ``embedding`` ``φ_n`` ``(B, C)`` (Eq. 2), ``logits``
    ``(B, M_n)`` of ``g_n`` (Eq. 3, before the sigmoid), ``fmap`` the attended map ``α_n ⊙ ψ`` ``(B, C, H, W)``
    (Eq. 1) and ``attention`` ``α_n`` ``(B, H, W)`` (mean one; all ones for M3-Net_c, which has no SCA-A)."""

    embedding: torch.Tensor
    logits: torch.Tensor
    fmap: torch.Tensor
    attention: torch.Tensor


class ClassLevel(NamedTuple):
    """Class-level outputs: ``embedding`` ``φ̄_{m_n}`` ``(B, C)`` (Eq. 6) and ``attention`` ``ᾱ_{m_n}``
    ``(B, H, W)`` (SCA-C's own map, mean one; all ones for M3-Net_a)."""

    embedding: torch.Tensor
    attention: torch.Tensor


class M3Net(nn.Module):
    """M3-Net (paper 05 §3.1, Fig. 2): a shared backbone, attribute-conditional SCA-A/CCA-A, attribute-specific
    multi-label MLPs ``g_n`` and, per attribute, class-conditional SCA-C/CCA-C.

    ``backbone``: any module returning ``(B, C, H, W)`` (ResNet-50 without its last block in the paper;
    a SmallCNN on a CPU). ``num_classes``: ``M_n`` for every attribute ``n``. ``cond_dim``: size of the label
    embeddings ``E``; ``attn_dim``: ``c'`` (default ``C / 2``: SCA's transform width and CCA's ``W_3`` rows);
    ``mlp_hidden``: the hidden width of ``g_n`` (one hidden ReLU layer). ``variant``: ``"full"``,
    ``"attribute"`` or ``"class"`` (:data:`M3_VARIANTS`, module docstring).

    Methods: :meth:`features` (``ψ``), :meth:`attribute_level` (Eq. 1-3), :meth:`class_level` (Eq. 4-6),
    :meth:`all_classes` (every class of an attribute at once, for retrieval), ``forward(x, n, classes=None)``,
    :meth:`loss` (Eq. 7-11 on a batch of class-level triplets). ``prototypes``: the model's
    :class:`ClassPrototypes` (``momentum`` μ), one per class of every attribute, updated by :meth:`loss`.
    Representations are *not* normalised (retrieval and the losses use cosine similarity).
    """

    def __init__(self, backbone: nn.Module, num_classes: Sequence[int], variant: str = "full", cond_dim: int = 64,
                 attn_dim: int | None = None, mlp_hidden: int = 64, in_channels: int | None = None,
                 momentum: float = 0.9):
        super().__init__()
        if variant not in M3_VARIANTS:
            raise ValueError(f"variant must be one of {list(M3_VARIANTS)}, got {variant!r}")
        c = in_channels if in_channels is not None else getattr(backbone, "out_channels", None)
        if c is None:
            raise ValueError("M3Net: the backbone has no out_channels attribute; pass in_channels=")
        self.backbone = backbone
        self.variant = variant
        self.num_classes = tuple(int(m) for m in num_classes)
        if not self.num_classes or min(self.num_classes) < 1:
            raise ValueError(f"num_classes must list at least one attribute with >= 1 class, got {num_classes}")
        self.in_channels = c = int(c)
        self.attn_dim = a = int(attn_dim) if attn_dim is not None else max(1, c // 2)
        n_attr = len(self.num_classes)

        def sca():
            return SpatialAttention(c, cond_dim, a)

        def cca():  # W_3: (c + c') -> c', W_4: c' -> c; q_2 = relu(W_2 E_2(l)) of width c'
            return ChannelAttention(c, cond_dim, out_dim=None, cond_hidden=a, reduction=max(1, c // a),
                                    cond_activation="relu")

        self.has_attribute_modules = variant in ("full", "attribute")
        self.has_class_modules = variant in ("full", "class")
        self.attribute_embedding = nn.Embedding(n_attr, cond_dim)
        if self.has_attribute_modules:
            self.sca_a, self.cca_a = sca(), cca()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, mlp_hidden), nn.ReLU(inplace=True),
                                                nn.Linear(mlp_hidden, m)) for m in self.num_classes)
        if self.has_class_modules:
            self.class_embeddings = nn.ModuleList(nn.Embedding(m, cond_dim) for m in self.num_classes)
            self.sca_c = nn.ModuleList(sca() for _ in self.num_classes)
            self.cca_c = nn.ModuleList(cca() for _ in self.num_classes)
        # the class prototypes of L_CC (Eq. 9): buffers, saved and loaded with the weights
        self.prototypes = ClassPrototypes(sum(self.num_classes), c, momentum)

    @property
    def num_attributes(self) -> int:
        return len(self.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``ψ = f_{θ_b}(I)``, the generic ``(B, C, H, W)`` representation."""
        return self.backbone(x)

    def _attr_cond(self, n: int, b: int, device) -> torch.Tensor:
        idx = torch.full((b,), int(n), dtype=torch.long, device=device)
        return self.attribute_embedding(idx)

    def _check_attr(self, n: int) -> int:
        n = int(n)
        if not 0 <= n < self.num_attributes:
            raise IndexError(f"attribute index {n} out of range for {self.num_attributes} attributes")
        return n

    def attribute_level(self, fmap: torch.Tensor, n: int) -> AttributeLevel:
        """Eq. 1-3 for attribute ``n`` on a batch of maps ``ψ``: SCA-A → ``φ_n = α_n ⊙ ψ``, CCA-A →
        ``φ_n = β_n ⊙ q_1(φ_n)``, ``P_n = σ(g_n(φ_n))`` (``logits`` returned). M3-Net_c: ``α_n ≡ 1`` and no
        channel gate, i.e. ``φ_n = q_1(ψ)``."""
        n = self._check_attr(n)
        b, _, h, w = fmap.shape
        if self.has_attribute_modules:
            cond = self._attr_cond(n, b, fmap.device)
            amap, att = conditional_spatial_attention(self.sca_a, fmap, cond)
            v = _q1(amap)
            emb = v * self.cca_a.gate(v, cond).to(v.dtype)
        else:
            amap, att = fmap, fmap.new_ones((b, h, w))
            emb = _q1(fmap)
        return AttributeLevel(emb, self.mlps[n](emb), amap, att)

    def class_level(self, amap: torch.Tensor, n: int, classes) -> ClassLevel:
        """Eq. 4-6 for attribute ``n`` and class indices ``classes`` (``(B,)``, within ``A_n``) on the
        attribute-level maps ``amap`` (:attr:`AttributeLevel.fmap`): SCA-C → ``φ̄_m = ᾱ_m ⊙ φ_n``; CCA-A →
        ``φ̄_n = β̄_n ⊙ q_1(φ̄_m)`` (Eq. 5); CCA-C → ``φ̄_{m_n} = β̄_m ⊙ φ̄_n`` (Eq. 6). M3-Net_a has no class
        modules: it returns the attribute-level vector ``β_n ⊙ q_1(amap)`` (the same as :meth:`attribute_level`'s
        embedding). M3-Net_c skips the CCA-A step."""
        n = self._check_attr(n)
        b, _, h, w = amap.shape
        v = _q1(amap)
        if self.has_attribute_modules:
            acond = self._attr_cond(n, b, amap.device)
        if not self.has_class_modules:
            return ClassLevel(v * self.cca_a.gate(v, acond).to(v.dtype), amap.new_ones((b, h, w)))
        cls = torch.as_tensor(classes, device=amap.device).long().reshape(-1)
        if len(cls) != b:
            raise ValueError(f"got {len(cls)} class indices for {b} maps")
        if cls.numel() and (int(cls.min()) < 0 or int(cls.max()) >= self.num_classes[n]):
            raise IndexError(f"class index out of range for attribute {n} with {self.num_classes[n]} classes")
        ccond = self.class_embeddings[n](cls)
        cmap, catt = conditional_spatial_attention(self.sca_c[n], amap, ccond)
        v = _q1(cmap)
        if self.has_attribute_modules:
            v = v * self.cca_a.gate(v, acond).to(v.dtype)
        return ClassLevel(v * self.cca_c[n].gate(v, ccond).to(v.dtype), catt)

    def all_classes(self, amap: torch.Tensor, n: int) -> ClassLevel:
        """The class-specific representations of *every* class of attribute ``n``: embeddings
        ``(B, M_n, C)`` and attentions ``(B, M_n, H, W)`` (retrieval computes them all, then keeps the
        high-likelihood ones; at this scale that is cheaper than gathering)."""
        b = amap.shape[0]
        m = self.num_classes[self._check_attr(n)]
        rep = amap.repeat_interleave(m, dim=0)
        cls = torch.arange(m, device=amap.device).repeat(b)
        out = self.class_level(rep, n, cls)
        return ClassLevel(out.embedding.reshape(b, m, -1), out.attention.reshape(b, m, *out.attention.shape[1:]))

    def forward(self, x: torch.Tensor, n: int, classes=None):
        """``(AttributeLevel, ClassLevel | None)`` of images ``x`` for attribute ``n`` (and classes
        ``classes``, one per image, if given)."""
        att = self.attribute_level(self.features(x), n)
        return att, (self.class_level(att.fmap, n, classes) if classes is not None else None)

    @property
    def class_offsets(self) -> list[int]:
        """Where each attribute's classes start among all ``K = Σ M_n`` classes (``N + 1`` entries)."""
        out = [0]
        for m in self.num_classes:
            out.append(out[-1] + m)
        return out

    def loss(self, x: torch.Tensor, targets: torch.Tensor, attributes, keys, margin: float = 0.4,
             pos_weight: float = 1.0, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict:
        """The multi-granularity objective, Eq. 11 (paper 05 §3.2), on ``B`` class-level triplets.

        ``x``: the ``(3B, 3, H, W)`` images, anchors then positives then negatives; ``targets``: their
        ``(3B, K)`` class rows over all ``K`` classes (1 = positive); ``attributes`` ``(B,)``: the attribute
        ``n`` of each triplet; ``keys`` ``(B,)``: the global index (offset of ``A_n`` + ``m``) of the class that
        anchor and positive have and the negative lacks. Per attribute of the batch: the attribute level
        (Eq. 1-3) of the three images, the class level (Eq. 4-6) of that class, and :func:`m3net_loss`
        (``L_M`` of Eq. 7 on the three images' class rows of ``A_n``, ``L_CC`` against the class prototype
        (Eq. 9), ``L_CI`` (Eq. 10), Eq. 8 with margin ``margin`` = ζ); the terms are weighted by the
        attribute's share of the batch. The prototypes are updated from anchors and positives (a class met for
        the first time starts from this batch). Returns ``{"loss", "L_M", "L_CC", "L_CI", "acc"}`` (``acc``:
        share of triplets with ``cos(a, p) > cos(a, n)``), the form ``engine.fit``'s step returns."""
        import numpy as np

        attrs = torch.as_tensor(attributes).cpu().numpy()
        keys = torch.as_tensor(keys).long()
        dev = x.device
        b = len(attrs)
        off = self.class_offsets
        fmap = self.features(x)
        total, parts, acc = 0.0, torch.zeros(3, device=dev), 0.0
        for n in np.unique(attrs):
            r = np.flatnonzero(attrs == n)
            idx = np.concatenate([r, r + b, r + 2 * b])
            att = self.attribute_level(fmap[idx], int(n))
            lo, hi = off[n], off[n + 1]
            tgt = targets[idx][:, lo:hi].to(dev)
            k_n = keys[r].to(dev)
            cls = self.class_level(att.fmap, int(n), (k_n - int(lo)).repeat(3))
            k = len(r)
            ea, ep, en = cls.embedding[:k], cls.embedding[k:2 * k], cls.embedding[2 * k:]
            both = torch.cat([k_n, k_n])
            if not bool(self.prototypes.seen[k_n].all()):  # a class met for the first time starts from this batch
                self.prototypes.update(both, torch.cat([ea, ep]).detach())
            out = m3net_loss(att.logits, tgt, ea, ep, en, self.prototypes.get(k_n), margin=margin,
                             pos_weight=pos_weight, weights=weights)
            self.prototypes.update(both, torch.cat([ea, ep]).detach())
            w = k / b
            total = total + w * out.loss
            parts = parts + w * torch.stack([out.multilabel, out.prototypical, out.instance]).detach()
            acc += w * float((F.cosine_similarity(ea, ep) > F.cosine_similarity(ea, en)).float().mean())
        return {"loss": total, "L_M": parts[0], "L_CC": parts[1], "L_CI": parts[2], "acc": acc}

    def extra_repr(self) -> str:
        return (f"variant={self.variant!r} ({M3_VARIANTS[self.variant]}), num_classes={self.num_classes}, "
                f"in_channels={self.in_channels}, attn_dim={self.attn_dim}")


class ClassPrototypes(nn.Module):
    """Class prototypes ``φ̄_{C+}`` for the prototypical triplet loss (Eq. 9, "akin to [14]", MODC).

    MODC keeps one centre per class and refreshes it online from the batch; here each prototype is an
    exponential moving average of the L2-normalised class-specific representations of the batch's images of
    that class: ``p_k ← normalise(μ p_k + (1 - μ) mean_batch)``, ``μ = momentum`` (0.9), started from the first
    batch that holds the class. Prototypes are buffers (saved with the model, no gradient). ``keys`` are global
    class indices (the class's offset among all attributes' classes).
    """

    def __init__(self, num_classes: int, dim: int, momentum: float = 0.9):
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("prototypes", torch.zeros(int(num_classes), int(dim)))
        self.register_buffer("seen", torch.zeros(int(num_classes), dtype=torch.bool))

    @torch.no_grad()
    def update(self, keys, embeddings: torch.Tensor) -> None:
        """Fold the batch's ``embeddings`` ``(B, dim)`` of classes ``keys`` ``(B,)`` into the prototypes."""
        keys = torch.as_tensor(keys, device=self.prototypes.device).long().reshape(-1)
        e = F.normalize(embeddings.detach().float(), dim=1).to(self.prototypes.device)
        uniq, inv = torch.unique(keys, return_inverse=True)
        sums = torch.zeros(len(uniq), e.shape[1], device=e.device).index_add_(0, inv, e)
        mean = F.normalize(sums, dim=1)
        old = self.prototypes[uniq]
        mix = torch.where(self.seen[uniq, None], self.momentum * old + (1 - self.momentum) * mean, mean)
        self.prototypes[uniq] = F.normalize(mix, dim=1)
        self.seen[uniq] = True

    def get(self, keys) -> torch.Tensor:
        """The prototypes of ``keys`` ``(B, dim)``; an unseen class is an error (update first)."""
        keys = torch.as_tensor(keys, device=self.prototypes.device).long().reshape(-1)
        if not bool(self.seen[keys].all()):
            raise RuntimeError("ClassPrototypes.get: a class has no prototype yet; call update() with it first")
        return self.prototypes[keys]


def multilabel_bce(logits: torch.Tensor, targets: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
    """The attribute-level loss ``L_M`` of Eq. 7: binary cross-entropy over the ``M_n`` classes with weight
    ``w_p`` on the positives, averaged over the classes (``1/M_n``) and the batch.

    Eq. 7 as printed, ``(1/M_n) Σ [-w_p y log x + (1 - y) log(1 - x)]``, has lost the minus sign of its second
    term (it would reward confident mistakes on negatives); we use the weighted BCE it describes,
    ``-(1/M_n) Σ [w_p y log x + (1 - y) log(1 - x)]``, computed from logits for stability. ``w_p`` is 100 on
    DeepFashion (1,000 classes, about 0.3% positive) and 1 on FashionAI and DARN (§4.2)."""
    targets = targets.to(logits.dtype)
    w = torch.as_tensor(float(pos_weight), dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=w)


class M3Loss(NamedTuple):
    """The terms of Eq. 11: ``loss = λ_M L_M + λ_CC L_CC + λ_CI L_CI``."""

    loss: torch.Tensor
    multilabel: torch.Tensor
    prototypical: torch.Tensor
    instance: torch.Tensor


def m3net_loss(logits: torch.Tensor, targets: torch.Tensor, anchor: torch.Tensor, positive: torch.Tensor,
               negative: torch.Tensor, prototype: torch.Tensor, margin: float = 0.4, pos_weight: float = 1.0,
               weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> M3Loss:
    """The multi-granularity objective, Eq. 11 (paper 05 §3.2), all λ = 1 as in the paper:

    * ``L_M`` (Eq. 7): :func:`multilabel_bce` of ``logits`` against ``targets`` (every image of the batch);
    * ``L_CC`` (Eq. 9): the prototypical triplet ``(φ̄_m(I), φ̄_{C+}, φ̄_m(I⁻))``: anchor against its class
      prototype ``prototype`` (:class:`ClassPrototypes`, detached) and a negative;
    * ``L_CI`` (Eq. 10): the instance triplet ``(φ̄_m(I), φ̄_m(I⁺), φ̄_m(I⁻))``.

    Eq. 8 on cosine similarity with margin ζ = 0.4. The paper writes ``max(0, ζ + d(I, I⁺) - d(I, I⁻))`` and
    calls ``d`` "the cosine similarity"; with a similarity the signs must be the other way round (that form
    would push positives apart), so we use ``max(0, ζ - cos(a, p) + cos(a, n))``, i.e. ``d`` as a distance."""
    lm = multilabel_bce(logits, targets, pos_weight)
    lcc = cosine_triplet_loss(anchor, prototype.detach().to(anchor.dtype), negative, margin=margin)
    lci = cosine_triplet_loss(anchor, positive, negative, margin=margin)
    wm, wcc, wci = weights
    return M3Loss(wm * lm + wcc * lcc + wci * lci, lm, lcc, lci)


def predicted_classes(probs: torch.Tensor, gamma: float = 0.8, keep_top: bool = True) -> torch.Tensor:
    """The high-likelihood classes of §3.1, ``{C_m | x_m > γ}``, as a bool mask of ``probs``' shape
    (``(..., M_n)``). ``keep_top``: an image with no class above γ keeps its most likely one, so that every
    query has a class-specific space to search in (our choice; the paper does not say)."""
    mask = probs > gamma
    if keep_top:
        top = F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).bool()
        mask = mask | top
    return mask


def class_first_scores(q_attr: torch.Tensor, c_attr: torch.Tensor, q_cls: torch.Tensor, c_cls: torch.Tensor,
                       q_pred: torch.Tensor, c_pred: torch.Tensor) -> torch.Tensor:
    """Retrieval scores of §4.2 for one attribute: "prioritized in the class-specific embedding space, followed
    by retrieval in the attribute-specific embedding space" (MODC's protocol).

    * Candidates that share at least one high-likelihood class with the query come first, ranked by the best
      cosine similarity over the shared classes in those classes' class-specific spaces
      (``max_{m ∈ Q̂ ∩ Ĉ} cos(φ̄_m(q), φ̄_m(c))``);
    * every other candidate follows, ranked by the cosine similarity of the attribute-specific representations.

    ``q_attr (Q, D)``, ``c_attr (C, D)``; ``q_cls (Q, M, D)``, ``c_cls (C, M, D)``; ``q_pred (Q, M)``,
    ``c_pred (C, M)`` bool (:func:`predicted_classes`). Returns ``(Q, C)`` scores: ``2 + best shared-class
    cosine`` in the first tier (in [1, 3]) and the attribute cosine (in [-1, 1]) in the second, so one
    descending sort gives the two-tier order."""
    qa, ca = F.normalize(q_attr.float(), dim=-1), F.normalize(c_attr.float(), dim=-1)
    qc, cc = F.normalize(q_cls.float(), dim=-1), F.normalize(c_cls.float(), dim=-1)
    s_attr = qa @ ca.T
    best = torch.full_like(s_attr, -float("inf"))
    for m in range(qc.shape[1]):
        both = q_pred[:, m, None] & c_pred[None, :, m]
        if bool(both.any()):
            s = qc[:, m] @ cc[:, m].T
            best = torch.where(both, torch.maximum(best, s), best)
    shared = torch.isfinite(best)
    return torch.where(shared, 2.0 + best, s_attr)
