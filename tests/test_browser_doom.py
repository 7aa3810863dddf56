"""The Doom dream player in a real browser: chapter 6 in JupyterLab, in headless Chromium, as a learner drives it.

course/06_doom.ipynb is run with Run All Cells (fast mode) in `jupyter lab`, once for the whole test run: the run
that tests/test_browser.py checks (the shared fixtures are in tests/conftest.py). Then, on the chapter's own dream
player (the widget with a "stay" button):

- "◀ left", "stay" and "right ▶" each take one dream step: the step counter moves, the frame changes,
  and the caption names the action taken;
- dragging the temperature slider changes the dream's temperature (the caption follows);
- the "controller" switch hands the dream to the trained C: "step" then moves on with C driving;
- "play" steps on its own timer until paused.

A screenshot of the player goes to test-artifacts/browser/ (gitignored). Selected with `-m browser`
(see tests/test_browser.py for what it needs); outside CI it is skipped when Chromium or playwright is
missing, in CI (CI=true) that is a failure.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests import browser_support as bs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "course" / "06_doom.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser"

pytestmark = pytest.mark.browser

STEP_COUNTER = re.compile(r"dream step\s*(\d+)", re.IGNORECASE)
TEMPERATURE = re.compile(r"temperature\s*(\d+\.\d+)", re.IGNORECASE)


def _button(widget, label: str):
    return widget.locator(".widget-button", has_text=re.compile(rf"^\W*{re.escape(label)}\W*$")).first


def _caption(widget) -> str:
    return widget.locator(".widget-html").last.inner_text()


def _step(widget) -> int:
    found = STEP_COUNTER.findall(_caption(widget))
    assert found, f"the dream player shows no step counter (caption: {_caption(widget)!r})"
    return int(found[-1])


def _wait(condition, timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.3)


def _reset_if_ended(widget) -> None:
    if "dream has ended" in _caption(widget):
        _button(widget, "reset").click()
        _wait(lambda: "dream has ended" not in _caption(widget), what="the reset")
        time.sleep(0.5)  # the new frame's bytes arrive with the caption


def _press(widget, label: str) -> str:
    """Click button `label`: the counter must move by one, the frame change and the caption name the action."""
    _reset_if_ended(widget)
    before_step, before_png = _step(widget), bs.image_pngs(widget)
    _button(widget, label).click()
    _wait(lambda: _step(widget) != before_step, what=f"the step counter to move after {label!r}")
    after_step = _step(widget)
    deadline = time.monotonic() + 20
    change = 0.0
    while change == 0 and time.monotonic() < deadline:
        change = max(bs.image_difference(a, b) for a, b in zip(before_png, bs.image_pngs(widget), strict=True))
        time.sleep(0.3)
    assert after_step == before_step + 1, f"{label!r} moved the step counter {before_step} -> {after_step}"
    assert change > 0, f"{label!r} moved the step counter but the dream frame stayed the same"
    return f"{label!r}: step {before_step} -> {after_step}, mean pixel change {change:.2f}"


def _drag_slider(page, slider, fraction: float) -> None:
    """Drag the slider's handle with the mouse `fraction` of the way to the left end of its track."""
    handle = slider.locator(".noUi-handle").bounding_box()
    track = slider.locator(".noUi-target").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - fraction * (x - track["x"] - 2), y, steps=12)
    page.mouse.up()


@pytest.fixture
def doom_page(chapters):
    """Chapter 6's page after Run All Cells, shared with tests/test_browser.py's run of it (tests/conftest.py)."""
    page, state = chapters(NOTEBOOK.name)
    errors = [f"cell {c['number']}: {e}" for c in state["cells"] for e in c["errors"]]
    assert not errors, "chapter 6 shows errors in JupyterLab:\n" + "\n".join(errors)
    return page


def test_doom_dream_player_in_the_browser(doom_page):
    page = doom_page
    problems = bs.widget_problems(page)
    assert not problems, "broken widgets in chapter 6:\n" + "\n".join(problems)
    players = page.locator(bs.WIDGET_OUTPUTS).filter(has=page.locator(".widget-button", has_text="stay"))
    assert players.count() == 1, f"expected one Doom dream player (with a 'stay' button), got {players.count()}"
    player = players.first
    player.scroll_into_view_if_needed()
    try:
        labels = [b.strip() for b in player.locator(".widget-button").all_inner_texts()]
        for wanted in ("◀ left", "stay", "right ▶", "step", "reset"):
            assert wanted in labels, f"the Doom dream player has no {wanted!r} button: {labels}"

        # The three actions, as a human drives the dream.
        for label in ("◀ left", "stay", "right ▶"):
            print(_press(player, label))
            assert f"last action {label}" in _caption(player), _caption(player)

        # Temperature: drag the slider towards its low end; the dream's temperature follows.
        before = float(TEMPERATURE.findall(_caption(player))[-1])
        slider = player.locator(".widget-slider").filter(
            has=page.locator(".widget-label", has_text=re.compile("temperature"))).first
        _drag_slider(page, slider, 0.8)
        _wait(lambda: float(TEMPERATURE.findall(_caption(player))[-1]) < before - 0.2,
              what="the caption's temperature to fall after dragging the slider")
        print(f"temperature {before:.2f} -> {TEMPERATURE.findall(_caption(player))[-1]}")

        # The controller switch: on, C drives when "step" is pressed.
        toggle = player.locator(".widget-toggle-button", has_text="controller").first
        if "driven by the controller" in _caption(player):  # the chapter may have left C driving: hand it back
            toggle.click()
            _wait(lambda: "driven by you" in _caption(player), what="the controller switch to turn off")
        toggle.click()
        _wait(lambda: "driven by the controller" in _caption(player), what="the controller to take over")
        print(_press(player, "step"))

        # Play: the dream runs on its own timer, then pauses.
        _reset_if_ended(player)
        start = _step(player)
        player.locator(".widget-play button").first.click()  # the play button of ipywidgets' Play
        _wait(lambda: _step(player) >= start + 3 or "dream has ended" in _caption(player),
              what="play to take several steps")
        player.locator(".widget-play button").nth(1).click()  # pause
        print(f"play: step {start} -> {_step(player)}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        player.screenshot(path=ARTIFACTS / "06_doom_dream_player_driven.png")
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "06_doom_dream_player_failure.png", full_page=True)
        raise
