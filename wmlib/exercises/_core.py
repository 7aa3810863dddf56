"""The exercise registry and checker behind `check` and `use`.

An exercise is an id ("ch02.reparameterize"), wmlib's reference implementation, and a list of
named tests. A test is a function that receives the learner's callable wrapped in a guard
(`Guarded`) and raises `AssertionError` with a message a learner can act on when something is
wrong. Whatever else learner code does (raise anything, return something no test can use, loop
for ever, even while catching the checker's own interruption) becomes a failure message, so
nothing a learner writes can take the kernel down. Only KeyboardInterrupt (the learner's own
"stop") and `os._exit` get through.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import html
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from wmlib.exercises._deadline import _Deadline, _Timeout
from wmlib.exercises.progress import record as _record_progress

CHECK_TIME_BUDGET_S = 5.0
"""Seconds one `check` (or `use`) may spend on all the tests of an exercise together; the first
test still running when they are spent fails, and the rest are not run."""

REFERENCE_NOTE = "this is wmlib's reference, not your function: run your exercise cell again"
NOT_ATTEMPTED_NOTE = "not attempted yet (the stub still raises NotImplementedError)"


class ExerciseError(Exception):
    """Raised in strict mode (WMLIB_STRICT=1) when an exercise does not pass."""


class LearnerCodeError(Exception):
    """The learner's function raised or returned something unusable.

    Tests let it propagate; the checker turns it into a failure message.
    """


class NotAttempted(Exception):
    """The learner's function still raises NotImplementedError."""


@dataclass(frozen=True)
class Exercise:
    """One registered exercise."""

    id: str
    signature: str
    reference: Callable
    tests: tuple[tuple[str, Callable], ...]


@dataclass
class CheckResult:
    """What `check` found.

    passed:    every test passed
    attempted: False when the function still raises NotImplementedError, or is wmlib's reference
    failures:  one message per failed test ("test name: what was wrong"); when not attempted, why not
    results:   (test name, passed, message) for every test that ran, in order
    """

    exercise_id: str
    passed: bool
    attempted: bool
    failures: list[str] = field(default_factory=list)
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def __repr__(self) -> str:
        n_ok = sum(ok for _, ok, _ in self.results)
        return (
            f"CheckResult({self.exercise_id!r}, passed={self.passed}, attempted={self.attempted}, "
            f"{n_ok}/{len(self.results)} tests)"
        )

    def _why_not_attempted(self) -> str:
        return self.failures[0] if self.failures else NOT_ATTEMPTED_NOTE

    def report_text(self) -> str:
        if not self.attempted:
            return f"[ ] {self.exercise_id}: {self._why_not_attempted()}"
        head = "PASS" if self.passed else "FAIL"
        lines = [f"[{head}] {self.exercise_id}"]
        for name, ok, msg in self.results:
            lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {msg}"))
        return "\n".join(lines)

    def report_html(self) -> str:
        if not self.attempted:
            return (f"<div style='font-family:monospace'>&#9744; <b>{html.escape(self.exercise_id)}</b>: "
                    f"{html.escape(self._why_not_attempted())}</div>")
        colour = "#1a7f37" if self.passed else "#cf222e"
        rows = []
        for name, ok, msg in self.results:
            mark = "&#10004;" if ok else "&#10008;"
            rows.append(
                f"<tr><td style='color:{'#1a7f37' if ok else '#cf222e'}'>{mark}</td>"
                f"<td>{html.escape(name)}</td><td>{html.escape(msg)}</td></tr>"
            )
        title = "all tests pass" if self.passed else f"{len(self.failures)} of {len(self.results)} tests fail"
        return (
            f"<div style='font-family:monospace'><b style='color:{colour}'>"
            f"{html.escape(self.exercise_id)}: {title}</b>"
            f"<table style='font-size:90%'>{''.join(rows)}</table></div>"
        )


_REGISTRY: dict[str, Exercise] = {}


def register(exercise_id: str, signature: str, reference: Callable, tests: list[tuple[str, Callable]]) -> None:
    """Add an exercise. Called once per id by the chapter modules (wmlib/exercises/chNN.py)."""
    if exercise_id in _REGISTRY:
        raise ValueError(f"exercise {exercise_id!r} is registered twice")
    if not tests:
        raise ValueError(f"exercise {exercise_id!r} needs at least one test")
    _REGISTRY[exercise_id] = Exercise(exercise_id, signature, reference, tuple(tests))


def get_exercise(exercise_id: str) -> Exercise:
    """The registered exercise, or a KeyError that lists every known id."""
    if not isinstance(exercise_id, str) or exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown exercise id {exercise_id!r}; known ids are: {known}")
    return _REGISTRY[exercise_id]


def known_ids() -> list[str]:
    """Every registered exercise id, sorted."""
    return sorted(_REGISTRY)


def strict_mode() -> bool:
    """WMLIB_STRICT=1 makes `check` and `use` raise instead of reporting (used by the test suite)."""
    return os.environ.get("WMLIB_STRICT", "").strip().lower() in {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------------------------
# Running learner code safely
# ---------------------------------------------------------------------------------------------


def _text(exc: BaseException) -> str:
    """str(exc), safe even when the exception's own __str__ fails."""
    try:
        return str(exc)
    except Exception:
        return "(its message could not be shown)"


def _describe(exc: BaseException) -> str:
    """`Type: message (line n)`, the line where the learner's code raised it."""
    text = _text(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"


class Guarded:
    """The learner's function; whatever it raises becomes `LearnerCodeError` (or `NotAttempted`).

    Calls made after the check's time budget is spent raise `_Timeout` at once.
    """

    def __init__(self, fn: Callable, deadline: _Deadline | None = None):
        self.fn = fn
        self.deadline = deadline

    def __call__(self, *args, **kwargs):
        if self.deadline is not None and self.deadline.expired:
            raise _Timeout()
        try:
            return self.fn(*args, **kwargs)
        except (_Timeout, KeyboardInterrupt):
            raise
        except NotImplementedError as exc:
            raise NotAttempted() from exc
        except SystemExit:
            raise LearnerCodeError("your function called sys.exit() or raised SystemExit; return a value instead"
                                   ) from None
        except BaseException as exc:  # anything else the learner's code raises is reported, not re-raised
            raise LearnerCodeError(f"your function raised {_describe(exc)}") from None


# ---------------------------------------------------------------------------------------------
# check and use
# ---------------------------------------------------------------------------------------------


def _timeout_message(not_run: int) -> str:
    rest = f"; the {not_run} test{'s' if not_run > 1 else ''} after it did not run" if not_run else ""
    return f"the tests ran for more than {CHECK_TIME_BUDGET_S:g} s in all (an endless loop?){rest}"


def _run_one(test: Callable, guarded: Guarded) -> str | None:
    """Run one test: None when it passes, else what was wrong. Lets NotAttempted and KeyboardInterrupt out."""
    try:
        test(guarded)
    except (NotAttempted, KeyboardInterrupt):
        raise
    except _Timeout:
        return "timed out"  # (run_tests says it better: the budget is spent)
    except AssertionError as exc:
        return _text(exc) or "assertion failed"
    except LearnerCodeError as exc:
        return _text(exc)
    except BaseException as exc:  # the test tripped over what the function returned (an odd type, ...)
        return f"the test could not use what your function returned: {_describe(exc)}"
    return None


def run_tests(exercise_id: str, fn: Callable) -> CheckResult:
    """Run every test of `exercise_id` against `fn` and collect the result; displays nothing.

    All tests share one time budget (CHECK_TIME_BUDGET_S); the first test still running when it is
    spent fails, and the tests after it do not run.
    """
    exercise = get_exercise(exercise_id)
    if not callable(fn):
        msg = f"expected a function with signature {exercise.signature}, got {type(fn).__name__}"
        return CheckResult(exercise_id, False, True, [msg], [("is callable", False, msg)])
    results: list[tuple[str, bool, str]] = []
    with _Deadline(CHECK_TIME_BUDGET_S) as deadline:
        guarded = Guarded(fn, deadline)
        for k, (name, test) in enumerate(exercise.tests):
            try:
                problem = _run_one(test, guarded)
            except NotAttempted:
                return CheckResult(exercise_id, passed=False, attempted=False, failures=[NOT_ATTEMPTED_NOTE])
            if deadline.expired:  # (also when the learner's code caught the timeout and went on)
                deadline.stop()
                results.append((name, False, _timeout_message(len(exercise.tests) - k - 1)))
                break
            results.append((name, problem is None, problem or ""))
    failures = [f"{name}: {msg}" for name, ok, msg in results if not ok]
    return CheckResult(exercise_id, passed=not failures, attempted=True, failures=failures, results=results)


def _is_reference(fn) -> bool:
    """Is `fn` a reference implementation (what `use` hands back when an exercise is not solved)?"""
    return any(fn is exercise.reference for exercise in _REGISTRY.values())


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _show(result: CheckResult) -> None:
    if _in_notebook():
        from IPython.display import HTML, display

        display(HTML(result.report_html()))
    else:
        print(result.report_text())


_last_check: tuple[str, Callable, CheckResult] | None = None
"""(id, function, result) of the latest `check`: the `use` right after it reuses the result."""


def _reference_result(exercise_id: str) -> CheckResult:
    return CheckResult(exercise_id, passed=False, attempted=False, failures=[REFERENCE_NOTE])


def check(exercise_id: str, fn: Callable) -> CheckResult:
    """Run the tests registered for `exercise_id` against `fn`, show a report, return the result.

    Never raises for anything the learner's code does (unless WMLIB_STRICT=1); an unknown id is a
    KeyError listing the known ids. wmlib's own reference (what `use` returned before) is reported
    as not attempted, so that running a check cell twice never shows a pass the learner did not earn.
    """
    global _last_check
    get_exercise(exercise_id)  # a KeyError listing the known ids comes first
    if _is_reference(fn):
        result = _reference_result(exercise_id)
    else:
        result = run_tests(exercise_id, fn)
        _record_progress(result)
    _last_check = (exercise_id, fn, result)
    _show(result)
    if strict_mode() and not result.passed:
        raise ExerciseError(result.report_text())
    return result


def use(exercise_id: str, fn: Callable) -> Callable:
    """`fn` when it passes its tests, else wmlib's reference (with a visible note).

    This keeps every chapter runnable top to bottom before the learner has solved anything. Right
    after `check(exercise_id, fn)` the check's result is reused. In strict mode a failing `fn` raises.
    """
    exercise = get_exercise(exercise_id)
    if _is_reference(fn):
        result = _reference_result(exercise_id)
    elif _last_check is not None and _last_check[0] == exercise_id and _last_check[1] is fn:
        result = _last_check[2]  # (already recorded by that check)
    else:
        result = run_tests(exercise_id, fn)
        _record_progress(result)
    if result.passed:
        return fn
    if strict_mode():
        raise ExerciseError(result.report_text())
    if _is_reference(fn):
        why = REFERENCE_NOTE
    else:
        why = f"your version {'is not attempted yet' if not result.attempted else 'does not pass its tests yet'}"
    note = f"Note: using wmlib's reference for {exercise_id}: {why}."
    if _in_notebook():
        from IPython.display import HTML, display

        display(HTML(f"<div style='font-family:monospace;color:#9a6700'>{html.escape(note)}</div>"))
    else:
        print(note)
    return exercise.reference
