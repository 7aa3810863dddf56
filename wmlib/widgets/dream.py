"""Dream player (chapters 5 and 6): drive the dream yourself, or let the controller drive.

One player for every world that dreams (wmlib.tasks): its buttons come from the world's spec, never
from its name (see `dream_buttons`): left / right for CartPole, left / stay / right for Doom
TakeCover, steer / brake for the car. Any world's controller can drive (the car's: three outputs,
steer, gas and brake; its action is shown as those three numbers).

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from wmlib.controller import map_action
from wmlib.tasks import WORLDS, WorldSpec, world_spec
from wmlib.widgets.frames import _FastDecoder, _tile_row, frame_to_png

DIRECTIONS = (("◀ left", -1.0), ("stay", 0.0), ("right ▶", 1.0))
"""A one-output controller's extremes and middle (tanh output y), and the button each becomes."""

_CAR_BUTTONS = {"◀ steer left": (-1.0, 0.3, 0.0), "straight": (0.0, 0.3, 0.0), "steer right ▶": (1.0, 0.3, 0.0),
                "brake": (0.0, 0.0, 0.8)}
"""Steer, gas, brake: the buttons of a world whose actions are the car's Box([-1, 0, 0], [1, 1, 1])."""


def world_of(space: gym.Space) -> WorldSpec | None:
    """The one world of wmlib.tasks that dreams (has an M) with this action space; None if none or several."""
    found = [w for w in WORLDS.values() if w.m_preset is not None and w.action_space == space]
    return found[0] if len(found) == 1 else None


def dream_buttons(space: gym.Space, world: WorldSpec | None = None) -> dict:
    """Button name -> action of `space`, asked of the world's spec.

    A world whose controller has one output (its tanh y picks the action through the world's action map,
    wmlib.controller.ACTION_MAPS) gets a button for y = -1 ("◀ left"), y = 0 ("stay") and y = +1
    ("right ▶"), each kept only when it is an action none of the earlier ones is: CartPole's "discrete"
    map gives left / right, Doom's thirds give left / stay / right. A Box of steer, gas and brake gets
    steer left / straight / steer right / brake; any other space one button per choice ("action i"),
    or a single "zero" action.
    """
    if world is not None and world.controller_outputs == 1 and world.action_space == space:
        buttons: dict = {}
        for name, y in DIRECTIONS:
            action = map_action(np.array([y], np.float32), world.action_map)
            if not any(np.array_equal(action, seen) for seen in buttons.values()):
                buttons[name] = action
        return buttons
    if isinstance(space, gym.spaces.Discrete):
        return {f"action {i}": i for i in range(space.n)}
    car = gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    if space == car:
        return {name: np.array(a, np.float32) for name, a in _CAR_BUTTONS.items()}
    return {"zero": np.zeros(space.shape, space.dtype)}


class DreamPlayer:
    """Play a dream: the frame V draws from M's latent, a step counter, and the controls.

        player = DreamPlayer(env, controller=c)     # env: a wmlib.dream.DreamEnv made with vae=V

    Controls: one button per action (`dream_buttons`: left / right for CartPole; left / stay /
    right for Doom; steer left, straight, steer right, brake for the car) takes one step with that
    action, so a human drives the dream; "step" takes one step with the controller's action
    (controller on) or your last one; play/pause steps on a timer; "controller" switches C on or
    off; the temperature slider makes M's dream calmer or wilder from the next step on; "reset"
    starts a new dream from another real first frame. A red border marks a dream that has ended (M's done head).

    world: the name of the world in wmlib.tasks (default: the one world that dreams with the env's
    action space); actions: button name -> action, to replace the world's buttons.

    Driven from Python: `reset(seed=None)`, `step(action=None)`, `press(name)`,
    `set(temperature=, controller_on=)`; then read `frame` ((64, 64, 3) uint8), `t`,
    `total_reward`, `done`, `last_action`, and `image.value` (PNG bytes).

    Introduced in: course/05_dream.ipynb (CartPole, the car); course/06_doom.ipynb (Doom TakeCover);
    course/07_car.ipynb (the car's dream with its trained controller switched on)
    """

    def __init__(self, env, controller=None, *, world: str | None = None, actions: dict | None = None,
                 scale: int = 4, seed: int = 0, interval_ms: int = 100):
        import ipywidgets as W

        if getattr(env, "vae", None) is None:
            raise ValueError("the dream player draws the dream with V: make the DreamEnv with vae=")
        if controller is not None and controller.config.z_dim != env.vae.config.z_dim:
            raise ValueError(f"the controller reads z of size {controller.config.z_dim}, "
                             f"the dream's z has size {env.vae.config.z_dim}")
        self.env, self.controller, self.scale = env, controller, int(scale)
        self.world = world_of(env.action_space) if world is None else world_spec(world, wanted="dream player")
        if self.world is not None and self.world.action_space != env.action_space:
            raise ValueError(f"the world {self.world.name!r} acts in {self.world.action_space}, "
                             f"the dream in {env.action_space}")
        if controller is not None and self.world is not None and controller.config.action_map != self.world.action_map:
            raise ValueError(f"the controller maps its outputs with {controller.config.action_map!r}, the world "
                             f"{self.world.name!r} with {self.world.action_map!r}")
        # A world whose dream pays by M's reward head (the car), dreamed by an M without one, pays +1 a step: a
        # count of dream steps, not a score, and the caption says so.
        self.scored = not (self.world is not None and self.world.dream_reward == "model"
                           and getattr(env, "reward_mode", "model") != "model")
        self.actions = dict(actions) if actions is not None else dream_buttons(env.action_space, self.world)
        if not self.actions:
            raise ValueError("the dream player needs at least one action button")
        for action in self.actions.values():
            env.action_vector(action)  # a clear error now for an action outside the space
        self._decode = _FastDecoder(env.vae)
        self.last_action = next(iter(self.actions.values()))
        self.frame = None
        self.t, self.total_reward, self.done, self.done_prob = 0, 0.0, False, None

        # An explicit size: without it JupyterLab stretches the image to the full width of the output.
        self.image = W.Image(format="png", width=64 * self.scale, height=64 * self.scale)
        self.caption = W.HTML()
        self.buttons = {name: W.Button(description=name) for name in self.actions}
        for name, button in self.buttons.items():
            button.on_click(lambda _, name=name: self.press(name))
        self.step_button = W.Button(description="step", icon="step-forward")
        self.step_button.on_click(lambda _: self.step())
        self.reset_button = W.Button(description="reset", icon="refresh")
        self.reset_button.on_click(lambda _: self.reset())
        self.controller_toggle = W.ToggleButton(value=controller is not None, description="controller",
                                                disabled=controller is None, icon="android")
        self.controller_toggle.observe(lambda _: self._draw(), names="value")
        self.temperature_slider = W.FloatSlider(env.temperature, min=0.05, max=2.0, step=0.05,
                                                description="temperature", readout_format=".2f",
                                                style={"description_width": "initial"})  # the whole word
        self.temperature_slider.observe(self._on_temperature, names="value")
        self.play = W.Play(value=0, min=0, max=10**9, interval=interval_ms, description="play", show_repeat=False)
        self.play.observe(self._on_tick, names="value")
        self.widget = W.VBox([
            W.HBox([self.play, self.step_button, self.reset_button, self.controller_toggle]),
            W.HBox(list(self.buttons.values())),
            self.temperature_slider, self.image, self.caption,
        ])
        self.reset(seed=seed)

    # --- driving it from Python -----------------------------------------------------------------

    @property
    def controller_on(self) -> bool:
        return bool(self.controller is not None and self.controller_toggle.value)

    def reset(self, seed: int | None = None) -> DreamPlayer:
        """A new dream (from the env's random stream; `seed` restarts that stream)."""
        self.env.reset(seed=seed)
        self.t, self.total_reward, self.done, self.done_prob = 0, 0.0, False, None
        self._draw()
        return self

    def controller_action(self):
        """What C would do now, from the dream's [z, h]."""
        h = self.env.h if self.controller.config.h_dim > 0 else None
        return self.controller.act(self.env.z, h)

    def step(self, action=None) -> bool:
        """One dream step with `action`, or C's action (controller on), or the last action.

        Returns False (and does nothing) once the dream has ended: press reset.
        """
        if self.done:
            return False
        if action is None:
            action = self.controller_action() if self.controller_on else self.last_action
        _, reward, terminated, truncated, info = self.env.step(action)
        self.last_action = action
        self.t += 1
        self.total_reward += reward
        self.done = bool(terminated or truncated)
        self.done_prob = info.get("done_prob")
        self._draw()
        return True

    def press(self, name: str) -> bool:
        """A human's move: one step with the action of button `name`."""
        if name not in self.actions:
            raise ValueError(f"no button {name!r}; the buttons are {', '.join(map(repr, self.actions))}")
        return self.step(self.actions[name])

    def action_name(self, action) -> str:
        """The button that takes `action` (its name), or the action itself when no button does."""
        for name, a in self.actions.items():
            if np.array_equal(np.asarray(a), np.asarray(action)):
                return name
        values = np.asarray(action, dtype=np.float64).reshape(-1)  # C's own action, e.g. the car's (steer, gas, brake)
        return "(" + ", ".join(f"{v:+.2f}" for v in values) + ")"

    def set(self, *, temperature: float | None = None, controller_on: bool | None = None) -> DreamPlayer:
        """Move the temperature slider or flip the controller switch, as a learner would."""
        if temperature is not None:
            if not temperature > 0:
                raise ValueError(f"temperature must be positive, got {temperature}")
            self.temperature_slider.value = float(temperature)
        if controller_on is not None:
            if controller_on and self.controller is None:
                raise ValueError("this player has no controller: pass controller= to DreamPlayer")
            self.controller_toggle.value = bool(controller_on)
        return self

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # --- internals --------------------------------------------------------------------------------

    def _on_temperature(self, change) -> None:
        self.env.temperature = change["new"]
        self._draw()

    def _on_tick(self, change) -> None:
        if not self.step():
            self.play.playing = False

    def _draw(self) -> None:
        x_hat = self._decode(self.env.z[None].float())  # (1, 3, 64, 64)
        frame = x_hat[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        self.frame = frame
        shown = _tile_row([frame], ["end" if self.done else None])
        self.image.value = frame_to_png(shown, self.scale)
        driver = "the controller" if self.controller_on else "you (the buttons)"
        did = "" if self.t == 0 else f" &nbsp; last action <b>{self.action_name(self.last_action)}</b>"
        p_end = "" if self.done_prob is None else f" &nbsp; M's P(end) {self.done_prob:.2f}"
        status = "<b style='color:#cf222e'>the dream has ended: press reset</b><br>" if self.done else ""
        paid = f"return {self.total_reward:g}" if self.scored else "no dream reward (this M has no reward head)"
        self.caption.value = (f"{status}dream step <b>{self.t}</b> &nbsp; {paid}{p_end}{did}"
                              f" &nbsp; driven by {driver} &nbsp; temperature {self.env.temperature:.2f}")
