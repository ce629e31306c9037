"""fashionlab from a wheel, outside a checkout (issue 20, "Colab and friends"): the wheel holds every module, and
one notebook runs in quick mode from the wheel installed into a fresh virtual environment in a temporary folder,
with its data and results under that working folder.

The fresh environment borrows the test environment's third-party packages (torch, jupyter, ...) through a
``.pth`` file that names their folder, so nothing is downloaded; the ``.pth`` line adds the folder only, so the
checkout's editable install (a finder that a ``.pth`` *in* that folder would start) is not active there. The
wheel's fashionlab goes into the fresh environment's own site-packages, which comes first on ``sys.path``; the
tests assert that the kernel imported that one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the notebook executed from the wheel: the quickest one in quick mode
NOTEBOOK = ROOT / "notebooks" / "00_attributes_data_protocol.ipynb"

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(work: Path, venv: Path) -> dict:
    """The environment of a user outside any checkout: no FASHIONLAB_* folders, no PYTHONPATH, the venv first."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FASHIONLAB_", "PYTHON", "JUPYTER", "VIRTUAL_ENV", "TORCH_HOME"))}
    env.update(FASHIONLAB_MODE="quick", VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               HOME=str(work.parent / "home"), MPLBACKEND="Agg", JUPYTER_PLATFORM_DIRS="1")
    (work.parent / "home").mkdir(exist_ok=True)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` of a clean copy of the sources (an in-tree build would leave build/ in the checkout, and a stale
    build/lib could slip removed modules into the wheel)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "fashionlab", src / "fashionlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", tmp / "dist", src], cwd=tmp)
    (whl,) = (tmp / "dist").glob("fashionlab-*.whl")
    return whl


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fashionlab").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert want and want <= names, f"missing from the wheel: {sorted(want - names)}"
    assert not [n for n in names if not n.startswith(("fashionlab/", "fashionlab-"))], "stray top-level files"
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "fashionlab = fashionlab.cli:main" in zipfile.ZipFile(wheel).read(meta).decode()


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed and the test environment's third-party packages on its path."""
    venv = tmp_path_factory.mktemp("env") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    py = venv / "bin" / "python"
    own = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv.parent).stdout.strip()
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(own, "zz_shared_packages.pth").write_text("".join(f"{p}\n" for p in sorted(shared)))
    # --ignore-installed: the test environment's own fashionlab (seen through the .pth) is not uninstalled
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", wheel], cwd=venv.parent)
    assert Path(own, "fashionlab", "__init__.py").is_file()
    return venv


def test_wheel_is_what_imports_outside_a_checkout(venv, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(work, venv)
    out = _run([venv / "bin" / "python", "-c",
                "import fashionlab, fashionlab.config as c; print(fashionlab.__file__); print(c.project_root()); "
                "print(c.data_dir()); print(c.results_dir())"], cwd=work, env=env).stdout.split("\n")
    assert Path(out[0]).resolve().is_relative_to(venv.resolve()), out[0]
    assert [Path(p).resolve() for p in out[1:4]] == [work.resolve(), (work / "data").resolve(),
                                                     (work / "results").resolve()]
    listed = _run([venv / "bin" / "fashionlab", "list"], cwd=work, env=env).stdout
    assert "random-baseline" in listed


def test_notebook_runs_from_the_wheel_in_quick_mode(venv, tmp_path):
    """Notebook 00 executed in quick mode by a kernel of the fresh venv, in a working folder outside the checkout."""
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(work, venv)
    py = venv / "bin" / "python"
    _run([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", "fashionlab-wheel",
          "--display-name", "fashionlab (wheel)"], cwd=work, env=env)
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    probe = ("import fashionlab, fashionlab.config as c\n"
             "print(repr((fashionlab.__file__, str(c.project_root()), str(c.data_dir()), str(c.results_dir()))))")
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": probe, "outputs": [], "execution_count": None})
    copy = work / NOTEBOOK.name
    copy.write_text(json.dumps(nb), encoding="utf-8")
    runner = ("import sys, nbformat, nbclient\n"
              "nb = nbformat.read(sys.argv[1], as_version=4)\n"
              "client = nbclient.NotebookClient(nb, kernel_name='fashionlab-wheel', timeout=900, allow_errors=True,\n"
              "                                 resources={'metadata': {'path': sys.argv[2]}})\n"
              "client.execute()\n"
              "nbformat.write(nb, sys.argv[1])\n")
    t0 = time.perf_counter()
    _run([py, "-c", runner, copy, work], cwd=work, env=env, timeout=1800)
    seconds = time.perf_counter() - t0
    done = json.loads(copy.read_text(encoding="utf-8"))
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(done["cells"])
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                   for o in done["cells"][-1]["outputs"])
    nb_file, root, data, results = eval(text.strip())  # noqa: S307  the repr of a tuple of str the probe printed
    assert Path(nb_file).resolve().is_relative_to(venv.resolve()), nb_file
    assert Path(root).resolve() == work.resolve()
    assert Path(data).resolve() == (work / "data").resolve() and (work / "data").is_dir()
    assert any((work / "data").iterdir()), "the notebook's dataset was not written under the working folder"
    assert Path(results).resolve() == (work / "results").resolve()
    print(f"notebook {NOTEBOOK.name} ran from the wheel in quick mode in {seconds:.0f} s")
