"""Notebook hygiene (docs/architecture.md, "Notebooks"): committed notebooks keep the outputs of a default-mode run but no
execution metadata, no execution timings and no machine paths.

``python -m fashionlab.nbtools notebooks/*.ipynb`` cleans the given notebooks in place and fails, naming the
notebook and cell, when an output still shows a machine path (``/root/``, ``/home/``, ``/work/``, ``/tmp/``).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

MACHINE_PATH = re.compile(r"(?<![\w.])/(root|home|work|tmp|Users)/")
_CELL_META_DROP = ("execution", "ExecuteTime", "collapsed", "scrolled")


def clean_notebook(nb: dict) -> dict:
    """Drop kernel-run metadata (execution timings, widget state) and keep outputs and tags."""
    nb.setdefault("metadata", {}).pop("widgets", None)
    nb["metadata"].pop("papermill", None)
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        for key in _CELL_META_DROP:
            meta.pop(key, None)
        if cell.get("cell_type") == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
    return nb


def machine_paths(nb: dict) -> list[str]:
    """Where an output shows a machine path: ``"cell N: <excerpt>"`` strings."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
            text += json.dumps(out.get("traceback", ""))
            m = MACHINE_PATH.search(text)
            if m:
                found.append(f"cell {i}: ...{text[max(0, m.start() - 40):m.end() + 40]}...")
    return found


def main(paths: list[str]) -> int:
    bad = 0
    for p in map(Path, paths):
        nb = clean_notebook(json.loads(p.read_text()))
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        for where in machine_paths(nb):
            print(f"{p}: machine path in output, {where}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
