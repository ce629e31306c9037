"""The experiment registry: one experiment, two front doors (docs/architecture.md, principle 3).

Each notebook's experiment is one function registered here by name. The notebook calls :func:`run` to show
the results; the command line runs the same function (``fashionlab reproduce NAME``). Both write
``NAME.json`` and ``NAME.md`` with the schema of docs/architecture.md ("Results file"):

``{"experiment", "mode", "seed", "device", "seconds", "dataset", "rows": [...], "paper_rows": [...]}``,
each row ``{"method", "metric", "value"}`` plus ``"attribute"`` where the number is per attribute; values
are percentages as in the papers.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import get_mode, results_dir

__all__ = ["Experiment", "Outcome", "register", "get", "names", "run", "load", "rows_to_markdown"]


@dataclass
class Outcome:
    """What an experiment function returns: our rows, the paper's rows, and what data it ran on."""

    rows: list[dict]
    paper_rows: list[dict] = field(default_factory=list)
    dataset: str = ""
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # anything the notebook wants back (histories, embeddings...)


@dataclass(frozen=True)
class Experiment:
    name: str
    fn: Callable[..., Outcome]
    description: str
    notebook: str


_REGISTRY: dict[str, Experiment] = {}


def register(name: str, description: str, notebook: str = ""):
    """Decorator: register ``fn(mode, data, seed, progress) -> Outcome`` under ``name``."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"experiment {name!r} registered twice")
        _REGISTRY[name] = Experiment(name, fn, description, notebook)
        return fn

    return deco


def names() -> list[str]:
    """Registered experiment names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> Experiment:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; registered: {', '.join(_REGISTRY)}") from None


def _check_rows(rows: list[dict], name: str, what: str) -> None:
    for i, row in enumerate(rows):
        missing = {"method", "metric", "value"} - set(row)
        if missing:
            raise ValueError(f"experiment {name!r}: {what}[{i}] lacks {sorted(missing)}: {row}")


def run(name: str, mode: str | None = None, data: str | Path | None = None, seed: int = 0,
        out: str | Path | None = "default", progress: bool = True) -> dict:
    """Run experiment ``name`` and return the results dictionary; write ``NAME.json``/``NAME.md`` into ``out``.

    ``out="default"`` means :func:`fashionlab.config.results_dir`; ``out=None`` writes nothing (notebooks in
    quick mode use that so CI never overwrites committed results).
    """
    exp = get(name)
    mode = get_mode(mode)
    t0 = time.perf_counter()
    outcome = exp.fn(mode=mode, data=None if data is None else Path(data), seed=seed, progress=progress)
    seconds = time.perf_counter() - t0
    _check_rows(outcome.rows, name, "rows")
    _check_rows(outcome.paper_rows, name, "paper_rows")
    result = {
        "experiment": name,
        "mode": mode,
        "seed": seed,
        "device": outcome.device,
        "seconds": round(seconds, 1),
        "dataset": outcome.dataset,
        "rows": outcome.rows,
        "paper_rows": outcome.paper_rows,
    }
    if outcome.notes:
        result["notes"] = outcome.notes
    if out is not None:
        out = results_dir() if out == "default" else Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / f"{name}.md").write_text(to_markdown(result))
    result["extra"] = outcome.extra
    return result


def load(name: str, folder: str | Path | None = None) -> dict:
    """Read ``results/NAME.json`` (written by ``fashionlab reproduce NAME``)."""
    path = Path(folder or results_dir()) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `fashionlab reproduce {name}` (or `make reproduce`) first")
    return json.loads(path.read_text())


def _fmt(v) -> str:
    return "" if v is None else f"{v:.2f}"


def rows_to_markdown(rows: list[dict]) -> str:
    """Pivot rows into Markdown tables: one table per metric, methods down, attributes (then overall) across.

    Metrics without attributes are gathered in one table with metrics across. Rows from several datasets (a
    ``"dataset"`` key with more than one value) get one section per dataset.
    """
    if not rows:
        return "_no rows_\n"
    datasets = list(dict.fromkeys(r.get("dataset") for r in rows))
    if len(datasets) > 1:
        return "\n".join(f"### {ds or 'other'}\n\n" + rows_to_markdown([r for r in rows if r.get("dataset") == ds])
                         for ds in datasets)
    out = []
    per_attr = [r for r in rows if r.get("attribute") is not None]
    flat = [r for r in rows if r.get("attribute") is None]
    metrics_with_attr = list(dict.fromkeys(r["metric"] for r in per_attr))
    for metric in metrics_with_attr:
        sub = [r for r in per_attr if r["metric"] == metric]
        attrs = list(dict.fromkeys(r["attribute"] for r in sub))
        methods = list(dict.fromkeys(r["method"] for r in sub))
        has_overall = any(r["metric"] == metric for r in flat)
        cols = attrs + (["overall"] if has_overall else [])
        table = {(r["method"], r["attribute"]): r["value"] for r in sub}
        table.update({(r["method"], "overall"): r["value"] for r in flat if r["metric"] == metric})
        methods += [m for m in dict.fromkeys(r["method"] for r in flat if r["metric"] == metric) if m not in methods]
        out.append(f"**{metric}**\n")
        out.append("| method | " + " | ".join(cols) + " |")
        out.append("|---|" + "---:|" * len(cols))
        for m in methods:
            out.append(f"| {m} | " + " | ".join(_fmt(table.get((m, c))) for c in cols) + " |")
        out.append("")
    rest = [r for r in flat if r["metric"] not in metrics_with_attr]
    if rest:
        metrics = list(dict.fromkeys(r["metric"] for r in rest))
        methods = list(dict.fromkeys(r["method"] for r in rest))
        table = {(r["method"], r["metric"]): r["value"] for r in rest}
        out.append("| method | " + " | ".join(metrics) + " |")
        out.append("|---|" + "---:|" * len(metrics))
        for m in methods:
            out.append(f"| {m} | " + " | ".join(_fmt(table.get((m, k))) for k in metrics) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def to_markdown(result: dict) -> str:
    """``NAME.md``: our numbers (on the dataset we ran) beside the paper's (on its real dataset)."""
    lines = [
        f"# {result['experiment']}",
        "",
        f"mode `{result['mode']}`, seed {result['seed']}, device `{result['device']}`, "
        f"{result['seconds']:.0f} s. Values are percentages.",
        "",
        f"## Ours: {result['dataset']}",
        "",
        rows_to_markdown(result["rows"]),
    ]
    if result.get("paper_rows"):
        sets = list(dict.fromkeys(r.get("dataset") or "the paper's dataset" for r in result["paper_rows"]))
        title = f"## Paper: {sets[0]}" if len(sets) == 1 else "## Paper"
        lines += [title, "", rows_to_markdown(result["paper_rows"])]
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"
