"""Chapter 8, what came after World Models: gradients through the dream.

    config.py       ImaginationConfig (the actor-critic's settings), beyond_sizes() (the chapter's sizes)
    policy.py       Actor (chapter 4's linear C, or a small MLP) and Critic
    imagination.py  lambda_return, the straight-through mixture sample, imagine, train_in_imagination
    search.py       the actor in chapter 5's dream: actor_dream_returns, train_actor_with_cmaes (the comparison)

Introduced in: course/08_beyond.ipynb
"""

from wmlib.beyond.config import BeyondSizes, ImaginationConfig, beyond_sizes
from wmlib.beyond.imagination import (
    imagine,
    lambda_return,
    reach_weights,
    straight_through_mixture_sample,
    train_in_imagination,
)
from wmlib.beyond.policy import Actor, Critic
from wmlib.beyond.search import TrainingRun, actor_dream_returns, dream_score, train_actor_with_cmaes

__all__ = ["Actor", "BeyondSizes", "Critic", "ImaginationConfig", "TrainingRun", "actor_dream_returns",
           "beyond_sizes", "dream_score", "imagine", "lambda_return", "reach_weights",
           "straight_through_mixture_sample", "train_actor_with_cmaes", "train_in_imagination"]
