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

:func:`image_source` is the one place that chooses streaming or the in-memory cache: streaming for real datasets
and ``full`` mode, the cache for FashionSynth in ``quick``/``default`` mode (where decoding everything once is
faster); ``FASHIONLAB_STREAM=1``/``0`` forces it, ``FASHIONLAB_WORKERS=N`` sets the workers.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .images import IMAGENET_MEAN, IMAGENET_STD, TensorImages, TwoScaleImages, _line_context, decode_square, downscale

__all__ = ["StreamingImages", "StreamingTwoScaleImages", "image_source", "stream_default", "default_workers",
           "triplet_ids"]


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

    def __repr__(self) -> str:
        return (f"StreamingTwoScaleImages({len(self)} images from {self.root}: {self.global_size} px global view, "
                f"{self.image_size} px high resolution, {self.workers} workers)")



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
