"""The quiz widget in a real browser: JupyterLab in headless Chromium, as a learner clicks it.

A throwaway notebook with one quiz cell is run in `jupyter lab`; the test picks an option and
presses Check, then types a number and presses Check, and reads the feedback the kernel sent
back; the kernel's progress file must hold both answers. A screenshot of the answered quiz goes
to test-artifacts/browser/ (gitignored).

Selected with `-m browser` (see tests/test_browser.py for what it needs). Outside CI it is
skipped when Chromium or playwright is missing; in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from tests import browser_support as bs

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"

QUIZ_CELL = """\
from wmlib.exercises import quiz, Choice, Number
quiz("ch00.quiz.browser", [
    Choice("Which part compresses a frame?", ["the controller C", "the VAE V", "the memory M"], answer=1,
           explain="V turns a frame into a small z. "
                   "M then predicts that small z instead of a whole frame: a far easier job, and the reason the "
                   "whole agent trains on a laptop."),
    Number("How many numbers are in a 64x64x3 frame?", answer=12288, unit="numbers", explain="64 * 64 * 3"),
])
"""


def _notebook(path: Path) -> Path:
    cell = {"cell_type": "code", "execution_count": None, "id": "quiz", "metadata": {}, "outputs": [],
            "source": QUIZ_CELL.splitlines(keepends=True)}
    nb = {"cells": [cell], "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                        "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def _wait_for_text(locator, text: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        shown = locator.inner_text()
        if text in shown or time.monotonic() > deadline:
            return shown
        time.sleep(0.3)


def test_quiz_feedback_after_a_click_on_check(browser):
    # `browser`: the test run's one headless Chromium (tests/conftest.py); this test has its own JupyterLab, whose
    # folder holds the throwaway notebook and the progress file the quiz writes.
    with tempfile.TemporaryDirectory(prefix="wmlib-quiz-") as workdir:
        notebook = _notebook(Path(workdir) / "quiz_test.ipynb")
        server = bs.LabServer([notebook], Path(workdir) / "lab")
        try:
            server.wait_ready()
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            try:
                page.set_default_timeout(60_000)
                ready = bs.open_notebook(page, server.url, notebook.name)
                assert ready["kernel"] == "python3", ready
                state = bs.run_all_cells(page, timeout_s=300)
                errors = [e for c in state["cells"] for e in c["errors"]]
                assert not errors, errors
                assert bs.tag_widget_outputs(page) == 1
                bs.wait_for_widgets(page)
                widget = page.locator(bs.WIDGET_OUTPUTS).first
                assert not bs.widget_problems(page)
                checks = widget.locator(".widget-button", has_text="Check")
                assert checks.count() == 2

                widget.locator("label", has_text="the controller C").click()  # a wrong option first
                checks.nth(0).click()
                shown = _wait_for_text(widget, "Not quite")
                assert "Not quite" in shown, shown
                widget.locator("label", has_text="the VAE V").click()
                checks.nth(0).click()
                shown = _wait_for_text(widget, "Right.")
                assert "Right. V turns a frame into a small z." in shown, shown

                widget.locator("input[type=text]").fill("12,288")
                checks.nth(1).click()
                shown = _wait_for_text(widget, "64 * 64 * 3")
                assert "2 of 2 right" in _wait_for_text(widget, "2 of 2 right"), shown
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                widget.screenshot(path=str(ARTIFACTS / "quiz_widget_after_answers.png"))
            finally:
                page.close()
        finally:
            server.stop()
        recorded = json.loads((Path(workdir) / "lab" / "progress.json").read_text())
        assert recorded["ch00.quiz.browser"]["answers"] == [True, True]
