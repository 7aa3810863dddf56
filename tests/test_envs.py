"""The course's environments: shapes, dtypes, the pole visible in pixel CartPole, clear errors."""

import gymnasium as gym
import numpy as np
import pytest

from wmlib.envs import ENV_NAMES, action_dim, cartpole_frame, encode_actions, make_env


def test_unknown_env_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="cartpole-pixels"):
        make_env("pong")


def test_cartpole_pixels_frames():
    env = make_env("cartpole-pixels")
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert info["state"].shape == (4,)
    obs2, reward, terminated, truncated, info = env.step(1)
    assert obs2.shape == (64, 64, 3) and reward == 1.0
    env.close()


def _pole_columns(frame):
    """Columns holding the pole's brown pixels (red clearly above blue)."""
    upper = frame[:52].astype(int)
    brown = (upper[..., 0] - upper[..., 2] > 40) & (upper[..., 0] < 200)
    return np.nonzero(brown.any(axis=0))[0]


def test_pole_is_dark_thick_and_follows_the_angle():
    env = make_env("cartpole-pixels")
    env.reset(seed=0)
    frames = {}
    for theta in (-0.2, 0.0, 0.2):
        env.unwrapped.state = np.array([0.0, 0.0, theta, 0.0])
        frames[theta] = cartpole_frame(env.unwrapped.render())
    env.close()
    upright = frames[0.0]
    cols = _pole_columns(upright)
    assert 2 <= len(cols) <= 4, f"pole should be 2-4 pixels wide when upright, found columns {cols}"
    assert upright[15:50, cols].min() < 100, "the pole should be dark, not pale"
    # Leaning right moves the top of the pole right, leaning left moves it left.
    top = lambda f: _pole_columns(f[:22]).mean()  # noqa: E731  (the pole's upper third)
    assert top(frames[0.2]) > top(frames[0.0]) + 1.5
    assert top(frames[-0.2]) < top(frames[0.0]) - 1.5


def test_cartpole_frame_rejects_other_images():
    with pytest.raises(ValueError, match="400, 600, 3"):
        cartpole_frame(np.zeros((64, 64, 3), np.uint8))


def test_state_cartpole_is_gymnasiums():
    env = make_env("cartpole")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,)
    env.close()


def test_carracing_frames():
    env = make_env("carracing")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    obs, *_ = env.step(np.array([0.0, 1.0, 0.0], np.float32))
    assert obs.shape == (64, 64, 3)
    # the dashboard (black bar at the bottom of the 96x96 frame) is cropped away
    assert obs[-4:].mean() > 60
    env.close()


def test_max_episode_steps():
    env = make_env("cartpole", max_episode_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        *_, terminated, truncated, _ = env.step(0)
        if terminated:
            break
    assert terminated or truncated


def test_encode_actions():
    onehot = encode_actions(np.array([0, 1, 1]), gym.spaces.Discrete(2))
    assert onehot.tolist() == [[1, 0], [0, 1], [0, 1]] and onehot.dtype == np.float32
    box = gym.spaces.Box(-1, 1, (3,))
    assert encode_actions(np.zeros((4, 3)), box).shape == (4, 3)
    with pytest.raises(ValueError, match="0..1"):
        encode_actions(np.array([2]), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="T, 3"):
        encode_actions(np.zeros((4, 2)), box)
    assert action_dim(box) == 3 and action_dim(gym.spaces.Discrete(2)) == 2


def test_all_names_build():
    for name in ENV_NAMES:
        make_env(name).close()
