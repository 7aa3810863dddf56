"""How long one slider move of the latent explorer takes (the target: under 50 ms).

    python benchmarks/widget_latency.py              # both shipped Vs, 100 moves each
    python benchmarks/widget_latency.py --moves 300

A move is what happens when a learner drags a slider one notch: the observer decodes the new z,
encodes the frame as a PNG and assigns it to the Image widget. We time that from Python (no
browser; the browser only swaps an image), for the slider of the most visible dimension, and
print the median, 90th percentile and maximum over the moves. For comparison it also times
V's plain `decode` of one latent (the widget folds V's first two decoder layers into one matrix,
see wmlib.widgets.frames._FastDecoder) and the PNG encode alone. Falls back to an untrained V of the
paper's size when a shipped checkpoint is missing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wmlib.checkpoints import CheckpointError
from wmlib.config import VAEConfig
from wmlib.vae import ConvVAE, load_vae
from wmlib.widgets import LatentExplorer, frame_to_png


def timings(fn, n: int) -> np.ndarray:
    """Milliseconds per call of fn(i), n calls after two warm-up calls."""
    fn(0)
    fn(1)
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(1000 * (time.perf_counter() - start))
    return np.asarray(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--moves", type=int, default=100)
    args = p.parse_args(argv)
    frames = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    rows = []
    for name in ("cartpole", "carracing"):
        try:
            vae, label = load_vae(name), f"{name} (shipped)"
        except CheckpointError:
            torch.manual_seed(0)
            vae, label = ConvVAE(VAEConfig()).eval(), f"{name} (untrained stand-in)"
        explorer = LatentExplorer(vae, frames)
        slider = explorer.sliders[explorer.order[0]]
        values = np.sin(np.arange(args.moves + 2) * 0.37) * 2.5

        def move(i, slider=slider, values=values):
            slider.value = float(values[i])

        def plain_decode(i, vae=vae):
            with torch.no_grad():
                vae.decode(torch.zeros(1, vae.config.z_dim))

        rows.append((label, "slider move (decode + PNG)", timings(move, args.moves)))
        rows.append((label, f"plain vae.decode, 1 latent, {torch.get_num_threads()} threads",
                     timings(plain_decode, args.moves)))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        rows.append((label, "plain vae.decode, 1 latent, 1 thread", timings(plain_decode, args.moves)))
        torch.set_num_threads(threads)
    png = timings(lambda i: frame_to_png(frames[i % 4], 4), args.moves)
    rows.append(("-", "PNG encode 256x256 alone", png))
    print(f"torch threads: {torch.get_num_threads()}, moves: {args.moves}")
    print("| V | operation | median ms | p90 ms | max ms |")
    print("|---|---|---|---|---|")
    for label, op, t in rows:
        print(f"| {label} | {op} | {np.median(t):.1f} | {np.percentile(t, 90):.1f} | {t.max():.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
