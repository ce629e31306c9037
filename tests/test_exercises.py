import numpy as np
import pytest

from fashionlab.exercises import check


def test_check_verdicts(capsys):
    assert check("a", None, 0.5).passed is None
    assert check("b", 0.5000001, 0.5).passed is True
    assert check("c", 0.6, 0.5).passed is False
    assert check("d", lambda: np.array([1.0, 2.0]), [1.0, 2.0]).passed is True
    assert check("e", np.array([1.0]), [1.0, 2.0]).passed is False  # shape mismatch

    def todo():
        raise NotImplementedError

    assert check("f", todo, 3).passed is None
    assert check("g", "V Neck", "V Neck").passed is True
    out = capsys.readouterr().out
    assert "[a] not attempted yet: expected 0.5000" in out and "[c] not yet: yours 0.6000" in out
    with pytest.raises(AssertionError, match=r"\[h\] not yet"):
        check("h", 1, 2, strict=True)
