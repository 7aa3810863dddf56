"""The whole agent in a real environment: V sees, M remembers, C acts.

Every step, in this order (the paper's loop):

    z_t      = V.encode(frame_t)                     what the agent sees, compressed  (Z,)
    a_t      = C(z_t, h_t)                           decided from the present and the memory
    h_{t+1}  = M.step(z_t, a_t, (h_t, c_t))          the memory takes in what was seen and done

h starts at zero each episode. C reads h_t *before* M has seen frame t: h summarises the past
(where the pole was, hence how fast it moves), z the present. For the paper's "V only" ablation
the controller has h_dim = 0 and M is not needed at all.

z is V's mean mu by default (deterministic: the same seed gives the same episode, which is what
lets a process pool reproduce a serial run exactly); `sample_z=True` draws z ~ N(mu, sigma^2) as
the paper's code does.

`ControllerRollout` packages "play one episode with these controller parameters" as a picklable
function of (params, seed), which is what the CMA-ES evaluators in cmaes.py expect.

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from wmlib.cmaes import Rollout
from wmlib.config import ControllerConfig
from wmlib.controller import LinearController
from wmlib.envs import action_dim, encode_actions, make_env
from wmlib.rollouts import frames_to_tensor


class WorldModelAgent:
    """V + M + C acting on 64x64x3 frames.

    vae:        a ConvVAE (wmlib.vae)
    mdnrnn:     an MDNRNN (wmlib.mdnrnn), or None when the controller reads z alone (h_dim = 0)
    controller: a LinearController whose z_dim and h_dim match V and M
    action_space: the env's action space (Discrete actions reach M one-hot, as it was trained)
    """

    def __init__(self, vae, mdnrnn, controller: LinearController, action_space: gym.Space, *,
                 sample_z: bool = False, seed: int = 0):
        c = controller.config
        if vae.config.z_dim != c.z_dim:
            raise ValueError(f"the controller reads z of size {c.z_dim}, "
                             f"but V makes z of size {vae.config.z_dim}")
        if c.h_dim > 0:
            if mdnrnn is None:
                raise ValueError(f"the controller reads h of size {c.h_dim}, so the agent needs M (got None)")
            m = mdnrnn.config
            if m.hidden_size != c.h_dim:
                raise ValueError(f"the controller reads h of size {c.h_dim}, "
                                 f"but M's LSTM has {m.hidden_size} units")
            if m.z_dim != c.z_dim:
                raise ValueError(f"M reads z of size {m.z_dim}, but V makes z of size {c.z_dim}")
            if m.action_dim != action_dim(action_space):
                raise ValueError(f"M was trained on actions of size {m.action_dim}, but the env's action "
                                 f"space {action_space} has size {action_dim(action_space)}")
        self.vae, self.controller, self.action_space = vae.eval(), controller.eval(), action_space
        self.mdnrnn = mdnrnn.eval() if (mdnrnn is not None and c.h_dim > 0) else None
        self.sample_z = sample_z
        self.generator = torch.Generator().manual_seed(seed)
        self.state = None
        self.reset()

    def reset(self) -> None:
        """Forget the episode: M's memory back to zeros."""
        self.state = self.mdnrnn.initial_state(1, device="cpu") if self.mdnrnn is not None else None

    @property
    def h(self) -> torch.Tensor:
        """(H,) what the controller reads from M now (empty when there is no M)."""
        return self.state.h[0] if self.state is not None else torch.zeros(0)

    @torch.no_grad()
    def encode(self, frame: np.ndarray) -> torch.Tensor:
        """One uint8 frame (64, 64, 3) -> z (Z,)."""
        mu, logvar = self.vae.encode(frames_to_tensor(frame))
        if self.sample_z:
            eps = torch.randn(mu.shape, generator=self.generator)
            return (mu + torch.exp(0.5 * logvar) * eps)[0]
        return mu[0]

    @torch.no_grad()
    def act(self, frame: np.ndarray):
        """See a frame, choose the env action, then let M remember (z, a)."""
        z = self.encode(frame)
        action = self.controller.act(z, self.h if self.mdnrnn is not None else None)
        if self.mdnrnn is not None:
            a = torch.from_numpy(encode_actions(np.asarray([action]) if np.ndim(action) == 0
                                                else np.asarray(action)[None], self.action_space))  # (1, A)
            self.state = self.mdnrnn.step(z[None], a, self.state).state
        return action


def play_episode(env: gym.Env, agent: WorldModelAgent, seed: int | None = None,
                 max_steps: int | None = None) -> Rollout:
    """One episode in the real env: Rollout(return, real steps taken)."""
    obs, _ = env.reset(seed=seed)
    agent.reset()
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
        total += float(reward)
        steps += 1
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            return Rollout(total, steps)


def _load_vae(name):
    from wmlib.vae import load_vae

    return load_vae(str(name))


def _load_mdnrnn(name):
    from wmlib.mdnrnn import load_mdnrnn

    return load_mdnrnn(str(name))


@dataclasses.dataclass
class ControllerRollout:
    """rollout_fn(params, seed) -> Rollout for CMA-ES: one real episode with C's parameters set to params.

    env_name:   "cartpole-pixels" or "carracing"
    vae:        a shipped name ("cartpole", "carracing") or a checkpoint path stem
    mdnrnn:     likewise; ignored when controller.h_dim == 0 ("V only")
    controller: the ControllerConfig whose flat parameters CMA-ES searches
    max_steps:  cut episodes after this many steps (None: the env's own limit)
    Picklable: V, M and the env are built lazily, once per process, on the first call.
    """

    env_name: str
    vae: str
    mdnrnn: str | None
    controller: ControllerConfig
    max_steps: int | None = None
    sample_z: bool = False

    def __post_init__(self):
        self.vae = str(self.vae)
        self.mdnrnn = None if self.mdnrnn is None else str(self.mdnrnn)
        self._agent = None
        self._env = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_agent", "_env")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._agent = self._env = None

    def build(self) -> tuple[gym.Env, WorldModelAgent]:
        """The env and the agent (made on the first call in this process, then reused)."""
        if self._agent is None:
            self._env = make_env(self.env_name)
            vae = _load_vae(self.vae)
            mdnrnn = _load_mdnrnn(self.mdnrnn) if self.controller.h_dim > 0 else None
            self._agent = WorldModelAgent(vae, mdnrnn, LinearController(self.controller),
                                          self._env.action_space, sample_z=self.sample_z)
        return self._env, self._agent

    def __call__(self, params: np.ndarray, seed: int) -> Rollout:
        env, agent = self.build()
        agent.controller.set_flat_params(params)
        agent.generator.manual_seed(int(seed))
        return play_episode(env, agent, seed=int(seed), max_steps=self.max_steps)


def controller_rollout_for(env_name: str, vae: str | Path, mdnrnn: str | Path | None, *,
                           use_h: bool = True, max_steps: int | None = None) -> ControllerRollout:
    """A ControllerRollout whose controller fits the given V and M (z only when use_h is False)."""
    from wmlib.checkpoints import read_metadata
    from wmlib.controller import controller_config_for

    def stem(name, kind):
        from wmlib.checkpoints import assets_dir

        return assets_dir() / f"{name}_{kind}" if name in ("cartpole", "carracing") else Path(name)

    if use_h and mdnrnn is None:
        raise ValueError("a controller that reads h needs M: pass mdnrnn (or use_h=False for 'V only')")
    z_dim = int(read_metadata(stem(str(vae), "vae"))["config"]["z_dim"])
    h_dim = int(read_metadata(stem(str(mdnrnn), "mdnrnn"))["config"]["hidden_size"]) if use_h else 0
    return ControllerRollout(env_name, str(vae), None if mdnrnn is None else str(mdnrnn),
                             controller_config_for(env_name, z_dim, h_dim), max_steps=max_steps)
