"""`python -m wmlib`: the commands exist, work on tiny inputs, and fail with a clear message."""

import subprocess
import sys

import numpy as np

from wmlib.cli import main
from wmlib.rollouts import load_episode


def test_help_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "wmlib", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ("collect", "dqn"):
        assert name in proc.stdout


def test_collect(tmp_path, capsys):
    assert main(["collect", "--env", "cartpole-pixels", "--episodes", "2", "--out", str(tmp_path),
                 "--seed", "3", "--max-steps", "5"]) == 0
    assert "wrote 2 episodes" in capsys.readouterr().out
    ep = load_episode(tmp_path / "episode_00001.npz")
    assert ep["frames"].shape[1:] == (64, 64, 3) and len(ep["actions"]) <= 5
    assert np.all(ep["rewards"] == 1.0)


def test_bad_arguments_give_a_clear_error(tmp_path, capsys):
    assert main(["collect", "--env", "cartpole", "--episodes", "0", "--out", str(tmp_path)]) == 2
    assert "at least 1" in capsys.readouterr().err
