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
    BatchedDream    B dreams at once; wmlib.dream_training plays a whole CMA-ES population x
                    rollouts in one batch with it, and trains C there

Every dream has its own random stream, seeded by its episode seed and drawn ahead in chunks
(`NoiseStream`), so a dream's future does not depend on which other dreams share its batch: the
batched dream with seed s plays exactly the episode that DreamEnv plays after reset(seed=s).

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils.seeding import np_random

from wmlib.config import DREAM_REWARDS, DreamConfig
from wmlib.mdnrnn import MDNRNN, LSTMState
from wmlib.precision import dream_model
from wmlib.tasks import world_spec
from wmlib.vae import ConvVAE, decode_latents

NOISE_CHUNK = 64
"""Steps of random numbers drawn ahead per dream (one generator call per dream per chunk)."""

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


def mdn_sample_from_noise(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, temperature: float,
                          u: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """mdn_sample with its random numbers given: u ~ U(0, 1) picks the component, eps ~ N(0, 1).

        p = softmax(logits / tau)             k = the first k with p_1 + ... + p_k > u
        y = mu_k + sigma_k * sqrt(tau) * eps

    The same distribution as wmlib.mdnrnn.mdn_sample (inverse-CDF sampling of the component),
    but every draw comes from the caller, so each dream can keep its own random stream.
    logits: the mixture weights as log_pi or as unnormalised logits (softmax(x / tau) does not change
    when x shifts by a constant).    logits, mu, log_sigma: (..., K)    u, eps: (...)    Returns (...).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    K = logits.shape[-1]
    # Worked on a (K, N) copy, N the positions: PyTorch's CPU softmax is slower over a short last axis.
    p = torch.softmax((logits / temperature).reshape(-1, K).T.contiguous(), dim=0)  # (K, N)
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
               done_threshold: float | None = None, done_bias: float = 0.0) -> DreamStep:
    """M imagines one step of B dreams: it reads (z_t, a_t), remembers, and samples z_{t+1}.

    z: (B, Z)   a: (B, A) M's action vectors   state: (B, H) each   u, eps: (B, Z)   u_done: (B,)
    terminated = done_prob > u_done (a sampled end, u_done ~ U(0, 1)), or done_prob > done_threshold when
    one is given (the paper's code used 0.5; see DreamConfig.done_threshold for why we sample).
    done_bias is added to M's done logit first: log q makes every end q times likelier in odds, as the
    paper's Doom M, trained with its rare ends weighted q times, learned to do (DreamConfig.done_bias).
    """
    dtype = next(mdnrnn.parameters()).dtype  # float32, or bfloat16 for a wmlib.precision.dream_model copy
    state = LSTMState(state.h.to(dtype), state.c.to(dtype))  # no-ops when they already match
    out = mdnrnn.step_logits(z.to(dtype), a.to(dtype), state)
    z_next = mdn_sample_from_noise(out.logits, out.mu, out.log_sigma, temperature, u, eps)  # heads: float32
    done_prob = torch.sigmoid(out.done_logit + done_bias) if out.done_logit is not None else None
    if done_prob is None:
        terminated = torch.zeros(z.shape[0], dtype=torch.bool, device=z.device)
    else:
        terminated = done_prob > (u_done if done_threshold is None else done_threshold)
    return DreamStep(z_next, out.state, done_prob, terminated, out.reward)


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
    """What an episode's seed decides: which real start (index) and the random seed of its noise stream."""
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
    if config.reward not in DREAM_REWARDS:  # DreamConfig refuses it too; a config built by hand may not be one
        raise ValueError(f"unknown reward {config.reward!r}; expected one of {', '.join(DREAM_REWARDS)}")
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
                         self.config.temperature, u, eps, u_done, self.config.done_threshold,
                         self.config.done_bias)
        self.z, self.state, self.t = out.z, out.state, self.t + 1
        reward = out.reward if self.reward_mode == "model" else torch.ones(B, device=self.device)
        truncated = torch.full((B,), self.t >= self.config.max_steps, device=self.device)
        return DreamTransition(self.obs, reward, out.terminated, truncated & ~out.terminated, out.done_prob)


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
    end; `done_bias` is added to its logit first); truncated after `max_steps` steps. Without a done
    head only the truncation ends it.

    ## Arguments

    `DreamEnv(mdnrnn, starts, config=DreamConfig(), action_space=None, vae=None,
    render_mode=None)`: `render_mode="rgb_array"` needs V to decode z into a 64x64x3 frame.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, mdnrnn: MDNRNN, starts: StartLatents, config: DreamConfig | None = None,
                 action_space: gym.Space | None = None, vae: ConvVAE | None = None, render_mode: str | None = None):
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
    def reward_mode(self) -> str:
        """How this dream pays: "survival" (+1 per step) or "model" (M's reward head)."""
        return self._dream.reward_mode

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
        return decode_latents(self.vae, self.z[None])[0]


def make_dream(env_name: str, mdnrnn: MDNRNN, starts: StartLatents, config: DreamConfig | None = None, *,
               vae=None, render_mode: str | None = None) -> DreamEnv:
    """A DreamEnv with the action space of one of the course's worlds (wmlib.tasks: "cartpole-pixels", ...)."""
    return DreamEnv(mdnrnn, starts, config, dream_action_space(env_name), vae=vae, render_mode=render_mode)
