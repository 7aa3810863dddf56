"""Chapter 8's exercises: the reference and independent correct versions pass, every wrong one fails."""

import math

import torch

from wmlib.exercises import run_tests


def _independent_lambda_return(rewards, continues, values, gamma, lam):
    # Written without looking at wmlib: the lambda-return as a weighted mix of n-step returns, unrolled per row.
    B, T = rewards.shape
    out = torch.zeros(B, T, dtype=rewards.dtype)
    for b in range(B):
        nxt = values[b, T]
        for t in range(T - 1, -1, -1):
            bootstrap = (1 - lam) * values[b, t + 1] + lam * nxt
            nxt = rewards[b, t] + gamma * continues[b, t] * bootstrap
            out[b, t] = nxt
    return out


def _independent_straight_through(logits, mu, log_sigma, temperature, u, eps):
    # Written without looking at wmlib: a loop-free inverse-CDF pick, then the straight-through trick via where.
    probs = torch.softmax(logits / temperature, dim=-1)
    cdf = torch.cumsum(probs, dim=-1).detach()
    k = torch.searchsorted(cdf.contiguous(), u.unsqueeze(-1).contiguous(), right=True).clamp(max=logits.shape[-1] - 1)
    hard = torch.zeros_like(probs).scatter(-1, k, 1.0)
    values = mu + torch.exp(log_sigma) * math.sqrt(temperature) * eps[..., None]
    return (values * (probs + (hard - probs).detach())).sum(-1)


def test_independent_lambda_return_passes():
    result = run_tests("ch08.lambda_return", _independent_lambda_return)
    assert result.passed, result.failures


def test_independent_straight_through_sample_passes():
    result = run_tests("ch08.straight_through_sample", _independent_straight_through)
    assert result.passed, result.failures
