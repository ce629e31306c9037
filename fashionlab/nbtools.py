"""Notebook hygiene (docs/architecture.md, "Notebooks"): committed notebooks keep the outputs of a default-mode run but no
execution metadata, no execution timings and no machine paths.

``python -m fashionlab.nbtools notebooks/*.ipynb`` cleans the given notebooks in place and fails, naming the
notebook and cell, when an output still shows a machine path (``/root/``, ``/home/``, ``/work/``, ``/tmp/``). It also
writes the kernelspec as the installed ipykernel names its kernel (:data:`KERNELSPEC`, display name
"Python 3 (ipykernel)"): with any other display name JupyterLab rewrites the metadata on opening, and every notebook
opens as changed ("unsaved") before anything has run.

``python -m fashionlab.nbtools --colab notebooks/[0-9][0-9]_*.ipynb`` gives each notebook an "Open in Colab" badge
in its first (title) cell and, as its first code cell, a setup cell that installs fashionlab from GitHub where it
is not importable (Colab) and does nothing, printing nothing, in a checkout or any environment that has it
(:func:`add_colab_cells`). Idempotent: a second run changes nothing. The GitHub repository is read from one place,
``Repository`` under ``[project.urls]`` in ``pyproject.toml`` (:func:`github_repository`): change it there and
run the command again to update every badge and setup cell.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

COLAB_TAG = "colab-install"  #: the tag of the setup cell that --colab inserts (how a re-run finds it)
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
MACHINE_PATH = re.compile(r"(?<![\w.])/(root|home|work|tmp|Users)/")
_CELL_META_DROP = ("execution", "ExecuteTime", "collapsed", "scrolled")
#: the kernelspec of every committed notebook: the one ``python -m ipykernel install --name python3`` installs
#: (``make setup``), as JupyterLab writes it back (tests/test_notebooks.py compares it with the installed kernel)
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def clean_notebook(nb: dict) -> dict:
    """Drop kernel-run metadata (execution timings, widget state), keep outputs and tags, and set the kernelspec to
    :data:`KERNELSPEC`."""
    nb.setdefault("metadata", {}).pop("widgets", None)
    nb["metadata"]["kernelspec"] = dict(KERNELSPEC)
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


def github_repository(pyproject: str | Path | None = None) -> str:
    """``"OWNER/REPO"`` from the ``Repository`` URL under ``[project.urls]`` of ``pyproject`` (default: the
    checkout's ``pyproject.toml``): the one place that names fashionlab's GitHub repository."""
    path = Path(pyproject) if pyproject else Path(__file__).resolve().parent.parent / "pyproject.toml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pyproject.toml; --colab runs in a checkout of fashionlab")
    text = path.read_text(encoding="utf-8")
    urls = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    m = urls and re.search(r'^\s*"?Repository"?\s*=\s*"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?"',
                           urls.group(1), flags=re.M)
    if not m:
        raise ValueError(f'{path}: expected Repository = "https://github.com/OWNER/REPO" under [project.urls]')
    return m.group(1)


def _lines(text: str) -> list[str]:
    """A cell source in the committed notebooks' form: a list of lines, each but the last ending in a newline."""
    return text.splitlines(keepends=True)


def colab_url(repo: str, filename: str, branch: str = "main") -> str:
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{filename}"


def install_cell_source(repo: str) -> str:
    """The setup cell: installs fashionlab from GitHub only where it cannot be imported; silent otherwise."""
    return (
        "# Setup: on Colab (or wherever fashionlab is not installed) install it from GitHub; in a checkout, or an\n"
        "# environment that has fashionlab, this cell does nothing and prints nothing.\n"
        "import importlib.util, subprocess, sys\n"
        "\n"
        "if importlib.util.find_spec(\"fashionlab\") is None:\n"
        f"    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",\n"
        f"                           \"fashionlab @ git+https://github.com/{repo}\"])"
    )


def add_colab_cells(nb: dict, filename: str, repo: str) -> dict:
    """Give the notebook ``filename`` (e.g. ``00_attributes_data_protocol.ipynb``) an "Open in Colab" badge on the
    line after the title of its first markdown cell and, as its first code cell, the setup cell of
    :func:`install_cell_source`: a locked, ungraded nbgrader cell (read-only, kept in the student edition)
    tagged ``colab-install``. An existing badge line and setup cell are replaced, so a re-run changes nothing and a
    new ``repo`` updates both. Returns ``nb``, changed in place."""
    cells = nb.setdefault("cells", [])
    badge = f"[![Open In Colab]({COLAB_BADGE})]({colab_url(repo, filename)})"
    first = next((c for c in cells if c.get("cell_type") == "markdown"), None)
    if first is None:
        first = {"cell_type": "markdown", "metadata": {}, "source": []}
        cells.insert(0, first)
    src = first["source"] if isinstance(first["source"], str) else "".join(first["source"])
    lines, drop_blank = [], False
    for ln in src.split("\n"):  # remove an earlier badge line and the blank line this function put after it
        if COLAB_BADGE in ln:
            drop_blank = True
        elif not (drop_blank and ln == ""):
            lines.append(ln)
            drop_blank = False
        else:
            drop_blank = False
    at = 1 if lines and lines[0].startswith("#") else 0
    new = lines[:at] + (["", badge] if at else [badge, ""]) + lines[at:]
    first["source"] = _lines("\n".join(new))

    m = re.match(r"(\d\d)_", filename)
    meta = {"nbgrader": {"grade": False, "grade_id": f"nb{m.group(1) if m else 'xx'}-colab-setup", "locked": True,
                         "schema_version": 3, "solution": False},
            "tags": [COLAB_TAG]}
    cell = {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [],
            "source": _lines(install_cell_source(repo))}
    old = [i for i, c in enumerate(cells) if COLAB_TAG in c.get("metadata", {}).get("tags", [])]
    for i in reversed(old):
        del cells[i]
    at = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells))
    cells.insert(at, cell)
    return nb


def colab_main(paths: list[str], repo: str | None = None) -> int:
    """``--colab``: :func:`add_colab_cells` on each notebook file, rewritten only when it changes."""
    repo = repo or github_repository()
    if repo.split("/")[0].upper() == "OWNER":
        print(f"note: the GitHub repository is the placeholder {repo!r}; set Repository under [project.urls] in "
              "pyproject.toml and run this again", file=sys.stderr)
    changed = 0
    for p in map(Path, paths):
        text = p.read_text(encoding="utf-8")
        nb = add_colab_cells(json.loads(text), p.name, repo)
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if new != text:
            p.write_text(new, encoding="utf-8")
            changed += 1
            print(f"{p}: badge and setup cell for github.com/{repo}")
    print(f"{changed} of {len(paths)} notebooks changed")
    return 0


def main(paths: list[str]) -> int:
    if paths and paths[0] == "--colab":
        return colab_main(paths[1:])
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
