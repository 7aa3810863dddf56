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
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from wmlib.checkpoints import data_fingerprint, load_named
from wmlib.config import MDNRNNConfig, default_device
from wmlib.latents import batch_tensors, cut_windows, load_latent_episodes, sample_latents
from wmlib.resume import resume_training, save_training
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


class MDNLogits(NamedTuple):
    """What `MDNRNN.step_logits` returns: MDNOutput's fields, with the mixture weights as logits (B, Z, K)
    (log pi = logits - logsumexp(logits) over K) instead of log_pi."""

    logits: torch.Tensor
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

    @property
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

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None,
                                              torch.Tensor | None]:
        """LSTM outputs h (..., H) -> logits, mu, log_sigma (..., Z, K), reward (...), done_logit (...).

        logits are the mixture weights before the log-softmax over K; reward and done_logit are None
        when the model has no such head. Shared by `forward`, `step` and `step_logits`, so acting,
        dreaming and training read h the same way.
        """
        Z, K = self.config.z_dim, self.config.num_mixtures
        # The heads come out in float32 even from a bfloat16 copy of M (wmlib.precision.dream_model).
        params = _at_least_float32(self.mdn(h)).view(*h.shape[:-1], Z, 3 * K)
        logits, mu, log_sigma = params.split(K, dim=-1)
        reward = _at_least_float32(self.reward_head(h)).squeeze(-1) if self.reward_head is not None else None
        done_logit = _at_least_float32(self.done_head(h)).squeeze(-1) if self.done_head is not None else None
        return logits, mu, log_sigma, reward, done_logit

    def _lstm(self, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None) -> tuple[torch.Tensor, LSTMState]:
        """z (B, T, Z), a (B, T, A) -> LSTM outputs (B, T, H) and the state after step T."""
        hc = None if state is None else (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous())
        out, (h, c) = self.lstm(torch.cat([z, a], dim=-1), hc)
        return out, LSTMState(h[0], c[0])

    def forward(self, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None = None) -> MDNOutput:
        """Run M over whole sequences (teacher forcing).

        z: (B, T, Z)    a: (B, T, A)    state: LSTMState with (B, H) tensors, or None for an empty memory
        Returns MDNOutput with (B, T, Z, K) mixture parameters predicting z_{t+1}, (B, T) reward
        and done logit, and the state after step T.
        """
        self._check(z, a, 3)
        out, state = self._lstm(z, a, state)
        logits, *rest = self.heads(out)
        return MDNOutput(F.log_softmax(logits, dim=-1), *rest, state)  # log_pi: per latent dim, over its K

    def hidden_states(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The memory h after each step of whole sequences, from an empty memory, without the heads:
        z (B, T, Z), a (B, T, A) -> (B, T, H). Row t is what the controller reads after step t."""
        self._check(z, a, 3)
        return self._lstm(z, a, None)[0]

    def step(self, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None = None) -> MDNOutput:
        """One step, for acting and dreaming: z (B, Z), a (B, A), state (B, H) each, or None.

        Returns MDNOutput with (B, Z, K) mixture parameters for z_{t+1}, (B,) reward and done
        logit, and the new state, whose h (B, H) is what the controller reads.
        """
        self._check(z, a, 2)
        out = self.forward(z.unsqueeze(1), a.unsqueeze(1), state)
        return MDNOutput(*(x.squeeze(1) if x is not None else None for x in out[:5]), out.state)

    def step_logits(self, z: torch.Tensor, a: torch.Tensor, state: LSTMState | None = None) -> MDNLogits:
        """`step` without the log-softmax: the mixture weights come back as logits (the dream's sampler
        takes a softmax of them anyway). Shapes as `step`."""
        self._check(z, a, 2)
        out, state = self._lstm(z.unsqueeze(1), a.unsqueeze(1), state)
        return MDNLogits(*(x.squeeze(1) if x is not None else None for x in self.heads(out)), state)


def preset_config(env_name: str, z_dim: int) -> MDNRNNConfig:
    """M's config for one of the course's worlds (its `m_preset` in wmlib.tasks), given V's latent size.

    "carracing": the paper's CarRacing model (H 256, K 5, A 3: steer, gas, brake).
    "cartpole-pixels": A 2 (one-hot left/right) and a done head, as in the paper's Doom model,
    because surviving is the whole game; a small, fast M (wmlib.tasks says why each size).
    """
    return world_spec(env_name, wanted="M preset").mdnrnn_config(z_dim)


# ---------------------------------------------------------------------------------------------
# Loss and training
# ---------------------------------------------------------------------------------------------


def mdnrnn_loss(out: MDNOutput, target_z: torch.Tensor, mask: torch.Tensor,
                rewards: torch.Tensor | None = None, terminated: torch.Tensor | None = None,
                nll_fn: Callable = mdn_nll, done_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """M's training loss over the real (masked) steps of a batch of windows.

        loss = NLL of z_{t+1} (mean over steps and latent dims)
               + MSE of the reward (with a reward head) + done_weight * BCE of done (with a done head)

    Episode ends are rare (random CartPole plays many steps per end), so their small BCE would be
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


def _train_epoch(model: MDNRNN, optimizer: torch.optim.Optimizer, windows: dict[str, np.ndarray],
                 order: np.ndarray, bar: tqdm, noise: torch.Generator, config: MDNRNNConfig,
                 nll_fn: Callable, pairs_fn: Callable, device: torch.device) -> dict[str, float]:
    """One pass over the windows in `order`, a batch from each start that `bar` (a progress bar) yields.

    Returns the loss parts averaged over the real transitions, and their count ("transitions").
    """
    model.train()
    sums: dict[str, float] = {}
    n = 0
    for i in bar:
        b = batch_tensors(windows, order[i : i + config.batch_size], device)
        z = sample_latents(b["mu"], b["logvar"], noise)
        inputs, targets = pairs_fn(z, b["actions"])
        out = model(inputs[..., : config.z_dim], inputs[..., config.z_dim :])
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
    return {**{k: v / max(n, 1) for k, v in sums.items()}, "transitions": n}


class MDNTrainResult(NamedTuple):
    """What `train_mdnrnn` returns: the model (eval mode) and one history dict per epoch.

    history: {"epoch", "loss", "nll", ["reward_mse"], ["done_bce"], "transitions", "seconds",
              and with `validate` its scores with a "val_" prefix}
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
    validate: Callable[[MDNRNN], dict[str, float]] | None = None,
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
                as one unit (wmlib.resume.save_training), and a run that finds its own unit there
                (same config, seed and episodes, at most `epochs` epochs) resumes after its last finished
                epoch (`epochs` is the total). Data order and noise depend only on (seed, epoch), so a
                resumed run matches an uninterrupted one. Any other unit there is refused (a re-run after
                re-collecting must not silently resume a stale model), except that continue_on_new_data=True
                allows other episodes, and a finished checkpoint as a warm start: the iterative pipeline
                continues M on old + new episodes every round on purpose.
    validate:   called with the model after every epoch; its scores join the epoch's record as "val_<name>"
                (the CLI passes wmlib.diagnostics.held_out_scores(held-out episodes))
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
    run = {"seed": seed, "data_fingerprint": data_fingerprint(a for ep in episodes for a in (ep["mu"], ep["actions"]))}
    history = resume_training(checkpoint, model, optimizer, config, run=run, target=epochs,
                              continue_on_new_data=continue_on_new_data)
    start = time.perf_counter()
    for epoch in range(len(history), epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng((seed, epoch))
        noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
        windows = cut_windows(episodes, config.sequence_length, rng)
        order = rng.permutation(len(windows["mask"]))
        bar = tqdm(range(0, len(order), config.batch_size), desc=f"training M, epoch {epoch + 1}/{epochs}",
                   unit="batch", disable=not progress, leave=False)
        means = _train_epoch(model, optimizer, windows, order, bar, noise, config, nll_fn, pairs_fn, device)
        record = {"epoch": epoch + 1, **means, "seconds": round(time.perf_counter() - t0, 2)}
        if validate is not None:
            record.update({f"val_{k}": v for k, v in validate(model).items()})
        history.append(record)
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{epochs}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "transitions", "seconds")))
        if checkpoint is not None:
            save_training(checkpoint, model, optimizer, config, run=run, history=history, metadata=metadata)
    model.eval()
    return MDNTrainResult(model, history, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# The shipped checkpoints
# ---------------------------------------------------------------------------------------------

def load_mdnrnn(name: str | os.PathLike, device: torch.device | str = "cpu") -> MDNRNN:
    """Load a shipped M by name ("cartpole", "carracing" or "cartpole_mdnrnn") or a checkpoint by path stem.

    A missing, corrupt, incomplete or mismatched file gives a CheckpointError naming the file (and, for a
    shipped name, the command that rebuilds it). No pickle is ever loaded. Its metadata (command, seed,
    history): `wmlib.checkpoints.read_metadata(name, "mdnrnn")`.
    """
    return load_named(MDNRNN, MDNRNNConfig, name, "mdnrnn", device).model
