"""The dream: M, run on its own samples, becomes an environment the controller can practise in.

In the real environment a step costs a physics update and a render, and V must encode the frame.
In the dream a step is one LSTM step and one draw from the mixture, on 32 numbers instead of a frame's
12,288, and thousands of dreams run side by side as one tensor batch:

    reset:  z_0 ~ N(mu, sigma^2) of the first frame of a real episode,   h_0 = c_0 = 0
    step:   a_t = C([z_t, h_t])                         (the controller acts on what it "sees")
            h_{t+1}, p(z_{t+1}), p(done_t) = M(z_t, a_t, h_t)
            z_{t+1} ~ mdn_sample(p(z_{t+1}), temperature)
            reward_t = +1 for surviving (or M's reward head), terminated_t ~ Bernoulli(p(done_t))

There is no V in the loop: the dream never draws a picture unless you ask it to (`render`).

Two interfaces over the same step (`dream_step`):

    DreamEnv        a Gymnasium Env (one dream; check_env passes; the dream player drives it)
    BatchedDream    B dreams at once; `dream_rollouts` plays a whole CMA-ES population x rollouts
                    in one batch, and `DreamEvaluator` plugs that into wmlib.cmaes.train_cmaes

Every dream has its own random stream, seeded by its episode seed and drawn ahead in chunks
(`NoiseStream`), so a dream's future does not depend on which other dreams share its batch: the
batched dream with seed s plays exactly the episode that DreamEnv plays after reset(seed=s).

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils.seeding import np_random

from wmlib.cmaes import Evaluation
from wmlib.config import ControllerConfig, DreamConfig
from wmlib.controller import action_map_spec, controller_param_count
from wmlib.mdnrnn import MDNRNN, LSTMState
from wmlib.tasks import world_spec

NOISE_CHUNK = 64
"""Steps of random numbers drawn ahead per dream (one generator call per dream per chunk)."""

REWARD_MODES = ("auto", "survival", "model")

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""DreamConfig.precision -> the dtype M's weights and memory take in the dream."""

# ---------------------------------------------------------------------------------------------
# The math: pure functions
# ---------------------------------------------------------------------------------------------


def masked_returns(rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """Each row's return: the sum of its rewards up to and including its first done.

        alive_t = 1 if no done happened strictly before t, else 0
        G = sum_t alive_t * r_t

    A batched dream keeps stepping every row until the last one ends (a batch is one tensor);
    what a row does after its episode ended must not count. A row with no done counts whole.
    rewards: (B, T)    dones: (B, T) bool or 0/1    Returns (B,).
    """
    if rewards.dim() != 2 or rewards.shape != dones.shape:
        raise ValueError(f"expected rewards and dones of the same shape (B, T), "
                         f"got {tuple(rewards.shape)} and {tuple(dones.shape)}")
    d = dones.to(rewards.dtype)
    dones_before = torch.cumsum(d, dim=1) - d  # (B, T): how many dones strictly before t
    return (rewards * (dones_before == 0)).sum(dim=1)


def mdn_sample_from_noise(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, temperature: float,
                          u: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """mdn_sample with its random numbers given: u ~ U(0, 1) picks the component, eps ~ N(0, 1).

        p = softmax(log_pi / tau)             k = the first k with p_1 + ... + p_k > u
        y = mu_k + sigma_k * sqrt(tau) * eps

    The same distribution as wmlib.mdnrnn.mdn_sample (inverse-CDF sampling of the component),
    but every draw comes from the caller, so each dream can keep its own random stream.
    log_pi may also be unnormalised logits: softmax(x / tau) does not change when x shifts by a constant.
    log_pi, mu, log_sigma: (..., K)    u, eps: (...)    Returns (...).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    K = log_pi.shape[-1]
    # Worked on a (K, N) copy, N the positions: PyTorch's CPU softmax is ~10x slower over a short last axis.
    p = torch.softmax((log_pi / temperature).reshape(-1, K).T.contiguous(), dim=0)  # (K, N)
    k = (p.cumsum(dim=0) <= u.reshape(1, -1)).sum(dim=0).clamp(max=K - 1).view(*u.shape, 1)  # (..., 1)
    mu_k = mu.gather(-1, k).squeeze(-1)
    sigma_k = log_sigma.gather(-1, k).squeeze(-1).exp()
    return mu_k + sigma_k * math.sqrt(temperature) * eps


class DreamStep(NamedTuple):
    """One step of B dreams: z (B, Z) the next latent, state M's memory after the step,
    done_prob (B,) (None without a done head), terminated (B,) bool, reward (B,) (None: no head)."""

    z: torch.Tensor
    state: LSTMState
    done_prob: torch.Tensor | None
    terminated: torch.Tensor
    reward: torch.Tensor | None


def dream_step(mdnrnn: MDNRNN, z: torch.Tensor, a: torch.Tensor, state: LSTMState, temperature: float,
               u: torch.Tensor, eps: torch.Tensor, u_done: torch.Tensor,
               done_threshold: float | None = None) -> DreamStep:
    """M imagines one step of B dreams: it reads (z_t, a_t), remembers, and samples z_{t+1}.

    z: (B, Z)   a: (B, A) M's action vectors   state: (B, H) each   u, eps: (B, Z)   u_done: (B,)
    terminated = done_prob > u_done (a sampled end, u_done ~ U(0, 1)), or done_prob > done_threshold when
    one is given (the paper's code used 0.5; see DreamConfig.done_threshold for why we sample).
    """
    dtype = next(mdnrnn.parameters()).dtype  # float32, or bfloat16 for a dream_model copy (ch. 5, sec. 2)
    state = LSTMState(state.h.to(dtype), state.c.to(dtype))  # no-ops when they already match
    out = mdnrnn.step(z.to(dtype), a.to(dtype), state, raw_logits=True)  # log_pi: unnormalised logits
    z_next = mdn_sample_from_noise(out.log_pi, out.mu, out.log_sigma, temperature, u, eps)  # heads: float32
    done_prob = torch.sigmoid(out.done_logit) if out.done_logit is not None else None
    if done_prob is None:
        terminated = torch.zeros(z.shape[0], dtype=torch.bool, device=z.device)
    else:
        terminated = done_prob > (u_done if done_threshold is None else done_threshold)
    return DreamStep(z_next, out.state, done_prob, terminated, out.reward)


def bfloat16_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether `device` multiplies bfloat16 natively: a CUDA GPU with bfloat16 support, or a CPU with
    AVX512-BF16 or AMX.

    Elsewhere PyTorch emulates bfloat16 products and DreamConfig(precision="bfloat16") is slower than float32.
    """
    if torch.device(device).type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own probes (private, so guarded)
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def dream_model(mdnrnn: MDNRNN, precision: str = "float32") -> MDNRNN:
    """M as the dream runs it: M itself for "float32", an eval-mode copy in bfloat16 for "bfloat16".

    bfloat16 keeps float32's range with 8 bits of mantissa; the LSTM's and the output layer's
    products then run at ~2.4x the float32 rate on CPUs with AVX512-BF16 (measured on M's shape by
    benchmarks/dream_speed.py). The original M is left untouched (training goes on in float32).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if PRECISIONS[precision] == next(mdnrnn.parameters()).dtype:
        return mdnrnn.eval()
    return copy.deepcopy(mdnrnn).to(PRECISIONS[precision]).eval()


# ---------------------------------------------------------------------------------------------
# Where dreams start, and their random numbers
# ---------------------------------------------------------------------------------------------


class StartLatents(NamedTuple):
    """Real starting points: mu (N, Z) and logvar (N, Z) of the first frames of N real episodes."""

    mu: torch.Tensor
    logvar: torch.Tensor


def start_latents(episodes: Sequence[dict]) -> StartLatents:
    """The first frame's latent Gaussian of each encoded episode (dicts with mu, logvar (T+1, Z))."""
    if not episodes:
        raise ValueError("need at least one encoded episode to start dreams from")
    for ep in episodes:
        if "mu" not in ep or "logvar" not in ep:
            raise ValueError(f"expected encoded episodes with mu and logvar (T+1, Z), got keys {sorted(ep)}")
    mu = torch.as_tensor(np.stack([np.asarray(ep["mu"][0], np.float32) for ep in episodes]))
    logvar = torch.as_tensor(np.stack([np.asarray(ep["logvar"][0], np.float32) for ep in episodes]))
    return StartLatents(mu, logvar)


def _check_starts(starts: StartLatents, z_dim: int) -> StartLatents:
    mu, logvar = (torch.as_tensor(x, dtype=torch.float32) for x in starts)
    if mu.dim() != 2 or mu.shape[1] != z_dim or mu.shape != logvar.shape or len(mu) == 0:
        raise ValueError(f"expected start latents mu and logvar of shape (N, {z_dim}) with N >= 1, "
                         f"got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return StartLatents(mu, logvar)


def draw_episode(rng: np.random.Generator, n_starts: int) -> tuple[int, int]:
    """What an episode's seed decides: which real start (index) and the seed of its noise stream."""
    return int(rng.integers(n_starts)), int(rng.integers(2**63 - 1))


class NoiseStream:
    """The random numbers of B dreams, one torch.Generator each, drawn NOISE_CHUNK steps ahead.

    first(): eps_0 (B, Z) for the starting latent; then next() per step: u (B, Z) picks the
    mixture component, eps (B, Z) the Gaussian noise, u_done (B,) a sampled end.
    """

    def __init__(self, seeds: Sequence[int], z_dim: int, chunk: int = NOISE_CHUNK):
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.z_dim, self.chunk = z_dim, chunk
        self._t = chunk
        self._buffers: tuple[torch.Tensor, ...] = ()

    def first(self) -> torch.Tensor:
        return torch.stack([torch.randn(self.z_dim, generator=g) for g in self.generators])

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._t == self.chunk:
            Z, n = self.z_dim, self.chunk
            u = torch.stack([torch.rand(n, Z, generator=g) for g in self.generators])  # (B, n, Z)
            eps = torch.stack([torch.randn(n, Z, generator=g) for g in self.generators])
            u_done = torch.stack([torch.rand(n, generator=g) for g in self.generators])  # (B, n)
            self._buffers, self._t = (u, eps, u_done), 0
        t, self._t = self._t, self._t + 1
        u, eps, u_done = self._buffers
        return u[:, t], eps[:, t], u_done[:, t]

    def keep(self, idx: torch.Tensor) -> None:
        """Keep only the streams of dreams idx (the others have ended)."""
        self.generators = [self.generators[i] for i in idx.tolist()]
        self._buffers = tuple(x[idx] for x in self._buffers)


# ---------------------------------------------------------------------------------------------
# B dreams at once
# ---------------------------------------------------------------------------------------------


def _reward_mode(config: DreamConfig, mdnrnn: MDNRNN) -> str:
    if config.reward not in REWARD_MODES:
        raise ValueError(f"unknown reward {config.reward!r}; expected one of {', '.join(REWARD_MODES)}")
    if config.reward == "model" and mdnrnn.reward_head is None:
        raise ValueError("reward='model' needs an M with a reward head (MDNRNNConfig.predict_reward=True)")
    if config.reward == "auto":
        return "model" if mdnrnn.reward_head is not None else "survival"
    return config.reward


class DreamTransition(NamedTuple):
    """What BatchedDream.step returns: obs (B, Z+H), reward (B,), terminated (B,), truncated (B,),
    done_prob (B,) or None."""

    obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    done_prob: torch.Tensor | None


class BatchedDream:
    """B dreams stepped together. reset(seeds) -> observations; step(actions) -> DreamTransition.

    mdnrnn: M (its done head ends dreams; without one, only the step limit does)
    starts: StartLatents of real first frames    config: DreamConfig
    """

    def __init__(self, mdnrnn: MDNRNN, starts: StartLatents, config: DreamConfig | None = None):
        self.config = DreamConfig() if config is None else config
        if self.config.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.config.max_steps}")
        if not self.config.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.config.temperature}")
        self.mdnrnn = mdnrnn.eval()
        self.model = dream_model(mdnrnn, self.config.precision)  # what steps: M, or its bfloat16 copy
        self.dtype = next(self.model.parameters()).dtype
        self.reward_mode = _reward_mode(self.config, mdnrnn)
        self.device = next(mdnrnn.parameters()).device
        self.starts = StartLatents(*(x.to(self.device) for x in _check_starts(starts, mdnrnn.config.z_dim)))
        self.z = self.state = self.noise = None
        self.t = 0

    @property
    def obs(self) -> torch.Tensor:
        """(B, Z+H): [z_t, h_t], what the controller sees (float32 at either precision)."""
        return torch.cat([self.z, self.state.h.float()], dim=1)

    @torch.no_grad()
    def reset_with(self, start_indices: Sequence[int], noise_seeds: Sequence[int]) -> torch.Tensor:
        """Start dream b from real start start_indices[b], its noise stream seeded with noise_seeds[b]."""
        idx = torch.as_tensor(list(start_indices), dtype=torch.long)
        if len(idx) != len(noise_seeds) or len(idx) == 0:
            raise ValueError(f"need one noise seed per start index, got {len(idx)} and {len(noise_seeds)}")
        n = len(self.starts.mu)
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"start indices must lie in 0..{n - 1}, got {idx.min().item()}..{idx.max().item()}")
        self.noise = NoiseStream(noise_seeds, self.mdnrnn.config.z_dim)
        eps0 = self.noise.first().to(self.device)
        mu, logvar = self.starts.mu[idx.to(self.device)], self.starts.logvar[idx.to(self.device)]
        self.z = mu + torch.exp(0.5 * logvar) * eps0 if self.config.sample_start else mu
        self.state = LSTMState(*(x.to(self.dtype) for x in self.mdnrnn.initial_state(len(idx), self.device)))
        self.t = 0
        return self.obs

    def reset(self, seeds: Sequence[int]) -> torch.Tensor:
        """Start B dreams, dream b as DreamEnv.reset(seed=seeds[b]) would. Returns obs (B, Z+H)."""
        draws = [draw_episode(np_random(int(s))[0], len(self.starts.mu)) for s in seeds]
        return self.reset_with([d[0] for d in draws], [d[1] for d in draws])

    def keep(self, idx: torch.Tensor) -> None:
        """Go on with dreams idx only (B shrinks to len(idx)); ended dreams need no more compute."""
        idx = idx.to(self.device)
        self.z, self.state = self.z[idx], LSTMState(self.state.h[idx], self.state.c[idx])
        self.noise.keep(idx.cpu())

    @torch.no_grad()
    def step(self, actions: torch.Tensor) -> DreamTransition:
        """actions: (B, A) M's action vectors (one-hot for discrete actions)."""
        if self.z is None:
            raise RuntimeError("call reset before step")
        B, A = self.z.shape[0], self.mdnrnn.config.action_dim
        if actions.shape != (B, A):
            raise ValueError(f"expected actions of shape (B, A) = ({B}, {A}), got {tuple(actions.shape)}")
        u, eps, u_done = (x.to(self.device) for x in self.noise.next())
        out = dream_step(self.model, self.z, actions.to(self.device, torch.float32), self.state,
                         self.config.temperature, u, eps, u_done, self.config.done_threshold)
        self.z, self.state, self.t = out.z, out.state, self.t + 1
        reward = out.reward if self.reward_mode == "model" else torch.ones(B, device=self.device)
        truncated = torch.full((B,), self.t >= self.config.max_steps, device=self.device)
        return DreamTransition(self.obs, reward, out.terminated, truncated & ~out.terminated, out.done_prob)


# ---------------------------------------------------------------------------------------------
# Controllers in the dream: a whole population in one batch
# ---------------------------------------------------------------------------------------------


def controller_to_m_actions(y: torch.Tensor, config: ControllerConfig, m_action_dim: int) -> torch.Tensor:
    """Batched wmlib.controller.map_action, as M reads actions: y (B, A_c) tanh outputs -> (B, A).

    "discrete": one-hot of (y_0 > 0) with one output, else of argmax y    "carracing": (steer, gas,
    brake) = (y_0, (y_1 + 1) / 2, clip(y_2, 0, 1))    "identity": y.
    """
    spec = action_map_spec(config.action_map)
    actions = spec.batched(y)
    return torch.nn.functional.one_hot(actions, m_action_dim).float() if spec.one_hot else actions


def _check_fit(mdnrnn: MDNRNN, controller: ControllerConfig) -> None:
    m = mdnrnn.config
    if controller.z_dim != m.z_dim or controller.h_dim not in (0, m.hidden_size):
        raise ValueError(f"the controller reads z of size {controller.z_dim} and h of size {controller.h_dim}, "
                         f"but M has z_dim {m.z_dim} and hidden_size {m.hidden_size}")
    if controller.action_map == "discrete" and controller.action_dim not in (1, m.action_dim):
        raise ValueError(f"a discrete controller needs 1 or {m.action_dim} outputs, got {controller.action_dim}")
    if controller.action_map != "discrete" and controller.action_dim != m.action_dim:
        raise ValueError(f"the controller has {controller.action_dim} outputs, M reads actions of size "
                         f"{m.action_dim}")


class DreamRollouts(NamedTuple):
    """Returns (N, R) and dream steps (N, R) of N controllers over R seeds; with record=True also
    z (B, T+1, Z), rewards (B, T), dones (B, T) for the B = N * R dreams (row i * R + j)."""

    returns: np.ndarray
    steps: np.ndarray
    z: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    dones: torch.Tensor | None = None


@torch.no_grad()
def dream_rollouts(mdnrnn: MDNRNN, starts: StartLatents, controller: ControllerConfig, params,
                   seeds: Sequence[int], config: DreamConfig | None = None, *, record: bool = False) -> DreamRollouts:
    """Play N controllers (params (N, P), W row by row then b) for R dream episodes each, in one batch.

    Dream (i, j) is row i * R + j and starts as DreamEnv.reset(seed=seeds[j]): every candidate
    meets the same R dreams (common random numbers). A row that has ended counts as done from then
    on, and the alive mask of `masked_returns` keeps everything after its first done out of its
    return. Once a quarter of the batch has ended, the ended dreams are dropped from the batch (they
    would cost compute for nothing); with record=True their later z are NaN.
    """
    config = DreamConfig() if config is None else config
    _check_fit(mdnrnn, controller)
    params = torch.as_tensor(np.asarray(params, dtype=np.float32))
    P = controller_param_count(controller.z_dim, controller.h_dim, controller.action_dim)
    if params.dim() != 2 or params.shape[1] != P:
        raise ValueError(f"expected params of shape (N, {P}), got {tuple(params.shape)}")
    N, R = params.shape[0], len(seeds)
    if R < 1:
        raise ValueError("need at least one seed")
    dream = BatchedDream(mdnrnn, starts, config)
    device, Z, A_c = dream.device, controller.z_dim, controller.action_dim
    n_w = A_c * (Z + controller.h_dim)
    W = params[:, :n_w].reshape(N, A_c, Z + controller.h_dim).repeat_interleave(R, 0).to(device)  # (B, A_c, Z+H)
    b = params[:, n_w:].repeat_interleave(R, 0).to(device)  # (B, A_c)
    B = N * R
    obs = dream.reset(list(seeds) * N)
    rows = torch.arange(B, device=device)  # which of the B dreams each row of the shrinking batch is
    ended = torch.zeros(B, dtype=torch.bool, device=device)  # per row of the batch
    zs, rewards, dones = [dream.z], [], []
    while len(rows) and dream.t < config.max_steps:
        x = obs[:, : Z + controller.h_dim]  # (b, Z+H), or z alone for a "V only" controller
        y = torch.tanh((W * x.unsqueeze(1)).sum(-1) + b)  # (b, A_c); ~6x faster on a CPU than einsum's bmm
        step = dream.step(controller_to_m_actions(y, controller, mdnrnn.config.action_dim))
        done = step.terminated | step.truncated | ended
        rewards.append(torch.zeros(B, device=device).index_put((rows,), step.reward))
        dones.append(torch.ones(B, dtype=torch.bool, device=device).index_put((rows,), done))
        if record:
            zs.append(torch.full((B, Z), float("nan"), device=device).index_put((rows,), dream.z))
        ended, obs = done, step.obs
        if (~ended).sum() <= 0.75 * len(rows):  # drop the ended dreams from the batch
            keep = (~ended).nonzero().squeeze(1)
            dream.keep(keep)
            rows, W, b, obs, ended = rows[keep], W[keep], b[keep], obs[keep], ended[keep]
    rewards_bt, dones_bt = torch.stack(rewards, 1), torch.stack(dones, 1)  # (B, T)
    returns = masked_returns(rewards_bt, dones_bt)
    steps = masked_returns(torch.ones_like(rewards_bt), dones_bt)
    out = DreamRollouts(returns.view(N, R).cpu().double().numpy(), steps.view(N, R).cpu().long().numpy())
    if record:
        out = out._replace(z=torch.stack(zs, 1), rewards=rewards_bt, dones=dones_bt)
    return out


@torch.no_grad()
def dream_input_statistics(mdnrnn: MDNRNN, episodes: Sequence[dict], floor: float = 1e-3, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the controller's input [z; h] as the dream shows it, along real episodes.

    episodes: dicts with mu, logvar (T+1, Z) and actions (T, A) float (load_latent_episodes).
    z is drawn from N(mu, sigma^2), as M was trained and as the dream samples it: a latent
    dimension V does not use has mu ~ 0 in every frame but is N(0, 1) noise in the dream, and
    dividing it by the tiny spread of mu would make C's first guesses all noise.
    Returns mean (Z+H,) and std (Z+H,), floored at `floor` times the largest. CMA-ES searches C in
    these standardised coordinates (see wmlib.controller.fold_standardization), computed from data
    already collected, so they cost no real steps.
    """
    from wmlib.mdnrnn import memory_states

    g = torch.Generator().manual_seed(seed)
    rows = []
    for ep in episodes:
        mu = torch.as_tensor(ep["mu"], dtype=torch.float32)
        sigma = torch.exp(0.5 * torch.as_tensor(ep["logvar"], dtype=torch.float32))
        z = mu + sigma * torch.randn(mu.shape, generator=g)
        memory = memory_states(mdnrnn, z, torch.as_tensor(ep["actions"], dtype=torch.float32))
        rows.append(torch.cat([z, memory.h], dim=1).numpy())
    x = np.concatenate(rows).astype(np.float64)
    std = x.std(axis=0)
    return x.mean(axis=0), np.maximum(std, floor * std.max())


def _dream_groups(mdnrnn: MDNRNN, starts: StartLatents, controller: ControllerConfig, config: DreamConfig,
                  params: np.ndarray, seeds: Sequence[int], max_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """dream_rollouts over candidates in groups of at most max_batch dreams -> returns, steps (N, R)."""
    per_group = max(1, max_batch // max(len(seeds), 1))
    returns, steps = [], []
    for i in range(0, len(params), per_group):
        r = dream_rollouts(mdnrnn, starts, controller, params[i : i + per_group], seeds, config)
        returns.append(r.returns)
        steps.append(r.steps)
    return np.concatenate(returns), np.concatenate(steps)


_SHARD: dict = {}
"""In a dream worker process: its copy of M and what the dreams need (set once by _init_dream_worker)."""


def _init_dream_worker(m_config, m_state: dict, starts: StartLatents, controller: ControllerConfig,
                       config: DreamConfig, max_batch: int, parent_pid: int) -> None:
    import threading

    from wmlib.cmaes import _exit_with_parent

    torch.set_num_threads(1)  # one process per core: small batched products scale better this way than threads
    mdnrnn = MDNRNN(m_config)
    mdnrnn.load_state_dict(m_state)
    _SHARD.update(args=(mdnrnn.eval(), starts, controller, config), max_batch=max_batch)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _dream_in_worker(params: np.ndarray, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return _dream_groups(*_SHARD["args"], params, seeds, _SHARD["max_batch"])


@dataclasses.dataclass
class DreamEvaluator:
    """An evaluator for wmlib.cmaes.train_cmaes that scores controllers in the batched dream.

    (solutions (N, P), seeds (R,)) -> Evaluation(returns (N, R), steps (N, R) dream steps).
    max_batch: at most this many dreams per batch (candidates are split into groups).
    input_mean, input_std: when given, solutions are C in standardised input coordinates
        (x - mean) / std and are folded into ordinary parameters before they play (`params`).
    workers: 1 dreams in this process (with torch's threads); more splits the candidates over that
        many processes of one thread each, on the CPU, started on first use with a copy of M as it is
        then (later changes to M do not reach them). The returns are the serial ones on the CPU:
        every dream has its own random stream. Close it (or use `with`) to stop them.
    """

    mdnrnn: MDNRNN
    starts: StartLatents
    controller: ControllerConfig
    config: DreamConfig = dataclasses.field(default_factory=DreamConfig)
    max_batch: int = 4096
    input_mean: np.ndarray | None = None
    input_std: np.ndarray | None = None
    workers: int = 1
    _pool: object = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")

    def params(self, solutions: np.ndarray) -> np.ndarray:
        """Search coordinates (N, P) or (P,) -> the LinearController's flat parameters, same shape."""
        solutions = np.asarray(solutions, dtype=np.float64)
        if self.input_mean is None:
            return solutions
        from wmlib.controller import fold_standardization

        fold = lambda theta: fold_standardization(theta, self.input_mean, self.input_std,  # noqa: E731
                                                  self.controller.action_dim)
        return fold(solutions) if solutions.ndim == 1 else np.stack([fold(theta) for theta in solutions])

    def __call__(self, solutions: np.ndarray, seeds: Sequence[int]) -> Evaluation:
        solutions, seeds = self.params(solutions), [int(s) for s in seeds]
        if self.workers == 1:
            return Evaluation(*_dream_groups(self.mdnrnn, self.starts, self.controller, self.config, solutions,
                                             seeds, self.max_batch))
        from concurrent.futures.process import BrokenProcessPool

        from wmlib.cmaes import WorkerError

        shards = [x for x in np.array_split(solutions, self.workers) if len(x)]
        futures = [self._executor().submit(_dream_in_worker, x, seeds) for x in shards]
        try:
            parts = [f.result() for f in futures]
        except BrokenProcessPool as exc:
            self.close()
            raise WorkerError("a dream worker process died abruptly or failed to start (killed, out of memory, "
                              "crashed, or a script that starts workers without an `if __name__ == '__main__':` "
                              "guard); the pool is closed") from exc
        except Exception as exc:
            raise WorkerError(f"a dream worker failed: {type(exc).__name__}: {exc}") from exc
        return Evaluation(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def _executor(self):
        if self._pool is None:
            import multiprocessing
            import os
            from concurrent.futures import ProcessPoolExecutor

            m = self.mdnrnn
            state = {k: v.detach().cpu() for k, v in m.state_dict().items()}
            starts = StartLatents(*(x.cpu() for x in self.starts))
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_dream_worker,
                initargs=(m.config, state, starts, self.controller, self.config, self.max_batch, os.getpid()))
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# One dream as a Gymnasium environment
# ---------------------------------------------------------------------------------------------


def dream_action_space(env_name: str) -> gym.Space:
    """The real env's action space, which the dream copies (wmlib.tasks): Discrete(2) for CartPole, the car's Box."""
    world = world_spec(env_name, wanted="dream action space")
    if world.m_preset is None:
        raise ValueError(f"no dream action space for {env_name!r}: the world has no M to dream with")
    return world.new_action_space()


class DreamEnv(gym.Env):
    """## Description

    The world as M imagines it. Nothing here is rendered or simulated: each step, M reads the
    current latent z and the action, updates its memory h, and samples the next z from its
    mixture at a temperature. A controller trained here never touches the real environment.

    ## Action Space

    The real env's: `Discrete(2)` for pixel CartPole (0 push left, 1 push right; M reads it
    one-hot) or the car's `Box([-1, 0, 0], [1, 1, 1])` (steer, gas, brake). By default a
    `Box(-1, 1, (A,))` when M's actions are continuous.

    ## Observation Space

    `Box((Z + H,), float32)`: [z, h], what the controller sees. z (M's sample) is unbounded;
    h (the LSTM's output) lies in [-1, 1].

    ## Rewards

    "survival": +1 for every step, the last one included (as in CartPole); "model": M's reward
    head. `DreamConfig.reward = "auto"` picks the head when M has one.

    ## Starting State

    z_0 ~ N(mu, sigma^2) of the first frame of a real episode chosen with `self.np_random`
    (`options={"start": i}` picks start i), and an empty memory h_0 = c_0 = 0.

    ## Episode End

    Terminated when M's done head says so (probability above `done_threshold`, or a sampled
    end); truncated after `max_steps` steps. Without a done head only the truncation ends it.

    ## Arguments

    `DreamEnv(mdnrnn, starts, config=DreamConfig(), action_space=None, vae=None,
    render_mode=None)`: `render_mode="rgb_array"` needs V to decode z into a 64x64x3 frame.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, mdnrnn: MDNRNN, starts: StartLatents, config: DreamConfig | None = None,
                 action_space: gym.Space | None = None, vae=None, render_mode: str | None = None):
        super().__init__()
        self._dream = BatchedDream(mdnrnn, starts, config)
        self.config = self._dream.config
        m = mdnrnn.config
        if action_space is None:
            action_space = gym.spaces.Box(-1.0, 1.0, (m.action_dim,), np.float32)
        if isinstance(action_space, gym.spaces.Discrete) and action_space.n != m.action_dim:
            raise ValueError(f"M reads one-hot actions of size {m.action_dim}, but the action space is {action_space}")
        if isinstance(action_space, gym.spaces.Box) and action_space.shape != (m.action_dim,):
            raise ValueError(f"M reads actions of size {m.action_dim}, but the action space is {action_space}")
        if not isinstance(action_space, gym.spaces.Discrete | gym.spaces.Box):
            raise TypeError(f"unsupported action space {action_space}; expected Discrete or Box")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if render_mode is not None and vae is None:
            raise ValueError("render_mode='rgb_array' needs V (pass vae=) to decode the dream's latents")
        if vae is not None and vae.config.z_dim != m.z_dim:
            raise ValueError(f"V makes z of size {vae.config.z_dim}, M dreams z of size {m.z_dim}")
        self.action_space = action_space
        low = np.concatenate([np.full(m.z_dim, -np.inf), -np.ones(m.hidden_size)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, -low, dtype=np.float32)
        self.vae, self.render_mode = vae, render_mode
        self.done_prob: float | None = None

    @property
    def z(self) -> torch.Tensor:
        """(Z,) the current latent (the widget decodes it)."""
        return self._dream.z[0]

    @property
    def h(self) -> torch.Tensor:
        """(H,) M's memory, what the controller reads beside z."""
        return self._dream.state.h[0].float()

    @property
    def t(self) -> int:
        """Steps taken since reset."""
        return self._dream.t

    @property
    def temperature(self) -> float:
        """tau of the dream's sampling; set it to make the dream calmer (< 1) or wilder (> 1)."""
        return self.config.temperature

    @temperature.setter
    def temperature(self, tau: float) -> None:
        if not tau > 0:
            raise ValueError(f"temperature must be positive, got {tau}")
        self.config = dataclasses.replace(self.config, temperature=float(tau))
        self._dream.config = self.config

    def _obs(self) -> np.ndarray:
        return self._dream.obs[0].cpu().numpy().astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start, noise_seed = draw_episode(self.np_random, len(self._dream.starts.mu))
        if options and "start" in options:
            start = int(options["start"])
        self._dream.reset_with([start], [noise_seed])
        self.done_prob = None
        return self._obs(), {"start": start}

    def action_vector(self, action) -> torch.Tensor:
        """An action of the action space -> M's (1, A) vector (one-hot for Discrete)."""
        if not self.action_space.contains(action if not isinstance(action, np.ndarray)
                                          else action.astype(self.action_space.dtype)):
            raise ValueError(f"expected an action in {self.action_space}, got {action!r}")
        if isinstance(self.action_space, gym.spaces.Discrete):
            return torch.nn.functional.one_hot(torch.tensor([int(action)]), self.action_space.n).float()
        return torch.as_tensor(np.asarray(action, np.float32)).reshape(1, -1)

    def step(self, action):
        out = self._dream.step(self.action_vector(action))
        self.done_prob = None if out.done_prob is None else float(out.done_prob[0])
        info = {} if self.done_prob is None else {"done_prob": self.done_prob}
        return self._obs(), float(out.reward[0]), bool(out.terminated[0]), bool(out.truncated[0]), info

    def render(self):
        """The current latent decoded by V: (64, 64, 3) uint8 (render_mode="rgb_array")."""
        if self.render_mode is None:
            return None
        from wmlib.vae import decode_latents

        return decode_latents(self.vae, self.z[None])[0]


def make_dream(env_name: str, mdnrnn: MDNRNN, starts: StartLatents, config: DreamConfig | None = None, *,
               vae=None, render_mode: str | None = None) -> DreamEnv:
    """A DreamEnv with the action space of one of the course's worlds (wmlib.tasks: "cartpole-pixels", ...)."""
    return DreamEnv(mdnrnn, starts, config, dream_action_space(env_name), vae=vae, render_mode=render_mode)


# ---------------------------------------------------------------------------------------------
# Training C entirely in the dream
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DreamTrainResult:
    """What `train_controller_in_dream` returns.

    controller: C with ordinary parameters (the standardisation folded in), for a WorldModelAgent
    cma:        wmlib.cmaes.CMAResult (history per generation; its "env_steps" are dream steps)
    picked:     "best" (the best candidate seen) or "mean" (CMA-ES's final mean), by `selection`
    selection:  mean dream return of each on `select_episodes` fresh dreams
    input_mean, input_std: the standardisation of C's inputs CMA-ES searched in
    dream_steps: every dream step taken (training and selection)
    """

    controller: object
    cma: object
    picked: str
    selection: dict
    input_mean: np.ndarray
    input_std: np.ndarray
    dream_steps: int

    @property
    def history(self) -> list[dict]:
        return self.cma.history


def train_controller_in_dream(mdnrnn: MDNRNN, episodes: Sequence[dict], controller: ControllerConfig,
                              cma_config=None, dream_config: DreamConfig | None = None, *, seed: int = 0,
                              x0_params: np.ndarray | None = None, select_episodes: int = 64,
                              max_batch: int = 4096, record: bool = False, progress: bool = True,
                              desc: str = "CMA-ES generations (in the dream)", workers: int = 1) -> DreamTrainResult:
    """Train C with CMA-ES without a single real step: every candidate plays in M's dream.

    episodes:  real encoded episodes (mu, logvar (T+1, Z), actions (T, A)): where dreams start, and
               the statistics of C's inputs (`dream_input_statistics`); they cost no new real steps
    x0_params: ordinary parameters of a C to start the search from (the last round's, say)
    workers:   processes that dream (DreamEvaluator.workers; 1: this process)
    Then picks between CMA-ES's best candidate and its final mean on fresh dreams.
    """
    from wmlib.cmaes import train_cmaes
    from wmlib.config import CMAESConfig
    from wmlib.controller import LinearController, unfold_standardization

    cma_config = CMAESConfig() if cma_config is None else cma_config
    dream_config = DreamConfig() if dream_config is None else dream_config
    if mdnrnn.reward_head is None and mdnrnn.done_head is None:
        raise ValueError("M predicts neither the reward nor the end of an episode, so in its dream every controller "
                         "scores the same (+1 per step until the step limit): train M with predict_done or "
                         "predict_reward (the CarRacing preset has neither; the paper trains the car's C for real)")
    mean, std = dream_input_statistics(mdnrnn, episodes)
    if len(mean) != controller.z_dim + controller.h_dim:
        raise ValueError(f"the controller reads {controller.z_dim} + {controller.h_dim} inputs, but M's [z; h] "
                         f"has {len(mean)}")
    c = LinearController(controller)
    x0 = np.zeros(c.num_params) if x0_params is None else unfold_standardization(x0_params, mean, std,
                                                                                 controller.action_dim)
    with DreamEvaluator(mdnrnn, start_latents(episodes), controller, dream_config, max_batch=max_batch,
                        input_mean=mean, input_std=std, workers=workers) as evaluator:
        cma = train_cmaes(evaluator, x0, cma_config, seed=seed, record=record, progress=progress, desc=desc)
        select_seeds = np.random.default_rng((seed, 1)).integers(0, 2**31 - 1, size=select_episodes)
        picks = evaluator(np.stack([cma.best_params, cma.mean]), select_seeds)
    selection = {"best": float(picks.returns[0].mean()), "mean": float(picks.returns[1].mean())}
    picked = "best" if selection["best"] >= selection["mean"] else "mean"
    c.set_flat_params(evaluator.params(cma.best_params if picked == "best" else cma.mean))
    return DreamTrainResult(c, cma, picked, selection, mean, std, cma.total_env_steps + int(picks.steps.sum()))
