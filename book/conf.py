"""Sphinx configuration of the course website: ``make book`` (docs/book.md).

The sources are the repository's own files where they are (README.md as the landing page, docs/, data/README.md,
notebooks/), so every relative link that works on GitHub works on the site; this folder holds only this file and
the site's static files. The notebooks are shown with their committed (default-mode) outputs and never executed.
What is chosen where: fashionlab/book.py (table of contents, how a notebook looks on the site, the link check).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fashionlab import book  # noqa: E402
from fashionlab.nbtools import github_repository  # noqa: E402

REPO = github_repository(ROOT / "pyproject.toml")

project = "fashionlab"
author = "the fashionlab authors"
copyright = "fashionlab authors, MIT licence"
root_doc = "README"
include_patterns = book.INCLUDE
exclude_patterns = book.exclude_patterns(ROOT)

extensions = ["myst_nb"]
nb_execution_mode = "off"              # the committed default-mode outputs, as they are
nb_merge_streams = True
# the widget of notebook 04 has no saved state: show its text (a note that it needs a live kernel), not an empty box
nb_mime_priority_overrides = [("html", book.WIDGET_VIEW, None)]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 6               # GitHub's #anchors of headings, as README and docs link them

# MathJax 3 served by the site itself (the django-static-mathjax package ships its files): no CDN, equations render
# offline; copied into _static/mathjax when the build finishes
mathjax_path = "mathjax/tex-mml-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "fashionlab"
html_static_path = ["_static"]
html_css_files = ["fashionlab.css"]
html_favicon = "_static/favicon.svg"   # without one, Chromium asks for /favicon.ico and logs a 404
html_context = {"default_mode": "light"}  # the theme logs an error for an empty mode on a first visit
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "launch_buttons": {"colab_url": "https://colab.research.google.com", "notebook_interface": "jupyterlab"},
}


def _source_read(app, docname, source):
    """The landing page gets the table of contents; each notebook is shown as fashionlab.book.book_notebook says."""
    if docname == root_doc:
        source[0] += book.toctree_markdown(book.toc(ROOT))
    elif app.env.doc2path(docname).suffix == ".ipynb":
        source[0] = json.dumps(book.book_notebook(json.loads(source[0])), ensure_ascii=False)


def _mathjax_files():
    try:
        import mathjax  # django-static-mathjax: MathJax 3 under mathjax/static/mathjax/es5
    except ImportError as e:
        raise RuntimeError("the book needs MathJax's files: pip install -e '.[book]' (django-static-mathjax)") from e
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"{es5}: no tex-mml-chtml.js; reinstall django-static-mathjax")
    return es5


def _finished(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    shutil.copytree(_mathjax_files(), out / "_static" / "mathjax", dirs_exist_ok=True)
    # the site's front door: GitHub Pages serves index.html; the landing page is README.html
    (out / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>fashionlab</title>\n'
        f'<meta http-equiv="refresh" content="0; url={root_doc}.html"></head>\n'
        f'<body><p><a href="{root_doc}.html">fashionlab: the course</a></p></body></html>\n', encoding="utf-8")
    (out / ".nojekyll").write_text("", encoding="utf-8")


def setup(app):
    _mathjax_files()                   # fail before the build, not after it
    app.connect("source-read", _source_read)
    app.connect("build-finished", _finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
