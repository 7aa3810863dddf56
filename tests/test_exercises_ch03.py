"""Chapter 3's exercise checkers: the reference passes, every plausible wrong answer fails, fast."""

import math

import pytest
import torch

from wmlib.exercises import get_exercise, run_tests

IDS = ["ch03.mdn_nll", "ch03.mdn_sample", "ch03.teacher_forcing_pairs", "ch03.imagine_step"]


def test_nan_returning_learner_fails_with_message():
    result = run_tests("ch03.mdn_nll", lambda log_pi, mu, log_sigma, target: torch.tensor(math.nan))
    assert not result.passed and any("NaN" in f for f in result.failures)


def _gumbel_sample(log_pi, mu, log_sigma, temperature, generator):
    """A correct answer written differently (Gumbel-max instead of multinomial)."""
    u = torch.rand(log_pi.shape, generator=generator).clamp_min(1e-12)
    k = (log_pi / temperature - torch.log(-torch.log(u))).argmax(-1, keepdim=True)
    eps = torch.randn(log_pi.shape[:-1], generator=generator)
    return mu.gather(-1, k).squeeze(-1) + log_sigma.gather(-1, k).squeeze(-1).exp() * temperature**0.5 * eps


def _categorical_sample(log_pi, mu, log_sigma, temperature, generator):
    """Another correct answer: inverse-CDF choice of the component, eps drawn first."""
    eps = torch.randn(log_pi.shape[:-1], generator=generator)
    probs = torch.softmax(log_pi / temperature, dim=-1)
    u = torch.rand(log_pi.shape[:-1] + (1,), generator=generator)
    k = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp(max=log_pi.shape[-1] - 1)
    sigma = log_sigma.gather(-1, k).squeeze(-1).exp()
    return mu.gather(-1, k).squeeze(-1) + sigma * math.sqrt(temperature) * eps


def _distributions_nll(log_pi, mu, log_sigma, target):
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=log_pi),
                                                torch.distributions.Normal(mu, log_sigma.exp()))
    return -mix.log_prob(target).mean()


@pytest.mark.parametrize("fn", [_gumbel_sample, _categorical_sample])
def test_other_correct_samplers_pass(fn):
    result = run_tests("ch03.mdn_sample", fn)
    assert result.passed, result.failures


def test_other_correct_nll_passes():
    result = run_tests("ch03.mdn_nll", _distributions_nll)
    assert result.passed, result.failures


def test_statistical_checks_do_not_flake():
    """Two correct samplers with 40 different random streams each pass the statistical tests."""
    tests = [t for name, t in get_exercise("ch03.mdn_sample").tests
             if name.startswith(("component weights", "widths", "mean and variance", "independent"))]
    for offset in range(40):
        for sampler in (_gumbel_sample, _categorical_sample):
            def shifted(log_pi, mu, log_sigma, temperature, generator, offset=offset, sampler=sampler):
                g = torch.Generator().manual_seed(generator.initial_seed() * 1000 + offset)
                return sampler(log_pi, mu, log_sigma, temperature, g)

            for test in tests:
                test(shifted)


def _own_imagine_step(mdnrnn, z, action, state, temperature, generator):
    """A correct imagined step written without wmlib's sampler: whole-sequence forward, Gumbel-max choice."""
    a = torch.eye(mdnrnn.config.action_dim)[action]
    out = mdnrnn(z[:, None], a[:, None], state)
    log_pi, mu, log_sigma = (x[:, 0] for x in (out.log_pi, out.mu, out.log_sigma))
    return _gumbel_sample(log_pi, mu, log_sigma, temperature, generator), out.state


def test_other_correct_imagine_step_passes():
    result = run_tests("ch03.imagine_step", _own_imagine_step)
    assert result.passed, result.failures
