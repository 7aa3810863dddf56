"""Chapter 4's exercises: the reference and an independent correct version pass, every wrong one fails."""


import numpy as np
import pytest
import torch

from wmlib.exercises import run_tests


def _independent_controller_action(W, b, z, h):
    # Written without looking at wmlib: one output at a time with einsum.
    x = torch.cat((z, h), dim=-1)
    return torch.tanh(torch.einsum("aj,bj->ba", W, x) + b[None, :])


def _independent_param_count(z_dim, h_dim, action_dim):
    weights = (z_dim + h_dim) * action_dim
    biases = action_dim
    return weights + biases


def _independent_centered_ranks(fitness):
    fitness = np.asarray(fitness)
    n = len(fitness)
    ranks = np.array([np.sum(fitness < f) for f in fitness], dtype=float)  # distinct values in the tests
    return ranks / (n - 1) - 0.5


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch04.controller_action", _independent_controller_action),
    ("ch04.controller_param_count", _independent_param_count),
    ("ch04.centered_ranks", _independent_centered_ranks),
])
def test_independent_correct_version_passes(exercise_id, fn):
    result = run_tests(exercise_id, fn)
    assert result.passed, result.failures
