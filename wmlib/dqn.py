"""DQN, the model-free baseline of chapter 1: learn Q(s, a) from real steps only.

    Q(s, a)  <-  r + gamma * max_a' Q_target(s', a')      (no bootstrap where the episode ended)

This is where the course starts: every bit of learning costs a real environment step. The
chapter measures how many steps DQN needs to balance CartPole, to set the bar the world model
has to beat.

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from wmlib.config import DQNConfig


def bellman_target(rewards: torch.Tensor, next_q: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """The one-step Bellman target y = r + gamma * max_a' Q(s', a'), and y = r where done.

    rewards: (B,)    next_q: (B, A) Q values of the next state    dones: (B,) bool or 0/1 float
    Returns (B,).
    """
    not_done = 1.0 - dones.to(next_q.dtype)
    return rewards + gamma * not_done * next_q.max(dim=1).values


class QNetwork(nn.Module):
    """An MLP from a state (B, D) to one Q value per action (B, A)."""

    def __init__(self, state_dim: int, n_actions: int, hidden_sizes: tuple[int, ...] = (256, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        width = state_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """state (B, D) -> Q values (B, A)."""
        return self.net(state)


class ReplayBuffer:
    """A ring buffer of transitions (s, a, r, s', done) in preallocated NumPy arrays."""

    def __init__(self, capacity: int, state_dim: int):
        self.states = np.zeros((capacity, state_dim), np.float32)
        self.next_states = np.zeros((capacity, state_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, s, a, r, s_next, done) -> None:
        i = self.pos
        self.states[i], self.actions[i], self.rewards[i], self.next_states[i], self.dones[i] = s, a, r, s_next, done
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, batch_size)
        return tuple(torch.from_numpy(a[idx]) for a in
                     (self.states, self.actions, self.rewards, self.next_states, self.dones))


@dataclass
class DQNResult:
    """What `train_dqn` returns.

    steps_to_solve: training steps taken when a greedy evaluation first reached the threshold,
                    or None if it never did within the budget
    history:        per evaluation: {"step", "eval_return", "epsilon"}
    episode_returns: (step at episode end, return) for every training episode
    """

    q_network: QNetwork
    steps_to_solve: int | None
    total_steps: int
    eval_steps: int
    wall_time_s: float
    history: list[dict] = field(default_factory=list)
    episode_returns: list[tuple[int, float]] = field(default_factory=list)


def evaluate_q(q: QNetwork, env: gym.Env, episodes: int, seed: int) -> tuple[float, int]:
    """Mean return of the greedy policy over `episodes` episodes, and the real steps that took."""
    returns, steps = [], 0
    for i in range(episodes):
        s, _ = env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            with torch.no_grad():
                a = int(q(torch.as_tensor(s, dtype=torch.float32)[None]).argmax(1))
            s, r, term, trunc, _ = env.step(a)
            total += r
            steps += 1
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns)), steps


def train_dqn(
    env_name: str = "cartpole",
    config: DQNConfig | None = None,
    *,
    max_steps: int = 60_000,
    seed: int = 0,
    target_fn: Callable = bellman_target,
    eval_every: int = 2_000,
    eval_episodes: int = 10,
    solved_return: float = 475.0,
    stop_when_solved: bool = True,
    progress: bool = True,
) -> DQNResult:
    """Train DQN on a state-vector env until a greedy evaluation averages `solved_return`.

    Every `eval_every` training steps the greedy policy plays `eval_episodes` episodes in a
    separate env; those evaluation steps are counted apart (`eval_steps`), not as training steps.
    config:    DQNConfig() when None
    target_fn: computes the Bellman target (B,) from (rewards, next_q, dones, gamma); chapter 1
               passes the learner's own.
    """
    config = DQNConfig() if config is None else config
    if max_steps < 1:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    # A network this small runs fastest on one thread; several threads only spin against each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_dqn(env_name, config, max_steps, seed, target_fn, eval_every, eval_episodes,
                          solved_return, stop_when_solved, progress)
    finally:
        torch.set_num_threads(threads)


def _explore_or_exploit(q: QNetwork, s: np.ndarray, warming_up: bool, epsilon: float, rng: np.random.Generator,
                        n_actions: int) -> int:
    """A random action while warming up or with probability epsilon (rng drawn only after warm-up), else argmax Q."""
    if warming_up or rng.random() < epsilon:
        return int(rng.integers(n_actions))
    with torch.no_grad():
        return int(q(torch.as_tensor(s, dtype=torch.float32)[None]).argmax(1))


def _gradient_phase(q: QNetwork, q_target: QNetwork, optimiser: torch.optim.Optimizer, buffer: ReplayBuffer,
                    rng: np.random.Generator, config: DQNConfig, target_fn: Callable) -> None:
    """config.gradient_steps Huber-loss steps on replayed batches, against the (fixed) target network."""
    for _ in range(config.gradient_steps):
        states, actions, rewards, next_states, dones = buffer.sample(config.batch_size, rng)
        with torch.no_grad():
            targets = target_fn(rewards, q_target(next_states), dones, config.gamma)
        q_taken = q(states).gather(1, actions[:, None]).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q_taken, targets)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(q.parameters(), config.max_grad_norm)
        optimiser.step()


def _train_dqn(env_name, config, max_steps, seed, target_fn, eval_every, eval_episodes, solved_return,
               stop_when_solved, progress) -> DQNResult:
    from wmlib.envs import make_env

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env, eval_env = make_env(env_name), make_env(env_name)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"DQN needs a discrete action space; {env_name} has {env.action_space}")
    state_dim, n_actions = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    q = QNetwork(state_dim, n_actions, config.hidden_sizes)
    q_target = QNetwork(state_dim, n_actions, config.hidden_sizes)
    q_target.load_state_dict(q.state_dict())
    optimiser = torch.optim.Adam(q.parameters(), lr=config.learning_rate)
    buffer = ReplayBuffer(config.buffer_size, state_dim)

    start = time.perf_counter()
    result = DQNResult(q, None, 0, 0, 0.0)
    s, _ = env.reset(seed=seed)
    episode_return = 0.0
    decay_steps = max(1, int(config.exploration_fraction * max_steps))
    bar = tqdm(range(1, max_steps + 1), desc="DQN on real CartPole steps", unit="step", disable=not progress,
               mininterval=0.5)
    for step in bar:
        epsilon = max(config.exploration_final_eps, 1.0 - (1.0 - config.exploration_final_eps) * step / decay_steps)
        a = _explore_or_exploit(q, s, step <= config.learning_starts, epsilon, rng, n_actions)
        s_next, r, term, trunc, _ = env.step(a)
        buffer.add(s, a, r, s_next, float(term))  # a time-limit cut is not a terminal state
        episode_return += r
        s = s_next
        if term or trunc:
            result.episode_returns.append((step, episode_return))
            s, _ = env.reset()
            episode_return = 0.0

        if step > config.learning_starts and step % config.train_freq == 0:
            _gradient_phase(q, q_target, optimiser, buffer, rng, config, target_fn)
        # As in Stable-Baselines3, the interval counts environment steps: with train_freq 256 the
        # target network stays fixed through each phase of gradient steps and is refreshed after it.
        if step % config.target_update_interval == 0:
            q_target.load_state_dict(q.state_dict())

        if step % eval_every == 0 or step == max_steps:
            mean_return, used = evaluate_q(q, eval_env, eval_episodes, seed=10_000 + step)
            result.eval_steps += used
            result.history.append({"step": step, "eval_return": mean_return, "epsilon": epsilon})
            bar.set_postfix(eval_return=f"{mean_return:.0f}")
            if result.steps_to_solve is None and mean_return >= solved_return:
                result.steps_to_solve = step
                if stop_when_solved:
                    result.total_steps = step
                    break
        result.total_steps = step
    bar.close()
    env.close()
    eval_env.close()
    result.wall_time_s = time.perf_counter() - start
    return result
