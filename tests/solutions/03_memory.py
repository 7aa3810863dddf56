"""Solutions to course/03_memory.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch03.mdn_nll": '''
def mdn_nll(log_pi, mu, log_sigma, target):
    """Mean negative log-likelihood of `target` under a mixture of K Gaussians at every position."""
    y = target.unsqueeze(-1)                                  # (..., 1) against (..., K)
    log_normal = -0.5 * ((y - mu) / torch.exp(log_sigma)) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
    log_p = torch.logsumexp(log_pi + log_normal, dim=-1)      # (...)
    return -log_p.mean()
''',
    "ch03.mdn_sample": '''
def mdn_sample(log_pi, mu, log_sigma, temperature, generator):
    """One sample per position from a mixture of K Gaussians, at a temperature."""
    K = log_pi.shape[-1]
    probs = torch.softmax(log_pi / temperature, dim=-1).reshape(-1, K)
    k = torch.multinomial(probs, 1, generator=generator).reshape(*log_pi.shape[:-1], 1)
    mu_k = torch.gather(mu, -1, k).squeeze(-1)
    sigma_k = torch.gather(log_sigma, -1, k).squeeze(-1).exp()
    eps = torch.randn(mu_k.shape, generator=generator)
    return mu_k + sigma_k * math.sqrt(temperature) * eps
''',
    "ch03.teacher_forcing_pairs": '''
def teacher_forcing_pairs(z, a):
    """Inputs [z_t, a_t] and targets z_{t+1} for teacher forcing."""
    inputs = torch.cat([z[:, :-1], a[:, :-1]], dim=-1)
    targets = z[:, 1:]
    return inputs, targets
''',
    "ch03.imagine_step": '''
def imagine_step(mdnrnn, z, action, state, temperature, generator):
    """One imagined step: M reads (z, action) with its memory; the next z is sampled at a temperature."""
    a = torch.nn.functional.one_hot(action.long(), mdnrnn.config.action_dim).float()   # (B,) -> (B, A)
    out = mdnrnn.step(z, a, state)                                                      # heads read the new h
    z_next = mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator)
    return z_next, out.state
''',
}
