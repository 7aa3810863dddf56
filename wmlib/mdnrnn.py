"""M: the MDN-RNN that remembers the past and predicts a distribution over the next latent.

One frame is not enough to act: a picture of a pole shows its angle, not which way it is falling.
M reads the latents one step at a time and keeps a memory h (an LSTM). From h it predicts the
next latent, not as one point but as a mixture of K Gaussians per latent dimension, because the
world can fork (the same picture and action can be followed by different futures):

    x_t = [z_t, a_t]                                  (B, Z + A)
    h_t, c_t = LSTM(x_t, (h_{t-1}, c_{t-1}))           (B, H)
    p(z_{t+1,j} | h_t) = sum_k pi_{jk} N(mu_{jk}, sigma_{jk}^2)   for every dimension j (K each)

Each latent dimension j has its own mixture weights pi_{j1..jK} (the paper's choice). Optional
heads read the same h_t: the reward of the step (mean squared error) and whether the episode
ends (`done`, a logit trained with binary cross-entropy, as in the paper's Doom model).

Training uses teacher forcing on latents that V encoded once (mu and logvar per frame); each
batch draws a fresh z = mu + sigma * eps, as the paper does, so M never sees the exact same
latent twice. At test time M can run on its own samples: that is imagination, and the dream.

    out = m(z, a)                  # z (B,T,Z), a (B,T,A): the whole sequence, batch-first
    out = m.step(z, a, state)      # z (B,Z),   a (B,A):   one step, for acting and dreaming
    z_next = mdn_sample(out.log_pi, out.mu, out.log_sigma, temperature, generator)

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from wmlib.checkpoints import data_fingerprint, load_named, read_metadata, resume_training, save_training
from wmlib.config import MDNRNNConfig, default_device
from wmlib.tasks import world_spec

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# ---------------------------------------------------------------------------------------------
# The math: pure functions
# ---------------------------------------------------------------------------------------------


def mdn_log_prob(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                 target: torch.Tensor) -> torch.Tensor:
    """log p(target) under a mixture of K one-dimensional Gaussians, at every position.

        log p(y) = logsumexp_k [ log pi_k - log sigma_k - 1/2 log(2 pi) - 1/2 ((y - mu_k) / sigma_k)^2 ]

    Working in logs with logsumexp keeps it finite where p(y) underflows (a target 100 sigmas
    away has p = e^-5000, which is 0 in float32, but its log is a fine number).
    log_pi, mu, log_sigma: (..., K) with log_pi normalised over K    target: (...)
    Returns (...).
    """
    if not (log_pi.shape == mu.shape == log_sigma.shape):
        raise ValueError(f"log_pi, mu and log_sigma must have the same shape (..., K), got "
                         f"{tuple(log_pi.shape)}, {tuple(mu.shape)}, {tuple(log_sigma.shape)}")
    if tuple(target.shape) != tuple(mu.shape[:-1]):
        raise ValueError(f"target must have the shape of mu without its last (K) axis, "
                         f"{tuple(mu.shape[:-1])}, got {tuple(target.shape)}")
    standardised = (target.unsqueeze(-1) - mu) * torch.exp(-log_sigma)
    log_normal = -0.5 * standardised.pow(2) - log_sigma - LOG_SQRT_2PI
    return torch.logsumexp(log_pi + log_normal, dim=-1)


def mdn_nll(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
            target: torch.Tensor) -> torch.Tensor:
    """The MDN loss: the mean over all positions of -log sum_k pi_k N(target; mu_k, sigma_k).

    log_pi, mu, log_sigma: (..., K), log_pi normalised over K    target: (...)
    Returns a 0-d tensor (nats per latent dimension and step). See `mdn_log_prob`.
    """
    return -mdn_log_prob(log_pi, mu, log_sigma, target).mean()


def mdn_sample(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one value per position from the mixture, with a temperature tau.

        k ~ Categorical(softmax(log_pi / tau))          tau > 1 flattens the choice of component
        y = mu_k + sigma_k * sqrt(tau) * eps,  eps ~ N(0, 1)   and widens each Gaussian

    tau = 1 samples the model as trained; tau < 1 is a tamer, more predictable world, tau > 1 a
    wilder one (the paper trains its Doom controller in a dream at tau = 1.15).
    log_pi, mu, log_sigma: (..., K)    Returns (...).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not (log_pi.shape == mu.shape == log_sigma.shape):
        raise ValueError(f"log_pi, mu and log_sigma must have the same shape (..., K), got "
                         f"{tuple(log_pi.shape)}, {tuple(mu.shape)}, {tuple(log_sigma.shape)}")
    K = log_pi.shape[-1]
    probs = torch.softmax(log_pi.detach().reshape(-1, K) / temperature, dim=-1)
    k = torch.multinomial(probs, 1, generator=generator).view(log_pi.shape[:-1] + (1,))
    eps = torch.randn(log_pi.shape[:-1], generator=generator, device=log_pi.device, dtype=mu.dtype)
    mu_k = mu.gather(-1, k).squeeze(-1)
    sigma_k = log_sigma.gather(-1, k).squeeze(-1).exp()
    return mu_k + sigma_k * math.sqrt(temperature) * eps


def mdn_mean(log_pi: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """The mixture's mean, sum_k pi_k mu_k. (..., K) -> (...)."""
    return (log_pi.exp() * mu).sum(-1)


def teacher_forcing_pairs(z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets for teacher forcing: M reads [z_t, a_t] and must predict z_{t+1}.

    z: (B, T, Z) latents    a: (B, T, A), a[:, t] the action taken after seeing z[:, t]
    Returns inputs (B, T-1, Z+A) = [z_t, a_t] for t < T-1, and targets (B, T-1, Z) = z_{t+1}.
    The last action has no next latent to predict, so it is not used.
    """
    if z.dim() != 3 or a.dim() != 3 or z.shape[:2] != a.shape[:2]:
        raise ValueError(f"expected z (B, T, Z) and a (B, T, A) with the same B and T, "
                         f"got {tuple(z.shape)} and {tuple(a.shape)}")
    return torch.cat([z[:, :-1], a[:, :-1]], dim=-1), z[:, 1:]


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """bfloat16 / float16 -> float32; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class LSTMState(NamedTuple):
    """M's memory, batch-first: h (B, H) is what the controller reads; c (B, H) is the cell."""

    h: torch.Tensor
    c: torch.Tensor


class MDNOutput(NamedTuple):
    """What `MDNRNN.forward` (shapes (B, T, ...)) and `MDNRNN.step` (shapes (B, ...)) return.

    log_pi, mu, log_sigma: (B, [T,] Z, K) the mixture over the next latent, log_pi normalised over K
    reward:     (B, [T]) predicted reward of the step, or None without a reward head
    done_logit: (B, [T]) logit of "the episode ends after this step", or None without a done head
    state:      the LSTMState after the last step
    """

    log_pi: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor
    reward: torch.Tensor | None
    done_logit: torch.Tensor | None
    state: LSTMState


class MDNRNN(nn.Module):
    """The paper's M (appendix A.2): one LSTM layer, then linear heads on its output h_t.

    Heads: the mixture (3 * Z * K numbers: logits of pi, mu, log sigma), and optionally the
    reward (1) and the done logit (1). With the CarRacing config (Z 32, A 3, H 256, K 5) it has
    423,392 parameters.
    """

    def __init__(self, config: MDNRNNConfig | None = None):
        super().__init__()
        config = config if config is not None else MDNRNNConfig()
        if min(config.z_dim, config.action_dim, config.hidden_size, config.num_mixtures) < 1:
            raise ValueError(f"z_dim, action_dim, hidden_size and num_mixtures must be positive, "
                             f"got {config}")
        self.config = config
        Z, A, H, K = config.z_dim, config.action_dim, config.hidden_size, config.num_mixtures
        self.lstm = nn.LSTM(Z + A, H, batch_first=True)
        self.mdn = nn.Linear(H, 3 * Z * K)
        self.reward_head = nn.Linear(H, 1) if config.predict_reward else None
        self.done_head = nn.Linear(H, 1) if config.predict_done else None

    def num_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> LSTMState:
        """An empty memory: zeros (B, H) for h and c."""
        device = device if device is not None else next(self.parameters()).device
        zeros = torch.zeros(batch_size, self.config.hidden_size, device=device)
        return LSTMState(zeros, zeros.clone())

    def _check(self, z: torch.Tensor, a: torch.Tensor, dims: int) -> None:
        Z, A = self.config.z_dim, self.config.action_dim
        lead = "(B, T, " if dims == 3 else "(B, "
        for name, x, n in (("z", z, Z), ("a", a, A)):
            if not isinstance(x, torch.Tensor) or x.dim() != dims or x.shape[-1] != n:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                hint = (" (one-hot encode discrete actions with wmlib.envs.encode_actions)"
                        if name == "a" else "")
                raise ValueError(f"expected {name} of shape {lead}{n}), got {shape}{hint}")
        if z.shape[:-1] != a.shape[:-1]:
            raise ValueError(f"z and a must agree on their leading axes, "
                             f"got {tuple(z.shape)} and {tuple(a.shape)}")

    def heads(self, h: torch.Tensor, raw_logits: bool = False) -> tuple[torch.Tensor, ...]:
        """LSTM outputs h (..., H) -> log_pi, mu, log_sigma (..., Z, K), reward (...), done_logit (...).

        reward and done_logit are None when the model has no such head. raw_logits=True returns the
        mixture logits without the log-softmax (the dream's sampler takes a softmax anyway, and on a
        CPU the log-softmax over K = 5 costs about as much as the output layer itself).

        Shared by `forward` and `step`, so acting, dreaming and training read h the same way.
        """
        Z, K = self.config.z_dim, self.config.num_mixtures
        # The heads come out in float32 even from a bfloat16 copy of M (wmlib.dream.dream_model).
        params = _at_least_float32(self.mdn(h)).view(*h.shape[:-1], Z, 3 * K)
        logits, mu, log_sigma = params.split(K, dim=-1)
        log_pi = logits if raw_logits else F.log_softmax(logits, dim=-1)  # per latent dim, over its K components
        reward = _at_least_float32(self.reward_head(h)).squeeze(-1) if self.reward_head is not None else None
        done_logit = _at_least_float32(self.done_head(h)).squeeze(-1) if self.done_head is not None else None
        return log_pi, mu, log_sigma, reward, done_logit

    def forward(self, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None = None,
                raw_logits: bool = False) -> MDNOutput:
        """Run M over whole sequences (teacher forcing).

        z: (B, T, Z)    a: (B, T, A)    state: LSTMState with (B, H) tensors, or None for an empty memory
        Returns MDNOutput with (B, T, Z, K) mixture parameters predicting z_{t+1}, (B, T) reward
        and done logit, and the state after step T.
        """
        self._check(z, a, 3)
        hc = None if state is None else (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous())
        out, (h, c) = self.lstm(torch.cat([z, a], dim=-1), hc)
        return MDNOutput(*self.heads(out, raw_logits), LSTMState(h[0], c[0]))

    def step(self, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None = None,
             raw_logits: bool = False) -> MDNOutput:
        """One step, for acting and dreaming: z (B, Z), a (B, A), state (B, H) each, or None.

        Returns MDNOutput with (B, Z, K) mixture parameters for z_{t+1}, (B,) reward and done
        logit, and the new state, whose h (B, H) is what the controller reads.
        """
        self._check(z, a, 2)
        out = self.forward(z.unsqueeze(1), a.unsqueeze(1), state, raw_logits)
        return MDNOutput(*(x.squeeze(1) if isinstance(x, torch.Tensor) else x for x in out[:5]), out.state)


def preset_config(env_name: str, z_dim: int) -> MDNRNNConfig:
    """M's config for one of the course's worlds (its `m_preset` in wmlib.tasks), given V's latent size.

    "carracing": the paper's CarRacing model (H 256, K 5, A 3: steer, gas, brake).
    "cartpole-pixels": A 2 (one-hot left/right) and a done head, as in the paper's Doom model,
    because surviving is the whole game; a small, fast M (wmlib.tasks says why each size).
    """
    return world_spec(env_name, wanted="M preset").mdnrnn_config(z_dim)


PRESET_EPOCHS = {"cartpole-pixels": 100, "carracing": 20}
"""Default training epochs of `python -m wmlib train-mdnrnn` per environment."""


# ---------------------------------------------------------------------------------------------
# Latent sequences: encode rollouts once with V, then cut windows for training
# ---------------------------------------------------------------------------------------------

LATENT_KEYS = ("mu", "logvar", "actions", "rewards", "terminated")
"""An encoded episode of T steps (`python -m wmlib encode`, i.e. wmlib.vae.encode_rollouts):
mu, logvar (T+1, Z) float32 from V; actions (T,) ints (discrete) or (T, A) floats; rewards (T,);
terminated (T,) bool. In memory, actions are always (T, A) float32 (one-hot when discrete)."""


def as_action_vectors(actions: np.ndarray, action_dim: int) -> np.ndarray:
    """Actions as M reads them, (T, A) float32: one-hot for discrete actions (T,) ints, as-is for (T, A)."""
    actions = np.asarray(actions)
    if actions.ndim == 1:
        if len(actions) and (actions.min() < 0 or actions.max() >= action_dim):
            raise ValueError(f"discrete actions {actions.min()}..{actions.max()} do not fit "
                             f"action_dim = {action_dim}")
        return np.eye(action_dim, dtype=np.float32)[actions.astype(np.int64)]
    if actions.ndim != 2 or actions.shape[1] != action_dim:
        raise ValueError(f"actions are {actions.shape}, expected (T,) discrete or (T, {action_dim})")
    return actions.astype(np.float32)


def load_latent_episodes(source: str | os.PathLike | Sequence[str | os.PathLike],
                         action_dim: int | None = None) -> list[dict[str, np.ndarray]]:
    """Read encoded episodes (a directory of .npz files, or a list of files) into memory.

    action_dim: A; discrete actions (T,) are one-hot encoded to (T, A), so it is required for them.
    Latents (mu and logvar: 64 numbers per frame against 12,288 pixels) are small, so they are all kept in memory.
    """
    if isinstance(source, (str, os.PathLike)):
        directory = Path(source)
        files = sorted(directory.glob("*.npz")) if directory.is_dir() else []
        if not files:
            raise FileNotFoundError(f"no encoded episodes (.npz) in {directory}; make them with "
                                    f"`python -m wmlib encode --vae VAE --rollouts DIR --out {directory}`")
    else:
        files = [Path(f) for f in source]
    episodes = []
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as data:
                episode = {k: data[k] for k in LATENT_KEYS}
        except KeyError as exc:
            raise ValueError(f"{path} lacks {exc}; expected the arrays {', '.join(LATENT_KEYS)} "
                             "(encode rollouts with `python -m wmlib encode`)") from None
        except OSError as exc:
            raise ValueError(f"{path} is not a readable .npz file ({exc})") from exc
        T = len(episode["actions"])
        if episode["mu"].shape[0] != T + 1 or episode["logvar"].shape != episode["mu"].shape:
            raise ValueError(f"{path}: mu {episode['mu'].shape} and logvar {episode['logvar'].shape} "
                             f"should be (T+1, Z) = ({T + 1}, Z) for {T} actions")
        if episode["actions"].ndim == 1 and action_dim is None:
            raise ValueError(f"{path} holds discrete actions: pass action_dim to one-hot encode them")
        try:
            width = action_dim if action_dim is not None else episode["actions"].shape[1]
            episode["actions"] = as_action_vectors(episode["actions"], width)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        episode["mu"] = episode["mu"].astype(np.float32)
        episode["logvar"] = episode["logvar"].astype(np.float32)
        episode["rewards"] = episode["rewards"].astype(np.float32)
        episode["terminated"] = episode["terminated"].astype(bool)
        episodes.append(episode)
    if not episodes:
        raise ValueError("no encoded episodes given")
    return episodes


def encode_episodes(vae, episodes: Sequence[dict[str, np.ndarray]], action_dim: int,
                    progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Encode in-memory episodes (`wmlib.rollouts.load_episode` / `play_episode` dicts with frames)
    with V into what M trains on: mu, logvar (T+1, Z), actions (T, A) float32, rewards, terminated.

    vae: a wmlib.vae.ConvVAE. For files on disk, `python -m wmlib encode` does the same once.
    """
    from wmlib.vae import encode_frames

    out = []
    for ep in tqdm(episodes, desc="encoding episodes with V", unit="episode", disable=not progress):
        if "frames" not in ep:
            raise ValueError(f"episodes need frames to encode; got keys {sorted(ep)}")
        mu, logvar = encode_frames(vae, ep["frames"])
        out.append({"mu": mu.numpy(), "logvar": logvar.numpy(),
                    "actions": as_action_vectors(ep["actions"], action_dim),
                    "rewards": np.asarray(ep["rewards"], np.float32),
                    "terminated": np.asarray(ep["terminated"], bool)})
    return out


def cut_windows(episodes: Sequence[dict[str, np.ndarray]], seq_len: int,
                rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Cut episodes into windows of `seq_len` transitions, covering every transition once.

    With an rng, each episode's cuts are shifted by a random phase, so the windows differ from
    epoch to epoch; the final (terminal) transitions are always included. Short windows are padded.
    Returns arrays with a leading window axis N:
        mu, logvar (N, L+1, Z)   actions (N, L+1, A), the last row padding
        rewards, terminated, mask (N, L)   mask marks real transitions
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    L = seq_len
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*LATENT_KEYS, "mask")}
    for ep in episodes:
        T = len(ep["actions"])
        phase = int(rng.integers(L)) if rng is not None and T > L else 0
        cuts = sorted({0, T, *range(phase, T, L)} if phase else {0, T, *range(L, T, L)})
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            n = b - a
            for key, arr in (("mu", ep["mu"][a : b + 1]), ("logvar", ep["logvar"][a : b + 1]),
                             ("actions", ep["actions"][a:b]), ("rewards", ep["rewards"][a:b]),
                             ("terminated", ep["terminated"][a:b]), ("mask", np.ones(n, bool))):
                full = L + 1 if key in ("mu", "logvar", "actions") else L
                pad = np.zeros((full - len(arr), *arr.shape[1:]), arr.dtype)
                out[key].append(np.concatenate([arr, pad]))
    return {k: np.stack(v) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Loss and training
# ---------------------------------------------------------------------------------------------


def mdnrnn_loss(out: MDNOutput, target_z: torch.Tensor, mask: torch.Tensor,
                rewards: torch.Tensor | None = None, terminated: torch.Tensor | None = None,
                nll_fn: Callable = mdn_nll, done_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """M's training loss over the real (masked) steps of a batch of windows.

        loss = NLL of z_{t+1} (mean over steps and latent dims)
               + MSE of the reward (with a reward head) + done_weight * BCE of done (with a done head)

    Episode ends are rare (one step in 20 for random CartPole), so their small BCE would be
    drowned by the NLL; done_weight > 1 lets them shape the memory. Unlike weighting only the
    positive examples (as the paper's Doom code does), it keeps the predicted probabilities
    calibrated: the best constant is still the base rate.

    out: from `MDNRNN.forward` over (B, L)    target_z (B, L, Z)    mask (B, L) bool
    rewards (B, L), terminated (B, L): needed only for the heads the model has.
    Returns {"loss", "nll", and "reward_mse" / "done_bce" when present}, each 0-d.
    """
    m = mask.bool()
    parts = {"nll": nll_fn(out.log_pi[m], out.mu[m], out.log_sigma[m], target_z[m])}
    loss = parts["nll"]
    if out.reward is not None:
        parts["reward_mse"] = F.mse_loss(out.reward[m], rewards[m].float())
        loss = loss + parts["reward_mse"]
    if out.done_logit is not None:
        parts["done_bce"] = F.binary_cross_entropy_with_logits(out.done_logit[m], terminated[m].float())
        loss = loss + done_weight * parts["done_bce"]
    return {"loss": loss, **parts}


def _batch_tensors(windows: dict[str, np.ndarray], idx: np.ndarray, device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v[idx]).to(device) for k, v in windows.items()}


def _sample_z(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


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
    sums: dict[str, float] = {"nll": 0.0, "reward_mse": 0.0}
    logits, labels = [], []
    n = 0
    for i in range(0, len(windows["mask"]), batch_size):
        b = _batch_tensors(windows, np.arange(i, min(i + batch_size, len(windows["mask"]))), device)
        z = _sample_z(b["mu"], b["logvar"], g)
        inputs, targets = teacher_forcing_pairs(z, b["actions"])
        out = model(inputs[..., : model.config.z_dim], inputs[..., model.config.z_dim :])
        m = b["mask"]
        count = int(m.sum())
        log_p = mdn_log_prob(out.log_pi[m], out.mu[m], out.log_sigma[m], targets[m])  # (count, Z)
        sums["nll"] += float(-log_p.mean(-1).sum())
        if out.reward is not None:
            sums["reward_mse"] += float(((out.reward[m] - b["rewards"][m]) ** 2).sum())
        if out.done_logit is not None:
            logits.append(out.done_logit[m].cpu())
            labels.append(b["terminated"][m].float().cpu())
        n += count
    result = {"nll": sums["nll"] / n, "transitions": n}
    if model.config.predict_reward:
        result["reward_mse"] = sums["reward_mse"] / n
    if logits:
        logit, label = torch.cat(logits), torch.cat(labels)
        rate = float(label.mean())
        base = min(max(rate, 1e-6), 1 - 1e-6)
        predicted = logit > 0
        result.update(
            done_bce=float(F.binary_cross_entropy_with_logits(logit, label)),
            done_base_bce=float(-(rate * math.log(base) + (1 - rate) * math.log(1 - base))),
            done_base_rate=rate,
            done_accuracy=float((predicted == label.bool()).float().mean()),
            done_recall=float(predicted[label.bool()].float().mean()) if label.sum() > 0 else float("nan"),
            done_precision=float(label[predicted].mean()) if predicted.any() else float("nan"),
        )
    return result


class MDNTrainResult(NamedTuple):
    """What `train_mdnrnn` returns: the model (eval mode) and one history dict per epoch.

    history: {"epoch", "loss", "nll", ["reward_mse"], ["done_bce"], "transitions", "seconds",
              and with validation episodes "val_nll", ["val_done_bce", "val_done_base_bce"]}
    """

    model: MDNRNN
    history: list[dict]
    wall_time_s: float


def train_mdnrnn(
    episodes: str | os.PathLike | Sequence[str | os.PathLike] | Sequence[dict],
    config: MDNRNNConfig | None = None,
    *,
    epochs: int = 1,
    seed: int = 0,
    val_episodes: Sequence[dict] | None = None,
    checkpoint: str | os.PathLike | None = None,
    metadata: dict | None = None,
    nll_fn: Callable = mdn_nll,
    pairs_fn: Callable = teacher_forcing_pairs,
    device: torch.device | str | None = None,
    progress: bool = True,
    continue_on_new_data: bool = False,
) -> MDNTrainResult:
    """Train M by teacher forcing on encoded episodes; z is resampled from (mu, logvar) every batch.

    episodes:   a directory or files of encoded episodes, or episodes from `load_latent_episodes`
    checkpoint: a path stem; after every epoch the weights, Adam's state and the metadata are committed
                as one unit (wmlib.checkpoints.save_training), and a run that finds its own unit there
                (same config, seed and episodes, at most `epochs` epochs) resumes after its last finished
                epoch (`epochs` is the total). Data order and noise depend only on (seed, epoch), so a
                resumed run matches an uninterrupted one. Any other unit there is refused (a re-run after
                re-collecting must not silently resume a stale model), except that continue_on_new_data=True
                allows other episodes, and a finished checkpoint as a warm start: the iterative pipeline
                continues M on old + new episodes every round on purpose.
    nll_fn, pairs_fn: the chapter passes the learner's `mdn_nll` and `teacher_forcing_pairs`
    """
    config = config if config is not None else MDNRNNConfig()
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if not (isinstance(episodes, Sequence) and episodes and isinstance(episodes[0], dict)):
        episodes = load_latent_episodes(episodes, config.action_dim)
    z_dim, a_dim = episodes[0]["mu"].shape[1], episodes[0]["actions"].shape[1]
    if (z_dim, a_dim) != (config.z_dim, config.action_dim):
        raise ValueError(f"the episodes have Z = {z_dim} and A = {a_dim}, but the config asks for "
                         f"z_dim = {config.z_dim} and action_dim = {config.action_dim}")
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(seed)
    model = MDNRNN(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    stem = Path(checkpoint) if checkpoint is not None else None
    fingerprint = data_fingerprint(a for ep in episodes for a in (ep["mu"], ep["actions"]))
    run = {"seed": seed, "data_fingerprint": fingerprint}
    history: list[dict] = []
    if stem is not None:
        history = resume_training(stem, model, optimizer, config, run=run, target=epochs,
                                  continue_on_new_data=continue_on_new_data)
    start = time.perf_counter()
    for epoch in range(len(history), epochs):
        model.train()
        t0 = time.perf_counter()
        rng = np.random.default_rng((seed, epoch))
        noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
        windows = cut_windows(episodes, config.sequence_length, rng)
        order = rng.permutation(len(windows["mask"]))
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(range(0, len(order), config.batch_size), desc=f"training M, epoch {epoch + 1}/{epochs}",
                   unit="batch", disable=not progress, leave=False)
        for i in bar:
            b = _batch_tensors(windows, order[i : i + config.batch_size], device)
            z = _sample_z(b["mu"], b["logvar"], noise)
            inputs, targets = pairs_fn(z, b["actions"])
            out = model(inputs[..., :z_dim], inputs[..., z_dim:])
            parts = mdnrnn_loss(out, targets, b["mask"], b["rewards"], b["terminated"], nll_fn=nll_fn,
                                done_weight=config.done_loss_weight)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            count = int(b["mask"].sum())
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * count
            n += count
            bar.set_postfix(nll=f"{float(parts['nll'].detach()):.3f}")
        record = {"epoch": epoch + 1, **{k: v / max(n, 1) for k, v in sums.items()}, "transitions": n,
                  "seconds": round(time.perf_counter() - t0, 2)}
        if val_episodes:
            scores = evaluate_mdnrnn(model, val_episodes, seed=seed)
            kept = ("nll", "done_bce", "done_base_bce", "reward_mse")
            record.update({f"val_{k}": v for k, v in scores.items() if k in kept})
        history.append(record)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "transitions", "seconds")))
        if stem is not None:
            meta = dict(metadata or {}, history=history, seed=seed, epochs_done=epoch + 1,
                        data_fingerprint=fingerprint)
            save_training(stem, model, optimizer, config, run=run, metadata=meta)
    model.eval()
    return MDNTrainResult(model, history, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Imagination: M runs on its own samples
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def warm_up(model: MDNRNN, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None = None) -> LSTMState:
    """Feed real latents z (B, T, Z) and actions a (B, T, A) through M; return the memory after them."""
    if z.shape[1] == 0:
        return state if state is not None else model.initial_state(z.shape[0], z.device)
    return model(z, a, state).state


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
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    keys = ("latent_mse", "copy_latent_mse") + (("frame_mse", "copy_frame_mse") if decode is not None else ())
    sums = {k: np.zeros(horizon) for k in keys}
    count = np.zeros(horizon)
    for ep in episodes:
        mu = torch.as_tensor(ep["mu"], dtype=torch.float32, device=device)  # (T+1, Z)
        act = torch.as_tensor(ep["actions"], dtype=torch.float32, device=device)  # (T, A)
        T = len(act)
        starts = torch.arange(0, T, stride, device=device)  # (S,)
        if len(starts) == 0:
            continue
        memory = memory_states(model, mu, act)
        # Steps s+1..s+horizon of every start; indices past the episode's end are clamped and masked.
        offsets = torch.arange(1, horizon + 1, device=device)
        future = starts[:, None] + offsets[None]  # (S, N)
        valid = (future <= T).float()  # (S, N)
        act_pad = torch.cat([act, act.new_zeros(horizon, act.shape[1])])
        actions = act_pad[(future - 1)]  # (S, N, A): a_{s}, ..., a_{s+N-1}
        rep = lambda x: x.repeat_interleave(samples, 0)  # noqa: E731  (S, ...) -> (S * samples, ...)
        state = LSTMState(rep(memory.h[starts]), rep(memory.c[starts]))
        dream = imagine(model, rep(mu[starts]), rep(actions), state, temperature=temperature,
                        generator=g)["z"].view(len(starts), samples, horizon, -1)  # (S, samples, N, Z)
        truth = mu[future.clamp(max=T)]  # (S, N, Z)
        dims = slice(None) if latent_dims is None else list(latent_dims)
        sq = (dream[..., dims] - truth[:, None][..., dims]) ** 2
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
        count += valid.sum(0).cpu().numpy()
    safe = np.maximum(count, 1)
    result = {"horizon": np.arange(1, horizon + 1), "count": count}
    result.update({k: np.where(count > 0, v / safe, np.nan) for k, v in sums.items()})
    if decode is not None:
        skipped = np.setdiff1d(np.arange(horizon), frame_idx)
        result["frame_mse"][skipped] = result["copy_frame_mse"][skipped] = np.nan
    return result


# ---------------------------------------------------------------------------------------------
# The shipped checkpoints
# ---------------------------------------------------------------------------------------------

def load_mdnrnn(name: str | os.PathLike, device: torch.device | str = "cpu") -> MDNRNN:
    """Load a shipped M by name ("cartpole", "carracing" or "cartpole_mdnrnn") or a checkpoint by path stem.

    A missing, corrupt, incomplete or mismatched file gives a CheckpointError naming the file (and, for a
    shipped name, the command that rebuilds it). No pickle is ever loaded. The metadata: `mdnrnn_metadata`.
    """
    return load_named(MDNRNN, MDNRNNConfig, name, "mdnrnn", device).model


def mdnrnn_metadata(name: str | os.PathLike) -> dict:
    """The metadata stored beside an M (shipped name or path stem): command, seed, history, ..."""
    return read_metadata(name, "mdnrnn")
