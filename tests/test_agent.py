"""The V+M+C agent in real envs, with tiny untrained V and M standing in for the trained ones."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmlib.agent import ControllerRollout, WorldModelAgent, controller_rollout_for, play_episode
from wmlib.checkpoints import read_metadata, save_checkpoint
from wmlib.config import MDNRNNConfig, VAEConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.envs import make_env
from wmlib.evaluators import ProcessPoolEvaluator, Rollout, SerialEvaluator
from wmlib.mdnrnn import MDNRNN
from wmlib.rollouts import frames_to_tensor
from wmlib.vae import ConvVAE

Z, H = 4, 8


def tiny_vae(seed=0):
    torch.manual_seed(seed)
    return ConvVAE(VAEConfig(z_dim=Z)).eval()


def tiny_mdnrnn(action_dim=2, seed=1):
    torch.manual_seed(seed)
    return MDNRNN(MDNRNNConfig(z_dim=Z, action_dim=action_dim, hidden_size=H, num_mixtures=2,
                               predict_done=True)).eval()


def random_controller(env_name="cartpole-pixels", h_dim=H, seed=2, scale=3.0):
    c = LinearController(controller_config_for(env_name, Z, h_dim))
    c.set_flat_params(np.random.default_rng(seed).normal(size=c.num_params) * scale)
    return c


@pytest.fixture(scope="module")
def cartpole():
    env = make_env("cartpole-pixels")
    yield env
    env.close()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent")
    save_checkpoint(tiny_vae(), VAEConfig(z_dim=Z), root / "vae")
    m = tiny_mdnrnn()
    save_checkpoint(m, m.config, root / "mdnrnn")
    return root / "vae", root / "mdnrnn"


def test_agent_matches_the_papers_loop_step_by_step(cartpole):
    vae, m, c = tiny_vae(), tiny_mdnrnn(), random_controller()
    agent = WorldModelAgent(vae, m, c, cartpole.action_space)
    frame, _ = cartpole.reset(seed=3)
    h, cell = torch.zeros(1, H), torch.zeros(1, H)
    W, b = c.weight.detach(), c.bias.detach()
    used_h = False
    for _ in range(25):
        with torch.no_grad():
            z = vae.encode(frames_to_tensor(frame))[0]  # mu (1, Z)
            y = torch.tanh(torch.cat([z, h], 1) @ W.T + b)  # C reads h *before* M sees this frame
            action = int(y[0, 0] > 0)
            out = m.step(z, torch.eye(2)[[action]], m.initial_state(1)._replace(h=h, c=cell))
        assert agent.act(frame) == action
        h, cell = out.state.h, out.state.c
        torch.testing.assert_close(agent.h, h[0])
        used_h |= bool(h.abs().sum() > 0)
        frame, _, term, trunc, _ = cartpole.step(action)
        if term or trunc:
            break
    assert used_h
    agent.reset()
    assert torch.count_nonzero(agent.h) == 0


def test_decide_reads_h_without_touching_m_and_remember_advances_m(cartpole):
    vae, m = tiny_vae(), tiny_mdnrnn()
    agent = WorldModelAgent(vae, m, random_controller(), cartpole.action_space)
    frame, _ = cartpole.reset(seed=4)
    for _ in range(3):
        h_before, state_before = agent.h.clone(), agent.state
        decision = agent.decide(frame)
        assert agent.state is state_before, "decide must leave M's memory alone"
        with torch.no_grad():
            z = vae.encode(frames_to_tensor(frame))[0][0]
        torch.testing.assert_close(decision.z, z)
        assert decision.action == agent.controller.act(z, h_before)
        taken = 1 - decision.action  # the explorer's case: M must remember the action really taken
        agent.remember(decision.z, taken)
        with torch.no_grad():
            expected = m.step(z[None], torch.eye(2)[[taken]], state_before).state
        torch.testing.assert_close(agent.state.h, expected.h)
        torch.testing.assert_close(agent.state.c, expected.c)
        frame, *_ = cartpole.step(taken)


def test_act_is_decide_then_remember(cartpole):
    one = WorldModelAgent(tiny_vae(), tiny_mdnrnn(), random_controller(), cartpole.action_space)
    two = WorldModelAgent(tiny_vae(), tiny_mdnrnn(), random_controller(), cartpole.action_space)
    frame, _ = cartpole.reset(seed=6)
    for _ in range(5):
        action = one.act(frame)
        z, chosen = two.decide(frame)
        two.remember(z, chosen)
        assert action == chosen
        torch.testing.assert_close(one.h, two.h)
        frame, _, term, trunc, _ = cartpole.step(action)
        if term or trunc:
            break


def test_remember_reads_a_box_action_as_a_vector_and_is_a_no_op_without_m():
    car_space = gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    m = tiny_mdnrnn(action_dim=3)
    agent = WorldModelAgent(tiny_vae(), m, random_controller("carracing"), car_space)
    z, action = torch.randn(Z), np.array([0.3, 0.5, 0.0], np.float32)
    agent.remember(z, action)
    with torch.no_grad():
        expected = m.step(z[None], torch.from_numpy(action)[None], m.initial_state(1)).state
    torch.testing.assert_close(agent.state.h, expected.h)
    v_only = WorldModelAgent(tiny_vae(), None, random_controller(h_dim=0), gym.spaces.Discrete(2))
    v_only.remember(z, 1)
    assert v_only.state is None and v_only.h.numel() == 0


def test_episode_is_deterministic_and_counts_steps(cartpole):
    agent = WorldModelAgent(tiny_vae(), tiny_mdnrnn(), random_controller(), cartpole.action_space)
    a = play_episode(cartpole, agent, seed=5, max_steps=40)
    b = play_episode(cartpole, agent, seed=5, max_steps=40)
    assert isinstance(a, Rollout) and a == b
    assert 1 <= a.steps <= 40 and a.ret == a.steps  # CartPole pays 1 per step
    c = play_episode(cartpole, agent, seed=6, max_steps=40)
    assert c != a, "another seed, another episode (a constant result would pass the check above)"


def test_memory_changes_what_the_agent_does(cartpole):
    # A controller that reads only h, with no bias: with h = 0 it says tanh(0) = 0 -> action 0.
    c = LinearController(controller_config_for("cartpole-pixels", Z, H))
    agent = WorldModelAgent(tiny_vae(), tiny_mdnrnn(), c, cartpole.action_space)
    frame, _ = cartpole.reset(seed=0)
    assert agent.act(frame) == 0
    h1 = agent.h.clone()
    assert torch.count_nonzero(h1) > 0  # M took in (z_0, a_0)
    params = np.zeros(c.num_params)
    params[Z:Z + H] = h1.numpy()  # W_h . h1 = |h1|^2 > 0
    c.set_flat_params(params)
    frame, *_ = cartpole.step(0)
    assert agent.act(frame) == 1  # only the memory can have changed the decision


def test_v_only_agent_needs_no_m(cartpole):
    agent = WorldModelAgent(tiny_vae(), None, random_controller(h_dim=0), cartpole.action_space)
    r = play_episode(cartpole, agent, seed=1, max_steps=15)
    assert 1 <= r.steps <= 15


def test_mismatched_parts_are_clear_errors(cartpole):
    space = cartpole.action_space
    wide_z = LinearController(controller_config_for("cartpole-pixels", 5, H))
    with pytest.raises(ValueError, match="V makes z of size 4"):
        WorldModelAgent(tiny_vae(), tiny_mdnrnn(), wide_z, space)
    with pytest.raises(ValueError, match="M's LSTM has 8 units"):
        WorldModelAgent(tiny_vae(), tiny_mdnrnn(), random_controller(h_dim=16), space)
    with pytest.raises(ValueError, match="needs M"):
        WorldModelAgent(tiny_vae(), None, random_controller(), space)
    with pytest.raises(ValueError, match="actions of size 3"):
        WorldModelAgent(tiny_vae(), tiny_mdnrnn(action_dim=3), random_controller(), space)


def test_carracing_agent_drives_with_the_papers_action_map():
    env = make_env("carracing")
    try:
        agent = WorldModelAgent(tiny_vae(), tiny_mdnrnn(action_dim=3), random_controller("carracing"),
                                env.action_space)
        frame, _ = env.reset(seed=0)
        for _ in range(3):
            action = agent.act(frame)
            assert action.shape == (3,) and env.action_space.contains(action)
            frame, *_ = env.step(action)
        assert torch.count_nonzero(agent.h) > 0
    finally:
        env.close()


def test_input_statistics_and_standardised_search(checkpoints, cartpole):
    from wmlib.agent import input_statistics
    from wmlib.controller import fold_standardization

    mean, std, steps = input_statistics(cartpole, tiny_vae(), tiny_mdnrnn(), episodes=3, seed=4)
    assert mean.shape == std.shape == (Z + H,) and np.all(std > 0) and steps >= 3
    again = input_statistics(cartpole, tiny_vae(), tiny_mdnrnn(), episodes=3, seed=4)
    np.testing.assert_array_equal(mean, again[0])
    vae, mdn = checkpoints
    fn = controller_rollout_for("cartpole-pixels", vae, mdn, max_steps=20, standardize_episodes=2, seed=0)
    assert fn.input_mean is not None and fn.calibration_env_steps >= 2
    theta = np.random.default_rng(5).normal(size=Z + H + 1)
    plain = ControllerRollout("cartpole-pixels", vae, mdn, fn.controller, max_steps=20)
    raw = fold_standardization(theta, fn.input_mean, fn.input_std, 1)
    assert fn(theta, 3) == plain(raw, 3)
    np.testing.assert_allclose(fn.controller_params(theta), raw)
    # a trained controller as the start of a new search: the same raw W, b in the new coordinates
    from wmlib.agent import search_start

    c = LinearController(fn.controller)
    c.set_flat_params(raw)
    np.testing.assert_allclose(fn.controller_params(search_start(fn, c)), c.get_flat_params(), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(search_start(plain, c), c.get_flat_params())
    with pytest.raises(ValueError, match="cannot start from a controller"):
        search_start(fn, LinearController(controller_config_for("cartpole-pixels", Z, 0)))


def test_controller_rollout_pickles_without_its_models(checkpoints):
    vae, mdn = checkpoints
    fn = controller_rollout_for("cartpole-pixels", vae, mdn, max_steps=20)
    assert (fn.controller.z_dim, fn.controller.h_dim, fn.controller.action_dim) == (Z, H, 1)
    params = np.random.default_rng(0).normal(size=Z + H + 1)
    first = fn(params, 7)
    clone = pickle.loads(pickle.dumps(fn))
    assert clone._agent is None
    assert clone(params, 7) == first
    assert controller_rollout_for("cartpole-pixels", vae, None, use_h=False).controller.h_dim == 0
    with pytest.raises(ValueError, match="needs M"):
        controller_rollout_for("cartpole-pixels", vae, None)


def test_process_pool_matches_serial_in_the_real_pixel_env(checkpoints):
    vae, mdn = checkpoints
    config = controller_config_for("cartpole-pixels", Z, H)
    fn = ControllerRollout("cartpole-pixels", vae, mdn, config, max_steps=25)
    solutions = np.random.default_rng(1).normal(size=(3, Z + H + 1)) * 2
    seeds = [11, 12]
    serial = SerialEvaluator(fn)(solutions, seeds)
    with ProcessPoolEvaluator(fn, workers=2) as pool:
        pooled = pool(solutions, seeds)
    np.testing.assert_array_equal(serial.returns, pooled.returns)
    np.testing.assert_array_equal(serial.steps, pooled.steps)
    assert serial.steps.min() >= 1


def test_cli_trains_saves_resumes_and_evaluates(checkpoints, tmp_path, capsys):
    import json

    from wmlib.agent import load_controller
    from wmlib.cli import main

    vae, mdn = checkpoints
    out, work = tmp_path / "ctrl", tmp_path / "es"

    def train(generations):
        return main(["train-controller", "--env", "cartpole-pixels", "--vae", str(vae), "--mdnrnn", str(mdn),
                     "--out", str(out), "--population", "4", "--rollouts", "1",
                     "--generations", str(generations), "--max-steps", "15", "--select-episodes", "1",
                     "--eval-episodes", "2", "--workers", "1", "--work", str(work),
                     "--standardize-episodes", "3"])

    assert train(2) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["generations"] == 2 and summary["parameters"] == Z + H + 1
    assert summary["training_env_steps"] >= 4 * 2 and summary["evaluation"]["episodes"] == 2
    c = load_controller(str(out))
    assert c.config.h_dim == H and "train-controller" in read_metadata(str(out), "controller")["command"]
    assert train(3) == 0  # the same work checkpoint: continues from generation 2
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["generations"] == 3
    assert main(["evaluate", "--controller", str(out), "--episodes", "2", "--workers", "1",
                 "--max-steps", "15"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["episodes"] == 2 and 1 <= result["mean"] <= 15


@pytest.mark.parametrize("name", ["cartpole", "cartpole_zonly"])
def test_shipped_controller_fits_the_shipped_v_and_m_and_records_its_command(name):
    """A shipped C is only valid with the V (and M) it was trained with: retrain C when they change."""
    import hashlib
    from pathlib import Path

    from wmlib.agent import load_controller
    from wmlib.checkpoints import assets_dir

    load_controller(name)
    meta = read_metadata(name, "controller")
    assert meta["command"].startswith("python -m wmlib train-controller --env cartpole-pixels --vae cartpole")
    assert f"--out assets/{name}_controller" in meta["command"] and "--seed" in meta["command"]
    readme = (assets_dir() / "README.md").read_text()
    flat = " ".join(readme.replace("\\\n", " ").split())
    assert " ".join(meta["command"].split()) in flat, "assets/README.md must list the command that made it"
    for part, digest in meta["parts_sha256"].items():
        shipped = Path(assets_dir() / f"cartpole_{part}.safetensors").read_bytes()
        assert hashlib.sha256(shipped).hexdigest() == digest, f"{name} was trained with another {part}"
    assert meta["evaluation"]["episodes"] == 100


@pytest.mark.usefixtures("one_torch_thread")
def test_shipped_controller_balances_from_pixels():
    """The chapter-4 claim, on a few fresh episodes (the full 100-episode score is in its JSON)."""
    from wmlib.agent import load_controller
    from wmlib.mdnrnn import load_mdnrnn
    from wmlib.vae import load_vae

    c = load_controller("cartpole")
    env = make_env("cartpole-pixels")
    agent = WorldModelAgent(load_vae("cartpole"), load_mdnrnn("cartpole"), c, env.action_space)
    returns = [play_episode(env, agent, seed=7_000_000 + i).ret for i in range(3)]
    env.close()
    assert min(returns) >= 475, returns
