"""wmlib/survival.py: how long fixed policies live in M's dream and in the real game (chapter 6)."""

import math

import numpy as np
import pytest
import torch

from conftest import TINY_H as H
from conftest import TINY_Z as Z
from wmlib.config import DreamConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.dream import StartLatents
from wmlib.dream_training import dream_rollouts
from wmlib.survival import HOLD_CHANGE_PROB, dream_lengths, next_actions, real_lengths

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def starts(n=5):
    g = torch.Generator().manual_seed(2)
    return StartLatents(torch.randn(n, Z, generator=g), torch.randn(n, Z, generator=g) * 0.2 - 1.0)


def test_the_three_policies():
    rng = np.random.default_rng(0)
    prev = rng.integers(3, size=20_000)
    np.testing.assert_array_equal(next_actions("stay", prev, rng, 3, stay=2), 2)
    random = next_actions("random", prev, rng, 3)
    assert abs((random != prev).mean() - 2 / 3) < 0.02, "a fresh uniform action every step"
    held = next_actions("hold", prev, rng, 3)
    assert abs((held != prev).mean() - HOLD_CHANGE_PROB * 2 / 3) < 0.01, "redrawn with p = 0.1, else kept"
    with pytest.raises(ValueError, match="unknown policy 'left'; expected one of stay, random, hold"):
        next_actions("left", prev, rng, 3)


def test_dream_lengths_end_where_the_dream_ends(make_tiny_mdnrnn):
    never = make_tiny_mdnrnn(done_bias=-30.0)
    np.testing.assert_array_equal(dream_lengths(never, starts(), "random", DreamConfig(max_steps=17), 6), 17)
    always = DreamConfig(max_steps=50, done_bias=60.0)  # p(end) = 1 at the first step
    np.testing.assert_array_equal(dream_lengths(never, starts(), "hold", always, 6), 1)
    m = make_tiny_mdnrnn(done_bias=-3.0)
    lengths = dream_lengths(m, starts(), "stay", DreamConfig(max_steps=300), 64, seed=1)
    assert lengths.min() < lengths.max() < 300 and len(lengths) == 64
    harsher = dream_lengths(m, starts(), "stay", DreamConfig(max_steps=300, done_bias=math.log(10)), 64, seed=1)
    assert harsher.mean() < lengths.mean(), "ends 10x likelier in odds: shorter dreams"


def test_real_lengths_play_the_policy_in_the_real_world():
    pushed_left = real_lengths("cartpole", "stay", 3, seed=5, stay=0)  # CartPole's action 0 pushes left
    assert (pushed_left < 15).all(), "always pushing one way drops the pole within a few steps"
    again = real_lengths("cartpole", "stay", 3, seed=5, stay=0)
    np.testing.assert_array_equal(pushed_left, again)
    assert real_lengths("cartpole", "hold", 5, seed=5, max_steps=4).max() == 4


def test_stay_in_the_dream_is_the_dream_of_a_controller_that_always_picks_that_action(make_tiny_mdnrnn):
    """Each dream keeps its own length as ended dreams leave the batch: the same as the library's batched
    rollouts of a controller whose only choice is action 0, dream for dream."""
    m, config = make_tiny_mdnrnn(done_bias=-3.0), DreamConfig(max_steps=300)
    c = LinearController(controller_config_for("cartpole-pixels", Z, H))
    with torch.no_grad():
        c.bias.fill_(-1.0)  # W = 0 and tanh(-1) < 0: always action 0
    seed, n = 4, 24
    lengths = dream_lengths(m, starts(), "stay", config, n, seed=seed, stay=0)
    rolled = dream_rollouts(m, starts(), c.config, c.get_flat_params()[None], [seed * 100_003 + i for i in range(n)],
                            config)
    np.testing.assert_array_equal(lengths, rolled.steps[0])
    assert len(set(lengths.tolist())) > 3, "the check needs dreams of different lengths"
