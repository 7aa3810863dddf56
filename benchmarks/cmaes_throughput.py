"""Population-evaluation throughput: serial against a local process pool, in the real pixel env.

    python benchmarks/cmaes_throughput.py                       # the shipped cartpole V and M
    python benchmarks/cmaes_throughput.py --workers 2 4 --population 16 --rollouts 2

One CMA-ES generation = N candidates x R rollouts of V+M+C in pixel CartPole. This times one
such generation with the serial evaluator and with ProcessPoolEvaluator at each worker count,
and prints rollouts per second and env steps per second. The pool is warmed up first (worker
start-up, loading V and M, making the env happen once per run, not once per generation), and
that start-up is reported apart. Candidates are drawn around a trained controller when one is
shipped (long episodes), else around zero (short ones); --max-steps caps each episode.
Without shipped V and M (or with --untrained) it uses untrained stand-ins of the same sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wmlib.agent import ControllerRollout, controller_rollout_for
from wmlib.checkpoints import assets_dir, save_checkpoint
from wmlib.config import VAEConfig
from wmlib.controller import LinearController
from wmlib.evaluators import ProcessPoolEvaluator, SerialEvaluator


def untrained_parts(tmp: Path) -> tuple[str, str]:
    """Untrained V (z 32) and M (the cartpole preset) saved as checkpoints, for timing only."""
    from wmlib.mdnrnn import MDNRNN, preset_config
    from wmlib.vae import ConvVAE

    torch.manual_seed(0)
    save_checkpoint(ConvVAE(VAEConfig()), VAEConfig(), tmp / "vae")
    m = MDNRNN(preset_config("cartpole-pixels", 32))
    save_checkpoint(m, m.config, tmp / "mdnrnn")
    return str(tmp / "vae"), str(tmp / "mdnrnn")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--rollouts", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="*", default=None, help="pool sizes (default: every core)")
    p.add_argument("--untrained", action="store_true", help="time untrained stand-ins of V and M")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    shipped = all((assets_dir() / f"cartpole_{k}.json").is_file() for k in ("vae", "mdnrnn"))
    tmp = tempfile.TemporaryDirectory()
    if shipped and not args.untrained:
        vae, mdnrnn, what = "cartpole", "cartpole", "shipped V and M"
    else:
        vae, mdnrnn = untrained_parts(Path(tmp.name))
        what = "untrained stand-ins of V and M"
    fn: ControllerRollout = controller_rollout_for("cartpole-pixels", vae, mdnrnn, max_steps=args.max_steps)
    rng = np.random.default_rng(args.seed)
    centre = np.zeros(LinearController(fn.controller).num_params)
    if (assets_dir() / "cartpole_controller.json").is_file() and shipped and not args.untrained:
        from wmlib.agent import load_controller

        centre = load_controller("cartpole").get_flat_params()
    solutions = centre + 0.05 * np.abs(centre).mean() * rng.standard_normal((args.population, len(centre))) \
        if np.any(centre) else rng.standard_normal((args.population, len(centre)))
    seeds = list(range(args.rollouts))
    n = args.population * args.rollouts
    workers = args.workers or [os.cpu_count() or 1]
    print(f"one generation = {args.population} candidates x {args.rollouts} rollouts = {n} episodes of pixel "
          f"CartPole (max {args.max_steps} steps), {what}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")

    rows = []
    serial = SerialEvaluator(fn)
    serial(solutions[:1], seeds[:1])  # warm up: load V and M, make the env
    start = time.perf_counter()
    ev = serial(solutions, seeds)
    dt = time.perf_counter() - start
    rows.append(("serial", 0.0, dt, int(ev.steps.sum())))
    reference = ev.returns
    for w in workers:
        t0 = time.perf_counter()
        with ProcessPoolEvaluator(fn, workers=w) as pool:
            pool(np.repeat(solutions[:1], w, axis=0), seeds[:1])  # every worker loads V and M once
            startup = time.perf_counter() - t0
            start = time.perf_counter()
            ev = pool(solutions, seeds)
            dt = time.perf_counter() - start
        assert np.array_equal(ev.returns, reference), "the pool must reproduce the serial returns exactly"
        rows.append((f"pool x{w}", startup, dt, int(ev.steps.sum())))

    print(f"{'evaluator':12s} {'start-up s':>10s} {'generation s':>12s} {'rollouts/s':>10s} "
          f"{'env steps/s':>11s} {'speed-up':>8s}")
    for name, startup, dt, steps in rows:
        print(f"{name:12s} {startup:10.1f} {dt:12.2f} {n / dt:10.2f} {steps / dt:11.0f} "
              f"{rows[0][2] / dt:8.2f}")
    print(f"(every evaluator played the same {rows[0][3]} env steps and got identical returns)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
