"""Chapter 2's last exercise, `encode_for_memory`: its reference and its tests, registered by ch02.py.

The learner writes the step of the agent's loop between the camera and M: uint8 frames as the
environment gives them (B, 64, 64, 3) -> V -> what M reads, z (B, Z). With eps None that is V's
mean mu (what the agent acts on); with eps given it is the sample mu + sigma * eps (what M is
trained on). The checks use a small V whose log-variances are spread from -4 to 1, so that
sigma, the variance and logvar itself are three clearly different numbers.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from wmlib.exercises._asserts import assert_close
from wmlib.vae import encode_frames, reparameterize


def encode_for_memory(vae, frames: np.ndarray, eps: torch.Tensor | None = None) -> torch.Tensor:
    """Reference: uint8 frames (B, 64, 64, 3) -> what M reads, z (B, Z) float32, without a graph.

    eps None: V's mean mu (what wmlib.agent.Agent acts on by default). eps (B, Z): the sample
    mu + exp(logvar / 2) * eps (what M is trained on; Agent(sample_z=True) acts on it).
    """
    mu, logvar = encode_frames(vae, frames)  # scales to [0, 1], moves channels first, no_grad
    return mu if eps is None else reparameterize(mu, logvar, eps.to(mu))


@functools.lru_cache(maxsize=1)
def _small_vae():
    from wmlib.config import VAEConfig
    from wmlib.vae import ConvVAE

    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = ConvVAE(VAEConfig(z_dim=8))
    with torch.no_grad():
        vae.fc_logvar.weight.mul_(0.1)
        vae.fc_logvar.bias.copy_(torch.linspace(-4.0, 1.0, 8))
    return vae.eval()


def _frames(seed: int, batch: int = 5) -> np.ndarray:
    """uint8 frames (B, 64, 64, 3): a white background, a dark block and a coloured bar at random places."""
    rng = np.random.default_rng(seed)
    frames = np.full((batch, 64, 64, 3), 255, np.uint8)
    for f in frames:
        r, c = rng.integers(5, 45, 2)
        f[r : r + 12, c : c + 16] = rng.integers(0, 80, 3)
        f[rng.integers(0, 20) :, rng.integers(0, 60)] = (140, 90, 40)
        f += rng.integers(0, 3, f.shape, dtype=np.uint8) * (f < 250)
    return frames


def _z(fn, vae, frames, eps=None) -> torch.Tensor:
    before = frames.copy()
    out = fn(vae, frames) if eps is None else fn(vae, frames, eps)
    if not np.array_equal(frames, before):
        raise AssertionError("your function changed the frames in place; build a new float tensor instead")
    if isinstance(out, tuple | list):
        raise AssertionError(f"return one tensor z (B, Z), not a {type(out).__name__} of {len(out)} things "
                             "(M reads one latent per frame, not (mu, logvar))")
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"return a torch.Tensor (M reads tensors), got {type(out).__name__}")
    B, Z = len(frames), vae.config.z_dim
    if tuple(out.shape) != (B, Z):
        raise AssertionError(f"z should have shape (B, Z) = {(B, Z)} for {B} frames and Z = {Z}, "
                             f"got {tuple(out.shape)}")
    if out.dtype != torch.float32:
        raise AssertionError(f"z should be float32 (M's weights are float32), got {out.dtype}")
    return out


def _encoded(vae, images: torch.Tensor):
    with torch.no_grad():
        return vae.encode(images)


def _diagnose_pixels(got, vae, frames) -> None:
    """Name the usual preprocessing mistake when the mean is wrong."""
    x = torch.from_numpy(frames).float()
    mistakes = (
        (x.permute(0, 3, 1, 2), "pixels were not scaled to [0, 1]: divide the uint8 values by 255"),
        (x.permute(0, 3, 1, 2) / 127.5 - 1, "pixels were scaled to [-1, 1]; V was trained on [0, 1] (divide by 255)"),
        (x.reshape(-1, 3, 64, 64) / 255, "the channels are scrambled: reshape does not move the colour axis; "
                                         "use permute(0, 3, 1, 2) to go from (B, H, W, C) to (B, C, H, W)"),
        (x.permute(0, 3, 2, 1) / 255, "height and width are swapped: permute(0, 3, 1, 2), not (0, 3, 2, 1)"),
    )
    for images, message in mistakes:
        mu, _ = _encoded(vae, images.contiguous())
        if torch.allclose(got.detach().double(), mu.double(), rtol=1e-4, atol=1e-5):
            raise AssertionError(message)


def _em_mean(fn):
    vae, frames = _small_vae(), _frames(40)
    got = _z(fn, vae, frames)
    mu, _ = encode_frames(vae, frames)
    if not torch.allclose(got.detach().double(), mu.double(), rtol=1e-4, atol=1e-5):
        _diagnose_pixels(got, vae, frames)
        second = _z(fn, vae, frames)
        if not torch.equal(got, second):
            raise AssertionError("two calls on the same frames without eps gave different z: with eps None "
                                 "return V's mean mu (no noise; V's forward() draws its own noise)")
    assert_close(got, mu, "z for eps None (it should be V's mean mu of each frame)")


def _em_sample(fn):
    vae, frames = _small_vae(), _frames(41)
    eps = torch.randn(len(frames), 8, generator=torch.Generator().manual_seed(41))
    got = _z(fn, vae, frames, eps)
    mu, logvar = encode_frames(vae, frames)
    if torch.allclose(got.detach(), mu, rtol=1e-4, atol=1e-5):
        raise AssertionError("with eps given, z should be the sample mu + sigma * eps; you returned mu")
    for wrong, message in ((mu + logvar * eps, "logvar used as sigma: sigma = exp(logvar / 2)"),
                           (mu + logvar.exp() * eps, "the variance exp(logvar) used as sigma: "
                                                     "sigma = exp(logvar / 2), its square root")):
        if torch.allclose(got.detach(), wrong, rtol=1e-4, atol=1e-5):
            raise AssertionError(message)
    assert_close(got, reparameterize(mu, logvar, eps), "z for a given eps (mu + sigma * eps)")


def _em_zero_eps(fn):
    vae, frames = _small_vae(), _frames(42, batch=3)
    got = _z(fn, vae, frames, torch.zeros(3, 8))
    assert_close(got, encode_frames(vae, frames)[0], "z for eps = 0 (it should be exactly mu)")


def _em_one_frame_at_a_time(fn):
    vae, frames = _small_vae(), _frames(43, batch=4)
    whole = _z(fn, vae, frames)
    for i in range(len(frames)):
        assert_close(_z(fn, vae, frames[i : i + 1]), whole[i : i + 1],
                     f"z of frame {i} encoded alone against the same frame in a batch of 4 "
                     "(frames must not mix: keep the batch axis first)")


def _em_no_graph(fn):
    vae, frames = _small_vae(), _frames(44, batch=2)
    for eps in (None, torch.randn(2, 8, generator=torch.Generator().manual_seed(44))):
        got = _z(fn, vae, frames, eps)
        if got.requires_grad or got.grad_fn is not None:
            raise AssertionError("z carries a gradient graph back into V: encoding for M is not training V; "
                                 "run V under torch.no_grad() (else every step of an episode keeps V's "
                                 "activations alive in memory)")


def _em_inputs_unchanged(fn):
    vae, frames = _small_vae(), _frames(45, batch=3)
    eps = torch.randn(3, 8, generator=torch.Generator().manual_seed(45))
    eps_before = eps.clone()
    _z(fn, vae, frames, eps)  # checks the frames too
    if not torch.equal(eps, eps_before):
        raise AssertionError("your function changed eps in place; compute a new tensor instead")


ENCODE_TESTS = [
    ("eps None gives V's mean", _em_mean),
    ("eps given gives mu + sigma * eps", _em_sample),
    ("eps = 0 gives mu", _em_zero_eps),
    ("frames encoded independently", _em_one_frame_at_a_time),
    ("no gradient graph into V", _em_no_graph),
    ("inputs left unchanged", _em_inputs_unchanged),
]
"""(name, test) pairs for ch02.encode_for_memory."""
