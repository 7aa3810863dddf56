"""The dream player (chapters 5 and 6), driven from Python with a tiny untrained V and M, for every world."""

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

from wmlib.config import DreamConfig, MDNRNNConfig, VAEConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.dream import StartLatents, make_dream
from wmlib.mdnrnn import MDNRNN
from wmlib.vae import ConvVAE, decode_latents
from wmlib.widgets import PNG_SIGNATURE, DreamPlayer

Z, H = 4, 8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return ConvVAE(VAEConfig(z_dim=Z)).eval()


def tiny_m(action_dim=2, done_bias=-6.0):
    torch.manual_seed(1)
    m = MDNRNN(MDNRNNConfig(z_dim=Z, action_dim=action_dim, hidden_size=H, num_mixtures=3,
                            predict_done=True)).eval()
    with torch.no_grad():
        m.done_head.bias.fill_(done_bias)
    return m


def starts():
    g = torch.Generator().manual_seed(2)
    return StartLatents(torch.randn(4, Z, generator=g), torch.full((4, Z), -2.0))


def controller(seed=3):
    c = LinearController(controller_config_for("cartpole-pixels", Z, H))
    c.set_flat_params(np.random.default_rng(seed).normal(size=c.num_params) * 2)
    return c


def cartpole_player(vae, m=None, **kw):
    env = make_dream("cartpole-pixels", m or tiny_m(), starts(), DreamConfig(max_steps=50, done_threshold=0.5), vae=vae,
                     render_mode="rgb_array")
    return DreamPlayer(env, **kw)


def shown_frame(player):
    return decode_latents(player.env.vae, player.env.z)[0]


def test_buttons_drive_the_dream_like_env_steps(vae):
    player = cartpole_player(vae, seed=5)
    assert list(player.buttons) == ["◀ left", "right ▶"]  # y = 0 pushes left too: no "stay"
    assert player.image.value[:8] == PNG_SIGNATURE and player.t == 0
    moves = [1, 1, 0, 1, 0, 0]
    for a in moves:
        player.buttons["right ▶" if a else "◀ left"].click()
    assert player.t == len(moves) and player.total_reward == len(moves)
    # The same actions through a fresh DreamEnv with the same seed give the same dream.
    twin = make_dream("cartpole-pixels", tiny_m(), starts(), DreamConfig(max_steps=50, done_threshold=0.5))
    twin.reset(seed=5)
    for a in moves:
        twin.step(a)
    torch.testing.assert_close(player.env.z, twin.z)
    np.testing.assert_allclose(player.frame, shown_frame(player), atol=2)  # fast decoder vs decode, rounding
    assert "dream step <b>6</b>" in player.caption.value


def test_step_repeats_the_last_action_without_a_controller(vae):
    player = cartpole_player(vae, seed=1)
    assert player.controller_toggle.disabled and not player.controller_on
    player.press("right ▶")
    player.step_button.click()
    assert player.last_action == 1 and player.t == 2
    with pytest.raises(ValueError, match="no controller"):
        player.set(controller_on=True)
    with pytest.raises(ValueError, match="no button 'up'"):
        player.press("up")


def test_controller_drives_when_on_and_the_human_when_off(vae):
    c = controller()
    player = cartpole_player(vae, controller=c, seed=2)
    assert player.controller_on
    for _ in range(5):
        expected = c.act(player.env.z, player.env.h)
        player.step()
        assert player.last_action == expected
    player.set(controller_on=False)
    assert "driven by you" in player.caption.value
    before = player.last_action
    player.step()
    assert player.last_action == before


def test_temperature_slider_changes_the_dream(vae):
    a, b = cartpole_player(vae, seed=3), cartpole_player(vae, seed=3)
    b.set(temperature=1.9)
    assert b.env.temperature == pytest.approx(1.9) and "temperature 1.90" in b.caption.value
    for p in (a, b):
        for _ in range(3):
            p.press("right ▶")
    assert not torch.allclose(a.env.z, b.env.z)


def test_play_steps_on_each_tick_and_stops_at_the_end(vae):
    player = cartpole_player(vae, m=tiny_m(done_bias=-6.0), seed=4)
    player.play.playing = True
    for tick in range(1, 60):
        player.play.value = tick  # what the browser's timer does
    assert player.done and player.t == 50, "the dream is truncated at max_steps=50"
    assert player.play.playing is False
    assert "the dream has ended" in player.caption.value
    np.testing.assert_allclose(player.frame, shown_frame(player), atol=2)
    assert player.step() is False and player.t == 50
    player.reset_button.click()
    assert player.t == 0 and not player.done and player.total_reward == 0


def test_a_done_dream_gets_a_red_border(vae):
    player = cartpole_player(vae, m=tiny_m(done_bias=8.0), seed=0)  # M is sure every step is the last
    player.press("◀ left")
    assert player.done and player.done_prob > 0.99
    image = np.asarray(Image.open(io.BytesIO(player.image.value)))
    assert tuple(image[0, 0]) == (220, 30, 30)


def test_the_player_drives_a_car_dream(vae):
    env = make_dream("carracing", tiny_m(action_dim=3), starts(), vae=vae, render_mode="rgb_array")
    player = DreamPlayer(env, seed=0)
    assert "◀ steer left" in player.buttons and "brake" in player.buttons
    player.press("◀ steer left")
    player.press("brake")
    np.testing.assert_allclose(player.last_action, [0.0, 0.0, 0.8])
    twin = make_dream("carracing", tiny_m(action_dim=3), starts())
    twin.reset(seed=0)
    twin.step(np.array([-1.0, 0.3, 0.0], np.float32))
    twin.step(np.array([0.0, 0.0, 0.8], np.float32))
    torch.testing.assert_close(player.env.z, twin.z)
    assert player.t == 2


def test_the_cars_controller_drives_a_car_dream(vae):
    # Chapter 7: the car's C (three outputs: steer, gas, brake) switched on in the car's dream.
    env = make_dream("carracing", tiny_m(action_dim=3), starts(), vae=vae, render_mode="rgb_array")
    c = LinearController(controller_config_for("carracing", Z, H))
    c.set_flat_params(np.random.default_rng(5).normal(size=c.num_params))
    player = DreamPlayer(env, controller=c, seed=0)
    assert player.controller_on and not player.controller_toggle.disabled
    twin = make_dream("carracing", tiny_m(action_dim=3), starts())
    twin.reset(seed=0)
    for _ in range(3):
        expected = c.act(twin.z, twin.h)
        assert player.step()
        np.testing.assert_allclose(player.last_action, expected)
        twin.step(expected)
        torch.testing.assert_close(player.env.z, twin.z)
    steer, gas, brake = player.last_action
    assert -1 <= steer <= 1 and 0 <= gas <= 1 and 0 <= brake <= 1
    shown = "(" + ", ".join(f"{v:+.2f}" for v in player.last_action) + ")"
    assert f"last action <b>{shown}</b>" in player.caption.value and "driven by the controller" in player.caption.value
    # The car's dream pays by M's reward head; this M has none, so the caption shows no return.
    assert env.reward_mode == "survival" and "no dream reward" in player.caption.value
    assert "return" not in player.caption.value


def test_player_needs_v(vae):
    env = make_dream("cartpole-pixels", tiny_m(), starts())
    with pytest.raises(ValueError, match="vae="):
        DreamPlayer(env)


def test_buttons_come_from_the_world_spec():
    from wmlib.tasks import WORLDS
    from wmlib.widgets.dream import dream_buttons, world_of

    for world in WORLDS.values():
        if world.m_preset is None:
            continue
        assert world_of(world.new_action_space()) is world
        buttons = dream_buttons(world.action_space, world)
        assert len(buttons) >= 2, world.name
        for action in buttons.values():
            assert world.action_space.contains(action), (world.name, action)
        if world.controller_outputs == 1:  # left, then right: y = -1 and y = +1 take different actions
            names = list(buttons)
            assert names[0] == "◀ left" and names[-1] == "right ▶", names
            assert buttons["◀ left"] != buttons["right ▶"]
    assert world_of(gym.spaces.Discrete(7)) is None
    assert dream_buttons(gym.spaces.Discrete(3)) == {"action 0": 0, "action 1": 1, "action 2": 2}


def test_a_controller_of_another_world_is_refused(vae):
    env = make_dream("carracing", tiny_m(action_dim=3), starts(), vae=vae, render_mode="rgb_array")
    with pytest.raises(ValueError, match="maps its outputs with 'discrete'"):
        DreamPlayer(env, controller=controller())
    with pytest.raises(ValueError, match="acts in Discrete"):
        DreamPlayer(env, world="cartpole-pixels")


def test_last_action_is_named_in_the_caption(vae):
    player = cartpole_player(vae, seed=0)
    player.press("right ▶")
    assert "last action <b>right ▶</b>" in player.caption.value
    player.step(0)
    assert "last action <b>◀ left</b>" in player.caption.value


def test_the_player_drives_a_doom_dream(vae):
    env = make_dream("doom-takecover", tiny_m(action_dim=3), starts(), DreamConfig(max_steps=50, done_threshold=0.5),
                     vae=vae, render_mode="rgb_array")
    c = LinearController(controller_config_for("doom-takecover", Z, H))
    c.set_flat_params(np.random.default_rng(4).normal(size=c.num_params) * 2)
    player = DreamPlayer(env, controller=c, seed=0)
    assert player.world.name == "doom-takecover"
    assert player.actions == {"◀ left": 2, "stay": 0, "right ▶": 1}  # ViZDoom's order: 0 stay, 1 right, 2 left
    player.set(controller_on=False)
    for name in ("◀ left", "stay", "right ▶"):
        player.press(name)
    twin = make_dream("doom-takecover", tiny_m(action_dim=3), starts(), DreamConfig(max_steps=50, done_threshold=0.5))
    twin.reset(seed=0)
    for a in (2, 0, 1):
        twin.step(a)
    torch.testing.assert_close(player.env.z, twin.z)
    player.set(controller_on=True, temperature=1.15)
    for _ in range(6):
        expected = c.act(player.env.z, player.env.h)
        player.step()
        assert player.last_action == expected and expected in (0, 1, 2)
    assert "driven by the controller" in player.caption.value and "temperature 1.15" in player.caption.value
    assert player.t == 9
