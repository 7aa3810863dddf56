"""Rollout viewer (chapter 1): step through a recorded episode.

Introduced in: course/01_problem.ipynb
"""

from __future__ import annotations

import numpy as np

from wmlib.widgets.frames import frame_to_png


class RolloutViewer:
    """Step through an episode: the frame at step t, the action taken, the reward, and (optionally)
    the hidden state numbers behind the picture.

    episode:      a dict in the rollout-file layout: frames (T+1, H, W, 3) uint8, actions (T, ...),
                  rewards (T,)
    states:       optional (T+1, D) array shown as numbers under the frame (e.g. CartPole's state)
    action_names: optional names for discrete actions

    Drive it from Python: `viewer.show(t)`; `viewer.image.value` holds the PNG bytes of frame t.

    Introduced in: course/01_problem.ipynb
    """

    STATE_NAMES = ("cart x", "cart velocity", "pole angle (rad)", "pole angular velocity")

    def __init__(self, episode: dict, *, states=None, action_names=None, scale: int = 4):
        import ipywidgets as widgets

        frames = np.asarray(episode.get("frames"))
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"episode['frames'] must be (T+1, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        self.frames, self.scale = frames, scale
        self.actions = np.asarray(episode.get("actions", np.zeros(len(frames) - 1)))
        self.rewards = np.asarray(episode.get("rewards", np.zeros(len(frames) - 1)), dtype=np.float32)
        self.states = None if states is None else np.asarray(states)
        if self.states is not None and len(self.states) != len(frames):
            raise ValueError(f"states has {len(self.states)} rows, expected one per frame ({len(frames)})")
        self.action_names = action_names
        size = frames.shape[1] * scale
        self.image = widgets.Image(format="png", width=size, height=size)
        self.text = widgets.HTML()
        self.slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description="step t")
        self.play = widgets.Play(value=0, min=0, max=len(frames) - 1, interval=120, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider]), self.image, self.text])
        self.show(0)

    def show(self, t: int) -> None:
        """Display frame t and what happened at step t."""
        t = int(np.clip(t, 0, len(self.frames) - 1))
        self.image.value = frame_to_png(self.frames[t], self.scale)
        lines = [f"<b>step {t}</b> of {len(self.frames) - 1}"]
        if t < len(self.actions):
            a = self.actions[t]
            name = self.action_names[int(a)] if self.action_names is not None and np.ndim(a) == 0 else str(a)
            lines.append(f"action taken: {name}, reward: {self.rewards[t]:g}")
        else:
            lines.append("the episode is over")
        if self.states is not None:
            names = self.STATE_NAMES if self.states.shape[1] == 4 else [f"s[{i}]" for i in range(self.states.shape[1])]
            lines.append(", ".join(f"{n} = {v:+.3f}" for n, v in zip(names, self.states[t], strict=True)))
        self.text.value = "<br>".join(lines)
        if self.slider.value != t:
            self.slider.value = t

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
