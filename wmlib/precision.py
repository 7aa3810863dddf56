"""The dream's arithmetic: M in float32, or a bfloat16 copy, behind one switch (DreamConfig.precision).

bfloat16 keeps float32's range with 8 bits of mantissa. Where the hardware multiplies it natively
M's matrix products run faster; where it does not, PyTorch emulates it and the dream runs slower.
A CPU flag does not settle which: on an Intel Xeon that advertises AVX512-BF16, the bfloat16 dream
was measured slower than float32. So "auto" times one short product of M's own shape, once per
process, and follows the measurement. The default stays "float32": a dream's numbers should not
depend on the machine, or on how busy it was during one timing.

    model = dream_model(mdnrnn, config.precision)   # M itself, or an eval-mode bfloat16 copy

The sampler downstream always works in float32 (`MDNRNN.heads` casts its outputs up).

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import copy
import time

import torch

from wmlib.mdnrnn import MDNRNN

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""DreamConfig.precision -> the dtype M's weights and memory take in the dream ("auto" picks one)."""

BENCH_BATCH = 256
"""Rows of the timed product: a dream batch of a few hundred, as CMA-ES's population x rollouts gives."""

_FAST: dict[tuple, bool] = {}
"""bfloat16_is_fast's answers in this process, by (device, product shape)."""


def _seconds_per_product(dtype: torch.dtype, shape: tuple[int, int, int], device: torch.device,
                         repeats: int = 5) -> float:
    """Best time of one (B, I) x (I, O) product in `dtype` on `device`, after a warm-up call."""
    b, i, o = shape
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, i, generator=g).to(device, dtype)
    w = torch.randn(i, o, generator=g).to(device, dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first round warms up (allocations, kernel selection)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        x @ w
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def bfloat16_is_fast(device: torch.device | str = "cpu", input_size: int = 35 + 256,
                     output_size: int = 4 * 256) -> bool:
    """Whether a bfloat16 product of M's shape beats float32 on `device`, measured once and cached.

    The product is the LSTM's: [x_t; h_t] (B, input_size) times the gate weights (input_size,
    output_size = 4H). The defaults are the paper's car M (Z + A = 35, H = 256). A few milliseconds
    at the first call for a device and shape; later calls return the cached answer.
    """
    device = torch.device(device)
    if device.type == "cuda" and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        return False
    shape = (BENCH_BATCH, int(input_size), int(output_size))
    key = (str(device), shape)
    if key not in _FAST:
        float32 = _seconds_per_product(torch.float32, shape, device)
        bfloat16 = _seconds_per_product(torch.bfloat16, shape, device)
        _FAST[key] = bfloat16 < float32
    return _FAST[key]


def resolve_precision(mdnrnn: MDNRNN, precision: str) -> str:
    """"float32" or "bfloat16" as given; "auto": bfloat16 if it measured faster for this M on its device."""
    if precision == "auto":
        c = mdnrnn.config
        device = next(mdnrnn.parameters()).device
        fast = bfloat16_is_fast(device, c.z_dim + c.action_dim + c.hidden_size, 4 * c.hidden_size)
        return "bfloat16" if fast else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)} or 'auto'")
    return precision


def dream_model(mdnrnn: MDNRNN, precision: str = "float32") -> MDNRNN:
    """M as the dream runs it: M itself for "float32", an eval-mode copy in bfloat16 for "bfloat16",
    and whichever of the two measured faster for "auto". The original M is left untouched (training
    goes on in float32). What bfloat16 does to the dream: benchmarks/dream_precision.py."""
    dtype = PRECISIONS[resolve_precision(mdnrnn, precision)]
    if dtype == next(mdnrnn.parameters()).dtype:
        return mdnrnn.eval()
    return copy.deepcopy(mdnrnn).to(dtype).eval()
