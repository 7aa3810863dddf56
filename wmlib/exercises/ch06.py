"""Chapter 6 exercise: the paper's Doom controller has one output, split in thirds into three actions.

    y < -1/3: move left      -1/3 <= y <= 1/3: stay      y > 1/3: move right

The game's actions are numbered in ViZDoom's order (0 stay, 1 move right, 2 move left), so the map is
not the count of thresholds passed. The reference is the world's own action map (wmlib.tasks,
wmlib.controller.ACTION_MAPS), the one the real agent and the dream use.

Introduced in: course/06_doom.ipynb
"""

from __future__ import annotations

import torch

from wmlib.controller import action_map_spec
from wmlib.exercises._asserts import as_tensor
from wmlib.exercises._core import register
from wmlib.tasks import world_spec

WORLD = "doom-takecover"
STAY, RIGHT, LEFT = 0, 1, 2
"""ViZDoom's TakeCover actions (the order of its Discrete(3) action space)."""


def thirds_action(y: torch.Tensor) -> torch.Tensor:
    """C's tanh outputs y (B,) -> the game's actions (B,) int64: the world's own action map."""
    world = world_spec(WORLD, wanted="thirds action map")
    return action_map_spec(world.action_map).batched(torch.as_tensor(y).reshape(-1, 1))


# --- tests for ch06.thirds_action -------------------------------------------------------------


def _actions(fn, y: torch.Tensor, what: str) -> torch.Tensor:
    """The learner's actions for y, checked to be a (B,) tensor of whole numbers."""
    got = as_tensor(fn(y.clone()), what)
    if tuple(got.shape) != tuple(y.shape):
        raise AssertionError(f"{what} should have shape (B,) = {tuple(y.shape)}, one action per output, got "
                             f"{tuple(got.shape)}")
    if got.dtype.is_floating_point or got.dtype == torch.bool:
        raise AssertionError(f"{what} should be integer actions (int64, as the game and M's one-hot take them), "
                             f"got dtype {got.dtype}")
    return got.long()


def _expect(fn, y: list[float], expected: list[int], what: str) -> None:
    got = _actions(fn, torch.tensor(y), what)
    names = {STAY: "stay (0)", RIGHT: "move right (1)", LEFT: "move left (2)"}
    for yi, g, e in zip(y, got.tolist(), expected, strict=True):
        if g != e:
            raise AssertionError(f"{what}: for y = {yi:+.2f} you return {g}, expected {names[e]} "
                                 f"(ViZDoom's order: 0 stay, 1 move right, 2 move left)")


def _ta_hand_example(fn):
    _expect(fn, [-0.9, -0.5, -0.2, 0.0, 0.2, 0.5, 0.9], [LEFT, LEFT, STAY, STAY, STAY, RIGHT, RIGHT],
            "the actions of y = -0.9, -0.5, -0.2, 0, 0.2, 0.5, 0.9")


def _ta_order(fn):
    _expect(fn, [-1.0, 0.0, 1.0], [LEFT, STAY, RIGHT], "the actions of y = -1, 0, +1 (left, stay, right)")


def _ta_thirds(fn):
    _expect(fn, [-0.34, -0.32, 0.32, 0.34], [LEFT, STAY, STAY, RIGHT],
            "the actions just inside and outside the middle third (its edges are -1/3 and +1/3)")


def _ta_shape_and_dtype(fn):
    y = torch.linspace(-1, 1, 11)
    _actions(fn, y, "the actions of 11 outputs")


def _ta_random(fn):
    for seed in range(3):
        y = torch.rand(50, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        y = y[(y.abs() - 1 / 3).abs() > 1e-4]  # away from the edges, where float rounding decides
        got, expected = _actions(fn, y, f"the actions of a random batch (seed {seed})"), thirds_action(y)
        if not torch.equal(got, expected):
            i = int((got != expected).nonzero()[0, 0])
            raise AssertionError(f"the actions of a random batch (seed {seed}): for y = {y[i].item():+.3f} you "
                                 f"return {got[i].item()}, expected {expected[i].item()}")


def _ta_one(fn):
    _expect(fn, [0.7], [RIGHT], "the action of a batch of one output")


def _ta_input_unchanged(fn):
    y = torch.tensor([-0.8, 0.1, 0.6])
    before = y.clone()
    fn(y)
    if not torch.equal(y, before):
        raise AssertionError("your function changed its input y in place; compute a new tensor instead")


register(
    "ch06.thirds_action",
    "(y (B,) tanh outputs in [-1, 1]) -> (B,) int64 actions: 0 stay, 1 move right, 2 move left",
    thirds_action,
    [
        ("worked example by hand", _ta_hand_example),
        ("left, stay, right in ViZDoom's order", _ta_order),
        ("the middle third stays", _ta_thirds),
        ("one integer action per output", _ta_shape_and_dtype),
        ("random batches", _ta_random),
        ("a batch of one", _ta_one),
        ("input left unchanged", _ta_input_unchanged),
    ],
)
