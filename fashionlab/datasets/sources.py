"""Which FashionAI-format folder an experiment reads: a real one the user points at, or FashionSynth.

:func:`fashionai_data` is the one place that decides it, for every experiment that runs on FashionAI's
attributes (notebooks 00 to 03 and 05): the folder given on the command line (``--data``), else
``$FASHIONLAB_FASHIONAI`` (a real FashionAI folder in the ASEN split layout, docs/formats.md §5.1), else a
FashionSynth dataset rendered once for the run mode (:data:`SYNTH_SIZES`) and cached under the data folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SynthSize", "SYNTH_SIZES", "fashionai_data", "is_real", "check_data_quickly"]


@dataclass(frozen=True)
class SynthSize:
    """How big the generated FashionSynth dataset is in each mode."""

    num_images: int
    image_size: int


SYNTH_SIZES = {
    "quick": SynthSize(num_images=1600, image_size=64),
    "default": SynthSize(num_images=36000, image_size=128),
    "full": SynthSize(num_images=60000, image_size=224),
}


def fashionai_data(mode: str, data: Path | None, seed: int, progress: bool = True,
                   check_images: bool = True) -> tuple[Path, str]:
    """``(folder, description)`` of the dataset an experiment runs on: ``data`` if given (``--data``), else
    ``$FASHIONLAB_FASHIONAI`` (a real FashionAI folder in the ASEN split layout), else a FashionSynth dataset
    sized for ``mode``.

    Before any training, the cheap part of ``fashionlab check-data`` runs: a FashionSynth cache is checked
    against its manifest (sizes; a damaged one is rendered again, :func:`fashionlab.synth.writer.build_once`);
    with ``check_images`` (experiments that read the images) a given folder is checked too, against its
    manifest if it has one, else every image its ``filenames_*.txt`` name must exist and be non-empty
    (:func:`check_data_quickly`)."""
    if data is not None:
        if check_images:
            check_data_quickly(Path(data))
        return Path(data), f"{Path(data).name} (from --data)"
    if os.environ.get("FASHIONLAB_FASHIONAI"):
        real = Path(os.environ["FASHIONLAB_FASHIONAI"])
        if not real.is_dir():
            raise FileNotFoundError(f"FASHIONLAB_FASHIONAI={real} is not a folder; it should hold the ASEN split "
                                    f"files (filenames_*.txt, query_*.txt, candidate_*.txt, meta.json) and images")
        if check_images:
            check_data_quickly(real)
        return real, f"{real.name} (from FASHIONLAB_FASHIONAI)"
    from ..synth import ensure_fashionai

    size = SYNTH_SIZES[mode]
    root = ensure_fashionai(num_images=size.num_images, seed=seed, image_size=size.image_size, progress=progress)
    return root, f"FashionSynth fashionai, {size.num_images} images, {size.image_size} px, seed {seed}"


def is_real(data: Path | None) -> bool:
    """Whether :func:`fashionai_data` reads a folder the user gave (``--data`` or ``$FASHIONLAB_FASHIONAI``) rather
    than FashionSynth: such data is streamed from disk (:func:`fashionlab.datasets.image_source`)."""
    return data is not None or bool(os.environ.get("FASHIONLAB_FASHIONAI"))


def check_data_quickly(root: Path) -> None:
    """The cheap check of a dataset folder given to an experiment, before it trains: every image its ASEN
    ``filenames_*.txt`` name exists, is non-empty and, when the folder has a manifest listing it, has the
    manifest's size. Raises ``FileNotFoundError`` naming the folder and the first missing or damaged files
    (``fashionlab check-data DIR`` lists them all, and hashes or decodes them). Other files (a manifest's
    ``ground_truth.jsonl``, say) are left to the experiment and its readers, whose errors name them."""
    from .manifest import Problem, check_files, describe_problems, read_manifest

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; expected a dataset folder (ASEN split layout)")
    manifest = read_manifest(root) or {}
    names = []
    for p in sorted(root.glob("filenames_*.txt")):
        with open(p, encoding="utf-8", errors="replace") as f:
            names += [line.strip() for line in f if line.strip()]
    names = list(dict.fromkeys(names))
    problems = check_files(root, names, decode=False)
    bad = {p.path for p in problems}
    for rel in names:
        if rel in manifest and rel not in bad:
            size = (root / rel).stat().st_size
            if size != manifest[rel][0]:
                problems.append(Problem(rel, f"{size} bytes, expected {manifest[rel][0]} (truncated or changed)"))
    if problems:
        raise FileNotFoundError(describe_problems(root, problems))
