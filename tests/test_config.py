"""The config dataclasses refuse settings that cannot work, naming the field and what was expected."""

import math

import numpy as np
import pytest

from wmlib.config import (
    CMAESConfig,
    ControllerConfig,
    DQNConfig,
    DreamConfig,
    MDNRNNConfig,
    PipelineConfig,
    SettingError,
    VAEConfig,
)

REFUSED = [
    (VAEConfig, "z_dim", 0, "z_dim must be a positive integer, got 0"),
    (VAEConfig, "batch_size", 2.0, "batch_size must be a positive integer, got 2.0"),
    (VAEConfig, "image_size", 96, "image_size must be 64 (V's layers map 64x64 frames), got 96"),
    (VAEConfig, "kl_tolerance", -0.1, "kl_tolerance must be >= 0 and finite, got -0.1"),
    (VAEConfig, "learning_rate", math.nan, "learning_rate must be positive and finite, got nan"),
    (MDNRNNConfig, "hidden_size", True, "hidden_size must be a positive integer, got True"),
    (MDNRNNConfig, "num_mixtures", 0, "num_mixtures must be a positive integer, got 0"),
    (MDNRNNConfig, "predict_done", 1, "predict_done must be True or False, got 1"),
    (MDNRNNConfig, "grad_clip", 0.0, "grad_clip must be positive and finite, got 0.0"),
    (MDNRNNConfig, "done_loss_weight", math.inf, "done_loss_weight must be >= 0 and finite, got inf"),
    (ControllerConfig, "h_dim", -1, "h_dim must be an integer >= 0, got -1"),
    (ControllerConfig, "action_dim", 0, "action_dim must be a positive integer, got 0"),
    (CMAESConfig, "population_size", 1, "population_size must be an integer >= 2, got 1"),
    (CMAESConfig, "sigma0", math.inf, "sigma0 must be positive and finite, got inf"),
    (CMAESConfig, "generations", 0, "generations must be a positive integer, got 0"),
    (DreamConfig, "temperature", math.inf, "temperature must be positive and finite, got inf"),
    (DreamConfig, "temperature", math.nan, "temperature must be positive and finite, got nan"),
    (DreamConfig, "temperature", 0.0, "temperature must be positive and finite, got 0.0"),
    (DreamConfig, "done_threshold", 2.0, "done_threshold must be a number in (0, 1], got 2.0"),
    (DreamConfig, "done_threshold", math.nan, "done_threshold must be a number in (0, 1], got nan"),
    (DreamConfig, "done_threshold", 0.0, "done_threshold must be a number in (0, 1], got 0.0"),
    (DreamConfig, "done_bias", math.inf, "done_bias must be a finite number, got inf"),
    (DreamConfig, "done_bias", "2", "done_bias must be a finite number, got '2'"),
    (DreamConfig, "max_steps", 0, "max_steps must be a positive integer, got 0"),
    (DreamConfig, "reward", "score", "unknown reward 'score'; expected one of auto, survival, model"),
    (DreamConfig, "precision", "float16", "unknown precision 'float16'; expected one of float32, bfloat16, auto"),
    (DQNConfig, "gamma", 1.5, "gamma must be a number in [0, 1], got 1.5"),
    (DQNConfig, "hidden_sizes", (), "hidden_sizes must name at least one layer, got ()"),
    (DQNConfig, "hidden_sizes", (16, 0), "hidden_sizes must be a positive integer, got 0"),
    (DQNConfig, "exploration_final_eps", -0.1, "exploration_final_eps must be a number in [0, 1], got -0.1"),
]


@pytest.mark.parametrize(("cls", "name", "value", "message"), REFUSED)
def test_settings_that_cannot_work_are_refused_with_the_field_named(cls, name, value, message):
    with pytest.raises(SettingError) as info:
        cls(**{name: value})
    assert info.value.name == name and str(info.value) == message
    assert isinstance(info.value, ValueError)  # callers catching ValueError still catch it


def test_a_controller_reads_something():
    with pytest.raises(SettingError, match=r"z_dim \+ h_dim must be at least 1 \(C reads \[z; h\]\), got 0 \+ 0"):
        ControllerConfig(z_dim=0, h_dim=0)
    assert ControllerConfig(z_dim=0, h_dim=4).h_dim == 4  # an h-only C is allowed


def test_defaults_and_edge_values_are_accepted():
    for cls in (VAEConfig, MDNRNNConfig, ControllerConfig, CMAESConfig, DreamConfig, DQNConfig, PipelineConfig):
        cls()
    DreamConfig(done_threshold=1.0)  # chapter 5: "p(done) > 1 never": only max_steps ends a dream
    DreamConfig(done_threshold=0.5, temperature=0.1, precision="bfloat16", reward="survival")
    CMAESConfig(population_size=np.int64(8), sigma0=np.float32(0.5))  # numpy scalars are numbers too
    DQNConfig(gamma=1, learning_starts=0, gradient_steps=0)
