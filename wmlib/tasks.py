"""The worlds: one frozen spec per environment, holding everything wmlib knows about it.

    world_spec("cartpole-pixels")   CartPole-v1 seen as 64x64x3 frames: the spine of chapters 1-5
    world_spec("cartpole")          CartPole-v1's 4 numbers of state: chapter 1's DQN baseline
    world_spec("carracing")         CarRacing-v3 at the paper's 64x64: the paper's car
    world_spec("doom-takecover")    ViZDoom's TakeCover at the paper's 64x64: the paper's dream experiment

A spec says how to build the env and what its frames are, what actions it takes and how M reads
them, how C's tanh outputs become those actions, M's preset, how a dream of it pays and ends, how
long its episodes and dreams last, and which shipped checkpoints belong to it and the commands that
rebuild them. Every other module asks the spec instead of comparing names, so a new world is one
more entry in WORLDS and, if its actions are new, one more action map in wmlib.controller.ACTION_MAPS
(Doom TakeCover came that way: survival, a done head, one controller output split in thirds).

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from wmlib.config import MDNRNNConfig
from wmlib.observations import CarRacingPixels, CartPolePixels, DoomPixels, carracing_frame, cartpole_frame, doom_frame

PARTS = ("vae", "mdnrnn", "controller", "report")
"""What a shipped file can hold: V, M, C, or a report of runs."""

DREAM_REWARDS = ("survival", "model")
"""How a dream pays (DreamConfig.reward): +1 per step until M's done head ends it, or M's reward head."""


@dataclass(frozen=True)
class ShippedCheckpoint:
    """A file in assets/ (STEM.safetensors and STEM.json, or STEM.json alone for a report)."""

    stem: str
    """The file name without its suffix, e.g. "cartpole_vae"."""
    world: str
    """The world it belongs to (a key of WORLDS)."""
    part: str
    """"vae", "mdnrnn", "controller" or "report"."""
    command: str
    """The exact shell commands that rebuild it, joined by " && " (as assets/README.md lists them)."""


@dataclass(frozen=True)
class WorldSpec:
    """One world: its env, actions, controller layout, M preset, dream and shipped checkpoints."""

    name: str
    """The name `make_env`, the CLI and every `env_name` argument take."""
    summary: str
    """One line for people: what the agent sees and does."""
    make: Callable[..., gym.Env]
    """make(**gymnasium_make_kwargs) -> the env (use wmlib.envs.make_env, which also sets up headless SDL)."""
    frame: Callable[[np.ndarray], np.ndarray] | None
    """The transform from the env's raw observation to the agent's 64x64x3 uint8 frame (None: state)."""
    action_space: gym.Space
    """The env's action space, as a template (the dream copies it: see `new_action_space`)."""
    episode_steps: int
    """The real env's time limit, the default length of an episode."""
    action_map: str
    """How C's tanh outputs become an env action (a key of wmlib.controller.ACTION_MAPS)."""
    controller_outputs: int
    """C's outputs A_c (one for CartPole: its sign picks left or right)."""
    m_preset: MDNRNNConfig | None = None
    """M's config for this world (its z_dim is replaced by V's); None: no M (the world is not seen in pixels)."""
    m_epochs: int | None = None
    """Default training epochs of M (`python -m wmlib train-mdnrnn`)."""
    dream_reward: str | None = None
    """How its dream pays (DREAM_REWARDS): "survival" needs M's done head, "model" M's reward head."""
    dream_max_steps: int | None = None
    """Default length at which a dream is cut, like the real time limit."""
    shipped: tuple[ShippedCheckpoint, ...] = ()
    """The checkpoints in assets/ made for this world."""

    def __post_init__(self):
        if self.dream_reward is not None and self.dream_reward not in DREAM_REWARDS:
            raise ValueError(f"{self.name}: dream_reward must be one of {', '.join(DREAM_REWARDS)}, "
                             f"got {self.dream_reward!r}")
        if not isinstance(self.action_space, gym.spaces.Discrete | gym.spaces.Box):
            raise ValueError(f"{self.name}: the action space must be Discrete or Box, got {self.action_space}")
        for shipped in self.shipped:
            if shipped.world != self.name or shipped.part not in PARTS:
                raise ValueError(f"{self.name}: shipped checkpoint {shipped.stem} names world {shipped.world!r} "
                                 f"and part {shipped.part!r}; expected {self.name!r} and one of {', '.join(PARTS)}")

    @property
    def m_action_encoding(self) -> str:
        """How M reads an action: "one-hot" (Discrete(n) -> n floats) or "vector" (a Box's floats as they are)."""
        return "one-hot" if isinstance(self.action_space, gym.spaces.Discrete) else "vector"

    @property
    def m_action_dim(self) -> int:
        """A, the width of an action as M reads it (n for Discrete(n), the size of a Box)."""
        return gym.spaces.flatdim(self.action_space)

    def new_action_space(self) -> gym.Space:
        """A fresh copy of the action space (its own random generator: sampling it leaves the spec alone)."""
        return copy.deepcopy(self.action_space)

    def mdnrnn_config(self, z_dim: int) -> MDNRNNConfig:
        """M's preset for V's latent size z_dim; a ValueError for a world without M."""
        if self.m_preset is None:
            raise ValueError(f"the world {self.name!r} has no M preset ({self.summary}); worlds with one: "
                             f"{', '.join(w.name for w in WORLDS.values() if w.m_preset is not None)}")
        return dataclasses.replace(self.m_preset, z_dim=int(z_dim))

    def check_dream(self, mdnrnn: MDNRNNConfig) -> None:
        """Raise unless an M with this config can make this world's dream pay (see `dream_reward`)."""
        needs = {"survival": ("predict_done", "a done head"), "model": ("predict_reward", "a reward head")}
        if self.dream_reward is None:
            raise ValueError(f"the world {self.name!r} has no dream ({self.summary})")
        flag, head = needs[self.dream_reward]
        if not getattr(mdnrnn, flag):
            raise ValueError(f"a {self.name} dream pays by {self.dream_reward!r}, so M needs {head} ({flag}=True); "
                             f"this M predicts neither the reward nor the end it needs, and C cannot be trained "
                             f"in its dream")


def _cartpole_pixels(**kwargs) -> gym.Env:
    return CartPolePixels(gym.make("CartPole-v1", **kwargs))


def _cartpole(**kwargs) -> gym.Env:
    return gym.make("CartPole-v1", **kwargs)


def _carracing(**kwargs) -> gym.Env:
    # Gymnasium's CarRacing-v3 (same id, wrappers and frames), drawn faster: see wmlib/carracing_fast.py
    spec = dataclasses.replace(gym.spec("CarRacing-v3"), entry_point="wmlib.carracing_fast:FastCarRacing")
    return CarRacingPixels(gym.make(spec, **kwargs))


DOOM_SETTINGS = {"screen_resolution": "RES_160X120", "doom_skill": 4}
"""What `make_env("doom-takecover")` asks ViZDoom for (keyword arguments replace them).

160x120 instead of the scenario's 320x240: resized to 64x64 the frames are the same picture (a mean
difference of about 2 of 255 per pixel) and the engine renders fewer pixels per step. Skill 4 is the
scenario's own and the paper's difficulty. The setting does what Doom's skills do: measured with a
uniformly random policy, skills 2, 3 and 4 play the same episodes (they differ only in which map
objects appear, and TakeCover's monsters come from its script), skill 1 halves the damage taken and
skill 5 ("Nightmare") makes monsters and their fireballs faster, so a random player dies about three
times sooner. Skill 4's random player lives about as long as the paper's (210 +- 108 steps);
assets/README.md gives the measured numbers."""

DOOM_EPISODE_STEPS = 2100
"""The paper's cap on a TakeCover episode (60 seconds of game at 35 tics a second); "solved" is > 750."""


def _doom(max_episode_steps: int = DOOM_EPISODE_STEPS, **kwargs) -> gym.Env:
    # vizdoom is imported here, not at the top: it loads the engine and pygame (a quarter of a second),
    # which only the Doom world needs. Importing it registers ViZDoom's Gymnasium envs.
    import vizdoom.gymnasium_wrapper  # noqa: F401

    return DoomPixels(gym.make("VizdoomTakeCover-v1", max_episode_steps=max_episode_steps,
                               **{**DOOM_SETTINGS, **kwargs}))


def _shipped(stem: str, world: str, part: str, *commands: str) -> ShippedCheckpoint:
    return ShippedCheckpoint(stem, world, part, " && ".join(" ".join(c.split()) for c in commands))


_CARTPOLE_COLLECT = "python -m wmlib collect --env cartpole-pixels --episodes 600 --out data/cartpole_vae --seed 0"
_CARRACING_COLLECT = ("python -m wmlib collect --env carracing --policy smooth --episodes 60 --max-steps 400 "
                      "--out data/carracing_vae --seed 0")

# The commands below are assets/README.md's, word for word (tests/test_tasks.py checks it).
_CARTPOLE_SHIPPED = (
    _shipped("cartpole_vae", "cartpole-pixels", "vae", _CARTPOLE_COLLECT,
             "python -m wmlib train-vae --rollouts data/cartpole_vae --out assets/cartpole_vae --epochs 8 --seed 0 "
             "--z-dim 32 --batch-size 32 --lr 0.0003 --kl-tolerance 0.5 --half --threads 2"),
    _shipped("cartpole_mdnrnn", "cartpole-pixels", "mdnrnn",
             "python -m wmlib encode --vae cartpole --rollouts data/cartpole_vae --out data/cartpole_latents",
             "python -m wmlib train-mdnrnn --env cartpole-pixels --latents data/cartpole_latents "
             "--out assets/cartpole_mdnrnn --epochs 100 --seed 0 --val-episodes 20 --threads 1"),
    _shipped("cartpole_controller", "cartpole-pixels", "controller",
             "python -m wmlib train-controller --env cartpole-pixels --vae cartpole --mdnrnn cartpole "
             "--out assets/cartpole_controller --population 16 --rollouts 4 --generations 60 --sigma0 0.1 "
             "--standardize-episodes 30 --target-mean 475 --select-episodes 8 --eval-episodes 100 --seed 0 "
             "--workers 2"),
    _shipped("cartpole_zonly_controller", "cartpole-pixels", "controller",
             "python -m wmlib train-controller --env cartpole-pixels --vae cartpole --z-only "
             "--out assets/cartpole_zonly_controller --population 16 --rollouts 4 --generations 20 --sigma0 0.1 "
             "--standardize-episodes 30 --target-mean 475 --select-episodes 8 --eval-episodes 100 --seed 0 "
             "--workers 1"),
    _shipped("pipeline_cartpole_reports", "cartpole-pixels", "report", "python benchmarks/sample_efficiency.py"),
)
_CARRACING_SHIPPED = (
    _shipped("carracing_vae", "carracing", "vae", _CARRACING_COLLECT,
             "python -m wmlib train-vae --rollouts data/carracing_vae --out assets/carracing_vae --epochs 3 --seed 0 "
             "--z-dim 32 --batch-size 32 --lr 0.0003 --kl-tolerance 0.5 --half --threads 1"),
    _shipped("carracing_mdnrnn", "carracing", "mdnrnn",
             "python -m wmlib encode --vae carracing --rollouts data/carracing_vae --out data/carracing_latents",
             "python -m wmlib train-mdnrnn --env carracing --latents data/carracing_latents "
             "--out assets/carracing_mdnrnn --epochs 100 --seed 0 --val-episodes 6 --batch-size 16 --lr 0.003 "
             "--threads 1"),
    # Stopped and resumed twice on a shared CPU (generations 1-16 serially, 17-28 on two processes; speed
    # only); the last invocation is the one recorded. 100 real tracks: assets/README.md.
    _shipped("carracing_controller", "carracing", "controller",
             "python -m wmlib train-controller --env carracing --vae carracing --mdnrnn carracing "
             "--out assets/carracing_controller --population 16 --rollouts 2 --sigma0 0.1 --generations 28 "
             "--standardize-episodes 8 --select-episodes 4 --eval-episodes 0 --seed 0 --max-steps 500 "
             "--work data/checkpoints/data_car_carracing_controller_es --workers 2 --evaluator process --threads 1"),
)

_DOOM_COLLECT = ("python -m wmlib collect --env doom-takecover --policy smooth --episodes 1000 "
                 "--out data/doom/rollouts --seed 0 && python -m wmlib collect --env doom-takecover --policy smooth "
                 "--episodes 1000 "
                 "--out data/doom/rollouts --seed 1000")
# Doom's parts were written under data/doom/ and copied into assets/ (the cp steps): the command each file
# records names its data/ path.
_DOOM_SHIPPED = (
    _shipped("doom_vae", "doom-takecover", "vae", _DOOM_COLLECT,
             "python -m wmlib train-vae --rollouts data/doom/rollouts --out data/doom/vae2 --epochs 5 --seed 0 "
             "--z-dim 64 --kl-tolerance 0.5 --lr 0.0003 --batch-size 32 --max-frames-per-epoch 51200 --half "
             "--threads 1",
             "cp data/doom/vae2.safetensors assets/doom_vae.safetensors",
             "cp data/doom/vae2.json assets/doom_vae.json"),
    _shipped("doom_mdnrnn", "doom-takecover", "mdnrnn",
             "python -m wmlib encode --vae data/doom/vae2 --rollouts data/doom/rollouts --out data/doom/latents2",
             "python -m wmlib train-mdnrnn --env doom-takecover --latents data/doom/latents2 --out data/doom/m2 "
             "--epochs 6 --seed 0 --val-episodes 20 --work data/checkpoints/doom_m2 --threads 1",
             "cp data/doom/m2.safetensors assets/doom_mdnrnn.safetensors",
             "cp data/doom/m2.json assets/doom_mdnrnn.json"),
    _shipped("doom_controller", "doom-takecover", "controller",
             "python -m wmlib dream --env doom-takecover --vae data/doom/vae2 --mdnrnn data/doom/m2 "
             "--out data/doom/c3_t1.0_s3 --latents data/doom/latents2 --random-episodes 50 --population 32 "
             "--rollouts 8 --sigma0 0.5 --generations 20 --temperature 1 --done-bias 0 --dream-reward auto "
             "--precision float32 --select-episodes 64 --eval-episodes 100 --seed 3 --dream-workers 1 --workers 1 "
             "--threads 1",
             "cp data/doom/c3_t1.0_s3.safetensors assets/doom_controller.safetensors",
             "cp data/doom/c3_t1.0_s3.json assets/doom_controller.json"),
)

WORLDS: dict[str, WorldSpec] = {spec.name: spec for spec in (
    WorldSpec(
        name="cartpole-pixels",
        summary="CartPole-v1 seen as 64x64x3 frames; push left or right; +1 per step upright",
        make=_cartpole_pixels, frame=cartpole_frame, action_space=gym.spaces.Discrete(2), episode_steps=500,
        action_map="discrete", controller_outputs=1,
        # H 64 is plenty for a world whose true state is 4 numbers and trains in minutes on a laptop CPU;
        # windows of 32 steps hold most random episodes whole. Ends are rare (1 step in ~22), so their
        # loss is weighted 10x and batches are small (16) to take more steps: with that, the done head
        # learns in tens of epochs instead of hundreds. The done head is the paper's Doom model's:
        # surviving is the whole game.
        m_preset=MDNRNNConfig(action_dim=2, hidden_size=64, num_mixtures=5, predict_done=True, done_loss_weight=10.0,
                              sequence_length=32, batch_size=16, learning_rate=3e-3),
        m_epochs=100, dream_reward="survival", dream_max_steps=500, shipped=_CARTPOLE_SHIPPED),
    WorldSpec(
        name="cartpole",
        summary="CartPole-v1's 4 numbers of state (chapter 1's DQN); push left or right",
        make=_cartpole, frame=None, action_space=gym.spaces.Discrete(2), episode_steps=500,
        action_map="discrete", controller_outputs=1),
    WorldSpec(
        name="carracing",
        summary="CarRacing-v3 at the paper's 64x64x3; steer, gas, brake; reward for tiles visited",
        make=_carracing, frame=carracing_frame,
        action_space=gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32)),
        episode_steps=1000, action_map="carracing", controller_outputs=3,
        # The paper's CarRacing M (H 256, K 5; A 3: steer, gas, brake), without reward or done head:
        # the paper trains the car's C in the real env, so there is no dream to pay C here yet.
        m_preset=MDNRNNConfig(action_dim=3), m_epochs=20, dream_reward="model", dream_max_steps=1000,
        shipped=_CARRACING_SHIPPED),
    WorldSpec(
        name="doom-takecover",
        summary="ViZDoom's TakeCover seen as 64x64x3 frames; stay, move right or left; +1 per step alive",
        make=_doom, frame=doom_frame, action_space=gym.spaces.Discrete(3), episode_steps=DOOM_EPISODE_STEPS,
        action_map="thirds", controller_outputs=1,
        # The paper's Doom M: H 512, K 5 and a done head, its loss weighted 10x because ends are rare
        # (the paper weights the ends' loss by 10). A random episode lasts a few hundred steps, so
        # windows of 100 steps hold an end now and then. Batches of 16 windows and learning rate
        # 3e-3 (the paper: 100 windows of 1,000 steps, 1e-3) give many small steps, as for CartPole:
        # on a CPU an epoch of M over the course's 400 episodes is a few minutes.
        m_preset=MDNRNNConfig(action_dim=3, hidden_size=512, num_mixtures=5, predict_done=True,
                              done_loss_weight=10.0, sequence_length=100, batch_size=16, learning_rate=3e-3),
        m_epochs=4, dream_reward="survival", dream_max_steps=DOOM_EPISODE_STEPS, shipped=_DOOM_SHIPPED),
)}
"""Every world wmlib knows, by name."""


def world_spec(name: str, *, wanted: str | None = None) -> WorldSpec:
    """The spec of the world `name`; a ValueError listing the known worlds otherwise.

    wanted: what the caller was after, for the message ("no controller layout for 'pong'; ...").
    """
    if name in WORLDS:
        return WORLDS[name]
    known = "; ".join(f"{w.name} ({w.summary})" for w in WORLDS.values())
    asked = f"no {wanted} for {name!r}" if wanted else f"unknown world {name!r}"
    raise ValueError(f"{asked}; the known worlds are: {known}")


def shipped_checkpoint(stem: str) -> ShippedCheckpoint | None:
    """The shipped checkpoint assets/STEM (e.g. "cartpole_vae"), or None when no world ships one by that name."""
    for world in WORLDS.values():
        for shipped in world.shipped:
            if shipped.stem == stem:
                return shipped
    return None
