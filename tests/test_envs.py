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


def _reference_cartpole_frame(state: np.ndarray) -> np.ndarray:
    """cartpole_frame as first written: every shape painted over the whole 64x64 frame (slow, plain)."""
    from wmlib import observations as o

    batch = np.asarray(state, np.float32).reshape(-1, 4)
    x, theta = batch[:, 0, None, None], batch[:, 2, None, None]
    image = np.broadcast_to(o._WHITE, (len(batch), 64, 64, 3)).copy()
    R, C = o._ROWS, o._COLS

    def paint(cover, colour):
        image[...] += cover[..., None] * (colour - image)

    in_zoom = R < o._STRIP_TOP
    paint(o._coverage(np.abs(R - o._CART_ROW) - 0.5) * in_zoom, o._BLACK)
    for end in (-o._X_LIMIT, o._X_LIMIT):
        col = o._CART_COL + (end - x) * o._ZOOM
        paint(o._coverage(o._box_distance(C - col, R - (o._CART_ROW - 6), 0.5, 6)) * in_zoom, o._BLACK)
    paint(o._coverage(o._box_distance(C - o._CART_COL, R - o._CART_ROW, o._CART_WIDTH * o._ZOOM / 2,
                                      o._CART_HEIGHT * o._ZOOM / 2)), o._BLACK)
    du, dv = C - o._CART_COL, R - (o._CART_ROW - o._HINGE_ABOVE_CART * o._ZOOM)
    along, across = du * np.sin(theta) - dv * np.cos(theta), du * np.cos(theta) + dv * np.sin(theta)
    half_length, half_width = o._POLE_LENGTH * o._ZOOM / 2, o._POLE_WIDTH * o._ZOOM / 2
    paint(o._coverage(o._box_distance(across, along - half_length, half_width, half_length + half_width)),
          o._POLE_BROWN)
    paint(o._coverage(np.hypot(du, dv) - half_width), o._HINGE_BLUE)
    in_strip = ~in_zoom
    image[:, in_strip] = o._STRIP_GREY
    paint(o._coverage(o._box_distance(C - 32, R - o._STRIP_ROW, o._X_LIMIT * o._STRIP_ZOOM, 0.5)) * in_strip,
          o._BLACK)
    for end in (-o._X_LIMIT, o._X_LIMIT):
        paint(o._coverage(o._box_distance(C - (32 + end * o._STRIP_ZOOM), R - (o._STRIP_ROW - 3), 0.5, 3.5))
              * in_strip, o._BLACK)
    cart_col = 32 + x * o._STRIP_ZOOM
    paint(o._coverage(o._box_distance(C - cart_col, R - (o._STRIP_ROW - 2), o._CART_WIDTH * o._STRIP_ZOOM / 2 + 0.5,
                                      2.5)) * in_strip, o._BLACK)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def test_cartpole_frame_equals_painting_every_shape_over_the_whole_frame():
    # The fast painter touches only each shape's window; the frames must not change by a single bit: the
    # shipped V and every recorded result were made with the plain version.
    rng = np.random.default_rng(0)
    states = np.concatenate([
        rng.normal(size=(300, 4)) * [0.8, 1.0, 0.1, 1.0],  # what episodes visit
        rng.uniform(-1, 1, size=(200, 4)) * [4.0, 3.0, 3.2, 3.0],  # off the track, the pole upside down
        [[2.4, 0, 0, 0], [-2.4, 0, 0, 0], [0, 0, np.pi / 2, 0], [0, 0, -np.pi, 0], [1.72, 0, 0.2095, 0],
         [60.0, 0, 0, 0], [-60.0, 0, 0, 0]]]).astype(np.float32)
    expected = _reference_cartpole_frame(states)
    assert np.array_equal(cartpole_frame(states), expected)  # one batch: windows are the batch's union
    for s, want in zip(states[::7], expected[::7], strict=True):
        assert np.array_equal(cartpole_frame(s), want)  # one frame: its own windows
    broken = _reference_cartpole_frame(states[:1] + np.float32([0, 0, 0.001, 0]))
    assert not np.array_equal(broken[0], expected[0])  # the comparison sees a 0.001-rad tilt


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
