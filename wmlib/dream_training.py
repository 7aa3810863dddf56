"""Training C in the dream: a whole CMA-ES population plays M's dream in one batch.

    dream_rollouts(m, starts, controller, params (N, P), seeds (R,))   N controllers x R dreams, one batch
    DreamEvaluator(m, starts, controller, ...)                          that, as a CMA-ES evaluator
    train_controller_in_dream(m, episodes, controller, ...)            CMA-ES without a single real step

Dream (i, j) of a population starts as DreamEnv.reset(seed=seeds[j]) would (wmlib/dream.py), so every
candidate meets the same R dreams, and a candidate's scores do not depend on its batch mates: the
evaluator may split the population into groups or over worker processes and get the same numbers.

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from wmlib.cmaes import CMAResult, train_cmaes
from wmlib.config import CMAESConfig, ControllerConfig, DreamConfig
from wmlib.controller import (
    LinearController,
    action_map_spec,
    controller_param_count,
    fold_standardization,
    unfold_standardization,
)
from wmlib.dream import BatchedDream, StartLatents, masked_returns, start_latents
from wmlib.evaluators import Evaluation, Evaluator, EvaluatorConfig, SerialEvaluator, make_evaluator
from wmlib.mdnrnn import MDNRNN

# ---------------------------------------------------------------------------------------------
# Controllers in the dream: a whole population in one batch
# ---------------------------------------------------------------------------------------------


def controller_to_m_actions(y: torch.Tensor, config: ControllerConfig, m_action_dim: int) -> torch.Tensor:
    """Batched wmlib.controller.map_action, as M reads actions: y (B, A_c) tanh outputs -> (B, A).

    "discrete": one-hot of (y_0 > 0) with one output, else of argmax y    "carracing": (steer, gas,
    brake) = (y_0, (y_1 + 1) / 2, clip(y_2, 0, 1))    "identity": y.
    """
    spec = action_map_spec(config.action_map)
    actions = spec.batched(y)
    return torch.nn.functional.one_hot(actions, m_action_dim).float() if spec.one_hot else actions


def _check_fit(mdnrnn: MDNRNN, controller: ControllerConfig) -> None:
    m = mdnrnn.config
    if controller.z_dim != m.z_dim or controller.h_dim not in (0, m.hidden_size):
        raise ValueError(f"the controller reads z of size {controller.z_dim} and h of size {controller.h_dim}, "
                         f"but M has z_dim {m.z_dim} and hidden_size {m.hidden_size}")
    spec = action_map_spec(controller.action_map)
    if spec.one_hot:  # C's outputs pick one of M's A one-hot actions: as many outputs as the map needs
        allowed = (spec.outputs,) if spec.outputs is not None else (1, m.action_dim)
        if controller.action_dim not in allowed:
            raise ValueError(f"the {controller.action_map!r} action map needs {' or '.join(map(str, allowed))} "
                             f"controller outputs, got {controller.action_dim}")
    elif controller.action_dim != m.action_dim:
        raise ValueError(f"the controller has {controller.action_dim} outputs, M reads actions of size "
                         f"{m.action_dim}")


class DreamRollouts(NamedTuple):
    """Returns (N, R) and dream steps (N, R) of N controllers over R seeds; with record=True also
    z (B, T+1, Z), rewards (B, T), dones (B, T) for the B = N * R dreams (row i * R + j)."""

    returns: np.ndarray
    steps: np.ndarray
    z: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    dones: torch.Tensor | None = None


@torch.no_grad()
def dream_rollouts(mdnrnn: MDNRNN, starts: StartLatents, controller: ControllerConfig, params,
                   seeds: Sequence[int], config: DreamConfig | None = None, *, record: bool = False) -> DreamRollouts:
    """Play N controllers (params (N, P), W row by row then b) for R dream episodes each, in one batch.

    Dream (i, j) is row i * R + j and starts as DreamEnv.reset(seed=seeds[j]): every candidate
    meets the same R dreams (common random numbers). A row that has ended counts as done from then
    on, and the alive mask of `masked_returns` keeps everything after its first done out of its
    return. Once a quarter of the batch has ended, the ended dreams are dropped from the batch (they
    would cost compute for nothing); with record=True their later z are NaN.
    """
    config = DreamConfig() if config is None else config
    _check_fit(mdnrnn, controller)
    params = torch.as_tensor(np.asarray(params, dtype=np.float32))
    P = controller_param_count(controller.z_dim, controller.h_dim, controller.action_dim)
    if params.dim() != 2 or params.shape[1] != P:
        raise ValueError(f"expected params of shape (N, {P}), got {tuple(params.shape)}")
    N, R = params.shape[0], len(seeds)
    if R < 1:
        raise ValueError("need at least one seed")
    dream = BatchedDream(mdnrnn, starts, config)
    device, Z, A_c = dream.device, controller.z_dim, controller.action_dim
    n_w = A_c * (Z + controller.h_dim)
    W = params[:, :n_w].reshape(N, A_c, Z + controller.h_dim).repeat_interleave(R, 0).to(device)  # (B, A_c, Z+H)
    b = params[:, n_w:].repeat_interleave(R, 0).to(device)  # (B, A_c)
    B = N * R
    obs = dream.reset(list(seeds) * N)
    rows = torch.arange(B, device=device)  # which of the B dreams each row of the shrinking batch is
    ended = torch.zeros(B, dtype=torch.bool, device=device)  # per row of the batch
    zs, rewards, dones = [dream.z], [], []
    while len(rows) and dream.t < config.max_steps:
        x = obs[:, : Z + controller.h_dim]  # (b, Z+H), or z alone for a "V only" controller
        y = torch.tanh((W * x.unsqueeze(1)).sum(-1) + b)  # (b, A_c); faster on a CPU than einsum's bmm
        step = dream.step(controller_to_m_actions(y, controller, mdnrnn.config.action_dim))
        done = step.terminated | step.truncated | ended
        rewards.append(torch.zeros(B, device=device).index_put((rows,), step.reward))
        dones.append(torch.ones(B, dtype=torch.bool, device=device).index_put((rows,), done))
        if record:
            zs.append(torch.full((B, Z), float("nan"), device=device).index_put((rows,), dream.z))
        ended, obs = done, step.obs
        if (~ended).sum() <= 0.75 * len(rows):  # drop the ended dreams from the batch
            keep = (~ended).nonzero().squeeze(1)
            dream.keep(keep)
            rows, W, b, obs, ended = rows[keep], W[keep], b[keep], obs[keep], ended[keep]
    rewards_bt, dones_bt = torch.stack(rewards, 1), torch.stack(dones, 1)  # (B, T)
    returns = masked_returns(rewards_bt, dones_bt)
    steps = masked_returns(torch.ones_like(rewards_bt), dones_bt)
    out = DreamRollouts(returns.view(N, R).cpu().double().numpy(), steps.view(N, R).cpu().long().numpy())
    if record:
        out = out._replace(z=torch.stack(zs, 1), rewards=rewards_bt, dones=dones_bt)
    return out


EPISODES_PER_BATCH = 32
"""dream_input_statistics runs M over this many real episodes at once."""


@torch.no_grad()
def dream_input_statistics(mdnrnn: MDNRNN, episodes: Sequence[dict], floor: float = 1e-3, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the controller's input [z; h] as the dream shows it, along real episodes.

    episodes: dicts with mu, logvar (T+1, Z) and actions (T, A) float (load_latent_episodes).
    z is drawn from N(mu, sigma^2), as M was trained and as the dream samples it: a latent
    dimension V does not use has mu ~ 0 in every frame but is N(0, 1) noise in the dream, and
    dividing it by the tiny spread of mu would make C's first guesses all noise.
    Returns mean (Z+H,) and std (Z+H,), floored at `floor` times the largest. CMA-ES searches C in
    these standardised coordinates (see wmlib.controller.fold_standardization), computed from data
    already collected, so they cost no real steps.
    """
    g = torch.Generator().manual_seed(seed)
    zs, acts = [], []
    for ep in episodes:
        mu = torch.as_tensor(ep["mu"], dtype=torch.float32)
        sigma = torch.exp(0.5 * torch.as_tensor(ep["logvar"], dtype=torch.float32))
        zs.append(mu + sigma * torch.randn(mu.shape, generator=g))  # (T+1, Z)
        acts.append(torch.as_tensor(ep["actions"], dtype=torch.float32))  # (T, A)
    # M reads whole episodes, EPISODES_PER_BATCH of similar length side by side (padded at the end, which
    # cannot change the earlier steps): the same memories as stepping each episode, ~50x faster for Doom's M.
    H = mdnrnn.config.hidden_size
    rows: list[np.ndarray] = [np.empty(0)] * len(zs)
    order = sorted(range(len(zs)), key=lambda i: len(acts[i]))
    for k in range(0, len(order), EPISODES_PER_BATCH):
        group = order[k : k + EPISODES_PER_BATCH]
        z = torch.nn.utils.rnn.pad_sequence([zs[i][:-1] for i in group], batch_first=True)  # (B, T, Z)
        a = torch.nn.utils.rnn.pad_sequence([acts[i] for i in group], batch_first=True)  # (B, T, A)
        h = mdnrnn.hidden_states(z, a) if z.shape[1] else torch.zeros(len(group), 0, H)
        for b, i in enumerate(group):
            T = len(acts[i])
            memory = torch.cat([torch.zeros(1, H), h[b, :T].float()])  # (T+1, H): h_0 is the empty memory
            rows[i] = torch.cat([zs[i], memory], dim=1).numpy()
    x = np.concatenate(rows).astype(np.float64)
    std = x.std(axis=0)
    return x.mean(axis=0), np.maximum(std, floor * std.max())


@dataclasses.dataclass(frozen=True)
class DreamBatch:
    """A batch function for wmlib.evaluators: plays candidates in the batched dream.

    (params (n, P) ordinary controller parameters, seeds (R,)) -> Evaluation (n, R) of dream returns
    and dream steps, `dream_rollouts` over groups of candidates of at most max_batch dreams each.
    """

    mdnrnn: MDNRNN
    starts: StartLatents
    controller: ControllerConfig
    config: DreamConfig
    max_batch: int = 4096

    def __call__(self, params: np.ndarray, seeds: Sequence[int]) -> Evaluation:
        per_group = max(1, self.max_batch // max(len(seeds), 1))
        groups = [dream_rollouts(self.mdnrnn, self.starts, self.controller, params[i : i + per_group], seeds,
                                 self.config) for i in range(0, len(params), per_group)]
        return Evaluation(np.concatenate([r.returns for r in groups]), np.concatenate([r.steps for r in groups]))


@dataclasses.dataclass
class DreamEvaluator:
    """An evaluator (wmlib.evaluators.Evaluator) for wmlib.cmaes.train_cmaes that scores controllers in
    the batched dream.

    (solutions (N, P), seeds (R,)) -> Evaluation(returns (N, R), steps (N, R) dream steps).
    max_batch: at most this many dreams per batch (candidates are split into groups).
    input_mean, input_std: when given, solutions are C in standardised input coordinates
        (x - mean) / std and are folded into ordinary parameters before they play (`params`).
    workers: 1 dreams in this process (with torch's threads); more splits the candidates over that
        many processes of one thread each (wmlib.evaluators.ProcessPoolEvaluator), on the CPU, with
        a copy of M as it is when the evaluator is made (later changes to M do not reach them). They
        start at the first call. The returns are the serial ones on the CPU: every dream has its own
        random stream. Close it (or use `with`) to stop them. An EvaluatorConfig instead of a number
        chooses the kind too: EvaluatorConfig("ray", 8) dreams on 8 Ray actors (M and the starts
        go through Ray's object store once).
    """

    mdnrnn: MDNRNN
    starts: StartLatents
    controller: ControllerConfig
    config: DreamConfig = dataclasses.field(default_factory=DreamConfig)
    max_batch: int = 4096
    input_mean: np.ndarray | None = None
    input_std: np.ndarray | None = None
    workers: int | EvaluatorConfig = 1
    _evaluator: Evaluator = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        if isinstance(self.workers, EvaluatorConfig):
            spread = self.workers
        elif isinstance(self.workers, int) and self.workers >= 1:
            spread = EvaluatorConfig(workers=self.workers)
        else:
            raise ValueError(f"workers must be a positive integer or an EvaluatorConfig, got {self.workers!r}")
        if spread.serial:
            batch = DreamBatch(self.mdnrnn, self.starts, self.controller, self.config, self.max_batch)
            self._evaluator = SerialEvaluator(batch_fn=batch)
        else:
            m = copy.deepcopy(self.mdnrnn).cpu().eval()
            starts = StartLatents(*(torch.as_tensor(x).cpu() for x in self.starts))
            batch = DreamBatch(m, starts, self.controller, self.config, self.max_batch)
            self._evaluator = make_evaluator(batch_fn=batch, config=spread)

    def params(self, solutions: np.ndarray) -> np.ndarray:
        """Search coordinates (N, P) or (P,) -> the LinearController's flat parameters, same shape."""
        solutions = np.asarray(solutions, dtype=np.float64)
        if self.input_mean is None:
            return solutions
        if solutions.ndim == 1:
            return fold_standardization(solutions, self.input_mean, self.input_std, self.controller.action_dim)
        return np.stack([self.params(theta) for theta in solutions])

    def __call__(self, solutions: np.ndarray, seeds: Sequence[int]) -> Evaluation:
        return self._evaluator(self.params(solutions), [int(s) for s in seeds])

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        self._evaluator.close()

    def __enter__(self) -> DreamEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Training C entirely in the dream
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DreamTrainResult:
    """What `train_controller_in_dream` returns.

    controller: C with ordinary parameters (the standardisation folded in), for a WorldModelAgent
    cma:        wmlib.cmaes.CMAResult (history per generation; its "env_steps" are dream steps)
    picked:     "best" (the best candidate seen) or "mean" (CMA-ES's final mean), by `selection`
    selection:  mean dream return of each on `select_episodes` fresh dreams
    input_mean, input_std: the standardisation of C's inputs CMA-ES searched in
    dream_steps: every dream step taken (training and selection)
    """

    controller: LinearController
    cma: CMAResult
    picked: str
    selection: dict[str, float]
    input_mean: np.ndarray
    input_std: np.ndarray
    dream_steps: int

    @property
    def history(self) -> list[dict]:
        return self.cma.history


def train_controller_in_dream(mdnrnn: MDNRNN, episodes: Sequence[dict], controller: ControllerConfig,
                              cma_config: CMAESConfig | None = None, dream_config: DreamConfig | None = None, *,
                              seed: int = 0, x0_params: np.ndarray | None = None, select_episodes: int = 64,
                              max_batch: int = 4096, record: bool = False, progress: bool = True,
                              desc: str = "CMA-ES generations (in the dream)",
                              workers: int | EvaluatorConfig = 1) -> DreamTrainResult:
    """Train C with CMA-ES without a single real step: every candidate plays in M's dream.

    episodes:  real encoded episodes (mu, logvar (T+1, Z), actions (T, A)): where dreams start, and
               the statistics of C's inputs (`dream_input_statistics`); they cost no new real steps
    x0_params: ordinary parameters of a C to start the search from (the last round's, say)
    workers:   processes that dream (DreamEvaluator.workers; 1: this process; or an EvaluatorConfig)
    Then picks between CMA-ES's best candidate and its final mean on fresh dreams.
    """
    cma_config = CMAESConfig() if cma_config is None else cma_config
    dream_config = DreamConfig() if dream_config is None else dream_config
    if mdnrnn.reward_head is None and mdnrnn.done_head is None:
        raise ValueError("M predicts neither the reward nor the end of an episode, so in its dream every controller "
                         "scores the same (+1 per step until the step limit): train M with predict_done or "
                         "predict_reward (the CarRacing preset has neither; the paper trains the car's C for real)")
    mean, std = dream_input_statistics(mdnrnn, episodes)
    if len(mean) != controller.z_dim + controller.h_dim:
        raise ValueError(f"the controller reads {controller.z_dim} + {controller.h_dim} inputs, but M's [z; h] "
                         f"has {len(mean)}")
    c = LinearController(controller)
    x0 = np.zeros(c.num_params) if x0_params is None else unfold_standardization(x0_params, mean, std,
                                                                                 controller.action_dim)
    with DreamEvaluator(mdnrnn, start_latents(episodes), controller, dream_config, max_batch=max_batch,
                        input_mean=mean, input_std=std, workers=workers) as evaluator:
        cma = train_cmaes(evaluator, x0, cma_config, seed=seed, record=record, progress=progress, desc=desc)
        select_seeds = np.random.default_rng((seed, 1)).integers(0, 2**31 - 1, size=select_episodes)
        picks = evaluator(np.stack([cma.best_params, cma.mean]), select_seeds)
    selection = {"best": float(picks.returns[0].mean()), "mean": float(picks.returns[1].mean())}
    picked = "best" if selection["best"] >= selection["mean"] else "mean"
    c.set_flat_params(evaluator.params(cma.best_params if picked == "best" else cma.mean))
    return DreamTrainResult(c, cma, picked, selection, mean, std, cma.total_env_steps + int(picks.steps.sum()))


def _train_one_in_dream(kwargs: dict) -> DreamTrainResult:
    """One run of `train_controller_in_dream` in a worker process (one torch thread, no progress bar)."""
    torch.set_num_threads(1)
    return train_controller_in_dream(**kwargs, progress=False)


def train_controllers_in_dreams(mdnrnn: MDNRNN, episodes: Sequence[dict], controller: ControllerConfig,
                                cma_config: CMAESConfig, dream_configs: Sequence[DreamConfig], *, seed: int = 0,
                                select_episodes: int = 64, workers: int = 1) -> list[DreamTrainResult]:
    """`train_controller_in_dream` once per dream (a temperature sweep, say), up to `workers` runs at a time.

    dream_configs: one DreamConfig per run; every run gets the same `seed`, CMA-ES config and episodes
    workers:       1: the runs one after another in this process; more: that many worker processes, each run
                   on one torch thread. The runs are independent and seeded, so the results are the ones the
                   loop gives on one thread (tests/test_dream.py checks it).
    Returns the results in the order of `dream_configs`.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    runs = [dict(mdnrnn=mdnrnn, episodes=list(episodes), controller=controller, cma_config=cma_config,
                 dream_config=config, seed=seed, select_episodes=select_episodes) for config in dream_configs]
    if workers == 1 or len(runs) <= 1:
        return [train_controller_in_dream(**run, progress=False) for run in runs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(workers, len(runs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_train_one_in_dream, runs))
