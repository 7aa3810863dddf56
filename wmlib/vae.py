"""V: the convolutional variational autoencoder that compresses a 64x64x3 frame into z.

A frame is 64 * 64 * 3 = 12,288 numbers, most of them redundant. V learns to squeeze it into a
latent vector z of Z = 32 numbers and to draw the frame back from z:

    encoder   x (B,3,64,64) -> conv 32,64,128,256 (kernel 4, stride 2, ReLU) -> (B,1024)
              -> mu (B,Z), logvar (B,Z)                     q(z | x) = N(mu, exp(logvar))
    sample    z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)   (the reparameterisation trick)
    decoder   z (B,Z) -> dense 1024 -> deconv 128k5, 64k5, 32k6 (ReLU), 3k6 (sigmoid) -> x_hat

Training maximises the ELBO, log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || N(0, I)). With a
Gaussian decoder of fixed variance the first term is a sum of squared errors, so the loss is

    loss = mean_b [ sum_pixels (x_hat - x)^2 ] + mean_b [ max(KL_b, kl_tolerance * Z) ]

The max is the paper's "free bits": the KL of a frame is not pushed below kl_tolerance nats per
latent dimension, so V keeps spending that much information on every frame instead of
collapsing z towards the prior.

With the paper's config (Z = 32 on 64x64x3) `ConvVAE` has exactly 4,348,547 parameters.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from wmlib.checkpoints import data_fingerprint, load_named
from wmlib.config import VAEConfig, default_device
from wmlib.resume import resume_training, save_training
from wmlib.rollouts import FrameDataset, frames_to_tensor, rollout_files

# ---------------------------------------------------------------------------------------------
# The math: pure functions, testable on their own
# ---------------------------------------------------------------------------------------------


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """A sample of z ~ N(mu, exp(logvar)) written so that gradients flow into mu and logvar.

        z = mu + sigma * eps,   sigma = exp(logvar / 2),   eps ~ N(0, I)

    The randomness lives in eps, which does not depend on the parameters, so dz/dmu = 1 and
    dz/dlogvar = sigma * eps / 2 are ordinary derivatives.

    mu, logvar: (B, Z)    eps: (B, Z) or None (then drawn from N(0, I))    Returns z (B, Z).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if eps is None:
        eps = torch.randn_like(mu)
    elif eps.shape != mu.shape:
        raise ValueError(f"eps must have the shape of mu {tuple(mu.shape)}, got {tuple(eps.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, in nats, summed over the latent dims.

        KL = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))

    mu, logvar: (B, Z)    Returns (B,).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def reconstruction_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors over every pixel and channel of each image.

        rec_b = sum_{c,h,w} (x_hat - x)^2

    It is -log p(x | z) of a Gaussian decoder with variance 1/2, up to a constant.
    x_hat, x: (B, C, H, W) in [0, 1]    Returns (B,).
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and "
                         f"{tuple(x.shape)}")
    return (x_hat - x).pow(2).flatten(1).sum(dim=1)


def vae_loss(x_hat: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             kl_tolerance: float) -> torch.Tensor:
    """The paper's VAE loss (the negative ELBO with free bits), a scalar.

        loss = mean_b rec_b + mean_b max(KL_b, kl_tolerance * Z)

    The tolerance applies to each sample's KL before averaging over the batch.
    x_hat, x: (B, C, H, W)    mu, logvar: (B, Z)    Returns a 0-d tensor.
    """
    rec = reconstruction_error(x_hat, x)
    kl = kl_divergence(mu, logvar)
    floor = kl_tolerance * mu.shape[-1]
    return rec.mean() + torch.clamp(kl, min=floor).mean()


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class VAEOutput(NamedTuple):
    """What `ConvVAE.forward` returns. x_hat (B,C,H,W); mu, logvar, z (B,Z)."""

    x_hat: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class ConvVAE(nn.Module):
    """The paper's V (appendix A.1): a 4-layer conv encoder and a 4-layer deconv decoder.

    Spatial sizes: 64 -> 31 -> 14 -> 6 -> 2 in the encoder (2 * 2 * 256 = 1024 features),
    1 -> 5 -> 13 -> 30 -> 64 in the decoder, which starts from a 1x1x1024 "image".
    """

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        config = VAEConfig() if config is None else config
        if config.image_size != 64:
            raise ValueError(f"the paper's ConvVAE is built for 64x64 frames, "
                             f"got image_size={config.image_size}")
        if config.z_dim < 1 or config.image_channels < 1:
            raise ValueError(f"z_dim and image_channels must be positive, got {config.z_dim}, "
                             f"{config.image_channels}")
        self.config = config
        c, z = config.image_channels, config.z_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        self.fc_mu = nn.Linear(1024, z)
        self.fc_logvar = nn.Linear(1024, z)
        self.fc_decode = nn.Linear(z, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 6, stride=2), nn.Sigmoid(),
        )

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def num_params(self) -> int:
        """Number of trainable parameters (4,348,547 at the paper's config)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check_images(self, x: torch.Tensor) -> None:
        c, s = self.config.image_channels, self.config.image_size
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of images (B, {c}, {s}, {s}), got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s):
            hint = " (frames are (H, W, C) uint8: convert with wmlib.rollouts.frames_to_tensor)" \
                if x.dim() in (3, 4) and x.shape[-1] == c else ""
            raise ValueError(f"expected images of shape (B, {c}, {s}, {s}), got {tuple(x.shape)}{hint}")
        if not x.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype} "
                             "(convert uint8 frames with wmlib.rollouts.frames_to_tensor)")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, 64, 64) float in [0, 1] -> mu (B, Z), logvar (B, Z)."""
        self._check_images(x)
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> x_hat (B, C, 64, 64) in [0, 1]."""
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.config.z_dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"expected latents of shape (B, {self.config.z_dim}), got {shape}")
        h = self.fc_decode(z).view(-1, 1024, 1, 1)
        return self.decoder(h)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None,
                reparameterize_fn: Callable = reparameterize) -> VAEOutput:
        """x (B, C, 64, 64) -> VAEOutput(x_hat, mu, logvar, z), z sampled with `reparameterize_fn`."""
        mu, logvar = self.encode(x)
        z = reparameterize_fn(mu, logvar, torch.randn_like(mu) if eps is None else eps)
        return VAEOutput(self.decode(z), mu, logvar, z)


# ---------------------------------------------------------------------------------------------
# Frames in, frames out (uint8 (N, H, W, 3) on the outside)
# ---------------------------------------------------------------------------------------------


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def encode_frames(vae: ConvVAE, frames: np.ndarray,
                  batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames (N, 64, 64, 3) or one frame (64, 64, 3) -> mu (N, Z), logvar (N, Z) on the CPU."""
    x = frames_to_tensor(frames)
    device = _device_of(vae)
    mus, logvars = [], []
    for i in range(0, len(x), batch_size):
        mu, logvar = vae.encode(x[i : i + batch_size].to(device))
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    return torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def decode_latents(vae: ConvVAE, z: torch.Tensor | np.ndarray) -> np.ndarray:
    """Latents (N, Z) or (Z,) -> uint8 frames (N, 64, 64, 3)."""
    z = z.float() if isinstance(z, torch.Tensor) else torch.from_numpy(np.asarray(z, np.float32))
    if z.dim() == 1:
        z = z[None]
    x_hat = vae.decode(z.to(_device_of(vae)))
    return (x_hat.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy())


@torch.no_grad()
def reconstruct(vae: ConvVAE, frames: np.ndarray) -> np.ndarray:
    """uint8 frames (N, 64, 64, 3) -> their reconstructions from the mean latent, uint8 (N, 64, 64, 3)."""
    mu, _ = encode_frames(vae, frames)
    return decode_latents(vae, mu)


def encode_rollouts(vae: ConvVAE, rollouts: str | os.PathLike, out_dir: str | os.PathLike,
                    progress: bool = True) -> list[Path]:
    """Encode every episode file in `rollouts` into out_dir/<same name>.npz, one file at a time.

    Each output holds mu (T+1, Z) and logvar (T+1, Z) float32 (the frames' latent Gaussians) and
    the episode's actions, rewards, terminated and truncated unchanged: what M trains on.
    """
    from wmlib.rollouts import load_episode, save_episode

    out_dir = Path(out_dir)
    paths = []
    files = rollout_files(rollouts)
    for path in tqdm(files, desc="encoding frames with V", unit="episode", disable=not progress):
        episode = load_episode(path)
        if "frames" not in episode:
            raise ValueError(f"{path} holds state observations, not frames; V encodes frames")
        mu, logvar = encode_frames(vae, episode.pop("frames"))
        episode.update(mu=mu.numpy(), logvar=logvar.numpy())
        paths.append(save_episode(out_dir / path.name, episode))
    return paths


@torch.no_grad()
def dimension_effects(vae: ConvVAE, z: torch.Tensor, delta: float = 2.0) -> torch.Tensor:
    """How much each latent dimension changes the picture, around the latents z (N, Z).

    For each dim j: the mean absolute pixel change between decoding z with z_j = -delta and
    with z_j = +delta, averaged over the N latents. Returns (Z,), larger = more visible.
    """
    z = torch.as_tensor(z, dtype=torch.float32)
    if z.dim() == 1:
        z = z[None]
    n, zd = z.shape
    device = _device_of(vae)
    lo = z.repeat(zd, 1).view(zd, n, zd).clone()
    hi = lo.clone()
    for j in range(zd):
        lo[j, :, j] = -delta
        hi[j, :, j] = delta
    out_lo = vae.decode(lo.view(-1, zd).to(device)).view(zd, n, -1)
    out_hi = vae.decode(hi.view(-1, zd).to(device)).view(zd, n, -1)
    return (out_hi - out_lo).abs().mean(dim=(1, 2)).cpu()


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class VAETrainResult:
    """What `train_vae` returns.

    history: one dict per epoch: {"epoch", "loss", "reconstruction", "kl", "frames", "seconds"}, where
             reconstruction is the mean per-image sum of squared errors and kl the mean KL (nats)
    """

    vae: ConvVAE
    history: list[dict]
    frames_seen: int
    wall_time_s: float


def _train_epoch(vae: ConvVAE, optimizer: torch.optim.Optimizer, bar: tqdm, noise: torch.Generator,
                 config: VAEConfig, loss_fn: Callable, reparameterize_fn: Callable, device: torch.device,
                 max_frames: int | None) -> tuple[dict[str, float], int]:
    """One pass over the batches `bar` (a progress bar over the loader) yields, eps drawn from `noise`.

    Returns ({"loss", "reconstruction", "kl"} averaged over the frames, the number of frames), stopping
    after the batch that reaches `max_frames` (None: every batch).
    """
    vae.train()
    sums = {"loss": 0.0, "reconstruction": 0.0, "kl": 0.0}
    n = 0
    for x in bar:
        x = x.to(device)
        eps = torch.randn(len(x), config.z_dim, generator=noise).to(device)
        out = vae(x, eps=eps, reparameterize_fn=reparameterize_fn)
        loss = loss_fn(out.x_hat, x, out.mu, out.logvar, config.kl_tolerance)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            sums["loss"] += float(loss) * len(x)
            sums["reconstruction"] += float(reconstruction_error(out.x_hat, x).sum())
            sums["kl"] += float(kl_divergence(out.mu, out.logvar).sum())
            n += len(x)
        bar.set_postfix(loss=f"{float(loss.detach()):.1f}")
        if max_frames is not None and n >= max_frames:
            break
    return {k: v / max(n, 1) for k, v in sums.items()}, n


def train_vae(
    rollouts: str | os.PathLike | Sequence[str | os.PathLike],
    config: VAEConfig | None = None,
    *,
    epochs: int = 1,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    metadata: dict | None = None,
    loss_fn: Callable = vae_loss,
    reparameterize_fn: Callable = reparameterize,
    max_frames_per_epoch: int | None = None,
    device: torch.device | str | None = None,
    buffer_frames: int = 4096,
    progress: bool = True,
    continue_on_new_data: bool = False,
) -> VAETrainResult:
    """Train V on the frames of rollout files, streaming them (memory stays flat).

    rollouts:   a directory of episode .npz files, or a list of files
    checkpoint: a path stem; after every epoch the weights (float32), Adam's state and the metadata are
                committed as one unit (wmlib.resume.save_training). If the stem already holds this
                run's own unit (same config, seed, data, max_frames_per_epoch and buffer_frames, and at
                most `epochs` epochs), training resumes after its last finished epoch, so an interrupted
                run loses at most one epoch; `epochs` counts the total, resumed included. Any other unit
                there is refused with a CheckpointError (never silently returned or overwritten); with
                continue_on_new_data=True the data may differ (the iterative pipeline refreshes V on
                old + new episodes on purpose), and a finished checkpoint there is a warm start.
    loss_fn:    (x_hat, x, mu, logvar, kl_tolerance) -> scalar; the chapter passes the learner's own
    max_frames_per_epoch: stop an epoch early after this many frames (None: all of them)
    Returns a VAETrainResult with the model (in eval mode) and the per-epoch history.
    """
    config = VAEConfig() if config is None else config
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if isinstance(rollouts, (str, os.PathLike)):
        files = rollout_files(rollouts)
    else:
        files = [Path(f) for f in rollouts]
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(seed)
    vae = ConvVAE(config).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.learning_rate)
    fingerprint = data_fingerprint(files)
    run = {"seed": seed, "data_fingerprint": fingerprint, "max_frames_per_epoch": max_frames_per_epoch,
           "buffer_frames": buffer_frames}
    history = resume_training(checkpoint, vae, optimizer, config, run=run, target=epochs,
                              continue_on_new_data=continue_on_new_data)
    dataset = FrameDataset(files, buffer_frames=buffer_frames, seed=seed)
    dataset.epoch = len(history)
    loader = DataLoader(dataset, batch_size=config.batch_size, num_workers=0)
    start = time.perf_counter()
    frames_seen = 0
    for epoch in range(len(history), epochs):
        t0 = time.perf_counter()
        noise = torch.Generator().manual_seed(seed * 100_003 + epoch)  # per epoch, so a resumed run is exact
        bar = tqdm(loader, desc=f"training V, epoch {epoch + 1}/{epochs}", unit="batch", disable=not progress,
                   leave=False)
        means, n = _train_epoch(vae, optimizer, bar, noise, config, loss_fn, reparameterize_fn, device,
                                max_frames_per_epoch)
        frames_seen += n
        history.append({"epoch": epoch + 1, "frames": n, "seconds": round(time.perf_counter() - t0, 2), **means})
        if progress:
            h = history[-1]
            tqdm.write(f"epoch {epoch + 1}/{epochs}: loss {h['loss']:.1f} = reconstruction "
                       f"{h['reconstruction']:.1f} + KL {h['kl']:.1f} ({n} frames, {h['seconds']:.0f} s)")
        if checkpoint is not None:
            save_training(checkpoint, vae, optimizer, config, run=run, history=history, metadata=metadata)
    vae.eval()
    return VAETrainResult(vae, history, frames_seen, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# The shipped checkpoints
# ---------------------------------------------------------------------------------------------

def load_vae(name: str | os.PathLike, device: torch.device | str = "cpu") -> ConvVAE:
    """Load a shipped V by name ("cartpole", "carracing" or "cartpole_vae") or a checkpoint by path stem.

    A missing, corrupt, incomplete or mismatched file gives a CheckpointError naming the file (and, for a
    shipped name, the command that rebuilds it). No pickle is ever loaded. The metadata:
    `wmlib.checkpoints.read_metadata(name, "vae")`.
    """
    return load_named(ConvVAE, VAEConfig, name, "vae", device).model
