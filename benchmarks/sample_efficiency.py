"""Sample efficiency on CartPole: the world model trained in its dream against model-free agents.

    python benchmarks/sample_efficiency.py                  # seeds 10-14, every method; resumes where it stopped
    python benchmarks/sample_efficiency.py --table          # print the table of the runs measured so far
    python benchmarks/sample_efficiency.py --seeds 0 --methods world-model dqn-state --out data/quick_runs.jsonl

Methods (--methods), all on the same random seeds, threshold and protocol:

    world-model      wmlib.pipeline.run_pipeline at PipelineConfig's defaults, from *pixels*: V, M, C
                     trained from scratch; C trains only in the dream
    sb3-dqn-pixels   Stable-Baselines3 DQN, CnnPolicy (the Nature CNN) on the *same pixels* (the course's
                     64x64x3 frames), 4 frames stacked
    sb3-ppo-pixels   Stable-Baselines3 PPO, CnnPolicy on the same pixels, 4 frames stacked, 8 envs
    sb3-dqn-state    Stable-Baselines3 DQN with the RL Baselines3 Zoo's CartPole-v1 settings, from the 4-number
                     *state* (an easier problem)
    dqn-state        wmlib.dqn (chapter 1), from the state

The protocol. Every real step counts, the episodes that evaluate during training included:
- world model: its random episodes, C's exploring episodes and the few episodes that score C each round
  (PipelineConfig.eval_episodes); it stops after a round whose score reaches the threshold.
- model-free agents: every `eval_every` training steps the greedy policy plays 10 real episodes in a
  separate env; it stops when they average >= the threshold. Steps to threshold = training steps + the
  evaluation episodes' steps so far.
"Steps to threshold" is reported only when the final policy also averages >= the threshold over
--eval-episodes fresh real episodes (seeds wmlib.agent.EVAL_SEED_START ..., never used in training);
otherwise "not within budget". The final measurement itself is not counted.

Settings of the pixel baselines, adapted from the zoo's Atari ones (hyperparams/dqn.yml, ppo.yml; stated in
SB3_PIXEL_DQN and SB3_PIXEL_PPO): the Atari learning rates, batch sizes, target update and clipping; the
zoo's 100,000-step warm-up and 1e7-step schedules shrunk to the budget here (warm-up 1,000 steps,
exploration over the first 10% of the budget). The course's frames are 64x64 rather than Atari's 84x84
greyscale, in colour, so the policy sees what V sees.

Random seeds 0, 1 and 2 were used while choosing the pipeline's defaults; use others for the table
(the script prints which were tuning seeds). Each finished (method, seed) run is one JSON line in
--out, so an interrupted benchmark resumes where it stopped and --table prints all lines so far.
Wall time and CPU seconds (this process's, one torch thread) are per run.
Stable-Baselines3 is installed from benchmarks/requirements-sb3.txt when missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wmlib.agent import EVAL_SEED_START
from wmlib.config import PipelineConfig, with_defaults

ROOT = Path(__file__).resolve().parent.parent
TUNING_SEEDS = (0, 1, 2)
"""The random seeds on which the pipeline's defaults were chosen (assets/pipeline_cartpole_reports.json)."""
TRAINING_EVAL_EPISODES = 10
"""Greedy episodes of each evaluation during a model-free agent's training (counted as real steps)."""

SB3_STATE_DQN = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000, gamma=0.99,
                     target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                     exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))
"""The RL Baselines3 Zoo's DQN hyperparameters for CartPole-v1 (hyperparams/dqn.yml)."""

SB3_PIXEL_DQN = dict(learning_rate=1e-4, batch_size=32, buffer_size=100_000, learning_starts=1_000, gamma=0.99,
                     target_update_interval=1_000, train_freq=4, gradient_steps=1, exploration_fraction=0.1,
                     exploration_final_eps=0.01, optimize_memory_usage=True,
                     replay_buffer_kwargs=dict(handle_timeout_termination=False))
"""The zoo's Atari DQN settings (lr 1e-4, batch 32, buffer 1e5, target update 1,000, train every 4 steps,
final epsilon 0.01, exploration over 10% of the run), with a 1,000-step warm-up instead of 100,000."""

SB3_PIXEL_PPO = dict(n_steps=128, n_epochs=4, batch_size=256, learning_rate=2.5e-4, clip_range=0.1,
                     vf_coef=0.5, ent_coef=0.01)
"""The zoo's Atari PPO settings (8 envs x 128 steps, 4 epochs, minibatch 256, lr 2.5e-4, clip 0.1, entropy 0.01;
the zoo anneals lr and clip linearly, kept constant here)."""
PPO_ENVS = 8
FRAME_STACK = 4


# ---------------------------------------------------------------------------------------------
# Playing a finished policy
# ---------------------------------------------------------------------------------------------


def state_returns(act, seeds) -> tuple[list[float], int]:
    """Greedy episodes of CartPole-v1 from the state on these env seeds: (returns, steps)."""
    from wmlib.envs import make_env

    env, out, steps = make_env("cartpole"), [], 0
    for s in seeds:
        obs, _ = env.reset(seed=int(s))
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total, steps, done = total + r, steps + 1, term or trunc
        out.append(total)
    return out, steps


def pixel_vec_env(n_envs: int = 1):
    """The course's pixel CartPole for SB3: n envs, FRAME_STACK frames stacked, channels first for the CNN."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

    from wmlib.envs import make_env

    venv = DummyVecEnv([lambda: make_env("cartpole-pixels") for _ in range(n_envs)])
    return VecTransposeImage(VecFrameStack(venv, FRAME_STACK, channels_order="last"))


def pixel_returns(model, seeds) -> tuple[list[float], int]:
    """Greedy episodes of an SB3 pixel policy, one env, on these env seeds: (returns, steps)."""
    venv, out, steps = pixel_vec_env(1), [], 0
    for s in seeds:
        venv.seed(int(s))
        obs = venv.reset()
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, dones, _ = venv.step(action)
            total, steps, done = total + float(r[0]), steps + 1, bool(dones[0])
        out.append(total)
    venv.close()
    return out, steps


# ---------------------------------------------------------------------------------------------
# The methods: each returns one row (steps_to_threshold is None when not reached)
# ---------------------------------------------------------------------------------------------


def world_model(seed: int, budget: int, threshold: float, work: Path, episodes: int) -> dict:
    from wmlib.pipeline import run_pipeline

    run_dir = work / f"world_model_seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this benchmark's own output from an earlier, unfinished run
    r = run_pipeline(PipelineConfig(real_step_budget=budget, target_return=threshold), run_dir, seed=seed,
                     final_eval_episodes=episodes, progress=False).report
    final = r["final"]
    return {"steps_to_threshold": r["real_steps"] if final["mean"] >= threshold else None,
            "real_steps": r["real_steps"], "final_mean": final["mean"], "final_std": final["std"],
            "dream_steps": r["dream_steps"], "rounds": len(r["rounds"]), "config": r["config"]}


def pipeline_key(row: dict) -> str:
    """What tells world-model runs at different PipelineConfig defaults apart: the config, less M's preset
    (fields added after a run was recorded count at their defaults, which is how that run ran)."""
    config = with_defaults(row["config"], dataclasses.asdict(PipelineConfig()))
    return json.dumps({k: v for k, v in config.items() if k != "mdnrnn"}, sort_keys=True)


def label(row: dict) -> str:
    """The method's name in the table; world-model runs also say how many random episodes round 0 played."""
    if row["method"] != "world-model":
        return METHODS[row["method"]]
    return f"{METHODS['world-model']}, {row['config']['random_episodes']} random episodes"


def our_dqn(seed: int, budget: int, threshold: float, episodes: int) -> dict:
    from wmlib.config import DQNConfig
    from wmlib.dqn import train_dqn

    r = train_dqn("cartpole", DQNConfig(), max_steps=budget, seed=seed, solved_return=threshold,
                  eval_episodes=TRAINING_EVAL_EPISODES, progress=False)
    q = r.q_network
    returns, _ = state_returns(lambda s: int(q(torch.as_tensor(s, dtype=torch.float32)[None]).argmax(1)),
                               EVAL_SEED_START + np.arange(episodes))
    reached = r.steps_to_solve is not None
    return {"steps_to_threshold": r.steps_to_solve + r.eval_steps if reached else None,
            "real_steps": r.total_steps + r.eval_steps, "final_mean": float(np.mean(returns)),
            "final_std": float(np.std(returns))}


def _sb3_train(model, budget: int, threshold: float, eval_every: int, play) -> tuple[int | None, int]:
    """model.learn with an evaluation every eval_every steps (counted); stop at the threshold.
    play(model, seeds) -> (returns, steps). Returns (steps to threshold incl. evaluation, all real steps)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Evaluate(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval, self.eval_steps, self.solved_at = eval_every, 0, None

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += eval_every
            seeds = 10_000 + self.num_timesteps + np.arange(TRAINING_EVAL_EPISODES)
            returns, steps = play(self.model, seeds)
            self.eval_steps += steps
            if np.mean(returns) >= threshold:
                self.solved_at = self.num_timesteps + self.eval_steps
                return False
            return True

    callback = Evaluate()
    model.learn(total_timesteps=budget, callback=callback)
    return callback.solved_at, int(model.num_timesteps) + callback.eval_steps


def _sb3_row(model, solved_at, real_steps, threshold, episodes, play) -> dict:
    returns, _ = play(model, EVAL_SEED_START + np.arange(episodes))
    final = float(np.mean(returns))
    return {"steps_to_threshold": solved_at if (solved_at is not None and final >= threshold) else None,
            "real_steps": real_steps, "final_mean": final, "final_std": float(np.std(returns))}


def sb3_dqn_state(seed: int, budget: int, threshold: float, episodes: int) -> dict:
    from stable_baselines3 import DQN

    from wmlib.envs import make_env

    def play(model, seeds):
        return state_returns(lambda s: int(model.predict(s, deterministic=True)[0]), seeds)

    model = DQN("MlpPolicy", make_env("cartpole"), seed=seed, device="cpu", verbose=0, **SB3_STATE_DQN)
    solved_at, real = _sb3_train(model, budget, threshold, 2_000, play)
    return _sb3_row(model, solved_at, real, threshold, episodes, play)


def sb3_dqn_pixels(seed: int, budget: int, threshold: float, episodes: int) -> dict:
    from stable_baselines3 import DQN

    model = DQN("CnnPolicy", pixel_vec_env(1), seed=seed, device="cpu", verbose=0, **SB3_PIXEL_DQN)
    solved_at, real = _sb3_train(model, budget, threshold, 10_000, pixel_returns)
    return _sb3_row(model, solved_at, real, threshold, episodes, pixel_returns)


def sb3_ppo_pixels(seed: int, budget: int, threshold: float, episodes: int) -> dict:
    from stable_baselines3 import PPO

    model = PPO("CnnPolicy", pixel_vec_env(PPO_ENVS), seed=seed, device="cpu", verbose=0, **SB3_PIXEL_PPO)
    solved_at, real = _sb3_train(model, budget, threshold, 10_240, pixel_returns)
    return _sb3_row(model, solved_at, real, threshold, episodes, pixel_returns)


METHODS = {
    "world-model": "world model, from pixels (trained in the dream)",
    "sb3-dqn-pixels": "DQN (SB3, CnnPolicy, Atari settings), from pixels",
    "sb3-ppo-pixels": "PPO (SB3, CnnPolicy, Atari settings), from pixels",
    "sb3-dqn-state": "DQN (SB3, zoo CartPole settings), from the state",
    "dqn-state": "DQN (wmlib, ch. 1), from the state",
}
PIXELS = ("world-model", "sb3-dqn-pixels", "sb3-ppo-pixels")


def budget_of(method: str, args) -> int:
    """The real-step budget of a method: --budget (world model), --pixel-budget or --state-budget."""
    if method == "world-model":
        return args.budget
    return args.pixel_budget if method in PIXELS else args.state_budget


def run_one(method: str, seed: int, args) -> dict:
    torch.manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    budget = budget_of(method, args)
    if method == "world-model":
        row = world_model(seed, budget, args.threshold, Path(args.work), args.eval_episodes)
    else:
        fn = {"sb3-dqn-pixels": sb3_dqn_pixels, "sb3-ppo-pixels": sb3_ppo_pixels, "sb3-dqn-state": sb3_dqn_state,
              "dqn-state": our_dqn}[method]
        row = fn(seed, budget, args.threshold, args.eval_episodes)
    return {"method": method, "seed": seed, "budget": budget, "threshold": args.threshold,
            "eval_episodes": args.eval_episodes, **row,
            "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - c0, 1)}


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def _median_steps(rows) -> float | None:
    """The median real steps to threshold, a seed that missed counting as never reaching it (a censored
    median, as for times to an event): defined once more than half the random seeds reached it, else None."""
    steps = [math.inf if r["steps_to_threshold"] is None else r["steps_to_threshold"] for r in rows]
    med = statistics.median(steps) if steps else math.inf
    return None if math.isinf(med) else med


def print_table(rows: list[dict]) -> None:
    print("| method | seed | real steps to threshold | real steps used | final score (100 real ep.) "
          "| wall time (s) | CPU (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        steps = f"{r['steps_to_threshold']:,}" if r["steps_to_threshold"] is not None \
            else f"not within {r['budget']:,}"
        print(f"| {label(r)} | {r['seed']} | {steps} | {r['real_steps']:,} | "
              f"{r['final_mean']:.1f} ± {r['final_std']:.1f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |")
    groups: dict[tuple[str, int, str], list[dict]] = {}  # (method, budget, the world model's config) -> rows
    for r in rows:
        groups.setdefault((r["method"], r["budget"], pipeline_key(r) if r["method"] == "world-model" else ""),
                          []).append(r)
    print("\nper method and budget (median over its seeds; for steps to threshold a seed that missed counts as "
          "never reaching it, so the median exists once more than half reached it):")
    for (_, budget, _), mine in groups.items():
        reached = sum(r["steps_to_threshold"] is not None for r in mine)
        med = _median_steps(mine)
        print(f"  {label(mine[0])}, budget {budget:,}: seeds {sorted(r['seed'] for r in mine)}, reached "
              f"{reached}/{len(mine)}, median steps to threshold {f'{med:,.0f}' if med is not None else '-'}, "
              f"median final score {statistics.median(r['final_mean'] for r in mine):.1f}, "
              f"median wall time {statistics.median(r['wall_s'] for r in mine):.0f} s")
    largest = {m: max((g for g in groups.items() if g[0][0] == m), key=lambda g: g[0][1])[1]
               for m in METHODS if any(key[0] == m for key in groups)}
    # the world model at today's defaults (the runs at earlier defaults stay in the table above)
    today = pipeline_key({"config": dataclasses.asdict(PipelineConfig())})
    current = [rs for (m, _, key), rs in groups.items() if m == "world-model" and key == today]
    largest["world-model"] = current[0] if current else []
    wm = _median_steps(largest["world-model"])
    if not current:
        print("\n(no world-model runs at today's PipelineConfig defaults yet: no ratios)")
    print("\nratios (a baseline's median steps to threshold at its largest budget / the world model's; "
          "same observation first):")
    for m in ("sb3-dqn-pixels", "sb3-ppo-pixels", "sb3-dqn-state", "dqn-state"):
        mine = largest.get(m)
        if not mine or wm is None:
            continue
        med = _median_steps(mine)
        obs = "same pixels" if m in PIXELS else "state vs pixels"
        if med is not None:
            shown = f"{med / wm:.1f}x"
        else:  # a seed that missed would have needed more than the steps it used: a lower bound
            bound = statistics.median(r["steps_to_threshold"] or r["real_steps"] for r in mine)
            shown = f"more than {bound / wm:.1f}x (at most half its seeds reached it)"
        print(f"  {METHODS[m]} / world model ({obs}): {shown}; seeds {len(mine)} against "
              f"{len(largest['world-model'])}")
    print("  claimed in a common summary of the paper: DQN ~136,645 steps; a simple world model 20,000 (6.8x)")


def ensure_sb3() -> bool:
    if importlib.util.find_spec("stable_baselines3") is not None:
        return True
    req = ROOT / "benchmarks" / "requirements-sb3.txt"
    print(f"installing Stable-Baselines3 for this benchmark: pip install -r {req.relative_to(ROOT)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(req)])
    importlib.invalidate_caches()
    return done.returncode == 0 and importlib.util.find_spec("stable_baselines3") is not None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    p.add_argument("--budget", type=int, default=20_000, help="real steps the world model may use")
    p.add_argument("--state-budget", type=int, default=100_000, help="real training steps: model-free state agents")
    p.add_argument("--pixel-budget", type=int, default=200_000, help="real training steps: model-free pixel agents")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--eval-episodes", type=int, default=100, help="episodes measuring each final policy")
    p.add_argument("--work", default="data/bench_sample_efficiency", help="where the world-model runs go")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sample_efficiency_runs.jsonl",
                   help="a JSON-lines file: finished runs are kept there and skipped when run again (the default is "
                        "committed: the runs measured so far)")
    p.add_argument("--table", action="store_true", help="only print the table of the runs in --out")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()] \
        if args.out.exists() else []
    today = pipeline_key({"config": dataclasses.asdict(PipelineConfig(real_step_budget=args.budget,
                                                                       target_return=args.threshold))})
    if not args.table:
        tuned = sorted(set(args.seeds) & set(TUNING_SEEDS))
        print(f"random seeds {args.seeds}; " + (f"{tuned} were used while tuning the pipeline's defaults"
                                                if tuned else "none was used while tuning"), flush=True)
        if any(m.startswith("sb3") for m in args.methods) and not ensure_sb3():
            raise SystemExit("Stable-Baselines3 is needed for the sb3-* methods (or leave them out with --methods)")
        for seed in args.seeds:
            for method in args.methods:
                budget = budget_of(method, args)
                if any(r["method"] == method and r["seed"] == seed and r["threshold"] == args.threshold
                       and r["eval_episodes"] == args.eval_episodes and r["budget"] == budget
                       and (method != "world-model" or pipeline_key(r) == today) for r in done):
                    continue
                row = run_one(method, seed, args)
                print(json.dumps(row), flush=True)
                done.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    rows = [r for r in done if r["threshold"] == args.threshold]
    print(f"\nCartPole-v1, threshold {args.threshold:g}; final score over {args.eval_episodes} fresh real episodes")
    print_table(sorted(rows, key=lambda r: (list(METHODS).index(r["method"]), r["budget"], r["seed"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
