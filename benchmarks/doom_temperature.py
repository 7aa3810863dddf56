"""The paper's Doom table, measured: C trained only in M's dream at several temperatures, scored in the
dream and over real TakeCover episodes, beside the paper's numbers and a random policy's.

    python benchmarks/doom_temperature.py                                   # shipped doom V and M
    python benchmarks/doom_temperature.py --temperatures 1.15 --generations 10 --episodes 20

For each temperature tau, CMA-ES (`--population` x `--rollouts` dreams per candidate, `--generations`)
trains C = tanh(W [z; h] + b) entirely inside M's dream, starting from the first frames of M's
training episodes (`--latents`, made by the encode command in assets/README.md; the first
`--start-episodes` of them). The dream ends as
M's done head says (sampled from its probability, its logit raised by `--done-bias`) or at 2,100
steps, and pays +1 per step. The C it
picks then plays `--episodes` real episodes (seeds 1,000,000 ...), as does a uniformly random policy
on the same seeds. Prints one row per temperature: dream score, real score (mean ± std), the paper's
real score, dream steps and wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from wmlib.agent import EVAL_SEED_START, ControllerRollout
from wmlib.config import CMAESConfig, DreamConfig
from wmlib.controller import controller_config_for
from wmlib.dream_training import train_controller_in_dream
from wmlib.latents import load_latent_episodes
from wmlib.lockstep import LockstepEvaluator
from wmlib.mdnrnn import load_mdnrnn
from wmlib.rollouts import play_episodes
from wmlib.tasks import world_spec
from wmlib.vae import load_vae

WORLD = "doom-takecover"

PAPER_REAL = {0.10: (193, 58), 0.50: (196, 50), 1.00: (868, 511), 1.15: (1092, 556), 1.30: (753, 139)}
"""The paper's Table (Doom TakeCover, C trained in the dream at tau, scored over 100 real trials)."""
PAPER_RANDOM = (210, 108)


def random_scores(episodes: int) -> np.ndarray:
    """Real returns of ViZDoom's uniformly random actions on the evaluation seeds."""
    return np.array([len(ep["actions"]) for ep in play_episodes(WORLD, episodes, seed=EVAL_SEED_START)], float)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--temperatures", type=float, nargs="+", default=sorted(PAPER_REAL))
    p.add_argument("--vae", default="doom", help="V: shipped name or checkpoint stem")
    p.add_argument("--mdnrnn", default="doom", help="M: shipped name or checkpoint stem")
    p.add_argument("--latents", default="data/doom/latents2", help="encoded real episodes where dreams start")
    p.add_argument("--start-episodes", type=int, default=100,
                   help="use the first N of them (where dreams start; C's input statistics run M along each)")
    p.add_argument("--episodes", type=int, default=100, help="real episodes scoring each C and the random policy")
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--rollouts", type=int, default=8)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--sigma0", type=float, default=0.5)
    p.add_argument("--done-bias", type=float, default=0.0,
                   help="added to M's done logit in the dream (DreamConfig.done_bias; "
                        "benchmarks/doom_done_bias.py calibrates it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes for the real episodes; speed only")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    vae, m = load_vae(args.vae), load_mdnrnn(args.mdnrnn)
    files = sorted(Path(args.latents).glob("*.npz"))[: args.start_episodes]
    episodes = load_latent_episodes(files, m.config.action_dim)
    c_config = controller_config_for(WORLD, vae.config.z_dim, m.config.hidden_size)
    max_steps = world_spec(WORLD).dream_max_steps
    print(f"dreams start from {len(episodes)} episodes of {args.latents}; done bias {args.done_bias:g}; "
          f"CMA-ES {args.population} x "
          f"{args.rollouts} x {args.generations}; {args.episodes} real episodes per C", flush=True)
    t0 = time.perf_counter()
    rand = random_scores(args.episodes)
    print(f"random policy: {rand.mean():.1f} ± {rand.std():.1f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for tau in args.temperatures:
        t0 = time.perf_counter()
        cma = CMAESConfig(population_size=args.population, rollouts_per_candidate=args.rollouts, sigma0=args.sigma0,
                          generations=args.generations)
        dream = DreamConfig(temperature=tau, max_steps=max_steps, done_bias=args.done_bias)
        result = train_controller_in_dream(m, episodes, c_config, cma, dream, seed=args.seed, progress=False)
        rollout_fn = ControllerRollout(WORLD, args.vae, args.mdnrnn, c_config)
        with LockstepEvaluator(rollout_fn, args.workers) as evaluator:  # the one-at-a-time episodes, ~2x faster
            real = evaluator.evaluate(result.controller.get_flat_params(), args.episodes, progress=False)
        rows.append((tau, result.selection[result.picked], real.mean, real.std, result.dream_steps,
                     time.perf_counter() - t0))
        print(f"tau {tau:4.2f}: dream {rows[-1][1]:7.1f}, real {real.mean:7.1f} ± {real.std:6.1f} "
              f"({result.dream_steps:,} dream steps, {rows[-1][5]:.0f} s)", flush=True)
    print(f"\n| temperature | score in the dream | score in reality ({args.episodes} episodes) | paper's real score "
          "| dream steps | wall |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for tau, dream_score, mean, std, steps, seconds in rows:
        paper = PAPER_REAL.get(round(tau, 2))
        paper_text = f"{paper[0]} ± {paper[1]}" if paper else "-"
        print(f"| {tau:g} | {dream_score:.0f} | {mean:.0f} ± {std:.0f} | {paper_text} | {steps:,} | {seconds:.0f} s |")
    paper_random = f"{PAPER_RANDOM[0]} ± {PAPER_RANDOM[1]}"
    print(f"| random policy | - | {rand.mean():.0f} ± {rand.std():.0f} | {paper_random} | - | - |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
