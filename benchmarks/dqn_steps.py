"""How many real CartPole steps does chapter 1's DQN need to balance the pole?

    python benchmarks/dqn_steps.py [--seeds 0 1 2] [--steps 60000]

Prints one row per seed: training steps until a greedy evaluation (10 episodes) first averaged at
least 475, the evaluation steps spent on top, and the wall time. A common summary of the paper
claims about 136,645 steps.
"""

import argparse
import statistics

from wmlib.config import DQNConfig
from wmlib.dqn import train_dqn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=60_000)
    args = parser.parse_args()

    print(f"{'seed':>4}  {'steps to balance':>16}  {'eval steps':>10}  {'wall s':>7}")
    solved = []
    for seed in args.seeds:
        r = train_dqn("cartpole", DQNConfig(), max_steps=args.steps, seed=seed, progress=False)
        shown = f"{r.steps_to_solve:,}" if r.steps_to_solve is not None else f"> {args.steps:,}"
        print(f"{seed:>4}  {shown:>16}  {r.eval_steps:>10,}  {r.wall_time_s:>7.1f}")
        if r.steps_to_solve is not None:
            solved.append(r.steps_to_solve)
    if solved:
        print(f"median over solved seeds: {statistics.median(solved):,.0f} real steps "
              f"({len(solved)}/{len(args.seeds)} solved); claimed in a common summary of the paper: ~136,645")


if __name__ == "__main__":
    main()
