"""Scoring one controller over many real episodes, the episodes played side by side (in lockstep).

Scoring C means playing it for many episodes. One at a time, every step runs V, M and C on a batch
of one frame, and at that size PyTorch spends most of its time on the call, not the arithmetic. Played
side by side, the B episodes still alive take one step each, and V, M and C see all B frames at once:

    every step:  frames (B, 64, 64, 3) -> z = V.encode (B, Z) -> a = C(z, h) (B,) -> h = M.step(z, a, h)
                 each env steps with its own action; episodes that end leave the batch

Each episode is the same episode the one-at-a-time player (`wmlib.agent.play_episode`) plays on its
random seed, up to float rounding: V's convolution over B frames adds in another order than over one,
so z differs in the last bits (about 1e-7), and a discrete action can flip only where C's output sits
that close to its decision threshold. tests/test_lockstep.py checks the returns against the one-at-a-time
player. That is why only worlds with discrete actions (pixel CartPole, Doom) are played in lockstep: a
continuous action (the car's steering) carries the 1e-7 into the physics, and over a few hundred steps
the car's track diverges (measured: 4 of 6 tracks ended with other returns), so the one-at-a-time
player's numbers could not be reproduced.
On pixel CartPole it is about 3x faster per real step on one core (`python benchmarks/lockstep_speed.py`
measures both players on the same random seeds).

    with LockstepEvaluator(ControllerRollout("cartpole-pixels", "cartpole", "cartpole", c_config), workers=2) as ev:
        result = ev.evaluate(controller.get_flat_params(), episodes=100)   # an agent.EvaluationResult

This is for measuring a controller (a test set of episodes). CMA-ES's evaluators (wmlib.evaluators)
play one episode per task instead, so that the serial and pooled evaluators agree to the bit.

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch
from tqdm.auto import tqdm

from wmlib.agent import EVAL_SEED_START, ControllerRollout, EvaluationResult
from wmlib.controller import action_map_spec
from wmlib.envs import encode_actions, make_env
from wmlib.mdnrnn import LSTMState
from wmlib.rollouts import frames_to_tensor

SHARD = 25
"""Episodes per task: enough to fill V's batch, small enough that a progress bar moves."""


@torch.no_grad()
def play_in_lockstep(rollout: ControllerRollout, params: np.ndarray, seeds: Sequence[int]) -> EvaluationResult:
    """Play one episode per seed with the controller parameters `params` (rollout's search coordinates),
    all side by side. Returns an EvaluationResult with returns (len(seeds),) and steps, in seed order.

    rollout: what the episodes are (world, V, M, C's config, max_steps, sample_z), as for CMA-ES.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("need at least one random seed to play")
    _, agent = rollout.build()
    vae, mdnrnn, controller = agent.vae, agent.mdnrnn, agent.controller
    spec = action_map_spec(controller.config.action_map)
    if not spec.one_hot:
        raise ValueError(f"lockstep play reproduces episodes only for discrete actions; {rollout.env_name}'s are "
                         f"continuous ({controller.config.action_map!r}), where rounding changes the episode: play "
                         "them one at a time (wmlib.agent.evaluate_controller)")
    controller.set_flat_params(rollout.controller_params(params))
    envs = [make_env(rollout.env_name) for _ in seeds]
    generators = [torch.Generator().manual_seed(s) for s in seeds]  # z ~ N(mu, sigma^2) with sample_z
    frames = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)])
    alive = list(range(len(seeds)))  # the episodes still playing, in the order of the batch rows
    state = mdnrnn.initial_state(len(seeds), "cpu") if mdnrnn is not None else None
    returns, steps = np.zeros(len(seeds)), np.zeros(len(seeds), dtype=np.int64)
    try:
        while alive:
            mu, logvar = vae.encode(frames_to_tensor(frames))  # (B, Z) each
            z = mu
            if rollout.sample_z:
                eps = torch.stack([torch.randn(mu.shape[1], generator=generators[i]) for i in alive])
                z = mu + torch.exp(0.5 * logvar) * eps
            y = controller(z, state.h if state is not None else None)  # (B, A_c) in [-1, 1]
            actions = spec.batched(y)  # (B,) choices
            if state is not None:
                a = torch.from_numpy(encode_actions(actions.numpy(), envs[0].action_space))
                state = mdnrnn.step(z, a, state).state
            keep, next_frames = [], []
            for row, i in enumerate(alive):
                frame, reward, terminated, truncated, _ = envs[i].step(int(actions[row]))
                returns[i] += float(reward)
                steps[i] += 1
                cut = rollout.max_steps is not None and steps[i] >= rollout.max_steps
                if not (terminated or truncated or cut):
                    keep.append(row)
                    next_frames.append(frame)
            if len(keep) < len(alive):
                alive = [alive[row] for row in keep]
                rows = torch.as_tensor(keep, dtype=torch.long)
                state = LSTMState(state.h[rows], state.c[rows]) if state is not None and keep else state
            if alive:
                frames = np.stack(next_frames)
    finally:
        for env in envs:
            env.close()
    return EvaluationResult(returns, steps)


_ROLLOUT: ControllerRollout | None = None
"""In a worker process: the episodes it plays (set once by _init)."""


def _init(rollout: ControllerRollout, parent_pid: int) -> None:
    global _ROLLOUT
    from wmlib.evaluators import _exit_with_parent

    _ROLLOUT = rollout
    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _play_shard(params: np.ndarray, seeds: list[int]) -> EvaluationResult:
    return play_in_lockstep(_ROLLOUT, params, seeds)


class LockstepEvaluator:
    """Scores one controller over many real episodes, played in lockstep, here or over worker processes.

    rollout: a ControllerRollout (world, V, M, C's config)    workers: processes (1: this process)
    The episodes go out in shards of SHARD; each worker loads V and M once, at its first shard, and the
    workers live until close() (or the end of a `with` block). A worker that dies gives a RuntimeError
    naming the random seeds it was playing, never a hang.
    """

    def __init__(self, rollout: ControllerRollout, workers: int = 1):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.rollout, self.workers = rollout, workers
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, params: np.ndarray, seeds: Sequence[int], *, progress: bool = False,
                 desc: str = "scoring C in real episodes") -> EvaluationResult:
        """The returns and steps of one episode per seed (in seed order), with C's parameters `params`."""
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 1:
            raise ValueError(f"expected one controller's parameters (P,), got shape {params.shape}")
        seeds = [int(s) for s in seeds]
        n_shards = max(self.workers, math.ceil(len(seeds) / SHARD))
        shards = [list(s) for s in np.array_split(seeds, min(n_shards, len(seeds))) if len(s)]
        returns, steps = [], []
        with tqdm(total=len(seeds), desc=desc, unit="episode", disable=not progress) as bar:
            if self.workers == 1:
                results = (play_in_lockstep(self.rollout, params, shard) for shard in shards)
            else:
                if self._pool is None:
                    self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_init, initargs=(self.rollout, os.getpid()))
                futures = [self._pool.submit(_play_shard, params, shard) for shard in shards]
                results = (self._result(f, shard) for f, shard in zip(futures, shards, strict=True))
            for result in results:
                returns.extend(result.returns.tolist())
                steps.extend(result.steps.tolist())
                bar.update(len(result.returns))
                bar.set_postfix(mean=f"{np.mean(returns):.1f}")
        return EvaluationResult(np.asarray(returns), np.asarray(steps, dtype=np.int64))

    def _result(self, future, shard: list[int]) -> EvaluationResult:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise RuntimeError(f"a worker process died while playing the episodes of random seeds {shard}; "
                               "the workers are stopped") from exc

    def evaluate(self, params: np.ndarray, episodes: int = 100, *, seed_start: int = EVAL_SEED_START,
                 progress: bool = True, desc: str = "scoring C in real episodes") -> EvaluationResult:
        """`episodes` episodes on random seeds seed_start, seed_start + 1, ... (as agent.evaluate_controller)."""
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        return self(params, range(seed_start, seed_start + episodes), progress=progress, desc=desc)

    def close(self) -> None:
        """Stop the worker processes (a later call starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LockstepEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
