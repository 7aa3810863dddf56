"""Command line: `python -m wmlib COMMAND ...` trains the whole agent, one stage at a time.

    python -m wmlib collect --env cartpole-pixels --episodes 200 --out data/cartpole --seed 0
    python -m wmlib dqn --steps 60000 --seed 0

Each command is a frozen dataclass of its settings (CleanRL's `Args`), the paper's config dataclasses
nested inside it, and a function that runs it. The flags, their defaults and their help are made from
the dataclasses (wmlib/flags.py), so a default lives in one place. Every command records the command
line that ran (generated from the parsed flags) in what it writes, and prints what it wrote.
This module holds the commands of chapters 1-3; wmlib/cli_agent.py those of chapters 4-5.

A refused setting ends with one line naming its flag (`error: --dream-temperature: ... got inf`) and exit
status 2; a failure while running, with `error: ...` and status 1; Ctrl-C, with one line saying what
was kept and how to resume, and status 130.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wmlib import cli_agent
from wmlib.checkpoints import save_checkpoint
from wmlib.cli_agent import agent_worlds, use_threads, work_stem
from wmlib.config import DQNConfig, MDNRNNConfig, SettingError, VAEConfig
from wmlib.diagnostics import held_out_scores
from wmlib.dqn import train_dqn
from wmlib.envs import ENV_NAMES
from wmlib.flags import Command, build_parser, run_command
from wmlib.latents import load_latent_episodes
from wmlib.mdnrnn import MDNRNN, preset_config, train_mdnrnn
from wmlib.rollouts import POLICIES, collect
from wmlib.tasks import world_spec
from wmlib.vae import ConvVAE, encode_rollouts, load_vae, train_vae

PROG = "python -m wmlib"

COMMANDS: list[Command] = []


# ---------------------------------------------------------------------------------------------
# collect, dqn
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectArgs:
    env_name: str
    """The world to play."""
    n_episodes: int
    """How many episodes to play."""
    out_dir: str
    """Folder for the episode_*.npz files (new, or holding episodes of the same world)."""
    seed: int = 0
    """Episode i resets with seed + i: the same seed writes the same files."""
    max_steps: int | None = None
    """Cut episodes after this many steps (none: the env's own time limit)."""
    policy: str = "random"
    """Uniform random actions, or smooth ones that change slowly (they drive the car somewhere)."""


def _collect(args: CollectArgs, cmd: str) -> int:
    paths = collect(args.env_name, args.n_episodes, args.out_dir, policy=POLICIES[args.policy], seed=args.seed,
                    max_steps=args.max_steps)
    print(f"wrote {len(paths)} episodes to {args.out_dir}")
    return 0


COMMANDS.append(Command(
    "collect", "play episodes with a random policy and store them as .npz rollouts", CollectArgs, _collect,
    lambda a: f"interrupted: the episodes written so far are in {a.out_dir}; the same command writes the same files",
    names={"env_name": ("--env",), "n_episodes": ("--episodes",), "out_dir": ("--out",)},
    choices={"env_name": ENV_NAMES, "policy": tuple(POLICIES)}))


@dataclass(frozen=True)
class DQNArgs:
    steps: int = 60_000
    """Real environment-step budget."""
    seed: int = 0
    """Seeds the network, the replay sampling and the env."""
    eval_every: int = 2_000
    """Environment steps between greedy evaluations."""
    eval_episodes: int = 10
    """Episodes per greedy evaluation."""
    dqn: DQNConfig = field(default_factory=DQNConfig)


def _dqn(args: DQNArgs, cmd: str) -> int:
    r = train_dqn(config=args.dqn, max_steps=args.steps, seed=args.seed, eval_every=args.eval_every,
                  eval_episodes=args.eval_episodes)
    print(json.dumps({"command": cmd, "steps_to_solve": r.steps_to_solve, "training_steps": r.total_steps,
                      "eval_steps": r.eval_steps, "wall_time_s": round(r.wall_time_s, 1)}))
    return 0


COMMANDS.append(Command("dqn", "train the chapter-1 DQN baseline on state CartPole and report steps to balance",
                  DQNArgs, _dqn, lambda a: "interrupted: DQN keeps no checkpoint; run the command again",
                  prefixes={"dqn": ""}))


# ---------------------------------------------------------------------------------------------
# train-vae and encode (V, chapter 2)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainVAEArgs:
    rollouts: str
    """Folder of episode .npz files (from `collect`)."""
    out: str
    """Path stem of the finished checkpoint (.safetensors, .json)."""
    epochs: int = 10
    """Passes over the frames (a resumed run counts the epochs already done)."""
    seed: int = 0
    """Seeds the weights, the shuffling and the noise."""
    vae: VAEConfig = field(default_factory=VAEConfig)
    max_frames_per_epoch: int | None = None
    """End an epoch after this many frames (none: all of them)."""
    half: bool = False
    """Store the finished weights as float16."""
    work: str | None = None
    """Stem of the resumable training checkpoint (none: data/checkpoints/<--out's name>)."""
    threads: int | None = None
    """Torch CPU threads (none: torch's choice); speed only."""


def _train_vae(args: TrainVAEArgs, cmd: str) -> int:
    use_threads(args.threads)
    meta = {"command": cmd, "rollouts": str(args.rollouts), "torch": torch.__version__}
    result = train_vae(args.rollouts, args.vae, epochs=args.epochs, seed=args.seed,
                       checkpoint=work_stem(args.work, args.out), metadata=meta,
                       max_frames_per_epoch=args.max_frames_per_epoch)
    vae = ConvVAE(args.vae)
    vae.load_state_dict({k: v.cpu() for k, v in result.vae.state_dict().items()})
    meta = dict(meta, seed=args.seed, epochs_done=len(result.history), history=result.history)
    paths = save_checkpoint(vae, args.vae, args.out, metadata=meta, half=args.half)
    last = result.history[-1]
    print(json.dumps({"wrote": [str(p) for p in paths], "parameters": vae.num_params,
                      "epochs": len(result.history), "reconstruction": round(last["reconstruction"], 2),
                      "kl": round(last["kl"], 2), "wall_time_s": round(result.wall_time_s, 1)}))
    return 0


def _resume_hint(a) -> str:
    return (f"interrupted: the training state is saved after every finished epoch in {work_stem(a.work, a.out)}; "
            "run the same command again to resume")


COMMANDS.append(Command("train-vae", "train V (the ConvVAE) on the frames of collected rollouts; resumes if stopped",
                  TrainVAEArgs, _train_vae, _resume_hint, names={"vae.learning_rate": ("--lr", "--learning-rate")},
                  prefixes={"vae": ""}, skip=("vae.image_size", "vae.image_channels")))


@dataclass(frozen=True)
class EncodeArgs:
    vae: str
    """A shipped V ('cartpole', 'carracing', 'doom') or a checkpoint stem."""
    rollouts: str
    """Folder of episode .npz files."""
    out: str
    """Folder for the encoded episodes."""


def _encode(args: EncodeArgs, cmd: str) -> int:
    paths = encode_rollouts(load_vae(args.vae), args.rollouts, args.out)
    print(f"wrote {len(paths)} encoded episodes to {args.out}")
    return 0


COMMANDS.append(Command("encode", "encode the frames of rollouts into V's latents (mu, logvar) for training M",
                  EncodeArgs, _encode,
                  lambda a: f"interrupted: the episodes encoded so far are in {a.out}; run the command again"))


# ---------------------------------------------------------------------------------------------
# train-mdnrnn (M, chapter 3)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainMDNRNNArgs:
    env: str
    """The world: picks M's preset (action size, done or reward head, sizes)."""
    latents: str
    """Folder of encoded episodes (from `encode`)."""
    out: str
    """Path stem of the finished checkpoint (.safetensors, .json)."""
    epochs: int | None = None
    """Passes over the sequences (none: the preset's)."""
    seed: int = 0
    """Seeds the weights, the batches and the sampled z."""
    val_episodes: int = 20
    """Hold out this many episodes (the last files) to report validation scores each epoch."""
    mdnrnn: dict = field(default_factory=dict)
    """Settings that replace the preset's (flags of MDNRNNConfig's fields; none: the preset's)."""
    work: str | None = None
    """Stem of the resumable training checkpoint (none: data/checkpoints/<--out's name>)."""
    threads: int | None = None
    """Torch CPU threads (none: torch's choice); speed only."""


def _train_mdnrnn(args: TrainMDNRNNArgs, cmd: str) -> int:
    use_threads(args.threads)
    files = sorted(Path(args.latents).glob("*.npz"))
    if len(files) <= args.val_episodes:
        raise SettingError("val_episodes", f"{args.latents} holds {len(files)} encoded episodes; need more than "
                                           f"the {args.val_episodes} held out")
    with np.load(files[0], allow_pickle=False) as first:
        z_dim = int(first["mu"].shape[1])
    config = dataclasses.replace(preset_config(args.env, z_dim), **args.mdnrnn)
    epochs = args.epochs or world_spec(args.env).m_epochs
    split = len(files) - args.val_episodes
    train = load_latent_episodes(files[:split], config.action_dim)
    validate = None  # the last files, held out: their scores join the history every epoch
    if args.val_episodes:
        validate = held_out_scores(load_latent_episodes(files[split:], config.action_dim), seed=args.seed)
    meta = {"command": cmd, "latents": str(args.latents), "train_episodes": split,
            "val_episodes": args.val_episodes, "torch": torch.__version__}
    result = train_mdnrnn(train, config, epochs=epochs, seed=args.seed, validate=validate,
                          checkpoint=work_stem(args.work, args.out), metadata=meta)
    model = MDNRNN(config)
    model.load_state_dict({k: v.cpu() for k, v in result.model.state_dict().items()})
    meta = dict(meta, seed=args.seed, epochs_done=len(result.history), history=result.history)
    paths = save_checkpoint(model, config, args.out, metadata=meta)
    last = result.history[-1]
    print(json.dumps({"wrote": [str(p) for p in paths], "parameters": model.num_params,
                      "epochs": len(result.history), **{k: round(v, 4) for k, v in last.items()
                                                        if k.startswith(("nll", "val_", "done"))},
                      "wall_time_s": round(result.wall_time_s, 1)}))
    return 0


COMMANDS.append(Command(
    "train-mdnrnn", "train M (the MDN-RNN) on encoded episodes; resumes if interrupted", TrainMDNRNNArgs,
    _train_mdnrnn, _resume_hint, choices={"env": agent_worlds()},
    names={"mdnrnn.learning_rate": ("--lr", "--learning-rate"),
           "mdnrnn.num_mixtures": ("--mixtures", "--num-mixtures"),
           "mdnrnn.sequence_length": ("--seq-len", "--sequence-length")},
    prefixes={"mdnrnn": ""}, overrides={"mdnrnn": MDNRNNConfig},  # z, actions and heads: the data's and world's
    skip=("mdnrnn.z_dim", "mdnrnn.action_dim", "mdnrnn.predict_reward", "mdnrnn.predict_done")))


# ---------------------------------------------------------------------------------------------
# The parser and main
# ---------------------------------------------------------------------------------------------

ALL_COMMANDS: dict[str, Command] = {c.name: c for c in (*COMMANDS, *cli_agent.COMMANDS)}
"""Every command by name, in the order `--help` lists them."""


def parser() -> argparse.ArgumentParser:
    """The argparse parser of `python -m wmlib`, one sub-parser per command."""
    return build_parser(PROG, "Train the World Models agent, stage by stage.", ALL_COMMANDS.values())


def main(argv: list[str] | None = None) -> int:
    """Run `python -m wmlib ARGV`; returns the exit status (0 done, 1 failed, 2 refused, 130 interrupted)."""
    return run_command(parser(), ALL_COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
