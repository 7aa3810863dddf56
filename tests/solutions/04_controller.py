"""Solutions to course/04_controller.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch04.controller_action": '''
def controller_action(W, b, z, h):
    """The controller's output for a batch: tanh(W [z; h] + b)."""
    x = torch.cat([z, h], dim=1)          # (B, Z+H), z first
    return torch.tanh(x @ W.T + b)        # (B, A)
''',
    "ch04.controller_param_count": '''
def controller_param_count(z_dim, h_dim, action_dim):
    """The number of parameters of the linear controller tanh(W [z; h] + b)."""
    weights = (z_dim + h_dim) * action_dim   # W is (A, Z+H)
    biases = action_dim                      # one bias per output
    return weights + biases
''',
    "ch04.centered_ranks": '''
def centered_ranks(fitness):
    """Replace each fitness by its rank, mapped linearly onto [-0.5, 0.5]."""
    fitness = np.asarray(fitness)
    n = len(fitness)
    ranks = np.empty(n)
    ranks[np.argsort(fitness)] = np.arange(n)   # the worst gets rank 0, the best n - 1
    return ranks / (n - 1) - 0.5
''',
    "ch04.agent_decide": '''
def agent_decide(vae, mdnrnn, controller, frame, state):
    """One real step of the agent: see the frame, decide, remember."""
    mu, _ = vae.encode(frames_to_tensor(frame))          # (1, Z): V's mean, as the agent uses it
    y = controller(mu, state.h)                          # (1, 1): C reads z and the memory before this frame
    action = map_action(y[0].numpy(), controller.config.action_map)   # 0 or 1 for CartPole
    a = controller_to_m_actions(y, controller.config, mdnrnn.config.action_dim)  # (1, 2) one-hot, as M reads it
    next_state = mdnrnn.step(mu, a, state).state         # M remembers what was seen and done
    return action, next_state
''',
}
