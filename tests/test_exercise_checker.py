"""The exercise checker itself: check/use/strict mode, and that learner code can't crash it."""

import math

import pytest

import wmlib.exercises._core as core
from wmlib.exercises import CheckResult, ExerciseError, check, known_ids, progress, run_tests, use
from wmlib.exercises.ch01 import discounted_return


def _stub(rewards, gamma):
    raise NotImplementedError


def test_known_ids_include_the_design_ids():
    assert {"ch01.discounted_return", "ch01.bellman_target"} <= set(known_ids())


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(KeyError) as info:
        check("ch01.no_such_thing", discounted_return)
    assert "ch01.bellman_target" in str(info.value) and "ch01.no_such_thing" in str(info.value)


def test_pass_reports_passed_and_attempted(capsys, monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)
    result = check("ch01.discounted_return", discounted_return)
    assert isinstance(result, CheckResult)
    assert result.passed and result.attempted and result.failures == []
    assert "PASS" in capsys.readouterr().out


def test_stub_is_not_attempted(monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)
    result = check("ch01.discounted_return", _stub)
    assert not result.passed and not result.attempted


def test_learner_exception_becomes_a_message(monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)

    def broken(rewards, gamma):
        return float(len(rewards)) / 0  # a Python float: raises ZeroDivisionError on every input

    result = check("ch01.discounted_return", broken)
    assert not result.passed and result.attempted
    assert any("ZeroDivisionError" in m for m in result.failures)


def test_nan_becomes_a_message():
    result = run_tests("ch01.discounted_return", lambda rewards, gamma: math.nan)
    assert not result.passed
    assert any("NaN" in m for m in result.failures)


def test_runaway_loop_becomes_a_message(monkeypatch):
    monkeypatch.setattr(core, "TIME_LIMIT_S", 0.2)

    def forever(rewards, gamma):
        while True:
            pass

    result = run_tests("ch01.discounted_return", forever)
    assert not result.passed
    assert any("more than" in m for m in result.failures)


def test_not_callable_is_reported():
    result = run_tests("ch01.discounted_return", 42)
    assert not result.passed and "expected a function" in result.failures[0]


def test_use_returns_the_learners_function_when_it_passes(monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)

    def mine(rewards, gamma):
        return sum(gamma**t * r for t, r in enumerate(rewards))

    assert use("ch01.discounted_return", mine) is mine


def test_use_falls_back_to_the_reference_with_a_note(monkeypatch, capsys):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)
    fn = use("ch01.discounted_return", _stub)
    assert fn is discounted_return
    assert "reference" in capsys.readouterr().out


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("WMLIB_STRICT", "1")
    with pytest.raises(ExerciseError):
        check("ch01.discounted_return", _stub)
    with pytest.raises(ExerciseError):
        use("ch01.discounted_return", lambda r, g: 0.0)
    assert use("ch01.discounted_return", discounted_return) is discounted_return


def test_progress_is_recorded_outside_the_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)
    path = tmp_path / "p.json"
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(path))
    check("ch01.discounted_return", discounted_return)
    check("ch01.bellman_target", lambda *a: 0)
    rows = {ex_id: status for _, ex_id, status in progress()}
    assert rows["ch01.discounted_return"] == "pass"
    assert rows["ch01.bellman_target"] == "fail"
    # a later unsolved stub does not erase a pass
    check("ch01.discounted_return", _stub)
    assert {i: s for _, i, s in progress()}["ch01.discounted_return"] == "pass"


def test_unwritable_progress_file_is_harmless(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(blocker / "p.json"))
    assert check("ch01.discounted_return", discounted_return).passed
