"""The exercise checker itself: check/use/strict mode, and that learner code can't crash, hang or fool it."""

import json
import math
import signal
import sys
import time

import numpy as np
import pytest
import torch

import wmlib.exercises._core as core
from wmlib.exercises import CheckResult, ExerciseError, check, get_exercise, known_ids, progress, run_tests, use
from wmlib.exercises.ch01 import discounted_return as reference_discounted_return


def _stub(rewards, gamma):
    raise NotImplementedError


def _mine(rewards, gamma):
    """A correct discounted return, written independently of wmlib's reference."""
    total = 0.0
    for reward in reversed(list(rewards)):
        total = float(reward) + gamma * total
    return total


@pytest.fixture(autouse=True)
def _own_progress_file(tmp_path, monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(tmp_path / "progress.json"))
    monkeypatch.setattr(core, "_last_check", None, raising=False)  # (a check of an earlier test is forgotten)
    return tmp_path / "progress.json"


def _recorded(path):
    return json.loads(path.read_text()) if path.exists() else {}


def test_known_ids_include_the_design_ids():
    assert {"ch01.discounted_return", "ch01.bellman_target"} <= set(known_ids())


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(KeyError) as info:
        check("ch01.no_such_thing", _mine)
    assert "ch01.bellman_target" in str(info.value) and "ch01.no_such_thing" in str(info.value)


def test_pass_reports_passed_and_attempted(capsys):
    result = check("ch01.discounted_return", _mine)
    assert isinstance(result, CheckResult)
    assert result.passed and result.attempted and result.failures == []
    assert "[PASS]" in capsys.readouterr().out


def test_stub_is_not_attempted(capsys):
    result = check("ch01.discounted_return", _stub)
    assert not result.passed and not result.attempted
    assert "not attempted yet" in capsys.readouterr().out


def test_learner_exception_becomes_a_message():
    def broken(rewards, gamma):
        return float(len(rewards)) / 0  # a Python float: raises ZeroDivisionError on every input

    result = check("ch01.discounted_return", broken)
    assert not result.passed and result.attempted
    assert any("ZeroDivisionError" in m for m in result.failures)


def test_nan_becomes_a_message():
    result = run_tests("ch01.discounted_return", lambda rewards, gamma: math.nan)
    assert not result.passed
    assert any("NaN" in m for m in result.failures)


def test_not_callable_is_reported():
    result = run_tests("ch01.discounted_return", 42)
    assert not result.passed and "expected a function" in result.failures[0]


def test_use_returns_the_learners_function_when_it_passes():
    assert use("ch01.discounted_return", _mine) is _mine


def test_use_falls_back_to_the_reference_with_a_note(capsys):
    fn = use("ch01.discounted_return", _stub)
    assert fn is reference_discounted_return
    assert "reference" in capsys.readouterr().out


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("WMLIB_STRICT", "1")
    with pytest.raises(ExerciseError):
        check("ch01.discounted_return", _stub)
    with pytest.raises(ExerciseError):
        use("ch01.discounted_return", lambda r, g: 0.0)
    with pytest.raises(ExerciseError, match="wmlib's reference"):
        check("ch01.discounted_return", reference_discounted_return)
    assert use("ch01.discounted_return", _mine) is _mine


def test_progress_is_recorded_outside_the_notebook():
    check("ch01.discounted_return", _mine)
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
    assert check("ch01.discounted_return", _mine).passed


# --- a check cell run twice never passes on wmlib's reference (issue 13, break 1) --------------------


@pytest.mark.parametrize("exercise_id", known_ids())
def test_running_a_check_cell_twice_unsolved_reports_no_pass(exercise_id, capsys, _own_progress_file):
    def stub(*args, **kwargs):
        raise NotImplementedError

    fn = stub
    for _ in range(2):  # the cell: check(id, X); X = use(id, X)
        result = check(exercise_id, fn)
        assert not result.passed
        fn = use(exercise_id, fn)
    assert fn is get_exercise(exercise_id).reference
    assert result.failures == [core.REFERENCE_NOTE] and not result.attempted
    out = capsys.readouterr().out
    assert "[PASS]" not in out and "wmlib's reference, not your function" in out
    assert _recorded(_own_progress_file).get(exercise_id, {}).get("passed") is not True
    assert {i: s for _, i, s in progress()}[exercise_id] == "todo"


def test_use_right_after_check_does_not_run_the_tests_again():
    calls = []

    def counted(rewards, gamma):
        calls.append(1)
        return _mine(rewards, gamma)

    check("ch01.discounted_return", counted)
    after_check = len(calls)
    assert after_check > 0 and use("ch01.discounted_return", counted) is counted
    assert len(calls) == after_check
    use("ch01.discounted_return", lambda r, g: _mine(r, g))  # another function is checked afresh
    assert len(calls) == after_check


# --- one time budget per check (issue 13, break 3) ---------------------------------------------------


def _forever(rewards, gamma):
    while True:
        pass


def _swallows_everything(rewards, gamma):
    while True:
        try:
            _forever(rewards, gamma)
        except:  # noqa: E722  (a learner's bare except, on purpose)
            continue


def _swallows_base_exceptions_two_deep(rewards, gamma):
    while True:
        try:
            try:
                _swallows_everything(rewards, gamma)
            except BaseException:
                pass
        except BaseException:
            pass


def test_endless_loop_fails_within_the_budget(capsys):
    start = time.monotonic()
    result = check("ch01.discounted_return", _forever)
    fn = use("ch01.discounted_return", _forever)
    seconds = time.monotonic() - start
    assert not result.passed and result.attempted and fn is reference_discounted_return
    assert seconds < core.CHECK_TIME_BUDGET_S + 3.0, f"check + use took {seconds:.1f} s"
    assert len(result.results) == 1, "the tests after the first timeout must not run"
    assert "more than" in result.failures[0] and "did not run" in result.failures[0]


def _catches_and_returns(rewards, gamma):
    try:
        _forever(rewards, gamma)
    except BaseException:
        return _mine(rewards, gamma)  # a right answer, but only after the budget is spent


@pytest.mark.parametrize("fn", [_forever, _swallows_everything, _swallows_base_exceptions_two_deep,
                                _catches_and_returns],
                         ids=["while-true", "bare-except-continue", "base-exception-two-deep", "catch-and-return"])
def test_loops_that_swallow_the_timeout_are_stopped(fn, monkeypatch):
    monkeypatch.setattr(core, "CHECK_TIME_BUDGET_S", 0.5)
    handler, trace = signal.getsignal(signal.SIGALRM), sys.gettrace()
    start = time.monotonic()
    result = check("ch01.discounted_return", fn)
    seconds = time.monotonic() - start
    assert not result.passed and "more than 0.5 s" in result.failures[0]
    assert seconds < 3.0, f"check took {seconds:.1f} s"
    assert signal.getsignal(signal.SIGALRM) is handler and sys.gettrace() is trace  # all restored
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_budget_is_for_the_whole_check_not_per_call(monkeypatch):
    monkeypatch.setattr(core, "CHECK_TIME_BUDGET_S", 1.0)

    def slow_but_right(rewards, gamma):
        time.sleep(0.4)  # the check calls it several times: more than 1 s in all
        return _mine(rewards, gamma)

    start = time.monotonic()
    result = run_tests("ch01.discounted_return", slow_but_right)
    assert not result.passed and "more than 1 s" in result.failures[-1]
    assert time.monotonic() - start < 2.0


def test_library_state_survives_a_timeout(monkeypatch):
    monkeypatch.setattr(core, "CHECK_TIME_BUDGET_S", 0.3)

    def loops_without_grad(rewards, gamma):
        with torch.no_grad():
            while True:
                pass

    assert not run_tests("ch01.discounted_return", loops_without_grad).passed
    assert torch.is_grad_enabled(), "torch.no_grad's exit was interrupted: grad mode stayed off"


# --- check returns a result for whatever learner code raises or returns (issue 13, break 4) ----------


class _LearnersOwnBaseException(BaseException):
    pass


class _ExitsWhenRead:
    def __float__(self):
        raise SystemExit("read")


def _raises(exc):
    def fn(*args):
        raise exc

    return fn


@pytest.mark.parametrize(("exercise_id", "fn", "says"), [
    ("ch01.discounted_return", lambda r, g: sys.exit(), "sys.exit()"),
    ("ch01.discounted_return", _raises(SystemExit(3)), "SystemExit"),
    ("ch01.discounted_return", _raises(_LearnersOwnBaseException("mine")), "_LearnersOwnBaseException: mine"),
    ("ch01.discounted_return", _raises(GeneratorExit()), "GeneratorExit"),
    ("ch01.discounted_return", lambda r, g: 10**400, "too large"),
    ("ch01.discounted_return", lambda r, g: _ExitsWhenRead(), "SystemExit"),
    ("ch01.discounted_return", lambda r, g: (x for x in r), "should be a number"),
    ("ch02.kl_divergence", lambda mu, logvar: np.array([None] * len(mu), dtype=object), "dtype object"),
    ("ch02.kl_divergence", lambda mu, logvar: 10**400, "too large"),
    ("ch02.kl_divergence", lambda mu, logvar: mu.numpy().astype(str), "should hold numbers"),
], ids=["sys.exit", "SystemExit", "BaseException-subclass", "GeneratorExit", "int-10**400", "exit-when-read",
        "generator", "object-array", "kl-10**400", "string-array"])
def test_check_returns_a_result_for_anything_learner_code_does(exercise_id, fn, says):
    result = check(exercise_id, fn)
    assert result.attempted and not result.passed
    assert any(says in m for m in result.failures), result.failures


def test_keyboard_interrupt_still_interrupts():
    with pytest.raises(KeyboardInterrupt):
        check("ch01.discounted_return", _raises(KeyboardInterrupt()))


# --- no import cycle (issue 12) ---------------------------------------------------------------------


def test_progress_imports_nothing_from_the_checker():
    import ast

    progress_module = sys.modules["wmlib.exercises.progress"]  # (the package's `progress` is the function)
    tree = ast.parse(open(progress_module.__file__).read())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("wmlib")], imported
