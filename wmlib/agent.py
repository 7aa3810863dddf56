"""The whole agent in a real environment: V sees, M remembers, C acts.

Every step, in this order (the paper's loop):

    z_t      = V.encode(frame_t)                     what the agent sees, compressed  (Z,)
    a_t      = C(z_t, h_t)                           decided from the present and the memory
    h_{t+1}  = M.step(z_t, a_t, (h_t, c_t))          the memory takes in what was seen and done

`WorldModelAgent.decide` does the first two lines, `remember` the third, and `act` both: the
real-env player, the pipeline's explorer (which may swap C's action for a random one before M
remembers it) and `input_statistics` (random actions) all go through `remember`.

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
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from wmlib.config import ControllerConfig
from wmlib.controller import (
    LinearController,
    controller_config_for,
    fold_standardization,
    unfold_standardization,
)
from wmlib.envs import action_dim, encode_actions, make_env
from wmlib.evaluators import Rollout, SerialEvaluator
from wmlib.rollouts import frames_to_tensor


class Decision(NamedTuple):
    """What the agent saw and chose in one step (`WorldModelAgent.decide`)."""

    z: torch.Tensor
    """(Z,) the latent of the frame (V's mean, or a sample with sample_z)."""
    action: object
    """The env action C chose: an int for a Discrete space, a float32 array (A,) for a Box."""


class WorldModelAgent:
    """V + M + C acting on 64x64x3 frames: `decide` (V, then C), then `remember` (M).

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
    def decide(self, frame: np.ndarray) -> Decision:
        """See a frame and choose: z_t = V(frame_t), a_t = C(z_t, h_t). M is not touched (see `remember`)."""
        z = self.encode(frame)
        return Decision(z, self.controller.act(z, self.h if self.mdnrnn is not None else None))

    @torch.no_grad()
    def remember(self, z: torch.Tensor, action) -> None:
        """Let M take in what was seen and done: h_{t+1} = M.step(z_t, a_t, h_t).

        z: (Z,) from `decide` or `encode`; action: the env action really taken (C's, or a random one
        while exploring). M reads it as the world's encoding: one-hot for a Discrete space, the floats
        of a Box as they are (wmlib.envs.encode_actions). Nothing happens when there is no M.
        """
        if self.mdnrnn is None:
            return
        a = torch.from_numpy(encode_actions(np.asarray(action)[None], self.action_space))  # (1, A)
        self.state = self.mdnrnn.step(z[None], a, self.state).state

    def act(self, frame: np.ndarray):
        """One step of the paper's loop: decide, then remember; returns the env action."""
        z, action = self.decide(frame)
        self.remember(z, action)
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


@torch.no_grad()
def input_statistics(env: gym.Env, vae, mdnrnn, *, episodes: int = 30, seed: int = 0,
                     floor: float = 1e-3) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and spread of C's input [z; h] over random-policy episodes in the real env.

    Why: C's inputs come on wildly different scales. A V trained with free bits may keep z far from
    N(0, 1) (a z dimension can sit near 1.3 and move by 0.02 between frames), and h lives in
    (-1, 1). A random W then mostly reads the constant offsets, and nearly every candidate CMA-ES
    tries is "always push left". Searching in standardised coordinates, x~ = (x - m) / s, fixes
    that without changing what C can express (see controller.fold_standardization).
    Returns mean (Z+H,), std (Z+H,) (floored at `floor` times the largest, so no division by ~0),
    and the real env steps it took. H = 0 when mdnrnn is None.
    """
    agent = WorldModelAgent(vae, mdnrnn, LinearController(_config_for_parts(vae, mdnrnn)), env.action_space)
    env.action_space.seed(seed)
    rows, steps = [], 0
    for i in range(episodes):
        frame, _ = env.reset(seed=seed + i)
        agent.reset()
        done = False
        while not done:
            z = agent.encode(frame)
            rows.append(torch.cat([z, agent.h]).numpy())
            action = env.action_space.sample()
            agent.remember(z, action)
            frame, _, terminated, truncated, _ = env.step(action)
            steps += 1
            done = terminated or truncated
    x = np.stack(rows).astype(np.float64)
    std = x.std(axis=0)
    return x.mean(axis=0), np.maximum(std, floor * std.max()), steps


def _config_for_parts(vae, mdnrnn) -> ControllerConfig:
    h_dim = 0 if mdnrnn is None else mdnrnn.config.hidden_size
    return ControllerConfig(z_dim=vae.config.z_dim, h_dim=h_dim, action_dim=1, action_map="identity")


@dataclasses.dataclass
class ControllerRollout:
    """rollout_fn(params, seed) -> Rollout for CMA-ES: one real episode with C's parameters set to params.

    env_name:   a world's name (wmlib.tasks.WORLDS), e.g. "cartpole-pixels"
    vae:        a shipped name ("cartpole", "carracing") or a checkpoint path stem
    mdnrnn:     likewise; ignored when controller.h_dim == 0 ("V only")
    controller: the ControllerConfig of C
    max_steps:  cut episodes after this many steps (None: the env's own limit)
    input_mean, input_std: when given, `params` are C's weights on standardised inputs (the
                coordinates CMA-ES searches in) and are folded into C's raw W, b before acting
    Picklable: V, M and the env are built lazily, once per process, on the first call.
    """

    env_name: str
    vae: str
    mdnrnn: str | None
    controller: ControllerConfig
    max_steps: int | None = None
    sample_z: bool = False
    input_mean: tuple[float, ...] | None = None
    input_std: tuple[float, ...] | None = None
    calibration_env_steps: int = 0
    """Real steps spent measuring input_mean and input_std (counted in the training budget)."""

    def __post_init__(self):
        self.vae = str(self.vae)
        self.mdnrnn = None if self.mdnrnn is None else str(self.mdnrnn)
        if (self.input_mean is None) != (self.input_std is None):
            raise ValueError("give both input_mean and input_std, or neither")
        if self.input_mean is not None:
            self.input_mean = tuple(float(v) for v in self.input_mean)
            self.input_std = tuple(float(v) for v in self.input_std)
            n_in = self.controller.z_dim + self.controller.h_dim
            if len(self.input_mean) != n_in or len(self.input_std) != n_in:
                raise ValueError(f"input_mean and input_std need {n_in} values (Z + H), "
                                 f"got {len(self.input_mean)} and {len(self.input_std)}")
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

    def controller_params(self, params: np.ndarray) -> np.ndarray:
        """C's raw flat [W, b] for a search vector (folding the standardisation in, if any)."""
        if self.input_mean is None:
            return np.asarray(params, dtype=np.float64)
        return fold_standardization(params, self.input_mean, self.input_std, self.controller.action_dim)

    def __call__(self, params: np.ndarray, seed: int) -> Rollout:
        env, agent = self.build()
        agent.controller.set_flat_params(self.controller_params(params))
        agent.generator.manual_seed(int(seed))
        return play_episode(env, agent, seed=int(seed), max_steps=self.max_steps)


def controller_rollout_for(env_name: str, vae: str | Path, mdnrnn: str | Path | None, *,
                           use_h: bool = True, max_steps: int | None = None,
                           standardize_episodes: int = 0, seed: int = 0) -> ControllerRollout:
    """A ControllerRollout whose controller fits the given V and M (z only when use_h is False).

    standardize_episodes > 0 first plays that many random-policy episodes (seeds `seed`, ...) to
    measure C's input statistics (`input_statistics`); the real steps they took are in
    `.calibration_env_steps`.
    """
    if use_h and mdnrnn is None:
        raise ValueError("a controller that reads h needs M: pass mdnrnn (or use_h=False for 'V only')")
    v = _load_vae(vae)
    m = _load_mdnrnn(mdnrnn) if use_h else None
    config = controller_config_for(env_name, v.config.z_dim, m.config.hidden_size if use_h else 0)
    fn = ControllerRollout(env_name, str(vae), None if mdnrnn is None else str(mdnrnn), config,
                           max_steps=max_steps)
    if standardize_episodes > 0:
        env = make_env(env_name)
        mean, std, steps = input_statistics(env, v, m, episodes=standardize_episodes, seed=seed)
        env.close()
        fn = dataclasses.replace(fn, input_mean=tuple(mean), input_std=tuple(std), calibration_env_steps=steps)
    return fn


# ---------------------------------------------------------------------------------------------
# Training and evaluating C in the real environment
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class EvaluationResult:
    """Returns and real env steps of one controller over several episodes."""

    returns: np.ndarray
    steps: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def env_steps(self) -> int:
        return int(np.sum(self.steps))

    def summary(self) -> dict:
        return {"episodes": len(self.returns), "mean": round(self.mean, 2), "std": round(self.std, 2),
                "min": float(np.min(self.returns)), "max": float(np.max(self.returns)),
                "env_steps": self.env_steps}


EVAL_SEED_START = 1_000_000
"""Evaluation episodes use seeds EVAL_SEED_START, +1, ...; training draws its own from CMA-ES's rng."""


def evaluate_controller(evaluator, params: np.ndarray, episodes: int = 100, *,
                        seed_start: int = EVAL_SEED_START, progress: bool = True,
                        desc: str = "evaluating C in the real env") -> EvaluationResult:
    """Play `episodes` episodes with one parameter vector (seeds seed_start, seed_start + 1, ...)."""
    from tqdm.auto import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    params = np.asarray(params, dtype=np.float64)[None]
    returns, steps = [], []
    seeds = list(range(seed_start, seed_start + episodes))
    chunk = 10
    with tqdm(total=episodes, desc=desc, unit="episode", disable=not progress) as bar:
        for i in range(0, episodes, chunk):
            ev = evaluator(params, seeds[i : i + chunk])
            returns.extend(ev.returns[0].tolist())
            steps.extend(ev.steps[0].tolist())
            bar.update(len(seeds[i : i + chunk]))
            bar.set_postfix(mean=f"{np.mean(returns):.1f}")
    return EvaluationResult(np.asarray(returns), np.asarray(steps, dtype=np.int64))


@dataclasses.dataclass
class ControllerTrainResult:
    """What `train_controller` returns.

    controller: the LinearController with the picked parameters (raw W, b: standardisation folded in)
    search_params: the picked vector in the coordinates CMA-ES searched (what rollout_fn takes)
    cma:        the CMA-ES result (history per generation, best candidate, final mean)
    picked:     "best" (the best candidate seen) or "mean" (the final centre of the search)
    selection:  {"best": EvaluationResult, "mean": EvaluationResult} on fresh seeds, used to pick
    """

    controller: LinearController
    search_params: np.ndarray
    cma: object
    picked: str
    selection: dict
    calibration_env_steps: int = 0

    @property
    def training_env_steps(self) -> int:
        return self.cma.total_env_steps

    @property
    def selection_env_steps(self) -> int:
        return sum(r.env_steps for r in self.selection.values())

    @property
    def total_env_steps(self) -> int:
        """Every real step training used: calibration, CMA-ES generations and the final pick."""
        return self.calibration_env_steps + self.training_env_steps + self.selection_env_steps


def train_controller(rollout_fn: ControllerRollout, config=None, *, seed: int = 0,
                     generations: int | None = None, evaluator=None, target_fitness: float | None = None,
                     target_mean_fitness: float | None = None, max_env_steps: int | None = None,
                     checkpoint=None, select_episodes: int = 8, record: bool = False,
                     progress: bool = True, x0: np.ndarray | None = None) -> ControllerTrainResult:
    """Train C with CMA-ES in the real env, then pick between the best candidate and the final mean.

    The best candidate's fitness is a maximum over noisy estimates (optimistic); the mean of the
    search distribution is often the more robust policy. Both play `select_episodes` fresh
    episodes (seeds after the evaluation range's) and the better one is kept.
    evaluator: from wmlib.evaluators.make_evaluator (default: a serial one); config: CMAESConfig.
    x0: where the search starts, in search coordinates (default zeros; see `search_start`).
    """
    from wmlib.cmaes import train_cmaes
    from wmlib.config import CMAESConfig

    config = CMAESConfig() if config is None else config
    evaluator = SerialEvaluator(rollout_fn) if evaluator is None else evaluator
    controller = LinearController(rollout_fn.controller)
    x0 = np.zeros(controller.num_params) if x0 is None else np.asarray(x0, dtype=np.float64)
    cma_result = train_cmaes(evaluator, x0, config, seed=seed,
                             generations=generations, target_fitness=target_fitness,
                             target_mean_fitness=target_mean_fitness, max_env_steps=max_env_steps,
                             checkpoint=checkpoint,
                             record=record, progress=progress, desc="CMA-ES generations (real env)")
    selection = {}
    for name, params in (("best", cma_result.best_params), ("mean", cma_result.mean)):
        selection[name] = evaluate_controller(evaluator, params, select_episodes,
                                              seed_start=2 * EVAL_SEED_START, progress=progress,
                                              desc=f"checking the {name} candidate")
    picked = "best" if selection["best"].mean >= selection["mean"].mean else "mean"
    search_params = cma_result.best_params if picked == "best" else cma_result.mean
    controller.set_flat_params(rollout_fn.controller_params(search_params))
    return ControllerTrainResult(controller, np.array(search_params), cma_result, picked, selection,
                                 calibration_env_steps=rollout_fn.calibration_env_steps)


def search_start(rollout_fn: ControllerRollout, controller: LinearController) -> np.ndarray:
    """A trained controller's raw W, b as a starting point in rollout_fn's search coordinates.

    Used to continue from an earlier run (a second stage with a smaller step size, say): the
    standardisation may differ between runs, so we go through the raw parameters.
    """
    c, want = controller.config, rollout_fn.controller
    if (c.z_dim, c.h_dim, c.action_dim) != (want.z_dim, want.h_dim, want.action_dim):
        raise ValueError(f"cannot start from a controller for (z {c.z_dim}, h {c.h_dim}, a {c.action_dim}): "
                         f"this run's is (z {want.z_dim}, h {want.h_dim}, a {want.action_dim})")
    params = controller.get_flat_params()
    if rollout_fn.input_mean is None:
        return params
    return unfold_standardization(params, rollout_fn.input_mean, rollout_fn.input_std, c.action_dim)


def load_controller(name: str | Path) -> LinearController:
    """A shipped C by name ("cartpole", "cartpole_zonly", or with "_controller") or a checkpoint by path stem.

    Its metadata (command, input statistics, history): `wmlib.checkpoints.read_metadata(name, "controller")`.
    """
    from wmlib.checkpoints import load_named

    return load_named(LinearController, ControllerConfig, name, "controller").model
