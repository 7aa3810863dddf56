"""Chapter 1 exercises: the discounted return and the Bellman target.

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from wmlib.dqn import bellman_target
from wmlib.exercises._asserts import as_tensor, assert_close, assert_float_close
from wmlib.exercises._core import register


def discounted_return(rewards, gamma: float) -> float:
    """G = sum_t gamma**t * r_t, the first reward undiscounted (reference solution)."""
    g = 0.0
    for r in reversed(list(rewards)):
        g = float(r) + gamma * g
    return g


# --- tests for ch01.discounted_return ---------------------------------------------------------


def _dr_hand_example(fn):
    got = fn([1.0, 2.0, 3.0], 0.5)
    assert_float_close(got, 1.0 + 0.5 * 2.0 + 0.25 * 3.0, "discounted_return([1, 2, 3], gamma=0.5)")


def _dr_first_reward_undiscounted(fn):
    assert_float_close(fn([5.0], 0.9), 5.0,
                       "discounted_return([5], 0.9) (the first reward is not discounted: gamma**0 = 1)")


def _dr_empty(fn):
    assert_float_close(fn([], 0.9), 0.0, "discounted_return([], 0.9) (no rewards, no return)")


def _dr_gamma_edges(fn):
    rewards = [1.0, -2.0, 3.0, 4.0]
    assert_float_close(fn(rewards, 1.0), 6.0, "with gamma=1 (plain sum)")
    assert_float_close(fn(rewards, 0.0), 1.0, "with gamma=0 (only the first reward counts)")


def _dr_long_episode(fn):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=500).tolist()
    assert_float_close(fn(rewards, 0.99), discounted_return(rewards, 0.99), "a 500-step episode, gamma=0.99",
                       rtol=1e-6, atol=1e-6)


def _dr_numpy_input(fn):
    rewards = np.ones(200, dtype=np.float32)
    expected = (1 - 0.95**200) / (1 - 0.95)
    assert_float_close(fn(rewards, 0.95), expected, "200 rewards of +1 as a NumPy array, gamma=0.95", rtol=1e-5)


register(
    "ch01.discounted_return",
    "(rewards: sequence of float, gamma: float) -> float",
    discounted_return,
    [
        ("worked example by hand", _dr_hand_example),
        ("first reward is not discounted", _dr_first_reward_undiscounted),
        ("empty episode", _dr_empty),
        ("gamma = 1 and gamma = 0", _dr_gamma_edges),
        ("long random episode", _dr_long_episode),
        ("accepts a NumPy array", _dr_numpy_input),
    ],
)


# --- tests for ch01.bellman_target ------------------------------------------------------------


def _bt_inputs(seed: int, batch: int = 7, actions: int = 3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(batch, generator=g)
    next_q = torch.randn(batch, actions, generator=g) * 3
    dones = torch.rand(batch, generator=g) < 0.4
    dones[0], dones[1] = True, False
    return rewards, next_q, dones


def _bt_hand_example(fn):
    rewards = torch.tensor([1.0, 1.0])
    next_q = torch.tensor([[2.0, 5.0, -1.0], [2.0, 5.0, -1.0]])
    dones = torch.tensor([False, True])
    got = fn(rewards, next_q, dones, 0.9)
    assert_close(got, torch.tensor([1.0 + 0.9 * 5.0, 1.0]), "the target for r=1, Q(s')=[2, 5, -1], gamma=0.9 "
                 "(first row not done, second row done)")


def _bt_shape(fn):
    rewards, next_q, dones = _bt_inputs(1, batch=5, actions=2)
    got = as_tensor(fn(rewards, next_q, dones, 0.99), "the target")
    if tuple(got.shape) != (5,):
        raise AssertionError(f"the target should have shape (B,) = (5,) for 5 transitions, got {tuple(got.shape)}: "
                             "take the max over the action dimension (dim=1), one target per transition")


def _bt_no_bootstrap_when_done(fn):
    rewards, next_q, _ = _bt_inputs(2)
    dones = torch.ones(7, dtype=torch.bool)
    assert_close(fn(rewards, next_q, dones, 0.99), rewards,
                 "the target where every transition is terminal (done: there is no next state, "
                 "so the target is just r)")


def _bt_random_batches(fn):
    for seed in range(3, 8):
        rewards, next_q, dones = _bt_inputs(seed)
        assert_close(fn(rewards, next_q, dones, 0.97), bellman_target(rewards, next_q, dones, 0.97),
                     f"the target on a random batch (seed {seed})")


def _bt_float_dones(fn):
    rewards, next_q, dones = _bt_inputs(9)
    assert_close(fn(rewards, next_q, dones.float(), 0.9), bellman_target(rewards, next_q, dones, 0.9),
                 "the target when dones is a float tensor of 0.0/1.0")


def _bt_inputs_unchanged(fn):
    rewards, next_q, dones = _bt_inputs(10)
    copies = rewards.clone(), next_q.clone(), dones.clone()
    fn(rewards, next_q, dones, 0.9)
    for name, before, after in zip(("rewards", "next_q", "dones"), copies, (rewards, next_q, dones), strict=True):
        if not torch.equal(before, after):
            raise AssertionError(f"your function changed its input {name} in place; compute a new tensor instead")


def _bt_square_batch(fn):
    # B == A: a max over the wrong dimension keeps the right shape but gives the wrong numbers.
    rewards, next_q, dones = _bt_inputs(11, batch=4, actions=4)
    assert_close(fn(rewards, next_q, dones, 0.9), bellman_target(rewards, next_q, dones, 0.9),
                 "the target when B == A (is the max taken over the actions, dim=1?)")


register(
    "ch01.bellman_target",
    "(rewards (B,), next_q (B, A), dones (B,), gamma: float) -> (B,)",
    bellman_target,
    [
        ("worked example by hand", _bt_hand_example),
        ("one target per transition", _bt_shape),
        ("no bootstrap where done", _bt_no_bootstrap_when_done),
        ("random batches", _bt_random_batches),
        ("dones as floats", _bt_float_dones),
        ("max over actions, not over the batch", _bt_square_batch),
        ("inputs left unchanged", _bt_inputs_unchanged),
    ],
)
