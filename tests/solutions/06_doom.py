"""Solutions to course/06_doom.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch06.thirds_action": '''
def thirds_action(y):
    """C's tanh outputs -> the game's actions: 0 stay, 1 move right, 2 move left."""
    actions = torch.zeros(y.shape, dtype=torch.int64)   # the middle third: stay
    actions[y > 1 / 3] = 1                              # the top third: move right
    actions[y < -1 / 3] = 2                             # the bottom third: move left
    return actions
''',
}
