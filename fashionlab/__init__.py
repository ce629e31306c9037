"""fashionlab: fine-grained fashion attribute recognition and attribute-specific retrieval, by running the papers.

The package holds the models, losses, metrics, data readers and the FashionSynth renderer that the numbered
notebooks use. ``fashionlab.device()`` picks CUDA, then MPS, then CPU.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["device", "seed_everything", "__version__"]


def __getattr__(name):  # lazy: ``import fashionlab`` stays cheap; torch loads on first use
    if name in ("device", "seed_everything"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'fashionlab' has no attribute {name!r}")
