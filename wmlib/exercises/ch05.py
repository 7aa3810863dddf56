"""Chapter 5 exercise: the returns of a batch of dreams that end at different steps.

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import torch

from wmlib.dream import masked_returns
from wmlib.exercises._asserts import as_tensor, assert_close
from wmlib.exercises._core import register

# --- tests for ch05.masked_returns ------------------------------------------------------------


def _mr_inputs(seed: int, batch: int = 6, steps: int = 9, p_done: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(batch, steps, generator=g)
    dones = torch.rand(batch, steps, generator=g) < p_done
    dones[0] = False  # a row that never ends
    dones[1, :] = False
    dones[1, 2] = dones[1, 5] = True  # a row with two dones: only the first counts
    return rewards, dones


def _mr_hand_example(fn):
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0],
                            [1.0, 2.0, 3.0, 4.0],
                            [1.0, 2.0, 3.0, 4.0]])
    dones = torch.tensor([[False, True, False, False],   # ends at step 1: 1 + 2
                          [False, False, False, False],  # never ends: all four
                          [True, False, True, False]])   # ends at step 0: only the first reward
    assert_close(fn(rewards, dones), torch.tensor([3.0, 10.0, 1.0]),
                 "the returns of rewards [1, 2, 3, 4] with a done at step 1, no done, and dones at steps 0 and 2")


def _mr_shape(fn):
    rewards, dones = _mr_inputs(1, batch=5, steps=7)
    got = as_tensor(fn(rewards, dones), "the returns")
    if tuple(got.shape) != (5,):
        raise AssertionError(f"for 5 dreams of 7 steps the returns should have shape (B,) = (5,), got "
                             f"{tuple(got.shape)}: sum over the time axis (dim=1), one return per dream")


def _mr_done_step_counts(fn):
    rewards = torch.tensor([[0.0, 0.0, 5.0, 7.0]])
    dones = torch.tensor([[False, False, True, False]])
    assert_close(fn(rewards, dones), torch.tensor([5.0]),
                 "the return when the done comes at step 2, whose reward is 5 (the reward of the step "
                 "that ends the episode counts; what comes after it does not)")


def _mr_no_done(fn):
    rewards, _ = _mr_inputs(2)
    dones = torch.zeros_like(rewards, dtype=torch.bool)
    assert_close(fn(rewards, dones), rewards.sum(1),
                 "the returns when no dream has ended yet (every reward counts)")


def _mr_first_done_only(fn):
    rewards = torch.ones(1, 6)
    dones = torch.tensor([[False, True, False, True, False, False]])
    assert_close(fn(rewards, dones), torch.tensor([2.0]),
                 "the return with dones at steps 1 and 3 (the episode ended at the first one)")


def _mr_random(fn):
    for seed in range(3, 8):
        rewards, dones = _mr_inputs(seed)
        assert_close(fn(rewards, dones), masked_returns(rewards, dones), f"the returns on a random batch (seed {seed})")


def _mr_float_dones(fn):
    rewards, dones = _mr_inputs(9)
    assert_close(fn(rewards, dones.float()), masked_returns(rewards, dones),
                 "the returns when dones is a float tensor of 0.0/1.0")


def _mr_square(fn):
    # B == T: summing over the wrong axis keeps the right shape but gives other numbers.
    rewards, dones = _mr_inputs(10, batch=6, steps=6)
    assert_close(fn(rewards, dones), masked_returns(rewards, dones),
                 "the returns when B == T (is the sum over time, dim=1?)")


def _mr_inputs_unchanged(fn):
    rewards, dones = _mr_inputs(11)
    copies = rewards.clone(), dones.clone()
    fn(rewards, dones)
    for name, before, after in zip(("rewards", "dones"), copies, (rewards, dones), strict=True):
        if not torch.equal(before, after):
            raise AssertionError(f"your function changed its input {name} in place; compute a new tensor instead")


register(
    "ch05.masked_returns",
    "(rewards (B, T), dones (B, T)) -> (B,)",
    masked_returns,
    [
        ("worked example by hand", _mr_hand_example),
        ("one return per dream", _mr_shape),
        ("the done step's reward counts", _mr_done_step_counts),
        ("rows without a done count whole", _mr_no_done),
        ("only the first done ends the episode", _mr_first_done_only),
        ("random batches", _mr_random),
        ("dones as floats", _mr_float_dones),
        ("sum over time, not over the batch", _mr_square),
        ("inputs left unchanged", _mr_inputs_unchanged),
    ],
)
