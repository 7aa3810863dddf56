"""C: parameter counts, the flat-parameter round trip, the action maps, and clear errors."""

import dataclasses

import numpy as np
import pytest
import torch

from wmlib.config import ControllerConfig
from wmlib.controller import LinearController, controller_config_for, controller_param_count, map_action


def test_paper_car_has_867_parameters():
    c = LinearController(ControllerConfig())
    assert c.num_params == 867
    assert sum(p.numel() for p in c.parameters()) == 867
    assert c.get_flat_params().shape == (867,)


def test_v_only_ablation_has_99_parameters():
    assert LinearController(dataclasses.replace(ControllerConfig(), h_dim=0)).num_params == 99
    assert controller_param_count(32, 0, 3) == 99


def test_flat_params_round_trip_and_layout():
    c = LinearController(ControllerConfig(z_dim=3, h_dim=2, action_dim=2, action_map="identity"))
    flat = np.arange(c.num_params, dtype=np.float64) / 10
    c.set_flat_params(flat)
    np.testing.assert_allclose(c.get_flat_params(), flat, rtol=1e-6)
    # W row by row, then b
    np.testing.assert_allclose(c.weight.detach().numpy(), flat[:10].reshape(2, 5), rtol=1e-6)
    np.testing.assert_allclose(c.bias.detach().numpy(), flat[10:], rtol=1e-6)


def test_forward_is_tanh_of_affine_map_on_z_then_h():
    cfg = ControllerConfig(z_dim=4, h_dim=3, action_dim=2, action_map="identity")
    c = LinearController(cfg)
    rng = np.random.default_rng(0)
    c.set_flat_params(rng.normal(size=c.num_params))
    z, h = torch.randn(5, 4), torch.randn(5, 3)
    W, b = c.weight.detach(), c.bias.detach()
    expected = torch.tanh(z @ W[:, :4].T + h @ W[:, 4:].T + b)
    torch.testing.assert_close(c(z, h).detach(), expected)


@pytest.mark.parametrize("length", [866, 868, 0])
def test_wrong_length_is_a_clear_error(length):
    c = LinearController(ControllerConfig())
    msg = r"867 controller parameters.*\(\(32 \+ 256\) \* 3 weights \+ 3 biases\)"
    with pytest.raises(ValueError, match=msg):
        c.set_flat_params(np.zeros(length))


def test_two_dimensional_or_nan_params_are_rejected():
    c = LinearController(ControllerConfig())
    with pytest.raises(ValueError, match="flat vector"):
        c.set_flat_params(np.zeros((3, 289)))
    bad = np.zeros(867)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        c.set_flat_params(bad)


def test_wrong_input_sizes_are_clear_errors():
    c = LinearController(ControllerConfig())
    with pytest.raises(ValueError, match=r"z of shape \(B, 32\)"):
        c(torch.zeros(2, 31), torch.zeros(2, 256))
    with pytest.raises(ValueError, match=r"h of shape \(2, 256\)"):
        c(torch.zeros(2, 32), torch.zeros(2, 255))


def test_car_action_map_matches_the_paper_code():
    # steer = tanh, gas = (tanh + 1) / 2, brake = clip(tanh, 0, 1)
    np.testing.assert_allclose(map_action(np.array([-0.3, -1.0, -0.4]), "carracing"), [-0.3, 0.0, 0.0])
    np.testing.assert_allclose(map_action(np.array([0.7, 0.2, 0.6]), "carracing"), [0.7, 0.6, 0.6], rtol=1e-6)
    c = LinearController(ControllerConfig())
    params = np.zeros(867)
    params[-3:] = [10.0, 10.0, -10.0]  # biases: full right, full gas, no brake
    c.set_flat_params(params)
    a = c.act(np.zeros(32), np.zeros(256))
    assert a.shape == (3,) and a.dtype == np.float32
    np.testing.assert_allclose(a, [1.0, 1.0, 0.0], atol=1e-6)
    assert np.all(a[1:] >= 0) and np.all(a[1:] <= 1)


def test_cartpole_controller_is_one_output_sign():
    cfg = controller_config_for("cartpole-pixels", z_dim=8, h_dim=16)
    assert (cfg.action_dim, cfg.action_map) == (1, "discrete")
    c = LinearController(cfg)
    assert c.num_params == 25
    params = np.zeros(25)
    params[0] = 1.0  # weight of z[0]
    c.set_flat_params(params)
    z = np.zeros(8)
    z[0] = 0.5
    assert c.act(z, np.zeros(16)) == 1
    z[0] = -0.5
    assert c.act(z, np.zeros(16)) == 0
    assert map_action(np.array([0.1, 0.9, -0.2]), "discrete") == 1  # argmax when A > 1


def test_z_only_controller_acts_without_h():
    c = LinearController(controller_config_for("cartpole-pixels", z_dim=4, h_dim=0))
    c.set_flat_params(np.array([0.0, 0.0, 0.0, 0.0, 1.0]))
    assert c.act(np.zeros(4)) == 1


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="action_map"):
        LinearController(ControllerConfig(action_map="joystick"))
    with pytest.raises(ValueError, match="action_dim=3"):
        LinearController(ControllerConfig(action_dim=2))
    with pytest.raises(ValueError, match="z_dim"):
        LinearController(ControllerConfig(z_dim=0, h_dim=0))
    with pytest.raises(ValueError, match="no controller layout"):
        controller_config_for("pong", 32, 256)


def test_folding_the_standardisation_gives_the_same_policy():
    from wmlib.controller import fold_standardization, unfold_standardization

    rng = np.random.default_rng(3)
    cfg = ControllerConfig(z_dim=5, h_dim=4, action_dim=3, action_map="identity")
    mean, std = rng.normal(size=9) * 2, rng.uniform(0.01, 2.0, size=9)
    theta = rng.normal(size=(9 + 1) * 3)
    x = torch.from_numpy(rng.normal(size=(6, 9)) * std + mean).float()
    on_standardised = LinearController(cfg)
    on_standardised.set_flat_params(theta)
    expected = on_standardised(((x - torch.from_numpy(mean).float()) / torch.from_numpy(std).float())[:, :5],
                               ((x - torch.from_numpy(mean).float()) / torch.from_numpy(std).float())[:, 5:])
    raw = LinearController(cfg)
    raw.set_flat_params(fold_standardization(theta, mean, std, 3))
    torch.testing.assert_close(raw(x[:, :5], x[:, 5:]), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(unfold_standardization(fold_standardization(theta, mean, std, 3), mean, std, 3),
                               theta, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="expected theta of 30 values"):
        fold_standardization(theta[:-1], mean, std, 3)
