"""Chapter 8's settings: training a controller by gradients through M's dream, and the chapter's sizes.

Kept in this package (not wmlib/config.py) so that chapter 8 stays one self-contained folder.

Introduced in: course/08_beyond.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

from wmlib.config import SettingError, check_int, check_real, fast_mode


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


# ---------------------------------------------------------------------------------------------
# The tiny RSSM (PlaNet/Dreamer's world model) and the Dreamer-style loop around it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RSSMConfig:
    """The RSSM's sizes and its loss (wmlib.beyond.rssm): a small PlaNet/Dreamer world model for 64x64x3 frames."""

    action_dim: int = 2
    """A: actions as the RSSM reads them (CartPole's push, one-hot: left, right)."""
    deter_dim: int = 128
    """H: the deterministic path h_t (a GRU's memory)."""
    stoch_dim: int = 16
    """S: the stochastic latent s_t (a diagonal Gaussian)."""
    hidden: int = 128
    """Units of the small MLPs (GRU input, prior, posterior, reward and continue heads)."""
    depth: int = 8
    """d: channels of the first conv layer; the encoder doubles them three times (8, 16, 32, 64), the decoder
    halves them back from 4d."""
    min_std: float = 0.1
    """Floor of the prior's and posterior's standard deviations (softplus(x) + min_std)."""
    free_nats: float = 1.0
    """Free bits: the KL (summed over S) costs nothing below this many nats per step (Dreamer: 3, V2: 1)."""
    kl_balance: float = 0.8
    """alpha of KL balancing (DreamerV2): the share of the KL's gradient that moves the prior (1 - alpha: the
    posterior). 0.5 is the plain KL."""
    kl_scale: float = 1.0
    """Weight of the KL term."""
    reward_scale: float = 1.0
    """Weight of the reward head's squared error."""
    continue_scale: float = 10.0
    """Weight of the continue head's cross-entropy (CartPole's ends are rare and all that matters)."""
    lr: float = 1e-3
    """Adam's learning rate for the whole world model."""
    max_grad_norm: float = 100.0
    """The world model's gradient norm is clipped to this."""

    def __post_init__(self):
        for name in ("action_dim", "deter_dim", "stoch_dim", "hidden", "depth"):
            check_int(name, getattr(self, name), 1)
        check_real("min_std", self.min_std, 0, low_open=True)
        check_real("free_nats", self.free_nats, 0)
        check_real("kl_balance", self.kl_balance, 0, 1)
        for name in ("kl_scale", "reward_scale", "continue_scale"):
            check_real(name, getattr(self, name), 0)
        for name in ("lr", "max_grad_norm"):
            check_real(name, getattr(self, name), 0, low_open=True)


@dataclass(frozen=True)
class DreamerConfig:
    """The Dreamer-style loop (wmlib.beyond.dreamer): collect, train the RSSM, train the actor-critic in its
    imagination, collect with the actor, repeat; every real step counted against `real_step_budget`."""

    rssm: RSSMConfig = RSSMConfig()
    """The world model."""
    real_step_budget: int = 20_000
    """Real env steps at most (random episodes and the actor's; evaluation episodes are counted apart)."""
    random_episodes: int = 5
    """Random real episodes played first."""
    train_every: int = 10
    """One training update (world model, then actor-critic) per this many new real steps."""
    pretrain_updates: int = 100
    """Updates on the random episodes before the actor plays its first episode."""
    batch_size: int = 16
    """Replay windows per world-model update."""
    seq_len: int = 16
    """Steps per replay window (windows cross episode starts; the RSSM resets there)."""
    horizon: int = 15
    """Imagined steps per actor-critic update (from every posterior state of the batch)."""
    gamma: float = 0.99
    """Discount per step."""
    lam: float = 0.95
    """lambda of the lambda-return (wmlib.beyond.imagination.lambda_return)."""
    actor_hidden: int = 64
    """Hidden units of the actor (an MLP on [s; h]; wmlib.beyond.policy.Actor)."""
    critic_hidden: int = 128
    """Units in each of the critic's two hidden layers."""
    actor_lr: float = 1e-3
    """Adam's learning rate for the actor."""
    critic_lr: float = 1e-3
    """Adam's learning rate for the critic."""
    entropy_scale: float = 3e-3
    """Weight of the actor's entropy (in units of the best possible return)."""
    ac_max_grad_norm: float = 100.0
    """The actor's and the critic's gradient norms are clipped to this."""
    eval_every: int = 2_000
    """Real steps between evaluations (the learning curve); 0: only the final one."""
    eval_episodes: int = 10
    """Greedy real episodes per evaluation (not counted in the budget)."""
    target_return: float = 475.0
    """When an evaluation's mean reaches this, `check_episodes` confirm it; if they agree, the run stops."""
    check_episodes: int = 100
    """Real episodes that confirm the target (0: trust the evaluation's mean)."""
    max_episode_steps: int = 500
    """CartPole-v1's time limit."""

    def __post_init__(self):
        if not isinstance(self.rssm, RSSMConfig):
            raise TypeError(f"rssm must be an RSSMConfig, got {type(self.rssm).__name__}")
        for name in ("real_step_budget", "train_every", "batch_size", "seq_len", "horizon", "actor_hidden",
                     "critic_hidden", "eval_episodes", "max_episode_steps"):
            check_int(name, getattr(self, name), 1)
        for name in ("random_episodes", "pretrain_updates", "eval_every", "check_episodes"):
            check_int(name, getattr(self, name), 0)
        check_real("gamma", self.gamma, 0, 1, low_open=True)
        check_real("lam", self.lam, 0, 1)
        for name in ("actor_lr", "critic_lr", "ac_max_grad_norm"):
            check_real(name, getattr(self, name), 0, low_open=True)
        check_real("entropy_scale", self.entropy_scale, 0)
        check_real("target_return", self.target_return, 0)
        if self.seq_len < 2:
            raise SettingError("seq_len", f"seq_len must be at least 2 (a window needs a step to predict), "
                                          f"got {self.seq_len}")


LIVE_RSSM_RUN = DreamerConfig(real_step_budget=1_500, random_episodes=10, pretrain_updates=60, train_every=10,
                              eval_every=500, eval_episodes=5, check_episodes=0)
"""The chapter's live run at default size: a couple of minutes on one core, far from the benchmark's budget."""


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
    rssm_run: DreamerConfig = LIVE_RSSM_RUN
    """The chapter's live RSSM run (a short DreamerConfig); benchmarks/rssm_cartpole.py runs the full one."""


DEFAULT_BEYOND_SIZES = BeyondSizes()
FAST_BEYOND_SIZES = BeyondSizes(start_episodes=3, dream_budget=4_000, gradient_updates=4, cma_generations=2,
                                cma_population=6, cma_rollouts=2, eval_dreams=4, real_episodes=1, widths=(0, 8),
                                rssm_run=DreamerConfig(RSSMConfig(depth=4, deter_dim=32, hidden=32),
                                                       real_step_budget=120, random_episodes=3, pretrain_updates=3,
                                                       train_every=40, batch_size=4, seq_len=8, horizon=5,
                                                       eval_every=60, eval_episodes=1, check_episodes=0,
                                                       max_episode_steps=50))


def beyond_sizes() -> BeyondSizes:
    """FAST_BEYOND_SIZES when WMLIB_FAST=1, else DEFAULT_BEYOND_SIZES."""
    return FAST_BEYOND_SIZES if fast_mode() else DEFAULT_BEYOND_SIZES
