"""Solutions to course/08_beyond.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch08.lambda_return": '''
def lambda_return(rewards, continues, values, gamma, lam):
    """The lambda-return of every imagined step, computed backwards from the horizon."""
    T = rewards.shape[1]
    R = values[:, T]                       # R_T = v_T
    returns = []
    for t in range(T - 1, -1, -1):
        R = rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R)
        returns.append(R)
    return torch.stack(returns[::-1], dim=1)
''',
    "ch08.straight_through_sample": '''
def straight_through_sample(logits, mu, log_sigma, temperature, u, eps):
    """Chapter 5's dream sample, forward; gradients to mu, log_sigma and the logits, backward."""
    p = torch.softmax(logits / temperature, dim=-1)
    K = p.shape[-1]
    k = (p.detach().cumsum(dim=-1) <= u.unsqueeze(-1)).sum(dim=-1).clamp(max=K - 1)
    one_hot = torch.nn.functional.one_hot(k, K).to(p.dtype)
    choice = one_hot + p - p.detach()      # value: one-hot; gradient: that of p
    y = mu + torch.exp(log_sigma) * temperature ** 0.5 * eps.unsqueeze(-1)
    return (choice * y).sum(dim=-1)
''',
    "ch08.kl_free_bits": '''
def kl_free_bits(mean_q, std_q, mean_p, std_p, free_nats):
    """max(free_nats, KL(q || p)), the KL between diagonal Gaussians summed over the last axis."""
    per_dim = (torch.log(std_p / std_q)
               + (std_q ** 2 + (mean_q - mean_p) ** 2) / (2 * std_p ** 2)
               - 0.5)
    kl = per_dim.sum(dim=-1)
    return torch.clamp(kl, min=free_nats)  # below the budget: the value free_nats, no gradient
''',
}
