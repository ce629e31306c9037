"""One process of tests/test_distributed.py: train a tiny model with engine.fit and embed with extract_features.

Run as ``python tests/_ddp_worker.py OUT`` alone (no process group) or as each of 2 processes with torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Writes ``OUT/w<world>-r<rank>.pt``.

The model has no BatchNorm on purpose: on CPU (gloo) there is no SyncBatchNorm, so each rank would normalise
with its own shard's batch statistics and the losses would differ from one process's by more than rounding.
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fashionlab import distributed, engine
from fashionlab.metrics import attribute_map


def main(out: Path) -> None:
    torch.set_num_threads(1)
    distributed.init_from_env()
    world, rank = distributed.world_size(), distributed.rank()
    g = torch.Generator().manual_seed(123)
    X = torch.randn(96, 12, generator=g)
    y = torch.randint(0, 5, (96,), generator=g)

    # (a) training: one global batch per epoch (so the epoch's loss is the step's loss), drawn from the global
    # RNGs that fit reseeds from (seed, epoch): every rank draws the same ids and fit hands each its shard.
    # Odd sizes (25, 33) give uneven shards (13 + 12, 17 + 16): the weighting by share keeps them exact.
    sizes = [24, 25, 32, 33, 24, 40]

    def batches(epoch):
        ids = np.random.permutation(len(X))[: sizes[epoch]]
        return [ids]

    def step(model, ids):
        ids = torch.as_tensor(np.asarray(ids))
        logits = model(X[ids])
        return F.cross_entropy(logits, y[ids]), {"acc": (logits.argmax(1) == y[ids]).float().mean()}

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 5))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    hist = engine.fit(model, step, batches, opt, epochs=len(sizes), device="cpu", progress=False, verbose=False,
                      seed=7)

    # (b) evaluation of the same weights (a fresh model from a fixed seed): batches of 10, the last of 6, and one
    # of a single row (smaller than the world: embedded whole on every rank)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8))
    rows = [X[s:s + 10] for s in range(0, 90, 10)] + [X[90:95], X[95:96]]
    feats = engine.extract_features(net, iter(rows), device="cpu")
    attr = torch.arange(96) % 3
    val = y % 2
    res = attribute_map(feats[:32], attr[:32], val[:32], feats[32:], attr[32:], val[32:])

    torch.save({"world": world, "rank": rank, "loss": hist["loss"], "acc": hist["train_acc"],
                "weights": {k: v.clone() for k, v in model.state_dict().items()},
                "features": feats, "map": {str(k): float(v) for k, v in res.items()}},
               out / f"w{world}-r{rank}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
