"""The instructor and student editions (docs/exercises.md): the notebooks' nbgrader cells, nbgrader's student
release of them (no solution, hidden test, rubric or expected value may survive), and grading into a CSV."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from fashionlab import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FIXTURE = ROOT / "tests" / "fixtures" / "course"

pytest.importorskip("nbgrader")


def _source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _regions(text: str, begin: str, end: str) -> list[str]:
    return re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), text, flags=re.S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_instructor_edition_cells(path):
    """At least three build-the-method exercises (3 points), every exercise with a solution region and an
    autograded test, every open question with a model answer and a rubric, one trained exercise, unique ids."""
    nb = json.loads(path.read_text())
    num = path.stem[:2]
    cells = nb["cells"]
    ids = [_nbg(c)["grade_id"] for c in cells if _nbg(c)]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade_id"
    solutions = [c for c in cells if _nbg(c).get("solution") and not _nbg(c).get("grade")]
    tests = [c for c in cells if _nbg(c).get("grade") and not _nbg(c).get("solution")]
    answers = [c for c in cells if _nbg(c).get("grade") and _nbg(c).get("solution")]
    for c in solutions:
        assert "### BEGIN SOLUTION" in _source(c), f"{path.name} {_nbg(c)['grade_id']}: no solution region"
        assert re.fullmatch(rf"nb{num}-e\d+-solution", _nbg(c)["grade_id"]), _nbg(c)["grade_id"]
    for c in tests:
        assert c["cell_type"] == "code" and _nbg(c).get("locked") and _nbg(c).get("points", 0) > 0
        assert re.fullmatch(rf"nb{num}-e\d+-test\d*", _nbg(c)["grade_id"]), _nbg(c)["grade_id"]
        assert "check" in _source(c), f"{path.name} {_nbg(c)['grade_id']}: a test cell calls exercises.check"
    for c in answers:
        src = _source(c)
        assert c["cell_type"] == "markdown" and re.fullmatch(rf"nb{num}-q\d+-answer", _nbg(c)["grade_id"])
        region = "".join(_regions(src, "### BEGIN SOLUTION", "### END SOLUTION"))
        assert "Model answer" in region and "Rubric" in region, f"{path.name} {_nbg(c)['grade_id']}"
    build = {_nbg(c)["grade_id"].rsplit("-", 1)[0] for c in tests if _nbg(c).get("points", 0) >= 3}
    assert len(build) >= 3, f"{path.name}: {len(build)} build-the-method exercises (3 points), need three"
    solved = {_nbg(c)["grade_id"].rsplit("-", 1)[0] for c in solutions}
    assert build <= solved, f"{path.name}: build exercises without a solution cell: {sorted(build - solved)}"
    assert answers, f"{path.name}: no open question"
    assert any("trained-exercise" in c.get("metadata", {}).get("tags", []) for c in cells), \
        f"{path.name}: no cell tagged trained-exercise (a student's piece trained through the recipe)"
    assert not any("<details>" in _source(c) for c in cells), f"{path.name}: a <details> solution is left"
    for c in cells:  # committed outputs never show an expected value
        for out in c.get("outputs", []):
            text = "".join(out.get("text", "")) if isinstance(out.get("text", ""), list) else out.get("text", "")
            assert not re.search(r"\bexpected [-\d]", text), f"{path.name}: output shows an expected value"


def _assert_clean_release(source_nb: dict, release_nb: dict, name: str) -> None:
    release_text = "\n".join(_source(c) for c in release_nb["cells"])
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                   "Model answer", "Rubric (", "BEGIN MARK SCHEME"):
        assert marker not in release_text, f"{name}: the student edition contains {marker!r}"
    def strip(text):
        for begin, end in (("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")):
            text = re.sub(re.escape(begin) + r".*?" + re.escape(end), "", text, flags=re.S)
        return text

    # lines the student may see anyway (lecture cells, the visible part of tests) are not leaks
    visible = {line.strip() for c in source_nb["cells"] for line in strip(_source(c)).splitlines()}
    for cell in source_nb["cells"]:
        src = _source(cell)
        hidden = _regions(src, "### BEGIN SOLUTION", "### END SOLUTION") + \
            _regions(src, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
        for region in hidden:
            for line in region.splitlines():
                line = line.strip()
                if len(line) > 12 and not line.startswith("#") and line not in visible:
                    assert line not in release_text, f"{name}: solution or hidden line in the student edition: {line!r}"
    for cell in release_nb["cells"]:
        assert not cell.get("outputs"), f"{name}: the student edition keeps outputs"
        if _nbg(cell).get("grade") and not _nbg(cell).get("solution"):
            src = _source(cell)
            assert not re.search(r"\bexpected\W{0,3}([-+]?\d|\{)", src), \
                f"{name} {_nbg(cell)['grade_id']}: a test shows an expected value"
            for call in re.findall(r"check_value\(([^\n]*)", src):
                assert re.search(r"['\"][0-9a-f]{16}['\"]", call), f"{name}: check_value without a digest: {call}"


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("course") / "course"
    return root, course.student_edition(root=root)


def test_student_edition_of_every_notebook_hides_the_answers(releases):
    root, paths = releases
    assert [p.parent.name for p in paths] == [p.stem for p in NOTEBOOKS]
    for src, rel in zip(NOTEBOOKS, paths):
        _assert_clean_release(json.loads(src.read_text()), json.loads(rel.read_text()), src.name)


def test_release_check_catches_a_leak(tmp_path):
    """The check above is not vacuous: a release that kept a solution line or a hidden test fails it."""
    src = json.loads((FIXTURE / "98_tiny_course.ipynb").read_text())
    leaky = json.loads(json.dumps(src))
    for c in leaky["cells"]:
        text = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", _source(c), flags=re.S)
        text = text.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
        c["source"] = text.replace("Model answer", "Answer").replace("Rubric (", "Points (")
        if c["cell_type"] == "code":
            c["outputs"] = []
    with pytest.raises(AssertionError, match="solution or hidden line"):
        _assert_clean_release(src, leaky, "leaky")


def test_grade_writes_scores_per_student_and_exercise(tmp_path, monkeypatch):
    """nbgrader autogrades three students of the fixture notebook: the solution, nothing, and a wrong answer."""
    monkeypatch.setenv("FASHIONLAB_COURSE_NOTEBOOKS", str(FIXTURE))
    root = tmp_path / "course"
    (rel,) = course.student_edition(root=root)
    subs = tmp_path / "submitted"
    name = rel.stem
    for student, nb in (("ada", FIXTURE / f"{name}.ipynb"), ("bob", rel)):
        (subs / student / name).mkdir(parents=True)
        shutil.copyfile(nb, subs / student / name / f"{name}.ipynb")
    wrong = json.loads(rel.read_text())
    for c in wrong["cells"]:
        if _nbg(c).get("grade_id") == "nb98-e1-solution":
            c["source"] = "def mean_ap(aps):\n    return float(sum(aps))"  # forgets to divide
        if _nbg(c).get("grade_id") == "nb98-e1-test":
            c["source"] = "pass  # a student who empties the test cell gets it restored"
    (subs / "cy").mkdir()
    (subs / "cy" / f"{name}.ipynb").write_text(json.dumps(wrong))  # the flat layout is accepted too
    rows = course.grade(subs, tmp_path / "grades.csv", root=root, generate=False)
    with open(tmp_path / "grades.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == 6
    score = {(r["student"], r["exercise"]): (float(r["score"]), float(r["max_score"])) for r in table}
    assert score[("ada", "nb98-e1-test")] == (3.0, 3.0)
    assert score[("bob", "nb98-e1-test")] == (0.0, 3.0)
    assert score[("cy", "nb98-e1-test")] == (0.0, 3.0)
    assert {r["kind"] for r in table if r["exercise"] == "nb98-q1-answer"} == {"manual"}


def test_unknown_notebook_is_named():
    with pytest.raises(SystemExit, match="no notebook"):
        course.notebook_names(["42"])
