"""Checkpoints: weights as safetensors, the config and metadata as JSON beside them. No pickle.

    save_checkpoint(model, config, "assets/cartpole_vae")   # writes .safetensors and .json
    model = load_checkpoint(ConvVAE, VAEConfig, "assets/cartpole_vae")

Writes are atomic (temporary file, then rename), so an interrupted run never leaves half a file.
A missing, corrupt or mismatched checkpoint gives a `CheckpointError` that names the file and,
when the metadata records one, the command that rebuilds it.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

M = TypeVar("M", bound=torch.nn.Module)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or made for another model or config."""


def assets_dir() -> Path:
    """The repository's assets/ folder, where the shipped checkpoints live (works from any cwd)."""
    return Path(__file__).resolve().parent.parent / "assets"


def data_fingerprint(items) -> str:
    """A short sha256 naming a training set, so a checkpoint is never resumed on other data.

    items: rollout files (their names and sizes are hashed) or numpy arrays (their bytes).
    """
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for item in items:
        if isinstance(item, np.ndarray):
            h.update(np.ascontiguousarray(item).tobytes())
        else:
            path = Path(item)
            h.update(f"{path.name}:{path.stat().st_size};".encode())
    return h.hexdigest()[:16]


def check_resumable(previous_metadata: dict, fingerprint: str, stem: str | os.PathLike) -> None:
    """Refuse to resume a checkpoint that was trained on other data (see `data_fingerprint`)."""
    old = previous_metadata.get("data_fingerprint")
    if old is not None and old != fingerprint:
        raise CheckpointError(f"{stem}.json holds a run on other data (fingerprint {old}, these data {fingerprint}); "
                              "delete it (and its .optim.safetensors) or choose another --work path")


def _paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    stem = Path(stem)
    if stem.suffix in {".safetensors", ".json"}:
        stem = stem.with_suffix("")
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Atomically write a flat dict of tensors as safetensors."""
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_write(Path(path), lambda tmp: save_file(contiguous, tmp))


def save_json(path: str | os.PathLike, data: dict) -> None:
    """Atomically write JSON."""

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")

    _atomic_write(Path(path), write)


def save_checkpoint(
    model: torch.nn.Module,
    config: Any,
    stem: str | os.PathLike,
    *,
    metadata: dict | None = None,
    half: bool = False,
) -> tuple[Path, Path]:
    """Save `model`'s weights to STEM.safetensors and {kind, config, metadata} to STEM.json.

    config:   the frozen dataclass the model was built from
    metadata: anything JSON-able worth keeping (the command and seed that made it, the history)
    half:     store floating-point weights as float16 (loading casts back to float32)
    """
    weights_path, json_path = _paths(stem)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    save_tensors(weights_path, state)
    save_json(json_path, {
        "kind": type(model).__name__,
        "config_class": type(config).__name__,
        "config": dataclasses.asdict(config),
        "metadata": metadata or {},
    })
    return weights_path, json_path


def read_metadata(stem: str | os.PathLike) -> dict:
    """The JSON that sits beside a checkpoint's weights."""
    _, json_path = _paths(stem)
    if not json_path.is_file():
        raise CheckpointError(f"checkpoint config {json_path} does not exist")
    try:
        return json.loads(json_path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"checkpoint config {json_path} is not valid JSON ({exc})") from exc


def _rebuild_hint(meta: dict) -> str:
    cmd = meta.get("metadata", {}).get("command")
    return f"; rebuild it with: {cmd}" if cmd else ""


def load_checkpoint(model_class: type[M], config_class: type, stem: str | os.PathLike,
                    device: torch.device | str = "cpu") -> M:
    """Build `model_class(config)` from STEM.json and load STEM.safetensors into it (no pickle).

    Raises CheckpointError naming the file (and the rebuild command, when recorded) if anything
    is missing, corrupt, or made for another model or config.
    """
    weights_path, json_path = _paths(stem)
    meta = read_metadata(stem)
    hint = _rebuild_hint(meta)
    if meta.get("kind") != model_class.__name__:
        raise CheckpointError(f"{json_path} holds a {meta.get('kind')!r}, not a {model_class.__name__}{hint}")
    try:
        config = config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{json_path} has a config that {config_class.__name__} does not accept ({exc}){hint}"
        ) from exc
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint weights {weights_path} do not exist{hint}")
    try:
        state = load_file(str(weights_path))
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint weights {weights_path} are corrupt or not safetensors ({exc}){hint}"
        ) from exc
    model = model_class(config)
    expected = model.state_dict()
    for k, v in state.items():
        if k in expected and v.is_floating_point():
            state[k] = v.to(expected[k].dtype)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint weights {weights_path} do not fit {model_class.__name__}({config}): "
                              f"{str(exc).splitlines()[0]}{hint}") from exc
    model.checkpoint_metadata = meta.get("metadata", {})
    return model.to(device).eval()
