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


def _independent_kl_free_bits(mean_q, std_q, mean_p, std_p, free_nats):
    # Written without looking at wmlib: the KL through log-variances, the clamp as a where() on the sum.
    logvar_q, logvar_p = 2 * torch.log(std_q), 2 * torch.log(std_p)
    kl = 0.5 * (logvar_p - logvar_q + torch.exp(logvar_q - logvar_p) + (mean_q - mean_p) ** 2 / torch.exp(logvar_p)
                - 1).sum(dim=-1)
    return torch.where(kl > free_nats, kl, torch.full_like(kl, free_nats))


def test_independent_lambda_return_passes():
    result = run_tests("ch08.lambda_return", _independent_lambda_return)
    assert result.passed, result.failures


def test_independent_straight_through_sample_passes():
    result = run_tests("ch08.straight_through_sample", _independent_straight_through)
    assert result.passed, result.failures


def test_independent_kl_free_bits_passes():
    result = run_tests("ch08.kl_free_bits", _independent_kl_free_bits)
    assert result.passed, result.failures

