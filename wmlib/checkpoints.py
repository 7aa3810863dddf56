"""Checkpoints: weights as safetensors, the config and metadata as JSON beside them. No pickle.

    save_checkpoint(model, config, "runs/v")                      # runs/v.safetensors, then runs/v.json
    vae, meta = load_checkpoint(ConvVAE, VAEConfig, "runs/v")       # the model and its metadata
    vae, meta = load_named(ConvVAE, VAEConfig, "cartpole", "vae")   # a shipped name, or a path stem

The JSON is the commit point: written last, atomically (a temporary file renamed over the old one),
it records the sha256 of the tensors it covers, so weights changed after it (a run killed between
the two writes) are refused on load. Shipped files older than the hashes load as they are.

A *work unit* (`write_unit`) is several tensor files, each named after its hash
(STEM.weights-<sha>.safetensors, STEM.optimizer-<sha>...), then STEM.json naming them. No file is
rewritten in place, so a kill at any moment leaves the last unit whole; the files a new JSON no longer
names are deleted after it. Training commits one every epoch and resumes only its own
(`wmlib.resume`); CMA-ES commits its search state the same way.

Errors are `CheckpointError`s naming the file; for a shipped name they add the command that rebuilds
it, from the code's table (`wmlib.tasks`), never from the file.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from wmlib.tasks import ShippedCheckpoint, shipped_checkpoint

M = TypeVar("M", bound=torch.nn.Module)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, incomplete, or made for another model, config or run."""


def assets_dir() -> Path:
    """The repository's assets/ folder, where the shipped checkpoints live (works from any cwd)."""
    return Path(__file__).resolve().parent.parent / "assets"


def data_fingerprint(items) -> str:
    """A short sha256 naming a training set, so a checkpoint is never resumed on other data.

    items: rollout files (their names and sizes are hashed) or numpy arrays (their bytes).
    """
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, np.ndarray):
            h.update(np.ascontiguousarray(item).tobytes())
        else:
            path = Path(item)
            h.update(f"{path.name}:{path.stat().st_size};".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Files: written all-or-nothing, read with the file named in every error
# ---------------------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` all-or-nothing: a temporary file beside it, flushed, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> str:
    """Atomically write a flat dict of tensors as safetensors; returns the file's sha256."""
    data = _tensor_bytes(tensors)
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def save_json(path: str | os.PathLike, data: dict) -> None:
    """Atomically write JSON (sorted keys, indented)."""
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    return safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()})


def _stem(stem: str | os.PathLike) -> Path:
    stem = Path(stem)
    return stem.with_suffix("") if stem.suffix in {".safetensors", ".json"} else stem


def json_file(stem: str | os.PathLike) -> Path:
    """STEM.json, the file whose existence says a checkpoint or work unit is there (a .json or .safetensors
    suffix on `stem` is dropped)."""
    return _sibling(_stem(stem), ".json")


def _sibling(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)  # not with_suffix: a stem may hold dots ("v1.5")


def _open(stem: str | os.PathLike) -> tuple[Path, Path, dict]:
    """(the stem, STEM.json, its contents, checked to be a JSON object)."""
    stem = _stem(stem)
    json_path = _sibling(stem, ".json")
    return stem, json_path, _read_json(json_path)


def _read_json(json_path: Path) -> dict:
    if not json_path.is_file():
        raise CheckpointError(f"checkpoint {json_path} does not exist")
    try:
        data = json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {json_path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {json_path} holds a JSON {type(data).__name__}, expected an object")
    return data


def _tensor_files(data: dict, stem: Path, json_path: Path) -> dict[str, Path]:
    """role -> path of each tensor file the JSON covers, each checked against its recorded sha256.

    A work unit's JSON names its files ("files": {role: {name, sha256}}); a finished checkpoint's covers
    STEM.safetensors ("weights_sha256", unchecked in files written before the hashes were recorded).
    """
    files = data.get("files")
    if files is None:
        files = {"weights": {"name": _sibling(stem, ".safetensors").name, "sha256": data.get("weights_sha256")}}
    if not isinstance(files, dict):
        raise CheckpointError(f"{json_path}: 'files' must map roles to {{name, sha256}}, got {files!r:.80}")
    out = {}
    for role, entry in files.items():
        name = entry.get("name") if isinstance(entry, dict) else None
        digest = entry.get("sha256", "") if isinstance(entry, dict) else ""
        if not (isinstance(name, str) and Path(name).name == name and name.endswith(".safetensors")
                and (digest is None or isinstance(digest, str))):
            raise CheckpointError(f"{json_path}: files[{role!r}] must be {{name: a .safetensors file in the "
                                  f"same folder, sha256: hex}}, got {entry!r:.120}")
        path = json_path.parent / name
        if not path.is_file():
            raise CheckpointError(f"{path}, named by {json_path}, does not exist: the checkpoint is incomplete")
        if digest is not None and file_sha256(path) != digest:
            raise CheckpointError(f"{path} does not match the sha256 that {json_path} records for it: it was "
                                  "changed, or only partly written, after the JSON")
        out[role] = path
    return out


def load_tensors(path: Path, expected: dict[str, torch.Tensor] | None = None, *, what: str = "checkpoint weights",
                  fit: str = "the model") -> dict[str, torch.Tensor]:
    """Read a safetensors file, refusing damage, non-finite values and (with `expected`) other names or shapes,
    which are compared in the file's header before any tensor is read.

    what: how errors name the file ("checkpoint weights", "optimizer state")    fit: what `expected` describes
    """
    try:
        with safe_open(str(path), "pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
        if expected is not None:
            want = {k: tuple(v.shape) for k, v in expected.items()}
            problems = [f"{k} is {found.get(k, 'missing')} in the file, {want.get(k, 'nothing')} expected"
                        for k in sorted(set(want) | set(found)) if found.get(k) != want.get(k)]
            if problems:
                raise CheckpointError(f"{what} {path} do not fit {fit}: {'; '.join(problems[:3])}")
        tensors = load_file(str(path))
    except CheckpointError:
        raise
    except Exception as exc:  # missing, or damaged: safetensors raises its own error type
        raise CheckpointError(f"{what} {path} are missing, corrupt or not safetensors ({exc})") from exc
    for name, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{what} {path} hold non-finite values (NaN or inf) in {name!r}")
    return tensors


# ---------------------------------------------------------------------------------------------
# The JSON's config, checked field by field against the config dataclass
# ---------------------------------------------------------------------------------------------


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """(does `value` fit the type `hint`, the value as the dataclass holds it: lists become tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return next(((True, out) for ok, out in (_coerce(value, h) for h in args) if ok), (False, value))
    if origin is tuple and isinstance(value, (list, tuple)):
        pairs = [_coerce(v, args[0]) if args else (True, v) for v in value]
        return all(ok for ok, _ in pairs), tuple(v for _, v in pairs)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {bool: isinstance(value, bool), int: number and isinstance(value, int), str: isinstance(value, str),
          float: number and math.isfinite(value), type(None): value is None}.get(hint, hint is Any)
    return ok, float(value) if ok and hint is float else value


def _build_config(config_class: type, data: dict, json_path: Path):
    raw = data.get("config")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{json_path}: 'config' must be an object of {config_class.__name__} fields, "
                              f"got {raw!r:.80}")
    hints = typing.get_type_hints(config_class)
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(config_class)})
    if unknown:
        raise CheckpointError(f"{json_path}: config field(s) {unknown} are not fields of {config_class.__name__}")
    values = {}
    for key, value in raw.items():
        ok, values[key] = _coerce(value, hints[key])
        if not ok:
            raise CheckpointError(f"{json_path}: config field {key!r} is {value!r:.40} ({type(value).__name__}); "
                                  f"{config_class.__name__} expects {getattr(hints[key], '__name__', hints[key])}")
    try:
        return config_class(**values)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{json_path}: {config_class.__name__} refuses its config ({exc})") from exc


def describe(model: torch.nn.Module, config: Any) -> dict:
    """The JSON's description of a model: {kind (its class name), config_class, config (as a dict)}."""
    return {"kind": type(model).__name__, "config_class": type(config).__name__, "config": dataclasses.asdict(config)}


def _metadata(data: dict, json_path: Path) -> dict:
    meta = data.get("metadata", {})
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path}: 'metadata' must be an object, got {meta!r:.80}")
    return meta


def _check_kind(data: dict, model_class: type, json_path: Path) -> None:
    if data.get("kind") != model_class.__name__:
        raise CheckpointError(f"{json_path} holds a {data.get('kind')!r:.40}, not a {model_class.__name__}")


class Described(NamedTuple):
    """STEM.json, checked to describe a model of the expected class and a valid config (`read_described`)."""

    stem: Path
    json_path: Path
    data: dict
    config: Any
    metadata: dict

    def tensor_files(self) -> dict[str, Path]:
        """role -> path of each tensor file the JSON covers, each verified against its recorded sha256."""
        return _tensor_files(self.data, self.stem, self.json_path)


def read_described(stem: str | os.PathLike, model_class: type, config_class: type) -> Described:
    """Read STEM.json and check, in this order, that it holds a `model_class` and a valid `config_class`
    config (field names and types) and metadata object. Its tensor files are verified only when asked."""
    stem, json_path, data = _open(stem)
    _check_kind(data, model_class, json_path)
    config = _build_config(config_class, data, json_path)
    return Described(stem, json_path, data, config, _metadata(data, json_path))


# ---------------------------------------------------------------------------------------------
# Finished checkpoints: STEM.safetensors + STEM.json
# ---------------------------------------------------------------------------------------------


class Checkpoint(NamedTuple):
    """What `load_checkpoint` returns: the model (eval mode) and the metadata stored with it."""

    model: torch.nn.Module
    metadata: dict


def save_checkpoint(model: torch.nn.Module, config: Any, stem: str | os.PathLike, *, metadata: dict | None = None,
                    half: bool = False) -> tuple[Path, Path]:
    """Save `model`'s weights to STEM.safetensors, then {kind, config, metadata, weights_sha256} to STEM.json.

    config:   the frozen dataclass the model was built from
    metadata: anything JSON-able worth keeping (the command and seed that made it, the history)
    half:     store floating-point weights as float16 (loading casts back to float32)
    Returns (weights path, JSON path).
    """
    stem = _stem(stem)
    weights_path, json_path = _sibling(stem, ".safetensors"), _sibling(stem, ".json")
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    digest = save_tensors(weights_path, state)
    save_json(json_path, {**describe(model, config), "metadata": metadata or {}, "weights_sha256": digest})
    return weights_path, json_path


def load_checkpoint(model_class: type[M], config_class: type, stem: str | os.PathLike,
                    device: torch.device | str = "cpu") -> Checkpoint:
    """Build `model_class(config)` from STEM.json, load its weights (no pickle): Checkpoint(model, metadata).

    Checked before anything large is allocated: the JSON's fields and their types, the weights'
    sha256 (when recorded) and their shapes against the model the config describes. Then the
    values must be finite. Any failure is a CheckpointError naming the file.
    """
    described = read_described(stem, model_class, config_class)
    json_path, config = described.json_path, described.config
    weights_path = described.tensor_files().get("weights")
    if weights_path is None:
        raise CheckpointError(f"{json_path} names no weights file (expected files['weights'])")
    try:
        with torch.device("meta"):  # shapes only: a crafted config asking for gigabytes allocates nothing
            skeleton = model_class(config).state_dict()
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{json_path}: {model_class.__name__} cannot be built from its config ({exc})") from exc
    state = load_tensors(weights_path, skeleton, fit=f"{model_class.__name__}({config}) as {json_path} describes it")
    model = model_class(config)
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return Checkpoint(model.to(device).eval(), described.metadata)


# ---------------------------------------------------------------------------------------------
# Shipped names or paths
# ---------------------------------------------------------------------------------------------


def resolve(name: str | os.PathLike, part: str) -> tuple[Path, ShippedCheckpoint | None]:
    """A shipped name ("cartpole" or "cartpole_vae" for part "vae") -> (assets/cartpole_vae, its table entry);
    anything else is a path stem (a .json or .safetensors suffix is dropped) -> (stem, None)."""
    text = os.fspath(name)
    if isinstance(name, str) and text and "/" not in text and os.sep not in text and Path(text).suffix == "":
        for candidate in (text, f"{text}_{part}"):
            shipped = shipped_checkpoint(candidate)
            if shipped is not None and shipped.part == part:
                return assets_dir() / shipped.stem, shipped
    return _stem(text), None


def _with_hint(exc: CheckpointError, name: str | os.PathLike, part: str,
               shipped: ShippedCheckpoint | None) -> CheckpointError:
    if shipped is not None:
        return CheckpointError(f"{exc}; rebuild it with: {shipped.command}")
    if isinstance(name, str) and "/" not in name and not name.endswith((".json", ".safetensors")):
        return CheckpointError(f"{exc} (and {name!r} is no shipped {part} name: assets/README.md lists them)")
    return exc


def load_named(model_class: type[M], config_class: type, name: str | os.PathLike, part: str,
               device: torch.device | str = "cpu") -> Checkpoint:
    """`load_checkpoint` for a shipped name or a path stem (see `resolve`); errors add the rebuild command."""
    stem, shipped = resolve(name, part)
    try:
        return load_checkpoint(model_class, config_class, stem, device)
    except CheckpointError as exc:
        raise _with_hint(exc, name, part, shipped) from exc


def read_metadata(name: str | os.PathLike, part: str) -> dict:
    """The metadata stored beside a checkpoint (shipped name or path stem), without loading its weights."""
    stem, shipped = resolve(name, part)
    json_path = _sibling(stem, ".json")
    try:
        return _metadata(_read_json(json_path), json_path)
    except CheckpointError as exc:
        raise _with_hint(exc, name, part, shipped) from exc


def weights_sha256(name: str | os.PathLike, part: str) -> str | None:
    """sha256 of a checkpoint's weights file (shipped name or path stem), or None when it has none."""
    stem, _ = resolve(name, part)
    path, json_path = _sibling(stem, ".safetensors"), _sibling(stem, ".json")
    files = _read_json(json_path).get("files") if json_path.is_file() else None
    if isinstance(files, dict) and isinstance(files.get("weights"), dict):  # a work unit names its weights
        path = json_path.parent / Path(str(files["weights"].get("name"))).name
    return file_sha256(path) if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# Work units: tensor files named by their hash, then the JSON that names them
# ---------------------------------------------------------------------------------------------


class Unit(NamedTuple):
    """A committed work unit: its JSON (as written) and the verified path of each tensor file by role."""

    manifest: dict
    files: dict[str, Path]


def write_unit(stem: str | os.PathLike, tensors: dict[str, dict[str, torch.Tensor]], manifest: dict) -> Path:
    """Commit tensor files and a JSON as one unit: each role's tensors to STEM.<role>-<sha>.safetensors,
    then STEM.json = manifest + {"files": {role: {name, sha256}}}, then the files no longer named are deleted.

    Returns the JSON's path. A kill at any point leaves the previous unit (or none) whole.
    """
    stem = _stem(stem)
    files = {}
    for role, group in tensors.items():
        data = _tensor_bytes(group)
        digest = hashlib.sha256(data).hexdigest()
        path = _sibling(stem, f".{role}-{digest[:16]}.safetensors")
        atomic_write(path, data)
        files[role] = {"name": path.name, "sha256": digest}
    json_path = _sibling(stem, ".json")
    save_json(json_path, {**manifest, "files": files})  # the commit
    _remove_stale(stem, keep={f["name"] for f in files.values()})
    return json_path


def _remove_stale(stem: Path, keep: set[str]) -> None:
    """Delete this stem's tensor files that no JSON names any more, and temporary files of killed writes."""
    own = re.compile(re.escape(stem.name) + r"(\.[a-z_]+-[0-9a-f]{16}\.safetensors|\.json\.[^/]+\.tmp)"
                     r"(\.[^/.]+\.tmp)?$")
    for path in stem.parent.iterdir():
        if own.fullmatch(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)


def read_unit(stem: str | os.PathLike) -> Unit:
    """The work unit committed at STEM, its tensor files verified against their sha256."""
    stem, json_path, data = _open(stem)
    return Unit(data, _tensor_files(data, stem, json_path))
