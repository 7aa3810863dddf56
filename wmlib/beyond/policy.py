"""The actor (chapter 4's linear C, or a small MLP) and the critic, for CartPole's one push left/right.

    x = ([z; h] - mean) / std                       C's input, standardised as CMA-ES searched it (chapter 5)
    logit = W x + b                                 the linear actor: chapter 4's C exactly
    logit = w2 . tanh(W1 x + b1) + b2               an MLP actor with `hidden` units
    pi(push right | z, h) = sigmoid(logit)          what gradient training needs: a probability
    act: push right iff logit > 0                   what is played: tanh(logit) > 0, chapter 4's discrete map

The same flat parameter vector serves both trainers: gradients update the module's parameters, CMA-ES
searches the flat vector (`get_flat_params` / `set_flat_params`), and `batched_logits` scores a whole
CMA-ES population (N, P) at once. `Actor` has the `config`, `eval()` and `act(z, h)` that
wmlib.agent.WorldModelAgent needs, so it plays real pixel CartPole with V and M like any C.

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wmlib.config import ControllerConfig
from wmlib.controller import LinearController, fold_standardization


def _as_input(z, h) -> torch.Tensor:
    z = torch.as_tensor(np.asarray(z, np.float32)) if not torch.is_tensor(z) else z
    h = torch.as_tensor(np.asarray(h, np.float32)) if not torch.is_tensor(h) else h
    return torch.cat([z.reshape(1, -1).float(), h.reshape(1, -1).float()], dim=1)


class Actor(nn.Module):
    """pi(push right | z, h) = sigmoid(f(x)), f linear (hidden = 0) or an MLP with `hidden` tanh units.

    controller: ControllerConfig of the world's C (z_dim, h_dim, one output, the "discrete" map)
    input_mean, input_std: (Z+H,) the standardisation of [z; h] (wmlib.dream_training.dream_input_statistics)
    A linear actor starts at zero (a coin flip, like chapter 4's C); an MLP's last layer starts at zero too,
    its hidden layer at PyTorch's default random weights (gradients need the hidden units to differ).
    """

    def __init__(self, controller: ControllerConfig, input_mean, input_std, hidden: int = 0):
        super().__init__()
        if controller.action_dim != 1 or controller.action_map != "discrete":
            raise ValueError(f"the actor pushes left or right: it needs one output and the 'discrete' map, "
                             f"got {controller.action_dim} and {controller.action_map!r}")
        if hidden < 0:
            raise ValueError(f"hidden must be 0 (linear) or a number of units, got {hidden}")
        D = controller.z_dim + controller.h_dim
        mean, std = (torch.as_tensor(np.asarray(x, np.float32)) for x in (input_mean, input_std))
        if mean.shape != (D,) or std.shape != (D,) or not bool((std > 0).all()):
            raise ValueError(f"expected input_mean and input_std of shape ({D},), std > 0, "
                             f"got {tuple(mean.shape)} and {tuple(std.shape)}")
        self.config, self.hidden = controller, int(hidden)
        self.register_buffer("input_mean", mean)
        self.register_buffer("input_std", std)
        sizes = [D, hidden, 1] if hidden else [D, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    @property
    def num_params(self) -> int:
        """P: (Z+H) + 1 for the linear actor (97 for CartPole), (Z+H+2) * hidden + 1 for an MLP."""
        return sum(p.numel() for p in self.parameters())

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """[z; h] (..., Z+H) -> (x - mean) / std."""
        return (x - self.input_mean) / self.input_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x = [z; h] (B, Z+H), not standardised -> logit (B,) of pushing right."""
        y = self.standardise(x)
        for i, layer in enumerate(self.layers):
            y = layer(y)
            if i < len(self.layers) - 1:
                y = torch.tanh(y)
        return y.squeeze(-1)

    @torch.no_grad()
    def act(self, z, h=None) -> int:
        """One real step (wmlib.agent.WorldModelAgent): z (Z,), h (H,) -> 1 (push right) iff logit > 0."""
        return int(self(_as_input(z, h if h is not None else torch.zeros(0)))[0] > 0)

    # --- the flat vector CMA-ES searches ------------------------------------------------------

    def get_flat_params(self) -> np.ndarray:
        """(P,) float64: every layer's weight (row by row), then its bias, layer after layer."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()]).double().numpy()

    def set_flat_params(self, params) -> None:
        """Load a (P,) vector laid out as `get_flat_params`."""
        flat = torch.as_tensor(np.asarray(params, np.float64), dtype=torch.float32)
        if flat.shape != (self.num_params,) or not bool(torch.isfinite(flat).all()):
            raise ValueError(f"expected {self.num_params} finite parameters, got shape {tuple(flat.shape)}")
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(flat, self.parameters())

    def batched_logits(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """N actors at once: params (N, P) flat vectors, x (N, M, Z+H) -> logits (N, M).

        Actor i reads its own M inputs; the same function as `forward` with `set_flat_params(params[i])`.
        """
        N = params.shape[0]
        y, offset = self.standardise(x), 0
        for i, layer in enumerate(self.layers):
            n_out, n_in = layer.weight.shape
            W = params[:, offset : offset + n_out * n_in].reshape(N, n_out, n_in)
            b = params[:, offset + n_out * n_in : offset + n_out * (n_in + 1)].reshape(N, 1, n_out)
            offset += n_out * (n_in + 1)
            y = torch.baddbmm(b, y, W.transpose(1, 2))
            if i < len(self.layers) - 1:
                y = torch.tanh(y)
        return y.squeeze(-1)

    def to_linear_controller(self) -> LinearController:
        """The linear actor as chapter 4's LinearController (standardisation folded into W and b).

        tanh(W x + b) > 0 exactly when the logit W x + b > 0: the same pushes.
        """
        if self.hidden:
            raise ValueError("only a linear actor (hidden = 0) is a LinearController")
        c = LinearController(self.config)
        c.set_flat_params(fold_standardization(self.get_flat_params(), self.input_mean.numpy(),
                                               self.input_std.numpy(), 1))
        return c


class Critic(nn.Module):
    """v(z, h): the expected discounted return from here, [z; h] (..., Z+H) -> (...).

    Two tanh hidden layers of `hidden` units on the standardised input (the actor's statistics).
    """

    def __init__(self, input_mean, input_std, hidden: int = 64):
        super().__init__()
        self.register_buffer("input_mean", torch.as_tensor(np.asarray(input_mean, np.float32)))
        self.register_buffer("input_std", torch.as_tensor(np.asarray(input_std, np.float32)))
        D = self.input_mean.shape[0]
        self.net = nn.Sequential(nn.Linear(D, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.input_mean) / self.input_std).squeeze(-1)
