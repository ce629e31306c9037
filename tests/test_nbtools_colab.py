"""``python -m fashionlab.nbtools --colab``: the "Open in Colab" badge and the setup cell (issue 20, "Colab and
friends"), on the tiny course notebook of tests/fixtures/course, never on notebooks/."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fashionlab import nbtools

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "course" / "98_tiny_course.ipynb"


def _src(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def test_repository_comes_from_pyproject(tmp_path):
    repo = nbtools.github_repository()
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo)
    assert f'Repository = "https://github.com/{repo}"' in (ROOT / "pyproject.toml").read_text()
    other = tmp_path / "pyproject.toml"
    other.write_text('[project]\nname = "x"\n\n[project.urls]\nHomepage = "https://e.org"\n'
                     'Repository = "https://github.com/someone/fork.git"\n\n[tool.x]\na = 1\n')
    assert nbtools.github_repository(other) == "someone/fork"
    other.write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match=r"\[project.urls\]"):
        nbtools.github_repository(other)


def test_badge_and_setup_cell_idempotent(tmp_path, capsys):
    nb_path = tmp_path / FIXTURE.name
    shutil.copyfile(FIXTURE, nb_path)
    before = json.loads(FIXTURE.read_text())
    assert nbtools.main(["--colab", str(nb_path)]) == 0
    once = nb_path.read_text()
    nb = json.loads(once)
    title = _src(nb["cells"][0])
    url = f"https://colab.research.google.com/github/{nbtools.github_repository()}/blob/main/notebooks/{FIXTURE.name}"
    assert title.startswith("# 98 · A tiny course notebook\n\n[![Open In Colab](") and f"]({url})" in title
    assert title.replace(title.splitlines(keepends=True)[2] + "\n", "") == _src(before["cells"][0])
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    setup = code[0]
    assert nbtools.COLAB_TAG in setup["metadata"]["tags"] and setup["outputs"] == []
    assert setup["metadata"]["nbgrader"] == {"grade": False, "grade_id": "nb98-colab-setup", "locked": True,
                                             "schema_version": 3, "solution": False}
    assert f"git+https://github.com/{nbtools.github_repository()}" in _src(setup)
    assert [_src(c) for c in nb["cells"] if c is not setup][1:] == [_src(c) for c in before["cells"]][1:]
    assert len(nb["cells"]) == len(before["cells"]) + 1

    assert nbtools.main(["--colab", str(nb_path)]) == 0  # a re-run changes nothing
    assert nb_path.read_text() == once
    assert "0 of 1 notebooks changed" in capsys.readouterr().out

    nbtools.colab_main([str(nb_path)], repo="other/place")  # a new repository replaces, never duplicates
    nb2 = json.loads(nb_path.read_text())
    assert sum(nbtools.COLAB_BADGE in _src(c) for c in nb2["cells"]) == 1
    assert sum(nbtools.COLAB_TAG in c["metadata"].get("tags", []) for c in nb2["cells"]) == 1
    assert "github/other/place/blob/main" in _src(nb2["cells"][0]) and "other/place" in _src(nb2["cells"][1])
    nbtools.colab_main([str(nb_path)], repo=nbtools.github_repository())
    assert nb_path.read_text() == once


def test_setup_cell_is_silent_where_fashionlab_imports_and_installs_elsewhere(monkeypatch):
    src = nbtools.install_cell_source("me/fashionlab")
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, *a, **k: calls.append(cmd))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        exec(compile(src, "<setup cell>", "exec"), {})
    assert out.getvalue() == "" and calls == []  # in a checkout: nothing happens, nothing printed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # on Colab: not importable
    exec(compile(src, "<setup cell>", "exec"), {})
    assert len(calls) == 1 and calls[0][1:5] == ["-m", "pip", "install", "-q"]
    assert calls[0][-1] == "fashionlab @ git+https://github.com/me/fashionlab"


def test_setup_cell_survives_the_student_edition(tmp_path, monkeypatch):
    """nbgrader keeps the locked, ungraded setup cell in the student edition, unchanged and read-only."""
    pytest.importorskip("nbgrader")
    from fashionlab import course

    src_dir = tmp_path / "notebooks"
    src_dir.mkdir()
    shutil.copyfile(FIXTURE, src_dir / FIXTURE.name)
    nbtools.colab_main([str(src_dir / FIXTURE.name)])
    monkeypatch.setenv("FASHIONLAB_COURSE_NOTEBOOKS", str(src_dir))
    (rel,) = course.student_edition(root=tmp_path / "course")
    cells = json.loads(rel.read_text())["cells"]
    setup = [c for c in cells if nbtools.COLAB_TAG in c["metadata"].get("tags", [])]
    assert len(setup) == 1 and _src(setup[0]) == nbtools.install_cell_source(nbtools.github_repository())
    assert setup[0]["metadata"]["nbgrader"]["locked"] is True
    assert nbtools.COLAB_BADGE in _src(cells[0])
