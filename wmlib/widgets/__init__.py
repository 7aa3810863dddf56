"""Interactive views of the agent's parts, built with ipywidgets.

Every widget is built once and then updated by value: a slider's `observe` callback computes new
pixels, encodes them as PNG bytes and assigns them to an `ipywidgets.Image`. Nothing is redrawn
from scratch, so an update costs one forward pass of a small network plus a PNG encode.
64x64 frames are enlarged with nearest-neighbour so that the pixels stay sharp.

Every widget can also be driven from Python (set a value, read the image bytes), which is how
the unit tests check them.

One module per view, all importable from here (`from wmlib.widgets import DreamPlayer`):

    frames.py    shared helpers: frame_to_png, upscale, a fast decoder for one latent
    rollout.py   rollout viewer (ch. 1)      RolloutViewer
    latent.py    latent explorer (ch. 2)     LatentExplorer, traversal_grid
    memory.py    imagination strip (ch. 3)   ImaginationStrip
    dream.py     dream player (ch. 5)        DreamPlayer

Introduced in: course/02_compression.ipynb
"""

from wmlib.widgets.dream import DreamPlayer
from wmlib.widgets.frames import PNG_SIGNATURE, frame_to_png, upscale
from wmlib.widgets.latent import LatentExplorer, traversal_grid
from wmlib.widgets.memory import ImaginationStrip
from wmlib.widgets.rollout import RolloutViewer

__all__ = ["PNG_SIGNATURE", "DreamPlayer", "ImaginationStrip", "LatentExplorer", "RolloutViewer", "frame_to_png",
           "traversal_grid", "upscale"]
