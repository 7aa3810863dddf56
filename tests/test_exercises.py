"""Every exercise of every chapter: its reference passes, a stub counts as not attempted, and every
plausible wrong version in tests/wrong_versions/chNN.py is rejected with a message.

Each chapter's own file (tests/test_exercises_chNN.py) adds an independently written correct
version of each exercise (it must pass too) and the chapter's special cases.
"""

import importlib

import pytest

from wmlib.exercises import get_exercise, known_ids, run_tests

CHAPTERS = ("ch01", "ch02", "ch03", "ch04", "ch05", "ch06", "ch07", "ch08")


def _wrong_versions(chapter: str) -> dict[str, list[tuple[str, object]]]:
    """{exercise_id: [(what is wrong, fn), ...]} from tests/wrong_versions/<chapter>.py."""
    table = importlib.import_module(f"tests.wrong_versions.{chapter}").WRONG_VERSIONS  # {id: {what: fn}}
    return {ex_id: list(versions.items()) for ex_id, versions in table.items()}


WRONG = {ex_id: pairs for chapter in CHAPTERS for ex_id, pairs in _wrong_versions(chapter).items()}
CASES = [(ex_id, name, fn) for ex_id in sorted(WRONG) for name, fn in WRONG[ex_id]]


def test_every_exercise_has_wrong_versions():
    assert set(WRONG) == set(known_ids()), "every registered exercise needs wrong versions, and only those"
    assert all(len(pairs) >= 4 for pairs in WRONG.values()), {i: len(p) for i, p in WRONG.items()}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_reference_passes(exercise_id):
    # (how long a check takes is measured by benchmarks, not asserted here: timings flake on a busy machine)
    result = run_tests(exercise_id, get_exercise(exercise_id).reference)
    assert result.passed, result.failures


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_stub_counts_as_not_attempted(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = run_tests(exercise_id, stub)
    assert not result.attempted and not result.passed


@pytest.mark.parametrize(("exercise_id", "name", "fn"), CASES, ids=[f"{i}:{name}" for i, name, _ in CASES])
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # a ch02 wrong version does that
def test_wrong_version_is_rejected(exercise_id, name, fn):
    result = run_tests(exercise_id, fn)
    assert result.attempted
    assert not result.passed, f"{exercise_id}: the wrong version {name!r} passed every test"
    assert all(msg for msg in result.failures)
