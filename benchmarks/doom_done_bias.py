"""How long do simple policies live in Doom's dream, and in the real game? The dream's done bias, calibrated.

    python benchmarks/doom_done_bias.py                        # shipped doom M, data/doom/latents2
    python benchmarks/doom_done_bias.py --q 1 10 --dreams 64 --episodes 20

A C trained in the dream can only learn to dodge if the dream ends when the real game would. This
script plays three fixed policies (wmlib/survival.py: stay put; a uniformly random action every step;
"hold", the collection policy's smooth random play: an action held until redrawn, p = 0.1 per step) in M's
dream at `--temperature`, for each done bias log q (`DreamConfig.done_bias`: the odds of every end
multiplied by q, what training the done head with its ends weighted q times does), and the same
policies in real ViZDoom TakeCover (seeds 1,000,000 ...). It prints the steps alive, mean ± std, per
policy: a dream whose lengths match the game's at the q that also keeps the game's order of the
policies is the one to train C in.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from wmlib.agent import EVAL_SEED_START
from wmlib.config import DreamConfig
from wmlib.controller import DOOM_STAY
from wmlib.dream import start_latents
from wmlib.latents import load_latent_episodes
from wmlib.mdnrnn import load_mdnrnn
from wmlib.survival import SIMPLE_POLICIES, dream_lengths, real_lengths
from wmlib.tasks import world_spec

WORLD = "doom-takecover"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mdnrnn", default="doom", help="M: shipped name or checkpoint stem")
    p.add_argument("--latents", default="data/doom/latents2", help="encoded real episodes where dreams start")
    p.add_argument("--q", type=float, nargs="+", default=[1, 3, 10, 30, 100],
                   help="odds multipliers: the dream's done bias is log q")
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--dreams", type=int, default=256, help="dreams per policy and q")
    p.add_argument("--episodes", type=int, default=40, help="real episodes per policy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    m = load_mdnrnn(args.mdnrnn)
    files = sorted(Path(args.latents).glob("*.npz"))
    if not files:
        raise SystemExit(f"no encoded episodes in {args.latents}: run the encode command in assets/README.md")
    starts = start_latents(load_latent_episodes(files, m.config.action_dim))
    max_steps = world_spec(WORLD).dream_max_steps
    print(f"dreams start from the first frames of {len(files)} episodes in {args.latents}; temperature "
          f"{args.temperature}; {args.dreams} dreams per row, {args.episodes} real episodes per policy; "
          f"steps alive, mean ± std (cap {max_steps})", flush=True)
    t0 = time.perf_counter()
    real = {pol: real_lengths(WORLD, pol, args.episodes, seed=EVAL_SEED_START, stay=DOOM_STAY)
            for pol in SIMPLE_POLICIES}
    print(f"{'':>16} " + " ".join(f"{pol:>16}" for pol in SIMPLE_POLICIES) + "   seconds")
    print(f"{'real game':>16} " + " ".join(f"{real[pol].mean():7.1f} ± {real[pol].std():6.1f}"
                                          for pol in SIMPLE_POLICIES)
          + f"   {time.perf_counter() - t0:7.0f}", flush=True)
    for q in args.q:
        t0 = time.perf_counter()
        config = DreamConfig(temperature=args.temperature, max_steps=max_steps, done_bias=math.log(q))
        row = {pol: dream_lengths(m, starts, pol, config, args.dreams, args.seed, stay=DOOM_STAY)
               for pol in SIMPLE_POLICIES}
        print(f"{f'dream, q = {q:g}':>16} " + " ".join(f"{row[pol].mean():7.1f} ± {row[pol].std():6.1f}"
                                                     for pol in SIMPLE_POLICIES)
              + f"   {time.perf_counter() - t0:7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
