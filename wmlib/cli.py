"""Command line: `python -m wmlib COMMAND ...` trains the whole agent, one stage at a time.

    python -m wmlib collect --env cartpole-pixels --episodes 200 --out data/cartpole --seed 0
    python -m wmlib dqn --steps 60000 --seed 0

Each stage's command is a small function below that parses nothing itself: `main` builds one
argparse sub-parser per command and dispatches to it. Every command prints what it wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str):
    """Register `add_args(parser)` and the decorated `run(args)` under `name`."""

    def wrap(run):
        add_args = getattr(run, "add_args", lambda p: None)
        COMMANDS[name] = (help_text, add_args, run)
        return run

    return wrap


def _args(add_args):
    """Attach an argument-adding function to a command function (used as a decorator)."""

    def wrap(run):
        run.add_args = add_args
        return run

    return wrap


# ---------------------------------------------------------------------------------------------
# collect
# ---------------------------------------------------------------------------------------------


def _collect_args(p):
    from wmlib.envs import ENV_NAMES

    p.add_argument("--env", required=True, choices=ENV_NAMES)
    p.add_argument("--episodes", type=int, required=True, help="how many episodes to play")
    p.add_argument("--out", required=True, help="directory for the episode_*.npz files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="cut episodes after this many steps")
    p.add_argument("--policy", choices=("random", "smooth"), default="random",
                   help="uniform random actions, or slowly changing ones that drive the car")


@command("collect", "play episodes with a random policy and store them as .npz rollouts")
@_args(_collect_args)
def _collect(args) -> int:
    from wmlib.rollouts import POLICIES, collect

    paths = collect(args.env, args.episodes, args.out, policy=POLICIES[args.policy], seed=args.seed,
                    max_steps=args.max_steps)
    print(f"wrote {len(paths)} episodes to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------
# dqn
# ---------------------------------------------------------------------------------------------


def _dqn_args(p):
    p.add_argument("--steps", type=int, default=60_000, help="real environment-step budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--eval-episodes", type=int, default=10)


@command("dqn", "train the chapter-1 DQN baseline on state CartPole and report steps to balance")
@_args(_dqn_args)
def _dqn(args) -> int:
    from wmlib.dqn import train_dqn

    r = train_dqn(max_steps=args.steps, seed=args.seed, eval_every=args.eval_every,
                  eval_episodes=args.eval_episodes)
    print(json.dumps({"steps_to_solve": r.steps_to_solve, "training_steps": r.total_steps,
                      "eval_steps": r.eval_steps, "wall_time_s": round(r.wall_time_s, 1)}))
    return 0


# ---------------------------------------------------------------------------------------------
# train-vae and encode (V, chapter 2)
# ---------------------------------------------------------------------------------------------


def _train_vae_args(p):
    p.add_argument("--rollouts", required=True, help="directory of episode .npz files (from `collect`)")
    p.add_argument("--out", required=True, help="path stem of the finished checkpoint (.safetensors, .json)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--z-dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--kl-tolerance", type=float, default=0.5, help="free bits per latent dimension")
    p.add_argument("--max-frames-per-epoch", type=int, default=None)
    p.add_argument("--half", action="store_true", help="store the finished weights as float16")
    p.add_argument("--work", default=None,
                   help="stem of the resumable training checkpoint (default data/checkpoints/<--out's name>)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


@command("train-vae", "train V (the ConvVAE) on the frames of collected rollouts; resumes if interrupted")
@_args(_train_vae_args)
def _train_vae(args) -> int:
    import dataclasses
    from pathlib import Path

    import torch

    from wmlib.checkpoints import save_checkpoint
    from wmlib.config import VAEConfig
    from wmlib.vae import ConvVAE, train_vae

    if args.threads:
        torch.set_num_threads(args.threads)
    config = dataclasses.replace(VAEConfig(), z_dim=args.z_dim, batch_size=args.batch_size,
                                 learning_rate=args.lr, kl_tolerance=args.kl_tolerance)
    work = Path(args.work) if args.work else Path("data") / "checkpoints" / Path(args.out).name
    cmd = (f"python -m wmlib train-vae --rollouts {args.rollouts} --out {args.out} --epochs {args.epochs} "
           f"--seed {args.seed} --z-dim {args.z_dim} --batch-size {args.batch_size} --lr {args.lr:g} "
           f"--kl-tolerance {args.kl_tolerance:g}"
           + (f" --max-frames-per-epoch {args.max_frames_per_epoch}" if args.max_frames_per_epoch else "")
           + (" --half" if args.half else "") + (f" --threads {args.threads}" if args.threads else ""))
    meta = {"command": cmd, "rollouts": str(args.rollouts), "torch": torch.__version__}
    result = train_vae(args.rollouts, config, epochs=args.epochs, seed=args.seed, checkpoint=work,
                       metadata=meta, max_frames_per_epoch=args.max_frames_per_epoch)
    vae = ConvVAE(config)
    vae.load_state_dict({k: v.cpu() for k, v in result.vae.state_dict().items()})
    meta = dict(meta, seed=args.seed, epochs_done=len(result.history), history=result.history)
    paths = save_checkpoint(vae, config, args.out, metadata=meta, half=args.half)
    last = result.history[-1]
    print(json.dumps({"wrote": [str(p) for p in paths], "parameters": vae.num_params(),
                      "epochs": len(result.history), "reconstruction": round(last["reconstruction"], 2),
                      "kl": round(last["kl"], 2), "wall_time_s": round(result.wall_time_s, 1)}))
    return 0


def _encode_args(p):
    p.add_argument("--vae", required=True, help="'cartpole' or 'carracing' (shipped), or a checkpoint stem")
    p.add_argument("--rollouts", required=True, help="directory of episode .npz files")
    p.add_argument("--out", required=True, help="directory for the encoded episodes")


@command("encode", "encode the frames of rollouts into V's latents (mu, logvar) for training M")
@_args(_encode_args)
def _encode(args) -> int:
    from wmlib.vae import encode_rollouts, load_vae

    paths = encode_rollouts(load_vae(args.vae), args.rollouts, args.out)
    print(f"wrote {len(paths)} encoded episodes to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------
# train-mdnrnn (M, chapter 3)
# ---------------------------------------------------------------------------------------------


def _train_mdnrnn_args(p):
    p.add_argument("--env", required=True, choices=("cartpole-pixels", "carracing"),
                   help="picks the preset config (wmlib.mdnrnn.preset_config): action size, done head, sizes")
    p.add_argument("--latents", required=True, help="directory of encoded episodes (from `encode`)")
    p.add_argument("--out", required=True, help="path stem of the finished checkpoint (.safetensors, .json)")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the sequences (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden-size", type=int, default=None, help="LSTM units H")
    p.add_argument("--mixtures", type=int, default=None, help="Gaussians per latent dimension K")
    p.add_argument("--seq-len", type=int, default=None, help="transitions per training window")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate")
    p.add_argument("--val-episodes", type=int, default=20,
                   help="hold out this many episodes (the last files) to report validation scores each epoch")
    p.add_argument("--work", default=None,
                   help="stem of the resumable training checkpoint (default data/checkpoints/<--out's name>)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


@command("train-mdnrnn", "train M (the MDN-RNN) on encoded episodes; resumes if interrupted")
@_args(_train_mdnrnn_args)
def _train_mdnrnn(args) -> int:
    import dataclasses
    from pathlib import Path

    import numpy as np
    import torch

    from wmlib.checkpoints import save_checkpoint
    from wmlib.mdnrnn import MDNRNN, PRESET_EPOCHS, load_latent_episodes, preset_config, train_mdnrnn

    if args.threads:
        torch.set_num_threads(args.threads)
    files = sorted(Path(args.latents).glob("*.npz"))
    if len(files) <= args.val_episodes:
        raise ValueError(f"{args.latents} holds {len(files)} encoded episodes; need more than "
                         f"--val-episodes {args.val_episodes}")
    z_dim = int(np.load(files[0])["mu"].shape[1])
    overrides = {"hidden_size": args.hidden_size, "num_mixtures": args.mixtures,
                 "sequence_length": args.seq_len, "batch_size": args.batch_size, "learning_rate": args.lr}
    config = dataclasses.replace(preset_config(args.env, z_dim),
                                 **{k: v for k, v in overrides.items() if v is not None})
    epochs = args.epochs or PRESET_EPOCHS[args.env]
    split = len(files) - args.val_episodes
    train = load_latent_episodes(files[:split], config.action_dim)
    val = load_latent_episodes(files[split:], config.action_dim) if args.val_episodes else None
    work = Path(args.work) if args.work else Path("data") / "checkpoints" / Path(args.out).name
    flags = "".join(f" --{k} {v:g}" if isinstance(v, float) else f" --{k} {v}" for k, v in (
        ("hidden-size", args.hidden_size), ("mixtures", args.mixtures), ("seq-len", args.seq_len),
        ("batch-size", args.batch_size), ("lr", args.lr)) if v is not None)
    cmd = (f"python -m wmlib train-mdnrnn --env {args.env} --latents {args.latents} --out {args.out} "
           f"--epochs {epochs} --seed {args.seed} --val-episodes {args.val_episodes}{flags}"
           + (f" --threads {args.threads}" if args.threads else ""))  # threads: speed only, recorded anyway
    meta = {"command": cmd, "latents": str(args.latents), "train_episodes": split,
            "val_episodes": args.val_episodes, "torch": torch.__version__}
    result = train_mdnrnn(train, config, epochs=epochs, seed=args.seed, val_episodes=val, checkpoint=work,
                          metadata=meta)
    model = MDNRNN(config)
    model.load_state_dict({k: v.cpu() for k, v in result.model.state_dict().items()})
    meta = dict(meta, seed=args.seed, epochs_done=len(result.history), history=result.history)
    paths = save_checkpoint(model, config, args.out, metadata=meta)
    last = result.history[-1]
    print(json.dumps({"wrote": [str(p) for p in paths], "parameters": model.num_params(),
                      "epochs": len(result.history), **{k: round(v, 4) for k, v in last.items()
                                                        if k.startswith(("nll", "val_", "done"))},
                      "wall_time_s": round(result.wall_time_s, 1)}))
    return 0


# ---------------------------------------------------------------------------------------------
# train-controller and evaluate (C, chapter 4)
# ---------------------------------------------------------------------------------------------


def _agent_parts_args(p, required: bool = True):
    p.add_argument("--env", required=required, choices=("cartpole-pixels", "carracing"))
    p.add_argument("--vae", required=required, help="'cartpole'/'carracing' (shipped) or a checkpoint stem")
    p.add_argument("--mdnrnn", default=None, help="'cartpole'/'carracing' (shipped) or a checkpoint stem")
    p.add_argument("--workers", type=int, default=None,
                   help="rollout processes (default: every core; 1: serial)")
    p.add_argument("--max-steps", type=int, default=None, help="cut episodes after this many steps")


def _train_controller_args(p):
    _agent_parts_args(p)
    p.add_argument("--out", required=True, help="path stem of the trained controller (.safetensors, .json)")
    p.add_argument("--z-only", action="store_true", help="the paper's 'V only' ablation: C reads z, not h")
    p.add_argument("--population", type=int, default=16, help="CMA-ES candidates per generation")
    p.add_argument("--rollouts", type=int, default=4, help="episodes per candidate (fitness = mean return)")
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--sigma0", type=float, default=0.1, help="initial CMA-ES step size")
    p.add_argument("--rank-shaping", action="store_true", help="tell CMA-ES centred ranks, not returns")
    p.add_argument("--standardize-episodes", type=int, default=30,
                   help="random episodes that measure C's input statistics for the search (0: none)")
    p.add_argument("--target", type=float, default=None, help="stop once a generation's best reaches this")
    p.add_argument("--target-mean", type=float, default=None,
                   help="stop once a generation's population mean reaches this")
    p.add_argument("--select-episodes", type=int, default=8,
                   help="episodes to pick between the best candidate and the final mean")
    p.add_argument("--eval-episodes", type=int, default=100, help="final evaluation episodes (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--x0-from", default=None,
                   help="start the search at this trained controller (a stem), e.g. for a second stage")
    p.add_argument("--work", default=None,
                   help="stem of the resumable CMA-ES checkpoint (default data/checkpoints/<out name>_es)")


@command("train-controller", "train C with CMA-ES in the real env (V and M fixed); resumes if interrupted")
@_args(_train_controller_args)
def _train_controller(args) -> int:
    from pathlib import Path

    from wmlib.agent import (
        controller_rollout_for,
        evaluate_controller,
        load_controller,
        make_evaluator,
        search_start,
        train_controller,
    )
    from wmlib.checkpoints import save_checkpoint
    from wmlib.config import CMAESConfig

    rollout_fn = controller_rollout_for(args.env, args.vae, args.mdnrnn, use_h=not args.z_only,
                                        max_steps=args.max_steps, standardize_episodes=args.standardize_episodes,
                                        seed=args.seed)
    config = CMAESConfig(population_size=args.population, rollouts_per_candidate=args.rollouts,
                         sigma0=args.sigma0, generations=args.generations, rank_shaping=args.rank_shaping)
    work = Path(args.work) if args.work else Path("data") / "checkpoints" / f"{Path(args.out).name}_es"
    cmd = (f"python -m wmlib train-controller --env {args.env} --vae {args.vae}"
           + (f" --mdnrnn {args.mdnrnn}" if args.mdnrnn else "") + (" --z-only" if args.z_only else "")
           + f" --out {args.out} --population {args.population} --rollouts {args.rollouts}"
           f" --generations {args.generations} --sigma0 {args.sigma0:g}"
           + (" --rank-shaping" if args.rank_shaping else "")
           + f" --standardize-episodes {args.standardize_episodes}"
           + (f" --target {args.target:g}" if args.target is not None else "")
           + (f" --target-mean {args.target_mean:g}" if args.target_mean is not None else "")
           + (f" --max-steps {args.max_steps}" if args.max_steps else "")
           + f" --select-episodes {args.select_episodes} --eval-episodes {args.eval_episodes}"
           f" --seed {args.seed}" + (f" --x0-from {args.x0_from}" if args.x0_from else "")
           + (f" --work {args.work}" if args.work else "")
           + (f" --workers {args.workers}" if args.workers else ""))  # workers: speed only, recorded anyway
    x0 = search_start(rollout_fn, load_controller(args.x0_from)) if args.x0_from else None
    print(f"training C ({rollout_fn.controller}) with: {cmd}", flush=True)
    with make_evaluator(rollout_fn, args.workers) as evaluator:
        result = train_controller(rollout_fn, config, seed=args.seed, evaluator=evaluator,
                                  target_fitness=args.target, target_mean_fitness=args.target_mean,
                                  checkpoint=work, x0=x0,
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
                cmaes=dataclasses_asdict(config), history=result.cma.history,
                input_mean=list(rollout_fn.input_mean or []), input_std=list(rollout_fn.input_std or []))
    paths = save_checkpoint(result.controller, result.controller.config, args.out, metadata=meta)
    print(json.dumps(dict(summary, wrote=[str(p) for p in paths])))
    return 0


def _parts_sha256(vae: str, mdnrnn: str | None) -> dict:
    """sha256 of the V and M weights a controller was trained with (C is only valid with those)."""
    import hashlib
    from pathlib import Path

    from wmlib.checkpoints import assets_dir

    out = {}
    for kind, name in (("vae", vae), ("mdnrnn", mdnrnn)):
        if name is None:
            continue
        stem = assets_dir() / f"{name}_{kind}" if name in ("cartpole", "carracing") else Path(name)
        path = stem.with_suffix(".safetensors")
        out[kind] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return out


def dataclasses_asdict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)


def _evaluate_args(p):
    _agent_parts_args(p, required=False)
    p.add_argument("--controller", required=True, help="'cartpole' (assets/cartpole_controller) or a stem")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed-start", type=int, default=None,
                   help="first episode seed (default: wmlib's evaluation range)")


@command("evaluate", "play a trained V+M+C agent in the real env and report its mean return")
@_args(_evaluate_args)
def _evaluate(args) -> int:
    from wmlib.agent import (
        EVAL_SEED_START,
        ControllerRollout,
        evaluate_controller,
        load_controller,
        make_evaluator,
    )

    controller = load_controller(args.controller)
    meta = controller.checkpoint_metadata
    env = args.env or meta.get("env")
    vae = args.vae or meta.get("vae")
    mdnrnn = args.mdnrnn or meta.get("mdnrnn")
    if env is None or vae is None:
        raise ValueError("this controller's metadata does not name its env and V: pass --env and --vae")
    rollout_fn = ControllerRollout(env, vae, mdnrnn, controller.config, max_steps=args.max_steps)
    with make_evaluator(rollout_fn, args.workers) as evaluator:
        first = EVAL_SEED_START if args.seed_start is None else args.seed_start
        result = evaluate_controller(evaluator, controller.get_flat_params(), args.episodes, seed_start=first)
    print(json.dumps(dict(result.summary(), controller=args.controller, env=env, vae=vae, mdnrnn=mdnrnn)))
    return 0


# ---------------------------------------------------------------------------------------------
# dream and pipeline (chapter 5)
# ---------------------------------------------------------------------------------------------


def _done_threshold(text: str):
    return None if text == "sample" else float(text)


def _dream_args(p):
    p.add_argument("--env", required=True, choices=("cartpole-pixels", "carracing"))
    p.add_argument("--vae", required=True, help="'cartpole'/'carracing' (shipped) or a checkpoint stem")
    p.add_argument("--mdnrnn", required=True, help="'cartpole'/'carracing' (shipped) or a checkpoint stem")
    p.add_argument("--out", required=True, help="path stem of the trained controller (.safetensors, .json)")
    p.add_argument("--latents", default=None,
                   help="directory of encoded real episodes where dreams start (default: play --random-episodes)")
    p.add_argument("--random-episodes", type=int, default=50,
                   help="without --latents: random real episodes to encode (their steps are reported)")
    p.add_argument("--population", type=int, default=64, help="CMA-ES candidates per generation")
    p.add_argument("--rollouts", type=int, default=16, help="dream episodes per candidate")
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--sigma0", type=float, default=0.5, help="initial CMA-ES step size (standardised inputs)")
    p.add_argument("--temperature", type=float, default=1.0, help="the dream's temperature tau")
    p.add_argument("--done-threshold", type=_done_threshold, default=None,
                   help="the dream ends when M's done probability exceeds this (default 'sample': drawn from it)")
    p.add_argument("--dream-max-steps", type=int, default=None,
                   help="cut dream episodes here (default: 500 for CartPole, 1000 for the car)")
    p.add_argument("--select-episodes", type=int, default=64,
                   help="dream episodes to pick between the best candidate and the final mean")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="M's arithmetic in the dream (bfloat16: the car's dream ~1.5x faster with AVX512-BF16)")
    p.add_argument("--dream-workers", type=int, default=1, help="processes that dream (1: this one)")
    p.add_argument("--eval-episodes", type=int, default=100, help="real episodes to evaluate C afterwards (0: none)")
    p.add_argument("--workers", type=int, default=1, help="processes for the real evaluation (1: serial)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


@command("dream", "train C with CMA-ES entirely inside M's dream, then evaluate it in the real env")
@_args(_dream_args)
def _dream(args) -> int:
    import time

    import torch

    from wmlib.agent import ControllerRollout, evaluate_controller, make_evaluator
    from wmlib.checkpoints import save_checkpoint
    from wmlib.config import CMAESConfig, DreamConfig
    from wmlib.controller import controller_config_for
    from wmlib.dream import train_controller_in_dream
    from wmlib.mdnrnn import encode_episodes, load_latent_episodes, load_mdnrnn
    from wmlib.vae import load_vae

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    vae, mdnrnn = load_vae(args.vae), load_mdnrnn(args.mdnrnn)
    real_steps = 0
    if args.latents:
        episodes = load_latent_episodes(args.latents, mdnrnn.config.action_dim)
    else:
        from wmlib.envs import make_env
        from wmlib.rollouts import play_episode

        env = make_env(args.env)
        env.action_space.seed(args.seed)
        played = [play_episode(env, lambda obs, info: env.action_space.sample(), seed=args.seed + i)
                  for i in range(args.random_episodes)]
        real_steps = sum(len(ep["actions"]) for ep in played)
        episodes = encode_episodes(vae, played, mdnrnn.config.action_dim)
    c_config = controller_config_for(args.env, vae.config.z_dim, mdnrnn.config.hidden_size)
    cma_config = CMAESConfig(population_size=args.population, rollouts_per_candidate=args.rollouts,
                             sigma0=args.sigma0, generations=args.generations)
    max_steps = args.dream_max_steps or (500 if args.env == "cartpole-pixels" else 1000)
    dream_config = DreamConfig(temperature=args.temperature, done_threshold=args.done_threshold, max_steps=max_steps,
                               precision=args.precision)
    result = train_controller_in_dream(mdnrnn, episodes, c_config, cma_config, dream_config, seed=args.seed,
                                       select_episodes=args.select_episodes, workers=args.dream_workers)
    cmd = (f"python -m wmlib dream --env {args.env} --vae {args.vae} --mdnrnn {args.mdnrnn} --out {args.out}"
           + (f" --latents {args.latents}" if args.latents else f" --random-episodes {args.random_episodes}")
           + f" --population {args.population} --rollouts {args.rollouts} --generations {args.generations}"
           f" --sigma0 {args.sigma0:g} --temperature {args.temperature:g}"
           f" --done-threshold {'sample' if args.done_threshold is None else format(args.done_threshold, 'g')}"
           f" --dream-max-steps {max_steps} --select-episodes {args.select_episodes} --precision {args.precision}"
           f" --eval-episodes {args.eval_episodes} --seed {args.seed}"
           f" --dream-workers {args.dream_workers} --workers {args.workers}"
           + (f" --threads {args.threads}" if args.threads else ""))  # the last three: speed only
    final = None
    if args.eval_episodes > 0:
        rollout_fn = ControllerRollout(args.env, args.vae, args.mdnrnn, c_config)
        with make_evaluator(rollout_fn, args.workers) as evaluator:
            final = evaluate_controller(evaluator, result.controller.get_flat_params(), args.eval_episodes)
    summary = {"parameters": result.controller.num_params, "generations": len(result.history),
               "picked": result.picked, "dream_selection": result.selection, "dream_steps": result.dream_steps,
               "real_steps_for_starts": real_steps, "evaluation": final.summary() if final is not None else None,
               "wall_time_s": round(time.perf_counter() - start, 1)}
    meta = dict(summary, command=cmd, seed=args.seed, env=args.env, vae=args.vae, mdnrnn=args.mdnrnn,
                dream=dataclasses_asdict(dream_config), cmaes=dataclasses_asdict(cma_config), history=result.history)
    paths = save_checkpoint(result.controller, c_config, args.out, metadata=meta)
    print(json.dumps(dict(summary, wrote=[str(p) for p in paths])))
    return 0


def _pipeline_args(p):
    from wmlib.config import PipelineConfig

    d = PipelineConfig()
    p.add_argument("--env", default=d.env_name, choices=("cartpole-pixels",),
                   help="the dream needs M to predict the end or the reward: only CartPole's M does")
    p.add_argument("--work", required=True, help="a new directory for the run's episodes, V, M, C and report.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=d.rounds, help="at most this many rounds")
    p.add_argument("--random-episodes", type=int, default=d.random_episodes, help="round 0's random episodes")
    p.add_argument("--episodes-per-round", type=int, default=d.episodes_per_round,
                   help="episodes C plays with exploration each round (M's new data)")
    p.add_argument("--exploration", type=float, default=d.exploration, help="probability of a random action")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help="real episodes scoring C each round")
    p.add_argument("--budget", type=int, default=d.real_step_budget, help="real env steps the run may take")
    p.add_argument("--target", type=float, default=d.target_return, help="stop once a round's real score reaches it")
    p.add_argument("--z-dim", type=int, default=d.vae.z_dim)
    p.add_argument("--vae-epochs", type=int, default=d.vae_epochs, help="V's passes over round 0's frames")
    p.add_argument("--vae-epochs-per-round", type=int, default=d.vae_epochs_per_round,
                   help="V's further passes over every frame in each later round (0: train V once)")
    p.add_argument("--vae-batch-size", type=int, default=d.vae.batch_size)
    p.add_argument("--vae-lr", type=float, default=d.vae.learning_rate)
    p.add_argument("--mdn-epochs-first", type=int, default=d.mdn_epochs_first)
    p.add_argument("--mdn-epochs-per-round", type=int, default=d.mdn_epochs_per_round)
    p.add_argument("--population", type=int, default=d.cmaes.population_size)
    p.add_argument("--rollouts", type=int, default=d.cmaes.rollouts_per_candidate, help="dream episodes per candidate")
    p.add_argument("--generations", type=int, default=d.cmaes.generations, help="CMA-ES generations per round")
    p.add_argument("--sigma0", type=float, default=d.cmaes.sigma0)
    p.add_argument("--temperature", type=float, default=d.dream.temperature, help="the dream's temperature tau")
    p.add_argument("--done-threshold", type=_done_threshold, default=d.dream.done_threshold,
                   help="the dream ends when M's done probability exceeds this (default 'sample': drawn from it)")
    p.add_argument("--dream-max-steps", type=int, default=d.dream.max_steps)
    p.add_argument("--dream-precision", choices=("float32", "bfloat16"), default=d.dream.precision,
                   help="M's arithmetic in the dream (bfloat16: the car's dream ~1.5x faster with AVX512-BF16)")
    p.add_argument("--dream-workers", type=int, default=1, help="processes that dream while C trains (1: this one)")
    p.add_argument("--max-episode-steps", type=int, default=None, help="cut real episodes here")
    p.add_argument("--final-eval-episodes", type=int, default=100,
                   help="real episodes that measure the final C (not counted in the budget; 0: none)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


@command("pipeline", "the iterative procedure: real data -> V, M -> C in the dream -> C's real data -> ...")
@_args(_pipeline_args)
def _pipeline(args) -> int:
    import dataclasses

    import torch

    from wmlib.config import PipelineConfig
    from wmlib.pipeline import run_pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    d = PipelineConfig()
    config = PipelineConfig(
        env_name=args.env, rounds=args.rounds, random_episodes=args.random_episodes,
        episodes_per_round=args.episodes_per_round, exploration=args.exploration, eval_episodes=args.eval_episodes,
        real_step_budget=args.budget, target_return=args.target, max_episode_steps=args.max_episode_steps,
        vae=dataclasses.replace(d.vae, z_dim=args.z_dim, batch_size=args.vae_batch_size, learning_rate=args.vae_lr),
        vae_epochs=args.vae_epochs, vae_epochs_per_round=args.vae_epochs_per_round,
        mdn_epochs_first=args.mdn_epochs_first, mdn_epochs_per_round=args.mdn_epochs_per_round,
        cmaes=dataclasses.replace(d.cmaes, population_size=args.population, rollouts_per_candidate=args.rollouts,
                                  generations=args.generations, sigma0=args.sigma0),
        dream=dataclasses.replace(d.dream, temperature=args.temperature, done_threshold=args.done_threshold,
                                  max_steps=args.dream_max_steps, precision=args.dream_precision))
    result = run_pipeline(config, args.work, seed=args.seed, final_eval_episodes=args.final_eval_episodes,
                          dream_workers=args.dream_workers)
    r = result.report
    report_path = f"{args.work.rstrip('/')}/report.json"
    print(json.dumps({"real_steps": r["real_steps"], "dream_steps": r["dream_steps"],
                      "rounds": [{k: v for k, v in x.items() if k != "seconds"} for x in r["rounds"]],
                      "final": r.get("final"), "wall_time_s": r["wall_time_s"],
                      "report": report_path}))
    return 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wmlib",
                                     description="Train the World Models agent, stage by stage.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
