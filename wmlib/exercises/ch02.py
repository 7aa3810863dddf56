"""Chapter 2 exercises: the reparameterisation trick, the KL term, the VAE loss, and encoding frames for M.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from wmlib.exercises._asserts import as_scalar, as_tensor, assert_close
from wmlib.exercises._core import LearnerCodeError, register
from wmlib.exercises.ch02_encode import ENCODE_TESTS, encode_for_memory
from wmlib.vae import kl_divergence, reparameterize, vae_loss


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


register(
    "ch02.encode_for_memory",
    "(vae: ConvVAE, frames (B, 64, 64, 3) uint8, eps (B, Z) or None) -> z (B, Z) float32: "
    "V's mean mu when eps is None, else the sample mu + sigma * eps",
    encode_for_memory,
    ENCODE_TESTS,
)
