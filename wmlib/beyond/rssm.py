"""A tiny RSSM: the recurrent state-space model of PlaNet (2019) and Dreamer (2020), for 64x64x3 frames.

World Models split the world model in two, trained apart: V compressed each frame alone, M learnt to predict
V's codes. The RSSM is one model trained end to end, with a state in two parts:

    h_t = GRU(h_{t-1}, [s_{t-1}; a_{t-1}])          deterministic path: a memory that cannot forget by chance
    p(s_t | h_t)         = N(mu_p, sigma_p^2)       prior: what the model expects before it sees the frame
    q(s_t | h_t, e_t)    = N(mu_q, sigma_q^2)       posterior: after seeing it (e_t = encoder(frame_t))
    frame_t ~ decoder(h_t, s_t)   r_t ~ reward(h_t, s_t)   c_t ~ continue(h_t, s_t)   heads on the state

    loss = sum over pixels 0.5 (decoder - frame)^2           reconstruction (a unit-variance Gaussian)
         + reward_scale 0.5 (r_hat - r)^2                      the reward on arriving at step t
         + continue_scale BCE(c_hat, 1 - terminal_t)           does the episode go on after step t?
         + kl_scale max(free_nats, KL(q || p))                 the KL, summed over S, with free bits

Free bits: the KL between what the model saw and what it expected pulls the posterior towards the prior; below
`free_nats` nats per step it pulls not at all, so the latent may carry that much information for free (and the
model does not collapse the posterior onto the prior early, when the prior still knows nothing).
KL balancing (DreamerV2): the same KL, but its gradient shared unequally, alpha to the prior (learn to predict
what was seen) and 1 - alpha to the posterior (see less of what cannot be predicted): alpha = 0.8 moves the
prior faster. We use it because acting in imagination runs on the prior alone, so the prior must be good.

Imagination replaces the posterior by the prior: h_{t+1} = GRU(h_t, [s_t; a_t]), s_{t+1} ~ p(s | h_{t+1}),
reparameterised (s = mu + sigma eps), so imagined returns have gradients (wmlib.beyond.dreamer).

    model = RSSM(RSSMConfig())
    out = model.observe(frames, prev_actions, firsts)      frames (B, T, 64, 64, 3) uint8
    parts = world_model_loss(model, out, frames, rewards, terminals, firsts)

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from wmlib.beyond.config import RSSMConfig
from wmlib.observations import FRAME_SHAPE

# ---------------------------------------------------------------------------------------------
# The math: pure functions
# ---------------------------------------------------------------------------------------------


def kl_free_bits(mean_q: torch.Tensor, std_q: torch.Tensor, mean_p: torch.Tensor, std_p: torch.Tensor,
                 free_nats: float) -> torch.Tensor:
    """max(free_nats, KL(q || p)) between diagonal Gaussians q = N(mean_q, std_q^2) and p = N(mean_p, std_p^2):

        KL(q || p) = sum_i [ log(std_p,i / std_q,i) + (std_q,i^2 + (mean_q,i - mean_p,i)^2) / (2 std_p,i^2) - 1/2 ]

    summed over the last axis (the latent's S dimensions), then clamped from below per element: free bits.
    Below free_nats the value is free_nats and the gradient zero. The clamp is on the sum (one budget of free
    nats for the whole latent), not per dimension.
    mean_q, std_q, mean_p, std_p: (..., S), std > 0    Returns (...).
    """
    if not (mean_q.shape == std_q.shape == mean_p.shape == std_p.shape):
        raise ValueError(f"expected four tensors of the same shape (..., S), got {tuple(mean_q.shape)}, "
                         f"{tuple(std_q.shape)}, {tuple(mean_p.shape)}, {tuple(std_p.shape)}")
    if free_nats < 0:
        raise ValueError(f"free_nats must be >= 0, got {free_nats}")
    var_ratio = (std_q / std_p) ** 2
    kl = 0.5 * (var_ratio + ((mean_q - mean_p) / std_p) ** 2 - 1 - torch.log(var_ratio))
    return torch.clamp(kl.sum(dim=-1), min=free_nats)


def balanced_kl(post: Gaussian, prior: Gaussian, free_nats: float, balance: float) -> torch.Tensor:
    """KL balancing with free bits: balance * KL(sg(q) || p) + (1 - balance) * KL(q || sg(p)), each clamped.

    Its value is max(free_nats, KL(q || p)) (both terms equal it); only the gradient is shared: `balance` of it
    trains the prior, the rest the posterior (sg: stop-gradient). post, prior: Gaussians (..., S) -> (...).
    """
    to_prior = kl_free_bits(post.mean.detach(), post.std.detach(), prior.mean, prior.std, free_nats)
    to_post = kl_free_bits(post.mean, post.std, prior.mean.detach(), prior.std.detach(), free_nats)
    return balance * to_prior + (1 - balance) * to_post


def frames_to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., 64, 64, 3) -> floats (..., 3, 64, 64) in [-0.5, 0.5]."""
    if tuple(frames.shape[-3:]) != FRAME_SHAPE:
        raise ValueError(f"expected frames of shape (..., {', '.join(map(str, FRAME_SHAPE))}), "
                         f"got {tuple(frames.shape)}")
    return frames.float().div(255.0).sub(0.5).movedim(-1, -3)


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class Gaussian(NamedTuple):
    """A diagonal Gaussian: mean and std, (..., S) each."""

    mean: torch.Tensor
    std: torch.Tensor

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """mean + std * eps, eps ~ N(0, I): reparameterised (gradients reach mean and std)."""
        return self.mean + self.std * torch.randn(self.mean.shape, generator=generator)


class State(NamedTuple):
    """The RSSM's state: h (B, H) deterministic, s (B, S) stochastic."""

    h: torch.Tensor
    s: torch.Tensor

    def features(self) -> torch.Tensor:
        """[s; h] (B, S+H): what the heads, the actor and the critic read."""
        return torch.cat([self.s, self.h], dim=-1)


class Observed(NamedTuple):
    """`RSSM.observe`'s output over B windows of T steps.

    h: (B, T, H)   s: (B, T, S) sampled from the posterior   post, prior: Gaussians (B, T, S)
    """

    h: torch.Tensor
    s: torch.Tensor
    post: Gaussian
    prior: Gaussian

    def features(self) -> torch.Tensor:
        """[s; h] (B, T, S+H)."""
        return torch.cat([self.s, self.h], dim=-1)


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ELU(), nn.Linear(hidden, n_out))


class RSSM(nn.Module):
    """Encoder, recurrent state-space model, decoder, reward and continue heads (sizes: RSSMConfig)."""

    def __init__(self, config: RSSMConfig | None = None):
        super().__init__()
        self.config = c = RSSMConfig() if config is None else config
        d = c.depth
        # 64 -> 31 -> 14 -> 6 -> 2: an embedding of 8d x 2 x 2 = 32d numbers
        self.encoder = nn.Sequential(nn.Conv2d(3, d, 4, 2), nn.ELU(), nn.Conv2d(d, 2 * d, 4, 2), nn.ELU(),
                                     nn.Conv2d(2 * d, 4 * d, 4, 2), nn.ELU(), nn.Conv2d(4 * d, 8 * d, 4, 2),
                                     nn.ELU(), nn.Flatten())
        self.embed_dim = 32 * d
        F_dim = c.stoch_dim + c.deter_dim
        self.gru_input = nn.Sequential(nn.Linear(c.stoch_dim + c.action_dim, c.hidden), nn.ELU())
        self.gru = nn.GRUCell(c.hidden, c.deter_dim)
        self.prior_net = _mlp(c.deter_dim, c.hidden, 2 * c.stoch_dim)
        self.post_net = _mlp(c.deter_dim + self.embed_dim, c.hidden, 2 * c.stoch_dim)
        # a linear layer to 4d x 8 x 8, then 8 -> 16 -> 32 -> 64: the encoder mirrored (a cheap decoder: on a CPU
        # the decoder is most of the cost)
        self.decoder_in = nn.Linear(F_dim, 4 * d * 8 * 8)
        self.decoder = nn.Sequential(nn.ELU(), nn.Unflatten(1, (4 * d, 8, 8)),
                                     nn.ConvTranspose2d(4 * d, 2 * d, 4, 2, 1), nn.ELU(),
                                     nn.ConvTranspose2d(2 * d, d, 4, 2, 1), nn.ELU(), nn.ConvTranspose2d(d, 3, 4, 2, 1))
        self.reward_head = _mlp(F_dim, c.hidden, 1)
        self.continue_head = _mlp(F_dim, c.hidden, 1)

    # --- the pieces ---------------------------------------------------------------------------

    def initial_state(self, batch: int) -> State:
        """Zeros: h (B, H), s (B, S)."""
        return State(torch.zeros(batch, self.config.deter_dim), torch.zeros(batch, self.config.stoch_dim))

    def _gaussian(self, raw: torch.Tensor) -> Gaussian:
        mean, std = raw.chunk(2, dim=-1)
        return Gaussian(mean, F.softplus(std) + self.config.min_std)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (..., 64, 64, 3) -> embeddings e (..., 32 depth)."""
        x = frames_to_input(frames)
        lead = x.shape[:-3]
        return self.encoder(x.reshape(-1, *x.shape[-3:])).reshape(*lead, self.embed_dim)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """[s; h] (..., S+H) -> the frame's mean (..., 3, 64, 64), in [-0.5, 0.5] units."""
        lead = features.shape[:-1]
        y = self.decoder(self.decoder_in(features.reshape(-1, features.shape[-1])))
        return y.reshape(*lead, *y.shape[1:])

    def transition(self, state: State, action: torch.Tensor) -> torch.Tensor:
        """h_{t+1} = GRU(h_t, [s_t; a_t]): state (B, .), action (B, A) -> (B, H)."""
        return self.gru(self.gru_input(torch.cat([state.s, action], dim=-1)), state.h)

    def prior(self, h: torch.Tensor) -> Gaussian:
        """p(s_t | h_t): h (..., H) -> Gaussian (..., S)."""
        return self._gaussian(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embed: torch.Tensor) -> Gaussian:
        """q(s_t | h_t, e_t): h (..., H), embed (..., E) -> Gaussian (..., S)."""
        return self._gaussian(self.post_net(torch.cat([h, embed], dim=-1)))

    def continue_prob(self, features: torch.Tensor) -> torch.Tensor:
        """(..., S+H) -> (...) the probability that the episode goes on after this state."""
        return torch.sigmoid(self.continue_head(features).squeeze(-1))

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., S+H) -> (...) the reward received on arriving in this state."""
        return self.reward_head(features).squeeze(-1)

    # --- over time ----------------------------------------------------------------------------

    def obs_step(self, state: State, prev_action: torch.Tensor, embed: torch.Tensor, first: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[State, Gaussian, Gaussian]:
        """One filtering step: (state_{t-1} (B, .), a_{t-1} (B, A), e_t (B, E), first_t (B,) bool) -> state_t.

        Where first_t (a new episode), the state and the action are reset to zeros before the step.
        Returns (state_t with s_t ~ q, the posterior, the prior).
        """
        keep = (~first).to(embed.dtype).unsqueeze(-1)
        state = State(state.h * keep, state.s * keep)
        h = self.transition(state, prev_action * keep)
        prior, post = self.prior(h), self.posterior(h, embed)
        return State(h, post.rsample(generator)), post, prior

    def img_step(self, state: State, action: torch.Tensor, generator: torch.Generator | None = None) -> State:
        """One imagined step: (state_t, a_t (B, A)) -> state_{t+1} with s_{t+1} ~ p(s | h_{t+1}), reparameterised."""
        h = self.transition(state, action)
        return State(h, self.prior(h).rsample(generator))

    def observe(self, frames: torch.Tensor, prev_actions: torch.Tensor, firsts: torch.Tensor,
                state: State | None = None, generator: torch.Generator | None = None) -> Observed:
        """Filter B windows of T steps: frames (B, T, 64, 64, 3) uint8, prev_actions (B, T, A) (a_{t-1}, the action
        that led to frame t), firsts (B, T) bool (frame t starts an episode). state: before step 0 (zeros)."""
        B, T = frames.shape[:2]
        if prev_actions.shape != (B, T, self.config.action_dim) or firsts.shape != (B, T):
            raise ValueError(f"expected prev_actions ({B}, {T}, {self.config.action_dim}) and firsts ({B}, {T}) for "
                             f"frames {tuple(frames.shape)}, got {tuple(prev_actions.shape)} and "
                             f"{tuple(firsts.shape)}")
        embeds = self.encode(frames)  # (B, T, E): one batched pass through the conv layers
        state = self.initial_state(B) if state is None else state
        hs, ss, posts, priors = [], [], [], []
        for t in range(T):
            state, post, prior = self.obs_step(state, prev_actions[:, t], embeds[:, t], firsts[:, t], generator)
            hs.append(state.h)
            ss.append(state.s)
            posts.append(post)
            priors.append(prior)

        def stack(gs):
            return Gaussian(torch.stack([g.mean for g in gs], 1), torch.stack([g.std for g in gs], 1))

        return Observed(torch.stack(hs, 1), torch.stack(ss, 1), stack(posts), stack(priors))


# ---------------------------------------------------------------------------------------------
# The world model's loss
# ---------------------------------------------------------------------------------------------


class WorldModelLoss(NamedTuple):
    """The loss and its parts (each a mean over the B x T steps; total is what is minimised)."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    reward: torch.Tensor
    continuation: torch.Tensor
    kl: torch.Tensor
    """KL(q || p) summed over S, before free bits (what the latent really costs, in nats per step)."""


def world_model_loss(model: RSSM, out: Observed, frames: torch.Tensor, rewards: torch.Tensor,
                     terminals: torch.Tensor, firsts: torch.Tensor) -> WorldModelLoss:
    """The loss of the module docstring on `observe`'s output.

    frames (B, T, 64, 64, 3) uint8    rewards (B, T) received on arriving at frame t (ignored at a first frame)
    terminals (B, T) bool, frame t ends the episode (a failure; a time limit is not an end)    firsts (B, T) bool
    """
    c = model.config
    feats = out.features()
    recon = 0.5 * (model.decode(feats) - frames_to_input(frames)).pow(2).sum(dim=(-3, -2, -1)).mean()
    arrived = (~firsts).float()
    reward = (0.5 * (model.reward(feats) - rewards) ** 2 * arrived).sum() / arrived.sum().clamp(min=1)
    cont = F.binary_cross_entropy_with_logits(model.continue_head(feats).squeeze(-1), 1 - terminals.float())
    kl = balanced_kl(out.post, out.prior, c.free_nats, c.kl_balance).mean()
    total = recon + c.reward_scale * reward + c.continue_scale * cont + c.kl_scale * kl
    with torch.no_grad():
        raw_kl = kl_free_bits(*out.post, *out.prior, 0.0).mean()
    return WorldModelLoss(total, recon, reward, cont, raw_kl)
