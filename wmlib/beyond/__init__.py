"""Chapter 8, what came after World Models: gradients through the dream.

    config.py       ImaginationConfig (the actor-critic's settings), beyond_sizes() (the chapter's sizes)
    policy.py       Actor (chapter 4's linear C, or a small MLP) and Critic
    imagination.py  lambda_return, the straight-through mixture sample, imagine, train_in_imagination
    search.py       the actor in chapter 5's dream: actor_dream_returns, train_actor_with_cmaes (the comparison)
    rssm.py         a tiny RSSM (PlaNet/Dreamer's world model): kl_free_bits, RSSM, world_model_loss
    dreamer.py      the Dreamer-style loop on it: Replay, imagine_rssm, train_step, evaluate, train_dreamer

Introduced in: course/08_beyond.ipynb
"""

from wmlib.beyond.config import BeyondSizes, DreamerConfig, ImaginationConfig, RSSMConfig, beyond_sizes
from wmlib.beyond.dreamer import DreamerResult, train_dreamer
from wmlib.beyond.imagination import (
    imagine,
    lambda_return,
    reach_weights,
    straight_through_mixture_sample,
    train_in_imagination,
)
from wmlib.beyond.policy import Actor, Critic
from wmlib.beyond.rssm import RSSM, kl_free_bits, world_model_loss
from wmlib.beyond.search import TrainingRun, actor_dream_returns, dream_score, train_actor_with_cmaes

__all__ = ["RSSM", "Actor", "BeyondSizes", "Critic", "DreamerConfig", "DreamerResult", "ImaginationConfig",
           "RSSMConfig", "TrainingRun", "actor_dream_returns", "beyond_sizes", "dream_score", "imagine",
           "kl_free_bits", "lambda_return", "reach_weights", "straight_through_mixture_sample",
           "train_actor_with_cmaes", "train_dreamer", "train_in_imagination", "world_model_loss"]
