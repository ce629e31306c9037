"""The course website (issue 22; docs/book.md): what goes into it, how the notebooks look there, and a check of the
built site's links.

``make book`` runs Sphinx with MyST-NB over the README, ``docs/``, ``data/README.md`` and the notebooks, with the
configuration in ``book/conf.py``, which takes from here:

* :func:`toc`: the table of contents (the notebooks in their numbered order, the docs, the instructor pages),
  written into the landing page (the README) as hidden toctrees by :func:`toctree_markdown`;
* :func:`book_notebook`: a notebook as the site shows it. The committed notebook is the instructor edition (nbgrader
  source); on the site its solutions and hidden tests are folded (``<details>``: "Show the solution"), the nbgrader
  markers of the model answers do not become headings, and the "Open in Colab" badge is a copy served by the site
  (the link still goes to Colab). Cells, outputs and their order are unchanged: nothing is executed.

``python -m fashionlab.book check SITE`` checks a built site (:func:`check_site`): every relative link and
resource of every page resolves to a file of the site, every ``#fragment`` to an element of its page, and no page
loads a script, stylesheet or image from another host. ``tests/test_book.py`` builds the site and runs it;
``make browser-check`` (tools/browser_check.py) checks the same in Chromium and more.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

from .nbtools import COLAB_BADGE

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_GLOB = "notebooks/[0-9][0-9]_*.ipynb"
#: the source files of the site, relative to the repository root
INCLUDE = ["README.md", "docs/*.md", "data/README.md", NOTEBOOK_GLOB]
#: the docs in reading order (docs/*.md not named here follow them, so a new page is never left out)
DOCS_ORDER = ["docs/README", "docs/architecture", "docs/recipes", "docs/formats", "docs/protocols",
              "docs/implementations", "docs/papers", "docs/distributed", "docs/book", "data/README"]
INSTRUCTOR = ["docs/exercises"]
#: the local copy of the Colab badge (book/_static), used instead of the badge on colab.research.google.com
LOCAL_BADGE = "book/_static/colab-badge.svg"
SOLUTION_PROMPT = "Show the solution (instructor edition)"
TEST_PROMPT = "Show the check (its hidden tests are the instructor's)"
ANSWER_SUMMARY = "Model answer and rubric (instructor edition)"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def toc(root: str | Path = ROOT) -> list[tuple[str, list[str]]]:
    """``[(caption, [docname, ...]), ...]``: the notebooks (numbered order), the docs, the instructor pages."""
    root = Path(root)
    notebooks = [p.relative_to(root).with_suffix("").as_posix() for p in sorted(root.glob(NOTEBOOK_GLOB))]
    present = {p.relative_to(root).with_suffix("").as_posix() for p in root.glob("docs/*.md")}
    present |= {"data/README"} if (root / "data" / "README.md").is_file() else set()
    docs = [d for d in DOCS_ORDER if d in present]
    docs += sorted(present - set(docs) - set(INSTRUCTOR))
    return [("Notebooks", notebooks), ("Docs", docs), ("For instructors", [d for d in INSTRUCTOR if d in present])]


def toctree_markdown(entries: list[tuple[str, list[str]]]) -> str:
    """MyST ``{toctree}`` blocks (hidden: they make the side bar, the landing page keeps its own text)."""
    blocks = []
    for caption, docs in entries:
        if docs:
            blocks.append("```{toctree}\n:hidden:\n:caption: " + caption + "\n\n" + "\n".join(docs) + "\n```\n")
    return "\n\n" + "\n".join(blocks)


def exclude_patterns(root: str | Path = ROOT) -> list[str]:
    """Everything at the top of the repository but the site's sources, and every folder under data/ (generated
    datasets, checkpoints): Sphinx does not even walk into them (.venv is a link to a whole environment)."""
    root = Path(root)
    keep = {"README.md", "docs", "data", "notebooks"}
    out = sorted(p.name for p in root.iterdir() if p.name not in keep)
    data = root / "data"
    if data.is_dir():
        out += sorted(f"data/{p.name}" for p in data.iterdir() if p.is_dir())
    return out


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


_MD_SOLUTION = re.compile(r"^[ \t]*#+[ \t]*BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*#+[ \t]*END SOLUTION[ \t]*$", re.M | re.S)


def book_notebook(nb: dict, badge: str = LOCAL_BADGE) -> dict:
    """The notebook as the site shows it (a changed copy; ``nb`` is not touched). Code cells that hold a solution
    (nbgrader ``solution``) or an autograded check (``grade``) have their source folded (MyST-NB's ``hide-input``,
    the output stays visible); a markdown model answer between ``### BEGIN SOLUTION`` / ``### END SOLUTION``
    becomes a closed ``<details>`` block; the Colab badge image is ``badge`` (a path from the repository root)."""
    nb = json.loads(json.dumps(nb))
    for i, cell in enumerate(nb.get("cells", [])):
        if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5) and "id" not in cell:
            cell["id"] = f"cell-{i}"     # nbformat 4.5 wants one (the Colab setup cell has none)
        meta = cell.setdefault("metadata", {})
        grader = meta.get("nbgrader", {})
        if cell.get("cell_type") == "code" and (grader.get("solution") or grader.get("grade")):
            tags = meta.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
            prompt = SOLUTION_PROMPT if grader.get("solution") else TEST_PROMPT
            meta.setdefault("mystnb", {}).update(code_prompt_show=prompt, code_prompt_hide="Hide it")
        elif cell.get("cell_type") == "markdown":
            src = _source(cell)
            new = src.replace(COLAB_BADGE, "/" + badge.lstrip("/"))
            new = _MD_SOLUTION.sub(lambda m: (f'<details class="fashionlab-answer">\n<summary>{ANSWER_SUMMARY}'
                                              f"</summary>\n\n{m.group(1).strip()}\n\n</details>"), new)
            if new != src:
                cell["source"] = new
    return nb


# ------------------------------------------------------------------------------------------------------ site check
class _Page(HTMLParser):
    """The ids of one HTML page and the URLs it names: ``links`` (a, area: followed by a reader) and ``loads``
    (img, script, link rel=stylesheet/icon, source, iframe: loaded with the page)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag in ("a", "area") and a.get("href") is not None:
            self.links.append(a["href"])
        elif tag in ("img", "script", "source", "iframe", "audio", "video") and a.get("src"):
            self.loads.append(a["src"])
        elif tag == "link" and a.get("href") and a.get("rel", "") != "canonical":
            self.loads.append(a["href"])


def _external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc)


def check_site(site: str | Path) -> tuple[list[str], dict[str, int]]:
    """``(problems, counts)`` for the HTML site in ``site``: each problem ``"page: what"`` names a relative link
    or resource that is not a file of the site, a ``#fragment`` that is no id of its page, or a resource loaded
    from another host; counts: pages, internal links (with fragments), resources, external links."""
    site = Path(site)
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)
    if not pages:
        return [f"{site}: no HTML pages (is the site built? make book)"], {"pages": 0}
    parsed: dict[Path, _Page] = {}
    for p in pages:
        parser = _Page()
        parser.feed(p.read_text(encoding="utf-8", errors="replace"))
        parsed[p.resolve()] = parser
    problems, counts = [], {"pages": len(pages), "internal links": 0, "fragments": 0, "resources": 0,
                            "external links": 0}
    for p in pages:
        page, rel = parsed[p.resolve()], p.relative_to(site).as_posix()
        for url in page.loads:
            if url.startswith("data:") or url.startswith("#"):   # inline data; the search page's rel=search "#"
                continue
            if _external(url):
                problems.append(f"{rel}: loads {url} from another host")
                continue
            counts["resources"] += 1
            target = _target(site, p, url)
            if target is None or not target.is_file():
                problems.append(f"{rel}: resource {url} is not in the site")
        for url in page.links:
            if url.startswith(("mailto:", "javascript:", "tel:")) or url in ("", "#"):
                continue
            if _external(url):
                counts["external links"] += 1
                continue
            counts["internal links"] += 1
            address, fragment = urldefrag(url)
            target = p if not address else _target(site, p, address)
            if target is None or not target.exists():
                problems.append(f"{rel}: link {url} leads to no file of the site")
                continue
            if target.is_dir():
                target = target / "index.html"
                if not target.is_file():
                    problems.append(f"{rel}: link {url} leads to a folder without index.html")
                    continue
            if fragment:
                counts["fragments"] += 1
                ids = parsed.get(target.resolve())
                if ids is not None and unquote(fragment) not in ids.ids:
                    problems.append(f"{rel}: link {url}: {target.relative_to(site).as_posix()} has no id "
                                    f"{unquote(fragment)!r}")
    return problems, counts


def _target(site: Path, page: Path, url: str) -> Path | None:
    path = unquote(urlsplit(url).path)
    target = (site / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    target = Path(*target.parts).resolve()
    try:
        target.relative_to(site.resolve())
    except ValueError:
        return None                   # outside the site
    return target


def main(argv: Iterable[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m fashionlab.book check SITE_FOLDER", file=sys.stderr)
        return 2
    problems, counts = check_site(args[1])
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{args[1]}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
