"""Chapter 3 exercises: the MDN loss, sampling with a temperature, teacher-forcing pairs, and one step
of M's imagination.

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from wmlib.exercises._asserts import as_scalar, as_tensor, assert_close
from wmlib.exercises._core import register
from wmlib.exercises._mixtures import (
    N_SAMPLES,
    SEPARATED_LOG_PI,
    SEPARATED_MU,
    STAT_LOG_PI,
    STAT_LOG_SIGMA,
    STAT_MU,
    check_generator,
    check_moments,
    check_weights,
    one_thread,
)
from wmlib.exercises.ch03_imagine import IMAGINE_TESTS, imagine_step
from wmlib.mdnrnn import mdn_nll, mdn_sample, teacher_forcing_pairs


def _mixture(seed: int, shape: tuple[int, ...], K: int = 5, spread: float = 1.0):
    """Random normalised mixture parameters (shape + (K,)) and a target (shape)."""
    g = torch.Generator().manual_seed(seed)
    log_pi = torch.log_softmax(torch.randn(*shape, K, generator=g) * 2, dim=-1)
    mu = torch.randn(*shape, K, generator=g) * spread
    log_sigma = torch.randn(*shape, K, generator=g) * 0.5 - 0.3
    target = torch.randn(*shape, generator=g) * spread
    return log_pi, mu, log_sigma, target


def _torch_nll(log_pi, mu, log_sigma, target) -> torch.Tensor:
    """-log p(target) by torch.distributions, averaged over positions (the ground truth)."""
    components = Normal(mu.double(), log_sigma.double().exp())
    mix = MixtureSameFamily(Categorical(logits=log_pi.double()), components)
    return -mix.log_prob(target.double()).mean()


def _scalar(value, what: str) -> torch.Tensor:
    return as_scalar(value, what, "take the mean over every position")

def _nll_hand_example(fn):
    # Two Gaussians, pi = (0.25, 0.75), mu = (0, 2), sigma = (1, 0.5), target 1.
    log_pi = torch.log(torch.tensor([0.25, 0.75]))
    mu, log_sigma = torch.tensor([0.0, 2.0]), torch.log(torch.tensor([1.0, 0.5]))
    root = math.sqrt(2 * math.pi)
    density = 0.25 * math.exp(-0.5) / root + 0.75 * math.exp(-2.0) / (0.5 * root)
    got = _scalar(fn(log_pi, mu, log_sigma, torch.tensor(1.0)), "mdn_nll on one position")
    assert_close(got, torch.tensor(-math.log(density)),
                 "-log(0.25 N(1; 0, 1) + 0.75 N(1; 2, 0.5)) (one position, K = 2)", rtol=1e-5)


def _nll_one_gaussian(fn):
    log_pi, mu, log_sigma, target = _mixture(1, (6, 4), K=1)
    expected = -Normal(mu[..., 0], log_sigma[..., 0].exp()).log_prob(target).mean()
    got = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll with K = 1")
    assert_close(got, expected, "mdn_nll with a single Gaussian (K = 1), which must equal -Normal.log_prob "
                 "(check the -log sigma and -0.5 log(2 pi) terms)", rtol=1e-5)


def _nll_vs_torch(fn):
    for seed, shape in ((2, (8, 3)), (3, (2, 5, 4)), (4, (30,))):
        log_pi, mu, log_sigma, target = _mixture(seed, shape)
        got = _scalar(fn(log_pi, mu, log_sigma, target), f"mdn_nll on shape {shape + (5,)}")
        assert_close(got, _torch_nll(log_pi, mu, log_sigma, target),
                     f"mdn_nll on random inputs of shape {shape + (5,)}, compared with "
                     "torch.distributions.MixtureSameFamily", rtol=1e-5)


def _nll_mean_not_sum(fn):
    log_pi, mu, log_sigma, target = _mixture(5, (3,))
    one = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll")
    rep = lambda x: x.repeat(7, *([1] * (x.dim()))) if x.dim() else x.repeat(7)  # noqa: E731
    many = _scalar(fn(rep(log_pi), rep(mu), rep(log_sigma), rep(target)), "mdn_nll")
    assert_close(many, one, "mdn_nll of the same positions repeated 7 times (it should not change: take the "
                 "mean over positions, not the sum)", rtol=1e-5)


def _nll_far_target(fn):
    # Every component is 200 sigmas away: p is about e^-20000, 0 in floating point, yet log p is finite.
    log_pi, mu, log_sigma, target = _mixture(6, (4, 3), K=3)
    target = target + 200.0
    got = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll far from every component")
    assert_close(got, _torch_nll(log_pi, mu, log_sigma, target),
                 "mdn_nll when the target is 200 sigmas from every component (compute log N directly and "
                 "combine the components with torch.logsumexp: exp then log underflows to log(0) = -inf)",
                 rtol=1e-5)


def _nll_extreme_sigmas(fn):
    log_pi, mu, _, target = _mixture(7, (5, 2), K=4)
    log_sigma = torch.tensor([-9.0, -4.0, 3.0, 7.0]).expand(5, 2, 4)
    got = _scalar(fn(log_pi, mu, log_sigma, target), "mdn_nll with extreme sigmas")
    assert_close(got, _torch_nll(log_pi, mu, log_sigma, target),
                 "mdn_nll with sigmas from e^-9 to e^7 (numerically stable? use logsumexp)", rtol=1e-5)


def _nll_gradient(fn):
    log_pi, mu, log_sigma, target = _mixture(8, (4, 3), K=3)
    target = target + 100.0
    params = [p.clone().requires_grad_(True) for p in (log_pi, mu, log_sigma)]
    got = as_tensor(fn(*params, target), "mdn_nll")
    if not got.requires_grad:
        raise AssertionError("the loss does not carry gradients: keep it a torch computation on the inputs "
                             "(no .item(), .detach(), NumPy or torch.tensor(...) around the result)")
    got.sum().backward()
    for name, p in zip(("log_pi", "mu", "log_sigma"), params, strict=True):
        if p.grad is None or not torch.isfinite(p.grad).all():
            raise AssertionError(f"the gradient with respect to {name} is missing or not finite when the "
                                 "target is far from every component (use torch.logsumexp, "
                                 "not log(sum(exp(...))))")


register(
    "ch03.mdn_nll",
    "(log_pi (..., K), mu (..., K), log_sigma (..., K), target (...)) -> scalar",
    mdn_nll,
    [
        ("worked example by hand", _nll_hand_example),
        ("one Gaussian (K = 1)", _nll_one_gaussian),
        ("matches torch.distributions", _nll_vs_torch),
        ("mean over positions", _nll_mean_not_sum),
        ("target far from every component", _nll_far_target),
        ("tiny and huge sigmas", _nll_extreme_sigmas),
        ("finite gradients", _nll_gradient),
    ],
)


# --- tests for ch03.mdn_sample ----------------------------------------------------------------

_N = N_SAMPLES


def _stat_params():
    """The STAT_* mixtures, one row per position: (N, 3, 3) each."""
    return tuple(x.expand(_N, 3, 3) for x in (STAT_LOG_PI, STAT_MU, STAT_LOG_SIGMA))


def _sample(fn, log_pi, mu, log_sigma, temperature, seed):
    g = torch.Generator().manual_seed(seed)
    out = as_tensor(fn(log_pi, mu, log_sigma, temperature, g), "the sample").detach().double()
    if tuple(out.shape) != tuple(mu.shape[:-1]):
        raise AssertionError(f"the sample should have one value per position, shape {tuple(mu.shape[:-1])} "
                             f"for parameters of shape {tuple(mu.shape)}; got {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise AssertionError("the sample contains NaN or inf")
    return out


def _sample_shape(fn):
    for shape in ((4,), (2, 3), (2, 3, 5)):
        log_pi, mu, log_sigma, _ = _mixture(20, shape, K=4)
        _sample(fn, log_pi, mu, log_sigma, 1.0, 0)


def _sample_sharp(fn):
    # One component carries all the weight and is 1e-9 wide: every sample is its mean.
    log_pi = torch.log_softmax(torch.tensor([[0.0, -1e4, -1e4], [-1e4, -1e4, 0.0]]), dim=-1)
    mu = torch.tensor([[1.5, -3.0, 7.0], [2.0, 4.0, -0.25]])
    log_sigma = torch.full((2, 3), math.log(1e-9))
    for tau in (1.0, 1.5):
        got = _sample(fn, log_pi, mu, log_sigma, tau, 1)
        assert_close(got, torch.tensor([1.5, -0.25], dtype=torch.float64),
                     f"the sample when one component has all the weight and no width (temperature {tau})",
                     rtol=1e-6, atol=1e-6)


def _sample_weights(fn):
    log_pi = SEPARATED_LOG_PI.expand(_N, 3)
    mu = torch.tensor(SEPARATED_MU).expand(_N, 3)
    log_sigma = torch.full((_N, 3), math.log(1e-3))
    for tau in (1.0, 0.5, 2.0):
        check_weights(_sample(fn, log_pi, mu, log_sigma, tau, 2), tau)


def _sample_widths(fn):
    # One component (K = 1): the sample is N(mu, sigma^2 * temperature), so its std is sigma * sqrt(tau).
    log_pi = torch.zeros(_N, 1)
    mu = torch.full((_N, 1), 2.0)
    log_sigma = torch.full((_N, 1), math.log(0.5))
    for tau in (1.0, 0.25, 4.0):
        got = _sample(fn, log_pi, mu, log_sigma, tau, 3)
        std, expected = float(got.std()), 0.5 * math.sqrt(tau)
        if abs(std / expected - 1) > 0.05 or abs(float(got.mean()) - 2.0) > 0.05:
            raise AssertionError(
                f"with one Gaussian (mu 2, sigma 0.5) at temperature {tau} your samples have mean "
                f"{float(got.mean()):.3f} and std {std:.3f}; expected mean 2 and std "
                f"sigma * sqrt(temperature) = {expected:.3f}")


def _sample_moments(tau):
    def test(fn):
        check_moments(_sample(fn, *_stat_params(), tau, 4), tau)

    return test


def _sample_generator(fn):
    log_pi, mu, log_sigma, _ = _mixture(21, (50, 4), K=3)
    check_generator(lambda seed: _sample(fn, log_pi, mu, log_sigma, 1.0, seed), "samples",
                    "(torch.multinomial(..., generator=g), torch.randn(..., generator=g))")


def _sample_independent(fn):
    # Two latent dims with identical mixtures must still get independent noise.
    log_pi = torch.log(torch.tensor([0.5, 0.5])).expand(_N, 2, 2)
    mu = torch.tensor([0.0, 0.0]).expand(_N, 2, 2)
    log_sigma = torch.zeros(_N, 2, 2)
    got = _sample(fn, log_pi, mu, log_sigma, 1.0, 5)
    r = float(torch.corrcoef(got.T)[0, 1])
    if abs(r) > 0.05:
        raise AssertionError(f"samples of two different latent dims are correlated (r = {r:.2f}): draw a "
                             "separate eps ~ N(0, 1) (and a separate component) for every position")


register(
    "ch03.mdn_sample",
    "(log_pi (..., K), mu (..., K), log_sigma (..., K), temperature: float, "
    "generator: torch.Generator) -> (...)",
    mdn_sample,
    [
        ("one value per position", one_thread(_sample_shape)),
        ("a sure, sharp component gives its mean", one_thread(_sample_sharp)),
        ("component weights softmax(log_pi / temperature)", one_thread(_sample_weights)),
        ("widths sigma * sqrt(temperature)", one_thread(_sample_widths)),
        ("mean and variance at temperature 1", one_thread(_sample_moments(1.0))),
        ("mean and variance at temperature 0.5", one_thread(_sample_moments(0.5))),
        ("mean and variance at temperature 1.5", one_thread(_sample_moments(1.5))),
        ("uses the generator", one_thread(_sample_generator)),
        ("independent noise per position", one_thread(_sample_independent)),
    ],
)


# --- tests for ch03.teacher_forcing_pairs -----------------------------------------------------


def _pairs(fn, z, a):
    got = fn(z, a)
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise AssertionError(f"return a pair (inputs, targets), got {type(got).__name__}")
    inputs = as_tensor(got[0], "inputs")
    targets = as_tensor(got[1], "targets")
    B, T, Z = z.shape
    A = a.shape[-1]
    if tuple(targets.shape) == (B, T - 1, Z + A) and tuple(inputs.shape) == (B, T - 1, Z):
        raise AssertionError("you returned (targets, inputs): return (inputs, targets)")
    if tuple(inputs.shape) != (B, T - 1, Z + A):
        raise AssertionError(f"inputs should have shape (B, T-1, Z+A) = {(B, T - 1, Z + A)} for z "
                             f"{tuple(z.shape)} and a {tuple(a.shape)}, got {tuple(inputs.shape)}")
    if tuple(targets.shape) != (B, T - 1, Z):
        raise AssertionError(f"targets should have shape (B, T-1, Z) = {(B, T - 1, Z)}, "
                             f"got {tuple(targets.shape)}")
    return inputs, targets


def _diagnose(inputs, targets, z, a):
    """Name the usual mistake when the pairs are wrong."""
    if torch.equal(targets, z[:, :-1]):
        raise AssertionError("targets are the current latents z_t: M must predict the NEXT one, "
                             "z_{t+1} = z[:, 1:]")
    head = inputs[..., : a.shape[-1]]
    if torch.equal(head, a[:, :-1]) or torch.equal(head, a[:, 1:]):
        raise AssertionError("inputs start with the action: concatenate [z_t, a_t], latent first")
    if torch.equal(inputs[..., z.shape[-1]:], a[:, 1:]):
        raise AssertionError("the action is paired with the wrong step: z_t goes with a_t (the action taken "
                             "after seeing z_t), i.e. a[:, :-1]")
    if torch.equal(inputs[..., : z.shape[-1]], z[:, 1:]):
        raise AssertionError("inputs hold z_{t+1}: the input is the current latent z_t = z[:, :-1]")


def _tf_hand_example(fn):
    z = torch.tensor([[[0.0, 0.1], [1.0, 1.1], [2.0, 2.1]]])  # B=1, T=3, Z=2: z_t = (t, t + 0.1)
    a = torch.tensor([[[10.0], [11.0], [12.0]]])  # a_t = 10 + t
    inputs, targets = _pairs(fn, z, a)
    _diagnose(inputs, targets, z, a)
    assert_close(inputs, torch.tensor([[[0.0, 0.1, 10.0], [1.0, 1.1, 11.0]]]),
                 "inputs [z_t, a_t] for z_t = (t, t+0.1), a_t = 10 + t, T = 3")
    assert_close(targets, torch.tensor([[[1.0, 1.1], [2.0, 2.1]]]), "targets z_{t+1} for the same sequence")


def _tf_random(fn):
    g = torch.Generator().manual_seed(30)
    for B, T in ((3, 7), (5, 5), (4, 2)):  # B == T catches slicing the batch axis instead of time
        z, a = torch.randn(B, T, 4, generator=g), torch.randn(B, T, 3, generator=g)
        inputs, targets = _pairs(fn, z, a)
        _diagnose(inputs, targets, z, a)
        ref_in, ref_tg = teacher_forcing_pairs(z, a)
        assert_close(inputs, ref_in, f"inputs for B = {B}, T = {T} (slice the time axis, dim 1)")
        assert_close(targets, ref_tg, f"targets for B = {B}, T = {T} (slice the time axis, dim 1)")


def _tf_unchanged(fn):
    g = torch.Generator().manual_seed(31)
    z, a = torch.randn(2, 6, 3, generator=g), torch.randn(2, 6, 2, generator=g)
    z0, a0 = z.clone(), a.clone()
    _pairs(fn, z, a)
    if not (torch.equal(z, z0) and torch.equal(a, a0)):
        raise AssertionError("your function changed z or a in place; build new tensors instead")


register(
    "ch03.teacher_forcing_pairs",
    "(z (B, T, Z), a (B, T, A)) -> (inputs (B, T-1, Z+A), targets (B, T-1, Z))",
    teacher_forcing_pairs,
    [
        ("worked example by hand", _tf_hand_example),
        ("random batches, B == T too", _tf_random),
        ("inputs left unchanged", _tf_unchanged),
    ],
)


register(
    "ch03.imagine_step",
    "(mdnrnn: MDNRNN, z (B, Z), action (B,) ints, state: LSTMState (B, H), temperature: float, "
    "generator: torch.Generator) -> (z_next (B, Z), new state)",
    imagine_step,
    IMAGINE_TESTS,
)
