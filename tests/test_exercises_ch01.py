"""Chapter 1's exercises: the reference and an independent correct version pass, every wrong one fails."""

import pytest
import torch

from tests.wrong_versions.ch01 import WRONG_VERSIONS
from wmlib.exercises import get_exercise, run_tests


def _independent_discounted_return(rewards, gamma):
    # Written without looking at wmlib: the forward sum with explicit powers.
    total = 0.0
    for t, r in enumerate(rewards):
        total += (gamma**t) * float(r)
    return total


def _independent_bellman_target(rewards, next_q, dones, gamma):
    best_next, _ = torch.max(next_q, dim=-1)
    return torch.where(dones.bool(), rewards, rewards + gamma * best_next)


@pytest.mark.parametrize("exercise_id", sorted(WRONG_VERSIONS))
def test_reference_passes(exercise_id):
    result = run_tests(exercise_id, get_exercise(exercise_id).reference)
    assert result.passed, result.failures


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch01.discounted_return", _independent_discounted_return),
    ("ch01.bellman_target", _independent_bellman_target),
])
def test_independent_correct_version_passes(exercise_id, fn):
    result = run_tests(exercise_id, fn)
    assert result.passed, result.failures


@pytest.mark.parametrize("exercise_id, name, fn", [
    (ex_id, name, fn) for ex_id, versions in sorted(WRONG_VERSIONS.items()) for name, fn in versions.items()
])
def test_wrong_version_is_rejected(exercise_id, name, fn):
    result = run_tests(exercise_id, fn)
    assert result.attempted
    assert not result.passed, f"{exercise_id}: the wrong version {name!r} passed every test"
    assert all(msg for msg in result.failures)
