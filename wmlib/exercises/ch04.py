"""Chapter 4 exercises: the controller's action, its parameter count, and centred ranks.

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from wmlib.cmaes import centered_ranks
from wmlib.controller import controller_action, controller_param_count
from wmlib.exercises._asserts import as_tensor, assert_close
from wmlib.exercises._core import register

# --- tests for ch04.controller_action ---------------------------------------------------------


def _ca_inputs(seed: int, batch: int = 5, z_dim: int = 4, h_dim: int = 6, action_dim: int = 3,
               scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(action_dim, z_dim + h_dim, generator=g) * scale
    b = torch.randn(action_dim, generator=g) * scale
    z = torch.randn(batch, z_dim, generator=g)
    h = torch.randn(batch, h_dim, generator=g)
    return W, b, z, h


def _ca_hand_example(fn):
    W = torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]])  # A=2, Z=1, H=2
    b = torch.tensor([0.5, 0.0])
    z = torch.tensor([[0.25]])
    h = torch.tensor([[1.0, -0.5]])
    # [z; h] = [0.25, 1, -0.5]; W [z; h] + b = [0.25 - 1 + 0.5, -1] = [-0.25, -1]
    expected = torch.tanh(torch.tensor([[-0.25, -1.0]]))
    assert_close(fn(W, b, z, h), expected, "the action for W=[[1,0,2],[0,-1,0]], b=[0.5,0], z=[0.25], "
                 "h=[1,-0.5] (expected tanh([-0.25, -1]))")


def _ca_shape(fn):
    W, b, z, h = _ca_inputs(1, batch=7, z_dim=3, h_dim=5, action_dim=2)
    got = as_tensor(fn(W, b, z, h), "the action")
    if tuple(got.shape) != (7, 2):
        raise AssertionError("for a batch of 7 and A=2 outputs the action should have shape (B, A) = "
                             f"(7, 2), got {tuple(got.shape)}")


def _ca_random(fn):
    for seed in range(2, 6):
        W, b, z, h = _ca_inputs(seed)
        assert_close(fn(W, b, z, h), controller_action(W, b, z, h),
                     f"the action on a random batch (seed {seed})")


def _ca_z_first(fn):
    # Z == H: putting h before z keeps every shape right but gives other numbers.
    W, b, z, h = _ca_inputs(7, z_dim=5, h_dim=5)
    assert_close(fn(W, b, z, h), controller_action(W, b, z, h),
                 "the action when Z == H (is the input [z; h], z first, as the columns of W expect?)")


def _ca_square(fn):
    # A == Z + H: x @ W instead of x @ W.T has the right shape but the wrong numbers.
    W, b, z, h = _ca_inputs(8, z_dim=2, h_dim=1, action_dim=3)
    assert_close(fn(W, b, z, h), controller_action(W, b, z, h),
                 "the action when W is square (A == Z + H): each output a is sum_j W[a, j] x[j], "
                 "i.e. x @ W.T")


def _ca_saturates(fn):
    W, b, z, h = _ca_inputs(9, scale=1e3)
    got = as_tensor(fn(W, b, z, h), "the action")
    assert_close(got, controller_action(W, b, z, h), "the action for huge weights (tanh saturates at +-1)")
    if got.abs().max() > 1:
        raise AssertionError("every output must lie in [-1, 1]: squash W [z; h] + b with tanh")


def _ca_inputs_unchanged(fn):
    W, b, z, h = _ca_inputs(10)
    copies = [t.clone() for t in (W, b, z, h)]
    fn(W, b, z, h)
    for name, before, after in zip("Wbzh", copies, (W, b, z, h), strict=True):
        if not torch.equal(before, after):
            raise AssertionError(f"your function changed its input {name} in place; "
                                 "compute a new tensor instead")


register(
    "ch04.controller_action",
    "(W (A, Z+H), b (A,), z (B, Z), h (B, H)) -> (B, A)",
    controller_action,
    [
        ("worked example by hand", _ca_hand_example),
        ("one action vector per batch row", _ca_shape),
        ("random batches", _ca_random),
        ("z comes before h", _ca_z_first),
        ("W multiplies [z; h] (x @ W.T)", _ca_square),
        ("saturates in [-1, 1]", _ca_saturates),
        ("inputs left unchanged", _ca_inputs_unchanged),
    ],
)


# --- tests for ch04.controller_param_count ----------------------------------------------------


def _count(fn, z, h, a):
    got = fn(z, h, a)
    if isinstance(got, bool) or not isinstance(got, int | np.integer):
        raise AssertionError(f"controller_param_count({z}, {h}, {a}) should return an int, "
                             f"got {type(got).__name__} {got!r}")
    return int(got)


def _pc_paper_car(fn):
    got = _count(fn, 32, 256, 3)
    if got != 867:
        raise AssertionError("the paper's car controller (z 32, h 256, 3 actions) has 867 parameters, "
                             f"you count {got}: (32 + 256) * 3 weights + 3 biases")


def _pc_v_only(fn):
    got = _count(fn, 32, 0, 3)
    if got != 99:
        raise AssertionError("the 'V only' controller (z 32, no h, 3 actions) has 32 * 3 + 3 = 99 "
                             f"parameters, you count {got}")


def _pc_various(fn):
    for z, h, a in [(16, 64, 1), (8, 8, 2), (1, 0, 1), (32, 256, 2), (5, 7, 4)]:
        got, want = _count(fn, z, h, a), controller_param_count(z, h, a)
        if got != want:
            raise AssertionError(f"controller_param_count({z}, {h}, {a}) is {got}, expected {want} "
                                 f"(({z} + {h}) * {a} weights + {a} biases: one bias per output)")


register(
    "ch04.controller_param_count",
    "(z_dim: int, h_dim: int, action_dim: int) -> int",
    controller_param_count,
    [
        ("the paper's car: 867", _pc_paper_car),
        ("the paper's 'V only' ablation: 99", _pc_v_only),
        ("other sizes", _pc_various),
    ],
)


# --- tests for ch04.centered_ranks ------------------------------------------------------------


def _ranks(fn, fitness, what):
    got = fn(np.array(fitness, dtype=np.float64))
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().numpy()
    if not isinstance(got, np.ndarray):
        raise AssertionError(f"{what} should be a NumPy array, got {type(got).__name__}")
    if got.shape != (len(fitness),):
        raise AssertionError(f"{what} should have shape (N,) = ({len(fitness)},), got {got.shape}")
    return got


def _cr_hand_example(fn):
    fitness = [3.0, 1.0, 2.0, 10.0, -5.0]  # ranks 3, 1, 2, 4, 0
    got = _ranks(fn, fitness, "centered_ranks([3, 1, 2, 10, -5])")
    expected = np.array([0.25, -0.25, 0.0, 0.5, -0.5])
    assert_close(torch.from_numpy(got), torch.from_numpy(expected),
                 "centered_ranks([3, 1, 2, 10, -5]) (the ranks are 3, 1, 2, 4, 0; "
                 "rank / (N - 1) - 0.5 gives [0.25, -0.25, 0, 0.5, -0.5])")


def _cr_best_is_half(fn):
    rng = np.random.default_rng(1)
    fitness = rng.normal(size=9) * 100
    got = _ranks(fn, fitness, "the shaped fitness")
    if not np.isclose(got[np.argmax(fitness)], 0.5):
        raise AssertionError("the best (largest) fitness should map to 0.5, got "
                             f"{got[np.argmax(fitness)]:.4g} (are the ranks reversed?)")
    if not np.isclose(got[np.argmin(fitness)], -0.5):
        raise AssertionError("the worst (smallest) fitness should map to -0.5, got "
                             f"{got[np.argmin(fitness)]:.4g}")


def _cr_centred(fn):
    got = _ranks(fn, np.arange(6.0)[::-1] * 7, "the shaped fitness")
    if not np.isclose(got.sum(), 0.0, atol=1e-9):
        raise AssertionError("centred ranks sum to 0 (they are symmetric around 0), yours sum to "
                             f"{got.sum():.4g}")


def _cr_random(fn):
    for seed in range(2, 6):
        rng = np.random.default_rng(seed)
        fitness = rng.normal(size=12) * 50 + 500
        got = _ranks(fn, fitness, "the shaped fitness")
        assert_close(torch.from_numpy(np.asarray(got, dtype=np.float64)),
                     torch.from_numpy(centered_ranks(fitness)),
                     f"centered_ranks on random returns (seed {seed}; only the order of the returns matters)")


def _cr_only_order(fn):
    rng = np.random.default_rng(7)
    fitness = rng.normal(size=8)
    a = _ranks(fn, fitness, "the shaped fitness")
    b = _ranks(fn, np.exp(fitness * 10) + 3, "the shaped fitness of a rescaled copy")
    if not np.allclose(a, b):
        raise AssertionError("a monotone rescaling of the returns (same order) should give exactly the same "
                             "shaped fitness: use the ranks, not the values")


def _cr_input_unchanged(fn):
    fitness = np.array([5.0, -1.0, 3.0, 0.5])
    copy = fitness.copy()
    fn(fitness)
    if not np.array_equal(fitness, copy):
        raise AssertionError("your function changed the fitness array in place; compute a new array instead")


register(
    "ch04.centered_ranks",
    "(fitness (N,) ndarray) -> (N,) ndarray",
    centered_ranks,
    [
        ("worked example by hand", _cr_hand_example),
        ("best -> 0.5, worst -> -0.5", _cr_best_is_half),
        ("centred on 0", _cr_centred),
        ("random returns", _cr_random),
        ("only the order matters", _cr_only_order),
        ("input left unchanged", _cr_input_unchanged),
    ],
)
