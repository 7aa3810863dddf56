"""Doom TakeCover with the real ViZDoom engine: frames, spaces, seeding, the 2,100-step cap, the
paper's "thirds" action map (with wrong versions that must be rejected), and the world's spec through
a real agent step and a dream. Each test plays at most a few hundred engine steps (a few seconds)."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmlib.agent import WorldModelAgent
from wmlib.config import DreamConfig, VAEConfig
from wmlib.controller import ACTION_MAPS, DOOM_LEFT, DOOM_RIGHT, DOOM_STAY, LinearController, controller_config_for
from wmlib.dream import make_dream, start_latents
from wmlib.dream_training import controller_to_m_actions
from wmlib.envs import make_env
from wmlib.mdnrnn import MDNRNN, preset_config
from wmlib.observations import doom_frame
from wmlib.tasks import world_spec
from wmlib.vae import ConvVAE

pytest.importorskip("vizdoom")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORLD = "doom-takecover"


@pytest.fixture
def doom():
    env = make_env(WORLD)
    yield env
    env.close()


def _play(env, seed: int, actions, max_steps: int | None = None) -> tuple[np.ndarray, list[float]]:
    """Frames (T+1, 64, 64, 3) and health per step of one episode that repeats `actions` in turn."""
    frame, info = env.reset(seed=seed)
    frames, health = [frame], [info["health"]]
    for t in range(max_steps or 10**6):
        frame, reward, terminated, truncated, info = env.step(actions[t % len(actions)])
        assert reward == 1.0, "TakeCover pays +1 for every step alive"
        frames.append(frame)
        health.append(info["health"])
        if terminated or truncated:
            break
    return np.stack(frames), health


# ---------------------------------------------------------------------------------------------
# The env
# ---------------------------------------------------------------------------------------------


def test_frames_spaces_and_settings(doom):
    spec = world_spec(WORLD)
    assert doom.action_space == gym.spaces.Discrete(3) == spec.action_space
    assert doom.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    frame, info = doom.reset(seed=0)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and doom.observation_space.contains(frame)
    assert frame.std() > 10, "a frame of the game, not a blank screen"
    assert info["health"] == 100.0
    game = doom.unwrapped.game
    assert (game.get_screen_width(), game.get_screen_height()) == (160, 120)
    assert doom.spec.max_episode_steps == spec.episode_steps == spec.dream_max_steps == 2100


def test_the_frame_is_the_whole_screen_resized():
    screen = np.zeros((120, 160, 3), np.uint8)
    screen[:60] = 200  # top half bright: the 64x64 frame keeps the whole screen, halves and all
    frame = doom_frame({"screen": screen, "gamevariables": np.zeros(1, np.float32)})
    assert frame.shape == (64, 64, 3)
    assert (frame[:31] == 200).all() and (frame[33:] == 0).all()
    with pytest.raises(ValueError, match="RGB 'screen'"):
        doom_frame(screen)


def test_action_order_is_vizdooms_stay_right_left(doom):
    """ViZDoom's Discrete(3) is (no button, MOVE_RIGHT, MOVE_LEFT): check it by where the player goes."""
    import vizdoom

    game = doom.unwrapped.game
    ends = {}
    for action in (DOOM_STAY, DOOM_RIGHT, DOOM_LEFT):
        doom.reset(seed=0)
        for _ in range(10):
            doom.step(action)
        ends[action] = game.get_game_variable(vizdoom.GameVariable.POSITION_Y)
    assert game.get_game_variable(vizdoom.GameVariable.ANGLE) == 0.0  # facing +x, so right is -y
    assert ends[DOOM_RIGHT] < ends[DOOM_STAY] < ends[DOOM_LEFT]


def test_a_seed_replays_the_same_episode(doom):
    rng = np.random.default_rng(0)
    actions = list(rng.integers(0, 3, 400))
    first, health1 = _play(doom, 3, actions)
    again, health2 = _play(doom, 3, actions)
    other, _ = _play(doom, 4, actions)
    assert len(first) < 400, "a random player dies within a few hundred steps"
    np.testing.assert_array_equal(first, again)
    assert health1 == health2
    assert len(other) != len(first) or not np.array_equal(other, first)


def test_episodes_are_cut_at_the_cap():
    env = make_env(WORLD, max_episode_steps=7)  # the cap is the TimeLimit's: 2,100 by default, 7 here
    try:
        frames, _ = _play(env, 0, [DOOM_STAY])
        assert len(frames) == 8
        env.reset(seed=0)
        outcomes = [env.step(DOOM_STAY)[2:4] for _ in range(7)]
        assert outcomes[-1] == (False, True) and all(o == (False, False) for o in outcomes[:-1])
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------
# The thirds action map, with wrong versions
# ---------------------------------------------------------------------------------------------

THIRD = float(np.float32(1 / 3))


def _thirds_cases() -> list[tuple[float, int]]:
    below = float(np.nextafter(np.float32(-THIRD), np.float32(-1)))
    above = float(np.nextafter(np.float32(THIRD), np.float32(1)))
    return [(-1.0, DOOM_LEFT), (-0.5, DOOM_LEFT), (below, DOOM_LEFT), (-THIRD, DOOM_STAY), (-0.2, DOOM_STAY),
            (0.0, DOOM_STAY), (0.2, DOOM_STAY), (THIRD, DOOM_STAY), (above, DOOM_RIGHT), (0.5, DOOM_RIGHT),
            (1.0, DOOM_RIGHT)]


def _accepts(thirds) -> bool:
    y = torch.tensor([[v] for v, _ in _thirds_cases()], dtype=torch.float32)
    return thirds(y).tolist() == [a for _, a in _thirds_cases()]


def _closed_ends(y):
    y0 = y[:, 0]
    return torch.where(y0 <= -1 / 3, DOOM_LEFT, torch.where(y0 >= 1 / 3, DOOM_RIGHT, DOOM_STAY)).long()


def _halves(y):
    return torch.where(y[:, 0] < 0, DOOM_LEFT, DOOM_RIGHT).long()


def _left_right_swapped(y):
    y0 = y[:, 0]
    return torch.where(y0 < -1 / 3, DOOM_RIGHT, torch.where(y0 > 1 / 3, DOOM_LEFT, DOOM_STAY)).long()


def _gym_order(y):  # stay, left, right: the order one might guess, not ViZDoom's
    y0 = y[:, 0]
    return torch.where(y0 < -1 / 3, 1, torch.where(y0 > 1 / 3, 2, 0)).long()


def _wide_middle(y):
    y0 = y[:, 0]
    return torch.where(y0 < -0.5, DOOM_LEFT, torch.where(y0 > 0.5, DOOM_RIGHT, DOOM_STAY)).long()


def test_the_thirds_map_is_the_papers():
    spec = ACTION_MAPS["thirds"]
    assert spec.one_hot and spec.outputs == 1
    assert _accepts(spec.batched)
    c = LinearController(controller_config_for(WORLD, 4, 8))
    for bias, action in ((-2.0, DOOM_LEFT), (-0.3, DOOM_STAY), (0.3, DOOM_STAY), (2.0, DOOM_RIGHT)):
        c.set_flat_params(np.r_[np.zeros(12), bias])  # y = tanh(bias): -0.96, -0.29, 0.29, 0.96
        assert c.act(np.zeros(4), np.zeros(8)) == action


@pytest.mark.parametrize("wrong", [_closed_ends, _halves, _left_right_swapped, _gym_order, _wide_middle])
def test_wrong_thirds_maps_are_rejected(wrong):
    assert not _accepts(wrong)


# ---------------------------------------------------------------------------------------------
# The spec through an agent in real Doom and through a dream
# ---------------------------------------------------------------------------------------------


def test_the_preset_is_the_papers_doom_model():
    m = preset_config(WORLD, 64)
    assert (m.z_dim, m.action_dim, m.hidden_size, m.num_mixtures) == (64, 3, 512, 5)
    assert m.predict_done and not m.predict_reward and m.done_loss_weight == 10.0
    spec = world_spec(WORLD)
    assert (spec.dream_reward, spec.action_map, spec.controller_outputs) == ("survival", "thirds", 1)
    spec.check_dream(m)
    c = controller_config_for(WORLD, 64, 512)
    assert LinearController(c).num_params == 64 + 512 + 1  # C on [z, h]: 577 (the paper's [z, c, h]: 1,088)


def _tiny_m() -> MDNRNN:
    torch.manual_seed(0)
    return MDNRNN(dataclasses.replace(preset_config(WORLD, 4), hidden_size=8, num_mixtures=2)).eval()


def test_a_tiny_agent_plays_real_doom_and_its_m_dreams_it(doom):
    torch.manual_seed(0)
    vae, m = ConvVAE(VAEConfig(z_dim=4)).eval(), _tiny_m()
    c_config = controller_config_for(WORLD, 4, 8)
    c = LinearController(c_config)
    c.set_flat_params(np.r_[np.zeros(12), 5.0])  # y = tanh(5) > 1/3: always right
    agent = WorldModelAgent(vae, m, c, doom.action_space)
    game = doom.unwrapped.game
    import vizdoom

    frame, _ = doom.reset(seed=0)
    y0 = game.get_game_variable(vizdoom.GameVariable.POSITION_Y)
    for _ in range(10):  # the player needs a few tics to start moving
        frame, reward, *_ = doom.step(agent.act(frame))
    assert game.get_game_variable(vizdoom.GameVariable.POSITION_Y) < y0, "the agent moved right"
    assert torch.count_nonzero(agent.h) > 0

    y = torch.tensor([[-0.9], [0.0], [0.9]])
    np.testing.assert_array_equal(controller_to_m_actions(y, c_config, 3).numpy(),
                                  np.eye(3)[[DOOM_LEFT, DOOM_STAY, DOOM_RIGHT]])
    episodes = [{"mu": np.zeros((3, 4), np.float32), "logvar": np.zeros((3, 4), np.float32)}]
    dream = make_dream(WORLD, m, start_latents(episodes), DreamConfig(max_steps=4, done_threshold=1.0))
    assert dream.action_space == gym.spaces.Discrete(3)
    dream.reset(seed=0)
    steps = [dream.step(DOOM_RIGHT) for _ in range(4)]
    assert [s[1] for s in steps] == [1.0] * 4  # survival: +1 per step
    assert steps[-1][3] and not any(s[2] for s in steps)  # cut at max_steps, never ended by the done head
