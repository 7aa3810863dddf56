"""Rollouts per second in the car: serial, a local process pool and Ray, and what a 64-core cluster would take.

    python benchmarks/evaluator_throughput.py                              # 4 candidates x 2 rollouts x 100 steps
    python benchmarks/evaluator_throughput.py --max-steps 1000 --population 16 --rollouts 4 --workers 2
    python benchmarks/evaluator_throughput.py --ray-address auto            # a running Ray cluster

One CMA-ES generation in real CarRacing-v3 with the shipped carracing V and M and a controller of
random weights (episodes run to --max-steps: the car rarely finishes a track early). Each evaluator
plays the same generation twice: the first call includes its start-up (worker processes or Ray
actors loading V and M and making the env; for Ray also starting Ray itself when no address is
given), the second is the steady state a long training run sees; the table's "1st - 2nd s" is
the start-up (noise alone for serial, which starts nothing but V, M and the env). All three give the same returns
(checked). Then the arithmetic: from the serial rate (one core) to a cluster of --cluster-cores,
how long one generation of the paper (64 candidates x 16 rollouts x 1,000 steps) and its 1,800
generations would take, assuming every core plays at the measured one-core rate and every episode
runs its 1,000 steps.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from wmlib.agent import controller_rollout_for
from wmlib.config import CMAESConfig
from wmlib.controller import LinearController
from wmlib.evaluators import EvaluatorConfig, make_evaluator

PAPER = CMAESConfig(population_size=64, rollouts_per_candidate=16)
PAPER_STEPS, PAPER_GENERATIONS = 1000, 1800


def timed(evaluator, solutions: np.ndarray, seeds: list[int]) -> tuple[float, float, object]:
    """(first call's seconds, second call's seconds, the second call's Evaluation)."""
    start = time.perf_counter()
    evaluator(solutions, seeds)
    first = time.perf_counter() - start
    start = time.perf_counter()
    out = evaluator(solutions, seeds)
    return first, time.perf_counter() - start, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--population", type=int, default=4)
    p.add_argument("--rollouts", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=100, help="steps per episode (the paper: 1,000)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes and Ray actors")
    p.add_argument("--ray-address", default=None, help="a running Ray cluster (default: start a local Ray)")
    p.add_argument("--cluster-cores", type=int, default=64, help="cores of the cluster in the arithmetic")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the serial rate is the one-core rate

    fn = controller_rollout_for("carracing", "carracing", "carracing", max_steps=args.max_steps)
    n_params = LinearController(fn.controller).num_params
    solutions = np.random.default_rng(args.seed).normal(scale=0.5, size=(args.population, n_params))
    seeds = list(range(args.seed, args.seed + args.rollouts))
    rollouts = args.population * args.rollouts
    print(f"CarRacing-v3, shipped V and M, random C ({n_params} parameters): {args.population} candidates x "
          f"{args.rollouts} rollouts x {args.max_steps} steps; {args.workers} workers; {os.cpu_count()} cores here\n")
    rows, reference = [], None
    for kind in ("serial", "process", "ray"):
        config = EvaluatorConfig(kind, None if kind == "serial" else args.workers,
                                 args.ray_address if kind == "ray" else None)
        with make_evaluator(fn, config=config) as evaluator:
            first, warm, out = timed(evaluator, solutions, seeds)
        if reference is None:
            reference = out
        same = np.array_equal(out.returns, reference.returns) and np.array_equal(out.steps, reference.steps)
        steps = int(out.steps.sum())
        rows.append((kind, first - warm, warm, rollouts / warm, steps / warm, same))
    print(f"{'evaluator':<10}{'1st - 2nd s':>12}{'generation s':>14}{'rollouts/s':>12}{'env steps/s':>13}"
          f"{'same returns':>14}")
    for kind, startup, warm, rps, sps, same in rows:
        print(f"{kind:<10}{startup:>12.1f}{warm:>14.2f}{rps:>12.2f}{sps:>13.0f}{str(same):>14}")
    pool, on_ray = rows[1][2], rows[2][2]
    print(f"\nRay's overhead against the process pool: {on_ray / pool:.2f}x the pool's generation time "
          f"({on_ray - pool:+.2f} s); start-up {rows[2][1]:.1f} s against {rows[1][1]:.1f} s")

    per_core = rows[0][4]  # env steps per second of one core (the serial evaluator, one torch thread)
    gen_steps = PAPER.population_size * PAPER.rollouts_per_candidate * PAPER_STEPS
    gen_s = gen_steps / (per_core * args.cluster_cores)
    print(f"\nThe paper's scale from the measured one-core rate ({per_core:.0f} env steps/s with V, M and C):")
    print(f"  one generation = {PAPER.population_size} x {PAPER.rollouts_per_candidate} x {PAPER_STEPS:,} = "
          f"{gen_steps:,} env steps")
    print(f"  on {args.cluster_cores} cores: {gen_s / 60:.1f} min per generation; {PAPER_GENERATIONS:,} generations: "
          f"{gen_s * PAPER_GENERATIONS / 3600:.0f} h ({gen_s * PAPER_GENERATIONS / 86400:.1f} days)")
    print(f"  on this machine's {os.cpu_count()} cores: {gen_steps / (per_core * (os.cpu_count() or 1)) / 3600:.1f} h "
          "per generation")
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
