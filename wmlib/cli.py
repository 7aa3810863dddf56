"""Command line: `python -m wmlib COMMAND ...` trains the whole agent, one stage at a time.

    python -m wmlib collect --env cartpole-pixels --episodes 200 --out data/cartpole --seed 0
    python -m wmlib dqn --steps 60000 --seed 0

Each stage's command is a small function below that parses nothing itself: `main` builds one
argparse sub-parser per command and dispatches to it. Every command prints what it wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str):
    """Register `add_args(parser)` and the decorated `run(args)` under `name`."""

    def wrap(run):
        add_args = getattr(run, "add_args", lambda p: None)
        COMMANDS[name] = (help_text, add_args, run)
        return run

    return wrap


def _args(add_args):
    """Attach an argument-adding function to a command function (used as a decorator)."""

    def wrap(run):
        run.add_args = add_args
        return run

    return wrap


# ---------------------------------------------------------------------------------------------
# collect
# ---------------------------------------------------------------------------------------------


def _collect_args(p):
    from wmlib.envs import ENV_NAMES

    p.add_argument("--env", required=True, choices=ENV_NAMES)
    p.add_argument("--episodes", type=int, required=True, help="how many episodes to play")
    p.add_argument("--out", required=True, help="directory for the episode_*.npz files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="cut episodes after this many steps")


@command("collect", "play episodes with a random policy and store them as .npz rollouts")
@_args(_collect_args)
def _collect(args) -> int:
    from wmlib.rollouts import collect

    paths = collect(args.env, args.episodes, args.out, seed=args.seed, max_steps=args.max_steps)
    print(f"wrote {len(paths)} episodes to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------
# dqn
# ---------------------------------------------------------------------------------------------


def _dqn_args(p):
    p.add_argument("--steps", type=int, default=60_000, help="real environment-step budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--eval-episodes", type=int, default=10)


@command("dqn", "train the chapter-1 DQN baseline on state CartPole and report steps to balance")
@_args(_dqn_args)
def _dqn(args) -> int:
    from wmlib.dqn import train_dqn

    r = train_dqn(max_steps=args.steps, seed=args.seed, eval_every=args.eval_every,
                  eval_episodes=args.eval_episodes)
    print(json.dumps({"steps_to_solve": r.steps_to_solve, "training_steps": r.total_steps,
                      "eval_steps": r.eval_steps, "wall_time_s": round(r.wall_time_s, 1)}))
    return 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wmlib", description="Train the World Models agent, stage by stage.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
