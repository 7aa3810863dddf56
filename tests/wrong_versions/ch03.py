"""Plausible wrong answers to chapter 3's exercises; each must be rejected by its checker.

WRONG_VERSIONS[exercise_id] maps a short description of the mistake to the wrong function.
tests/test_exercises.py asserts that `run_tests(exercise_id, fn).passed is False` for every one.
"""

import math

import torch

from wmlib.mdnrnn import mdn_sample

LOG_2PI = math.log(2 * math.pi)


# --- ch03.mdn_nll -----------------------------------------------------------------------------


def _log_normal(mu, log_sigma, target):
    return -0.5 * ((target.unsqueeze(-1) - mu) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * LOG_2PI


def nll_without_logsumexp(log_pi, mu, log_sigma, target):
    sigma = log_sigma.exp()
    density = torch.exp(-0.5 * ((target.unsqueeze(-1) - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return -torch.log((log_pi.exp() * density).sum(-1)).mean()


def nll_missing_log_2pi(log_pi, mu, log_sigma, target):
    log_n = -0.5 * ((target.unsqueeze(-1) - mu) / log_sigma.exp()) ** 2 - log_sigma
    return -torch.logsumexp(log_pi + log_n, dim=-1).mean()


def nll_missing_log_sigma(log_pi, mu, log_sigma, target):
    log_n = -0.5 * ((target.unsqueeze(-1) - mu) / log_sigma.exp()) ** 2 - 0.5 * LOG_2PI
    return -torch.logsumexp(log_pi + log_n, dim=-1).mean()


def nll_sigma_as_variance(log_pi, mu, log_sigma, target):
    log_n = -0.5 * (target.unsqueeze(-1) - mu) ** 2 / log_sigma.exp() - 0.5 * log_sigma - 0.5 * LOG_2PI
    return -torch.logsumexp(log_pi + log_n, dim=-1).mean()


def nll_sum_not_mean(log_pi, mu, log_sigma, target):
    return -torch.logsumexp(log_pi + _log_normal(mu, log_sigma, target), dim=-1).sum()


def nll_positive_log_likelihood(log_pi, mu, log_sigma, target):
    return torch.logsumexp(log_pi + _log_normal(mu, log_sigma, target), dim=-1).mean()


def nll_ignores_weights(log_pi, mu, log_sigma, target):
    K = log_pi.shape[-1]
    return -(torch.logsumexp(_log_normal(mu, log_sigma, target), dim=-1) - math.log(K)).mean()


def nll_weights_not_logged(log_pi, mu, log_sigma, target):
    return -torch.logsumexp(log_pi.exp() + _log_normal(mu, log_sigma, target), dim=-1).mean()


def nll_mean_over_components(log_pi, mu, log_sigma, target):
    return -(log_pi + _log_normal(mu, log_sigma, target)).mean()


def nll_max_instead_of_logsumexp(log_pi, mu, log_sigma, target):
    return -(log_pi + _log_normal(mu, log_sigma, target)).max(dim=-1).values.mean()


def nll_logsumexp_over_first_axis(log_pi, mu, log_sigma, target):
    return -torch.logsumexp(log_pi + _log_normal(mu, log_sigma, target), dim=0).mean()


def nll_sigma_without_exp(log_pi, mu, log_sigma, target):
    sigma = log_sigma.abs() + 1e-3
    log_n = -0.5 * ((target.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * LOG_2PI
    return -torch.logsumexp(log_pi + log_n, dim=-1).mean()


def nll_detached(log_pi, mu, log_sigma, target):
    value = -torch.logsumexp(log_pi + _log_normal(mu, log_sigma, target), dim=-1).mean()
    return torch.tensor(value.item())


# --- ch03.mdn_sample --------------------------------------------------------------------------


def _pick(log_pi, mu, log_sigma, probs, generator):
    K = log_pi.shape[-1]
    k = torch.multinomial(probs.reshape(-1, K), 1, generator=generator).view(*log_pi.shape[:-1], 1)
    return mu.gather(-1, k).squeeze(-1), log_sigma.gather(-1, k).squeeze(-1).exp()


def _eps(shape, generator):
    return torch.randn(shape, generator=generator)


def sample_sigma_times_tau(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi / temperature, -1), generator)
    return m + s * temperature * _eps(m.shape, generator)


def sample_no_tau_on_weights(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, log_pi.exp(), generator)
    return m + s * math.sqrt(temperature) * _eps(m.shape, generator)


def sample_no_tau_on_widths(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi / temperature, -1), generator)
    return m + s * _eps(m.shape, generator)


def sample_tau_multiplies_logits(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi * temperature, -1), generator)
    return m + s * math.sqrt(temperature) * _eps(m.shape, generator)


def sample_no_temperature_at_all(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, log_pi.exp(), generator)
    return m + s * _eps(m.shape, generator)


def sample_log_sigma_as_sigma(log_pi, mu, log_sigma, temperature, generator):
    m, _ = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi / temperature, -1), generator)
    k_sigma = log_sigma.mean(-1)  # forgot exp, and mixed up the component too
    return m + k_sigma * math.sqrt(temperature) * _eps(m.shape, generator)


def sample_variance_as_std(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi / temperature, -1), generator)
    return m + s**2 * math.sqrt(temperature) * _eps(m.shape, generator)


def sample_most_likely_component(log_pi, mu, log_sigma, temperature, generator):
    k = log_pi.argmax(-1, keepdim=True)
    m, s = mu.gather(-1, k).squeeze(-1), log_sigma.gather(-1, k).squeeze(-1).exp()
    return m + s * math.sqrt(temperature) * _eps(m.shape, generator)


def sample_mixture_mean(log_pi, mu, log_sigma, temperature, generator):
    return (torch.softmax(log_pi / temperature, -1) * mu).sum(-1)


def sample_mixes_all_components(log_pi, mu, log_sigma, temperature, generator):
    w = torch.softmax(log_pi / temperature, -1)
    eps = torch.randn(mu.shape, generator=generator)
    return (w * (mu + log_sigma.exp() * math.sqrt(temperature) * eps)).sum(-1)


def sample_ignores_generator(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi / temperature, -1), None)
    return m + s * math.sqrt(temperature) * torch.randn(m.shape)


def sample_one_eps_for_all(log_pi, mu, log_sigma, temperature, generator):
    m, s = _pick(log_pi, mu, log_sigma, torch.softmax(log_pi / temperature, -1), generator)
    return m + s * math.sqrt(temperature) * torch.randn((), generator=generator)


def sample_softmax_over_positions(log_pi, mu, log_sigma, temperature, generator):
    probs = torch.softmax(log_pi / temperature, dim=0)
    m, s = _pick(log_pi, mu, log_sigma, probs, generator)
    return m + s * math.sqrt(temperature) * _eps(m.shape, generator)


# --- ch03.teacher_forcing_pairs ---------------------------------------------------------------


def pairs_no_shift(z, a):
    return torch.cat([z[:, :-1], a[:, :-1]], -1), z[:, :-1]


def pairs_action_from_next_step(z, a):
    return torch.cat([z[:, :-1], a[:, 1:]], -1), z[:, 1:]


def pairs_action_first(z, a):
    return torch.cat([a[:, :-1], z[:, :-1]], -1), z[:, 1:]


def pairs_predict_the_past(z, a):
    return torch.cat([z[:, 1:], a[:, 1:]], -1), z[:, :-1]


def pairs_batch_axis(z, a):
    return torch.cat([z[:-1], a[:-1]], -1), z[1:]


def pairs_rolled(z, a):
    return torch.cat([z, a], -1), torch.roll(z, -1, dims=1)


def pairs_swapped_outputs(z, a):
    return z[:, 1:], torch.cat([z[:, :-1], a[:, :-1]], -1)


def pairs_concat_on_time(z, a):
    return torch.cat([z[:, :-1], a[:, :-1]], 1), z[:, 1:]


def pairs_in_place(z, a):
    z[:, 0] = 0.0
    return torch.cat([z[:, :-1], a[:, :-1]], -1), z[:, 1:]


def pairs_drop_two(z, a):
    return torch.cat([z[:, 1:-1], a[:, 1:-1]], -1), z[:, 2:]



# --- ch03.imagine_step ------------------------------------------------------------------------


def _one_hot(m, action):
    return torch.nn.functional.one_hot(action.long(), m.config.action_dim).float()


def _sample_own(log_pi, mu, log_sigma, probs, width, generator):
    """Pick k from `probs` (B, Z, K), then mu_k + sigma_k * width * eps."""
    m, s = _pick(log_pi, mu, log_sigma, probs, generator)
    return m + s * width * _eps(m.shape, generator)


def step_state_not_advanced(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), state


def step_memory_wiped(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), None)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), out.state


def step_action_not_encoded(m, z, action, state, temperature, generator):
    out = m.step(z, action, state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), out.state


def step_action_as_one_number(m, z, action, state, temperature, generator):
    a = torch.stack([action.float(), torch.zeros_like(action, dtype=torch.float)], -1)  # [a, 0]
    out = m.step(z, a, state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), out.state


def step_old_heads(m, z, action, state, temperature, generator):
    log_pi, mu, log_sigma, _, _ = m.heads(state.h)
    z_next = mdn_sample(log_pi, mu, log_sigma, temperature, generator)
    return z_next, m.step(z, _one_hot(m, action), state).state


def step_temperature_on_mean(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return mdn_sample(out.log_pi, out.mu * temperature, out.log_sigma, 1.0, generator), out.state


def step_log_pi_tempered_not_renormalised(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    probs = torch.exp(out.log_pi / temperature)  # no longer sums to 1 when temperature != 1
    u = torch.rand(out.log_pi.shape[:-1] + (1,), generator=generator)
    k = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp(max=out.log_pi.shape[-1] - 1)
    sigma = out.log_sigma.gather(-1, k).squeeze(-1).exp()
    eps = torch.randn(sigma.shape, generator=generator)
    return out.mu.gather(-1, k).squeeze(-1) + sigma * math.sqrt(temperature) * eps, out.state


def step_sigma_times_tau(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    probs = torch.softmax(out.log_pi / temperature, -1)
    return _sample_own(out.log_pi, out.mu, out.log_sigma, probs, temperature, generator), out.state


def step_tau_only_on_weights(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    probs = torch.softmax(out.log_pi / temperature, -1)
    return _sample_own(out.log_pi, out.mu, out.log_sigma, probs, 1.0, generator), out.state


def step_tau_only_on_widths(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return _sample_own(out.log_pi, out.mu, out.log_sigma, out.log_pi.exp(), math.sqrt(temperature),
                       generator), out.state


def step_temperature_ignored(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, 1.0, generator), out.state


def step_mixture_mean(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return (torch.softmax(out.log_pi / temperature, -1) * out.mu).sum(-1), out.state


def step_returns_current_z(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return z.clone(), out.state


def step_global_random_state(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, None), out.state


def step_raw_logits_as_probs(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, action), state, raw_logits=True)
    probs = torch.softmax(out.log_pi, -1) / temperature  # softmax first, then "temper" (changes nothing)
    return _sample_own(out.log_pi, out.mu, out.log_sigma, probs, math.sqrt(temperature), generator), out.state


def step_other_action(m, z, action, state, temperature, generator):
    out = m.step(z, _one_hot(m, 1 - action), state)
    return mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator), out.state

WRONG_VERSIONS = {
    "ch03.mdn_nll": {
        "no logsumexp: log(sum(pi * N))": nll_without_logsumexp,
        "missing -0.5 log(2 pi)": nll_missing_log_2pi,
        "missing -log sigma": nll_missing_log_sigma,
        "sigma used as a variance": nll_sigma_as_variance,
        "sum over positions instead of mean": nll_sum_not_mean,
        "log-likelihood, not its negative": nll_positive_log_likelihood,
        "mixture weights ignored": nll_ignores_weights,
        "pi added instead of log pi": nll_weights_not_logged,
        "mean over components instead of logsumexp": nll_mean_over_components,
        "max over components (hard assignment)": nll_max_instead_of_logsumexp,
        "logsumexp over the first axis": nll_logsumexp_over_first_axis,
        "log_sigma used as sigma": nll_sigma_without_exp,
        "result detached from the graph": nll_detached,
    },
    "ch03.mdn_sample": {
        "temperature applied to sigma instead of sqrt": sample_sigma_times_tau,
        "weights not tempered": sample_no_tau_on_weights,
        "widths not tempered": sample_no_tau_on_widths,
        "logits multiplied by the temperature": sample_tau_multiplies_logits,
        "temperature ignored": sample_no_temperature_at_all,
        "log_sigma used as sigma": sample_log_sigma_as_sigma,
        "sigma squared used as the std": sample_variance_as_std,
        "always the most likely component": sample_most_likely_component,
        "the mixture mean, no sampling": sample_mixture_mean,
        "a weighted average of all components' samples": sample_mixes_all_components,
        "global random state instead of the generator": sample_ignores_generator,
        "one eps shared by every position": sample_one_eps_for_all,
        "softmax over positions instead of components": sample_softmax_over_positions,
    },
    "ch03.teacher_forcing_pairs": {
        "targets not shifted": pairs_no_shift,
        "action from the next step": pairs_action_from_next_step,
        "action before latent": pairs_action_first,
        "predicting the past": pairs_predict_the_past,
        "slicing the batch axis": pairs_batch_axis,
        "roll instead of slicing (T pairs)": pairs_rolled,
        "(targets, inputs) swapped": pairs_swapped_outputs,
        "concatenated along time": pairs_concat_on_time,
        "changes z in place": pairs_in_place,
        "drops the first step too": pairs_drop_two,
    },
    "ch03.imagine_step": {
        "state not advanced": step_state_not_advanced,
        "memory wiped (state not passed to M)": step_memory_wiped,
        "action not encoded": step_action_not_encoded,
        "action as one number [a, 0]": step_action_as_one_number,
        "the other action's one-hot": step_other_action,
        "sampled from the old memory's heads": step_old_heads,
        "temperature applied to the mean": step_temperature_on_mean,
        "log_pi / tau not renormalised": step_log_pi_tempered_not_renormalised,
        "sigma * tau instead of sigma * sqrt(tau)": step_sigma_times_tau,
        "temperature only on the weights": step_tau_only_on_weights,
        "temperature only on the widths": step_tau_only_on_widths,
        "temperature ignored": step_temperature_ignored,
        "the mixture mean, no sampling": step_mixture_mean,
        "returns the current z": step_returns_current_z,
        "global random state instead of the generator": step_global_random_state,
        "tempering after the softmax": step_raw_logits_as_probs,
    },
}
