"""Interactive views of the agent's parts, built with ipywidgets.

Every widget is built once and then updated by value: a slider's `observe` callback computes new
pixels, encodes them as PNG bytes and assigns them to an `ipywidgets.Image`. Nothing is redrawn
from scratch, so an update costs one forward pass of a small network plus a PNG encode.
64x64 frames are enlarged with nearest-neighbour so that the pixels stay sharp.

Every widget can also be driven from Python (set a value, read the image bytes), which is how
the unit tests check them.

Sections (one per chapter that introduces a view):

    shared helpers            frame_to_png
    latent explorer (ch. 2)   LatentExplorer, traversal_grid
    imagination strip (ch. 3) ImaginationStrip
    dream player (ch. 5)      DreamPlayer
    rollout viewer (ch. 1)    RolloutViewer

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The first eight bytes of every PNG file."""

# =============================================================================================
# Shared helpers
# =============================================================================================


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) uint8 -> (H * scale, W * scale, C), each pixel a scale x scale block."""
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


def frame_to_png(frame: np.ndarray, scale: int = 4) -> bytes:
    """A uint8 frame (H, W, 3) as PNG bytes, enlarged `scale` times with nearest-neighbour."""
    from PIL import Image

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame of shape (H, W, 3), got {frame.shape} {frame.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(upscale(frame, scale) if scale > 1 else frame).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[1:] != (64, 64, 3) or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (N, 64, 64, 3) or one (64, 64, 3) frame, "
                         f"got {frames.shape} {frames.dtype}")
    if len(frames) == 0:
        raise ValueError("expected at least one frame")
    return frames


# =============================================================================================
# Latent explorer (chapter 2): drag a slider, watch what one latent dimension draws
# =============================================================================================


class _FastDecoder:
    """V's decoder for one latent at a time, with its first two layers folded into one matrix.

    The dense layer and the first deconvolution (which reads a 1x1 "image") are both affine and
    have no nonlinearity between them, so together they are one affine map z -> (128, 5, 5):
    a (Z, 3200) matrix. PyTorch's transposed convolution on a 1x1 input is slow on a CPU
    (about 15 ms per call); the folded matrix takes microseconds. Built from the weights at
    construction time; the output equals `vae.decode` up to float rounding.
    """

    def __init__(self, vae):
        fc, deconv = vae.fc_decode, vae.decoder[0]
        with torch.no_grad():
            w1 = deconv.weight.reshape(deconv.in_channels, -1)  # (1024, 128 * 5 * 5)
            self.weight = (fc.weight.T @ w1).contiguous()  # (Z, 3200)
            self.bias = fc.bias @ w1 + deconv.bias.repeat_interleave(w1.shape[1] // deconv.out_channels)
        self.shape = (deconv.out_channels, *deconv.kernel_size)
        self.rest = vae.decoder[1:]

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> x_hat (B, C, 64, 64)."""
        h = torch.addmm(self.bias, z, self.weight).view(-1, *self.shape)
        return self.rest(h)


class LatentExplorer:
    """A real frame, its reconstruction, and the frame decoded from a z you set with sliders.

        explorer = LatentExplorer(vae, frames)     # frames: uint8 (N, 64, 64, 3)
        explorer                                   # in a notebook: shows the widget
        explorer.set_dim(5, 2.0)                   # drive it from Python ...
        explorer.png                               # ... and read the decoded image (PNG bytes)

    The sliders are ordered by how much each latent dimension changes the picture (largest
    first, measured with `wmlib.vae.dimension_effects` around the encoded frames), so the
    dimensions that matter are at the top. "randomise" draws z from the prior N(0, I); "reset"
    puts z back to the encoding (the mean mu) of the chosen real frame.

    vae:        a ConvVAE (any device; decoding happens there)
    frames:     real frames to choose from with the frame slider
    n_sliders:  how many latent dimensions get a slider (default: all of them)
    limit:      sliders run from -limit to +limit
    scale:      how much the 64x64 frames are enlarged on screen
    """

    def __init__(self, vae, frames, *, n_sliders: int | None = None, limit: float = 3.0, scale: int = 4,
                 seed: int = 0, title: str = "latent explorer"):
        import ipywidgets as w

        from wmlib.vae import dimension_effects, encode_frames, reconstruct

        self.vae = vae.eval()
        self.frames = _check_frames(frames)
        self.z_dim = int(vae.config.z_dim)
        n_sliders = self.z_dim if n_sliders is None else int(n_sliders)
        if not 1 <= n_sliders <= self.z_dim:
            raise ValueError(f"n_sliders must be between 1 and z_dim={self.z_dim}, got {n_sliders}")
        self.scale = scale
        self.rng = np.random.default_rng(seed)
        self.mu = encode_frames(vae, self.frames)[0].numpy()  # (N, Z)
        self.reconstructions = reconstruct(vae, self.frames)  # (N, 64, 64, 3)
        probe = torch.from_numpy(self.mu[np.linspace(0, len(self.mu) - 1, min(len(self.mu), 16)).astype(int)])
        self.effects = dimension_effects(vae, probe).numpy()  # (Z,)
        self.order = [int(j) for j in np.argsort(-self.effects)[:n_sliders]]
        self.z = self.mu[0].astype(np.float32).copy()
        self.frame_index = 0
        self.last_update_ms = 0.0
        self._quiet = False
        self._device = next(vae.parameters()).device
        self._decode = _FastDecoder(vae)

        layout = w.Layout(width="240px")
        self.sliders = {}
        for rank, j in enumerate(self.order):
            s = w.FloatSlider(value=float(self.z[j]), min=-limit, max=limit, step=0.05, description=f"z[{j}]",
                              continuous_update=True, readout_format=".2f", layout=layout,
                              tooltip=f"rank {rank + 1}: mean pixel change {self.effects[j]:.3f}")
            s.observe(self._on_slider, names="value")
            self.sliders[j] = s
        self.real_image = w.Image(value=frame_to_png(self.frames[0], scale), format="png")
        self.reconstruction_image = w.Image(value=frame_to_png(self.reconstructions[0], scale), format="png")
        self.image = w.Image(format="png")
        self.frame_slider = w.IntSlider(value=0, min=0, max=len(self.frames) - 1, description="frame",
                                        continuous_update=False)
        self.frame_slider.observe(lambda change: self.show_frame(change["new"]), names="value")
        self.randomise_button = w.Button(description="randomise", tooltip="draw z from the prior N(0, I)")
        self.randomise_button.on_click(lambda _: self.randomise())
        self.reset_button = w.Button(description="reset", tooltip="z = the encoding of the real frame")
        self.reset_button.on_click(lambda _: self.reset())
        self.status = w.HTML()

        def column(label, image):
            return w.VBox([w.HTML(f"<b>{label}</b>"), image])

        images = w.HBox([column("real frame", self.real_image), column("its reconstruction",
                         self.reconstruction_image), column("decoded from the sliders' z", self.image)])
        grid = w.GridBox(list(self.sliders.values()),
                         layout=w.Layout(grid_template_columns="repeat(4, 250px)"))
        self.widget = w.VBox([w.HTML(f"<h4>{title}</h4>"), images,
                              w.HBox([self.frame_slider, self.randomise_button, self.reset_button]),
                              w.HTML("sliders ordered by how much each dimension changes the picture"),
                              grid, self.status])
        self._render()

    # --- driving it from Python -----------------------------------------------------------

    @property
    def png(self) -> bytes:
        """The PNG bytes of the frame decoded from the current z."""
        return self.image.value

    def decoded_frame(self) -> np.ndarray:
        """The frame decoded from the current z, uint8 (64, 64, 3) (exactly what is shown)."""
        x_hat = self._decode(torch.from_numpy(self.z[None]).to(self._device))[0]
        return x_hat.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()

    def set_dim(self, j: int, value: float) -> None:
        """Set latent dimension j (moves its slider if it has one) and re-render."""
        if not 0 <= j < self.z_dim:
            raise ValueError(f"latent dimension must be in 0..{self.z_dim - 1}, got {j}")
        if j in self.sliders:
            self.sliders[j].value = float(value)  # the observer renders
        else:
            self.z[j] = float(value)
            self._render()

    def set_z(self, z) -> None:
        """Set the whole latent vector (Z,) at once, with a single re-render."""
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape != (self.z_dim,):
            raise ValueError(f"expected a latent vector of shape ({self.z_dim},), got {z.shape}")
        self.z = z.copy()
        self._quiet = True
        try:
            for j, s in self.sliders.items():
                s.value = float(np.clip(z[j], s.min, s.max))
        finally:
            self._quiet = False
        self._render()

    def randomise(self) -> None:
        """z ~ N(0, I), the prior: what does V draw for a z no real frame produced?"""
        self.set_z(self.rng.standard_normal(self.z_dim).astype(np.float32))

    def reset(self) -> None:
        """z = mu of the chosen real frame (so the decoded frame is its reconstruction)."""
        self.set_z(self.mu[self.frame_index])

    def show_frame(self, i: int) -> None:
        """Choose real frame i and reset z to its encoding."""
        if not 0 <= i < len(self.frames):
            raise ValueError(f"frame index must be in 0..{len(self.frames) - 1}, got {i}")
        self.frame_index = int(i)
        if self.frame_slider.value != i:
            self.frame_slider.value = int(i)  # its observer calls back here
            return
        self.real_image.value = frame_to_png(self.frames[i], self.scale)
        self.reconstruction_image.value = frame_to_png(self.reconstructions[i], self.scale)
        self.reset()

    # --- internals --------------------------------------------------------------------------

    def _on_slider(self, change) -> None:
        if self._quiet:
            return
        for j, s in self.sliders.items():
            if s is change["owner"]:
                self.z[j] = float(change["new"])
        self._render()

    @torch.no_grad()
    def _render(self) -> None:
        start = time.perf_counter()
        z = torch.from_numpy(self.z[None]).to(self._device)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one small image: extra threads only fight over busy cores
        try:
            x_hat = self._decode(z)[0]
        finally:
            torch.set_num_threads(threads)
        frame = x_hat.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        self.image.value = frame_to_png(frame, self.scale)
        self.last_update_ms = 1000 * (time.perf_counter() - start)
        self.status.value = f"<small>decoded and drawn in {self.last_update_ms:.1f} ms</small>"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def traversal_grid(vae, z, dims=None, values=None, n_dims: int = 8, title: str | None = None):
    """A matplotlib figure: each row sweeps one latent dimension, the others held at z.

    z:      the latent (Z,) to start from (for example the encoding of a real frame)
    dims:   which dimensions get a row (default: the `n_dims` that change the picture most)
    values: the values each swept dimension takes (default: 9 values from -2 to 2)
    Returns the Figure (the notebook shows it).
    """
    import matplotlib.pyplot as plt

    from wmlib.vae import decode_latents, dimension_effects

    z = torch.as_tensor(np.asarray(z, np.float32)).reshape(-1)
    if z.shape[0] != vae.config.z_dim:
        raise ValueError(f"expected a latent of shape ({vae.config.z_dim},), got {tuple(z.shape)}")
    values = np.linspace(-2.0, 2.0, 9) if values is None else np.asarray(values, np.float32)
    if dims is None:
        dims = [int(j) for j in np.argsort(-dimension_effects(vae, z[None]).numpy())[:n_dims]]
    batch = z.repeat(len(dims) * len(values), 1)
    for r, j in enumerate(dims):
        batch[r * len(values) : (r + 1) * len(values), j] = torch.as_tensor(values)
    frames = decode_latents(vae, batch).reshape(len(dims), len(values), 64, 64, 3)
    mosaic = frames.transpose(0, 2, 1, 3, 4).reshape(len(dims) * 64, len(values) * 64, 3)
    fig, ax = plt.subplots(figsize=(1.1 * len(values) + 1, 1.1 * len(dims) + 0.8))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks(np.arange(len(values)) * 64 + 32, [f"{v:+.1f}" for v in values])
    ax.set_yticks(np.arange(len(dims)) * 64 + 32, [f"z[{j}]" for j in dims])
    ax.set_xlabel("value given to the swept dimension (standard deviations of the prior)")
    ax.set_ylabel("latent dimension swept")
    ax.set_title(title or "latent traversal: each row changes one dimension of z, the rest held fixed")
    fig.tight_layout()
    return fig


# =============================================================================================
# Rollout viewer (chapter 1): step through a recorded episode
# =============================================================================================


class RolloutViewer:
    """Step through an episode: the frame at step t, the action taken, the reward, and (optionally)
    the hidden state numbers behind the picture.

    episode:      a dict in the rollout-file layout: frames (T+1, H, W, 3) uint8, actions (T, ...),
                  rewards (T,)
    states:       optional (T+1, D) array shown as numbers under the frame (e.g. CartPole's state)
    action_names: optional names for discrete actions

    Drive it from Python: `viewer.show(t)`; `viewer.image.value` holds the PNG bytes of frame t.

    Introduced in: course/01_problem.ipynb
    """

    STATE_NAMES = ("cart x", "cart velocity", "pole angle (rad)", "pole angular velocity")

    def __init__(self, episode: dict, *, states=None, action_names=None, scale: int = 4):
        import ipywidgets as widgets

        frames = np.asarray(episode.get("frames"))
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"episode['frames'] must be (T+1, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        self.frames, self.scale = frames, scale
        self.actions = np.asarray(episode.get("actions", np.zeros(len(frames) - 1)))
        self.rewards = np.asarray(episode.get("rewards", np.zeros(len(frames) - 1)), dtype=np.float32)
        self.states = None if states is None else np.asarray(states)
        if self.states is not None and len(self.states) != len(frames):
            raise ValueError(f"states has {len(self.states)} rows, expected one per frame ({len(frames)})")
        self.action_names = action_names
        size = frames.shape[1] * scale
        self.image = widgets.Image(format="png", width=size, height=size)
        self.text = widgets.HTML()
        self.slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description="step t")
        self.play = widgets.Play(value=0, min=0, max=len(frames) - 1, interval=120, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider]), self.image, self.text])
        self.show(0)

    def show(self, t: int) -> None:
        """Display frame t and what happened at step t."""
        t = int(np.clip(t, 0, len(self.frames) - 1))
        self.image.value = frame_to_png(self.frames[t], self.scale)
        lines = [f"<b>step {t}</b> of {len(self.frames) - 1}"]
        if t < len(self.actions):
            a = self.actions[t]
            name = self.action_names[int(a)] if self.action_names is not None and np.ndim(a) == 0 else str(a)
            lines.append(f"action taken: {name}, reward: {self.rewards[t]:g}")
        else:
            lines.append("the episode is over")
        if self.states is not None:
            names = self.STATE_NAMES if self.states.shape[1] == 4 else [f"s[{i}]" for i in range(self.states.shape[1])]
            lines.append(", ".join(f"{n} = {v:+.3f}" for n, v in zip(names, self.states[t], strict=True)))
        self.text.value = "<br>".join(lines)
        if self.slider.value != t:
            self.slider.value = t

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# =============================================================================================
# Imagination strip (chapter 3, M): what M imagines next, beside what really happened
# =============================================================================================


class ImaginationStrip:
    """Pick a real episode and a start step; M imagines the next frames, V draws them.

    Top row: the real frames t+1 .. t+N. Bottom row: M's imagination from the real frame t, fed
    the same (real) actions but only its own samples, at the temperature on the slider.
    A red frame marks a step where M's done head says "the episode ends here" (p > 0.5); a
    grey tile, a step after the real episode ended. Resample draws another dream.

    vae:      V (wmlib.vae.ConvVAE) to encode the real frames and decode the imagined latents
    mdnrnn:   M (wmlib.mdnrnn.MDNRNN)
    episodes: real episodes as `wmlib.rollouts.load_episode` returns them (frames, actions, ...)
    Driven from Python: `set(episode=, start=, horizon=, temperature=)`, `resample()`, then read
    `image` (uint8 (H, W, 3), the strip), `imagined_z` (N, Z), `done_prob` (N,) or None.

    Introduced in: course/03_memory.ipynb
    """

    def __init__(self, vae, mdnrnn, episodes, *, horizon: int = 10, temperature: float = 1.0,
                 scale: int = 2, seed: int = 0):
        import ipywidgets as W

        if not episodes:
            raise ValueError("ImaginationStrip needs at least one episode with frames and actions")
        for i, ep in enumerate(episodes):
            if "frames" not in ep or "actions" not in ep:
                raise ValueError(f"episode {i} needs 'frames' (T+1, 64, 64, 3) and 'actions' (T, ...), "
                                 f"got keys {sorted(ep)}")
        self.vae, self.mdnrnn, self.episodes = vae.eval(), mdnrnn.eval(), list(episodes)
        self.scale = int(scale)
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
        from IPython.display import display

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
            from wmlib.mdnrnn import as_action_vectors, memory_states
            from wmlib.vae import encode_frames

            ep = self.episodes[i]
            mu, _ = encode_frames(self.vae, ep["frames"])
            actions = torch.from_numpy(as_action_vectors(ep["actions"], self.mdnrnn.config.action_dim))
            self._cache = {i: (ep["frames"], mu, actions, memory_states(self.mdnrnn, mu, actions))}
        return self._cache[i]

    def _update(self) -> None:
        from wmlib.mdnrnn import LSTMState, imagine
        from wmlib.vae import decode_latents

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
        top = _tile_row([frames[t]] + list(real), marks=[None] + [None] * n)
        ends = [p > 0.5 for p in self.done_prob] if self.done_prob is not None else [False] * n
        bottom = _tile_row([frames[t]] + list(imagined), marks=[None] + ["end" if e else None for e in ends])
        strip = np.concatenate([top, np.full((2, top.shape[1], 3), 255, np.uint8), bottom])
        self.image = upscale(strip, self.scale) if self.scale > 1 else strip
        self.image_widget.value = frame_to_png(strip, self.scale)
        done = "" if self.done_prob is None else (
            " &nbsp; M's P(episode ends) per step: " + " ".join(f"{p:.2f}" for p in self.done_prob))
        ended = f" (the real episode ended after step {T - 1})" if t + n > T else ""
        self.caption.value = (f"<small>left: the real frame t = {t}; top: what really happened at t+1..t+{n}"
                              f"{ended}; bottom: what M imagined at temperature {tau:.2f}.{done}</small>")


END_RED = (220, 30, 30)
"""Border colour of an imagined frame where M's done head predicts the end of the episode."""


def _tile_row(frames, marks) -> np.ndarray:
    """Frames (64, 64, 3) side by side with a 2-pixel white gap; a red border where marked 'end'."""
    tiles = []
    for frame, mark in zip(frames, marks, strict=True):
        tile = np.array(frame, dtype=np.uint8, copy=True)
        if mark == "end":
            tile[:2], tile[-2:], tile[:, :2], tile[:, -2:] = END_RED, END_RED, END_RED, END_RED
        tiles.extend([tile, np.full((tile.shape[0], 2, 3), 255, np.uint8)])
    return np.concatenate(tiles[:-1], axis=1)


# =============================================================================================
# Dream player (chapter 5): drive the dream yourself, or let the controller drive
# =============================================================================================


def _default_dream_actions(space) -> dict:
    """Button name -> action: push left/right for CartPole, steer/brake for the car."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        return {"◀ push left": 0, "push right ▶": 1} if space.n == 2 else {f"action {i}": i for i in range(space.n)}
    if isinstance(space, gym.spaces.Box) and space.shape == (3,):
        return {"◀ steer left": np.array([-1.0, 0.3, 0.0], np.float32),
                "straight": np.array([0.0, 0.3, 0.0], np.float32),
                "steer right ▶": np.array([1.0, 0.3, 0.0], np.float32),
                "brake": np.array([0.0, 0.0, 0.8], np.float32)}
    return {"zero": np.zeros(space.shape, space.dtype)}


class DreamPlayer:
    """Play a dream: the frame V draws from M's latent, a step counter, and the controls.

        player = DreamPlayer(env, controller=c)     # env: a wmlib.dream.DreamEnv made with vae=V

    Controls: one button per action (push left / push right for CartPole; steer left, straight,
    steer right, brake for the car) takes one step with that action, so a human drives the
    dream; "step" takes one step with the controller's action (controller on) or your last one;
    play/pause steps on a timer; "controller" switches C on or off; the temperature slider makes
    M's dream calmer or wilder from the next step on; "reset" starts a new dream from another
    real first frame. A red border marks a dream that has ended (M's done head).

    Driven from Python: `reset(seed=None)`, `step(action=None)`, `press(name)`,
    `set(temperature=, controller_on=)`; then read `frame` ((64, 64, 3) uint8), `t`,
    `total_reward`, `done`, `last_action`, and `image.value` (PNG bytes).

    Introduced in: course/05_dream.ipynb
    """

    def __init__(self, env, controller=None, *, actions: dict | None = None, scale: int = 4, seed: int = 0,
                 interval_ms: int = 100):
        import ipywidgets as W

        if getattr(env, "vae", None) is None:
            raise ValueError("the dream player draws the dream with V: make the DreamEnv with vae=")
        if controller is not None and controller.config.z_dim != env.vae.config.z_dim:
            raise ValueError(f"the controller reads z of size {controller.config.z_dim}, "
                             f"the dream's z has size {env.vae.config.z_dim}")
        self.env, self.controller, self.scale = env, controller, int(scale)
        self.actions = dict(actions) if actions is not None else _default_dream_actions(env.action_space)
        for action in self.actions.values():
            env.action_vector(action)  # a clear error now for an action outside the space
        self._decode = _FastDecoder(env.vae)
        self.last_action = next(iter(self.actions.values()))
        self.frame = None
        self.t, self.total_reward, self.done, self.done_prob = 0, 0.0, False, None

        # An explicit size: without it JupyterLab stretches the image to the full width of the output.
        self.image = W.Image(format="png", width=64 * self.scale, height=64 * self.scale)
        self.caption = W.HTML()
        self.buttons = {name: W.Button(description=name) for name in self.actions}
        for name, button in self.buttons.items():
            button.on_click(lambda _, name=name: self.press(name))
        self.step_button = W.Button(description="step", icon="step-forward")
        self.step_button.on_click(lambda _: self.step())
        self.reset_button = W.Button(description="reset", icon="refresh")
        self.reset_button.on_click(lambda _: self.reset())
        self.controller_toggle = W.ToggleButton(value=controller is not None, description="controller",
                                                disabled=controller is None, icon="android")
        self.controller_toggle.observe(lambda _: self._draw(), names="value")
        self.temperature_slider = W.FloatSlider(env.temperature, min=0.05, max=2.0, step=0.05,
                                                description="temperature", readout_format=".2f")
        self.temperature_slider.observe(self._on_temperature, names="value")
        self.play = W.Play(value=0, min=0, max=10**9, interval=interval_ms, description="play", show_repeat=False)
        self.play.observe(self._on_tick, names="value")
        self.widget = W.VBox([
            W.HBox([self.play, self.step_button, self.reset_button, self.controller_toggle]),
            W.HBox(list(self.buttons.values())),
            self.temperature_slider, self.image, self.caption,
        ])
        self.reset(seed=seed)

    # --- driving it from Python -----------------------------------------------------------------

    @property
    def controller_on(self) -> bool:
        return bool(self.controller is not None and self.controller_toggle.value)

    def reset(self, seed: int | None = None) -> DreamPlayer:
        """A new dream (from the env's random stream; `seed` restarts that stream)."""
        self.env.reset(seed=seed)
        self.t, self.total_reward, self.done, self.done_prob = 0, 0.0, False, None
        self._draw()
        return self

    def controller_action(self):
        """What C would do now, from the dream's [z, h]."""
        h = self.env.h if self.controller.config.h_dim > 0 else None
        return self.controller.act(self.env.z, h)

    def step(self, action=None) -> bool:
        """One dream step with `action`, or C's action (controller on), or the last action.

        Returns False (and does nothing) once the dream has ended: press reset.
        """
        if self.done:
            return False
        if action is None:
            action = self.controller_action() if self.controller_on else self.last_action
        _, reward, terminated, truncated, info = self.env.step(action)
        self.last_action = action
        self.t += 1
        self.total_reward += reward
        self.done = bool(terminated or truncated)
        self.done_prob = info.get("done_prob")
        self._draw()
        return True

    def press(self, name: str) -> bool:
        """A human's move: one step with the action of button `name`."""
        if name not in self.actions:
            raise ValueError(f"no button {name!r}; the buttons are {', '.join(map(repr, self.actions))}")
        return self.step(self.actions[name])

    def set(self, *, temperature: float | None = None, controller_on: bool | None = None) -> DreamPlayer:
        """Move the temperature slider or flip the controller switch, as a learner would."""
        if temperature is not None:
            if not temperature > 0:
                raise ValueError(f"temperature must be positive, got {temperature}")
            self.temperature_slider.value = float(temperature)
        if controller_on is not None:
            if controller_on and self.controller is None:
                raise ValueError("this player has no controller: pass controller= to DreamPlayer")
            self.controller_toggle.value = bool(controller_on)
        return self

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # --- internals --------------------------------------------------------------------------------

    def _on_temperature(self, change) -> None:
        self.env.temperature = change["new"]
        self._draw()

    def _on_tick(self, change) -> None:
        if not self.step():
            self.play.playing = False

    def _draw(self) -> None:
        x_hat = self._decode(self.env.z[None].float())  # (1, 3, 64, 64)
        frame = x_hat[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        self.frame = frame
        shown = _tile_row([frame], ["end" if self.done else None])
        self.image.value = frame_to_png(shown, self.scale)
        driver = "the controller" if self.controller_on else "you (the buttons)"
        p_end = "" if self.done_prob is None else f" &nbsp; M's P(end) {self.done_prob:.2f}"
        status = "<b style='color:#cf222e'>the dream has ended: press reset</b><br>" if self.done else ""
        self.caption.value = (f"{status}dream step <b>{self.t}</b> &nbsp; return {self.total_reward:g}{p_end}"
                              f" &nbsp; driven by {driver} &nbsp; temperature {self.env.temperature:.2f}")
