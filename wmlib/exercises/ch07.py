"""Chapter 7 exercises: the car's action map, and fitness on common random numbers.

ch07.car_action: C's three tanh outputs -> the car's (steer, gas, brake), as the paper's code maps them

    steer = y0 in [-1, 1]      gas = (y1 + 1) / 2 in [0, 1]      brake = clip(y2, 0, 1)

The reference is the world's own action map (wmlib.tasks, wmlib.controller.ACTION_MAPS), the one the
real agent and the dream use.

ch07.crn_fitness: the fitness of every candidate of a population as the mean return over the SAME
random seeds (tracks), as `wmlib.cmaes.train_cmaes` asks of an evaluator: differences then come from
the parameters, not from luckier tracks.

Introduced in: course/07_car.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from wmlib.controller import action_map_spec
from wmlib.exercises._asserts import as_tensor, assert_close, assert_inputs_unchanged
from wmlib.exercises._core import register
from wmlib.tasks import world_spec

WORLD = "carracing"


def car_action(y: torch.Tensor) -> torch.Tensor:
    """C's tanh outputs y (B, 3) -> the car's actions (B, 3): the world's own action map."""
    world = world_spec(WORLD, wanted="car action map")
    return action_map_spec(world.action_map).batched(torch.as_tensor(y))


# --- tests for ch07.car_action ----------------------------------------------------------------


def _car(fn, y: torch.Tensor, what: str) -> torch.Tensor:
    got = as_tensor(fn(y.clone()), what)
    if tuple(got.shape) != tuple(y.shape):
        raise AssertionError(f"{what} should have shape (B, 3) = {tuple(y.shape)}: one (steer, gas, brake) row per "
                             f"row of y, got {tuple(got.shape)}")
    if not got.dtype.is_floating_point:
        raise AssertionError(f"{what} should be floats (the car's controls are continuous), got dtype {got.dtype}")
    return got


def _expect_row(fn, y: list[float], expected: list[float], what: str) -> None:
    got = _car(fn, torch.tensor([y]), what)[0]
    for name, g, e in zip(("steer", "gas", "brake"), got.tolist(), expected, strict=True):
        if abs(g - e) > 1e-5:
            raise AssertionError(f"{what}: for y = {y} your {name} is {g:.4g}, expected {e:.4g}")


def _ca_hand_example(fn):
    _expect_row(fn, [0.5, 0.0, -0.4], [0.5, 0.5, 0.0], "the action of y = (0.5, 0, -0.4)")


def _ca_steer_is_y0(fn):
    _expect_row(fn, [-0.8, 0.2, 0.3], [-0.8, 0.6, 0.3], "the action of y = (-0.8, 0.2, 0.3) (steer left)")


def _ca_gas_range(fn):
    _expect_row(fn, [0.0, -1.0, 0.0], [0.0, 0.0, 0.0], "y1 = -1 (gas must be 0, not negative)")
    _expect_row(fn, [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], "y1 = +1 (full gas)")


def _ca_brake_clipped(fn):
    _expect_row(fn, [0.0, 0.0, -1.0], [0.0, 0.5, 0.0], "y2 = -1 (brake must be 0: the pedal cannot pull)")
    _expect_row(fn, [0.0, 0.0, 0.7], [0.0, 0.5, 0.7], "y2 = 0.7 (brake 0.7, as it is)")


def _ca_random(fn):
    for seed in range(3):
        y = torch.rand(40, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        assert_close(_car(fn, y, f"a random batch (seed {seed})"), car_action(y), f"a random batch (seed {seed})")


def _ca_in_range(fn):
    y = torch.rand(200, 3, generator=torch.Generator().manual_seed(7)) * 2 - 1
    got = _car(fn, y, "a batch of 200")
    low, high = torch.tensor([-1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0])
    if (got < low - 1e-6).any() or (got > high + 1e-6).any():
        raise AssertionError("some actions leave the car's action space: steer in [-1, 1], gas and brake in [0, 1]")


def _ca_input_unchanged(fn):
    y = torch.tensor([[-0.2, -0.6, -0.9], [0.3, 0.8, 0.4]])
    assert_inputs_unchanged(lambda: fn(y), {"y": y})


register(
    "ch07.car_action",
    "(y (B, 3) tanh outputs in [-1, 1]) -> (B, 3) float actions: steer = y0, gas = (y1 + 1) / 2, "
    "brake = clip(y2, 0, 1)",
    car_action,
    [
        ("worked example by hand", _ca_hand_example),
        ("steer is y0", _ca_steer_is_y0),
        ("gas runs from 0 to 1", _ca_gas_range),
        ("brake is clipped at 0", _ca_brake_clipped),
        ("random batches", _ca_random),
        ("every action inside the car's action space", _ca_in_range),
        ("input left unchanged", _ca_input_unchanged),
    ],
)


# --- ch07.crn_fitness -------------------------------------------------------------------------


def crn_fitness(rollout_fn, solutions: np.ndarray, seeds) -> np.ndarray:
    """fitness_i = mean over j of rollout_fn(solutions[i], seeds[j]): every candidate plays every seed.

    rollout_fn(params (P,), seed) -> float return;  solutions (N, P);  seeds (R,)  ->  (N,) float
    """
    return np.array([np.mean([float(rollout_fn(x, int(s))) for s in seeds]) for x in solutions])


class _Track:
    """A toy rollout: the return of params on track `seed` is the params' quality plus the track's difficulty.

    Records every (candidate, seed) it was asked for, so a test can see who played which track.
    """

    def __init__(self):
        self.calls: list[tuple[float, int]] = []

    def __call__(self, params, seed) -> float:
        params = np.asarray(params, dtype=np.float64)
        self.calls.append((float(params[0]), int(seed)))
        difficulty = float(np.random.default_rng(int(seed)).normal(0.0, 100.0))
        return float(10.0 * params[0] + params[1:].sum() + difficulty)


def _population(n: int, p: int = 3, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, p))
    x[:, 0] = np.arange(n)  # column 0 names the candidate (the toy track reads it)
    return x


def _fitness(fn, rollout_fn, solutions, seeds, what: str) -> np.ndarray:
    got = fn(rollout_fn, solutions.copy(), list(seeds))
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} should be an array of numbers, got {type(got).__name__}") from None
    if got.shape != (len(solutions),):
        raise AssertionError(f"{what} should have shape (N,) = ({len(solutions)},), one fitness per candidate, "
                             f"got {got.shape}")
    return got


def _cf_hand_example(fn):
    def rollout(params, seed):
        return float(params[0] * seed)

    got = _fitness(fn, rollout, np.array([[1.0], [2.0]]), [3, 5], "the fitness of candidates 1 and 2 on seeds 3, 5")
    expected = np.array([4.0, 8.0])
    if not np.allclose(got, expected):
        raise AssertionError(f"with return = params[0] * seed, candidates [1] and [2] on random seeds [3, 5] score "
                             f"{expected.tolist()} (the mean over the tracks), you return {got.tolist()}")


def _cf_same_seeds(fn):
    track, seeds = _Track(), [11, 22, 33]
    _fitness(fn, track, _population(4), seeds, "the fitness of 4 candidates")
    for i in range(4):
        played = sorted(s for c, s in track.calls if c == i)
        if sorted(set(played)) != sorted(seeds):
            raise AssertionError(f"candidate {i} played the tracks (random seeds) {played}, expected each of {seeds}: "
                                 "common random numbers means every candidate plays the same tracks")


def _cf_matches_reference(fn):
    for n, r in ((5, 2), (3, 4), (1, 1)):
        x, seeds = _population(n, seed=n), [100 + 7 * j for j in range(r)]
        got = _fitness(fn, _Track(), x, seeds, f"the fitness of {n} candidates on {r} seeds")
        assert_close(torch.from_numpy(got), torch.from_numpy(crn_fitness(_Track(), x, seeds)),
                     f"the fitness of {n} candidates on {r} seeds")


def _cf_order_by_quality(fn):
    x, seeds = _population(6, seed=3), [5, 6, 7, 8]
    got = _fitness(fn, _Track(), x, seeds, "the fitness of 6 candidates")
    true = 10.0 * x[:, 0] + x[:, 1:].sum(axis=1)
    if not np.array_equal(np.argsort(got), np.argsort(true)):
        raise AssertionError("on common tracks the track difficulty is the same for everyone, so the fitness must "
                             f"rank the candidates as their quality does ({np.argsort(true).tolist()} from worst "
                             f"to best); yours ranks them {np.argsort(got).tolist()}")


def _cf_inputs_unchanged(fn):
    x, seeds = _population(3), [1, 2]
    before = x.copy()
    fn(_Track(), x, seeds)
    if not np.array_equal(x, before):
        raise AssertionError("your function changed the solutions in place; leave them as they are")


register(
    "ch07.crn_fitness",
    "(rollout_fn(params (P,), seed) -> float, solutions (N, P), seeds (R,)) -> (N,) mean return of each candidate "
    "over the same R seeds",
    crn_fitness,
    [
        ("worked example by hand", _cf_hand_example),
        ("every candidate plays every seed", _cf_same_seeds),
        ("several population sizes and seeds", _cf_matches_reference),
        ("the ranking follows the candidates' quality", _cf_order_by_quality),
        ("solutions left unchanged", _cf_inputs_unchanged),
    ],
)
