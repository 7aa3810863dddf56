"""The exercise registry and checker behind `check` and `use`.

An exercise is an id ("ch02.reparameterize"), wmlib's reference implementation, and a list of
named tests. A test is a function that receives the learner's callable wrapped in a guard
(`Guarded`) and raises `AssertionError` with a message a learner can act on when something is
wrong. The guard turns every exception, NaN or runaway loop in learner code into a failure
message, so nothing a learner writes can take the kernel down.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import html
import os
import signal
import threading
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from wmlib.exercises import progress as _progress

TIME_LIMIT_S = 10.0
"""Seconds one call of the learner's function may take before it counts as a runaway loop."""


class ExerciseError(Exception):
    """Raised in strict mode (WMLIB_STRICT=1) when an exercise does not pass."""


class LearnerCodeError(Exception):
    """The learner's function raised, looped too long, or returned something unusable.

    Tests let it propagate; the checker turns it into a failure message.
    """


class NotAttempted(Exception):
    """The learner's function still raises NotImplementedError."""


class _Timeout(BaseException):
    """Raised inside learner code by the alarm; BaseException so `except Exception` can't eat it."""


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
    attempted: False when the function still raises NotImplementedError
    failures:  one message per failed test ("test name: what was wrong")
    results:   (test name, passed, message) for every test, in order
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

    def report_text(self) -> str:
        if not self.attempted:
            return f"[ ] {self.exercise_id}: not attempted yet (the stub still raises NotImplementedError)"
        head = "PASS" if self.passed else "FAIL"
        lines = [f"[{head}] {self.exercise_id}"]
        for name, ok, msg in self.results:
            lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {msg}"))
        return "\n".join(lines)

    def report_html(self) -> str:
        if not self.attempted:
            return (
                f"<div style='font-family:monospace'>&#9744; <b>{html.escape(self.exercise_id)}</b>: "
                "not attempted yet (the stub still raises <code>NotImplementedError</code>)</div>"
            )
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


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after `seconds` (main thread on POSIX only; elsewhere no limit)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _on_alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _last_learner_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (line {frames[-1].lineno})" if frames else ""


class Guarded:
    """The learner's function, called with a time limit; its errors become `LearnerCodeError`."""

    def __init__(self, fn: Callable, time_limit_s: float | None = None):
        self.fn = fn
        self.time_limit_s = TIME_LIMIT_S if time_limit_s is None else time_limit_s

    def __call__(self, *args, **kwargs):
        try:
            with _time_limit(self.time_limit_s):
                return self.fn(*args, **kwargs)
        except NotImplementedError as exc:
            raise NotAttempted() from exc
        except _Timeout:
            raise LearnerCodeError(
                f"your function ran for more than {self.time_limit_s:g} s (an endless loop?)"
            ) from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # anything the learner's code raises is reported, not re-raised
            raise LearnerCodeError(
                f"your function raised {type(exc).__name__}: {exc}{_last_learner_line(exc)}"
            ) from exc


# ---------------------------------------------------------------------------------------------
# check and use
# ---------------------------------------------------------------------------------------------


def run_tests(exercise_id: str, fn: Callable) -> CheckResult:
    """Run every test of `exercise_id` against `fn` and collect the result; displays nothing."""
    exercise = get_exercise(exercise_id)
    if not callable(fn):
        msg = f"expected a function with signature {exercise.signature}, got {type(fn).__name__}"
        return CheckResult(exercise_id, False, True, [msg], [("is callable", False, msg)])
    guarded = Guarded(fn)
    results: list[tuple[str, bool, str]] = []
    for name, test in exercise.tests:
        try:
            test(guarded)
        except NotAttempted:
            return CheckResult(exercise_id, passed=False, attempted=False,
                               failures=["not attempted: the function raises NotImplementedError"])
        except AssertionError as exc:
            results.append((name, False, str(exc) or "assertion failed"))
        except LearnerCodeError as exc:
            results.append((name, False, str(exc)))
        except _Timeout:
            results.append((name, False, "timed out"))
        else:
            results.append((name, True, ""))
    failures = [f"{name}: {msg}" for name, ok, msg in results if not ok]
    return CheckResult(exercise_id, passed=not failures, attempted=True, failures=failures, results=results)


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


def check(exercise_id: str, fn: Callable) -> CheckResult:
    """Run the tests registered for `exercise_id` against `fn`, show a report, return the result.

    Never raises for anything the learner's code does (unless WMLIB_STRICT=1); an unknown id is a
    KeyError listing the known ids.
    """
    result = run_tests(exercise_id, fn)
    _progress.record(result)
    _show(result)
    if strict_mode() and not result.passed:
        raise ExerciseError(result.report_text())
    return result


def use(exercise_id: str, fn: Callable) -> Callable:
    """`fn` when it passes its tests, else wmlib's reference (with a visible note).

    This keeps every chapter runnable top to bottom before the learner has solved anything.
    In strict mode a failing `fn` raises instead.
    """
    exercise = get_exercise(exercise_id)
    result = run_tests(exercise_id, fn)
    _progress.record(result)
    if result.passed:
        return fn
    if strict_mode():
        raise ExerciseError(result.report_text())
    why = "it is not attempted yet" if not result.attempted else "it does not pass its tests yet"
    note = f"Note: using wmlib's reference for {exercise_id} because your version {why}."
    if _in_notebook():
        from IPython.display import HTML, display

        display(HTML(f"<div style='font-family:monospace;color:#9a6700'>{html.escape(note)}</div>"))
    else:
        print(note)
    return exercise.reference
