"""Streaming images: decoded from disk batch by batch in ``DataLoader`` workers, not held in memory (issue 20).

:class:`StreamingImages` and :class:`StreamingTwoScaleImages` have the public interface of
:class:`~fashionlab.datasets.TensorImages` and :class:`~fashionlab.datasets.TwoScaleImages` (``batch``, ``rows``,
``item_batches``, ``triplet_batch``, ``prefetch``) and the same preprocessing (:func:`~.images.decode_square`,
:func:`~.images.downscale`, the same normalisation and flips), so a streamed batch equals the cached one bit for
bit. What differs is where the pixels come from:

* :meth:`StreamingImages.prefetch` wraps an epoch's list of batches (what a recipe hands to
  :func:`fashionlab.engine.fit`, or the id chunks of an evaluation pass): a ``DataLoader`` decodes the images of
  each batch in ``workers`` processes, ``prefetch`` batches ahead per worker (pinned memory when the target
  device is CUDA); each decoded batch is *staged* in the images object just before its batch is yielded, and the
  step's ``images.batch(ids)`` takes the staged pixels. Memory is bounded by one batch of images staged plus
  ``workers × prefetch`` batches in flight, never by the dataset.
* Without prefetching (or for ids that were not staged) :meth:`~StreamingImages.batch` decodes synchronously, so
  nothing breaks, it is only slower.

:class:`StreamingArray` does the same for code written against a plain ``uint8`` numpy array of images (paper
06's scenes and crops): ``arr[ids]`` returns the staged pixels inside a :meth:`~StreamingArray.prefetch` pass,
else decodes; :meth:`~StreamingArray.take` is a lazy subset and :class:`StreamingCrops` cuts crops around boxes
of streamed scenes (paper 06's detected crops). :meth:`StreamingTwoScaleImages.view` gives one scale indexed like
a tensor (paper 04's ``images``/``inputs``). :func:`prefetched` is a pass over batches of any of these or of an
in-memory array (which needs no prefetching), :func:`take_rows` a subset of either.

:func:`image_source` (and :func:`image_array` for plain arrays) is the one place that chooses streaming or the
in-memory cache: streaming for real datasets and ``full`` mode, the cache for FashionSynth in ``quick``/``default``
mode (where decoding everything once is faster); ``FASHIONLAB_STREAM=1``/``0`` forces it, ``FASHIONLAB_WORKERS=N``
sets the workers. Every recipe streams this way: the triplet baseline, papers 01, 03 and 05 (their triplet and
evaluation passes), paper 04 (training, signatures, and jump detection's pass over each split, §4.3, keeping only
its small per-image parts) and paper 06 (the detector's scenes, the stage-2 crops, the detected crops, §3.2).
Paper 03's oracle crops alone decode a streamed split into memory (:meth:`StreamingTwoScaleImages.decoded`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .images import (IMAGENET_MEAN, IMAGENET_STD, TensorImages, TwoScaleImages, _line_context, decode_square, downscale,
                     load_resized)

__all__ = ["StreamingImages", "StreamingTwoScaleImages", "StreamingArray", "StreamingCrops", "image_source",
           "image_array", "prefetched", "take_rows", "stream_default", "default_workers", "triplet_ids"]


def triplet_ids(t) -> np.ndarray:
    """The image ids of a ``(B, 4)`` batch of triplets in the order the recipes ask for them: the B anchors, then
    the B positives, then the B negatives (the ``ids_of`` of a triplet epoch's :meth:`StreamingImages.prefetch`)."""
    return np.asarray(t)[:, :3].T.reshape(-1)


def _flat_ids(b) -> np.ndarray:
    return np.asarray(b, dtype=np.int64).reshape(-1)


class _BatchDecoder(Dataset):
    """The ``DataLoader`` dataset of :meth:`StreamingImages.prefetch`: item ``k`` = ``(ids, pixels)`` of batch ``k``,
    decoded in a worker (``pixels`` a tuple of ``uint8`` tensors in the order of ``ids``)."""

    def __init__(self, images, batches: Sequence, ids_of: Callable):
        self.images, self.batches, self.ids_of = images, batches, ids_of

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int):
        ids = np.ascontiguousarray(_flat_ids(self.ids_of(self.batches[k])))
        return torch.from_numpy(ids), self.images._decode(ids)


class _Prefetch:
    """The iterable :meth:`StreamingImages.prefetch` returns: yields ``batches`` unchanged, each after staging its
    decoded pixels in ``images``; ``len()`` is ``len(batches)`` (for ``fit``'s progress bar)."""

    def __init__(self, images, batches, ids_of, device):
        self.images, self.batches = images, list(batches)
        self.ids_of = ids_of or _flat_ids
        dev = torch.device(device) if device is not None else None
        self.pin = (dev.type == "cuda") if dev is not None else torch.cuda.is_available()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        if not self.batches:
            return
        w = self.images.workers
        loader = DataLoader(_BatchDecoder(self.images, self.batches, self.ids_of), batch_size=None, shuffle=False,
                            num_workers=w, prefetch_factor=self.images.prefetch_factor if w else None,
                            pin_memory=self.pin, generator=torch.Generator())  # own generator: no global RNG draw
        self.loader = loader  # the last pass's loader (tests read its worker and prefetch settings)
        try:
            for b, (ids, pixels) in zip(self.batches, loader):
                self.images._stage(ids.numpy(), pixels)
                yield b
        finally:
            self.images._unstage()


class _Staging:
    """What both streaming classes share: the staged batch, synchronous decoding, prefetching."""

    workers: int
    prefetch_factor: int

    def _init_stream(self, root, filenames, ids, source, workers, prefetch):
        self.root, self.filenames, self.source = Path(root), list(filenames), source
        ids = np.arange(len(self.filenames)) if ids is None else np.unique(np.asarray(ids, dtype=np.int64))
        self.ids = ids
        self._row = np.full(len(self.filenames), -1, dtype=np.int64)
        self._row[ids] = np.arange(len(ids))
        self.workers = default_workers() if workers is None else int(workers)
        self.prefetch_factor = max(1, int(prefetch))
        self._staged: tuple[np.ndarray, dict, tuple] | None = None
        #: most images ever held in the staging area at once (a test checks it never exceeds one batch)
        self.peak_staged = 0

    def _decode_hi(self, ids: np.ndarray, size: int) -> torch.Tensor:
        out = torch.empty((len(ids), 3, size, size), dtype=torch.uint8)
        done: dict[int, int] = {}
        for r, i in enumerate(ids.tolist()):
            if i in done:  # a repeated id (a triplet batch): decoded once
                out[r] = out[done[i]]
                continue
            out[r] = decode_square(self.root / self.filenames[i], size, _line_context(i, self.source))
            done[i] = r
        return out

    def __getstate__(self) -> dict:
        """What a worker started by ``spawn`` (macOS, Windows) receives: everything but the staged batch."""
        state = dict(self.__dict__)
        state["_staged"] = None
        return state

    def _stage(self, ids: np.ndarray, pixels: tuple) -> None:
        """Hold ``pixels`` (decoded in a worker) of ``ids`` for the next :meth:`batch` calls, replacing the last."""
        self._staged = (ids, {int(i): r for r, i in enumerate(ids.tolist())}, tuple(pixels))
        self.peak_staged = max(self.peak_staged, len(ids))

    def _unstage(self) -> None:
        self._staged = None

    @property
    def staged(self) -> int:
        """How many images the staging area holds now."""
        return 0 if self._staged is None else len(self._staged[0])

    def _fetch(self, ids) -> tuple:
        """``uint8`` pixel tensors of ``ids``: the staged ones (as they are when ``ids`` is the staged batch, so
        pinned memory stays pinned), else decoded now."""
        ids = _flat_ids(ids)
        self.rows(ids)  # an id outside this object is the same KeyError as for the cache
        if self._staged is not None:
            sid, where, px = self._staged
            if len(ids) == len(sid) and np.array_equal(ids, sid):
                return px
            if all(int(i) in where for i in ids.tolist()):
                r = torch.tensor([where[int(i)] for i in ids.tolist()], dtype=torch.long)
                return tuple(p[r] for p in px)
        return self._decode(ids)

    def prefetch(self, batches, ids_of: Callable | None = None, device=None) -> _Prefetch:
        """``batches`` (a list; an epoch's batches or an evaluation's id chunks), yielded unchanged while a
        ``DataLoader`` with :attr:`workers` processes decodes the images ``ids_of(batch)`` (default: the batch
        itself, as image ids; :func:`triplet_ids` for triplets) :attr:`prefetch_factor` batches ahead per
        worker, pinned when ``device`` (default: CUDA if available) is CUDA. Each batch's pixels are staged
        just before it is yielded, for :meth:`batch`. Worker errors name the file and its list line."""
        return _Prefetch(self, batches, ids_of, device)

    @property
    def data(self):
        raise AttributeError(f"{type(self).__name__} streams its images from disk and has no in-memory tensor; "
                             f"use image_source(..., stream=False) (or FASHIONLAB_STREAM=0) for the cached one")


class StreamingImages(_Staging, TensorImages):
    """:class:`~fashionlab.datasets.TensorImages` read from disk on demand (module docstring): the same ``batch``,
    ``rows`` and preprocessing, plus :meth:`prefetch`. ``workers`` (default :func:`default_workers`) decoding
    processes, each ``prefetch`` batches ahead."""

    def __init__(self, root, filenames: Sequence[str], image_size: int, ids=None, progress: bool = False,
                 source: str | None = None, workers: int | None = None, prefetch: int = 2):
        self.image_size = int(image_size)
        self._init_stream(root, filenames, ids, source, workers, prefetch)
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255

    def _decode(self, ids) -> tuple:
        return (self._decode_hi(_flat_ids(ids), self.image_size),)

    def decoded(self) -> TensorImages:
        """The same images decoded into memory (a :class:`~fashionlab.datasets.TensorImages`), for code that needs
        the whole tensor."""
        return TensorImages(self.root, self.filenames, self.image_size, ids=self.ids, source=self.source)

    def _pixels(self, ids) -> torch.Tensor:
        return self._fetch(ids)[0]

    def __repr__(self) -> str:
        return (f"StreamingImages({len(self)} images at {self.image_size} px from {self.root}, "
                f"{self.workers} workers)")


class StreamingTwoScaleImages(_Staging, TwoScaleImages):
    """:class:`~fashionlab.datasets.TwoScaleImages` read from disk on demand (module docstring): ``batch``,
    ``item_batches`` and ``triplet_batch`` as there, the global view made by the same antialiased
    :func:`~fashionlab.datasets.images.downscale` (in the worker), plus :meth:`prefetch`. ``hi`` is a
    :class:`StreamingImages` over the same files (sharing nothing staged)."""

    def __init__(self, root, filenames, image_size: int, global_size: int, progress: bool = False,
                 source: str | None = None, workers: int | None = None, prefetch: int = 2):
        self.image_size, self.global_size = int(image_size), int(global_size)
        self._init_stream(root, filenames, None, source, workers, prefetch)
        self.hi = StreamingImages(root, filenames, image_size, source=source, workers=workers, prefetch=prefetch)
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids) -> torch.Tensor:
        return TensorImages.rows(self, ids)

    def _decode(self, ids) -> tuple:
        hi = self._decode_hi(_flat_ids(ids), self.image_size)
        return (hi,) if self.global_size == self.image_size else (hi, downscale(hi, self.global_size))

    def decoded(self) -> TwoScaleImages:
        """The same images decoded into memory (a :class:`~fashionlab.datasets.TwoScaleImages`), for code that
        needs the whole tensors (paper 03's oracle crops)."""
        return TwoScaleImages(self.root, self.filenames, self.image_size, self.global_size, source=self.source)

    def _pixels(self, ids, hires: bool = True):
        px = self._fetch(ids)
        hi = px[0]
        lo = px[1] if len(px) > 1 else hi
        return lo, (hi if hires else None)

    @property
    def lo(self):
        return self.data

    def view(self, scale: str = "lo") -> "_ScaleView":
        """The ``uint8`` pixels of one scale (``"lo"``: ``global_size``, ``"hi"``: ``image_size``), indexed like
        :meth:`TwoScaleImages.view`'s tensor (``view[ids]``, ``view[a:b]``, ``view[i]``, ``len(view)``) but decoded
        on indexing: the staged batch's pixels when ``ids`` are in it (inside a :meth:`prefetch` pass), else read
        from disk now. Each indexing returns a fresh tensor, as a tensor's advanced indexing does."""
        if scale not in ("lo", "hi"):
            raise ValueError(f"scale must be 'lo' or 'hi', got {scale!r}")
        return _ScaleView(self, scale)

    def __repr__(self) -> str:
        return (f"StreamingTwoScaleImages({len(self)} images from {self.root}: {self.global_size} px global view, "
                f"{self.image_size} px high resolution, {self.workers} workers)")



def _key_ids(key, n: int):
    """Row positions ``0 .. n-1`` of an index ``key`` into an array of ``n`` images: an ``int`` for an integer key
    (negative counts from the end), else a 1-D ``int64`` array (a slice, integer ids, a boolean mask; numpy
    arrays, tensors or lists). Out-of-range rows are an :class:`IndexError`, as for a numpy array."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        i = int(key) + (n if int(key) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"index {int(key)} is out of bounds for {n} images")
        return i
    if isinstance(key, slice):
        return np.ascontiguousarray(np.arange(n, dtype=np.int64)[key])
    if torch.is_tensor(key):
        key = key.detach().cpu().numpy()
    a = np.asarray(key)
    if a.dtype == bool:
        if a.shape != (n,):
            raise IndexError(f"boolean index of shape {a.shape} for {n} images")
        return np.flatnonzero(a)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise IndexError(f"index rows with an int, a slice, a 1-D array of ints or a boolean mask (got {a.dtype} "
                         f"of shape {a.shape})")
    a = a.astype(np.int64)
    a = np.where(a < 0, a + n, a)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise IndexError(f"index {int(a[(a < 0) | (a >= n)][0])} is out of bounds for {n} images")
    return a


class _ScaleView:
    """One scale of a :class:`StreamingTwoScaleImages` indexed like a ``uint8 (N, 3, S, S)`` tensor
    (:meth:`StreamingTwoScaleImages.view`)."""

    def __init__(self, images: "StreamingTwoScaleImages", scale: str):
        self.images, self.scale = images, scale
        self.size = images.image_size if scale == "hi" else images.global_size

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple:
        return (len(self), 3, self.size, self.size)

    dtype = torch.uint8

    def __getitem__(self, key) -> torch.Tensor:
        k = _key_ids(key, len(self))
        ids = self.images.ids[np.atleast_1d(k)]
        lo, hi = self.images._pixels(ids, hires=self.scale == "hi")
        x = (hi if self.scale == "hi" else lo).clone()
        return x[0] if isinstance(k, int) else x

    def __array__(self, *args, **kwargs):
        raise TypeError("a streamed view decodes on indexing and has no array of every image; index it "
                        "(view[ids]) or use image_source(..., stream=False) for the in-memory tensor")

    def __repr__(self) -> str:
        return f"<{self.scale} view of {self.images!r}>"


class StreamingArray(_Staging):
    """A ``uint8`` image array read from disk on indexing, for code written against an in-memory numpy array:
    ``arr[i]`` (one image), ``arr[ids]``, ``arr[a:b]``, ``arr[mask]`` (a fresh ``np.ndarray`` of those images),
    ``len``, ``shape``, ``dtype``. Image ``i`` is ``root / filenames[i]`` read by
    :func:`~fashionlab.datasets.images.load_resized` (resized to ``size`` x ``size``, bilinear, no crop), laid out
    ``(N, 3, S, S)`` (``layout="chw"``) or ``(N, S, S, 3)`` (``"hwc"``), exactly as :func:`image_array`'s
    in-memory array holds it. Paper 06's scenes and crops (§3.2, :func:`~fashionlab.datasets.outfits.read_outfits`)
    stream this way.

    :meth:`prefetch` (module docstring) stages the batches of a pass, decoded in ``workers`` processes, and
    indexing inside the pass takes the staged pixels; outside a pass indexing decodes on the spot.
    :meth:`take` is a lazy subset (nothing decoded), :meth:`decoded` the whole array in memory. ``np.asarray``
    of it is an error rather than a silent decode of every image."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, root, filenames: Sequence[str], size: int, layout: str = "chw", lines=None,
                 source: str | None = None, workers: int | None = None, prefetch: int = 2):
        if layout not in ("chw", "hwc"):
            raise ValueError(f"layout must be 'chw' or 'hwc', got {layout!r}")
        self.size, self.layout = int(size), layout
        self._init_stream(root, filenames, None, source, workers, prefetch)
        #: the line of each image in the file list ``source`` names (for error messages; a subset keeps them)
        self.lines = np.arange(len(self.filenames)) if lines is None else np.asarray(lines, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def shape(self) -> tuple:
        s = self.size
        return (len(self), 3, s, s) if self.layout == "chw" else (len(self), s, s, 3)

    def rows(self, ids) -> torch.Tensor:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"rows {ids[(ids < 0) | (ids >= len(self))][:5].tolist()} are outside this array of "
                             f"{len(self)} images")
        return torch.from_numpy(ids)

    def _load(self, i: int) -> np.ndarray:
        """Image ``i`` as ``uint8 (S, S, 3)``."""
        ctx = _line_context(int(self.lines[i]), self.source) if self.source else ""
        return load_resized(self.root / self.filenames[i], self.size, ctx)

    def _decode(self, ids) -> tuple:
        ids = _flat_ids(ids)
        out = np.empty((len(ids),) + self.shape[1:], dtype=np.uint8)
        done: dict[int, int] = {}
        for r, i in enumerate(ids.tolist()):
            if i in done:
                out[r] = out[done[i]]
                continue
            a = self._load(i)
            out[r] = a.transpose(2, 0, 1) if self.layout == "chw" else a
            done[i] = r
        return (torch.from_numpy(out),)

    def __getitem__(self, key) -> np.ndarray:
        k = _key_ids(key, len(self))
        x = np.array(self._fetch(np.atleast_1d(k))[0].numpy())  # a fresh array, as numpy's advanced indexing
        return x[0] if isinstance(k, int) else x

    def take(self, rows, axis: int = 0) -> "StreamingArray":
        """The images at ``rows`` (ints or a boolean mask) as a new array of the same kind, nothing decoded (nor
        staged: it stages its own passes). ``axis`` must be 0 (the signature of ``np.ndarray.take``)."""
        if axis != 0:
            raise ValueError("a streamed image array is taken along its first axis only")
        return self._subset(np.atleast_1d(_key_ids(rows, len(self))))

    def _subset(self, rows: np.ndarray) -> "StreamingArray":
        return StreamingArray(self.root, [self.filenames[i] for i in rows.tolist()], self.size, self.layout,
                              lines=self.lines[rows], source=self.source, workers=self.workers,
                              prefetch=self.prefetch_factor)

    def decoded(self) -> np.ndarray:
        """Every image decoded into one in-memory array (what :func:`image_array` with ``stream=False`` holds),
        for code that needs the whole array."""
        return self._decode(np.arange(len(self)))[0].numpy()

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} streams its images from disk and has no in-memory array; index it "
                        f"(arr[ids]), call decoded(), or use image_array(..., stream=False) (FASHIONLAB_STREAM=0)")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} images, {self.layout} at {self.size} px from {self.root}, "
                f"{self.workers} workers)")


class StreamingCrops(StreamingArray):
    """Square crops around boxes of streamed scenes, ``uint8 (M, 3, S, S)``: crop ``k`` is
    :func:`fashionlab.synth.outfit.square_crop` of scene ``scene_ids[k]`` of ``scenes`` (an ``"hwc"``
    :class:`StreamingArray`) around ``boxes[k]``, resized to ``size``: paper 06's detected crops (§5.2.1,
    :func:`~fashionlab.datasets.outfits.pipeline_crops`) when the scenes stream. Each scene of a batch is read
    once; the rest is :class:`StreamingArray`'s."""

    def __init__(self, scenes: StreamingArray, scene_ids, boxes, size: int, pad: float = 0.1):
        self.scenes, self.pad = scenes, float(pad)
        self.scene_ids = np.asarray(scene_ids, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(boxes).reshape(-1, 4)
        if len(self.boxes) != len(self.scene_ids):
            raise ValueError(f"{len(self.boxes)} boxes for {len(self.scene_ids)} scenes")
        super().__init__(scenes.root, [scenes.filenames[i] for i in self.scene_ids.tolist()], size, "chw",
                         lines=scenes.lines[self.scene_ids], source=scenes.source, workers=scenes.workers,
                         prefetch=scenes.prefetch_factor)

    def _decode(self, ids) -> tuple:
        from ..synth.outfit import square_crop

        ids = _flat_ids(ids)
        out = np.empty((len(ids), 3, self.size, self.size), dtype=np.uint8)
        scenes: dict[int, np.ndarray] = {}
        for r, k in enumerate(ids.tolist()):
            j = int(self.scene_ids[k])
            if j not in scenes:
                scenes[j] = self.scenes._load(j)
            out[r] = square_crop(scenes[j], self.boxes[k], self.size, self.pad).transpose(2, 0, 1)
        return (torch.from_numpy(out),)

    def _subset(self, rows: np.ndarray) -> "StreamingCrops":
        return StreamingCrops(self.scenes, self.scene_ids[rows], self.boxes[rows], self.size, self.pad)


def prefetched(images, batches, ids_of: Callable | None = None, device=None):
    """``images.prefetch(batches, ids_of=..., device=...)`` when ``images`` can prefetch (every image source of
    this module and the cached :class:`~fashionlab.datasets.TensorImages` / ``TwoScaleImages``), else ``batches``
    unchanged (an in-memory numpy array or tensor): the one way to write a pass over batches of images that may
    stream or not."""
    fn = getattr(images, "prefetch", None)
    return batches if fn is None else fn(batches, ids_of=ids_of, device=device)


def take_rows(array, rows):
    """Rows of an image array kept beside its labels: ``array[rows]`` for an in-memory array (a copy, as
    always), a lazy :meth:`StreamingArray.take` (nothing decoded) for a streamed one."""
    if isinstance(array, StreamingArray):
        return array.take(rows)
    return array[rows]


def _env_flag(name: str) -> bool | None:
    v = os.environ.get(name, "").strip().lower()
    if not v:
        return None
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={os.environ[name]!r}: expected 1 or 0")


def stream_default(mode: str | None = None, real: bool = False) -> bool:
    """Whether :func:`image_source` streams: ``$FASHIONLAB_STREAM`` (``1``/``0``) if set, else for a real dataset
    (``real``: ``--data`` or ``$FASHIONLAB_FASHIONAI``) or ``full`` mode; the cache for FashionSynth in ``quick``
    and ``default`` mode."""
    env = _env_flag("FASHIONLAB_STREAM")
    if env is not None:
        return env
    return bool(real) or mode == "full"


def default_workers() -> int:
    """Decoding processes of a streaming source: ``$FASHIONLAB_WORKERS``, else ``min(4, CPUs - 1)`` (at least 0)."""
    env = os.environ.get("FASHIONLAB_WORKERS", "").strip()
    if env:
        n = int(env)
        if n < 0:
            raise ValueError(f"FASHIONLAB_WORKERS={env}: expected a number >= 0")
        return n
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def image_source(root, filenames: Sequence[str], image_size: int, global_size: int | None = None, *,
                 stream: bool | None = None, mode: str | None = None, real: bool = False,
                 workers: int | None = None, prefetch: int = 2, progress: bool = False, source: str | None = None):
    """The one choice between streaming and the in-memory cache for a split's images.

    Returns a :class:`~fashionlab.datasets.TensorImages` (``global_size`` None) or
    :class:`~fashionlab.datasets.TwoScaleImages`, decoded now, or their streaming counterparts
    :class:`StreamingImages` / :class:`StreamingTwoScaleImages`. ``stream`` decides if given, else
    :func:`stream_default` (``mode``, ``real``, ``$FASHIONLAB_STREAM``). ``workers`` (default
    :func:`default_workers`) and ``prefetch`` only matter when streaming; ``source`` names the file list in errors.
    """
    if stream is None:
        stream = stream_default(mode, real)
    if global_size is None:
        if stream:
            return StreamingImages(root, filenames, image_size, source=source, workers=workers, prefetch=prefetch)
        return TensorImages(root, filenames, image_size, progress=progress, source=source)
    if stream:
        return StreamingTwoScaleImages(root, filenames, image_size, global_size, source=source, workers=workers,
                                       prefetch=prefetch)
    return TwoScaleImages(root, filenames, image_size, global_size, progress=progress, source=source)


def image_array(root, filenames: Sequence[str], size: int, *, layout: str = "chw", stream: bool | None = None,
                mode: str | None = None, real: bool = False, workers: int | None = None, prefetch: int = 2,
                source: str | None = None):
    """The same choice for images kept as a plain ``uint8`` array (paper 06's scenes, ``layout="hwc"``, and
    crops, ``"chw"``; :func:`~fashionlab.datasets.outfits.read_outfits`): each image ``root / filenames[i]`` read
    by :func:`~fashionlab.datasets.images.load_resized` (``size`` x ``size``, bilinear, no crop).

    Returns the numpy array ``(N, 3, S, S)`` / ``(N, S, S, 3)``, decoded now, or a :class:`StreamingArray` that
    indexes the same way and decodes on indexing. ``stream``, ``mode``, ``real``, ``workers``, ``prefetch``:
    as :func:`image_source`; ``source`` (the file list's name) is added to the streamed errors."""
    if layout not in ("chw", "hwc"):
        raise ValueError(f"layout must be 'chw' or 'hwc', got {layout!r}")
    if stream is None:
        stream = stream_default(mode, real)
    if stream:
        return StreamingArray(root, filenames, size, layout, source=source, workers=workers, prefetch=prefetch)
    s = int(size)
    if not len(filenames):
        return np.zeros((0, 3, s, s) if layout == "chw" else (0, s, s, 3), dtype=np.uint8)
    imgs = np.stack([load_resized(Path(root) / f, s) for f in filenames])
    return np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)) if layout == "chw" else imgs
