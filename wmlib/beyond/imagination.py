"""Gradients through the dream: train the actor by backpropagating imagined returns through M.

Chapter 5 scored whole dreams and let CMA-ES guess which way to move. Here every step of the dream is a
differentiable function of the actor's parameters, so the return has a gradient (Dreamer's central idea,
on World Models' own M):

    a_t     ~ Bernoulli(sigmoid(actor([z_t; h_t])))      straight-through: forward the sampled push,
                                                         backward the gradient of its probability
    h_{t+1}, p(z_{t+1}), p(done_t) = M(z_t, a_t, h_t)    M is frozen, but gradients flow through it
    z_{t+1} = mu_k + sigma_k sqrt(tau) eps               reparameterised; the component k straight-through
    c_t     = 1 - p(done_t)                              the continuation probability (the done head)
    r_t     = 1                                          survival, as in the dream of chapter 5
    R_t     = lambda_return(r, c, v)                     imagined returns, bootstrapped by the critic v

    actor:  maximise sum_t w_t R_t  (w_t = prod_{s<t} gamma c_s: how likely step t is reached), + entropy
    critic: regress v([z_t; h_t]) on R_t (held fixed)

With +1 per step alive, the only way an action changes the return is through c_t and v: the gradient
says which push makes M's done head less sure the episode ends, now and over the next steps.

Why the straight-through choice of the mixture component (and not Gumbel-softmax or the mixture mean)?
Forward it draws exactly chapter 5's sample (the same `u` picks the same component), so the actor trains in
the very dream CMA-ES trained in; Gumbel-softmax would feed M blends of components it never produced, and the
mixture mean would erase the forks that chapter 3 gave M the mixture for. The price: the gradient through
the choice is biased (it treats a jump between components as if it were smooth).

    train_in_imagination(m, episodes, actor, critic, ImaginationConfig())   -> ImaginationResult

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from wmlib.beyond.config import ImaginationConfig
from wmlib.beyond.policy import Actor, Critic
from wmlib.beyond.search import TrainingRun, dream_score
from wmlib.config import DreamConfig
from wmlib.dream import StartLatents, start_latents
from wmlib.mdnrnn import MDNRNN, LSTMState

# ---------------------------------------------------------------------------------------------
# The math: pure functions
# ---------------------------------------------------------------------------------------------


def lambda_return(rewards: torch.Tensor, continues: torch.Tensor, values: torch.Tensor, gamma: float,
                  lam: float) -> torch.Tensor:
    """The lambda-return of every imagined step, computed backwards from the horizon T:

        R_T = v_T
        R_t = r_t + gamma c_t ((1 - lam) v_{t+1} + lam R_{t+1})

    lam = 0: one step, then trust the critic (r_t + gamma c_t v_{t+1}); lam = 1: every imagined reward to the
    horizon, then the critic. c_t is the probability that the episode goes on after step t.
    rewards, continues: (B, T)    values: (B, T+1), v_0 .. v_T    Returns (B, T): R_0 .. R_{T-1}.
    """
    if rewards.dim() != 2 or continues.shape != rewards.shape:
        raise ValueError(f"expected rewards and continues of the same shape (B, T), "
                         f"got {tuple(rewards.shape)} and {tuple(continues.shape)}")
    B, T = rewards.shape
    if tuple(values.shape) != (B, T + 1):
        raise ValueError(f"expected values of shape (B, T+1) = ({B}, {T + 1}), one more than the rewards, "
                         f"got {tuple(values.shape)}")
    out, R = [], values[:, T]
    for t in reversed(range(T)):
        R = rewards[:, t] + gamma * continues[:, t] * ((1 - lam) * values[:, t + 1] + lam * R)
        out.append(R)
    return torch.stack(out[::-1], dim=1)


def reach_weights(continues: torch.Tensor, gamma: float) -> torch.Tensor:
    """w_t = prod_{s<t} gamma c_s: the discounted probability that imagined step t happens at all.

    continues: (B, T) -> (B, T), w_0 = 1. Steps after a likely end count little in the actor's and critic's losses.
    """
    ones = torch.ones_like(continues[:, :1])
    return torch.cumprod(torch.cat([ones, gamma * continues[:, :-1]], dim=1), dim=1)


def straight_through_mixture_sample(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                                    temperature: float, u: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Chapter 5's dream sample, with a gradient.

        p = softmax(logits / tau)                       k = the first k with p_1 + ... + p_k > u
        y_j = mu_j + sigma_j sqrt(tau) eps              for every component j (the same eps)
        forward:  z = y_k                               exactly wmlib.dream.mdn_sample_from_noise
        backward: dz/dmu_k = 1, dz/dlog_sigma_k = sigma_k sqrt(tau) eps   (reparameterised)
                  dz/dp_j = y_j                         (straight-through: as if z = sum_j p_j y_j)

    logits, mu, log_sigma: (..., K)    u, eps: (...)    Returns (...).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not (logits.shape == mu.shape == log_sigma.shape) or u.shape != logits.shape[:-1] or eps.shape != u.shape:
        raise ValueError(f"expected logits, mu, log_sigma (..., K) and u, eps (...), got {tuple(logits.shape)}, "
                         f"{tuple(mu.shape)}, {tuple(log_sigma.shape)}, {tuple(u.shape)}, {tuple(eps.shape)}")
    K = logits.shape[-1]
    p = torch.softmax(logits / temperature, dim=-1)
    k = (p.detach().cumsum(dim=-1) <= u.unsqueeze(-1)).sum(dim=-1).clamp(max=K - 1)
    choice = F.one_hot(k, K).to(p.dtype) + p - p.detach()  # forward: one-hot; backward: d/dp
    y = mu + log_sigma.exp() * math.sqrt(temperature) * eps.unsqueeze(-1)
    return (choice * y).sum(dim=-1)


# ---------------------------------------------------------------------------------------------
# Imagining with gradients
# ---------------------------------------------------------------------------------------------


class Imagined(NamedTuple):
    """`imagine`'s trajectory of B dreams over T steps.

    x:         (B, T+1, Z+H) [z_t; h_t], what the actor and critic read (x[:, 0] the start)
    rewards:   (B, T) +1 per step       continues: (B, T) c_t = 1 - p(done_t)
    entropy:   (B, T) of the actor's push distribution
    ended:     (B,) bool, a sampled end happened (the dream restarts)
    z, state:  where the dreams stand after T steps (for the next update)
    """

    x: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    entropy: torch.Tensor
    ended: torch.Tensor
    z: torch.Tensor
    state: LSTMState


def imagine(mdnrnn: MDNRNN, actor: Actor, z: torch.Tensor, state: LSTMState, horizon: int, temperature: float,
            generator: torch.Generator, *, through_model: bool = True) -> Imagined:
    """Imagine `horizon` steps of B dreams from (z (B, Z), state (B, H) each), keeping the graph.

    through_model=False cuts the gradient at M's outputs (its next z, memory and done probability are
    detached): what World Models has, and what the test uses to show that the actor's gradient comes
    through M and nowhere else.
    """
    if mdnrnn.done_head is None:
        raise ValueError("imagining returns needs M's done head (its continuation probability); this M has none")
    B, Z = z.shape
    xs, continues, entropies = [torch.cat([z, state.h], dim=1)], [], []
    ended = torch.zeros(B, dtype=torch.bool)
    for _ in range(horizon):
        p = torch.sigmoid(actor(xs[-1]))  # (B,) probability of pushing right
        push = (torch.rand(B, generator=generator) < p.detach()).to(p.dtype)
        push = push + p - p.detach()  # straight-through: the sampled push forward, d/dp backward
        a = torch.stack([1 - push, push], dim=1)  # M reads the push one-hot: (left, right)
        out = mdnrnn.step_logits(z, a, state)
        u, eps = torch.rand(B, Z, generator=generator), torch.randn(B, Z, generator=generator)
        z = straight_through_mixture_sample(out.logits, out.mu, out.log_sigma, temperature, u, eps)
        done_prob, state = torch.sigmoid(out.done_logit), out.state
        if not through_model:
            z, done_prob, state = z.detach(), done_prob.detach(), LSTMState(state.h.detach(), state.c.detach())
        ended |= torch.rand(B, generator=generator) < done_prob.detach()
        continues.append(1 - done_prob)
        entropies.append(-(p * torch.log(p + 1e-8) + (1 - p) * torch.log(1 - p + 1e-8)))
        xs.append(torch.cat([z, state.h], dim=1))
    c = torch.stack(continues, dim=1)
    return Imagined(torch.stack(xs, dim=1), torch.ones_like(c), c, torch.stack(entropies, dim=1), ended, z, state)


# ---------------------------------------------------------------------------------------------
# Training the actor and the critic in imagination
# ---------------------------------------------------------------------------------------------


def fresh_dreams(starts: StartLatents, n: int, mdnrnn: MDNRNN, generator: torch.Generator
                  ) -> tuple[torch.Tensor, LSTMState]:
    """n dreams from real first frames: z_0 ~ N(mu, sigma^2) of a random start, an empty memory."""
    idx = torch.randint(len(starts.mu), (n,), generator=generator)
    eps = torch.randn(n, starts.mu.shape[1], generator=generator)
    return starts.mu[idx] + torch.exp(0.5 * starts.logvar[idx]) * eps, mdnrnn.initial_state(n, "cpu")


def actor_critic_step(x: torch.Tensor, rewards: torch.Tensor, continues: torch.Tensor, entropy: torch.Tensor,
                      critic: Critic, optimisers, *, gamma: float, lam: float, entropy_scale: float,
                      max_grad_norm: float, start_weights: torch.Tensor | None = None) -> None:
    """One actor step and one critic step on an imagined trajectory, whatever world model imagined it.

    x: (B, T+1, D) what the actor and critic read    rewards, continues, entropy: (B, T)
    start_weights: (B,) how much each start counts (the RSSM: the probability that its start state is not
    already an end); None counts every start fully.
    The actor's loss backpropagates the lambda-returns through x, the continuations and the rewards into
    whatever made them (M's or the RSSM's imagined latents, then the actor's pushes); the critic regresses
    v(x_t) on the returns, held fixed. Both optimisers (actor's, critic's) clip their gradients to max_grad_norm.
    """
    opt_actor, opt_critic = optimisers
    returns = lambda_return(rewards, continues, critic(x), gamma, lam)  # (B, T)
    weights = reach_weights(continues, gamma).detach()
    if start_weights is not None:
        weights = weights * start_weights.detach().unsqueeze(1)
    # In units of the best possible return 1 / (1 - gamma), so that entropy_scale means the same at any gamma.
    actor_loss = -(weights * ((1 - gamma) * returns + entropy_scale * entropy)).mean()
    opt_actor.zero_grad()
    actor_loss.backward()
    for group in opt_actor.param_groups:
        torch.nn.utils.clip_grad_norm_(group["params"], max_grad_norm)
    opt_actor.step()
    opt_critic.zero_grad()  # the actor's loss also reached the critic's weights: those gradients are dropped
    critic_loss = 0.5 * (weights * (critic(x[:, :-1].detach()) - returns.detach()) ** 2).mean()
    critic_loss.backward()
    torch.nn.utils.clip_grad_norm_(critic.parameters(), max_grad_norm)
    opt_critic.step()


def actor_critic_update(mdnrnn: MDNRNN, actor: Actor, critic: Critic, optimisers, config: ImaginationConfig,
            z: torch.Tensor, state: LSTMState, generator: torch.Generator) -> Imagined:
    """One actor step and one critic step on `config.horizon` imagined steps of M from (z, state)."""
    im = imagine(mdnrnn, actor, z, state, config.horizon, config.temperature, generator)
    actor_critic_step(im.x, im.rewards, im.continues, im.entropy, critic, optimisers, gamma=config.gamma,
                      lam=config.lam, entropy_scale=config.entropy_scale, max_grad_norm=config.max_grad_norm)
    return im


def train_in_imagination(mdnrnn: MDNRNN, episodes_or_starts: Sequence[dict] | StartLatents, actor: Actor,
                         critic: Critic, config: ImaginationConfig | None = None, *, seed: int = 0,
                         eval_seeds: Sequence[int] = range(64), stop_at_target: bool = True,
                         max_dream_steps: int | None = None, progress: bool = True,
                         desc: str = "gradient updates (in imagination)") -> TrainingRun:
    """Train the actor (in place) by backpropagating imagined lambda-returns through M; the critic alongside.

    episodes_or_starts: encoded real episodes (their first frames start the dreams) or StartLatents.
    The B dreams carry on from update to update (the gradient flows through the last `horizon` steps only,
    the critic values what lies beyond); a dream that ended, or reached max_steps, restarts from a real first
    frame. M is frozen (its weights get no gradient) but every gradient passes through it.
    Every `eval_every` updates the actor plays chapter 5's dream on the random seeds `eval_seeds` (deterministic
    pushes); the run stops when its mean return first reaches `target_score` (with stop_at_target), after the
    update that brings the training dream steps to `max_dream_steps`, or after `updates` updates.
    """
    config = ImaginationConfig() if config is None else config
    starts = episodes_or_starts if isinstance(episodes_or_starts, StartLatents) else start_latents(episodes_or_starts)
    eval_config = DreamConfig(max_steps=config.max_steps, temperature=config.temperature)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # nothing random is drawn from it below; it keeps any library default quiet
    optimisers = (torch.optim.Adam(actor.parameters(), lr=config.actor_lr),
                  torch.optim.Adam(critic.parameters(), lr=config.critic_lr))
    frozen = [(p, p.requires_grad) for p in mdnrnn.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    mdnrnn.eval()
    z, state = fresh_dreams(starts, config.batch_size, mdnrnn, generator)
    age = torch.zeros(config.batch_size, dtype=torch.long)
    history, dream_steps, wall, reached = [], 0, 0.0, None
    try:
        for update in tqdm(range(config.updates), desc=desc, unit="update", disable=not progress):
            t0 = time.perf_counter()
            im = actor_critic_update(mdnrnn, actor, critic, optimisers, config, z, state, generator)
            z, state = im.z.detach(), LSTMState(im.state.h.detach(), im.state.c.detach())
            age += config.horizon
            restart = im.ended | (age >= config.max_steps)
            if restart.any():
                n = int(restart.sum())
                z_new, state_new = fresh_dreams(starts, n, mdnrnn, generator)
                z, age = z.clone(), age.masked_fill(restart, 0)
                z[restart], h, c = z_new, state.h.clone(), state.c.clone()
                h[restart], c[restart] = state_new.h, state_new.c
                state = LSTMState(h, c)
            dream_steps += config.batch_size * config.horizon
            wall += time.perf_counter() - t0
            if (update + 1) % config.eval_every == 0 or update + 1 == config.updates:
                history.append({"step": update + 1, "dream_steps": dream_steps, "wall_s": wall,
                                "dream_score": dream_score(mdnrnn, starts, actor, eval_seeds, eval_config)})
                if reached is None and config.target_score is not None \
                        and history[-1]["dream_score"] >= config.target_score:
                    reached = history[-1]
                    if stop_at_target:
                        break
            if max_dream_steps is not None and dream_steps >= max_dream_steps:
                break
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
    return TrainingRun("gradients", actor, history, dream_steps, wall, reached)
