"""Statistical checks of a sampler from a mixture of Gaussians at a temperature, with learner-facing
messages: shared by chapter 3's `mdn_sample` tests and its `imagine_step` tests (M's step, then a sample).

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

N_SAMPLES = 20_000
"""Positions per statistical test: standard errors of about 1 %."""

STAT_LOG_PI = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
STAT_MU = torch.tensor([[-2.0, 0.0, 3.0], [1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
STAT_LOG_SIGMA = torch.log(torch.tensor([[0.3, 0.5, 0.2], [0.2, 1.0, 2.0], [1.5, 0.4, 0.7]]))
"""Three latent dims (rows), each its own mixture of K = 3: forks, same centres with different widths, a mix."""

SEPARATED_LOG_PI = torch.log(torch.tensor([0.1, 0.3, 0.6]))
SEPARATED_MU = (-10.0, 0.0, 10.0)
"""Well separated components (narrow ones are used): which one was picked can be read off the sample."""


def one_thread(test: Callable) -> Callable:
    """Run a test on one CPU thread: on a busy machine, threads contending over tensors of 60,000
    numbers make each operation ten times slower than doing it alone."""

    @functools.wraps(test)
    def run(fn):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return test(fn)
        finally:
            torch.set_num_threads(threads)

    return run


def closed_form(log_pi, mu, log_sigma, temperature):
    """Mean, variance and fourth central moment of the tempered mixture, per position (formulas).

    With weights w = softmax(log_pi / tau) and component variances v = sigma^2 * tau:
    mean M = sum w mu, variance = sum w (v + mu^2) - M^2,
    fourth central moment = sum w ((mu - M)^4 + 6 (mu - M)^2 v + 3 v^2).
    """
    w = torch.softmax(log_pi.double() / temperature, dim=-1)
    v = (2 * log_sigma.double()).exp() * temperature
    mu = mu.double()
    mean = (w * mu).sum(-1)
    var = (w * (v + mu**2)).sum(-1) - mean**2
    d = mu - mean.unsqueeze(-1)
    m4 = (w * (d**4 + 6 * d**2 * v + 3 * v**2)).sum(-1)
    return mean, var, m4


def check_moments(got: torch.Tensor, tau: float, whose: str = "the") -> None:
    """got (n, 3): samples of the STAT_* mixtures at temperature tau, checked dim by dim against the closed
    form. Five standard errors of the sample mean and of the sample variance: a correct sampler fails
    this about once in a million runs, whatever random numbers it draws."""
    mean, var, m4 = closed_form(STAT_LOG_PI, STAT_MU, STAT_LOG_SIGMA, tau)
    n = len(got)
    for j in range(got.shape[1]):
        m, v = float(got[:, j].mean()), float(got[:, j].var())
        se_mean, se_var = math.sqrt(var[j] / n), math.sqrt((m4[j] - var[j] ** 2) / n)
        if abs(m - mean[j]) > 5 * se_mean or abs(v - var[j]) > 5 * se_var:
            raise AssertionError(
                f"at temperature {tau}, latent dim {j}: your samples have mean {m:.3f} and variance {v:.3f}; "
                f"{whose} tempered mixture has mean {float(mean[j]):.3f} and variance {float(var[j]):.3f} "
                "(weights softmax(log_pi / tau), each Gaussian widened to sigma * sqrt(tau))")


def check_weights(got: torch.Tensor, tau: float, advice: str = "") -> None:
    """got (n,): samples of the narrow SEPARATED_* components at temperature tau; how often each was picked
    must be softmax(log_pi / tau) within 0.02."""
    freq = torch.stack([(got - c).abs().lt(1.0).double().mean() for c in SEPARATED_MU])
    expected = torch.softmax(SEPARATED_LOG_PI.double() / tau, dim=-1)
    if (freq - expected).abs().max() > 0.02:
        raise AssertionError(
            f"at temperature {tau} the components were picked with frequencies "
            f"{[round(float(f), 3) for f in freq]}, expected softmax(log_pi / temperature) = "
            f"{[round(float(e), 3) for e in expected]}{advice}")


def check_generator(draw: Callable[[int], torch.Tensor], what: str, advice: str) -> None:
    """draw(seed) samples with a generator seeded `seed`: alike seeds must give alike samples, other seeds
    other samples."""
    first, second = draw(123), draw(123)
    if not torch.equal(first, second):
        raise AssertionError(f"two calls with generators seeded alike gave different {what}: draw all the "
                             f"randomness from the `generator` argument {advice}")
    if torch.equal(first, draw(124)):
        raise AssertionError(f"generators with different seeds gave the same {what}: is it random?")
