"""Plausible wrong answers to chapter 7's exercises. Each must be rejected by `check`."""

import numpy as np
import torch

# --- ch07.car_action --------------------------------------------------------------------------


def ca_gas_not_rescaled(y):
    return torch.stack([y[:, 0], y[:, 1], y[:, 2].clamp(0, 1)], dim=1)  # gas in [-1, 1]


def ca_gas_clipped(y):
    return torch.stack([y[:, 0], y[:, 1].clamp(0, 1), y[:, 2].clamp(0, 1)], dim=1)  # half the range lost


def ca_brake_rescaled(y):
    return torch.stack([y[:, 0], (y[:, 1] + 1) / 2, (y[:, 2] + 1) / 2], dim=1)  # brakes half-way at y2 = 0


def ca_brake_not_clipped(y):
    return torch.stack([y[:, 0], (y[:, 1] + 1) / 2, y[:, 2]], dim=1)


def ca_brake_abs(y):
    return torch.stack([y[:, 0], (y[:, 1] + 1) / 2, y[:, 2].abs()], dim=1)


def ca_steer_rescaled(y):
    return torch.stack([(y[:, 0] + 1) / 2, (y[:, 1] + 1) / 2, y[:, 2].clamp(0, 1)], dim=1)


def ca_gas_brake_swapped(y):
    return torch.stack([y[:, 0], y[:, 2].clamp(0, 1), (y[:, 1] + 1) / 2], dim=1)


def ca_transposed(y):
    return torch.stack([y[:, 0], (y[:, 1] + 1) / 2, y[:, 2].clamp(0, 1)], dim=0)  # (3, B)


def ca_rounded(y):
    return torch.stack([y[:, 0], (y[:, 1] + 1) / 2, y[:, 2].clamp(0, 1)], dim=1).round().long()


def ca_in_place(y):
    y[:, 1] = (y[:, 1] + 1) / 2
    y[:, 2] = y[:, 2].clamp(0, 1)
    return y


def ca_numpy_rows(y):
    return [np.array([a, (b + 1) / 2, max(c, 0.0)]) for a, b, c in y.tolist()]


CAR_ACTION = {
    "gas not rescaled (y1 as it is)": ca_gas_not_rescaled,
    "gas clipped instead of rescaled": ca_gas_clipped,
    "brake rescaled like the gas": ca_brake_rescaled,
    "brake not clipped": ca_brake_not_clipped,
    "brake as |y2|": ca_brake_abs,
    "steer rescaled to [0, 1]": ca_steer_rescaled,
    "gas and brake swapped": ca_gas_brake_swapped,
    "returns (3, B)": ca_transposed,
    "rounds to whole numbers": ca_rounded,
    "overwrites y in place": ca_in_place,
    "returns a list of NumPy rows": ca_numpy_rows,
}

# --- ch07.crn_fitness -------------------------------------------------------------------------


def cf_own_seed_each(rollout_fn, solutions, seeds):
    return np.array([rollout_fn(x, seeds[i % len(seeds)]) for i, x in enumerate(solutions)])  # one track each


def cf_first_seed_only(rollout_fn, solutions, seeds):
    return np.array([rollout_fn(x, seeds[0]) for x in solutions])


def cf_sum(rollout_fn, solutions, seeds):
    return np.array([sum(rollout_fn(x, s) for s in seeds) for x in solutions])


def cf_seed_index(rollout_fn, solutions, seeds):
    return np.array([np.mean([rollout_fn(x, j) for j in range(len(seeds))]) for x in solutions])


def cf_fresh_seeds(rollout_fn, solutions, seeds):
    rng = np.random.default_rng()
    return np.array([np.mean([rollout_fn(x, int(rng.integers(2**31))) for _ in seeds]) for x in solutions])


def cf_matrix(rollout_fn, solutions, seeds):
    return np.array([[rollout_fn(x, s) for s in seeds] for x in solutions])  # (N, R), not averaged


def cf_mean_over_candidates(rollout_fn, solutions, seeds):
    return np.array([[rollout_fn(x, s) for s in seeds] for x in solutions]).mean(axis=0)  # (R,)


def cf_best_track(rollout_fn, solutions, seeds):
    return np.array([max(rollout_fn(x, s) for s in seeds) for x in solutions])


def cf_median(rollout_fn, solutions, seeds):
    return np.array([np.median([rollout_fn(x, s) for s in seeds]) for x in solutions])


def cf_shifted_seeds(rollout_fn, solutions, seeds):
    return np.array([np.mean([rollout_fn(x, s + i) for s in seeds]) for i, x in enumerate(solutions)])


def cf_normalises_in_place(rollout_fn, solutions, seeds):
    solutions -= solutions.mean(axis=0)  # changes the caller's population
    return np.array([np.mean([rollout_fn(x, s) for s in seeds]) for x in solutions])


CRN_FITNESS = {
    "each candidate plays its own seed": cf_own_seed_each,
    "only the first seed": cf_first_seed_only,
    "sum instead of mean": cf_sum,
    "seed index instead of the random seed": cf_seed_index,
    "fresh random seeds for every candidate": cf_fresh_seeds,
    "returns the (N, R) matrix": cf_matrix,
    "mean over the candidates": cf_mean_over_candidates,
    "the best track instead of the mean": cf_best_track,
    "median instead of mean": cf_median,
    "seeds shifted per candidate": cf_shifted_seeds,
    "changes the solutions in place": cf_normalises_in_place,
}

WRONG_VERSIONS = {
    "ch07.car_action": CAR_ACTION,
    "ch07.crn_fitness": CRN_FITNESS,
}
