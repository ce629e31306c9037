"""The experiment registry: one experiment, two front doors (docs/architecture.md, principle 3).

Each notebook's experiment is one function registered here by name. The notebook calls :func:`run` to show
the results; the command line runs the same function (``fashionlab reproduce NAME``). Both write
``NAME.json`` and ``NAME.md`` with the schema of docs/architecture.md ("Results file"):

``{"experiment", "mode", "seed", "device", "seconds", "dataset", "rows": [...], "paper_rows": [...]}``,
each row ``{"method", "metric", "value"}`` plus ``"attribute"`` where the number is per attribute; values
are percentages as in the papers.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import get_mode, results_dir

__all__ = ["Experiment", "Result", "register", "get", "names", "run", "load", "map_rows", "rows_to_markdown"]


@dataclass
class Result:
    """What every experiment returns (issue: typed results): the rows of its results table and the paper's,
    plus, in subclasses, the named objects a notebook needs (the data, the trained models, histories...).

    ``rows`` and ``paper_rows`` are lists of ``{"method", "metric", "value"}`` (plus ``"attribute"`` where the
    number is per attribute; values are percentages as in the papers). :func:`run` fills ``experiment``,
    ``mode``, ``seed`` and ``seconds``; :meth:`to_json` is what ``NAME.json`` holds."""

    rows: list[dict] = field(default_factory=list)
    paper_rows: list[dict] = field(default_factory=list)
    dataset: str = ""
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    experiment: str = ""
    mode: str = ""
    seed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        """The results-file dict (docs/architecture.md, "Results file"); ``notes`` only when there are some."""
        out = {"experiment": self.experiment, "mode": self.mode, "seed": self.seed, "device": self.device,
               "seconds": round(self.seconds, 1), "dataset": self.dataset, "rows": self.rows,
               "paper_rows": self.paper_rows}
        if self.notes:
            out["notes"] = self.notes
        return out

    def table(self, metric: str | None = None, rows: str = "rows"):
        """The rows as a pandas DataFrame (methods down; attributes, then ``overall``, across) for one metric,
        or the long table when ``metric`` is None. ``rows="paper_rows"`` gives the paper's."""
        import pandas as pd

        df = pd.DataFrame(getattr(self, rows))
        if metric is None or df.empty:
            return df
        df = df[df["metric"] == metric].copy()
        if "attribute" not in df:
            df["attribute"] = None
        df["attribute"] = df["attribute"].fillna("overall")
        order = list(dict.fromkeys(df["attribute"]))
        out = df.pivot_table(index="method", columns="attribute", values="value", sort=False)
        return out[[c for c in order if c in out.columns]]


@dataclass(frozen=True)
class Experiment:
    name: str
    fn: Callable[..., Result]
    description: str
    notebook: str


_REGISTRY: dict[str, Experiment] = {}


def register(name: str, description: str, notebook: str = ""):
    """Decorator: register ``fn(mode, data, seed, progress, device) -> Result`` under ``name``: the recipe's
    steps in order (docs/recipes.md)."""

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
        out: str | Path | None = "default", progress: bool = True, device=None, retrain: bool = False,
        **options) -> Result:
    """Run experiment ``name`` and return its typed :class:`Result`; write ``NAME.json``/``NAME.md`` into ``out``.

    ``out="default"`` means :func:`fashionlab.config.results_dir`; ``out=None`` writes nothing (notebooks in
    quick mode use that so CI never overwrites committed results). ``device`` (``"cpu"``, ``"cuda"``, a
    ``torch.device`` or None for the default order) is resolved here, once, and handed to every step.
    Trained models are cached (``engine.fit(cache_key=...)``): a second run loads them; ``retrain=True``
    trains everything again. ``options`` go to the experiment function (e.g. ``config=`` or a student's
    module where the recipe takes one).
    """
    from .. import engine

    exp = get(name)
    mode = get_mode(mode)
    dev = engine.device(device, verbose=False)
    t0 = time.perf_counter()
    with engine.retraining(True) if retrain else contextlib.nullcontext():
        result = exp.fn(mode=mode, data=None if data is None else Path(data), seed=seed, progress=progress,
                        device=dev, **options)
    if not isinstance(result, Result):
        raise TypeError(f"experiment {name!r} returned {type(result).__name__}, not an experiments.Result")
    result.experiment, result.mode, result.seed = name, mode, seed
    result.seconds = time.perf_counter() - t0
    result.device = str(dev)
    _check_rows(result.rows, name, "rows")
    _check_rows(result.paper_rows, name, "paper_rows")
    if out is not None:
        out = results_dir() if out == "default" else Path(out)
        out.mkdir(parents=True, exist_ok=True)
        doc = result.to_json()
        (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        (out / f"{name}.md").write_text(to_markdown(doc))
    return result


def load(name: str, folder: str | Path | None = None) -> dict:
    """Read ``results/NAME.json`` (written by ``fashionlab reproduce NAME``)."""
    path = Path(folder or results_dir()) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `fashionlab reproduce {name}` (or `make reproduce`) first")
    return json.loads(path.read_text())


def map_rows(method: str, result: dict, attributes, metric: str = "mAP") -> list[dict]:
    """Result rows in percent from per-attribute scores (fractions keyed by attribute index, plus ``"overall"``,
    as :func:`fashionlab.metrics.attribute_map` returns them): one row per attribute, then the overall one."""
    rows = [{"method": method, "metric": metric, "attribute": attributes[a], "value": round(100 * float(v), 2)}
            for a, v in sorted((k, v) for k, v in result.items() if k != "overall")]
    rows.append({"method": method, "metric": metric, "value": round(100 * float(result["overall"]), 2)})
    return rows


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
