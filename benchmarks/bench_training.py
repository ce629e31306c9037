"""Training throughput: images per second of a forward + backward + optimiser step, per model and input size.

Prints a table (no assertions): the bare backbones behind a pooled embedding (``GlobalPoolEmbedding``), fp32 on
this machine's CPU, and on CUDA (with AMP and channels_last, as ``fashionlab.engine.fit`` uses them) when a GPU is
present. Later notebooks add their models to ``MODELS``. Run: ``python benchmarks/bench_training.py [--quick]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashionlab.engine import resolve_amp  # noqa: E402
from fashionlab.models import GlobalPoolEmbedding, SmallCNN, backbone  # noqa: E402


def _embed(net, dim=64):
    return GlobalPoolEmbedding(net, dim)


#: (name, input size, builder)
MODELS = [
    ("SmallCNN(w=32) embedding", 64, lambda: _embed(SmallCNN(width=32))),
    ("SmallCNN(w=32) embedding", 128, lambda: _embed(SmallCNN(width=32))),
    ("ResNet-18 to layer3 embedding", 112, lambda: _embed(backbone("resnet18"))),
    ("ResNet-50 to layer3 embedding", 224, lambda: _embed(backbone("resnet50"))),
]


def throughput(model, size: int, batch: int, dev: torch.device, steps: int, warmup: int = 2) -> float:
    """Images per second of training steps on random images (the data pipeline is not measured)."""
    model = model.to(dev).train()
    cuda = dev.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    amp = resolve_amp(None, dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=dev)
    if cuda:
        x = x.to(memory_format=torch.channels_last)
    for i in range(warmup + steps):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss = model(x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if cuda:
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, skip the ResNet-50 row on CPU")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; batch {args.batch}; "
          "random inputs, forward + backward + Adam step")
    print(f"{'model':34s} {'input':>6s} {'device':>7s} {'images/s':>10s}")
    for name, size, build in MODELS:
        for dev in devices:
            if dev.type == "cpu" and size >= 224 and args.quick:
                continue
            steps = 3 if (dev.type == "cpu" and (args.quick or size >= 112)) else 10
            ips = throughput(build(), size, args.batch if dev.type == "cuda" or size < 200 else 16, dev, steps)
            print(f"{name:34s} {size:>5d}px {dev.type:>7s} {ips:>10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
