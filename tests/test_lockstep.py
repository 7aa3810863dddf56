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


def test_lockstep_returns_are_the_one_at_a_time_returns(shaky):
    rollout, params = shaky
    want = _one_at_a_time(rollout, params, 12)
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


def test_lockstep_plays_continuous_actions_for_the_car():
    from wmlib.mdnrnn import load_mdnrnn
    from wmlib.vae import load_vae

    config = controller_config_for("carracing", load_vae("carracing").config.z_dim,
                                   load_mdnrnn("carracing").config.hidden_size)
    rollout = ControllerRollout("carracing", "carracing", "carracing", config, max_steps=40)
    params = np.random.default_rng(1).normal(0, 0.1, (config.z_dim + config.h_dim + 1) * 3)
    want = _one_at_a_time(rollout, params, 2)
    got = LockstepEvaluator(rollout).evaluate(params, 2, progress=False)
    np.testing.assert_allclose(got.returns, want.returns, atol=1e-9)
    np.testing.assert_array_equal(got.steps, [40, 40])


def test_worker_processes_give_the_same_returns(shaky):
    rollout, params = shaky
    want = _one_at_a_time(rollout, params, 8)
    with LockstepEvaluator(rollout, workers=2) as ev:
        got = ev.evaluate(params, 8, progress=False)
        again = ev.evaluate(params, 8, progress=False)  # the workers live on between calls
    np.testing.assert_array_equal(got.returns, want.returns)
    np.testing.assert_array_equal(again.returns, want.returns)


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
