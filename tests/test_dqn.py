"""Chapter 1's DQN: the Bellman target, the learner's target is really used, and it learns."""

import numpy as np
import pytest
import torch

from wmlib.config import DQNConfig
from wmlib.dqn import QNetwork, ReplayBuffer, bellman_target, train_dqn


def test_bellman_target_by_hand():
    got = bellman_target(torch.tensor([1.0, 0.5]), torch.tensor([[0.0, 2.0], [3.0, 1.0]]),
                         torch.tensor([False, True]), 0.5)
    assert torch.allclose(got, torch.tensor([2.0, 0.5]))


def test_q_network_shapes():
    q = QNetwork(4, 2, (8,))
    assert q(torch.zeros(5, 4)).shape == (5, 2)


def test_replay_buffer_wraps_around():
    buf = ReplayBuffer(3, 2)
    for i in range(5):
        buf.add(np.full(2, i), i % 2, float(i), np.full(2, i + 1), 0.0)
    assert buf.size == 3 and sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0]
    s, a, r, s2, d = buf.sample(4, np.random.default_rng(0))
    assert s.shape == (4, 2) and a.dtype == torch.int64


def test_train_dqn_uses_the_given_target_and_counts_steps():
    calls = []

    def target(rewards, next_q, dones, gamma):
        calls.append(next_q.shape)
        return bellman_target(rewards, next_q, dones, gamma)

    cfg = DQNConfig(learning_starts=100, train_freq=50, gradient_steps=2, batch_size=16, hidden_sizes=(16,))
    r = train_dqn(config=cfg, max_steps=400, seed=0, target_fn=target, eval_every=200, eval_episodes=1,
                  progress=False)
    assert calls and calls[0] == (16, 2)
    assert r.total_steps == 400 and [h["step"] for h in r.history] == [200, 400]
    assert r.eval_steps > 0 and r.episode_returns


def test_a_broken_target_breaks_learning():
    """Bootstrapping with min instead of max (a learner's slip) must not balance CartPole."""
    def wrong(rewards, next_q, dones, gamma):
        return rewards + gamma * next_q.min(dim=1).values

    cfg = DQNConfig(learning_starts=500, exploration_fraction=0.3)
    r = train_dqn(config=cfg, max_steps=6_000, seed=1, target_fn=wrong, eval_every=3_000, eval_episodes=3,
                  progress=False)
    assert r.steps_to_solve is None
    assert max(h["eval_return"] for h in r.history) < 300


@pytest.mark.slow
def test_dqn_learns_cartpole():
    r = train_dqn(max_steps=12_000, seed=1, eval_every=4_000, eval_episodes=5, progress=False)
    assert max(h["eval_return"] for h in r.history) >= 200, r.history


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        train_dqn(max_steps=0)
    with pytest.raises(ValueError, match="discrete"):
        train_dqn("carracing", max_steps=10, progress=False)
