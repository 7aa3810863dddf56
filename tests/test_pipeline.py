"""The iterative pipeline and the `dream` / `pipeline` commands, at tiny sizes (seconds, not minutes)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from wmlib.agent import WorldModelAgent, play_episode
from wmlib.checkpoints import load_checkpoint, save_checkpoint
from wmlib.cli import main
from wmlib.config import CMAESConfig, ControllerConfig, DreamConfig, MDNRNNConfig, PipelineConfig, VAEConfig
from wmlib.controller import LinearController
from wmlib.envs import encode_actions, make_env
from wmlib.mdnrnn import MDNRNN, preset_config
from wmlib.pipeline import play_agent_episode, run_pipeline
from wmlib.rollouts import load_episode
from wmlib.vae import ConvVAE

TINY = PipelineConfig(rounds=2, random_episodes=4, episodes_per_round=2, eval_episodes=2, real_step_budget=400,
                      max_episode_steps=30, vae=dataclasses.replace(PipelineConfig().vae, z_dim=8), vae_epochs=1,
                      mdn_epochs_first=1, mdn_epochs_per_round=1,
                      cmaes=CMAESConfig(population_size=4, rollouts_per_candidate=2, sigma0=0.5, generations=2),
                      dream=DreamConfig(max_steps=30), select_episodes=4, target_return=None)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline") / "run"
    return work, run_pipeline(TINY, work, seed=0, final_eval_episodes=2, progress=False)


@pytest.mark.slow
def test_every_real_step_is_counted(run):
    work, result = run
    report = result.report
    on_disk = sum(len(load_episode(p)["actions"]) for p in sorted((work / "rollouts").rglob("*.npz")))
    assert report["real_steps"] == on_disk, "collection and scoring steps are all saved, and all counted"
    assert report["real_steps"] == report["rounds"][-1]["real_steps_total"] <= TINY.real_step_budget
    assert sum(r["real_steps"] for r in report["rounds"]) == report["real_steps"]
    assert report["dream_steps"] == sum(r["dream_steps"] for r in report["rounds"]) > 0
    assert [r["round"] for r in report["rounds"]] == [0, 1]
    assert report["rounds"][1]["m_episodes"] == report["rounds"][0]["m_episodes"] + 2 + 2  # scored + explored
    assert report["final"]["episodes"] == 2 and report["final"]["env_steps"] > 0
    scores = [r["real_score"]["mean"] for r in report["rounds"]]
    assert report["picked_round"] == int(np.argmax(scores)), "the result is the C that scored best for real"
    assert json.loads((work / "report.json").read_text()) == json.loads(json.dumps(report))


@pytest.mark.slow
def test_the_final_agent_loads_and_plays(run):
    work, result = run
    c = load_checkpoint(LinearController, ControllerConfig, work / "controller").model
    np.testing.assert_array_equal(c.get_flat_params(), result.controller.get_flat_params())
    m = load_checkpoint(MDNRNN, MDNRNNConfig, work / "mdnrnn").model
    vae = load_checkpoint(ConvVAE, VAEConfig, work / "vae").model
    for name, loaded, kept in (("M", m, result.mdnrnn), ("V", vae, result.vae)):
        for key, value in kept.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[key], value, msg=f"{name}'s {key} differs on disk")
    env = make_env("cartpole-pixels", max_episode_steps=30)
    final = [play_episode(env, WorldModelAgent(vae, m, c, env.action_space), seed=1_000_000 + i) for i in range(2)]
    assert result.report["final"]["mean"] == pytest.approx(np.mean([r.ret for r in final]))
    assert result.report["final"]["env_steps"] == sum(r.steps for r in final)
    picked = result.report["rounds"][result.report["picked_round"]]
    round_stem = work / f"controller_round_{picked['round']:02d}"
    round_c = load_checkpoint(LinearController, ControllerConfig, round_stem).model
    np.testing.assert_array_equal(round_c.get_flat_params(), c.get_flat_params())


@pytest.mark.slow
def test_the_same_seed_gives_the_same_run(run, tmp_path):
    _, result = run
    again = run_pipeline(TINY, tmp_path / "again", seed=0, final_eval_episodes=2, progress=False).report

    def results(report):
        return ([{k: v for k, v in r.items() if k != "seconds"} for r in report["rounds"]], report["picked_round"],
                {k: v for k, v in report["final"].items() if k != "seconds"})

    assert results(again) == results(result.report)


@pytest.mark.slow
def test_the_report_records_the_nested_configs_with_m_resolved(run):
    config = run[1].report["config"]
    assert config["vae"]["z_dim"] == 8 and config["cmaes"]["population_size"] == 4
    assert config["dream"]["max_steps"] == 30
    assert config["mdnrnn"] == dataclasses.asdict(preset_config("cartpole-pixels", 8))


def test_pipeline_config_errors():
    with pytest.raises(ValueError, match="at least one round"):
        PipelineConfig(rounds=0)
    with pytest.raises(ValueError, match="M reads z of size 16, but V makes z of size 32"):
        PipelineConfig(mdnrnn=preset_config("cartpole-pixels", 16))
    with pytest.raises(ValueError, match="needs a reward head"):
        run_pipeline(PipelineConfig(env_name="carracing"), "unused", progress=False)
    with pytest.raises(ValueError, match="unknown world 'pong'"):
        run_pipeline(PipelineConfig(env_name="pong"), "unused", progress=False)


@pytest.mark.slow
def test_a_run_stops_at_the_budget_and_refuses_to_overwrite(tmp_path):
    small = dataclasses.replace(TINY, real_step_budget=60, random_episodes=10)
    report = run_pipeline(small, tmp_path / "run", seed=1, progress=False).report
    assert report["real_steps"] == 60
    assert len(report["rounds"]) == 1 and report["rounds"][0]["real_score"]["episodes"] == 0
    with pytest.raises(FileExistsError, match="already holds a pipeline run"):
        run_pipeline(small, tmp_path / "run", seed=1, progress=False)


def test_exploration_takes_random_actions_and_m_remembers_them():
    torch.manual_seed(0)
    vae = ConvVAE(VAEConfig(z_dim=4)).eval()
    m = MDNRNN(MDNRNNConfig(z_dim=4, action_dim=2, hidden_size=8, num_mixtures=2, predict_done=True)).eval()
    c = LinearController(ControllerConfig(z_dim=4, h_dim=8, action_dim=1, action_map="discrete"))
    c.set_flat_params(np.r_[np.zeros(12), 1.0])  # always push right
    env = make_env("cartpole-pixels", max_episode_steps=40)
    agent = WorldModelAgent(vae, m, c, env.action_space)
    greedy = play_agent_episode(env, agent, seed=3, epsilon=0.0)
    assert set(greedy["actions"].tolist()) == {1}
    env.action_space.seed(0)
    explored = play_agent_episode(env, agent, seed=3, epsilon=1.0, max_steps=25)
    assert 0 in explored["actions"] and len(explored["actions"]) <= 25
    assert explored["frames"].shape == (len(explored["actions"]) + 1, 64, 64, 3)
    # M's memory after the episode is the memory of the actions really taken.
    from wmlib.diagnostics import memory_states
    from wmlib.vae import encode_frames

    mu, _ = encode_frames(vae, explored["frames"])
    h = memory_states(m, mu, torch.from_numpy(encode_actions(explored["actions"], env.action_space))).h[-1]
    torch.testing.assert_close(agent.h, h, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--precision", "bfloat16", "--dream-workers", "2"]])
def test_dream_command_trains_and_evaluates(tmp_path, capsys, extra):
    torch.manual_seed(0)
    save_checkpoint(ConvVAE(VAEConfig(z_dim=4)), VAEConfig(z_dim=4), tmp_path / "vae")
    m_config = MDNRNNConfig(z_dim=4, action_dim=2, hidden_size=8, num_mixtures=2, predict_done=True)
    save_checkpoint(MDNRNN(m_config), m_config, tmp_path / "m")
    code = main(["dream", "--env", "cartpole-pixels", "--vae", str(tmp_path / "vae"), "--mdnrnn", str(tmp_path / "m"),
                 "--out", str(tmp_path / "c"), "--random-episodes", "3", "--population", "4", "--rollouts", "2",
                 "--generations", "2", "--dream-max-steps", "20", "--select-episodes", "4", "--eval-episodes", "2",
                 "--done-threshold", "sample", *extra])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["generations"] == 2 and out["dream_steps"] > 0 and out["real_steps_for_starts"] > 0
    assert out["evaluation"]["episodes"] == 2
    c, meta = load_checkpoint(LinearController, ControllerConfig, tmp_path / "c")
    assert c.num_params == 13
    assert "--done-threshold sample" in meta["command"]
    precision = "bfloat16" if extra else "float32"
    assert f"--precision {precision}" in meta["command"]
    assert meta["dream"]["precision"] == precision
    assert f"--dream-workers {2 if extra else 1} --workers 1" in meta["command"]  # the exact run


def test_a_dream_without_reward_or_end_is_refused():
    from wmlib.controller import controller_config_for
    from wmlib.dream_training import train_controller_in_dream

    m = MDNRNN(MDNRNNConfig(z_dim=4, action_dim=3, hidden_size=8, num_mixtures=2))  # like the CarRacing preset
    episodes = [{"mu": np.zeros((3, 4), np.float32), "logvar": np.zeros((3, 4), np.float32),
                 "actions": np.zeros((2, 3), np.float32)}]
    with pytest.raises(ValueError, match="neither the reward nor the end"):
        train_controller_in_dream(m, episodes, controller_config_for("carracing", 4, 8), progress=False)


@pytest.mark.slow
def test_start_vae_is_kept_in_round_0_and_refreshed_later(run, tmp_path):
    """Chapter 5 starts the live pipeline from the shipped V: round 0 keeps it as is, round 1 continues it."""
    first_v = run[1].vae  # a trained V of TINY's config, saved as a finished checkpoint
    start = tmp_path / "start_vae"
    save_checkpoint(first_v, TINY.vae, start, metadata={"history": [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]})
    one_round = dataclasses.replace(TINY, rounds=1)
    kept = run_pipeline(one_round, tmp_path / "kept", seed=1, progress=False, start_vae=start)
    for key, value in first_v.state_dict().items():
        torch.testing.assert_close(kept.vae.state_dict()[key], value, msg=f"round 0 retrained V's {key}")
    refreshed = run_pipeline(TINY, tmp_path / "refreshed", seed=1, progress=False, start_vae=start)
    assert any(not torch.equal(refreshed.vae.state_dict()[k], v) for k, v in first_v.state_dict().items())
    history = load_checkpoint(ConvVAE, VAEConfig, tmp_path / "refreshed" / "vae_train").metadata["history"]
    assert len(history) == 3 + TINY.vae_epochs_per_round, "round 1 adds its epochs to the start V's 3"
    with pytest.raises(ValueError, match="the start V .* but the pipeline asks for V"):
        run_pipeline(dataclasses.replace(one_round, vae=VAEConfig(z_dim=8)), tmp_path / "bad", seed=1,
                     progress=False, start_vae=start)
