"""Sample efficiency on CartPole: the world model trained in its dream against DQN, same budget.

    python benchmarks/sample_efficiency.py                       # 3 seeds, 20,000 real steps each
    python benchmarks/sample_efficiency.py --seeds 0 --no-sb3    # quicker

For each seed, on the same budget of real environment steps and to the same threshold
(mean return >= 475):

- world model (wmlib.pipeline.run_pipeline, PipelineConfig's defaults): from *pixels*. Every real
  step counts: the random episodes V and M first learn from, C's exploring episodes, and the
  few episodes that score C each round. C itself never trains on a real step: only in the dream.
  Steps to threshold = its real steps, when the final C averages >= 475 over 100 real episodes.
- DQN (wmlib.dqn, chapter 1), and Stable-Baselines3's DQN with the RL Baselines3 Zoo's CartPole-v1
  settings, both from the 4-number *state* (an easier problem). Every 2,000 steps a greedy policy
  plays 10 episodes (not counted); training stops when they average >= 475 (steps to threshold).

Every final policy is then measured over 100 real episodes (seeds 1,000,000 ...; not counted).
Prints one table (steps to threshold, final score, wall time) and the per-method medians.
SB3 is installed from benchmarks/requirements-sb3.txt when missing (--no-sb3 skips it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wmlib.agent import EVAL_SEED_START

ROOT = Path(__file__).resolve().parent.parent


def world_model(seed: int, budget: int, threshold: float, work: Path, episodes: int) -> dict:
    from wmlib.config import PipelineConfig
    from wmlib.pipeline import run_pipeline

    run_dir = work / f"world_model_seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this benchmark's own output from an earlier run
    t0 = time.perf_counter()
    r = run_pipeline(PipelineConfig(real_step_budget=budget, target_return=threshold), run_dir, seed=seed,
                     final_eval_episodes=episodes).report
    final = r["final"]
    return {"method": "world model, from pixels (trained in the dream)", "seed": seed,
            "steps_to_threshold": r["real_steps"] if final["mean"] >= threshold else None,
            "real_steps": r["real_steps"], "final_mean": final["mean"], "final_std": final["std"],
            "dream_steps": r["dream_steps"], "rounds": len(r["rounds"]),
            "wall_s": time.perf_counter() - t0}


def greedy_returns(act, episodes: int) -> list[float]:
    from wmlib.envs import make_env

    env = make_env("cartpole")
    out = []
    for i in range(episodes):
        s, _ = env.reset(seed=EVAL_SEED_START + i)
        total, done = 0.0, False
        while not done:
            s, r, term, trunc, _ = env.step(act(s))
            total += r
            done = term or trunc
        out.append(total)
    return out


def our_dqn(seed: int, budget: int, threshold: float, episodes: int) -> dict:
    from wmlib.config import DQNConfig
    from wmlib.dqn import train_dqn

    t0 = time.perf_counter()
    r = train_dqn("cartpole", DQNConfig(), max_steps=budget, seed=seed, solved_return=threshold, progress=False)
    wall = time.perf_counter() - t0
    q = r.q_network
    returns = greedy_returns(lambda s: int(q(torch.as_tensor(s, dtype=torch.float32)[None]).argmax(1)), episodes)
    return {"method": "DQN (wmlib, ch. 1), from the state", "seed": seed, "steps_to_threshold": r.steps_to_solve,
            "real_steps": r.total_steps, "final_mean": float(np.mean(returns)), "final_std": float(np.std(returns)),
            "wall_s": wall}


def sb3_dqn(seed: int, budget: int, threshold: float, episodes: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAtThreshold(BaseCallback):
        """Every 2,000 steps: 10 greedy episodes in a separate env (not counted); stop at the threshold."""

        def __init__(self):
            super().__init__()
            self.steps_to_solve = None
            self.env = gym.make("CartPole-v1")

        def _on_step(self) -> bool:
            if self.num_timesteps % 2_000:
                return True
            returns = []
            for i in range(10):
                s, _ = self.env.reset(seed=10_000 + self.num_timesteps + i)
                total, done = 0.0, False
                while not done:
                    a, _ = self.model.predict(s, deterministic=True)
                    s, r, term, trunc, _ = self.env.step(int(a))
                    total += r
                    done = term or trunc
                returns.append(total)
            if np.mean(returns) >= threshold:
                self.steps_to_solve = self.num_timesteps
                return False
            return True

    # The RL Baselines3 Zoo's hyperparameters for CartPole-v1 (hyperparams/dqn.yml).
    zoo = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000, gamma=0.99,
               target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
               exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))
    t0 = time.perf_counter()
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, device="cpu", verbose=0, **zoo)
    callback = StopAtThreshold()
    model.learn(total_timesteps=budget, callback=callback)
    wall = time.perf_counter() - t0
    returns = greedy_returns(lambda s: int(model.predict(s, deterministic=True)[0]), episodes)
    return {"method": "DQN (Stable-Baselines3, zoo settings), from the state", "seed": seed,
            "steps_to_threshold": callback.steps_to_solve, "real_steps": int(model.num_timesteps),
            "final_mean": float(np.mean(returns)), "final_std": float(np.std(returns)), "wall_s": wall}


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
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", type=int, default=20_000, help="real env steps each method may use")
    p.add_argument("--threshold", type=float, default=475.0)
    p.add_argument("--eval-episodes", type=int, default=100, help="episodes measuring each final policy")
    p.add_argument("--work", default="data/bench_sample_efficiency", help="where the world-model runs go")
    p.add_argument("--no-sb3", action="store_true", help="skip the Stable-Baselines3 baseline")
    p.add_argument("--no-world-model", action="store_true", help="only the DQN baselines")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    sb3 = not args.no_sb3 and ensure_sb3()

    rows = []
    for seed in args.seeds:
        if not args.no_world_model:
            rows.append(world_model(seed, args.budget, args.threshold, work, args.eval_episodes))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(our_dqn(seed, args.budget, args.threshold, args.eval_episodes))
        print(json.dumps(rows[-1]), flush=True)
        if sb3:
            rows.append(sb3_dqn(seed, args.budget, args.threshold, args.eval_episodes))
            print(json.dumps(rows[-1]), flush=True)

    print(f"\nCartPole-v1, budget {args.budget:,} real steps, threshold {args.threshold:g}, "
          f"final score over {args.eval_episodes} real episodes")
    print("| method | seed | real steps to threshold | real steps used | final score | wall time (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        steps = f"{r['steps_to_threshold']:,}" if r["steps_to_threshold"] is not None else "not reached"
        print(f"| {r['method']} | {r['seed']} | {steps} | {r['real_steps']:,} | "
              f"{r['final_mean']:.1f} ± {r['final_std']:.1f} | {r['wall_s']:.0f} |")
    print("\nper method (median over seeds):")
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        reached = [r["steps_to_threshold"] for r in mine if r["steps_to_threshold"] is not None]
        shown = f"{statistics.median(reached):,.0f}" if reached else "-"
        print(f"  {method}: reached {len(reached)}/{len(mine)}, median steps to threshold {shown}, "
              f"median final score {statistics.median(r['final_mean'] for r in mine):.1f}, "
              f"median wall time {statistics.median(r['wall_s'] for r in mine):.0f} s")
    print("  claimed in a common summary of the paper: DQN ~136,645 steps; a simple world model 20,000")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
