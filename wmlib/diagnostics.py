"""How good is M's imagination? Its memory along a real episode, and how fast its dreams drift from reality.

    memory_states(m, z, a)              M's memory before every step of one real sequence
    imagine(m, z0, actions, state)      M runs on its own samples, replaying given actions (open loop)
    imagination_error(m, episodes, n)   imagined latents (and frames) against the real ones, by horizon,
                                        beside the baseline "nothing changes"
    evaluate_mdnrnn(m, episodes)        held-out likelihood of real sequences, and the done head's scores
    held_out_scores(episodes)           for train_mdnrnn(validate=...): the scores reported every epoch

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from wmlib.latents import batch_tensors, cut_windows, sample_latents
from wmlib.mdnrnn import MDNRNN, LSTMState, mdn_log_prob, mdn_sample, teacher_forcing_pairs


@torch.no_grad()
def imagine(model: MDNRNN, z0: torch.Tensor, actions: torch.Tensor, state: LSTMState | None = None, *,
            temperature: float = 1.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Let M dream forward from a real latent, replaying a given action sequence (open loop).

    z0: (B, Z) the last real latent    actions: (B, N, A)    state: M's memory before z0 (or None)
    Each step feeds M its own sample: z_{t+1} ~ mdn_sample(M(z_t, a_t), temperature).
    Returns {"z": (B, N, Z) imagined latents z_1..z_N, "done_prob": (B, N) or absent,
             "reward": (B, N) or absent}.
    """
    z, zs, dones, rewards = z0, [], [], []
    for t in range(actions.shape[1]):
        out = model.step(z, actions[:, t], state)
        z = mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator)
        state = out.state
        zs.append(z)
        if out.done_logit is not None:
            dones.append(torch.sigmoid(out.done_logit))
        if out.reward is not None:
            rewards.append(out.reward)
    result = {"z": torch.stack(zs, 1) if zs else z0.new_zeros(z0.shape[0], 0, z0.shape[1])}
    if dones:
        result["done_prob"] = torch.stack(dones, 1)
    if rewards:
        result["reward"] = torch.stack(rewards, 1)
    return result


@torch.no_grad()
def memory_states(model: MDNRNN, z: torch.Tensor, a: torch.Tensor) -> LSTMState:
    """M's memory before every step of one real sequence: z (T, Z), a (T, A) -> LSTMState of (T+1, H).

    Row s is the memory after reading z_0..z_{s-1} and a_0..a_{s-1} (row 0 is the empty memory).
    """
    state = model.initial_state(1, z.device)
    hs, cs = [state.h], [state.c]
    for t in range(len(a)):
        state = model.step(z[t : t + 1], a[t : t + 1], state).state
        hs.append(state.h)
        cs.append(state.c)
    return LSTMState(torch.cat(hs), torch.cat(cs))


def _episode_errors(model: MDNRNN, ep: dict[str, np.ndarray], horizon: int, sums: dict[str, np.ndarray],
                    decode: Callable[[torch.Tensor], torch.Tensor] | None, frame_idx: list[int],
                    dims: slice | list[int], temperature: float, samples: int, stride: int,
                    generator: torch.Generator) -> np.ndarray:
    """Add one episode's squared errors by horizon into `sums`; returns its start counts by horizon (N,)."""
    device = next(model.parameters()).device
    mu = torch.as_tensor(ep["mu"], dtype=torch.float32, device=device)  # (T+1, Z)
    act = torch.as_tensor(ep["actions"], dtype=torch.float32, device=device)  # (T, A)
    T = len(act)
    starts = torch.arange(0, T, stride, device=device)  # (S,)
    if len(starts) == 0:
        return np.zeros(horizon)
    memory = memory_states(model, mu, act)
    # Steps s+1..s+horizon of every start; indices past the episode's end are clamped and masked.
    future = starts[:, None] + torch.arange(1, horizon + 1, device=device)[None]  # (S, N)
    valid = (future <= T).float()  # (S, N)
    actions = torch.cat([act, act.new_zeros(horizon, act.shape[1])])[future - 1]  # (S, N, A): a_s .. a_{s+N-1}
    state = LSTMState(memory.h[starts].repeat_interleave(samples, 0), memory.c[starts].repeat_interleave(samples, 0))
    dream = imagine(model, mu[starts].repeat_interleave(samples, 0), actions.repeat_interleave(samples, 0), state,
                    temperature=temperature, generator=generator)["z"].view(len(starts), samples, horizon, -1)
    truth = mu[future.clamp(max=T)]  # (S, N, Z)
    sq = (dream[..., dims] - truth[:, None][..., dims]) ** 2  # (S, samples, N, Z')
    sums["latent_mse"] += (sq.mean(dim=(1, 3)) * valid).sum(0).cpu().numpy()
    copy = ((mu[starts][:, None][..., dims] - truth[..., dims]) ** 2).mean(-1)  # (S, N)
    sums["copy_latent_mse"] += (copy * valid).sum(0).cpu().numpy()
    if decode is not None and frame_idx:
        real = decode(mu).flatten(1)  # (T+1, C*H*W)
        picked = dream[:, :, frame_idx]  # (S, samples, F, Z)
        chunks = picked.reshape(-1, picked.shape[-1]).split(512)
        imagined = torch.cat([decode(chunk).flatten(1) for chunk in chunks])
        imagined = imagined.view(len(starts), samples, len(frame_idx), -1)
        real_future = real[future[:, frame_idx].clamp(max=T)]  # (S, F, C*H*W)
        frame_err = ((imagined - real_future[:, None]) ** 2).mean(dim=(1, 3))  # (S, F)
        sums["frame_mse"][frame_idx] += (frame_err * valid[:, frame_idx]).sum(0).cpu().numpy()
        copy_err = ((real[starts][:, None] - real_future) ** 2).mean(-1)
        sums["copy_frame_mse"][frame_idx] += (copy_err * valid[:, frame_idx]).sum(0).cpu().numpy()
    return valid.sum(0).cpu().numpy()


@torch.no_grad()
def imagination_error(model: MDNRNN, episodes: Sequence[dict[str, np.ndarray]], horizon: int, *,
                      decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      frame_horizons: Sequence[int] | None = None, latent_dims: Sequence[int] | None = None,
                      temperature: float = 1.0, samples: int = 4, stride: int = 1,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """How far imagination drifts from reality, as a function of how many steps M dreams alone.

    From every `stride`-th step s of every episode, M reads the real latents z_0..z_s (V's mu)
    and actions, then imagines up to `horizon` steps on its own samples with the real actions,
    `samples` times. The error at horizon n compares imagined z_{s+n} with mu_{s+n}, V's
    encoding of the real frame. Baseline: "nothing changes", predicting mu_s for every later step.

    decode: z (B, Z) -> frames (B, C, H, W) in [0, 1] (V's decoder); adds frame errors, measured
            against V's reconstruction of the real frame so that V's own error is not counted.
    frame_horizons: decode only at these horizons (decoding dominates the cost); the frame
            errors are NaN at the others. None: every horizon.
    latent_dims: measure the latent errors on these dimensions only (for example the ones V
            uses: in the others z is noise that no M can predict). None: all of them.
    Returns arrays indexed by horizon 1..horizon (index 0 is horizon 1): "horizon", "count"
    (start points measured), "latent_mse", "copy_latent_mse", and with decode "frame_mse",
    "copy_frame_mse" (mean squared error per pixel and channel, pixels in [0, 1]).
    Long horizons can only be measured from starts early enough in long episodes.
    """
    frame_idx = list(range(horizon)) if frame_horizons is None else sorted({int(h) - 1 for h in frame_horizons})
    if frame_idx and not 0 <= frame_idx[0] <= frame_idx[-1] < horizon:
        raise ValueError(f"frame_horizons must lie in 1..{horizon}, got {sorted(frame_horizons)}")
    if horizon < 1 or samples < 1 or stride < 1:
        raise ValueError(f"horizon, samples and stride must be at least 1, "
                         f"got {horizon}, {samples}, {stride}")
    model.eval()
    g = torch.Generator().manual_seed(seed)
    keys = ("latent_mse", "copy_latent_mse") + (("frame_mse", "copy_frame_mse") if decode is not None else ())
    sums = {k: np.zeros(horizon) for k in keys}
    dims = slice(None) if latent_dims is None else list(latent_dims)
    count = np.zeros(horizon)
    for ep in episodes:
        count += _episode_errors(model, ep, horizon, sums, decode, frame_idx, dims, temperature, samples, stride, g)
    safe = np.maximum(count, 1)
    result = {"horizon": np.arange(1, horizon + 1), "count": count}
    result.update({k: np.where(count > 0, v / safe, np.nan) for k, v in sums.items()})
    if decode is not None:
        skipped = np.setdiff1d(np.arange(horizon), frame_idx)
        result["frame_mse"][skipped] = result["copy_frame_mse"][skipped] = np.nan
    return result


# ---------------------------------------------------------------------------------------------
# Held-out likelihood
# ---------------------------------------------------------------------------------------------


def _done_scores(logit: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
    """The done head's scores from its logits (n,) and the real ends (n,) 0/1."""
    rate = float(label.mean())
    base = min(max(rate, 1e-6), 1 - 1e-6)
    predicted = logit > 0
    return {
        "done_bce": float(F.binary_cross_entropy_with_logits(logit, label)),
        "done_base_bce": float(-(rate * math.log(base) + (1 - rate) * math.log(1 - base))),
        "done_base_rate": rate,
        "done_accuracy": float((predicted == label.bool()).float().mean()),
        "done_recall": float(predicted[label.bool()].float().mean()) if label.sum() > 0 else float("nan"),
        "done_precision": float(label[predicted].mean()) if predicted.any() else float("nan"),
    }


@torch.no_grad()
def evaluate_mdnrnn(model: MDNRNN, episodes: Sequence[dict[str, np.ndarray]], *, seq_len: int | None = None,
                    batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Held-out scores of M, teacher-forced over whole windows (z resampled from mu, logvar with `seed`).

    Returns {"nll": nats per latent dim and step, "transitions", and with a done head "done_bce",
    "done_base_bce" (the BCE of always predicting the base rate of `done`), "done_base_rate",
    "done_accuracy", "done_recall" (fraction of real ends predicted with p > 0.5), "done_precision";
    with a reward head "reward_mse"}.
    """
    model.eval()
    device = next(model.parameters()).device
    windows = cut_windows(episodes, seq_len or model.config.sequence_length)
    g = torch.Generator().manual_seed(seed)
    nll = reward_se = 0.0
    logits, labels = [], []
    n = 0
    for i in range(0, len(windows["mask"]), batch_size):
        b = batch_tensors(windows, np.arange(i, min(i + batch_size, len(windows["mask"]))), device)
        z = sample_latents(b["mu"], b["logvar"], g)
        inputs, targets = teacher_forcing_pairs(z, b["actions"])
        out = model(inputs[..., : model.config.z_dim], inputs[..., model.config.z_dim :])
        m = b["mask"]
        log_p = mdn_log_prob(out.log_pi[m], out.mu[m], out.log_sigma[m], targets[m])  # (count, Z)
        nll += float(-log_p.mean(-1).sum())
        if out.reward is not None:
            reward_se += float(((out.reward[m] - b["rewards"][m]) ** 2).sum())
        if out.done_logit is not None:
            logits.append(out.done_logit[m].cpu())
            labels.append(b["terminated"][m].float().cpu())
        n += int(m.sum())
    result = {"nll": nll / n, "transitions": n}
    if model.config.predict_reward:
        result["reward_mse"] = reward_se / n
    if logits:
        result.update(_done_scores(torch.cat(logits), torch.cat(labels)))
    return result


def held_out_scores(episodes: Sequence[dict[str, np.ndarray]], *, seed: int = 0) -> Callable[[MDNRNN], dict]:
    """For `train_mdnrnn(validate=...)`: M's held-out "nll" on `episodes` after every epoch, and the heads'
    "done_bce", "done_base_bce" and "reward_mse" where M has them (see `evaluate_mdnrnn`)."""
    kept = ("nll", "done_bce", "done_base_bce", "reward_mse")

    def scores(model: MDNRNN) -> dict[str, float]:
        return {k: v for k, v in evaluate_mdnrnn(model, episodes, seed=seed).items() if k in kept}

    return scores
