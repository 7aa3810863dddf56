"""The rollout viewer driven from Python: moving the step changes the PNG and the text."""

import numpy as np
import pytest

from wmlib.widgets import RolloutViewer, frame_to_png


def _episode(T=5):
    frames = np.zeros((T + 1, 64, 64, 3), np.uint8)
    for t in range(T + 1):
        frames[t, :, t * 8 : t * 8 + 4] = 255
    return {"frames": frames, "actions": np.arange(T) % 2, "rewards": np.ones(T, np.float32)}


def test_frame_to_png():
    png = frame_to_png(np.zeros((64, 64, 3), np.uint8), scale=2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="H, W, 3"):
        frame_to_png(np.zeros((64, 64)))


def test_viewer_moves_through_the_episode():
    states = np.arange(24, dtype=np.float32).reshape(6, 4)
    viewer = RolloutViewer(_episode(), states=states, action_names=["left", "right"])
    first = viewer.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    viewer.slider.value = 3
    assert viewer.image.value != first
    assert "step 3" in viewer.text.value and "right" in viewer.text.value and "+12.000" in viewer.text.value
    viewer.show(99)  # clipped to the last frame
    assert viewer.slider.value == 5 and "over" in viewer.text.value


def test_viewer_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        RolloutViewer({"frames": np.zeros((3, 64, 64, 3), np.float32)})
    with pytest.raises(ValueError, match="one per frame"):
        RolloutViewer(_episode(), states=np.zeros((2, 4)))
