"""Latent explorer (chapter 2): drag a slider, watch what one latent dimension draws; and a traversal grid.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import time

import numpy as np
import torch

from wmlib.widgets.frames import _check_frames, _FastDecoder, frame_to_png


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
