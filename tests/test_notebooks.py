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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_on_colab_and_ends_with_run_it_for_real(path):
    """Issue 20: an 'Open in Colab' badge and the silent setup cell first; the 'Run it for real' section last, as
    tools/run_for_real.py writes it (re-running the tool would change nothing)."""
    import importlib.util

    from fashionlab.nbtools import COLAB_TAG

    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    assert "colab.research.google.com" in "".join(cells[0]["source"]), f"{path.name}: no Colab badge"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert COLAB_TAG in code[0].get("metadata", {}).get("tags", []), f"{path.name}: the setup cell is not first"
    assert not code[0].get("outputs"), f"{path.name}: the setup cell printed something in a checkout"
    spec = importlib.util.spec_from_file_location("run_for_real", ROOT / "tools" / "run_for_real.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    last = cells[-1]
    assert "run-for-real" in last.get("metadata", {}).get("tags", []), f"{path.name}: no 'Run it for real' at the end"
    assert "".join(last["source"]) == tool.SECTIONS[path.stem].rstrip("\n"), f"{path.name}: run tools/run_for_real.py"


def test_installed_kernel_is_the_one_the_notebooks_name():
    """Issue 22: the committed kernelspec is the installed kernel's own (make setup installs ipykernel's ``python3``
    into .venv); JupyterLab rewrites any other display name on opening and shows the notebook as unsaved."""
    from jupyter_client.kernelspec import KernelSpecManager

    from fashionlab.nbtools import KERNELSPEC

    spec = KernelSpecManager().get_kernel_spec(KERNELSPEC["name"])
    assert (spec.display_name, spec.language) == (KERNELSPEC["display_name"], KERNELSPEC["language"]), (
        f"the installed kernel {KERNELSPEC['name']!r} is {spec.display_name!r} ({spec.language}); "
        f"fashionlab.nbtools.KERNELSPEC says {KERNELSPEC['display_name']!r}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernelspec_is_the_installed_kernels(path):
    from fashionlab.nbtools import KERNELSPEC, clean_notebook

    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"].get("kernelspec") == KERNELSPEC, (
        f"{path.name}: kernelspec {nb['metadata'].get('kernelspec')}, expected {KERNELSPEC} "
        "(run `python -m fashionlab.nbtools` on it)")
    stale = json.loads(json.dumps(nb))
    stale["metadata"]["kernelspec"]["display_name"] = "Python 3"
    assert clean_notebook(stale)["metadata"]["kernelspec"] == KERNELSPEC  # the cleaner writes it back
