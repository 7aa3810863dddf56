"""Rollouts: play episodes with any policy, store them as compressed .npz files, stream them back.

One file holds one episode of T steps:

    frames      (T+1, 64, 64, 3) uint8   frames[t] is what the agent saw before actions[t];
                                          frames[T] is the last observation
    actions     (T,) int64 (Discrete)  or (T, A) float32 (Box)
    rewards     (T,) float32             reward for actions[t]
    terminated  (T,) bool                the episode ended in a terminal state after actions[t]
    truncated   (T,) bool                the time limit cut it after actions[t]
    env         () str                   the world it was played in (files written by `collect`)

For state-vector environments ("cartpole") the key is `observations` (T+1, D) float32 instead.

The datasets below read one file at a time, so memory stays flat however many rollouts there are.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from tqdm.auto import tqdm

from wmlib.config import SettingError, check_int
from wmlib.envs import make_env

Policy = Callable[[np.ndarray, dict], object]
"""A policy maps (observation, info) to an action for the environment."""

REQUIRED_KEYS = ("actions", "rewards", "terminated", "truncated")


class RolloutFileError(ValueError):
    """A rollout file is missing or does not hold what `collect` writes."""


def random_policy(env: gym.Env) -> Policy:
    """Uniformly random actions from env's action space (seed it with env.action_space.seed)."""
    return lambda observation, info: env.action_space.sample()


def smooth_random_policy(env: gym.Env, *, change_prob: float = 0.1, smoothing: float = 0.3) -> Policy:
    """Random actions that change slowly, so a car actually drives somewhere (for CarRacing).

    The uniform random policy flips the steering every step and brakes half the time: the car
    jitters near the start. Here a random target action is redrawn with probability
    `change_prob` per step and the action moves a fraction `smoothing` towards it each step.
    For a (steer, gas, brake) Box like CarRacing's, the gas target is drawn from [0.05, 0.35]
    (gentle: full gas flies off the track at the first bend), the brake is off nine targets in
    ten and the steering target is N(0, 0.5^2) clipped to [-1, 1], so the car drives, follows
    some bends and leaves the track now and then. A Discrete space gets sticky actions (the same
    action is kept until the target is redrawn).
    Randomness comes from env.action_space.np_random (seeded by `collect`).
    """
    space = env.action_space
    rng = space.np_random
    car = isinstance(space, gym.spaces.Box) and space.shape == (3,)

    def draw():
        if isinstance(space, gym.spaces.Discrete):
            return int(rng.integers(space.n))
        if car:
            brake = 0.0 if rng.random() < 0.9 else rng.uniform(0.0, 0.5)
            steer = float(np.clip(rng.normal(0.0, 0.5), -1.0, 1.0))
            return np.array([steer, rng.uniform(0.05, 0.35), brake], np.float32)
        return space.sample()

    state = {"target": draw(), "action": None}

    def act(observation, info):
        if rng.random() < change_prob:
            state["target"] = draw()
        if isinstance(space, gym.spaces.Discrete) or state["action"] is None:
            state["action"] = state["target"]
        else:
            step = state["action"] + smoothing * (state["target"] - state["action"])
            state["action"] = np.clip(step, space.low, space.high).astype(space.dtype)
        return state["action"]

    return act


POLICIES: dict[str, Callable[[gym.Env], Policy]] = {"random": random_policy, "smooth": smooth_random_policy}
"""Policy factories by name, for `python -m wmlib collect --policy NAME`."""


def play_episode(env: gym.Env, policy: Policy, seed: int | None = None, max_steps: int | None = None) -> dict:
    """Run one episode and return it as a dict of arrays in the file layout above."""
    obs, info = env.reset(seed=seed)
    observations, actions, rewards, terminated, truncated = [obs], [], [], [], []
    steps = 0
    while True:
        action = policy(obs, info)
        obs, reward, term, trunc, info = env.step(action)
        steps += 1
        if max_steps is not None and steps >= max_steps:
            trunc = True
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        if term or trunc:
            break
    obs_array = np.stack(observations)
    key = "frames" if obs_array.dtype == np.uint8 and obs_array.ndim == 4 else "observations"
    if isinstance(env.action_space, gym.spaces.Discrete):
        action_array = np.asarray(actions, dtype=np.int64)
    else:
        action_array = np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)
    return {
        key: obs_array if key == "frames" else obs_array.astype(np.float32),
        "actions": action_array,
        "rewards": np.asarray(rewards, dtype=np.float32),
        "terminated": np.asarray(terminated, dtype=bool),
        "truncated": np.asarray(truncated, dtype=bool),
    }


def save_episode(path: str | os.PathLike, episode: dict) -> Path:
    """Write an episode atomically (temporary file, then rename) as compressed .npz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **episode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def play_episodes(env_name: str, n_episodes: int, *, policy: Callable[[gym.Env], Policy] = random_policy,
                  seed: int = 0, max_steps: int | None = None) -> Iterator[dict]:
    """Play `n_episodes` in `env_name`, one at a time: episode i resets with seed + i and the action space
    is seeded with `seed`, so the same call gives the same episodes. policy: a factory (given the env)."""
    check_int("n_episodes", n_episodes, 1)
    check_int("seed", seed, 0)
    if max_steps is not None:
        check_int("max_steps", max_steps, 1)
    env = make_env(env_name)  # here, not in the generator, so a bad setting is refused at the call

    def episodes():
        try:
            env.action_space.seed(seed)
            act = policy(env)
            for i in range(n_episodes):
                yield play_episode(env, act, seed=seed + i, max_steps=max_steps)
        finally:
            env.close()

    return episodes()


def episode_world(path: str | os.PathLike) -> str | None:
    """The world an episode file was played in, as `collect` records it (None: a file that does not say)."""
    with np.load(path, allow_pickle=False) as data:
        return str(data["env"]) if "env" in data.files else None


def _check_out_dir(out_dir: Path, env_name: str) -> None:
    """Refuse a path that is a file, or a folder holding episodes of another world (they would mix)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SettingError("out_dir", f"{out_dir} is a file; expected a folder for the episode files")
    for path in sorted(out_dir.glob("*.npz")) if out_dir.is_dir() else ():
        world = episode_world(path)
        if world is not None and world != env_name:
            raise SettingError("out_dir", f"{out_dir} holds episodes of {world} ({path.name}); expected an empty "
                                          f"folder or one of {env_name} episodes (collect into another folder)")


def collect(
    env_name: str,
    n_episodes: int,
    out_dir: str | os.PathLike,
    *,
    policy: Callable[[gym.Env], Policy] = random_policy,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
) -> list[Path]:
    """Play `n_episodes` in `env_name` and save each as out_dir/episode_<its reset seed>.npz (see
    play_episodes): episode i, reset with seed + i, is episode_{seed + i:05d}.npz. So a folder can gather
    several collections (seed 0 for 400 episodes, then seed 400 for more), and the same seed always
    writes the same file.

    Each file also records its world (key `env`); a folder holding another world's episodes is refused.
    max_steps: cut episodes after this many steps (None: the env's own time limit)
    Returns the paths written, in order.
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, env_name)
    episodes = play_episodes(env_name, n_episodes, policy=policy, seed=seed, max_steps=max_steps)
    paths = []
    bar = tqdm(episodes, total=n_episodes, desc=f"collecting {env_name} rollouts", unit="episode",
               disable=not progress)
    steps = 0
    for i, episode in enumerate(bar):
        steps += len(episode["actions"])
        paths.append(save_episode(out_dir / f"episode_{seed + i:05d}.npz", dict(episode, env=np.array(env_name))))
        bar.set_postfix(steps=steps)
    return paths


def rollout_files(directory: str | os.PathLike) -> list[Path]:
    """The episode files in a directory, sorted; a clear error when there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RolloutFileError(f"rollout directory {directory} does not exist; "
                               "create it with `python -m wmlib collect --env ENV --out DIR`")
    files = sorted(directory.glob("*.npz"))
    if not files:
        raise RolloutFileError(f"no .npz rollout files in {directory}; "
                               "create them with `python -m wmlib collect --env ENV --out DIR`")
    return files


def load_episode(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read one episode file and check that it holds what `collect` writes."""
    path = Path(path)
    if not path.is_file():
        raise RolloutFileError(f"rollout file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            episode = {key: data[key] for key in data.files}
    except Exception as exc:
        raise RolloutFileError(f"rollout file {path} is not a readable .npz file ({exc})") from exc
    obs_key = "frames" if "frames" in episode else "observations"
    missing = [k for k in (obs_key, *REQUIRED_KEYS) if k not in episode]
    if missing:
        raise RolloutFileError(f"rollout file {path} lacks {', '.join(missing)}; expected keys frames (or "
                               f"observations), {', '.join(REQUIRED_KEYS)}")
    T = len(episode["actions"])
    for key in REQUIRED_KEYS[1:]:
        if episode[key].shape != (T,):
            raise RolloutFileError(f"rollout file {path}: {key} has shape {episode[key].shape}, expected ({T},)")
    obs = episode[obs_key]
    if len(obs) != T + 1:
        raise RolloutFileError(f"rollout file {path}: {obs_key} has {len(obs)} entries, expected T+1 = {T + 1}")
    if obs_key == "frames" and (obs.dtype != np.uint8 or obs.ndim != 4 or obs.shape[-1] != 3):
        raise RolloutFileError(
            f"rollout file {path}: frames are {obs.shape} {obs.dtype}, expected (T+1, H, W, 3) uint8"
        )
    return episode


def _worker_share(files: Sequence[Path]) -> list[Path]:
    info = get_worker_info()
    if info is None:
        return list(files)
    return list(files)[info.id :: info.num_workers]


class FrameDataset(IterableDataset):
    """Streams single frames (C, H, W) float32 in [0, 1] from episode files, shuffled.

    Files are visited in a random order each epoch; frames pass through a shuffle buffer of at
    most `buffer_frames` frames, so memory stays flat however many files there are.
    """

    def __init__(self, files: Sequence[str | os.PathLike], *, buffer_frames: int = 4096, seed: int = 0):
        self.files = [Path(f) for f in files]
        if not self.files:
            raise RolloutFileError("FrameDataset needs at least one rollout file")
        self.buffer_frames = int(buffer_frames)
        self.seed = seed
        self.epoch = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, get_worker_info().id if get_worker_info() else 0))
        self.epoch += 1
        files = _worker_share(self.files)
        buffer: list[np.ndarray] = []
        for i in rng.permutation(len(files)):
            episode = load_episode(files[i])
            if "frames" not in episode:
                raise RolloutFileError(f"rollout file {files[i]} holds state observations, not frames")
            buffer.extend(episode["frames"])
            while len(buffer) > self.buffer_frames:
                j = int(rng.integers(len(buffer)))
                buffer[j], buffer[-1] = buffer[-1], buffer[j]
                yield _to_chw(buffer.pop())
        for j in rng.permutation(len(buffer)):
            yield _to_chw(buffer[j])


def _to_chw(frame: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1))).float().div_(255.0)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 frames -> (N, C, H, W) float32 in [0, 1]; a clear error otherwise."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (N, H, W, 3) or (H, W, 3), got {frames.shape} {frames.dtype}")
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float().div_(255.0)


class SequenceDataset(IterableDataset):
    """Streams fixed-length windows of episodes: dicts of arrays with a leading time axis.

    files:    .npz files with the arrays named in `keys`, each with a leading time axis
    keys:     which arrays to cut (for example ("mu", "logvar", "actions", "terminated"))
    seq_len:  window length T; an episode shorter than T is skipped unless `pad` is True, in which
              case the window is padded with zeros and a `mask` (T,) bool marks the real steps
    Each file is loaded only while its windows are being yielded.
    """

    def __init__(self, files: Sequence[str | os.PathLike], keys: Sequence[str], seq_len: int, *,
                 pad: bool = True, seed: int = 0):
        self.files = [Path(f) for f in files]
        if not self.files:
            raise RolloutFileError("SequenceDataset needs at least one file")
        if seq_len < 1:
            raise ValueError(f"seq_len must be at least 1, got {seq_len}")
        self.keys, self.seq_len, self.pad, self.seed = tuple(keys), int(seq_len), pad, seed
        self.epoch = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng((self.seed, self.epoch, get_worker_info().id if get_worker_info() else 0))
        self.epoch += 1
        files = _worker_share(self.files)
        for i in rng.permutation(len(files)):
            path = files[i]
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {k: data[k] for k in self.keys}
            except KeyError as exc:
                raise RolloutFileError(f"{path} lacks the array {exc}; expected {', '.join(self.keys)}") from None
            except Exception as exc:
                raise RolloutFileError(f"{path} is not a readable .npz file ({exc})") from exc
            length = min(len(a) for a in arrays.values())
            if length < self.seq_len and not self.pad:
                continue
            starts = range(0, max(length - self.seq_len, 0) + 1, self.seq_len)
            for s in rng.permutation(len(starts)):
                start = starts[s]
                window = {}
                for k, a in arrays.items():
                    piece = a[start : start + self.seq_len]
                    if len(piece) < self.seq_len:
                        piece = np.concatenate([piece, np.zeros((self.seq_len - len(piece), *piece.shape[1:]),
                                                                piece.dtype)])
                    window[k] = torch.from_numpy(np.ascontiguousarray(piece))
                mask = np.zeros(self.seq_len, bool)
                mask[: min(self.seq_len, length - start)] = True
                window["mask"] = torch.from_numpy(mask)
                yield window
