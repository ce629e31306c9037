"""Which pretraining objective? Linear probes of every FashionAI attribute on frozen features (issue 21).

For each objective of :data:`fashionlab.pretrain.OBJECTIVES` this pretrains the default-mode SmallCNN of width 16
with the ``default`` pretraining config (cached: a second run only probes), then fits a linear classifier per
FashionAI attribute on the pooled features of a probe set rendered with its own seed (neither the pretraining
corpus nor any experiment's data) and prints the test accuracy per attribute, the mean, and the one-time cost.
The untrained network (the scratch start) is the first row. The default objective of
:class:`fashionlab.pretrain.PretrainConfig` is the best of those that read no label the experiments score (only
``contrastive``: ``generic`` and ``both`` see garment type, colour and pattern); this measurement, not any
experiment's comparison, decided it, and it says what the label-reading objectives would add.

    python benchmarks/pretrain_objectives.py [--width 16] [--probe-train 3000] [--probe-test 1500]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch


def main(argv=None) -> int:
    from fashionlab import pretrain as P
    from fashionlab.engine import seed_everything
    from fashionlab.models.backbones import SmallCNN
    from fashionlab.synth import ATTRIBUTES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--probe-train", type=int, default=3000)
    ap.add_argument("--probe-test", type=int, default=1500)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    n = args.probe_train + args.probe_test
    images, labels = P.pretraining_corpus(n, 64, seed=P.PROBE_SEED)
    y = labels["values"]

    def probe(backbone):
        f = P.pooled_features(backbone, images)
        return [P.linear_probe(f[:args.probe_train], y[:args.probe_train, j], f[args.probe_train:],
                               y[args.probe_train:, j]) for j in range(len(ATTRIBUTES))]

    rows = []
    seed_everything(0)
    rows.append(("scratch (untrained)", probe(SmallCNN(args.width)), 0.0))
    for obj in P.OBJECTIVES:
        cfg = dataclasses.replace(P.PRETRAIN_CONFIGS["default"], objective=obj)
        t0 = time.perf_counter()
        net, hist, _ = P.pretrain("smallcnn", args.width, cfg=cfg, mode="default", verbose=False, progress=False)
        cost = sum(hist["seconds"]) if len(hist) else time.perf_counter() - t0  # the training, cached or not
        rows.append((obj, probe(net.backbone), cost))
    short = [a.replace("_design", "").replace("_length", "_len") for a in ATTRIBUTES]
    print(f"linear probes, SmallCNN width {args.width}, probe set {args.probe_train} train / {args.probe_test} test "
          f"(seed {P.PROBE_SEED}), accuracy %")
    print(f"{'start':<22}" + "".join(f"{s:>11}" for s in short) + f"{'mean':>8}{'pretrain s':>12}")
    for name, acc, cost in rows:
        print(f"{name:<22}" + "".join(f"{a:>11.1f}" for a in acc) + f"{sum(acc) / len(acc):>8.1f}{cost:>12.0f}")
    best = max(rows[1:], key=lambda r: sum(r[1]))
    label_free = max((r for r in rows[1:] if r[0] == "contrastive"), key=lambda r: sum(r[1]))
    mean = lambda r: sum(r[1]) / len(r[1])  # noqa: E731
    print(f"best mean: {best[0]} ({mean(best):.1f}); best that reads no scored label: {label_free[0]} "
          f"({mean(label_free):.1f}, {mean(label_free) - mean(rows[0]):+.1f} over the untrained network)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
