"""Run modes and folders.

Three modes, one code path (docs/architecture.md, principle 4): ``quick`` for CI (tiny data and backbone, seconds per
experiment), ``default`` for a laptop CPU (at most about 15 minutes per notebook), ``full`` for a GPU
(paper-sized images and backbones). The mode changes sizes, never the logic. It comes from the
``FASHIONLAB_MODE`` environment variable unless given explicitly.

Folders: generated datasets go under :func:`data_dir` (``FASHIONLAB_DATA`` or the repository's ``data/``),
results under :func:`results_dir` (``FASHIONLAB_RESULTS`` or the repository's ``results/``).
"""
from __future__ import annotations

import os
from pathlib import Path

MODES = ("quick", "default", "full")

__all__ = ["MODES", "get_mode", "project_root", "data_dir", "results_dir", "shared_realdata", "display_path"]


def get_mode(mode: str | None = None) -> str:
    """The run mode: ``mode`` if given, else ``$FASHIONLAB_MODE``, else ``"default"``; validated."""
    mode = mode or os.environ.get("FASHIONLAB_MODE") or "default"
    mode = mode.strip().lower()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (from FASHIONLAB_MODE or an argument); expected one of {MODES}")
    return mode


def project_root() -> Path:
    """The repository root when fashionlab runs from a checkout (editable install), else the current folder."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "fashionlab").is_dir():
        return here
    return Path.cwd()


def data_dir() -> Path:
    """Where generated datasets live: ``$FASHIONLAB_DATA`` or ``<repo>/data`` (ignored by git)."""
    return Path(os.environ.get("FASHIONLAB_DATA") or project_root() / "data")


def results_dir() -> Path:
    """Where ``fashionlab reproduce`` writes ``NAME.json`` and ``NAME.md``: ``$FASHIONLAB_RESULTS`` or ``<repo>/results``."""
    return Path(os.environ.get("FASHIONLAB_RESULTS") or project_root() / "results")


def shared_realdata() -> Path | None:
    """The folder of the real ASEN split and label files: ``$FASHIONLAB_REALDATA``, else ``../shared/realdata``
    beside the checkout.

    These files are course materials that some readers have (annotations only, no images; their layout is
    docs/formats.md §5.1 and §5.2); they are not part of the repository. Returns ``None`` when absent: tests
    and notebooks that use it skip cleanly then.
    """
    env = os.environ.get("FASHIONLAB_REALDATA")
    candidates = [Path(env)] if env else []
    candidates.append(project_root().parent / "shared" / "realdata")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def display_path(path) -> str:
    """``path`` as notebooks and logs show it: relative to the repository root when inside it, otherwise
    relative to ``$FASHIONLAB_DATA`` (shown as ``$FASHIONLAB_DATA/...``) or to the course materials' folder
    beside the checkout (shown as ``../shared/...``), else the bare folder name. Committed outputs never show a
    machine path."""
    p = Path(path).resolve()
    anchors = [(project_root().resolve(), ""), (data_dir().resolve(), "$FASHIONLAB_DATA/"),
               ((project_root().parent / "shared").resolve(), "../shared/")]
    for base, prefix in anchors:
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return prefix + rel.as_posix() if prefix or str(rel) != "." else "."
    return p.name
