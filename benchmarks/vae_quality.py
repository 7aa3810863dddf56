"""Reconstruction quality of the shipped Vs on held-out rollouts.

    python benchmarks/vae_quality.py                       # every shipped V, held-out rollouts in data/
    python benchmarks/vae_quality.py --only cartpole --episodes 20
    python benchmarks/vae_quality.py --only doom --vae doom=data/doom/vae2   # a candidate V beside the shipped one

Held-out rollouts are read from data/<name>_vae_heldout/ when present (collected with random
seed 100000, which no training rollout uses; see assets/README.md); otherwise they are collected into a
temporary directory with that same command. For each V it prints one row: frames, the mean
per-frame sum of squared errors (pixels in [0, 1], the loss's own unit) of V's reconstructions
from mu, the same for two frame-blind baselines (all white, and the held-out average frame), the
per-pixel RMSE in 0..255 grey levels, the mean KL per frame, and how many latent dimensions carry
information (mean KL above 0.1 nats). For CartPole it adds the correlation between the pole tilt
measured from the pixels of the real frames and of the reconstructions (does V keep the angle?),
and the R^2 of a linear read-out from mu to the true pole angle and cart position (linear_probe_r2).
For Doom it adds the error over the last 30 frames of each episode ("SSE, last 30"): every held-out
episode ends in a death, so those are the frames in which the fireball that kills is on its way, the
detail a V must keep for M to see a death coming.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from wmlib.rollouts import collect, load_episode, rollout_files, smooth_random_policy
from wmlib.vae import decode_latents, encode_frames, load_vae

HELD_OUT = {
    # name: (env, policy, episodes, max steps, seed)
    "cartpole": ("cartpole-pixels", None, 50, None, 100_000),
    "carracing": ("carracing", smooth_random_policy, 5, 400, 100_000),
    "doom": ("doom-takecover", smooth_random_policy, 20, None, 100_000),
}
LAST = 30  # Doom: frames before each death scored on their own


def held_out_episodes(name: str, episodes: int | None, root: Path) -> list[np.ndarray]:
    """uint8 frames (T_i, 64, 64, 3), one array per held-out episode of `name` (collected if missing)."""
    env, policy, default_episodes, max_steps, seed = HELD_OUT[name]
    episodes = episodes or default_episodes
    directory = root / f"{name}_vae_heldout"
    if not directory.is_dir() or len(list(directory.glob("*.npz"))) < episodes:
        directory = Path(tempfile.mkdtemp(prefix=f"{name}_heldout_"))
        print(f"collecting {episodes} held-out {env} episodes (seed {seed}) into {directory}", file=sys.stderr)
        kwargs = {"policy": policy} if policy else {}
        collect(env, episodes, directory, seed=seed, max_steps=max_steps, **kwargs)
    return [load_episode(f)["frames"] for f in rollout_files(directory)[:episodes]]


def pole_tilt(frames: np.ndarray) -> np.ndarray:
    """CartPole: the slope of the brown pole pixels above the cart (columns per row, up), per frame."""
    f = frames[:, :52].astype(np.float32)
    w = np.clip(f[..., 0] - f[..., 2] - 40.0, 0.0, None)
    rows, cols = np.mgrid[0:52, 0:64].astype(np.float32)
    total = w.sum((1, 2)) + 1e-6
    dr = rows - ((w * rows).sum((1, 2)) / total)[:, None, None]
    dc = cols - ((w * cols).sum((1, 2)) / total)[:, None, None]
    return -(w * dr * dc).sum((1, 2)) / ((w * dr**2).sum((1, 2)) + 1e-6)


def linear_probe_r2(vae, n: int = 4000, seed: int = 0) -> dict:
    """CartPole: how well a linear map (ridge regression) reads the pole angle and cart position off mu.

    States are drawn (half near upright, as a balancing agent sees them, half anywhere up to the ends),
    drawn into frames by wmlib.envs.cartpole_frame, encoded; fit on 80%, R^2 on the other 20%.
    """
    from wmlib.envs import cartpole_frame

    rng = np.random.default_rng(seed)
    states = np.zeros((n, 4), np.float32)
    states[:, 0] = np.where(np.arange(n) < n // 2, rng.normal(0, 0.5, n), rng.uniform(-2.0, 2.0, n))
    states[:, 2] = np.where(np.arange(n) < n // 2, rng.normal(0, 0.03, n), rng.uniform(-0.2, 0.2, n))
    mu = np.concatenate([encode_frames(vae, cartpole_frame(states[i : i + 256]))[0].numpy()
                         for i in range(0, n, 256)]).astype(np.float64)
    train, test = np.arange(n) % 5 != 0, np.arange(n) % 5 == 0
    m = mu[train].mean(0)
    a = mu[train] - m
    out = {}
    for name, k in (("angle", 2), ("x", 0)):
        y = states[:, k].astype(np.float64)
        w = np.linalg.solve(a.T @ a + 1e-3 * np.eye(a.shape[1]), a.T @ (y[train] - y[train].mean()))
        pred = (mu[test] - m) @ w + y[train].mean()
        out[name] = float(1 - ((pred - y[test]) ** 2).mean() / y[test].var())
    return out


def sse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame sum of squared errors, pixels scaled to [0, 1]."""
    d = a.astype(np.float32) / 255.0 - b.astype(np.float32) / 255.0
    return (d**2).reshape(len(a), -1).sum(1)


def measure(name: str, episodes: list[np.ndarray], checkpoint: str | None = None) -> dict:
    """One table row for V `name` (or the checkpoint at path stem `checkpoint`, named after it)."""
    vae = load_vae(checkpoint or name)
    frames = np.concatenate(episodes)
    mu, logvar = encode_frames(vae, frames)
    recon = np.concatenate([decode_latents(vae, mu[i : i + 256]) for i in range(0, len(mu), 256)])
    errors = sse(recon, frames)
    mean_frame = np.broadcast_to(frames.mean(0).round().astype(np.uint8), frames.shape)
    kl_dims = (0.5 * (logvar.exp() + mu**2 - 1.0 - logvar)).numpy()  # (N, Z)
    row = {
        "V": checkpoint or name,
        "frames": len(frames),
        "SSE/frame": float(errors.mean()),
        "white SSE": float(sse(np.full_like(frames, 255), frames).mean()),
        "mean-frame SSE": float(sse(mean_frame, frames).mean()),
        "RMSE (0-255)": float(255 * np.sqrt(errors.mean() / frames[0].size)),
        "KL/frame": float(kl_dims.sum(1).mean()),
        "active dims": int((kl_dims.mean(0) > 0.1).sum()),
        "pole tilt r": float("nan"),
        "angle R2 (linear)": float("nan"),
        "x R2 (linear)": float("nan"),
        "SSE, last 30": float("nan"),
    }
    if name == "doom":
        ends = np.cumsum([len(e) for e in episodes])
        last = np.concatenate([np.arange(max(end - LAST, start), end)
                               for start, end in zip(np.r_[0, ends[:-1]], ends, strict=True)])
        row["SSE, last 30"] = float(errors[last].mean())
    if name == "cartpole":
        real, rec = pole_tilt(frames), pole_tilt(recon)
        row["pole tilt r"] = float(np.corrcoef(real, rec)[0, 1])
        probe = linear_probe_r2(vae)
        row["angle R2 (linear)"], row["x R2 (linear)"] = probe["angle"], probe["x"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=sorted(HELD_OUT), default=None)
    p.add_argument("--episodes", type=int, default=None, help="held-out episodes (default per V, see HELD_OUT)")
    p.add_argument("--data", default="data", help="where data/<name>_vae_heldout/ lives")
    p.add_argument("--vae", action="append", default=[], metavar="NAME=STEM",
                   help="also measure the checkpoint at path STEM on NAME's held-out frames (repeatable)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    extra: dict[str, list[str]] = {}
    for item in args.vae:
        name, sep, stem = item.partition("=")
        if not sep or name not in HELD_OUT or not stem:
            p.error(f"--vae expects NAME=STEM with NAME one of {sorted(HELD_OUT)}, got {item!r}")
        extra.setdefault(name, []).append(stem)
    rows = []
    for n in sorted(HELD_OUT):
        if args.only in (None, n):
            episodes = held_out_episodes(n, args.episodes, Path(args.data))
            rows += [measure(n, episodes, stem) for stem in [None, *extra.get(n, [])]]
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        three_digits = ("pole tilt r", "angle R2 (linear)", "x R2 (linear)")
        cells = ["" if isinstance(v, float) and np.isnan(v) else f"{v:.3f}" if k in three_digits
                 else f"{v:.1f}" if isinstance(v, float) else str(v) for k, v in r.items()]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
