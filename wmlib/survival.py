"""How long simple policies live, in M's dream and in the real game: does the dream rank them as the game does?

    dream_lengths(m, starts, "stay", DreamConfig(...), dreams=256)   -> (dreams,) steps alive in the dream
    real_lengths("doom-takecover", "stay", episodes=40)               -> (episodes,) steps alive for real

A controller trained in a dream can only learn what the dream rewards. Three fixed policies over a
Discrete action space show what that is: "stay" (always `stay`, the action that does nothing), "random"
(a uniformly random action every step) and "hold" (a random action held until it is redrawn, with
probability HOLD_CHANGE_PROB per step: the smooth random play the Doom data was collected with). Used by
chapter 6 and benchmarks/doom_done_bias.py.
"""

from __future__ import annotations

import numpy as np
import torch

from wmlib.config import DreamConfig
from wmlib.dream import BatchedDream, StartLatents
from wmlib.mdnrnn import MDNRNN
from wmlib.rollouts import play_episodes

SIMPLE_POLICIES = ("stay", "random", "hold")
HOLD_CHANGE_PROB = 0.1
""""hold" redraws its action with this probability per step (the smooth random policy's)."""


def next_actions(policy: str, prev: np.ndarray, rng: np.random.Generator, n_actions: int, stay: int = 0
                 ) -> np.ndarray:
    """(B,) action indices for the next step of `policy`, given the previous ones prev (B,)."""
    if policy not in SIMPLE_POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(SIMPLE_POLICIES)}")
    if policy == "stay":
        return np.full_like(prev, stay)
    fresh = rng.integers(n_actions, size=prev.shape)
    if policy == "random":
        return fresh
    return np.where(rng.random(prev.shape) < HOLD_CHANGE_PROB, fresh, prev)


@torch.no_grad()
def dream_lengths(m: MDNRNN, starts: StartLatents, policy: str, config: DreamConfig, dreams: int, seed: int = 0,
                  stay: int = 0) -> np.ndarray:
    """Steps alive of `dreams` dreams of M under `policy` (ended by M's done head or config.max_steps).
    M reads actions one-hot (a Discrete world). Returns (dreams,) int."""
    rng = np.random.default_rng(seed)
    A = m.config.action_dim
    world = BatchedDream(m, starts, config)
    world.reset([seed * 100_003 + i for i in range(dreams)])
    alive = np.arange(dreams)  # which dreams the batch still holds
    lengths = np.zeros(dreams, int)
    actions = rng.integers(A, size=dreams)
    while len(alive):
        actions = next_actions(policy, actions, rng, A, stay)
        step = world.step(torch.nn.functional.one_hot(torch.as_tensor(actions), A).float())
        lengths[alive] += 1
        keep = ~(step.terminated | step.truncated).cpu().numpy()
        if not keep.all():
            alive, actions = alive[keep], actions[keep]
            if len(alive):
                world.keep(torch.as_tensor(np.flatnonzero(keep)))
    return lengths


def real_lengths(world: str, policy: str, episodes: int, seed: int = 0, stay: int = 0,
                 max_steps: int | None = None) -> np.ndarray:
    """Steps alive in `episodes` real episodes of `world` (reset with seed + i) under `policy`. Returns (episodes,)."""
    def factory(env):
        rng = np.random.default_rng(seed)
        last = np.array([rng.integers(env.action_space.n)])

        def act(observation, info):
            last[:] = next_actions(policy, last, rng, env.action_space.n, stay)
            return int(last[0])
        return act
    return np.array([len(ep["actions"]) for ep in play_episodes(world, episodes, policy=factory, seed=seed,
                                                                max_steps=max_steps)], float)
