"""Chapter 8: CMA-ES against gradients through the dream, on the shipped CartPole V and M, in one run.

    python benchmarks/beyond_compare.py                      # the table of course/08_beyond.ipynb
    python benchmarks/beyond_compare.py --real-episodes 10   # quicker real scores

For every controller size (0: chapter 4's linear C, n: an MLP with n hidden units) and both trainers, from the
same starts (30 random real episodes' first frames, encoded by the shipped V) and the same start parameters:
train in M's dream for the same budget of --budget dream steps (the update or generation that crosses it
finishes), recording when the controller's mean return on 64 fixed evaluation dreams first reaches --target
(CMA-ES: population 32 x 8 dreams, sigma0 0.5, chapter 5's settings, its mean scored every generation;
gradients: wmlib.beyond.ImaginationConfig, scored every --grad-eval-every updates), then play --real-episodes
real pixel-CartPole episodes with the shipped V and M and the final C. Dream steps and wall time count
training only (evaluations are not counted). The second table is what one step of each trainer costs as the
controller grows: a gradient update (256 dreams x 15 steps, forward and backward), a CMA-ES generation
(32 x 8 dreams played to their end, plus CMA-ES's own ask/tell), and the covariance CMA-ES keeps (P x P).
Timings are wall-clock on this machine with one torch thread; a busy machine makes them slower, not different
in kind.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wmlib.agent import EVAL_SEED_START, WorldModelAgent
from wmlib.agent import play_episode as play_agent
from wmlib.beyond import Actor, Critic, ImaginationConfig, train_actor_with_cmaes, train_in_imagination
from wmlib.beyond.imagination import actor_critic_update, fresh_dreams
from wmlib.beyond.search import actor_dream_returns
from wmlib.cmaes import CMAES
from wmlib.config import CMAESConfig, DreamConfig
from wmlib.controller import controller_config_for
from wmlib.dream import start_latents
from wmlib.dream_training import dream_input_statistics
from wmlib.envs import make_env
from wmlib.latents import encode_episodes
from wmlib.mdnrnn import load_mdnrnn
from wmlib.rollouts import play_episode
from wmlib.vae import load_vae


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grad-widths", type=int, nargs="+", default=[0, 8, 32, 512])
    p.add_argument("--cma-widths", type=int, nargs="+", default=[0, 8, 32])
    p.add_argument("--real-widths", type=int, nargs="*", default=[0, 32], help="sizes scored in reality")
    p.add_argument("--real-episodes", type=int, default=100)
    p.add_argument("--target", type=float, default=475.0)
    p.add_argument("--budget", type=int, default=500_000, help="dream steps each trainer may spend")
    p.add_argument("--cma-generations", type=int, default=200, help="at most (the budget usually ends it first)")
    p.add_argument("--grad-updates", type=int, default=2_000, help="at most (the budget usually ends it first)")
    p.add_argument("--grad-eval-every", type=int, default=5)
    p.add_argument("--cost-repeats", type=int, default=3)
    return p.parse_args()


def label(width: int) -> str:
    return "linear C" if width == 0 else f"MLP, {width} hidden"


def real_score(vae, m, actor, episodes: int) -> tuple[float, float, int]:
    env = make_env("cartpole-pixels")
    agent = WorldModelAgent(vae, m, actor, env.action_space)
    runs = [play_agent(env, agent, seed=EVAL_SEED_START + i) for i in range(episodes)]
    env.close()
    returns = np.array([r.ret for r in runs])
    return float(returns.mean()), float(returns.std()), int(sum(r.steps for r in runs))


def cost_table(m, starts, make_actor, mean, std, widths_grad, widths_cma, repeats: int) -> None:
    print("\n| controller | parameters P | one gradient update (256 dreams x 15 steps) | one CMA-ES generation "
          "(32 x 8 dreams) | of which CMA-ES ask/tell | CMA-ES covariance (P x P floats) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    config = ImaginationConfig()
    for width in sorted(set(widths_grad) | set(widths_cma)):
        actor = make_actor(width)
        critic = Critic(mean, std, config.critic_hidden)
        g = torch.Generator().manual_seed(0)
        opts = (torch.optim.Adam(actor.parameters(), 1e-9), torch.optim.Adam(critic.parameters(), 1e-9))
        for p in m.parameters():
            p.requires_grad_(False)
        z, state = fresh_dreams(starts, config.batch_size, m, g)
        actor_critic_update(m, actor, critic, opts, config, z, state, g)  # warm up
        t0 = time.perf_counter()
        for _ in range(repeats):
            actor_critic_update(m, actor, critic, opts, config, z, state, g)
        grad_s = (time.perf_counter() - t0) / repeats
        for p in m.parameters():
            p.requires_grad_(True)
        P = actor.num_params
        cov = f"{P * P * 8 / 1e6:,.1f} MB"
        if width in widths_cma:
            es = CMAES(actor.get_flat_params(), 0.5, 32, np.random.default_rng(0))
            gen_s, tell_s = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                sols = es.ask()
                t1 = time.perf_counter()
                ev = actor_dream_returns(m, starts, actor, sols, list(range(8)), DreamConfig(max_steps=500))
                t2 = time.perf_counter()
                es.tell(sols, ev.returns.mean(1))
                t3 = time.perf_counter()
                gen_s.append(t3 - t0)
                tell_s.append((t1 - t0) + (t3 - t2))
            cma = f"{np.mean(gen_s):.2f} s | {np.mean(tell_s):.3f} s"
        else:
            cma = "not run | not run"
        print(f"| {label(width)} | {P:,} | {grad_s:.3f} s | {cma} | {cov} |")


def main():
    args = parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    vae, m = load_vae("cartpole"), load_mdnrnn("cartpole")
    env = make_env("cartpole-pixels")
    env.action_space.seed(0)
    randoms = [play_episode(env, lambda obs, info: env.action_space.sample(), seed=i) for i in range(30)]
    env.close()
    episodes = encode_episodes(vae, randoms, m.config.action_dim)
    starts = start_latents(episodes)
    mean, std = dream_input_statistics(m, episodes)
    c_config = controller_config_for("cartpole-pixels", vae.config.z_dim, m.config.hidden_size)

    def make_actor(width: int) -> Actor:
        torch.manual_seed(args.seed)  # the same start parameters for both trainers
        return Actor(c_config, mean, std, width)

    print(f"shipped V and M; dreams start from {len(episodes)} random real episodes "
          f"({sum(len(e['actions']) for e in episodes):,} real steps); target: mean return >= {args.target:g} "
          f"on 64 fixed dreams of at most 500 steps; seed {args.seed}\n")
    print("| trainer | controller | parameters P | dream steps to target | wall to target | dream steps used | wall | "
          f"final dream score | real score ({args.real_episodes} episodes) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cma = CMAESConfig(population_size=32, rollouts_per_candidate=8, sigma0=0.5, generations=args.cma_generations)
    grad = ImaginationConfig(updates=args.grad_updates, eval_every=args.grad_eval_every, target_score=args.target)
    jobs = [("CMA-ES", w) for w in args.cma_widths] + [("gradients", w) for w in args.grad_widths]
    for method, width in jobs:
        actor = make_actor(width)
        if method == "CMA-ES":
            run = train_actor_with_cmaes(m, starts, actor, cma, seed=args.seed, target_score=args.target,
                                         stop_at_target=False, max_dream_steps=args.budget, progress=False)
        else:
            run = train_in_imagination(m, starts, actor, Critic(mean, std, grad.critic_hidden), grad,
                                       seed=args.seed, stop_at_target=False, max_dream_steps=args.budget,
                                       progress=False)
        row = run.reached
        to_target = f"{row['dream_steps']:,} | {row['wall_s']:.1f} s" if row else "not reached | -"
        real = "-"
        if width in args.real_widths and args.real_episodes > 0:
            mu, sd, _ = real_score(vae, m, run.actor, args.real_episodes)
            real = f"{mu:.1f} ± {sd:.1f}"
        print(f"| {method} | {label(width)} | {actor.num_params:,} | {to_target} | {run.dream_steps:,} | "
              f"{run.wall_s:.1f} s | {run.final_score:.1f} | {real} |", flush=True)
    cost_table(m, starts, make_actor, mean, std, args.grad_widths, args.cma_widths, args.cost_repeats)
    print(f"\nwhole run: {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
