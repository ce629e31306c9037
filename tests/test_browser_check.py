"""tools/browser_check.py without a browser (make browser-check runs it with one): where Chromium cannot be had,
CI's flag turns the check into one line that says so and passes, and a person's run fails with the reason."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("browser_check", ROOT / "tools" / "browser_check.py")
browser_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(browser_check)


def test_no_chromium_and_no_apt_skips_only_when_asked(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))                 # neither chromium nor apt-get on it
    monkeypatch.delenv("CHROMIUM", raising=False)
    assert browser_check.find_chromium() is None
    assert browser_check.main(["--skip-if-no-chromium", "--site", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("browser-check SKIPPED: no Chromium (there is no apt-get on this machine)")
    assert browser_check.main(["--site", str(tmp_path)]) == 2
    assert "could not be installed: there is no apt-get" in capsys.readouterr().err


def test_chromium_from_the_environment(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("CHROMIUM", str(fake))
    assert browser_check.find_chromium() == str(fake)
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "missing"))
    assert browser_check.find_chromium() is None


def test_report_counts_and_the_closing_line(capsys):
    r = browser_check.Report()
    assert r.check("a", True, "1 thing") and not r.check("b", False, "why")
    assert (r.passed, r.failed) == (1, ["b"])
    assert capsys.readouterr().out.splitlines() == ["ok   a: 1 thing", "FAIL b: why"]
