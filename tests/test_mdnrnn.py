"""M, the MDN-RNN: the math against torch.distributions and closed forms, the model's shapes and
memory, latent files and windows (wmlib/latents.py), training (with resume), imagination
(wmlib/diagnostics.py), and the shipped checkpoints."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from wmlib.checkpoints import CheckpointError, read_unit, save_checkpoint
from wmlib.config import MDNRNNConfig
from wmlib.diagnostics import evaluate_mdnrnn, held_out_scores, imagination_error, imagine, memory_states
from wmlib.envs import make_env
from wmlib.latents import cut_windows, encode_episodes, load_latent_episodes
from wmlib.mdnrnn import (
    MDNRNN,
    LSTMState,
    load_mdnrnn,
    mdn_log_prob,
    mdn_nll,
    mdn_sample,
    preset_config,
    teacher_forcing_pairs,
    train_mdnrnn,
)
from wmlib.rollouts import play_episode, random_policy
from wmlib.vae import load_vae

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = MDNRNNConfig(z_dim=4, action_dim=2, hidden_size=16, num_mixtures=3, predict_reward=True,
                     predict_done=True, sequence_length=8, batch_size=8)


def _mixture(seed, shape, K=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    log_pi = torch.log_softmax(torch.randn((*shape, K), generator=g, dtype=dtype) * 2, -1)
    mu = torch.randn((*shape, K), generator=g, dtype=dtype) * 2
    log_sigma = torch.randn((*shape, K), generator=g, dtype=dtype) * 0.7 - 0.5
    target = torch.randn(shape, generator=g, dtype=dtype) * 2
    return log_pi, mu, log_sigma, target


def _torch_log_prob(log_pi, mu, log_sigma, target):
    return MixtureSameFamily(Categorical(logits=log_pi), Normal(mu, log_sigma.exp())).log_prob(target)


# --- the math ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 5, 6)])
def test_log_prob_matches_mixture_same_family(shape):
    log_pi, mu, log_sigma, target = _mixture(0, shape)
    torch.testing.assert_close(mdn_log_prob(log_pi, mu, log_sigma, target),
                               _torch_log_prob(log_pi, mu, log_sigma, target))
    torch.testing.assert_close(mdn_nll(log_pi, mu, log_sigma, target),
                               -_torch_log_prob(log_pi, mu, log_sigma, target).mean())


def test_nll_finite_and_exact_for_extreme_inputs():
    log_pi, mu, log_sigma, target = _mixture(1, (4, 3), K=4, dtype=torch.float32)
    log_pi = log_pi.clone().requires_grad_(True)
    far = target + 300.0  # p ~ e^-45000: zero in float32, but log p is an ordinary number
    loss = mdn_nll(log_pi, mu, log_sigma, far)
    assert torch.isfinite(loss) and loss > 1000
    expected = -_torch_log_prob(log_pi.double(), mu.double(), log_sigma.double(), far.double()).mean()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=0)
    loss.backward()
    assert torch.isfinite(log_pi.grad).all()
    density = Normal(mu, log_sigma.exp()).log_prob(far[..., None]).exp()
    naive = -torch.log((log_pi.exp() * density).sum(-1)).mean()
    assert torch.isinf(naive)  # the reason for logsumexp


def test_nll_rejects_mismatched_shapes():
    log_pi, mu, log_sigma, target = _mixture(2, (3, 4))
    with pytest.raises(ValueError, match="target"):
        mdn_nll(log_pi, mu, log_sigma, target[:, :2])
    with pytest.raises(ValueError, match="same shape"):
        mdn_nll(log_pi[..., :2], mu, log_sigma, target)


def _tempered_moments(log_pi, mu, log_sigma, tau):
    w = torch.softmax(log_pi / tau, -1)
    mean = (w * mu).sum(-1)
    var = (w * ((2 * log_sigma).exp() * tau + mu**2)).sum(-1) - mean**2
    return mean, var


@pytest.mark.parametrize("tau", [0.25, 0.5, 1.0, 1.15, 2.0])
def test_sample_mean_and_variance_match_closed_form(tau):
    n = 100_000
    log_pi = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]], dtype=torch.float64))
    mu = torch.tensor([[-2.0, 0.0, 3.0], [1.0, 1.5, -1.0]], dtype=torch.float64)
    log_sigma = torch.log(torch.tensor([[0.3, 0.6, 0.2], [0.5, 1.0, 2.0]], dtype=torch.float64))
    g = torch.Generator().manual_seed(int(tau * 100))
    samples = mdn_sample(*(x.expand(n, 2, 3) for x in (log_pi, mu, log_sigma)), tau, g)
    assert samples.shape == (n, 2)
    mean, var = _tempered_moments(log_pi, mu, log_sigma, tau)
    torch.testing.assert_close(samples.mean(0), mean, atol=5 * float(var.max().sqrt()) / math.sqrt(n), rtol=0)
    torch.testing.assert_close(samples.var(0), var, rtol=0.04, atol=0)


def test_temperature_one_samples_the_model_itself():
    # At tau = 1 the samples follow the mixture: compare a histogram-free statistic, P(y < c).
    log_pi, mu, log_sigma, _ = _mixture(3, (), K=3)
    n, c = 200_000, 0.3
    g = torch.Generator().manual_seed(0)
    samples = mdn_sample(log_pi.expand(n, 3), mu.expand(n, 3), log_sigma.expand(n, 3), 1.0, g)
    expected = MixtureSameFamily(Categorical(logits=log_pi), Normal(mu, log_sigma.exp())).cdf(torch.tensor(c))
    assert abs(float((samples < c).double().mean()) - float(expected)) < 0.005


def test_sample_is_reproducible_and_checks_temperature():
    log_pi, mu, log_sigma, _ = _mixture(4, (6, 4))
    a = mdn_sample(log_pi, mu, log_sigma, 1.0, torch.Generator().manual_seed(7))
    b = mdn_sample(log_pi, mu, log_sigma, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            mdn_sample(log_pi, mu, log_sigma, bad)


def test_teacher_forcing_pairs_shift_by_one():
    z = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    a = -torch.arange(2 * 4 * 2, dtype=torch.float32).view(2, 4, 2)
    inputs, targets = teacher_forcing_pairs(z, a)
    assert inputs.shape == (2, 3, 5) and targets.shape == (2, 3, 3)
    assert torch.equal(inputs[:, :, :3], z[:, :3]) and torch.equal(inputs[:, :, 3:], a[:, :3])
    assert torch.equal(targets, z[:, 1:])
    with pytest.raises(ValueError):
        teacher_forcing_pairs(z, a[:, :3])


# --- the model --------------------------------------------------------------------------------


def test_forward_shapes_and_normalised_per_dimension_weights():
    torch.manual_seed(0)
    m = MDNRNN(SMALL)
    out = m(torch.randn(3, 5, 4), torch.randn(3, 5, 2))
    for x in (out.log_pi, out.mu, out.log_sigma):
        assert x.shape == (3, 5, 4, 3)
    assert out.reward.shape == (3, 5) and out.done_logit.shape == (3, 5)
    assert out.state.h.shape == (3, 16) and out.state.c.shape == (3, 16)
    torch.testing.assert_close(out.log_pi.exp().sum(-1), torch.ones(3, 5, 4))
    # Each latent dimension has its own mixture weights (the paper's per-dimension mixture).
    assert not torch.allclose(out.log_pi[..., 0, :], out.log_pi[..., 1, :])


def test_heads_absent_when_not_asked_for():
    m = MDNRNN(dataclasses.replace(SMALL, predict_reward=False, predict_done=False))
    out = m.step(torch.randn(2, 4), torch.randn(2, 2))
    assert out.reward is None and out.done_logit is None


def test_parameter_count_of_paper_car_model():
    Z, A, H, K = 32, 3, 256, 5
    lstm = 4 * H * (Z + A) + 4 * H * H + 8 * H
    heads = H * 3 * Z * K + 3 * Z * K
    assert MDNRNN(MDNRNNConfig()).num_params == lstm + heads == 423_392


def test_step_by_step_equals_whole_sequence():
    torch.manual_seed(1)
    m = MDNRNN(SMALL).eval()
    z, a = torch.randn(2, 6, 4), torch.randn(2, 6, 2)
    whole = m(z, a)
    state = m.initial_state(2)
    for t in range(6):
        out = m.step(z[:, t], a[:, t], state)
        state = out.state
        for name in ("log_pi", "mu", "log_sigma", "reward", "done_logit"):
            torch.testing.assert_close(getattr(out, name), getattr(whole, name)[:, t])
    torch.testing.assert_close(state.h, whole.state.h)
    torch.testing.assert_close(state.c, whole.state.c)


def test_state_carries_memory_across_calls():
    torch.manual_seed(2)
    m = MDNRNN(SMALL).eval()
    z, a = torch.randn(2, 6, 4), torch.randn(2, 6, 2)
    first = m(z[:, :3], a[:, :3])
    second = m(z[:, 3:], a[:, 3:], first.state)
    torch.testing.assert_close(second.mu, m(z, a).mu[:, 3:])
    fresh = m(z[:, 3:], a[:, 3:])
    assert not torch.allclose(fresh.mu, second.mu)  # the memory matters


def test_batched_step_rows_are_independent():
    torch.manual_seed(3)
    m = MDNRNN(SMALL).eval()
    z, a = torch.randn(5, 4), torch.randn(5, 2)
    state = LSTMState(torch.randn(5, 16), torch.randn(5, 16))
    batched = m.step(z, a, state)
    single = m.step(z[2:3], a[2:3], LSTMState(state.h[2:3], state.c[2:3]))
    torch.testing.assert_close(batched.mu[2:3], single.mu)
    torch.testing.assert_close(batched.state.h[2:3], single.state.h)


def test_bad_inputs_say_what_was_expected():
    m = MDNRNN(SMALL)
    with pytest.raises(ValueError, match=r"z of shape \(B, 4\)"):
        m.step(torch.randn(2, 5), torch.randn(2, 2))
    with pytest.raises(ValueError, match="one-hot"):
        m.step(torch.randn(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T, 4\)"):
        m(torch.randn(2, 4), torch.randn(2, 2))
    with pytest.raises(ValueError, match="positive"):
        MDNRNN(dataclasses.replace(SMALL, num_mixtures=0))


def test_presets():
    car = preset_config("carracing", 32)
    assert (car.z_dim, car.action_dim, car.hidden_size, car.num_mixtures) == (32, 3, 256, 5)
    pole = preset_config("cartpole-pixels", 16)
    assert pole.action_dim == 2 and pole.predict_done and pole.z_dim == 16
    with pytest.raises(ValueError):
        preset_config("pong", 32)


# --- data: windows and files ------------------------------------------------------------------


def _indexed_episode(T, ep, terminated=True):
    """An episode whose latents and actions hold their own time index, to check alignment."""
    t = np.arange(T + 1, dtype=np.float32)
    term = np.zeros(T, bool)
    term[-1] = terminated
    return {"mu": np.stack([t, np.full(T + 1, ep, np.float32)], 1),
            "logvar": np.zeros((T + 1, 2), np.float32), "actions": np.stack([t[:T], -t[:T]], 1),
            "rewards": t[:T] * 10, "terminated": term}


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_windows_cover_every_transition_once_and_keep_alignment(seed):
    lengths = [5, 70, 32, 33, 1]
    episodes = [_indexed_episode(T, i) for i, T in enumerate(lengths)]
    rng = None if seed is None else np.random.default_rng(seed)
    w = cut_windows(episodes, 32, rng)
    assert w["mu"].shape[1:] == (33, 2) and w["actions"].shape[1:] == (33, 2) and w["mask"].shape[1] == 32
    assert w["mask"].sum() == sum(lengths)
    assert w["terminated"][w["mask"]].sum() == len(lengths)  # every terminal transition is kept
    seen = set()
    for i in range(len(w["mask"])):
        for t in np.flatnonzero(w["mask"][i]):
            z, z_next, act = w["mu"][i, t], w["mu"][i, t + 1], w["actions"][i, t]
            assert z_next[0] == z[0] + 1 and z_next[1] == z[1]  # target is the next latent, same episode
            assert act[0] == z[0]  # a_t goes with z_t
            assert w["rewards"][i, t] == 10 * z[0]
            seen.add((int(z[1]), int(z[0])))
    assert len(seen) == sum(lengths)


def test_windows_shift_between_epochs():
    episodes = [_indexed_episode(100, 0)]
    starts = {int(cut_windows(episodes, 32, np.random.default_rng(s))["mu"][1, 0, 0]) for s in range(10)}
    assert len(starts) > 1


def _save(path, episode):
    np.savez(path, **episode)


def test_load_latent_episodes_one_hot_and_errors(tmp_path):
    ep = _indexed_episode(6, 0)
    ep["actions"] = np.array([0, 1, 1, 0, 1, 0])
    _save(tmp_path / "episode_00000.npz", ep)
    (loaded,) = load_latent_episodes(tmp_path, action_dim=2)
    assert loaded["actions"].shape == (6, 2) and loaded["actions"].dtype == np.float32
    assert np.array_equal(loaded["actions"].argmax(1), ep["actions"])
    with pytest.raises(ValueError, match="action_dim"):
        load_latent_episodes(tmp_path)
    with pytest.raises(ValueError, match="do not fit"):
        load_latent_episodes(tmp_path, action_dim=1)
    with pytest.raises(FileNotFoundError, match="encode"):
        load_latent_episodes(tmp_path / "missing")
    bad = dict(ep)
    del bad["logvar"]
    _save(tmp_path / "bad.npz", bad)
    with pytest.raises(ValueError, match="logvar"):
        load_latent_episodes([tmp_path / "bad.npz"], action_dim=2)


@pytest.mark.parametrize("damage", ["truncated", "flipped bytes", "not a zip"])
def test_a_damaged_encoded_episode_names_its_file_and_the_fix(tmp_path, damage):
    path = tmp_path / "episode_00007.npz"
    np.savez_compressed(path, **_indexed_episode(50, 0))
    data = path.read_bytes()
    if damage == "truncated":  # a run killed while writing, or a full disk
        data = data[: len(data) // 2]
    elif damage == "flipped bytes":
        data = data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:]
    else:
        data = b"episode"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"episode_00007\.npz is (truncated or corrupt|not a readable).*"
                                         r"python -m wmlib encode .*--out " + str(tmp_path)):
        load_latent_episodes(tmp_path, action_dim=2)
    with pytest.raises(ValueError, match="episode_00007.npz"):
        train_mdnrnn(tmp_path, POLE, epochs=1, progress=False)


# --- training ---------------------------------------------------------------------------------


def _pole_episodes(n, seed):
    """Random-policy CartPole where z shows only the positions (cart x, pole angle), scaled to
    about [-1, 1]; the velocities are hidden. The episode ends when the pole falls (or the cart
    leaves): predicting that, or the next angle, takes memory of the previous positions."""
    env = make_env("cartpole")
    env.action_space.seed(seed)
    policy = random_policy(env)
    episodes = []
    for i in range(n):
        ep = play_episode(env, policy, seed=seed * 100_000 + i)
        z = np.stack([ep["observations"][:, 0] / 2.4, ep["observations"][:, 2] / 0.21], 1).astype(np.float32)
        actions = np.eye(2, dtype=np.float32)[ep["actions"]]
        episodes.append({"mu": z, "logvar": np.full_like(z, -6.0), "actions": actions,
                         "rewards": ep["rewards"], "terminated": ep["terminated"]})
    return episodes


POLE = MDNRNNConfig(z_dim=2, action_dim=2, hidden_size=32, num_mixtures=2, predict_done=True,
                    sequence_length=32, batch_size=16, learning_rate=1e-2, done_loss_weight=10.0)


@pytest.mark.slow
def test_done_head_predicts_the_pole_falling_better_than_the_base_rate():
    train, val = _pole_episodes(300, 0), _pole_episodes(60, 1)
    # Floats differ across CPUs, so a run here is one draw from what training can give. With POLE's
    # 32 units at lr 1e-2 for 30 epochs the draws spread widely (over 6 training seeds the 3-step ratio
    # below ran 0.13-0.72 at temperature 0.1 and 0.40-1.08 at 1.0; CI's CPU drew 1.28 on samples at 1.0).
    # 64 units at lr 3e-3 for 40 epochs, over 8 training seeds on one machine: done BCE 0.30-0.42 of the
    # base rate's, recall 0.60-0.85, precision 0.59-0.90, 3-step ratio 0.07-0.42 at temperature 0.1.
    config = dataclasses.replace(POLE, hidden_size=64, learning_rate=3e-3)
    result = train_mdnrnn(train, config, epochs=40, seed=0, progress=False)
    assert len(result.history) == 40 and result.history[-1]["nll"] < result.history[0]["nll"] - 1.0
    scores = evaluate_mdnrnn(result.model, val)
    # Always guessing the base rate (one step in ~22 ends) scores ~0.19 nats; M does far better.
    assert scores["done_bce"] < 0.5 * scores["done_base_bce"], scores
    assert scores["done_recall"] > 0.4 and scores["done_precision"] > 0.5, scores
    # Three steps ahead, M's most likely path (temperature 0.1: near the mixture's modes) beats
    # "nothing changes": it has learned the velocities that z does not show. At temperature 1 the
    # samples add M's own spread, which one step ahead is larger than a step's motion.
    err = imagination_error(result.model, val[:30], 3, samples=4, temperature=0.1)
    assert err["latent_mse"][2] < 0.7 * err["copy_latent_mse"][2], err


def test_resume_matches_an_uninterrupted_run(tmp_path):
    episodes = _pole_episodes(40, 2)
    whole = train_mdnrnn(episodes, POLE, epochs=3, seed=5, progress=False).model
    stem = tmp_path / "m"
    train_mdnrnn(episodes, POLE, epochs=2, seed=5, checkpoint=stem, progress=False)
    assert set(read_unit(stem).files) == {"weights", "optimizer"}  # one unit: weights, Adam's state, JSON
    resumed = train_mdnrnn(episodes, POLE, epochs=3, seed=5, checkpoint=stem, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for (name, a), b in zip(whole.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    with pytest.raises(CheckpointError, match="trained with"):
        train_mdnrnn(episodes, dataclasses.replace(POLE, hidden_size=8), epochs=4, checkpoint=stem,
                     progress=False)


def test_validate_scores_join_the_history_under_val_names():
    train, val = _pole_episodes(12, 3), _pole_episodes(4, 4)
    result = train_mdnrnn(train, POLE, epochs=2, seed=6, validate=held_out_scores(val, seed=6), progress=False)
    last = result.history[-1]
    assert {k for k in last if k.startswith("val_")} == {"val_nll", "val_done_bce", "val_done_base_bce"}
    # the scores of the model as it was after the last epoch, on the held-out episodes with that seed
    full = evaluate_mdnrnn(result.model, val, seed=6)
    assert last["val_nll"] == full["nll"] and last["val_done_bce"] == full["done_bce"]
    assert "val_nll" not in train_mdnrnn(train, POLE, epochs=1, seed=6, progress=False).history[0]


def test_resume_refuses_other_data_unless_asked(tmp_path):
    stem = tmp_path / "m"
    train_mdnrnn(_pole_episodes(20, 1), POLE, epochs=1, seed=5, checkpoint=stem, progress=False)
    other = _pole_episodes(20, 2)
    with pytest.raises(CheckpointError, match="other data"):
        train_mdnrnn(other, POLE, epochs=2, seed=5, checkpoint=stem, progress=False)
    # the iterative pipeline grows M's data every round and continues on purpose
    more = train_mdnrnn(other, POLE, epochs=2, seed=5, checkpoint=stem, progress=False, continue_on_new_data=True)
    assert [h["epoch"] for h in more.history] == [1, 2]


def test_training_rejects_mismatched_config():
    with pytest.raises(ValueError, match="z_dim"):
        train_mdnrnn(_pole_episodes(2, 3), dataclasses.replace(POLE, z_dim=3), epochs=1, progress=False)


def test_training_uses_the_given_loss_and_pairs():
    calls = {"nll": 0, "pairs": 0}

    def nll(*args):
        calls["nll"] += 1
        return mdn_nll(*args)

    def pairs(z, a):
        calls["pairs"] += 1
        return teacher_forcing_pairs(z, a)

    train_mdnrnn(_pole_episodes(4, 4), POLE, epochs=1, nll_fn=nll, pairs_fn=pairs, progress=False)
    assert calls["nll"] >= 1 and calls["pairs"] == calls["nll"]


# --- imagination ------------------------------------------------------------------------------


def test_memory_states_match_forward():
    torch.manual_seed(4)
    m = MDNRNN(SMALL).eval()
    z, a = torch.randn(7, 4), torch.randn(6, 2)
    states = memory_states(m, z, a)
    assert states.h.shape == (7, 16)
    assert torch.equal(states.h[0], torch.zeros(16))
    torch.testing.assert_close(states.h[4], m(z[None, :4], a[None, :4]).state.h[0])


def test_imagine_shapes_and_determinism():
    torch.manual_seed(5)
    m = MDNRNN(SMALL).eval()
    z0, actions = torch.randn(3, 4), torch.randn(3, 7, 2)
    a = imagine(m, z0, actions, temperature=1.2, generator=torch.Generator().manual_seed(0))
    b = imagine(m, z0, actions, temperature=1.2, generator=torch.Generator().manual_seed(0))
    assert a["z"].shape == (3, 7, 4) and a["done_prob"].shape == (3, 7) and a["reward"].shape == (3, 7)
    assert torch.equal(a["z"], b["z"])
    assert ((a["done_prob"] >= 0) & (a["done_prob"] <= 1)).all()


def test_imagination_error_counts_and_copy_baseline():
    torch.manual_seed(6)
    m = MDNRNN(dataclasses.replace(SMALL, z_dim=2)).eval()
    episodes = [_indexed_episode(5, 0), _indexed_episode(3, 1)]
    err = imagination_error(m, episodes, 4, samples=2, decode=lambda z: z[:, :, None, None])
    assert list(err["count"]) == [8, 6, 4, 2]
    # Copying z_s to every later step errs by n on the time coordinate: mean over 2 dims = n^2 / 2.
    np.testing.assert_allclose(err["copy_latent_mse"], np.arange(1, 5) ** 2 / 2)
    # With an identity "decoder" the frame errors are the latent errors.
    np.testing.assert_allclose(err["copy_frame_mse"], err["copy_latent_mse"], rtol=1e-6)
    np.testing.assert_allclose(err["frame_mse"], err["latent_mse"], rtol=1e-5)
    assert np.all(err["latent_mse"] > 0)
    some = imagination_error(m, episodes, 4, samples=2, decode=lambda z: z[:, :, None, None], frame_horizons=[1, 3])
    np.testing.assert_allclose(some["copy_frame_mse"][[0, 2]], err["copy_frame_mse"][[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(some["latent_mse"], err["latent_mse"], rtol=1e-5)  # same seed, same dreams
    np.testing.assert_allclose(some["frame_mse"][[0, 2]], err["frame_mse"][[0, 2]], rtol=1e-5)
    assert np.isnan(some["frame_mse"][[1, 3]]).all()
    time_only = imagination_error(m, episodes, 4, samples=2, latent_dims=[0])
    np.testing.assert_allclose(time_only["copy_latent_mse"], np.arange(1, 5) ** 2)  # all the error is in dim 0
    with pytest.raises(ValueError):
        imagination_error(m, episodes, 0)
    with pytest.raises(ValueError, match="frame_horizons"):
        imagination_error(m, episodes, 4, decode=lambda z: z, frame_horizons=[5])


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_clear_errors(tmp_path, monkeypatch):
    torch.manual_seed(7)
    m = MDNRNN(SMALL).eval()
    save_checkpoint(m, SMALL, tmp_path / "m", metadata={"command": "python -m wmlib train-mdnrnn ..."})
    loaded = load_mdnrnn(str(tmp_path / "m"))
    z, a = torch.randn(2, 3, 4), torch.randn(2, 3, 2)
    torch.testing.assert_close(loaded(z, a).mu, m(z, a).mu)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_mdnrnn(str(tmp_path / "missing"))
    import wmlib.checkpoints

    monkeypatch.setattr(wmlib.checkpoints, "assets_dir", lambda: tmp_path)
    with pytest.raises(CheckpointError, match="train-mdnrnn --env cartpole-pixels"):
        load_mdnrnn("cartpole")
    (tmp_path / "cartpole_mdnrnn.json").write_text((tmp_path / "m.json").read_text())
    (tmp_path / "cartpole_mdnrnn.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="rebuild it with"):
        load_mdnrnn("cartpole")


@pytest.mark.slow
def test_shipped_cartpole_m_predicts_the_pole_falling():
    """The shipped V + M on fresh random pixel episodes (seeds no training episode used)."""
    vae, m = load_vae("cartpole"), load_mdnrnn("cartpole")
    assert m.config.predict_done and m.config.z_dim == vae.config.z_dim and m.config.action_dim == 2
    env = make_env("cartpole-pixels")
    env.action_space.seed(123)
    policy = random_policy(env)
    episodes = [play_episode(env, policy, seed=200_000 + i) for i in range(20)]
    env.close()
    scores = evaluate_mdnrnn(m, encode_episodes(vae, episodes, 2))
    assert scores["done_bce"] < 0.6 * scores["done_base_bce"], scores
    assert scores["done_recall"] > 0.4 and scores["done_precision"] > 0.4, scores


@pytest.mark.parametrize("name", ["cartpole", "carracing"])
def test_shipped_m_records_its_command_and_fits_its_v(name):
    from wmlib.checkpoints import read_metadata
    from wmlib.tasks import shipped_checkpoint
    from wmlib.vae import load_vae

    meta = read_metadata(name, "mdnrnn")
    assert meta["command"] in shipped_checkpoint(f"{name}_mdnrnn").command
    assert meta["seed"] == 0 and meta["epochs_done"] == len(meta["history"]) == 100
    m, vae = load_mdnrnn(name), load_vae(name)
    assert m.config.z_dim == vae.config.z_dim
    assert (m.config.hidden_size, m.config.num_mixtures) == ((64, 5) if name == "cartpole" else (256, 5))
