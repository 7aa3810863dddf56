"""Latent episodes: what M trains on. V encodes every frame once; M then reads numbers, not pictures.

An encoded episode of T steps holds

    mu, logvar  (T+1, Z) float32   V's Gaussian over each frame's latent
    actions     (T,) ints (discrete) or (T, A) floats; in memory always (T, A) float32, one-hot when discrete
    rewards     (T,)    terminated (T,) bool

Files are written by `python -m wmlib encode` (wmlib.vae.encode_rollouts); `encode_episodes` does the
same for episodes in memory. Latents are small (64 numbers per frame against 12,288 pixels), so they
are all kept in memory. For training, `cut_windows` cuts episodes into fixed-length windows, and
`sample_latents` draws a fresh z = mu + sigma * eps per batch, so M never sees the same latent twice.

Introduced in: course/03_memory.ipynb
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wmlib.vae import ConvVAE, encode_frames, reparameterize

LATENT_KEYS = ("mu", "logvar", "actions", "rewards", "terminated")
"""The arrays of an encoded episode (see the module docstring for their shapes)."""

ENCODE_COMMAND = "python -m wmlib encode --vae VAE --rollouts DIR --out {out}"
"""How encoded episodes are made (with the output folder filled in)."""


def as_action_vectors(actions: np.ndarray, action_dim: int) -> np.ndarray:
    """Actions as M reads them, (T, A) float32: one-hot for discrete actions (T,) ints, as-is for (T, A)."""
    actions = np.asarray(actions)
    if actions.ndim == 1:
        if len(actions) and (actions.min() < 0 or actions.max() >= action_dim):
            raise ValueError(f"discrete actions {actions.min()}..{actions.max()} do not fit "
                             f"action_dim = {action_dim}")
        return np.eye(action_dim, dtype=np.float32)[actions.astype(np.int64)]
    if actions.ndim != 2 or actions.shape[1] != action_dim:
        raise ValueError(f"actions are {actions.shape}, expected (T,) discrete or (T, {action_dim})")
    return actions.astype(np.float32)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The LATENT_KEYS arrays of one file; a ValueError naming the file for anything unreadable."""
    rebuild = f"delete it and encode the rollouts again: `{ENCODE_COMMAND.format(out=path.parent)}`"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in LATENT_KEYS if k in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:  # cut short (a killed run, a full disk)
        raise ValueError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); {rebuild}") from exc
    except OSError as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc}); {rebuild}") from exc
    missing = [k for k in LATENT_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; expected the arrays {', '.join(LATENT_KEYS)} "
                         f"(encode rollouts with `{ENCODE_COMMAND.format(out=path.parent)}`)")
    return arrays


def load_latent_episodes(source: str | os.PathLike | Sequence[str | os.PathLike],
                         action_dim: int | None = None) -> list[dict[str, np.ndarray]]:
    """Read encoded episodes (a directory of .npz files, or a list of files) into memory.

    action_dim: A; discrete actions (T,) are one-hot encoded to (T, A), so it is required for them.
    A missing, truncated or inconsistent file gives an error naming it and saying how to remake it.
    """
    if isinstance(source, (str, os.PathLike)):
        directory = Path(source)
        files = sorted(directory.glob("*.npz")) if directory.is_dir() else []
        if not files:
            raise FileNotFoundError(f"no encoded episodes (.npz) in {directory}; make them with "
                                    f"`{ENCODE_COMMAND.format(out=directory)}`")
    else:
        files = [Path(f) for f in source]
    episodes = []
    for path in files:
        episode = _read_npz(path)
        T = len(episode["actions"])
        if episode["mu"].shape[0] != T + 1 or episode["logvar"].shape != episode["mu"].shape:
            raise ValueError(f"{path}: mu {episode['mu'].shape} and logvar {episode['logvar'].shape} "
                             f"should be (T+1, Z) = ({T + 1}, Z) for {T} actions")
        if episode["actions"].ndim == 1 and action_dim is None:
            raise ValueError(f"{path} holds discrete actions: pass action_dim to one-hot encode them")
        try:
            width = action_dim if action_dim is not None else episode["actions"].shape[1]
            episode["actions"] = as_action_vectors(episode["actions"], width)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        episode["mu"] = episode["mu"].astype(np.float32)
        episode["logvar"] = episode["logvar"].astype(np.float32)
        episode["rewards"] = episode["rewards"].astype(np.float32)
        episode["terminated"] = episode["terminated"].astype(bool)
        episodes.append(episode)
    if not episodes:
        raise ValueError("no encoded episodes given")
    return episodes


def encode_episodes(vae: ConvVAE, episodes: Sequence[dict[str, np.ndarray]], action_dim: int,
                    progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Encode in-memory episodes (`wmlib.rollouts.load_episode` / `play_episode` dicts with frames)
    with V into what M trains on: mu, logvar (T+1, Z), actions (T, A) float32, rewards, terminated.

    For files on disk, `python -m wmlib encode` does the same once.
    """
    out = []
    for ep in tqdm(episodes, desc="encoding episodes with V", unit="episode", disable=not progress):
        if "frames" not in ep:
            raise ValueError(f"episodes need frames to encode; got keys {sorted(ep)}")
        mu, logvar = encode_frames(vae, ep["frames"])
        out.append({"mu": mu.numpy(), "logvar": logvar.numpy(),
                    "actions": as_action_vectors(ep["actions"], action_dim),
                    "rewards": np.asarray(ep["rewards"], np.float32),
                    "terminated": np.asarray(ep["terminated"], bool)})
    return out


def cut_windows(episodes: Sequence[dict[str, np.ndarray]], seq_len: int,
                rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Cut episodes into windows of `seq_len` transitions, covering every transition once.

    With an rng, each episode's cuts are shifted by a random phase, so the windows differ from
    epoch to epoch; the final (terminal) transitions are always included. Short windows are padded.
    Returns arrays with a leading window axis N:
        mu, logvar (N, L+1, Z)   actions (N, L+1, A), the last row padding
        rewards, terminated, mask (N, L)   mask marks real transitions
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    L = seq_len
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*LATENT_KEYS, "mask")}
    for ep in episodes:
        T = len(ep["actions"])
        phase = int(rng.integers(L)) if rng is not None and T > L else 0
        cuts = sorted({0, T, *range(phase, T, L)} if phase else {0, T, *range(L, T, L)})
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            n = b - a
            for key, arr in (("mu", ep["mu"][a : b + 1]), ("logvar", ep["logvar"][a : b + 1]),
                             ("actions", ep["actions"][a:b]), ("rewards", ep["rewards"][a:b]),
                             ("terminated", ep["terminated"][a:b]), ("mask", np.ones(n, bool))):
                full = L + 1 if key in ("mu", "logvar", "actions") else L
                pad = np.zeros((full - len(arr), *arr.shape[1:]), arr.dtype)
                out[key].append(np.concatenate([arr, pad]))
    return {k: np.stack(v) for k, v in out.items()}


def batch_tensors(windows: dict[str, np.ndarray], idx: np.ndarray,
                  device: torch.device | str) -> dict[str, torch.Tensor]:
    """Windows idx of `cut_windows`' arrays as tensors on `device` (same keys)."""
    return {k: torch.from_numpy(v[idx]).to(device) for k, v in windows.items()}


def sample_latents(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """z = mu + sigma * eps (wmlib.vae.reparameterize), eps drawn on the CPU from `generator` so that the
    draws do not depend on the device. mu, logvar: (...) -> z (...)."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return reparameterize(mu, logvar, eps)
