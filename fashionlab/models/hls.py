"""Hierarchical label sharing (Papadopoulos et al., "Attentive Hierarchical Label Sharing for Enhanced Garment and
Attribute Classification of Fashion Imagery"): a two-stage pipeline, object-type detection and then category and
attribute classification that is told the label of the level above.

Source: paper 06 (``06_hierarchical_label_sharing.txt``), §3.2 (Fig. 1, Eq. 1-7), §4.2 and §5 (Tables 4, 6, 7).
No public code exists; the paper's models are Keras / TensorFlow Object Detection API models.

Stage 1, object-type detection (§3.2.1, §5.1): :func:`build_detector`, a torchvision Faster R-CNN finding
upper-body, lower-body, full-body and footwear items in a scene. The paper fine-tuned the TF-API Faster R-CNN
with an ImageNet-pretrained InceptionV2 backbone (best on the Mallzee data: mAP 80.6, AR@100 85.8, Table 4);
here the detector is small and trained from scratch so that it runs on a laptop CPU (nothing is downloaded).

Stage 2, category and attribute classification of the crops (§3.2.2), three models:

* **Baseline STL** (:class:`STLClassifier` without ``condition_classes``): backbone -> global average pooling ->
  dropout -> dense; one network for the categories (softmax, categorical cross-entropy) and another one for the
  attributes (sigmoid, binary cross-entropy). Training images are augmented by :func:`augment`.
* **STL w/ HLS** (:class:`STLClassifier` with ``condition_classes``): the same, with an embedding of the shared
  label concatenated with the pooled features before the dense layer: the object type for the category
  classifier, the category for the attribute classifier (Fig. 1a, the red lines).
* **MTL w/ RNN+VA** (:class:`MTLRNNVA`): one backbone, an additive (Bahdanau) attention over its feature grid
  (:class:`AdditiveAttention`, Eq. 1-3) and a GRU decoder run for two steps: step 1 sees the object-type
  embedding and predicts the category (Eq. 4-5); step 2 sees the category embedding and predicts the attributes
  (Eq. 6-7). The loss is the sum of the two (:func:`hls_loss`).

Models return logits; the softmax / sigmoid of the paper's last layers is inside the losses. Everything runs on
the inputs' device and under ``torch.autocast``; nothing is CUDA-only.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import Backbone, SmallCNN

__all__ = [
    "STLClassifier",
    "AdditiveAttention",
    "MTLRNNVA",
    "MTLOutput",
    "decoder_step",
    "HLSLoss",
    "hls_loss",
    "augment",
    "detector_backbone",
    "build_detector",
]


def _channels(backbone: nn.Module, in_channels: int | None) -> int:
    c = in_channels if in_channels is not None else getattr(backbone, "out_channels", None)
    if c is None:
        raise ValueError("the backbone has no out_channels attribute; pass in_channels=")
    return int(c)


def _labels(x, n: int, num_classes: int, name: str, device) -> torch.Tensor:
    """Class indices as a ``(n,)`` long tensor on ``device``, checked against ``num_classes``."""
    t = torch.as_tensor(x, device=device).long().reshape(-1)
    if t.numel() != n:
        raise ValueError(f"{name}: got {t.numel()} labels for {n} images")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise IndexError(f"{name}: label out of range for {num_classes} classes")
    return t


# ----------------------------------------------------------------------------------------------------------
# Baseline STL and STL w/ HLS
# ----------------------------------------------------------------------------------------------------------
class STLClassifier(nn.Module):
    """Baseline STL and STL w/ HLS of paper 06 §3.2 (Fig. 1a).

    ``backbone -> global average pooling -> dropout -> dense`` gives ``num_outputs`` logits: categories
    (multi-class; softmax + categorical cross-entropy in the loss) or attributes (multi-label; sigmoid + binary
    cross-entropy). ``condition_classes=None`` is the Baseline STL. With ``condition_classes`` it is STL w/ HLS:
    an ``nn.Embedding(condition_classes, embed_dim)`` of the shared label (the object type for the category
    classifier, the category for the attribute classifier) is concatenated with the pooled features before the
    dense layer ("passed through an embedding layer and then concatenated with the image representation").
    Dropout acts on the pooled image features only, not on the label embedding (the paper does not say; a
    dropped label would be a noisy label).

    ``forward(images, condition=None)``: ``images`` ``(B, 3, H, W)``; ``condition`` ``(B,)`` class indices,
    required by a conditioned model and refused by a baseline one. Returns ``(B, num_outputs)`` logits.
    """

    def __init__(self, backbone: Backbone | nn.Module, num_outputs: int, condition_classes: int | None = None,
                 embed_dim: int = 16, dropout: float = 0.2, in_channels: int | None = None):
        super().__init__()
        c = _channels(backbone, in_channels)
        self.backbone = backbone
        self.in_channels = c
        self.num_outputs = int(num_outputs)
        self.condition_classes = None if condition_classes is None else int(condition_classes)
        self.dropout = nn.Dropout(float(dropout))
        if self.condition_classes is not None:
            self.embedding = nn.Embedding(self.condition_classes, int(embed_dim))
            self.embed_dim = int(embed_dim)
        else:
            self.embedding = None
            self.embed_dim = 0
        self.fc = nn.Linear(c + self.embed_dim, self.num_outputs)

    @property
    def conditioned(self) -> bool:
        """True for STL w/ HLS (the model takes the shared label)."""
        return self.embedding is not None

    def pool(self, images: torch.Tensor) -> torch.Tensor:
        """The globally average-pooled backbone features ``(B, C)``."""
        return F.adaptive_avg_pool2d(self.backbone(images), 1).flatten(1)

    def forward(self, images: torch.Tensor, condition=None) -> torch.Tensor:
        z = self.dropout(self.pool(images))
        if self.embedding is None:
            if condition is not None:
                raise ValueError("this STLClassifier is the Baseline STL (condition_classes=None): it takes no "
                                 "condition; build it with condition_classes= for STL w/ HLS")
            return self.fc(z)
        if condition is None:
            raise ValueError("this STLClassifier is STL w/ HLS: forward(images, condition) needs the shared label "
                             "(object type for categories, category for attributes)")
        cond = _labels(condition, z.shape[0], self.condition_classes, "condition", z.device)
        return self.fc(torch.cat([z, self.embedding(cond).to(z.dtype)], dim=1))

    def extra_repr(self) -> str:
        kind = "STL w/ HLS" if self.conditioned else "Baseline STL"
        return f"{kind}, in_channels={self.in_channels}, num_outputs={self.num_outputs}"


# ----------------------------------------------------------------------------------------------------------
# MTL w/ RNN+VA
# ----------------------------------------------------------------------------------------------------------
class AdditiveAttention(nn.Module):
    """The additive (Bahdanau) attention of paper 06 Eq. 1-3.

    ``e_ti = V · tanh((W_1 f_i + b_1) + (W_2 h_{t-1} + b_2))`` (Eq. 1), ``a_ti = softmax_i(e_ti)`` over the ``n``
    positions (Eq. 2), ``c_t = Σ_j a_tj f_j`` (Eq. 3), with ``V ∈ R^u`` (no bias: a bias would cancel in the
    softmax), ``W_1 ∈ R^{u×d}``, ``W_2 ∈ R^{u×s}``, ``b_1, b_2 ∈ R^u``. Attributes ``W1``, ``W2`` (``nn.Linear``
    with bias) and ``V`` (``nn.Linear(u, 1, bias=False)``).

    ``forward(features (B, n, d), hidden (B, s)) -> (context (B, d), weights (B, n))``. The softmax is taken in
    at least float32 (half-precision energies are upcast under autocast).
    """

    def __init__(self, feature_dim: int, hidden_dim: int, units: int):
        super().__init__()
        self.feature_dim, self.hidden_dim, self.units = int(feature_dim), int(hidden_dim), int(units)
        self.W1 = nn.Linear(self.feature_dim, self.units)
        self.W2 = nn.Linear(self.hidden_dim, self.units)
        self.V = nn.Linear(self.units, 1, bias=False)

    def scores(self, features: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The energies ``e_t`` of Eq. 1, ``(B, n)``."""
        if features.dim() != 3 or hidden.dim() != 2 or features.shape[0] != hidden.shape[0]:
            raise ValueError(f"expected features (B, n, d) and hidden (B, s), got {tuple(features.shape)} and "
                             f"{tuple(hidden.shape)}")
        return self.V(torch.tanh(self.W1(features) + self.W2(hidden)[:, None, :])).squeeze(-1)

    def forward(self, features: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.scores(features, hidden)
        weights = torch.softmax(e.float() if e.dtype in (torch.float16, torch.bfloat16) else e, dim=1)
        context = torch.bmm(weights.to(features.dtype)[:, None, :], features).squeeze(1)
        return context, weights

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, hidden_dim={self.hidden_dim}, units={self.units}"


class MTLOutput(NamedTuple):
    """Outputs of :class:`MTLRNNVA`: ``category`` logits ``(B, num_categories)`` (Eq. 5), ``attributes`` logits
    ``(B, num_attributes)`` (Eq. 7) and ``attention`` ``(B, 2, h, w)``, the weights ``a_1``, ``a_2`` of the two
    decoder steps on the backbone's grid (Eq. 2; each map sums to 1; for the Fig. 3 plots)."""

    category: torch.Tensor
    attributes: torch.Tensor
    attention: torch.Tensor


class MTLRNNVA(nn.Module):
    """MTL w/ RNN+VA of paper 06 §3.2 (Fig. 1b, Eq. 1-7): a CNN encoder, visual attention and a two-step GRU
    decoder that shares the object type with the category step and the category with the attribute step.

    * ``F = [f_1 .. f_n]``: the backbone's ``(B, d, h, w)`` map flattened to ``n = h·w`` positions (``d`` =
      ``backbone.out_channels``), used as is (no extra encoder layer);
    * ``h_0 = 0``; ``c_1, a_1 = attention(F, h_0)`` (Eq. 1-3); ``h_1 = GRU(h_0, [c_1; E_o(object_type)])``
      (Eq. 4); category logits ``U_2^c(ReLU(U_1^c(h_1)))`` (Eq. 5);
    * ``c_2, a_2 = attention(F, h_1)``; ``h_2 = GRU(h_1, [c_2; E_c(category)])`` (Eq. 6); attribute logits
      ``U_2^a(ReLU(U_1^a(h_2)))`` (Eq. 7).

    One :class:`AdditiveAttention` and one ``nn.GRUCell`` serve both steps: the paper describes a single
    attention mechanism and a single decoder that is run again ("the category and the decoder's previous state
    h_1 are given again to the decoder"), as in the show-attend-tell decoder it follows [15]; only the label
    embeddings (``E_o``, ``E_c``) and the heads (``U^c``, ``U^a``) are step-specific. The paper does not name
    the activation between ``U_1`` and ``U_2``; ReLU here, with ``dropout`` after it (our choice).

    ``forward(images, object_type, category=None)``: with ``category`` (``(B,)`` true labels) the second step is
    teacher-forced (training); with ``None`` it uses the model's own arg-max category, the HLS of predicted
    labels at inference. Returns :class:`MTLOutput`.
    """

    def __init__(self, backbone: Backbone | nn.Module, num_types: int, num_categories: int, num_attributes: int,
                 hidden_dim: int = 128, attention_units: int = 64, embed_dim: int = 16, fc_dim: int = 128,
                 dropout: float = 0.2, in_channels: int | None = None):
        super().__init__()
        d = _channels(backbone, in_channels)
        self.backbone = backbone
        self.in_channels = d
        self.num_types, self.num_categories, self.num_attributes = int(num_types), int(num_categories), \
            int(num_attributes)
        self.hidden_dim = int(hidden_dim)
        self.attention = AdditiveAttention(d, self.hidden_dim, int(attention_units))
        self.type_embedding = nn.Embedding(self.num_types, int(embed_dim))          # E_o
        self.category_embedding = nn.Embedding(self.num_categories, int(embed_dim))  # E_c
        self.gru = nn.GRUCell(d + int(embed_dim), self.hidden_dim)

        def head(n_out: int) -> nn.Sequential:
            return nn.Sequential(OrderedDict(U1=nn.Linear(self.hidden_dim, int(fc_dim)), relu=nn.ReLU(inplace=True),
                                             dropout=nn.Dropout(float(dropout)), U2=nn.Linear(int(fc_dim), n_out)))

        self.category_head = head(self.num_categories)    # U^c, Eq. 5
        self.attribute_head = head(self.num_attributes)   # U^a, Eq. 7

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's ``(B, d, h, w)`` map."""
        return self.backbone(images)

    def _step(self, feats: torch.Tensor, hidden: torch.Tensor, label_embedding: torch.Tensor):
        context, weights = self.attention(feats, hidden)
        x = torch.cat([context, label_embedding.to(context.dtype)], dim=1)
        return self.gru(x, hidden.to(x.dtype)), weights

    def forward(self, images: torch.Tensor, object_type, category=None) -> MTLOutput:
        fmap = self.features(images)
        b, d, h, w = fmap.shape
        feats = fmap.flatten(2).transpose(1, 2)  # F: (B, n, d)
        otype = _labels(object_type, b, self.num_types, "object_type", fmap.device)
        h0 = feats.new_zeros(b, self.hidden_dim)
        h1, a1 = self._step(feats, h0, self.type_embedding(otype))          # Eq. 1-4
        cat_logits = self.category_head(h1)                                 # Eq. 5
        if category is None:
            cat = cat_logits.detach().argmax(dim=1)                         # HLS of the predicted category
        else:
            cat = _labels(category, b, self.num_categories, "category", fmap.device)  # teacher forcing
        h2, a2 = self._step(feats, h1, self.category_embedding(cat))        # Eq. 1-3, 6
        attr_logits = self.attribute_head(h2)                               # Eq. 7
        return MTLOutput(cat_logits, attr_logits, torch.stack([a1, a2], dim=1).reshape(b, 2, h, w))

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, num_types={self.num_types}, num_categories={self.num_categories}"
                f", num_attributes={self.num_attributes}, hidden_dim={self.hidden_dim}")


def decoder_step(features: torch.Tensor, hidden: torch.Tensor, label_embedding: torch.Tensor, W1: torch.Tensor,
                 b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor, V: torch.Tensor, gru: nn.Module):
    """One step of the MTL w/ RNN+VA decoder of paper 06 (§3.2, Fig. 1b) with its weights given explicitly:
    Eq. 1-3 (additive attention) and Eq. 4 (step 1, ``label_embedding = E_o``) or Eq. 6 (step 2, ``E_c``).

    ``e_i = V · tanh((W1 f_i + b1) + (W2 h + b2))`` (Eq. 1), ``a = softmax(e)`` over the ``n`` positions (Eq. 2),
    ``c = Σ_j a_j f_j`` (Eq. 3), ``h' = GRU(h, [c; label_embedding])`` (Eq. 4 / 6).

    ``features`` ``(B, n, d)``, ``hidden`` ``(B, s)``, ``label_embedding`` ``(B, m)``; ``W1`` ``(u, d)``, ``b1``
    ``(u,)``, ``W2`` ``(u, s)``, ``b2`` ``(u,)``, ``V`` ``(u,)``; ``gru`` an ``nn.GRUCell(d + m, s)``. Returns
    ``(next hidden (B, s), context (B, d), weights (B, n))``: what :class:`MTLRNNVA` computes with its
    :class:`AdditiveAttention` (``W1.weight``, ``W1.bias``, ...) and ``gru`` (notebook 06, Exercise 4).
    """
    e = torch.tanh(features @ W1.T + b1 + (hidden @ W2.T + b2)[:, None, :]) @ V.reshape(-1)  # Eq. 1: (B, n)
    weights = torch.softmax(e, dim=1)                                                          # Eq. 2
    context = torch.bmm(weights[:, None, :], features).squeeze(1)                              # Eq. 3
    return gru(torch.cat([context, label_embedding.to(context.dtype)], dim=1), hidden), context, weights


class HLSLoss(NamedTuple):
    """:func:`hls_loss`'s terms (``return_parts=True``): ``total`` (the sum of the terms given), ``category``
    (categorical CE) and ``attributes`` (BCE); a term whose logits were ``None`` is ``None``."""

    total: torch.Tensor
    category: torch.Tensor | None
    attributes: torch.Tensor | None


def hls_loss(category_logits: torch.Tensor | None, attribute_logits: torch.Tensor | None, category=None,
             attributes=None, return_parts: bool = False):
    """The losses of paper 06 §3.2: categorical cross-entropy for the categories (softmax layer) and binary
    cross-entropy for the attributes (sigmoid layer), both from logits and averaged like Keras' (CE over the
    batch; BCE over the attributes and the batch), computed in float32.

    MTL w/ RNN+VA minimises "the sum of the two losses": ``hls_loss(out.category, out.attributes, category,
    attributes)`` returns that scalar tensor. The STL models train one task each: pass ``None`` for the other
    side's logits (its labels are then ignored) and the result is that task's loss alone. ``category``:
    ``(B,)`` class indices; ``attributes``: ``(B, A)`` 0/1 targets. ``return_parts=True`` returns
    :class:`HLSLoss` ``(total, category, attributes)`` instead, e.g. to log the two terms.
    """
    if category_logits is None and attribute_logits is None:
        raise ValueError("hls_loss: give category logits, attribute logits or both")
    lc = la = None
    if category_logits is not None:
        if category is None:
            raise ValueError("hls_loss: category logits given without category labels")
        target = torch.as_tensor(category, device=category_logits.device).long().reshape(-1)
        lc = F.cross_entropy(category_logits.float(), target)
    if attribute_logits is not None:
        if attributes is None:
            raise ValueError("hls_loss: attribute logits given without attribute targets")
        target = torch.as_tensor(attributes, device=attribute_logits.device).float()
        la = F.binary_cross_entropy_with_logits(attribute_logits.float(), target.reshape(attribute_logits.shape))
    total = lc if la is None else (la if lc is None else lc + la)
    return HLSLoss(total, lc, la) if return_parts else total


# ----------------------------------------------------------------------------------------------------------
# augmentation of Baseline STL
# ----------------------------------------------------------------------------------------------------------
def augment(images: torch.Tensor, generator: torch.Generator | None = None, rotation: float = 0.1,
            zoom: float = 0.1, flip: float = 0.5, padding_mode: str = "reflection") -> torch.Tensor:
    """The Baseline STL augmentation of paper 06 §3.2: "horizontally flipped at random and ... randomly rotated
    and zoomed by ±10 %", as one batched ``affine_grid`` / ``grid_sample`` on a ``(B, C, H, W)`` float tensor,
    on the tensor's device. Each image gets its own flip / angle / zoom.

    * ``flip``: probability of a horizontal flip (Keras ``RandomFlip("horizontal")``: 0.5);
    * ``rotation``: the angle is uniform in ``±rotation · 2π``, i.e. a fraction of a *full turn*, because the
      paper's "±10 %" is almost certainly Keras ``RandomRotation(0.1)``, whose factor is a fraction of 2π:
      ±36°. Pass a smaller value (e.g. ``0.03`` ≈ ±11°) for gentler rotations;
    * ``zoom``: Keras ``RandomZoom(0.1)``: the sampled area is scaled by a factor uniform in ``1 ± zoom``
      (above 1 zooms out, below 1 zooms in), the same in both directions (aspect ratio kept);
    * ``padding_mode``: how pixels from outside the image are filled; ``"reflection"`` as Keras' default
      ``fill_mode="reflect"`` (``"zeros"`` / ``"border"`` also work).

    Rotation is done in pixel units (correct for non-square images). ``generator``: a ``torch.Generator`` for
    reproducible draws (the random numbers are drawn on the generator's device, then moved). Bilinear
    sampling, ``align_corners=False``; with ``flip=1, rotation=0, zoom=0`` the result equals ``torch.flip`` along
    the width up to float rounding, and with ``flip=0, rotation=0, zoom=0`` it is the identity.
    """
    if images.dim() != 4:
        raise ValueError(f"augment expects (B, C, H, W) images, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError("augment expects floating-point images")
    b, _, h, w = images.shape
    gdev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(3, b, generator=generator, device=gdev, dtype=torch.float64).to(images.device)
    sign = torch.where(u[0] < float(flip), -1.0, 1.0).to(torch.float64)
    angle = (2.0 * u[1] - 1.0) * float(rotation) * 2.0 * math.pi
    scale = 1.0 + (2.0 * u[2] - 1.0) * float(zoom)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output (x, y) in normalised coordinates -> input coordinates: scale * R * Flip, with R a rotation in pixel
    # units: x_n = x_p / (W/2), y_n = y_p / (H/2)
    theta = torch.zeros(b, 2, 3, dtype=torch.float64, device=images.device)
    theta[:, 0, 0] = scale * cos * sign
    theta[:, 0, 1] = -scale * sin * (h / w)
    theta[:, 1, 0] = scale * sin * (w / h) * sign
    theta[:, 1, 1] = scale * cos
    work = images if images.dtype in (torch.float32, torch.float64) else images.float()
    grid = F.affine_grid(theta.to(work.dtype), list(work.shape), align_corners=False)
    out = F.grid_sample(work, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.to(images.dtype)


# ----------------------------------------------------------------------------------------------------------
# stage 1: the object-type detector
# ----------------------------------------------------------------------------------------------------------
#: Default anchors: one feature map (stride 8), square sides 12-96 px for objects of about 10-100 px in a
#: 128 px scene; aspect ratios h/w 0.5 (wide: shoes, trousers seen flat), 1 and 2 (tall: dresses, people).
DEFAULT_ANCHOR_SIZES = (12, 24, 48, 96)
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)


def detector_backbone(width: int = 32) -> Backbone:
    """The detector's feature extractor: the first four blocks of :class:`~fashionlab.models.SmallCNN`
    (conv-BN-ReLU, widths ``w, 2w, 2w, 4w``, strides ``2, 2, 1, 2``): one ``4w``-channel map at stride 8
    (16 x 16 for a 128 px scene), with ``out_channels`` as torchvision's detectors expect."""
    small = SmallCNN(width=width)
    layers = OrderedDict((name, m) for name, m in list(small.named_children())[:4])
    return Backbone(layers, out_channels=4 * int(width), name="smallcnn", stage="block4")


def build_detector(num_classes: int = 4, image_size: int = 128, width: int = 32, representation_dim: int = 128,
                   anchor_sizes: Sequence[int] = DEFAULT_ANCHOR_SIZES,
                   aspect_ratios: Sequence[float] = DEFAULT_ASPECT_RATIOS, min_score: float = 0.05,
                   detections_per_image: int = 20, image_mean: Sequence[float] = (0.485, 0.456, 0.406),
                   image_std: Sequence[float] = (0.229, 0.224, 0.225), backbone: nn.Module | None = None, **kwargs):
    """The stage-1 object-type detector of paper 06 (§3.2.1, §5.1, Table 4): a torchvision ``FasterRCNN``.

    The paper fine-tuned the TensorFlow Object Detection API's Faster R-CNN with an ImageNet-pretrained
    InceptionV2 backbone (default API settings, batch size 2). Here it is small and trained from scratch
    (``weights=None`` everywhere; nothing is downloaded) so that it trains on a laptop CPU:

    * backbone: :func:`detector_backbone` (``width``; one map at stride 8, ``4·width`` channels), or ``backbone``
      (any module with ``out_channels`` giving one map, e.g. ``fashionlab.models.backbone("resnet50", "layer3")``:
      a stride-16 map as the TF API's single-map Faster R-CNNs use; ``width`` then does not apply);
    * RPN: an ``AnchorGenerator`` with ``anchor_sizes`` x ``aspect_ratios`` (h/w) on that map
      (:data:`DEFAULT_ANCHOR_SIZES`: 12-96 px for objects of ~10-100 px in a 128 px scene); fewer proposals
      than torchvision's defaults (600/300 before/after NMS in training, 300/100 at test);
    * box head: ``MultiScaleRoIAlign(["0"], 7, 2)``, a ``TwoMLPHead`` of ``representation_dim`` units, and a
      ``FastRCNNPredictor`` with ``num_classes + 1`` outputs (class 0 is the background, so object type ``k``
      (0-based) is label ``k + 1``); 64 sampled RoIs per image (torchvision: 512; on a CPU the
      RoIAlign backward dominates a training step and scales with that number);
    * ``min_size = max_size = image_size``: the internal transform resizes a scene's shorter side to
      ``image_size`` (a no-op for ``image_size`` px squares) instead of torchvision's 800 px;
    * ``image_mean`` / ``image_std``: the normalisation applied inside, for images given as floats in [0, 1]
      (ImageNet statistics, torchvision's convention);
    * ``box_score_thresh = min_score``, ``box_detections_per_img = detections_per_image``.

    Extra ``kwargs`` go to ``FasterRCNN`` (e.g. ``rpn_post_nms_top_n_test``). Use as any torchvision detector:
    ``model(images, targets)`` in train mode returns the loss dict (targets: ``boxes`` x1y1x2y2 float,
    ``labels`` int64 in 1..num_classes); in eval mode ``model(images)`` returns per image ``boxes``, ``labels``,
    ``scores``.
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    body = detector_backbone(width) if backbone is None else backbone
    anchors = AnchorGenerator(sizes=(tuple(int(s) for s in anchor_sizes),),
                              aspect_ratios=(tuple(float(a) for a in aspect_ratios),))
    roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    box_head = TwoMLPHead(body.out_channels * 7 * 7, int(representation_dim))
    box_predictor = FastRCNNPredictor(int(representation_dim), int(num_classes) + 1)
    options = dict(rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
                   rpn_post_nms_top_n_test=100, box_batch_size_per_image=64)
    options.update(kwargs)
    return FasterRCNN(body, num_classes=None, min_size=int(image_size), max_size=int(image_size),
                      image_mean=list(image_mean), image_std=list(image_std), rpn_anchor_generator=anchors,
                      box_roi_pool=roi_pool, box_head=box_head, box_predictor=box_predictor,
                      box_score_thresh=float(min_score), box_detections_per_img=int(detections_per_image),
                      **options)
