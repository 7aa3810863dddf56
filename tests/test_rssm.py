"""Chapter 8's tiny RSSM: shapes, the KL with free bits, gradients through imagination, a loss that falls."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from wmlib.beyond.config import DreamerConfig, RSSMConfig
from wmlib.beyond.dreamer import Replay, evaluate, imagine_rssm, make_learner, train_dreamer, train_step
from wmlib.beyond.rssm import RSSM, Gaussian, State, balanced_kl, kl_free_bits, world_model_loss
from wmlib.config import SettingError
from wmlib.envs import make_env
from wmlib.rollouts import play_episode

SMALL = RSSMConfig(deter_dim=16, stoch_dim=4, hidden=16, depth=4)


def _episode(length: int, seed: int, terminated: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    return {"frames": rng.integers(0, 256, (length + 1, 64, 64, 3), dtype=np.uint8),
            "actions": rng.integers(0, 2, length), "rewards": np.ones(length, np.float32),
            "terminated": np.array([False] * (length - 1) + [terminated]),
            "truncated": np.array([False] * (length - 1) + [not terminated])}


def _batch(B=3, T=5, seed=0):
    replay = Replay(2)
    for i in range(3):
        replay.add(_episode(6 + i, seed + i, terminated=i != 1))
    return replay.sample(B, T, np.random.default_rng(seed))


# --- shapes -----------------------------------------------------------------------------------


def test_shapes_of_observe_decode_heads_and_imagination():
    torch.manual_seed(0)
    model = RSSM(SMALL)
    b = _batch(B=3, T=5)
    assert b["frames"].shape == (3, 5, 64, 64, 3) and b["prev_actions"].shape == (3, 5, 2)
    out = model.observe(b["frames"], b["prev_actions"], b["firsts"])
    assert out.h.shape == (3, 5, 16) and out.s.shape == (3, 5, 4)
    assert out.post.mean.shape == out.post.std.shape == out.prior.mean.shape == (3, 5, 4)
    assert bool((out.post.std >= SMALL.min_std).all()) and bool((out.prior.std >= SMALL.min_std).all())
    feats = out.features()
    assert feats.shape == (3, 5, 20)
    assert model.decode(feats).shape == (3, 5, 3, 64, 64)
    assert model.reward(feats).shape == (3, 5) and model.continue_prob(feats).shape == (3, 5)
    learner = make_learner(DreamerConfig(rssm=SMALL, actor_hidden=8, critic_hidden=8))
    start = State(out.h.detach().reshape(-1, 16), out.s.detach().reshape(-1, 4))
    im = imagine_rssm(learner.model, learner.actor, start, horizon=7)
    assert im.x.shape == (15, 8, 20)
    assert im.rewards.shape == im.continues.shape == im.entropy.shape == (15, 7)


def test_observe_refuses_mismatched_inputs():
    model = RSSM(SMALL)
    b = _batch()
    with pytest.raises(ValueError, match="prev_actions"):
        model.observe(b["frames"], b["prev_actions"][:, :, :1], b["firsts"])
    with pytest.raises(ValueError, match="64, 64, 3"):
        model.encode(torch.zeros(2, 32, 32, 3, dtype=torch.uint8))


def test_replay_rows_follow_the_episode_layout():
    replay = Replay(2, capacity=4)  # grows past its first capacity
    ep = _episode(6, 0)
    replay.add(ep)
    replay.add(_episode(3, 1, terminated=False))
    assert replay.n == 7 + 4
    assert replay.firsts[:11].tolist() == [True] + [False] * 6 + [True] + [False] * 3
    assert replay.terminals[:11].tolist() == [False] * 6 + [True] + [False] * 4  # a time limit is no end
    np.testing.assert_array_equal(replay.frames[:7], ep["frames"])
    np.testing.assert_array_equal(replay.actions[1:7].argmax(1), ep["actions"])
    assert replay.actions[0].sum() == 0 and replay.rewards[0] == 0 and replay.rewards[1:7].sum() == 6
    assert replay.sample(4, 5, np.random.default_rng(0))["firsts"][:, 0].all()


def test_a_first_frame_resets_the_state():
    torch.manual_seed(0)
    model = RSSM(SMALL)
    b = _batch(B=2, T=4)
    fresh = model.observe(b["frames"][:, 2:], b["prev_actions"][:, 2:], torch.ones(2, 2, dtype=torch.bool) &
                          torch.tensor([True, False]), generator=torch.Generator().manual_seed(1))
    firsts = torch.zeros(2, 4, dtype=torch.bool)
    firsts[:, 0] = firsts[:, 2] = True
    full = model.observe(b["frames"], b["prev_actions"], firsts, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(full.h[:, 2], fresh.h[:, 0])  # what came before step 2 is forgotten


# --- the KL with free bits --------------------------------------------------------------------


def _gaussians(seed, shape=(5, 6)):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g), 0.3 + torch.rand(*shape, generator=g),
            torch.randn(*shape, generator=g), 0.3 + torch.rand(*shape, generator=g))


@pytest.mark.parametrize("free", [0.0, 1.0, "median", 1e3])
def test_kl_free_bits_matches_torch_distributions_clamped(free):
    mq, sq, mp, sp = _gaussians(0)
    raw = kl_divergence(Normal(mq, sq), Normal(mp, sp)).sum(-1)
    free = float(raw.median()) if free == "median" else free  # some elements clamped, some not
    torch.testing.assert_close(kl_free_bits(mq, sq, mp, sp, free), raw.clamp(min=free))


def test_free_bits_clamp_the_sum_and_stop_the_gradient_below_it():
    mq, sq, mp, sp = _gaussians(1, shape=(2, 3))
    mq = mq.clone().requires_grad_(True)
    raw = kl_divergence(Normal(mq, sq), Normal(mp, sp)).sum(-1).detach()
    free = float(raw.mean())  # one element below the budget, one above (checked next)
    assert bool((raw < free).any() and (raw > free).any())
    kl_free_bits(mq, sq, mp, sp, free).sum().backward()
    below = raw < free
    assert float(mq.grad[below].abs().sum()) == 0.0
    assert float(mq.grad[~below].abs().sum()) > 0.0
    with pytest.raises(ValueError, match="same shape"):
        kl_free_bits(mq, sq, mp[:, :2], sp, 1.0)


def test_kl_balancing_keeps_the_value_and_shares_the_gradient():
    mq, sq, mp, sp = (t.clone().requires_grad_(True) for t in _gaussians(2))
    post, prior = Gaussian(mq, sq), Gaussian(mp, sp)
    value = balanced_kl(post, prior, 0.0, 0.8)
    torch.testing.assert_close(value, kl_free_bits(mq, sq, mp, sp, 0.0))
    value.sum().backward()
    q_grad, p_grad = mq.grad.clone(), mp.grad.clone()
    plain = [t.detach().clone().requires_grad_(True) for t in (mq, mp)]
    kl_free_bits(plain[0], sq.detach(), plain[1], sp.detach(), 0.0).sum().backward()
    torch.testing.assert_close(q_grad, 0.2 * plain[0].grad)
    torch.testing.assert_close(p_grad, 0.8 * plain[1].grad)


# --- gradients through the imagined latents ---------------------------------------------------


def test_the_imagined_return_reaches_the_actor_through_the_rssm():
    torch.manual_seed(0)
    learner = make_learner(DreamerConfig(rssm=SMALL, actor_hidden=8, critic_hidden=8))
    with torch.no_grad():
        learner.actor.layers[-1].weight.normal_(0, 0.5)  # a non-neutral actor
    start = learner.model.initial_state(6)
    im = imagine_rssm(learner.model, learner.actor, start, horizon=5, generator=torch.Generator().manual_seed(0))
    im.continues.sum().backward()  # the imagined survival: only the RSSM's heads and latents connect it to the actor
    grads = [p.grad for p in learner.actor.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # Cut the latents' graph: the continuation no longer depends on the actor at all
    learner.actor.zero_grad()
    model = learner.model
    state, xs = start, []
    for _ in range(5):
        p = torch.sigmoid(learner.actor(state.features()))
        push = (p > 0.5).float() + p - p.detach()
        state = State(*(t.detach() for t in model.img_step(state, torch.stack([1 - push, push], 1))))
        xs.append(state.features())
    model.continue_prob(torch.stack(xs, 1)).sum().backward()
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in learner.actor.parameters())


def test_train_step_moves_the_actor_and_not_the_world_model_by_the_actor_loss():
    torch.manual_seed(0)
    config = DreamerConfig(rssm=SMALL, batch_size=3, seq_len=5, horizon=4, actor_hidden=8, critic_hidden=8)
    learner = make_learner(config)
    before = [p.detach().clone() for p in learner.actor.parameters()]
    out = train_step(learner, _batch(), config, torch.Generator().manual_seed(0))
    assert {"total", "reconstruction", "reward", "continuation", "kl"} <= set(out)
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.actor.parameters(), strict=True))
    assert all(p.requires_grad for p in learner.model.parameters())  # unfrozen again


# --- the loss falls ---------------------------------------------------------------------------


def test_world_model_loss_falls_on_a_tiny_data_set():
    torch.manual_seed(0)
    model = RSSM(SMALL)
    env = make_env("cartpole-pixels")
    replay = Replay(2)
    for seed in range(2):  # two short random episodes of real pixel CartPole
        replay.add(play_episode(env, lambda obs, info: env.action_space.sample(), seed=seed, max_steps=12))
    b = replay.sample(4, 8, np.random.default_rng(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def loss():
        out = model.observe(b["frames"], b["prev_actions"], b["firsts"], generator=g)
        return world_model_loss(model, out, b["frames"], b["rewards"], b["terminals"], b["firsts"])

    with torch.no_grad():
        first = loss()
    for _ in range(40):
        parts = loss()
        opt.zero_grad()
        parts.total.backward()
        opt.step()
    with torch.no_grad():
        last = loss()
    assert float(last.total) < 0.5 * float(first.total)
    assert float(last.reconstruction) < 0.5 * float(first.reconstruction)
    assert float(last.reward) < float(first.reward)


# --- the loop and the config ------------------------------------------------------------------


def test_train_dreamer_counts_every_real_step_within_the_budget():
    config = DreamerConfig(rssm=SMALL, real_step_budget=120, random_episodes=2, train_every=40,
                           pretrain_updates=1, batch_size=2, seq_len=4, horizon=3, actor_hidden=4,
                           critic_hidden=4, eval_every=60, eval_episodes=1, check_episodes=2)
    result = train_dreamer(config, seed=0, progress=False)
    assert result.real_steps == 120
    assert result.curve and result.curve[-1]["real_steps"] == 120
    assert len(result.final["returns"]) == 2 and result.final["mean"] > 0
    assert len(result.losses) >= 2  # the pretraining update, then one per 40 of the actor's real steps
    assert all(0 < row["real_steps"] <= 120 for row in result.losses)


def test_evaluate_reports_imagined_and_real_values():
    learner = make_learner(DreamerConfig(rssm=SMALL, actor_hidden=4, critic_hidden=4))
    ev = evaluate(learner, 2, max_steps=20)
    assert len(ev["returns"]) == 2 and ev["env_steps"] == sum(ev["returns"])
    assert 0 < ev["real_discounted"] <= 20 and np.isfinite(ev["imagined_value"])


@pytest.mark.parametrize("kwargs, match", [
    ({"free_nats": -1.0}, "free_nats"),
    ({"kl_balance": 1.5}, "kl_balance"),
    ({"stoch_dim": 0}, "stoch_dim"),
    ({"min_std": 0.0}, "min_std"),
    ({"depth": 2.5}, "depth"),
])
def test_rssm_config_errors_name_the_setting(kwargs, match):
    with pytest.raises(SettingError, match=match):
        RSSMConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"real_step_budget": 0}, "real_step_budget"),
    ({"seq_len": 1}, "seq_len"),
    ({"gamma": 0.0}, "gamma"),
    ({"lam": 1.2}, "lam"),
    ({"check_episodes": -1}, "check_episodes"),
])
def test_dreamer_config_errors_name_the_setting(kwargs, match):
    with pytest.raises(SettingError, match=match):
        DreamerConfig(**kwargs)
    with pytest.raises(TypeError, match="RSSMConfig"):
        DreamerConfig(rssm={"depth": 8})
