"""The exercise self-checks: verdicts, no answer in what they print, strict under nbgrader, library fallback."""
import pytest

from fashionlab import exercises
from fashionlab.exercises import answer_or_library, check, check_value, digest


def _todo(*args):
    raise NotImplementedError()


def test_check_verdicts_never_show_the_expected_value(capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("FASHIONLAB_STRICT_EXERCISES", raising=False)

    def wrong():
        assert 0.61 == pytest.approx(0.4988), "expected 0.4988"

    assert check("a", lambda: _todo(), hint="start from the definition").passed is None
    assert check("b", lambda: None).passed is True
    assert check("c", wrong, hint="count ties once").passed is False
    assert check("d", lambda: 1 / 0).passed is False
    out = capsys.readouterr().out
    assert "[a] not attempted yet. Hint: start from the definition" in out
    assert "[c] not yet. Hint: count ties once" in out
    assert "ZeroDivisionError" in out
    assert "0.4988" not in out and "expected" not in out


@pytest.mark.parametrize("env", [("NBGRADER_EXECUTION", "autograde"), ("FASHIONLAB_STRICT_EXERCISES", "1")])
def test_check_raises_under_grading(monkeypatch, env):
    monkeypatch.setenv(*env)
    assert exercises.grading()
    with pytest.raises(AssertionError, match=r"\[x\] not attempted"):
        check("x", lambda: _todo())
    with pytest.raises(AssertionError) as info:
        check("y", lambda: (_ for _ in ()).throw(AssertionError("expected 0.4988")), hint="h")
    assert "0.4988" not in str(info.value)
    assert check("z", lambda: None).passed is True


def test_check_value_digest(monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    d = digest(0.4988, 3, "E1")
    assert d != digest(0.4988, 3, "E2")  # salted by exercise
    assert len(d) == 16 and "0.4988" not in d and "0.499" not in d
    assert check_value("E1", 0.49876, d).passed is True
    assert check_value("E1", 0.4995, d).passed is True  # one unit in the last decimal either side
    assert check_value("E1", 0.5012, d).passed is False
    assert check_value("E1", lambda: None, d).passed is None
    assert check_value("E1", float("nan"), d).passed is False
    assert digest(-0.0001, 3) == digest(0.0, 3)
    assert "0.499" not in capsys.readouterr().out


def test_answer_or_library(capsys):
    def library(x):
        return 2 * x

    def mine(x):
        return x + x

    assert answer_or_library("E", mine, library, probe=lambda f: f(3)) is mine
    assert answer_or_library("E", _todo, library, probe=lambda f: f(3)) is library
    assert answer_or_library("E", lambda x: None, library, probe=lambda f: f(3)) is library
    out = capsys.readouterr().out
    assert "the cells below use your answer" in out and "use the library's version" in out
    with pytest.raises(ZeroDivisionError):  # a broken answer is reported as it is, not hidden
        answer_or_library("E", lambda x: 1 / 0, library, probe=lambda f: f(3))


def test_check_rejects_a_value_in_place_of_a_test():
    with pytest.raises(TypeError, match="test function"):
        check("old style", 0.5, 0.5)
