"""Chapter 5's exercise: the reference and an independent correct version pass, every wrong one fails."""


import pytest
import torch

from tests.wrong_versions.ch05 import WRONG_VERSIONS
from wmlib.exercises import get_exercise, run_tests


def _independent_masked_returns(rewards, dones):
    # Written without looking at wmlib: walk each row and stop after its first done.
    out = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for b in range(rewards.shape[0]):
        for t in range(rewards.shape[1]):
            out[b] += rewards[b, t]
            if dones[b, t]:
                break
    return out


def test_every_chapter_5_exercise_has_wrong_versions():
    assert set(WRONG_VERSIONS) == {"ch05.masked_returns"}


@pytest.mark.parametrize("exercise_id", sorted(WRONG_VERSIONS))
def test_reference_passes(exercise_id):
    result = run_tests(exercise_id, get_exercise(exercise_id).reference)
    assert result.passed, result.failures


def test_independent_correct_version_passes():
    result = run_tests("ch05.masked_returns", _independent_masked_returns)
    assert result.passed, result.failures


@pytest.mark.parametrize("exercise_id, name, fn", [
    (ex_id, name, fn) for ex_id, versions in sorted(WRONG_VERSIONS.items()) for name, fn in versions.items()
])
def test_wrong_version_is_rejected(exercise_id, name, fn):
    result = run_tests(exercise_id, fn)
    assert result.attempted
    assert not result.passed, f"{exercise_id}: the wrong version {name!r} passed every test"
    assert all(msg for msg in result.failures)


def test_masked_returns_rejects_mismatched_shapes():
    from wmlib.dream import masked_returns

    with pytest.raises(ValueError, match=r"\(B, T\)"):
        masked_returns(torch.zeros(2, 3), torch.zeros(2, 4))
