"""The committed notebooks as files (nbval executes them; this checks what is committed): the parameters cell CI
relies on, no errors or machine paths in the stored outputs, a size that keeps the repository light, and a row
in the README's notebook table."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fashionlab.nbtools import machine_paths

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    cells = nb["cells"]
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: one cell tagged 'parameters' (CI's quick mode reads it)"
    src = "".join(params[0]["source"])
    assert 'os.environ.get("FASHIONLAB_MODE", "default")' in src, path.name
    for i, c in enumerate(cells):
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name} cell {i}: a stored error output"
            assert "execution" not in out.get("metadata", {}), f"{path.name}: run `python -m fashionlab.nbtools`"
    assert machine_paths(nb) == [], path.name
    assert path.stat().st_size < 5 * 2 ** 20, f"{path.name}: {path.stat().st_size / 2 ** 20:.1f} MB"
    assert cells[0]["cell_type"] == "markdown" and re.match(r"#\s+\d\d", "".join(cells[0]["source"]))


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"(notebooks/{path.name})" in readme, f"README's notebook table lacks {path.name}"
