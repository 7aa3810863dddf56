"""Plausible wrong answers to chapter 8's exercises. Each must be rejected by `check`."""

import math

import torch
from torch.nn import functional as F

# --- ch08.lambda_return -----------------------------------------------------------------------


def _backwards(rewards, continues, values, step, start=None):
    T = rewards.shape[1]
    R, out = values[:, T] if start is None else start, []
    for t in reversed(range(T)):
        R = step(t, R)
        out.append(R)
    return torch.stack(out[::-1], dim=1)


def lr_no_continues(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + gamma * ((1 - lam) * values[:, t + 1] + lam * R))


def lr_lam_swapped(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + gamma * continues[:, t] * (lam * values[:, t + 1] + (1 - lam) * R))


def lr_bootstrap_zero(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R),
                      start=torch.zeros(rewards.shape[0]))


def lr_value_of_same_step(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t] + lam * R))


def lr_continues_on_lambda_part_only(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + gamma * ((1 - lam) * values[:, t + 1] + lam * continues[:, t] * R))


def lr_includes_bootstrap(rewards, continues, values, gamma, lam):
    T = rewards.shape[1]
    R, out = values[:, T], [values[:, T]]
    for t in reversed(range(T)):
        R = rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R)
        out.append(R)
    return torch.stack(out[::-1], dim=1)  # (B, T+1)


def lr_not_reversed(rewards, continues, values, gamma, lam):
    T = rewards.shape[1]
    R, out = values[:, T], []
    for t in reversed(range(T)):
        R = rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R)
        out.append(R)
    return torch.stack(out, dim=1)  # R_{T-1} first


def lr_forwards(rewards, continues, values, gamma, lam):
    T = rewards.shape[1]
    R, out = values[:, 0], []
    for t in range(T):  # walks forward in time: R_{t+1} is not known yet
        R = rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R)
        out.append(R)
    return torch.stack(out, dim=1)


def lr_monte_carlo(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + gamma * continues[:, t] * R)


def lr_no_gamma(rewards, continues, values, gamma, lam):
    return _backwards(rewards, continues, values,
                      lambda t, R: rewards[:, t] + continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R))


def lr_detached(rewards, continues, values, gamma, lam):
    c = continues.detach()
    return _backwards(rewards, c, values,
                      lambda t, R: rewards[:, t] + gamma * c[:, t] * ((1 - lam) * values[:, t + 1] + lam * R))


def lr_time_is_dim0(rewards, continues, values, gamma, lam):
    r, c, v = rewards.T, continues.T, values.T  # treats (B, T) as (T, B)
    B = r.shape[1]
    R, out = v[:, B] if v.shape[1] > B else v[:, -1], []
    for t in reversed(range(B)):
        R = r[:, t] + gamma * c[:, t] * ((1 - lam) * v[:, t + 1] + lam * R)
        out.append(R)
    return torch.stack(out[::-1], dim=1)


def lr_in_place(rewards, continues, values, gamma, lam):
    T = rewards.shape[1]
    R = values[:, T]
    for t in reversed(range(T)):
        rewards[:, t] += gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R)
        R = rewards[:, t]
    return rewards


LAMBDA_RETURN = {
    "ignores the continuation probabilities": lr_no_continues,
    "lam and 1 - lam swapped": lr_lam_swapped,
    "bootstraps from 0 instead of v_T": lr_bootstrap_zero,
    "uses v_t instead of v_{t+1}": lr_value_of_same_step,
    "continuation only on the lambda part": lr_continues_on_lambda_part_only,
    "returns R_T too (B, T+1)": lr_includes_bootstrap,
    "forgets to put the returns back in time order": lr_not_reversed,
    "walks forward in time": lr_forwards,
    "ignores the critic except at the horizon (lam = 1 always)": lr_monte_carlo,
    "forgets gamma": lr_no_gamma,
    "detaches the continuations": lr_detached,
    "time on dim 0": lr_time_is_dim0,
    "modifies rewards in place": lr_in_place,
}

# --- ch08.straight_through_sample -------------------------------------------------------------


def _choice(logits, temperature, u):
    p = torch.softmax(logits / temperature, dim=-1)
    K = logits.shape[-1]
    k = (p.detach().cumsum(-1) <= u.unsqueeze(-1)).sum(-1).clamp(max=K - 1)
    return p, F.one_hot(k, K).to(p.dtype)


def _y(mu, log_sigma, temperature, eps):
    return mu + log_sigma.exp() * math.sqrt(temperature) * eps.unsqueeze(-1)


def st_hard_choice_only(logits, mu, log_sigma, temperature, u, eps):
    _, hard = _choice(logits, temperature, u)
    return (hard * _y(mu, log_sigma, temperature, eps)).sum(-1)  # no gradient to the logits


def st_soft_forward(logits, mu, log_sigma, temperature, u, eps):
    p, _ = _choice(logits, temperature, u)
    return (p * _y(mu, log_sigma, temperature, eps)).sum(-1)  # a blend of components M never drew


def st_mixture_mean(logits, mu, log_sigma, temperature, u, eps):
    p, _ = _choice(logits, temperature, u)
    return (p * mu).sum(-1)


def st_gumbel_softmax(logits, mu, log_sigma, temperature, u, eps):
    gumbel = -torch.log(-torch.log(u.unsqueeze(-1).clamp(1e-6, 1 - 1e-6)))
    w = torch.softmax((logits + gumbel) / temperature, dim=-1)
    return (w * _y(mu, log_sigma, temperature, eps)).sum(-1)


def st_detached_sample(logits, mu, log_sigma, temperature, u, eps):
    p, hard = _choice(logits, temperature, u)
    return ((hard + p - p.detach()) * _y(mu, log_sigma, temperature, eps).detach()).sum(-1)


def st_tau_not_sqrt(logits, mu, log_sigma, temperature, u, eps):
    p, hard = _choice(logits, temperature, u)
    y = mu + log_sigma.exp() * temperature * eps.unsqueeze(-1)
    return ((hard + p - p.detach()) * y).sum(-1)


def st_no_tau_in_softmax(logits, mu, log_sigma, temperature, u, eps):
    p, hard = _choice(logits, 1.0, u)
    return ((hard + p - p.detach()) * _y(mu, log_sigma, temperature, eps)).sum(-1)


def st_argmax(logits, mu, log_sigma, temperature, u, eps):
    p = torch.softmax(logits / temperature, dim=-1)
    hard = F.one_hot(p.argmax(-1), logits.shape[-1]).to(p.dtype)
    return ((hard + p - p.detach()) * _y(mu, log_sigma, temperature, eps)).sum(-1)


def st_count_above(logits, mu, log_sigma, temperature, u, eps):
    p = torch.softmax(logits / temperature, dim=-1)
    K = logits.shape[-1]
    k = (p.detach().cumsum(-1) > u.unsqueeze(-1)).sum(-1).clamp(max=K - 1)
    hard = F.one_hot(k, K).to(p.dtype)
    return ((hard + p - p.detach()) * _y(mu, log_sigma, temperature, eps)).sum(-1)


def st_forgets_hard(logits, mu, log_sigma, temperature, u, eps):
    p, _ = _choice(logits, temperature, u)
    return ((p - p.detach()) * _y(mu, log_sigma, temperature, eps)).sum(-1)  # forward: 0


def st_sigma_is_log_sigma(logits, mu, log_sigma, temperature, u, eps):
    p, hard = _choice(logits, temperature, u)
    y = mu + log_sigma * math.sqrt(temperature) * eps.unsqueeze(-1)
    return ((hard + p - p.detach()) * y).sum(-1)


def st_keeps_k_axis(logits, mu, log_sigma, temperature, u, eps):
    p, hard = _choice(logits, temperature, u)
    return (hard + p - p.detach()) * _y(mu, log_sigma, temperature, eps)


STRAIGHT_THROUGH_SAMPLE = {
    "hard choice only (no gradient to the logits)": st_hard_choice_only,
    "soft blend forward (sum_k p_k y_k)": st_soft_forward,
    "mixture mean": st_mixture_mean,
    "Gumbel-softmax relaxation": st_gumbel_softmax,
    "sample detached (no reparameterisation)": st_detached_sample,
    "sigma times tau, not sqrt(tau)": st_tau_not_sqrt,
    "temperature left out of the softmax": st_no_tau_in_softmax,
    "argmax instead of u's component": st_argmax,
    "counts cumsum > u (wrong component)": st_count_above,
    "forgets the hard one-hot (forward 0)": st_forgets_hard,
    "log_sigma used as sigma": st_sigma_is_log_sigma,
    "keeps the K axis": st_keeps_k_axis,
}


# --- ch08.kl_free_bits ------------------------------------------------------------------------


def _kl_per_dim(mean_q, std_q, mean_p, std_p):
    return torch.log(std_p / std_q) + (std_q ** 2 + (mean_q - mean_p) ** 2) / (2 * std_p ** 2) - 0.5


def kl_no_clamp(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q, mean_p, std_p).sum(-1)


def kl_clamp_per_dim(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q, mean_p, std_p).clamp(min=free_nats).sum(-1)


def kl_reversed(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_p, std_p, mean_q, std_q).sum(-1).clamp(min=free_nats)


def kl_missing_half(mean_q, std_q, mean_p, std_p, free_nats):
    kl = torch.log(std_p / std_q) + (std_q ** 2 + (mean_q - mean_p) ** 2) / std_p ** 2 - 1
    return kl.sum(-1).clamp(min=free_nats)


def kl_adds_free(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q, mean_p, std_p).sum(-1) + free_nats


def kl_min_not_max(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q, mean_p, std_p).sum(-1).clamp(max=free_nats)


def kl_mean_over_dims(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q, mean_p, std_p).mean(-1).clamp(min=free_nats)


def kl_std_as_variance(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q.sqrt(), mean_p, std_p.sqrt()).sum(-1).clamp(min=free_nats)


def kl_free_bits_without_stopping_the_gradient(mean_q, std_q, mean_p, std_p, free_nats):
    kl = _kl_per_dim(mean_q, std_q, mean_p, std_p).sum(-1)
    return kl + (kl.clamp(min=free_nats) - kl).detach()  # the right value, but every element still pushes


def kl_sums_the_batch(mean_q, std_q, mean_p, std_p, free_nats):
    return _kl_per_dim(mean_q, std_q, mean_p, std_p).sum().clamp(min=free_nats)


KL_FREE_BITS = {
    "forgets the free-bits clamp": kl_no_clamp,
    "clamps every dimension, then sums": kl_clamp_per_dim,
    "reversed KL(p || q)": kl_reversed,
    "missing the 1/2": kl_missing_half,
    "adds free_nats instead of clamping": kl_adds_free,
    "min instead of max": kl_min_not_max,
    "mean over the latent's dimensions": kl_mean_over_dims,
    "reads std as a variance": kl_std_as_variance,
    "right value, gradient not stopped below the budget": kl_free_bits_without_stopping_the_gradient,
    "sums over the batch too": kl_sums_the_batch,
}

WRONG_VERSIONS = {
    "ch08.lambda_return": LAMBDA_RETURN,
    "ch08.straight_through_sample": STRAIGHT_THROUGH_SAMPLE,
    "ch08.kl_free_bits": KL_FREE_BITS,
}
