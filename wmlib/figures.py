"""Drawn figures the chapters share: the whole World Models agent, with "you are here".

    agent_diagram()            frames -> V -> z -> M -> h -> C -> action, and the dream below
    agent_diagram(here="M")    the same, with M highlighted and the other parts faded

The sizes written in the boxes come from the config dataclasses (the car's defaults), and V's
parameter count from building a `ConvVAE`, so the figure cannot drift from the library.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

HERE_VALUES = (None, "V", "M", "C", "dream")
"""What `agent_diagram(here=...)` accepts: the whole agent (None), one part, or the dream."""

# Colours: each part has a soft colour; the highlighted part turns gold, the others fade to grey.
_PART_COLOURS = {"V": "#cfe2f3", "M": "#d9ead3", "C": "#fce5cd", "dream": "#e6dcf2", "data": "#f3f3f3"}
HIGHLIGHT = "#ffd966"
"""Face colour of the highlighted box(es)."""
FADED = "#f7f7f7"
"""Face colour of the boxes that are not highlighted when `here` is set."""


@dataclass(frozen=True)
class _Box:
    key: str  # the gid of the patch: tests and notebooks find a box by it
    part: str  # which `here` value lights it up
    x: float
    y: float
    w: float
    h: float
    text: str


@lru_cache(maxsize=1)
def _sizes() -> dict:
    """The numbers in the boxes, read from the library (the CarRacing defaults of the paper)."""
    from wmlib.config import ControllerConfig, MDNRNNConfig, VAEConfig
    from wmlib.controller import controller_param_count
    from wmlib.vae import ConvVAE

    v, m, c = VAEConfig(), MDNRNNConfig(), ControllerConfig()
    return {
        "frame": (v.image_size, v.image_size, v.image_channels),
        "frame_numbers": v.image_size * v.image_size * v.image_channels,
        "v_params": ConvVAE(v).num_params(),
        "z": v.z_dim,
        "h": m.hidden_size,
        "mixtures": m.num_mixtures,
        "actions": c.action_dim,
        "c_params": controller_param_count(c.z_dim, c.h_dim, c.action_dim),
    }


def _boxes(s: dict) -> list[_Box]:
    size, n = s["frame"], s["frame_numbers"]
    return [
        _Box("frame", "V", 0.2, 4.2, 2.2, 1.6, f"frame\n{size[0]}x{size[1]}x{size[2]}\n= {n:,} numbers"),
        _Box("V", "V", 3.2, 4.2, 2.4, 1.6, f"V  (VAE encoder)\ncompresses\n{s['v_params']:,} params"),
        _Box("z", "V", 6.4, 4.45, 1.3, 1.1, f"z\n{s['z']} numbers"),
        _Box("M", "M", 8.5, 4.2, 2.6, 1.6, f"M  (MDN-RNN)\nLSTM {s['h']}\nMDN, {s['mixtures']} mixtures"),
        _Box("h", "M", 11.9, 4.45, 1.3, 1.1, f"h\n{s['h']} numbers"),
        _Box("C", "C", 14.0, 4.2, 2.2, 1.6, f"C  (linear)\n[z, h] -> action\n{s['c_params']:,} params"),
        _Box("action", "C", 17.0, 4.45, 1.8, 1.1, f"action\n{s['actions']} numbers"),
        _Box("env", "reality", 8.3, 7.0, 3.0, 0.9, "the real game (environment)"),
        _Box("dream", "dream", 8.0, 0.5, 3.6, 1.6, "the dream\nsample z' ~ P(z' | z, a, h)\nat temperature τ"),
    ]


def _check_here(here) -> None:
    if here not in HERE_VALUES:
        raise ValueError(f"here must be one of {HERE_VALUES!r} (None draws the whole agent), got {here!r}")


def _face(box: _Box, here) -> str:
    """The face colour of one box: soft by part when nothing is highlighted, else gold or faded."""
    if here is None:
        return _PART_COLOURS.get(box.part, _PART_COLOURS["data"])
    lit = box.part == here or (here == "dream" and box.key in ("z", "M", "h", "C", "action"))
    return HIGHLIGHT if lit else FADED


_TITLES = {
    None: "The World Models agent: V compresses what it sees, M predicts what comes next, C acts",
    "V": "You are here: V, the vision model (a frame becomes 32 numbers)",
    "M": "You are here: M, the memory (predicts the next z as a mixture of Gaussians)",
    "C": "You are here: C, the controller (867 numbers turn [z, h] into an action)",
    "dream": "You are here: the dream (M's own samples replace the game, the frames and V)",
}


def _draw_boxes(ax, boxes: dict, here) -> None:
    from matplotlib.patches import FancyBboxPatch

    for b in boxes.values():
        face = _face(b, here)
        faded, lit = face == FADED, face == HIGHLIGHT
        patch = FancyBboxPatch((b.x, b.y), b.w, b.h, boxstyle="round,pad=0.05,rounding_size=0.2",
                               facecolor=face, edgecolor="#b0b0b0" if faded else "#333333",
                               linewidth=2.4 if lit else 1.2, linestyle="--" if b.key == "dream" else "-")
        patch.set_gid(b.key)
        ax.add_patch(patch)
        bold = lit and b.key in ("V", "M", "C")
        ax.text(b.x + b.w / 2, b.y + b.h / 2, b.text, ha="center", va="center", fontsize=9.5,
                color="#9a9a9a" if faded else "black", fontweight="bold" if bold else "normal")


def _port(b: _Box, side: str, frac: float = 0.5) -> tuple[float, float]:
    """A point just outside box b: on its `side`, `frac` of the way along it."""
    return {"right": (b.x + b.w + 0.05, b.y + frac * b.h), "left": (b.x - 0.05, b.y + frac * b.h),
            "top": (b.x + frac * b.w, b.y + b.h + 0.05), "bottom": (b.x + frac * b.w, b.y - 0.05)}[side]


def _arrow(ax, a, b, label="", rad=0.0, dashed=False, lit=False, off=False, lx=0.0, ly=0.25) -> None:
    """An arrow from point a to point b (curved by rad), gold when lit, pale when off."""
    from matplotlib.patches import FancyArrowPatch

    colour = "#c8c8c8" if off else ("#b8860b" if lit else "#333333")
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, color=colour,
                                 linewidth=2.2 if lit else 1.3, linestyle="--" if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))
    if label:
        ax.text((a[0] + b[0]) / 2 + lx, (a[1] + b[1]) / 2 + ly, label, ha="center", va="bottom",
                fontsize=8.5, color="#9a9a9a" if off else "#444444", style="italic")


def _draw_arrows(ax, boxes: dict, here) -> None:
    def p(key, side, frac=0.5):
        return _port(boxes[key], side, frac)

    dream, note = here == "dream", {"fontsize": 8.5, "color": "#444444", "style": "italic"}
    # Reality: the game gives a frame, V compresses it, M and C act on the compressed world.
    _arrow(ax, p("env", "left"), p("frame", "top"), "next frame", rad=0.25, off=dream, lx=-0.6, ly=0.2)
    _arrow(ax, p("frame", "right"), p("V", "left"), off=dream)
    _arrow(ax, p("V", "right"), p("z", "left"), "encode", off=dream, ly=0.1)
    _arrow(ax, p("z", "right"), p("M", "left"), lit=dream)
    _arrow(ax, p("M", "right"), p("h", "left"), lit=dream)
    _arrow(ax, p("h", "right"), p("C", "left"), lit=dream)
    _arrow(ax, p("z", "top"), p("C", "top", 0.3), "z goes to C as well", rad=-0.18, lit=dream, ly=0.55)
    _arrow(ax, p("C", "right"), p("action", "left"), lit=dream)
    _arrow(ax, p("action", "top"), p("env", "right"), "act in the game", rad=0.25, off=dream, lx=0.6)
    _arrow(ax, p("action", "bottom"), p("M", "bottom", 0.6), rad=-0.3, lit=dream)
    ax.text(15.6, 2.5, "a: M reads the action", ha="center", **note)
    _arrow(ax, p("h", "bottom", 0.25), p("M", "bottom", 0.97), rad=-1.3, lit=dream)
    ax.text(12.4, 3.6, "h carried to\nthe next step", ha="left", **note)
    # The dream: M's prediction P(z') is sampled and fed back as the next z, without game, frame or V.
    _arrow(ax, p("M", "bottom", 0.25), p("dream", "top", 0.3), "P(z')", dashed=True, lit=dream, lx=-0.45)
    _arrow(ax, p("dream", "left"), p("z", "bottom"), "sampled z' replaces frame and V", rad=-0.3, dashed=True,
           lit=dream, lx=-1.3, ly=-0.1)


def agent_diagram(here: str | None = None):
    """Draw the whole agent and return the matplotlib Figure (a notebook shows it inline).

    here: None draws every part in its own colour; "V", "M" or "C" highlights that part (and the
          numbers it produces) and fades the rest; "dream" highlights the loop in which M's sampled
          z' replaces the real game, the frame and V, and greys those three out.

    Each box is a patch whose gid names it ("frame", "V", "z", "M", "h", "C", "action", "env",
    "dream"), so `{p.get_gid(): p for p in fig.axes[0].patches}` finds a box and its face colour.
    Raises ValueError for any other `here`.
    """
    _check_here(here)
    import matplotlib.pyplot as plt

    boxes = {b.key: b for b in _boxes(_sizes())}
    # Made by pyplot so that the notebook's display hook for figures is loaded, then closed at once:
    # the Figure returned is shown once (as a cell's value), and none piles up in pyplot's list.
    fig = plt.figure(figsize=(13.0, 5.4))
    plt.close(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.92))
    ax.set_xlim(0.0, 19.0)
    ax.set_ylim(0.0, 8.2)
    ax.axis("off")
    _draw_boxes(ax, boxes, here)
    _draw_arrows(ax, boxes, here)
    fig.suptitle(_TITLES[here], fontsize=12, y=0.97)
    return fig
