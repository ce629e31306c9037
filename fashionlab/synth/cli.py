"""``fashionlab synth <preset>``: the command line of the FashionSynth presets, each option declared once.

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"). Every preset module declares its
command beside its generator as a :class:`SynthCommand` named ``COMMAND``: the generator function, the option
that counts the items (``--num-images`` or ``--scenes``), the preset's own options and the default canvas size.
The options every preset shares (``--out``, ``--seed``, ``--image-size``, ``--workers``, ``--quiet``) are declared
here once (:func:`common_options`). The same declarations serve the ``fashionlab`` command
(:func:`add_synth_parser`) and ``python -m fashionlab.synth.<preset>`` (:func:`main`).

The commands::

    fashionlab synth fashionai  --out DIR --num-images N [--seed S] [--image-size PX] [--preset NAME] [--workers W]
    fashionlab synth shop       --out DIR --num-images N [--seed S] [--image-size PX] [--designs D]
                                [--missing-rate R] [--workers W]
    fashionlab synth multilabel --out DIR --num-images N [--seed S] [--image-size PX] [--workers W]
    fashionlab synth outfit     --out DIR --scenes N [--seed S] [--image-size PX] [--crop-size PX] [--workers W]

each with ``--quiet``. After writing, a command prints one line with the folder and the speed.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = ["Option", "SynthCommand", "common_options", "commands", "add_synth_parser", "run_synth", "main"]


@dataclass(frozen=True)
class Option:
    """One command-line option: its ``flag``, the ``keyword`` of the generator function it is passed as (None: the
    flag's name, ``--missing-rate`` -> ``missing_rate``) and the keyword arguments of ``add_argument``."""

    flag: str
    keyword: str | None = None
    kwargs: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments."""
        return self.flag.lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(self.flag, **self.kwargs)


def option(flag: str, keyword: str | None = None, **kwargs) -> Option:
    """``Option(flag, keyword, kwargs)``, with the ``add_argument`` keywords written inline."""
    return Option(flag, keyword, kwargs)


@dataclass(frozen=True)
class SynthCommand:
    """``fashionlab synth <name>``: what a preset module declares (its ``COMMAND``).

    ``generate(out, count, seed=, image_size=, workers=, progress=, **options)`` writes the dataset and returns
    its statistics; ``count`` is the option giving the number of items (passed second, positionally);
    ``options`` the preset's own options (passed by ``keyword``); ``image_size``, ``image_help``, ``workers`` and
    ``workers_help`` the defaults and wording of the common options; ``report`` the line printed afterwards
    (``str.format`` with ``out`` and the statistics' keys).
    """

    name: str
    help: str
    description: str
    generate: Callable[..., dict]
    count: Option
    report: str
    options: tuple[Option, ...] = ()
    image_size: int = 128
    image_help: str = "canvas side in pixels"
    workers: int | None = 1
    workers_help: str | None = None


def common_options(cmd: SynthCommand) -> tuple[list[Option], list[Option]]:
    """The options every preset shares, with ``cmd``'s defaults: those listed before the preset's own options
    (``--out``, the count, ``--seed``, ``--image-size``) and those after (``--workers``, ``--quiet``)."""
    before = [option("--out", required=True, help="output folder"), cmd.count,
              option("--seed", type=int, default=0),
              option("--image-size", type=int, default=cmd.image_size,
                     help=f"{cmd.image_help} (default {cmd.image_size})")]
    workers = {"type": int, "default": cmd.workers}
    if cmd.workers_help:
        workers["help"] = cmd.workers_help
    after = [Option("--workers", None, workers), option("--quiet", action="store_true")]
    return before, after


def commands() -> dict[str, SynthCommand]:
    """The preset commands by name, in the order ``fashionlab synth -h`` lists them."""
    from . import fashionai, multilabel, outfit, shop

    return {c.name: c for c in (fashionai.COMMAND, shop.COMMAND, multilabel.COMMAND, outfit.COMMAND)}


def _add_options(p: argparse.ArgumentParser, cmd: SynthCommand) -> None:
    before, after = common_options(cmd)
    for opt in before + list(cmd.options) + after:
        opt.add_to(p)
    p.set_defaults(func=run_synth, synth_command=cmd.name)


def add_synth_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``synth`` with one sub-command per preset on ``subparsers`` (what ``add_subparsers()`` returns);
    each sets ``func=run_synth``, so the caller runs ``args.func(args)``. Returns the ``synth`` parser."""
    s = subparsers.add_parser("synth", help="render a FashionSynth dataset in a real dataset's format")
    ssub = s.add_subparsers(dest="synth_command", metavar="preset", required=True)
    for cmd in commands().values():
        _add_options(ssub.add_parser(cmd.name, help=cmd.help, description=cmd.description), cmd)
    return s


def run_synth(args: argparse.Namespace) -> int:
    """Run the preset command of parsed arguments (``args.synth_command`` names it): generate, print the report
    line; returns 0. The dataset is written into a temporary folder and renamed into place when complete
    (:func:`fashionlab.synth.writer.generate`): a bad option raises ``ValueError`` before anything is written,
    and Ctrl-C or SIGTERM (``KeyboardInterrupt``, left to the caller) leave the previous ``--out`` as it was."""
    cmd = commands()[args.synth_command]
    own = {(o.keyword or o.dest): getattr(args, o.dest) for o in cmd.options}
    stats = cmd.generate(Path(args.out), getattr(args, cmd.count.dest), seed=args.seed, image_size=args.image_size,
                         workers=args.workers, progress=not args.quiet, **own)
    print(cmd.report.format(out=args.out, **stats))
    return 0


def main(name: str, argv=None) -> int:
    """``python -m fashionlab.synth.<name> ...``: the preset's command on its own (same options as
    ``fashionlab synth <name>``); an error is one line on stderr (status 2), Ctrl-C and SIGTERM give 130 and
    143."""
    cmd = commands()[name]
    p = argparse.ArgumentParser(prog=f"fashionlab synth {name}", description=cmd.description)
    _add_options(p, cmd)
    args = p.parse_args(argv)
    from .writer import Terminated, interrupts_as_exceptions

    try:
        with interrupts_as_exceptions():
            return run_synth(args)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: the writer has removed its temporary folder
        print(f"fashionlab synth: interrupted; {args.out} is as it was before", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except (ValueError, OSError) as e:
        print(f"fashionlab synth {name}: error: {e}", file=sys.stderr)
        return 2
