"""Chapter 8's library: lambda-returns, the straight-through mixture sample, gradients through M, the actor."""

import numpy as np
import pytest
import torch

from wmlib.beyond import (
    Actor,
    Critic,
    ImaginationConfig,
    actor_dream_returns,
    imagine,
    lambda_return,
    reach_weights,
    straight_through_mixture_sample,
    train_actor_with_cmaes,
    train_in_imagination,
)
from wmlib.config import CMAESConfig, ControllerConfig, DreamConfig, MDNRNNConfig, SettingError
from wmlib.dream import StartLatents, mdn_sample_from_noise
from wmlib.mdnrnn import MDNRNN

Z, H = 4, 8


def _parts(hidden=0, seed=0):
    torch.manual_seed(seed)
    m = MDNRNN(MDNRNNConfig(z_dim=Z, action_dim=2, hidden_size=H, num_mixtures=3, predict_done=True)).eval()
    starts = StartLatents(torch.randn(5, Z), torch.full((5, Z), -2.0))
    c = ControllerConfig(z_dim=Z, h_dim=H, action_dim=1, action_map="discrete")
    actor = Actor(c, np.zeros(Z + H), np.ones(Z + H), hidden)
    return m, starts, actor


# --- lambda-returns -------------------------------------------------------------------------


def test_lambda_return_matches_a_hand_computation():
    # T = 2, gamma 0.5, lam 0.5, c = (1, 0.5), r = (1, 2), v = (0, 4, 8):
    # R_2 = 8;  R_1 = 2 + 0.5 * 0.5 * (0.5 * 8 + 0.5 * 8) = 4;  R_0 = 1 + 0.5 * 1 * (0.5 * 4 + 0.5 * 4) = 3
    r, c, v = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0, 4.0, 8.0]])
    torch.testing.assert_close(lambda_return(r, c, v, 0.5, 0.5), torch.tensor([[3.0, 4.0]]))


def test_lambda_return_limits():
    g = torch.Generator().manual_seed(0)
    r, c, v = torch.rand(3, 5, generator=g), torch.rand(3, 5, generator=g), torch.randn(3, 6, generator=g)
    # lam = 0: one step, then the critic
    torch.testing.assert_close(lambda_return(r, c, v, 0.9, 0.0), r + 0.9 * c * v[:, 1:])
    # lam = 1: every reward to the horizon, discounted by gamma and the continuations, then v_T
    expected = torch.zeros(3, 5)
    for t in range(5):
        total, discount = torch.zeros(3), torch.ones(3)
        for s in range(t, 5):
            total += discount * r[:, s]
            discount = discount * 0.9 * c[:, s]
        expected[:, t] = total + discount * v[:, 5]
    torch.testing.assert_close(lambda_return(r, c, v, 0.9, 1.0), expected)


def test_lambda_return_refuses_wrong_value_length():
    with pytest.raises(ValueError, match=r"\(B, T\+1\)"):
        lambda_return(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 3), 0.9, 0.9)


def test_reach_weights():
    c = torch.tensor([[0.5, 0.5, 1.0]])
    torch.testing.assert_close(reach_weights(c, 0.9), torch.tensor([[1.0, 0.45, 0.45 * 0.45]]))


# --- the straight-through mixture sample ----------------------------------------------------


def test_straight_through_sample_equals_the_dreams_sample():
    g = torch.Generator().manual_seed(1)
    logits, mu, log_sigma = (torch.randn(6, Z, 3, generator=g) for _ in range(3))
    u, eps = torch.rand(6, Z, generator=g), torch.randn(6, Z, generator=g)
    for tau in (0.5, 1.0, 1.3):
        torch.testing.assert_close(straight_through_mixture_sample(logits, mu, log_sigma, tau, u, eps),
                                   mdn_sample_from_noise(logits, mu, log_sigma, tau, u, eps))


def test_straight_through_sample_gradients():
    g = torch.Generator().manual_seed(2)
    logits, mu, log_sigma = (torch.randn(1, 3, generator=g).requires_grad_() for _ in range(3))
    u, eps = torch.tensor([0.99]), torch.tensor([0.7])  # u near 1: the last component is chosen
    z = straight_through_mixture_sample(logits, mu, log_sigma, 1.0, u, eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.tensor([[0.0, 0.0, 1.0]]))  # only the chosen mean moves z
    torch.testing.assert_close(log_sigma.grad[0, 2], log_sigma[0, 2].exp().detach() * 0.7)
    assert logits.grad.abs().sum() > 0  # the choice passes a (straight-through) gradient too


# --- gradients really flow through M into the actor -----------------------------------------


@pytest.mark.parametrize("hidden", [0, 16])
def test_actor_gets_gradients_only_through_m(hidden):
    m, starts, actor = _parts(hidden)
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # a non-neutral actor, so the pushes differ from one state to another
        for p in actor.parameters():
            p.normal_(0, 0.5)
    grads = {}
    for through in (True, False):
        actor.zero_grad()
        im = imagine(m, actor, starts.mu[:4], m.initial_state(4), 6, 1.0, torch.Generator().manual_seed(0),
                     through_model=through)
        returns = lambda_return(im.rewards, im.continues, torch.zeros(4, 7), 0.99, 0.95)  # imagined returns only
        loss = -returns[:, 0].mean()
        if loss.requires_grad:  # cut at M, the loss has no path back to the actor at all
            loss.backward()
        grads[through] = [p.grad for p in actor.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads[True])
    assert all(g is None or g.abs().sum() == 0 for g in grads[False])
    assert all(p.grad is None for p in m.parameters())  # M stays frozen


def test_imagine_needs_a_done_head():
    torch.manual_seed(0)
    m = MDNRNN(MDNRNNConfig(z_dim=Z, action_dim=2, hidden_size=H, num_mixtures=3))
    _, starts, actor = _parts()
    with pytest.raises(ValueError, match="done head"):
        imagine(m, actor, starts.mu[:2], m.initial_state(2), 3, 1.0, torch.Generator())


# --- the actor ------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [0, 5])
def test_batched_logits_match_forward(hidden):
    _, _, actor = _parts(hidden)
    params = torch.randn(3, actor.num_params, dtype=torch.float64)
    x = torch.randn(3, 7, Z + H)
    batched = actor.batched_logits(params.float(), x)
    for i in range(3):
        actor.set_flat_params(params[i].numpy())
        torch.testing.assert_close(batched[i], actor(x[i]))
    np.testing.assert_allclose(actor.get_flat_params(), params[2].numpy(), rtol=1e-6)


def test_linear_actor_is_chapter_4s_controller():
    _, _, actor = _parts()
    actor = Actor(actor.config, np.arange(Z + H) * 0.1, np.linspace(0.5, 2.0, Z + H), 0)
    actor.set_flat_params(np.random.default_rng(0).normal(size=actor.num_params))
    c = actor.to_linear_controller()
    x = torch.randn(50, Z + H)
    y = c(x[:, :Z], x[:, Z:])[:, 0]
    assert torch.equal(y > 0, actor(x) > 0)
    assert actor.num_params == c.num_params == Z + H + 1


def test_actor_refuses_a_bad_config():
    c = ControllerConfig(z_dim=Z, h_dim=H, action_dim=3, action_map="carracing")
    with pytest.raises(ValueError, match="one output"):
        Actor(c, np.zeros(Z + H), np.ones(Z + H))
    c = ControllerConfig(z_dim=Z, h_dim=H, action_dim=1, action_map="discrete")
    with pytest.raises(ValueError, match="input_mean"):
        Actor(c, np.zeros(Z), np.ones(Z))


def test_actor_dream_returns_are_the_same_batched_or_alone():
    m, starts, actor = _parts(4)
    params = np.random.default_rng(1).normal(size=(3, actor.num_params))
    config = DreamConfig(max_steps=40)
    together = actor_dream_returns(m, starts, actor, params, [5, 6], config)
    for i in range(3):
        alone = actor_dream_returns(m, starts, actor, params[i : i + 1], [5, 6], config)
        np.testing.assert_array_equal(together.returns[i], alone.returns[0])
    assert together.returns.shape == (3, 2) and (together.steps >= 1).all() and (together.steps <= 40).all()


# --- the two trainers -----------------------------------------------------------------------


def test_both_trainers_run_and_count_dream_steps():
    m, starts, actor = _parts()
    config = ImaginationConfig(horizon=4, batch_size=8, updates=3, eval_every=2, eval_dreams=4, max_steps=20)
    run = train_in_imagination(m, starts, actor, Critic(np.zeros(Z + H), np.ones(Z + H), 8), config,
                               eval_seeds=range(4), progress=False)
    assert run.dream_steps == 3 * 8 * 4 and [h["step"] for h in run.history] == [2, 3]
    assert any(np.any(p != 0) for p in actor.get_flat_params())  # the zero actor moved
    assert all(p.requires_grad for p in m.parameters())  # M's flags are restored
    m, starts, actor = _parts()
    cma = train_actor_with_cmaes(m, starts, actor, CMAESConfig(population_size=4, rollouts_per_candidate=2,
                                                                generations=2), DreamConfig(max_steps=20),
                                 eval_seeds=range(4), target_score=None, progress=False)
    assert [h["step"] for h in cma.history] == [1, 2] and cma.dream_steps > 0


def test_trainers_stop_at_the_budget_or_the_target():
    m, starts, actor = _parts()
    config = ImaginationConfig(horizon=4, batch_size=8, updates=50, eval_every=1, max_steps=20, target_score=None)
    critic = Critic(np.zeros(Z + H), np.ones(Z + H), 8)
    run = train_in_imagination(m, starts, actor, critic, config, eval_seeds=range(2), max_dream_steps=70,
                               progress=False)
    assert run.dream_steps == 96 and len(run.history) == 3  # the update that crosses 70 (3 x 32) finishes
    m, starts, actor = _parts()
    config = ImaginationConfig(horizon=4, batch_size=8, updates=50, eval_every=1, max_steps=20, target_score=0.0)
    run = train_in_imagination(m, starts, actor, critic, config, eval_seeds=range(2), progress=False)
    assert run.reached is run.history[0] and len(run.history) == 1  # every score reaches 0: stops at once
    run = train_in_imagination(m, starts, actor, critic, config, eval_seeds=range(2), stop_at_target=False,
                               max_dream_steps=64, progress=False)
    assert run.reached is run.history[0] and len(run.history) == 2


def test_imagination_config_refuses_bad_values():
    with pytest.raises(SettingError, match="gamma"):
        ImaginationConfig(gamma=1.5)
    with pytest.raises(SettingError, match="horizon"):
        ImaginationConfig(horizon=0)
