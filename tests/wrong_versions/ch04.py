"""Plausible wrong answers to chapter 4's exercises. Each must be rejected by `check`."""

import numpy as np
import torch

# --- ch04.controller_action -------------------------------------------------------------------


def ca_no_tanh(W, b, z, h):
    return torch.cat([z, h], dim=1) @ W.T + b


def ca_h_before_z(W, b, z, h):
    return torch.tanh(torch.cat([h, z], dim=1) @ W.T + b)


def ca_no_bias(W, b, z, h):
    return torch.tanh(torch.cat([z, h], dim=1) @ W.T)


def ca_not_transposed(W, b, z, h):
    return torch.tanh(torch.cat([z, h], dim=1) @ W + b)


def ca_sigmoid(W, b, z, h):
    return torch.sigmoid(torch.cat([z, h], dim=1) @ W.T + b)


def ca_clamp(W, b, z, h):
    return torch.clamp(torch.cat([z, h], dim=1) @ W.T + b, -1, 1)


def ca_ignores_h(W, b, z, h):
    Z = z.shape[1]
    return torch.tanh(z @ W[:, :Z].T + b)


def ca_bias_inside_tanh_twice(W, b, z, h):
    return torch.tanh(torch.cat([z, h], dim=1) @ W.T + b) + b


def ca_sums_z_and_h_paths_then_tanh_each(W, b, z, h):
    Z = z.shape[1]
    return torch.tanh(z @ W[:, :Z].T + b) + torch.tanh(h @ W[:, Z:].T)


def ca_first_row_only(W, b, z, h):
    return torch.tanh(torch.cat([z, h], dim=1)[:1] @ W.T + b)


def ca_in_place_cat(W, b, z, h):
    z.mul_(1.0)
    h.add_(0.0)
    b.mul_(2.0)
    return torch.tanh(torch.cat([z, h], dim=1) @ W.T + b / 2)


# --- ch04.agent_decide ------------------------------------------------------------------------
# Written as a learner would, with the tools the chapter names: frames_to_tensor, map_action,
# controller_to_m_actions (wmlib.dream) and mdnrnn.step.


def _tools():
    from wmlib.controller import map_action
    from wmlib.dream import controller_to_m_actions
    from wmlib.rollouts import frames_to_tensor

    return frames_to_tensor, map_action, controller_to_m_actions


def _m_action(y, controller, mdnrnn):
    return _tools()[2](y, controller.config, mdnrnn.config.action_dim)


def ad_h_and_z_swapped(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    x = torch.cat([state.h, mu], dim=1)  # [h; z]: the same length, the columns of W read the wrong inputs
    y = torch.tanh(x @ controller.weight.T + controller.bias)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(mu, _m_action(y, controller, mdnrnn),
                                                                                 state).state


def ad_sampled_z(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, logvar = vae.encode(frames_to_tensor(frame))
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # the agent reads the mean
    y = controller(z, state.h)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(z, _m_action(y, controller, mdnrnn),
                                                                                state).state


def ad_no_action_map(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, _, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.h)
    return y[0], mdnrnn.step(mu, _m_action(y, controller, mdnrnn), state).state


def ad_stale_h(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.h)
    mdnrnn.step(mu, _m_action(y, controller, mdnrnn), state)
    return map_action(y[0].numpy(), controller.config.action_map), state  # M's new memory thrown away


def ad_memory_wiped(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.h)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(mu, _m_action(y, controller, mdnrnn),
                                                                                 None).state


def ad_reads_cell(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.c)  # c is the LSTM's cell; C reads h
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(mu, _m_action(y, controller, mdnrnn),
                                                                                state).state


def ad_reads_new_h(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y0 = controller(mu, state.h)
    nxt = mdnrnn.step(mu, _m_action(y0, controller, mdnrnn), state).state
    y = controller(mu, nxt.h)  # decides on a memory that already contains this step
    return map_action(y[0].numpy(), controller.config.action_map), nxt


def ad_m_reads_y(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.h)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(mu, y, state).state


def ad_frame_not_scaled(vae, mdnrnn, controller, frame, state):
    _, map_action, _ = _tools()
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()  # 0..255, V was trained on 0..1
    mu, _ = vae.encode(x)
    y = controller(mu, state.h)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(mu, _m_action(y, controller, mdnrnn),
                                                                                state).state


def ad_frame_reshaped(vae, mdnrnn, controller, frame, state):
    _, map_action, _ = _tools()
    x = torch.from_numpy(frame.copy()).float().div(255).reshape(1, 3, 64, 64)  # reshape is not a transpose
    mu, _ = vae.encode(x)
    y = controller(mu, state.h)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(mu, _m_action(y, controller, mdnrnn),
                                                                                state).state


def ad_logvar_as_z(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    z = vae.encode(frames_to_tensor(frame))[1]
    y = controller(z, state.h)
    return map_action(y[0].numpy(), controller.config.action_map), mdnrnn.step(z, _m_action(y, controller, mdnrnn),
                                                                                state).state


def ad_argmax_one_output(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, _, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.h)
    action = int(y[0].argmax()) if controller.config.action_map == "discrete" else y[0].numpy()
    return action, mdnrnn.step(mu, _m_action(y, controller, mdnrnn), state).state


def ad_returns_h(vae, mdnrnn, controller, frame, state):
    frames_to_tensor, map_action, _ = _tools()
    mu, _ = vae.encode(frames_to_tensor(frame))
    y = controller(mu, state.h)
    nxt = mdnrnn.step(mu, _m_action(y, controller, mdnrnn), state).state
    return map_action(y[0].numpy(), controller.config.action_map), nxt.h


# --- ch04.controller_param_count --------------------------------------------------------------


def pc_bias_per_input(z_dim, h_dim, action_dim):
    return (z_dim + h_dim) * action_dim + (z_dim + h_dim)


def pc_no_bias(z_dim, h_dim, action_dim):
    return (z_dim + h_dim) * action_dim


def pc_one_bias(z_dim, h_dim, action_dim):
    return (z_dim + h_dim) * action_dim + 1


def pc_z_only(z_dim, h_dim, action_dim):
    return z_dim * action_dim + action_dim


def pc_sum_not_product(z_dim, h_dim, action_dim):
    return z_dim + h_dim + action_dim


def pc_float(z_dim, h_dim, action_dim):
    return float((z_dim + h_dim) * action_dim + action_dim)


def pc_hardcoded(z_dim, h_dim, action_dim):
    return 867


def pc_extra_input(z_dim, h_dim, action_dim):
    return (z_dim + h_dim + 1) * action_dim + action_dim


# --- ch04.centered_ranks ----------------------------------------------------------------------


def _true_ranks(f):
    ranks = np.empty(len(f))
    ranks[np.argsort(f)] = np.arange(len(f))
    return ranks


def cr_reversed(fitness):
    f = np.asarray(fitness, dtype=float)
    return 0.5 - _true_ranks(f) / (len(f) - 1)


def cr_not_centred(fitness):
    f = np.asarray(fitness, dtype=float)
    return _true_ranks(f) / (len(f) - 1)


def cr_raw_ranks(fitness):
    return _true_ranks(np.asarray(fitness, dtype=float))


def cr_argsort_not_ranks(fitness):
    f = np.asarray(fitness, dtype=float)
    return np.argsort(f) / (len(f) - 1) - 0.5


def cr_divide_by_n(fitness):
    f = np.asarray(fitness, dtype=float)
    return _true_ranks(f) / len(f) - 0.5


def cr_standardised(fitness):
    f = np.asarray(fitness, dtype=float)
    return (f - f.mean()) / f.std()


def cr_min_max_scaled(fitness):
    f = np.asarray(fitness, dtype=float)
    return (f - f.min()) / (f.max() - f.min()) - 0.5


def cr_sorted_values(fitness):
    f = np.asarray(fitness, dtype=float)
    return np.linspace(-0.5, 0.5, len(f))


def cr_sorts_in_place(fitness):
    fitness.sort()
    return np.linspace(-0.5, 0.5, len(fitness))


def cr_returns_list(fitness):
    return list(_true_ranks(np.asarray(fitness, dtype=float)) / (len(fitness) - 1) - 0.5)


WRONG_VERSIONS = {
    "ch04.controller_action": {
        "no tanh": ca_no_tanh,
        "[h; z] order swapped": ca_h_before_z,
        "no bias": ca_no_bias,
        "W not transposed": ca_not_transposed,
        "sigmoid instead of tanh": ca_sigmoid,
        "clamp instead of tanh": ca_clamp,
        "ignores h": ca_ignores_h,
        "bias added twice": ca_bias_inside_tanh_twice,
        "separate tanh for z and h": ca_sums_z_and_h_paths_then_tanh_each,
        "first batch row only": ca_first_row_only,
        "changes its inputs in place": ca_in_place_cat,
    },
    "ch04.agent_decide": {
        "h and z swapped ([h; z] into W)": ad_h_and_z_swapped,
        "sampled z where the agent uses mu": ad_sampled_z,
        "action map skipped (returns y)": ad_no_action_map,
        "stale h (M's new memory thrown away)": ad_stale_h,
        "memory wiped every step": ad_memory_wiped,
        "C reads the cell c, not h": ad_reads_cell,
        "C reads the memory after this step": ad_reads_new_h,
        "M reads C's raw y, not the action": ad_m_reads_y,
        "frame not scaled to [0, 1]": ad_frame_not_scaled,
        "frame reshaped, not transposed": ad_frame_reshaped,
        "logvar used as z": ad_logvar_as_z,
        "argmax over CartPole's single output": ad_argmax_one_output,
        "returns h, not M's state": ad_returns_h,
    },
    "ch04.controller_param_count": {
        "bias counted once per input": pc_bias_per_input,
        "no bias": pc_no_bias,
        "a single bias": pc_one_bias,
        "z only": pc_z_only,
        "sum instead of product": pc_sum_not_product,
        "returns a float": pc_float,
        "hard-coded 867": pc_hardcoded,
        "an extra input": pc_extra_input,
    },
    "ch04.centered_ranks": {
        "ranks reversed": cr_reversed,
        "not centred": cr_not_centred,
        "raw ranks": cr_raw_ranks,
        "argsort instead of ranks": cr_argsort_not_ranks,
        "divides by N": cr_divide_by_n,
        "standardised values": cr_standardised,
        "min-max scaled values": cr_min_max_scaled,
        "ignores the input order": cr_sorted_values,
        "sorts its input in place": cr_sorts_in_place,
        "returns a list": cr_returns_list,
    },
}
