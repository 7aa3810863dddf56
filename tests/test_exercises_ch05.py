"""Chapter 5's exercise: the reference and an independent correct version pass, every wrong one fails."""


import pytest
import torch

from wmlib.exercises import run_tests


def _independent_masked_returns(rewards, dones):
    # Written without looking at wmlib: walk each row and stop after its first done.
    out = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for b in range(rewards.shape[0]):
        for t in range(rewards.shape[1]):
            out[b] += rewards[b, t]
            if dones[b, t]:
                break
    return out


def test_independent_correct_version_passes():
    result = run_tests("ch05.masked_returns", _independent_masked_returns)
    assert result.passed, result.failures


def test_masked_returns_rejects_mismatched_shapes():
    from wmlib.dream import masked_returns

    with pytest.raises(ValueError, match=r"\(B, T\)"):
        masked_returns(torch.zeros(2, 3), torch.zeros(2, 4))
