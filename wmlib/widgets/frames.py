"""What every view shares: frames to PNG bytes, a fast decoder for one latent, tiles with an end mark."""

from __future__ import annotations

import io

import numpy as np
import torch

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The first eight bytes of every PNG file."""


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) uint8 -> (H * scale, W * scale, C), each pixel a scale x scale block."""
    return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)


def frame_to_png(frame: np.ndarray, scale: int = 4) -> bytes:
    """A uint8 frame (H, W, 3) as PNG bytes, enlarged `scale` times with nearest-neighbour."""
    from PIL import Image

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame of shape (H, W, 3), got {frame.shape} {frame.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(upscale(frame, scale) if scale > 1 else frame).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[1:] != (64, 64, 3) or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (N, 64, 64, 3) or one (64, 64, 3) frame, "
                         f"got {frames.shape} {frames.dtype}")
    if len(frames) == 0:
        raise ValueError("expected at least one frame")
    return frames


class _FastDecoder:
    """V's decoder for one latent at a time, with its first two layers folded into one matrix.

    The dense layer and the first deconvolution (which reads a 1x1 "image") are both affine and
    have no nonlinearity between them, so together they are one affine map z -> (128, 5, 5):
    a (Z, 3200) matrix. PyTorch's transposed convolution on a 1x1 input is slow on a CPU
    (about 15 ms per call); the folded matrix takes microseconds. Built from the weights at
    construction time; the output equals `vae.decode` up to float rounding.
    """

    def __init__(self, vae):
        fc, deconv = vae.fc_decode, vae.decoder[0]
        with torch.no_grad():
            w1 = deconv.weight.reshape(deconv.in_channels, -1)  # (1024, 128 * 5 * 5)
            self.weight = (fc.weight.T @ w1).contiguous()  # (Z, 3200)
            self.bias = fc.bias @ w1 + deconv.bias.repeat_interleave(w1.shape[1] // deconv.out_channels)
        self.shape = (deconv.out_channels, *deconv.kernel_size)
        self.rest = vae.decoder[1:]

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> x_hat (B, C, 64, 64)."""
        h = torch.addmm(self.bias, z, self.weight).view(-1, *self.shape)
        return self.rest(h)


END_RED = (220, 30, 30)
"""Border colour of an imagined frame where M's done head predicts the end of the episode."""


def _tile_row(frames, marks) -> np.ndarray:
    """Frames (64, 64, 3) side by side with a 2-pixel white gap; a red border where marked 'end'."""
    tiles = []
    for frame, mark in zip(frames, marks, strict=True):
        tile = np.array(frame, dtype=np.uint8, copy=True)
        if mark == "end":
            tile[:2], tile[-2:], tile[:, :2], tile[:, -2:] = END_RED, END_RED, END_RED, END_RED
        tiles.extend([tile, np.full((tile.shape[0], 2, 3), 255, np.uint8)])
    return np.concatenate(tiles[:-1], axis=1)
