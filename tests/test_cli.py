"""`python -m wmlib`: flags made from the config dataclasses, recorded commands, refused settings, real runs."""

import dataclasses
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wmlib import cli, flags
from wmlib.config import DreamConfig, SettingError
from wmlib.rollouts import load_episode, save_episode

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = cli.ALL_COMMANDS


def parse(argv: list[str]):
    """(the command, its settings dataclass, the parsed values) for argv, as `main` builds them."""
    values = vars(cli.parser().parse_args(argv))
    command = COMMANDS[values.pop("command")]
    return command, flags.build(command.args, values, command.flags()), values


def recorded(argv: list[str]) -> str:
    """The command line `main` records for argv."""
    command, _, values = parse(argv)
    return flags.command_line(f"{cli.PROG} {command.name}", command.flags(), values,
                              flags.typed_flags(command.flags(), argv))


# --- help ---------------------------------------------------------------------------------------


def test_help_lists_every_command_with_its_one_line_help():
    proc = subprocess.run([sys.executable, "-m", "wmlib", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert set(COMMANDS) == {"collect", "dqn", "train-vae", "encode", "train-mdnrnn", "train-controller",
                             "evaluate", "dream", "pipeline"}
    for name, command in COMMANDS.items():
        assert f"{name} {command.help}" in text, name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help_naming_each_flag(name, capsys):
    assert cli.main([name, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for flag in COMMANDS[name].flags():
        assert all(option in out for option in flag.options), flag
        assert flag.help and flag.help[:30] in out, f"{flag.dest} has no documentation"


# --- defaults come from the dataclasses ---------------------------------------------------------------


def _dataclass_default(command, flag):
    """The default of flag's field, read from the command's dataclass (nested ones included)."""
    field = {f.name: f for f in dataclasses.fields(command.args)}[flag.path[0]]
    if flag.path[0] in command.overrides:
        return None  # "none: the preset's"
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return flags.REQUIRED
    for name in flag.path[1:]:
        value = getattr(value, name)
    return value


def test_every_flag_default_is_its_dataclass_default():
    parser = cli.parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    checked = 0
    for name, command in COMMANDS.items():
        actions = {a.dest: a for a in subparsers[name]._actions}
        for flag in command.flags():
            expected = _dataclass_default(command, flag)
            action = actions[flag.dest]
            if expected is flags.REQUIRED:
                assert action.required, flag.dest
            else:
                assert not action.required and action.default == expected, (name, flag.dest, action.default)
            checked += 1
    assert checked > 100  # every field of every config the commands nest


def test_nested_defaults_follow_the_dataclass():
    # A default changed in the config changes the flag: nothing in the CLI restates it.
    changed = dataclasses.make_dataclass("Args", [("dream", DreamConfig, dataclasses.field(
        default_factory=lambda: DreamConfig(temperature=1.7)))], frozen=True)
    (flag,) = [f for f in flags.dataclass_flags(changed) if f.dest == "dream.temperature"]
    assert flag.default == 1.7 and flag.options == ("--dream-temperature",)


def test_cli_source_declares_no_flag_by_hand():
    for module in ("cli.py", "cli_agent.py"):
        source = (ROOT / "wmlib" / module).read_text()
        assert "add_argument" not in source and "default=" not in source.replace("default_factory=", ""), module


def test_helps_come_from_the_field_docs():
    docs = flags.field_docs(DreamConfig)
    assert docs["temperature"].startswith("tau of mdn_sample")
    (flag,) = [f for f in COMMANDS["dream"].flags() if f.dest == "dream.temperature"]
    assert flag.help == flags.first_sentence(docs["temperature"])


def test_misspelt_names_in_a_command_are_refused():
    bad = dataclasses.replace(COMMANDS["train-vae"], names={"vae.learning_rat": ("--lr",)})
    with pytest.raises(ValueError, match="no field vae.learning_rat"):
        bad.flags()


# --- the recorded commands of assets/README.md still parse ---------------------------------------------


def _readme_commands() -> list[str]:
    text = (ROOT / "assets" / "README.md").read_text().replace("\\\n", " ")
    lines = re.findall(r"python -m wmlib [^`\n]*", text)
    shipped = [json.loads(p.read_text())["metadata"].get("command", "") for p in (ROOT / "assets").glob("*.json")
               if "metadata" in json.loads(p.read_text())]
    commands = [" ".join(c.split()) for c in (*lines, *shipped) if c.startswith("python -m wmlib")]
    return [c for c in commands if c != "python -m wmlib ..."]  # the prose's "python -m wmlib ..."


def test_every_recorded_command_in_assets_still_parses():
    commands = _readme_commands()
    assert len(commands) >= 12, commands
    for line in commands:
        argv = shlex.split(line)[3:]
        argv = ["x" if a in ("DIR", "S") else a for a in argv]  # placeholders in the prose
        argv = [str(0) if a == "x" and argv[i - 1] == "--seed" else a for i, a in enumerate(argv)]
        command, args, _ = parse(argv)
        again = recorded(argv)
        assert parse(shlex.split(again)[3:])[1] == args, line


def test_the_shipped_vae_command_round_trips_to_the_same_settings():
    _, args, _ = parse(shlex.split("train-vae --rollouts data/cartpole_vae --out assets/cartpole_vae --epochs 8 "
                                   "--seed 0 --z-dim 32 --batch-size 32 --lr 0.0003 --kl-tolerance 0.5 --half "
                                   "--threads 2"))
    assert args.vae.learning_rate == 3e-4 and args.vae.batch_size == 32 and args.half and args.threads == 2
    assert recorded(shlex.split("train-vae --rollouts d --out o --learning-rate 0.0003 --threads 2 --half")) == (
        "python -m wmlib train-vae --rollouts d --out o --epochs 10 --seed 0 --z-dim 32 --kl-tolerance 0.5 "
        "--lr 0.0003 --batch-size 100 --half --threads 2")
    assert recorded(["train-vae", "--rollouts", "d", "--out", "o"]).endswith("--lr 0.0001 --batch-size 100")


def test_abbreviated_flags_are_refused(capsys):
    assert cli.main([*DREAM, "--temp", "2"]) == 2  # argparse would otherwise take it for --temperature
    assert "unrecognized arguments: --temp" in capsys.readouterr().err


# --- parsing round trips -------------------------------------------------------------------------


def _other_value(flag):
    """A valid value different from the flag's default (the only one, when just one is allowed)."""
    if flag.choices:
        return next((c for c in flag.choices if c != flag.default), flag.choices[0])
    if flag.kind is bool:
        return not flag.default
    base = flag.default if flag.default not in (None, flags.REQUIRED) else None
    if flag.kind is int:
        if base is None:
            return (7,) if flag.many else 7
        return tuple(v + 1 for v in base) if flag.many else base + 1
    if flag.kind is float:
        return base * 0.75 if base else 0.25  # not a whole number: "7.5" is written as typed
    return "some/path"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_parsing_round_trips_through_the_recorded_command(name):
    command = COMMANDS[name]
    values = {}
    argv = [name]
    for flag in command.flags():
        value = flag.choices[0] if flag.choices is not None and len(flag.choices) == 1 else _other_value(flag)
        values[flag.dest] = value
        if flag.kind is bool:
            argv.append(flag.options[0] if value else "--no-" + flag.options[0][2:])
        else:
            argv += [flag.options[0], *(map(str, value) if flag.many else [str(value)])]
    _, args, parsed = parse(argv)
    for dest, value in values.items():
        assert parsed[dest] == (list(value) if isinstance(value, tuple) else value), dest
    line = flags.command_line(f"{cli.PROG} {name}", command.flags(), parsed)
    assert shlex.split(line)[3:] == argv  # every flag has a value (switches: not their default): all written
    assert parse(shlex.split(line)[3:])[1] == args


def test_recorded_command_holds_every_value_and_the_speed_flags():
    line = recorded([*DREAM, "--temperature", "1.15", "--dream-done-threshold", "0.5", "--workers", "2",
                     "--dream-workers", "2", "--threads", "1"])
    assert line == (f"python -m wmlib {' '.join(DREAM)} --random-episodes 50 --population 64 --rollouts 16 "
                    "--sigma0 0.5 --generations 50 --temperature 1.15 --done-threshold 0.5 --done-bias 0 "
                    "--dream-reward auto --precision float32 --select-episodes 64 --eval-episodes 100 --seed 0 "
                    "--dream-workers 2 --workers 2 --threads 1")
    # Switches and nones at their default are left out, unless typed.
    line = recorded([*DREAM, "--no-rank-shaping", "--done-threshold=sample", "--dream-sample-start"])
    assert "--no-rank-shaping" in line and "--done-threshold sample" in line and "--dream-sample-start" in line
    assert "--latents" not in line and "--threads" not in line and "--dream-max-steps" not in line


def test_optional_values_and_nested_settings_are_built():
    _, args, _ = parse(["train-controller", "--env", "cartpole-pixels", "--vae", "cartpole", "--out", "c",
                        "--population", "8", "--rank-shaping", "--target-mean", "475"])
    assert args.cmaes == dataclasses.replace(COMMANDS["train-controller"].args.__dataclass_fields__["cmaes"]
                                             .default_factory(), population_size=8, rank_shaping=True)
    assert args.target_mean == 475.0 and args.target is None and args.mdnrnn is None
    _, args, _ = parse(["train-mdnrnn", "--env", "carracing", "--latents", "l", "--out", "o", "--lr", "0.003",
                        "--seq-len", "50"])
    assert args.mdnrnn == {"learning_rate": 0.003, "sequence_length": 50} and args.epochs is None
    _, args, _ = parse(["dqn", "--hidden-sizes", "16", "16", "--gamma", "0.9"])
    assert args.dqn.hidden_sizes == (16, 16) and args.dqn.gamma == 0.9
    _, args, _ = parse(["evaluate", "--controller", "cartpole", "--seed-start", "none"])
    assert args.seed_start is None


# --- refused settings: one line naming the flag, exit status 2 -------------------------------------------------


DREAM = ["dream", "--env", "cartpole-pixels", "--vae", "cartpole", "--mdnrnn", "cartpole", "--out", "c"]


def refused(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1"])
def test_dream_temperature_must_be_positive_and_finite(value, capsys):
    err = refused([*DREAM, "--temperature", value], capsys)
    assert err == f"error: --temperature: temperature must be positive and finite, got {float(value)!r}"
    assert refused([*DREAM, "--dream-temperature", value], capsys).startswith("error: --dream-temperature: ")
    with pytest.raises(SettingError, match="temperature must be positive and finite"):
        DreamConfig(temperature=float(value))  # the library refuses too


@pytest.mark.parametrize("value", ["2.0", "nan", "0", "-0.5", "inf"])
def test_done_threshold_must_lie_in_0_1(value, capsys):
    err = refused([*DREAM, "--done-threshold", value], capsys)
    assert err == f"error: --done-threshold: done_threshold must be a number in (0, 1], got {float(value)!r}"


def test_done_threshold_inside_0_1_or_none_is_accepted():
    for value, expected in (("0.5", 0.5), ("1.0", 1.0), ("none", None), ("sample", None)):
        assert parse([*DREAM, "--done-threshold", value])[1].dream.done_threshold == expected


def test_a_bad_choice_names_the_flag(capsys):
    err = refused([*DREAM, "--precision", "float16"], capsys)
    assert err == "error: --precision: expected one of float32, bfloat16, auto, got 'float16'"


def test_collect_refuses_a_negative_seed_and_zero_steps(tmp_path, capsys):
    base = ["collect", "--env", "cartpole-pixels", "--episodes", "2", "--out", str(tmp_path / "d")]
    assert refused([*base, "--seed", "-1"], capsys) == "error: --seed: seed must be an integer >= 0, got -1"
    assert refused([*base, "--max-steps", "0"], capsys) == (
        "error: --max-steps: max_steps must be a positive integer, got 0")
    assert refused([*base[:4], "0", *base[5:]], capsys) == (
        "error: --episodes: n_episodes must be a positive integer, got 0")
    assert not (tmp_path / "d").exists()


def test_collect_refuses_an_existing_file_as_out(tmp_path, capsys):
    target = tmp_path / "episodes.npz"
    target.write_bytes(b"keep me")
    err = refused(["collect", "--env", "cartpole-pixels", "--episodes", "1", "--out", str(target)], capsys)
    assert err == f"error: --out: {target} is a file; expected a folder for the episode files"
    assert target.read_bytes() == b"keep me"


def test_collect_refuses_a_folder_of_another_worlds_episodes(tmp_path, capsys):
    episode = {"frames": np.zeros((2, 64, 64, 3), np.uint8), "actions": np.zeros((1, 3), np.float32),
               "rewards": np.zeros(1, np.float32), "terminated": np.zeros(1, bool), "truncated": np.ones(1, bool),
               "env": np.array("carracing")}
    save_episode(tmp_path / "episode_00000.npz", episode)
    err = refused(["collect", "--env", "cartpole-pixels", "--episodes", "1", "--out", str(tmp_path)], capsys)
    assert err.startswith(f"error: --out: {tmp_path} holds episodes of carracing (episode_00000.npz)")
    assert str(load_episode(tmp_path / "episode_00000.npz")["env"]) == "carracing"  # untouched


def test_controller_commands_refuse_zero_max_steps(capsys):
    err = refused(["train-controller", "--env", "cartpole-pixels", "--vae", "cartpole", "--out", "c",
                   "--max-steps", "0"], capsys)
    assert err == "error: --max-steps: max_steps must be a positive integer, got 0"


def test_config_values_refused_through_nested_flags(tmp_path, capsys):
    assert refused(["train-vae", "--rollouts", "r", "--out", "o", "--lr", "-1"], capsys) == (
        "error: --lr: learning_rate must be positive and finite, got -1.0")
    assert refused(["dqn", "--gamma", "1.5"], capsys) == "error: --gamma: gamma must be a number in [0, 1], got 1.5"
    assert refused([*DREAM, "--population", "1"], capsys) == (
        "error: --population: population_size must be an integer >= 2, got 1")
    np.savez(tmp_path / "episode_00000.npz", mu=np.zeros((3, 4), np.float32))
    argv = ["train-mdnrnn", "--env", "carracing", "--latents", str(tmp_path), "--out", "o", "--val-episodes", "0"]
    assert refused([*argv, "--mixtures", "0"], capsys) == (
        "error: --mixtures: num_mixtures must be a positive integer, got 0")


def test_argparse_errors_return_2_without_a_traceback(capsys):
    assert refused(["collect", "--env", "pong", "--episodes", "1", "--out", "x"], capsys) == (
        "error: --env: expected one of cartpole-pixels, cartpole, carracing, doom-takecover, got 'pong'")
    assert cli.main(["collect", "--env", "cartpole-pixels", "--episodes", "two", "--out", "x"]) == 2
    assert "invalid int value: 'two'" in capsys.readouterr().err


# --- Ctrl-C: one line saying where the checkpoint is ---------------------------------------------------


def test_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train_vae", interrupted)
    assert cli.main(["train-vae", "--rollouts", "r", "--out", "runs/a/vae"]) == 130
    err = capsys.readouterr().err
    assert err == (f"interrupted: the training state is saved after every finished epoch in "
                   f"{Path('data/checkpoints/runs_a_vae')}; run the same command again to resume\n")
    assert cli.main(["train-vae", "--rollouts", "r", "--out", "o", "--work", "w/vae"]) == 130
    assert f"in {Path('w/vae')};" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_a_one_line_interrupt_message(name):
    command = COMMANDS[name]
    _, args, _ = parse([name, *_required_argv(command)])
    message = command.interrupted(args)
    assert message.startswith("interrupted: ") and "\n" not in message


def _required_argv(command):
    argv = []
    for flag in command.flags():
        if flag.default is flags.REQUIRED:
            argv += [flag.options[0], str(flag.choices[0]) if flag.choices else ("3" if flag.kind is int else "x")]
    return argv


# --- tiny real runs ------------------------------------------------------------------------------------


def test_collect(tmp_path, capsys):
    argv = ["collect", "--env", "cartpole-pixels", "--episodes", "2", "--out", str(tmp_path), "--seed", "3",
            "--max-steps", "5"]
    assert cli.main(argv) == 0
    assert "wrote 2 episodes" in capsys.readouterr().out
    ep = load_episode(tmp_path / "episode_00004.npz")  # files are named by their reset seeds: 3 and 4
    assert ep["frames"].shape[1:] == (64, 64, 3) and len(ep["actions"]) <= 5
    assert np.all(ep["rewards"] == 1.0) and str(ep["env"]) == "cartpole-pixels"
    first = (tmp_path / "episode_00003.npz").read_bytes()
    assert cli.main(argv) == 0  # the same world again: accepted, and the same files
    assert (tmp_path / "episode_00003.npz").read_bytes() == first
    assert cli.main([*argv[:-4], "--seed", "5", "--max-steps", "5"]) == 0  # more episodes join the folder
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [f"episode_0000{i}.npz" for i in (3, 4, 5, 6)]


def test_train_vae_records_the_command_that_ran(tmp_path, capsys):
    data = tmp_path / "d"
    assert cli.main(["collect", "--env", "cartpole-pixels", "--episodes", "2", "--out", str(data),
                     "--max-steps", "4"]) == 0
    argv = ["train-vae", "--rollouts", str(data), "--out", str(tmp_path / "vae"), "--epochs", "1", "--z-dim", "4",
            "--batch-size", "4", "--lr", "0.001", "--work", str(tmp_path / "work"), "--threads", "1"]
    assert cli.main(argv) == 0
    meta = json.loads((tmp_path / "vae.json").read_text())
    assert meta["config"]["z_dim"] == 4 and meta["config"]["learning_rate"] == 0.001
    assert meta["metadata"]["command"] == (
        f"python -m wmlib train-vae --rollouts {data} --out {tmp_path / 'vae'} --epochs 1 --seed 0 --z-dim 4 "
        f"--kl-tolerance 0.5 --lr 0.001 --batch-size 4 --work {tmp_path / 'work'} --threads 1")
    assert parse(shlex.split(meta["metadata"]["command"])[3:])[1] == parse(argv)[1]


def test_ctrl_c_in_a_real_run_ends_with_one_line_and_no_traceback(tmp_path):
    import os
    import signal
    import time

    # A test run started in the background by a non-interactive shell inherits SIGINT ignored, and Python keeps it
    # ignored: the child gets Ctrl-C's default back, as a terminal would give it.
    proc = subprocess.Popen([sys.executable, "-m", "wmlib", "collect", "--env", "cartpole-pixels", "--episodes", "500",
                             "--out", str(tmp_path)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob("*.npz")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.rstrip().splitlines()[-1] == (f"interrupted: the episodes written so far are in {tmp_path}; "
                                             "the same command writes the same files")


# --- evaluate --lockstep ---------------------------------------------------------------------------------------


def test_evaluate_in_lockstep_reports_the_same_episodes(capsys):
    argv = ["evaluate", "--controller", "cartpole_zonly", "--episodes", "4", "--workers", "1"]
    assert cli.main(argv) == 0
    one_at_a_time = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cli.main([*argv, "--lockstep"]) == 0
    lockstep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert lockstep["command"].endswith("--lockstep")
    for key in ("episodes", "mean", "std", "min", "max", "env_steps"):
        assert lockstep[key] == one_at_a_time[key], key
    err = refused([*argv, "--lockstep", "--evaluator", "ray"], capsys)
    assert err.startswith("error: --lockstep: ") and "--evaluator ray" in err
