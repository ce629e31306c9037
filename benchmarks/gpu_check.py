"""``make gpu-check``: what a CUDA machine should run whenever one is at hand (issue 20, "full mode cannot rot").

1. ``pytest -m gpu``: the GPU-marked tests (AMP training, feature extraction and one full-mode step on CUDA).
2. One short experiment per paper on CUDA with mixed precision (``engine.fit``'s default there): the ``full``
   config's code path (paper-sized backbones, 224 px) with the counts scaled down
   (:func:`fashionlab.experiments.scaled_down`: a few thousand images, one epoch of ``--steps`` batches of the
   full batch size), into a temporary data folder; wall time and peak GPU memory per experiment.
3. Images/s of each experiment's full-mode network, training (forward + backward + Adam step, AMP and
   channels_last, the full batch size) and embedding (``engine.extract_features``), on random images at the
   full input size; peak GPU memory of each.

It ends with a table. Without CUDA it refuses at once (exit status 2) and runs nothing.

Run: ``python benchmarks/gpu_check.py [--steps 50] [--skip-tests] [--only asen,m3net]``.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: One experiment per paper (00: the triplet baseline; 01: retrieval; 03: asen; 04: part-search; 05: m3net;
#: 06: hls).
EXPERIMENTS = ("triplet-baseline", "retrieval", "asen", "part-search", "m3net", "hls")


def refuse_without_cuda() -> str | None:
    """The reason this check cannot run here, or ``None`` when CUDA is available."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover
        return f"gpu-check: cannot import torch ({e})"
    if not torch.cuda.is_available():
        return ("gpu-check: no CUDA device here (torch.cuda.is_available() is False; torch "
                f"{torch.__version__}, built with CUDA {torch.version.cuda or 'none'}). This check is for a machine "
                "with an NVIDIA GPU: run `make gpu-check` there. On a CPU, `make test` runs full mode's one-step "
                "test (tests/test_full_mode.py).")
    return None


def short_counts(name: str, steps: int, cfg) -> dict:
    """The counts of a short GPU run of ``name``: the full batch, one epoch of ``steps`` batches per stage,
    a few thousand images."""
    b = cfg.batch
    counts = {
        "triplet-baseline": dict(epochs=1, triplets_per_epoch=b * steps),
        "retrieval": dict(epochs=1, triplets_per_epoch=b * steps),
        "asen": dict(num_images=3000, epochs=1, stage2_epochs=1, triplets_per_epoch=b * steps, detail_epochs=0),
        "part-search": dict(num_images=3000, designs=1000, epochs=1, stage2_epochs=1, rounds=1,
                            regressor_epochs=10),
        "m3net": dict(num_images=3000, fai_num_images=3000, epochs=1, triplets_per_epoch=b * steps,
                      fai_epochs=1, fai_triplets_per_epoch=b * steps),
        "hls": dict(num_scenes=1000, epochs=1, det_epochs=1),
    }[name]
    return counts


def networks():
    """``(experiment, label, build, input size, images per training step)`` of every full-mode network timed:
    each experiment's backbone as its full config builds it, behind a pooled embedding."""
    from fashionlab.experiments.scaling import mode_config
    from fashionlab.models import GlobalPoolEmbedding, backbone, build_backbone

    out = []
    t = mode_config("triplet-baseline")
    out.append(("triplet-baseline", f"{t.backbone}/{t.stage} + embedding {t.dim}",
                lambda: GlobalPoolEmbedding(backbone(t.backbone, stage=t.stage), t.dim), t.input_size, 3 * t.batch))
    p = mode_config("retrieval")
    out.append(("retrieval", f"SmallCNN(w={p.width}) + embedding {p.dim}",
                lambda: GlobalPoolEmbedding(build_backbone("smallcnn", width=p.width), p.dim), p.input_size,
                3 * p.batch))
    a = mode_config("asen")
    out.append(("asen", f"{a.backbone}/{a.stage} global branch",
                lambda: GlobalPoolEmbedding(build_backbone(a.backbone, width=a.width, stage=a.stage), a.dim),
                a.global_size, 3 * a.batch))
    loc = a.local_backbone or a.backbone
    out.append(("asen", f"{loc}/{a.stage} local branch (crops)",
                lambda: GlobalPoolEmbedding(build_backbone(loc, width=a.width, stage=a.stage), a.dim),
                a.local_size, 3 * a.batch))
    s = mode_config("part-search")
    out.append(("part-search", f"SmallCNN(w={s.width}) + embedding {s.dim}",
                lambda: GlobalPoolEmbedding(build_backbone("smallcnn", width=s.width, output_stride=8), s.dim),
                s.input_size, s.batch))
    m = mode_config("m3net")
    out.append(("m3net", f"{m.backbone}/{m.stage} + embedding {m.dim}",
                lambda: GlobalPoolEmbedding(build_backbone(m.backbone, width=m.width, stage=m.stage,
                                                           output_stride=m.output_stride), m.dim),
                m.image_size, 3 * m.batch))
    h = mode_config("hls")
    out.append(("hls", f"{h.backbone}(w={h.width}) crops",
                lambda: GlobalPoolEmbedding(build_backbone(h.backbone, width=h.width, stage=h.stage,
                                                           output_stride=h.output_stride), h.fc_dim),
                h.crop_size, h.batch))
    return out


def time_network(build, size: int, batch: int, steps: int = 20, warmup: int = 3) -> dict:
    """Training and embedding images/s of ``build()`` on CUDA (AMP as ``engine.fit`` resolves it, channels_last),
    and the peak GPU memory of training."""
    import torch

    from fashionlab.engine import extract_features, resolve_amp

    dev = torch.device("cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = build().to(dev).to(memory_format=torch.channels_last).train()
    amp = resolve_amp(None, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
            loss = model(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    torch.cuda.synchronize()
    train_ips = batch * steps / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20
    eb = max(batch, 64)
    xs = [torch.randn(eb, 3, size, size) for _ in range(4)]
    extract_features(model, xs[:1], device=dev)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    feats = extract_features(model, xs, device=dev)
    torch.cuda.synchronize()
    embed_ips = eb * len(xs) / (time.perf_counter() - t0)
    ok = bool(torch.isfinite(feats).all()) and math.isfinite(float(loss))
    del model, opt, x
    return {"train img/s": train_ips, "embed img/s": embed_ips, "peak MiB": peak, "finite": ok}


def run_experiment(name: str, steps: int, data_root: Path) -> dict:
    """One short full-mode run of ``name`` on CUDA: wall time, peak GPU memory, finite rows."""
    import torch

    from fashionlab import experiments
    from fashionlab.experiments import scaled_down
    from fashionlab.experiments.scaling import MODE_SIZED_DATA, mode_config, small_fashionai

    cfg = mode_config(name)
    cfg = scaled_down(cfg, **short_counts(name, steps, cfg))
    options = {"config": cfg}
    if name in MODE_SIZED_DATA:
        options["data"] = small_fashionai(3000)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = experiments.run(name, mode="full", seed=0, out=None, progress=False, device="cuda", **options)
    seconds = time.perf_counter() - t0
    values = [r["value"] for r in res.rows]
    finite = sum(v is not None and math.isfinite(v) for v in values)
    return {"seconds": seconds, "peak MiB": torch.cuda.max_memory_allocated() / 2**20, "rows": len(values),
            "finite rows": finite}


def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(cols)]
    line = lambda xs: "| " + " | ".join(x.ljust(w) for x, w in zip(xs, widths)) + " |"  # noqa: E731
    return "\n".join([line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="training batches per stage of each experiment (<= 300)")
    ap.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    ap.add_argument("--only", default="", help="comma-separated experiments (default: one per paper)")
    args = ap.parse_args(argv)
    reason = refuse_without_cuda()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    if not 1 <= args.steps <= 300:
        ap.error("--steps must be between 1 and 300")
    import torch

    names = [n for n in args.only.split(",") if n] or list(EXPERIMENTS)
    print(f"gpu-check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}",
          flush=True)
    status = 0
    if not args.skip_tests:
        print("\n== pytest -m gpu", flush=True)
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", "tests"], cwd=ROOT)
        print(f"pytest -m gpu: exit status {rc}")
        status = status or rc

    os.environ.setdefault("FASHIONLAB_PROGRESS", "0")
    runs = []
    with tempfile.TemporaryDirectory(prefix="fashionlab-gpu-check-") as tmp:
        os.environ["FASHIONLAB_DATA"] = tmp  # fresh data and trained-model cache: nothing is loaded, all trains
        for name in names:
            print(f"\n== {name}: full mode, {args.steps} steps per stage, CUDA + AMP", flush=True)
            try:
                r = run_experiment(name, args.steps, Path(tmp))
                r["status"] = "ok" if r["finite rows"] == r["rows"] else "non-finite rows"
            except Exception as e:  # report and go on: the table shows every experiment
                r = {"status": f"FAILED: {type(e).__name__}: {str(e)[:120]}"}
                status = status or 1
            runs.append({"experiment": name, **r})
            print(runs[-1], flush=True)

    nets = []
    for exp, label, build, size, batch in networks():
        if exp not in names:
            continue
        try:
            r = time_network(build, size, batch)
        except Exception as e:
            r = {"finite": f"FAILED: {type(e).__name__}: {str(e)[:120]}"}
            status = status or 1
        nets.append({"experiment": exp, "network": label, "px": size, "batch": batch, **r})
        print(nets[-1], flush=True)

    print("\n## Experiments (full-mode code path, scaled counts, CUDA + AMP)\n")
    print(_table(runs, ["experiment", "status", "seconds", "peak MiB", "rows", "finite rows"]))
    print("\n## Full-mode networks: images/s (AMP, channels_last)\n")
    print(_table(nets, ["experiment", "network", "px", "batch", "train img/s", "embed img/s", "peak MiB", "finite"]))
    return status


if __name__ == "__main__":
    sys.exit(main())
