"""Chapter 7's exercises: the references and independent correct versions pass, every wrong one fails.

(tests/test_exercises.py checks every chapter's catalogue once its CHAPTERS lists "ch07"; the catalogue
is checked here as well, so it cannot go unchecked.)
"""

import numpy as np
import pytest
import torch

from tests.wrong_versions.ch07 import WRONG_VERSIONS
from wmlib.controller import map_action
from wmlib.evaluators import SerialEvaluator
from wmlib.exercises import get_exercise, known_ids, run_tests
from wmlib.tasks import world_spec

IDS = ("ch07.car_action", "ch07.crn_fitness")


def _independent_car_action(y):
    # Written without looking at wmlib: one row at a time, as the paper's code maps C's outputs.
    rows = []
    for s, g, b in y.tolist():
        rows.append([s, 0.5 * g + 0.5, min(max(b, 0.0), 1.0)])
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 3)


def _independent_crn_fitness(rollout_fn, solutions, seeds):
    returns = np.array([[rollout_fn(solutions[i], s) for s in seeds] for i in range(len(solutions))])  # (N, R)
    return returns.mean(axis=1)


INDEPENDENT = {"ch07.car_action": _independent_car_action, "ch07.crn_fitness": _independent_crn_fitness}


def test_registered_with_wrong_versions():
    assert set(IDS) <= set(known_ids())
    assert set(WRONG_VERSIONS) == {i for i in known_ids() if i.startswith("ch07.")}


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_and_independent_version_pass(exercise_id):
    for fn in (get_exercise(exercise_id).reference, INDEPENDENT[exercise_id]):
        result = run_tests(exercise_id, fn)
        assert result.passed, result.failures


CASES = [(ex_id, name, fn) for ex_id, versions in WRONG_VERSIONS.items() for name, fn in versions.items()]


@pytest.mark.parametrize(("exercise_id", "name", "fn"), CASES, ids=[f"{i}:{n}" for i, n, _ in CASES])
def test_wrong_version_is_rejected(exercise_id, name, fn):
    result = run_tests(exercise_id, fn)
    assert result.attempted and not result.passed, f"the wrong version {name!r} passed every test"
    assert all(result.failures)


def test_car_action_reference_is_the_worlds_action_map():
    # The exercise's answer is what the real agent does: one output row at a time through map_action.
    car = world_spec("carracing")
    ys = np.random.default_rng(0).uniform(-1, 1, size=(200, 3)).astype(np.float32)
    one_by_one = np.stack([map_action(y, car.action_map) for y in ys])
    batched = get_exercise("ch07.car_action").reference(torch.from_numpy(ys)).numpy()
    np.testing.assert_allclose(batched, one_by_one)
    for a in one_by_one:
        assert car.action_space.contains(a)


def test_crn_fitness_reference_is_what_an_evaluator_computes():
    # CMA-ES's fitness (wmlib.cmaes.train_cmaes) is the evaluator's (N, R) returns averaged over the random seeds.
    def rollout(params, seed):
        return float(np.sin(seed) * params.sum() + params[0] ** 2)

    x = np.random.default_rng(1).normal(size=(5, 4))
    seeds = [3, 14, 15]
    expected = SerialEvaluator(rollout)(x, seeds).returns.mean(axis=1)
    np.testing.assert_allclose(get_exercise("ch07.crn_fitness").reference(rollout, x, seeds), expected)
