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
}
