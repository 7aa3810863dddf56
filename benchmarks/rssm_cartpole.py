"""The tiny RSSM agent (Dreamer-style, wmlib.beyond.dreamer) on pixel CartPole, against the World Models pipeline.

    python benchmarks/rssm_cartpole.py                       # random seed 0, the default budget
    python benchmarks/rssm_cartpole.py --seeds 0 1 2 --budget 20000
    python benchmarks/rssm_cartpole.py --seeds 0 1 2 --budget 20000 --with-pipeline   # both, in one run

For each random seed: train_dreamer(DreamerConfig(real_step_budget=BUDGET)). Every real step is counted (the
random episodes and the actor's own); every `--eval-every` real steps the greedy actor plays 10 real episodes
(not counted; the learning curve), and when they average >= 475 it plays 100 (seeds 1,000,000 ...); if those
average >= 475 too, that is the run's "real steps to 475" and it stops. At the end the last actor plays 100
real episodes (final mean ± std). Prints the learning curve of each run and one table.

With --with-pipeline, the World Models pipeline (PipelineConfig's defaults, the same budget) runs first for each
random seed in this same process, as benchmarks/sample_efficiency.py runs it; without it, the pipeline's numbers
are read from assets/pipeline_cartpole_reports.json (recorded by benchmarks/sample_efficiency.py with the command
stored in that file). Each finished run is appended to --out as one JSON line. Note how the two count:
the pipeline counts the 3 scoring episodes of every round as real steps and checks 475 on the final C only;
here the evaluation episodes are not counted (like the DQN baselines of sample_efficiency.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUDGET = 10_000
"""Real steps: about 15 minutes on one CPU core at the default train_every (see the module docstring)."""


def run_rssm(seed: int, budget: int, eval_every: int, train_every: int | None) -> dict:
    from wmlib.beyond.config import DreamerConfig
    from wmlib.beyond.dreamer import train_dreamer

    config = DreamerConfig(real_step_budget=budget, eval_every=eval_every)
    if train_every is not None:
        config = dataclasses.replace(config, train_every=train_every)
    t0 = time.perf_counter()

    def show(row):
        print(f"  seed {seed}: {row['real_steps']:>6,} real steps, {row['updates']:>5} updates, "
              f"greedy actor {row['mean']:6.1f} ± {row['std']:5.1f} over {config.eval_episodes} episodes; "
              f"critic's value of the start {row['imagined_value']:5.1f} vs real discounted return "
              f"{row['real_discounted']:5.1f}; world-model loss {row['wm_total']:7.1f} (reconstruction "
              f"{row['wm_reconstruction']:6.1f}, continue {row['wm_continuation']:.3f}, KL {row['wm_kl']:.2f}); "
              f"{time.perf_counter() - t0:5.0f} s", flush=True)

    r = train_dreamer(config, seed=seed, progress=False, on_eval=show)
    return {"method": "tiny RSSM + actor-critic in imagination (Dreamer-style)", "seed": seed,
            "steps_to_threshold": r.steps_to_target, "real_steps": r.real_steps, "final_mean": r.final["mean"],
            "final_std": r.final["std"], "wall_s": r.wall_s, "updates": len(r.losses),
            "curve": [(row["real_steps"], row["mean"]) for row in r.curve]}


def pipeline_rows(path: Path) -> tuple[str, list[dict]]:
    data = json.loads(path.read_text())
    rows = []
    for rep in data["reports"]:
        final = rep["final"]
        rows.append({"method": "World Models pipeline (V, M, C by CMA-ES in the dream)", "seed": rep["seed"],
                     "steps_to_threshold": rep["real_steps"] if final["mean"] >= 475 else None,
                     "real_steps": rep["real_steps"], "final_mean": final["mean"], "final_std": final["std"],
                     "wall_s": rep["wall_time_s"],
                     "curve": [(k["real_steps_total"], k["real_score"]["mean"]) for k in rep["rounds"]]})
    return data["command"], rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="random seeds")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="real env steps each run may use")
    p.add_argument("--eval-every", type=int, default=1_000, help="real steps between points of the curve")
    p.add_argument("--train-every", type=int, default=None, help="real steps per update (DreamerConfig's default)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--with-pipeline", action="store_true",
                   help="also run the World Models pipeline on the same random seeds and budget, in this run")
    p.add_argument("--work", default="data/bench_rssm", help="where the pipeline's runs go (--with-pipeline)")
    p.add_argument("--out", default=None, help="append each finished run here as a JSON line")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    def keep(row):
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")

    rows, pipeline = [], []
    for seed in args.seeds:
        if args.with_pipeline:
            from sample_efficiency import world_model  # this script's folder is on sys.path

            t0 = time.perf_counter()
            row = world_model(seed, args.budget, 475.0, Path(args.work), episodes=100)
            row.update(method="World Models pipeline (V, M, C by CMA-ES in the dream)", seed=seed,
                       wall_s=time.perf_counter() - t0)
            pipeline.append(row)
            keep(row)
        rows.append(run_rssm(seed, args.budget, args.eval_every, args.train_every))
        keep(rows[-1])
    if args.with_pipeline:
        source = "run here, same random seeds and budget, PipelineConfig's defaults"
    else:
        command, pipeline = pipeline_rows(ROOT / "assets" / "pipeline_cartpole_reports.json")
        source = f"recorded in assets/pipeline_cartpole_reports.json ({command})"

    print(f"\nPixel CartPole, threshold 475 over 100 real episodes; budget {args.budget:,} real steps, "
          f"{args.threads} torch thread(s)")
    print(f"World Models pipeline: {source}")
    print("| method | seed | real steps to 475 | real steps used | final score (100 episodes) | wall time (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows + pipeline:
        steps = f"{r['steps_to_threshold']:,}" if r["steps_to_threshold"] is not None else "not within budget"
        print(f"| {r['method']} | {r['seed']} | {steps} | {r['real_steps']:,} | "
              f"{r['final_mean']:.1f} ± {r['final_std']:.1f} | {r['wall_s']:.0f} |")
    print("\nlearning curves (real steps, mean real return of the greedy actor; the pipeline's: per round, 3 episodes)")
    for r in rows + pipeline:
        if "curve" in r:
            print(f"  {r['method']}, seed {r['seed']}: " + ", ".join(f"({s:,}, {m:.0f})" for s, m in r["curve"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
