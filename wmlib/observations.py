"""What the agent sees: the 64x64x3 frames of the pixel worlds and the wrappers that make them.

    cartpole_frame(state)    the course's CartPole frame, drawn from the 4-number state
    carracing_frame(obs)     CarRacing-v3's 96x96 picture cropped and resized as in the paper
    doom_frame(obs)          ViZDoom's whole screen resized to 64x64, as in the paper
    CartPolePixels, CarRacingPixels, DoomPixels   Gymnasium observation wrappers built on them

`wmlib.tasks` puts each world's frame transform and wrapper in its spec; `wmlib.envs.make_env`
builds the env by name.

Why the pixel CartPole is drawn this way. Gymnasium's picture is 600x400 and shows the whole 4.8 m
track, so shrunk to 64 pixels across it gives about 13 pixels per metre: at 2 degrees the top of the
pole has moved about half a pixel, and small tilts (the ones a balancing agent lives in) all but
vanish. The course's first version shrank it with a minimum filter (to keep the thin pole dark): its
frames at 0 and 2 degrees were identical, and no controller trained on them got past about 250 steps.
So `cartpole_frame` draws the same objects (track, cart, pole, hinge; Gymnasium's proportions) from
the state, anti-aliased, in two parts of one frame:

    rows  0..47  a close-up that follows the cart, 36 pixels per metre: the pole is 36 px tall and
                 1 degree of tilt moves its top by 0.6 px, 12 degrees (where an episode ends) by 7.5
    rows 48..63  a strip with the whole track at 12.5 pixels per metre: where the cart is, and the
                 two ends it must not cross (2.4 m either side)

Anti-aliasing keeps sub-pixel movement as shades of grey, so the picture changes smoothly with the
angle. Drawing 64x64 directly is also about 4x faster than Gymnasium's 600x400 render.

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from PIL import Image

FRAME_SHAPE = (64, 64, 3)
"""(H, W, C) of every pixel observation."""

# CartPole-v1's objects in metres, with Gymnasium's drawing proportions.
_POLE_LENGTH = 1.0  # drawn length: twice the half-length 0.5 that the physics uses
_POLE_WIDTH = 0.08
_CART_WIDTH, _CART_HEIGHT = 0.4, 0.24
_HINGE_ABOVE_CART = 0.06  # the pole's hinge sits this far above the cart's centre
_X_LIMIT = 2.4  # an episode ends when the cart's centre passes +-2.4 m

_ZOOM = 36.0  # close-up: pixels per metre
_CART_COL, _CART_ROW = 32.0, 42.5  # where the cart's centre sits in the close-up
_STRIP_TOP = 48  # rows 48..63: the whole track
_STRIP_ZOOM = 12.5  # strip: pixels per metre (4.8 m of track -> 60 px)
_STRIP_ROW = 58.5

_WHITE = np.array([255, 255, 255], np.float32)
_STRIP_GREY = np.array([235, 235, 235], np.float32)
_BLACK = np.array([0, 0, 0], np.float32)
_POLE_BROWN = np.array([170, 100, 40], np.float32)
_HINGE_BLUE = np.array([110, 110, 200], np.float32)

_ROWS, _COLS = (np.mgrid[0:64, 0:64].astype(np.float32) + 0.5)  # pixel centres, (64, 64) each


def _coverage(signed_distance: np.ndarray) -> np.ndarray:
    """How much of a pixel a shape covers, from the signed distance (pixels, < 0 inside) of its centre."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def _box_distance(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    """Signed distance from points (u, v) to the box |u| <= half_u, |v| <= half_v."""
    du, dv = np.abs(u) - half_u, np.abs(v) - half_v
    return np.hypot(np.maximum(du, 0), np.maximum(dv, 0)) + np.minimum(np.maximum(du, dv), 0)


def _window(rows: tuple[float, float], cols: tuple[float, float]) -> tuple[slice, slice]:
    """The pixels a shape can touch: rows and cols (low, high) in pixel coordinates, widened by the
    one pixel of anti-aliasing and clipped to the frame. Outside it a shape's coverage is exactly 0."""
    r0, r1 = max(int(np.floor(rows[0])) - 1, 0), min(int(np.ceil(rows[1])) + 1, 64)
    c0, c1 = max(int(np.floor(cols[0])) - 1, 0), min(int(np.ceil(cols[1])) + 1, 64)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def cartpole_frame(state: np.ndarray) -> np.ndarray:
    """Draw the course's 64x64x3 CartPole frame from the state (see the module docstring).

    state: (4,) or (B, 4) floats (x, x_dot, theta, theta_dot), as CartPole-v1 keeps them; only x
    and theta are drawn. Returns (64, 64, 3) or (B, 64, 64, 3) uint8.

    Each shape is painted only inside the window it can touch (for a batch, the union over the
    batch): outside it its coverage is 0 and painting would leave the pixels as they are, so the
    frame is the same, to the bit, as painting every shape over the whole frame (tests/test_envs.py
    keeps that slow version and compares), in about a third of the time.
    """
    state = np.asarray(state, np.float32)
    if state.shape[-1:] != (4,) or state.ndim not in (1, 2):
        raise ValueError(f"expected CartPole states of shape (4,) or (B, 4), got {state.shape}")
    if not np.isfinite(state).all():
        raise ValueError("CartPole state contains NaN or inf")
    batch = state.reshape(-1, 4)
    x, theta = batch[:, 0, None, None], batch[:, 2, None, None]  # (B, 1, 1)
    image = np.broadcast_to(_WHITE, (len(batch), 64, 64, 3)).copy()

    def paint(window, cover_fn, colour):
        """Blend colour in where cover_fn(rows, cols) ((64, 64)-like grids of pixel centres -> coverage
        in [0, 1], per frame when it broadcasts to (B, ...)) says, inside window = (row slice, col slice)."""
        rs, cs = window
        if rs.start >= rs.stop or cs.start >= cs.stop:
            return
        cover = cover_fn(_ROWS[rs, cs], _COLS[rs, cs])
        part = image[:, rs, cs]
        part += cover[..., None] * (colour - part)

    hinge_row = _CART_ROW - _HINGE_ABOVE_CART * _ZOOM
    half_length, half_width = _POLE_LENGTH * _ZOOM / 2, _POLE_WIDTH * _ZOOM / 2
    # the track
    paint(_window((_CART_ROW - 1, _CART_ROW + 1), (0, 64)),
          lambda R, C: _coverage(np.abs(R - _CART_ROW) - 0.5) * (R < _STRIP_TOP), _BLACK)
    for end in (-_X_LIMIT, _X_LIMIT):  # an end of the track, when it comes into view
        col = _CART_COL + (end - x) * _ZOOM  # (B, 1, 1)
        paint(_window((_CART_ROW - 12.5, _CART_ROW + 0.5), (float(col.min()) - 1, float(col.max()) + 1)),
              lambda R, C, col=col: _coverage(_box_distance(C - col, R - (_CART_ROW - 6), 0.5, 6)) * (R < _STRIP_TOP),
              _BLACK)
    # the cart
    half_w, half_h = _CART_WIDTH * _ZOOM / 2, _CART_HEIGHT * _ZOOM / 2
    paint(_window((_CART_ROW - half_h - 1, _CART_ROW + half_h + 1), (_CART_COL - half_w - 1, _CART_COL + half_w + 1)),
          lambda R, C: _coverage(_box_distance(C - _CART_COL, R - _CART_ROW, half_w, half_h)), _BLACK)
    # the pole: from half_width below the hinge to half_width beyond its top, tilted by theta
    reach = 2 * half_length + half_width
    sin, cos = np.sin(theta), np.cos(theta)
    ends_c = np.concatenate([_CART_COL - sin * half_width, _CART_COL + sin * reach])
    ends_r = np.concatenate([hinge_row + cos * half_width, hinge_row - cos * reach])
    pad = half_width + 1

    def pole(R, C):
        du, dv = C - _CART_COL, R - hinge_row  # from the hinge
        along = du * sin - dv * cos  # up the pole (image rows grow downwards)
        across = du * cos + dv * sin
        return _coverage(_box_distance(across, along - half_length, half_width, half_length + half_width))

    paint(_window((float(ends_r.min()) - pad, float(ends_r.max()) + pad),
                  (float(ends_c.min()) - pad, float(ends_c.max()) + pad)), pole, _POLE_BROWN)
    paint(_window((hinge_row - half_width - 1, hinge_row + half_width + 1),
                  (_CART_COL - half_width - 1, _CART_COL + half_width + 1)),
          lambda R, C: _coverage(np.hypot(C - _CART_COL, R - hinge_row) - half_width), _HINGE_BLUE)

    # the strip with the whole track
    image[:, _STRIP_TOP:] = _STRIP_GREY

    def in_strip(R):
        return R >= _STRIP_TOP

    paint(_window((_STRIP_ROW - 1, _STRIP_ROW + 1), (32 - _X_LIMIT * _STRIP_ZOOM - 1, 32 + _X_LIMIT * _STRIP_ZOOM + 1)),
          lambda R, C: _coverage(_box_distance(C - 32, R - _STRIP_ROW, _X_LIMIT * _STRIP_ZOOM, 0.5)) * in_strip(R),
          _BLACK)
    for end in (-_X_LIMIT, _X_LIMIT):
        end_col = 32 + end * _STRIP_ZOOM
        paint(_window((_STRIP_ROW - 7, _STRIP_ROW + 1), (end_col - 1.5, end_col + 1.5)),
              lambda R, C, end_col=end_col: _coverage(_box_distance(C - end_col, R - (_STRIP_ROW - 3), 0.5, 3.5))
              * in_strip(R), _BLACK)
    cart_col = 32 + x * _STRIP_ZOOM  # (B, 1, 1)
    half_strip = _CART_WIDTH * _STRIP_ZOOM / 2 + 0.5
    paint(_window((_STRIP_ROW - 5, _STRIP_ROW + 1), (float(cart_col.min()) - half_strip - 1,
                                                  float(cart_col.max()) + half_strip + 1)),
          lambda R, C: _coverage(_box_distance(C - cart_col, R - (_STRIP_ROW - 2), half_strip, 2.5)) * in_strip(R),
          _BLACK)
    frames = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return frames[0] if state.ndim == 1 else frames


def carracing_frame(obs: np.ndarray) -> np.ndarray:
    """The paper's CarRacing preprocessing: drop the 12-row dashboard, resize 84x96 to 64x64.

    obs: (96, 96, 3) uint8 from CarRacing-v3. Returns (64, 64, 3) uint8.
    """
    if obs.shape != (96, 96, 3) or obs.dtype != np.uint8:
        raise ValueError(f"expected CarRacing's (96, 96, 3) uint8 observation, got {obs.shape} {obs.dtype}")
    return np.asarray(Image.fromarray(obs[:84]).resize((64, 64), Image.Resampling.BILINEAR))


def doom_frame(obs: dict) -> np.ndarray:
    """The whole ViZDoom screen resized to 64x64x3, as the paper's Doom agent saw it.

    obs: ViZDoom's Gymnasium observation, a dict whose "screen" is (H, W, 3) uint8 (any resolution;
    wmlib.tasks asks for 160x120). Returns (64, 64, 3) uint8.

    The paper cut the bottom 80 of 480 rows (Doom's status bar) before resizing; TakeCover's config
    here turns the status bar off (render_hud = false), so the whole screen is the same game view.
    The paper's code also stored the colours inverted (255 - x), a convention V does not care about;
    we keep the colours as the game draws them, so the frames look like Doom to a learner.
    """
    screen = obs.get("screen") if isinstance(obs, dict) else None
    if screen is None or screen.ndim != 3 or screen.shape[2] != 3 or screen.dtype != np.uint8:
        got = f"{screen.shape} {screen.dtype}" if screen is not None else repr(type(obs))
        raise ValueError(f"expected ViZDoom's observation dict with an RGB 'screen' (H, W, 3) uint8, got {got}")
    return np.asarray(Image.fromarray(screen).resize((64, 64), Image.Resampling.BILINEAR))


class CartPolePixels(gym.ObservationWrapper):
    """CartPole-v1 that observes 64x64x3 frames (drawn by `cartpole_frame`) instead of its 4-number state.

    The true state (x, x_dot, theta, theta_dot) is still given in `info["state"]`, for teaching
    and for checking what a model learned; an agent that plays from pixels must not read it.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)

    def observation(self, observation):
        return cartpole_frame(observation)

    @property
    def render_mode(self):
        return "rgb_array"

    def render(self):
        """The current 64x64x3 frame (what the agent sees)."""
        return cartpole_frame(np.asarray(self.env.unwrapped.state, np.float32))

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


class DoomPixels(gym.ObservationWrapper):
    """ViZDoom's TakeCover with 64x64x3 observations (`doom_frame`); the player's health goes to info["health"].

    Action (Discrete(3), ViZDoom's order): 0 stay, 1 move right, 2 move left.
    Observation: the whole screen, 64x64x3 uint8 (a black frame after the last step, as ViZDoom gives).
    Reward: +1 for every step alive (the scenario's living reward).
    Episode end: terminated when the player dies; truncated at the time limit (2,100 steps in wmlib.tasks).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)

    def observation(self, observation):
        return doom_frame(observation)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), self._with_health(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observation(obs), reward, terminated, truncated, self._with_health(obs, info)

    @staticmethod
    def _with_health(obs: dict, info: dict) -> dict:
        return dict(info, health=float(obs["gamevariables"][0]))
