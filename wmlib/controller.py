"""C: the controller, a single linear layer from what the agent sees and remembers to an action.

    a_t = tanh(W [z_t; h_t] + b)        W: (A, Z+H)   b: (A,)

That is all of C. With the paper's car (Z=32, H=256, A=3) it has (32 + 256) * 3 + 3 = 867
parameters, against tens of thousands for a DQN's Q network. The paper keeps C this small on
purpose: the hard work of seeing (V) and remembering (M) is done by big models trained with
gradients on plentiful data, and the part trained on reward only, where each bit of signal costs
a whole episode, has so few parameters that an evolution strategy (CMA-ES, see cmaes.py) can
search them directly. A small C also has little room to learn the quirks of one track (or of a
flawed dream) by heart: it learns "keep right, watch the light", not the exam route.

How the tanh outputs become an action (`ControllerConfig.action_map`):

    "carracing"  steer = y0 in [-1, 1], gas = (y1 + 1) / 2 in [0, 1], brake = clip(y2, 0, 1),
                 as in the paper's code
    "discrete"   CartPole: with A = 1 the action is 1 (push right) when y0 > 0, else 0; with
                 A > 1 the action is argmax(y). We use A = 1 for CartPole: argmax over two tanh
                 outputs depends only on the difference of their pre-activations, so a second
                 output would double the parameters without adding a single new policy, and
                 CMA-ES gets slower as the dimension grows.
    "thirds"     Doom TakeCover: one output split in thirds, as in the paper's code (threshold 1/3):
                 y0 in [-1, -1/3) -> move left, [-1/3, 1/3] -> stay, (1/3, 1] -> move right,
                 as ViZDoom numbers them: 2 (left), 0 (stay), 1 (right)
    "identity"   y itself (for continuous envs whose actions live in [-1, 1])

Each world (wmlib.tasks) names its map. A map is one batched function in ACTION_MAPS, shared by the
real env (`map_action`, one step) and the dream (a whole population at once), so the two cannot differ.

The flat parameter vector that CMA-ES searches is W flattened row by row, then b.

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from wmlib.config import ControllerConfig
from wmlib.tasks import world_spec


@dataclass(frozen=True)
class ActionMap:
    """How C's tanh outputs become an env action, for a whole batch at once.

    batched: y (B, A_c) in [-1, 1] -> (B,) int64 choices when `one_hot`, else (B, A) float actions
    one_hot: the action is a choice among n (Discrete(n)), which M reads one-hot; else M reads the floats
    outputs: the C outputs the map needs (None: any number)
    """

    batched: Callable[[torch.Tensor], torch.Tensor]
    one_hot: bool
    outputs: int | None = None


def _discrete(y: torch.Tensor) -> torch.Tensor:
    return (y[:, 0] > 0).long() if y.shape[1] == 1 else y.argmax(dim=1)


DOOM_STAY, DOOM_RIGHT, DOOM_LEFT = 0, 1, 2
"""ViZDoom's TakeCover actions: its Discrete(3) lists the button combinations none, MOVE_RIGHT, MOVE_LEFT."""


def _thirds(y: torch.Tensor) -> torch.Tensor:
    y0 = y[:, 0]
    return torch.where(y0 < -1 / 3, DOOM_LEFT, torch.where(y0 > 1 / 3, DOOM_RIGHT, DOOM_STAY)).long()


def _steer_gas_brake(y: torch.Tensor) -> torch.Tensor:
    return torch.stack([y[:, 0], (y[:, 1] + 1) / 2, y[:, 2].clamp(0, 1)], dim=1)


ACTION_MAPS: dict[str, ActionMap] = {
    "carracing": ActionMap(_steer_gas_brake, one_hot=False, outputs=3),
    "discrete": ActionMap(_discrete, one_hot=True),
    "thirds": ActionMap(_thirds, one_hot=True, outputs=1),
    "identity": ActionMap(lambda y: y, one_hot=False),
}
"""The action maps by name (`ControllerConfig.action_map`; the module docstring says what each does)."""


def action_map_spec(name: str) -> ActionMap:
    """ACTION_MAPS[name], or a ValueError listing the known maps."""
    if name not in ACTION_MAPS:
        raise ValueError(f"unknown action_map {name!r}; expected one of {', '.join(ACTION_MAPS)}")
    return ACTION_MAPS[name]


def controller_param_count(z_dim: int, h_dim: int, action_dim: int) -> int:
    """P = (Z + H) * A weights + A biases (one bias per output, not per input).

    867 for the paper's car (32, 256, 3); 99 for its "V only" ablation (32, 0, 3).
    """
    return (int(z_dim) + int(h_dim)) * int(action_dim) + int(action_dim)


def controller_action(W: torch.Tensor, b: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """y = tanh(W [z; h] + b), batched: z comes first, then h.

    W: (A, Z+H)   b: (A,)   z: (B, Z)   h: (B, H)   ->   (B, A), every entry in [-1, 1]
    """
    x = torch.cat([z, h], dim=-1)  # (B, Z+H)
    return torch.tanh(x @ W.T + b)


def fold_standardization(theta, mean, std, action_dim: int) -> np.ndarray:
    """Turn C on standardised inputs into the same C on raw inputs.

        tanh(W~ (x - m) / s + b~) = tanh(W x + b)   with   W = W~ / s,   b = b~ - W~ (m / s)

    theta: (P,) flat [W~, b~] (W~ row by row)    mean, std: (Z+H,) m and s
    Returns the flat (P,) [W, b] of an ordinary LinearController. The policy is the same function;
    only the coordinates CMA-ES searches in differ (see `input_statistics` in agent.py for why).
    """
    theta = np.asarray(theta, dtype=np.float64)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    n_in = mean.shape[0]
    if theta.shape != ((n_in + 1) * action_dim,) or std.shape != (n_in,):
        raise ValueError(f"expected theta of {(n_in + 1) * action_dim} values and mean, std of {n_in}, "
                         f"got {theta.shape}, {mean.shape}, {std.shape}")
    W_t, b_t = theta[: n_in * action_dim].reshape(action_dim, n_in), theta[n_in * action_dim :]
    W = W_t / std
    return np.concatenate([W.reshape(-1), b_t - W @ mean])


def unfold_standardization(params, mean, std, action_dim: int) -> np.ndarray:
    """The inverse of `fold_standardization`: W~ = W s, b~ = b + W m."""
    params = np.asarray(params, dtype=np.float64)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    n_in = mean.shape[0]
    W, b = params[: n_in * action_dim].reshape(action_dim, n_in), params[n_in * action_dim :]
    return np.concatenate([(W * std).reshape(-1), b + W @ mean])


def map_action(y: np.ndarray, action_map: str):
    """Turn one tanh output y (A,) into what the environment's `step` takes (see module docstring).

    An int for a map that chooses (Discrete), a float32 array otherwise.
    """
    spec = action_map_spec(action_map)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if spec.outputs is not None and y.shape[0] != spec.outputs:
        raise ValueError(f"the {action_map} action map needs {spec.outputs} outputs, got {len(y)}")
    action = spec.batched(torch.from_numpy(y)[None])[0]
    return int(action) if spec.one_hot else action.numpy().astype(np.float32)


def controller_config_for(env_name: str, z_dim: int, h_dim: int) -> ControllerConfig:
    """The controller for one of the course's worlds (wmlib.tasks): 1 output for CartPole, 3 for the car.

    h_dim = 0 gives the paper's "V only" ablation (C sees z alone).
    """
    world = world_spec(env_name, wanted="controller layout")
    return ControllerConfig(z_dim=z_dim, h_dim=h_dim, action_dim=world.controller_outputs,
                            action_map=world.action_map)


def _as_row(x) -> torch.Tensor:
    """A NumPy array, list or tensor of shape (D,) as a float tensor (1, D)."""
    return (x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x, dtype=np.float32))).reshape(1, -1)


class LinearController(nn.Module):
    """C: y = tanh(W [z; h] + b), and the env action made from y.

    Its weights start at zero (a neutral policy); CMA-ES sets them with `set_flat_params`.
    """

    def __init__(self, config: ControllerConfig | None = None):
        super().__init__()
        config = ControllerConfig() if config is None else config
        if config.z_dim < 0 or config.h_dim < 0 or config.z_dim + config.h_dim < 1:
            raise ValueError(f"the controller needs z_dim + h_dim >= 1 (both >= 0), got {config}")
        if config.action_dim < 1:
            raise ValueError(f"action_dim must be at least 1, got {config.action_dim}")
        outputs = action_map_spec(config.action_map).outputs
        if outputs is not None and config.action_dim != outputs:
            raise ValueError(f"the {config.action_map} action map needs action_dim={outputs}, got {config.action_dim}")
        self.config = config
        self.weight = nn.Parameter(torch.zeros(config.action_dim, config.z_dim + config.h_dim))  # W (A, Z+H)
        self.bias = nn.Parameter(torch.zeros(config.action_dim))  # b (A,)

    @property
    def num_params(self) -> int:
        """P, the length of the vector CMA-ES searches (867 at the paper's car config)."""
        return controller_param_count(self.config.z_dim, self.config.h_dim, self.config.action_dim)

    def get_flat_params(self) -> np.ndarray:
        """(P,) float64: W row by row, then b."""
        return torch.cat([self.weight.detach().reshape(-1), self.bias.detach()]).double().cpu().numpy()

    def set_flat_params(self, params) -> None:
        """Load a (P,) vector (W row by row, then b); a clear ValueError for a wrong length or NaN."""
        flat = np.asarray(params, dtype=np.float64)
        c = self.config
        if flat.ndim != 1 or flat.shape[0] != self.num_params:
            raise ValueError(
                f"expected a flat vector of {self.num_params} controller parameters "
                f"(({c.z_dim} + {c.h_dim}) * {c.action_dim} weights + {c.action_dim} biases), "
                f"got shape {flat.shape}")
        if not np.all(np.isfinite(flat)):
            raise ValueError("controller parameters contain NaN or inf")
        n_w = self.weight.numel()
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(flat[:n_w]).reshape(self.weight.shape))
            self.bias.copy_(torch.from_numpy(flat[n_w:]))

    def forward(self, z: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, Z), h (B, H) -> y (B, A) in [-1, 1]. h may be None when H = 0 ("V only")."""
        if h is None:
            h = z.new_zeros(z.shape[0], 0)
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.z_dim:
            raise ValueError(f"expected z of shape (B, {c.z_dim}), got {tuple(z.shape)}")
        if h.dim() != 2 or h.shape[1] != c.h_dim or h.shape[0] != z.shape[0]:
            raise ValueError(f"expected h of shape ({z.shape[0]}, {c.h_dim}), got {tuple(h.shape)}")
        return controller_action(self.weight, self.bias, z.to(self.weight.dtype), h.to(self.weight.dtype))

    @torch.no_grad()
    def act(self, z, h=None):
        """One step: z (Z,), h (H,) (NumPy or torch; h None when H = 0) -> the env action.

        An int for "discrete", a float32 array (A,) otherwise (see the module docstring).
        """
        z = _as_row(z)
        h = None if h is None else _as_row(h)
        y = self.forward(z, h)[0].cpu().numpy()
        return map_action(y, self.config.action_map)
