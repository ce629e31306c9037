"""ASEN (Ma et al., AAAI 2020) and ASEN++ (Dong et al., TIP 2021): attribute-specific embeddings.

Sources: paper 03 (``03_asen_attribute_specific_embedding_slides.txt``), slides "Attribute-aware Spatial
Attention", "Attribute-aware Channel Attention", "Localization and Training" (Algorithm 1, triplet ranking,
global-local alignment); docs/implementations.md §2 (Maryeon/asen: ``ASENet`` and ``ASENet_V2``)
and §3 (Maryeon/asenpp: the two-branch model, localisation, losses, training).

One network serves every attribute ``a``: the attribute picks *where* to look (ASA, a softmax over the
``h x w`` locations of a backbone feature map) and *which channels* matter (ACA, a sigmoid gate), so each
attribute gets its own embedding space (``ASEN(I, a)``, compared by cosine).

* :class:`SpatialAttention` (ASA) and :class:`ChannelAttention` (ACA) take any *condition vector*, not an
  attribute index, so other models (M3-Net's class-level attention) can reuse them with their own
  embeddings.
* :class:`ASENGlobal` is ``ASEN_g``: backbone map + attribute embedding table + ASA + ACA. Switches:
  ``use_asa=False`` ("w/o ASA": global average pooling, i.e. uniform attention), ``use_aca=False``
  ("w/o ACA": no channel gate, the final FC kept), ``variant="v1"`` or ``"v2"`` (see the class).
* ASEN++ adds a local branch: :func:`attention_box` turns the global attention map into a box (weakly
  supervised localisation), :func:`crop_and_resize` cuts it out of the high-resolution image, a second
  :class:`ASENGlobal` embeds the crop (:class:`ASENPlusPlus`). :func:`alignment_loss`,
  :func:`asenpp_loss` (stage 2: ``α L_g + β L_l + γ L_a``) and :func:`combined_feature` (the test feature)
  complete it.

Everything is plain PyTorch on the inputs' device (no ``.cuda()``), ``channels_last``-safe (no ``.view`` on
feature maps) and ``torch.autocast``-safe (no dtype is fixed; box arithmetic runs in float32 on detached
maps).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import triplet_ranking_loss

__all__ = [
    "SpatialAttention",
    "SpatialAttentionOutput",
    "ChannelAttention",
    "ASENGlobal",
    "ASENOutput",
    "ASENPlusPlus",
    "ASENWholeImage",
    "ASENPPOutput",
    "ASENPPLoss",
    "attention_box",
    "crop_and_resize",
    "alignment_loss",
    "combined_feature",
    "cosine_triplet_loss",
    "asenpp_loss",
    "TripletLossOutput",
    "attribute_triplet_loss",
    "triplet_step",
]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


# ----------------------------------------------------------------------------------------------------------
# the two attention modules
# ----------------------------------------------------------------------------------------------------------
class SpatialAttentionOutput(NamedTuple):
    """What :class:`SpatialAttention` returns: ``features`` the attended ``(B, C)`` vector ``x_s``;
    ``attention`` the ``(B, H, W)`` weights ``α^s`` (sum to one over the ``H x W`` locations)."""

    features: torch.Tensor
    attention: torch.Tensor


class SpatialAttention(nn.Module):
    """Attribute-aware spatial attention, ASA (ASEN slides "Attribute-aware Spatial Attention"; ASEN++ §III
    uses the same module in both branches, docs/implementations.md §3 "Model"):

    * ``p(x) = tanh(Conv1x1(x))``: the ``(B, C, H, W)`` map projected to ``c'`` channels;
    * ``p(a) = tanh(W_s a)``: the condition vector projected to ``c'``, broadcast over the locations;
    * ``α^s = softmax_{H·W}( Σ_i [p(a) ⊙ p(x)]_i / √c' )``: a scaled dot product at every location;
    * ``x_s = Σ_j α^s_j x_j``: the attention-weighted **sum** of the original ``C``-dim features.

    ``in_channels`` C; ``cond_dim`` the size of the condition vector ``a`` (an attribute embedding in ASEN,
    any vector for other models); ``attn_dim`` c' (default ``min(512, C)``: 512 on ResNet-50's 1024
    channels and 256 on ResNet-34's 256, ASEN++'s two ``COMMON_EMBED_SIZE`` values, §3).

    Options for the reference code's variants (§2): ``batch_norm=True`` puts a BatchNorm between the conv
    and the tanh of ``p(x)`` (``ASENet_V2``); ``score="conv"`` replaces the scaled dot product by the first
    ASEN code's learned scorer ``tanh(Conv1x1_{c'→1}(p(a) ⊙ p(x)))`` (``ASENet``). The default,
    ``score="dot"``, is the paper's equation, as in ``ASENet_V2`` and ASEN++.

    ``forward(x, cond)`` returns :class:`SpatialAttentionOutput` ``(x_s, α^s)``; ``logits(x, cond)`` the
    ``(B, H, W)`` scores before the softmax.
    """

    def __init__(self, in_channels: int, cond_dim: int, attn_dim: int | None = None, batch_norm: bool = False,
                 score: str = "dot"):
        super().__init__()
        if score not in ("dot", "conv"):
            raise ValueError(f"score must be 'dot' or 'conv', got {score!r}")
        self.in_channels = int(in_channels)
        self.cond_dim = int(cond_dim)
        self.attn_dim = int(attn_dim) if attn_dim is not None else min(512, self.in_channels)
        self.score = score
        self.conv = nn.Conv2d(self.in_channels, self.attn_dim, kernel_size=1)           # p(x)
        self.bn = nn.BatchNorm2d(self.attn_dim) if batch_norm else nn.Identity()
        self.cond = nn.Linear(self.cond_dim, self.attn_dim)                              # W_s
        self.scorer = nn.Conv2d(self.attn_dim, 1, kernel_size=1) if score == "conv" else None

    def logits(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)``: the score of every location before the softmax."""
        px = torch.tanh(self.bn(self.conv(x)))                        # (B, c', H, W)
        pa = torch.tanh(self.cond(cond)).to(px.dtype)                 # (B, c')
        if self.scorer is None:
            return torch.einsum("bchw,bc->bhw", px, pa) / math.sqrt(self.attn_dim)
        return torch.tanh(self.scorer(px * pa[:, :, None, None]))[:, 0]

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> SpatialAttentionOutput:
        s = self.logits(x, cond)
        b, h, w = s.shape
        att = torch.softmax(s.reshape(b, h * w), dim=1).reshape(b, h, w)
        xs = torch.einsum("bchw,bhw->bc", x, att.to(x.dtype))
        return SpatialAttentionOutput(xs, att)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, cond_dim={self.cond_dim}, attn_dim={self.attn_dim}, "
                f"score={self.score!r}")


class ChannelAttention(nn.Module):
    """Attribute-aware channel attention, ACA (ASEN slides "Attribute-aware Channel Attention", an
    attribute-guided squeeze-and-excitation; the same in ASEN++, docs/implementations.md §3 "Model"):

    * ``q(a) = act(W_c a)``: the condition projected to ``cond_hidden`` (default ``cond_dim``, as in
      ``ASENet_V2`` and ASEN++); ``act`` is ``tanh`` in the paper's equation (``cond_activation="tanh"``,
      the default) and ReLU in all three reference codes (``"relu"``, §2, §3);
    * ``α^c = σ(W_2 δ(W_1 [q(a), x_s]))``: ``W_1`` maps ``cond_hidden + C`` to ``C / reduction``
      (``reduction=2``: 1536 → 512 on ResNet-50, §3), δ = ReLU, ``W_2`` back to C, σ = sigmoid;
    * ``x_c = x_s ⊙ α^c``;
    * output ``W x_c + b``, ``out_dim`` wide (1024 in the papers); ``out_dim=None`` drops this FC
      (``ASENet_V2``, or a model that wants the gated ``C``-dim vector itself).

    The concatenation order ``[q(a), x_s]`` is the paper's; the codes concatenate ``[x_s, q(a)]``, which is
    the same function with ``W_1``'s input columns permuted. ``forward(xs, cond)`` returns the output;
    ``gate(xs, cond)`` the ``(B, C)`` weights ``α^c``.
    """

    def __init__(self, in_channels: int, cond_dim: int, out_dim: int | None = 1024, cond_hidden: int | None = None,
                 reduction: int = 2, cond_activation: str = "tanh"):
        super().__init__()
        if cond_activation not in ("tanh", "relu"):
            raise ValueError(f"cond_activation must be 'tanh' or 'relu', got {cond_activation!r}")
        self.in_channels = int(in_channels)
        self.cond_dim = int(cond_dim)
        self.cond_hidden = int(cond_hidden) if cond_hidden is not None else self.cond_dim
        self.cond_activation = cond_activation
        self.cond = nn.Linear(self.cond_dim, self.cond_hidden)                                   # W_c
        self.fc1 = nn.Linear(self.cond_hidden + self.in_channels, max(1, self.in_channels // int(reduction)))  # W_1
        self.fc2 = nn.Linear(self.fc1.out_features, self.in_channels)                          # W_2
        self.out_dim = int(out_dim) if out_dim is not None else self.in_channels
        self.fc = nn.Linear(self.in_channels, int(out_dim)) if out_dim is not None else nn.Identity()  # W, b

    def gate(self, xs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``α^c``, ``(B, C)`` in (0, 1)."""
        q = self.cond(cond)
        q = torch.tanh(q) if self.cond_activation == "tanh" else F.relu(q)
        h = F.relu(self.fc1(torch.cat([q.to(xs.dtype), xs], dim=1)))
        return torch.sigmoid(self.fc2(h))

    def forward(self, xs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.fc(xs * self.gate(xs, cond).to(xs.dtype))

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, cond_dim={self.cond_dim}, out_dim={self.out_dim}, "
                f"cond_activation={self.cond_activation!r}")


# ----------------------------------------------------------------------------------------------------------
# ASEN_g
# ----------------------------------------------------------------------------------------------------------
class ASENOutput(NamedTuple):
    """What :class:`ASENGlobal` returns: ``embedding`` ``(B, D)``; ``attention`` the ``(B, H, W)`` spatial
    attention (uniform ``1 / (H·W)`` without ASA, which is exactly what global average pooling weighs)."""

    embedding: torch.Tensor
    attention: torch.Tensor


class ASENGlobal(nn.Module):
    """ASEN_g, the global branch of ASEN (slides "Overview", "Attention Mechanism"; ASEN++'s global branch,
    docs/implementations.md §3 "Model"): ``backbone`` feature map → ASA → ACA → embedding.

    ``backbone``: any module returning ``(B, C, H, W)`` (``backbone("resnet50")``, cut after layer3, in the
    papers; :class:`~fashionlab.models.SmallCNN` on a CPU); ``in_channels`` defaults to its
    ``out_channels``. ``num_attributes``: rows of the attribute embedding table
    (``nn.Embedding(num_attributes, cond_dim)``, ``cond_dim=512`` as in ``ASENet_V2`` and ASEN++; one table
    feeds both attentions). Pass ``attribute_embedding=`` an existing ``nn.Embedding`` to share it (ASEN++'s
    local branch shares the global one's, §3). ``embed_dim``: D (1024 in the papers).

    ``variant``:

    * ``"v1"`` (default): the paper's equations, i.e. ASEN++'s attention module (§3): scaled-dot ASA, ACA,
      final FC to ``embed_dim``. ACA's condition activation follows the paper (tanh) unless
      ``aca_activation="relu"`` (the codes). The first ASEN code (``ASENet``, §2) differs in its ASA scorer:
      ``asa_score="conv"`` gives it.
    * ``"v2"``: ``ASENet_V2`` of Maryeon/asen at HEAD (§2): BatchNorm in ``p(x)``, ACA condition with ReLU,
      **no final FC** (the embedding is the gated ``C``-dim vector, 1024 on ResNet-50; ``embed_dim`` must be
      ``None`` or ``C``). (An older commit of that repository still had a final FC in V2.)

    Ablations (slides "Ablation Study"): ``use_asa=False`` replaces ASA by global average pooling ("ASEN_g
    w/o ASA"); ``use_aca=False`` skips the channel gate and keeps the final FC ("w/o ACA"; in ASEN++'s code
    too). ``normalize=True`` L2-normalises the embedding (both ASEN codes do; ASEN++ compares by cosine, the
    same thing).

    ``forward(x, attr)`` returns :class:`ASENOutput` ``(embedding, attention)``; ``attend(fmap, cond)`` does
    the same from a feature map and condition vectors; ``condition(attr)`` looks up the attribute vectors.
    """

    def __init__(self, backbone: nn.Module, num_attributes: int, embed_dim: int | None = None, cond_dim: int = 512,
                 attn_dim: int | None = None, reduction: int = 2, variant: str = "v1", use_asa: bool = True,
                 use_aca: bool = True, aca_activation: str | None = None, asa_score: str = "dot",
                 normalize: bool = True, in_channels: int | None = None,
                 attribute_embedding: nn.Embedding | None = None):
        super().__init__()
        if variant not in ("v1", "v2"):
            raise ValueError(f"variant must be 'v1' or 'v2', got {variant!r}")
        c = in_channels if in_channels is not None else getattr(backbone, "out_channels", None)
        if c is None:
            raise ValueError("ASENGlobal: the backbone has no out_channels attribute; pass in_channels=")
        c = int(c)
        if variant == "v2":
            if embed_dim not in (None, c):
                raise ValueError(f"variant 'v2' has no final FC: the embedding is C = {c}-dim, "
                                 f"got embed_dim={embed_dim}")
            out_dim = None
        else:
            out_dim = int(embed_dim) if embed_dim is not None else 1024
        if attribute_embedding is None:
            attribute_embedding = nn.Embedding(int(num_attributes), int(cond_dim))
        self.backbone = backbone
        self.attribute_embedding = attribute_embedding
        self.num_attributes = attribute_embedding.num_embeddings
        cond_dim = attribute_embedding.embedding_dim
        self.variant = variant
        self.in_channels = c
        self.embed_dim = out_dim if out_dim is not None else c
        self.normalize = bool(normalize)
        self.asa = (SpatialAttention(c, cond_dim, attn_dim, batch_norm=(variant == "v2"), score=asa_score)
                    if use_asa else None)
        if use_aca:
            act = aca_activation or ("relu" if variant == "v2" else "tanh")
            self.aca = ChannelAttention(c, cond_dim, out_dim=out_dim, reduction=reduction, cond_activation=act)
            self.fc = None
        else:
            self.aca = None
            self.fc = nn.Linear(c, out_dim) if out_dim is not None else nn.Identity()

    @property
    def use_asa(self) -> bool:
        return self.asa is not None

    @property
    def use_aca(self) -> bool:
        return self.aca is not None

    def condition(self, attr) -> torch.Tensor:
        """``(B, cond_dim)``: the embedding-table rows of attribute indices ``attr``."""
        w = self.attribute_embedding.weight
        return self.attribute_embedding(torch.as_tensor(attr, device=w.device).long().reshape(-1))

    def attend(self, fmap: torch.Tensor, cond: torch.Tensor) -> ASENOutput:
        """ASA (or average pooling) → ACA (or nothing) → FC (→ L2 normalisation) on a ``(B, C, H, W)`` map."""
        if self.asa is not None:
            xs, att = self.asa(fmap, cond)
        else:
            b, _, h, w = fmap.shape
            xs = fmap.mean(dim=(2, 3))
            att = torch.full((b, h, w), 1.0 / (h * w), device=fmap.device, dtype=fmap.dtype)
        z = self.aca(xs, cond) if self.aca is not None else self.fc(xs)
        if self.normalize:
            z = F.normalize(z, dim=1)
        return ASENOutput(z, att)

    def forward(self, x: torch.Tensor, attr) -> ASENOutput:
        return self.attend(self.backbone(x), self.condition(attr))

    def extra_repr(self) -> str:
        return (f"num_attributes={self.num_attributes}, in_channels={self.in_channels}, embed_dim={self.embed_dim}, "
                f"variant={self.variant!r}, use_asa={self.use_asa}, use_aca={self.use_aca}, normalize={self.normalize}")


# ----------------------------------------------------------------------------------------------------------
# ASEN++: weakly supervised localisation
# ----------------------------------------------------------------------------------------------------------
def attention_box(att_map: torch.Tensor, threshold: float = 0.1, image_size=None, work_size=None,
                  square: bool = True) -> torch.Tensor:
    """Weakly supervised localisation of ASEN++ (slides "Weakly-supervised Localization"; docs/implementations.md §3
    "Local branch", Maryeon/asenpp ``LocalTransform``): one box per attention map.

    1. ``work_size`` given: the map is first resized bilinearly to it (ASEN++ resizes its 14x14 map to the
       224 px global input; :class:`ASENPlusPlus` passes the global input's size). ``None``: the map's own
       grid is used.
    2. Min-max normalisation per image, then the pixels **strictly above** ``threshold`` are kept
       (ASEN++: 0.1 in its stage-2 configs, 0.4 its default). ASEN++ does this on the map quantised to
       uint8 (a difference of at most 1/255 of the range); here it is done on the floats.
    3. The box is the bounding rectangle of **all** kept pixels (OpenCV's ``boundingRect`` of the binary
       mask in ASEN++, not the largest connected component): pixel rows/columns ``i0..i1`` span
       ``[i0, i1 + 1)`` in continuous coordinates.
    4. It is scaled from the grid to ``image_size`` ``(H, W)`` pixels (default: the grid itself).
    5. ``square=True`` (ASEN++): the box becomes a square with the side of its longer edge (capped at the
       image's shorter side), centred on the box, shifted inside the image. ASEN++ squares in its 224 px
       grid with integer arithmetic before mapping to the image; here it is done in image pixels, in
       floats (the same where the grid and the image have the same aspect ratio).

    A constant map (nothing to localise) gives the whole image; ASEN++'s code would crop nothing there.
    ``att_map``: ``(B, h, w)`` or ``(h, w)``; it is detached and processed in float32. Returns ``(B, 4)`` (or
    ``(4,)``) float32 boxes ``(x1, y1, x2, y2)`` in image pixels, ready for :func:`crop_and_resize`.
    """
    att = att_map.detach().float()
    single = att.dim() == 2
    if single:
        att = att.unsqueeze(0)
    if att.dim() != 3:
        raise ValueError(f"att_map must be (B, h, w) or (h, w), got shape {tuple(att_map.shape)}")
    if work_size is not None:
        att = F.interpolate(att.unsqueeze(1), size=_pair(work_size), mode="bilinear", align_corners=False)[:, 0]
    b, gh, gw = att.shape
    img_h, img_w = _pair(image_size) if image_size is not None else (gh, gw)

    lo = att.amin(dim=(1, 2), keepdim=True)
    rng = att.amax(dim=(1, 2), keepdim=True) - lo
    flat = rng.reshape(b) <= 1e-6 * att.abs().amax(dim=(1, 2))  # constant up to rounding: nothing to localise
    keep = (att - lo) / rng.clamp_min(1e-30) > threshold
    rows, cols = keep.any(dim=2), keep.any(dim=1)                  # (B, gh), (B, gw)
    y0 = rows.int().argmax(dim=1)                                  # first kept row
    y1 = gh - rows.flip(1).int().argmax(dim=1)                     # one past the last kept row
    x0 = cols.int().argmax(dim=1)
    x1 = gw - cols.flip(1).int().argmax(dim=1)
    boxes = torch.stack([x0 * (img_w / gw), y0 * (img_h / gh), x1 * (img_w / gw), y1 * (img_h / gh)], dim=1)
    whole = torch.tensor([0.0, 0.0, float(img_w), float(img_h)], device=boxes.device)
    boxes = torch.where((flat | ~rows.any(dim=1)).unsqueeze(1), whole, boxes.float())

    if square:
        side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).clamp(max=min(img_w, img_h))
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        left = torch.minimum((cx - side / 2).clamp(min=0), img_w - side)
        top = torch.minimum((cy - side / 2).clamp(min=0), img_h - side)
        boxes = torch.stack([left, top, left + side, top + side], dim=1)
    return boxes[0] if single else boxes


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, out_size=112, sampling_ratio: int = -1) -> torch.Tensor:
    """Cut box ``i`` out of image ``i`` and resize it to ``out_size`` (ASEN++'s local-branch input, 112 px,
    docs/implementations.md §3), with ``torchvision.ops.roi_align`` on the (high-resolution) image batch.

    ``images``: ``(B, 3, H, W)`` float; ``boxes``: ``(B, 4)`` ``(x1, y1, x2, y2)`` in pixels of ``images``
    (pixel ``i`` covers ``[i, i + 1)``, as :func:`attention_box` returns them). ``aligned=True`` so pixel
    centres sit at ``i + 0.5``; ``sampling_ratio=-1`` averages ``ceil(box / out)`` samples per output
    pixel, an anti-aliased downsampling like ASEN++'s PIL resize of the crop. Returns
    ``(B, 3, out_h, out_w)``, differentiable with respect to ``images`` (not to ``boxes``).
    """
    from torchvision.ops import roi_align

    boxes = boxes.detach().to(device=images.device, dtype=images.dtype).reshape(-1, 4)
    if boxes.shape[0] != images.shape[0]:
        raise ValueError(f"one box per image: {boxes.shape[0]} boxes for {images.shape[0]} images")
    idx = torch.arange(images.shape[0], device=images.device, dtype=images.dtype).unsqueeze(1)
    return roi_align(images, torch.cat([idx, boxes], dim=1), output_size=_pair(out_size), spatial_scale=1.0,
                     sampling_ratio=sampling_ratio, aligned=True)


# ----------------------------------------------------------------------------------------------------------
# ASEN++: losses and the test feature
# ----------------------------------------------------------------------------------------------------------
def cosine_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.2,
                        reduction: str = "mean") -> torch.Tensor:
    """Triplet ranking loss on cosine similarity (slides "Triplet ranking based metric learning";
    ASEN++ ``MarginRankingLoss(0.2)`` on ``(cos(a, p), cos(a, n))``, docs/implementations.md §3 "Losses"):
    ``max(0, m - cos(a, p) + cos(a, n))``, via :func:`~fashionlab.losses.triplet_ranking_loss`."""
    return triplet_ranking_loss(F.cosine_similarity(anchor, positive, dim=1),
                                F.cosine_similarity(anchor, negative, dim=1), margin=margin, reduction=reduction)


def alignment_loss(g: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Global-local alignment of ASEN++ (slides "Global local alignment"): ``mean_batch(1 - cos(g, l))``,
    0 for parallel and 2 for opposite embeddings. Clamped at 0 as in ASEN++'s code (``max(0, 1 - cos)``,
    docs/implementations.md §3), which only removes rounding below zero."""
    return (1.0 - F.cosine_similarity(g, l, dim=1)).clamp_min(0).mean()


def combined_feature(g: torch.Tensor, l: torch.Tensor, beta: float = 0.6) -> torch.Tensor:
    """ASEN++'s test feature (docs/implementations.md §3 "Test feature"): ``[√β · g/||g||, √(1-β) · l/||l||]``, each branch
    L2-normalised first, β = 0.6, so ``<f(u), f(v)> = β cos_g + (1-β) cos_l`` and ``||f|| = 1``. (This β is the
    test-time mix, not the local-loss weight of :func:`asenpp_loss`.)"""
    return torch.cat([math.sqrt(beta) * F.normalize(g, dim=1), math.sqrt(1.0 - beta) * F.normalize(l, dim=1)], dim=1)


class ASENPPLoss(NamedTuple):
    """What :func:`asenpp_loss` returns: ``loss = alpha·global_triplet + beta·local_triplet + gamma·alignment``
    and the three unweighted terms."""

    loss: torch.Tensor
    global_triplet: torch.Tensor
    local_triplet: torch.Tensor
    alignment: torch.Tensor


def asenpp_loss(g: Sequence[torch.Tensor], l: Sequence[torch.Tensor], alpha: float = 1.0, beta: float = 0.1,
                gamma: float = 0.1, margin: float = 0.2) -> ASENPPLoss:
    """Stage-2 loss of ASEN++ (slides, Algorithm 1 line 19): ``L = α L_g + β L_l + γ L_a``.

    ``g``, ``l``: the global and local embeddings of (anchor, positive, negative), three ``(B, D)`` each.
    ``L_g``, ``L_l``: :func:`cosine_triplet_loss` (margin 0.2). ``L_a``: :func:`alignment_loss` of each of
    the three images, **summed** over anchor, positive and negative, as ASEN++'s trainer does. Defaults: the
    stage-2 configs of ASEN++ (docs/implementations.md §3 "Losses"; ``GLOBAL_WEIGHT`` 1, ``LOCAL_WEIGHT`` 0.1,
    ``ALIGN_WEIGHT`` 0.1). Stage 1 is ``cosine_triplet_loss(*g)`` alone.
    """
    if len(g) != 3 or len(l) != 3:
        raise ValueError("asenpp_loss needs (anchor, positive, negative) embeddings for both branches")
    lg = cosine_triplet_loss(*g, margin=margin)
    ll = cosine_triplet_loss(*l, margin=margin)
    la = sum(alignment_loss(gi, li) for gi, li in zip(g, l))
    return ASENPPLoss(alpha * lg + beta * ll + gamma * la, lg, ll, la)


class TripletLossOutput(NamedTuple):
    """What :func:`attribute_triplet_loss` and :meth:`ASENPlusPlus.loss` return: the ``loss`` to minimise and
    ``metrics``, the numbers a training log shows (``acc``: the fraction of triplets ranked right)."""

    loss: torch.Tensor
    metrics: dict


def _thirds(e: torch.Tensor, b: int):
    return e[:b], e[b:2 * b], e[2 * b:]


def attribute_triplet_loss(model: nn.Module, x: torch.Tensor, attr: torch.Tensor, margin: float = 0.2,
                           lambda1: float = 5e-3, lambda2: float = 5e-4) -> TripletLossOutput:
    """The training loss of every single-branch method of paper 03 (slides "Triplet ranking based metric
    learning"; Algorithm 1's stage 1 for ``ASEN_g``): the triplet ranking loss on cosine similarity
    (:func:`cosine_triplet_loss`, margin 0.2) of the anchors, positives and negatives under attribute ``attr``.

    ``x``: ``(3B, ...)`` images, the B anchors, then the B positives, then the B negatives; ``attr``: ``(3B,)``
    the attribute of each image (the triplet's attribute, three times). The embedding depends on the model:
    :class:`ASENGlobal` (and any module returning an ``.embedding``) is called as ``model(x, attr)``;
    :class:`~fashionlab.models.GlobalPoolEmbedding` (the attribute-unaware triplet network) as ``model(x)``;
    :class:`~fashionlab.models.ConditionalSimilarityNet` uses CSN's own loss with its regularisers
    (``lambda1`` on the embedding norm, ``lambda2`` on the masks; its ``variant="modified"`` is the ASEN code's
    CSN baseline, docs/implementations.md §6). ``metrics["acc"]``: the fraction of triplets whose positive is
    closer than the negative."""
    from .backbones import GlobalPoolEmbedding
    from .csn import ConditionalSimilarityNet

    b = x.shape[0] // 3
    if isinstance(model, ConditionalSimilarityNet):
        f = model.embed(x)
        o = model.triplet_loss_from_embeddings(*_thirds(f, b), attr[:b], margin=margin, lambda1=lambda1,
                                               lambda2=lambda2)
        return TripletLossOutput(o.loss, {"acc": (o.s_pos > o.s_neg).float().mean()})
    e = model(x) if isinstance(model, GlobalPoolEmbedding) else model(x, attr)
    e = getattr(e, "embedding", e)
    ea, ep, en = _thirds(e, b)
    acc = (F.cosine_similarity(ea, ep) > F.cosine_similarity(ea, en)).float().mean()
    return TripletLossOutput(cosine_triplet_loss(ea, ep, en, margin=margin), {"acc": acc})


def triplet_step(images, margin: float = 0.2, lambda1: float = 5e-3, lambda2: float = 5e-4, device=None,
                 hires: bool = False):
    """The ``step_fn`` of :func:`fashionlab.engine.fit` for triplet training: a batch is a ``(B, 4)`` array of
    ``(anchor, positive, negative, attribute)`` image ids; ``images`` (a
    :class:`~fashionlab.datasets.TwoScaleImages`) turns it into one flipped, normalised batch
    (:meth:`~fashionlab.datasets.TwoScaleImages.triplet_batch`). Single-branch models get
    :func:`attribute_triplet_loss`; with ``hires=True`` (ASEN's stage 2) the model's own ``loss(x, attr, x_hr)``
    (:meth:`ASENPlusPlus.loss`) sees the high-resolution images too. Returns ``(loss, metrics)``."""

    def step(model, t):
        x, x_hr, attr = images.triplet_batch(t, train=True, device=device, hires=hires)
        if hires:
            out = model.loss(x, attr, x_hr)
        else:
            out = attribute_triplet_loss(model, x, attr, margin=margin, lambda1=lambda1, lambda2=lambda2)
        return out.loss, out.metrics

    return step


# ----------------------------------------------------------------------------------------------------------
# ASEN++: the two-branch model
# ----------------------------------------------------------------------------------------------------------
class ASENPPOutput(NamedTuple):
    """What :class:`ASENPlusPlus` returns: both ``(B, D)`` embeddings, the global ``attention`` map that
    chose the crops, the ``(B, 4)`` ``boxes`` in pixels of the high-resolution image, and the local branch's
    own ``local_attention`` over the crop."""

    global_embedding: torch.Tensor
    local_embedding: torch.Tensor
    attention: torch.Tensor
    boxes: torch.Tensor
    local_attention: torch.Tensor


class ASENPlusPlus(nn.Module):
    """ASEN++ (Dong et al., TIP 2021; the slides' "ASEN" with two branches; docs/implementations.md §3 "Model"): a global
    branch on the whole image and a local branch on the region its attention points to.

    ``forward(x, attr, x_hr=None)``: the global branch embeds ``x`` (224 px in the paper); its attention map,
    resized to ``x``'s size, gives one box per image (:func:`attention_box`, ``threshold`` 0.1, squared);
    the box is cut from ``x_hr`` (the same view at high resolution; default ``x``) and resized to
    ``local_size`` (112; :func:`crop_and_resize`); the local branch embeds the crop. Localisation runs on
    the detached map, as in ASEN++ (no gradient flows through the box). Returns :class:`ASENPPOutput`.

    ``feature(x, attr, x_hr=None)``: the test feature :func:`combined_feature` (β = 0.6).
    ``loss(x, attr, x_hr=None)``: stage 2's loss ``α L_g + β L_l + γ L_a`` (``loss_weights``, ``margin``) on a
    batch of anchors, positives and negatives.
    ``param_groups(lr_local, lr_global)``: stage 2's optimiser groups (local branch 1e-4, global branch and
    the shared attribute table 1e-5, §3 "Training"). Stage 1 trains ``global_branch`` alone.
    :meth:`from_backbones` builds the paper's layout, the local branch sharing the attribute table.
    """

    def __init__(self, global_branch: ASENGlobal, local_branch: ASENGlobal, threshold: float = 0.1,
                 local_size=112, beta: float = 0.6, square: bool = True,
                 loss_weights: tuple[float, float, float] = (1.0, 0.1, 0.1), margin: float = 0.2):
        super().__init__()
        self.global_branch = global_branch
        self.local_branch = local_branch
        self.threshold = float(threshold)
        self.local_size = _pair(local_size)
        self.beta = float(beta)
        self.square = bool(square)
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.margin = float(margin)

    @classmethod
    def from_backbones(cls, global_backbone: nn.Module, local_backbone: nn.Module, num_attributes: int,
                       embed_dim: int = 1024, cond_dim: int = 512, branch_kwargs: dict | None = None,
                       **kwargs) -> "ASENPlusPlus":
        """Two :class:`ASENGlobal` branches sharing one ``nn.Embedding(num_attributes, cond_dim)`` (ASEN++:
        ResNet-50 and ResNet-34, both cut after layer3; ``attn_dim`` ``min(512, C)`` gives its 512 and 256).
        ``branch_kwargs`` go to both branches, ``kwargs`` to :class:`ASENPlusPlus`."""
        bk = dict(branch_kwargs or {})
        g = ASENGlobal(global_backbone, num_attributes, embed_dim=embed_dim, cond_dim=cond_dim, **bk)
        l = ASENGlobal(local_backbone, num_attributes, embed_dim=embed_dim,
                       attribute_embedding=g.attribute_embedding, **bk)
        return cls(g, l, **kwargs)

    def localize(self, attention: torch.Tensor, input_size, image_size) -> torch.Tensor:
        """``(B, 4)`` boxes in ``image_size`` pixels from global attention maps over an ``input_size`` input."""
        return attention_box(attention, self.threshold, image_size=image_size, work_size=input_size, square=self.square)

    def forward(self, x: torch.Tensor, attr, x_hr: torch.Tensor | None = None) -> ASENPPOutput:
        x_hr = x if x_hr is None else x_hr
        g, att = self.global_branch(x, attr)
        with torch.no_grad():
            boxes = self.localize(att, x.shape[-2:], x_hr.shape[-2:])
            crops = crop_and_resize(x_hr, boxes, self.local_size)
        l, latt = self.local_branch(crops, attr)
        return ASENPPOutput(g, l, att, boxes, latt)

    def feature(self, x: torch.Tensor, attr, x_hr: torch.Tensor | None = None,
                beta: float | None = None) -> torch.Tensor:
        """The ``(B, 2D)`` retrieval feature: :func:`combined_feature` of the two branches."""
        out = self(x, attr, x_hr)
        return combined_feature(out.global_embedding, out.local_embedding, self.beta if beta is None else beta)

    def loss(self, x: torch.Tensor, attr, x_hr: torch.Tensor | None = None) -> TripletLossOutput:
        """Stage 2's loss (Algorithm 1 line 19): :func:`asenpp_loss` ``α L_g + β L_l + γ L_a`` with
        ``loss_weights = (α, β, γ)`` and ``margin``, on ``x`` = the B anchors, B positives and B negatives
        (``x_hr`` their high-resolution views, ``attr`` ``(3B,)``). ``metrics``: the three terms and ``acc``
        (global branch: positive closer than negative)."""
        b = x.shape[0] // 3
        out = self(x, attr, x_hr)
        g, l = _thirds(out.global_embedding, b), _thirds(out.local_embedding, b)
        alpha, beta, gamma = self.loss_weights
        lo = asenpp_loss(g, l, alpha=alpha, beta=beta, gamma=gamma, margin=self.margin)
        acc = (F.cosine_similarity(g[0], g[1]) > F.cosine_similarity(g[0], g[2])).float().mean()
        return TripletLossOutput(lo.loss, {"L_g": lo.global_triplet, "L_l": lo.local_triplet, "L_a": lo.alignment,
                                           "acc": acc})

    def param_groups(self, lr_local: float = 1e-4, lr_global: float = 1e-5) -> list[dict]:
        """Stage-2 optimiser groups (docs/implementations.md §3 "Training"): the local branch's own parameters at
        ``lr_local``; the global branch, with the shared attribute table, at ``lr_global``."""
        glob = [p for p in self.global_branch.parameters() if p.requires_grad]
        seen = {id(p) for p in glob}
        local = [p for p in self.local_branch.parameters() if p.requires_grad and id(p) not in seen]
        return [{"params": local, "lr": lr_local}, {"params": glob, "lr": lr_global}]

    def extra_repr(self) -> str:
        return (f"threshold={self.threshold}, local_size={self.local_size}, beta={self.beta}, square={self.square}, "
                f"loss_weights={self.loss_weights}, margin={self.margin}")


class ASENWholeImage(ASENPlusPlus):
    """ASEN_full, the slides' localisation ablation ("Study on localization strategy"): :class:`ASENPlusPlus` whose
    local branch sees the whole high-resolution image, resized to ``local_size``, instead of the attention crop."""

    def localize(self, attention: torch.Tensor, input_size, image_size) -> torch.Tensor:
        h, w = image_size
        box = torch.tensor([0.0, 0.0, float(w), float(h)], device=attention.device)
        return box.expand(attention.shape[0], 4)
