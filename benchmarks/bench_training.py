"""Training throughput: images per second of a forward + backward + optimiser step, per model and input size.

Prints a table (no assertions): the bare backbones behind a pooled embedding (``GlobalPoolEmbedding``), fp32 on
this machine's CPU, and on CUDA (with AMP and channels_last, as ``fashionlab.engine.fit`` uses them) when a GPU is
present. Paper 01's models (notebooks 01-02, default-mode
sizes: SmallCNN width 16 at 64 px) sit next to their bare backbone. Later notebooks add their models to ``MODELS``. Run: ``python benchmarks/bench_training.py [--quick]``.
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


class _Paper01(torch.nn.Module):
    """Paper 01's models (notebooks 01-02) as the benchmark sees them: ``cond(x, c)`` with every image under a
    dimension (cycling through the eight), plus the recognition logits where the model has a recognition head."""

    def __init__(self, method: str):
        super().__init__()
        from fashionlab.experiments import paper01
        from fashionlab.taxonomy import FASHIONAI

        self.num_dims = len(FASHIONAI.attributes)
        self.model = paper01.build_model(method, paper01.PAPER01_CONFIGS["default"], FASHIONAI.num_values)

    def forward(self, x):
        c = torch.arange(len(x), device=x.device) % self.num_dims
        out = self.model.cond(x, c)
        rec = getattr(self.model, "rec", None)
        if rec is not None:
            out = torch.cat([out, self.model.logits(x)], dim=1)
        return out


PAPER01_METHODS = ("SC", "MC", "MC-Rec+Ret", "SiaNet", "TriNet", "Att-TriNet", "Att-TriNet+Reg", "CSN", "MTL Ret+Reg")

#: (name, input size, builder)
MODELS = [
    ("SmallCNN(w=16) embedding (bare)", 64, lambda: _embed(SmallCNN(width=16))),
    *[(f"paper 01 {m}", 64, (lambda m=m: _Paper01(m))) for m in PAPER01_METHODS],
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
    print(f"{'model':36s} {'input':>6s} {'device':>7s} {'images/s':>10s}")
    for name, size, build in MODELS:
        for dev in devices:
            if dev.type == "cpu" and size >= 224 and args.quick:
                continue
            steps = 3 if (dev.type == "cpu" and (args.quick or size >= 112)) else 10
            ips = throughput(build(), size, args.batch if dev.type == "cuda" or size < 200 else 16, dev, steps)
            print(f"{name:36s} {size:>5d}px {dev.type:>7s} {ips:>10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
