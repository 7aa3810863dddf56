"""The Ray evaluator: the evaluator protocol of wmlib/evaluators.py over long-lived Ray actors.

    with RayEvaluator(rollout_fn, address="auto") as evaluator:    # or batch_fn=..., a batch of dreams
        evaluation = evaluator(solutions (N, P), seeds (R,))        # Evaluation, (N, R) arrays
        evaluator.last_nodes                                         # (N, R) the Ray node that played each

The paper spread CMA-ES over a 64-core machine with MPI; the field's engine today is Ray. Each actor
is one process (one torch thread) that receives the work once, through Ray's object store, and
keeps it: a real env with V and M, or M and the dreams' starting points. A ControllerRollout,
which only names its V and M, is shipped with the weights themselves (`LoadedControllerRollout`),
so the other machines of a cluster need the code but no checkpoint files. A generation is cut
into the same tasks as the process pool's (`split_tasks`) and handed out one task per free actor,
so slow episodes do not hold the others up; the numbers are the serial evaluator's.

Failures never hang the run: an exception in a rollout comes back as a WorkerError naming the
actor, its node, the candidate and its random seed; an actor that dies (killed, out of memory, its node
gone) is reported by Ray at once and becomes a WorkerError naming what it was playing; and if no
task ends for `task_timeout_s`, the run stops with a WorkerError naming what was still playing.
After any of these the actors are stopped; the next call starts new ones.

On a cluster (docs/scale-out.md): `ray start --head` on one machine, `ray start --address=HEAD:6379`
on the others, then `--evaluator ray --ray-address auto` on the head. Without an address and with
no Ray running, the evaluator starts a Ray of this machine's cores and stops it on close().

Introduced in: docs/scale-out.md (chapter 7 runs it locally)
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Sequence

import numpy as np
import ray  # slow to import (a second or two): wmlib.evaluators.make_evaluator imports this module only for kind="ray"
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from wmlib.agent import ControllerRollout, WorldModelAgent
from wmlib.controller import LinearController
from wmlib.envs import make_env
from wmlib.evaluators import (
    BatchFn,
    Evaluation,
    RolloutFn,
    Work,
    WorkerError,
    as_solutions,
    run_task,
    split_tasks,
)
from wmlib.mdnrnn import MDNRNN, load_mdnrnn
from wmlib.vae import ConvVAE, load_vae


@dataclasses.dataclass
class LoadedControllerRollout(ControllerRollout):
    """A ControllerRollout that carries V and M themselves instead of loading them by name in each process.

    Made by `LoadedControllerRollout.of(rollout)` in the driver; pickled once into Ray's object store,
    so a cluster's nodes receive the weights with the work and need no checkpoint files.
    """

    vae_model: ConvVAE | None = None
    mdnrnn_model: MDNRNN | None = None

    @classmethod
    def of(cls, rollout: ControllerRollout) -> LoadedControllerRollout:
        """The same rollout with V (and M, when C reads h) loaded here from the names it holds."""
        fields = {f.name: getattr(rollout, f.name) for f in dataclasses.fields(ControllerRollout)}
        mdnrnn = load_mdnrnn(rollout.mdnrnn) if rollout.controller.h_dim > 0 else None
        return cls(**fields, vae_model=load_vae(rollout.vae), mdnrnn_model=mdnrnn)

    def build(self):
        """The env and the agent, made from the carried V and M on the first call in this process."""
        if self._agent is None:
            self._env = make_env(self.env_name)
            self._agent = WorldModelAgent(self.vae_model, self.mdnrnn_model, LinearController(self.controller),
                                          self._env.action_space, sample_z=self.sample_z)
        return self._env, self._agent


class _Scorer:
    """One Ray actor: holds the work (received once) and scores the tasks it is handed."""

    def __init__(self, work: Work, index: int):
        torch.set_num_threads(1)  # one actor per CPU, like the process pool's workers
        self.work, self.index = work, index
        self.node = ray.get_runtime_context().get_node_id()

    def where(self) -> tuple[str, int]:
        """(Ray node id, pid) of this actor."""
        return self.node, os.getpid()

    def score(self, first: int, solutions: np.ndarray, seeds: list[int]) -> tuple:
        """wmlib.evaluators.run_task here: ("ok", Evaluation) or ("error", where, what, traceback)."""
        where = f"Ray actor {self.index} (pid {os.getpid()} on node {self.node[:12]})"
        solutions = np.array(solutions)  # Ray hands arrays over read-only (straight from its object store)
        return run_task(self.work, where, first, solutions, seeds)


def _describe(rows: slice, seeds: Sequence[int]) -> str:
    if rows.stop - rows.start == 1 and len(seeds) == 1:
        return f"candidate {rows.start} with seed {seeds[0]}"
    return f"candidates {rows.start}..{rows.stop - 1} with seeds {list(seeds)}"


class RayEvaluator:
    """Scores a population over Ray actors: (solutions (N, P), seeds (R,)) -> Evaluation (N, R).

    RayEvaluator(rollout_fn, actors) plays one (candidate, seed) episode per task;
    RayEvaluator(batch_fn=f, actors=n) gives each actor one shard of the candidates with every seed.
    actors:  how many (none: one per CPU of the Ray cluster, `cpus_per_actor` each)
    address: None (use the Ray this process already joined, or start a local one of `actors` CPUs,
             or every core, and stop it on close), "auto", "HOST:PORT" or "ray://HOST:10001"
    task_timeout_s: stop with a WorkerError when no task ends for this long
    start_timeout_s: likewise for the actors' start (a process each, importing torch, receiving the work)
    The actors spread over the cluster's nodes, start at the first call and live until close()
    (or the end of a `with` block). `last_nodes` (N, R) holds the node id that played each
    (candidate, seed) of the last call; `nodes` the node of each actor.
    """

    def __init__(self, rollout_fn: RolloutFn | None = None, actors: int | None = None, *,
                 batch_fn: BatchFn | None = None, address: str | None = None, task_timeout_s: float = 900.0,
                 start_timeout_s: float = 300.0, cpus_per_actor: float = 1.0):
        if actors is not None and (not isinstance(actors, int) or actors < 1):
            raise ValueError(f"actors must be a positive integer, got {actors!r}")
        if not min(task_timeout_s, start_timeout_s, cpus_per_actor) > 0:
            raise ValueError(f"task_timeout_s, start_timeout_s and cpus_per_actor must be positive, got "
                             f"{task_timeout_s!r}, {start_timeout_s!r} and {cpus_per_actor!r}")
        if isinstance(rollout_fn, ControllerRollout) and not isinstance(rollout_fn, LoadedControllerRollout):
            rollout_fn = LoadedControllerRollout.of(rollout_fn)  # the weights travel with the work
        self._work = Work(rollout_fn, batch_fn)
        self.actors, self.address = actors, address
        self.task_timeout_s, self.start_timeout_s = float(task_timeout_s), float(start_timeout_s)
        self.cpus_per_actor = float(cpus_per_actor)
        self._actors: list = []
        self.nodes: list[str] = []
        self.last_nodes: np.ndarray | None = None
        self._started_ray = False

    @property
    def running(self) -> bool:
        """Whether the actors have been started (and not closed)."""
        return bool(self._actors)

    def _start(self) -> None:
        if not ray.is_initialized():
            local = {"num_cpus": self.actors} if self.address is None and self.actors else {}
            ray.init(address=self.address, include_dashboard=False, **local)
            self._started_ray = True
        cpus = ray.cluster_resources().get("CPU", 0.0)
        n = self.actors or max(1, int(cpus // self.cpus_per_actor))
        work = ray.put(self._work)  # once: every actor reads the same copy from the object store
        actor = ray.remote(_Scorer).options(num_cpus=self.cpus_per_actor, max_restarts=0, max_task_retries=0,
                                            scheduling_strategy="SPREAD")
        self._actors = [actor.remote(work, i) for i in range(n)]
        try:
            self.nodes = [node for node, _ in ray.get([a.where.remote() for a in self._actors],
                                                      timeout=self.start_timeout_s)]
        except GetTimeoutError as exc:
            self.close()
            raise WorkerError(f"{n} Ray actors of {self.cpus_per_actor:g} CPU did not start within "
                              f"{self.start_timeout_s:g} s; the cluster has {cpus:g} CPUs") from exc
        except RayActorError as exc:
            self.close()
            raise WorkerError(f"a Ray actor died while receiving its work (V, M, the env): {exc}") from exc

    def __call__(self, solutions: np.ndarray, seeds: Sequence[int]) -> Evaluation:
        """solutions (N, P), seeds (R,) -> Evaluation with (N, R) returns and steps (the serial numbers)."""
        solutions, seeds = as_solutions(solutions, seeds)
        if not self._actors:
            self._start()
        n, r = len(solutions), len(seeds)
        returns, steps = np.zeros((n, r)), np.zeros((n, r), dtype=np.int64)
        nodes = np.empty((n, r), dtype=object)
        tasks = deque(split_tasks(self._work.batched, len(self._actors), n, r))
        free, running = deque(range(len(self._actors))), {}
        while tasks or running:
            while tasks and free:  # one task per free actor: the fast ones take more
                a, (rows, cols) = free.popleft(), tasks.popleft()
                ref = self._actors[a].score.remote(rows.start, solutions[rows], [seeds[j] for j in cols])
                running[ref] = (a, rows, cols)
            done, _ = ray.wait(list(running), num_returns=1, timeout=self.task_timeout_s)
            if not done:
                playing = "; ".join(_describe(rows, [seeds[j] for j in cols]) for _, rows, cols in running.values())
                self.close()
                raise WorkerError(f"no Ray task ended within {self.task_timeout_s:g} s (task_timeout_s) while "
                                  f"playing {playing}; the actors are stopped")
            a, rows, cols = running.pop(done[0])
            try:
                out = ray.get(done[0])
            except RayActorError as exc:
                message = (f"Ray actor {a} on node {self.nodes[a][:12]} died (killed, out of memory, crashed, or "
                           f"its node was lost) while playing {_describe(rows, [seeds[j] for j in cols])}; "
                           "the actors are stopped")
                self.close()
                raise WorkerError(message) from exc
            if out[0] == "error":
                self.close()
                _, where, what, tb = out
                raise WorkerError(f"{where} failed on {what}\n--- traceback in the actor ---\n{tb}")
            returns[rows, cols], steps[rows, cols] = out[1]
            nodes[rows, cols] = self.nodes[a]
            free.append(a)
        self.last_nodes = nodes
        return Evaluation(returns, steps)

    def close(self) -> None:
        """Stop the actors (and the local Ray, if this evaluator started it); a later call starts new ones."""
        for a in self._actors:
            ray.kill(a)
        self._actors, self.nodes = [], []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
