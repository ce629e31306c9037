"""FashionSynth appearance: colour palettes, fabric patterns, background clutter and pixel noise.

FashionSynth is fashionlab's own procedural generator (docs/architecture.md, "FashionSynth"); nothing here comes from
a paper. Everything is vectorised numpy or PIL drawing: no per-pixel Python loops, so that rendering stays
well above a thousand small images per second per core.

Colour and pattern are *appearance*: they are drawn from their own random stream (see
:func:`fashionlab.synth.garments.sample_garment`) and are therefore statistically independent of every
attribute value. Patterns are computed in the garment's own coordinates (body units, see
:mod:`fashionlab.synth.garments`), so stripes turn with the garment and do not move when a sleeve or a hem
changes length.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import ImageDraw

__all__ = ["COLOURS", "COLOUR_NAMES", "PATTERNS", "SKINS", "HAIRS", "INNER_COLOURS", "fabric", "shade",
           "draw_clutter", "noise_tile"]

#: Named garment colours (sRGB). Names go into the ground truth.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (196, 32, 44),
    "orange": (232, 122, 34),
    "yellow": (232, 200, 52),
    "green": (46, 138, 64),
    "teal": (24, 134, 138),
    "blue": (44, 92, 200),
    "navy": (28, 38, 92),
    "purple": (118, 54, 150),
    "pink": (232, 132, 170),
    "brown": (118, 72, 38),
    "beige": (214, 190, 150),
    "white": (238, 238, 232),
    "grey": (128, 128, 130),
    "black": (28, 28, 32),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

#: Fabric patterns and their probabilities. "checks" is a two-colour gingham, "zigzag" a chevron stripe.
PATTERNS: dict[str, float] = {"solid": 0.36, "stripes": 0.18, "checks": 0.16, "dots": 0.15, "zigzag": 0.15}

#: Mannequin tones: skin tones and two dress-form tones.
SKINS: tuple[tuple[int, int, int], ...] = (
    (240, 204, 176), (222, 170, 136), (196, 134, 96), (142, 88, 56), (94, 60, 42), (196, 196, 198),
    (232, 222, 204),
)
HAIRS: tuple[tuple[int, int, int], ...] = ((24, 20, 18), (70, 44, 26), (150, 104, 58), (214, 184, 120),
                                          (120, 120, 124))
#: Colours of the layer seen inside an open coat front.
INNER_COLOURS: tuple[str, ...] = ("white", "black", "grey", "beige", "navy")


def _lum(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def shade(rgb, kind: str) -> tuple[int, int, int]:
    """A derived tone of ``rgb``: ``"dark"`` for outlines and seams, ``"detail"`` for collars and other
    detail pieces (a visibly different tone of the same colour, so shapes read on any colour)."""
    r = np.asarray(rgb, dtype=np.float32)
    lum = _lum(r)
    if kind == "dark":
        out = r * 0.42 if lum > 70 else r * 0.35 + 105.0
    elif kind == "detail":
        out = r * 0.80 + 52.0 if lum < 150 else r * 0.84
    else:
        raise ValueError(f"unknown shade {kind!r}")
    return tuple(int(v) for v in np.clip(out, 0, 255))


def fabric(pattern: str, params, lx: np.ndarray, ly: np.ndarray, c1, c2) -> np.ndarray:
    """The fabric colour at garment coordinates ``(lx, ly)`` (body units, broadcastable arrays).

    ``params`` = (period, phase_x, phase_y, orientation) from the garment spec. Returns float32 (..., 3).
    """
    period, px, py, orient = params
    c1 = np.asarray(c1, dtype=np.float32)
    c2 = np.asarray(c2, dtype=np.float32)
    shape = np.broadcast_shapes(np.shape(lx), np.shape(ly))
    if pattern == "solid":
        return np.broadcast_to(c1, shape + (3,))
    if pattern == "stripes":
        q = (ly, lx, (lx + ly) * 0.7071, (lx - ly) * 0.7071)[int(orient) % 4]
        m = ((q / period + px) % 1.0) < 0.5
        return np.where(m[..., None], c2, c1)
    if pattern == "checks":
        a = ((lx / period + px) % 1.0) < 0.5
        b = ((ly / period + py) % 1.0) < 0.5
        k = (a.astype(np.float32) + b.astype(np.float32))[..., None] * 0.5
        return c1 + (c2 - c1) * k
    if pattern == "dots":
        fx = (lx / period + px) % 1.0 - 0.5
        fy = (ly / period + py) % 1.0 - 0.5
        m = fx * fx + fy * fy < 0.09
        return np.where(m[..., None], c2, c1)
    if pattern == "zigzag":
        tri = np.abs(((lx / (1.3 * period) + px) % 1.0) - 0.5)
        q = ly / period + 1.3 * tri + py
        m = (q % 1.0) < 0.45
        return np.where(m[..., None], c2, c1)
    raise ValueError(f"unknown pattern {pattern!r}; expected one of {list(PATTERNS)}")


def draw_clutter(draw: ImageDraw.ImageDraw, size: int, params: np.ndarray, background=(128, 128, 128),
                 contrast: float = 1.0) -> None:
    """Draw background clutter: one random shape per row of ``params`` (uniform [0, 1) numbers, 10 columns:
    kind, x, y, w, h, r, g, b, extra, extra). Rectangles, ellipses, triangles, thick lines and stripes.
    Each shape's colour lies ``contrast`` of the way from ``background`` to its random colour."""
    S = float(size)
    bg = np.asarray(background, dtype=float)
    for row in params:
        kind = int(row[0] * 5)
        x, y = row[1] * S, row[2] * S
        w, h = (0.06 + 0.44 * row[3]) * S, (0.06 + 0.44 * row[4]) * S
        col = tuple(int(v) for v in bg + contrast * (row[5:8] * 256 - bg))
        if kind == 0:
            draw.rectangle((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=col)
        elif kind == 1:
            draw.ellipse((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=col)
        elif kind == 2:
            draw.polygon([(x, y - h / 2), (x + w / 2, y + h / 2), (x - w / 2 + row[8] * w, y + h / 2)], fill=col)
        elif kind == 3:
            draw.line((x - w / 2, y - h / 2, x + w / 2, y + h / 2 * (2 * row[8] - 1)), fill=col,
                      width=max(1, int(S * (0.01 + 0.03 * row[9]))))
        else:  # a band of stripes, like a shelf or a curtain
            n = 2 + int(row[8] * 4)
            step = w / n
            for i in range(0, n, 2):
                draw.rectangle((x - w / 2 + i * step, y - h / 2, x - w / 2 + (i + 1) * step, y + h / 2), fill=col)


@lru_cache(maxsize=8)
def _base_noise(size: int) -> np.ndarray:
    # A fixed standard-normal tile (its own fixed seed): each image takes a random window of it.
    n = max(256, size * 2)
    return np.random.default_rng(0x5F5F).standard_normal((n, n, 3)).astype(np.float32)


@lru_cache(maxsize=16)
def noise_tile(size: int, sigma: float) -> np.ndarray:
    """An int16 tile of Gaussian noise with standard deviation ``sigma`` (grey levels), at least 2x ``size``.

    Rendering crops a random window from it (offsets from the image's own random stream): drawing fresh
    normals for every pixel would cost more than everything else in rendering together.
    """
    return np.rint(_base_noise(size) * float(sigma)).astype(np.int16)
