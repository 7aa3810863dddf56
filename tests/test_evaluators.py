"""Evaluators (wmlib/evaluators.py): serial and pooled give the same numbers, for single rollouts and for
batches; failures name the process, candidate and seed; dead or orphaned workers never hang the run."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.test_cmaes import _config, noisy_sphere, sphere
from wmlib.cmaes import train_cmaes
from wmlib.evaluators import (
    Evaluation,
    Evaluator,
    ProcessPoolEvaluator,
    SerialEvaluator,
    WorkerError,
    make_evaluator,
)

# Top-level (picklable) functions: the process pool imports them in its workers.


def crashing(x, seed):
    if x[0] > 0:
        raise RuntimeError("the simulator exploded")
    return 0.0


def dying(x, seed):
    os._exit(3)  # a worker that vanishes without a Python exception (like a segfault or the OOM killer)


def batch_of_noisy_spheres(solutions, seeds):
    """A batch_fn: every (candidate, seed) pair scored at once, each one as noisy_sphere scores it alone."""
    pairs = [[noisy_sphere(x, s) for s in seeds] for x in solutions]
    return Evaluation(np.array([[p.ret for p in row] for row in pairs]),
                      np.array([[p.steps for p in row] for row in pairs]))


def batch_with_a_wrong_shape(solutions, seeds):
    return Evaluation(np.zeros(len(solutions)), np.zeros(len(solutions)))


def batch_that_raises(solutions, seeds):
    raise ValueError("M is on fire")


@contextmanager
def deadline(seconds):
    """Fail (rather than hang the suite) if the block takes longer than `seconds`."""

    def _raise(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s: the evaluator hangs")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- the same numbers, whoever computes them ----------------------------------------------------------


def test_process_pool_gives_the_serial_result():
    config = _config(generations=4, rollouts_per_candidate=2)
    serial = train_cmaes(SerialEvaluator(noisy_sphere), np.zeros(5), config, seed=11, progress=False)
    with deadline(120), ProcessPoolEvaluator(noisy_sphere, workers=2) as pool:
        pooled = train_cmaes(pool, np.zeros(5), config, seed=11, progress=False)
    np.testing.assert_array_equal(serial.mean, pooled.mean)
    np.testing.assert_array_equal(serial.best_params, pooled.best_params)
    assert [h["best"] for h in serial.history] == [h["best"] for h in pooled.history]
    assert serial.total_env_steps == pooled.total_env_steps


def test_a_batch_function_gives_the_rollout_functions_numbers_serial_and_in_shards():
    x = np.random.default_rng(0).normal(size=(7, 3))
    seeds = [4, 9, 2]
    by_rollout = SerialEvaluator(noisy_sphere)(x, seeds)
    assert by_rollout.returns.shape == (7, 3) and by_rollout.steps.dtype == np.int64
    assert len(set(by_rollout.steps.ravel().tolist())) > 1  # steps follow the random seeds: a wrong placement shows
    serial = SerialEvaluator(batch_fn=batch_of_noisy_spheres)(x, seeds)
    with deadline(120), ProcessPoolEvaluator(batch_fn=batch_of_noisy_spheres, workers=3) as pool:
        assert not pool.running  # nothing starts before the first call
        shards = pool._tasks(7, 3)
        pooled = pool(x, seeds)
        assert pool.running
    assert not pool.running  # closed by the with block
    assert [(rows.start, rows.stop) for rows, _ in shards] == [(0, 2), (2, 5), (5, 7)]  # one shard per worker
    for out in (serial, pooled):
        np.testing.assert_array_equal(out.returns, by_rollout.returns)
        np.testing.assert_array_equal(out.steps, by_rollout.steps)


def test_every_evaluator_follows_the_protocol():
    for evaluator in (SerialEvaluator(sphere), ProcessPoolEvaluator(sphere, workers=1),
                      SerialEvaluator(batch_fn=batch_of_noisy_spheres)):
        with evaluator as e:
            assert isinstance(e, Evaluator) and e is evaluator
    assert not isinstance(sphere, Evaluator)  # a bare rollout function is not an evaluator


def test_make_evaluator_picks_serial_for_one_worker():
    assert isinstance(make_evaluator(sphere, 1), SerialEvaluator)
    with make_evaluator(sphere, 2) as pool:
        assert isinstance(pool, ProcessPoolEvaluator) and pool.workers == 2
    with pytest.raises(ValueError, match="workers must be at least 1"):
        make_evaluator(sphere, 0)


# --- failures are loud and named -------------------------------------------------------------------


def test_a_rollout_that_raises_in_a_worker_is_reported_with_its_worker():
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [-2.0, 0.0]])
    with deadline(120), ProcessPoolEvaluator(crashing, workers=2) as pool:
        with pytest.raises(WorkerError, match=r"worker process \d+ failed on candidate 1 with seed 5.*"
                                              r"the simulator exploded"):
            pool(x, [5])


def test_a_worker_that_dies_gives_an_error_not_a_hang():
    with deadline(120), ProcessPoolEvaluator(dying, workers=2) as pool:
        with pytest.raises(WorkerError, match="died abruptly"):
            pool(np.zeros((4, 2)), [0, 1])
        assert not pool.running  # a broken pool is closed


def test_serial_evaluator_names_the_failing_candidate():
    with pytest.raises(WorkerError, match=r"this process \(pid \d+\) failed on candidate 1 with seed 9"):
        SerialEvaluator(crashing)(np.array([[-1.0, 0.0], [1.0, 0.0]]), [9])


def test_batch_failures_name_the_candidates_and_wrong_shapes_are_refused():
    x = np.zeros((4, 2))
    with pytest.raises(WorkerError, match=r"candidates 0..3 with seeds \[1, 2\]: ValueError: M is on fire"):
        SerialEvaluator(batch_fn=batch_that_raises)(x, [1, 2])
    with pytest.raises(WorkerError, match=r"returned returns \(4,\).*expected \(4, 2\)"):
        SerialEvaluator(batch_fn=batch_with_a_wrong_shape)(x, [1, 2])
    with deadline(120), ProcessPoolEvaluator(batch_fn=batch_that_raises, workers=2) as pool:
        with pytest.raises(WorkerError, match=r"worker process \d+ failed on candidates (0..1|2..3)"):
            pool(x, [1, 2])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="exactly one of rollout_fn"):
        SerialEvaluator(sphere, batch_fn=batch_of_noisy_spheres)
    with pytest.raises(ValueError, match="exactly one of rollout_fn"):
        ProcessPoolEvaluator(workers=2)
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        ProcessPoolEvaluator(sphere, workers=0)
    with pytest.raises(ValueError, match=r"solutions of shape \(N, P\)"):
        SerialEvaluator(sphere)(np.zeros(3), [0])


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads worker states from /proc (Linux)")
def test_workers_leave_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        "import numpy as np, os, time\n"
        "from wmlib.evaluators import ProcessPoolEvaluator\n"
        "from tests.test_cmaes import sphere\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolEvaluator(sphere, workers=2)\n"
        "    pool(np.zeros((2, 2)), [0])\n"
        "    print(' '.join(str(p) for p in pool._pool._processes), flush=True)\n"
        "    time.sleep(60)\n")
    root = str(Path(__file__).resolve().parent.parent)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=root,
                              env={**os.environ, "PYTHONPATH": root})
    with deadline(120):
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2
        parent.kill()
        parent.wait()
        for _ in range(100):
            alive = [p for p in workers if _alive(p)]
            if not alive:
                break
            time.sleep(0.2)
    assert not alive, f"orphaned workers {alive} still run after their parent was killed"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
