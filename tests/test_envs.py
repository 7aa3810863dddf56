"""The course's environments: shapes, dtypes, the pole visible in pixel CartPole, clear errors."""

import gymnasium as gym
import numpy as np
import pytest

from wmlib.envs import ENV_NAMES, action_dim, cartpole_frame, encode_actions, make_env


def test_unknown_env_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown world 'pong'; the known worlds are: cartpole-pixels .*carracing"):
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


def _pole_columns(frame, rows=slice(0, 30)):
    """Columns holding the pole's brown pixels (red clearly above blue) in the close-up's upper rows."""
    upper = frame[rows].astype(int)
    brown = (upper[..., 0] - upper[..., 2] > 60) & (upper[..., 0] < 220)
    return np.nonzero(brown.any(axis=0))[0]


def _frame_at(x=0.0, theta=0.0):
    return cartpole_frame(np.array([x, 0.0, theta, 0.0], np.float32))


def test_pole_is_visible_and_follows_the_angle():
    upright = _frame_at()
    cols = _pole_columns(upright)
    assert 2 <= len(cols) <= 5, f"pole should be 2-5 pixels wide when upright, found columns {cols}"
    assert upright[5:30, cols].min() < 120, "the pole should be dark, not pale"
    # Leaning right moves the top of the pole right, leaning left moves it left: 12 degrees by ~7 px.
    top = lambda f: _pole_columns(f, slice(4, 10)).mean()  # noqa: E731  (the top of the pole)
    assert top(_frame_at(theta=0.2)) > top(upright) + 4
    assert top(_frame_at(theta=-0.2)) < top(upright) - 4


def test_small_tilts_change_the_picture():
    """The reason for the close-up: a balancing agent lives within a few degrees of upright."""
    upright = _frame_at().astype(float)
    changes = [np.abs(_frame_at(theta=np.radians(d)).astype(float) - upright).sum() for d in (0.5, 1.0, 2.0)]
    assert 0 < changes[0] < changes[1] < changes[2]


def test_the_strip_shows_where_the_cart_is():
    strip = lambda x: _frame_at(x=x)[48:]  # noqa: E731
    darkest_col = lambda x: int(np.argmin(strip(x)[3:9].astype(int).sum(axis=(0, 2))))  # noqa: E731  cart marker
    assert darkest_col(-1.5) < darkest_col(0.0) < darkest_col(1.5)
    # the close-up follows the cart: away from the track's ends it looks the same wherever the cart is
    assert np.array_equal(_frame_at(x=-0.5)[:48], _frame_at(x=0.5)[:48])


def test_cartpole_frame_draws_batches_and_env_frames_match():
    states = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 0.3, -0.1, 0.2]], np.float32)
    batch = cartpole_frame(states)
    assert batch.shape == (2, 64, 64, 3) and batch.dtype == np.uint8
    assert np.array_equal(batch[1], cartpole_frame(states[1]))
    env = make_env("cartpole-pixels")
    obs, info = env.reset(seed=3)
    assert np.array_equal(obs, cartpole_frame(info["state"]))
    assert np.array_equal(env.render(), obs)
    env.close()


def test_cartpole_frame_rejects_bad_states():
    with pytest.raises(ValueError, match=r"\(4,\) or \(B, 4\)"):
        cartpole_frame(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        cartpole_frame(np.array([0.0, 0.0, np.nan, 0.0]))


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


def _car_frames(env, seed: int, steps: int) -> np.ndarray:
    """96x96 frames of one random drive (the same actions for every env given the same random seed)."""
    rng = np.random.default_rng(seed)
    frames = [env.reset(seed=seed)[0]]
    for _ in range(steps):
        action = np.array([rng.uniform(-1, 1), rng.uniform(0, 1), rng.uniform(0, 0.2)], np.float32)
        frames.append(env.step(action)[0])
    env.close()
    return np.stack(frames)


@pytest.mark.parametrize("seed", [0, 3])
def test_fast_carracing_draws_the_stock_pixels(seed):
    """The faster road drawing changes no pixel: zoom-in, turns, tiles changing colour when driven over."""
    from gymnasium.envs.box2d.car_racing import CarRacing

    from wmlib.carracing_fast import FastCarRacing

    stock, fast = _car_frames(CarRacing(), seed, 120), _car_frames(FastCarRacing(), seed, 120)
    assert np.array_equal(stock, fast)
    assert len({f.tobytes() for f in fast}) > 100  # the drive really moved


def test_carracing_world_is_the_stock_env_drawn_faster():
    env = make_env("carracing")
    assert env.spec.id == "CarRacing-v3" and env.spec.max_episode_steps == 1000
    assert type(env.unwrapped).__name__ == "FastCarRacing"
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


def test_the_names_are_the_world_tables_and_the_limits_its_episode_lengths():
    from wmlib.tasks import WORLDS

    assert ENV_NAMES == tuple(WORLDS)
    for name in ("cartpole-pixels", "cartpole"):
        env = make_env(name)
        assert env.spec.max_episode_steps == WORLDS[name].episode_steps
        env.close()
    assert make_env("cartpole-pixels", max_episode_steps=7).spec.max_episode_steps == 7
