"""Plausible wrong answers to chapter 5's exercise. Each must be rejected by `check`."""

import torch


def mr_stops_before_done(rewards, dones):
    alive = torch.cumprod(1 - dones.float(), dim=1)  # 0 from the done step on: its reward is lost
    return (rewards * alive).sum(1)


def mr_counts_after_done(rewards, dones):
    return rewards.sum(1)


def mr_ignores_rows_without_done(rewards, dones):
    d = dones.float()
    before = torch.cumsum(d, 1) - d
    ended = d.sum(1) > 0
    return torch.where(ended, (rewards * (before == 0)).sum(1), torch.zeros(len(rewards)))


def mr_last_done(rewards, dones):
    d = dones.float()
    after = torch.flip(torch.cumsum(torch.flip(d, [1]), 1), [1]) - d  # dones strictly after t
    last_or_none = (d.sum(1, keepdim=True) == 0) | (after > 0) | (d > 0)
    return (rewards * last_or_none).sum(1)


def mr_cumsum_le_one(rewards, dones):
    return (rewards * (torch.cumsum(dones.float(), 1) <= 1)).sum(1)


def mr_mask_inverted(rewards, dones):
    d = dones.float()
    before = torch.cumsum(d, 1) - d
    return (rewards * (before > 0)).sum(1)


def mr_keepdim(rewards, dones):
    d = dones.float()
    before = torch.cumsum(d, 1) - d
    return (rewards * (before == 0)).sum(1, keepdim=True)


def mr_sum_over_batch(rewards, dones):
    d = dones.float()
    before = torch.cumsum(d, 0) - d
    return (rewards * (before == 0)).sum(0)


def mr_mean_not_sum(rewards, dones):
    d = dones.float()
    before = torch.cumsum(d, 1) - d
    return (rewards * (before == 0)).mean(1)


def mr_only_done_reward(rewards, dones):
    return (rewards * dones.float()).sum(1)


def mr_in_place(rewards, dones):
    d = dones.float()
    rewards *= (torch.cumsum(d, 1) - d) == 0
    return rewards.sum(1)


def mr_loop_breaks_on_any_row(rewards, dones):
    B, T = rewards.shape
    out = torch.zeros(B)
    for t in range(T):
        out += rewards[:, t]
        if dones[:, t].any():  # stops every row at the first done of any row
            break
    return out


def mr_returns_list(rewards, dones):
    d = dones.float()
    before = torch.cumsum(d, 1) - d
    return (rewards * (before == 0)).sum(1).tolist()


MASKED_RETURNS = {
    "stops before the done step (its reward lost)": mr_stops_before_done,
    "counts what comes after the done": mr_counts_after_done,
    "rows with no done get 0": mr_ignores_rows_without_done,
    "ends at the last done, not the first": mr_last_done,
    "cumsum(dones) <= 1 (counts on to the second done)": mr_cumsum_le_one,
    "mask inverted (counts only after the done)": mr_mask_inverted,
    "keepdim=True gives (B, 1)": mr_keepdim,
    "cumsum and sum over the batch (dim=0)": mr_sum_over_batch,
    "mean instead of sum": mr_mean_not_sum,
    "only the done step's reward": mr_only_done_reward,
    "modifies rewards in place": mr_in_place,
    "one row's done stops every row": mr_loop_breaks_on_any_row,
    "returns a Python list": mr_returns_list,
}

WRONG_VERSIONS = {
    "ch05.masked_returns": MASKED_RETURNS,
}
