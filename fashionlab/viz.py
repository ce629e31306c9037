"""Figures shared by the notebooks: image grids with boxes, results beside the paper's.

Plotting only: nothing here computes a number that a table reports.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["image_grid", "draw_box", "denormalize", "show_jpeg", "REGION_COLOR", "GARMENT_COLOR"]

REGION_COLOR = "#e8112d"
GARMENT_COLOR = "#1f77b4"


def denormalize(x, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> np.ndarray:
    """An ImageNet-normalised CHW tensor back to an HWC float image in [0, 1] for ``imshow``."""
    arr = x.detach().cpu().float().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=float)
    arr = arr.transpose(1, 2, 0) * np.asarray(std) + np.asarray(mean)
    return np.clip(arr, 0, 1)


def draw_box(ax, box, color=REGION_COLOR, label=None, lw=1.5):
    """Draw an (x1, y1, x2, y2) pixel box on a matplotlib axis; ``None`` draws nothing."""
    from matplotlib.patches import Rectangle

    if box is None:
        return
    x1, y1, x2, y2 = box
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=lw))
    if label:
        ax.text(x1, y1 - 1, label, color=color, fontsize=6, va="bottom")


def image_grid(images: Sequence, nrows: int, ncols: int, titles: Sequence[str] | None = None,
               boxes: Sequence | None = None, row_labels: Sequence[str] | None = None,
               cell: float = 1.4, title_size: int = 7, fig=None):
    """Show images in a grid; optional per-image titles, per-image boxes (one box or a list of (box, color))."""
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(ncols * cell, nrows * cell * 1.1))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if i >= len(images) or images[i] is None:
            continue
        ax.imshow(images[i])
        if titles is not None:
            ax.set_title(titles[i], fontsize=title_size)
        if boxes is not None and boxes[i] is not None:
            items = boxes[i] if isinstance(boxes[i], list) else [(boxes[i], REGION_COLOR)]
            for box, color in items:
                draw_box(ax, box, color)
    if row_labels is not None:
        for r, lab in enumerate(row_labels):
            axes[r, 0].set_ylabel(lab, fontsize=title_size + 1, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def show_jpeg(fig, quality: int = 80, dpi: int = 90):
    """Display a figure of photographs as a JPEG and close it.

    Noisy images compress badly as PNG (megabytes per grid); committed notebooks stay small this way. Returns the
    IPython ``Image`` that was displayed.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": quality}, bbox_inches="tight")
    plt.close(fig)
    img = Image(data=buf.getvalue(), format="jpeg")
    display(img)
    return img
