"""The experiment registry: one experiment, two front doors (docs/architecture.md, principle 3).

Each notebook's experiment is one function registered here by name. The notebook calls :func:`run` to show
the results; the command line runs the same function (``fashionlab reproduce NAME``). Both write
``NAME.json`` and ``NAME.md`` with the schema of docs/architecture.md ("Results file"):

``{"experiment", "mode", "seed", "device", "start", "seconds", "dataset", "rows": [...], "paper_rows": [...]}``,
each row ``{"method", "metric", "value", "start"}`` plus ``"attribute"`` where the number is per attribute; values
are percentages as in the papers. ``start`` is where the networks' backbones started: ``scratch``, ``imagenet``
(torchvision's ImageNet weights; ``--pretrained imagenet``), ``fashionsynth`` (fashionlab's own pretraining,
:mod:`fashionlab.pretrain`; ``--pretrained fashionsynth``) or ``none`` (no network, e.g. the random baseline);
files written before it existed lack it (:func:`load` and :func:`to_markdown` read them as they are).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import get_mode, results_dir

__all__ = ["Experiment", "Result", "register", "get", "names", "run", "load", "map_rows", "rows_to_markdown",
           "check_out_dir", "write_results", "added_field", "with_start", "BACKBONE_FIELDS"]

#: The config fields that name a backbone (checked by :func:`with_start`).
BACKBONE_FIELDS = ("backbone", "local_backbone", "det_backbone")


def added_field(default):
    """A config dataclass field added after trained models were cached: left out of the trained-model cache key
    while it has ``default`` (``engine.KEY_OMITS_DEFAULT``), so those models' keys, and so the cached models,
    stay valid; any other value is in the key."""
    from ..engine import KEY_OMITS_DEFAULT

    return field(default=default, metadata={KEY_OMITS_DEFAULT: True})


def with_start(cfg, experiment: str, mode: str):
    """``cfg`` with the start the user asked for (``--pretrained``, ``run(pretrained=)``, ``$FASHIONLAB_PRETRAINED``:
    :func:`fashionlab.models.backbones.requested_start`) in its ``pretrained`` field, checked before any work
    (:func:`fashionlab.models.backbones.check_start`): the ImageNet start with a SmallCNN config raises
    ``ValueError`` naming ``experiment`` and ``mode``, and a missing ImageNet file the ``FileNotFoundError`` that names
    it, its folder and the download switch. Nothing asked: ``cfg`` as it is (its own field, ``scratch`` by default)."""
    from ..models.backbones import check_start, requested_start

    if not hasattr(cfg, "pretrained"):
        return cfg
    start = requested_start()
    if start is not None and start != cfg.pretrained:
        cfg = dataclasses.replace(cfg, pretrained=start)
    check_start(cfg.pretrained, [getattr(cfg, f, None) for f in BACKBONE_FIELDS],
                f"experiment {experiment!r}, mode {mode!r}")
    return cfg


@dataclass
class Result:
    """What every experiment returns (issue: typed results): the rows of its results table and the paper's,
    plus, in subclasses, the named objects a notebook needs (the data, the trained models, histories...).

    ``rows`` and ``paper_rows`` are lists of ``{"method", "metric", "value"}`` (plus ``"attribute"`` where the
    number is per attribute; values are percentages as in the papers). :func:`run` fills ``experiment``,
    ``mode``, ``seed``, ``seconds`` and ``start`` (the config's ``pretrained``: ``scratch``, ``imagenet`` or ``fashionsynth``;
    ``none`` without a config); :meth:`to_json` is what ``NAME.json`` holds, ``start`` in every row too."""

    rows: list[dict] = field(default_factory=list)
    paper_rows: list[dict] = field(default_factory=list)
    dataset: str = ""
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    experiment: str = ""
    mode: str = ""
    seed: int = 0
    seconds: float = 0.0
    start: str = ""

    def to_json(self) -> dict:
        """The results-file dict (docs/architecture.md, "Results file"); ``notes`` only when there are some.
        ``start`` at the top and in each of our rows (not the paper's rows: those are the paper's own start)."""
        rows = [{**r, "start": self.start} if self.start and "start" not in r else r for r in self.rows]
        out = {"experiment": self.experiment, "mode": self.mode, "seed": self.seed, "device": self.device,
               "start": self.start, "seconds": round(self.seconds, 1), "dataset": self.dataset, "rows": rows,
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


def check_out_dir(out: str | Path) -> Path:
    """Check, before any work starts, that the results folder ``out`` exists as a writable folder or can be
    created (its nearest existing parent is a writable folder). Nothing is created. Raises
    :class:`NotADirectoryError` or :class:`PermissionError` naming the path; returns ``out`` as a ``Path``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"results folder {out} is a file; expected a folder (or a path that can be created)")
    anc = out
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise NotADirectoryError(f"cannot create results folder {out}: {anc} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=anc, prefix=".fashionlab-write-test-"):
            pass
    except OSError as e:
        what = "results folder" if anc == out else f"parent {anc} of results folder"
        raise PermissionError(f"cannot write to the {what} {out}: {e.strerror or e}; expected a writable "
                              f"folder") from None
    return out


def _json_safe(obj, where: str, bad: list[str]):
    """``obj`` with numpy scalars made Python and non-finite floats (NaN, inf) made ``None``; ``bad`` collects
    where those were."""
    if isinstance(obj, dict):
        return {k: _json_safe(v, f"{where}.{k}" if where else str(k), bad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v, f"{where}[{i}]", bad) for i, v in enumerate(obj)]
    if hasattr(obj, "item") and type(obj).__module__ == "numpy":
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        bad.append(where)
        return None
    return obj


def _row_label(doc: dict, where: str) -> str:
    key, _, rest = where.partition("[")
    if key in ("rows", "paper_rows") and rest:
        try:
            row = doc[key][int(rest.split("]")[0])]
            return f"{where} ({', '.join(str(row[k]) for k in ('method', 'metric', 'attribute') if row.get(k))})"
        except (ValueError, IndexError, KeyError, TypeError):
            pass
    return where


def write_results(doc: dict, out: str | Path) -> Path:
    """Write ``NAME.json`` and ``NAME.md`` of a results dict into ``out`` (created if needed); returns the JSON path.

    The JSON is strict (``json.loads`` of any JSON parser reads it): a value that is not a finite number (NaN,
    inf: e.g. a metric undefined for a class without ground truth) is written as ``null``, with a note naming the
    rows, and a ``RuntimeWarning``. Each file is written to a temporary file beside it and renamed into place,
    so an interrupted write leaves the previous results intact and no partial file.
    """
    out = Path(out)
    name = doc.get("experiment") or "results"
    bad: list[str] = []
    doc = _json_safe(doc, "", bad)
    if bad:
        shown = "; ".join(_row_label(doc, w) for w in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        note = f"{len(bad)} value(s) are not a number (NaN or infinite) and are written as null: {shown}"
        doc["notes"] = list(doc.get("notes") or []) + [note]
        warnings.warn(f"{out / (name + '.json')}: {note}", RuntimeWarning, stacklevel=2)
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    targets = [(out / f"{name}.json", text), (out / f"{name}.md", to_markdown(doc))]
    temps = []
    try:
        for target, content in targets:
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".tmp")
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
        for (target, _), tmp in zip(targets, temps):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return targets[0][0]


def run(name: str, mode: str | None = None, data: str | Path | None = None, seed: int = 0,
        out: str | Path | None = "default", progress: bool = True, device=None, retrain: bool = False,
        pretrained: str | None = None, **options) -> Result:
    """Run experiment ``name`` and return its typed :class:`Result`; write ``NAME.json``/``NAME.md`` into ``out``.

    ``out="default"`` means :func:`fashionlab.config.results_dir`; ``out=None`` writes nothing (notebooks in
    quick mode use that so CI never overwrites committed results). ``out`` is checked before the experiment
    starts (:func:`check_out_dir`); the files are written by :func:`write_results` (strict JSON: NaN as ``null``,
    renamed into place when complete). ``device`` (``"cpu"``, ``"cuda"``, a
    ``torch.device`` or None for the default order) is resolved here, once, and handed to every step.
    Trained models are cached (``engine.fit(cache_key=...)``): a second run loads them; ``retrain=True``
    trains everything again. ``pretrained`` (``"scratch"``, ``"imagenet"`` or ``"fashionsynth"``; None:
    ``$FASHIONLAB_PRETRAINED``, else each config's own, ``scratch``) is the start of every backbone (:func:`with_start`; checked
    before any training: a SmallCNN config or a missing weights file fails first). ``options`` go to the experiment function (e.g. ``config=`` or a student's
    module where the recipe takes one).
    """
    from .. import engine
    from ..models.backbones import pretrained_start

    exp = get(name)
    mode = get_mode(mode)
    if out is not None:
        out = check_out_dir(results_dir() if out == "default" else out)  # before any work starts
    dev = engine.device(device, verbose=False)
    t0 = time.perf_counter()
    from ..pretrain import mode_scope

    with (engine.retraining(True) if retrain else contextlib.nullcontext(), pretrained_start(pretrained),
          mode_scope(mode)):
        result = exp.fn(mode=mode, data=None if data is None else Path(data), seed=seed, progress=progress,
                        device=dev, **options)
    if not isinstance(result, Result):
        raise TypeError(f"experiment {name!r} returned {type(result).__name__}, not an experiments.Result")
    result.experiment, result.mode, result.seed = name, mode, seed
    result.seconds = time.perf_counter() - t0
    result.device = str(dev)
    cfg = getattr(result, "config", None)
    result.start = result.start or getattr(cfg, "pretrained", None) or ("scratch" if cfg is not None else "none")
    _check_rows(result.rows, name, "rows")
    _check_rows(result.paper_rows, name, "paper_rows")
    if out is not None:
        write_results(result.to_json(), out)
    return result


def load(name: str, folder: str | Path | None = None) -> dict:
    """Read ``results/NAME.json`` (written by ``fashionlab reproduce NAME``)."""
    path = Path(folder or results_dir()) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `fashionlab reproduce {name}` (or `make reproduce`) first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a results file ({e}); expected the JSON that `fashionlab reproduce {name}` "
                         f"writes: run it again") from None


def map_rows(method: str, result: dict, attributes, metric: str = "mAP") -> list[dict]:
    """Result rows in percent from per-attribute scores (fractions keyed by attribute index, plus ``"overall"``,
    as :func:`fashionlab.metrics.attribute_map` returns them): one row per attribute, then the overall one."""
    rows = [{"method": method, "metric": metric, "attribute": attributes[a], "value": round(100 * float(v), 2)}
            for a, v in sorted((k, v) for k, v in result.items() if k != "overall")]
    rows.append({"method": method, "metric": metric, "value": round(100 * float(result["overall"]), 2)})
    return rows


def _fmt(v) -> str:
    if v is None:
        return ""
    return "n/a" if isinstance(v, float) and not math.isfinite(v) else f"{v:.2f}"


def _value(row: dict):
    """A row's value for a table cell: ``null`` (a NaN in the JSON) shows as n/a, unlike a missing cell."""
    v = row["value"]
    return float("nan") if v is None else v


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
        table = {(r["method"], r["attribute"]): _value(r) for r in sub}
        table.update({(r["method"], "overall"): _value(r) for r in flat if r["metric"] == metric})
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
        table = {(r["method"], r["metric"]): _value(r) for r in rest}
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
        + (f"start `{result['start']}`, " if result.get("start") else "")
        + f"{result['seconds']:.0f} s. Values are percentages.",
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
