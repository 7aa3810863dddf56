"""CarRacing-v3, the same pixels drawn in less time.

Gymnasium's CarRacing draws each frame on a 1000x800 canvas and, for each of its ~700 grass and road
polygons, rotates the corners and tests them against the screen in Python, one polygon at a time.
On a laptop CPU that is most of a real step (about 10 of 13 ms here), and the car's CMA-ES plays
millions of steps. `FastCarRacing` keeps the env as it is and replaces only that loop: the corners
of all polygons of a track are kept in one array, rotated, scaled, moved and culled with numpy, and
the visible ones are drawn by the same pygame calls with the same coordinates. The frames are the
same pixels (tests/test_envs.py compares them with the stock env's, step by step).

Used by: wmlib.tasks (the "carracing" world)
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium.envs.box2d import car_racing as _cr
from pygame import gfxdraw


def _grass_polygons() -> np.ndarray:
    """The stock env's grass patches, in its drawing order: (400, 4, 2) world coordinates."""
    d = _cr.GRASS_DIM
    return np.array([[(d * x + d, d * y), (d * x, d * y), (d * x, d * y + d), (d * x + d, d * y + d)]
                     for x in range(-20, 20, 2) for y in range(-20, 20, 2)], dtype=np.float64)


class FastCarRacing(_cr.CarRacing):
    """CarRacing-v3 whose road and grass are culled in numpy (same frames, fewer Python calls)."""

    def reset(self, *args, **kwargs):
        self._polygons = None  # a new track is built by reset, before its first frame is drawn
        return super().reset(*args, **kwargs)

    def _track_polygons(self) -> tuple[np.ndarray, list]:
        """Grass then road, as the stock env draws them: corners (N, 4, 2) and N colours."""
        if getattr(self, "_polygons", None) is None:
            road = np.array([[(p[0], p[1]) for p in poly] for poly, _ in self.road_poly], dtype=np.float64)
            corners = np.concatenate([_grass_polygons(), road.reshape(-1, 4, 2)])
            # the road's colours are kept by reference: a tile changes colour when the car first touches it
            colours = ([self.grass_color] * 400) + [colour for _, colour in self.road_poly]
            self._polygons = (corners, colours)
        return self._polygons

    def _render_road(self, zoom, translation, angle):
        # pygame's Vector2.rotate_rad first brings the angle into [0, 2 pi), and rotates by a multiple
        # of 90 degrees exactly; the same arithmetic here gives the same float corners. Near such an
        # angle (rare) the stock loop draws the frame.
        angle_in_turn = math.fmod(angle, 2 * math.pi)
        angle_in_turn += 2 * math.pi if angle_in_turn < 0 else 0.0
        if math.fmod(angle_in_turn + 1e-5, math.pi / 2) < 2e-5:
            return super()._render_road(zoom, translation, angle)
        b = _cr.PLAYFIELD
        self._draw_colored_polygon(self.surf, [(b, b), (b, -b), (-b, -b), (-b, b)], self.bg_color, zoom,
                                   translation, angle, clip=False)
        corners, colours = self._track_polygons()
        cos, sin = math.cos(angle_in_turn), math.sin(angle_in_turn)
        x, y = corners[..., 0], corners[..., 1]
        screen_x = (cos * x - sin * y) * zoom + translation[0]
        screen_y = (sin * x + cos * y) * zoom + translation[1]
        margin = _cr.MAX_SHAPE_DIM
        inside = ((screen_x >= -margin) & (screen_x <= _cr.WINDOW_W + margin)
                  & (screen_y >= -margin) & (screen_y <= _cr.WINDOW_H + margin))
        for i in np.flatnonzero(inside.any(axis=1)):
            points = list(zip(screen_x[i].tolist(), screen_y[i].tolist(), strict=True))
            colour = self.grass_color if i < 400 else [int(c) for c in colours[i]]
            gfxdraw.aapolygon(self.surf, points, colour)
            gfxdraw.filled_polygon(self.surf, points, colour)
