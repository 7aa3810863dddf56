"""Chapter 4's exercises: the reference and an independent correct version pass, every wrong one fails."""


import numpy as np
import pytest
import torch

from wmlib.exercises import run_tests


def _independent_controller_action(W, b, z, h):
    # Written without looking at wmlib: one output at a time with einsum.
    x = torch.cat((z, h), dim=-1)
    return torch.tanh(torch.einsum("aj,bj->ba", W, x) + b[None, :])


def _independent_param_count(z_dim, h_dim, action_dim):
    weights = (z_dim + h_dim) * action_dim
    biases = action_dim
    return weights + biases


def _independent_centered_ranks(fitness):
    fitness = np.asarray(fitness)
    n = len(fitness)
    ranks = np.array([np.sum(fitness < f) for f in fitness], dtype=float)  # distinct values in the tests
    return ranks / (n - 1) - 0.5


def _independent_agent_decide(vae, mdnrnn, controller, frame, state):
    # Written without looking at wmlib's reference: the frame by hand, C by hand, M's one-hot by hand.
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    z = vae.encode(x)[0]
    u = torch.cat((z, state.h), dim=-1) @ controller.weight.T + controller.bias
    y = torch.tanh(u)[0]
    if controller.config.action_map == "discrete":
        action = int(y[0] > 0)
        a = torch.zeros(1, mdnrnn.config.action_dim)
        a[0, action] = 1.0
    else:
        action = np.array([y[0], (y[1] + 1) / 2, max(0.0, min(1.0, float(y[2])))], dtype=np.float32)
        a = torch.from_numpy(action)[None]
    return action, mdnrnn.step(z, a, state).state


@pytest.mark.parametrize("exercise_id, fn", [
    ("ch04.agent_decide", _independent_agent_decide),
    ("ch04.controller_action", _independent_controller_action),
    ("ch04.controller_param_count", _independent_param_count),
    ("ch04.centered_ranks", _independent_centered_ranks),
])
def test_independent_correct_version_passes(exercise_id, fn):
    result = run_tests(exercise_id, fn)
    assert result.passed, result.failures
