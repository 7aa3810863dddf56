"""Why dreaming is cheap: dream steps per second against real steps per second, on this CPU.

    python benchmarks/dream_speed.py                  # shipped M where present, else untrained stand-ins
    python benchmarks/dream_speed.py --threads 2 --batch 1024 4096 --real-steps 500

Measures, in one run and with the same number of torch threads:

- the batched dream (wmlib.dream.dream_rollouts: a population of linear controllers, M's step,
  the mixture sample, the alive mask) for CartPole's M (H 64) and the car's M (H 256), at several
  batch sizes, dreams held alive to a fixed length so that every row steps;
- the same with DreamConfig(precision="bfloat16"): on a CPU the dream step is bound by the LSTM's
  matrix products, and with AVX512-BF16 they run at ~2.4x the float32 rate (M's weights and memory
  in bfloat16, the mixture sampled in float32; benchmarks/dream_precision.py measures that the
  dream stays the same: M's likelihood of real data, dream lengths, the real score of C);
- the whole CPU: a CMA-ES generation through DreamEvaluator(workers=<cores>), one process of one
  thread per core, each dreaming `--batch`'s first size (start-up not counted);
- one dream at a time through the Gymnasium DreamEnv (what the dream player does);
- the real environments: pixel CartPole and CarRacing with random actions (physics + render +
  the 64x64 preprocessing), and the same with the agent acting (V encodes each frame, M
  remembers, C acts), which is what one CMA-ES rollout step costs in reality.

It also prints an estimated ceiling: the multiply-adds of one M step against the multiply-add rate of
one thread (measured on one product of M's LSTM shape, in float32 and in bfloat16), i.e. about the
most dream steps per second an implementation of this M could reach on one core at that precision
(other kernels and shapes run at somewhat different rates, so it is an estimate, not a proof).

A real env cannot use a second core (it is one Python process), but a second process can run a
second env; so the ratios are given per core (one thread each) and for the whole CPU (the dream on
every core against one real env, as the real env is usually run).

Dream speed does not depend on the weights, so untrained stand-ins of the shipped sizes give
the same numbers. Prints a table and the ratios (dream steps per real step).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from wmlib.checkpoints import assets_dir
from wmlib.config import DreamConfig, VAEConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.dream import StartLatents, make_dream
from wmlib.dream_training import DreamEvaluator, dream_rollouts
from wmlib.envs import make_env
from wmlib.mdnrnn import MDNRNN, load_mdnrnn, preset_config
from wmlib.precision import PRECISIONS, bfloat16_is_fast


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


def population(m: MDNRNN, env_name: str, batch: int, rollouts: int = 16):
    """What one CMA-ES generation dreams: (controller config, params (batch / rollouts, P), starts)."""
    Z, H = m.config.z_dim, m.config.hidden_size
    c = controller_config_for(env_name, Z, H)
    params = np.random.default_rng(0).normal(size=(max(1, batch // rollouts), LinearController(c).num_params)) * 0.1
    g = torch.Generator().manual_seed(0)
    return c, params, StartLatents(torch.randn(16, Z, generator=g), torch.full((16, Z), -2.0))


def batched_dream_speed(m: MDNRNN, env_name: str, batch: int, steps: int, precision: str = "float32",
                        rollouts: int = 16) -> float:
    """Dream steps per second of `batch` dreams (batch / rollouts candidates x rollouts), `steps` long."""
    c, params, starts = population(m, env_name, batch, rollouts)
    # done_threshold=1: p(done) > 1 never, so every dream runs `steps` steps
    config = DreamConfig(max_steps=steps, done_threshold=1.0, precision=precision)
    dream_rollouts(m, starts, c, params[:1], [0], DreamConfig(max_steps=5, done_threshold=1.0,
                                                              precision=precision))  # warm up
    t0 = time.perf_counter()
    r = dream_rollouts(m, starts, c, params, list(range(rollouts)), config)
    return float(r.steps.sum()) / (time.perf_counter() - t0)


def all_cores_dream_speed(m: MDNRNN, env_name: str, batch: int, steps: int, precision: str, workers: int,
                          rollouts: int = 16) -> float:
    """Dream steps per second of one CMA-ES generation spread over `workers` processes, `batch` dreams each."""
    c, params, starts = population(m, env_name, batch * workers, rollouts)
    config = DreamConfig(max_steps=steps, done_threshold=1.0, precision=precision)
    with DreamEvaluator(m, starts, c, config, max_batch=batch, workers=workers) as evaluator:
        evaluator(params[: 2 * workers], [0])  # start the workers (not counted)
        t0 = time.perf_counter()
        ev = evaluator(params, list(range(rollouts)))
        return float(ev.steps.sum()) / (time.perf_counter() - t0)


def matmul_ceiling(m: MDNRNN, dtype: torch.dtype = torch.float32, batch: int = 1024, repeats: int = 30
                   ) -> tuple[int, float, float]:
    """About the most dream steps per second M's matrix products allow on this CPU, with torch's current threads.

    Returns (multiply-adds per dream step, measured GMAC/s of a product of M's shape in `dtype`, the
    steps-per-second ceiling = GMAC/s / multiply-adds). A dream step needs at least M's LSTM product
    ((Z + A + H) x 4H) and its output layer (H x (3 Z K + heads)); everything else only adds.
    """
    c = m.config
    heads = 3 * c.z_dim * c.num_mixtures + int(c.predict_reward) + int(c.predict_done)
    macs = (c.z_dim + c.action_dim + c.hidden_size) * 4 * c.hidden_size + c.hidden_size * heads
    x = torch.randn(batch, c.z_dim + c.action_dim + c.hidden_size, dtype=dtype)
    w = torch.randn(c.z_dim + c.action_dim + c.hidden_size, 4 * c.hidden_size, dtype=dtype)
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
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process (default 1)")
    p.add_argument("--batch", type=int, nargs="+", default=[1024, 4096], help="dreams per batch")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes for the whole-CPU rows (default: every core; 1 skips them)")
    p.add_argument("--dream-steps", type=int, default=200, help="steps of each batched dream")
    p.add_argument("--real-steps", type=int, default=300, help="real env steps per measurement")
    p.add_argument("--precision", nargs="+", choices=tuple(PRECISIONS), default=list(PRECISIONS),
                   help="the dream's precisions to measure")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows, dream, real, ceilings = [], {}, {}, {}

    def row(label: str, rate: float) -> float:
        rows.append((label, rate))
        print(f"{label:66s} {rate:12,.0f} steps/s", flush=True)
        return rate

    print(f"torch threads: {args.threads}; whole-CPU rows: {args.workers} processes of 1 thread; "
          f"native bfloat16 products: {bfloat16_is_fast()}", flush=True)
    for env_name in ("cartpole-pixels", "carracing"):
        m, what = model_for(env_name)
        for precision in args.precision:
            dream[env_name, precision, "thread"] = max(
                row(f"dream, {what} (H {m.config.hidden_size}), {precision}, batch {batch}",
                    batched_dream_speed(m, env_name, batch, args.dream_steps, precision)) for batch in args.batch)
            if args.workers > 1:
                dream[env_name, precision, "cpu"] = row(
                    f"dream, {what}, {precision}, {args.workers} processes x batch {args.batch[0]}",
                    all_cores_dream_speed(m, env_name, args.batch[0], args.dream_steps, precision, args.workers))
        with torch.no_grad():
            for precision in args.precision:
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                macs, gmacs, ceilings[env_name, precision] = matmul_ceiling(m, PRECISIONS[precision])
                torch.set_num_threads(threads)
                print(f"  M's step is {macs:,} multiply-adds; one core multiplies at {gmacs:.0f} GMAC/s in "
                      f"{precision}: an estimated ceiling of ~{ceilings[env_name, precision]:,.0f} dream steps/s "
                      "per core", flush=True)
        row(f"dream, {what}, one DreamEnv (float32)", dream_env_speed(m, env_name, 300))
        for agent in (False, True):
            label = f"real {env_name}, " + ("V+M+C agent acting" if agent else "env only, random actions")
            real[env_name, agent] = row(label, real_speed(env_name, args.real_steps, agent))

    print("\n| measured on this CPU | steps per second |")
    print("| --- | ---: |")
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} |")
    per = "per core" if args.threads == 1 else f"{args.threads} threads"
    print(f"\nratios: dream steps per real step (the fastest batch; 'per core': {per} against one real env;\n"
          f"'whole CPU': {args.workers} dreaming processes against one real env)")
    print("| env | dream precision | dream / real env, " + per + " | dream / real env, whole CPU | "
          "dream / real agent step, " + per + " | dream / real agent step, whole CPU | "
          "estimated ceiling per core / real env |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for env_name in ("cartpole-pixels", "carracing"):
        env_only, acting = real[env_name, False], real[env_name, True]
        for precision in args.precision:
            one, cpu = dream[env_name, precision, "thread"], dream.get((env_name, precision, "cpu"))
            cells = [f"{one / env_only:,.0f}x", "-" if cpu is None else f"{cpu / env_only:,.0f}x",
                     f"{one / acting:,.0f}x", "-" if cpu is None else f"{cpu / acting:,.0f}x",
                     f"{ceilings[env_name, precision] / env_only:,.0f}x"]
            print(f"| {env_name} | {precision} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
