"""Chapter 5's exercise: the reference and an independent correct version pass, every wrong one fails."""


import pytest
import torch

from wmlib.exercises import run_tests


def _independent_masked_returns(rewards, dones):
    # Written without looking at wmlib: walk each row and stop after its first done.
    out = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for b in range(rewards.shape[0]):
        for t in range(rewards.shape[1]):
            out[b] += rewards[b, t]
            if dones[b, t]:
                break
    return out


def _independent_dream_step_alive(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    # Written without looking at wmlib's reference: step only the alive rows, copy them back by index.
    from wmlib.dream import dream_step
    from wmlib.mdnrnn import LSTMState

    u, eps, u_done = noise
    idx = alive.nonzero().squeeze(1)
    z_next, h_next, c_next = z.clone(), state.h.clone(), state.c.clone()
    alive_next, returns_next = alive.clone(), returns.clone()
    if len(idx):
        out = dream_step(mdnrnn, z[idx], actions[idx], LSTMState(state.h[idx], state.c[idx]), temperature,
                         u[idx], eps[idx], u_done[idx])
        z_next[idx], h_next[idx], c_next[idx] = out.z, out.state.h, out.state.c
        returns_next[idx] += 1.0
        alive_next[idx] = ~out.terminated
    return z_next, LSTMState(h_next, c_next), alive_next, returns_next


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch05.masked_returns", _independent_masked_returns),
    ("ch05.dream_step_alive", _independent_dream_step_alive),
])
def test_independent_correct_version_passes(exercise_id, fn):
    result = run_tests(exercise_id, fn)
    assert result.passed, result.failures


def test_masked_returns_rejects_mismatched_shapes():
    from wmlib.dream import masked_returns

    with pytest.raises(ValueError, match=r"\(B, T\)"):
        masked_returns(torch.zeros(2, 3), torch.zeros(2, 4))
