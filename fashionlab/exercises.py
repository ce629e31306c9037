"""Self-checks and fallbacks for the notebooks' exercises, in the nbgrader format (docs/exercises.md).

The notebooks in the repository are the instructor edition: every exercise has a solution cell (the answer
between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers) and a locked, autograded test cell.
``make student`` runs nbgrader, which replaces each solution region with ``raise NotImplementedError()`` and
removes the hidden tests. This module is what those test cells call.

* :func:`check` runs a test function (plain ``assert`` statements against an independent oracle: a value
  worked by hand, a property, or the library's implementation) and prints one line: ``passed``, ``not yet``
  with a hint, or ``not attempted yet``. It never prints the expected value nor the failed assertion.
  While a student works, it never stops the notebook; under nbgrader's autograder or validator
  (``NBGRADER_EXECUTION`` is set) or with ``FASHIONLAB_STRICT_EXERCISES=1`` it raises, so the test cell
  scores zero.
* :func:`check_value` compares a number with a salted digest of the rounded answer, for "compute a number"
  exercises whose answer must not appear in the student's copy.
* :func:`answer_or_library` lets the cells after an exercise run on the library's version when the student's
  answer is missing (and says so), so an unanswered exercise never breaks a lecture cell.
"""
from __future__ import annotations

import hashlib
import math
import os
from typing import Any, Callable

__all__ = ["check", "check_value", "digest", "answer_or_library", "answered", "grading", "Verdict"]


class Verdict(str):
    """The verdict line, a ``str``; ``.passed`` is True, False, or None when not attempted."""

    passed: bool | None


def grading() -> bool:
    """True under nbgrader's autograder or validator, or with ``FASHIONLAB_STRICT_EXERCISES=1``."""
    return bool(os.environ.get("NBGRADER_EXECUTION")) or os.environ.get("FASHIONLAB_STRICT_EXERCISES") == "1"


def _verdict(name: str, passed: bool | None, hint: str) -> Verdict:
    if passed:
        line = f"[{name}] passed"
    elif passed is None:
        line = f"[{name}] not attempted yet" + (f". Hint: {hint}" if hint else "")
    else:
        line = f"[{name}] not yet" + (f". Hint: {hint}" if hint else "")
    print(line)
    res = Verdict(line)
    res.passed = passed
    return res


def check(name: str, test: Callable[[], Any], hint: str = "") -> Verdict:
    """Run ``test()`` and print whether the exercise ``name`` passes, with ``hint`` when it does not.

    ``test`` holds ``assert`` statements. ``NotImplementedError`` (the stub nbgrader leaves in the student's
    copy) or a ``None`` answer reaching a ``TypeError`` count as not attempted; an ``AssertionError`` or any
    other exception as not yet. Only the hint is shown, never the assertion's values. Under grading
    (:func:`grading`) a failure is raised as ``AssertionError`` so nbgrader gives the cell no points.
    """
    if not callable(test) or not isinstance(hint, str):
        raise TypeError(f"check({name!r}, ...): expected a test function of no arguments and a hint string, got "
                        f"{type(test).__name__} and {type(hint).__name__}")
    try:
        test()
    except NotImplementedError:
        if grading():
            raise AssertionError(f"[{name}] not attempted") from None
        return _verdict(name, None, hint)
    except Exception as exc:  # noqa: BLE001 - a student's code may raise anything
        if grading():
            raise AssertionError(f"[{name}] not yet. Hint: {hint}") from None
        kind = "" if isinstance(exc, AssertionError) else f" (your code raised {type(exc).__name__})"
        return _verdict(name + kind, False, hint)
    return _verdict(name, True, hint)


def _fmt(value: float, decimals: int) -> str:
    return f"{round(float(value), decimals):.{decimals}f}".replace("-0." + "0" * decimals, "0." + "0" * decimals)


def digest(value: float, decimals: int = 3, salt: str = "") -> str:
    """A short salted SHA-256 digest of ``value`` rounded to ``decimals``: what :func:`check_value` compares."""
    return hashlib.sha256(f"fashionlab:{salt}:{_fmt(value, decimals)}".encode()).hexdigest()[:16]


def check_value(name: str, yours, expected_digest: str, decimals: int = 3, hint: str = "") -> Verdict:
    """Check a number against the digest of the answer (rounded to ``decimals``; one unit either side passes).

    ``yours`` may be a value or a zero-argument function (called here). The salt is ``name``, so the same
    number gives a different digest in every exercise.
    """

    def test():
        v = yours() if callable(yours) else yours
        if v is None:
            raise NotImplementedError
        v = float(v)
        assert math.isfinite(v)
        step = 10.0 ** -decimals
        assert any(digest(v + k * step, decimals, name) == expected_digest for k in (-1, 0, 1))

    return check(name, test, hint)


def answered(fn: Callable[[], Any]) -> bool:
    """True when ``fn()`` returns something other than None without raising ``NotImplementedError``."""
    try:
        return fn() is not None
    except NotImplementedError:
        return False


def answer_or_library(name: str, yours, library, probe: Callable[[Any], Any] | None = None):
    """The student's answer when it is there, else the library's, saying which one the next cells use.

    ``yours`` and ``library`` are functions or classes. ``probe(candidate)`` exercises a candidate (for
    instance, builds the module and runs it on a small input); without it ``yours()`` is called with no
    arguments. A candidate that raises ``NotImplementedError`` or returns None is not answered. Only
    ``NotImplementedError`` falls back: a student's answer that raises anything else is reported as it is.
    """
    run = probe or (lambda f: f())
    if yours is not None and answered(lambda: run(yours)):
        print(f"[{name}] the cells below use your answer")
        return yours
    print(f"[{name}] not answered yet: the cells below use the library's version")
    return library
