"""The whole-agent figure: every `here` draws, a bad one says what was expected, the highlight moves."""

import warnings

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from wmlib.figures import FADED, HERE_VALUES, HIGHLIGHT, agent_diagram

BOXES = {"frame", "V", "z", "M", "h", "C", "action", "env", "dream"}


def faces(fig: Figure) -> dict[str, str]:
    """gid -> face colour (hex) of every box in the diagram."""
    return {p.get_gid(): to_hex(p.get_facecolor()) for p in fig.axes[0].patches if p.get_gid()}


def texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.axes[0].texts) + "\n" + fig.get_suptitle()


@pytest.mark.parametrize("here", HERE_VALUES)
def test_every_here_draws_all_boxes_without_warnings(here):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = agent_diagram(here=here)
        fig.canvas.draw()
    assert isinstance(fig, Figure)
    assert set(faces(fig)) == BOXES


@pytest.mark.parametrize("bad", ["v", "Vision", "", 0, "reality"])
def test_bad_here_raises_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"here must be one of .*'dream'.*got"):
        agent_diagram(here=bad)


def test_the_sizes_are_the_papers_car():
    t = texts(agent_diagram())
    for number in ("64x64x3", "12,288", "4,348,547", "32 numbers", "LSTM 256", "5 mixtures", "867", "3 numbers"):
        assert number in t, number


@pytest.mark.parametrize("part, lit", [("V", {"frame", "V", "z"}), ("M", {"M", "h"}), ("C", {"C", "action"})])
def test_highlight_lights_exactly_the_part(part, lit):
    f = faces(agent_diagram(here=part))
    assert {k for k, c in f.items() if c == HIGHLIGHT} == lit
    assert {k for k, c in f.items() if c == FADED} == BOXES - lit


def test_dream_greys_out_the_game_the_frame_and_v():
    f = faces(agent_diagram(here="dream"))
    assert {k for k, c in f.items() if c == FADED} == {"env", "frame", "V"}
    assert f["dream"] == HIGHLIGHT and f["M"] == HIGHLIGHT and f["z"] == HIGHLIGHT


def test_highlight_differs_between_values_and_none_highlights_nothing():
    per_here = {here: faces(agent_diagram(here=here)) for here in HERE_VALUES}
    assert HIGHLIGHT not in per_here[None].values() and FADED not in per_here[None].values()
    assert per_here["V"]["V"] != per_here["M"]["V"]
    assert per_here["M"]["M"] != per_here["C"]["M"]
    assert per_here["C"]["C"] != per_here["V"]["C"]
    titles = {agent_diagram(here=here).get_suptitle() for here in HERE_VALUES}
    assert len(titles) == len(HERE_VALUES)
