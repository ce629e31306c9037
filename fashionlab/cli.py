"""The ``fashionlab`` command line.

``fashionlab synth fashionai --out DIR --num-images N --seed S [--image-size PX]``
    render a FashionSynth dataset in the FashionAI and ASEN split formats (docs/formats.md §5.1, §5.2).
``fashionlab synth shop --out DIR --num-images N --seed S [--image-size PX] [--designs D]``
    render paper 04's Shopping100k stand-in in the ADDE split layout (docs/formats.md §5.6).
``fashionlab synth multilabel --out DIR --num-images N --seed S [--image-size PX]``
    render paper 05's DeepFashion stand-in (several classes per attribute group) in the DeepFashion list files
    (docs/formats.md §5.3) and ASEN's DeepFashion split files (§5.1).
``fashionlab synth outfit --out DIR --scenes N --seed S [--image-size PX] [--crop-size PX]``
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


def _synth(args) -> int:
    from .synth import generate_fashionai

    stats = generate_fashionai(Path(args.out), num_images=args.num_images, seed=args.seed,
                               image_size=args.image_size, progress=not args.quiet)
    print(f"wrote {stats['num_images']} images to {args.out} (rendering {stats['images_per_second']:.0f} images/s "
          f"per core; {stats['written_per_second']:.0f} images/s with JPEG encoding and writing)")
    return 0


def _synth_shop(args) -> int:
    from .synth import generate_shop

    stats = generate_shop(Path(args.out), num_images=args.num_images, seed=args.seed, image_size=args.image_size,
                          designs=args.designs, progress=not args.quiet)
    print(f"wrote {stats['num_images']} images to {args.out} (rendering {stats['images_per_second']:.0f} images/s "
          f"per core with masks; {stats['written_per_second']:.0f} images/s with encoding and writing)")
    return 0


def _synth_multilabel(args) -> int:
    from .synth import generate_multilabel

    stats = generate_multilabel(Path(args.out), num_images=args.num_images, seed=args.seed,
                                image_size=args.image_size, progress=not args.quiet, workers=args.workers)
    print(f"wrote {stats['num_images']} images to {args.out} (rendering {stats['images_per_second']:.0f} images/s "
          f"per core with the visibility checks; {stats['written_per_second']:.0f} images/s with encoding and "
          f"writing)")
    return 0


def _synth_outfit(args) -> int:
    from .synth.outfit import run_outfit_cli

    run_outfit_cli(args)
    return 0


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

    s = sub.add_parser("synth", help="render a FashionSynth dataset in a real dataset's format")
    ssub = s.add_subparsers(dest="preset", required=True)
    fa = ssub.add_parser("fashionai", help="FashionAI attributes; ASEN split files and FashionAI label.csv")
    fa.add_argument("--out", required=True, help="output folder")
    fa.add_argument("--num-images", type=int, required=True)
    fa.add_argument("--seed", type=int, default=0)
    fa.add_argument("--image-size", type=int, default=128, help="canvas side in pixels (default 128)")
    fa.add_argument("--quiet", action="store_true")
    fa.set_defaults(func=_synth)
    sh = ssub.add_parser("shop", help="paper 04's shop dataset (Shopping100k stand-in); ADDE split files")
    sh.add_argument("--out", required=True, help="output folder")
    sh.add_argument("--num-images", type=int, required=True)
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--image-size", type=int, default=128, help="canvas side in pixels (default 128)")
    sh.add_argument("--designs", type=int, default=None, help="draw the images from a catalogue of D designs")
    sh.add_argument("--quiet", action="store_true")
    sh.set_defaults(func=_synth_shop)
    ml = ssub.add_parser("multilabel", help="paper 05's multi-label dataset (DeepFashion stand-in); DeepFashion "
                                            "list files and ASEN split files")
    ml.add_argument("--out", required=True, help="output folder")
    ml.add_argument("--num-images", type=int, required=True)
    ml.add_argument("--seed", type=int, default=0)
    ml.add_argument("--image-size", type=int, default=64, help="canvas side in pixels (default 64)")
    ml.add_argument("--workers", type=int, default=1)
    ml.add_argument("--quiet", action="store_true")
    ml.set_defaults(func=_synth_multilabel)
    of = ssub.add_parser("outfit", help="paper 06's outfit scenes (object types, categories, attributes); "
                                        "DeepFashion2 + COCO boxes and DeepFashion-format crops")
    of.add_argument("--out", required=True, help="output folder")
    of.add_argument("--scenes", type=int, required=True, help="number of scenes")
    of.add_argument("--seed", type=int, default=0)
    of.add_argument("--image-size", type=int, default=128, help="scene side in pixels (default 128)")
    of.add_argument("--crop-size", type=int, default=64, help="stage-2 crop side in pixels (default 64)")
    of.add_argument("--workers", type=int, default=None, help="processes (default: 2 for 400+ scenes)")
    of.add_argument("--quiet", action="store_true")
    of.set_defaults(func=_synth_outfit)

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
