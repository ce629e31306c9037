"""The ``fashionlab`` command line.

``fashionlab synth fashionai --out DIR --num-images N --seed S [--image-size PX] [--preset P] [--workers W]``
    render a FashionSynth dataset in the FashionAI and ASEN split formats (docs/formats.md §5.1, §5.2).
``fashionlab synth shop --out DIR --num-images N --seed S [--image-size PX] [--designs D] [--missing-rate R] [--workers W]``
    render paper 04's Shopping100k stand-in in the ADDE split layout (docs/formats.md §5.6).
``fashionlab synth multilabel --out DIR --num-images N --seed S [--image-size PX] [--workers W]``
    render paper 05's DeepFashion stand-in (several classes per attribute group) in the DeepFashion list files
    (docs/formats.md §5.3) and ASEN's DeepFashion split files (§5.1).
``fashionlab synth outfit --out DIR --scenes N --seed S [--image-size PX] [--crop-size PX] [--workers W]``
    render paper 06's outfit scenes (one mannequin, 2-4 garments, a box per object) with DeepFashion2 per-image
    JSON and COCO detection JSON (docs/formats.md §5.4), and the stage-2 crops in the DeepFashion list files (§5.3).
``fashionlab reproduce NAME|all [--mode quick|default|full] [--data DIR] [--seed S] [--out DIR] [--device D] [--retrain]``
    run a registered experiment and write ``NAME.json`` and ``NAME.md`` (docs/architecture.md, "Results file").
    Trained models are cached under the data folder and loaded by a later run; ``--retrain`` trains again.
``fashionlab list``
    the registered experiments and the notebooks they belong to.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import MODES, results_dir


def _reproduce(args) -> int:
    from . import experiments

    todo = experiments.names() if args.name == "all" else [args.name]
    for name in todo:
        experiments.get(name)  # unknown names fail before anything runs
    out = Path(args.out) if args.out else results_dir()
    from .engine import device

    try:
        dev = device(args.device)  # resolved once, for every experiment of this command; prints what it picked
    except RuntimeError as e:  # asked for CUDA/MPS where there is none
        raise ValueError(str(e)) from None
    for i, name in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name} (mode {args.mode or 'from FASHIONLAB_MODE'}) ...", flush=True)
        t0 = time.perf_counter()
        experiments.run(name, mode=args.mode, data=args.data, seed=args.seed, out=out, progress=not args.quiet,
                        device=dev, retrain=args.retrain)
        print(f"[{i}/{len(todo)}] {name} done in {time.perf_counter() - t0:.0f} s -> "
              f"{out / (name + '.json')}, {out / (name + '.md')}", flush=True)
    print(f"results are in {out}/")
    return 0


def _list(args) -> int:
    from . import experiments

    for name in experiments.names():
        exp = experiments.get(name)
        print(f"{name:24s} {exp.notebook:28s} {exp.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fashionlab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    from .synth.cli import add_synth_parser

    add_synth_parser(sub)  # `synth fashionai|shop|multilabel|outfit`, each preset's options declared beside it

    r = sub.add_parser("reproduce", help="run a registered experiment (or 'all') and write NAME.json/NAME.md")
    r.add_argument("name")
    r.add_argument("--mode", choices=MODES, default=None, help="default: $FASHIONLAB_MODE or 'default'")
    r.add_argument("--data", default=None, help="a real dataset folder (ASEN split layout) instead of FashionSynth")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default=None, help="results folder (default: results/)")
    r.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:N, mps or auto (default: $FASHIONLAB_DEVICE, else CUDA, then MPS, then CPU)")
    r.add_argument("--retrain", action="store_true",
                   help="train every model again instead of loading the trained models cached under the data folder")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=_reproduce)

    ls = sub.add_parser("list", help="list the registered experiments")
    ls.set_defaults(func=_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, FileNotFoundError, ValueError) as e:
        print(f"fashionlab: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
