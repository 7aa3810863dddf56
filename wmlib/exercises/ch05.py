"""Chapter 5 exercises: one step of a batch of dreams with the alive mask, and the returns of a
recorded batch whose dreams ended at different steps.

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import torch

from wmlib.dream import NoiseStream, dream_step, masked_returns
from wmlib.exercises._asserts import as_tensor, assert_close
from wmlib.exercises._core import register
from wmlib.mdnrnn import LSTMState

# --- tests for ch05.masked_returns ------------------------------------------------------------


def _mr_inputs(seed: int, batch: int = 6, steps: int = 9, p_done: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(batch, steps, generator=g)
    dones = torch.rand(batch, steps, generator=g) < p_done
    dones[0] = False  # a row that never ends
    dones[1, :] = False
    dones[1, 2] = dones[1, 5] = True  # a row with two dones: only the first counts
    return rewards, dones


def _mr_hand_example(fn):
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0],
                            [1.0, 2.0, 3.0, 4.0],
                            [1.0, 2.0, 3.0, 4.0]])
    dones = torch.tensor([[False, True, False, False],   # ends at step 1: 1 + 2
                          [False, False, False, False],  # never ends: all four
                          [True, False, True, False]])   # ends at step 0: only the first reward
    assert_close(fn(rewards, dones), torch.tensor([3.0, 10.0, 1.0]),
                 "the returns of rewards [1, 2, 3, 4] with a done at step 1, no done, and dones at steps 0 and 2")


def _mr_shape(fn):
    rewards, dones = _mr_inputs(1, batch=5, steps=7)
    got = as_tensor(fn(rewards, dones), "the returns")
    if tuple(got.shape) != (5,):
        raise AssertionError(f"for 5 dreams of 7 steps the returns should have shape (B,) = (5,), got "
                             f"{tuple(got.shape)}: sum over the time axis (dim=1), one return per dream")


def _mr_done_step_counts(fn):
    rewards = torch.tensor([[0.0, 0.0, 5.0, 7.0]])
    dones = torch.tensor([[False, False, True, False]])
    assert_close(fn(rewards, dones), torch.tensor([5.0]),
                 "the return when the done comes at step 2, whose reward is 5 (the reward of the step "
                 "that ends the episode counts; what comes after it does not)")


def _mr_no_done(fn):
    rewards, _ = _mr_inputs(2)
    dones = torch.zeros_like(rewards, dtype=torch.bool)
    assert_close(fn(rewards, dones), rewards.sum(1),
                 "the returns when no dream has ended yet (every reward counts)")


def _mr_first_done_only(fn):
    rewards = torch.ones(1, 6)
    dones = torch.tensor([[False, True, False, True, False, False]])
    assert_close(fn(rewards, dones), torch.tensor([2.0]),
                 "the return with dones at steps 1 and 3 (the episode ended at the first one)")


def _mr_random(fn):
    for seed in range(3, 8):
        rewards, dones = _mr_inputs(seed)
        assert_close(fn(rewards, dones), masked_returns(rewards, dones), f"the returns on a random batch (seed {seed})")


def _mr_float_dones(fn):
    rewards, dones = _mr_inputs(9)
    assert_close(fn(rewards, dones.float()), masked_returns(rewards, dones),
                 "the returns when dones is a float tensor of 0.0/1.0")


def _mr_square(fn):
    # B == T: summing over the wrong axis keeps the right shape but gives other numbers.
    rewards, dones = _mr_inputs(10, batch=6, steps=6)
    assert_close(fn(rewards, dones), masked_returns(rewards, dones),
                 "the returns when B == T (is the sum over time, dim=1?)")


def _mr_inputs_unchanged(fn):
    rewards, dones = _mr_inputs(11)
    copies = rewards.clone(), dones.clone()
    fn(rewards, dones)
    for name, before, after in zip(("rewards", "dones"), copies, (rewards, dones), strict=True):
        if not torch.equal(before, after):
            raise AssertionError(f"your function changed its input {name} in place; compute a new tensor instead")


register(
    "ch05.masked_returns",
    "(rewards (B, T), dones (B, T)) -> (B,)",
    masked_returns,
    [
        ("worked example by hand", _mr_hand_example),
        ("one return per dream", _mr_shape),
        ("the done step's reward counts", _mr_done_step_counts),
        ("rows without a done count whole", _mr_no_done),
        ("only the first done ends the episode", _mr_first_done_only),
        ("random batches", _mr_random),
        ("dones as floats", _mr_float_dones),
        ("sum over time, not over the batch", _mr_square),
        ("inputs left unchanged", _mr_inputs_unchanged),
    ],
)


# --- tests for ch05.dream_step_alive ----------------------------------------------------------


@torch.no_grad()
def dream_step_alive(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    """One step of B dreams that keep their places in the batch after they end (CartPole: +1 per step alive).

    z (B, Z), state LSTMState (B, H) each, actions (B, A), alive (B,) bool, returns (B,),
    noise = (u (B, Z), eps (B, Z), u_done (B,)) -> (z, state, alive, returns) after the step.
    """
    u, eps, u_done = noise
    out = dream_step(mdnrnn, z, actions, state, temperature, u, eps, u_done)  # M imagines every row
    keep = alive.unsqueeze(1)  # (B, 1): rows that were alive take the step; ended rows stay as they were
    z_next = torch.where(keep, out.z, z)
    state_next = LSTMState(torch.where(keep, out.state.h, state.h), torch.where(keep, out.state.c, state.c))
    returns_next = returns + alive.to(returns.dtype)  # the step on which a dream ends still counts
    return z_next, state_next, alive & ~out.terminated, returns_next


_M: dict = {}


def _shipped_m():
    if "m" not in _M:
        from wmlib.mdnrnn import load_mdnrnn

        _M["m"] = load_mdnrnn("cartpole")
    return _M["m"]


def _ds_inputs(seed: int, batch: int = 8, warm: int = 3):
    """A batch in mid-dream: z, a warm memory, one-hot actions, an alive mask, returns and noise."""
    m = _shipped_m()
    Z = m.config.z_dim
    g = torch.Generator().manual_seed(seed)
    state = m.initial_state(batch, "cpu")
    z = torch.randn(batch, Z, generator=g)
    for _ in range(warm):
        a = torch.nn.functional.one_hot(torch.randint(0, 2, (batch,), generator=g), 2).float()
        state = m.step(z, a, state).state
        z = torch.randn(batch, Z, generator=g)
    actions = torch.nn.functional.one_hot(torch.randint(0, 2, (batch,), generator=g), 2).float()
    alive = torch.rand(batch, generator=g) < 0.6
    alive[0], alive[1] = True, False
    returns = torch.randint(1, 40, (batch,), generator=g).float()
    noise = NoiseStream(range(seed * 1000, seed * 1000 + batch), Z).next()
    return m, z, state, actions, alive, returns, noise


def _ds_call(fn, m, z, state, actions, alive, returns, temperature, noise, what: str):
    with torch.no_grad():
        got = fn(m, z, state, actions, alive, returns, temperature, noise)
    if not isinstance(got, tuple) or len(got) != 4:
        raise AssertionError(f"{what}: return the four things the next step needs, (z, state, alive, returns); got "
                             f"{type(got).__name__}" + (f" of {len(got)}" if isinstance(got, tuple) else ""))
    z_n, state_n, alive_n, returns_n = got
    B = z.shape[0]
    z_n = as_tensor(z_n, f"{what}: z")
    if tuple(z_n.shape) != tuple(z.shape):
        raise AssertionError(f"{what}: z should keep its shape (B, Z) = {tuple(z.shape)}, got {tuple(z_n.shape)}")
    if not (isinstance(state_n, tuple) and len(state_n) == 2 and all(isinstance(x, torch.Tensor) for x in state_n)):
        raise AssertionError(f"{what}: state should be M's LSTMState (h, c), got {type(state_n).__name__}")
    alive_n = as_tensor(alive_n, f"{what}: alive")
    if tuple(alive_n.shape) != (B,) or alive_n.dtype != torch.bool:
        raise AssertionError(f"{what}: alive should be a bool tensor of shape (B,) = ({B},), got "
                             f"{alive_n.dtype} {tuple(alive_n.shape)}")
    returns_n = as_tensor(returns_n, f"{what}: returns")
    if tuple(returns_n.shape) != (B,):
        raise AssertionError(f"{what}: returns should have shape (B,) = ({B},), got {tuple(returns_n.shape)}")
    return z_n, state_n, alive_n, returns_n


def _ds_compare(got, want, what: str) -> None:
    z_n, state_n, alive_n, returns_n = got
    wz, ws, wa, wr = want
    if not torch.equal(alive_n, wa):
        i = int((alive_n != wa).nonzero()[0])
        raise AssertionError(f"{what}: alive is wrong for dream {i}: you say {bool(alive_n[i])}, expected "
                             f"{bool(wa[i])} (a dream lives on until M's done head ends it, then stays ended)")
    assert_close(returns_n, wr, f"{what}: returns (+1 for every dream alive at this step, the step on which it ends "
                 "included; nothing for a dream that had already ended)")
    assert_close(z_n, wz, f"{what}: z (dreams alive at this step take M's sample; ended ones keep their z)")
    assert_close(state_n[0], ws.h, f"{what}: M's h (ended dreams keep their memory)")
    assert_close(state_n[1], ws.c, f"{what}: M's c (ended dreams keep their memory)")


def _ds_hand_example(fn):
    m, z, state, actions, _, _, noise = _ds_inputs(1, batch=4)
    u, eps, _ = noise
    alive = torch.tensor([True, True, False, False])
    returns = torch.tensor([3.0, 5.0, 7.0, 2.0])
    u_done = torch.tensor([1.0, 0.0, 1.0, 0.0])  # p(done) > 1 never: dream 0 lives on; p(done) > 0: dream 1 ends
    got = _ds_call(fn, m, z, state, actions, alive, returns, 1.0, (u, eps, u_done), "a batch of 4 dreams")
    if not torch.equal(got[2], torch.tensor([True, False, False, False])):
        raise AssertionError("alive = [True, True, False, False] and M ends dream 1 at this step: alive should "
                             f"become [True, False, False, False], you return {got[2].tolist()}")
    assert_close(got[3], torch.tensor([4.0, 6.0, 7.0, 2.0]),
                 "returns [3, 5, 7, 2] with dreams 0, 1 alive and dream 1 ending at this step (expected [4, 6, 7, 2]: "
                 "the ending step counts, the ended dreams 2 and 3 earn nothing)")


def _ds_alive_advance(fn):
    m, z, state, actions, _, returns, noise = _ds_inputs(2)
    alive = torch.ones(len(z), dtype=torch.bool)
    u, eps, _ = noise
    noise = (u, eps, torch.ones(len(z)))  # nobody ends
    got = _ds_call(fn, m, z, state, actions, alive, returns, 1.0, noise, "every dream alive")
    out = dream_step(m, z, actions, state, 1.0, u, eps, noise[2])
    _ds_compare(got, (out.z, out.state, alive, returns + 1),
                "every dream alive, none ending (M's step: wmlib.dream.dream_step, with the noise given)")


def _ds_ended_frozen(fn):
    m, z, state, actions, _, returns, noise = _ds_inputs(3)
    alive = torch.zeros(len(z), dtype=torch.bool)
    got = _ds_call(fn, m, z, state, actions, alive, returns, 1.0, noise, "every dream already ended")
    _ds_compare(got, (z, state, alive, returns), "every dream already ended (nothing may change)")


def _ds_done_counts(fn):
    m, z, state, actions, _, returns, noise = _ds_inputs(4)
    alive = torch.ones(len(z), dtype=torch.bool)
    u, eps, _ = noise
    noise = (u, eps, torch.zeros(len(z)))  # p(done) > 0: every dream ends at this step
    got = _ds_call(fn, m, z, state, actions, alive, returns, 1.0, noise, "every dream ending at this step")
    out = dream_step(m, z, actions, state, 1.0, *noise)
    _ds_compare(got, (out.z, out.state, torch.zeros_like(alive), returns + 1),
                "every dream ending at this step (the step happened: it counts, and z and the memory advance)")


def _ds_stays_ended(fn):
    m, z, state, actions, _, returns, noise = _ds_inputs(5)
    alive = torch.tensor([True, False] * (len(z) // 2))
    u, eps, _ = noise
    noise = (u, eps, torch.ones(len(z)))  # M ends nobody at this step
    got = _ds_call(fn, m, z, state, actions, alive, returns, 1.0, noise, "half the dreams ended before")
    _ds_compare(got, dream_step_alive(m, z, state, actions, alive, returns, 1.0, noise),
                "half the dreams ended at an earlier step and M ends none now (an ended dream never comes back)")


def _ds_random(fn):
    for seed in range(6, 10):
        m, z, state, actions, alive, returns, noise = _ds_inputs(seed, batch=16)
        got = _ds_call(fn, m, z, state, actions, alive, returns, 1.0, noise, f"a random batch (seed {seed})")
        _ds_compare(got, dream_step_alive(m, z, state, actions, alive, returns, 1.0, noise),
                    f"a random batch (seed {seed}; the end is sampled: done when M's p(done) > u_done)")


def _ds_temperature(fn):
    m, z, state, actions, alive, returns, noise = _ds_inputs(11, batch=12)
    for tau in (0.3, 1.7):
        got = _ds_call(fn, m, z, state, actions, alive, returns, tau, noise, f"temperature {tau}")
        _ds_compare(got, dream_step_alive(m, z, state, actions, alive, returns, tau, noise),
                    f"temperature {tau} (M samples at the temperature it is given)")


def _ds_whole_dreams(fn):
    # 4 dreams of a fixed controller played to their ends with your step, against the library's batched dream.
    from wmlib.config import DreamConfig
    from wmlib.controller import controller_config_for
    from wmlib.dream import BatchedDream, StartLatents
    from wmlib.dream_training import controller_to_m_actions, dream_rollouts

    m = _shipped_m()
    g = torch.Generator().manual_seed(12)
    starts = StartLatents(torch.randn(5, 32, generator=g), torch.full((5, 32), -1.0))
    c = controller_config_for("cartpole-pixels", 32, m.config.hidden_size)
    params = (torch.randn(1, 97, generator=g) * 0.3).double().numpy()
    seeds, config = [0, 1, 2, 3], DreamConfig(max_steps=60)
    want = dream_rollouts(m, starts, c, params, seeds, config).returns[0]
    dream = BatchedDream(m, starts, config)
    dream.reset(seeds)
    z, state = dream.z, dream.state
    W, b = torch.as_tensor(params[0, :96], dtype=torch.float32), torch.as_tensor(params[0, 96:], dtype=torch.float32)
    alive, returns = torch.ones(4, dtype=torch.bool), torch.zeros(4)
    for t in range(config.max_steps):
        y = torch.tanh(torch.cat([z, state.h], 1) @ W[None].T + b)
        z, state, alive, returns = _ds_call(fn, m, z, state, controller_to_m_actions(y, c, 2), alive, returns, 1.0,
                                            dream.noise.next(), f"step {t} of 4 whole dreams")
        if not alive.any():
            break
    assert_close(returns, torch.as_tensor(want, dtype=torch.float32),
                 "the returns of 4 whole dreams played with your step, fed back each step, against "
                 "wmlib.dream.dream_rollouts on the same seeds")


def _ds_inputs_unchanged(fn):
    m, z, state, actions, alive, returns, noise = _ds_inputs(13)
    copies = [x.clone() for x in (z, state.h, state.c, actions, alive, returns, *noise)]
    fn(m, z, state, actions, alive, returns, 1.0, noise)
    names = ("z", "state.h", "state.c", "actions", "alive", "returns", "u", "eps", "u_done")
    for name, before, after in zip(names, copies, (z, state.h, state.c, actions, alive, returns, *noise), strict=True):
        if not torch.equal(before, after):
            raise AssertionError(f"your function changed its input {name} in place; compute a new tensor instead")


register(
    "ch05.dream_step_alive",
    "(mdnrnn, z (B, Z), state (B, H), actions (B, A), alive (B,), returns (B,), temperature, noise) "
    "-> (z, state, alive, returns)",
    dream_step_alive,
    [
        ("worked example: one dream ends", _ds_hand_example),
        ("alive dreams take M's step", _ds_alive_advance),
        ("ended dreams stay as they were", _ds_ended_frozen),
        ("the ending step counts", _ds_done_counts),
        ("an ended dream never comes back", _ds_stays_ended),
        ("random batches", _ds_random),
        ("the temperature reaches M", _ds_temperature),
        ("whole dreams match the library's", _ds_whole_dreams),
        ("inputs left unchanged", _ds_inputs_unchanged),
    ],
)
