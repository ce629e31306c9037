"""The course around the notebooks, through nbgrader (docs/exercises.md): the student edition and grading.

The notebooks in ``notebooks/`` are the instructor (nbgrader *source*) edition. This module lays out an
nbgrader course folder (``course/`` at the repository root, ignored by git) with one assignment per notebook,
and drives nbgrader's own commands in it:

``python -m fashionlab.course student [--only 03 ...]``
    ``nbgrader generate_assignment`` for each notebook: ``course/release/<name>/<name>.ipynb`` is the student
    edition (solutions replaced by stubs, hidden tests and mark schemes removed, outputs cleared).
``python -m fashionlab.course grade SUBMITTED [--csv FILE]``
    ``nbgrader autograde`` of ``SUBMITTED/<student>/<name>/<name>.ipynb`` (or ``SUBMITTED/<student>/<name>.ipynb``)
    in quick mode, then one CSV row per student, notebook and graded cell (``course/grades.csv``).
``python -m fashionlab.course grade-check [--only 03 ...]``
    What CI runs: the instructor edition must get full marks on every autograded cell, and the student edition
    with nothing answered zero marks, with no error in any cell other than an autograded test.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import display_path, project_root

__all__ = ["course_dir", "notebooks_dir", "notebook_names", "student_edition", "grade", "grade_check", "GradeRow", "main"]

_CONFIG = '''\
# nbgrader configuration for the fashionlab course folder (written by python -m fashionlab.course).
import os

c = get_config()  # noqa: F821 - provided by nbgrader
c.CourseDirectory.course_id = "fashionlab"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.Execute.timeout = 1800  # seconds per cell: a recipe cell trains models
# autograding runs the notebooks in quick mode: small data, a minute or two per notebook on a laptop
os.environ.setdefault("FASHIONLAB_MODE", "quick")
os.environ.setdefault("FASHIONLAB_PROGRESS", "0")
'''


def course_dir() -> Path:
    """``$FASHIONLAB_COURSE`` or ``<repository>/course`` (ignored by git)."""
    return Path(os.environ.get("FASHIONLAB_COURSE") or project_root() / "course")


def notebooks_dir() -> Path:
    """Where the instructor edition lives: ``$FASHIONLAB_COURSE_NOTEBOOKS`` or ``<repository>/notebooks``."""
    return Path(os.environ.get("FASHIONLAB_COURSE_NOTEBOOKS") or project_root() / "notebooks")


def notebook_names(only: list[str] | None = None) -> list[str]:
    """The course notebooks' names (``00_attributes_data_protocol`` ...), optionally those whose number is in ``only``."""
    names = sorted(p.stem for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.zfill(2) if o.isdigit() else o for o in only}
        unknown = wanted - {n[:2] for n in names} - set(names)
        if unknown:
            raise SystemExit(f"fashionlab course: no notebook {sorted(unknown)} in {display_path(notebooks_dir())} (have {names})")
        names = [n for n in names if n[:2] in wanted or n in wanted]
    return names


def _nbgrader(root: Path, *args: str, quiet: bool = True) -> None:
    cmd = [sys.executable, "-m", "nbgrader", *args, "--log-level=ERROR" if quiet else "--log-level=INFO"]
    env = dict(os.environ)  # nbgrader calls the alembic command: the environment's bin folder goes first on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {display_path(root)}:\n{proc.stdout}{proc.stderr}")


def _prepare(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(_CONFIG)
    for name in names:
        src = notebooks_dir() / f"{name}.ipynb"
        dest = root / "source" / name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / f"{name}.ipynb")


def student_edition(only: list[str] | None = None, root: Path | None = None) -> list[Path]:
    """Write the student edition of each notebook with ``nbgrader generate_assignment``; return the paths."""
    root = root or course_dir()
    names = notebook_names(only)
    _prepare(root, names)
    out = []
    for name in names:
        _nbgrader(root, "generate_assignment", name, "--force", "--create")
        out.append(root / "release" / name / f"{name}.ipynb")
        print(f"student edition: {display_path(out[-1])}")
    return out


@dataclass(frozen=True)
class GradeRow:
    """One graded cell of one student's notebook, as nbgrader's gradebook holds it."""

    student: str
    notebook: str
    cell: str
    score: float
    max_score: float
    needs_manual_grade: bool
    kind: str  # "autograded" (a test cell) or "manual" (an open question)


def _collect(submitted: Path, root: Path, names: list[str]) -> list[str]:
    """Copy ``submitted`` into the course's ``submitted/`` folder in nbgrader's layout; return the students."""
    if not submitted.is_dir():
        raise SystemExit(f"fashionlab course grade: {display_path(submitted)} is not a folder of submissions")
    students = []
    for sdir in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = False
        for name in names:
            for cand in (sdir / name / f"{name}.ipynb", sdir / f"{name}.ipynb"):
                if cand.is_file():
                    dest = root / "submitted" / sdir.name / name
                    if dest.exists():
                        shutil.rmtree(dest)
                    dest.mkdir(parents=True)
                    shutil.copyfile(cand, dest / f"{name}.ipynb")
                    found = True
                    break
        if found:
            students.append(sdir.name)
        else:
            print(f"fashionlab course grade: {display_path(sdir)} holds none of the course notebooks; skipped",
                  file=sys.stderr)
    if not students:
        raise SystemExit(f"fashionlab course grade: no submissions in {display_path(submitted)} "
                         f"(expected STUDENT/NAME/NAME.ipynb or STUDENT/NAME.ipynb, NAME one of {names})")
    return students


def _rows(root: Path, students: list[str], names: list[str]) -> list[GradeRow]:
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in students:
            for name in names:
                try:
                    nb = gb.find_submission_notebook(name, name, student)
                except MissingEntry:
                    continue
                for g in sorted(nb.grades, key=lambda g: g.cell.name):
                    kind = "manual" if g.cell.name.endswith("-answer") or g.needs_manual_grade else "autograded"
                    rows.append(GradeRow(student, name, g.cell.name, float(g.score or 0.0), float(g.max_score),
                                         bool(g.needs_manual_grade), kind))
    return rows


def grade(submitted: Path, csv_path: Path | None = None, only: list[str] | None = None,
          root: Path | None = None, generate: bool = True) -> list[GradeRow]:
    """Autograde the submissions with nbgrader (in quick mode) and write one CSV row per student and graded cell.

    ``generate`` first runs :func:`student_edition` (the gradebook needs the assignments and their test cells,
    which autograde restores in every submission)."""
    root = root or course_dir()
    names = notebook_names(only)
    if generate:
        student_edition(only, root)
    students = _collect(Path(submitted), root, names)
    for name in names:
        if any((root / "submitted" / s / name).is_dir() for s in students):
            print(f"autograding {name} ...", flush=True)
            _nbgrader(root, "autograde", name, "--force", "--create")
    rows = _rows(root, students, names)
    csv_path = Path(csv_path) if csv_path else root / "grades.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "notebook", "exercise", "score", "max_score", "kind", "needs_manual_grade"])
        for r in rows:
            w.writerow([r.student, r.notebook, r.cell, f"{r.score:g}", f"{r.max_score:g}", r.kind,
                        "yes" if r.needs_manual_grade else "no"])
    for s in students:
        auto = [r for r in rows if r.student == s and r.kind == "autograded"]
        print(f"{s}: {sum(r.score for r in auto):g} / {sum(r.max_score for r in auto):g} autograded points; "
              f"{sum(r.kind == 'manual' for r in rows if r.student == s)} open answers to grade by hand")
    print(f"scores per student and exercise: {display_path(csv_path)}")
    return rows


def _errors_outside_tests(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    bad = []
    for i, cell in enumerate(nb["cells"]):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        is_test = meta.get("grade") and not meta.get("solution")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and not is_test:
                bad.append(f"cell {i} ({meta.get('grade_id', 'lecture')}): {out.get('ename')}: {out.get('evalue')}")
    return bad


def grade_check(only: list[str] | None = None) -> int:
    """Autograde both editions: the instructor's must score full marks, the unanswered student's zero."""
    names = notebook_names(only)
    course_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".grade-check-", dir=course_dir()) as tmp:
        root = Path(tmp) / "course"
        releases = student_edition(only, root)
        subs = Path(tmp) / "submitted"
        for name, rel in zip(names, releases):
            for student, src in (("solutions", notebooks_dir() / f"{name}.ipynb"), ("blank", rel)):
                (subs / student / name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, subs / student / name / f"{name}.ipynb")
        rows = grade(subs, Path(tmp) / "grades.csv", only, root, generate=False)
        problems = []
        for name in names:
            auto = [r for r in rows if r.notebook == name and r.kind == "autograded"]
            if not auto:
                problems.append(f"{name}: no autograded cell")
            for r in auto:
                if r.student == "solutions" and r.score != r.max_score:
                    problems.append(f"{name}: the instructor edition scores {r.score:g}/{r.max_score:g} on {r.cell}")
                if r.student == "blank" and r.score != 0:
                    problems.append(f"{name}: the unanswered student edition scores {r.score:g} on {r.cell}")
            for student in ("solutions", "blank"):
                graded = root / "autograded" / student / name / f"{name}.ipynb"
                problems += [f"{name} ({student} edition): error in {e}" for e in _errors_outside_tests(graded)]
        for p in problems:
            print(f"grade-check: {p}", file=sys.stderr)
        if not problems:
            print(f"grade-check: {len(names)} notebooks; the instructor edition gets full marks, the unanswered "
                  "student edition zero, and no lecture cell raises in either")
        return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fashionlab.course", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("student", help="write the student edition into course/release/")
    s.add_argument("--only", nargs="+", help="notebook numbers (00 ... 06) or names")
    g = sub.add_parser("grade", help="autograde SUBMITTED/<student>/<name>/<name>.ipynb; scores to a CSV")
    g.add_argument("submitted", type=Path)
    g.add_argument("--csv", type=Path, help="where the scores go (default course/grades.csv)")
    g.add_argument("--only", nargs="+")
    c = sub.add_parser("grade-check", help="both editions autograded: full marks and zero marks")
    c.add_argument("--only", nargs="+")
    args = p.parse_args(argv)
    try:
        if args.command == "student":
            student_edition(args.only)
        elif args.command == "grade":
            grade(args.submitted, args.csv, args.only)
        else:
            return grade_check(args.only)
    except RuntimeError as exc:
        print(f"fashionlab course: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
