"""torch Datasets over ASEN-format items and image folders, and the image transforms.

Preprocessing follows the reference implementations (docs/implementations.md §2 "Backbone", §3, §6): resize
the shorter side, centre-crop a square, a horizontal flip for training only, ImageNet normalisation. Images are
loaded with PIL and converted to RGB. A missing or unreadable image is an error at load time that names the file
and, where known, the split-file line that referenced it; a loader never returns ``None`` (§10).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageLoadError",
    "load_rgb",
    "to_rgb",
    "make_transform",
    "AttributeImageDataset",
    "TripletDataset",
    "TensorImages",
    "TwoScaleImages",
    "load_resized",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageLoadError(OSError):
    """An image file exists but cannot be decoded (truncated, corrupt, not an image)."""


#: Modes holding 16-bit greyscale (PIL opens 16-bit PNG and TIFF greyscale as one of them).
_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
#: What transparent pixels are composited onto (fashion product photos sit on white).
BACKGROUND = (255, 255, 255)


def to_rgb(im: Image.Image, path=None) -> Image.Image:
    """Convert a decoded PIL image of any mode to 8-bit RGB with the intensities it shows (docs/formats.md,
    "Images").

    * 16-bit greyscale (``I;16``, ``I;16B``, ``I``: 0..65535) is scaled by 1/257 (rounded), not clipped at 255
      as PIL's own conversion does (which turns most of such an image white); ``I`` values outside 0..65535
      are an :class:`ImageLoadError`, as their range is unknown.
    * Transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, a palette or greyscale image with a
      transparent colour) is composited onto white (:data:`BACKGROUND`), so a cut-out garment shows on the
      white of a shop photo rather than on whatever colour its transparent pixels store.
    * ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``HSV``, ``F`` (0..255 floats, clipped): PIL's conversion.
    ``path`` only names the file in errors.
    """
    mode = im.mode
    if mode == "RGB":
        return im.copy()  # a copy that outlives the opened file, as PIL's conversions are
    where = f" {path}" if path is not None else ""
    if mode in _MODES_16BIT:
        a = np.asarray(im).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageLoadError(f"image{where} has mode {mode} with values {int(a.min())}..{int(a.max())}; expected "
                                 f"8-bit or 16-bit intensities (0..65535)")
        g = ((a + 128) // 257).astype(np.uint8)
        return Image.fromarray(np.repeat(g[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        try:
            rgba = im.convert("RGBA")
        except ValueError as e:
            raise ImageLoadError(f"cannot convert image{where} of mode {mode} to RGB: {e}") from None
        out = Image.new("RGBA", im.size, BACKGROUND + (255,))
        out.alpha_composite(rgba)
        return out.convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError as e:
        raise ImageLoadError(f"cannot convert image{where} of mode {mode} to RGB: {e}; expected a mode PIL converts "
                             f"(1, L, P, RGB, RGBA, LA, CMYK, YCbCr, I;16, ...)") from None


def load_rgb(path, context: str | Callable[[], str] = "") -> Image.Image:
    """Open an image with PIL, fully decode it and convert it to RGB (never ``None``: docs/implementations.md §10).

    Every mode PIL opens is converted by :func:`to_rgb`: 16-bit greyscale scaled to 8 bits, transparency
    composited onto white. A missing file raises :class:`FileNotFoundError`, an undecodable one
    :class:`ImageLoadError`; both messages name the path and add ``context`` (e.g. which split-file line
    referenced the image; a string, or a callable returning one, evaluated only on error).
    """
    path = Path(path)

    def suffix() -> str:
        c = context() if callable(context) else context
        return f" ({c})" if c else ""

    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}{suffix()}")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb(im, path)
    except ImageLoadError as e:
        raise ImageLoadError(f"{e}{suffix()}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageLoadError(f"cannot decode image {path}{suffix()}: {type(e).__name__}: {e}") from e


def make_transform(image_size: int, train: bool, normalize: bool = True) -> Callable[[Image.Image], torch.Tensor]:
    """The ASEN/CSN preprocessing (docs/implementations.md §2 "Backbone", §6 "Model").

    ``Resize(image_size)`` of the shorter side (aspect kept) → ``CenterCrop(image_size)`` → horizontal flip
    (only when ``train``) → ``ToTensor`` → ImageNet mean/std normalisation (skip with ``normalize=False``).
    Returns a callable PIL image → float tensor ``(3, image_size, image_size)``.
    """
    image_size = int(image_size)
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    steps: list = [T.Resize(image_size, antialias=True), T.CenterCrop(image_size)]
    if train:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.ToTensor())
    if normalize:
        steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(steps)


class AttributeImageDataset(Dataset):
    """Images with one (attribute, value) label each: the query, candidate or training items of a split.

    Items are the rows of the ASEN split files (docs/formats.md §5.1) or of :attr:`FashionAILabels.items` (§5.2).

    Parameters
    ----------
    root: folder the ``filenames`` are relative to (for the ASEN data ``data/<DS>``, docs/formats.md §5.1).
    filenames: relative image paths; position = image id.
    items: ``int64 (n, 3)`` array ``(image id, attribute index, value index)``.
    transform: PIL image → tensor (e.g. :func:`make_transform`); default ``ToTensor`` (floats in [0, 1]).
    cache: keep decoded images in memory as uint8 arrays, so later epochs skip file reading and JPEG
        decoding. Each DataLoader worker process has its own cache, so either use ``num_workers=0``, or
        ``persistent_workers=True``, or call :meth:`preload` before the DataLoader starts its workers (they then
        share the filled cache copy-on-write).
    source: optional description of where ``filenames`` and ``items`` came from, used in error messages:
        ``{"filenames": path, "items": path}`` (see :meth:`from_split`).

    ``dataset[i]`` is ``(image tensor, attribute, value, image id)`` for item row ``i``.
    """

    def __init__(self, root, filenames: Sequence[str], items, transform=None, cache: bool = False,
                 source: dict | None = None):
        self.root = Path(root)
        self.filenames = list(filenames)
        items = np.asarray(items, dtype=np.int64)
        if items.size == 0:
            items = items.reshape(0, 3)
        if items.ndim != 2 or items.shape[1] != 3:
            raise ValueError(f"items must have shape (n, 3) (image id, attribute, value); got {items.shape}")
        if len(items) and (items[:, 0].min() < 0 or items[:, 0].max() >= len(self.filenames)):
            bad = int(np.flatnonzero((items[:, 0] < 0) | (items[:, 0] >= len(self.filenames)))[0])
            raise ValueError(
                f"item row {bad} has image id {items[bad, 0]}, outside the {len(self.filenames)} filenames"
            )
        self.items = items
        self.transform = transform if transform is not None else T.ToTensor()
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}
        self.source = dict(source or {})
        # first item row of each image id, for error messages
        self._row_of_id: dict[int, int] | None = None

    @classmethod
    def from_split(cls, split, which: str, transform=None, cache: bool = False, image_root=None):
        """The ``"queries"``, ``"candidates"`` or ``"labels"`` items of an :class:`~fashionlab.datasets.AsenSplit`.

        ``image_root`` defaults to ``split.root`` (the folder the file list is relative to).
        """
        items = split.items(which)
        src = {"filenames": split.files.get("filenames")}
        if which in split.files:
            src["items"] = split.files[which]
        return cls(image_root if image_root is not None else split.root, split.filenames, items,
                   transform=transform, cache=cache, source=src)

    def __len__(self) -> int:
        return len(self.items)

    # -- image access by id ---------------------------------------------------------------------------------------
    def path(self, image_id: int) -> Path:
        """Absolute path of image ``image_id``."""
        return self.root / self.filenames[int(image_id)]

    def _context(self, image_id: int, row: int | None = None) -> str:
        parts = []
        fn = self.source.get("filenames")
        parts.append(f"image id {image_id} = line {image_id + 1} of {fn}" if fn else f"image id {image_id}")
        if row is None:
            if self._row_of_id is None:
                ids = self.items[:, 0]
                uniq, first = np.unique(ids, return_index=True)
                self._row_of_id = dict(zip(uniq.tolist(), first.tolist()))
            row = self._row_of_id.get(int(image_id))
        it = self.source.get("items")
        if row is not None and it:
            parts.append(f"item on line {row + 1} of {it}")
        elif row is not None:
            parts.append(f"item row {row}")
        return "; ".join(parts)

    def get_image(self, image_id: int, row: int | None = None) -> Image.Image:
        """The decoded RGB PIL image of ``image_id`` (from the cache when enabled)."""
        image_id = int(image_id)
        if self.cache:
            arr = self._cache.get(image_id)
            if arr is None:
                arr = np.asarray(load_rgb(self.path(image_id), lambda: self._context(image_id, row)))
                self._cache[image_id] = arr
            return Image.fromarray(arr)
        return load_rgb(self.path(image_id), lambda: self._context(image_id, row))

    def load(self, image_id: int) -> torch.Tensor:
        """The transformed tensor of image ``image_id`` (used by :class:`TripletDataset`)."""
        return self.transform(self.get_image(image_id))

    def preload(self) -> "AttributeImageDataset":
        """Decode every image of the items into the cache now (turns ``cache`` on). Returns ``self``."""
        self.cache = True
        for row, image_id in enumerate(self.items[:, 0].tolist()):
            if image_id not in self._cache:
                self.get_image(image_id, row)
        return self

    def verify(self) -> None:
        """Check that every referenced image file exists; raise :class:`FileNotFoundError` listing the first few."""
        missing = [(r, i) for r, i in enumerate(self.items[:, 0].tolist()) if not os.path.isfile(self.path(i))]
        if missing:
            head = "; ".join(f"{self.path(i)} ({self._context(i, r)})" for r, i in missing[:5])
            raise FileNotFoundError(f"{len(missing)} of {len(self.items)} images missing, e.g. {head}")

    def __getitem__(self, index: int):
        row = int(index)
        if row < 0:
            row += len(self.items)
        image_id, attr, value = self.items[row].tolist()
        return self.transform(self.get_image(image_id, row)), attr, value, image_id

    def __repr__(self) -> str:
        return (f"AttributeImageDataset({len(self)} items over {len(self.filenames)} images, root={str(self.root)!r}, "
                f"cache={self.cache})")


class TripletDataset(Dataset):
    """Triplets of images for attribute-specific metric learning (ASEN / ASEN++, docs/implementations.md §2, §3;
    paper 01's triplet pool).

    Parameters
    ----------
    images: an :class:`AttributeImageDataset` (images are fetched by id through its :meth:`~AttributeImageDataset.load`)
        or any callable ``image id -> tensor``.
    triplets: ``int64 (n, 4)`` array ``(anchor id, positive id, negative id, attribute)`` of *image ids*, as
        returned by the samplers in :mod:`fashionlab.datasets.samplers`, or a sampler itself (anything with a
        ``triplets(epoch)`` method): then the triplets of epoch 0 are used and :meth:`set_epoch` resamples.

    ``dataset[i]`` is ``(anchor, positive, negative, attribute)``: three image tensors and an int.
    """

    def __init__(self, images, triplets):
        if isinstance(images, AttributeImageDataset):
            self._load = images.load
        elif callable(images):
            self._load = images
        else:
            raise TypeError("images must be an AttributeImageDataset or a callable image id -> tensor")
        self.images = images
        self.sampler = None
        if hasattr(triplets, "triplets") and callable(triplets.triplets):
            self.sampler = triplets
            triplets = triplets.triplets(0)
        self.epoch = 0
        self._set(triplets)

    def _set(self, triplets) -> None:
        t = np.asarray(triplets, dtype=np.int64)
        if t.size == 0:
            t = t.reshape(0, 4)
        if t.ndim != 2 or t.shape[1] != 4:
            raise ValueError(f"triplets must have shape (n, 4) (anchor, positive, negative, attribute); got {t.shape}")
        self.triplets = t

    def set_epoch(self, epoch: int) -> None:
        """Use the sampler's triplets of ``epoch`` (deterministic from the sampler's seed and ``epoch``)."""
        if self.sampler is None:
            raise RuntimeError("set_epoch needs a sampler; this TripletDataset was given a fixed triplet array")
        self.epoch = int(epoch)
        self._set(self.sampler.triplets(self.epoch))

    def set_triplets(self, triplets) -> None:
        """Replace the triplet array (e.g. freshly sampled for a new epoch)."""
        self._set(triplets)

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int):
        a, p, n, attr = self.triplets[int(index)].tolist()
        return self._load(a), self._load(p), self._load(n), attr


def _line_context(image_id: int, source: str | None) -> str:
    """Where image ``image_id`` was named (for :func:`load_rgb`'s errors): its line of the file list."""
    return f"image id {image_id} = line {image_id + 1} of {source or 'the file list'}"


def decode_square(path, size: int, context: str | Callable[[], str] = "") -> torch.Tensor:
    """One image as the ``uint8 (3, size, size)`` tensor :class:`TensorImages` stores: :func:`load_rgb`, the
    shorter side resized to ``size`` (bilinear), centre crop. Errors name ``path`` and ``context``."""
    im = load_rgb(path, context)
    w, h = im.size
    s = int(size)
    if (w, h) != (s, s):
        k = s / min(w, h)
        im = im.resize((max(s, round(w * k)), max(s, round(h * k))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    return torch.from_numpy(np.array(im)).permute(2, 0, 1)


def load_resized(path, size: int | None = None, context: str | Callable[[], str] = "") -> np.ndarray:
    """One image as ``uint8 (H, W, 3)``: :func:`load_rgb`, resized to ``size`` x ``size`` (bilinear, aspect not
    kept, no crop) when ``size`` is given and the image is not that size already. How paper 06's scenes and
    crops are read (:func:`fashionlab.datasets.outfits.read_outfits`, :class:`~fashionlab.datasets.StreamingArray`).
    Errors name ``path`` and ``context``."""
    im = load_rgb(path, context)
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def downscale(hi: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8 (N, 3, S, S)`` images downscaled to ``size`` (antialiased bilinear, rounded): the global view of
    :class:`TwoScaleImages`, in chunks of about 128 MB of floats."""
    import torch.nn.functional as F

    out = torch.empty((len(hi), 3, size, size), dtype=torch.uint8)
    chunk = max(1, 2 ** 25 // (3 * hi.shape[-1] ** 2))
    for s in range(0, len(hi), chunk):
        y = F.interpolate(hi[s:s + chunk].float(), size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
        out[s:s + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _item_ids(items) -> np.ndarray:
    """The image ids (first column) of item rows: the ``ids_of`` of :meth:`TwoScaleImages.item_batches` (a
    module-level function, so that a ``DataLoader`` started by ``spawn`` can pickle it)."""
    return items[:, 0]


class TensorImages:
    """Images decoded once into one ``uint8`` tensor ``(N, 3, S, S)``; batches are made by indexing it.

    The same preprocessing as :func:`make_transform` (shorter side resized to ``S``, centre crop, ImageNet
    normalisation, a horizontal flip per image when training), but with no per-item PIL work in the training
    loop: on a 2-core CPU that is what keeps the model, not the loader, the bottleneck. ``ids`` selects which
    image ids to decode (default: all of ``filenames``); :meth:`batch` takes image ids. For data too large to
    hold, :class:`~fashionlab.datasets.StreamingImages` has the same interface and reads from disk
    (:func:`~fashionlab.datasets.image_source` chooses).
    """

    def __init__(self, root, filenames: Sequence[str], image_size: int, ids=None, progress: bool = False,
                 source: str | None = None):
        from tqdm.auto import tqdm

        self.root, self.image_size = Path(root), int(image_size)
        ids = np.arange(len(filenames)) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
        self.ids = ids
        self._row = np.full(len(filenames), -1, dtype=np.int64)
        self._row[ids] = np.arange(len(ids))
        self.data = torch.empty((len(ids), 3, self.image_size, self.image_size), dtype=torch.uint8)
        for r, i in enumerate(tqdm(ids.tolist(), desc="decoding images", disable=not progress, leave=False)):
            self.data[r] = decode_square(self.root / filenames[i], self.image_size, _line_context(i, source))
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids) -> torch.Tensor:
        """Row positions in :attr:`data` of image ``ids``; an id that was not decoded is an error."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = self._row[ids]
        if (rows < 0).any():
            raise KeyError(f"image ids {ids[rows < 0][:5].tolist()} were not decoded into this TensorImages")
        return torch.from_numpy(rows)

    def _pixels(self, ids) -> torch.Tensor:
        """``uint8 (B, 3, S, S)`` pixels of image ``ids`` (before normalisation)."""
        return self.data[self.rows(ids)]

    def prefetch(self, batches, ids_of: Callable | None = None, device=None):
        """``batches`` unchanged: decoded images need no prefetching (see :meth:`StreamingImages.prefetch`)."""
        return batches

    def batch(self, ids, train: bool = False, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Normalised float batch ``(B, 3, S, S)`` of image ``ids``; random horizontal flips when ``train``."""
        x = self._pixels(ids)
        if device is not None:
            x = x.to(device, non_blocking=True)
        x = (x.float() - self._mean.to(x.device)) / self._std.to(x.device)
        if train:
            flip = torch.rand(len(x), generator=generator) < 0.5
            x[flip.to(x.device)] = x[flip.to(x.device)].flip(-1)
        return x


class TwoScaleImages:
    """One split's images decoded once at two resolutions (ASEN slides "Key Problems": the high-resolution image
    and the low-resolution input a CNN backbone takes; papers 03, 05 and 06).

    ``hi``: a :class:`TensorImages` at ``image_size`` (what ASEN's local branch crops); ``lo``: the same images
    downscaled to ``global_size`` (antialiased bilinear), every method's input (``lo`` is ``hi``'s tensor when the
    sizes agree). :meth:`batch` returns both views of image ``ids``, normalised, with the *same* random horizontal
    flips when training (so a crop box found on the global view lands on the same spot of the high-resolution
    image); :meth:`triplet_batch` does so for a batch of triplets.
    """

    def __init__(self, root, filenames, image_size: int, global_size: int, progress: bool = False,
                 source: str | None = None):
        self.hi = TensorImages(root, filenames, image_size, progress=progress, source=source)
        self.image_size, self.global_size = int(image_size), int(global_size)
        self.lo = self.hi.data if self.global_size == self.image_size else downscale(self.hi.data, self.global_size)
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.hi)

    def __repr__(self) -> str:
        return (f"TwoScaleImages({len(self)} images: {self.global_size} px global view, "
                f"{self.image_size} px high resolution)")

    def _norm(self, x, flip, device):
        if device is not None:
            x = x.to(device, non_blocking=True)
        x = x.float().sub_(self._mean.to(x.device)).div_(self._std.to(x.device))  # in place: 4x faster on a CPU
        if flip is not None:
            f = flip.to(x.device)
            x[f] = x[f].flip(-1)
        return x

    def batch(self, ids, train: bool = False, device=None, hires: bool = True):
        """``(lo, hi)``: the normalised ``(B, 3, global_size, global_size)`` global views of image ``ids`` and, with
        ``hires``, the ``(B, 3, image_size, image_size)`` high-resolution images (else ``None``)."""
        lo, hi = self._pixels(ids, hires)
        flip = (torch.rand(len(lo)) < 0.5) if train else None
        lo = self._norm(lo, flip, device)
        hi = self._norm(hi, flip, device) if hires else None
        return lo, hi

    def _pixels(self, ids, hires: bool = True):
        """``uint8`` ``(lo, hi)`` pixels of image ``ids`` (``hi`` ``None`` unless ``hires``)."""
        rows = self.hi.rows(ids)
        return self.lo[rows], (self.hi.data[rows] if hires else None)

    def prefetch(self, batches, ids_of: Callable | None = None, device=None):
        """``batches`` unchanged: decoded images need no prefetching (see :meth:`StreamingImages.prefetch`)."""
        return batches

    def view(self, scale: str = "lo") -> torch.Tensor:
        """The ``uint8`` pixels of one scale (``"lo"``: the ``global_size`` view, ``"hi"``: ``image_size``) as one
        tensor indexed by image id = row (every image of the list decoded): :attr:`lo` or ``hi.data``. Code
        written against it also runs on :meth:`StreamingTwoScaleImages.view`, which decodes on indexing."""
        if scale not in ("lo", "hi"):
            raise ValueError(f"scale must be 'lo' or 'hi', got {scale!r}")
        return self.lo if scale == "lo" else self.hi.data

    def item_batches(self, items, batch: int = 256, hires: bool = False):
        """Evaluation batches ``(lo, hi, attr)`` of ``items`` (``(n, >=2)`` rows ``(image id, attribute, ...)``),
        ``batch`` items at a time, in order, unflipped (``hi`` is ``None`` unless ``hires``): what
        :func:`fashionlab.engine.extract_features` iterates to embed each item under its attribute."""
        items = np.asarray(items, dtype=np.int64)
        chunks = [items[s:s + batch] for s in range(0, len(items), batch)]
        for it in self.prefetch(chunks, ids_of=_item_ids):
            lo, hi = self.batch(it[:, 0], hires=hires)
            yield lo, hi, torch.from_numpy(np.ascontiguousarray(it[:, 1]))

    def triplet_batch(self, triplets, train: bool = True, device=None, hires: bool = False):
        """``(lo, hi, attr)`` for a ``(B, 4)`` array of ``(anchor, positive, negative, attribute)`` image ids:
        the B anchors, then the B positives, then the B negatives (:meth:`batch`, ``3B`` images), and ``attr``
        ``(3B,)``, each triplet's attribute repeated for its three images, on ``device``."""
        t = np.asarray(triplets)
        attr = torch.from_numpy(np.tile(t[:, 3], 3)).to(device or "cpu")
        lo, hi = self.batch(t[:, :3].T.reshape(-1), train=train, device=device, hires=hires)
        return lo, hi, attr
