"""How long do simple policies live in Doom's dream, and in the real game? The dream's done bias, calibrated.

    python benchmarks/doom_done_bias.py                        # shipped doom M, data/doom/latents
    python benchmarks/doom_done_bias.py --q 1 10 --dreams 64 --episodes 20

A C trained in the dream can only learn to dodge if the dream ends when the real game would. This
script plays three fixed policies (stay put; a uniformly random action every step; the collection
policy's smooth random play, a random action held until it is redrawn with probability 0.1) in M's
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

import numpy as np
import torch

from wmlib.agent import EVAL_SEED_START
from wmlib.config import DreamConfig
from wmlib.controller import DOOM_STAY
from wmlib.dream import BatchedDream, start_latents
from wmlib.latents import load_latent_episodes
from wmlib.mdnrnn import load_mdnrnn
from wmlib.rollouts import play_episodes
from wmlib.tasks import world_spec

WORLD = "doom-takecover"
POLICIES = ("stay", "random", "smooth")
CHANGE_PROB = 0.1
"""The smooth policy redraws its action with this probability per step (the collection policy's)."""


def _next_actions(policy: str, prev: np.ndarray, rng: np.random.Generator, n_actions: int) -> np.ndarray:
    """(B,) action indices for the next step, given the previous ones."""
    if policy == "stay":
        return np.full_like(prev, DOOM_STAY)
    fresh = rng.integers(n_actions, size=prev.shape)
    if policy == "random":
        return fresh
    return np.where(rng.random(prev.shape) < CHANGE_PROB, fresh, prev)


def dream_lengths(m, starts, policy: str, config: DreamConfig, dreams: int, seed: int) -> np.ndarray:
    """Steps alive of `dreams` dreams under `policy` (capped at config.max_steps). Returns (dreams,)."""
    rng = np.random.default_rng(seed)
    A = m.config.action_dim
    world = BatchedDream(m, starts, config)
    world.reset([seed * 100_003 + i for i in range(dreams)])
    alive = np.arange(dreams)  # which dreams the batch still holds
    lengths = np.zeros(dreams, int)
    actions = rng.integers(A, size=dreams)
    while len(alive):
        actions = _next_actions(policy, actions, rng, A)
        step = world.step(torch.nn.functional.one_hot(torch.as_tensor(actions), A).float())
        lengths[alive] += 1
        keep = ~(step.terminated | step.truncated).cpu().numpy()
        if not keep.all():
            alive, actions = alive[keep], actions[keep]
            if len(alive):
                world.keep(torch.as_tensor(np.flatnonzero(keep)))
    return lengths


def real_lengths(policy: str, episodes: int) -> np.ndarray:
    """Steps alive in real TakeCover, episodes seeded EVAL_SEED_START + i. Returns (episodes,)."""
    def factory(env):
        rng = np.random.default_rng(EVAL_SEED_START)
        state = {"a": int(rng.integers(env.action_space.n))}

        def act(observation, info):
            state["a"] = int(_next_actions(policy, np.array([state["a"]]), rng, env.action_space.n)[0])
            return state["a"]
        return act
    return np.array([len(ep["actions"]) for ep in play_episodes(WORLD, episodes, policy=factory,
                                                                 seed=EVAL_SEED_START)], float)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mdnrnn", default="doom", help="M: shipped name or checkpoint stem")
    p.add_argument("--latents", default="data/doom/latents", help="encoded real episodes where dreams start")
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
    real = {pol: real_lengths(pol, args.episodes) for pol in POLICIES}
    print(f"{'':>16} " + " ".join(f"{pol:>16}" for pol in POLICIES) + "   seconds")
    print(f"{'real game':>16} " + " ".join(f"{real[pol].mean():7.1f} ± {real[pol].std():6.1f}" for pol in POLICIES)
          + f"   {time.perf_counter() - t0:7.0f}", flush=True)
    for q in args.q:
        t0 = time.perf_counter()
        config = DreamConfig(temperature=args.temperature, max_steps=max_steps, done_bias=math.log(q))
        row = {pol: dream_lengths(m, starts, pol, config, args.dreams, args.seed) for pol in POLICIES}
        print(f"{f'dream, q = {q:g}':>16} " + " ".join(f"{row[pol].mean():7.1f} ± {row[pol].std():6.1f}"
                                                     for pol in POLICIES)
              + f"   {time.perf_counter() - t0:7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
