"""Configuration: frozen dataclasses holding the paper's defaults, and the FAST switch.

Every component reads its sizes from one of these dataclasses. Make a variant with
`dataclasses.replace(VAEConfig(), z_dim=16)`; never mutate a config in place (they are frozen).

`WMLIB_FAST=1` in the environment shrinks data, epochs and generations (see `course_sizes()`) so
the whole course runs in CI in minutes. The default sizes are what a learner runs on a laptop CPU.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from numbers import Integral, Real

import torch

# ---------------------------------------------------------------------------------------------
# The FAST switch
# ---------------------------------------------------------------------------------------------


def fast_mode() -> bool:
    """True when the environment variable WMLIB_FAST is set to 1 (or true/yes/on).

    Read at call time, not import time, so a test or a notebook can change it before it asks.
    """
    return os.environ.get("WMLIB_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def default_device() -> torch.device:
    """CUDA when present, else the CPU. Nothing in wmlib requires a GPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------
# Refusing settings that cannot work
# ---------------------------------------------------------------------------------------------


class SettingError(ValueError):
    """A setting that cannot work. `name` is the field or parameter (the CLI turns it into its flag).

    The message is a whole sentence naming the setting and saying what was expected.
    """

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def with_defaults(recorded: dict, defaults: dict) -> dict:
    """A config as a run recorded it (dataclasses.asdict, JSON), with every field it lacks set to `defaults`'s
    value, nested configs included: a run recorded before a field existed ran as that field's default does
    (a new field's default always keeps the old behaviour). Fields only the record has are kept."""
    out = dict(recorded)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, dict) and isinstance(out[k], dict):
            out[k] = with_defaults(out[k], v)
    return out


def check_int(name: str, value, low: int) -> None:
    """Refuse `value` unless it is an integer >= low (bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        expected = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise SettingError(name, f"{name} must be {expected}, got {value!r}")


def check_real(name: str, value, low: float, high: float = math.inf, *, low_open: bool = False,
               high_open: bool = False) -> None:
    """Refuse `value` unless it is a finite real number between low and high (open ends excluded)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)):
        if (low, high) == (-math.inf, math.inf):
            expected = "a finite number"
        elif high == math.inf:
            expected = "positive" if (low, low_open) == (0, True) else f"{'>' if low_open else '>='} {low:g}"
            expected += " and finite"
        else:
            expected = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise SettingError(name, f"{name} must be {expected}, got {value!r}")


def check_bool(name: str, value) -> None:
    """Refuse `value` unless it is True or False."""
    if not isinstance(value, bool):
        raise SettingError(name, f"{name} must be True or False, got {value!r}")


def check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    """Refuse `value` unless it is one of `choices`."""
    if value not in choices:
        raise SettingError(name, f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


DREAM_REWARDS = ("auto", "survival", "model")
"""DreamConfig.reward's choices."""

DREAM_PRECISIONS = ("float32", "bfloat16", "auto")
"""DreamConfig.precision's choices."""


# ---------------------------------------------------------------------------------------------
# The paper's components
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VAEConfig:
    """V: the convolutional VAE (paper, section A.1; 4,348,547 parameters at these defaults)."""

    z_dim: int = 32
    """Size of the latent vector z."""
    image_channels: int = 3
    """Colour channels of the input frame."""
    image_size: int = 64
    """Frames are image_size x image_size (the architecture assumes 64)."""
    kl_tolerance: float = 0.5
    """Free bits per latent dimension: the KL term is max(KL, kl_tolerance * z_dim)."""
    learning_rate: float = 1e-4
    """Adam learning rate (the paper's code uses 1e-4)."""
    batch_size: int = 100
    """Frames per gradient step."""

    def __post_init__(self):
        for name in ("z_dim", "image_channels", "batch_size"):
            check_int(name, getattr(self, name), 1)
        if self.image_size != 64:
            raise SettingError("image_size", f"image_size must be 64 (V's layers map 64x64 frames), "
                                             f"got {self.image_size!r}")
        check_real("kl_tolerance", self.kl_tolerance, 0)
        check_real("learning_rate", self.learning_rate, 0, low_open=True)


@dataclass(frozen=True)
class MDNRNNConfig:
    """M: the MDN-RNN (paper, section A.2; the CarRacing model by default)."""

    z_dim: int = 32
    """Size of the latent vector z that M reads and predicts."""
    action_dim: int = 3
    """Size of the action vector (3 for CarRacing: steer, gas, brake)."""
    hidden_size: int = 256
    """LSTM units (256 for CarRacing, 512 for Doom)."""
    num_mixtures: int = 5
    """K, the Gaussians per latent dimension."""
    predict_reward: bool = False
    """Add a head that predicts the reward of the step."""
    predict_done: bool = False
    """Add a head that predicts the end of the episode (the paper's Doom model has one)."""
    done_loss_weight: float = 1.0
    """Weight of the done head's binary cross-entropy in the loss (ends are rare; see mdnrnn_loss)."""
    sequence_length: int = 100
    """Time steps per training sequence (truncated backpropagation through time)."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    grad_clip: float = 1.0
    """Gradients are clipped to this global norm."""
    batch_size: int = 100
    """Sequences per gradient step."""

    def __post_init__(self):
        for name in ("z_dim", "action_dim", "hidden_size", "num_mixtures", "sequence_length", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_bool("predict_reward", self.predict_reward)
        check_bool("predict_done", self.predict_done)
        check_real("done_loss_weight", self.done_loss_weight, 0)
        check_real("learning_rate", self.learning_rate, 0, low_open=True)
        check_real("grad_clip", self.grad_clip, 0, low_open=True)


@dataclass(frozen=True)
class ControllerConfig:
    """C: the linear controller. (32 + 256) * 3 + 3 = 867 parameters at these defaults."""

    z_dim: int = 32
    """Size of z, the first part of the controller's input."""
    h_dim: int = 256
    """Size of M's hidden state h, the second part (0 gives the paper's 'V only' ablation)."""
    action_dim: int = 3
    """Outputs of the controller."""
    action_map: str = "carracing"
    """How outputs become an env action: "carracing" (steer, gas, brake), "discrete" or "identity"."""

    def __post_init__(self):
        check_int("z_dim", self.z_dim, 0)
        check_int("h_dim", self.h_dim, 0)
        check_int("action_dim", self.action_dim, 1)
        if self.z_dim + self.h_dim < 1:
            raise SettingError("z_dim", f"z_dim + h_dim must be at least 1 (C reads [z; h]), "
                                        f"got {self.z_dim} + {self.h_dim}")


@dataclass(frozen=True)
class CMAESConfig:
    """CMA-ES as the paper ran it for CarRacing."""

    population_size: int = 64
    """Candidates per generation."""
    rollouts_per_candidate: int = 16
    """Fitness of a candidate = mean return over this many rollouts."""
    sigma0: float = 0.1
    """Initial step size of the search distribution."""
    generations: int = 100
    """How many ask/tell rounds to run."""
    rank_shaping: bool = False
    """Replace returns by centred ranks before telling CMA-ES (robust to outliers)."""

    def __post_init__(self):
        check_int("population_size", self.population_size, 2)
        check_int("rollouts_per_candidate", self.rollouts_per_candidate, 1)
        check_real("sigma0", self.sigma0, 0, low_open=True)
        check_int("generations", self.generations, 1)
        check_bool("rank_shaping", self.rank_shaping)


@dataclass(frozen=True)
class DreamConfig:
    """The dream: M run on its own samples as an environment (wmlib/dream.py, chapter 5)."""

    temperature: float = 1.0
    """tau of mdn_sample: below 1 a calmer, more predictable dream, above 1 a wilder one."""
    done_threshold: float | None = None
    """None: the dream ends with M's done probability (a sampled end); a number in (0, 1]: when it exceeds
    this (the paper's code used 0.5; 1: only max_steps ends a dream). A calibrated done head is unsure
    near the edge, and a threshold lets a dream run on there (an M trained on 300 random episodes: always
    pushing left lived ~170 dream steps at 0.5, ~17 with sampled ends, 9 for real)."""
    done_bias: float = 0.0
    """Added to M's done logit before the dream decides an end: log q makes the odds of every end q times
    higher. Training the done head with its rare ends weighted q times (the paper's Doom code) moves the
    best logit by exactly log q, so a calibrated head plus log q gives the paper's harsher dream without
    retraining M. A dream far from the data, where a calibrated head rarely fires, then still ends where
    M sees danger (benchmarks/doom_done_bias.py measures it on Doom)."""
    max_steps: int = 1000
    """Dream episodes are truncated after this many steps, like the real env's time limit."""
    reward: str = "auto"
    """"survival" (+1 per step alive), "model" (M's reward head), or "auto" (the head if M has one)."""
    sample_start: bool = True
    """Start from z_0 ~ N(mu, sigma^2) of a real first frame (False: its mean mu)."""
    precision: str = "float32"
    """M's arithmetic in the dream: "float32", or "bfloat16" (M's weights, h and c in bfloat16; the
    mixture is sampled in float32). On a CPU with AVX512-BF16 (or AMX, or a GPU) M's matrix products
    run ~2.4x faster, so the paper's car dream steps ~1.2-1.6x faster (CartPole's small M ~1.1-1.3x); on
    other CPUs bfloat16 is emulated and slower (wmlib.dream.bfloat16_is_fast). What it does to the
    dream is measured by benchmarks/dream_precision.py (M's likelihood of real data, dream lengths,
    and the real score of a controller trained in each)."""

    def __post_init__(self):
        # tau multiplies the mixture's variance: inf or NaN turns every observation into inf/NaN.
        check_real("temperature", self.temperature, 0, low_open=True)
        if self.done_threshold is not None:  # above 1 (or NaN) no dream would ever end before max_steps
            check_real("done_threshold", self.done_threshold, 0, 1, low_open=True)
        check_real("done_bias", self.done_bias, -math.inf)
        check_int("max_steps", self.max_steps, 1)
        check_choice("reward", self.reward, DREAM_REWARDS)
        check_bool("sample_start", self.sample_start)
        check_choice("precision", self.precision, DREAM_PRECISIONS)


@dataclass(frozen=True)
class PipelineConfig:
    """The paper's iterative procedure (wmlib/pipeline.py, chapter 5): real data -> V, M -> C in the
    dream -> C's real rollouts -> retrain M -> ... Defaults: pixel CartPole within 20,000 real steps.

    V, M, CMA-ES and the dream are configured by their own dataclasses; the defaults below differ
    from theirs where the pipeline's small data and small M want it (each field says how)."""

    env_name: str = "cartpole-pixels"
    """The real world (a name in wmlib.tasks.WORLDS whose M can make a dream pay: "cartpole-pixels")."""
    rounds: int = 10
    """At most this many rounds of (train M, train C in the dream, play C for real)."""
    random_episodes: int = 300
    """Round 0: episodes of the random policy that V and M first learn from."""
    episodes_per_round: int = 6
    """Later rounds: episodes played by C with exploration, added to M's data."""
    exploration: float = 0.1
    """Probability that a collecting step takes a random action instead of C's."""
    eval_episodes: int = 3
    """Real episodes per round that score C (without exploration; also kept as data)."""
    real_step_budget: int = 20_000
    """Real env steps the whole run may take (collection and per-round scoring)."""
    target_return: float | None = 475.0
    """Stop after a round whose real score reaches this (None: play every round)."""
    max_episode_steps: int | None = None
    """Cut real episodes after this many steps (None: the env's own limit)."""
    vae: VAEConfig = field(default_factory=lambda: VAEConfig(batch_size=32, learning_rate=3e-4))
    """V (its z_dim is M's and C's too). Batch 32 and learning rate 3e-4: more, smaller steps per frame,
    as for the shipped V (see assets/README.md)."""
    vae_epochs: int = 8
    """Passes of V over the round-0 frames."""
    vae_epochs_per_round: int = 1
    """Later rounds: V's further passes over every frame so far (0: V is trained once, on random play).
    C goes where random play never went (a cart near the end of the track); V must learn to see it."""
    mdnrnn: MDNRNNConfig | None = None
    """M (its z_dim must be V's); None: the world's preset (wmlib.mdnrnn.preset_config) at V's z_dim."""
    mdn_epochs_first: int = 40
    """M's epochs on the round-0 data."""
    mdn_epochs_per_round: int = 20
    """M's further epochs on all data in each later round (it continues from the last round)."""
    cmaes: CMAESConfig = field(default_factory=lambda: CMAESConfig(
        population_size=32, rollouts_per_candidate=16, sigma0=0.5, generations=30))
    """CMA-ES in the dream, each round: 32 candidates x 16 dream episodes, 30 generations; step size 0.5
    because C searches in standardised input coordinates."""
    dream: DreamConfig = field(default_factory=lambda: DreamConfig(max_steps=500))
    """The dream C trains in: cut at 500 steps (CartPole's real limit)."""
    select_episodes: int = 64
    """Dream episodes that pick between CMA-ES's best candidate and its final mean."""

    def __post_init__(self):
        if self.rounds < 1 or self.random_episodes < 1:
            raise ValueError(f"need at least one round and one random episode, got rounds={self.rounds} "
                             f"and random_episodes={self.random_episodes}")
        if self.mdnrnn is not None and self.mdnrnn.z_dim != self.vae.z_dim:
            raise ValueError(f"M reads z of size {self.mdnrnn.z_dim}, but V makes z of size {self.vae.z_dim}: "
                             "give M the same z_dim (or mdnrnn=None for the world's preset)")


@dataclass(frozen=True)
class DQNConfig:
    """A small DQN for CartPole state vectors (chapter 1's model-free baseline).

    The defaults follow the well-tuned CartPole-v1 settings of the RL Baselines3 Zoo; they solve
    CartPole in tens of thousands of steps rather than the 136,645 a common
    summary of the paper claims.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    """Units of the Q network's hidden layers."""
    learning_rate: float = 2.3e-3
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    batch_size: int = 64
    """Transitions per gradient step."""
    buffer_size: int = 100_000
    """Replay buffer capacity."""
    learning_starts: int = 1_000
    """Random steps before the first gradient step."""
    train_freq: int = 256
    """Environment steps between training phases."""
    gradient_steps: int = 128
    """Gradient steps per training phase."""
    target_update_interval: int = 10
    """Environment steps between copies of the online network into the target network."""
    exploration_fraction: float = 0.16
    """Fraction of the step budget over which epsilon decays linearly."""
    exploration_final_eps: float = 0.04
    """Epsilon after the decay."""
    max_grad_norm: float = 10.0
    """Gradient clipping."""

    def __post_init__(self):
        if not self.hidden_sizes:
            raise SettingError("hidden_sizes", "hidden_sizes must name at least one layer, got ()")
        for size in self.hidden_sizes:
            check_int("hidden_sizes", size, 1)
        check_real("learning_rate", self.learning_rate, 0, low_open=True)
        check_real("gamma", self.gamma, 0, 1)
        for name in ("batch_size", "buffer_size", "train_freq", "target_update_interval"):
            check_int(name, getattr(self, name), 1)
        check_int("learning_starts", self.learning_starts, 0)
        check_int("gradient_steps", self.gradient_steps, 0)
        check_real("exploration_fraction", self.exploration_fraction, 0, 1)
        check_real("exploration_final_eps", self.exploration_final_eps, 0, 1)
        check_real("max_grad_norm", self.max_grad_norm, 0, low_open=True)


# ---------------------------------------------------------------------------------------------
# Course sizes: what a chapter trains by default, and in FAST mode
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseSizes:
    """How much data and training each chapter uses. See `course_sizes()`."""

    dqn_max_steps: int
    """Chapter 1: environment-step budget for DQN."""
    dqn_eval_every: int
    """Chapter 1: environment steps between greedy evaluations."""
    dqn_eval_episodes: int
    """Chapter 1: episodes per greedy evaluation."""
    vae_rollouts: int
    """Chapter 2: random episodes collected to train V in the notebook."""
    vae_epochs: int
    """Chapter 2: passes over those frames."""
    mdn_rollouts: int
    """Chapter 3: episodes whose latents train M in the notebook."""
    mdn_epochs: int
    """Chapter 3: passes over those sequences."""
    cma_generations: int
    """Chapters 4 and 5: CMA-ES generations."""
    cma_population: int
    """Chapters 4 and 5: CMA-ES population size."""
    cma_rollouts: int
    """Chapters 4 and 5: rollouts per candidate."""
    controller_env_steps: int = 30_000
    """Chapter 4: budget of real env steps for training C in the notebook (pixel CartPole)."""
    controller_eval_episodes: int = 10
    """Chapter 4: real episodes per evaluation of a controller in the notebook."""
    dream_start_episodes: int = 30
    """Chapter 5: random real episodes whose first frames start the dreams."""
    dream_population: int = 32
    """Chapter 5: CMA-ES candidates per generation in the dream."""
    dream_rollouts: int = 8
    """Chapter 5: dream episodes per candidate."""
    dream_generations: int = 25
    """Chapter 5: CMA-ES generations in the dream."""
    dream_eval_episodes: int = 20
    """Chapter 5: real episodes that score a controller trained in the dream."""
    dream_temperatures: tuple[float, ...] = (0.5, 1.15, 1.3)
    """Chapter 5: temperatures of the sweep besides 0.1 and 1.0 (C trained in the dream at each, scored for real)."""
    dream_sweep_episodes: int = 10
    """Chapter 5: real episodes per temperature of the sweep."""
    dream_iteration_episodes: int = 10
    """Chapter 5: real episodes the dream-trained C plays (with exploration) for one round of iterative training."""


DEFAULT_SIZES = CourseSizes(
    dqn_max_steps=60_000,
    dqn_eval_every=2_000,
    dqn_eval_episodes=10,
    vae_rollouts=60,
    vae_epochs=6,
    mdn_rollouts=200,
    mdn_epochs=20,
    cma_generations=20,
    cma_population=16,
    cma_rollouts=4,
)

FAST_SIZES = CourseSizes(
    dqn_max_steps=3_000,
    dqn_eval_every=1_000,
    dqn_eval_episodes=2,
    vae_rollouts=4,
    vae_epochs=1,
    mdn_rollouts=8,
    mdn_epochs=1,
    cma_generations=2,
    cma_population=6,
    cma_rollouts=1,
    controller_env_steps=600,
    controller_eval_episodes=2,
    dream_start_episodes=3,
    dream_population=6,
    dream_rollouts=2,
    dream_generations=2,
    dream_eval_episodes=2,
    dream_temperatures=(1.3,),
    dream_sweep_episodes=1,
    dream_iteration_episodes=2,
)


def course_sizes() -> CourseSizes:
    """FAST_SIZES when WMLIB_FAST=1, else DEFAULT_SIZES."""
    return FAST_SIZES if fast_mode() else DEFAULT_SIZES
