"""Imagination strip (chapter 3, M): what M imagines next, beside what really happened.

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from wmlib.diagnostics import imagine, memory_states
from wmlib.latents import as_action_vectors
from wmlib.mdnrnn import LSTMState
from wmlib.vae import decode_latents, encode_frames
from wmlib.widgets.frames import _tile_row, frame_to_png, upscale


class ImaginationStrip:
    """Pick a real episode and a start step; M imagines the next frames, V draws them.

    Top row: the real frames t+1 .. t+N. Bottom row: M's imagination from the real frame t, fed
    the same (real) actions but only its own samples, at the temperature on the slider. The rows
    wrap every `columns` tiles (the first tile is the real frame t), each 64 x 64 frame drawn
    `scale` times larger, so that a long dream stays readable instead of shrinking to fit the cell.
    A red frame marks a step where M's done head says "the episode ends here" (p > 0.5); a
    grey tile, a step after the real episode ended. Resample draws another dream.

    vae:      V (wmlib.vae.ConvVAE) to encode the real frames and decode the imagined latents
    mdnrnn:   M (wmlib.mdnrnn.MDNRNN)
    episodes: real episodes as `wmlib.rollouts.load_episode` returns them (frames, actions, ...)
    scale:    each pixel drawn as scale x scale pixels (2: 128 px frames)
    columns:  tiles per row before wrapping (6 at scale 2 is about 790 px wide)
    Driven from Python: `set(episode=, start=, horizon=, temperature=)`, `resample()`, then read
    `image` (uint8 (H, W, 3), the strip), `imagined_z` (N, Z), `done_prob` (N,) or None.

    Introduced in: course/03_memory.ipynb
    """

    def __init__(self, vae, mdnrnn, episodes, *, horizon: int = 10, temperature: float = 1.0,
                 scale: int = 2, columns: int = 6, seed: int = 0):
        import ipywidgets as W  # imported here: slow to import, and only widgets need it

        if not episodes:
            raise ValueError("ImaginationStrip needs at least one episode with frames and actions")
        for i, ep in enumerate(episodes):
            if "frames" not in ep or "actions" not in ep:
                raise ValueError(f"episode {i} needs 'frames' (T+1, 64, 64, 3) and 'actions' (T, ...), "
                                 f"got keys {sorted(ep)}")
        self.vae, self.mdnrnn, self.episodes = vae.eval(), mdnrnn.eval(), list(episodes)
        if scale < 1 or columns < 1:
            raise ValueError(f"scale and columns must be at least 1, got {scale} and {columns}")
        self.scale, self.columns = int(scale), int(columns)
        self._seed = seed
        self._draws = 0
        self._cache: dict[int, tuple] = {}
        self.imagined_z = None
        self.done_prob = None
        self.image = None
        longest = max(len(ep["actions"]) for ep in self.episodes)
        self.episode_slider = W.IntSlider(0, 0, len(self.episodes) - 1, description="episode",
                                          disabled=len(self.episodes) == 1)
        self.start_slider = W.IntSlider(0, 0, max(len(self.episodes[0]["actions"]) - 1, 0),
                                        description="start step t")
        self.horizon_slider = W.IntSlider(horizon, 1, max(1, min(30, longest)), description="imagine N")
        self.temperature_slider = W.FloatSlider(temperature, min=0.05, max=2.0, step=0.05,
                                                description="temperature", readout_format=".2f")
        self.resample_button = W.Button(description="resample", icon="refresh")
        self.image_widget = W.Image(format="png")
        self.caption = W.HTML()
        for s in (self.episode_slider, self.start_slider, self.horizon_slider, self.temperature_slider):
            s.observe(self._on_change, names="value")
        self.resample_button.on_click(lambda _: self.resample())
        self.widget = W.VBox([
            W.HBox([self.episode_slider, self.start_slider]),
            W.HBox([self.horizon_slider, self.temperature_slider, self.resample_button]),
            self.image_widget, self.caption,
        ])
        self._busy = False
        self._update()

    # --- driving it from Python -----------------------------------------------------------------

    def set(self, *, episode: int | None = None, start: int | None = None, horizon: int | None = None,
            temperature: float | None = None) -> ImaginationStrip:
        """Move any of the controls (as a learner would) and redraw once."""
        self._busy = True
        try:
            if episode is not None:
                if not 0 <= episode < len(self.episodes):
                    raise ValueError(f"episode must be in 0..{len(self.episodes) - 1}, got {episode}")
                self.episode_slider.value = episode
                self._fit_start()
            if start is not None:
                T = len(self.episodes[self.episode_slider.value]["actions"])
                if not 0 <= start < T:
                    raise ValueError(f"start must be in 0..{T - 1} for this episode of {T} steps, got {start}")
                self.start_slider.value = start
            if horizon is not None:
                self.horizon_slider.value = int(horizon)
            if temperature is not None:
                if not temperature > 0:
                    raise ValueError(f"temperature must be positive, got {temperature}")
                self.temperature_slider.value = float(temperature)
        finally:
            self._busy = False
        self._update()
        return self

    def resample(self) -> ImaginationStrip:
        """Another dream from the same start: a new draw of M's randomness."""
        self._draws += 1
        self._update()
        return self

    def _ipython_display_(self):
        from IPython.display import display  # imported here: slow to import, and only a notebook shows it

        display(self.widget)

    # --- internals --------------------------------------------------------------------------------

    def _fit_start(self) -> None:
        T = len(self.episodes[self.episode_slider.value]["actions"])
        self.start_slider.max = max(T - 1, 0)
        self.start_slider.value = min(self.start_slider.value, T - 1)

    def _on_change(self, change) -> None:
        if self._busy:
            return
        if change["owner"] is self.episode_slider:
            self._busy = True
            try:
                self._fit_start()
            finally:
                self._busy = False
        self._update()

    def _episode(self, i: int):
        """(real frames uint8 (T+1, 64, 64, 3), mu (T+1, Z), actions (T, A), memory states) for episode i."""
        if i not in self._cache:
            ep = self.episodes[i]
            mu, _ = encode_frames(self.vae, ep["frames"])
            actions = torch.from_numpy(as_action_vectors(ep["actions"], self.mdnrnn.config.action_dim))
            self._cache = {i: (ep["frames"], mu, actions, memory_states(self.mdnrnn, mu, actions))}
        return self._cache[i]

    def _wrap(self, real: list, imagined: list, marks: list) -> np.ndarray:
        """Pairs of rows (real above imagined), `columns` tiles each, 2 px apart, 8 px between pairs.

        The last pair is padded with white tiles so that every row has the same width.
        """
        blank = np.full_like(real[0], 255)
        pairs = []
        for i in range(0, len(real), self.columns):
            cut = slice(i, i + self.columns)
            pad = self.columns - len(real[cut]) if len(real) > self.columns else 0
            top = _tile_row(real[cut] + [blank] * pad, [None] * (len(real[cut]) + pad))
            bottom = _tile_row(imagined[cut] + [blank] * pad, marks[cut] + [None] * pad)
            pairs.append(np.concatenate([top, np.full((2, top.shape[1], 3), 255, np.uint8), bottom]))
        gap = np.full((8, pairs[0].shape[1], 3), 255, np.uint8)
        return np.concatenate([part for pair in pairs for part in (pair, gap)][:-1])

    def _update(self) -> None:
        frames, mu, actions, memory = self._episode(self.episode_slider.value)
        T = len(actions)
        t, n = self.start_slider.value, self.horizon_slider.value
        tau = self.temperature_slider.value
        g = torch.Generator().manual_seed(((self._seed * 7919 + self._draws) * 7919 + self.episode_slider.value)
                                          * 7919 + t)
        steps = min(n, T - t)  # real actions exist for t .. T-1; beyond them M keeps the last action
        act = torch.cat([actions[t : t + steps], actions[T - 1 :].expand(n - steps, -1)])
        state = LSTMState(memory.h[t : t + 1], memory.c[t : t + 1])
        dream = imagine(self.mdnrnn, mu[t : t + 1], act[None], state, temperature=tau, generator=g)
        self.imagined_z = dream["z"][0]
        self.done_prob = dream["done_prob"][0].numpy() if "done_prob" in dream else None
        imagined = decode_latents(self.vae, self.imagined_z)
        real = np.full((n, *frames.shape[1:]), 200, np.uint8)
        real[:steps] = frames[t + 1 : t + 1 + steps]
        ends = [p > 0.5 for p in self.done_prob] if self.done_prob is not None else [False] * n
        strip = self._wrap([frames[t]] + list(real), [frames[t]] + list(imagined),
                           [None] + ["end" if e else None for e in ends])
        self.image = upscale(strip, self.scale) if self.scale > 1 else strip
        self.image_widget.value = frame_to_png(strip, self.scale)
        # Shown at its own size: without a width, JupyterLab stretches the picture to the cell (blurry).
        self.image_widget.width, self.image_widget.height = str(self.image.shape[1]), str(self.image.shape[0])
        done = "" if self.done_prob is None else (
            " &nbsp; M's P(episode ends) per step: " + " ".join(f"{p:.2f}" for p in self.done_prob))
        ended = f" (the real episode ended after step {T - 1})" if t + n > T else ""
        self.caption.value = (f"<small>left: the real frame t = {t}; top: what really happened at t+1..t+{n}"
                              f"{ended}; bottom: what M imagined at temperature {tau:.2f}.{done}</small>")
