"""How good is each shipped M? Next-latent NLL, the done head, and imagination error by horizon.

    python benchmarks/mdnrnn_quality.py                          # both shipped models
    python benchmarks/mdnrnn_quality.py --which cartpole --episodes 100
    python benchmarks/mdnrnn_quality.py --which carracing --car-episodes 4 --car-steps 300

For each shipped M (assets/<name>_mdnrnn with its V, assets/<name>_vae) it plays fresh held-out
episodes with the policy the training data came from (uniform random for CartPole, the smooth
random driver for CarRacing; seeds far from the training seeds), encodes them with V and prints:

- the next-latent NLL (nats per latent dimension and step), teacher-forced: M reads the real
  latents and predicts the next one; lower is better (it can be negative: densities exceed 1);
- for a done head: its binary cross-entropy against always guessing the base rate, and the
  recall and precision of "p > 0.5";
- imagination error at horizons 1, 5, 10 and 20: M starts from a real step, reads the real
  actions but only its own sampled latents (temperature 1); the mean squared error per pixel
  (pixels in [0, 1]) between V's drawing of the imagined latent and V's reconstruction of the
  real frame, against the baseline "nothing moves" (repeat the start frame); and the latent
  error on the dimensions V uses (mean log variance below -1; in the others z is noise).

Long horizons can only start early in long episodes, so their averages come from fewer starts;
the count is printed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from wmlib.diagnostics import evaluate_mdnrnn, imagination_error
from wmlib.envs import make_env
from wmlib.latents import encode_episodes
from wmlib.mdnrnn import load_mdnrnn
from wmlib.rollouts import POLICIES, play_episode
from wmlib.vae import load_vae

HORIZONS = (1, 5, 10, 20)
SETUPS = {"cartpole": ("cartpole-pixels", "random"), "carracing": ("carracing", "smooth")}


def held_out(env_name: str, policy: str, n: int, seed: int, max_steps: int | None) -> list[dict]:
    env = make_env(env_name)
    env.action_space.seed(seed)
    act = POLICIES[policy](env)
    episodes = [play_episode(env, act, seed=seed + i, max_steps=max_steps) for i in range(n)]
    env.close()
    return episodes


def measure(name: str, n: int, seed: int, max_steps: int | None, stride: int, samples: int) -> dict:
    env_name, policy = SETUPS[name]
    vae, m = load_vae(name), load_mdnrnn(name)
    t0 = time.perf_counter()
    episodes = held_out(env_name, policy, n, seed, max_steps)
    latents = encode_episodes(vae, episodes, m.config.action_dim)
    scores = evaluate_mdnrnn(m, latents, seed=seed)
    used = np.flatnonzero(np.concatenate([e["logvar"] for e in latents]).mean(0) < -1.0)  # dims V uses
    err = imagination_error(m, latents, max(HORIZONS), decode=vae.decode, frame_horizons=HORIZONS,
                            latent_dims=used, temperature=1.0, samples=samples, stride=stride, seed=seed)
    row = {"model": name, "episodes": n, "dims_used": len(used), "steps": int(sum(len(e["actions"]) for e in episodes)),
           "nll": scores["nll"], "seconds": round(time.perf_counter() - t0, 1)}
    for key in ("done_bce", "done_base_bce", "done_recall", "done_precision"):
        if key in scores:
            row[key] = scores[key]
    for h in HORIZONS:
        row[f"frame_mse@{h}"] = float(err["frame_mse"][h - 1])
        row[f"copy_frame_mse@{h}"] = float(err["copy_frame_mse"][h - 1])
        row[f"latent_mse@{h}"] = float(err["latent_mse"][h - 1])
        row[f"starts@{h}"] = int(err["count"][h - 1])
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--which", nargs="+", choices=tuple(SETUPS), default=list(SETUPS))
    p.add_argument("--episodes", type=int, default=100, help="held-out CartPole episodes")
    p.add_argument("--car-episodes", type=int, default=4, help="held-out CarRacing episodes")
    p.add_argument("--car-steps", type=int, default=400, help="steps per CarRacing episode")
    p.add_argument("--seed", type=int, default=100_000, help="first held-out seed (training used 0, 1, ...)")
    p.add_argument("--samples", type=int, default=2, help="imagined futures per start")
    p.add_argument("--json", action="store_true", help="print one JSON object per model instead of a table")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    rows = []
    for name in args.which:
        if name == "cartpole":
            rows.append(measure(name, args.episodes, args.seed, None, stride=1, samples=args.samples))
        else:
            rows.append(measure(name, args.car_episodes, args.seed, args.car_steps, stride=10,
                                samples=args.samples))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for row in rows:
        print(f"\n{row['model']}: {row['episodes']} held-out episodes, {row['steps']} steps "
              f"({row['seconds']} s)")
        print(f"  next-latent NLL (teacher forcing): {row['nll']:.3f} nats per latent dim and step")
        if "done_bce" in row:
            print(f"  done head: BCE {row['done_bce']:.3f} vs base rate {row['done_base_bce']:.3f} nats; "
                  f"recall {row['done_recall']:.2f}, precision {row['done_precision']:.2f} (p > 0.5)")
        print(f"  horizon | frame MSE (M imagines) | frame MSE (nothing moves) | latent MSE on the "
              f"{row['dims_used']} dims V uses | starts")
        for h in HORIZONS:
            print(f"  {h:7d} | {row[f'frame_mse@{h}']:22.5f} | {row[f'copy_frame_mse@{h}']:25.5f} | "
                  f"{row[f'latent_mse@{h}']:30.3f} | {row[f'starts@{h}']:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
