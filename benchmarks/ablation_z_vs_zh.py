"""The paper's ablation on pixel CartPole: C on z alone against C on [z, h].

    python benchmarks/ablation_z_vs_zh.py                  # evaluate the two shipped controllers
    python benchmarks/ablation_z_vs_zh.py --episodes 100 --workers 2
    python benchmarks/ablation_z_vs_zh.py --train --generations 10 --population 16 --rollouts 4

The paper (CarRacing, 100 trials): V only 632 +- 251, V + M's hidden state 906 +- 21. A single
frame shows where the pole is, not how fast it falls; h, M's memory, carries that. By default this
plays the shipped assets/cartpole_controller (z and h) and assets/cartpole_zonly_controller (z
only) in the real env. With --train it first trains both from scratch with the same CMA-ES
budget and seed (that takes a while: every rollout is a real pixel episode), then evaluates them.
It prints one row per variant: parameters, training generations and real steps, and the mean
return over the evaluation episodes.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from wmlib.agent import (
    ControllerRollout,
    controller_rollout_for,
    evaluate_controller,
    load_controller,
    train_controller,
)
from wmlib.checkpoints import read_metadata
from wmlib.config import CMAESConfig
from wmlib.evaluators import make_evaluator

VARIANTS = (("z only (V)", "cartpole_zonly", False), ("z and h (V + M)", "cartpole", True))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per variant")
    p.add_argument("--workers", type=int, default=None, help="rollout processes (default: every core)")
    p.add_argument("--train", action="store_true", help="train both variants first instead of loading them")
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--rollouts", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=None, help="cap training episodes (evaluation: full)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    rows = []
    for label, name, use_h in VARIANTS:
        if args.train:
            fn = controller_rollout_for("cartpole-pixels", "cartpole", "cartpole", use_h=use_h,
                                        max_steps=args.max_steps)
            config = CMAESConfig(population_size=args.population, rollouts_per_candidate=args.rollouts,
                                 generations=args.generations)
            with make_evaluator(fn, args.workers) as evaluator:
                result = train_controller(fn, config, seed=args.seed, evaluator=evaluator,
                                          target_fitness=args.max_steps or 500.0)
            controller = result.controller
            gens = len(result.cma.history)
            train_steps = result.training_env_steps + result.selection_env_steps
        else:
            controller = load_controller(name)
            meta = read_metadata(name, "controller")
            gens = meta.get("generations")
            train_steps = meta.get("training_env_steps", 0) + meta.get("selection_env_steps", 0)
        mdnrnn = "cartpole" if use_h else None
        fn = ControllerRollout("cartpole-pixels", "cartpole", mdnrnn, controller.config)
        with make_evaluator(fn, args.workers) as evaluator:
            ev = evaluate_controller(evaluator, controller.get_flat_params(), args.episodes,
                                     desc=f"evaluating {label}")
        rows.append((label, controller.num_params, gens, train_steps, ev))

    print(f"\npixel CartPole, {args.episodes} evaluation episodes per variant ({os.cpu_count()} cores)")
    print(f"{'controller':18s} {'params':>6s} {'gens':>5s} {'train steps':>11s} {'mean return':>11s} "
          f"{'std':>6s} {'min':>5s} {'eval steps':>10s}")
    for label, n_params, gens, train_steps, ev in rows:
        gens = "-" if gens is None else gens
        print(f"{label:18s} {n_params:6d} {gens:>5} {train_steps:11d} {ev.mean:11.1f} "
              f"{ev.std:6.1f} {np.min(ev.returns):5.0f} {ev.env_steps:10d}")
    print("paper, CarRacing (100 trials): V only 632 +- 251; V + M (z and h) 906 +- 21")
    return 0


if __name__ == "__main__":
    sys.exit(main())
