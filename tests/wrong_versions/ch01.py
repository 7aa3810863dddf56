"""Plausible wrong answers to chapter 1's exercises. Each must be rejected by `check`."""

import numpy as np


def dr_exponent_plus_one(rewards, gamma):
    return sum(gamma ** (t + 1) * r for t, r in enumerate(rewards))


def dr_reversed_discount(rewards, gamma):
    T = len(rewards)
    return sum(gamma ** (T - 1 - t) * r for t, r in enumerate(rewards))


def dr_no_discount(rewards, gamma):
    return float(sum(rewards))


def dr_gamma_times_t(rewards, gamma):
    return sum(gamma * t * r if t else r for t, r in enumerate(rewards))


def dr_skips_first(rewards, gamma):
    rewards = list(rewards)
    return sum(gamma**t * r for t, r in enumerate(rewards[1:], start=1))


def dr_only_last(rewards, gamma):
    rewards = list(rewards)
    return gamma ** (len(rewards) - 1) * rewards[-1] if rewards else 0.0


def dr_returns_list(rewards, gamma):
    return [gamma**t * r for t, r in enumerate(rewards)]


def dr_mean_instead_of_sum(rewards, gamma):
    rewards = list(rewards)
    return float(np.mean([gamma**t * r for t, r in enumerate(rewards)])) if rewards else 0.0


DISCOUNTED_RETURN = {
    "exponent t+1 (first reward discounted)": dr_exponent_plus_one,
    "discount runs backwards": dr_reversed_discount,
    "no discount at all": dr_no_discount,
    "gamma * t instead of gamma ** t": dr_gamma_times_t,
    "first reward skipped": dr_skips_first,
    "only the last reward": dr_only_last,
    "returns the list of terms": dr_returns_list,
    "mean instead of sum": dr_mean_instead_of_sum,
}


def bt_bootstrap_through_done(rewards, next_q, dones, gamma):
    return rewards + gamma * next_q.max(dim=1).values


def bt_min_instead_of_max(rewards, next_q, dones, gamma):
    return rewards + gamma * (1 - dones.float()) * next_q.min(dim=1).values


def bt_mean_instead_of_max(rewards, next_q, dones, gamma):
    return rewards + gamma * (1 - dones.float()) * next_q.mean(dim=1)


def bt_max_over_batch(rewards, next_q, dones, gamma):
    return rewards + gamma * (1 - dones.float()) * next_q.max(dim=0).values


def bt_done_masks_reward_too(rewards, next_q, dones, gamma):
    return (1 - dones.float()) * (rewards + gamma * next_q.max(dim=1).values)


def bt_done_inverted(rewards, next_q, dones, gamma):
    return rewards + gamma * dones.float() * next_q.max(dim=1).values


def bt_no_gamma(rewards, next_q, dones, gamma):
    return rewards + (1 - dones.float()) * next_q.max(dim=1).values


def bt_gamma_squared(rewards, next_q, dones, gamma):
    return rewards + gamma**2 * (1 - dones.float()) * next_q.max(dim=1).values


def bt_keepdim(rewards, next_q, dones, gamma):
    return rewards[:, None] + gamma * (1 - dones.float())[:, None] * next_q.max(dim=1, keepdim=True).values


def bt_sum_over_actions(rewards, next_q, dones, gamma):
    return rewards + gamma * (1 - dones.float()) * next_q.sum(dim=1)


def bt_in_place(rewards, next_q, dones, gamma):
    rewards += gamma * (1 - dones.float()) * next_q.max(dim=1).values
    return rewards


def bt_returns_q_not_target(rewards, next_q, dones, gamma):
    return next_q.max(dim=1).values


def bt_max_returns_indices(rewards, next_q, dones, gamma):
    return rewards + gamma * (1 - dones.float()) * next_q.argmax(dim=1).float()


def bt_numpy_result(rewards, next_q, dones, gamma):
    out = rewards.numpy() + gamma * (1 - dones.float().numpy()) * next_q.numpy().max(axis=1)
    return out.tolist()


BELLMAN_TARGET = {
    "bootstraps through done": bt_bootstrap_through_done,
    "min instead of max": bt_min_instead_of_max,
    "mean instead of max": bt_mean_instead_of_max,
    "max over the batch (dim=0)": bt_max_over_batch,
    "done also zeroes the reward": bt_done_masks_reward_too,
    "done mask inverted": bt_done_inverted,
    "gamma forgotten": bt_no_gamma,
    "gamma squared": bt_gamma_squared,
    "keepdim=True gives (B, 1)": bt_keepdim,
    "sum over actions": bt_sum_over_actions,
    "modifies rewards in place": bt_in_place,
    "returns max Q without the reward": bt_returns_q_not_target,
    "argmax (an index) instead of max": bt_max_returns_indices,
    "returns a Python list": bt_numpy_result,
}

WRONG_VERSIONS = {
    "ch01.discounted_return": DISCOUNTED_RETURN,
    "ch01.bellman_target": BELLMAN_TARGET,
}
