"""Chapter 6's exercise: the reference and an independent correct version pass, every wrong one fails.

(tests/test_exercises.py checks every chapter's catalogue once its CHAPTERS lists "ch06"; the catalogue
is checked here as well, so it cannot go unchecked.)
"""

import numpy as np
import pytest
import torch

from tests.wrong_versions.ch06 import WRONG_VERSIONS
from wmlib.controller import map_action
from wmlib.exercises import get_exercise, known_ids, run_tests
from wmlib.tasks import world_spec


def _independent_thirds_action(y):
    # Written without looking at wmlib: one output at a time, in ViZDoom's order (0 stay, 1 right, 2 left).
    out = []
    for v in y.tolist():
        out.append(2 if v < -1 / 3 else 1 if v > 1 / 3 else 0)
    return torch.tensor(out, dtype=torch.int64)


def test_registered_with_wrong_versions():
    assert "ch06.thirds_action" in known_ids()
    assert set(WRONG_VERSIONS) == {i for i in known_ids() if i.startswith("ch06.")}


def test_reference_and_independent_version_pass():
    for fn in (get_exercise("ch06.thirds_action").reference, _independent_thirds_action):
        result = run_tests("ch06.thirds_action", fn)
        assert result.passed, result.failures


@pytest.mark.parametrize(("name", "fn"), list(WRONG_VERSIONS["ch06.thirds_action"].items()))
def test_wrong_version_is_rejected(name, fn):
    result = run_tests("ch06.thirds_action", fn)
    assert result.attempted and not result.passed, f"the wrong version {name!r} passed every test"
    assert all(result.failures)


def test_reference_is_the_worlds_action_map():
    # The exercise's answer is what the real agent does: one output at a time through map_action.
    doom = world_spec("doom-takecover")
    ys = np.linspace(-1, 1, 301, dtype=np.float32)
    one_by_one = [map_action(np.array([y]), doom.action_map) for y in ys]
    batched = get_exercise("ch06.thirds_action").reference(torch.from_numpy(ys))
    assert batched.tolist() == one_by_one
    assert {int(a) for a in one_by_one} == {0, 1, 2}
    for y, a in zip(ys, one_by_one, strict=True):
        assert doom.action_space.contains(a)
        if abs(abs(float(y)) - 1 / 3) > 1e-3:
            assert a == (2 if y < -1 / 3 else 1 if y > 1 / 3 else 0), (y, a)
