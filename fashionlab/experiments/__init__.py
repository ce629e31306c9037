"""Experiments, registered by name: ``fashionlab reproduce NAME`` and the notebooks run the same function.

Registered here: ``random-baseline`` and ``triplet-baseline`` (notebook 00). Later notebooks add theirs.
"""
from .registry import Experiment, Outcome, get, load, names, register, rows_to_markdown, run
from . import baselines  # noqa: F401  (registers its experiments)

__all__ = ["Experiment", "Outcome", "get", "load", "names", "register", "rows_to_markdown", "run"]
