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
``fashionlab reproduce NAME|all [--mode quick|default|full] [--data DIR] [--seed S] [--out DIR] [--device D] [--retrain] [--resume] [--pretrained scratch|imagenet|fashionsynth] [--download-weights]``
    run a registered experiment and write ``NAME.json`` and ``NAME.md`` (docs/architecture.md, "Results file").
    ``--pretrained imagenet`` (or ``FASHIONLAB_PRETRAINED=imagenet``) starts every torchvision backbone from
    torchvision's ImageNet weights (``full`` mode's; a SmallCNN config is refused), checked before anything
    trains; the default is ``scratch``. The start is recorded in the results files.
    Trained models are cached under the data folder and loaded by a later run; ``--retrain`` trains again.
    The results folder and the checkpoint folder (``<data>/checkpoints``) are checked before anything runs.
    Each model in training keeps a checkpoint of its last complete epoch; after an interruption ``--resume``
    continues from there and ends where an uninterrupted run ends.
    Under ``torchrun --nproc_per_node=N -m fashionlab reproduce ...`` the training is data-parallel and rank 0 alone
    prints and writes (docs/distributed.md).
``fashionlab pretrain [--mode M] [--width W ...] [--objective O] [--device D] [--retrain]``
    pretrain the mode's backbones once on a FashionSynth corpus no experiment evaluates on (self-supervised by
    default) and cache them under the data folder; ``reproduce --pretrained fashionsynth`` starts from them.
``fashionlab check-data DIR``
    verify a dataset folder against its manifest (sizes and hashes) and name every missing or damaged file.
``fashionlab list``
    the registered experiments and the notebooks they belong to.

Errors are one line on stderr naming the file or folder (exit status 2); ``--debug`` (anywhere on the line, or
``FASHIONLAB_DEBUG=1``) adds the traceback. SIGTERM is handled like Ctrl-C (exit status 143, 130 for Ctrl-C):
temporary files are removed on the way out.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .config import MODES, data_dir, results_dir

__all__ = ["build_parser", "main", "check_output_dir", "Terminated"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM, so that ``finally`` blocks and the cleanup that
    Ctrl-C triggers (temporary files and folders) run as well."""


def check_output_dir(path: str | os.PathLike, what: str) -> Path:
    """Check, before any work starts, that the folder ``path`` exists or can be created and that files can be
    written in it: create what is missing, write and remove a probe file, then remove the folders it created
    (nothing is left behind). Raises ``OSError`` whose message names ``what`` (e.g. "results folder (--out)")
    and the path that stands in the way."""
    path = Path(path).expanduser()
    probe_from = path
    while not probe_from.exists():
        if probe_from.is_symlink():  # a dangling link
            raise OSError(f"cannot use {path} as the {what}: {probe_from} is a broken symbolic link")
        if probe_from.parent == probe_from:
            break
        probe_from = probe_from.parent
    if probe_from.exists() and not probe_from.is_dir():
        raise NotADirectoryError(f"cannot use {path} as the {what}: {probe_from} is a file, not a folder")
    created = []
    try:
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except OSError as exc:
                raise type(exc)(f"cannot create the {what} {path}: {d}: {exc.strerror or exc}") from None
            created.append(d)
        try:
            fd, probe = tempfile.mkstemp(prefix=".fashionlab-write-test-", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise type(exc)(f"cannot write into the {what} {path}: {exc.strerror or exc}") from None
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
    return path


def _reproduce(args) -> int:
    from . import distributed, experiments
    from .engine import device, run_checkpoints

    if getattr(args, "download_weights", False):  # read by models.backbone(pretrained=True), in workers too
        os.environ["FASHIONLAB_DOWNLOAD_WEIGHTS"] = "1"
    if getattr(args, "pretrained", None):  # read by experiments.registry.with_start, in workers too
        os.environ["FASHIONLAB_PRETRAINED"] = args.pretrained
    todo = experiments.names() if args.name == "all" else [args.name]
    for name in todo:
        experiments.get(name)  # unknown names fail before anything runs
    out = Path(args.out) if args.out else results_dir()
    main = distributed.is_main()  # under torchrun only rank 0 checks and writes (docs/distributed.md)
    failure = None
    if main:
        try:
            check_output_dir(out, "results folder" + (" (--out)" if args.out else " ($FASHIONLAB_RESULTS or results/)"))
            check_output_dir(data_dir() / "checkpoints", "checkpoint folder (under $FASHIONLAB_DATA or data/)")
        except OSError as e:
            failure = e
    if distributed.broadcast_object(failure is not None):
        if failure is not None:
            failure.barrier_after_report = True  # the others wait until it is printed (torchrun then stops all)
            raise failure
        distributed.barrier()  # rank 0 reports the error
        return 2

    try:
        dev = device(args.device, verbose=main)  # resolved once, for every experiment of this command
    except RuntimeError as e:  # asked for CUDA/MPS where there is none
        raise ValueError(str(e)) from None
    for i, name in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name} (mode {args.mode or 'from FASHIONLAB_MODE'}) ...", flush=True)
        t0 = time.perf_counter()
        with run_checkpoints(resume=args.resume):
            experiments.run(name, mode=args.mode, data=args.data, seed=args.seed, out=out if main else None,
                            progress=not args.quiet and main, device=dev, retrain=args.retrain)
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


def _add_check_data(sub) -> None:
    """``fashionlab pretrain [--mode M] [--width W ...] [--objective O] [--device D] [--retrain]``
    pretrain the mode's backbones once on a FashionSynth corpus no experiment evaluates on (self-supervised by
    default) and cache them under the data folder; ``reproduce --pretrained fashionsynth`` starts from them.
``fashionlab check-data DIR``, declared by :mod:`fashionlab.datasets.manifest` (its
    ``add_check_data_parser`` and ``run_check_data``); absent from the command line while that module is."""
    try:
        from .datasets import manifest
    except ImportError:
        return
    add = getattr(manifest, "add_check_data_parser", None)
    run = getattr(manifest, "run_check_data", None)
    if add is None or run is None:
        return
    parser = add(sub)
    if parser is not None and parser.get_default("func") is None:
        parser.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fashionlab", description=__doc__.split("\n")[0])
    p.add_argument("--debug", action="store_true",
                   help="print the traceback of an error too (also accepted after the sub-command)")
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
    r.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the last complete epoch of the model it was training "
                        "(same name, mode, data and seed); it ends where an uninterrupted run ends")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--download-weights", action="store_true",
                   help="let torchvision download a missing ImageNet weights file into the torch cache "
                        "(same as FASHIONLAB_DOWNLOAD_WEIGHTS=1; default: offline, the error says where to put it)")
    r.add_argument("--pretrained", choices=("scratch", "imagenet", "fashionsynth"), default=None,
                   help="start of every backbone: scratch, torchvision's ImageNet weights, or fashionlab's own "
                        "pretraining on FashionSynth (`fashionlab pretrain`; trained once when missing) (same as "
                        "FASHIONLAB_PRETRAINED=...; default: $FASHIONLAB_PRETRAINED, else scratch). The ImageNet "
                        "start needs torchvision backbones (--mode full) and their weights files (see "
                        "--download-weights); both are checked before anything trains")
    r.set_defaults(func=_reproduce)

    pt = sub.add_parser("pretrain", help="pretrain the backbones of a mode on FashionSynth once (cached)")
    pt.add_argument("--mode", choices=MODES, default=None, help="default: $FASHIONLAB_MODE or 'default'")
    pt.add_argument("--width", type=int, action="append", default=None,
                    help="only the SmallCNN of this width (repeatable; default: every backbone of the mode's configs)")
    pt.add_argument("--objective", choices=("contrastive", "generic", "both"), default=None,
                    help="default: the mode's pretraining config (contrastive)")
    pt.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps or auto")
    pt.add_argument("--retrain", action="store_true", help="pretrain again instead of loading the cached weights")
    pt.set_defaults(func=_pretrain)

    _add_check_data(sub)

    ls = sub.add_parser("list", help="list the registered experiments")
    ls.set_defaults(func=_list)
    return p


def _pretrain(args) -> int:
    """``fashionlab pretrain``: every backbone of the mode's configs (or the ``--width`` ones), trained once on the
    FashionSynth corpus and cached (:mod:`fashionlab.pretrain`); prints each one's cost and the total."""
    import dataclasses
    import time

    from . import pretrain as P
    from .config import get_mode
    from .engine import device as pick_device

    mode = get_mode(args.mode)
    cfg = P.PRETRAIN_CONFIGS[mode]
    if args.objective:
        cfg = dataclasses.replace(cfg, objective=args.objective)
    specs = ([("smallcnn", w, None) for w in args.width] if args.width else
             [s for s in P.mode_backbones(mode) if mode == "full" or s[0] == "smallcnn"])
    dev = pick_device(args.device, verbose=False)
    print(f"pretraining on FashionSynth ({mode} mode, {cfg.objective}, {cfg.num_images} images at "
          f"{cfg.image_size} px, {cfg.epochs} epochs, on {dev}): {len(specs)} backbone(s)")
    t0 = time.perf_counter()
    for name, width, stage in specs:
        _, hist, seconds = P.pretrain(name, width, stage, mode=mode, cfg=cfg, device=dev, retrain=args.retrain)
        what = f"{name} width {width}" if name == "smallcnn" else f"{name} cut at {stage}"
        print(f"  {what}: {P.pretrain_tag(name, width, stage, cfg)}, {seconds:.0f} s here "
              f"({sum(hist['seconds']):.0f} s of training when it was trained)")
    print(f"done in {time.perf_counter() - t0:.0f} s; the experiments use these weights with --pretrained fashionsynth")
    return 0


def _one_line(exc: BaseException) -> str:
    """The error as one line: an ``OSError`` as ``PATH: what went wrong``, others by their message."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return f"{where}: {exc.strerror}"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    text = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError, KeyError, LookupError, FloatingPointError)):
        text = f"{type(exc).__name__}: {text}"
    return text[:2000]


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the ``fashionlab`` command line; returns the exit status (0 done, 2 error, 130 Ctrl-C, 143 SIGTERM).

    Every error reaches the user as one line on stderr naming the file or folder; ``--debug`` (anywhere in
    ``argv``) or ``FASHIONLAB_DEBUG=1`` prints the traceback before it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FASHIONLAB_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    previous = None
    with contextlib.suppress(ValueError):  # not in the main thread: leave SIGTERM alone
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    quiet_rank = contextlib.nullcontext()
    try:
        if getattr(args, "command", None) == "reproduce":
            from . import distributed

            if distributed.init_from_env() and not distributed.is_main():  # torchrun: rank 0 alone prints the report
                quiet_rank = contextlib.redirect_stdout(open(os.devnull, "w"))  # noqa: SIM115
        with quiet_rank:
            return args.func(args)
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        sigterm = isinstance(e, Terminated)
        hint = ""
        if getattr(args, "command", None) == "reproduce" and not getattr(args, "resume", False):
            hint = "; the same command with --resume continues from the last complete epoch"
        print(f"fashionlab: interrupted ({'SIGTERM' if sigterm else 'Ctrl-C'}){hint}", file=sys.stderr)
        return 143 if sigterm else 130
    except Exception as e:  # noqa: BLE001  one line for the user; the traceback only under --debug
        if debug:
            traceback.print_exc()
        tip = "" if debug else " (--debug shows the traceback)"
        known = isinstance(e, (KeyError, ValueError, OSError, FloatingPointError))
        dist = sys.modules.get(f"{__package__}.distributed")
        who = f" (rank {dist.rank()})" if dist is not None and dist.world_size() > 1 else ""
        print(f"fashionlab: error{who}: {_one_line(e)}" + ("" if known else tip), file=sys.stderr, flush=True)
        if getattr(e, "barrier_after_report", False):
            dist.barrier()
        return 2
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous)
        dist = sys.modules.get(f"{__package__}.distributed")
        if dist is not None:
            dist.cleanup()  # leave torchrun's process group, also after an error


if __name__ == "__main__":
    sys.exit(main())
