"""The Ray evaluator (wmlib/ray_evaluator.py) on a local two-CPU Ray and a two-node cluster on this machine:
the serial numbers for single episodes, real V+M+C episodes and batches of dreams; failures, dead actors
and stuck tasks named, never a hang; candidates scored on both nodes of a cluster; the CLI's --evaluator ray.

Ray is pinned in requirements.txt. Outside CI a missing ray skips this module; in CI (CI=true) it fails.
"""

import dataclasses
import json
import os
import time

import numpy as np
import pytest

if os.environ.get("CI") == "true":
    import ray  # in CI a missing ray is a failure, not a skip
else:
    ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from tests.test_agent import checkpoints  # noqa: E402, F401  (a fixture: tiny V and M saved to disk)
from tests.test_cmaes import _config, noisy_sphere  # noqa: E402
from tests.test_dream import random_params, tiny_starts  # noqa: E402
from tests.test_evaluators import batch_of_noisy_spheres, crashing, deadline  # noqa: E402
from wmlib.agent import ControllerRollout, controller_rollout_for  # noqa: E402
from wmlib.cmaes import train_cmaes  # noqa: E402
from wmlib.config import DreamConfig, SettingError  # noqa: E402
from wmlib.controller import LinearController  # noqa: E402
from wmlib.dream_training import DreamEvaluator  # noqa: E402
from wmlib.evaluators import Evaluator, EvaluatorConfig, SerialEvaluator, WorkerError, make_evaluator  # noqa: E402
from wmlib.ray_evaluator import LoadedControllerRollout, RayEvaluator  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL_RAY = {"include_dashboard": False, "object_store_memory": 80 * 2**20, "log_to_driver": False}
"""Keeps Ray's start time and memory small (the object store's default is 30% of the RAM)."""


def dies_on_candidate_2(x, seed):
    if x[0] == 2.0:
        os._exit(3)  # the actor's process vanishes without a Python exception (like a segfault or the OOM killer)
    return 0.0


def sleeps_on_candidate_1(x, seed):
    if x[0] == 1.0:
        time.sleep(60)
    return 0.0


@pytest.fixture(scope="class")
def local_ray():
    ray.init(num_cpus=2, **SMALL_RAY)
    yield
    ray.shutdown()


@pytest.mark.usefixtures("local_ray")
class TestOnALocalRay:
    def test_the_same_seeds_give_the_serial_fitness(self):
        config = _config(generations=3, rollouts_per_candidate=2)
        serial = train_cmaes(SerialEvaluator(noisy_sphere), np.zeros(5), config, seed=11, progress=False)
        with deadline(120), RayEvaluator(noisy_sphere, 2) as evaluator:
            assert isinstance(evaluator, Evaluator) and not evaluator.running  # nothing starts before a call
            spread = train_cmaes(evaluator, np.zeros(5), config, seed=11, progress=False)
            assert evaluator.running and len(evaluator.nodes) == 2
        assert not evaluator.running  # closed by the with block, Ray itself left running (not ours)
        assert ray.is_initialized()
        np.testing.assert_array_equal(serial.mean, spread.mean)
        assert [h["best"] for h in serial.history] == [h["best"] for h in spread.history]
        assert serial.total_env_steps == spread.total_env_steps

    def test_batches_are_split_in_shards_with_the_serial_numbers(self):
        x = np.random.default_rng(0).normal(size=(5, 3))
        serial = SerialEvaluator(noisy_sphere)(x, [4, 9])
        with deadline(120), make_evaluator(batch_fn=batch_of_noisy_spheres,
                                           config=EvaluatorConfig("ray", 2)) as evaluator:
            assert isinstance(evaluator, RayEvaluator)
            out = evaluator(x, [4, 9])
        np.testing.assert_array_equal(out.returns, serial.returns)
        np.testing.assert_array_equal(out.steps, serial.steps)

    def test_real_episodes_carry_v_and_m_and_match_the_serial_ones(self, checkpoints):  # noqa: F811
        vae, mdnrnn = checkpoints
        fn = controller_rollout_for("cartpole-pixels", vae, mdnrnn, max_steps=12)
        params = np.random.default_rng(1).normal(size=(3, LinearController(fn.controller).num_params)) * 3.0
        serial = SerialEvaluator(fn)(params, [0, 1])
        with deadline(180), RayEvaluator(fn, 2) as evaluator:
            work = evaluator._work.rollout_fn
            assert isinstance(work, LoadedControllerRollout) and work.vae_model is not None
            out = evaluator(params, [0, 1])
        assert isinstance(fn, ControllerRollout) and not isinstance(fn, LoadedControllerRollout)
        np.testing.assert_array_equal(out.returns, serial.returns)
        np.testing.assert_array_equal(out.steps, serial.steps)
        assert len(set(serial.steps.ravel().tolist())) > 1  # the controllers differ: a wrong placement shows

    def test_dreams_on_ray_actors_give_the_serial_scores(self, make_tiny_mdnrnn):
        m, starts = make_tiny_mdnrnn(), tiny_starts()
        controller_config, params = random_params(5)
        config = DreamConfig(max_steps=40)
        serial = DreamEvaluator(m, starts, controller_config, config)(params, [3, 4, 5])
        with deadline(120), DreamEvaluator(m, starts, controller_config, config,
                                           workers=EvaluatorConfig("ray", 2)) as spread:
            assert isinstance(spread._evaluator, RayEvaluator)
            out = spread(params, [3, 4, 5])
        np.testing.assert_array_equal(serial.returns, out.returns)
        np.testing.assert_array_equal(serial.steps, out.steps)

    def test_a_rollout_that_raises_names_the_actor_the_candidate_and_the_seed(self):
        x = np.array([[-1.0, 0.0], [1.0, 0.0], [-2.0, 0.0]])
        with deadline(120), RayEvaluator(crashing, 2) as evaluator:
            with pytest.raises(WorkerError, match=r"Ray actor \d \(pid \d+ on node \w+\) failed on candidate 1 "
                                                  r"with seed 5: RuntimeError: the simulator exploded"):
                evaluator(x, [5])
            assert not evaluator.running

    def test_a_dead_actor_gives_an_error_naming_the_candidate_not_a_hang(self):
        x = np.array([[0.0], [1.0], [2.0], [3.0]])
        with deadline(120), RayEvaluator(dies_on_candidate_2, 2) as evaluator:
            with pytest.raises(WorkerError, match=r"Ray actor \d on node \w+ died .* while playing candidate 2 "
                                                  r"with seed 7; the actors are stopped"):
                evaluator(x, [7])
            assert not evaluator.running
            assert evaluator(x[:2], [7]).returns.shape == (2, 1)  # the next call starts new actors

    def test_a_stuck_task_times_out_with_what_it_was_playing(self):
        x = np.array([[0.0], [1.0]])
        with deadline(60), RayEvaluator(sleeps_on_candidate_1, 2, task_timeout_s=3) as evaluator:
            with pytest.raises(WorkerError, match=r"no Ray task ended within 3 s .* candidate 1 with seed 0"):
                evaluator(x, [0])

    def test_the_cli_plays_on_ray(self, checkpoints, capsys, tmp_path):  # noqa: F811
        from wmlib.cli import main

        vae, mdnrnn = checkpoints
        out = tmp_path / "c"
        argv = ["train-controller", "--env", "cartpole-pixels", "--vae", str(vae), "--mdnrnn", str(mdnrnn),
                "--out", str(out), "--population", "4", "--rollouts", "2", "--generations", "2", "--max-steps",
                "10", "--select-episodes", "2", "--eval-episodes", "2", "--standardize-episodes", "0",
                "--work", str(tmp_path / "es")]
        with deadline(240):
            assert main([*argv, "--evaluator", "ray", "--workers", "2"]) == 0
            on_ray = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert main([*argv[:-1], str(tmp_path / "es1"), "--workers", "1"]) == 0
            serial = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert on_ray["evaluation"] == serial["evaluation"] and on_ray["selection"] == serial["selection"]
        assert on_ray["training_env_steps"] == serial["training_env_steps"] > 0


def test_a_two_node_cluster_scores_candidates_on_both_nodes():
    small = {k: SMALL_RAY[k] for k in ("include_dashboard", "object_store_memory")}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, **small})
    try:
        cluster.add_node(num_cpus=1, object_store_memory=SMALL_RAY["object_store_memory"])
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        x = np.random.default_rng(2).normal(size=(6, 3))
        with deadline(180), RayEvaluator(noisy_sphere, task_timeout_s=60) as evaluator:
            out = evaluator(x, [1, 2])
            nodes = list(evaluator.nodes)
        assert len(nodes) == 2  # one actor per CPU of the cluster, one on each node
        assert set(nodes) == {node["NodeID"] for node in ray.nodes() if node["Alive"]}
        np.testing.assert_array_equal(out.returns, SerialEvaluator(noisy_sphere)(x, [1, 2]).returns)
        assert evaluator.last_nodes.shape == (6, 2) and set(evaluator.last_nodes.ravel()) == set(nodes)
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_the_four_commands_take_the_evaluator_and_the_paper_car_preset():
    from wmlib.cli_agent import COMMANDS, PRESETS, TrainControllerArgs, with_preset

    assert {c.name for c in COMMANDS} == {"train-controller", "evaluate", "dream", "pipeline"}
    for command in COMMANDS:
        options = {o for f in command.flags() for o in f.options}
        assert {"--evaluator", "--ray-address"} <= options, command.name
    args = with_preset(TrainControllerArgs(env="carracing", vae="carracing", mdnrnn="carracing", out="o",
                                           preset="paper-car"))
    assert (args.cmaes.population_size, args.cmaes.rollouts_per_candidate, args.cmaes.generations) == (64, 16, 1800)
    assert args.max_steps == 1000 and PRESETS["paper-car"].cmaes == args.cmaes
    base = TrainControllerArgs(env="carracing", vae="carracing", mdnrnn="carracing", out="o", preset="paper-car")
    ours = with_preset(dataclasses.replace(base, cmaes=dataclasses.replace(base.cmaes, generations=7), max_steps=50))
    assert ours.cmaes.generations == 7 and ours.cmaes.population_size == 64 and ours.max_steps == 50  # flags win
    with pytest.raises(SettingError, match="the paper-car preset trains in carracing, got cartpole-pixels"):
        with_preset(dataclasses.replace(base, env="cartpole-pixels"))
