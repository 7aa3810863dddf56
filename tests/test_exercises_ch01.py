"""Chapter 1's exercises: the reference and an independent correct version pass, every wrong one fails."""

import pytest
import torch

from wmlib.exercises import run_tests


def _independent_discounted_return(rewards, gamma):
    # Written without looking at wmlib: the forward sum with explicit powers.
    total = 0.0
    for t, r in enumerate(rewards):
        total += (gamma**t) * float(r)
    return total


def _independent_bellman_target(rewards, next_q, dones, gamma):
    best_next, _ = torch.max(next_q, dim=-1)
    return torch.where(dones.bool(), rewards, rewards + gamma * best_next)


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch01.discounted_return", _independent_discounted_return),
    ("ch01.bellman_target", _independent_bellman_target),
])
def test_independent_correct_version_passes(exercise_id, fn):
    result = run_tests(exercise_id, fn)
    assert result.passed, result.failures
