"""CMA-ES: train the controller by evolution, one generation of candidates at a time.

Why not gradients? C's fitness is the return of whole episodes in an environment we cannot
differentiate through, and it is noisy. An evolution strategy only needs to *score* candidates:

    repeat:
        ask   draw N candidate parameter vectors x_i ~ mean + sigma * N(0, C)
        score F_i = mean return of x_i over R rollouts                   (the expensive part)
        tell  move the mean towards the better candidates, and reshape C and sigma so that
              steps which paid off become more likely

CMA-ES ("covariance matrix adaptation") learns C, the shape of the search cloud: it stretches
along directions that keep paying off. The bookkeeping is done by the `cma` package; this module
is the thin layer that makes it readable: ask/tell, a seeded `numpy.random.Generator` (no global
random state), named results, optional centred-rank fitness shaping, a progress bar, and
checkpoints. Who plays the candidates is an evaluator's business (wmlib/evaluators.py: serial,
or a local process pool using every core; wmlib.dream.DreamEvaluator in the dream).

The N * R rollouts of a generation are independent, so they parallelise perfectly. Every candidate of one
generation plays the same R episode seeds (common random numbers: differences in return come
from the parameters, not from luckier starts); each generation draws fresh seeds.

Checkpoints and their trade-off. The `cma` package can only save its full state with pickle,
and loading a pickle runs arbitrary code, so we never do. We store what defines the search
distribution (mean, sigma, C), the generation, the best candidate so far, the history and the
Generator's state, in safetensors + JSON, and resume by starting a fresh CMA-ES from that mean,
sigma and C. What is lost: the evolution paths (CMA-ES's momentum-like memory of its last steps)
restart at zero, so a resumed run is not bit-for-bit the uninterrupted one; they rebuild within
a few generations. What is kept: where the search was and its shape, which is what matters.

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import cma
import numpy as np
import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from wmlib.checkpoints import CheckpointError, json_file, read_unit, write_unit
from wmlib.config import CMAESConfig
from wmlib.evaluators import Evaluator

# ---------------------------------------------------------------------------------------------
# Fitness shaping
# ---------------------------------------------------------------------------------------------


def centered_ranks(fitness) -> np.ndarray:
    """Replace each fitness by its rank, mapped linearly onto [-0.5, 0.5]; the best gets 0.5.

        rank_i = #{j : F_j < F_i}  (0 for the worst, N-1 for the best; ties broken by order)
        shaped_i = rank_i / (N - 1) - 0.5

    Only the order of the returns survives, so one lucky 500-step episode cannot drag the whole
    update towards itself. Gradient-style evolution strategies (OpenAI-ES, PEPG in the paper's
    estool) need this; CMA-ES already weighs its candidates by rank alone, so with distinct returns
    shaping changes nothing there (tests/test_cmaes.py measures that) and only ties are treated
    differently. fitness: (N,) -> (N,) float64. N = 1 gives [0.0].
    """
    f = np.asarray(fitness, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError(f"expected a 1-D array of fitness values (N,), got shape {f.shape}")
    n = f.shape[0]
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(f, kind="stable")] = np.arange(n)  # argsort gives the order; this inverts it
    return ranks / (n - 1) - 0.5 if n > 1 else np.zeros(n)


# ---------------------------------------------------------------------------------------------
# CMA-ES: ask and tell
# ---------------------------------------------------------------------------------------------


class CMAES:
    """The `cma` package's CMA-ES behind a small ask/tell interface that *maximises* fitness.

    x0: (P,) starting mean    sigma0: initial step size    population_size: N
    rng: the numpy Generator that draws every random number CMA-ES uses (seeded by the caller)
    rank_shaping: tell CMA-ES centred ranks instead of raw fitness
    """

    def __init__(self, x0, sigma0: float, population_size: int, rng: np.random.Generator, *,
                 rank_shaping: bool = False, covariance: np.ndarray | None = None):
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.ndim != 1 or x0.shape[0] < 2:
            raise ValueError(f"x0 must be a 1-D vector of at least 2 parameters, got shape {x0.shape}")
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        if not sigma0 > 0:
            raise ValueError(f"sigma0 must be positive, got {sigma0}")
        self.rng = rng
        self.rank_shaping = rank_shaping
        self._es = cma.CMAEvolutionStrategy(x0, float(sigma0), {
            "popsize": int(population_size),
            "seed": np.nan,  # do not touch numpy's global random state ...
            "randn": lambda *shape: self.rng.standard_normal(shape),  # ... draw from our Generator instead
            "verbose": -9,  # no files, no console output
            "verb_log": 0,
            "verb_disp": 0,
            "tolflatfitness": 10**9,  # a population that all scores 500 is success, not a reason to stop
        })
        if covariance is not None:
            self.covariance = covariance

    @property
    def dimension(self) -> int:
        return int(self._es.N)

    @property
    def population_size(self) -> int:
        return int(self._es.popsize)

    @property
    def mean(self) -> np.ndarray:
        """(P,) the centre of the search distribution."""
        return np.array(self._es.mean, dtype=np.float64)

    @property
    def sigma(self) -> float:
        """The overall step size."""
        return float(self._es.sigma)

    @property
    def covariance(self) -> np.ndarray:
        """(P, P) C, the shape of the search distribution (candidates ~ mean + sigma * N(0, C))."""
        return np.array(self._es.sm.C, dtype=np.float64)

    @covariance.setter
    def covariance(self, C: np.ndarray) -> None:
        C = np.asarray(C, dtype=np.float64)
        if C.shape != (self.dimension, self.dimension):
            raise ValueError(f"expected a ({self.dimension}, {self.dimension}) covariance, got {C.shape}")
        self._es.sm.C = (C + C.T) / 2
        self._es.sm.update_now(-1)  # recompute the eigendecomposition used for sampling

    def ask(self) -> np.ndarray:
        """(N, P) new candidates."""
        return np.asarray(self._es.ask(), dtype=np.float64)

    def tell(self, solutions: np.ndarray, fitness: np.ndarray) -> None:
        """Update the distribution from candidates (N, P) and their fitness (N,), higher is better."""
        fitness = np.asarray(fitness, dtype=np.float64)
        if fitness.shape != (len(solutions),):
            raise ValueError(f"expected one fitness per candidate ({len(solutions)},), got {fitness.shape}")
        if not np.all(np.isfinite(fitness)):
            raise ValueError("fitness contains NaN or inf")
        scores = centered_ranks(fitness) if self.rank_shaping else fitness
        # The one place where the sign flips: `cma` minimises a loss, we maximise a return.
        self._es.tell(list(solutions), (-scores).tolist())


# ---------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------


@dataclass
class CMAResult:
    """What `train_cmaes` returns.

    best_params:  (P,) the candidate with the highest fitness seen in any generation
    best_fitness: its fitness (mean return over its R rollouts; optimistic, being a maximum)
    mean:         (P,) the final centre of the search distribution (often the safer pick)
    sigma:        the final step size
    history:      per generation {"generation", "best", "mean", "std", "worst", "sigma",
                  "env_steps" (this generation), "total_env_steps", "wall_s"}
    trace:        with record=True, per generation {"mean", "sigma", "covariance", "solutions",
                  "fitness"} (NumPy arrays; for pictures of the search, not kept in checkpoints)
    """

    best_params: np.ndarray
    best_fitness: float
    mean: np.ndarray
    sigma: float
    history: list[dict] = field(default_factory=list)
    trace: list[dict] = field(default_factory=list)

    @property
    def total_env_steps(self) -> int:
        return int(self.history[-1]["total_env_steps"]) if self.history else 0


def save_es_checkpoint(stem, es: CMAES, result: CMAResult, config: CMAESConfig, seed: int) -> None:
    """Commit the search state (mean, covariance, best_params) and STEM.json (the rest) as one unit."""
    write_unit(stem, {"state": {
        "mean": torch.from_numpy(es.mean),
        "covariance": torch.from_numpy(es.covariance),
        "best_params": torch.from_numpy(np.asarray(result.best_params, dtype=np.float64)),
    }}, {
        "kind": "CMAESCheckpoint",
        "dimension": es.dimension,
        "sigma": es.sigma,
        "generation": len(result.history),
        "best_fitness": result.best_fitness,
        "config": asdict(config),
        "seed": seed,
        "rng_state": es.rng.bit_generator.state,
        "history": result.history,
    })


_ES_FIELDS = {"dimension": int, "sigma": float, "best_fitness": float, "config": dict, "seed": int,
              "rng_state": dict, "history": list}


def load_es_checkpoint(stem) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON dict, {"mean", "covariance", "best_params"} arrays); CheckpointError naming the file if unreadable."""
    json_path = json_file(stem)
    try:
        unit = read_unit(stem)
        meta = unit.manifest
        if meta.get("kind") != "CMAESCheckpoint" or "state" not in unit.files:
            raise CheckpointError(f"{json_path} is not a CMA-ES checkpoint written by this version of wmlib.cmaes")
        for key, kind in _ES_FIELDS.items():
            value = meta.get(key)
            if not isinstance(value, (int, float) if kind is float else kind) or isinstance(value, bool):
                raise CheckpointError(f"{json_path}: field {key!r} is {value!r:.40}, expected {kind.__name__}")
        arrays = {k: v.numpy() for k, v in load_file(str(unit.files["state"])).items()}
    except Exception as exc:  # missing file, bad JSON, incomplete unit, or not safetensors (its own error type)
        raise CheckpointError(f"cannot read the CMA-ES checkpoint {json_path}: {exc}") from exc
    n = meta["dimension"]
    shapes = {"mean": (n,), "covariance": (n, n), "best_params": (n,)}
    if any(k not in arrays or arrays[k].shape != shape or not np.isfinite(arrays[k]).all()
           for k, shape in shapes.items()):
        raise CheckpointError(f"cannot read the CMA-ES checkpoint {json_path}: its state tensors are not finite "
                              f"arrays of shapes {shapes}")
    return meta, arrays


def _resume(checkpoint, dimension: int, config: CMAESConfig, seed: int,
            rng: np.random.Generator) -> tuple[CMAES, CMAResult]:
    """The search and result saved at `checkpoint`, with `rng` set back to its saved state; a CheckpointError
    unless it was made for this dimension, seed and config (the number of generations may differ)."""
    meta, arrays = load_es_checkpoint(checkpoint)
    same = {k: v for k, v in asdict(config).items() if k != "generations"}  # a run may be extended
    saved = {k: v for k, v in meta["config"].items() if k != "generations"}
    if meta["dimension"] != dimension or saved != same or meta["seed"] != seed:
        raise CheckpointError(
            f"the CMA-ES checkpoint {checkpoint} was made for dimension {meta['dimension']}, seed "
            f"{meta['seed']} and config {meta['config']}, not for {dimension}, {seed} and "
            f"{asdict(config)}; delete it to start over")
    es = CMAES(arrays["mean"], meta["sigma"], config.population_size, rng,
               rank_shaping=config.rank_shaping, covariance=arrays["covariance"])
    rng.bit_generator.state = meta["rng_state"]
    result = CMAResult(best_params=arrays["best_params"], best_fitness=float(meta["best_fitness"]),
                       mean=es.mean, sigma=es.sigma, history=list(meta["history"]))
    return es, result


def _generation_record(gen: int, fitness: np.ndarray, sigma: float, steps: int, history: list[dict],
                       wall_s: float) -> dict:
    """One entry of CMAResult.history (see there); `history` is the list so far, for the running step count."""
    return {
        "generation": gen + 1,
        "best": float(fitness.max()),
        "mean": float(fitness.mean()),
        "std": float(fitness.std()),
        "worst": float(fitness.min()),
        "sigma": sigma,
        "env_steps": steps,
        "total_env_steps": steps + (history[-1]["total_env_steps"] if history else 0),
        "wall_s": wall_s,
    }


def train_cmaes(
    evaluator: Evaluator,
    x0,
    config: CMAESConfig | None = None,
    *,
    seed: int = 0,
    generations: int | None = None,
    target_fitness: float | None = None,
    target_mean_fitness: float | None = None,
    max_env_steps: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    record: bool = False,
    progress: bool = True,
    desc: str = "CMA-ES generations",
) -> CMAResult:
    """Run CMA-ES: per generation ask N candidates, score each over R rollouts, tell, record.

    evaluator:   scores a generation (solutions, seeds) -> Evaluation: wmlib.evaluators.SerialEvaluator,
                 ProcessPoolEvaluator, wmlib.dream.DreamEvaluator, or anything that follows the Evaluator protocol
    x0:          (P,) starting mean (zeros is fine for a controller)
    config:      population_size N, rollouts_per_candidate R, sigma0, generations, rank_shaping
                 (None: CMAESConfig(), the paper's car settings)
    generations: overrides config.generations (the total, counting generations done before a resume)
    target_fitness: stop after the first generation whose best candidate reaches it
    target_mean_fitness: stop after the first generation whose population mean fitness reaches it
                 (stricter: the whole search cloud is good, not one lucky candidate)
    max_env_steps: stop after the generation that brings the real env steps to this budget
    checkpoint:  path stem; written after every generation, and resumed from when it exists
                 (the dimension, seed and config must match, except the number of generations)
    record:      keep each generation's population and distribution in `result.trace`
    """
    config = CMAESConfig() if config is None else config
    total_generations = int(config.generations if generations is None else generations)
    rng = np.random.default_rng(seed)
    x0 = np.asarray(x0, dtype=np.float64)
    es = CMAES(x0, config.sigma0, config.population_size, rng, rank_shaping=config.rank_shaping)
    result = CMAResult(best_params=x0.copy(), best_fitness=-np.inf, mean=es.mean, sigma=es.sigma)

    if checkpoint is not None and json_file(checkpoint).exists():
        es, result = _resume(checkpoint, len(x0), config, seed, rng)

    start = time.perf_counter() - (result.history[-1]["wall_s"] if result.history else 0.0)
    bar = tqdm(range(len(result.history), total_generations), desc=desc, unit="gen", disable=not progress,
               initial=len(result.history), total=total_generations)
    for gen in bar:
        solutions = es.ask()  # (N, P)
        seeds = rng.integers(0, 2**31 - 1, size=config.rollouts_per_candidate)  # shared by all candidates
        evaluation = evaluator(solutions, seeds)
        fitness = evaluation.returns.mean(axis=1)  # (N,) mean return over the R rollouts
        if record:
            result.trace.append({"mean": es.mean, "sigma": es.sigma, "covariance": es.covariance,
                                 "solutions": solutions, "fitness": fitness})
        es.tell(solutions, fitness)
        i_best = int(np.argmax(fitness))
        if fitness[i_best] > result.best_fitness:
            result.best_fitness, result.best_params = float(fitness[i_best]), solutions[i_best].copy()
        result.history.append(_generation_record(gen, fitness, es.sigma, int(evaluation.steps.sum()), result.history,
                                                 time.perf_counter() - start))
        result.mean, result.sigma = es.mean, es.sigma
        bar.set_postfix(best=f"{fitness.max():.1f}", mean=f"{fitness.mean():.1f}", sigma=f"{es.sigma:.3g}")
        if checkpoint is not None:
            save_es_checkpoint(checkpoint, es, result, config, seed)
        if target_fitness is not None and fitness.max() >= target_fitness:
            break
        if target_mean_fitness is not None and fitness.mean() >= target_mean_fitness:
            break
        if max_env_steps is not None and result.total_env_steps >= max_env_steps:
            break
    bar.close()
    return result
