"""Environments: CartPole from pixels, CarRacing at the paper's 64x64, and the state CartPole.

    make_env("cartpole-pixels")   64x64x3 uint8 frames of CartPole-v1, pole drawn unmistakably
    make_env("cartpole")          CartPole-v1 as Gymnasium ships it (4 numbers of state)
    make_env("carracing")         CarRacing-v3, frames cropped and resized to 64x64x3 as in the paper

All of them run headless: no display is needed.

Why the pixel CartPole needs care: Gymnasium draws a 600x400 picture in which the pole is 10
pixels wide. Shrunk naively to 64x64 it becomes a pale line one pixel wide, and a VAE trained on
squared error can ignore it at almost no cost. We crop the band where cart and pole live, shrink it
with a *minimum* filter (a dark pixel anywhere in a block keeps the block dark), thicken the
result by one pixel and darken its colours, so the pole stays a solid, dark 2-3 pixel bar whose
angle survives compression. The band is 600 pixels wide (the whole track) and 192 tall, so the
frame is squeezed about 3x more across than down: at the 12 degrees where an episode ends the top
of the pole has moved about 3 pixels sideways. That is the signal V must keep.

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

ENV_NAMES = ("cartpole-pixels", "cartpole", "carracing")

FRAME_SHAPE = (64, 64, 3)
"""(H, W, C) of every pixel observation."""

# CartPole-v1 renders 400 rows x 600 columns; the cart runs along row ~300 and the pole (125 px)
# reaches up to row ~167 when upright. Rows 128..320 hold both, and 192 = 3 * 64 rows.
_CARTPOLE_ROWS = slice(128, 320)
_CARTPOLE_PAD_WIDTH = 640  # 600 columns padded with white to 10 * 64


def _headless() -> None:
    """Tell SDL (used by Gymnasium's renderers) that there is no screen and no sound card."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def cartpole_frame(rgb: np.ndarray) -> np.ndarray:
    """Turn CartPole's 400x600x3 render into the course's 64x64x3 frame.

    rgb: (400, 600, 3) uint8 as returned by CartPole-v1's `render()`.
    Returns (64, 64, 3) uint8.
    """
    if rgb.shape != (400, 600, 3) or rgb.dtype != np.uint8:
        raise ValueError(f"expected CartPole's (400, 600, 3) uint8 render, got {rgb.shape} {rgb.dtype}")
    band = rgb[_CARTPOLE_ROWS]  # (192, 600, 3)
    pad = np.full((band.shape[0], _CARTPOLE_PAD_WIDTH - band.shape[1], 3), 255, np.uint8)
    band = np.concatenate([band, pad], axis=1)  # (192, 640, 3)
    small = band.reshape(64, 3, 64, 10, 3).min(axis=(1, 3))  # min-pool: dark strokes survive
    thick = small.copy()
    thick[:, 1:] = np.minimum(thick[:, 1:], small[:, :-1])  # thicken by one pixel to the right
    # Darken: x -> x^2 / 255 keeps white white and turns the pale tan pole a dark brown.
    return (thick.astype(np.uint16) ** 2 // 255).astype(np.uint8)


def carracing_frame(obs: np.ndarray) -> np.ndarray:
    """The paper's CarRacing preprocessing: drop the 12-row dashboard, resize 84x96 to 64x64.

    obs: (96, 96, 3) uint8 from CarRacing-v3. Returns (64, 64, 3) uint8.
    """
    from PIL import Image

    if obs.shape != (96, 96, 3) or obs.dtype != np.uint8:
        raise ValueError(f"expected CarRacing's (96, 96, 3) uint8 observation, got {obs.shape} {obs.dtype}")
    return np.asarray(Image.fromarray(obs[:84]).resize((64, 64), Image.Resampling.BILINEAR))


class CartPolePixels(gym.ObservationWrapper):
    """CartPole-v1 that observes 64x64x3 frames instead of its 4-number state.

    The true state (x, x_dot, theta, theta_dot) is still given in `info["state"]`, for teaching
    and for checking what a model learned; an agent that plays from pixels must not read it.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)

    def observation(self, observation):
        return cartpole_frame(self.env.render())

    def reset(self, *, seed=None, options=None):
        state, info = self.env.reset(seed=seed, options=options)
        info = dict(info, state=np.asarray(state, np.float32))
        return self.observation(state), info

    def step(self, action):
        state, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info, state=np.asarray(state, np.float32))
        return self.observation(state), reward, terminated, truncated, info


class CarRacingPixels(gym.ObservationWrapper):
    """CarRacing-v3 with 64x64x3 observations (the paper's crop and resize)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)

    def observation(self, observation):
        return carracing_frame(observation)


def make_env(name: str, *, max_episode_steps: int | None = None, **kwargs) -> gym.Env:
    """Build one of the course's environments by name (see ENV_NAMES).

    max_episode_steps overrides the time limit (CartPole-v1: 500, CarRacing-v3: 1000).
    Other keyword arguments go to `gymnasium.make` (for example `render_mode="rgb_array"` on
    "cartpole" to look at it).
    """
    _headless()
    limit = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    if name == "cartpole-pixels":
        return CartPolePixels(gym.make("CartPole-v1", render_mode="rgb_array", **limit, **kwargs))
    if name == "cartpole":
        return gym.make("CartPole-v1", **limit, **kwargs)
    if name == "carracing":
        return CarRacingPixels(gym.make("CarRacing-v3", **limit, **kwargs))
    raise ValueError(f"unknown environment {name!r}; expected one of {', '.join(ENV_NAMES)}")


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
