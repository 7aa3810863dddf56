"""The actor in chapter 5's dream: scored without gradients, and trained by CMA-ES, for the comparison.

    actor_dream_returns(m, starts, actor, params (N, P), seeds (R,), DreamConfig())   N actors x R dreams
    train_actor_with_cmaes(m, starts, actor, CMAESConfig(), ...)                       chapter 5's search

The dreams are chapter 5's (wmlib.dream.BatchedDream: the same starts, noise streams and sampled ends; dream
(i, j) starts as DreamEnv.reset(seed=seeds[j])), and the actor plays deterministically, pushing right iff its
logit is positive. `TrainingRun` is what both trainers of chapter 8 return, so they are measured the same way:
dream steps and wall time spent training (evaluations not counted), and the actor's mean return on the same
fixed evaluation dreams along the way.

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from wmlib.beyond.policy import Actor
from wmlib.cmaes import CMAES
from wmlib.config import CMAESConfig, DreamConfig
from wmlib.dream import BatchedDream, StartLatents
from wmlib.evaluators import Evaluation
from wmlib.mdnrnn import MDNRNN


@torch.no_grad()
def actor_dream_returns(mdnrnn: MDNRNN, starts: StartLatents, actor: Actor, params, seeds: Sequence[int],
                        config: DreamConfig | None = None) -> Evaluation:
    """Play N actors (params (N, P), `Actor.get_flat_params` layout) for R dreams each, in one batch.

    Returns Evaluation(returns (N, R), steps (N, R)). Dreams that have ended are dropped from the batch once a
    quarter of it has ended (they would cost compute for nothing), as chapter 5's dream_rollouts does.
    """
    config = DreamConfig() if config is None else config
    params = torch.as_tensor(np.asarray(params, np.float32))
    if params.dim() != 2 or params.shape[1] != actor.num_params:
        raise ValueError(f"expected params of shape (N, {actor.num_params}), got {tuple(params.shape)}")
    N, R = params.shape[0], len(seeds)
    if R < 1:
        raise ValueError("need at least one seed")
    dream = BatchedDream(mdnrnn, starts, config)
    obs = dream.reset([int(s) for s in seeds] * N)  # row i * R + j: actor i, seed j
    theta = params.repeat_interleave(R, dim=0)  # (B, P), one actor per row
    B = N * R
    rows, ended = torch.arange(B), torch.zeros(B, dtype=torch.bool)
    returns, steps = torch.zeros(B), torch.zeros(B)
    while len(rows) and dream.t < config.max_steps:
        push = (actor.batched_logits(theta, obs[:, None]) > 0).long().squeeze(1)  # (b,)
        out = dream.step(torch.nn.functional.one_hot(push, mdnrnn.config.action_dim).float())
        alive = (~ended).float()
        returns[rows] += out.reward * alive
        steps[rows] += alive
        ended, obs = ended | out.terminated | out.truncated, out.obs
        if (~ended).sum() <= 0.75 * len(rows):
            keep = (~ended).nonzero().squeeze(1)
            dream.keep(keep)
            rows, theta, obs, ended = rows[keep], theta[keep], obs[keep], ended[keep]
    return Evaluation(returns.view(N, R).double().numpy(), steps.view(N, R).long().numpy())


def dream_score(mdnrnn: MDNRNN, starts: StartLatents, actor: Actor, seeds: Sequence[int],
                config: DreamConfig | None = None) -> float:
    """The actor's mean return over the dreams `seeds` (its current parameters, deterministic pushes)."""
    return float(actor_dream_returns(mdnrnn, starts, actor, actor.get_flat_params()[None], seeds, config)
                 .returns.mean())


@dataclasses.dataclass
class TrainingRun:
    """What `train_actor_with_cmaes` and wmlib.beyond.imagination.train_in_imagination return.

    method:      "CMA-ES" or "gradients"
    actor:       the trained actor (CMA-ES: the search distribution's mean; gradients: the last update's)
    history:     per evaluation {"step" (generation or update), "dream_steps", "wall_s", "dream_score"}
    dream_steps: dream steps spent training (evaluations not counted)
    wall_s:      seconds spent training (evaluations not counted)
    reached:     the first history row whose dream_score reached the target, or None
    """

    method: str
    actor: Actor
    history: list[dict]
    dream_steps: int
    wall_s: float
    reached: dict | None

    @property
    def final_score(self) -> float:
        return self.history[-1]["dream_score"] if self.history else float("nan")


def train_actor_with_cmaes(mdnrnn: MDNRNN, starts: StartLatents, actor: Actor, cma_config: CMAESConfig,
                           dream_config: DreamConfig | None = None, *, seed: int = 0,
                           eval_seeds: Sequence[int] = range(64), eval_every: int = 1,
                           target_score: float | None = 475.0, stop_at_target: bool = True,
                           max_dream_steps: int | None = None, progress: bool = True,
                           desc: str = "CMA-ES in the dream") -> TrainingRun:
    """Chapter 5's search on any actor: candidates play R dreams each, CMA-ES moves its mean (in place).

    Starts from the actor's parameters (zeros for the linear actor, as chapter 5 did). Every `eval_every`
    generations the mean is scored on the dreams `eval_seeds`; the run stops when that reaches
    `target_score`, or after cma_config.generations.
    """
    dream_config = DreamConfig(max_steps=500) if dream_config is None else dream_config
    rng = np.random.default_rng(seed)
    es = CMAES(actor.get_flat_params(), cma_config.sigma0, cma_config.population_size, rng,
               rank_shaping=cma_config.rank_shaping)
    history, dream_steps, wall, reached = [], 0, 0.0, None
    for gen in tqdm(range(cma_config.generations), desc=desc, unit="gen", disable=not progress):
        t0 = time.perf_counter()
        solutions = es.ask()
        seeds = rng.integers(0, 2**31 - 1, size=cma_config.rollouts_per_candidate)
        evaluation = actor_dream_returns(mdnrnn, starts, actor, solutions, seeds, dream_config)
        es.tell(solutions, evaluation.returns.mean(axis=1))
        dream_steps += int(evaluation.steps.sum())
        wall += time.perf_counter() - t0
        if (gen + 1) % eval_every == 0 or gen + 1 == cma_config.generations:
            actor.set_flat_params(es.mean)
            history.append({"step": gen + 1, "dream_steps": dream_steps, "wall_s": wall,
                            "dream_score": dream_score(mdnrnn, starts, actor, eval_seeds, dream_config)})
            if reached is None and target_score is not None and history[-1]["dream_score"] >= target_score:
                reached = history[-1]
                if stop_at_target:
                    break
        if max_dream_steps is not None and dream_steps >= max_dream_steps:
            break
    actor.set_flat_params(es.mean)
    return TrainingRun("CMA-ES", actor, history, dream_steps, wall, reached)
