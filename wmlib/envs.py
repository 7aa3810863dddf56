"""Environments by name: make_env builds any of the worlds in wmlib.tasks, headless.

    make_env("cartpole-pixels")   64x64x3 uint8 frames of CartPole-v1: a close-up of cart and pole
                                  above a strip that shows the whole track (wmlib.observations)
    make_env("cartpole")          CartPole-v1 as Gymnasium ships it (4 numbers of state)
    make_env("carracing")         CarRacing-v3, frames cropped and resized to 64x64x3 as in the paper
    make_env("doom-takecover")    ViZDoom's TakeCover, the whole screen resized to 64x64x3 as in the paper,
                                  episodes cut at 2,100 steps

All of them run headless: no display is needed. `action_dim` and `encode_actions` turn env actions
into the float vectors M reads (one-hot for a Discrete space, as they are for a Box).

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

from wmlib.observations import (  # noqa: F401  (re-exported: the chapters import them from here)
    FRAME_SHAPE,
    CarRacingPixels,
    CartPolePixels,
    carracing_frame,
    cartpole_frame,
)
from wmlib.tasks import WORLDS, world_spec

ENV_NAMES = tuple(WORLDS)
"""Every world make_env builds (the keys of wmlib.tasks.WORLDS)."""


def _headless() -> None:
    """Tell SDL (used by Gymnasium's renderers) that there is no screen and no sound card."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def make_env(name: str, *, max_episode_steps: int | None = None, **kwargs) -> gym.Env:
    """Build one of the course's environments by name (see ENV_NAMES and wmlib.tasks).

    max_episode_steps overrides the time limit (the world's `episode_steps`: CartPole-v1 500,
    CarRacing-v3 1000, Doom TakeCover 2100). Other keyword arguments go to `gymnasium.make` (for example
    `render_mode="rgb_array"` on "cartpole" to look at it).
    """
    world = world_spec(name)
    _headless()
    limit = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    return world.make(**limit, **kwargs)


def action_dim(space: gym.Space) -> int:
    """A: the width of an action vector as M and C see it (n for Discrete(n), the size for Box)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"unsupported action space {space}; expected Discrete or Box")


def encode_actions(actions: np.ndarray, space: gym.Space) -> np.ndarray:
    """Actions as float vectors (T, A): one-hot for a Discrete space, as-is for a Box.

    actions: (T,) ints for Discrete, (T, A) floats for Box.
    """
    actions = np.asarray(actions)
    if isinstance(space, gym.spaces.Discrete):
        if actions.ndim != 1:
            raise ValueError(f"expected discrete actions of shape (T,), got {actions.shape}")
        if len(actions) and (actions.min() < 0 or actions.max() >= space.n):
            raise ValueError(f"discrete actions must lie in 0..{space.n - 1}, got {actions.min()}..{actions.max()}")
        return np.eye(space.n, dtype=np.float32)[actions.astype(np.int64)]
    if isinstance(space, gym.spaces.Box):
        if actions.ndim != 2 or actions.shape[1] != action_dim(space):
            raise ValueError(f"expected continuous actions of shape (T, {action_dim(space)}), got {actions.shape}")
        return actions.astype(np.float32)
    raise TypeError(f"unsupported action space {space}; expected Discrete or Box")
