"""The dream (wmlib/dream.py, wmlib/dream_training.py, wmlib/precision.py) with tiny untrained V and M
(conftest.py) standing in for the trained ones."""

import dataclasses
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import wmlib.dream_training
import wmlib.precision
from conftest import TINY_H as H
from conftest import TINY_Z as Z
from wmlib.cmaes import train_cmaes
from wmlib.config import CMAESConfig, DreamConfig, MDNRNNConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.diagnostics import memory_states
from wmlib.dream import (
    BatchedDream,
    DreamEnv,
    StartLatents,
    dream_step,
    make_dream,
    masked_returns,
    mdn_sample_from_noise,
    start_latents,
)
from wmlib.dream_training import (
    DreamEvaluator,
    dream_input_statistics,
    dream_rollouts,
    train_controller_in_dream,
    train_controllers_in_dreams,
)
from wmlib.evaluators import Evaluator
from wmlib.mdnrnn import MDNRNN, mdn_sample
from wmlib.precision import bfloat16_is_fast, dream_model, resolve_precision
from wmlib.vae import decode_latents

# check_env only warns about these: z, a Gaussian sample, is unbounded by nature.
ALLOWED_WARNINGS = ("minimum value is -infinity", "maximum value is infinity")


def tiny_starts(n=5, seed=2):
    g = torch.Generator().manual_seed(seed)
    return StartLatents(torch.randn(n, Z, generator=g), torch.randn(n, Z, generator=g) * 0.2 - 1.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_params(n, env_name="cartpole-pixels", seed=3, scale=2.0):
    c = controller_config_for(env_name, Z, H)
    P = LinearController(c).num_params
    return c, np.random.default_rng(seed).normal(size=(n, P)) * scale


def checked(env):
    allowed = ALLOWED_WARNINGS + (("not having a spec",) if env.spec is None else ())  # made without gym.make
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in allowed)]
    assert not unexpected, unexpected


def trajectory(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append(obs)
        if terminated or truncated:
            break
    return np.stack(out)


# --- Gymnasium's contract -----------------------------------------------------------------------


def test_dream_env_passes_check_env_cartpole(make_tiny_mdnrnn, tiny_vae):
    checked(make_dream("cartpole-pixels", make_tiny_mdnrnn(), tiny_starts(), vae=tiny_vae, render_mode="rgb_array"))


def test_dream_env_passes_check_env_made_through_gymnasium(make_tiny_mdnrnn, tiny_vae):
    """Through gym.make the env has a spec, so check_env also remakes it and tests close()."""
    gym.register("wmlib-test/Dream-v0", entry_point=DreamEnv)
    try:
        env = gym.make("wmlib-test/Dream-v0", mdnrnn=make_tiny_mdnrnn(action_dim=3), starts=tiny_starts(), vae=tiny_vae,
                       action_space=gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.ones(3, np.float32)))
        checked(env.unwrapped)
    finally:
        gym.registry.pop("wmlib-test/Dream-v0")


def test_observation_is_z_then_h_and_render_decodes_z(make_tiny_mdnrnn, tiny_vae):
    env = make_dream("cartpole-pixels", make_tiny_mdnrnn(), tiny_starts(), vae=tiny_vae, render_mode="rgb_array")
    obs, info = env.reset(seed=4)
    assert obs.shape == (Z + H,) and obs.dtype == np.float32
    assert np.all(obs[Z:] == 0), "the memory starts empty"
    obs, *_ = env.step(1)
    np.testing.assert_array_equal(obs[:Z], env.z.numpy())
    np.testing.assert_array_equal(obs[Z:], env.h.numpy())
    assert np.abs(obs[Z:]).max() > 0 and np.abs(obs[Z:]).max() < 1
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, decode_latents(tiny_vae, env.z)[0])


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_same_dream_different_seed_different_dream(make_tiny_mdnrnn):
    env = make_dream("cartpole-pixels", make_tiny_mdnrnn(done_bias=-6.0), tiny_starts(), DreamConfig(max_steps=40))
    actions = np.random.default_rng(0).integers(0, 2, 40)
    a, b, c = trajectory(env, 7, actions), trajectory(env, 7, actions), trajectory(env, 8, actions)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 41, "with a confident 'not done' the dream runs to its step limit"
    assert not np.allclose(a[0], c[0]), "another seed starts another dream"


def test_unseeded_resets_continue_the_seeded_sequence(make_tiny_mdnrnn):
    envs = [make_dream("cartpole-pixels", make_tiny_mdnrnn(), tiny_starts(), DreamConfig(max_steps=15)) for _ in "ab"]
    runs = []
    for env in envs:
        env.reset(seed=11)
        episodes = [trajectory(env, None, [1] * 15) for _ in range(3)]
        runs.append(episodes)
    for x, y in zip(*runs, strict=True):
        np.testing.assert_array_equal(x, y)
    firsts = [episode[0] for episode in runs[0]]  # each unseeded reset starts a new dream
    assert all(not np.array_equal(firsts[i], firsts[j]) for i, j in ((0, 1), (1, 2), (0, 2)))


def test_temperature_changes_the_dream_and_start_option_picks_the_start(make_tiny_mdnrnn):
    starts = tiny_starts()
    cold = make_dream("cartpole-pixels", make_tiny_mdnrnn(), starts, DreamConfig(temperature=0.1, sample_start=False))
    obs, info = cold.reset(seed=0, options={"start": 3})
    assert info["start"] == 3
    np.testing.assert_allclose(obs[:Z], starts.mu[3].numpy())
    hot = make_dream("cartpole-pixels", make_tiny_mdnrnn(), starts, DreamConfig(temperature=2.0, sample_start=False))
    hot.reset(seed=0, options={"start": 3})
    assert not np.allclose(cold.step(1)[0], hot.step(1)[0])


# --- the batched dream equals DreamEnv, row by row -------------------------------------------------


@pytest.mark.parametrize("done_threshold, done_bias", [(0.5, -0.5), (None, -3.0)])
def test_batched_dream_equals_step_by_step_dream_env(done_threshold, done_bias, make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(done_bias=done_bias), tiny_starts()
    config = DreamConfig(max_steps=60, done_threshold=done_threshold)
    controller_config, params = random_params(3)
    seeds = [5, 6, 7, 8]
    batched = dream_rollouts(m, starts, controller_config, params, seeds, config, record=True)
    env = make_dream("cartpole-pixels", m, starts, config)
    controller = LinearController(controller_config)
    lengths = set()
    for i in range(len(params)):
        controller.set_flat_params(params[i])
        for j, seed in enumerate(seeds):
            obs, _ = env.reset(seed=seed)
            zs, total, steps = [obs[:Z]], 0.0, 0
            while True:
                obs, reward, terminated, truncated, _ = env.step(controller.act(obs[:Z], obs[Z:]))
                zs.append(obs[:Z])
                total += reward
                steps += 1
                if terminated or truncated:
                    break
            row = i * len(seeds) + j
            assert batched.steps[i, j] == steps and batched.returns[i, j] == total
            np.testing.assert_allclose(batched.z[row, : steps + 1].numpy(), np.stack(zs), rtol=1e-5, atol=1e-5)
            lengths.add(steps)
    assert len(lengths) > 2, f"the test needs dreams of different lengths, got {lengths}"


def test_done_bias_is_the_same_dream_as_a_done_head_shifted_by_it(make_tiny_mdnrnn):
    """DreamConfig.done_bias adds to M's done logit: the dream of M with bias b equals the dream of an M whose
    done head's own bias is b higher, and log q multiplies the odds of every end by q."""
    starts = tiny_starts()
    controller_config, params = random_params(3)
    config = DreamConfig(max_steps=200, done_threshold=None)
    biased = dream_rollouts(make_tiny_mdnrnn(done_bias=-4.0), starts, controller_config, params, [0, 1, 2],
                            dataclasses.replace(config, done_bias=1.5))
    shifted = dream_rollouts(make_tiny_mdnrnn(done_bias=-2.5), starts, controller_config, params, [0, 1, 2], config)
    plain = dream_rollouts(make_tiny_mdnrnn(done_bias=-4.0), starts, controller_config, params, [0, 1, 2], config)
    np.testing.assert_array_equal(biased.steps, shifted.steps)
    assert biased.steps.mean() < plain.steps.mean(), "likelier ends: shorter dreams"

    m = make_tiny_mdnrnn(done_bias=-4.0)
    z, a = starts.mu[:4], torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1]), 2).float()
    u, eps, u_done = torch.rand(4, Z), torch.randn(4, Z), torch.rand(4)
    p0 = dream_step(m, z, a, m.initial_state(4), 1.0, u, eps, u_done).done_prob
    p3 = dream_step(m, z, a, m.initial_state(4), 1.0, u, eps, u_done, done_bias=math.log(3)).done_prob
    torch.testing.assert_close(p3 / (1 - p3), 3 * p0 / (1 - p0))


def test_input_statistics_read_m_along_episodes_as_stepping_it_does(make_tiny_mdnrnn, monkeypatch):
    """dream_input_statistics runs M over padded batches of episodes; the memories must be those of stepping
    each episode alone (wmlib.diagnostics.memory_states), whatever the lengths and the batch size."""
    m = make_tiny_mdnrnn()
    rng = np.random.default_rng(0)
    episodes = [{"mu": rng.normal(size=(T + 1, Z)).astype(np.float32),
                 "logvar": rng.normal(-2, 0.3, size=(T + 1, Z)).astype(np.float32),
                 "actions": np.eye(2, dtype=np.float32)[rng.integers(2, size=T)]} for T in (9, 3, 17, 0, 5)]
    g = torch.Generator().manual_seed(7)
    rows = []
    for ep in episodes:  # the definition: each episode stepped alone, z drawn in the episodes' order
        z = torch.as_tensor(ep["mu"]) + torch.exp(0.5 * torch.as_tensor(ep["logvar"])) * torch.randn(
            ep["mu"].shape, generator=g)
        rows.append(torch.cat([z, memory_states(m, z, torch.as_tensor(ep["actions"])).h], dim=1).numpy())
    x = np.concatenate(rows).astype(np.float64)
    for per_batch in (1, 2, 32):
        monkeypatch.setattr(wmlib.dream_training, "EPISODES_PER_BATCH", per_batch)
        mean, std = dream_input_statistics(m, episodes, seed=7)
        np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(std, np.maximum(x.std(axis=0), 1e-3 * x.std(axis=0).max()), rtol=1e-5, atol=1e-6)


def test_a_dream_does_not_depend_on_its_batch_mates(make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(), tiny_starts()
    controller_config, params = random_params(4)
    together = dream_rollouts(m, starts, controller_config, params, [1, 2, 3], record=True)
    alone = dream_rollouts(m, starts, controller_config, params[2:3], [2], record=True)
    assert together.returns[2, 1] == alone.returns[0, 0]
    T = int(alone.steps[0, 0])
    np.testing.assert_allclose(together.z[2 * 3 + 1, : T + 1], alone.z[0, : T + 1], rtol=1e-5, atol=1e-5)


def test_returns_are_masked_after_each_dreams_end(make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(done_bias=-3.0), tiny_starts()
    controller_config, params = random_params(5)
    config = DreamConfig(max_steps=200, done_threshold=None)
    r = dream_rollouts(m, starts, controller_config, params, [0, 1, 2], config, record=True)
    assert r.rewards.shape[1] == r.steps.max() < 200, "the batch stops once its last dream has ended"
    np.testing.assert_array_equal(r.returns, r.steps, err_msg="survival: +1 per step, the last one included")
    np.testing.assert_array_equal(masked_returns(r.rewards, r.dones).view(5, 3).numpy(), r.returns)
    assert r.steps.min() < r.steps.max()


def test_step_limit_truncates(make_tiny_mdnrnn):
    m = make_tiny_mdnrnn(done_bias=-30.0)
    controller_config, params = random_params(2)
    r = dream_rollouts(m, tiny_starts(), controller_config, params, [0], DreamConfig(max_steps=25))
    np.testing.assert_array_equal(r.steps, 25)
    env = make_dream("cartpole-pixels", m, tiny_starts(), DreamConfig(max_steps=3))
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


def test_model_reward_comes_from_the_reward_head(tiny_reward_mdnrnn):
    m = tiny_reward_mdnrnn
    with torch.no_grad():
        m.reward_head.weight.zero_()
        m.reward_head.bias.fill_(0.25)
    env = make_dream("cartpole-pixels", m, tiny_starts())
    env.reset(seed=0)
    assert env.step(1)[1] == pytest.approx(0.25)
    survival = make_dream("cartpole-pixels", m, tiny_starts(), DreamConfig(reward="survival"))
    survival.reset(seed=0)
    assert survival.step(1)[1] == 1.0


def test_inverse_cdf_sampling_matches_mdn_sample_and_the_tempered_mixture():
    g = torch.Generator().manual_seed(0)
    log_pi = torch.log_softmax(torch.tensor([[0.0, 1.0, -1.0]]), -1).expand(200_000, 3)
    mu = torch.tensor([[-2.0, 0.5, 3.0]]).expand(200_000, 3)
    log_sigma = torch.log(torch.tensor([[0.2, 0.25, 0.15]])).expand(200_000, 3)
    for tau in (0.5, 1.0, 1.5):
        p = torch.softmax(log_pi[0] / tau, -1)
        mean = (p * mu[0]).sum()
        var = (p * (log_sigma[0].exp() ** 2 * tau + mu[0] ** 2)).sum() - mean**2
        ours = mdn_sample_from_noise(log_pi, mu, log_sigma, tau, torch.rand(200_000, generator=g),
                                     torch.randn(200_000, generator=g))
        theirs = mdn_sample(log_pi, mu, log_sigma, tau, generator=g)
        for x in (ours, theirs):
            assert abs(x.mean() - mean) < 0.02 and abs(x.var() - var) < 0.05
        # the share of samples near each component's mean follows the tempered weights
        near = torch.stack([(ours - m).abs() < 1.0 for m in mu[0]]).float().mean(1)
        torch.testing.assert_close(near, p, atol=0.01, rtol=0)


# --- the evaluator trains a controller inside the dream -----------------------------------------


def handmade_m():
    """An M whose dream ends at once after 'push left' and goes on forever after 'push right'."""
    m = MDNRNN(MDNRNNConfig(z_dim=Z, action_dim=2, hidden_size=H, num_mixtures=2, predict_done=True)).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        Hs = H
        b = m.lstm.bias_ih_l0  # gates i, f, g, o
        b[:Hs].fill_(10.0)  # input gate open
        b[Hs : 2 * Hs].fill_(-10.0)  # forget the past
        b[3 * Hs :].fill_(10.0)  # output gate open
        m.lstm.weight_ih_l0[2 * Hs, Z + 0] = -3.0  # g_0 < 0 after "left"
        m.lstm.weight_ih_l0[2 * Hs, Z + 1] = 3.0  # g_0 > 0 after "right"
        m.done_head.weight[0, 0] = -20.0  # done when h_0 < 0
    return m


def test_cmaes_with_the_dream_evaluator_learns_to_survive():
    m, starts = handmade_m(), tiny_starts()
    controller_config = controller_config_for("cartpole-pixels", Z, H)
    config = DreamConfig(max_steps=30)
    evaluator = DreamEvaluator(m, starts, controller_config, config, max_batch=16)
    zero = evaluator(np.zeros((1, LinearController(controller_config).num_params)), [0, 1])
    np.testing.assert_array_equal(zero.returns, 1.0)  # y = tanh(0) = 0 -> "left" -> the dream ends at once
    P = LinearController(controller_config).num_params
    result = train_cmaes(evaluator, np.zeros(P),
                         CMAESConfig(population_size=8, rollouts_per_candidate=2, sigma0=0.5, generations=6),
                         seed=0, progress=False)
    assert result.best_fitness == 30.0
    assert result.history[-1]["mean"] > result.history[0]["mean"]
    assert result.total_env_steps > 0


def test_evaluator_groups_give_the_same_scores(make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(), tiny_starts()
    controller_config, params = random_params(6)
    config = DreamConfig(max_steps=100)
    one = DreamEvaluator(m, starts, controller_config, config, max_batch=4096)(params, [3, 4])
    many = DreamEvaluator(m, starts, controller_config, config, max_batch=2)(params, [3, 4])
    np.testing.assert_array_equal(one.returns, many.returns)
    np.testing.assert_array_equal(one.steps, many.steps)


def test_dream_worker_processes_give_the_serial_scores(make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(), tiny_starts()
    controller_config, params = random_params(5)
    config = DreamConfig(max_steps=60)
    serial = DreamEvaluator(m, starts, controller_config, config)(params, [3, 4, 5])
    with DreamEvaluator(m, starts, controller_config, config, workers=2) as pooled:
        assert isinstance(pooled, Evaluator)
        assert not pooled._evaluator.running  # nothing starts before the first generation
        spread = pooled(params, [3, 4, 5])
        again = pooled(params[:2], [7])  # the workers live on between calls
        assert pooled._evaluator.running
    assert not pooled._evaluator.running  # closed by the with block
    np.testing.assert_array_equal(serial.returns, spread.returns)
    np.testing.assert_array_equal(serial.steps, spread.steps)
    np.testing.assert_array_equal(DreamEvaluator(m, starts, controller_config, config)(params[:2], [7]).returns,
                                  again.returns)



def test_a_sweep_on_worker_processes_gives_the_runs_of_a_loop(make_tiny_mdnrnn):
    m = make_tiny_mdnrnn()
    g = np.random.default_rng(0)
    episodes = [{"mu": g.normal(size=(12, Z)).astype(np.float32), "logvar": np.full((12, Z), -1.0, np.float32),
                 "actions": np.eye(2, dtype=np.float32)[g.integers(0, 2, 11)]} for _ in range(3)]
    c_config = controller_config_for("cartpole-pixels", Z, H)
    cma = CMAESConfig(population_size=6, rollouts_per_candidate=2, sigma0=0.5, generations=2)
    dreams = [DreamConfig(max_steps=40, temperature=t) for t in (0.5, 1.0, 1.3)]
    loop = [train_controller_in_dream(m, episodes, c_config, cma, d, seed=4, select_episodes=4, progress=False)
            for d in dreams]
    spread = train_controllers_in_dreams(m, episodes, c_config, cma, dreams, seed=4, select_episodes=4, workers=2)
    assert len(spread) == 3
    for a, b in zip(loop, spread, strict=True):
        assert a.selection == b.selection and a.picked == b.picked and a.dream_steps == b.dream_steps
        np.testing.assert_array_equal(a.controller.get_flat_params(), b.controller.get_flat_params())
    assert loop[0].selection != loop[2].selection or loop[0].dream_steps != loop[2].dream_steps  # the runs differ
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        train_controllers_in_dreams(m, episodes, c_config, cma, dreams, workers=0)

# --- the dream in bfloat16 --------------------------------------------------------------------------


def test_bfloat16_dream_keeps_m_and_c_in_float32_and_follows_the_float32_dream(make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(), tiny_starts()
    weights = {k: v.clone() for k, v in m.state_dict().items()}
    half = dream_model(m, "bfloat16")
    assert next(half.parameters()).dtype == torch.bfloat16 and dream_model(m, "float32") is m
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in weights.items())  # M itself is untouched
    env = make_dream("cartpole-pixels", m, starts, DreamConfig(precision="bfloat16"))
    checked(env)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.h.dtype == torch.float32
    # Step by step on the same random numbers, the two precisions predict nearly the same mixture.
    g = torch.Generator().manual_seed(0)
    z, a = torch.randn(64, Z, generator=g), torch.nn.functional.one_hot(torch.randint(2, (64,), generator=g)).float()
    full = m.step_logits(z, a)
    low = half.step_logits(z.bfloat16(), a.bfloat16())
    assert low.mu.dtype == torch.float32  # the heads come out in float32 for the float32 sampler
    torch.testing.assert_close(low.mu, full.mu, atol=0.03, rtol=0.03)
    torch.testing.assert_close(low.done_logit, full.done_logit, atol=0.03, rtol=0.03)
    controller_config, params = random_params(4)
    r32 = dream_rollouts(m, starts, controller_config, params, list(range(16)), DreamConfig(max_steps=50))
    r16 = dream_rollouts(m, starts, controller_config, params, list(range(16)),
                         DreamConfig(max_steps=50, precision="bfloat16"))
    assert abs(r16.steps.mean() - r32.steps.mean()) < 0.25 * r32.steps.mean()
    # dream_step takes a float32 memory for a bfloat16 M too, and hands back M's own precision.
    u, eps = torch.rand(3, Z), torch.randn(3, Z)
    step = dream_step(half, torch.zeros(3, Z), torch.zeros(3, 2), m.initial_state(3), 1.0, u, eps, torch.rand(3))
    assert step.state.h.dtype == torch.bfloat16 and step.z.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown precision 'float16'; expected one of float32, bfloat16, auto"):
        DreamConfig(precision="float16")
    with pytest.raises(ValueError, match="unknown precision 'float16'; expected one of float32, bfloat16 or 'auto'"):
        dream_model(m, "float16")  # the library refuses it too, for a caller that skips DreamConfig


@pytest.mark.parametrize("bfloat16_seconds, fast", [(1e-3, True), (3e-3, False)])
def test_bfloat16_is_fast_follows_the_measurement_once(monkeypatch, make_tiny_mdnrnn, bfloat16_seconds, fast):
    timed = []

    def fake_seconds(dtype, shape, device):
        timed.append((dtype, shape))
        return bfloat16_seconds if dtype == torch.bfloat16 else 2e-3

    monkeypatch.setattr(wmlib.precision, "_seconds_per_product", fake_seconds)
    monkeypatch.setattr(wmlib.precision, "_FAST", {})
    assert bfloat16_is_fast("cpu", 12, 32) is fast
    assert bfloat16_is_fast("cpu", 12, 32) is fast
    assert timed == [(torch.float32, (256, 12, 32)), (torch.bfloat16, (256, 12, 32))]  # measured once, then cached
    m = make_tiny_mdnrnn()
    assert resolve_precision(m, "auto") == ("bfloat16" if fast else "float32")
    assert timed[-1][1] == (256, Z + 2 + H, 4 * H)  # "auto" times a product of this M's own shape
    assert next(dream_model(m, "auto").parameters()).dtype == (torch.bfloat16 if fast else torch.float32)
    assert resolve_precision(m, "float32") == "float32" and len(timed) == 4  # a named precision measures nothing


def test_bfloat16_timing_measures_real_products():
    seconds = wmlib.precision._seconds_per_product(torch.float32, (8, 16, 32), torch.device("cpu"), repeats=2)
    assert 0 < seconds < 1


# --- clear errors ---------------------------------------------------------------------------------


def test_bad_inputs_get_clear_errors(make_tiny_mdnrnn):
    m, starts = make_tiny_mdnrnn(), tiny_starts()
    env = make_dream("cartpole-pixels", m, starts)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="expected an action in Discrete"):
        env.step(2)
    with pytest.raises(ValueError, match="needs V"):
        make_dream("cartpole-pixels", m, starts, render_mode="rgb_array")
    with pytest.raises(ValueError, match=r"start latents mu and logvar of shape \(N, 4\)"):
        DreamEnv(m, StartLatents(torch.zeros(3, 5), torch.zeros(3, 5)))
    with pytest.raises(ValueError, match="one-hot actions of size 2"):
        DreamEnv(m, starts, action_space=gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="reward head"):
        DreamEnv(m, starts, DreamConfig(reward="model"))
    with pytest.raises(ValueError, match="temperature must be positive"):
        BatchedDream(m, starts, DreamConfig(temperature=0.0))
    with pytest.raises(ValueError, match="start indices must lie in 0..4"):
        env.reset(seed=0, options={"start": 9})
    controller_config, params = random_params(2)
    with pytest.raises(ValueError, match=r"expected params of shape \(N, 13\)"):
        dream_rollouts(m, starts, controller_config, params[:, :5], [0])
    with pytest.raises(ValueError, match="M has z_dim 4"):
        dream_rollouts(m, starts, controller_config_for("cartpole-pixels", 6, H), np.zeros((1, 15)), [0])
    with pytest.raises(ValueError, match="workers must be a positive integer or an EvaluatorConfig, got 0"):
        DreamEvaluator(m, starts, controller_config, workers=0)
    with pytest.raises(ValueError, match="encoded episodes with mu and logvar"):
        start_latents([{"frames": np.zeros((2, 64, 64, 3))}])


def test_start_latents_takes_each_episodes_first_frame():
    eps = [{"mu": np.full((3, Z), i, np.float32), "logvar": np.full((3, Z), -i, np.float32)} for i in range(3)]
    eps[1]["mu"][1:] = 99
    s = start_latents(eps)
    np.testing.assert_array_equal(s.mu[:, 0].numpy(), [0, 1, 2])
    np.testing.assert_array_equal(s.logvar[:, 0].numpy(), [0, -1, -2])
