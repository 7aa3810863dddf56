"""A Dreamer-style agent on the tiny RSSM: learn the world from replay, learn to act in its imagination.

    collect `random_episodes` random real episodes
    repeat until the real step budget is spent:
        world model: one update of wmlib.beyond.rssm's loss on B replay windows of T steps
        actor-critic: from every posterior state of that batch, imagine `horizon` steps on the prior,
                      backpropagate the lambda-return through the imagined latents into the actor
                      (wmlib.beyond.imagination.actor_critic_step, the same step chapter 8 uses on M)
        (one such update per `train_every` new real steps)
        play one real episode with the actor (sampled pushes: its own exploration), add it to the replay
        every `eval_every` real steps: the greedy actor plays `eval_episodes` real episodes (the curve)

Unlike World Models, the world model keeps learning from the actor's own episodes, and its latent is
trained with the reward and the ends (the continue head), not from frames alone. The imagined rollout:

    a_t ~ Bernoulli(sigmoid(actor([s_t; h_t])))    straight-through, as in wmlib.beyond.imagination
    h_{t+1} = GRU(h_t, [s_t; a_t]),  s_{t+1} = mu_p + sigma_p eps      the prior, reparameterised
    r_t = reward(s_{t+1}, h_{t+1}),  c_t = continue(s_{t+1}, h_{t+1})  the RSSM's heads

    result = train_dreamer(DreamerConfig(), seed=0)
    result.steps_to_target, result.curve, result.final

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from wmlib.agent import EVAL_SEED_START
from wmlib.beyond.config import DreamerConfig
from wmlib.beyond.imagination import actor_critic_step
from wmlib.beyond.policy import Actor, Critic
from wmlib.beyond.rssm import RSSM, State, world_model_loss
from wmlib.config import ControllerConfig
from wmlib.envs import make_env
from wmlib.observations import FRAME_SHAPE
from wmlib.rollouts import play_episode

DREAMER_SEED_BASE = 20_000_000
"""Training episodes of a run use seeds DREAMER_SEED_BASE + 100,000 * seed + i (apart from the evaluation range)."""

# ---------------------------------------------------------------------------------------------
# Replay: every real step, one stream
# ---------------------------------------------------------------------------------------------


class Replay:
    """Every real frame in one stream; windows are cut anywhere (the RSSM resets where `firsts` says).

    Row k of an episode of L steps (k = 0 .. L): frame o_k, the action a_{k-1} that led to it (zeros at k = 0),
    the reward r_{k-1} (0 at k = 0), first = (k == 0), terminal = (k == L and the episode failed).
    """

    def __init__(self, action_dim: int, capacity: int = 1024):
        self.n, self.action_dim = 0, action_dim
        self.frames = np.zeros((capacity, *FRAME_SHAPE), np.uint8)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.firsts = np.zeros(capacity, bool)
        self.terminals = np.zeros(capacity, bool)

    def _grow(self, need: int) -> None:
        if need <= len(self.frames):
            return
        size = max(need, 2 * len(self.frames))
        for name in ("frames", "actions", "rewards", "firsts", "terminals"):
            old = getattr(self, name)
            new = np.zeros((size, *old.shape[1:]), old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def add(self, episode: dict) -> None:
        """Append one episode (wmlib.rollouts.play_episode's layout: frames (L+1, 64, 64, 3), actions (L,) ...)."""
        L = len(episode["actions"])
        self._grow(self.n + L + 1)
        rows = slice(self.n, self.n + L + 1)
        self.frames[rows] = episode["frames"]
        self.actions[rows] = 0.0
        self.actions[self.n + 1 + np.arange(L), np.asarray(episode["actions"], np.int64)] = 1.0
        self.rewards[rows] = np.concatenate([[0.0], episode["rewards"]])
        self.firsts[rows] = False
        self.firsts[self.n] = True
        self.terminals[rows] = False
        self.terminals[self.n + L] = bool(episode["terminated"][-1])
        self.n += L + 1

    def sample(self, batch: int, length: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """B windows of T rows: frames (B, T, 64, 64, 3) uint8, prev_actions (B, T, A), rewards, firsts, terminals
        (B, T). The first row of every window counts as first (the RSSM starts it from zeros)."""
        if self.n < length:
            raise ValueError(f"the replay holds {self.n} rows, fewer than one window of {length}")
        idx = rng.integers(0, self.n - length + 1, size=batch)[:, None] + np.arange(length)
        firsts = self.firsts[idx].copy()
        firsts[:, 0] = True
        return {"frames": torch.from_numpy(self.frames[idx]), "prev_actions": torch.from_numpy(self.actions[idx]),
                "rewards": torch.from_numpy(self.rewards[idx]), "firsts": torch.from_numpy(firsts),
                "terminals": torch.from_numpy(self.terminals[idx])}


# ---------------------------------------------------------------------------------------------
# Imagination and one training update
# ---------------------------------------------------------------------------------------------


class ImaginedRSSM(NamedTuple):
    """B imagined trajectories of T steps: x (B, T+1, S+H) [s; h], rewards, continues, entropy (B, T)."""

    x: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    entropy: torch.Tensor


def imagine_rssm(model: RSSM, actor: Actor, start: State, horizon: int,
                 generator: torch.Generator | None = None) -> ImaginedRSSM:
    """Imagine `horizon` steps on the prior from start (B, .), keeping the graph from the actor's pushes on."""
    state, xs, entropies = start, [start.features()], []
    for _ in range(horizon):
        p = torch.sigmoid(actor(xs[-1]))  # (B,) probability of pushing right
        push = (torch.rand(p.shape, generator=generator) < p.detach()).to(p.dtype)
        push = push + p - p.detach()  # straight-through: the sampled push forward, d/dp backward
        state = model.img_step(state, torch.stack([1 - push, push], dim=1), generator)
        entropies.append(-(p * torch.log(p + 1e-8) + (1 - p) * torch.log(1 - p + 1e-8)))
        xs.append(state.features())
    x = torch.stack(xs, dim=1)
    return ImaginedRSSM(x, model.reward(x[:, 1:]), model.continue_prob(x[:, 1:]), torch.stack(entropies, dim=1))


class Learner(NamedTuple):
    """What trains: the RSSM, the actor, the critic and their optimisers (world model's, (actor's, critic's))."""

    model: RSSM
    actor: Actor
    critic: Critic
    wm_opt: torch.optim.Optimizer
    ac_opts: tuple


def make_learner(config: DreamerConfig) -> Learner:
    """A fresh RSSM, an actor that flips a fair coin (its last layer is zero) and a critic."""
    c = config.rssm
    model = RSSM(c)
    D = c.stoch_dim + c.deter_dim
    actor = Actor(ControllerConfig(z_dim=c.stoch_dim, h_dim=c.deter_dim, action_dim=1, action_map="discrete"),
                  np.zeros(D), np.ones(D), config.actor_hidden)
    critic = Critic(np.zeros(D), np.ones(D), config.critic_hidden)
    return Learner(model, actor, critic, torch.optim.Adam(model.parameters(), lr=c.lr),
                   (torch.optim.Adam(actor.parameters(), lr=config.actor_lr),
                    torch.optim.Adam(critic.parameters(), lr=config.critic_lr)))


def train_step(learner: Learner, batch: dict, config: DreamerConfig, generator: torch.Generator) -> dict:
    """One world-model update on `batch` (Replay.sample), then one actor-critic update in its imagination.

    Returns the loss parts and the mean imagined value of the starts, as floats.
    """
    model = learner.model
    out = model.observe(batch["frames"], batch["prev_actions"], batch["firsts"], generator=generator)
    parts = world_model_loss(model, out, batch["frames"], batch["rewards"], batch["terminals"], batch["firsts"])
    learner.wm_opt.zero_grad()
    parts.total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.rssm.max_grad_norm)
    learner.wm_opt.step()
    S, H = config.rssm.stoch_dim, config.rssm.deter_dim
    start = State(out.h.detach().reshape(-1, H), out.s.detach().reshape(-1, S))
    model.requires_grad_(False)  # frozen for the actor: gradients pass through it, its weights stay
    try:
        im = imagine_rssm(model, learner.actor, start, config.horizon, generator)
        actor_critic_step(im.x, im.rewards, im.continues, im.entropy, learner.critic, learner.ac_opts,
                          gamma=config.gamma, lam=config.lam, entropy_scale=config.entropy_scale,
                          max_grad_norm=config.ac_max_grad_norm, start_weights=model.continue_prob(im.x[:, 0]))
    finally:
        model.requires_grad_(True)
    return {name: float(v.detach()) for name, v in parts._asdict().items()} | {
        "imagined_continue": float(im.continues.detach().mean())}


# ---------------------------------------------------------------------------------------------
# Acting in reality
# ---------------------------------------------------------------------------------------------


class Player:
    """The actor in real envs, N at a time: filters each frame into the RSSM's posterior state, then pushes.

    greedy: push right iff the logit > 0 (evaluation); else sample the push (the actor's exploration).
    """

    def __init__(self, learner: Learner, n: int, greedy: bool, generator: torch.Generator | None = None):
        self.learner, self.greedy, self.generator = learner, greedy, generator
        self.state = learner.model.initial_state(n)
        self.prev = torch.zeros(n, learner.model.config.action_dim)
        self.first = torch.ones(n, dtype=torch.bool)

    @torch.no_grad()
    def act(self, frames: np.ndarray) -> np.ndarray:
        """frames (N, 64, 64, 3) uint8 -> actions (N,) in {0, 1}; the state moves one step."""
        model = self.learner.model
        embed = model.encode(torch.from_numpy(np.ascontiguousarray(frames)))
        self.state, post, _ = model.obs_step(self.state, self.prev, embed, self.first, self.generator)
        self.state = State(self.state.h, post.mean if self.greedy else self.state.s)
        p = torch.sigmoid(self.learner.actor(self.state.features()))
        push = (p > 0.5) if self.greedy else (torch.rand(p.shape, generator=self.generator) < p)
        self.prev = torch.stack([~push, push], dim=1).float()
        self.first = torch.zeros_like(self.first)
        return push.long().numpy()

    def value(self) -> torch.Tensor:
        """The critic's value (N,) of the current states (its imagined discounted return from here)."""
        with torch.no_grad():
            return self.learner.critic(self.state.features())


def evaluate(learner: Learner, episodes: int, *, seed_start: int = EVAL_SEED_START, gamma: float = 0.99,
             max_steps: int = 500) -> dict:
    """The greedy actor on `episodes` real pixel-CartPole episodes played side by side (seeds seed_start, ...).

    Returns mean, std, returns, env_steps, and the critic's value of the first state against the real discounted
    return sum_t gamma^t r_t ("imagined_value", "real_discounted": means over the episodes).
    """
    envs = [make_env("cartpole-pixels", max_episode_steps=max_steps) for _ in range(episodes)]
    frames = np.stack([env.reset(seed=seed_start + i)[0] for i, env in enumerate(envs)])
    player = Player(learner, episodes, greedy=True)
    returns, discounted = np.zeros(episodes), np.zeros(episodes)
    alive, first_value, t = np.ones(episodes, bool), None, 0
    while alive.any():
        actions = player.act(frames)
        if first_value is None:
            first_value = player.value().numpy()
        for i in np.flatnonzero(alive):
            frames[i], reward, term, trunc, _ = envs[i].step(int(actions[i]))
            returns[i] += reward
            discounted[i] += gamma ** t * reward
            alive[i] = not (term or trunc)
        t += 1
    for env in envs:
        env.close()
    return {"mean": float(returns.mean()), "std": float(returns.std()), "returns": returns.tolist(),
            "env_steps": int(returns.sum()), "imagined_value": float(first_value.mean()),
            "real_discounted": float(discounted.mean())}


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DreamerResult:
    """What `train_dreamer` returns.

    curve: one dict per evaluation {"real_steps", "mean", "std", "imagined_value", "real_discounted", "updates",
           "wm_total", "wm_reconstruction", "wm_continuation", "wm_kl" (the mean losses since the last one)}
    losses: one dict per update (WorldModelLoss's parts as floats, "imagined_continue", "real_steps")
    steps_to_target: real steps used when `check_episodes` episodes first averaged >= target (None: never)
    final: the last actor's evaluation over `check_episodes` real episodes (see `evaluate`)
    """

    learner: Learner
    curve: list[dict]
    losses: list[dict]
    real_steps: int
    steps_to_target: int | None
    final: dict
    wall_s: float


def _evaluate_and_check(learner: Learner, config: DreamerConfig, steps: int, curve: list[dict]) -> dict | None:
    """Score the greedy actor (the curve); when it reaches the target, confirm on check_episodes episodes."""
    ev = evaluate(learner, config.eval_episodes, gamma=config.gamma, max_steps=config.max_episode_steps)
    curve.append({"real_steps": steps} | {k: ev[k] for k in ("mean", "std", "imagined_value", "real_discounted")})
    if ev["mean"] < config.target_return:
        return None
    check = ev if config.check_episodes == 0 else evaluate(learner, config.check_episodes, gamma=config.gamma,
                                                           max_steps=config.max_episode_steps)
    return check if check["mean"] >= config.target_return else None


def train_dreamer(config: DreamerConfig | None = None, *, seed: int = 0, progress: bool = True,
                  on_eval: Callable[[dict], None] | None = None) -> DreamerResult:
    """Run the loop of the module docstring on pixel CartPole until the real step budget is spent or the target
    is confirmed; then evaluate the last actor on max(check_episodes, 1) real episodes (not counted).

    on_eval(row) is called with each new row of the learning curve (plus the mean world-model loss since the last).
    """
    config = DreamerConfig() if config is None else config
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    generator, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    learner = make_learner(config)
    env = make_env("cartpole-pixels", max_episode_steps=config.max_episode_steps)
    env.action_space.seed(seed)
    replay, next_seed = Replay(config.rssm.action_dim), DREAMER_SEED_BASE + 100_000 * seed
    steps, owed, curve, losses, confirmed = 0, 0.0, [], [], None
    next_eval = config.eval_every or config.real_step_budget + 1
    bar = tqdm(total=config.real_step_budget, desc="real steps (RSSM agent)", unit="step", disable=not progress)

    def play(policy) -> None:
        nonlocal steps, next_seed
        episode = play_episode(env, policy, seed=next_seed,
                               max_steps=min(config.max_episode_steps, config.real_step_budget - steps))
        next_seed += 1
        replay.add(episode)
        steps += len(episode["actions"])
        bar.update(len(episode["actions"]))

    for _ in range(config.random_episodes):
        if steps < config.real_step_budget:
            play(lambda obs, info: env.action_space.sample())
    for _ in range(config.pretrain_updates if replay.n >= config.seq_len else 0):
        losses.append(train_step(learner, replay.sample(config.batch_size, config.seq_len, rng), config, generator)
                      | {"real_steps": steps})
    while steps < config.real_step_budget and confirmed is None:
        player = Player(learner, 1, greedy=False, generator=generator)
        before = steps
        play(lambda obs, info, player=player: int(player.act(obs[None])[0]))
        owed += (steps - before) / config.train_every
        while owed >= 1 and replay.n >= config.seq_len:
            owed -= 1
            losses.append(train_step(learner, replay.sample(config.batch_size, config.seq_len, rng), config,
                                     generator) | {"real_steps": steps})
        if steps >= next_eval or steps >= config.real_step_budget:
            next_eval += config.eval_every or config.real_step_budget + 1
            confirmed = _evaluate_and_check(learner, config, steps, curve)
            recent = [row for row in losses if row["real_steps"] > (curve[-2]["real_steps"] if len(curve) > 1 else 0)]
            curve[-1]["updates"] = len(losses)
            for key in ("total", "reconstruction", "continuation", "kl"):
                curve[-1][f"wm_{key}"] = float(np.mean([row[key] for row in recent])) if recent else float("nan")
            if on_eval is not None:
                on_eval(curve[-1])
            bar.set_postfix(eval_mean=curve[-1]["mean"])
    bar.close()
    env.close()
    final = confirmed if confirmed is not None and len(confirmed["returns"]) >= config.check_episodes else \
        evaluate(learner, max(config.check_episodes, 1), gamma=config.gamma, max_steps=config.max_episode_steps)
    return DreamerResult(learner, curve, losses, steps, steps if confirmed is not None else None, final,
                         time.perf_counter() - t_start)
