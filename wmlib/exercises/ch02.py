"""Chapter 2 exercises: the reparameterisation trick, the KL term, the VAE loss, and encoding frames for M.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from wmlib.exercises._asserts import as_scalar, as_tensor, assert_close
from wmlib.exercises._core import LearnerCodeError, register
from wmlib.vae import encode_frames, kl_divergence, reparameterize, vae_loss


def _gaussians(seed: int, batch: int = 6, z: int = 8, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, z, generator=g) * scale
    logvar = torch.randn(batch, z, generator=g) * scale
    eps = torch.randn(batch, z, generator=g)
    return mu, logvar, eps


def _unchanged(fn, args: dict) -> None:
    copies = {k: v.clone() for k, v in args.items()}
    fn(*args.values())
    for name, before in copies.items():
        if not torch.equal(before, args[name]):
            raise AssertionError(f"your function changed its input {name} in place; "
                                 "compute a new tensor instead")


# --- tests for ch02.reparameterize ------------------------------------------------------------


def _rp_hand_example(fn):
    mu = torch.tensor([[0.0, 1.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)]])
    eps = torch.tensor([[1.0, 1.0, -2.0]])
    # sigma = exp(logvar / 2) = [1, 2, 0.5], so z = mu + sigma * eps = [1, 3, -3]
    assert_close(fn(mu, logvar, eps), torch.tensor([[1.0, 3.0, -3.0]]),
                 "z for mu=[0, 1, -2], variance=[1, 4, 0.25], eps=[1, 1, -2] (the standard deviation is "
                 "exp(logvar / 2), the square root of the variance)")


def _rp_uses_eps(fn):
    mu, logvar, eps = _gaussians(1)
    first = as_tensor(fn(mu, logvar, eps), "z")
    second = as_tensor(fn(mu, logvar, eps), "z")
    if not torch.equal(first, second):
        raise AssertionError("two calls with the same mu, logvar and eps gave different z: use the eps "
                             "you are given instead of drawing new noise (so the sample is reproducible)")
    assert_close(first, reparameterize(mu, logvar, eps), "z on a random batch")


def _rp_zero_noise(fn):
    mu, logvar, _ = _gaussians(2)
    assert_close(fn(mu, logvar, torch.zeros_like(mu)), mu, "z when eps = 0 (it should be exactly mu)")


def _rp_random_batches(fn):
    for seed in range(3, 6):
        mu, logvar, eps = _gaussians(seed, batch=5, z=32, scale=2.0)
        assert_close(fn(mu, logvar, eps), reparameterize(mu, logvar, eps),
                     f"z on a random batch (seed {seed})")


def _rp_gradients(fn):
    mu, logvar, eps = _gaussians(6)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z = as_tensor(fn(mu, logvar, eps), "z")
    if not z.requires_grad:
        raise AssertionError("z carries no gradient back to mu and logvar: build it from mu and logvar with "
                             "differentiable torch operations (no .detach(), no sampling with torch.normal)")
    try:
        z.sum().backward()
    except RuntimeError as exc:
        raise LearnerCodeError(f"backpropagating through your z failed: {exc}") from exc
    if mu.grad is None or logvar.grad is None:
        raise AssertionError("no gradient reached mu or logvar: the point of the trick is that both get one")
    assert_close(mu.grad, torch.ones_like(mu), "dz/dmu (it should be 1 everywhere)")
    assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps,
                 "dz/dlogvar (it should be exp(logvar / 2) * eps / 2)")


def _rp_extreme_logvar(fn):
    mu = torch.tensor([[0.5, 0.5]])
    logvar = torch.tensor([[-120.0, 120.0]])
    eps = torch.tensor([[1.0, 1e-20]])
    assert_close(fn(mu, logvar, eps), reparameterize(mu, logvar, eps),
                 "z for logvar = -120 and 120 (exp(120) overflows float32: compute exp(logvar / 2) directly "
                 "rather than the square root of exp(logvar))", rtol=1e-4, atol=1e-6)


def _rp_inputs_unchanged(fn):
    mu, logvar, eps = _gaussians(7)
    _unchanged(fn, {"mu": mu, "logvar": logvar, "eps": eps})


register(
    "ch02.reparameterize",
    "(mu (B, Z), logvar (B, Z), eps (B, Z)) -> z (B, Z) = mu + exp(0.5 * logvar) * eps",
    reparameterize,
    [
        ("worked example by hand", _rp_hand_example),
        ("uses the eps it is given", _rp_uses_eps),
        ("eps = 0 gives mu", _rp_zero_noise),
        ("random batches", _rp_random_batches),
        ("gradients reach mu and logvar", _rp_gradients),
        ("large and small logvar", _rp_extreme_logvar),
        ("inputs left unchanged", _rp_inputs_unchanged),
    ],
)


# --- tests for ch02.kl_divergence -------------------------------------------------------------


def _torch_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
    p = Normal(torch.zeros_like(mu, dtype=torch.float64), torch.ones_like(mu, dtype=torch.float64))
    return torch_kl(q, p).sum(-1)


def _kl_zero_at_prior(fn):
    mu = torch.zeros(3, 4)
    assert_close(fn(mu, torch.zeros(3, 4)), torch.zeros(3),
                 "the KL when q is already N(0, I) (mu = 0, logvar = 0): it should be 0 for every sample")


def _kl_hand_example(fn):
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # dim 1: mu^2 / 2 = 0.5;  dim 2: (4 - 1 - log 4) / 2
    expected = 0.5 + 0.5 * (4.0 - 1.0 - math.log(4.0))
    assert_close(fn(mu, logvar), torch.tensor([expected]),
                 "the KL for mu=[1, 0], variance=[1, 4] (it is -1/2 * sum(1 + logvar - mu^2 - exp(logvar)))")


def _kl_shape(fn):
    mu, logvar, _ = _gaussians(11, batch=5, z=3)
    got = as_tensor(fn(mu, logvar), "the KL")
    if tuple(got.shape) != (5,):
        raise AssertionError(f"the KL should have shape (B,) = (5,), one number per sample, got "
                             f"{tuple(got.shape)}: sum over the latent dimensions (dim=-1) only")


def _kl_matches_torch(fn):
    for seed in range(12, 15):
        mu, logvar, _ = _gaussians(seed, batch=4, z=32, scale=1.5)
        assert_close(fn(mu, logvar), _torch_kl(mu, logvar),
                     f"the KL against torch.distributions.kl_divergence summed over Z (seed {seed})",
                     rtol=1e-4)


def _kl_square_batch(fn):
    mu, logvar, _ = _gaussians(15, batch=6, z=6)
    assert_close(fn(mu, logvar), _torch_kl(mu, logvar),
                 "the KL when B == Z (is the sum over the latent dimension, dim=-1?)", rtol=1e-4)


def _kl_non_negative(fn):
    mu, logvar, _ = _gaussians(16, batch=64, z=8, scale=3.0)
    got = as_tensor(fn(mu, logvar), "the KL")
    if (got < -1e-5).any():
        raise AssertionError(f"the KL came out negative ({got.min().item():.4g}); a KL divergence is never "
                             "negative: check the sign in front of the sum")


def _kl_extreme(fn):
    mu = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    logvar = torch.tensor([[-200.0, 0.0], [0.0, 40.0]])
    assert_close(fn(mu, logvar), kl_divergence(mu, logvar),
                 "the KL for logvar = -200 and 40 (use logvar directly: log(exp(-200)) is log(0) = -inf "
                 "in float32)",
                 rtol=1e-4)


def _kl_inputs_unchanged(fn):
    mu, logvar, _ = _gaussians(17)
    _unchanged(fn, {"mu": mu, "logvar": logvar})


register(
    "ch02.kl_divergence",
    "(mu (B, Z), logvar (B, Z)) -> (B,): KL(N(mu, exp(logvar)) || N(0, I)) summed over Z",
    kl_divergence,
    [
        ("zero when q is the prior", _kl_zero_at_prior),
        ("worked example by hand", _kl_hand_example),
        ("one KL per sample", _kl_shape),
        ("matches torch.distributions", _kl_matches_torch),
        ("sum over Z, not over the batch", _kl_square_batch),
        ("never negative", _kl_non_negative),
        ("large and small logvar", _kl_extreme),
        ("inputs left unchanged", _kl_inputs_unchanged),
    ],
)


# --- tests for ch02.vae_loss ------------------------------------------------------------------


def _loss_inputs(seed: int, batch: int = 4, z: int = 8, size: int = 6, mu_scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, size, size, generator=g)
    x_hat = torch.rand(batch, 3, size, size, generator=g)
    mu = torch.randn(batch, z, generator=g) * mu_scale
    logvar = torch.randn(batch, z, generator=g) * 0.5
    return x_hat, x, mu, logvar


def _scalar(value, what: str) -> torch.Tensor:
    return as_scalar(value, what, "average over the batch")

def _vl_hand_example(fn):
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.zeros(2, 1, 2, 2)
    x_hat[0] = 0.5                      # image 0: 4 pixels off by 0.5 -> 4 * 0.25 = 1.0
    x_hat[1, 0, 0, 0] = 1.0             # image 1: 1 pixel off by 1   -> 1.0
    mu = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # KL: 2.0 and 0.0
    logvar = torch.zeros(2, 2)
    got = _scalar(fn(x_hat, x, mu, logvar, 0.0), "the loss")
    assert_close(got, torch.tensor(1.0 + 1.0),
                 "the loss of a hand-made batch with kl_tolerance=0 (mean over images of the summed "
                 "squared errors 1.0 and 1.0, plus the mean KL of 2.0 and 0.0)")


def _vl_matches_reference(fn):
    for seed, tol in ((21, 0.0), (22, 0.5), (23, 2.0)):
        x_hat, x, mu, logvar = _loss_inputs(seed)
        assert_close(_scalar(fn(x_hat, x, mu, logvar, tol), "the loss"), vae_loss(x_hat, x, mu, logvar, tol),
                     f"the loss on a random batch with kl_tolerance={tol}", rtol=1e-4)


def _vl_sum_over_pixels(fn):
    x_hat, x, mu, logvar = _loss_inputs(24, size=16)
    mu, logvar = torch.zeros_like(mu), torch.zeros_like(logvar)
    assert_close(_scalar(fn(x_hat, x, mu, logvar, 0.0), "the loss"), vae_loss(x_hat, x, mu, logvar, 0.0),
                 "the loss when the KL is 0 (the reconstruction term is the SUM of squared errors over the "
                 "pixels and channels of an image, then the mean over the images)", rtol=1e-4)


def _vl_tolerance_per_sample(fn):
    # sample 0 has a KL far above the floor, the others are below it: max(mean KL, floor) differs
    # from mean max(KL_i, floor)
    x_hat, x, _, _ = _loss_inputs(25)
    mu = torch.zeros(4, 8)
    mu[0] = 3.0
    logvar = torch.zeros(4, 8)
    assert_close(_scalar(fn(x_hat, x, mu, logvar, 0.5), "the loss"), vae_loss(x_hat, x, mu, logvar, 0.5),
                 "the loss when one image's KL (36) is above the floor kl_tolerance * Z = 4 and three are "
                 "below it (apply max(KL_i, kl_tolerance * Z) to each image, then average)", rtol=1e-4)


def _vl_floor_is_times_z(fn):
    x_hat, x, mu, logvar = _loss_inputs(26, z=32, mu_scale=0.1)
    logvar = torch.zeros_like(logvar)
    assert_close(_scalar(fn(x_hat, x, mu, logvar, 0.5), "the loss"), vae_loss(x_hat, x, mu, logvar, 0.5),
                 "the loss when every KL is below the floor (the floor is kl_tolerance * Z = 0.5 * 32 "
                 "= 16 nats per image, not kl_tolerance)", rtol=1e-4)


def _vl_batch_mean(fn):
    x_hat, x, mu, logvar = _loss_inputs(27, batch=1)
    one = _scalar(fn(x_hat, x, mu, logvar, 0.5), "the loss")
    copies = (x_hat.repeat(5, 1, 1, 1), x.repeat(5, 1, 1, 1), mu.repeat(5, 1), logvar.repeat(5, 1))
    many = _scalar(fn(*copies, 0.5), "the loss")
    assert_close(many, one, "the loss of a batch of 5 copies of one image (it should equal the loss of the "
                 "one image: average over the batch, don't sum)", rtol=1e-4)


def _vl_gradients(fn):
    x_hat, x, mu, logvar = _loss_inputs(28)
    mu[0] = 2.0
    leaves = [t.clone().requires_grad_(True) for t in (x_hat, mu, logvar)]
    loss = _scalar(fn(leaves[0], x, leaves[1], leaves[2], 0.5), "the loss")
    if not loss.requires_grad:
        raise AssertionError("the loss carries no gradient: keep it a torch tensor "
                             "(no .item(), float() or .detach())")
    try:
        loss.backward()
    except RuntimeError as exc:
        raise LearnerCodeError(f"backpropagating through your loss failed: {exc}") from exc
    ref = [t.clone().requires_grad_(True) for t in (x_hat, mu, logvar)]
    vae_loss(ref[0], x, ref[1], ref[2], 0.5).backward()
    for name, mine, theirs in zip(("x_hat", "mu", "logvar"), leaves, ref, strict=True):
        if mine.grad is None:
            raise AssertionError(f"no gradient reached {name}")
        assert_close(mine.grad, theirs.grad, f"the gradient of the loss with respect to {name}", rtol=1e-4)


register(
    "ch02.vae_loss",
    "(x_hat (B, C, H, W), x (B, C, H, W), mu (B, Z), logvar (B, Z), kl_tolerance: float) -> scalar: "
    "mean_b sum_pixels (x_hat - x)^2 + mean_b max(KL_b, kl_tolerance * Z)",
    vae_loss,
    [
        ("worked example by hand", _vl_hand_example),
        ("random batches", _vl_matches_reference),
        ("squared error summed over pixels", _vl_sum_over_pixels),
        ("tolerance applied per image", _vl_tolerance_per_sample),
        ("the floor is kl_tolerance * Z", _vl_floor_is_times_z),
        ("mean over the batch", _vl_batch_mean),
        ("gradients", _vl_gradients),
    ],
)


# --- tests for ch02.encode_for_memory ---------------------------------------------------------
#
# The learner writes the step of the agent's loop between the camera and M: uint8 frames as the
# environment gives them (B, 64, 64, 3) -> V -> what M reads, z (B, Z). With eps None that is V's
# mean mu (what the agent acts on); with eps given it is the sample mu + sigma * eps (what M is
# trained on). The checks use a small V whose log-variances are spread from -4 to 1, so that
# sigma, the variance and logvar itself are three clearly different numbers.


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


register(
    "ch02.encode_for_memory",
    "(vae: ConvVAE, frames (B, 64, 64, 3) uint8, eps (B, Z) or None) -> z (B, Z) float32: "
    "V's mean mu when eps is None, else the sample mu + sigma * eps",
    encode_for_memory,
    [
        ("eps None gives V's mean", _em_mean),
        ("eps given gives mu + sigma * eps", _em_sample),
        ("eps = 0 gives mu", _em_zero_eps),
        ("frames encoded independently", _em_one_frame_at_a_time),
        ("no gradient graph into V", _em_no_graph),
        ("inputs left unchanged", _em_inputs_unchanged),
    ],
)
