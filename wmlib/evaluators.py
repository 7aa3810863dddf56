"""Evaluators: score a population of candidates, here or spread over worker processes.

CMA-ES only needs a score for every candidate of a generation. Whatever plays them (the real
environment, or the batched dream), the question asked is the same, and so is the answer:

    evaluation = evaluator(solutions, seeds)    solutions (N, P) candidates, seeds (R,) episode seeds
    evaluation.returns (N, R), evaluation.steps (N, R)
    evaluator.close()                           or `with evaluator: ...`: stop what it started

That is the `Evaluator` protocol below; `wmlib.cmaes.train_cmaes` takes any object that follows it.
Every candidate plays the same R seeds (common random numbers), and an evaluator must give the
same numbers whoever computes them: the serial and the pooled evaluators agree to the bit.

What gets scored comes in one of two shapes:

    rollout_fn(params (P,), seed) -> return, or Rollout(return, steps)    one episode (the real env)
    batch_fn(solutions (n, P), seeds (R,)) -> Evaluation (n, R)             many at once (the dream)

`SerialEvaluator` runs it in this process; `ProcessPoolEvaluator` spreads it over local worker
processes (one torch thread each); `wmlib.ray_evaluator.RayEvaluator` over Ray actors, on this
machine or a cluster. The pooled ones cut a generation into the same tasks (`split_tasks`): one
per (candidate, seed) for a rollout_fn, so episodes of different lengths balance out over the
workers, and one shard of candidates per worker for a batch_fn, whose whole point is one large
batch. `make_evaluator(rollout_fn, config=EvaluatorConfig(...))` picks one of the three.

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch


class Rollout(NamedTuple):
    """What a rollout function returns: the episode's return and how many env steps it took."""

    ret: float
    steps: int


class Evaluation(NamedTuple):
    """Returns (N, R) float64 and env steps (N, R) int64 of N candidates over R rollouts each."""

    returns: np.ndarray
    steps: np.ndarray


RolloutFn = Callable[[np.ndarray, int], "float | Rollout"]
"""rollout_fn(params (P,), seed) -> return (float) or Rollout(return, steps). Must be deterministic
given (params, seed), and picklable (a top-level function or object) for the process pool."""

BatchFn = Callable[[np.ndarray, list[int]], Evaluation]
"""batch_fn(solutions (n, P), seeds (R,)) -> Evaluation (n, R). Deterministic and picklable, and a
candidate's scores must not depend on which other candidates share its batch."""


@runtime_checkable
class Evaluator(Protocol):
    """Scores a population: (solutions (N, P), seeds (R,)) -> Evaluation with (N, R) arrays.

    close() releases whatever the evaluator started (processes, a cluster connection); an
    evaluator is also a context manager that closes on exit. Calling it after close() is an error
    or restarts it, as the implementation documents.
    """

    def __call__(self, solutions: np.ndarray, seeds: Sequence[int]) -> Evaluation: ...

    def close(self) -> None: ...

    def __enter__(self) -> Evaluator: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class EvaluatorConfig:
    """Who plays a generation's episodes, and where (`make_evaluator`). Speed only: the numbers are the same."""

    kind: Literal["serial", "process", "ray"] | None = None
    """serial (this process), process (local worker processes) or ray (Ray actors, here or on a cluster) (none:
    local processes, or this process when workers is 1)."""
    workers: int | None = None
    """Worker processes or Ray actors (none: every core; with ray, every CPU of the Ray cluster)."""
    ray_address: str | None = None
    """With ray: 'auto' (the cluster `ray start` joined this machine to), HOST:PORT of a head, or
    ray://HOST:10001 (none: a Ray of this machine's cores, started for the run and stopped after)."""
    task_timeout_s: float = 900.0
    """With ray: stop with an error when no task (one episode, or one shard of dreams) ends for this long."""

    @property
    def serial(self) -> bool:
        """Whether this process plays everything (kind serial, or the default kind with one worker)."""
        return self.kind == "serial" or (self.kind is None and self.workers == 1)

    def __post_init__(self):
        if self.kind not in (None, "serial", "process", "ray"):
            raise ValueError(f"kind must be 'serial', 'process', 'ray' or None, got {self.kind!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers must be at least 1 (or None: every core), got {self.workers!r}")
        if not self.task_timeout_s > 0:
            raise ValueError(f"task_timeout_s must be positive, got {self.task_timeout_s!r}")


class WorkerError(RuntimeError):
    """A rollout failed in an evaluator; the message names the process, the candidates and their random seeds."""


class _Failed(Exception):
    """Raised by Work with `what` (which candidates and seeds, and the error) for the evaluator to report."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class Work:
    """The one thing every evaluator runs: a rollout_fn over (candidate, seed) pairs, or a batch_fn."""

    def __init__(self, rollout_fn: RolloutFn | None, batch_fn: BatchFn | None):
        if (rollout_fn is None) == (batch_fn is None):
            raise ValueError("give exactly one of rollout_fn (one episode) and batch_fn (a batch of candidates)")
        self.rollout_fn, self.batch_fn = rollout_fn, batch_fn

    @property
    def batched(self) -> bool:
        return self.batch_fn is not None

    def __call__(self, solutions: np.ndarray, seeds: list[int], first: int = 0) -> Evaluation:
        """Score solutions (n, P) over seeds (R,); `first` is the index of solutions[0] in the population."""
        if self.batched:
            try:
                out = self.batch_fn(solutions, seeds)
            except Exception as exc:
                raise _Failed(f"candidates {first}..{first + len(solutions) - 1} with seeds {seeds}: "
                              f"{type(exc).__name__}: {exc}") from exc
            if np.shape(out.returns) != (len(solutions), len(seeds)) or np.shape(out.steps) != np.shape(out.returns):
                raise _Failed(f"candidates {first}..{first + len(solutions) - 1}: the batch function returned "
                              f"returns {np.shape(out.returns)} and steps {np.shape(out.steps)}, expected "
                              f"({len(solutions)}, {len(seeds)}) each")
            return Evaluation(np.asarray(out.returns, np.float64), np.asarray(out.steps, np.int64))
        returns, steps = np.zeros((len(solutions), len(seeds))), np.zeros((len(solutions), len(seeds)), np.int64)
        for i in range(len(solutions)):
            for j, seed in enumerate(seeds):
                try:
                    value = self.rollout_fn(solutions[i], seed)
                except Exception as exc:
                    raise _Failed(f"candidate {first + i} with seed {seed}: {type(exc).__name__}: {exc}") from exc
                rollout = value if isinstance(value, Rollout) else Rollout(value, 0)
                returns[i, j], steps[i, j] = float(rollout.ret), int(rollout.steps)
        return Evaluation(returns, steps)


def as_solutions(solutions: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """Checked inputs of an evaluator: solutions as a float64 (N, P) array, seeds as a list of ints."""
    solutions = np.asarray(solutions, dtype=np.float64)
    if solutions.ndim != 2:
        raise ValueError(f"expected solutions of shape (N, P), got {solutions.shape}")
    return solutions, [int(s) for s in seeds]


class SerialEvaluator:
    """Plays everything in this process, one candidate after the other. Simple and debuggable.

    SerialEvaluator(rollout_fn) for single episodes, SerialEvaluator(batch_fn=f) for a batched scorer.
    """

    def __init__(self, rollout_fn: RolloutFn | None = None, *, batch_fn: BatchFn | None = None):
        self._work = Work(rollout_fn, batch_fn)

    def __call__(self, solutions: np.ndarray, seeds: Sequence[int]) -> Evaluation:
        """solutions (N, P), seeds (R,) -> Evaluation with (N, R) returns and steps."""
        solutions, seeds = as_solutions(solutions, seeds)
        try:
            return self._work(solutions, seeds)
        except _Failed as exc:
            raise WorkerError(f"this process (pid {os.getpid()}) failed on {exc.what}") from exc.__cause__

    def close(self) -> None:
        """Nothing to stop."""

    def __enter__(self) -> SerialEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Local worker processes
# ---------------------------------------------------------------------------------------------

_WORKER: Work | None = None
"""In a worker process: what it scores (set once by _init_worker)."""


def _exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    """Worker side: leave as soon as the parent process is gone (killed parents leave no orphans)."""
    while True:
        time.sleep(every_s)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init_worker(work: Work, parent_pid: int) -> None:
    """Runs once in each worker: keep the work (heavy setup happens once), one torch thread per process."""
    global _WORKER
    _WORKER = work
    torch.set_num_threads(1)  # one process per core: small products scale better this way than threads
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def run_task(work: Work, where: str, first: int, solutions: np.ndarray, seeds: list[int]) -> tuple:
    """One task wherever it runs: ("ok", Evaluation) or ("error", where, what failed, traceback).

    Errors come back as data (picklable), so a pooled evaluator can name the worker (`where`), the
    candidates and their random seeds in its WorkerError.
    """
    try:
        return ("ok", work(solutions, seeds, first))
    except _Failed as exc:
        return ("error", where, exc.what, traceback.format_exc())


def split_tasks(batched: bool, workers: int, n: int, r: int) -> list[tuple[slice, list[int]]]:
    """(candidate rows, seed columns) of each task of an (n, r) generation.

    Single episodes: one task per (candidate, seed), so episodes of different lengths balance out.
    Batches: at most `workers` shards of candidates, each with every seed (one large batch each).
    """
    if batched:
        bounds = np.linspace(0, n, min(workers, n) + 1).round().astype(int)
        return [(slice(a, b), list(range(r))) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    return [(slice(i, i + 1), [j]) for i in range(n) for j in range(r)]


def _run_task(first: int, solutions: np.ndarray, seeds: list[int]) -> tuple:
    """One task in a worker process (its work was set once by _init_worker)."""
    return run_task(_WORKER, f"worker process {os.getpid()}", first, solutions, seeds)


class ProcessPoolEvaluator:
    """Spreads a generation over local worker processes.

    ProcessPoolEvaluator(rollout_fn, workers) plays one (candidate, seed) episode per task;
    ProcessPoolEvaluator(batch_fn=f, workers=n) gives each worker one shard of the candidates with
    every seed. Either way the numbers are the serial ones.
    workers:    how many processes (default: every core, `os.cpu_count()`)
    mp_context: "spawn" (default; the same on Linux, macOS and Windows, and safe with torch's
                threads) or "fork"/"forkserver". With spawn, the function must be importable: a
                top-level function or an object of a top-level class.
    The workers start at the first call and live until `close()` (or the end of a `with` block), so
    heavy setup inside the function (loading V and M, making the env) happens once per worker. A
    failure gives a WorkerError naming the worker's pid, the candidates and their random seeds; a worker
    that dies outright (killed, segfault) gives a WorkerError too, never a hang.
    """

    def __init__(self, rollout_fn: RolloutFn | None = None, workers: int | None = None, mp_context: str = "spawn",
                 *, batch_fn: BatchFn | None = None):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = int(workers or os.cpu_count() or 1)
        self.mp_context = mp_context
        self._work = Work(rollout_fn, batch_fn)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def running(self) -> bool:
        """Whether the worker processes have been started (and not closed)."""
        return self._pool is not None

    def _tasks(self, n: int, r: int) -> list[tuple[slice, list[int]]]:
        """(candidate rows, seed columns) of each task of an (n, r) generation."""
        return split_tasks(self._work.batched, self.workers, n, r)

    def __call__(self, solutions: np.ndarray, seeds: Sequence[int]) -> Evaluation:
        """solutions (N, P), seeds (R,) -> Evaluation with (N, R) returns and steps."""
        solutions, seeds = as_solutions(solutions, seeds)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(self.mp_context),
                                             initializer=_init_worker, initargs=(self._work, os.getpid()))
        n, r = len(solutions), len(seeds)
        returns, steps = np.zeros((n, r)), np.zeros((n, r), dtype=np.int64)
        futures: dict[Future, tuple[slice, list[int]]] = {
            self._pool.submit(_run_task, rows.start, solutions[rows], [seeds[j] for j in cols]): (rows, cols)
            for rows, cols in self._tasks(n, r)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                rows, cols = futures[future]
                try:
                    out = future.result()
                except BrokenProcessPool as exc:
                    self.close()
                    raise WorkerError(
                        f"a worker process died abruptly (killed, out of memory, crashed, or started by a script "
                        f"without an `if __name__ == '__main__':` guard) while playing candidates "
                        f"{rows.start}..{rows.stop - 1} with seeds {[seeds[j] for j in cols]}; the pool is closed"
                    ) from exc
                if out[0] == "error":
                    for f in pending:
                        f.cancel()
                    _, where, what, tb = out
                    raise WorkerError(f"{where} failed on {what}\n--- traceback in the worker ---\n{tb}")
                returns[rows, cols], steps[rows, cols] = out[1]
        return Evaluation(returns, steps)

    def close(self) -> None:
        """Stop the workers (cancelled tasks are not waited for); a later call starts new ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ProcessPoolEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_evaluator(rollout_fn: RolloutFn | None = None, workers: int | None = None, *,
                   batch_fn: BatchFn | None = None, config: EvaluatorConfig | None = None) -> Evaluator:
    """The evaluator `config` asks for (default EvaluatorConfig()), over rollout_fn or batch_fn.

    workers, when given, replaces config.workers. With the default kind: serial for one worker, else
    a ProcessPoolEvaluator over `workers` processes (None: every core). kind="ray": a RayEvaluator
    (wmlib.ray_evaluator, imported only then: `import ray` alone takes a second or two).
    """
    config = EvaluatorConfig() if config is None else config
    if workers is not None:
        config = replace(config, workers=workers)
    if config.kind == "ray":
        from wmlib.ray_evaluator import RayEvaluator  # slow to import (ray); only when asked for

        return RayEvaluator(rollout_fn, config.workers, batch_fn=batch_fn, address=config.ray_address,
                            task_timeout_s=config.task_timeout_s)
    if config.serial:
        return SerialEvaluator(rollout_fn, batch_fn=batch_fn)
    return ProcessPoolEvaluator(rollout_fn, config.workers, batch_fn=batch_fn)
