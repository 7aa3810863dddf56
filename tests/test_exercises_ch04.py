"""Chapter 4's exercises: the reference and an independent correct version pass, every wrong one fails."""


import numpy as np
import pytest
import torch

from tests.wrong_versions.ch04 import WRONG_VERSIONS
from wmlib.exercises import get_exercise, run_tests


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


def test_every_chapter_4_exercise_has_wrong_versions():
    assert set(WRONG_VERSIONS) == {"ch04.controller_action", "ch04.controller_param_count",
                                   "ch04.centered_ranks"}


@pytest.mark.parametrize("exercise_id", sorted(WRONG_VERSIONS))
def test_reference_passes(exercise_id):
    result = run_tests(exercise_id, get_exercise(exercise_id).reference)
    assert result.passed, result.failures


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch04.controller_action", _independent_controller_action),
    ("ch04.controller_param_count", _independent_param_count),
    ("ch04.centered_ranks", _independent_centered_ranks),
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


def test_stub_counts_as_not_attempted():
    def stub(W, b, z, h):
        raise NotImplementedError

    result = run_tests("ch04.controller_action", stub)
    assert not result.attempted and not result.passed
