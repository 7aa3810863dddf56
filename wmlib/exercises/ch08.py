"""Chapter 8 exercises: the lambda-return of an imagined trajectory, the dream's sample with a gradient, and the
RSSM's KL with free bits.

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

import torch
from torch.distributions import Normal, kl_divergence

from wmlib.beyond.imagination import lambda_return, straight_through_mixture_sample
from wmlib.beyond.rssm import kl_free_bits
from wmlib.dream import mdn_sample_from_noise
from wmlib.exercises._asserts import as_tensor, assert_close, assert_inputs_unchanged
from wmlib.exercises._core import register

# --- tests for ch08.lambda_return -------------------------------------------------------------


def _lr_inputs(seed: int, batch: int = 3, steps: int = 5):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.rand(batch, steps, generator=g) * 2
    continues = 0.5 + 0.5 * torch.rand(batch, steps, generator=g)
    values = torch.randn(batch, steps + 1, generator=g) * 3
    return rewards, continues, values


def _lr_hand_example(fn):
    # R_2 = v_2 = 8;  R_1 = 2 + 0.5 * 0.5 * (0.5 * 8 + 0.5 * 8) = 4;  R_0 = 1 + 0.5 * 1 * (0.5 * 4 + 0.5 * 4) = 3
    got = fn(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0, 4.0, 8.0]]), 0.5, 0.5)
    assert_close(got, torch.tensor([[3.0, 4.0]]),
                 "the lambda-returns of r = (1, 2), c = (1, 0.5), v = (0, 4, 8), gamma = lam = 0.5 "
                 "(worked by hand: R_2 = v_2 = 8, R_1 = 4, R_0 = 3)")


def _lr_shape(fn):
    r, c, v = _lr_inputs(1, batch=4, steps=6)
    got = as_tensor(fn(r, c, v, 0.9, 0.95), "the lambda-returns")
    if tuple(got.shape) != (4, 6):
        raise AssertionError(f"for 4 dreams of 6 imagined steps the returns should have shape (B, T) = (4, 6), "
                             f"got {tuple(got.shape)}: one return per step, R_0 .. R_{{T-1}} (not R_T = v_T)")


def _lr_lam_zero(fn):
    r, c, v = _lr_inputs(2)
    assert_close(fn(r, c, v, 0.9, 0.0), r + 0.9 * c * v[:, 1:],
                 "the returns at lam = 0 (one imagined step, then the critic: r_t + gamma c_t v_{t+1})")


def _lr_lam_one(fn):
    r, c, v = _lr_inputs(3, batch=2, steps=4)
    assert_close(fn(r, c, v, 0.8, 1.0), lambda_return(r, c, v, 0.8, 1.0),
                 "the returns at lam = 1 (every imagined reward, each discounted by gamma and the continuations "
                 "before it, then v_T)")


def _lr_continues(fn):
    r, _, v = _lr_inputs(4)
    c = torch.ones_like(r)
    c[:, 2] = 0.0  # every dream surely ends at step 2: nothing after it may count
    got = as_tensor(fn(r, c, v, 0.9, 0.7), "the lambda-returns")
    assert_close(got[:, 2], r[:, 2], "R_2 when the episode surely ends after step 2 (c_2 = 0): only r_2 is left")
    assert_close(got, lambda_return(r, c, v, 0.9, 0.7), "the returns with a certain end at step 2")


def _lr_random(fn):
    for seed in range(5, 9):
        r, c, v = _lr_inputs(seed)
        assert_close(fn(r, c, v, 0.95, 0.8), lambda_return(r, c, v, 0.95, 0.8),
                     f"the lambda-returns on a random batch (seed {seed})")


def _lr_square(fn):
    r, c, v = _lr_inputs(10, batch=5, steps=5)  # B == T: a wrong axis keeps the shape
    assert_close(fn(r, c, v, 0.9, 0.9), lambda_return(r, c, v, 0.9, 0.9),
                 "the returns when B == T (is time the second axis, dim=1?)")


def _lr_gradient(fn):
    r, c, v = _lr_inputs(11)
    c.requires_grad_(True)
    got = as_tensor(fn(r, c, v, 0.9, 0.9), "the lambda-returns")
    if not got.requires_grad:
        raise AssertionError("the returns carry no gradient back to the continuations: chapter 8 backpropagates "
                             "through them, so build them with torch operations (no .item(), no NumPy)")
    got[:, 0].sum().backward()
    c_ref = c.detach().clone().requires_grad_(True)
    lambda_return(r, c_ref, v, 0.9, 0.9)[:, 0].sum().backward()
    assert_close(c.grad, c_ref.grad, "the gradient of R_0 with respect to the continuations")


def _lr_inputs_unchanged(fn):
    r, c, v = _lr_inputs(12)
    assert_inputs_unchanged(lambda: fn(r, c, v, 0.9, 0.9), {"rewards": r, "continues": c, "values": v})


register(
    "ch08.lambda_return",
    "(rewards (B, T), continues (B, T), values (B, T+1), gamma, lam) -> (B, T)",
    lambda_return,
    [
        ("worked example by hand", _lr_hand_example),
        ("one return per imagined step", _lr_shape),
        ("lam = 0: one step, then the critic", _lr_lam_zero),
        ("lam = 1: every reward, then v_T", _lr_lam_one),
        ("a certain end cuts the future", _lr_continues),
        ("random batches", _lr_random),
        ("time is dim 1", _lr_square),
        ("gradients reach the continuations", _lr_gradient),
        ("inputs left unchanged", _lr_inputs_unchanged),
    ],
)

# --- tests for ch08.straight_through_sample ---------------------------------------------------


def _st_inputs(seed: int, shape=(6, 4), K: int = 3):
    g = torch.Generator().manual_seed(seed)
    logits, mu, log_sigma = (torch.randn(*shape, K, generator=g) for _ in range(3))
    return logits, mu, log_sigma * 0.5, torch.rand(*shape, generator=g), torch.randn(*shape, generator=g)


def _st_same_sample(fn):
    for seed, tau in ((1, 1.0), (2, 0.5), (3, 1.3)):
        logits, mu, log_sigma, u, eps = _st_inputs(seed)
        assert_close(fn(logits, mu, log_sigma, tau, u, eps), mdn_sample_from_noise(logits, mu, log_sigma, tau, u, eps),
                     f"your sample at temperature {tau} (it must be exactly chapter 5's dream sample: the "
                     f"component k picked by u, then mu_k + sigma_k sqrt(tau) eps)")


def _st_shape(fn):
    logits, mu, log_sigma, u, eps = _st_inputs(4, shape=(2, 5, 3), K=4)
    got = as_tensor(fn(logits, mu, log_sigma, 1.0, u, eps), "the sample")
    if tuple(got.shape) != (2, 5, 3):
        raise AssertionError(f"for mixtures of shape (2, 5, 3, K=4) the sample should have shape (2, 5, 3), "
                             f"got {tuple(got.shape)}: one value per position (sum over the K axis)")


def _gradients(fn, seed: int, tau: float):
    leaves = [t.clone().requires_grad_(True) for t in _st_inputs(seed)[:3]]
    _, _, _, u, eps = _st_inputs(seed)
    weight = torch.randn(u.shape, generator=torch.Generator().manual_seed(seed + 100))
    got = as_tensor(fn(*leaves, tau, u, eps), "the sample")
    if not got.requires_grad:
        raise AssertionError("your sample carries no gradient: build it with torch operations from logits, mu and "
                             "log_sigma (a detached or .item() value cannot teach the actor anything)")
    (got * weight).sum().backward()
    ref = [t.detach().clone().requires_grad_(True) for t in leaves]
    (straight_through_mixture_sample(*ref, tau, u, eps) * weight).sum().backward()
    return leaves, ref


def _st_grad_mu_sigma(fn):
    leaves, ref = _gradients(fn, 5, 1.3)
    for name, mine, theirs in zip(("mu", "log_sigma"), leaves[1:], ref[1:], strict=True):
        if mine.grad is None:
            raise AssertionError(f"no gradient reached {name}: reparameterise, z = mu_k + sigma_k sqrt(tau) eps")
        assert_close(mine.grad, theirs.grad, f"the gradient with respect to {name} (only the chosen component's "
                                             f"entries move the sample)")


def _st_grad_choice(fn):
    leaves, ref = _gradients(fn, 6, 1.0)
    if leaves[0].grad is None or leaves[0].grad.abs().sum() == 0:
        raise AssertionError("no gradient reached the mixture logits: the choice of k needs a straight-through "
                             "gradient (forward the one-hot choice, backward as if it were the probabilities p)")
    assert_close(leaves[0].grad, ref[0].grad, "the gradient with respect to the logits (straight-through: "
                                              "dz/dp_j = y_j = mu_j + sigma_j sqrt(tau) eps)")


def _st_grad_choice_temperature(fn):
    leaves, ref = _gradients(fn, 7, 0.5)
    if leaves[0].grad is None:
        raise AssertionError("no gradient reached the mixture logits at temperature 0.5")
    assert_close(leaves[0].grad, ref[0].grad, "the gradient with respect to the logits at temperature 0.5 "
                                              "(p = softmax(logits / tau))")


def _st_inputs_unchanged(fn):
    inputs = _st_inputs(8)
    assert_inputs_unchanged(lambda: fn(inputs[0], inputs[1], inputs[2], 1.0, inputs[3], inputs[4]),
                            dict(zip(("logits", "mu", "log_sigma", "u", "eps"), inputs, strict=True)))


register(
    "ch08.straight_through_sample",
    "(logits, mu, log_sigma (..., K), temperature, u (...), eps (...)) -> (...) with gradients",
    straight_through_mixture_sample,
    [
        ("chapter 5's sample, forward", _st_same_sample),
        ("one value per position", _st_shape),
        ("reparameterised: gradients to mu and log_sigma", _st_grad_mu_sigma),
        ("straight-through: gradients to the logits", _st_grad_choice),
        ("straight-through at a temperature", _st_grad_choice_temperature),
        ("inputs left unchanged", _st_inputs_unchanged),
    ],
)

# --- tests for ch08.kl_free_bits --------------------------------------------------------------


def _kl_inputs(seed: int, shape=(5, 6)):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g), 0.3 + torch.rand(*shape, generator=g),
            torch.randn(*shape, generator=g), 0.3 + torch.rand(*shape, generator=g))


def _kl_reference(mean_q, std_q, mean_p, std_p):
    return kl_divergence(Normal(mean_q, std_q), Normal(mean_p, std_p)).sum(-1)


def _between_median(raw: torch.Tensor) -> float:
    """A free-bits budget with about half the elements below it, and none exactly on it."""
    values = raw.flatten().sort().values
    k = len(values) // 2
    return float(values[k - 1] + values[k]) / 2


def _kl_no_free(fn):
    for seed in (1, 2):
        args = _kl_inputs(seed)
        assert_close(fn(*args, 0.0), _kl_reference(*args),
                     f"KL(q || p) with free_nats = 0 (checked against torch.distributions, random batch {seed}); "
                     "q is the first Gaussian (the posterior), p the second (the prior)")


def _kl_shape(fn):
    args = _kl_inputs(3, shape=(2, 3, 4))
    got = as_tensor(fn(*args, 0.0), "the KL")
    if tuple(got.shape) != (2, 3):
        raise AssertionError(f"for Gaussians of shape (2, 3, S=4) the KL should have shape (2, 3), got "
                             f"{tuple(got.shape)}: one number per element, summed over the last axis")


def _kl_identical(fn):
    m, s, _, _ = _kl_inputs(4)
    got = as_tensor(fn(m, s, m.clone(), s.clone(), 0.0), "the KL")
    assert_close(got, torch.zeros(got.shape), "the KL between two identical Gaussians (it must be 0)")


def _kl_clamped(fn):
    args = _kl_inputs(5)
    raw = _kl_reference(*args)
    free = _between_median(raw)
    assert_close(fn(*args, free), raw.clamp(min=free),
                 f"the KL with free_nats = {free:.3f}: elements below the budget must read free_nats, the others "
                 f"their own KL (the clamp comes after the sum over the latent's dimensions)")


def _kl_gradient(fn):
    args = [t.clone() for t in _kl_inputs(6)]
    raw = _kl_reference(*args)
    free = _between_median(raw)
    mean_q = args[0].requires_grad_(True)
    got = as_tensor(fn(mean_q, *args[1:], free), "the KL")
    if not got.requires_grad:
        raise AssertionError("your KL carries no gradient back to the posterior's mean: build it with torch "
                             "operations (it is a loss the RSSM is trained by)")
    got.sum().backward()
    below = raw < free
    if float(mean_q.grad[below].abs().sum()) != 0.0:
        raise AssertionError("elements whose KL is below free_nats still push the posterior: free bits means no "
                             "gradient there (clamp the value, do not add free_nats)")
    ref = args[0].detach().clone().requires_grad_(True)
    kl_free_bits(ref, *args[1:], free).sum().backward()
    assert_close(mean_q.grad, ref.grad, "the gradient with respect to the posterior's mean")


def _kl_inputs_unchanged(fn):
    args = _kl_inputs(7)
    names = ("mean_q", "std_q", "mean_p", "std_p")
    assert_inputs_unchanged(lambda: fn(*args, 1.0), dict(zip(names, args, strict=True)))


register(
    "ch08.kl_free_bits",
    "(mean_q, std_q, mean_p, std_p (..., S), free_nats) -> (...) max(free_nats, KL(q || p) summed over S)",
    kl_free_bits,
    [
        ("KL(q || p) against torch.distributions", _kl_no_free),
        ("one number per element", _kl_shape),
        ("identical Gaussians: 0", _kl_identical),
        ("free bits clamp the sum", _kl_clamped),
        ("no gradient below the budget", _kl_gradient),
        ("inputs left unchanged", _kl_inputs_unchanged),
    ],
)
