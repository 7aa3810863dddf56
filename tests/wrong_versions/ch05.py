"""Plausible wrong answers to chapter 5's exercises. Each must be rejected by `check`."""

import torch

from wmlib.dream import dream_step
from wmlib.mdnrnn import LSTMState

# --- ch05.dream_step_alive ----------------------------------------------------------------------
# Written as a learner would: wmlib.dream.dream_step for M's step, then the bookkeeping.


def _frozen(alive, new, old):
    return torch.where(alive.unsqueeze(1), new, old)


def _state(alive, out, state):
    return LSTMState(_frozen(alive, out.state.h, state.h), _frozen(alive, out.state.c, state.c))


def ds_dead_still_earn(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    return _frozen(alive, out.z, z), _state(alive, out, state), alive & ~out.terminated, returns + 1


def ds_mask_after_done(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    alive_next = alive & ~out.terminated
    return _frozen(alive, out.z, z), _state(alive, out, state), alive_next, returns + alive_next.float()


def ds_done_never_masks(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    return _frozen(alive, out.z, z), _state(alive, out, state), alive, returns + alive.float()


def ds_dead_revived(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    return _frozen(alive, out.z, z), _state(alive, out, state), ~out.terminated, returns + alive.float()


def ds_dead_advance(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    return out.z, out.state, alive & ~out.terminated, returns + alive.float()


def ds_memory_advances_for_dead(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    return _frozen(alive, out.z, z), out.state, alive & ~out.terminated, returns + alive.float()


def ds_ending_step_frozen(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    alive_next = alive & ~out.terminated
    return _frozen(alive_next, out.z, z), _state(alive_next, out, state), alive_next, returns + alive.float()


def ds_threshold_half(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    alive_next = alive & ~(out.done_prob > 0.5)  # the end is sampled (u_done), not thresholded
    return _frozen(alive, out.z, z), _state(alive, out, state), alive_next, returns + alive.float()


def ds_temperature_ignored(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, 1.0, *noise)
    return _frozen(alive, out.z, z), _state(alive, out, state), alive & ~out.terminated, returns + alive.float()


def ds_noise_swapped(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    u, eps, u_done = noise
    out = dream_step(mdnrnn, z, actions, state, temperature, eps, u, u_done)
    return _frozen(alive, out.z, z), _state(alive, out, state), alive & ~out.terminated, returns + alive.float()


def ds_returns_in_place(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    returns += alive.float()
    return _frozen(alive, out.z, z), _state(alive, out, state), alive & ~out.terminated, returns


def ds_alive_as_float(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    alive_next = alive.float() * (1 - out.terminated.float())
    return _frozen(alive, out.z, z), _state(alive, out, state), alive_next, returns + alive.float()


def ds_state_swapped(mdnrnn, z, state, actions, alive, returns, temperature, noise):
    out = dream_step(mdnrnn, z, actions, state, temperature, *noise)
    h, c = _state(alive, out, state)
    return _frozen(alive, out.z, z), LSTMState(c, h), alive & ~out.terminated, returns + alive.float()


DREAM_STEP_ALIVE = {
    "dead dreams still accumulate reward": ds_dead_still_earn,
    "mask applied after the done of the same step": ds_mask_after_done,
    "done never sets the mask": ds_done_never_masks,
    "ended dreams come back when M says not done": ds_dead_revived,
    "ended dreams still advance": ds_dead_advance,
    "ended dreams' memory still advances": ds_memory_advances_for_dead,
    "a dream ending on this step does not take it": ds_ending_step_frozen,
    "p(done) > 0.5 instead of the sampled end": ds_threshold_half,
    "temperature ignored": ds_temperature_ignored,
    "noise u and eps swapped": ds_noise_swapped,
    "returns updated in place": ds_returns_in_place,
    "alive returned as floats": ds_alive_as_float,
    "h and c swapped in the state": ds_state_swapped,
}

# --- ch05.masked_returns ------------------------------------------------------------------------


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
    "ch05.dream_step_alive": DREAM_STEP_ALIVE,
    "ch05.masked_returns": MASKED_RETURNS,
}
