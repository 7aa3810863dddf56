"""Chapter 4 exercises: the controller's action, its parameter count, centred ranks, and the agent's
decide step (frame -> V's mu -> [z, h] -> C -> env action, then M remembers).

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

import numpy as np
import torch

from wmlib.cmaes import centered_ranks
from wmlib.controller import controller_action, controller_param_count, map_action
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


# --- ch04.agent_decide ------------------------------------------------------------------------


@torch.no_grad()
def agent_decide(vae, mdnrnn, controller, frame, state):
    """One real step of the agent: V sees, C decides, M remembers (wmlib.agent.WorldModelAgent.act).

    frame (64, 64, 3) uint8, state LSTMState(h, c) (1, H) each -> (env action, M's next state).
    """
    from wmlib.dream_training import controller_to_m_actions
    from wmlib.rollouts import frames_to_tensor

    mu, _ = vae.encode(frames_to_tensor(frame))  # (1, Z): the agent hands C V's mean, not a sample
    y = controller(mu, state.h)  # (1, A_C): C reads the present (z) and the memory before this frame (h)
    action = map_action(y[0].numpy(), controller.config.action_map)  # what env.step takes
    a = controller_to_m_actions(y, controller.config, mdnrnn.config.action_dim)  # (1, A_M) as M reads it
    return action, mdnrnn.step(mu, a, state).state


_PARTS: dict = {}


def _parts(world: str):
    """Shipped V and M of `world` ("cartpole" or "carracing"), loaded once."""
    if world not in _PARTS:
        from wmlib.mdnrnn import load_mdnrnn
        from wmlib.vae import load_vae

        _PARTS[world] = (load_vae(world), load_mdnrnn(world))
    return _PARTS[world]


def _random_controller(world: str, seed: int, *, scale: float = 0.3, z_weight: float = 1.0, h_weight: float = 1.0):
    from wmlib.controller import LinearController, controller_config_for
    from wmlib.tasks import shipped_checkpoint

    vae, m = _parts(world)
    env = shipped_checkpoint(f"{world}_vae").world  # the world the shipped V was made for
    ctrl = LinearController(controller_config_for(env, vae.config.z_dim, m.config.hidden_size))
    g = torch.Generator().manual_seed(seed)
    Z = vae.config.z_dim
    with torch.no_grad():
        ctrl.weight.copy_(torch.randn(ctrl.weight.shape, generator=g) * scale)
        ctrl.weight[:, :Z] *= z_weight
        ctrl.weight[:, Z:] *= h_weight
        ctrl.bias.copy_(torch.randn(ctrl.bias.shape, generator=g) * scale)
    return ctrl.eval()


def _frames(seed: int, n: int) -> list[np.ndarray]:
    """n real pixel-CartPole frames of one random episode (fewer if it ends)."""
    from wmlib.envs import make_env

    env = make_env("cartpole-pixels")
    frame, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    frames = [frame]
    while len(frames) < n:
        frame, _, terminated, truncated, _ = env.step(env.action_space.sample())
        frames.append(frame)
        if terminated or truncated:
            break
    env.close()
    return frames


def _warm_state(m, frames, vae, seed: int):
    """M's memory after some real frames and random actions (so that h is not zero)."""
    from wmlib.rollouts import frames_to_tensor

    g = torch.Generator().manual_seed(seed)
    state = m.initial_state(1, "cpu")
    with torch.no_grad():
        for frame in frames:
            mu, _ = vae.encode(frames_to_tensor(frame))
            a = torch.nn.functional.one_hot(torch.randint(0, 2, (1,), generator=g), 2).float()
            state = m.step(mu, a, state).state
    return state


def _decide(fn, vae, m, ctrl, frame, state, what: str):
    with torch.no_grad():
        got = fn(vae, m, ctrl, frame, state)
    if not isinstance(got, tuple) or len(got) != 2:
        raise AssertionError(f"{what}: return a pair (action, next_state), got {type(got).__name__}")
    action, nxt = got
    if not (isinstance(nxt, tuple) and len(nxt) == 2 and all(isinstance(x, torch.Tensor) for x in nxt)):
        raise AssertionError(f"{what}: next_state should be M's LSTMState (h, c), as mdnrnn.step(...).state "
                             f"gives it; got {type(nxt).__name__}")
    return action, nxt


def _same_action(got, want, what: str) -> None:
    if isinstance(want, int):
        if isinstance(got, bool) or not isinstance(got, int | np.integer):
            raise AssertionError(f"{what}: CartPole's env.step takes an int (0 = push left, 1 = push right), got "
                                 f"{type(got).__name__} {got!r}: turn C's output into an action with its action map")
        if int(got) != want:
            raise AssertionError(f"{what}: your action is {int(got)}, expected {want}")
        return
    got_arr = np.asarray(got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    if got_arr.shape != np.shape(want):
        raise AssertionError(f"{what}: the car's action is (steer, gas, brake), shape (3,), got shape {got_arr.shape}")
    assert_close(torch.from_numpy(got_arr), torch.from_numpy(np.asarray(want, np.float64)),
                 f"{what}: the env action (steer, gas, brake); gas lies in [0, 1] and brake in [0, 1]")


def _same_state(got, want, what: str) -> None:
    assert_close(got[0], want[0], f"{what}: M's h after this step")
    assert_close(got[1], want[1], f"{what}: M's c after this step")


def _ad_first_step(fn):
    vae, m = _parts("cartpole")
    ctrl = _random_controller("cartpole", 1)
    frame = _frames(1, 1)[0]
    state = m.initial_state(1, "cpu")
    action, nxt = _decide(fn, vae, m, ctrl, frame, state, "the first step of an episode (empty memory)")
    want_action, want_state = agent_decide(vae, m, ctrl, frame, state)
    what = "the first step of an episode (z is V's mean mu of the frame scaled to [0, 1]; M then takes in (z, a))"
    _same_action(action, want_action, what)
    _same_state(nxt, want_state, what)


def _ad_reads_old_h(fn):
    # C on h alone: the action depends only on the memory *before* this frame.
    vae, m = _parts("cartpole")
    frames = _frames(2, 8)
    state = _warm_state(m, frames[:-1], vae, 2)
    for seed in range(3, 9):
        ctrl = _random_controller("cartpole", seed, z_weight=0.0, scale=3.0)
        action, _ = _decide(fn, vae, m, ctrl, frames[-1], state, "a step with a warm memory")
        want, _ = agent_decide(vae, m, ctrl, frames[-1], state)
        _same_action(action, want, f"a controller that reads h only (seed {seed}); C reads the memory M had "
                     "before this frame, state.h (is [z; h] in the right order?)")


def _ad_reads_mu(fn):
    # C on z alone, weights large: a sampled z flips the decision, V's mean does not.
    vae, m = _parts("cartpole")
    frames = _frames(4, 6)
    state = m.initial_state(1, "cpu")
    for seed in range(10, 16):
        ctrl = _random_controller("cartpole", seed, h_weight=0.0)
        for frame in frames:
            action, _ = _decide(fn, vae, m, ctrl, frame, state, "a step")
            want, _ = agent_decide(vae, m, ctrl, frame, state)
            _same_action(action, want, f"a controller that reads z only (seed {seed}); the agent hands C V's "
                         "mean mu for the frame, not a sample, and the frame is scaled to [0, 1] as V was trained")


def _ad_remembers(fn):
    # A whole real episode, the state fed back each step, against the library's agent.
    from wmlib.agent import WorldModelAgent
    from wmlib.envs import make_env

    vae, m = _parts("cartpole")
    ctrl = _random_controller("cartpole", 20, scale=1.0)
    env = make_env("cartpole-pixels")
    agent = WorldModelAgent(vae, m, ctrl, env.action_space)
    frame, _ = env.reset(seed=20)
    state = m.initial_state(1, "cpu")
    for t in range(40):
        action, state = _decide(fn, vae, m, ctrl, frame, state, f"step {t} of a real episode")
        want = agent.act(frame)
        _same_action(action, want, f"step {t} of a real episode, your next_state fed back each step")
        _same_state(state, agent.state, f"step {t} of a real episode (M takes in the z and the action of every "
                    "step, and its memory carries over: next_state = mdnrnn.step(z, a, state).state)")
        frame, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    env.close()


def _ad_car(fn):
    # The car: three outputs through the action map; M reads the action taken, not C's raw y.
    vae, m = _parts("carracing")
    g = torch.Generator().manual_seed(30)
    frame = (torch.rand(64, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
    for seed in range(30, 33):
        ctrl = _random_controller("carracing", seed, scale=0.2)
        state = m.initial_state(1, "cpu")
        state = m.step(torch.randn(1, 32, generator=g), torch.rand(1, 3, generator=g), state).state
        action, nxt = _decide(fn, vae, m, ctrl, frame, state, "a step of the car")
        want_action, want_state = agent_decide(vae, m, ctrl, frame, state)
        _same_action(action, want_action, f"the car (seed {seed}; its action map: steer = y0, gas = (y1 + 1) / 2, "
                     "brake = clip(y2, 0, 1))")
        _same_state(nxt, want_state, f"the car (seed {seed}; M reads the action the car took, "
                    "(steer, gas, brake), not C's raw output y)")


def _ad_inputs_unchanged(fn):
    vae, m = _parts("cartpole")
    frames = _frames(5, 4)
    state = _warm_state(m, frames[:-1], vae, 5)
    frame = frames[-1].copy()
    h, c = state.h.clone(), state.c.clone()
    _decide(fn, vae, m, _random_controller("cartpole", 5), frame, state, "a step")
    if not (torch.equal(h, state.h) and torch.equal(c, state.c)):
        raise AssertionError("your function changed the memory it was given in place; return a new state instead")
    if not np.array_equal(frame, frames[-1]):
        raise AssertionError("your function changed the frame in place")


register(
    "ch04.agent_decide",
    "(vae, mdnrnn, controller, frame (64, 64, 3) uint8, state LSTMState (1, H)) -> (action, next_state)",
    agent_decide,
    [
        ("the first step (empty memory)", _ad_first_step),
        ("C reads the memory before this frame", _ad_reads_old_h),
        ("C reads V's mean of the frame", _ad_reads_mu),
        ("a real episode: the memory carries over", _ad_remembers),
        ("the car: action map and M's action", _ad_car),
        ("inputs left unchanged", _ad_inputs_unchanged),
    ],
)
