"""The worlds' table (minimal form): the shipped checkpoints and the commands that rebuild them.

A shipped checkpoint's rebuild command comes from here, never from its own JSON (a file can be
edited; the code is reviewed). The commands are the ones recorded in assets/README.md.

Introduced in: course/02_compression.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShippedCheckpoint:
    """One file pair in assets/: STEM.safetensors + STEM.json (or STEM.json alone for a report).

    stem:    the file name without suffix, e.g. "cartpole_vae"
    world:   the world it belongs to, e.g. "cartpole-pixels"
    part:    "vae" | "mdnrnn" | "controller" | "report"
    command: the exact shell commands that rebuild it (from assets/README.md), joined by " && "
    """

    stem: str
    world: str
    part: str
    command: str


def _commands(*lines: str) -> str:
    return " && ".join(lines)


_CARTPOLE_COLLECT = "python -m wmlib collect --env cartpole-pixels --episodes 600 --out data/cartpole_vae --seed 0"
_CARRACING_COLLECT = ("python -m wmlib collect --env carracing --policy smooth --episodes 60 --max-steps 400 "
                      "--out data/carracing_vae --seed 0")
_CONTROLLER_FLAGS = ("--population 16 --rollouts 4 --generations {g} --sigma0 0.1 --standardize-episodes 30 "
                     "--target-mean 475 --select-episodes 8 --eval-episodes 100 --seed 0 --workers {w}")

_SHIPPED = (
    ShippedCheckpoint("cartpole_vae", "cartpole-pixels", "vae", _commands(
        _CARTPOLE_COLLECT,
        "python -m wmlib train-vae --rollouts data/cartpole_vae --out assets/cartpole_vae --epochs 8 --seed 0 "
        "--z-dim 32 --batch-size 32 --lr 0.0003 --kl-tolerance 0.5 --half --threads 2")),
    ShippedCheckpoint("carracing_vae", "carracing", "vae", _commands(
        _CARRACING_COLLECT,
        "python -m wmlib train-vae --rollouts data/carracing_vae --out assets/carracing_vae --epochs 3 --seed 0 "
        "--z-dim 32 --batch-size 32 --lr 0.0003 --kl-tolerance 0.5 --half --threads 1")),
    ShippedCheckpoint("cartpole_mdnrnn", "cartpole-pixels", "mdnrnn", _commands(
        "python -m wmlib encode --vae cartpole --rollouts data/cartpole_vae --out data/cartpole_latents",
        "python -m wmlib train-mdnrnn --env cartpole-pixels --latents data/cartpole_latents "
        "--out assets/cartpole_mdnrnn --epochs 100 --seed 0 --val-episodes 20 --threads 1")),
    ShippedCheckpoint("carracing_mdnrnn", "carracing", "mdnrnn", _commands(
        "python -m wmlib encode --vae carracing --rollouts data/carracing_vae --out data/carracing_latents",
        "python -m wmlib train-mdnrnn --env carracing --latents data/carracing_latents "
        "--out assets/carracing_mdnrnn --epochs 100 --seed 0 --val-episodes 6 --batch-size 16 --lr 0.003 "
        "--threads 1")),
    ShippedCheckpoint("cartpole_controller", "cartpole-pixels", "controller", _commands(
        "python -m wmlib train-controller --env cartpole-pixels --vae cartpole --mdnrnn cartpole "
        "--out assets/cartpole_controller " + _CONTROLLER_FLAGS.format(g=60, w=2))),
    ShippedCheckpoint("cartpole_zonly_controller", "cartpole-pixels", "controller", _commands(
        "python -m wmlib train-controller --env cartpole-pixels --vae cartpole --z-only "
        "--out assets/cartpole_zonly_controller " + _CONTROLLER_FLAGS.format(g=20, w=1))),
    ShippedCheckpoint("pipeline_cartpole_reports", "cartpole-pixels", "report",
                      "python benchmarks/sample_efficiency.py"),
)


def shipped_checkpoint(stem: str) -> ShippedCheckpoint | None:
    """The shipped checkpoint assets/STEM.*, or None when no shipped checkpoint has that stem."""
    return next((s for s in _SHIPPED if s.stem == stem), None)
