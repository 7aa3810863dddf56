"""CMA-ES: it optimises, it is seeded, it only uses the order of the returns, and it resumes.
(The evaluators that score its candidates are tested in test_evaluators.py.)"""

import json

import numpy as np
import pytest

from wmlib.checkpoints import CheckpointError, read_unit
from wmlib.cmaes import CMAES, centered_ranks, train_cmaes
from wmlib.config import CMAESConfig
from wmlib.evaluators import Rollout, SerialEvaluator

# Top-level (picklable) fitness functions: test_evaluators.py's process pools import them in their workers.


def sphere(x, seed):
    """Maximum 0 at x = 1."""
    return -float(np.sum((np.asarray(x) - 1.0) ** 2))


def rosenbrock(x, seed):
    """Maximum 0 at x = 1, along a curved narrow valley."""
    x = np.asarray(x)
    return -float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def noisy_sphere(x, seed):
    """A sphere plus noise that depends only on the seed, and a step count: like an env rollout."""
    noise = np.random.default_rng(seed).normal()
    return Rollout(sphere(x, seed) + noise, 10 + seed % 7)


def _run(fn, dim, **kw):
    """train_cmaes, serial, from zeros, quietly; kw go to train_cmaes or else to _config."""
    names = ("seed", "generations", "checkpoint", "target_fitness", "target_mean_fitness", "max_env_steps",
             "record")
    run_kw = {"seed": 0, **{k: kw.pop(k) for k in names if k in kw}}
    return train_cmaes(SerialEvaluator(fn), np.zeros(dim), _config(**kw), progress=False, **run_kw)


def _config(**kw):
    base = dict(population_size=10, rollouts_per_candidate=1, sigma0=0.5, generations=10)
    base.update(kw)
    return CMAESConfig(**base)


def test_solves_10d_sphere_to_1e_3():
    r = _run(sphere, 10, generations=150)
    assert np.max(np.abs(r.mean - 1.0)) < 1e-3
    assert r.best_fitness > -1e-5
    assert len(r.history) == 150
    assert r.history[-1]["best"] > r.history[0]["best"]


def test_solves_10d_rosenbrock_to_1e_6():
    r = _run(rosenbrock, 10, generations=700)
    assert r.best_fitness > -1e-6
    assert np.max(np.abs(r.best_params - 1.0)) < 1e-3


def test_same_seed_same_run_and_global_numpy_state_untouched():
    np.random.seed(123)  # noqa: NPY002  (the legacy global state is what must stay untouched)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = train_cmaes(SerialEvaluator(noisy_sphere), np.zeros(5), _config(rollouts_per_candidate=2), seed=7,
                    progress=False)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    np.random.seed(999)  # noqa: NPY002  (must not matter)
    b = train_cmaes(SerialEvaluator(noisy_sphere), np.zeros(5), _config(rollouts_per_candidate=2), seed=7,
                    progress=False)
    c = train_cmaes(SerialEvaluator(noisy_sphere), np.zeros(5), _config(rollouts_per_candidate=2), seed=8,
                    progress=False)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.history == [dict(h, wall_s=a.history[i]["wall_s"]) for i, h in enumerate(b.history)]
    assert not np.array_equal(a.mean, c.mean)


def test_history_counts_env_steps():
    r = _run(noisy_sphere, 4, generations=3, rollouts_per_candidate=3, seed=1)
    per_gen = [h["env_steps"] for h in r.history]
    assert all(10 * 30 <= s <= 16 * 30 for s in per_gen)  # 10 candidates x 3 rollouts x 10..16 steps
    assert r.total_env_steps == sum(per_gen)
    assert set(r.history[0]) >= {"generation", "best", "mean", "std", "worst", "sigma", "env_steps"}


def test_cmaes_only_uses_the_order_of_the_returns():
    # CMA-ES weights candidates by rank, so a monotone rescaling of the fitness gives the same run,
    # with or without centred-rank shaping (shaping matters for gradient-style ES, not here).
    def run(fn, shaping):
        return _run(fn, 6, rank_shaping=shaping, seed=3)

    plain = run(sphere, False)
    np.testing.assert_array_equal(plain.mean, run(_ExpSphere(), False).mean)
    np.testing.assert_array_equal(plain.mean, run(_ExpSphere(), True).mean)
    np.testing.assert_array_equal(plain.mean, run(sphere, True).mean)
    assert not np.array_equal(plain.mean, run(_NegSphere(), False).mean)  # a non-monotone change does matter


class _NegSphere:
    def __call__(self, x, seed):
        return -sphere(x, seed)


class _ExpSphere:
    def __call__(self, x, seed):
        return float(np.exp(sphere(x, seed) / 3.0)) * 1000.0


def test_centered_ranks():
    shaped = centered_ranks(np.array([3.0, 1.0, 2.0, 10.0, -5.0]))
    np.testing.assert_allclose(shaped, [0.25, -0.25, 0, 0.5, -0.5])
    assert centered_ranks(np.array([4.0])).tolist() == [0.0]
    with pytest.raises(ValueError, match="1-D"):
        centered_ranks(np.zeros((2, 2)))


def test_tell_maximises():
    rng = np.random.default_rng(0)
    es = CMAES(np.zeros(3), 0.3, 8, rng)
    for _ in range(30):
        x = es.ask()
        es.tell(x, x[:, 0])  # reward the first coordinate
    assert es.mean[0] > 1.0


def test_bad_inputs_are_clear_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="population_size"):
        CMAES(np.zeros(3), 0.3, 1, rng)
    with pytest.raises(ValueError, match="sigma0"):
        CMAES(np.zeros(3), 0.0, 8, rng)
    es = CMAES(np.zeros(3), 0.3, 8, rng)
    x = es.ask()
    with pytest.raises(ValueError, match="one fitness per candidate"):
        es.tell(x, np.zeros(7))
    with pytest.raises(ValueError, match="NaN"):
        es.tell(x, np.full(8, np.nan))


def test_checkpoint_resumes_where_it_stopped(tmp_path):
    stem = tmp_path / "es"
    first = _run(sphere, 10, generations=12, seed=5, checkpoint=stem)
    meta = json.loads((tmp_path / "es.json").read_text())
    assert meta["generation"] == 12 and len(meta["history"]) == 12
    assert set(read_unit(stem).files) == {"state"}  # the JSON names the tensor file it was written with
    resumed = _run(sphere, 10, generations=30, seed=5, checkpoint=stem)
    assert len(resumed.history) == 30
    assert [h["generation"] for h in resumed.history] == list(range(1, 31))
    assert resumed.history[:12] == first.history
    assert resumed.best_fitness >= first.best_fitness
    # it kept converging from the saved distribution instead of starting over at sigma0 around zeros
    assert resumed.history[12]["best"] > first.history[0]["best"]
    assert np.max(np.abs(resumed.mean - 1.0)) < np.max(np.abs(first.mean - 1.0))


def test_resume_restores_mean_sigma_and_covariance(tmp_path):
    from wmlib.cmaes import load_es_checkpoint

    stem = tmp_path / "es"
    _run(rosenbrock, 4, generations=25, seed=2, checkpoint=stem)
    meta, arrays = load_es_checkpoint(stem)
    es = CMAES(arrays["mean"], meta["sigma"], 10, np.random.default_rng(0), covariance=arrays["covariance"])
    np.testing.assert_allclose(es.covariance, arrays["covariance"])
    np.testing.assert_array_equal(es.mean, arrays["mean"])
    assert es.sigma == pytest.approx(meta["sigma"])
    # the restored search cloud has the saved shape: sample covariance of many asks ~ sigma^2 C
    samples = np.concatenate([es.ask() for _ in range(400)])
    emp = np.cov(samples.T)
    target = meta["sigma"] ** 2 * arrays["covariance"]
    assert np.abs(emp - target).max() < 0.2 * np.abs(target).max()


def test_checkpoint_for_another_run_is_refused(tmp_path):
    stem = tmp_path / "es"
    _run(sphere, 3, generations=2, checkpoint=stem)
    with pytest.raises(CheckpointError, match="delete it to start over"):
        _run(sphere, 4, generations=2, checkpoint=stem)
    with pytest.raises(CheckpointError, match="delete it to start over"):
        _run(sphere, 3, generations=2, checkpoint=stem, seed=1)
    with pytest.raises(CheckpointError, match="delete it to start over"):
        _run(sphere, 3, generations=2, checkpoint=stem, population_size=12)
    longer = train_cmaes(SerialEvaluator(sphere), np.zeros(3), _config(generations=3), checkpoint=stem,
                         progress=False)
    assert len(longer.history) == 3  # a config asking for more generations extends the run
    read_unit(stem).files["state"].write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read"):
        _run(sphere, 3, generations=4, checkpoint=stem)


def test_target_fitness_stops_early():
    r = _run(sphere, 3, generations=200, target_fitness=-0.01)
    assert len(r.history) < 200 and r.history[-1]["best"] >= -0.01


def test_target_on_the_population_mean_is_stricter():
    by_best = _run(sphere, 3, generations=200, target_fitness=-0.05)
    by_mean = _run(sphere, 3, generations=200, target_mean_fitness=-0.05)
    assert by_mean.history[-1]["mean"] >= -0.05 and by_best.history[-1]["best"] >= -0.05
    assert len(by_mean.history) > len(by_best.history)


def test_env_step_budget_stops_the_run():
    r = _run(noisy_sphere, 3, generations=50, rollouts_per_candidate=2, max_env_steps=1000)
    steps = [h["total_env_steps"] for h in r.history]
    assert steps[-1] >= 1000 and steps[-2] < 1000 and len(r.history) < 50


def test_record_keeps_the_search_distribution():
    r = _run(sphere, 3, generations=3, record=True)
    assert len(r.trace) == 3
    t = r.trace[1]
    assert t["solutions"].shape == (10, 3) and t["fitness"].shape == (10,) and t["covariance"].shape == (3, 3)
