"""Scoring one controller over real episodes: one episode at a time, or side by side (wmlib.lockstep).

    python benchmarks/lockstep_speed.py                  # the shipped pixel-CartPole C, 20 episodes
    python benchmarks/lockstep_speed.py --episodes 100 --workers 2

Plays the same random seeds (wmlib.agent.EVAL_SEED_START, ...) with the shipped V, M and C:
- one at a time in this process (agent.evaluate_controller over a SerialEvaluator of ControllerRollout),
- in lockstep in this process (LockstepEvaluator, workers 1),
- in lockstep over --workers processes (when more than 1),
and prints a table: seconds, real steps, milliseconds per real step, and whether every episode's return
equals the one-at-a-time player's. One torch thread per process. Run it on a quiet machine; on a shared
one compare the rows of one run (ratios), not runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wmlib.agent import ControllerRollout, evaluate_controller, load_controller
from wmlib.evaluators import SerialEvaluator
from wmlib.lockstep import LockstepEvaluator


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--controller", default="cartpole", help="a shipped C of pixel CartPole, or a checkpoint stem")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    controller = load_controller(args.controller)
    rollout = ControllerRollout("cartpole-pixels", "cartpole", "cartpole", controller.config)
    params = controller.get_flat_params()

    rows = []
    t0 = time.perf_counter()
    serial = evaluate_controller(SerialEvaluator(rollout), params, args.episodes, progress=False)
    rows.append(("one at a time, 1 process", time.perf_counter() - t0, serial))
    for workers in sorted({1, args.workers}):
        with LockstepEvaluator(rollout, workers=workers) as ev:
            t0 = time.perf_counter()
            result = ev.evaluate(params, args.episodes, progress=False)
            rows.append((f"lockstep, {workers} process{'es' if workers > 1 else ''}", time.perf_counter() - t0,
                         result))

    print(f"C {args.controller!r} on pixel CartPole, {args.episodes} real episodes, one torch thread per process")
    print("| player | seconds | real steps | ms per real step | mean return | returns equal one at a time |")
    print("| --- | ---: | ---: | ---: | ---: | :---: |")
    for name, seconds, r in rows:
        print(f"| {name} | {seconds:.1f} | {r.env_steps:,} | {1e3 * seconds / r.env_steps:.2f} | {r.mean:.1f} | "
              f"{'yes' if np.array_equal(r.returns, serial.returns) else 'NO'} |")
    print(f"\nlockstep in 1 process vs one at a time: {rows[0][1] / rows[1][1]:.2f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
