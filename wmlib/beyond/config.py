"""Chapter 8's settings: training a controller by gradients through M's dream, and the chapter's sizes.

Kept in this package (not wmlib/config.py) so that chapter 8 stays one self-contained folder.

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

from wmlib.config import check_int, check_real, fast_mode


@dataclass(frozen=True)
class ImaginationConfig:
    """Actor-critic in M's imagination (Dreamer's recipe on World Models' M; wmlib.beyond.imagination).

    One update imagines `batch_size` dreams for `horizon` steps from where they stood, backpropagates the
    lambda-return through M into the actor, regresses the critic on it, and moves the dreams on.
    """

    horizon: int = 15
    """Imagined steps per update that the gradient flows through (Dreamer: 15)."""
    batch_size: int = 256
    """Dreams imagined side by side per update."""
    gamma: float = 0.99
    """Discount per step: a return of 1 per step is worth at most 1 / (1 - gamma) = 100."""
    lam: float = 0.95
    """lambda of the lambda-return: 0 trusts the critic after one step, 1 the imagined rewards to the horizon."""
    actor_lr: float = 3e-3
    """Adam's learning rate for the actor."""
    critic_lr: float = 3e-3
    """Adam's learning rate for the critic."""
    entropy_scale: float = 3e-3
    """Weight of the policy's entropy (in units of the best possible return), so it does not turn greedy too soon."""
    critic_hidden: int = 64
    """Units in each of the critic's two hidden layers."""
    max_grad_norm: float = 10.0
    """Gradient norms are clipped to this (a long chain through an LSTM can spike)."""
    temperature: float = 1.0
    """tau of M's samples, as in chapter 5's dream."""
    max_steps: int = 500
    """A dream is restarted from a real first frame after this many steps (the real time limit)."""
    updates: int = 400
    """Gradient updates at most."""
    eval_every: int = 25
    """Updates between evaluations of the deterministic actor on `eval_dreams` fixed dreams."""
    eval_dreams: int = 64
    """Dreams per evaluation (the same seeds every time; their steps are not counted as training)."""
    target_score: float | None = 475.0
    """Stop at the first evaluation whose mean dream return reaches this (None: run all updates)."""

    def __post_init__(self):
        for name in ("horizon", "batch_size", "critic_hidden", "max_steps", "updates", "eval_every", "eval_dreams"):
            check_int(name, getattr(self, name), 1)
        check_real("gamma", self.gamma, 0, 1, low_open=True)
        check_real("lam", self.lam, 0, 1)
        for name in ("actor_lr", "critic_lr", "max_grad_norm", "temperature"):
            check_real(name, getattr(self, name), 0, low_open=True)
        check_real("entropy_scale", self.entropy_scale, 0)


@dataclass(frozen=True)
class BeyondSizes:
    """How much chapter 8 trains and measures live (`beyond_sizes()`: fast in CI, default for a learner)."""

    start_episodes: int = 30
    """Random real episodes whose first frames start the dreams (chapter 5's)."""
    dream_budget: int = 300_000
    """Dream steps each trainer may spend in the live comparison (the step that crosses it finishes)."""
    gradient_updates: int = 1_000
    """Gradient updates at most for the live actor-critic (the budget usually ends it first)."""
    cma_generations: int = 100
    """CMA-ES generations at most for the live comparison (the budget usually ends it first)."""
    cma_population: int = 32
    """CMA-ES candidates per generation."""
    cma_rollouts: int = 8
    """Dreams per CMA-ES candidate."""
    eval_dreams: int = 64
    """Dreams that score a controller in the dream."""
    real_episodes: int = 10
    """Real pixel-CartPole episodes that score a controller in the chapter (the benchmark plays 100)."""
    widths: tuple[int, ...] = (0, 8, 32)
    """Controller sizes for the cost-per-update measurement: 0 is the linear C, n an MLP with n hidden units."""


DEFAULT_BEYOND_SIZES = BeyondSizes()
FAST_BEYOND_SIZES = BeyondSizes(start_episodes=3, dream_budget=4_000, gradient_updates=4, cma_generations=2,
                                cma_population=6, cma_rollouts=2, eval_dreams=4, real_episodes=1, widths=(0, 8))


def beyond_sizes() -> BeyondSizes:
    """FAST_BEYOND_SIZES when WMLIB_FAST=1, else DEFAULT_BEYOND_SIZES."""
    return FAST_BEYOND_SIZES if fast_mode() else DEFAULT_BEYOND_SIZES
