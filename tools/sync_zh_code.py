"""Copy the English chapters' code cells into the Chinese chapters (course/zh/), leaving the prose alone.

The two editions share their code cell for cell (tests/test_zh.py checks it). After a code cell changes in
course/NN_name.ipynb, run `python tools/sync_zh_code.py` from the repository root; markdown cells are
never touched, so changed English prose still needs its translation updated by hand. It refuses a
chapter whose cell types no longer line up (a cell added or removed on one side), naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def sync(english: Path, chinese: Path) -> int:
    """Copy code cells from `english` into `chinese` (same positions); returns how many changed."""
    en, zh = nbformat.read(english, as_version=4), nbformat.read(chinese, as_version=4)
    if [c.cell_type for c in en.cells] != [c.cell_type for c in zh.cells]:
        raise SystemExit(f"{chinese}: its cells no longer line up with {english}; add or remove the cell by hand")
    changed = 0
    for a, b in zip(en.cells, zh.cells, strict=True):
        if a.cell_type == "code" and (a.source != b.source or a.metadata != b.metadata):
            b.source, b.metadata = a.source, a.metadata
            changed += 1
    if changed:
        nbformat.write(zh, chinese)
    return changed


def main() -> int:
    for chinese in sorted((ROOT / "course" / "zh").glob("*.ipynb")):
        n = sync(ROOT / "course" / chinese.name, chinese)
        print(f"{chinese.relative_to(ROOT)}: {n} code cells updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
