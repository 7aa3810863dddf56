"""The world table: lookups and errors, each spec against its env and assets, no world-name branches
outside tasks.py, and a made-up Doom-like world that plugs in as one spec."""

import ast
import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmlib import controller as controller_module
from wmlib import tasks
from wmlib.checkpoints import assets_dir
from wmlib.config import DreamConfig, MDNRNNConfig, VAEConfig
from wmlib.controller import ActionMap, LinearController, controller_config_for, map_action
from wmlib.dream import dream_action_space, make_dream, start_latents
from wmlib.dream_training import controller_to_m_actions
from wmlib.envs import make_env
from wmlib.mdnrnn import MDNRNN, preset_config
from wmlib.tasks import WORLDS, ShippedCheckpoint, WorldSpec, shipped_checkpoint, world_spec
from wmlib.vae import ConvVAE

WMLIB = Path(tasks.__file__).parent

# ---------------------------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------------------------


def test_lookup_by_name_and_a_clear_error_listing_the_worlds():
    assert world_spec("carracing").action_map == "carracing"
    assert set(WORLDS) >= {"cartpole-pixels", "cartpole", "carracing"}
    with pytest.raises(ValueError, match="unknown world 'pong'") as err:
        world_spec("pong")
    for name, spec in WORLDS.items():
        assert f"{name} ({spec.summary})" in str(err.value)
    with pytest.raises(ValueError, match="no controller layout for 'pong'; the known worlds are: cartpole-pixels"):
        controller_config_for("pong", 32, 256)


def test_what_the_specs_say():
    pole, car, state = world_spec("cartpole-pixels"), world_spec("carracing"), world_spec("cartpole")
    assert (pole.m_action_encoding, pole.m_action_dim, pole.controller_outputs) == ("one-hot", 2, 1)
    assert (car.m_action_encoding, car.m_action_dim, car.controller_outputs) == ("vector", 3, 3)
    assert (pole.episode_steps, pole.dream_max_steps, car.episode_steps, car.dream_max_steps) == (500, 500, 1000, 1000)
    assert pole.dream_reward == "survival" and pole.m_preset.predict_done
    assert state.m_preset is None and state.frame is None
    with pytest.raises(ValueError, match="no M preset"):
        preset_config("cartpole", 32)
    with pytest.raises(ValueError, match="no M to dream with"):
        dream_action_space("cartpole")


def test_the_spec_is_frozen_and_its_action_space_is_never_handed_out():
    spec = world_spec("cartpole-pixels")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.episode_steps = 10
    space = dream_action_space("cartpole-pixels")
    assert space == spec.action_space and space is not spec.action_space


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_each_spec_matches_its_env(name):
    spec = world_spec(name)
    env = make_env(name)
    try:
        assert env.action_space == spec.action_space
        assert env.spec.max_episode_steps == spec.episode_steps
        obs, _ = env.reset(seed=0)
        if spec.frame is not None:  # the wrapper applies the spec's frame transform to the raw observation
            raw, _ = env.env.reset(seed=0)
            assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
            np.testing.assert_array_equal(spec.frame(raw), obs)
    finally:
        env.close()
    config = controller_config_for(name, 4, 8)
    assert LinearController(config).act(np.zeros(4), np.zeros(8)) in spec.action_space
    if spec.m_preset is not None:
        m = preset_config(name, 16)
        assert m.z_dim == 16 and m.action_dim == spec.m_action_dim


def test_the_pipeline_refuses_a_world_whose_m_cannot_pay_its_dream():
    world_spec("cartpole-pixels").check_dream(preset_config("cartpole-pixels", 8))
    with pytest.raises(ValueError, match="needs a reward head"):
        world_spec("carracing").check_dream(preset_config("carracing", 8))
    with pytest.raises(ValueError, match="needs a done head"):
        world_spec("cartpole-pixels").check_dream(MDNRNNConfig(action_dim=2))
    with pytest.raises(ValueError, match="has no dream"):
        world_spec("cartpole").check_dream(MDNRNNConfig(action_dim=2))


# ---------------------------------------------------------------------------------------------
# Shipped checkpoints
# ---------------------------------------------------------------------------------------------


def _flat(text: str) -> str:
    return " ".join(text.replace("\\\n", " ").split())


def test_shipped_checkpoints_exist_and_their_commands_are_the_readmes():
    readme = _flat((assets_dir() / "README.md").read_text())
    stems = [s.stem for w in WORLDS.values() for s in w.shipped]
    assert len(stems) == len(set(stems)), "one stem, one world"
    assert set(stems) == {p.stem for p in assets_dir().glob("*.json")}, "every file in assets/ is in the table"
    for world in WORLDS.values():
        for shipped in world.shipped:
            assert shipped_checkpoint(shipped.stem) is shipped and shipped.world == world.name
            assert shipped.part in tasks.PARTS
            assert (assets_dir() / f"{shipped.stem}.json").is_file()
            for command in shipped.command.split(" && "):
                assert command in readme, f"{shipped.stem}: {command!r} is not assets/README.md's"
            recorded = json.loads((assets_dir() / f"{shipped.stem}.json").read_text()).get("metadata", {})
            if "command" in recorded:  # what the CLI recorded (without the speed-only flags it then left out)
                last = [c for c in shipped.command.split(" && ") if c.startswith("python -m wmlib")][-1]  # not a cp
                assert last.startswith(recorded["command"]), (shipped.stem, recorded["command"])


def test_shipped_checkpoint_api():
    vae = shipped_checkpoint("cartpole_vae")
    assert vae == ShippedCheckpoint("cartpole_vae", "cartpole-pixels", "vae", vae.command)
    assert vae.command.startswith("python -m wmlib collect --env cartpole-pixels --episodes 600")
    assert shipped_checkpoint("carracing_mdnrnn").part == "mdnrnn"
    assert shipped_checkpoint("pipeline_cartpole_reports").part == "report"
    assert shipped_checkpoint("cartpole") is None and shipped_checkpoint("pong_vae") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        vae.command = "rm -rf /"
    with pytest.raises(ValueError, match="names world 'carracing'"):
        dataclasses.replace(world_spec("cartpole-pixels"), shipped=world_spec("carracing").shipped)


# ---------------------------------------------------------------------------------------------
# No module outside tasks.py branches on a world's name
# ---------------------------------------------------------------------------------------------


def world_name_branches(source: str, names) -> list[tuple[int, str]]:
    """(line, name) of each world-name string literal compared with (==, !=, in, not in) or matched in a case."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                items = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
                hits += [(node.lineno, c.value) for c in items if isinstance(c, ast.Constant) and c.value in names]
        elif isinstance(node, ast.MatchValue) and isinstance(node.value, ast.Constant) and node.value.value in names:
            hits.append((node.lineno, node.value.value))
    return hits


def _branches_by_file() -> dict[str, list]:
    found = {}
    for path in sorted(WMLIB.rglob("*.py")):
        rel = path.relative_to(WMLIB).as_posix()
        if rel != "tasks.py":
            hits = world_name_branches(path.read_text(), set(WORLDS))
            if hits:
                found[rel] = hits
    return found


def test_the_scanner_finds_world_name_branches():
    code = '''
if env_name == "carracing":
    pass
x = 3 if name in ("cartpole-pixels", "cartpole") else 1
match name:
    case "cartpole":
        pass
"""A docstring may say "carracing" and "cartpole-pixels" in prose."""
spec = WORLDS["carracing"]
'''
    assert world_name_branches(code, set(WORLDS)) == [(2, "carracing"), (4, "cartpole-pixels"), (4, "cartpole"),
                                                       (6, "cartpole")]


def test_no_module_outside_tasks_branches_on_a_world_name():
    found = _branches_by_file()
    assert not found, f"look the world up in wmlib.tasks instead of comparing its name: {found}"


# ---------------------------------------------------------------------------------------------
# A new world is one spec: a Doom-like survival world with a one-output "thirds" action map
# ---------------------------------------------------------------------------------------------


class _Corridor(gym.Env):
    """A stand-in for Doom TakeCover: grey 64x64x3 frames, Discrete(3) (stay, left, right), +1 per step alive."""

    observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.full((64, 64, 3), 128, np.uint8), {}

    def step(self, action):
        assert self.action_space.contains(action)
        return np.full((64, 64, 3), 40 * int(action), np.uint8), 1.0, False, False, {}


def _thirds(y: torch.Tensor) -> torch.Tensor:
    """One output in thirds: [-1, -1/3) left (1), [-1/3, 1/3] stay (0), (1/3, 1] right (2)."""
    return torch.where(y[:, 0] < -1 / 3, 1, torch.where(y[:, 0] > 1 / 3, 2, 0)).long()


@pytest.fixture
def corridor(monkeypatch):
    spec = WorldSpec(name="corridor", summary="a made-up survival world", make=lambda **kw: _Corridor(),
                     frame=None, action_space=gym.spaces.Discrete(3), episode_steps=2100, action_map="thirds",
                     controller_outputs=1,
                     m_preset=MDNRNNConfig(action_dim=3, hidden_size=8, num_mixtures=2, predict_done=True),
                     dream_reward="survival", dream_max_steps=2100)
    monkeypatch.setitem(WORLDS, "corridor", spec)
    monkeypatch.setitem(controller_module.ACTION_MAPS, "thirds", ActionMap(_thirds, one_hot=True, outputs=1))
    return spec


def test_a_new_world_plugs_in_as_one_spec(corridor):
    from wmlib.agent import WorldModelAgent

    c_config = controller_config_for("corridor", 4, 8)
    assert (c_config.action_dim, c_config.action_map) == (1, "thirds")
    assert [map_action(np.array([y]), "thirds") for y in (-0.9, 0.0, 0.9)] == [1, 0, 2]
    y = torch.tensor([[-0.9], [0.0], [0.9]])
    np.testing.assert_array_equal(controller_to_m_actions(y, c_config, 3).numpy(), np.eye(3)[[1, 0, 2]])
    m_config = preset_config("corridor", 4)
    corridor.check_dream(m_config)
    torch.manual_seed(0)
    m = MDNRNN(m_config).eval()
    env = make_env("corridor")
    c = LinearController(c_config)
    c.set_flat_params(np.r_[np.zeros(12), 0.9])  # always right
    agent = WorldModelAgent(ConvVAE(VAEConfig(z_dim=4)).eval(), m, c, env.action_space)
    frame, _ = env.reset(seed=0)
    for _ in range(3):
        frame, *_ = env.step(agent.act(frame))
    assert frame[0, 0, 0] == 80 and torch.count_nonzero(agent.h) > 0
    episodes = [{"mu": np.zeros((3, 4), np.float32), "logvar": np.zeros((3, 4), np.float32)}]
    dream = make_dream("corridor", m, start_latents(episodes), DreamConfig(max_steps=5))
    assert dream.action_space == gym.spaces.Discrete(3)
    dream.reset(seed=0)
    assert dream.step(2)[1] == 1.0  # survival: +1 per step
