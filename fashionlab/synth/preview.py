"""Preview grids of FashionSynth garments: one row per attribute, one column per value.

FashionSynth is fashionlab's own generator (docs/architecture.md, "FashionSynth"). A row shows the *same* garment,
pose, background and noise with only that row's attribute changed (:func:`~fashionlab.synth.garments.set_value`),
so the eye compares the values directly; column 0 shows a garment on which the attribute is Invisible.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..taxonomy import FASHIONAI
from .garments import (ATTRIBUTES, CATEGORIES, NUM_VALUES, PRESETS, RenderConfig, allowed_values, render,
                       sample_garment, set_value)

__all__ = ["value_row", "value_grid", "show_value_grid"]


def value_row(attribute: str, config: RenderConfig | None = None, seed: int = 0, category: str | None = None,
              invisible: bool = True) -> list[tuple[np.ndarray, dict]]:
    """``[(image, ground_truth), ...]`` for every value of ``attribute`` (value 0 first when ``invisible``).

    The visible values share one garment and one scene (seeded by ``seed``); value 0 is a different garment
    on which the attribute is Invisible. Without ``category``, one that shows every value is drawn; with a
    ``category`` that allows only some values (a top's coat_length), the row holds those.
    """
    cfg = config or PRESETS["wild"]
    every = tuple(range(1, NUM_VALUES[attribute]))
    if category is None:  # a category that shows every value (e.g. a coat for coat_length)
        cands = [c for c in CATEGORIES if allowed_values(c, attribute) == every]
        category = cands[int(np.random.default_rng([seed, 0]).integers(len(cands)))]
    base = sample_garment(np.random.default_rng([seed, 1]), category=category, attribute=attribute, value=1)
    out = []
    if invisible:
        spec0 = sample_garment(np.random.default_rng([seed, 1]), attribute=attribute, value=0)
        out.append(render(spec0, cfg, np.random.default_rng([seed, 2])))
    for v in allowed_values(category, attribute):
        out.append(render(set_value(base, attribute, v), cfg, np.random.default_rng([seed, 2])))
    return out


def _boxed(img: np.ndarray, box, colour=(255, 0, 0)) -> np.ndarray:
    if box is None:
        return img
    im = Image.fromarray(img)
    x1, y1, x2, y2 = box
    ImageDraw.Draw(im).rectangle((x1, y1, x2 - 1, y2 - 1), outline=colour)
    return np.asarray(im)


def value_grid(attributes: Sequence[str] | None = None, config: RenderConfig | None = None, seed: int = 0,
               draw_regions: bool = True, upscale: int = 1, gap: int = 2) -> tuple[np.ndarray, list[list[dict]]]:
    """A uint8 image with one row per attribute and one column per value (value 0 first), and the ground
    truths row by row. ``draw_regions`` outlines each image's region box of the row's attribute in red."""
    attributes = list(attributes or ATTRIBUTES)
    cfg = config or PRESETS["wild"]
    S = cfg.image_size * upscale
    ncol = max(NUM_VALUES[a] for a in attributes)
    grid = np.full((len(attributes) * (S + gap) - gap, ncol * (S + gap) - gap, 3), 255, np.uint8)
    gts = []
    for r, a in enumerate(attributes):
        row = value_row(a, cfg, seed=seed + 1000 * r)
        gts.append([gt for _, gt in row])
        for col, (img, gt) in enumerate(row):
            if draw_regions:
                img = _boxed(img, gt["regions"][a])
            if upscale > 1:
                img = np.kron(img, np.ones((upscale, upscale, 1), np.uint8))
            y, x = r * (S + gap), col * (S + gap)
            grid[y:y + S, x:x + S] = img
    return grid, gts


def show_value_grid(attributes: Sequence[str] | None = None, config: RenderConfig | None = None, seed: int = 0,
                    draw_regions: bool = True, cell_inches: float = 1.3):
    """Matplotlib figure of :func:`value_grid` with the value names as titles. Returns the figure."""
    import matplotlib.pyplot as plt

    attributes = list(attributes or ATTRIBUTES)
    cfg = config or PRESETS["wild"]
    ncol = max(NUM_VALUES[a] for a in attributes)
    fig, axes = plt.subplots(len(attributes), ncol, figsize=(cell_inches * ncol, cell_inches * len(attributes) * 1.1),
                             squeeze=False)
    for r, a in enumerate(attributes):
        row = value_row(a, cfg, seed=seed + 1000 * r)
        for col in range(ncol):
            ax = axes[r][col]
            ax.axis("off")
            if col < len(row):
                img, gt = row[col]
                ax.imshow(_boxed(img, gt["regions"][a]) if draw_regions else img)
                ax.set_title(FASHIONAI.value_name(a, gt["values"][a]), fontsize=7)
        axes[r][0].text(-0.1, 0.5, a, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig
