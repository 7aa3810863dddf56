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

`python -m wmlib pipeline --env cartpole-pixels ...` runs it and writes WORK/report.json.

Introduced in: course/05_dream.ipynb
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wmlib.checkpoints import save_checkpoint, save_json
from wmlib.config import CMAESConfig, DreamConfig, PipelineConfig, VAEConfig
from wmlib.controller import LinearController, controller_config_for
from wmlib.envs import encode_actions, make_env
from wmlib.rollouts import play_episode, save_episode

REAL_SEED_BASE = 10_000_000
"""Real episodes of a run use seeds REAL_SEED_BASE + 100,000 * seed + i (apart from the evaluation range)."""


# ---------------------------------------------------------------------------------------------
# Real episodes played by the agent, recorded in the rollout-file layout
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def play_agent_episode(env, agent, *, seed: int, epsilon: float = 0.0, rng: np.random.Generator | None = None,
                       max_steps: int | None = None) -> dict:
    """One real episode of V+M+C, recorded like `wmlib.rollouts.play_episode` (frames, actions, ...).

    With probability epsilon a step takes a random action instead of C's (exploration); M then
    remembers the action that was really taken. agent: a wmlib.agent.WorldModelAgent.
    """
    rng = np.random.default_rng(seed) if rng is None else rng
    obs, _ = env.reset(seed=seed)
    agent.reset()
    frames, actions, rewards, terminated, truncated = [obs], [], [], [], []
    while True:
        z = agent.encode(obs)
        action = agent.controller.act(z, agent.h if agent.mdnrnn is not None else None)
        if epsilon > 0 and rng.random() < epsilon:
            action = env.action_space.sample()
        if agent.mdnrnn is not None:
            a = encode_actions(np.asarray([action]) if np.ndim(action) == 0 else np.asarray(action)[None],
                               env.action_space)
            agent.state = agent.mdnrnn.step(z[None], torch.from_numpy(a), agent.state).state
        obs, reward, term, trunc, _ = env.step(action)
        if max_steps is not None and len(actions) + 1 >= max_steps:
            trunc = True
        frames.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        if term or trunc:
            break
    discrete = np.ndim(actions[0]) == 0
    return {"frames": np.stack(frames),
            "actions": np.asarray(actions, np.int64) if discrete else np.asarray(actions, np.float32),
            "rewards": np.asarray(rewards, np.float32), "terminated": np.asarray(terminated, bool),
            "truncated": np.asarray(truncated, bool)}


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PipelineResult:
    """What `run_pipeline` returns: the JSON report (also in WORK/report.json) and the final V, M, C.

    report: {"config", "seed", "real_steps", "dream_steps", "picked_round", "rounds": [per round:
             "round", "episodes", "real_steps", "real_steps_total", "dream_steps", "dream_steps_total",
             "dream_score", "real_score" {"mean", "std", "episodes"}, "m_nll", "seconds" per stage],
             "final" (with final_eval_episodes), "wall_time_s"}
    controller, mdnrnn, vae: the C (ordinary, folded parameters), M and V of the round whose real score
                was best (`picked_round`): a later round's C can score worse, and those scores are real
    """

    report: dict
    vae: object
    mdnrnn: object
    controller: LinearController


class _Budget:
    """Counts real env steps and says how many are left."""

    def __init__(self, total: int, used: int = 0):
        self.total, self.used = int(total), int(used)

    @property
    def left(self) -> int:
        return max(self.total - self.used, 0)


def _agent_player(env, agent, epsilon: float, rng: np.random.Generator, max_episode_steps: int | None):
    """play(seed, steps_left) -> one recorded episode of the agent (see `_collect`)."""

    def play(episode_seed: int, left: int) -> dict:
        return play_agent_episode(env, agent, seed=episode_seed, epsilon=epsilon, rng=rng,
                                  max_steps=min(left, max_episode_steps or left))

    return play


def _collect(env, budget: _Budget, n: int, out_dir: Path, seeds, play, desc: str, progress: bool) -> list[dict]:
    """Play up to n episodes with play(seed, max_steps) -> episode, saving each; stop when the budget is spent."""
    episodes = []
    bar = tqdm(range(n), desc=desc, unit="episode", disable=not progress, leave=False)
    for i in bar:
        if budget.left == 0:
            break
        episode = play(int(seeds[i]), budget.left)
        budget.used += len(episode["actions"])
        save_episode(out_dir / f"episode_{i:05d}.npz", episode)
        episodes.append(episode)
        bar.set_postfix(real_steps=budget.used)
    bar.close()
    return episodes


def run_pipeline(config: PipelineConfig | None = None, work_dir: str | os.PathLike = "data/pipeline", *,
                 seed: int = 0, final_eval_episodes: int = 0, progress: bool = True,
                 dream_workers: int = 1) -> PipelineResult:
    """Run the iterative procedure of the module docstring; write WORK/report.json after every round.

    work_dir must not hold an earlier run (its episodes, V, M and C land there).
    final_eval_episodes: real episodes that measure the final C afterwards (not counted as training steps).
    dream_workers: processes that dream while C trains (wmlib.dream.DreamEvaluator; it does not change the result).
    """
    from wmlib.agent import EVAL_SEED_START, WorldModelAgent
    from wmlib.agent import play_episode as play_agent
    from wmlib.dream import train_controller_in_dream
    from wmlib.mdnrnn import encode_episodes, preset_config, train_mdnrnn
    from wmlib.vae import train_vae

    config = PipelineConfig() if config is None else config
    if config.rounds < 1 or config.random_episodes < 1:
        raise ValueError(f"need at least one round and one random episode, got {config}")
    m_preset = preset_config(config.env_name, config.z_dim)
    if not (m_preset.predict_done or m_preset.predict_reward):
        raise ValueError(f"M for {config.env_name} predicts neither the reward nor the end, so C cannot be trained "
                         "in its dream; the pipeline supports cartpole-pixels")
    work = Path(work_dir)
    if (work / "report.json").exists():
        raise FileExistsError(f"{work} already holds a pipeline run (report.json); choose another work dir "
                              "or delete it")
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    env = make_env(config.env_name, max_episode_steps=config.max_episode_steps)
    env.action_space.seed(seed)
    budget = _Budget(config.real_step_budget)
    rng = np.random.default_rng(seed)  # exploration
    base = REAL_SEED_BASE + 100_000 * seed
    next_seed = base

    def seeds(n):
        nonlocal next_seed
        out = np.arange(next_seed, next_seed + n)
        next_seed += n
        return out

    report = {"config": dataclasses.asdict(config), "seed": seed, "real_steps": 0, "dream_steps": 0, "rounds": []}
    dream_steps = 0
    rounds_bar = tqdm(range(config.rounds), desc="pipeline rounds", unit="round", disable=not progress)
    vae = mdnrnn = controller = None
    latents: list[dict] = []
    real_episodes: list[dict] = []  # every real episode so far (frames included), in order
    collected: list[dict] = []  # the real episodes of the last round, for M's next round
    m_config = m_preset  # M's config (the preset for the env)
    best = None  # (real score, round, C, M, V) of the best-scoring round so far
    for k in rounds_bar:
        seconds, t0, steps_before = {}, time.perf_counter(), budget.used
        round_dir = work / "rollouts" / f"round_{k:02d}"
        if k == 0:
            def random_play(episode_seed, left):
                return play_episode(env, lambda obs, info: env.action_space.sample(), seed=episode_seed,
                                    max_steps=min(left, config.max_episode_steps or left))
            new = _collect(env, budget, config.random_episodes, round_dir, seeds(config.random_episodes),
                           random_play, "round 0: random real episodes", progress)
            seconds["collect"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            vae_config = VAEConfig(z_dim=config.z_dim, learning_rate=config.vae_learning_rate,
                                   batch_size=config.vae_batch_size)
            vae = train_vae(sorted(round_dir.glob("*.npz")), vae_config, epochs=config.vae_epochs, seed=seed,
                            checkpoint=work / "vae_train", progress=progress).vae.cpu().eval()
            save_checkpoint(vae, vae_config, work / "vae", metadata={"seed": seed, "pipeline": str(work), "round": 0})
            seconds["vae"] = time.perf_counter() - t0
        else:
            new = collected
        real_episodes += new
        t0 = time.perf_counter()
        if k > 0 and config.vae_epochs_per_round > 0 and new:
            # V has only seen random play; C's episodes show places it never went. Refresh V on every frame,
            # then re-encode every episode (M continues on the new latents; they move little per round).
            vae = train_vae(sorted(work.glob("rollouts/**/*.npz")), vae_config,
                            epochs=config.vae_epochs + k * config.vae_epochs_per_round, seed=seed,
                            checkpoint=work / "vae_train", progress=progress,
                            continue_on_new_data=True).vae.cpu().eval()
            save_checkpoint(vae, vae_config, work / "vae", metadata={"seed": seed, "pipeline": str(work), "round": k})
            seconds["vae"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            latents = encode_episodes(vae, real_episodes, m_config.action_dim)
        else:
            latents += encode_episodes(vae, new, m_config.action_dim)
        epochs = config.mdn_epochs_first + k * config.mdn_epochs_per_round
        m_result = train_mdnrnn(latents, m_config, epochs=epochs, seed=seed, checkpoint=work / "mdnrnn_train",
                                progress=progress, continue_on_new_data=True)  # M grows with every round
        mdnrnn = m_result.model.cpu().eval()
        seconds["mdnrnn"] = time.perf_counter() - t0

        # C in the dream: CMA-ES over standardised inputs, warm-started from the last round's C.
        t0 = time.perf_counter()
        c_config = controller_config_for(config.env_name, config.z_dim, m_config.hidden_size)
        trained = train_controller_in_dream(
            mdnrnn, latents, c_config,
            CMAESConfig(population_size=config.cma_population, rollouts_per_candidate=config.cma_rollouts,
                        sigma0=config.cma_sigma0, generations=config.cma_generations),
            DreamConfig(temperature=config.temperature, done_threshold=config.done_threshold,
                        max_steps=config.dream_max_steps, precision=config.dream_precision),
            seed=seed * 1000 + k, x0_params=None if controller is None else controller.get_flat_params(),
            select_episodes=config.select_episodes, progress=progress, desc=f"round {k}: CMA-ES in the dream",
            workers=dream_workers)
        controller = trained.controller
        dream_steps += trained.dream_steps
        seconds["controller"] = time.perf_counter() - t0

        # Back to reality: score C, then collect C's episodes with exploration for the next round.
        t0 = time.perf_counter()
        agent = WorldModelAgent(vae, mdnrnn, controller, env.action_space, seed=seed)

        scored = _collect(env, budget, config.eval_episodes, round_dir / "scored", seeds(config.eval_episodes),
                          _agent_player(env, agent, 0.0, rng, config.max_episode_steps),
                          f"round {k}: scoring C in the real env", progress)
        returns = [float(ep["rewards"].sum()) for ep in scored]
        seconds["evaluate"] = time.perf_counter() - t0
        reached = bool(returns) and config.target_return is not None and np.mean(returns) >= config.target_return
        if returns and (best is None or np.mean(returns) > best[0]):
            best = (float(np.mean(returns)), k, controller, mdnrnn, vae)  # the result: the best C as scored for real
        collected = list(scored)
        if not reached and k + 1 < config.rounds:
            t0 = time.perf_counter()
            collected += _collect(env, budget, config.episodes_per_round, work / "rollouts" / f"round_{k + 1:02d}",
                                  seeds(config.episodes_per_round),
                                  _agent_player(env, agent, config.exploration, rng, config.max_episode_steps),
                                  f"round {k}: C explores the real env", progress)
            seconds["collect_next"] = time.perf_counter() - t0
        save_checkpoint(controller, c_config, work / f"controller_round_{k:02d}",
                        metadata={"seed": seed, "round": k, "picked": trained.picked})
        record = {
            "round": k, "m_episodes": len(latents), "real_steps": budget.used - steps_before,
            "real_steps_total": budget.used, "dream_steps": trained.dream_steps,
            "dream_steps_total": dream_steps, "dream_score": trained.selection[trained.picked],
            "real_score": {"mean": float(np.mean(returns)) if returns else None,
                           "std": float(np.std(returns)) if returns else None, "episodes": len(returns)},
            "m_nll": float(m_result.history[-1]["nll"]),
            "seconds": {name: round(s, 1) for name, s in seconds.items()},
        }
        report["rounds"].append(record)
        report.update(real_steps=budget.used, dream_steps=dream_steps,
                      wall_time_s=round(time.perf_counter() - start, 1))
        save_json(work / "report.json", report)
        rounds_bar.set_postfix(real_steps=budget.used, score=record["real_score"]["mean"])
        if reached or budget.left == 0:
            break
    rounds_bar.close()
    if best is not None:
        report["picked_round"], controller, mdnrnn, vae = best[1], best[2], best[3], best[4]
    picked = {"seed": seed, "round": report.get("picked_round")}
    save_checkpoint(controller, controller.config, work / "controller", metadata=picked)
    save_checkpoint(mdnrnn, mdnrnn.config, work / "mdnrnn", metadata=picked)
    save_checkpoint(vae, vae.config, work / "vae", metadata=picked)
    if final_eval_episodes > 0:
        t0 = time.perf_counter()
        agent = WorldModelAgent(vae, mdnrnn, controller, env.action_space, seed=seed)
        final = [play_agent(env, agent, seed=EVAL_SEED_START + i, max_steps=config.max_episode_steps)
                 for i in tqdm(range(final_eval_episodes), desc="final evaluation in the real env", unit="episode",
                               disable=not progress, leave=False)]
        report["final"] = {"episodes": final_eval_episodes, "mean": float(np.mean([r.ret for r in final])),
                           "std": float(np.std([r.ret for r in final])),
                           "env_steps": int(sum(r.steps for r in final)),
                           "seconds": round(time.perf_counter() - t0, 1)}
    report["wall_time_s"] = round(time.perf_counter() - start, 1)
    save_json(work / "report.json", report)
    env.close()
    return PipelineResult(report, vae, mdnrnn, controller)
