"""The iterative procedure: learn the world from a little real data, practise in the dream, go back
to reality for data where the dream was wrong, and repeat (the paper's section on iterative training).

    round 0:        play random episodes in the real env; train V on their frames
    every round k:  (k > 0) refresh V on every frame so far, continuing from round k-1's V
                    encode the episodes with V; train M on every episode so far
                    (continuing from round k-1's M)
                    train C with CMA-ES entirely in the dream (batched: a whole population at once)
                    play C in the real env without exploration: its real score this round
                    play C with exploration: more real episodes, where the dream was least right
    stop at the real step budget, after `rounds` rounds, or once the real score reaches the target;
    the result is the C (and its M) of the round with the best real score

Every real env step is counted (random data, C's data and the per-round scoring); dream steps
are counted apart. A final evaluation over many episodes (`final_eval_episodes`) measures the
result and is reported separately, like a benchmark's test set.

    result = run_pipeline(PipelineConfig(), "data/pipeline", seed=0)
    result.report["rounds"][-1]["real_score"]["mean"], result.report["real_steps"]

`run_pipeline` is a loop over rounds; each round runs the named stages below in order (collect,
train V, encode, train M, train C in the dream, score and explore in reality), each a short function
of the run's state (`_Run`).

`python -m wmlib pipeline --env cartpole-pixels ...` runs it and writes WORK/report.json.

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from wmlib.agent import ControllerRollout, WorldModelAgent
from wmlib.checkpoints import read_metadata, resolve, save_checkpoint, save_json
from wmlib.config import MDNRNNConfig, PipelineConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.dream_training import DreamTrainResult, train_controller_in_dream
from wmlib.envs import make_env
from wmlib.evaluators import EvaluatorConfig
from wmlib.latents import encode_episodes
from wmlib.lockstep import LockstepEvaluator
from wmlib.mdnrnn import MDNRNN, preset_config, train_mdnrnn
from wmlib.rollouts import play_episode, save_episode
from wmlib.tasks import world_spec
from wmlib.vae import ConvVAE, load_vae, train_vae

REAL_SEED_BASE = 10_000_000
"""Real episodes of a run use seeds REAL_SEED_BASE + 100,000 * seed + i (apart from the evaluation range)."""


# ---------------------------------------------------------------------------------------------
# Real episodes played by the agent, recorded in the rollout-file layout
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def play_agent_episode(env, agent: WorldModelAgent, *, seed: int, epsilon: float = 0.0,
                       rng: np.random.Generator | None = None, max_steps: int | None = None) -> dict:
    """One real episode of V+M+C, recorded by `wmlib.rollouts.play_episode` (frames, actions, ...).

    With probability epsilon a step takes a random action instead of C's (exploration); M then
    remembers the action that was really taken.
    """
    rng = np.random.default_rng(seed) if rng is None else rng

    def act(obs, info):
        z, action = agent.decide(obs)
        if epsilon > 0 and rng.random() < epsilon:
            action = env.action_space.sample()
        agent.remember(z, action)
        return action

    agent.reset()
    return play_episode(env, act, seed=seed, max_steps=max_steps)


# ---------------------------------------------------------------------------------------------
# The run's state, and what the stages return
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PipelineResult:
    """What `run_pipeline` returns: the JSON report (also in WORK/report.json) and the final V, M, C.

    report: {"config" (M's resolved), "seed", "real_steps", "dream_steps", "picked_round", "rounds": [per
             round: "round", "m_episodes", "real_steps", "real_steps_total", "dream_steps",
             "dream_steps_total", "dream_score", "real_score" {"mean", "std", "episodes"}, "m_nll",
             "seconds" per stage], "final" (with final_eval_episodes), "wall_time_s"}
    controller, mdnrnn, vae: the C (ordinary, folded parameters), M and V of the round whose real score
                was best (`picked_round`): a later round's C can score worse, and those scores are real
    """

    report: dict
    vae: ConvVAE
    mdnrnn: MDNRNN
    controller: LinearController


class RoundAgent(NamedTuple):
    """The V, M and C of one round, with C's mean real score (None when the budget left no episode)."""

    round: int
    real_score: float | None
    vae: ConvVAE
    mdnrnn: MDNRNN
    controller: LinearController


class RealPlay(NamedTuple):
    """What a round did in reality: C's scoring returns, and every episode it played (M's next data)."""

    returns: list[float]
    episodes: list[dict]


@dataclasses.dataclass
class _Run:
    """A pipeline run in progress: its settings, the real env and budget, and what the stages have made."""

    config: PipelineConfig
    m_config: MDNRNNConfig
    work: Path
    seed: int
    progress: bool
    dream_workers: int | EvaluatorConfig
    env: gym.Env
    rng: np.random.Generator  # exploration
    next_seed: int
    start_vae: str | os.PathLike | None = None  # a trained V that round 0 keeps instead of training one
    vae_epochs_done: int = 0  # V's epochs after round 0 (the start V's own, or vae_epochs)
    steps_used: int = 0
    dream_steps: int = 0
    vae: ConvVAE | None = None
    mdnrnn: MDNRNN | None = None
    controller: LinearController | None = None
    latents: list[dict] = dataclasses.field(default_factory=list)  # M's data: every real episode, encoded
    real_episodes: list[dict] = dataclasses.field(default_factory=list)  # every real episode so far, in order

    @property
    def steps_left(self) -> int:
        return max(self.config.real_step_budget - self.steps_used, 0)

    def seeds(self, n: int) -> np.ndarray:
        """The next n real episode seeds of this run."""
        out = np.arange(self.next_seed, self.next_seed + n)
        self.next_seed += n
        return out

    def episode_cap(self, left: int) -> int:
        """Steps the next real episode may take: what the budget has left, and at most max_episode_steps."""
        return min(left, self.config.max_episode_steps or left)

    def checkpoint_metadata(self, k: int, **extra) -> dict:
        return {"seed": self.seed, "pipeline": str(self.work), "round": k, **extra}


def _start(config: PipelineConfig, work_dir, seed: int, progress: bool,
           dream_workers: int | EvaluatorConfig, start_vae: str | os.PathLike | None) -> _Run:
    """Check the config and the work dir, open the real env: a run before its first round."""
    world = world_spec(config.env_name)
    m_config = preset_config(config.env_name, config.vae.z_dim) if config.mdnrnn is None else config.mdnrnn
    world.check_dream(m_config)
    work = Path(work_dir)
    if (work / "report.json").exists():
        raise FileExistsError(f"{work} already holds a pipeline run (report.json); choose another work dir "
                              "or delete it")
    work.mkdir(parents=True, exist_ok=True)
    env = make_env(config.env_name, max_episode_steps=config.max_episode_steps)
    env.action_space.seed(seed)
    return _Run(config, m_config, work, seed, progress, dream_workers, env, np.random.default_rng(seed),
                next_seed=REAL_SEED_BASE + 100_000 * seed, start_vae=start_vae, vae_epochs_done=config.vae_epochs)


# ---------------------------------------------------------------------------------------------
# The stages
# ---------------------------------------------------------------------------------------------


def _collect(run: _Run, n: int, out_dir: Path, play: Callable[[int, int], dict], desc: str) -> list[dict]:
    """Play up to n episodes with play(seed, steps_left) -> episode, saving each; stop when the budget is spent."""
    seeds = run.seeds(n)
    episodes = []
    bar = tqdm(range(n), desc=desc, unit="episode", disable=not run.progress, leave=False)
    for i in bar:
        if run.steps_left == 0:
            break
        episode = play(int(seeds[i]), run.steps_left)
        run.steps_used += len(episode["actions"])
        save_episode(out_dir / f"episode_{i:05d}.npz", episode)
        episodes.append(episode)
        bar.set_postfix(real_steps=run.steps_used)
    bar.close()
    return episodes


def _collect_random(run: _Run, round_dir: Path) -> list[dict]:
    """Stage "collect" (round 0): random real episodes, the data V and M first learn from."""
    env = run.env

    def play(episode_seed: int, left: int) -> dict:
        return play_episode(env, lambda obs, info: env.action_space.sample(), seed=episode_seed,
                            max_steps=run.episode_cap(left))

    return _collect(run, run.config.random_episodes, round_dir, play, "round 0: random real episodes")


def _train_v(run: _Run, k: int) -> ConvVAE:
    """Stage "train V": on round 0's frames; later rounds refresh V on every frame so far.

    V has only seen random play; C's episodes show places it never went, so later rounds continue
    from the last V on all the data (M then continues on the re-encoded latents; they move little).
    """
    c = run.config
    if k == 0 and run.start_vae is not None:
        vae = _keep_start_vae(run)
    else:
        files = (run.work / "rollouts").glob("round_00/*.npz" if k == 0 else "**/*.npz")
        vae = train_vae(sorted(files), c.vae, epochs=run.vae_epochs_done + k * c.vae_epochs_per_round,
                        seed=run.seed, checkpoint=run.work / "vae_train", progress=run.progress,
                        continue_on_new_data=k > 0).vae.cpu().eval()
    save_checkpoint(vae, c.vae, run.work / "vae", metadata=run.checkpoint_metadata(k))
    return vae


def _keep_start_vae(run: _Run) -> ConvVAE:
    """Round 0 with a V trained elsewhere (e.g. the shipped one): keep it, and let later rounds refresh it.

    Its files become the run's V work checkpoint, which later rounds continue from (its weights and
    epochs, a fresh optimizer), so the V that C acts on keeps learning the places C takes the cart.
    """
    vae = load_vae(run.start_vae)
    if vae.config != run.config.vae:
        raise ValueError(f"the start V {run.start_vae} has {vae.config}, but the pipeline asks for V "
                         f"{run.config.vae}: give the pipeline the start V's config (PipelineConfig(vae=...))")
    stem, _ = resolve(run.start_vae, "vae")
    for suffix in (".json", ".safetensors"):
        shutil.copyfile(stem.with_name(stem.name + suffix), run.work / f"vae_train{suffix}")
    run.vae_epochs_done = len(read_metadata(run.start_vae, "vae").get("history", []))
    return vae.cpu().eval()


def _encode(run: _Run, new: list[dict], reencode: bool) -> None:
    """Stage "encode": V's latents of the new episodes (or of every episode, after V changed) for M."""
    if reencode:
        run.latents = encode_episodes(run.vae, run.real_episodes, run.m_config.action_dim)
    else:
        run.latents += encode_episodes(run.vae, new, run.m_config.action_dim)


def _train_m(run: _Run, k: int) -> tuple[MDNRNN, float]:
    """Stage "train M": on every episode so far, continuing from the last round's M. Returns M and its last NLL."""
    c = run.config
    result = train_mdnrnn(run.latents, run.m_config, epochs=c.mdn_epochs_first + k * c.mdn_epochs_per_round,
                          seed=run.seed, checkpoint=run.work / "mdnrnn_train", progress=run.progress,
                          continue_on_new_data=True)  # M grows with every round
    return result.model.cpu().eval(), float(result.history[-1]["nll"])


def _train_c_in_dream(run: _Run, k: int) -> DreamTrainResult:
    """Stage "train C in the dream": CMA-ES over standardised inputs, warm-started from the last round's C."""
    c = run.config
    c_config = controller_config_for(c.env_name, c.vae.z_dim, run.m_config.hidden_size)
    return train_controller_in_dream(
        run.mdnrnn, run.latents, c_config, c.cmaes, c.dream, seed=run.seed * 1000 + k,
        x0_params=None if run.controller is None else run.controller.get_flat_params(),
        select_episodes=c.select_episodes, progress=run.progress, desc=f"round {k}: CMA-ES in the dream",
        workers=run.dream_workers)


def _play_in_reality(run: _Run, k: int, round_dir: Path, seconds: dict) -> RealPlay:
    """Stages "evaluate" and "explore": score C without exploration, then (unless the run ends here) let it
    explore for M's next data. Both are real episodes, counted in the budget and kept as data."""
    c = run.config
    agent = WorldModelAgent(run.vae, run.mdnrnn, run.controller, run.env.action_space, seed=run.seed)

    def player(epsilon: float):
        def play(episode_seed: int, left: int) -> dict:
            return play_agent_episode(run.env, agent, seed=episode_seed, epsilon=epsilon, rng=run.rng,
                                      max_steps=run.episode_cap(left))
        return play

    t0 = time.perf_counter()
    scored = _collect(run, c.eval_episodes, round_dir / "scored", player(0.0), f"round {k}: scoring C in the real env")
    returns = [float(ep["rewards"].sum()) for ep in scored]
    seconds["evaluate"] = time.perf_counter() - t0
    if _reached(c, returns) or k + 1 >= c.rounds:
        return RealPlay(returns, list(scored))
    t0 = time.perf_counter()
    explored = _collect(run, c.episodes_per_round, run.work / "rollouts" / f"round_{k + 1:02d}",
                        player(c.exploration), f"round {k}: C explores the real env")
    seconds["collect_next"] = time.perf_counter() - t0
    return RealPlay(returns, list(scored) + explored)


def _reached(config: PipelineConfig, returns: list[float]) -> bool:
    return bool(returns) and config.target_return is not None and np.mean(returns) >= config.target_return


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def _run_round(run: _Run, k: int, new: list[dict]) -> tuple[RoundAgent, RealPlay, dict]:
    """One round: (round 0: collect, train V) encode, train M, train C in the dream, play for real.

    new: the real episodes the last round played (ignored in round 0, which collects its own).
    Returns the round's agent and real play, and its record for the report.
    """
    c = run.config
    seconds, t0, steps_before = {}, time.perf_counter(), run.steps_used
    round_dir = run.work / "rollouts" / f"round_{k:02d}"
    if k == 0:
        new = _collect_random(run, round_dir)
        seconds["collect"] = time.perf_counter() - t0
    run.real_episodes += new
    refresh_v = k == 0 or (c.vae_epochs_per_round > 0 and bool(new))
    if refresh_v:
        t0 = time.perf_counter()
        run.vae = _train_v(run, k)
        seconds["vae"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _encode(run, new, reencode=refresh_v and k > 0)
    run.mdnrnn, m_nll = _train_m(run, k)
    seconds["mdnrnn"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained = _train_c_in_dream(run, k)
    run.controller, run.dream_steps = trained.controller, run.dream_steps + trained.dream_steps
    seconds["controller"] = time.perf_counter() - t0
    real = _play_in_reality(run, k, round_dir, seconds)
    save_checkpoint(run.controller, run.controller.config, run.work / f"controller_round_{k:02d}",
                    metadata={"seed": run.seed, "round": k, "picked": trained.picked})
    returns = real.returns
    record = {
        "round": k, "m_episodes": len(run.latents), "real_steps": run.steps_used - steps_before,
        "real_steps_total": run.steps_used, "dream_steps": trained.dream_steps,
        "dream_steps_total": run.dream_steps, "dream_score": trained.selection[trained.picked],
        "real_score": {"mean": float(np.mean(returns)) if returns else None,
                       "std": float(np.std(returns)) if returns else None, "episodes": len(returns)},
        "m_nll": m_nll, "seconds": {name: round(s, 1) for name, s in seconds.items()},
    }
    agent = RoundAgent(k, record["real_score"]["mean"], run.vae, run.mdnrnn, run.controller)
    return agent, real, record


def _final_evaluation(run: _Run, picked: RoundAgent, episodes: int) -> dict:
    """Real episodes on the evaluation seeds that measure the picked agent (not counted in the budget).

    Played side by side (wmlib.lockstep: the same episodes as one at a time, about 3x faster) with the
    picked V, M and C, which run_pipeline has just saved in the work dir."""
    t0 = time.perf_counter()
    rollout = ControllerRollout(run.config.env_name, str(run.work / "vae"), str(run.work / "mdnrnn"),
                                picked.controller.config, max_steps=run.config.max_episode_steps)
    final = LockstepEvaluator(rollout).evaluate(picked.controller.get_flat_params(), episodes,
                                                desc="final evaluation in the real env", progress=run.progress)
    return {"episodes": episodes, "mean": final.mean, "std": final.std, "env_steps": final.env_steps,
            "seconds": round(time.perf_counter() - t0, 1)}


def run_pipeline(config: PipelineConfig | None = None, work_dir: str | os.PathLike = "data/pipeline", *,
                 seed: int = 0, final_eval_episodes: int = 0, progress: bool = True,
                 dream_workers: int | EvaluatorConfig = 1,
                 start_vae: str | os.PathLike | None = None) -> PipelineResult:
    """Run the iterative procedure of the module docstring; write WORK/report.json after every round.

    work_dir must not hold an earlier run (its episodes, V, M and C land there).
    final_eval_episodes: real episodes that measure the final C afterwards (not counted as training steps).
    dream_workers: processes that dream while C trains, or an EvaluatorConfig (e.g. Ray actors); the
        result is the same (wmlib.dream_training.DreamEvaluator).
    start_vae: a trained V (a shipped name such as "cartpole", or a checkpoint path) that round 0 keeps
        instead of training one on its random episodes; later rounds refresh it as usual. Its config must be
        `config.vae`. The real steps its own data cost are not counted here (the shipped V's are in
        assets/README.md).
    """
    config = PipelineConfig() if config is None else config
    start = time.perf_counter()
    run = _start(config, work_dir, seed, progress, dream_workers, start_vae)
    report = {"config": dataclasses.asdict(dataclasses.replace(config, mdnrnn=run.m_config)), "seed": seed,
              "real_steps": 0, "dream_steps": 0, "rounds": []}
    best: RoundAgent | None = None  # the result: the best C as scored for real
    new: list[dict] = []
    rounds_bar = tqdm(range(config.rounds), desc="pipeline rounds", unit="round", disable=not progress)
    for k in rounds_bar:
        agent, real, record = _run_round(run, k, new)
        new = real.episodes
        if agent.real_score is not None and (best is None or agent.real_score > best.real_score):
            best = agent
        report["rounds"].append(record)
        report.update(real_steps=run.steps_used, dream_steps=run.dream_steps,
                      wall_time_s=round(time.perf_counter() - start, 1))
        save_json(run.work / "report.json", report)
        rounds_bar.set_postfix(real_steps=run.steps_used, score=agent.real_score)
        if _reached(config, real.returns) or run.steps_left == 0:
            break
    rounds_bar.close()
    picked = best if best is not None else agent
    if best is not None:
        report["picked_round"] = best.round
    meta = {"seed": seed, "round": report.get("picked_round")}
    for part in ("controller", "mdnrnn", "vae"):
        model = getattr(picked, part)
        save_checkpoint(model, model.config, run.work / part, metadata=meta)
    if final_eval_episodes > 0:
        report["final"] = _final_evaluation(run, picked, final_eval_episodes)
    report["wall_time_s"] = round(time.perf_counter() - start, 1)
    save_json(run.work / "report.json", report)
    run.env.close()
    return PipelineResult(report, picked.vae, picked.mdnrnn, picked.controller)
