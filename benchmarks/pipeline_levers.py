"""Levers on the world model's real-step count: the pipeline (pixel CartPole, from scratch) at variants of
PipelineConfig, each on the same random seeds, measured the way benchmarks/sample_efficiency.py measures it.

    python benchmarks/pipeline_levers.py --variants lean --seeds 0 1 2     # runs; resumes where it stopped
    python benchmarks/pipeline_levers.py --table                          # the table of the runs so far

Every real step counts (random episodes, C's exploring episodes, the episodes that score C each round); a run
stops after a round whose score reaches the threshold or when the budget is spent. "Real steps" is reported as
reached only when the picked C also averages >= the threshold over --eval-episodes fresh real episodes (not
counted). Tune on random seeds 0-2 (benchmarks/sample_efficiency.TUNING_SEEDS); the table there uses 10-14.

Each variant names the PipelineConfig fields it changes from the defaults of the day; VARIANTS says why.
Finished runs are JSON lines in --out (each with the full config it ran), so a variant whose meaning
changes does not mix with old rows: the table groups rows by the config they ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from wmlib.config import PipelineConfig, with_defaults

ROOT = Path(__file__).resolve().parent.parent

VARIANTS: dict[str, dict] = {
    "default": dict(),
    # PipelineConfig() as it is today
    "paper-style": dict(random_episodes=300, vae_epochs=8, episodes_per_round=6, eval_episodes=3),
    # the defaults before this benchmark: 300 random episodes (about 8,800 real steps) before C exists
    "lean": dict(random_episodes=100, vae_epochs=24, episodes_per_round=3, eval_episodes=2),
    # a third of the random play with 3x V's epochs (about the same gradient steps), half the exploring and
    # scoring episodes per round
    "leaner": dict(random_episodes=50, vae_epochs=40, vae_epochs_per_round=2, episodes_per_round=3, eval_episodes=2),
    # a sixth of the random play; V refreshed twice per round on the (much smaller) data
    "lean-1eval": dict(random_episodes=100, vae_epochs=24, episodes_per_round=3, eval_episodes=1),
    # one scoring episode per round: a success costs 500 real steps instead of 1,000 (risk: a lucky episode)
    "lean-hot": dict(random_episodes=100, vae_epochs=24, episodes_per_round=3, eval_episodes=2,
                     dream_temperature=1.3),
    # C trains in a noisier dream, to be robust where M knows little
}


def config_of(variant: str, budget: int, threshold: float) -> PipelineConfig:
    changes = dict(VARIANTS[variant])
    temperature = changes.pop("dream_temperature", None)
    config = PipelineConfig(real_step_budget=budget, target_return=threshold, **changes)
    if temperature is not None:
        config = dataclasses.replace(config, dream=dataclasses.replace(config.dream, temperature=temperature))
    return config


def run_one(variant: str, seed: int, args) -> dict:
    from wmlib.pipeline import run_pipeline

    config = config_of(variant, args.budget, args.threshold)
    work = Path(args.work) / f"{variant}_seed{seed}"
    if work.exists():
        shutil.rmtree(work)  # this benchmark's own output from an unfinished run
    torch.manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    r = run_pipeline(config, work, seed=seed, final_eval_episodes=args.eval_episodes, progress=False).report
    final = r["final"]
    return {"variant": variant, "seed": seed, "config": r["config"],
            "steps_to_threshold": r["real_steps"] if final["mean"] >= args.threshold else None,
            "real_steps": r["real_steps"], "final_mean": final["mean"], "final_std": final["std"],
            "rounds": [{"real_steps": x["real_steps"], "real_score": x["real_score"]["mean"],
                        "dream_score": x["dream_score"], "seconds": x["seconds"]} for x in r["rounds"]],
            "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1), "report": r}


def print_table(rows: list[dict]) -> None:
    print("| variant | seed | real steps to threshold | real steps used | rounds | final score (100 real ep.) "
          "| wall time (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        steps = f"{r['steps_to_threshold']:,}" if r["steps_to_threshold"] is not None else "not reached"
        print(f"| {r['variant']} | {r['seed']} | {steps} | {r['real_steps']:,} | {len(r['rounds'])} | "
              f"{r['final_mean']:.1f} ± {r['final_std']:.1f} | {r['wall_s']:.0f} |")
    print("\nper variant (median real steps counts a seed that missed as its steps used):")
    for v in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == v]
        reached = sum(r["steps_to_threshold"] is not None for r in mine)
        print(f"  {v}: seeds {sorted(r['seed'] for r in mine)}, reached {reached}/{len(mine)}, "
              f"median real steps {statistics.median(r['real_steps'] for r in mine):,.0f}, "
              f"median final {statistics.median(r['final_mean'] for r in mine):.1f}, "
              f"max wall time {max(r['wall_s'] for r in mine):.0f} s  ({VARIANTS.get(v, 'an earlier variant')})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["lean"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", type=int, default=20_000)
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--work", default="data/bench_pipeline_levers")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pipeline_levers_runs.jsonl")
    p.add_argument("--table", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ship", type=Path, default=None,
                   help="write the reports of the runs at today's defaults on --seeds to this file (the shipped "
                        "assets/pipeline_cartpole_reports.json that chapter 5 reads)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    done = [json.loads(x) for x in args.out.read_text().splitlines() if x.strip()] if args.out.exists() else []
    if not args.table:
        for seed in args.seeds:
            for variant in args.variants:
                config = dataclasses.asdict(config_of(variant, args.budget, args.threshold))
                if any(r["seed"] == seed and _same(r["config"], config) for r in done):  # under any variant name
                    continue
                row = run_one(variant, seed, args)
                print(json.dumps({k: v for k, v in row.items() if k != "config"}), flush=True)
                done.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    if args.ship is not None:
        ship(done, args)
    print_table(sorted(done, key=lambda r: (list(VARIANTS).index(r["variant"]) if r["variant"] in VARIANTS else 99,
                                            r["seed"])))
    return 0


def ship(done: list[dict], args) -> None:
    """The reports of the runs at today's PipelineConfig defaults on args.seeds, with the command that made them."""
    today = dataclasses.asdict(config_of("default", args.budget, args.threshold))
    reports = []
    for seed in args.seeds:
        mine = [r for r in done if r["seed"] == seed and _same(r["config"], today)]
        if not mine:
            raise SystemExit(f"no run at today's defaults for seed {seed}: run it first (--variants default)")
        reports.append(mine[-1]["report"])
    seeds = " ".join(map(str, args.seeds))
    command = (f"python benchmarks/pipeline_levers.py --variants default --seeds {seeds} --ship {args.ship}  "
               f"(PipelineConfig() defaults, budget {args.budget:,}, {args.threads} torch thread(s); each run the "
               f"same as python -m wmlib pipeline --env cartpole-pixels --work DIR --seed S --threads {args.threads})")
    args.ship.write_text(json.dumps({"command": command, "reports": reports}, indent=1) + "\n")
    print(f"wrote {len(reports)} reports to {args.ship}")


def _same(ran: dict, asked: dict) -> bool:
    """Whether a finished run used this config (its report fills in M's preset, so compare the rest; fields
    added after it ran count at their defaults, which is how it ran)."""
    ran = with_defaults(ran, dataclasses.asdict(PipelineConfig()))
    return {k: v for k, v in ran.items() if k != "mdnrnn"} == {k: v for k, v in asked.items() if k != "mdnrnn"}


if __name__ == "__main__":
    raise SystemExit(main())
