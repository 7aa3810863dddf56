"""The course as a learner meets it: every chapter in JupyterLab, in a real (headless) browser.

For every notebook in course/: open it in `jupyter lab`, Run All Cells, wait for the kernel to be
idle, then assert that no cell shows an error and every widget rendered (no "Error displaying
widget"). Widgets are driven as a learner drives them:

- chapter 2 (latent explorer): drag a latent slider; the decoded image must change;
- chapter 5 (dream player): press step, then a direction button and step; the dream frame must
  change and the step counter move each time.

Screenshots of every widget go to test-artifacts/browser/ (gitignored). With
WMLIB_README_SCREENSHOTS=1 the two interaction tests also write the README's screenshots,
assets/screenshot_latent_explorer.png and assets/screenshot_dream_player.png:

    WMLIB_README_SCREENSHOTS=1 python -m pytest tests/test_browser.py -m browser -k "latent or dream"

Selected with `-m browser`; part of the plain `python -m pytest` run, in which nbval then leaves the English chapters
to these tests (the root conftest.py). They need /usr/bin/chromium
and the playwright package (never `playwright install`: the system Chromium is used). Outside CI
they are skipped when either is missing; in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests import browser_support as bs
from tests.conftest import KEEP_OPEN, README_SCREENSHOTS  # with the shared fixtures: browser, lab, chapters

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
NOTEBOOKS = sorted(COURSE.glob("*.ipynb"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
ASSETS = ROOT / "assets"
LATENT_CHAPTERS = [p for p in NOTEBOOKS if p.name.startswith("02_")]
DREAM_CHAPTERS = [p for p in NOTEBOOKS if p.name.startswith("05_")]

pytestmark = pytest.mark.browser


def _save_failure_screenshot(page, stem: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{stem}_failure.png", full_page=True)


# --- every chapter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_runs_in_jupyterlab_without_errors(notebook, chapters, lab):
    page, state = chapters(notebook.name)
    try:
        assert state["runAll"]["error"] is None, f"Run All Cells failed: {state['runAll']['error']}"
        errors = [f"cell {c['number']}: {e}" for c in state["cells"] for e in c["errors"]]
        assert not errors, f"{notebook.name} shows errors in JupyterLab:\n" + "\n".join(errors)
        not_run = [c["number"] for c in state["cells"] if c["source"].strip() and c["count"] is None]
        assert not not_run, f"{notebook.name}: code cells {not_run} did not run"
        problems = bs.widget_problems(page)
        assert not problems, f"{notebook.name}: broken widgets:\n" + "\n".join(problems)
        widgets = page.locator(bs.WIDGET_OUTPUTS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for k in range(widgets.count()):
            if widgets.nth(k).is_visible():  # (a closed widget, e.g. a finished progress bar, shows nothing)
                widgets.nth(k).screenshot(path=ARTIFACTS / f"{notebook.stem}_widget{k}.png")
        print(f"{notebook.name}: ran in {state['seconds']:.1f} s, {widgets.count()} widgets")
    except Exception:
        _save_failure_screenshot(page, notebook.stem)
        raise
    finally:
        if notebook.name not in KEEP_OPEN:
            bs.shutdown_kernel(page)
            page.close()


# --- chapter 2: the latent explorer ---------------------------------------------------------------


def _widget_images(widget) -> list[bytes]:
    return bs.image_pngs(widget)


def _biggest_change(before: list[bytes], after: list[bytes]) -> float:
    if len(before) != len(after):
        return float("inf")
    return max((bs.image_difference(a, b) for a, b in zip(before, after, strict=True)), default=0.0)


def _wait_for_change(widget, before: list[bytes], timeout_s: float = 20.0) -> float:
    """Poll the widget's images until one differs from `before`; returns the biggest change (0 if none)."""
    deadline = time.monotonic() + timeout_s
    while True:
        change = _biggest_change(before, _widget_images(widget))
        if change > 0 or time.monotonic() > deadline:
            return change
        time.sleep(0.5)


def _readme_choice(widgets, prefer: re.Pattern):
    """The widget for the README screenshot: the first whose text matches `prefer`, else the first."""
    for k in range(widgets.count()):
        if prefer.search(widgets.nth(k).inner_text()):
            return widgets.nth(k)
    return widgets.first


LATENT_LABEL = re.compile(r"^\s*z\[\d+\]\s*$")


def _first_latent_slider(page, explorer):
    return explorer.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=LATENT_LABEL)).first


def _drag(page, slider, fraction: float) -> None:
    """Drag the slider's handle with the mouse, `fraction` of the way to the far end of its track
    (the end away from the handle's side)."""
    handle = slider.locator(".noUi-handle").bounding_box()
    track = slider.locator(".noUi-target").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    end = track["x"] + track["width"] - 2 if x < track["x"] + track["width"] / 2 else track["x"] + 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + fraction * (end - x), y, steps=12)
    page.mouse.up()


def _drag_first_latent_slider(page, explorer, name: str) -> str:
    """Drag the explorer's first z[j] slider to the far end of its track; asserts an image changed."""
    explorer.scroll_into_view_if_needed()
    slider = _first_latent_slider(page, explorer)
    label = slider.locator(".widget-label").inner_text()
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text()
    before = _widget_images(explorer)
    assert before, f"{name}: the latent explorer shows no image"

    _drag(page, slider, 1.0)  # to the far end of the track
    change = _wait_for_change(explorer, before)
    value_after = readout.inner_text()
    assert value_after != value_before, f"{name}: dragging slider {label} did not move it (readout {value_before})"
    assert change > 0, (f"{name}: dragged slider {label} from {value_before} to {value_after} "
                        f"but no image in the latent explorer changed")
    return f"slider {label} {value_before} -> {value_after}, mean pixel change {change:.2f}"


@pytest.mark.parametrize("notebook", LATENT_CHAPTERS, ids=lambda p: p.name)
def test_latent_explorer_slider_changes_the_decoded_image(notebook, chapters):
    page, _ = chapters(notebook.name)
    try:
        explorers = page.locator(bs.WIDGET_OUTPUTS).filter(has=page.locator(".widget-label", has_text=LATENT_LABEL))
        assert explorers.count() > 0, f"{notebook.name}: no latent explorer (a widget with z[j] sliders) rendered"
        for k in range(explorers.count()):
            print(f"latent explorer {k}: " + _drag_first_latent_slider(page, explorers.nth(k), notebook.name))
            explorers.nth(k).screenshot(path=ARTIFACTS / f"{notebook.stem}_latent_explorer{k}_after_drag.png")
        if README_SCREENSHOTS:
            chosen = _readme_choice(explorers, re.compile("racing", re.IGNORECASE))
            chosen.locator(".widget-button", has_text=re.compile(r"^\W*reset\W*$")).first.click()  # z = mu again
            time.sleep(1.0)
            _drag(page, _first_latent_slider(page, chosen), 0.3)  # a moderate change reads better than an extreme
            time.sleep(1.5)
            size = bs.save_small_png(chosen.screenshot(), ASSETS / "screenshot_latent_explorer.png")
            print(f"wrote assets/screenshot_latent_explorer.png ({size / 1024:.0f} KiB)")
    except Exception:
        _save_failure_screenshot(page, f"{notebook.stem}_latent")
        raise


# --- chapter 5: the dream player ------------------------------------------------------------------

STEP_BUTTON = re.compile(r"^\W*step\W*$", re.IGNORECASE)
DIRECTION_BUTTON = re.compile(r"(left|right|[←→◀▶⬅➡])", re.IGNORECASE)
STEP_COUNTER = re.compile(r"\bstep\s*:?\s*(\d+)", re.IGNORECASE)
DREAM_ENDED = re.compile(r"dream has ended", re.IGNORECASE)


def _step_numbers(widget) -> list[int]:
    return [int(n) for n in STEP_COUNTER.findall(widget.inner_text())]


def _press_and_check(widget, button, name: str) -> str:
    """Click `button`; the step counter must move and the dream frame change."""
    what = f"pressing {button.inner_text().strip()!r}"
    if DREAM_ENDED.search(widget.inner_text()):  # as a learner would: a dream that ended needs a reset
        widget.locator(".widget-button", has_text=re.compile(r"^\W*reset\W*$", re.IGNORECASE)).first.click()
        deadline = time.monotonic() + 20
        while DREAM_ENDED.search(widget.inner_text()) and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(0.5)  # the new frame's bytes arrive with the caption; give the <img> a moment to load them
    before_images, before_steps = _widget_images(widget), _step_numbers(widget)
    assert before_steps, f"{name}: the dream player shows no step counter (text: {widget.inner_text()!r})"
    button.click()
    deadline = time.monotonic() + 20
    while _step_numbers(widget) == before_steps and time.monotonic() < deadline:
        time.sleep(0.3)
    after_steps = _step_numbers(widget)
    change = _wait_for_change(widget, before_images)
    assert after_steps != before_steps, f"{name}: {what} did not move the step counter {before_steps}"
    assert change > 0, f"{name}: {what} moved the step counter {before_steps} -> {after_steps} but the frame stayed"
    return f"{what}: step {before_steps} -> {after_steps}, mean pixel change {change:.2f}"


@pytest.mark.parametrize("notebook", DREAM_CHAPTERS, ids=lambda p: p.name)
def test_dream_player_step_and_direction_buttons(notebook, chapters):
    page, _ = chapters(notebook.name)
    try:
        players = page.locator(bs.WIDGET_OUTPUTS).filter(has=page.locator(".widget-button", has_text=STEP_BUTTON))
        assert players.count() > 0, f"{notebook.name}: no dream player (a widget with a 'step' button) rendered"
        for k in range(players.count()):
            player = players.nth(k)
            player.scroll_into_view_if_needed()
            direction = player.locator(".widget-button", has_text=DIRECTION_BUTTON)
            assert direction.count() > 0, f"{notebook.name}: dream player {k} has no left/right button"
            step = player.locator(".widget-button", has_text=STEP_BUTTON).first
            print(f"dream player {k}: " + _press_and_check(player, step, notebook.name))
            print(f"dream player {k}: " + _press_and_check(player, direction.first, notebook.name))
            player.screenshot(path=ARTIFACTS / f"{notebook.stem}_dream_player{k}_after_steps.png")
        if README_SCREENSHOTS:
            chosen = _readme_choice(players, re.compile("steer", re.IGNORECASE))
            size = bs.save_small_png(chosen.screenshot(), ASSETS / "screenshot_dream_player.png")
            print(f"wrote assets/screenshot_dream_player.png ({size / 1024:.0f} KiB)")
    except Exception:
        _save_failure_screenshot(page, f"{notebook.stem}_dream")
        raise
