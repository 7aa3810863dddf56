"""Chapter 3's last exercise, `imagine_step`: its reference and its tests, registered by ch03.py.

One step of M's imagination, the inner step of every dream: M reads (z_t, a_t) with its memory,
moves its memory on, and the next latent is sampled from its heads at a temperature. The checks
use a small M (Z 3, A 2, H 16, K 3) whose heads are set by hand through the output layer's bias:
with the weights zeroed the mixture is known exactly (statistical checks against closed forms);
with the weights kept and the widths tiny, the sample is the mean of the one sure component, a
number that depends on the NEW memory (exact checks).

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import functools
import math

import torch

from wmlib.config import MDNRNNConfig
from wmlib.exercises import _mixtures as mix
from wmlib.exercises._asserts import as_tensor, assert_close
from wmlib.mdnrnn import MDNRNN, LSTMState, mdn_sample

_N = mix.N_SAMPLES

_IZ, _IA, _IK = 3, 2, 3


def imagine_step(mdnrnn, z: torch.Tensor, action: torch.Tensor, state, temperature: float,
                 generator: torch.Generator):
    """Reference: z (B, Z), action (B,) ints, state LSTMState (B, H) -> (z_next (B, Z), new state).

    Uses M's own step (wmlib.mdnrnn.MDNRNN.step) and sampler (wmlib.mdnrnn.mdn_sample).
    """
    a = torch.nn.functional.one_hot(action.long(), mdnrnn.config.action_dim).to(z.dtype)
    out = mdnrnn.step(z, a, state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), out.state


def _head_bias(log_pi, mu, log_sigma) -> torch.Tensor:
    """The output layer's bias (Z * 3K,) that makes the heads say log_pi, mu, log_sigma (Z, K)."""
    return torch.cat([log_pi, mu, log_sigma], dim=-1).reshape(-1)


@functools.lru_cache(maxsize=4)
def _small_m(kind: str):
    """A small M: "known" has constant heads (weights zeroed); "sharp" keeps its weights, one sure
    and very narrow component per dim, so its sample is that component's mean from the new memory."""
    with torch.random.fork_rng():
        torch.manual_seed(7)
        m = MDNRNN(MDNRNNConfig(z_dim=_IZ, action_dim=_IA, hidden_size=16, num_mixtures=_IK)).eval()
    with torch.no_grad():
        if kind == "known":
            m.mdn.weight.zero_()
            m.mdn.bias.copy_(_head_bias(mix.STAT_LOG_PI, mix.STAT_MU, mix.STAT_LOG_SIGMA))
        else:
            sure = torch.full((_IZ, _IK), -60.0)
            sure[torch.arange(_IZ), torch.tensor([1, 0, 2])] = 0.0
            m.mdn.weight.mul_(2.0)
            m.mdn.bias.copy_(_head_bias(sure, torch.zeros(_IZ, _IK), torch.full((_IZ, _IK), -25.0)))
    return m


def _start(batch: int, seed: int):
    """z (B, Z), actions (B,) in {0, 1}, and a non-empty memory (h, c) (B, 16)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, _IZ, generator=g)
    action = torch.randint(0, _IA, (batch,), generator=g)
    state = LSTMState(torch.randn(batch, 16, generator=g) * 0.5, torch.randn(batch, 16, generator=g) * 0.5)
    return z, action, state


def _imagine(fn, m, z, action, state, tau, seed):
    copies = (z.clone(), action.clone(), state[0].clone(), state[1].clone())
    out = fn(m, z, action, state, tau, torch.Generator().manual_seed(seed))
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise AssertionError(f"return a pair (z_next, state), got {type(out).__name__}")
    z_next, new_state = out
    z_next = as_tensor(z_next, "z_next")
    B, H = z.shape[0], m.config.hidden_size
    if tuple(z_next.shape) != (B, _IZ):
        raise AssertionError(f"z_next should have shape (B, Z) = {(B, _IZ)}, got {tuple(z_next.shape)}")
    if not torch.isfinite(z_next).all():
        raise AssertionError("z_next contains NaN or inf")
    if not isinstance(new_state, tuple | list) or len(new_state) != 2:
        raise AssertionError("the new state should be M's memory (h, c) (an LSTMState), got "
                             f"{type(new_state).__name__}")
    h, c = (as_tensor(x, "the new state") for x in new_state)
    if tuple(h.shape) != (B, H) or tuple(c.shape) != (B, H):
        raise AssertionError(f"the new state's h and c should each be (B, H) = {(B, H)}, got "
                             f"{tuple(h.shape)} and {tuple(c.shape)}")
    for name, before, now in zip(("z", "action", "h", "c"), copies, (z, action, *state), strict=True):
        if not torch.equal(before, now):
            raise AssertionError(f"your function changed its input {name} in place")
    return z_next.detach().double(), (h.detach(), c.detach())


def _is_step_test(fn):
    m = _small_m("sharp")
    z, action, state = _start(6, 50)
    _, (h, c) = _imagine(fn, m, z, action, state, 1.0, 0)
    a = torch.nn.functional.one_hot(action, _IA).float()
    with torch.no_grad():
        right = m.step(z, a, state).state
        if torch.equal(h, state.h) and torch.equal(c, state.c):
            raise AssertionError("the state you return is the state you were given: M's memory must move on "
                                 "(return the state that M's step returns)")
        fresh = m.step(z, a, None).state
        if torch.allclose(h, fresh.h, atol=1e-6):
            raise AssertionError("the new memory ignores the state you were given (it is the step from an "
                                 "empty memory): pass the state into M's step")
        flipped = m.step(z, torch.nn.functional.one_hot(1 - action, _IA).float(), state).state
        if torch.allclose(h, flipped.h, atol=1e-6):
            raise AssertionError("the new memory is the one for the other action: one-hot encode `action` "
                                 "as it is (action 0 -> [1, 0], action 1 -> [0, 1])")
    assert_close(h, right.h, "the new memory h (it should be what M's step returns for z, one-hot(action), "
                 "state)", rtol=1e-5, atol=1e-6)
    assert_close(c, right.c, "the new cell c", rtol=1e-5, atol=1e-6)


def _is_sharp(fn):
    # One sure component per dim, 1e-11 wide: the sample is that component's mean, read from the heads on
    # the NEW memory (the heads read h_{t+1}, which has seen z_t and a_t).
    m = _small_m("sharp")
    z, action, state = _start(6, 51)
    a = torch.nn.functional.one_hot(action, _IA).float()
    with torch.no_grad():
        out = m.step(z, a, state)
        expected = out.mu.gather(-1, out.log_pi.argmax(-1, keepdim=True)).squeeze(-1).double()
        old = m.heads(state.h)
        stale = old[1].gather(-1, old[0].argmax(-1, keepdim=True)).squeeze(-1).double()
    for tau in (1.0, 0.5, 1.5):
        got, _ = _imagine(fn, m, z, action, state, tau, 1)
        if torch.allclose(got, stale, rtol=1e-5, atol=1e-6):
            raise AssertionError("z_next comes from the heads on the OLD memory: step M first, then sample "
                                 "from the heads that read the new h")
        if torch.allclose(got, expected * tau, rtol=1e-5, atol=1e-6) and tau != 1.0:
            raise AssertionError(f"at temperature {tau} the sample is the component's mean times the "
                                 "temperature: the temperature scales the choice of component and the width, "
                                 "never the mean")
        assert_close(got, expected, f"z_next at temperature {tau} when each dim has one sure component of "
                     "width 1e-11 (it should be that component's mean, from M's heads after the step)",
                     rtol=1e-5, atol=1e-6)


def _is_moments(tau):
    def test(fn):
        m = _small_m("known")
        z, action, state = _start(1, 52)
        rep = lambda x: x.expand(_N, *x.shape[1:]).contiguous()  # noqa: E731
        got, _ = _imagine(fn, m, rep(z), rep(action), type(state)(*(rep(x) for x in state)), tau, 4)
        mix.check_moments(got, tau, whose="M's")

    return test


def _is_weights(fn):
    # Narrow, far-apart components: which one was picked can be read off the sample.
    m = _small_m("known")
    log_pi = mix.SEPARATED_LOG_PI.expand(_IZ, _IK)
    centres = torch.tensor(mix.SEPARATED_MU).expand(_IZ, _IK)
    with torch.no_grad():
        narrow = type(m)(m.config).eval()
        narrow.load_state_dict(m.state_dict())
        narrow.mdn.bias.copy_(_head_bias(log_pi, centres, torch.full((_IZ, _IK), math.log(1e-3))))
    z, action = torch.zeros(_N, _IZ), torch.zeros(_N, dtype=torch.long)
    state = LSTMState(torch.zeros(_N, 16), torch.zeros(_N, 16))
    for tau in (1.0, 0.5, 2.0):
        got, _ = _imagine(fn, narrow, z, action, state, tau, 2)
        mix.check_weights(got[:, 0], tau, " (divide the log-weights by tau, then normalise them again with a softmax: "
                      "exp(log_pi / tau) alone no longer sums to 1)")


def _is_generator(fn):
    m = _small_m("known")
    z, action, state = _start(64, 53)
    mix.check_generator(lambda seed: _imagine(fn, m, z, action, state, 1.0, seed)[0], "z_next",
                    "(so a dream can be replayed)")


IMAGINE_TESTS = [
    ("the memory moves on", mix.one_thread(_is_step_test)),
    ("a sure, sharp component gives its mean", mix.one_thread(_is_sharp)),
    ("component weights softmax(log_pi / temperature)", mix.one_thread(_is_weights)),
    ("mean and variance at temperature 1", mix.one_thread(_is_moments(1.0))),
    ("mean and variance at temperature 0.5", mix.one_thread(_is_moments(0.5))),
    ("mean and variance at temperature 1.5", mix.one_thread(_is_moments(1.5))),
    ("uses the generator", mix.one_thread(_is_generator)),
]
"""(name, test) pairs for ch03.imagine_step."""
