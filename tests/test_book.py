"""The course website (issue 22, docs/book.md): the site builds from a clean checkout with no Sphinx warning, its
internal links resolve, and it shows what the repository holds: every notebook in order with its committed
outputs (never executed), equations with MathJax served by the site, search, a Colab launch link per notebook, the
docs and the instructor pages. The checker itself is run on small broken sites, so one that accepts everything
fails here.

The build happens once per test session into a temporary folder (about 30 s on two cores), the same command as
``make book``."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fashionlab import book
from fashionlab.nbtools import COLAB_BADGE, colab_url, github_repository

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob(book.NOTEBOOK_GLOB))


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "book"), "-d", str(out / "doctrees"),
           "-W", "--keep-going", "-q", str(ROOT), str(out / "site")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    warnings = [ln for ln in run.stderr.splitlines() if "WARNING" in ln or "ERROR" in ln]
    assert run.returncode == 0 and not warnings, f"the book build failed:\n{run.stderr[-4000:]}"
    return out / "site"


def _html(site: Path, doc: str) -> str:
    return (site / f"{doc}.html").read_text(encoding="utf-8")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


# ------------------------------------------------------------------------------------------------------ the site
def test_internal_links_resolve(site):
    problems, counts = book.check_site(site)
    assert problems == [], "\n".join(problems[:30])
    assert counts["pages"] >= len(NOTEBOOKS) + len(list((ROOT / "docs").glob("*.md"))) + 2
    assert counts["internal links"] > 500 and counts["fragments"] > 100


def test_every_source_is_a_page_and_the_toc_follows_the_notebook_order(site):
    entries = book.toc(ROOT)
    assert entries[0] == ("Notebooks", [p.relative_to(ROOT).with_suffix("").as_posix() for p in NOTEBOOKS])
    listed = [d for _, docs in entries for d in docs]
    assert sorted(listed) == sorted({p.relative_to(ROOT).with_suffix("").as_posix()
                                     for p in [*ROOT.glob("docs/*.md"), ROOT / "data/README.md", *NOTEBOOKS]})
    assert ("For instructors", ["docs/exercises"]) in entries
    for doc in ["README", *listed]:
        assert (site / f"{doc}.html").is_file(), doc
    nav = _html(site, "README").split('class="bd-sidebar-primary', 1)[1].split("</nav>", 1)[0]
    hrefs = re.findall(r'href="([^"#]+\.html)"', nav)
    order = [h.removesuffix(".html") for h in hrefs if h.removesuffix(".html") in listed]
    assert order == listed, "the side bar is not in the table of contents' order"
    assert 'url=README.html' in (site / "index.html").read_text()  # the front door of GitHub Pages


def test_notebooks_show_their_committed_outputs(site):
    """Every image output of a notebook is an image of its page (figures are files of the site), and text outputs
    are there verbatim: the committed outputs, not a re-execution (the build runs no kernel)."""
    for path in NOTEBOOKS:
        page = _html(site, f"notebooks/{path.stem}")
        cells = _cells(path)
        images = sum(1 for c in cells for o in c.get("outputs", [])
                     if {"image/png", "image/jpeg", "image/svg+xml"} & set(o.get("data", {})))
        shown = [s for s in re.findall(r'<img [^>]*src="\.\./_images/([^"]+)"', page) if s != "colab-badge.svg"]
        assert len(shown) == images, f"{path.name}: {len(shown)} images on the page, {images} image outputs"
        streams = ["".join(o["text"]) for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]
        line = next(ln for s in streams for ln in s.splitlines() if len(ln.strip()) > 20 and re.search(r"\d", ln)
                    and not re.search(r"[<&\"']", ln))            # a line with numbers, as the default-mode run printed
        assert line.strip() in page, f"{path.name}: the committed output line {line!r} is not on the page"
    conf = (ROOT / "book" / "conf.py").read_text()
    assert re.search(r'^nb_execution_mode = "off"', conf, re.M)        # MyST-NB starts no kernel


def test_widget_cell_shows_its_static_note(site):
    from fashionlab.searchdemo import STATIC_NOTE

    page = _html(site, "notebooks/04_part_guided_search")
    assert "needs a live kernel" in page and "VBox(children" not in page
    assert "application/vnd.jupyter.widget-view+json" not in page  # no empty widget placeholder
    assert STATIC_NOTE not in page   # the text/html form is preferred on the site; text/plain is the fallback


def test_equations_use_the_sites_own_mathjax(site):
    mathjax = site / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert mathjax.is_file() and (site / "_static/mathjax/output/chtml/fonts/woff-v2").is_dir()
    for path in NOTEBOOKS:
        page = _html(site, f"notebooks/{path.stem}")
        assert len(re.findall(r'class="math notranslate nohighlight"', page)) > 3, path.name
        assert '<script defer="defer" src="../_static/mathjax/tex-mml-chtml.js' in page, path.name
    for page in site.rglob("*.html"):
        assert not re.search(r'<script[^>]+src="(https?:)?//', page.read_text(encoding="utf-8")), page


def test_cross_references_become_links_between_pages(site):
    readme = _html(site, "README")
    assert 'href="docs/architecture.html#trained-model-cache"' in readme
    assert 'href="notebooks/00_attributes_data_protocol.html"' in readme
    assert 'href="#for-instructors-the-student-edition-and-grading"' in readme
    assert 'href="../docs/formats.html' in _html(site, "notebooks/04_part_guided_search")
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        left = [h for h in re.findall(r'<a [^>]*href="([^"]+)"', text)
                if not re.match(r"https?://|mailto:", h) and re.search(r"\.(md|ipynb)(#|$)", h)
                and "_sources/" not in h]
        assert left == [], f"{page.relative_to(site)}: links to source files {left[:5]}"


def test_search_and_a_colab_launch_link_on_every_notebook(site):
    assert (site / "search.html").is_file()
    index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert "jump" in index and "relabel" in index            # words of notebooks 04 and 01 are searchable
    repo = github_repository()
    for path in NOTEBOOKS:
        page = _html(site, f"notebooks/{path.stem}")
        assert f'href="{colab_url(repo, path.name)}"' in page, f"{path.name}: no Colab launch link"
        assert COLAB_BADGE not in page and "../_images/colab-badge.svg" in page   # the site's own badge image


def test_solutions_are_folded_and_model_answers_are_no_headings(site):
    for path in NOTEBOOKS:
        page = _html(site, f"notebooks/{path.stem}")
        cells = _cells(path)
        graded = sum(1 for c in cells if c["cell_type"] == "code"
                     and (c["metadata"].get("nbgrader", {}).get("solution") or c["metadata"].get("nbgrader", {}).get("grade")))
        answers = sum(1 for c in cells if c["cell_type"] == "markdown" and "BEGIN SOLUTION" in "".join(c["source"]))
        assert page.count(book.SOLUTION_PROMPT) + page.count(book.TEST_PROMPT.replace("'", "&#x27;")) == graded, path.name
        assert page.count('<details class="fashionlab-answer">') == answers, path.name
        prose = re.sub(r"<pre.*?</pre>", "", page, flags=re.S)       # code keeps nbgrader's markers (folded)
        assert "BEGIN SOLUTION" not in prose and "END SOLUTION" not in prose, path.name


# ------------------------------------------------------------------------------------------------------ the parts
def test_book_notebook_changes_only_how_cells_show():
    nb = json.loads(NOTEBOOKS[4].read_text(encoding="utf-8"))
    before = json.dumps(nb)
    shown = book.book_notebook(nb)
    assert json.dumps(nb) == before                                   # the input is not changed
    assert len(shown["cells"]) == len(nb["cells"])
    for a, b in zip(nb["cells"], shown["cells"]):
        assert a.get("outputs") == b.get("outputs") and a["cell_type"] == b["cell_type"]
        if a["cell_type"] == "code":
            assert a["source"] == b["source"]
    sol = next(b for b in shown["cells"] if b["metadata"].get("nbgrader", {}).get("solution") and b["cell_type"] == "code")
    assert "hide-input" in sol["metadata"]["tags"]
    assert sol["metadata"]["mystnb"]["code_prompt_show"] == book.SOLUTION_PROMPT
    md = next(b for b in shown["cells"] if b["cell_type"] == "markdown" and "fashionlab-answer" in "".join(b["source"]))
    assert "BEGIN SOLUTION" not in "".join(md["source"]) and "Model answer" in "".join(md["source"])
    assert all("id" in c for c in shown["cells"])


def _write(site: Path, name: str, body: str):
    p = site / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"<html><head></head><body>{body}</body></html>")


def test_checker_finds_broken_links_fragments_and_foreign_resources(tmp_path):
    _write(tmp_path, "index.html", '<h1 id="top">x</h1><a href="a/page.html#here">ok</a><a href="#top">ok</a>'
                                   '<a href="https://example.org/">external, fine</a><img src="img.png">')
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    _write(tmp_path, "a/page.html", '<p id="here"></p><a href="../index.html#top">ok</a><a href="../a/">folder</a>')
    _write(tmp_path, "a/index.html", "<p></p>")
    problems, counts = book.check_site(tmp_path)
    assert problems == [] and counts["pages"] == 3 and counts["external links"] == 1

    _write(tmp_path, "bad.html", '<a href="missing.html">1</a><a href="index.html#nowhere">2</a>'
                                 '<a href="#self">3</a><img src="gone.png">'
                                 '<script src="https://cdn.example.org/x.js"></script><a href="../../etc/passwd">5</a>')
    problems, _ = book.check_site(tmp_path)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    for what in ("missing.html leads to no file", "has no id 'nowhere'", "has no id 'self'", "gone.png is not in",
                 "cdn.example.org/x.js from another host", "passwd leads to no file"):
        assert what in text, what
    assert book.check_site(tmp_path / "nothing")[0][0].endswith("no HTML pages (is the site built? make book)")


def test_pages_workflow_builds_as_make_book_does():
    """.github/workflows/book.yml (it cannot run here): it installs exactly the ``book`` extra and runs the
    Makefile's sphinx-build and link check on the same folders."""
    block = re.search(r"^book = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    extra = re.findall(r'"([^"]+)"', block)       # (tomllib is 3.11+; fashionlab runs on 3.10)
    assert len(extra) >= 4
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    installs = re.search(r"pip install (.+)", workflow).group(1)
    assert sorted(re.findall(r'"([^"]+)"', installs)) == sorted(extra)
    sphinx = re.search(r"sphinx-build (.+)", makefile).group(1).replace("$(BOOK)", "_build/book")
    assert f"python -m sphinx {sphinx}" in workflow
    assert "python -m fashionlab.book check _build/book" in workflow and "path: _build/book" in workflow
