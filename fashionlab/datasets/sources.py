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

__all__ = ["SynthSize", "SYNTH_SIZES", "fashionai_data"]


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


def fashionai_data(mode: str, data: Path | None, seed: int, progress: bool = True) -> tuple[Path, str]:
    """``(folder, description)`` of the dataset an experiment runs on: ``data`` if given (``--data``), else
    ``$FASHIONLAB_FASHIONAI`` (a real FashionAI folder in the ASEN split layout), else a FashionSynth dataset
    sized for ``mode``."""
    if data is not None:
        return Path(data), f"{Path(data).name} (from --data)"
    if os.environ.get("FASHIONLAB_FASHIONAI"):
        real = Path(os.environ["FASHIONLAB_FASHIONAI"])
        if not real.is_dir():
            raise FileNotFoundError(f"FASHIONLAB_FASHIONAI={real} is not a folder; it should hold the ASEN split "
                                    f"files (filenames_*.txt, query_*.txt, candidate_*.txt, meta.json) and images")
        return real, f"{real.name} (from FASHIONLAB_FASHIONAI)"
    from ..synth import ensure_fashionai

    size = SYNTH_SIZES[mode]
    root = ensure_fashionai(num_images=size.num_images, seed=seed, image_size=size.image_size, progress=progress)
    return root, f"FashionSynth fashionai, {size.num_images} images, {size.image_size} px, seed {seed}"
