"""Does a bfloat16 dream dream the same world? M in float32 against its bfloat16 copy, measured three ways.

    python benchmarks/dream_precision.py                       # about 8 minutes on 2 cores
    python benchmarks/dream_precision.py --real-episodes 20 --generations 10   # a quicker look

`DreamConfig(precision="bfloat16")` runs M's weights and memory (h, c) in bfloat16 (8 bits of
mantissa instead of 24) and samples the mixture in float32; on a CPU with AVX512-BF16 M's matrix
products run ~2.4x faster and a dream step of the paper's car M ~1.5x (benchmarks/dream_speed.py).
Cheaper is only useful if the dream is the same dream, so this script measures, for the shipped M of
each environment:

1. M's next-latent NLL on fresh real episodes (nats per latent dimension and step), teacher-forced
   *step by step* with the memory carried at each precision, exactly as the dream steps it; and the
   largest change of any predicted mixture mean over those steps, in units of its predicted sigma;
2. (CartPole's M, which has a done head) how long dreams last: `--dreams` distinct dreams (seeds) for
   the shipped controller and for "always push left", same seeds at both precisions (mean +- standard
   error);
3. (CartPole) C trained with CMA-ES entirely in the dream at each precision (same seed, same data,
   the pipeline's CMA-ES settings), then played for real: dream score, real score over
   `--real-episodes` episodes, dream steps per second while training.

A bfloat16 dream is random in a different way from a float32 one (the same seed does not give the
same episode: a rounding changes which mixture component a draw lands in), so part 3 compares
distributions of outcomes, not single episodes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wmlib.agent import controller_rollout_for, evaluate_controller, load_controller
from wmlib.config import CMAESConfig, DreamConfig, PipelineConfig
from wmlib.controller import controller_config_for
from wmlib.dream import start_latents
from wmlib.dream_training import dream_rollouts, train_controller_in_dream
from wmlib.envs import make_env
from wmlib.evaluators import make_evaluator
from wmlib.latents import encode_episodes
from wmlib.mdnrnn import load_mdnrnn, mdn_log_prob
from wmlib.precision import PRECISIONS, dream_model
from wmlib.rollouts import POLICIES, play_episode
from wmlib.vae import load_vae

SETUPS = {"cartpole": ("cartpole-pixels", "random"), "carracing": ("carracing", "smooth")}


def fresh_latents(name: str, episodes: int, seed: int, max_steps: int | None) -> list[dict]:
    """Real episodes of the policy M's data came from (seeds far from training), encoded by V."""
    env_name, policy = SETUPS[name]
    env = make_env(env_name)
    env.action_space.seed(seed)
    act = POLICIES[policy](env)
    played = [play_episode(env, act, seed=seed + i, max_steps=max_steps) for i in range(episodes)]
    env.close()
    return encode_episodes(load_vae(name), played, load_mdnrnn(name).config.action_dim)


@torch.no_grad()
def stepwise_scores(m, latents: list[dict], seed: int) -> dict[str, np.ndarray]:
    """Per precision: (transitions,) NLL of each real next latent, and the (transitions, Z, K) mixture means
    and log sigmas, M stepping one step at a time with its memory in that precision."""
    g = torch.Generator().manual_seed(seed)
    zs = [torch.as_tensor(e["mu"]) + torch.exp(0.5 * torch.as_tensor(e["logvar"])) * torch.randn(
        e["mu"].shape, generator=g) for e in latents]
    out = {}
    for precision, dtype in PRECISIONS.items():
        model = dream_model(m, precision)
        nll, mus, sigmas = [], [], []
        for z, e in zip(zs, latents, strict=True):
            a = torch.as_tensor(e["actions"], dtype=torch.float32)
            state = model.initial_state(1)
            state = type(state)(state.h.to(dtype), state.c.to(dtype))
            for t in range(len(a)):
                o = model.step(z[t : t + 1].to(dtype), a[t : t + 1].to(dtype), state)
                state = o.state
                nll.append(-float(mdn_log_prob(o.log_pi, o.mu, o.log_sigma, z[t + 1 : t + 2]).mean()))
                mus.append(o.mu[0])
                sigmas.append(o.log_sigma[0].exp())
        out[precision] = {"nll": np.asarray(nll), "mu": torch.stack(mus).numpy(), "sigma": torch.stack(sigmas).numpy()}
    return out


def part1(names: list[str], episodes: int, car_steps: int, seed: int) -> None:
    print("1. M's next-latent NLL on fresh real episodes, stepped as the dream steps it (lower is better)")
    print("| M | transitions | NLL float32 | NLL bfloat16 | difference | largest shift of a mixture mean |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        n = episodes if name == "cartpole" else max(1, episodes // 10)
        latents = fresh_latents(name, n, seed, car_steps if name == "carracing" else None)
        s = stepwise_scores(load_mdnrnn(name), latents, seed)
        f, b = s["float32"], s["bfloat16"]
        shift = np.abs(f["mu"] - b["mu"]) / f["sigma"]  # in units of the predicted sigma
        print(f"| {name} | {len(f['nll']):,} | {f['nll'].mean():.4f} | {b['nll'].mean():.4f} | "
              f"{b['nll'].mean() - f['nll'].mean():+.4f} | {shift.max():.3f} sigma (mean {shift.mean():.4f}) |",
              flush=True)


def part2(dreams: int, seed: int) -> None:
    print(f"\n2. How long CartPole dreams last (M's done head ends them), {dreams:,} dreams per cell, same seeds")
    m = load_mdnrnn("cartpole")
    shipped = load_controller("cartpole")
    config = shipped.config
    policies = {"shipped C (trained for real)": shipped.get_flat_params(),
                "always push left": np.zeros(shipped.num_params)}
    latents = fresh_latents("cartpole", 100, seed + 10_000, None)
    starts = start_latents(latents)
    seeds = list(range(seed, seed + dreams))  # one controller, `dreams` different dreams
    print("| policy | float32 dream steps | bfloat16 dream steps |")
    print("| --- | ---: | ---: |")
    for label, params in policies.items():
        cells = []
        for precision in PRECISIONS:
            r = dream_rollouts(m, starts, config, params[None], seeds, DreamConfig(max_steps=500, precision=precision))
            steps = r.steps.ravel()
            cells.append(f"{steps.mean():.1f} +- {steps.std() / np.sqrt(len(steps)):.1f}")
        print(f"| {label} | {cells[0]} | {cells[1]} |", flush=True)


def part3(generations: int, real_episodes: int, seed: int, seeds: int, workers: int) -> None:
    print("\n3. C trained only in the CartPole dream at each precision, then played for real")
    p = PipelineConfig()
    m = load_mdnrnn("cartpole")
    latents = fresh_latents("cartpole", p.random_episodes, seed + 20_000, None)
    c_config = controller_config_for("cartpole-pixels", m.config.z_dim, m.config.hidden_size)
    rollout = controller_rollout_for("cartpole-pixels", "cartpole", "cartpole")
    cma = CMAESConfig(population_size=p.cmaes.population_size, rollouts_per_candidate=p.cmaes.rollouts_per_candidate,
                      sigma0=p.cmaes.sigma0, generations=generations)
    print(f"   CMA-ES {p.cmaes.population_size} x {p.cmaes.rollouts_per_candidate} dreams, {generations} generations, "
          f"CMA-ES seeds "
          f"{seed}..{seed + seeds - 1}; {len(latents)} fresh random episodes for the starts and C's input statistics")
    print("| precision | CMA-ES seed | dream steps | dream steps/s | training s | dream score (picked C) "
          "| real score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    real_means: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    with make_evaluator(rollout, workers) as real:
        for s in range(seed, seed + seeds):
            for precision in PRECISIONS:
                t0 = time.perf_counter()
                trained = train_controller_in_dream(
                    m, latents, c_config, cma,
                    DreamConfig(temperature=p.dream.temperature, done_threshold=p.dream.done_threshold,
                                max_steps=p.dream.max_steps, precision=precision),
                    seed=s, select_episodes=p.select_episodes, progress=False)
                seconds = time.perf_counter() - t0
                result = evaluate_controller(real, trained.controller.get_flat_params(), real_episodes,
                                             progress=False)
                real_means[precision].append(result.mean)
                print(f"| {precision} | {s} | {trained.dream_steps:,} | {trained.dream_steps / seconds:,.0f} | "
                      f"{seconds:.0f} | {trained.selection[trained.picked]:.1f} | "
                      f"{result.mean:.1f} +- {result.std:.1f} |", flush=True)
    for precision, means in real_means.items():
        per_seed = ", ".join(f"{x:.0f}" for x in means)
        print(f"   {precision}: real score over seeds {np.mean(means):.1f} (per seed {per_seed})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=100, help="fresh CartPole episodes for part 1 (car: a tenth)")
    ap.add_argument("--car-steps", type=int, default=300, help="steps of each fresh CarRacing episode")
    ap.add_argument("--dreams", type=int, default=4096, help="dreams per cell in part 2")
    ap.add_argument("--generations", type=int, default=PipelineConfig().cmaes.generations, help="CMA-ES in part 3")
    ap.add_argument("--real-episodes", type=int, default=100, help="real episodes scoring each C in part 3")
    ap.add_argument("--seeds", type=int, default=3, help="CMA-ES seeds per precision in part 3")
    ap.add_argument("--workers", type=int, default=2, help="processes playing the real episodes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    ap.add_argument("--only", choices=("1", "2", "3"), nargs="+", default=["1", "2", "3"])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed = 5_000_000 + args.seed  # far from any random seed the shipped V and M were trained with
    if "1" in args.only:
        part1(["cartpole", "carracing"], args.episodes, args.car_steps, seed)
    if "2" in args.only:
        part2(args.dreams, seed)
    if "3" in args.only:
        part3(args.generations, args.real_episodes, seed, args.seeds, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
