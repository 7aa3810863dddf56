"""The commands of chapters 4 and 5: train-controller, evaluate, dream, pipeline (see wmlib/cli.py).

Each command is a frozen dataclass of its settings, a function that runs it and a `Command` naming
how its flags are spelt (wmlib/flags.py makes the flags). Also the helpers every command shares.

Introduced in: course/04_controller.ipynb
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from wmlib.agent import (
    EVAL_SEED_START,
    ControllerRollout,
    controller_rollout_for,
    evaluate_controller,
    load_controller,
    search_start,
    train_controller,
)
from wmlib.checkpoints import read_metadata, save_checkpoint, weights_sha256
from wmlib.config import (
    DREAM_PRECISIONS,
    DREAM_REWARDS,
    CMAESConfig,
    DreamConfig,
    PipelineConfig,
    SettingError,
    check_int,
)
from wmlib.controller import controller_config_for
from wmlib.dream_training import train_controller_in_dream
from wmlib.evaluators import EvaluatorConfig, make_evaluator
from wmlib.flags import Command
from wmlib.latents import encode_episodes, load_latent_episodes
from wmlib.lockstep import LockstepEvaluator
from wmlib.mdnrnn import load_mdnrnn
from wmlib.pipeline import run_pipeline
from wmlib.rollouts import play_episodes
from wmlib.tasks import WORLDS, world_spec
from wmlib.vae import load_vae

COMMANDS: list[Command] = []


def use_threads(threads: int | None) -> None:
    """Set torch's CPU threads (None: leave torch's choice)."""
    if threads:
        torch.set_num_threads(threads)


def work_stem(work: str | None, out: str, suffix: str = "") -> Path:
    """Where a resumable run keeps its state: --work, or data/checkpoints/<--out's whole path><suffix>.

    The whole path, not only its last name, so `--out runs/a/vae` and `--out runs/b/vae` never share
    work (wmlib.checkpoints refuses to resume another run's work, but they should not even meet).
    """
    if work:
        return Path(work)
    parts = [p for p in Path(out).parts if p not in ("/", ".", "..")]
    return Path("data") / "checkpoints" / f"{'_'.join(parts)}{suffix}"


def dream_worlds() -> tuple[str, ...]:
    """The worlds whose preset M can make a dream pay (a done head for survival, a reward head otherwise)."""
    def pays(world) -> bool:
        try:
            world.check_dream(world.m_preset)
        except ValueError:
            return False
        return True

    return tuple(w.name for w in WORLDS.values() if w.m_preset is not None and pays(w))


def agent_worlds() -> tuple[str, ...]:
    """The worlds V, M and C act in: those M has a preset for."""
    return tuple(w.name for w in WORLDS.values() if w.m_preset is not None)


def spread(evaluator: EvaluatorConfig, workers: int | None) -> EvaluatorConfig:
    """The command's --evaluator and --ray-address with one of its worker counts."""
    return dataclasses.replace(evaluator, workers=workers)


_EVALUATOR_FLAGS = {"names": {"evaluator.kind": ("--evaluator",)}, "prefixes": {"evaluator": ""},
                    "skip": ("evaluator.workers", "evaluator.task_timeout_s")}
"""How every command spells EvaluatorConfig: --evaluator, --ray-address (its worker counts are the command's)."""


@dataclass(frozen=True)
class TrainingPreset:
    """A named configuration of train-controller: the settings it fixes (flags set to other values win)."""

    env: str
    """The world it trains in."""
    cmaes: CMAESConfig
    """The search: population, rollouts per candidate, generations."""
    max_steps: int | None
    """Episode length while training and evaluating."""


PRESETS = {
    "paper-car": TrainingPreset("carracing", CMAESConfig(population_size=64, rollouts_per_candidate=16,
                                                         generations=1800), max_steps=1000),
}
"""The paper's CarRacing run: 64 candidates x 16 rollouts x 1,000 steps, 1,800 generations (a cluster's work:
docs/scale-out.md)."""


# ---------------------------------------------------------------------------------------------
# train-controller and evaluate (C, chapter 4)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)  # kw_only: --out (required) can follow the parts it names
class TrainControllerArgs:
    env: str
    """The real world C is trained in."""
    vae: str
    """A shipped name ('cartpole', 'carracing', 'doom') or a checkpoint stem."""
    mdnrnn: str | None = None
    """A shipped name ('cartpole', 'carracing', 'doom') or a checkpoint stem (none: only with --z-only)."""
    z_only: bool = False
    """The paper's 'V only' ablation: C reads z, not h."""
    out: str
    """Path stem of the trained controller (.safetensors, .json)."""
    cmaes: CMAESConfig = field(default_factory=lambda: CMAESConfig(population_size=16, rollouts_per_candidate=4,
                                                                   generations=30))
    standardize_episodes: int = 30
    """Random episodes that measure C's input statistics for the search (0: none)."""
    target: float | None = None
    """Stop once a generation's best reaches this."""
    target_mean: float | None = None
    """Stop once a generation's population mean reaches this."""
    select_episodes: int = 8
    """Episodes that pick between the best candidate and the final mean."""
    eval_episodes: int = 100
    """Final evaluation episodes (0: none)."""
    seed: int = 0
    """Seeds CMA-ES and the episodes."""
    max_steps: int | None = None
    """Cut episodes after this many steps (none: the env's own limit)."""
    x0_from: str | None = None
    """Start the search at this trained controller (a stem), e.g. for a second stage."""
    work: str | None = None
    """Stem of the resumable CMA-ES checkpoint (none: data/checkpoints/<--out's name>_es)."""
    workers: int | None = None
    """Rollout processes or Ray actors (none: every core, or every CPU of the Ray cluster; 1: serial); speed only."""
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    preset: Literal["paper-car"] | None = None
    """A named configuration (wmlib.cli_agent.PRESETS); flags set away from their defaults still win."""
    threads: int | None = None
    """Torch CPU threads of this process (none: torch's choice; rollout processes use one each); speed only."""

    def __post_init__(self):
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1)
        check_int("seed", self.seed, 0)


def with_preset(args: TrainControllerArgs) -> TrainControllerArgs:
    """args with its preset's settings wherever a setting was left at its default."""
    if args.preset is None:
        return args
    preset = PRESETS[args.preset]
    if args.env != preset.env:
        raise SettingError("env", f"the {args.preset} preset trains in {preset.env}, got {args.env}")
    base = TrainControllerArgs(env=args.env, vae=args.vae, out=args.out)
    cmaes = dataclasses.replace(preset.cmaes, **{f.name: getattr(args.cmaes, f.name)
                                                 for f in dataclasses.fields(CMAESConfig)
                                                 if getattr(args.cmaes, f.name) != getattr(base.cmaes, f.name)})
    max_steps = preset.max_steps if args.max_steps == base.max_steps else args.max_steps
    return dataclasses.replace(args, cmaes=cmaes, max_steps=max_steps)


def _train_controller(args: TrainControllerArgs, cmd: str) -> int:
    args = with_preset(args)
    use_threads(args.threads)
    rollout_fn = controller_rollout_for(args.env, args.vae, args.mdnrnn, use_h=not args.z_only,
                                        max_steps=args.max_steps, standardize_episodes=args.standardize_episodes,
                                        seed=args.seed)
    x0 = search_start(rollout_fn, load_controller(args.x0_from)) if args.x0_from else None
    print(f"training C ({rollout_fn.controller}) with: {cmd}", flush=True)
    with make_evaluator(rollout_fn, config=spread(args.evaluator, args.workers)) as evaluator:
        result = train_controller(rollout_fn, args.cmaes, seed=args.seed, evaluator=evaluator,
                                  target_fitness=args.target, target_mean_fitness=args.target_mean,
                                  checkpoint=work_stem(args.work, args.out, "_es"), x0=x0,
                                  select_episodes=args.select_episodes)
        final = (evaluate_controller(evaluator, result.search_params, args.eval_episodes)
                 if args.eval_episodes > 0 else None)
    summary = {
        "parameters": result.controller.num_params,
        "generations": len(result.cma.history),
        "picked": result.picked,
        "calibration_env_steps": result.calibration_env_steps,
        "training_env_steps": result.training_env_steps,
        "selection_env_steps": result.selection_env_steps,
        "total_training_env_steps": result.total_env_steps,
        "selection": {k: v.summary() for k, v in result.selection.items()},
        "evaluation": final.summary() if final is not None else None,
        "wall_time_s": round(result.cma.history[-1]["wall_s"], 1),
    }
    meta = dict(summary, command=cmd, seed=args.seed, env=args.env, vae=args.vae, mdnrnn=args.mdnrnn,
                parts_sha256=_parts_sha256(args.vae, args.mdnrnn if not args.z_only else None),
                cmaes=dataclasses.asdict(args.cmaes), history=result.cma.history,
                input_mean=list(rollout_fn.input_mean or []), input_std=list(rollout_fn.input_std or []))
    paths = save_checkpoint(result.controller, result.controller.config, args.out, metadata=meta)
    print(json.dumps(dict(summary, wrote=[str(p) for p in paths])))
    return 0


def _parts_sha256(vae: str, mdnrnn: str | None) -> dict:
    """sha256 of the V and M weights a controller was trained with (C is only valid with those)."""
    return {kind: weights_sha256(name, kind) for kind, name in (("vae", vae), ("mdnrnn", mdnrnn)) if name is not None}


_CMAES_NAMES = {"cmaes.population_size": ("--population", "--population-size"),
                "cmaes.rollouts_per_candidate": ("--rollouts", "--rollouts-per-candidate")}

COMMANDS.append(Command(
    "train-controller", "train C with CMA-ES in the real env (V and M fixed); resumes if interrupted",
    TrainControllerArgs, _train_controller,
    lambda a: (f"interrupted: the CMA-ES state is saved as it runs in {work_stem(a.work, a.out, '_es')}; "
               "run the same command again to resume"),
    names={**_CMAES_NAMES, **_EVALUATOR_FLAGS["names"]}, prefixes={"cmaes": "", **_EVALUATOR_FLAGS["prefixes"]},
    skip=_EVALUATOR_FLAGS["skip"], choices={"env": agent_worlds()}))


@dataclass(frozen=True)
class EvaluateArgs:
    controller: str
    """'cartpole' (assets/cartpole_controller) or a checkpoint stem."""
    env: str | None = None
    """The real world (none: the one the controller's checkpoint names)."""
    vae: str | None = None
    """V (none: the one the controller's checkpoint names)."""
    mdnrnn: str | None = None
    """M (none: the one the controller's checkpoint names)."""
    episodes: int = 100
    """Real episodes to play."""
    seed_start: int | None = None
    """First episode seed (none: wmlib's evaluation range)."""
    max_steps: int | None = None
    """Cut episodes after this many steps (none: the env's own limit)."""
    workers: int | None = None
    """Rollout processes or Ray actors (none: every core, or every CPU of the Ray cluster; 1: serial); speed only."""
    lockstep: bool = False
    """Play the episodes side by side, V, M and C batched per step (wmlib.lockstep; local processes; worlds with
    discrete actions): the same episodes up to float rounding, about 3x faster on pixel CartPole."""
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)

    def __post_init__(self):
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1)
        check_int("episodes", self.episodes, 1)
        if self.lockstep and self.evaluator.kind == "ray":
            raise SettingError("lockstep", "--lockstep plays on this machine's processes: leave out --evaluator ray "
                                           "(or --lockstep)")


def _evaluate(args: EvaluateArgs, cmd: str) -> int:
    controller = load_controller(args.controller)
    meta = read_metadata(args.controller, "controller")
    env = args.env or meta.get("env")
    vae = args.vae or meta.get("vae")
    mdnrnn = args.mdnrnn or meta.get("mdnrnn")
    if env is None or vae is None:
        raise SettingError("env", "this controller's metadata does not name its env and V: pass --env and --vae")
    rollout_fn = ControllerRollout(env, vae, mdnrnn, controller.config, max_steps=args.max_steps)
    first = EVAL_SEED_START if args.seed_start is None else args.seed_start
    if args.lockstep:
        workers = 1 if args.evaluator.kind == "serial" else (args.workers or os.cpu_count() or 1)
        with LockstepEvaluator(rollout_fn, workers=workers) as evaluator:
            result = evaluator.evaluate(controller.get_flat_params(), args.episodes, seed_start=first)
    else:
        with make_evaluator(rollout_fn, config=spread(args.evaluator, args.workers)) as evaluator:
            result = evaluate_controller(evaluator, controller.get_flat_params(), args.episodes, seed_start=first)
    print(json.dumps(dict(result.summary(), controller=args.controller, env=env, vae=vae, mdnrnn=mdnrnn,
                          command=cmd)))
    return 0


COMMANDS.append(Command("evaluate", "play a trained V+M+C agent in the real env and report its mean return",
                  EvaluateArgs, _evaluate, lambda a: "interrupted: an evaluation keeps nothing; run it again",
                  choices={"env": agent_worlds()}, **_EVALUATOR_FLAGS))


# ---------------------------------------------------------------------------------------------
# dream and pipeline (chapter 5)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DreamArgs:
    env: str
    """The real world whose M dreams."""
    vae: str
    """A shipped name ('cartpole', 'carracing', 'doom') or a checkpoint stem."""
    mdnrnn: str
    """A shipped name ('cartpole', 'carracing', 'doom') or a checkpoint stem."""
    out: str
    """Path stem of the trained controller (.safetensors, .json)."""
    latents: str | None = None
    """Folder of encoded real episodes where dreams start (none: play --random-episodes)."""
    random_episodes: int = 50
    """Without --latents: random real episodes to encode (their steps are reported)."""
    cmaes: CMAESConfig = field(default_factory=lambda: CMAESConfig(generations=50, sigma0=0.5))
    dream: DreamConfig = field(default_factory=DreamConfig)
    dream_max_steps: int | None = None
    """Cut dream episodes here (none: the world's episode length)."""
    select_episodes: int = 64
    """Dream episodes that pick between the best candidate and the final mean."""
    eval_episodes: int = 100
    """Real episodes that evaluate C afterwards (0: none)."""
    seed: int = 0
    """Seeds CMA-ES, the dreams and the random episodes."""
    dream_workers: int = 1
    """Processes or Ray actors that dream (1: this one); speed only."""
    workers: int = 1
    """Processes or Ray actors for the real evaluation (1: serial); speed only."""
    threads: int | None = None
    """Torch CPU threads (none: torch's choice); speed only."""
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)

    def __post_init__(self):
        if self.dream_max_steps is not None:
            check_int("dream_max_steps", self.dream_max_steps, 1)
        check_int("seed", self.seed, 0)


def _dream(args: DreamArgs, cmd: str) -> int:
    use_threads(args.threads)
    start = time.perf_counter()
    vae, mdnrnn = load_vae(args.vae), load_mdnrnn(args.mdnrnn)
    real_steps = 0
    if args.latents:
        episodes = load_latent_episodes(args.latents, mdnrnn.config.action_dim)
    else:
        played = list(play_episodes(args.env, args.random_episodes, seed=args.seed))
        real_steps = sum(len(ep["actions"]) for ep in played)
        episodes = encode_episodes(vae, played, mdnrnn.config.action_dim)
    c_config = controller_config_for(args.env, vae.config.z_dim, mdnrnn.config.hidden_size)
    max_steps = args.dream_max_steps or world_spec(args.env).dream_max_steps
    dream_config = dataclasses.replace(args.dream, max_steps=max_steps)
    result = train_controller_in_dream(mdnrnn, episodes, c_config, args.cmaes, dream_config, seed=args.seed,
                                       select_episodes=args.select_episodes,
                                       workers=spread(args.evaluator, args.dream_workers))
    final = None
    if args.eval_episodes > 0:
        rollout_fn = ControllerRollout(args.env, args.vae, args.mdnrnn, c_config)
        with make_evaluator(rollout_fn, config=spread(args.evaluator, args.workers)) as evaluator:
            final = evaluate_controller(evaluator, result.controller.get_flat_params(), args.eval_episodes)
    summary = {"parameters": result.controller.num_params, "generations": len(result.history),
               "picked": result.picked, "dream_selection": result.selection, "dream_steps": result.dream_steps,
               "real_steps_for_starts": real_steps, "evaluation": final.summary() if final is not None else None,
               "wall_time_s": round(time.perf_counter() - start, 1)}
    meta = dict(summary, command=cmd, seed=args.seed, env=args.env, vae=args.vae, mdnrnn=args.mdnrnn,
                dream=dataclasses.asdict(dream_config), cmaes=dataclasses.asdict(args.cmaes), history=result.history)
    paths = save_checkpoint(result.controller, c_config, args.out, metadata=meta)
    print(json.dumps(dict(summary, wrote=[str(p) for p in paths])))
    return 0


COMMANDS.append(Command(
    "dream", "train C with CMA-ES entirely inside M's dream, then evaluate it in the real env", DreamArgs, _dream,
    lambda a: f"interrupted: training in the dream keeps no checkpoint, and nothing was written to {a.out}",
    names={**_CMAES_NAMES, "dream.temperature": ("--temperature", "--dream-temperature"),
           "dream.done_threshold": ("--done-threshold", "--dream-done-threshold"),
           "dream.done_bias": ("--done-bias", "--dream-done-bias"),
           "dream.precision": ("--precision", "--dream-precision"), **_EVALUATOR_FLAGS["names"]},
    prefixes={"cmaes": "", **_EVALUATOR_FLAGS["prefixes"]}, skip=("dream.max_steps", *_EVALUATOR_FLAGS["skip"]),
    none_words={"dream.done_threshold": "sample"},
    choices={"env": dream_worlds(), "dream.reward": DREAM_REWARDS, "dream.precision": DREAM_PRECISIONS}))


@dataclass(frozen=True)
class PipelineArgs:
    work: str
    """A new folder for the run's episodes, V, M, C and report.json."""
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    seed: int = 0
    """Seeds every stage."""
    final_eval_episodes: int = 100
    """Real episodes that measure the final C (not counted in the budget; 0: none)."""
    start_vae: str | None = None
    """A trained V that round 0 keeps instead of training one ('cartpole' shipped, or a checkpoint stem)."""
    dream_workers: int = 1
    """Processes or Ray actors that dream while C trains (1: this one); speed only."""
    threads: int | None = None
    """Torch CPU threads (none: torch's choice); speed only."""
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)


def _pipeline(args: PipelineArgs, cmd: str) -> int:
    use_threads(args.threads)
    result = run_pipeline(args.pipeline, args.work, seed=args.seed, final_eval_episodes=args.final_eval_episodes,
                          dream_workers=spread(args.evaluator, args.dream_workers), start_vae=args.start_vae)
    r = result.report
    print(json.dumps({"command": cmd, "real_steps": r["real_steps"], "dream_steps": r["dream_steps"],
                      "rounds": [{k: v for k, v in x.items() if k != "seconds"} for x in r["rounds"]],
                      "final": r.get("final"), "wall_time_s": r["wall_time_s"],
                      "report": str(Path(args.work) / "report.json")}))
    return 0


COMMANDS.append(Command(
    "pipeline", "the iterative procedure: real data -> V, M -> C in the dream -> C's real data -> ...",
    PipelineArgs, _pipeline,
    lambda a: (f"interrupted: {a.work} holds the rounds finished so far (report.json); a pipeline does not "
               "resume: run it again with a new --work"),
    names={"pipeline.env_name": ("--env",),
           **{f"pipeline.{k}": v for k, v in _CMAES_NAMES.items()},
           "pipeline.vae.z_dim": ("--z-dim", "--vae-z-dim"),
           "pipeline.vae.learning_rate": ("--vae-learning-rate", "--vae-lr"),
           "pipeline.dream.temperature": ("--temperature", "--dream-temperature"),
           "pipeline.dream.done_threshold": ("--done-threshold", "--dream-done-threshold"),
           "pipeline.dream.done_bias": ("--done-bias", "--dream-done-bias"),
           "pipeline.dream.precision": ("--dream-precision", "--precision"), **_EVALUATOR_FLAGS["names"]},
    prefixes={"pipeline": "", "pipeline.cmaes": "", **_EVALUATOR_FLAGS["prefixes"]},
    skip=("pipeline.mdnrnn", "pipeline.vae.image_channels", "pipeline.vae.image_size", *_EVALUATOR_FLAGS["skip"]),
    none_words={"pipeline.dream.done_threshold": "sample"},
    choices={"pipeline.env_name": dream_worlds(), "pipeline.dream.precision": DREAM_PRECISIONS,
             "pipeline.dream.reward": DREAM_REWARDS}))
