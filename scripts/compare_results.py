"""Compare two folders of results files (``NAME.json``) row by row, ignoring the run time.

    python scripts/compare_results.py BEFORE_DIR AFTER_DIR [NAME ...]

Prints, per experiment, ``identical`` or each row that differs (method, metric, attribute, dataset: before ->
after) and rows present on one side only. Exit status 1 when anything differs. Used to check that a
refactoring leaves the quick-mode numbers of every experiment unchanged.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _key(row: dict) -> tuple:
    return tuple(str(row.get(k)) for k in ("dataset", "method", "metric", "attribute", "start"))


def compare(before: Path, after: Path) -> list[str]:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    out = []
    for part in ("rows", "paper_rows"):
        ra, rb = {_key(r): r["value"] for r in a[part]}, {_key(r): r["value"] for r in b[part]}
        for k in ra.keys() | rb.keys():
            if ra.get(k) != rb.get(k):
                out.append(f"  {part} {' / '.join(x for x in k if x != 'None')}: {ra.get(k, 'absent')} -> {rb.get(k, 'absent')}")
    for field in ("dataset", "mode", "seed", "notes"):
        if a.get(field) != b.get(field):
            out.append(f"  {field}: {a.get(field)!r} -> {b.get(field)!r}")
    return sorted(out)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    before, after = Path(argv[0]), Path(argv[1])
    names = argv[2:] or sorted(p.stem for p in before.glob("*.json"))
    differs = False
    for name in names:
        fa, fb = before / f"{name}.json", after / f"{name}.json"
        if not fa.exists() or not fb.exists():
            print(f"{name}: missing in {'before' if not fa.exists() else 'after'}")
            differs = True
            continue
        diff = compare(fa, fb)
        print(f"{name}: " + ("identical" if not diff else f"{len(diff)} differences"))
        for line in diff[:40]:
            print(line)
        differs |= bool(diff)
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
