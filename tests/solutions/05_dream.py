"""Solutions to course/05_dream.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch05.masked_returns": '''
def masked_returns(rewards, dones):
    """Each dream's return: the sum of its rewards up to and including its first done."""
    d = dones.float()
    ended_before = d.cumsum(dim=1) - d          # how many dones came strictly before step t
    alive = (ended_before == 0).to(rewards.dtype)
    return (rewards * alive).sum(dim=1)
''',
    "ch05.dream_step_alive": '''
def dream_step_alive(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    """One step of B dreams that keep their places in the batch after they end."""
    u, eps, u_done = noise
    out = dream_step(mdnrnn, z, actions, state, temperature, u, eps, u_done)   # M imagines every row
    was_alive = alive[:, None]                                    # (B, 1), broadcasts over Z and H
    z_next = torch.where(was_alive, out.z, z)                     # ended dreams keep what they had
    h_next = torch.where(was_alive, out.state.h, state.h)
    c_next = torch.where(was_alive, out.state.c, state.c)
    returns_next = returns + alive.float()                        # +1 for every dream alive at this step
    alive_next = alive & ~out.terminated                          # ... and it ends where M says so
    return z_next, LSTMState(h_next, c_next), alive_next, returns_next
''',
}
