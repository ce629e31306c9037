"""Self-checks for the notebooks' exercises.

An exercise cell leaves the student's answer as ``None`` (or a function that returns ``None``) until they fill
it in; the self-check then prints what is expected next to what the student produced, and never fails the
notebook run (CI executes the notebooks with the exercises unanswered). ``check(..., strict=True)`` raises
instead, for instructors who grade by running the notebook.
"""
from __future__ import annotations

import math

__all__ = ["check", "ExerciseResult"]


class ExerciseResult(str):
    """The verdict line, a ``str``; ``.passed`` is True, False, or None when not attempted."""

    passed: bool | None


def _close(a, b, tol) -> bool:
    try:
        import numpy as np

        a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return a_arr.shape == b_arr.shape and bool(np.allclose(a_arr, b_arr, atol=tol, rtol=0))
    except (TypeError, ValueError):
        return a == b


def check(name: str, yours, expected, tol: float = 1e-6, strict: bool = False) -> ExerciseResult:
    """Compare a student's answer with the expected one and print a one-line verdict.

    ``yours`` may be a value or a zero-argument callable (called here; ``NotImplementedError`` or ``None`` means
    not attempted). Numbers and arrays are compared with absolute tolerance ``tol``; anything else with ``==``.
    """
    if callable(yours):
        try:
            yours = yours()
        except NotImplementedError:
            yours = None
    if yours is None:
        line, passed = f"[{name}] not attempted yet: expected {_show(expected)}", None
    elif _close(yours, expected, tol):
        line, passed = f"[{name}] correct: {_show(yours)} (expected {_show(expected)})", True
    else:
        line, passed = f"[{name}] not yet: yours {_show(yours)}, expected {_show(expected)}", False
    print(line)
    if strict and not passed:
        raise AssertionError(line)
    res = ExerciseResult(line)
    res.passed = passed
    return res


def _show(v) -> str:
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:.4f}"
    try:
        import numpy as np

        if isinstance(v, np.ndarray):
            return np.array2string(v, precision=4, threshold=12)
    except ImportError:  # pragma: no cover
        pass
    return repr(v)
