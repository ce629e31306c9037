"""Notebook 00's experiments: the random baseline and the plain triplet network.

``random-baseline``
    Random unit vectors as embeddings, scored with the ASEN protocol (evaluation-protocols §4.1). It is the
    floor every later table starts from: the paper's "Random baseline" row (ASEN slides, FashionAI table).
``triplet-baseline``
    The smallest real training run through every layer of fashionlab: a backbone, global average pooling and
    a linear embedding (no attribute conditioning), ASEN-style triplets (reference-implementations §3), the
    margin ranking loss max(0, m - s(a, p) + s(a, n)) on cosine similarities (m = 0.2), and the attribute-
    specific mAP. It is the paper's "Triplet network" row, and it calibrates FashionSynth: its mAP must land
    well between the random baseline and 100.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .registry import Outcome, register

# ASEN slides (paper 03), FashionAI / DARN / DeepFashion tables: attribute mAP in percent, overall last.
PAPER_TABLES = {
    "FashionAI": {
        "attributes": ["skirt_length", "sleeve_length", "coat_length", "pant_length", "collar_design",
                       "lapel_design", "neckline_design", "neck_design"],
        "Random baseline": [17.20, 12.50, 13.35, 17.45, 22.36, 21.63, 11.09, 21.19, 15.79],
        "Triplet network": [48.38, 28.14, 29.82, 54.56, 62.58, 38.31, 26.64, 40.02, 38.52],
    },
    "DARN": {
        "attributes": ["clothes category", "clothes button", "clothes color", "clothes length",
                       "clothes pattern", "clothes shape", "collar shape", "sleeve length", "sleeve shape"],
        "Random baseline": [8.49, 24.45, 12.54, 29.90, 43.26, 39.76, 15.22, 63.03, 55.54, 32.26],
        "Triplet network": [23.59, 38.07, 16.83, 39.77, 49.56, 47.00, 23.43, 68.49, 56.48, 40.14],
    },
    "DeepFashion": {
        "attributes": ["texture-related", "fabric-related", "shape-related", "part-related", "style-related"],
        "Random baseline": [6.69, 2.69, 3.23, 2.55, 1.97, 3.38],
        "Triplet network": [13.26, 6.28, 9.49, 4.4, 3.33, 7.36],
    },
}


def paper_rows(method: str, dataset: str = "FashionAI") -> list[dict]:
    """The paper's row for ``method`` on ``dataset`` as result rows (per attribute, then overall)."""
    table = PAPER_TABLES[dataset]
    values = table[method]
    label = f"{dataset} (real images, ASEN slides)"
    rows = [{"method": method, "metric": "mAP", "attribute": a, "value": v, "dataset": label}
            for a, v in zip(table["attributes"], values[:-1])]
    rows.append({"method": method, "metric": "mAP", "value": values[-1], "dataset": label})
    return rows


def map_rows(method: str, result: dict, attributes) -> list[dict]:
    """Turn :func:`fashionlab.metrics.attribute_map` output (fractions) into result rows in percent."""
    rows = [{"method": method, "metric": "mAP", "attribute": attributes[a], "value": round(100 * float(v), 2)}
            for a, v in sorted((k, v) for k, v in result.items() if k != "overall")]
    rows.append({"method": method, "metric": "mAP", "value": round(100 * float(result["overall"]), 2)})
    return rows


@dataclass(frozen=True)
class SynthSize:
    """How big the generated FashionSynth dataset is in each mode."""

    num_images: int
    image_size: int


SYNTH_SIZES = {
    "quick": SynthSize(num_images=1600, image_size=64),
    "default": SynthSize(num_images=24000, image_size=128),
    "full": SynthSize(num_images=60000, image_size=224),
}


def fashionai_data(mode: str, data: Path | None, seed: int, progress: bool = True) -> tuple[Path, str]:
    """The dataset folder an experiment runs on: ``data`` if given (a real one), else FashionSynth for ``mode``."""
    if data is not None:
        return Path(data), f"{Path(data).name} (from --data)"
    from ..synth import ensure_fashionai

    size = SYNTH_SIZES[mode]
    root = ensure_fashionai(num_images=size.num_images, seed=seed, image_size=size.image_size, progress=progress)
    return root, f"FashionSynth fashionai, {size.num_images} images, {size.image_size} px, seed {seed}"


def random_embeddings(n: int, dim: int = 64, seed: int = 0):
    """``n`` random unit vectors (Gaussian, normalised): the random baseline's "model"."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def _dataset_name(schema) -> str:
    for name, table in PAPER_TABLES.items():
        if list(schema.attributes) == table["attributes"]:
            return name
    return "FashionAI"


@register("random-baseline", "random embeddings scored with the ASEN mAP protocol", notebook="00_attributes_data_protocol")
def random_baseline(mode: str, data: Path | None, seed: int, progress: bool = True, split: str = "test") -> Outcome:
    from ..datasets import read_asen_split
    from ..metrics import attribute_map

    root, label = fashionai_data(mode, data, seed, progress)
    sp = read_asen_split(root, split)
    q, c = sp.queries, sp.candidates
    emb = random_embeddings(len(q) + len(c), seed=seed)
    res = attribute_map(emb[: len(q)], q[:, 1], q[:, 2], emb[len(q):], c[:, 1], c[:, 2])
    return Outcome(rows=map_rows("Random baseline", res, sp.schema.attributes),
                   paper_rows=paper_rows("Random baseline", _dataset_name(sp.schema)),
                   dataset=f"{label}, {split} split: {len(q)} queries, {len(c)} candidates")
