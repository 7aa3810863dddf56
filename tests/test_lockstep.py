"""wmlib.lockstep: episodes played side by side are the episodes played one at a time."""

import dataclasses

import numpy as np
import pytest

from wmlib.agent import EVAL_SEED_START, ControllerRollout, evaluate_controller, load_controller
from wmlib.controller import controller_config_for
from wmlib.evaluators import SerialEvaluator
from wmlib.lockstep import LockstepEvaluator, play_in_lockstep


def _one_at_a_time(rollout, params, episodes):
    return evaluate_controller(SerialEvaluator(rollout), params, episodes, progress=False)


@pytest.fixture(scope="module")
def shaky():
    """The shipped pixel-CartPole C with noise on its weights: episodes of many different lengths, M and h in use."""
    c = load_controller("cartpole")
    params = c.get_flat_params() + np.random.default_rng(0).normal(0, 0.5, c.num_params)
    return ControllerRollout("cartpole-pixels", "cartpole", "cartpole", c.config, max_steps=150), params


@pytest.fixture(scope="module")
def shaky_returns(shaky):
    """The one-at-a-time player's 12 episodes of `shaky` (random seeds EVAL_SEED_START, ...)."""
    rollout, params = shaky
    return _one_at_a_time(rollout, params, 12)


def test_lockstep_returns_are_the_one_at_a_time_returns(shaky, shaky_returns):
    rollout, params = shaky
    want = shaky_returns
    assert len(set(want.steps.tolist())) > 3  # episodes end at different times: the batch shrinks as it goes
    got = play_in_lockstep(rollout, params, range(EVAL_SEED_START, EVAL_SEED_START + 12))
    np.testing.assert_array_equal(got.returns, want.returns)
    np.testing.assert_array_equal(got.steps, want.steps)
    assert got.steps.max() <= 150  # max_steps cuts episodes as the one-at-a-time player does


def test_lockstep_without_m_and_with_sampled_z():
    zonly = load_controller("cartpole_zonly")
    rollout = ControllerRollout("cartpole-pixels", "cartpole", None, zonly.config)  # h_dim 0: no M at all
    params = zonly.get_flat_params()
    want = _one_at_a_time(rollout, params, 6)
    np.testing.assert_array_equal(LockstepEvaluator(rollout).evaluate(params, 6, progress=False).returns,
                                  want.returns)
    sampled = dataclasses.replace(rollout, sample_z=True)  # each episode its own z noise, seeded by its seed
    want = _one_at_a_time(sampled, params, 6)
    np.testing.assert_array_equal(LockstepEvaluator(sampled).evaluate(params, 6, progress=False).returns,
                                  want.returns)


def test_continuous_actions_are_refused_with_a_reason():
    # The car's float actions carry V's 1e-7 batch rounding into the physics: its tracks would diverge from the
    # one-at-a-time player's (measured: 4 of 6 tracks of 300 steps), so lockstep refuses rather than differ.
    from wmlib.mdnrnn import load_mdnrnn
    from wmlib.vae import load_vae

    config = controller_config_for("carracing", load_vae("carracing").config.z_dim,
                                   load_mdnrnn("carracing").config.hidden_size)
    rollout = ControllerRollout("carracing", "carracing", "carracing", config, max_steps=40)
    with pytest.raises(ValueError, match="only for discrete actions.*one at a time"):
        LockstepEvaluator(rollout).evaluate(np.zeros((config.z_dim + config.h_dim + 1) * 3), 2, progress=False)


def test_worker_processes_give_the_same_returns(shaky, shaky_returns):
    rollout, params = shaky
    with LockstepEvaluator(rollout, workers=2) as ev:
        got = ev.evaluate(params, 8, progress=False)
        again = ev(params, range(EVAL_SEED_START + 8, EVAL_SEED_START + 12))  # the workers live on between calls
    np.testing.assert_array_equal(got.returns, shaky_returns.returns[:8])
    np.testing.assert_array_equal(again.returns, shaky_returns.returns[8:])


def test_bad_input_gets_a_clear_error(shaky):
    rollout, params = shaky
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        LockstepEvaluator(rollout, workers=0)
    ev = LockstepEvaluator(rollout)
    with pytest.raises(ValueError, match=r"one controller's parameters \(P,\)"):
        ev(np.stack([params, params]), [1, 2])
    with pytest.raises(ValueError, match="at least 1"):
        ev.evaluate(params, 0)
    with pytest.raises(ValueError, match="at least one random seed"):
        play_in_lockstep(rollout, params, [])


def test_doom_episodes_in_lockstep_are_the_one_at_a_time_episodes():
    pytest.importorskip("vizdoom")
    c = load_controller("doom")  # the shipped Doom C: its one output split in thirds (left / stay / right)
    rollout = ControllerRollout("doom-takecover", "doom", "doom", c.config, max_steps=200)
    first = EVAL_SEED_START + 5  # three episodes: a fireball ends the middle one at 169 steps, the others reach the cap
    want = evaluate_controller(SerialEvaluator(rollout), c.get_flat_params(), 3, seed_start=first, progress=False)
    assert want.steps.min() < 200 and want.steps.max() == 200
    got = LockstepEvaluator(rollout).evaluate(c.get_flat_params(), 3, seed_start=first, progress=False)
    np.testing.assert_array_equal(got.returns, want.returns)
    np.testing.assert_array_equal(got.steps, want.steps)
