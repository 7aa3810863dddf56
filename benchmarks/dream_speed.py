"""Why dreaming is cheap: dream steps per second against real steps per second, on this CPU.

    python benchmarks/dream_speed.py                  # shipped M where present, else untrained stand-ins
    python benchmarks/dream_speed.py --threads 2 --batch 1024 4096 --real-steps 500

Measures, in one run and with the same number of torch threads:

- the batched dream (wmlib.dream.dream_rollouts: a population of linear controllers, M's step,
  the mixture sample, the alive mask) for CartPole's M (H 64) and the car's M (H 256), at several
  batch sizes, dreams held alive to a fixed length so that every row steps;
- the same in bfloat16 (torch.autocast), as an experiment only: on a CPU the dream step is bound by
  the LSTM's matrix products, and bfloat16 halves their cost; the dreams that train C stay float32;
- one dream at a time through the Gymnasium DreamEnv (what the dream player does);
- the real environments: pixel CartPole and CarRacing with random actions (physics + render +
  the 64x64 preprocessing), and the same with the agent acting (V encodes each frame, M
  remembers, C acts), which is what one CMA-ES rollout step costs in reality.

It also prints a ceiling: the multiply-adds of one M step against the float32 multiply-add rate of the threads in use
(measured on a product of M's LSTM shape), i.e. the most dream steps per second any float32 implementation
of this M could reach here.

Dream speed does not depend on the weights, so untrained stand-ins of the shipped sizes give
the same numbers. Prints a table and the ratios (dream steps per real step).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wmlib.checkpoints import assets_dir
from wmlib.config import DreamConfig, VAEConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.dream import StartLatents, dream_rollouts, make_dream
from wmlib.envs import make_env
from wmlib.mdnrnn import MDNRNN, load_mdnrnn, preset_config


def model_for(env_name: str) -> tuple[MDNRNN, str]:
    name = "cartpole" if env_name == "cartpole-pixels" else "carracing"
    if (assets_dir() / f"{name}_mdnrnn.json").is_file():
        return load_mdnrnn(name), f"shipped {name} M"
    torch.manual_seed(0)
    return MDNRNN(preset_config(env_name, 32)).eval(), f"untrained {name}-sized M"


def vae_for(env_name: str):
    from wmlib.vae import ConvVAE, load_vae

    name = "cartpole" if env_name == "cartpole-pixels" else "carracing"
    if (assets_dir() / f"{name}_vae.json").is_file():
        return load_vae(name)
    torch.manual_seed(0)
    return ConvVAE(VAEConfig()).eval()


def batched_dream_speed(m: MDNRNN, env_name: str, batch: int, steps: int, rollouts: int = 16) -> float:
    """Dream steps per second of `batch` dreams (batch / rollouts candidates x rollouts), `steps` long."""
    Z, H = m.config.z_dim, m.config.hidden_size
    c = controller_config_for(env_name, Z, H)
    P = LinearController(c).num_params
    n = max(1, batch // rollouts)
    params = np.random.default_rng(0).normal(size=(n, P)) * 0.1
    g = torch.Generator().manual_seed(0)
    starts = StartLatents(torch.randn(16, Z, generator=g), torch.full((16, Z), -2.0))
    config = DreamConfig(max_steps=steps, done_threshold=1.0)  # p(done) > 1 never: every dream runs `steps`
    dream_rollouts(m, starts, c, params[:1], [0], DreamConfig(max_steps=5, done_threshold=1.0))  # warm up
    t0 = time.perf_counter()
    r = dream_rollouts(m, starts, c, params, list(range(rollouts)), config)
    return float(r.steps.sum()) / (time.perf_counter() - t0)


def matmul_ceiling(m: MDNRNN, batch: int = 1024, repeats: int = 30) -> tuple[int, float, float]:
    """The most dream steps per second M's matrix products allow on this CPU, with torch's current threads.

    Returns (multiply-adds per dream step, measured GMAC/s of a float32 product of M's shape, the
    steps-per-second ceiling = GMAC/s / multiply-adds). A dream step needs at least M's LSTM product
    ((Z + A + H) x 4H) and its output layer (H x (3 Z K + heads)); everything else only adds.
    """
    c = m.config
    heads = 3 * c.z_dim * c.num_mixtures + int(c.predict_reward) + int(c.predict_done)
    macs = (c.z_dim + c.action_dim + c.hidden_size) * 4 * c.hidden_size + c.hidden_size * heads
    x = torch.randn(batch, c.z_dim + c.action_dim + c.hidden_size)
    w = torch.randn(c.z_dim + c.action_dim + c.hidden_size, 4 * c.hidden_size)
    x @ w  # warm up
    t0 = time.perf_counter()
    for _ in range(repeats):
        x @ w
    gmacs = repeats * batch * w.numel() / (time.perf_counter() - t0) / 1e9
    return macs, gmacs, gmacs * 1e9 / macs


def dream_env_speed(m: MDNRNN, env_name: str, steps: int) -> float:
    Z = m.config.z_dim
    starts = StartLatents(torch.zeros(4, Z), torch.full((4, Z), -2.0))
    env = make_dream(env_name, m, starts, DreamConfig(max_steps=steps + 1, done_threshold=1.0))
    env.reset(seed=0)
    env.action_space.seed(0)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
    return steps / (time.perf_counter() - t0)


def real_speed(env_name: str, steps: int, agent: bool) -> float:
    """Real env steps per second with random actions, or with the V+M+C agent choosing them."""
    from wmlib.agent import WorldModelAgent

    env = make_env(env_name)
    env.action_space.seed(0)
    actor = None
    if agent:
        vae, (m, _) = vae_for(env_name), model_for(env_name)
        c = LinearController(controller_config_for(env_name, vae.config.z_dim, m.config.hidden_size))
        c.set_flat_params(np.random.default_rng(0).normal(size=c.num_params) * 0.1)
        actor = WorldModelAgent(vae, m, c, env.action_space)
    obs, _ = env.reset(seed=0)
    if env_name == "carracing":  # skip the zoom-in at the start of every CarRacing episode
        for _ in range(50):
            obs, *_ = env.step(env.action_space.sample())
    t0 = time.perf_counter()
    for _ in range(steps):
        action = actor.act(obs) if actor is not None else env.action_space.sample()
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            t_reset = time.perf_counter()
            obs, _ = env.reset()
            if actor is not None:
                actor.reset()
            t0 += time.perf_counter() - t_reset  # resets are not steps
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch threads for everything (default 1)")
    p.add_argument("--batch", type=int, nargs="+", default=[1024, 4096], help="dreams per batch")
    p.add_argument("--dream-steps", type=int, default=200, help="steps of each batched dream")
    p.add_argument("--real-steps", type=int, default=300, help="real env steps per measurement")
    p.add_argument("--no-bf16", action="store_true",
                   help="skip the extra bfloat16 rows (an experiment: the dreams that train C run in float32)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows, ceilings = [], {}
    print(f"torch threads: {args.threads}", flush=True)
    for env_name in ("cartpole-pixels", "carracing"):
        m, what = model_for(env_name)
        for batch in args.batch:
            rows.append((f"dream, {what} (H {m.config.hidden_size}), batch {batch}",
                         batched_dream_speed(m, env_name, batch, args.dream_steps)))
            print(f"{rows[-1][0]:60s} {rows[-1][1]:12,.0f} steps/s", flush=True)
        if not args.no_bf16:
            for batch in args.batch:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    rate = batched_dream_speed(m, env_name, batch, args.dream_steps)
                rows.append((f"(experiment) dream, {what} in bfloat16, batch {batch}", rate))
                print(f"{rows[-1][0]:60s} {rows[-1][1]:12,.0f} steps/s", flush=True)
        macs, gmacs, ceiling = matmul_ceiling(m)
        ceilings[env_name] = ceiling
        print(f"  M's step is {macs:,} multiply-adds; this CPU multiplies at {gmacs:.0f} GMAC/s (float32): "
              f"at most {ceiling:,.0f} dream steps/s with {torch.get_num_threads()} thread(s)", flush=True)
        rows.append((f"dream, {what}, one DreamEnv", dream_env_speed(m, env_name, 300)))
        print(f"{rows[-1][0]:60s} {rows[-1][1]:12,.0f} steps/s", flush=True)
        for agent in (False, True):
            label = f"real {env_name}, " + ("V+M+C agent acting" if agent else "env only, random actions")
            rows.append((label, real_speed(env_name, args.real_steps, agent)))
            print(f"{rows[-1][0]:60s} {rows[-1][1]:12,.1f} steps/s", flush=True)

    speed = dict(rows)
    print("\n| measured on this CPU | steps per second |")
    print("| --- | ---: |")
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} |")
    print("\nratios (dream steps per real step, the fastest float32 batch):")
    for env_name, name in (("cartpole-pixels", "cartpole"), ("carracing", "carracing")):
        dream = max(v for k, v in speed.items() if k.startswith("dream") and name in k and "batch" in k)
        env_only = speed[f"real {env_name}, env only, random actions"]
        acting = speed[f"real {env_name}, V+M+C agent acting"]
        print(f"  {env_name}: dream / real env = {dream / env_only:,.0f}x, "
              f"dream / real agent step = {dream / acting:,.0f}x")
        bf16 = [v for k, v in speed.items() if k.startswith("(experiment)") and name in k]
        if bf16:
            print(f"  {env_name}, bfloat16 experiment: dream / real env = {max(bf16) / env_only:,.0f}x, "
                  f"dream / real agent step = {max(bf16) / acting:,.0f}x")
        print(f"  {env_name}: float32 ceiling from M's matrix products alone: {ceilings[env_name] / env_only:,.0f}x "
              "the real env")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
