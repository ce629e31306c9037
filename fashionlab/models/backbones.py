"""Feature-map backbones, truncated where the papers truncate them, and the simplest embedding network.

The papers put their heads on a convolutional feature map, not on an ImageNet classifier
(docs/implementations.md §2, §3, §6; the paper texts for VGG16 and AlexNet):

===================  ============================  ==========================================  ===========================
name                 default stage                 used by                                     map at 224 px
===================  ============================  ==========================================  ===========================
``resnet50``         ``layer3``                    ASEN, ASEN++ global branch (§2, §3)         1024 x 14 x 14
``resnet34``         ``layer3``                    ASEN++ local branch, on 112 px crops (§3)   256 x 14 x 14 (7x7 @112)
``resnet18``         ``layer3``                    CSN, on 112 px images (§6)                  256 x 14 x 14 (7x7 @112)
``vgg16``            ``conv5`` (before pool5)      multi-column recognition (paper 01)         512 x 14 x 14
``alexnet``          ``features`` (after pool5)    part-guided search (paper 04: ``conv5``)    256 x 6 x 6 (13x13 @conv5)
``efficientnet_b4``  ``features`` (1x1 head conv)  HLS stage-2 classifiers (paper 06)          1792 x 7 x 7
``smallcnn``         (whole net)                   quick/default modes on a laptop CPU         128 x 14 x 14 (4x4 @64)
===================  ============================  ==========================================  ===========================

``efficientnet_b0`` .. ``efficientnet_b4`` (stages ``stem``, ``stage1`` .. ``stage7``, ``features``; total stride 32)
are torchvision's; paper 06 compares B1-B4 and keeps B4. ``vgg16_bn`` is offered beside ``vgg16`` because plain VGG trains poorly from scratch, which is what every
mode without downloaded weights does. Which backbone a mode uses is the experiment's choice (docs/architecture.md
principle 4: the mode changes sizes, never the logic); ``full`` mode on a GPU uses the papers' ones.

Weights: ``pretrained=False`` (the default) builds torchvision's architecture with ``weights=None``.
``pretrained=True`` loads torchvision's ImageNet file from ``weights_path`` or from the torch hub cache,
``torch.hub.get_dir()/checkpoints/<file>`` (``TORCH_HOME`` moves it). Offline by default: without the file it
raises ``FileNotFoundError`` that names the file, the folder to put it in (:func:`pretrained_weights_file`) and
the switch below. A loaded backbone is an :class:`ImageNetBackbone` and says so in its ``repr`` (``weights='resnet50-0676ba61.pth'``), so a trained
model started from ImageNet never shares a trained-model cache entry with one started from scratch; a backbone
without weights has the same ``repr`` as before that field existed. The user's choice to download: ``download=True``, ``FASHIONLAB_DOWNLOAD_WEIGHTS=1`` or
``fashionlab reproduce --download-weights`` let torch.hub (torchvision's own mechanism) fetch the file from
torchvision's URL into that cache, checking the hash prefix in its name (:func:`download_pretrained_weights`);
a failed download raises :class:`WeightsDownloadError` naming the URL and the cache file, and leaves no file.

The start of an experiment (``scratch`` or ``imagenet``) is the recipes' ``pretrained`` config field; the user's
switch is ``fashionlab reproduce --pretrained imagenet``, ``experiments.run(..., pretrained="imagenet")`` or
``FASHIONLAB_PRETRAINED=imagenet`` (:func:`requested_start`, :func:`pretrained_start`; applied to a config by
:func:`fashionlab.experiments.registry.with_start`). Default: ``scratch``.
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "backbone",
    "build_backbone",
    "Backbone",
    "ImageNetBackbone",
    "PretrainedBackbone",
    "SmallCNN",
    "GlobalPoolEmbedding",
    "BACKBONES",
    "output_size",
    "pretrained_weights_file",
    "pretrained_weights_candidates",
    "download_pretrained_weights",
    "download_enabled",
    "WeightsDownloadError",
    "DOWNLOAD_ENV",
    "PRETRAINED_ENV",
    "STARTS",
    "requested_start",
    "pretrained_start",
    "check_start",
]

#: The environment variable that, set to 1/true/yes/on, lets ``pretrained=True`` download a missing ImageNet file.
DOWNLOAD_ENV = "FASHIONLAB_DOWNLOAD_WEIGHTS"
#: The environment variable that picks the start of every recipe's torchvision backbones: scratch or imagenet.
PRETRAINED_ENV = "FASHIONLAB_PRETRAINED"
#: The starts a recipe's ``pretrained`` field takes: random initialisation, torchvision's ImageNet weights, or
#: fashionlab's own pretraining on a FashionSynth corpus no experiment evaluates on (:mod:`fashionlab.pretrain`).
STARTS = ("scratch", "imagenet", "fashionsynth")

_EFFICIENTNET_STAGES = ("stem",) + tuple(f"stage{i}" for i in range(1, 8)) + ("features",)

#: name -> (stages offered, default stage). Stages are listed in order of depth.
BACKBONES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "resnet18": (("layer1", "layer2", "layer3", "layer4"), "layer3"),
    "resnet34": (("layer1", "layer2", "layer3", "layer4"), "layer3"),
    "resnet50": (("layer1", "layer2", "layer3", "layer4"), "layer3"),
    "vgg16": (("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "conv5", "pool5"), "conv5"),
    "vgg16_bn": (("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "conv5", "pool5"), "conv5"),
    "alexnet": (("conv1", "conv2", "conv3", "conv4", "conv5", "features"), "features"),
    **{f"efficientnet_b{i}": (_EFFICIENTNET_STAGES, "features") for i in range(5)},
    "smallcnn": (("features",), "features"),
}

# torchvision Weights enum members for each architecture, preferred first. For ResNet-50 the papers'
# (ASEN, ASEN++) original ImageNet weights are IMAGENET1K_V1; torchvision's newer V2 recipe is accepted too.
_WEIGHTS = {
    "resnet18": ("ResNet18_Weights", ("IMAGENET1K_V1",)),
    "resnet34": ("ResNet34_Weights", ("IMAGENET1K_V1",)),
    "resnet50": ("ResNet50_Weights", ("IMAGENET1K_V1", "IMAGENET1K_V2")),
    "vgg16": ("VGG16_Weights", ("IMAGENET1K_V1",)),
    "vgg16_bn": ("VGG16_BN_Weights", ("IMAGENET1K_V1",)),
    "alexnet": ("AlexNet_Weights", ("IMAGENET1K_V1",)),
    # EfficientNet: the original (rwightman-ported) V1 files first; B1 also has torchvision's V2 recipe
    **{f"efficientnet_b{i}": (f"EfficientNet_B{i}_Weights", ("IMAGENET1K_V1",) + (("IMAGENET1K_V2",) if i == 1 else ()))
       for i in range(5)},
}

_ALIASES = {"resnet-18": "resnet18", "resnet-34": "resnet34", "resnet-50": "resnet50", "vgg": "vgg16",
            "vgg-16": "vgg16", "vgg16-bn": "vgg16_bn",
            **{f"efficientnet-b{i}": f"efficientnet_b{i}" for i in range(5)}, "small": "smallcnn", "small_cnn": "smallcnn"}


# ----------------------------------------------------------------------------------------------------------
# output size arithmetic
# ----------------------------------------------------------------------------------------------------------
def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _window(size: tuple[int, int], k, s, p, d=1, ceil=False) -> tuple[int, int]:
    k, s, p, d = _pair(k), _pair(s), _pair(p), _pair(d)
    out = []
    for i in range(2):
        num = size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1
        o = (-(-num // s[i]) if ceil else num // s[i]) + 1
        if ceil and (o - 1) * s[i] >= size[i] + p[i]:  # PyTorch: the last window must start inside the input
            o -= 1
        out.append(o)
    return out[0], out[1]


_SIZE_KEEPING = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Dropout, nn.Dropout2d, nn.Identity,
                 nn.GroupNorm, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)


def _is_mbconv(module: nn.Module) -> bool:
    from torchvision.models.efficientnet import MBConv

    return isinstance(module, MBConv)


def _is_squeeze_excitation(module: nn.Module) -> bool:
    from torchvision.ops.misc import SqueezeExcitation

    return isinstance(module, SqueezeExcitation)


def _analytic_size(module: nn.Module, size: tuple[int, int]) -> tuple[int, int] | None:
    """Spatial output size by arithmetic, or ``None`` when a layer type is not known here."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            return None
        return _window(size, module.kernel_size, module.stride, module.padding, module.dilation)
    if isinstance(module, nn.MaxPool2d):
        return _window(size, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode)
    if isinstance(module, nn.AvgPool2d):
        return _window(size, module.kernel_size, module.stride, module.padding, 1, module.ceil_mode)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = _pair(module.output_size) if module.output_size is not None else size
        return (out[0] or size[0], out[1] or size[1])
    if isinstance(module, _SIZE_KEEPING):
        return size
    if isinstance(module, BasicBlock):
        return _analytic_size(module.conv2, _analytic_size(module.conv1, size))
    if _is_mbconv(module):  # torchvision EfficientNet's block: the residual keeps the size of its main path
        return _analytic_size(module.block, size)
    if _is_squeeze_excitation(module):
        return size
    if isinstance(module, Bottleneck):
        return _analytic_size(module.conv3, _analytic_size(module.conv2, _analytic_size(module.conv1, size)))
    if isinstance(module, nn.Sequential):
        for child in module:
            size = _analytic_size(child, size)
            if size is None:
                return None
        return size
    return None


def output_size(model: nn.Module, input_size: int | tuple[int, int]) -> tuple[int, int]:
    """Height and width of the feature map that ``model`` gives for an ``input_size`` image (int or (H, W)).

    Computed by arithmetic over the layers (no forward pass) for the backbones of this module; for other
    layer types a forward pass of one blank image in ``eval`` mode (``model`` is left as it was) gives
    the answer. E.g. ``output_size(backbone("resnet50"), 224) == (14, 14)``. Heads size themselves with it,
    so one model definition serves every mode's image size (docs/architecture.md principle 4).
    """
    size = _pair(input_size)
    got = _analytic_size(model, size)
    if got is not None:
        return got
    p = next(model.parameters(), None)
    x = torch.zeros(1, getattr(model, "in_channels", 3), *size,
                    device=p.device if p is not None else "cpu", dtype=p.dtype if p is not None else None)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        model.train(was)
    return int(y.shape[-2]), int(y.shape[-1])


# ----------------------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------------------
class Backbone(nn.Sequential):
    """A truncated CNN: a ``Sequential`` of named layers mapping ``(B, 3, H, W)`` to ``(B, C, h, w)``.

    Attributes: ``out_channels`` (C), ``name`` and ``stage`` (where it was cut), ``stride`` (the total
    downsampling, so ``h ≈ H / stride``). ``output_size(input_size)`` gives ``(h, w)`` exactly and
    ``output_shape(input_size)`` gives ``(C, h, w)``. Layer names follow torchvision's (``conv1``,
    ``layer3``, ...; ``features.0`` ... for VGG/AlexNet), so ImageNet state dicts load into the prefix.
    Plain PyTorch layers: it runs on whatever device it is moved to (docs/architecture.md principle 5).
    """

    def __init__(self, layers: "OrderedDict[str, nn.Module]", out_channels: int, name: str, stage: str | None,
                 in_channels: int = 3):
        super().__init__(layers)
        self.out_channels = int(out_channels)
        self.in_channels = int(in_channels)
        self.name = name
        self.stage = stage
        self.stride = self._stride()

    def _stride(self) -> int:
        probe = 4096  # large and a multiple of every stride used here: the ratio is the total stride
        h, _ = output_size(self, probe) if _analytic_size(self, (probe, probe)) is not None else (None, None)
        return round(probe / h) if h else 0

    def output_size(self, input_size: int | tuple[int, int]) -> tuple[int, int]:
        """``(h, w)`` of the feature map for an input of ``input_size`` pixels (int or ``(H, W)``)."""
        return output_size(self, input_size)

    def output_shape(self, input_size: int | tuple[int, int]) -> tuple[int, int, int]:
        """``(out_channels, h, w)`` for an input of ``input_size`` pixels."""
        return (self.out_channels, *self.output_size(input_size))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, stage={self.stage!r}, out_channels={self.out_channels}, stride={self.stride}"


class ImageNetBackbone(Backbone):
    """A :class:`Backbone` whose weights came from an ImageNet file: ``weights`` is the file's name, and the ``repr``
    says so (``ImageNetBackbone(name='resnet50', ..., weights='resnet50-0676ba61.pth')``), so a model started from
    ImageNet never shares a trained-model cache entry with one started from scratch. A subclass rather than a field
    of :class:`Backbone`, whose code (part of every cache key of the models built on it) stays as it was."""

    def __init__(self, layers: "OrderedDict[str, nn.Module]", out_channels: int, name: str, stage: str | None,
                 weights: str, in_channels: int = 3):
        super().__init__(layers, out_channels, name, stage, in_channels=in_channels)
        self.weights = str(weights)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", weights={self.weights!r}"


class PretrainedBackbone(Backbone):
    """A :class:`Backbone` whose weights came from fashionlab's own pretraining on FashionSynth
    (:mod:`fashionlab.pretrain`, the start ``fashionsynth``): ``weights`` is the pretrained weights' tag
    (:func:`fashionlab.pretrain.pretrain_tag`), shown in the ``repr`` so that a model started from them never
    shares a trained-model cache entry with one started from scratch or from other pretrained weights.
    ``width`` is the SmallCNN width it was built with (``None`` for a torchvision backbone)."""

    def __init__(self, layers: "OrderedDict[str, nn.Module]", out_channels: int, name: str, stage: str | None,
                 weights: str, in_channels: int = 3, width: int | None = None):
        super().__init__(layers, out_channels, name, stage, in_channels=in_channels)
        self.weights = str(weights)
        self.width = width

    def extra_repr(self) -> str:
        return super().extra_repr() + f", weights={self.weights!r}"


def fashionsynth_start(net: Backbone, name: str, stage: str | None = None) -> PretrainedBackbone:
    """``net`` (a freshly built backbone ``name``: a SmallCNN, possibly with its last stride or ReLU changed, or a
    torchvision backbone cut at ``stage``) with the FashionSynth-pretrained weights loaded
    (:func:`fashionlab.pretrain.load_pretrained`, which pretrains them once when they are not cached), as a
    :class:`PretrainedBackbone` holding the same layers."""
    from ..pretrain import load_pretrained

    width = getattr(net, "width", None)
    tag = load_pretrained(net, name, width=width, stage=stage)
    out = PretrainedBackbone(OrderedDict(net.named_children()), net.out_channels, net.name, net.stage, weights=tag,
                             in_channels=net.in_channels, width=width)
    out.train(net.training)
    return out


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        bn=nn.BatchNorm2d(cout),
        relu=nn.ReLU(inplace=True),
    ))


class SmallCNN(Backbone):
    """A five-block conv-BN-ReLU network for ``quick`` and ``default`` modes (docs/architecture.md principle 4).

    Blocks have widths ``w, 2w, 2w, 4w, 4w`` and strides ``2, 2, 1, 2, 2``: total stride 16, so 64, 96 and
    128 px inputs give 4x4, 6x6 and 8x8 maps, the same role as ResNet-50's 14x14 map at 224 px. With the
    default ``width=32``: 128 output channels and about 278k parameters (``width=16``: 64 channels, 70k).
    Kaiming-initialised; trains from scratch in minutes on a laptop CPU.
    """

    def __init__(self, width: int = 32, in_channels: int = 3):
        w = int(width)
        plan = [(w, 2), (2 * w, 2), (2 * w, 1), (4 * w, 2), (4 * w, 2)]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        cin = in_channels
        for i, (cout, stride) in enumerate(plan, start=1):
            layers[f"block{i}"] = _conv_bn_relu(cin, cout, stride)
            cin = cout
        super().__init__(layers, out_channels=cin, name="smallcnn", stage="features", in_channels=in_channels)
        self.width = w
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def build_backbone(name: str = "smallcnn", width: int = 32, output_stride: int = 16, final_relu: bool = True,
                   stage: str | None = None, pretrained: bool | str = False) -> Backbone:
    """The feature-map backbone of the ASEN-style models of papers 03, 05 and 06 (ASEN slides "Overview": a CNN
    feature map for the attention modules).

    ``name="smallcnn"``: :class:`SmallCNN` of ``width``; ``output_stride=8`` drops the stride of its last block,
    so a 48 px input gives a 6 x 6 map (the role of ResNet-50's 14 x 14 after layer3 at 224 px,
    docs/implementations.md §2 "Backbone"), 16 keeps it as built; ``final_relu=False`` ends the network at
    its last BatchNorm (centred features: a from-scratch network's post-ReLU features start all alike).
    Any other ``name`` goes to :func:`backbone`, cut at ``stage`` (the other arguments then do not apply).
    ``pretrained``: a recipe's start, ``"scratch"``, ``"imagenet"`` (or a bool) or ``"fashionsynth"``; ImageNet
    weights load into a torchvision backbone only (:func:`backbone`); a SmallCNN asked for them raises
    ``ValueError``. ``"fashionsynth"`` loads :mod:`fashionlab.pretrain`'s weights into any of them
    (:func:`fashionsynth_start`; the stride and ReLU changes below change no weight)."""
    start = _check_start_name(pretrained, "pretrained") if isinstance(pretrained, str) else None
    if start == "fashionsynth":
        net = build_backbone(name, width=width, output_stride=output_stride, final_relu=final_relu, stage=stage)
        return fashionsynth_start(net, "smallcnn" if name == "smallcnn" else _canonical(name), net.stage)
    load = pretrained is True or start == "imagenet"
    if name != "smallcnn":
        return backbone(name, stage=stage, pretrained=load)
    if load:
        raise ValueError("smallcnn has no ImageNet weights (it is trained from scratch); pretrained='imagenet' needs "
                         "a torchvision backbone")
    net = SmallCNN(width=width)
    if output_stride == 8:
        net.block5.conv.stride = (1, 1)
        net.stride = net._stride()
    elif output_stride != 16:
        raise ValueError(f"output_stride must be 8 or 16 for SmallCNN, got {output_stride}")
    if not final_relu:
        net.block5.relu = nn.Identity()
    return net


class GlobalPoolEmbedding(nn.Module):
    """backbone -> global average pool -> linear -> (optional) L2 normalisation: the simplest embedding net.

    The triplet baseline of the retrieval tables (TriNet in notebook 02; the ``w/o attention`` rows of
    notebook 03) and the embedding of CSN before its masks (§6: AvgPool -> FC 256 -> 64). ``forward(x)``
    returns ``(B, dim)``; ``features(x)`` the backbone's map; ``pool(x)`` the pooled ``(B, C)`` vector.
    """

    def __init__(self, backbone: nn.Module, dim: int, normalize: bool = True, in_features: int | None = None):
        super().__init__()
        in_features = in_features if in_features is not None else getattr(backbone, "out_channels", None)
        if in_features is None:
            raise ValueError("GlobalPoolEmbedding: the backbone has no out_channels attribute; pass in_features=")
        self.backbone = backbone
        self.fc = nn.Linear(int(in_features), int(dim))
        self.dim = int(dim)
        self.normalize = bool(normalize)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.backbone(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(self.pool(x))
        return F.normalize(z, dim=1) if self.normalize else z


def random_embeddings(n: int, dim: int = 64, seed: int = 0) -> torch.Tensor:
    """``(n, dim)`` random unit vectors (Gaussian, normalised, float64): the random baseline's "model", the floor
    of every retrieval table (ASEN slides, "Random baseline")."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


# ----------------------------------------------------------------------------------------------------------
# pretrained weight files
# ----------------------------------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return key


def pretrained_weights_candidates(name: str) -> list[tuple[str, str]]:
    """``[(weights enum name, file name), ...]`` of torchvision's ImageNet files for ``name``, preferred first.

    File names are taken from the URLs of torchvision's ``Weights`` enums, e.g. ``("IMAGENET1K_V1",
    "resnet50-0676ba61.pth")``, so they match what ``torch.hub`` would have cached. For ResNet-50 the
    papers' original weights (V1) come first (docs/implementations.md §2, §3).
    """
    key = _canonical(name)
    if key not in _WEIGHTS:
        raise ValueError(f"backbone {name!r} has no ImageNet weights (it is trained from scratch)")
    import torchvision.models as tvm

    enum_name, members = _WEIGHTS[key]
    enum = getattr(tvm, enum_name)
    return [(m, os.path.basename(urlparse(getattr(enum, m).url).path)) for m in members]


def pretrained_weights_file(name: str, which: str | None = None) -> Path:
    """Where ``pretrained=True`` expects the ImageNet file: ``torch.hub.get_dir()/checkpoints/<file>``.

    ``which`` picks a torchvision weights version (e.g. ``"IMAGENET1K_V2"``); default: the preferred one.
    Set ``TORCH_HOME`` (or call ``torch.hub.set_dir``) to move the folder. Nothing is downloaded unless the
    user asks (``download=True``, ``$FASHIONLAB_DOWNLOAD_WEIGHTS``, ``--download-weights``: module docstring);
    otherwise the error tells the user where to put the file.
    """
    cands = pretrained_weights_candidates(name)
    if which is not None:
        cands = [c for c in cands if c[0] == which.upper()]
        if not cands:
            raise ValueError(f"{name}: unknown weights {which!r}; known: {[c[0] for c in pretrained_weights_candidates(name)]}")
    return Path(torch.hub.get_dir()) / "checkpoints" / cands[0][1]


def _find_weights(name: str, pretrained: bool | str, weights_path: str | os.PathLike | None,
                  download: bool | None = None, progress: bool = True) -> Path:
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if path.is_dir():
            for _, fname in pretrained_weights_candidates(name):
                if (path / fname).is_file():
                    return path / fname
            want = pretrained_weights_candidates(name)[0][1]
            raise FileNotFoundError(f"{name}: no ImageNet weight file in {path}; expected {want!r} there")
        if not path.is_file():
            raise FileNotFoundError(f"{name}: weights_path {str(path)!r} does not exist")
        return path
    which = pretrained.upper() if isinstance(pretrained, str) else None
    cands = pretrained_weights_candidates(name)
    if which is not None:
        cands = [c for c in cands if c[0] == which]
        if not cands:
            raise ValueError(f"{name}: unknown weights {pretrained!r}; known: "
                             f"{[c[0] for c in pretrained_weights_candidates(name)]}")
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for _, fname in cands:
        if (folder / fname).is_file():
            return folder / fname
    if download_enabled(download):
        return download_pretrained_weights(name, cands[0][0], progress=progress)
    import torchvision.models as tvm

    enum = getattr(tvm, _WEIGHTS[_canonical(name)][0])
    first_member, first_file = cands[0]
    others = "".join(f" or {f!r} ({m})" for m, f in cands[1:])
    raise FileNotFoundError(
        f"ImageNet weights for {name} not found: put the file {first_file!r}{others} into the folder "
        f"{str(folder)!r} (torch.hub.get_dir()/checkpoints; set TORCH_HOME to move it), or pass "
        f"weights_path=. The file is torchvision's {enum.__name__}.{first_member}, "
        f"{getattr(enum, first_member).url}. fashionlab downloads nothing unless asked: {DOWNLOAD_ENV}=1, "
        f"`fashionlab reproduce --download-weights` or backbone(..., download=True) let torch.hub fetch it into "
        f"that folder. Without weights use pretrained=False."
    )


class WeightsDownloadError(OSError):
    """A download of an ImageNet weights file failed (no network, an HTTP error, a wrong hash); the message names
    the URL and the cache file, and no file (complete or partial) is left there."""


def download_enabled(download: bool | None = None) -> bool:
    """Whether a missing ImageNet file may be downloaded: ``download`` when given, else
    ``$FASHIONLAB_DOWNLOAD_WEIGHTS`` (``1``, ``true``, ``yes`` or ``on``). Off by default."""
    if download is not None:
        return bool(download)
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def download_pretrained_weights(name: str, which: str | None = None, progress: bool = True) -> Path:
    """Fetch torchvision's ImageNet file for backbone ``name`` (weights version ``which``, default the preferred
    one) into ``torch.hub.get_dir()/checkpoints`` and return its path; a file already there is returned as is.

    The download is torchvision's own mechanism, as ``Weights.get_state_dict`` / ``torch.hub.load_state_dict_from_url``
    do it: ``torch.hub.download_url_to_file`` from the enum's URL into a temporary file beside the target, the
    SHA-256 checked against the hash prefix in the file name (``resnet18-f37072fd.pth``), then moved into place.
    Any failure raises :class:`WeightsDownloadError` naming the URL and the cache file; nothing is left behind.
    """
    import re
    import sys
    import urllib.error

    import torchvision.models as tvm

    key = _canonical(name)
    cands = pretrained_weights_candidates(key)
    member = (which or cands[0][0]).upper()
    if member not in [m for m, _ in cands]:
        raise ValueError(f"{name}: unknown weights {which!r}; known: {[m for m, _ in cands]}")
    url = getattr(getattr(tvm, _WEIGHTS[key][0]), member).url
    target = pretrained_weights_file(key, member)
    if target.is_file():
        return target
    folder = target.parent
    made = [p for p in (folder.parent, folder) if not p.exists()]
    hash_regex = getattr(torch.hub, "HASH_REGEX", re.compile(r"-([a-f0-9]*)\."))
    m = hash_regex.search(target.name)
    print(f'Downloading: "{url}" to {target}', file=sys.stderr, flush=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), hash_prefix=m.group(1) if m else None, progress=progress)
    except (OSError, RuntimeError, ValueError, urllib.error.URLError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            why = f"HTTP {exc.code} {exc.reason}"
        elif isinstance(exc, urllib.error.URLError):
            why = f"cannot reach the server ({exc.reason})"
        else:
            why = " ".join(str(exc).split()) or type(exc).__name__
        for p in reversed(made):  # folders this call created, if still empty
            try:
                p.rmdir()
            except OSError:
                pass
        raise WeightsDownloadError(
            f"downloading the ImageNet weights for {key} failed: {why}; URL {url}, cache file {target} (nothing "
            f"was saved). Check the network, or download the file yourself and put it there (TORCH_HOME moves "
            f"the folder), or pass weights_path=.") from exc
    return target


def _load_state_dict(path: Path, name: str = "") -> dict:
    """The ImageNet state dict in the weights file ``path`` (a bare state dict, or one under ``state_dict`` or
    ``model``). An empty, truncated or corrupt file, one holding pickled Python objects, or one that is not a
    dict of tensors raises :class:`fashionlab.engine.CheckpointError` naming the file and what it holds."""
    from ..engine import CheckpointError, _describe, read_torch_file

    what = f"{name} ImageNet weights file" if name else "ImageNet weights file"
    sd = read_torch_file(path, what)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    elif isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: holds {_describe(sd)}; expected a {what}: a state dict of tensors as "
                              "torchvision's files hold")
    return sd


def _load_weights_into(model: nn.Module, state: dict, path: Path, name: str) -> None:
    """``model.load_state_dict(state)``, or a :class:`fashionlab.engine.CheckpointError` that names ``path`` and
    summarises which keys and shapes differ (e.g. the file of another architecture)."""
    from ..engine import CheckpointError, state_dict_mismatch

    diff = state_dict_mismatch(state, model.state_dict())
    if diff is not None:
        want = pretrained_weights_candidates(name)[0][1]
        raise CheckpointError(f"{path}: these weights do not fit torchvision's {name} ({diff}); expected {name}'s "
                              f"ImageNet weights, e.g. {want}")
    model.load_state_dict(state)


# ----------------------------------------------------------------------------------------------------------
# the factory
# ----------------------------------------------------------------------------------------------------------
def backbone(name: str, stage: str | None = None, pretrained: bool | str = False,
             weights_path: str | os.PathLike | None = None, download: bool | None = None,
             **kwargs) -> Backbone:
    """A feature-map extractor ``name`` cut after ``stage``, with ``.out_channels`` and ``.output_size(px)``.

    ``name``: ``resnet18``, ``resnet34``, ``resnet50`` (stages ``layer1``..``layer4``, default ``layer3`` as
    in ASEN/ASEN++/CSN); ``vgg16``/``vgg16_bn`` (``convK`` ends at block K's last ReLU, ``poolK`` after
    its max-pool; default ``conv5`` = "all layers before Pool5" of paper 01); ``alexnet`` (``conv1``..
    ``conv5`` after each ReLU, default ``features`` = after pool5); ``efficientnet_b0`` .. ``efficientnet_b4``
    (``stem``, ``stage1`` .. ``stage7``, default ``features`` = after the 1x1 head conv, paper 06); ``smallcnn`` (keyword
    ``width``, see :class:`SmallCNN`). ``pretrained=True`` (or a weights version such as
    ``"IMAGENET1K_V2"``) loads torchvision's ImageNet file from ``weights_path`` (file or folder) or the
    torch hub cache; when it is missing there, ``download=True`` (default ``None``: ``$FASHIONLAB_DOWNLOAD_WEIGHTS``,
    off unless set) downloads it with torch.hub, else the error says where to put it (module docstring). Implements docs/architecture.md principles 4 and 5:
    the same factory serves every mode, and the result runs on any device.
    """
    key = _canonical(name)
    stages, default = BACKBONES[key]
    stage = default if stage is None else str(stage).lower()
    if stage not in stages:
        raise ValueError(f"{key}: unknown stage {stage!r}; choose one of {list(stages)}")
    if key == "smallcnn":
        if pretrained or weights_path is not None:
            raise ValueError("smallcnn has no pretrained weights; it is trained from scratch")
        return SmallCNN(**kwargs)
    if kwargs:
        raise TypeError(f"{key}: unexpected arguments {sorted(kwargs)}")

    import torchvision.models as tvm

    load = bool(pretrained) or weights_path is not None
    if not load and key in ("vgg16", "vgg16_bn", "alexnet"):
        return _features_from_scratch(key, stage)
    path = _find_weights(key, pretrained or True, weights_path, download=download) if load else None
    state = _load_state_dict(path, key) if load else None
    full = getattr(tvm, key)(weights=None)
    if state is not None:
        _load_weights_into(full, state, path, key)

    if key.startswith("resnet"):
        names = ["conv1", "bn1", "relu", "maxpool"] + [f"layer{i}" for i in range(1, 5)]
        names = names[: names.index(stage) + 1]
        layers = OrderedDict((n, getattr(full, n)) for n in names)
        last = layers[stage][-1]
        out_channels = (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features
        net = Backbone(layers, out_channels, key, stage)
    else:
        feats = full.features
        net = _truncated_features(key, stage, feats, _features_end(key, stage, feats))
    if path is None:
        return net
    return ImageNetBackbone(OrderedDict(net.named_children()), net.out_channels, key, stage, weights=path.name)


def _features_end(key: str, stage: str, feats: nn.Sequential) -> int:
    """Index in torchvision's ``features`` just after ``stage``."""
    if key.startswith("efficientnet"):  # stem, seven MBConv stages, the 1x1 head conv
        return len(feats) if stage == "features" else _EFFICIENTNET_STAGES.index(stage) + 1
    if key.startswith("vgg"):  # five blocks, each ends in a max-pool
        pools = [i for i, m in enumerate(feats) if isinstance(m, nn.MaxPool2d)]
        return pools[int(stage[-1]) - 1] + (1 if stage.startswith("pool") else 0)
    if stage == "features":  # alexnet: conv-relu(-pool) x5
        return len(feats)
    convs = [i for i, m in enumerate(feats) if isinstance(m, nn.Conv2d)]
    return convs[int(stage[-1]) - 1] + 2  # convK ends at the ReLU after the K-th conv


def _features_from_scratch(key: str, stage: str) -> Backbone:
    """VGG/AlexNet without weights: build on the meta device (skipping the initialisation of the 60-120M
    parameter classifier, which takes most of a second), keep the convolutions, then initialise them as
    torchvision does (VGG: Kaiming-normal fan-out, zero bias; AlexNet: PyTorch's default)."""
    import torchvision.models as tvm

    with torch.device("meta"):
        feats = getattr(tvm, key)(weights=None).features
    net = _truncated_features(key, stage, feats, _features_end(key, stage, feats)).to_empty(device="cpu")
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and key.startswith("vgg"):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()  # weight 1, bias 0, running stats reset
        elif isinstance(m, nn.Conv2d):
            m.reset_parameters()
    return net


def _truncated_features(key: str, stage: str, feats: nn.Sequential, end: int) -> Backbone:
    kept = list(feats)[:end]
    out_channels = [m for m in nn.Sequential(*kept).modules() if isinstance(m, nn.Conv2d)][-1].out_channels
    # keep torchvision's keys ("features.0.weight") so ImageNet state dicts map one to one
    layers = OrderedDict(features=nn.Sequential(OrderedDict((str(i), m) for i, m in enumerate(kept))))
    return Backbone(layers, out_channels, key, stage)


# ----------------------------------------------------------------------------------------------------------
# the start of a recipe's backbones: the user's switch
# ----------------------------------------------------------------------------------------------------------
_START: ContextVar[str | None] = ContextVar("fashionlab_start", default=None)


def _check_start_name(value: str, where: str) -> str:
    v = str(value).strip().lower()
    if v not in STARTS:
        raise ValueError(f"{where}: unknown start {value!r}; choose one of {list(STARTS)}")
    return v


def requested_start() -> str | None:
    """The start the user asked for, or ``None`` (then each config's own ``pretrained`` field holds): the value of
    an enclosing :func:`pretrained_start` block (``experiments.run(..., pretrained=)``), else
    ``$FASHIONLAB_PRETRAINED`` (``fashionlab reproduce --pretrained`` sets it), else ``None``. A value outside
    :data:`STARTS` raises ``ValueError``."""
    value = _START.get()
    if value is not None:
        return _check_start_name(value, "pretrained=")
    env = os.environ.get(PRETRAINED_ENV, "").strip()
    return _check_start_name(env, f"${PRETRAINED_ENV}") if env else None


@contextlib.contextmanager
def pretrained_start(value: str | None):
    """Within the block, :func:`requested_start` is ``value`` (one of :data:`STARTS`; ``None``: unchanged)."""
    if value is None:
        yield
        return
    token = _START.set(_check_start_name(value, "pretrained="))
    try:
        yield
    finally:
        _START.reset(token)


def check_start(start: str, names, where: str = "", download: bool | None = None) -> None:
    """Check, before any work, that the backbones ``names`` (a config's backbone names) can start as ``start``.

    For ``"imagenet"``: a SmallCNN has no ImageNet weights (``ValueError`` naming ``where``, e.g. the experiment
    and mode), and every torchvision backbone's file must be there (else the ``FileNotFoundError`` of
    :func:`backbone`, which names the file, the folder and the download switch; with the download switch on, the
    file is fetched now)."""
    start = _check_start_name(start, where or "pretrained")
    if start != "imagenet":
        return
    names = [n for n in dict.fromkeys(names) if n]
    if any(_canonical(n) == "smallcnn" for n in names):
        raise ValueError(
            f"{where}: the ImageNet start (--pretrained imagenet, ${PRETRAINED_ENV}=imagenet) needs torchvision "
            f"backbones, but this config uses smallcnn, which has no ImageNet weights (it is trained from scratch); "
            f"use --mode full (the papers' backbones), a config with a torchvision backbone, or the scratch start")
    for n in names:
        _find_weights(_canonical(n), True, None, download=download)
