"""Training that survives a kill: a work unit committed every epoch, resumed only by its own run.

    run = {"seed": 0, "data_fingerprint": data_fingerprint(files), ...}       # what makes this run this run
    history = resume_training(stem, model, optimizer, config, run=run, target=epochs)   # [] on a fresh start
    for epoch in range(len(history), epochs):
        ...                                                                   # train, append to history
        save_training(stem, model, optimizer, config, run=run, history=history)

Each commit is one work unit (`wmlib.checkpoints.write_unit`): the weights and the optimizer's state,
then STEM.json naming both, so a kill loses at most the epoch it interrupted. A unit continues only
when it is this run's own (same config, seed, settings and data; at most the epochs asked): a re-run
after re-collecting must not silently continue a stale model. Data order and noise depend only on
(seed, epoch) in V's and M's training, so a resumed run matches an uninterrupted one.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from wmlib.checkpoints import CheckpointError, describe, json_file, load_tensors, read_described, write_unit

_ELSEWHERE = "delete it, or choose another checkpoint path (--work on the command line)"


def save_training(stem: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: Any,
                  *, run: dict, history: list[dict], metadata: dict | None = None) -> Path:
    """Commit the model's weights (float32), the optimizer's state and the JSON as one work unit.

    run:      what makes this run this run: "seed", "data_fingerprint" and any settings; `resume_training`
              compares it
    history:  one entry per finished epoch
    metadata: anything else JSON-able worth keeping (the command); stored with the history, the epochs
              done, the random seed and the data fingerprint
    """
    metadata = dict(metadata or {}, history=history, seed=run["seed"], epochs_done=len(history),
                    data_fingerprint=run["data_fingerprint"])
    optimizer_state = {f"{i}.{key}": torch.as_tensor(value)
                       for i, state in optimizer.state_dict()["state"].items() for key, value in state.items()}
    manifest = {**describe(model, config), "metadata": metadata, "run": run}
    return write_unit(stem, {"weights": model.state_dict(), "optimizer": optimizer_state}, manifest)


def resume_training(stem: str | os.PathLike | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    config: Any, *, run: dict, target: int, continue_on_new_data: bool = False) -> list[dict]:
    """Load the work unit at STEM into `model` and `optimizer` if it is this run's own; return its history.

    No stem, or no JSON at STEM: [] (a fresh start). A unit continues when its config equals `config`, its
    `run` equals `run` and it holds at most `target` epochs (5 epochs resumed to 8 continue; asked for 3,
    refused). continue_on_new_data: the data fingerprint may differ, and a finished checkpoint (no
    optimizer state) is a warm start (its weights and history, a fresh optimizer). Anything else raises a
    CheckpointError saying what differs; nothing is deleted, so no run's work is lost without a word.
    """
    if stem is None or not json_file(stem).is_file():
        return []
    saved = read_described(stem, type(model), type(config))
    where = saved.json_path
    if saved.config != config:
        raise CheckpointError(f"{where} was trained with {saved.config}, not {config}; {_ELSEWHERE}")
    history = saved.metadata.get("history", [])
    if not isinstance(history, list):
        raise CheckpointError(f"{where}: metadata 'history' must be a list (one entry per epoch)")
    files = saved.tensor_files()
    if "optimizer" in files:
        _check_same_run(saved.data.get("run"), run, where, continue_on_new_data)
    elif not continue_on_new_data:
        raise CheckpointError(f"{where} is a finished checkpoint or one from an older wmlib (no optimizer "
                              "state): training does not resume from it; " + _ELSEWHERE)
    if len(history) > target:
        raise CheckpointError(f"{where} holds {len(history)} finished epochs, more than the {target} asked "
                              f"for: ask for at least {len(history)} to continue it, or " + _ELSEWHERE)
    model.load_state_dict(load_tensors(files["weights"], model.state_dict(), fit=f"{type(model).__name__}({config})"))
    if "optimizer" in files:
        _load_optimizer(files["optimizer"], optimizer)
    return history


def _check_same_run(saved: Any, run: dict, where: Path, continue_on_new_data: bool) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError(f"{where}: 'run' must be an object (seed, data fingerprint, settings)")
    keys = [k for k in sorted(set(saved) | set(run)) if not (continue_on_new_data and k == "data_fingerprint")]
    differ = [k for k in keys if saved.get(k) != run.get(k)]
    if differ == ["data_fingerprint"]:
        raise CheckpointError(f"{where} holds a run on other data (fingerprint {saved.get('data_fingerprint')}, "
                              f"these data {run.get('data_fingerprint')}); " + _ELSEWHERE)
    if differ:
        was = ", ".join(f"{k} {saved.get(k)!r}" for k in differ)
        now = ", ".join(f"{k} {run.get(k)!r}" for k in differ)
        raise CheckpointError(f"{where} holds another run ({was}; this run: {now}): a run resumes only its own "
                              "work; " + _ELSEWHERE)


def _load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore the per-parameter state written by `save_training` ("<index>.<key>" tensors)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict] = {}
    for name, value in load_tensors(path, what="optimizer state").items():
        index, _, key = name.partition(".")
        if not (index.isdigit() and int(index) < len(params) and key):
            raise CheckpointError(f"optimizer state {path}: entry {name!r} names none of the {len(params)} parameters")
        if value.dim() > 0 and value.shape != params[int(index)].shape:
            raise CheckpointError(f"optimizer state {path}: {name} has shape {tuple(value.shape)}, its parameter "
                                  f"{tuple(params[int(index)].shape)}")
        state.setdefault(int(index), {})[key] = value
    try:
        optimizer.load_state_dict({**optimizer.state_dict(), "state": state})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"optimizer state {path} does not fit the optimizer ({exc})") from exc
