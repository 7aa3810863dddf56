"""The browser tests' shared fixtures: one headless Chromium, one JupyterLab and one Run All Cells per chapter for
the whole test run.

tests/test_browser.py runs every chapter and drives chapter 2's and chapter 5's widgets; tests/test_browser_doom.py
drives chapter 6's Doom dream player on the same run of chapter 6 (running a chapter costs about a minute, so no
chapter runs twice). A chapter named in KEEP_OPEN keeps its page, and its kernel, open for those tests.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from tests import browser_support as bs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "course").glob("*.ipynb"))
"""The English chapters, the ones the browser tests run."""
RUN_TIMEOUT_S = float(os.environ.get("WMLIB_BROWSER_RUN_TIMEOUT", "900"))
README_SCREENSHOTS = os.environ.get("WMLIB_README_SCREENSHOTS") == "1"
KEEP_OPEN = {p.name for p in NOTEBOOKS if p.name.startswith(("02_", "05_", "06_"))}
"""Chapters whose page stays open after their run, for the widget tests (latent explorer, both dream players)."""


@pytest.fixture(scope="session")
def browser():
    reason = bs.missing_browser_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(f"browser tests need Chromium and playwright: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(bs.CHROMIUM), args=bs.CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def lab(browser):
    with tempfile.TemporaryDirectory(prefix="wmlib-lab-") as workdir:
        server = bs.LabServer(NOTEBOOKS, Path(workdir))
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def chapters(browser, lab):
    """Runs a chapter once per test run: name -> (page, state); pages of KEEP_OPEN chapters stay open."""
    runs: dict[str, tuple] = {}
    # A laptop-sized window; the README screenshots get a wider one so that wide widgets are not clipped.
    context = browser.new_context(viewport={"width": 1600 if README_SCREENSHOTS else 1400, "height": 1000})

    def run(name: str):
        if name not in runs:
            page = context.new_page()
            page.set_default_timeout(60_000)
            ready = bs.open_notebook(page, lab.url, name)
            assert ready["kernel"] == "python3", f"{name}: expected the python3 kernel, got {ready}"
            assert ready["windowing"] == "none", f"notebook windowing is {ready['windowing']!r}, expected 'none'"
            start = time.monotonic()
            state = bs.run_all_cells(page, RUN_TIMEOUT_S)
            state["seconds"] = time.monotonic() - start
            state["widgets"] = bs.tag_widget_outputs(page)
            bs.wait_for_widgets(page)
            runs[name] = (page, state)
        return runs[name]

    yield run
    context.close()
