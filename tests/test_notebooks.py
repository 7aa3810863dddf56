"""The chapters as a learner meets them.

- Every notebook, English and Chinese (course/zh/), is committed clean (no outputs, no execution counts,
  no machine paths).
- Every exercise cell, in both languages, names a registered exercise id and has a solution in tests/solutions/.
- Every English chapter runs top to bottom on a fresh kernel with its stubs replaced by the solutions, in
  strict mode (WMLIB_STRICT=1: a solution that fails its check stops the run), in fast mode.

Every English notebook also runs as shipped, stubs unsolved: in JupyterLab (tests/test_browser.py) when Chromium is
here, else under nbval (configured in pyproject.toml); nbval also runs the first Chinese one. The root conftest.py
says why nothing runs twice.
"""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from wmlib.exercises import known_ids

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
NOTEBOOKS = sorted(COURSE.glob("*.ipynb"))
ZH_NOTEBOOKS = sorted((COURSE / "zh").glob("*.ipynb"))
"""The Chinese edition: the English chapters' code cells, translated prose (tests/test_zh.py)."""
BOTH_LANGUAGES = NOTEBOOKS + ZH_NOTEBOOKS
# Paths of one machine (written with character classes so this line does not match itself).
MACHINE_PATH = re.compile(r"(/wor[k]/|/tm[p]/[a-z]|/roo[t]/|/hom[e]/[a-z]|C:\\\\User[s])")


def _name(notebook: Path) -> str:
    """00_start_here.ipynb, zh/00_start_here.ipynb: which chapter, in which language."""
    return notebook.relative_to(COURSE).as_posix()


def _solutions(notebook: Path) -> dict[str, str]:
    path = ROOT / "tests" / "solutions" / f"{notebook.stem}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"solutions_{notebook.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SOLUTIONS


def _exercise_cells(nb):
    return [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]


def test_there_are_chapters():
    names = [p.name for p in NOTEBOOKS]
    assert "00_start_here.ipynb" in names and "01_problem.ipynb" in names


@pytest.mark.parametrize("notebook", BOTH_LANGUAGES, ids=_name)
def test_notebook_is_committed_clean(notebook):
    raw = notebook.read_text()
    nb = nbformat.reads(raw, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{_name(notebook)} cell {i} has stored outputs"
            assert cell.execution_count is None, f"{_name(notebook)} cell {i} has an execution count"
    assert not MACHINE_PATH.search(raw), f"{_name(notebook)} contains a machine-specific path"
    assert json.loads(raw).get("metadata", {}).get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("notebook", BOTH_LANGUAGES, ids=_name)
def test_exercise_cells_are_registered_and_solved(notebook):
    nb = nbformat.read(notebook, as_version=4)
    solutions = _solutions(notebook)
    for cell in _exercise_cells(nb):
        ex_id = cell.metadata.get("exercise_id")
        assert ex_id in known_ids(), f"{_name(notebook)}: exercise cell names unknown id {ex_id!r}"
        assert "raise NotImplementedError" in cell.source, f"{_name(notebook)}: {ex_id} cell is not a stub"
        assert ex_id in solutions, f"tests/solutions/{notebook.stem}.py has no solution for {ex_id}"


@pytest.mark.parametrize("notebook", [p for p in NOTEBOOKS if _exercise_cells(nbformat.read(p, as_version=4))],
                         ids=lambda p: p.name)
def test_chapter_runs_with_solutions_in_strict_mode(notebook, monkeypatch):
    nb = nbformat.read(notebook, as_version=4)
    solutions = _solutions(notebook)
    for cell in _exercise_cells(nb):
        cell.source = solutions[cell.metadata["exercise_id"]].strip("\n")
    monkeypatch.setenv("WMLIB_STRICT", "1")
    monkeypatch.setenv("WMLIB_FAST", "1")
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(COURSE)}})
    client.execute()  # raises CellExecutionError naming the cell if anything fails
    reports = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not reports
