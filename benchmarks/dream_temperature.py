"""Train C only in the dream at several temperatures; score it in the dream and in reality.

    python benchmarks/dream_temperature.py                       # shipped CartPole V and M
    python benchmarks/dream_temperature.py --temperatures 1.0 --episodes 100 --ends sample

The paper's Doom table, on pixel CartPole: for each temperature tau (and each rule for ending
a dream: M's done probability sampled, or thresholded at 0.5 as in the paper's code), CMA-ES
trains C entirely inside M's dream, starting from the first frames of M's own training episodes
(data/cartpole_latents, made by the command in assets/README.md; without them, 50 fresh random
episodes). The chosen C then plays `--episodes` real episodes (seeds 1,000,000 ...).
Prints one row per setting: dream score, real score (mean ± std), dream steps used.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from wmlib.agent import EVAL_SEED_START, WorldModelAgent, play_episode
from wmlib.config import CMAESConfig, DreamConfig
from wmlib.controller import controller_config_for
from wmlib.dream_training import train_controller_in_dream
from wmlib.envs import make_env
from wmlib.latents import encode_episodes, load_latent_episodes
from wmlib.mdnrnn import load_mdnrnn
from wmlib.rollouts import play_episode as play_random
from wmlib.vae import load_vae


def starting_episodes(vae, m, latents: str, n: int) -> tuple[list[dict], str]:
    if Path(latents).is_dir() and any(Path(latents).glob("*.npz")):
        files = sorted(Path(latents).glob("*.npz"))[:n]
        return load_latent_episodes(files, m.config.action_dim), f"{len(files)} episodes of {latents}"
    env = make_env("cartpole-pixels")
    env.action_space.seed(0)
    played = [play_random(env, lambda o, i: env.action_space.sample(), seed=i) for i in range(50)]
    return encode_episodes(vae, played, m.config.action_dim), "50 fresh random episodes"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.1, 0.5, 1.0, 1.15, 1.3])
    p.add_argument("--ends", nargs="+", choices=("sample", "threshold"), default=["sample", "threshold"])
    p.add_argument("--episodes", type=int, default=20, help="real episodes scoring each C")
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--rollouts", type=int, default=16)
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--latents", default="data/cartpole_latents")
    p.add_argument("--start-episodes", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    vae, m = load_vae("cartpole"), load_mdnrnn("cartpole")
    episodes, where = starting_episodes(vae, m, args.latents, args.start_episodes)
    c_config = controller_config_for("cartpole-pixels", vae.config.z_dim, m.config.hidden_size)
    env = make_env("cartpole-pixels")
    print(f"dreams start from {where}; CMA-ES {args.population} x {args.rollouts} x {args.generations}; "
          f"{args.episodes} real episodes per C", flush=True)
    rows = []
    for end in args.ends:
        for tau in args.temperatures:
            t0 = time.perf_counter()
            dream = DreamConfig(temperature=tau, done_threshold=None if end == "sample" else 0.5, max_steps=500)
            cma = CMAESConfig(population_size=args.population, rollouts_per_candidate=args.rollouts, sigma0=0.5,
                              generations=args.generations)
            result = train_controller_in_dream(m, episodes, c_config, cma, dream, seed=args.seed, progress=False)
            agent = WorldModelAgent(vae, m, result.controller, env.action_space)
            real = [play_episode(env, agent, seed=EVAL_SEED_START + i).ret for i in range(args.episodes)]
            rows.append((end, tau, result.selection[result.picked], float(np.mean(real)), float(np.std(real)),
                         result.dream_steps, time.perf_counter() - t0))
            _, _, dream_score, mean, std, steps, seconds = rows[-1]
            print(f"ends {end:9s} tau {tau:4.2f}: dream {dream_score:6.1f}, real {mean:6.1f} ± {std:5.1f} "
                  f"({steps:,} dream steps, {seconds:.0f} s)", flush=True)
    print("\n| dream ends | temperature | score in the dream | score in reality | dream steps |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for end, tau, dream_score, mean, std, steps, _ in rows:
        rule = "sampled from p(done)" if end == "sample" else "p(done) > 0.5"
        print(f"| {rule} | {tau:g} | {dream_score:.1f} | {mean:.1f} ± {std:.1f} | {steps:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
