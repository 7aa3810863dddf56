"""Solutions to course/07_car.ipynb, written as a learner would (no wmlib reference inside)."""

SOLUTIONS = {
    "ch07.car_action": '''
def car_action(y):
    """C's tanh outputs (B, 3) -> the car's (steer, gas, brake) (B, 3)."""
    steer = y[:, 0]                    # already in [-1, 1]
    gas = (y[:, 1] + 1) / 2            # [-1, 1] -> [0, 1]
    brake = torch.clamp(y[:, 2], 0, 1)  # only the positive half brakes
    return torch.stack([steer, gas, brake], dim=1)
''',
    "ch07.crn_fitness": '''
def crn_fitness(rollout_fn, solutions, seeds):
    """The mean return of every candidate over the same seeds (common random numbers)."""
    fitness = np.zeros(len(solutions))
    for i, params in enumerate(solutions):
        fitness[i] = np.mean([rollout_fn(params, seed) for seed in seeds])
    return fitness
''',
}
