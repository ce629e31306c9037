"""Streaming vs the in-memory cache (issue 20): images per second and peak memory of one pass over a FashionSynth set.

Renders (once, under the data folder, like every FashionSynth set) a FashionAI-preset set of ``--images`` images
(default 20,000) at ``--size`` px (default 224), then times one epoch of ``--batch``-image batches in a shuffled
order, each configuration in a fresh subprocess so that peak memory figures do not mix:

* ``cached``: :class:`~fashionlab.datasets.TensorImages` decodes every image into memory, then the batches are
  indexed out of it (the time includes the decoding);
* ``stream wN``: :class:`~fashionlab.datasets.StreamingImages` with ``N`` ``DataLoader`` workers (``--workers``,
  default 0 1 2), the batches prefetched (:meth:`~fashionlab.datasets.StreamingImages.prefetch`) and taken
  with ``batch(ids)`` as a recipe's training step does.

Prints images/s, the main process's peak RSS and the largest worker's (``resource.getrusage``). Run:
``python benchmarks/bench_streaming.py [--images N] [--size S] [--workers 0 1 2]``.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def dataset(n: int, size: int) -> tuple[Path, list[str]]:
    """The FashionSynth folder (rendered on first use) and every image name of its three splits."""
    from fashionlab.datasets import read_filenames
    from fashionlab.synth import ensure_fashionai

    root = ensure_fashionai(num_images=n, seed=0, image_size=size, progress=False)
    names: list[str] = []
    for s in ("train", "valid", "test"):
        names += list(read_filenames(root / f"filenames_{s}.txt"))
    return root, names


def one(config: str, n: int, size: int, batch: int) -> dict:
    """Time one pass of ``config`` (``cached`` or ``stream<W>``) in this process; its figures as a dict."""
    import numpy as np
    import torch

    from fashionlab.datasets import StreamingImages, TensorImages

    torch.set_num_threads(1)
    root, names = dataset(n, size)
    order = np.random.default_rng(0).permutation(len(names))
    batches = [order[s:s + batch] for s in range(0, len(order), batch)]
    t = time.perf_counter()
    if config == "cached":
        images = TensorImages(root, names, size)
        for ids in batches:
            images.batch(ids)
    else:
        images = StreamingImages(root, names, size, workers=int(config[len("stream"):]), prefetch=2)
        for ids in images.prefetch(batches, device="cpu"):
            images.batch(ids)
    sec = time.perf_counter() - t
    kb = 1024
    return {"config": config, "images": len(names), "seconds": sec, "images_per_s": len(names) / sec,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb,
            "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=20_000, help="images in the FashionSynth set (default 20000)")
    p.add_argument("--size", type=int, default=224, help="image size in px (default 224)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--one", help=argparse.SUPPRESS)  # a single configuration, in the child process
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.one, a.images, a.size, a.batch)))
        return
    t = time.perf_counter()
    root, names = dataset(a.images, a.size)  # render once, before any timing
    print(f"{len(names)} images at {a.size} px in {root} (ready in {time.perf_counter() - t:.0f} s); batches of "
          f"{a.batch}, one shuffled epoch per configuration, each in a fresh process")
    print(f"{'configuration':<16}{'images/s':>10}{'seconds':>10}{'peak RSS MB':>13}{'worker peak MB':>16}")
    for config in ["cached"] + [f"stream{w}" for w in a.workers]:
        cmd = [sys.executable, __file__, "--one", config, "--images", str(a.images), "--size", str(a.size),
               "--batch", str(a.batch)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        name = "cached" if config == "cached" else f"stream, {config[6:]} workers"
        worker = f"{r['worker_peak_rss_mb']:.0f}" if config not in ("cached", "stream0") else "-"
        print(f"{name:<16}{r['images_per_s']:>10.0f}{r['seconds']:>10.1f}{r['peak_rss_mb']:>13.0f}{worker:>16}",
              flush=True)


if __name__ == "__main__":
    main()
