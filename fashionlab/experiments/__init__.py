"""Experiments, registered by name: ``fashionlab reproduce NAME`` and the notebooks run the same function.

Registered here: ``random-baseline`` and ``triplet-baseline`` (notebook 00), ``recognition`` (notebook 01) and
``retrieval`` (notebook 02), ``asen`` (notebook 03), ``part-search`` (notebook 04), ``m3net`` (notebook 05),
``hls`` (notebook 06).
"""
from .registry import Experiment, Result, get, load, map_rows, names, register, rows_to_markdown, run
from .scaling import scaled_down
from . import baselines, paper01, paper03, paper04, paper05, paper06  # noqa: F401  (register their experiments)

__all__ = ["Experiment", "Result", "get", "load", "map_rows", "names", "register", "rows_to_markdown", "run",
           "scaled_down"]
