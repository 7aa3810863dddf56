"""Solutions to course/01_problem.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch01.discounted_return": '''
def discounted_return(rewards, gamma):
    """Return sum_t gamma**t * rewards[t] as a float."""
    total, weight = 0.0, 1.0
    for r in rewards:
        total += weight * float(r)
        weight *= gamma
    return total
''',
    "ch01.bellman_target": '''
def bellman_target(rewards, next_q, dones, gamma):
    """The DQN regression target for a batch of B transitions."""
    best_next = next_q.max(dim=1).values
    return rewards + gamma * (1.0 - dones.float()) * best_next
''',
}
