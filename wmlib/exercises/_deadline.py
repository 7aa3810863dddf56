"""The time budget of one `check`: a deadline that stops learner code, even code that catches the stop.

`_Deadline` arms SIGALRM for the budget; when it is spent, `_Timeout` is raised wherever learner
code (or a test's own code) runs, never inside the checker (wmlib/exercises/_core.py and this file),
the standard library or an installed package, so their `with` blocks and `finally` clauses restore
their state.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import dis
import functools
import os
import signal
import site
import sys
import sysconfig
import threading
import time

_TICK_S = 0.05
"""Once the budget is spent, the alarm repeats this often until the learner's code has stopped."""



def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    dirs |= set(site.getsitepackages()) | {site.getusersitepackages()}
    return tuple(os.path.realpath(d) + os.sep for d in dirs)


_LIBRARY_DIRS = _library_dirs()
_CORE_FILE = os.path.join(os.path.dirname(__file__), "_core.py")
"""The checker: a stack walk from learner code stops at its first frame there (the test runner)."""
_CHECKER_FILES = frozenset({__file__, _CORE_FILE})


@functools.lru_cache(maxsize=4096)
def _interruptible(code) -> bool:
    """May the budget interrupt this code mid-line? Not the checker's own code, nor the standard library's
    or an installed package's (so their `with` blocks and `finally` clauses restore their state)."""
    name = code.co_filename
    return not (name in _CHECKER_FILES or name.startswith("<frozen")
                or os.path.realpath(name).startswith(_LIBRARY_DIRS))


@functools.lru_cache(maxsize=1024)
def _with_lines(code) -> frozenset[int]:
    """Lines of `with` statements: a `with` block's exit runs at its first line, and must not be skipped."""
    return frozenset(i.positions.lineno for i in dis.get_instructions(code)
                     if i.opname in ("BEFORE_WITH", "BEFORE_ASYNC_WITH", "WITH_EXCEPT_START"))


class _Timeout(BaseException):
    """The budget is spent. A BaseException, so `except Exception` does not catch it.

    A learner's `except:` can; when such a handler drops the exception, `_Rearm` turns the line
    trace on again (a trace function that raises is switched off by Python).
    """

    def __init__(self, deadline: _Deadline | None = None):
        super().__init__("the check's time budget is spent")
        self._rearm = _Rearm(deadline) if deadline is not None else None


class _Rearm:
    __slots__ = ("deadline",)

    def __init__(self, deadline: _Deadline):
        self.deadline = deadline

    def __del__(self):
        if self.deadline.active and threading.current_thread() is threading.main_thread():
            self.deadline.trace_stack(sys._getframe(1))


def _let_pending_signals_run() -> None:
    """Calling a Python function runs any signal handler still pending (here, harmlessly)."""


class _Deadline:
    """The budget of one `check`: every test's code, the learner's and the test's own, counts.

    When the budget is spent, SIGALRM fires and then repeats every _TICK_S. Each alarm raises
    `_Timeout` where learner code runs and (re)installs a line trace that raises it again at every
    line of learner code (except the line of a `with`, where the block's exit runs). A loop that
    catches it (`while True: try: f() except: continue`) is then stopped at the first line of its
    handler, however deeply such loops nest. Main thread on POSIX only; elsewhere the budget is
    checked between tests.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = False
        self._fired = False
        self._end = time.monotonic() + seconds
        self._signals = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        self._traced = False

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._end

    def __enter__(self) -> _Deadline:
        self.active = True
        self._end = time.monotonic() + self.seconds
        if self._signals:
            self._previous_trace = sys.gettrace()
            self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds, _TICK_S)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        """Disarm: no more alarms, no trace, the previous SIGALRM handler back. Idempotent."""
        if not self.active:
            return
        self.active = False
        if self._signals:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if self._traced:
                sys.settrace(self._previous_trace)
            _let_pending_signals_run()
            signal.signal(signal.SIGALRM, self._previous_handler if self._previous_handler is not None
                          else signal.SIG_DFL)

    def _on_alarm(self, signum, frame) -> None:
        self._fired = True
        if not self.active:
            return
        self.trace_stack(frame)
        if frame is not None and _interruptible(frame.f_code):
            raise _Timeout(self)

    def trace_stack(self, frame) -> None:
        """Trace new frames, and the learner's frames from `frame` up to the checker's."""
        self._traced = True
        sys.settrace(self._trace)
        while frame is not None and frame.f_code.co_filename != _CORE_FILE:
            if _interruptible(frame.f_code):
                frame.f_trace = self._trace
            frame = frame.f_back

    def _trace(self, frame, event, arg):
        if not self.active or not _interruptible(frame.f_code):
            return None
        if event == "line" and frame.f_lineno not in _with_lines(frame.f_code):
            raise _Timeout(self)
        return self._trace
