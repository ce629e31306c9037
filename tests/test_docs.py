"""Every reference to the project's documents resolves inside the repository (issue 17, item 9).

What a clone of the repository holds is all a reader has, so:

(a) a reference ``docs/<name>.md`` names a file of ``docs/``; a ``§N`` or ``§N.M`` (or ``section N.M``) right
    after it is a numbered heading of that file; ``principle N`` is an item of the numbered list under
    ``## Principles`` in ``docs/architecture.md``; a quoted name (``docs/architecture.md, "Results file"``,
    ``docs/implementations.md §3 "TripletSampler"``) is the start of a heading of that file (inside the section
    when a § comes before it);
(b) nothing points at the course materials' design notes, reference facts or paper texts, which a clone lacks
    (``../shared/realdata``, the real split files, is allowed: tests and notebooks skip without it);
(c) relative markdown links ``[text](path)`` in the READMEs, ``docs/*.md`` and the notebooks' markdown cells
    resolve, and a ``#fragment`` on a ``.md`` target is one of its headings;
(d) the README and every notebook link a paper page and a dataset page listed in ``docs/papers.md``.

Each failure names the file, the line and the reference. ``test_checker_*`` run the checks on small bad
samples, so a checker that silently accepts everything fails too.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

REQUIRED_DOCS = ("README.md", "architecture.md", "formats.md", "protocols.md", "implementations.md",
                 "recipes.md", "papers.md")

# what a clone does not have (b); ``../shared/realdata`` is deliberately absent from this list
FORBIDDEN = {
    "the course materials' folders": re.compile(r"\.\./shared/(?:reference|design|papers)\b"),
    "a file beside the course materials": re.compile(r"(?<![\w/])\.\./(?:reference|design|papers)/"),
    "the course's design notes": re.compile(r"DESIGN\.md"),
    "the course's reference facts": re.compile(r"\b(?:data-formats|evaluation-protocols|reference-implementations)\b"),
}

DOC_REF = re.compile(r"(?<![\w./-])(?:\.\./)?docs/([A-Za-z0-9_-]+)\.md\b")
_SEP = re.compile(r"(?:[\s#]*(?:[,;/]|\band\b)?[\s#]*)")
_SECTION = re.compile(r"(?:§\s?|section\s+)(\d+(?:\.\d+)*)(?![\d.]*\d)")
_PRINCIPLE = re.compile(r"principles?\s+(\d+)((?:\s*(?:,|and|-|–)\s*\d+)*)")
_NAME = re.compile(r"(?:section\s+)?\(?\"([^\"\n]{1,60})\"\)?")
MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
URL = re.compile(r"https?://[^\s)>\]\"'`]+")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:\s+|$)")


# ------------------------------------------------------------------------------------------------------
# reading the documents
# ------------------------------------------------------------------------------------------------------
def headings(text: str) -> list[tuple[int, str | None, str]]:
    """``(level, number or None, title without the number)`` of every markdown heading outside code fences."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            title = m.group(2).strip()
            num = NUMBERED.match(title)
            out.append((len(m.group(1)), num.group(1) if num else None, title[num.end():].strip() if num else title))
    return out


def section(heads: list, number: str) -> list | None:
    """The headings of the section numbered ``number`` (itself first), or None when there is none."""
    for i, (level, num, _) in enumerate(heads):
        if num == number:
            end = next((j for j in range(i + 1, len(heads)) if heads[j][0] <= level), len(heads))
            return heads[i:end]
    return None


def principles(text: str) -> set[int]:
    """The item numbers of the numbered list under the ``Principles`` heading."""
    found, inside = set(), False
    for line in text.splitlines():
        m = HEADING.match(line)
        if m:
            inside = m.group(2).strip().lower().startswith("principles")
            continue
        item = re.match(r"^(\d+)\.\s", line)
        if inside and item:
            found.add(int(item.group(1)))
    return found


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return s.replace(" ", "-")


class Docs:
    """The headings and principles of a docs folder, read once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.heads = {p.name: headings(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.md"))}
        arch = folder / "architecture.md"
        self.principles = principles(arch.read_text(encoding="utf-8")) if arch.exists() else set()


# ------------------------------------------------------------------------------------------------------
# the checks, on one text
# ------------------------------------------------------------------------------------------------------
def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def check_refs(text: str, where: str, docs: Docs) -> list[str]:
    """Problems with the ``docs/<name>.md`` references in ``text`` (a)."""
    problems = []
    for m in DOC_REF.finditer(text):
        name = m.group(1) + ".md"
        at = f"{where}:{_line(text, m.start())}"
        ref = text[m.start():m.end() + 40].split("\n")[0].strip()
        if name not in docs.heads:
            problems.append(f"{at}: {ref!r}: docs/{name} does not exist")
            continue
        heads, current, pos = docs.heads[name], None, m.end()
        while True:
            sep = _SEP.match(text, pos)
            p = sep.end() if sep else pos
            if (t := _SECTION.match(text, p)):
                current = section(heads, t.group(1))
                if current is None:
                    problems.append(f"{at}: {ref!r}: docs/{name} has no heading numbered {t.group(1)}")
            elif (t := _PRINCIPLE.match(text, p)):
                nums = [int(t.group(1))] + [int(n) for n in re.findall(r"\d+", t.group(2))]
                if name != "architecture.md":
                    problems.append(f"{at}: {ref!r}: principles are numbered in docs/architecture.md, not docs/{name}")
                for n in nums:
                    if n not in docs.principles:
                        problems.append(f"{at}: {ref!r}: docs/architecture.md has no principle {n}")
            elif (t := _NAME.match(text, p)):
                wanted = t.group(1).strip().lower()
                pool = current if current is not None else heads
                if not any(title.lower().startswith(wanted) for _, _, title in pool):
                    inside = f" section {pool[0][1]}" if current is not None else ""
                    problems.append(f"{at}: {ref!r}: docs/{name}{inside} has no heading {t.group(1)!r}")
            else:
                break
            pos = t.end()
    return problems


def check_forbidden(text: str, where: str) -> list[str]:
    """References to files a clone does not have (b)."""
    problems = []
    for what, pattern in FORBIDDEN.items():
        for m in pattern.finditer(text):
            problems.append(f"{where}:{_line(text, m.start())}: {m.group(0)!r} points at {what}, which a clone lacks")
    return problems


def check_links(text: str, where: str, base: Path) -> list[str]:
    """Relative markdown links of ``text`` resolved against the folder ``base`` (c)."""
    problems = []
    for m in MD_LINK.finditer(text):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # a web address, mailto:, or an anchor in the same page
        path, _, fragment = target.partition("#")
        at = f"{where}:{_line(text, m.start())}"
        dest = (base / path).resolve()
        if not dest.exists():
            problems.append(f"{at}: link {target!r}: {path} does not exist")
        elif fragment and dest.suffix == ".md":
            anchors = {slug(t if n is None else f"{n} {t}") for _, n, t in headings(dest.read_text(encoding="utf-8"))}
            if fragment not in anchors:
                problems.append(f"{at}: link {target!r}: {path} has no heading with anchor #{fragment}")
    return problems


# ------------------------------------------------------------------------------------------------------
# the files scanned
# ------------------------------------------------------------------------------------------------------
def notebook_cells(path: Path) -> list[tuple[int, str, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [(i, c["cell_type"], "".join(c["source"])) for i, c in enumerate(nb["cells"])]


def scanned_texts() -> list[tuple[str, str, Path, bool]]:
    """``(where, text, folder for relative links, check links?)`` for every file whose references must resolve."""
    out = []
    files = [ROOT / "README.md", ROOT / "data" / "README.md", *sorted(DOCS.glob("*.md"))]
    for p in files:
        if p.exists():
            out.append((str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"), p.parent, True))
    code = [*sorted((ROOT / "fashionlab").rglob("*.py"))]
    for folder in ("benchmarks", "scripts"):
        code += [p for p in sorted((ROOT / folder).rglob("*")) if p.is_file() and p.suffix in (".py", ".md", ".txt", ".sh")]
    code += sorted((ROOT / "tests" / "fixtures").rglob("*.md"))
    for p in code:
        out.append((str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"), p.parent, p.suffix == ".md"))
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, kind, src in notebook_cells(nb):
            out.append((f"{nb.relative_to(ROOT)}[cell {i}]", src, nb.parent, kind == "markdown"))
    return out


@pytest.fixture(scope="module")
def docs() -> Docs:
    return Docs(DOCS)


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------------------
# the tests on the repository
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", REQUIRED_DOCS)
def test_the_docs_exist(name):
    assert (DOCS / name).is_file(), f"docs/{name} is missing"


def test_numbered_sections_match_the_references(docs):
    """The numbering that code cites (docs/formats.md §5.x, docs/protocols.md §4.x, docs/implementations.md §N,
    docs/architecture.md principles 1-6) is present."""
    numbers = {name: {n for _, n, _ in h if n} for name, h in docs.heads.items()}
    assert {"5", "5.1", "5.2", "5.3", "5.4", "5.5", "5.6"} <= numbers["formats.md"]
    assert {"4", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6"} <= numbers["protocols.md"]
    assert {"2", "3", "6", "7", "8", "10"} <= numbers["implementations.md"]
    assert docs.principles == {1, 2, 3, 4, 5, 6}


def test_doc_references_resolve(docs):
    problems = []
    for where, text, _, _ in scanned_texts():
        problems += check_refs(text, where, docs)
    assert not problems, _report(problems)


def test_nothing_points_at_files_a_clone_lacks():
    problems = []
    for where, text, _, _ in scanned_texts():
        problems += check_forbidden(text, where)
    assert not problems, _report(problems)


def test_markdown_links_resolve():
    problems = []
    for where, text, base, links in scanned_texts():
        if links:
            problems += check_links(text, where, base)
    assert not problems, _report(problems)


def listed_urls() -> dict[str, set[str]]:
    """The web addresses of ``docs/papers.md``, by its ``## Papers`` and ``## Datasets`` sections."""
    out, current = {"papers": set(), "datasets": set()}, None
    for line in (DOCS / "papers.md").read_text(encoding="utf-8").splitlines():
        m = HEADING.match(line)
        if m and len(m.group(1)) == 2:
            title = m.group(2).strip().lower()
            current = "papers" if title.startswith("papers") else "datasets" if title.startswith("datasets") else None
        elif current:
            out[current].update(u.rstrip(".,;") for u in URL.findall(line))
    return out


def test_papers_page_lists_papers_and_datasets():
    urls = listed_urls()
    assert len(urls["papers"]) >= 8, urls["papers"]  # six papers, CSN, ASEN++ (some with two addresses)
    assert len(urls["datasets"]) >= 6, urls["datasets"]


@pytest.mark.parametrize("where", ["README.md", *sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))])
def test_readme_and_notebooks_link_a_paper_and_a_dataset(where):
    path = ROOT / where if where == "README.md" else ROOT / "notebooks" / where
    text = path.read_text(encoding="utf-8") if path.suffix == ".md" else \
        "\n".join(src for _, _, src in notebook_cells(path))
    found = {u.rstrip(".,;") for u in URL.findall(text)}
    urls = listed_urls()
    missing = [kind for kind in ("papers", "datasets") if not found & urls[kind]]
    assert not missing, (f"{where} links no {' and no '.join(k[:-1] + ' page' for k in missing)} "
                         "listed in docs/papers.md (link the paper's DOI/arXiv page and the real dataset's page)")


# ------------------------------------------------------------------------------------------------------
# the checks can fail
# ------------------------------------------------------------------------------------------------------
@pytest.fixture
def sample_docs(tmp_path) -> Docs:
    (tmp_path / "formats.md").write_text("# F\n\n## 5. Formats\n\n### 5.1 ASEN split files\n\n#### Layout\n\n"
                                         "### 5.2 Label CSV\n")
    (tmp_path / "architecture.md").write_text("# A\n\n## Principles\n\n1. **One.** x\n2. **Two.** y\n\n"
                                              "## Results file\n\n## Evaluation\n")
    return Docs(tmp_path)


def test_checker_accepts_good_references(sample_docs):
    good = ('see docs/formats.md §5.1 and docs/formats.md §5.2; docs/architecture.md, principle 2;\n'
            'docs/architecture.md, "Results file"; docs/formats.md §5.1 "Layout", §5.2; docs/formats.md section\n'
            '5.1; docs/architecture.md principles 1 and 2; (docs/architecture.md "Evaluation").')
    assert check_refs(good, "good.py", sample_docs) == []


@pytest.mark.parametrize("bad, expected", [
    ("see docs/missing.md for more", "docs/missing.md does not exist"),
    ("docs/formats.md §5.7 (none)", "no heading numbered 5.7"),
    ("docs/formats.md §4", "no heading numbered 4"),
    ("docs/architecture.md, principle 7", "no principle 7"),
    ("docs/architecture.md, principles 1 and 9", "no principle 9"),
    ('docs/architecture.md, "Results table"', "no heading 'Results table'"),
    ('docs/formats.md §5.2 "Layout"', "section 5.2 has no heading 'Layout'"),
    ("docs/formats.md, principle 1", "principles are numbered in docs/architecture.md"),
])
def test_checker_rejects_bad_references(sample_docs, bad, expected):
    problems = check_refs("x = 1\n# " + bad + "\n", "bad.py", sample_docs)
    assert len(problems) == 1 and "bad.py:2:" in problems[0] and expected in problems[0], problems


@pytest.mark.parametrize("bad", ["../shared/reference/x.md §5.1", "the text in ../shared/papers/01_x.txt",
                                 "DESIGN.md, principle 4", "data-formats §5.6", "evaluation-protocols §4.1",
                                 "reference-implementations §3", "``../reference/x.md``", "../shared/design/"])
def test_checker_rejects_what_a_clone_lacks(bad):
    problems = check_forbidden("ok\n" + bad, "bad.md")
    assert problems and all(p.startswith("bad.md:2:") for p in problems), problems


def test_checker_allows_the_real_split_files():
    assert check_forbidden("tests read ../shared/realdata when it exists", "ok.py") == []


def test_checker_rejects_broken_links(tmp_path):
    (tmp_path / "there.md").write_text("# Title\n\n## 5.1 ASEN split files\n")
    text = ("[ok](there.md) [ok](there.md#51-asen-split-files) [web](https://example.org/x) [top](#here)\n"
            "[gone](nothere.md) [bad anchor](there.md#nowhere)\n")
    problems = check_links(text, "page.md", tmp_path)
    assert len(problems) == 2 and all(p.startswith("page.md:2:") for p in problems), problems
    assert "nothere.md does not exist" in problems[0] and "#nowhere" in problems[1]
