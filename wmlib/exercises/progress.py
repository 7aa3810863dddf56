"""A learner's progress: which exercises pass and how quizzes went, in a small JSON file outside the notebooks.

The file is `~/.wmlib/progress.json`, or the path in WMLIB_PROGRESS_FILE. `check` and `use`
record exercises, quizzes record their answers, and `progress()` (wmlib.exercises) shows it. One
entry per id:

    "ch02.kl_divergence": {"passed": true, "attempted": true, "time": 1700000000}
    "ch02.quiz":          {"kind": "quiz", "answers": [true, false, null], "time": 1700000000}

(a quiz keeps each question's latest answer: right, wrong, or null for not answered yet).

Recording never raises, and never loses a record without saying so:
- two kernels recording at once both keep their records (a lock on a sibling `.lock` file, and every
  write re-reads the file and changes only its own entry);
- entries of an unexpected shape are ignored when read and replaced when written;
- a file that is not valid JSON is kept as `progress.json.corrupt-<time>` before a new one is
  started; a path that cannot be written (a directory, a read-only home) records nothing; each of
  these prints one note, once.

This module imports nothing from the rest of wmlib.exercises (the checker imports it).

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writes stay atomic, concurrent kernels may race
    fcntl = None

LOCK_TIMEOUT_S = 5.0
"""How long a write waits for another kernel's write to finish before it gives up (with a note)."""

_NOTES_GIVEN: set[str] = set()


def progress_path() -> Path:
    """Where the progress file lives (WMLIB_PROGRESS_FILE overrides the default in the home)."""
    override = os.environ.get("WMLIB_PROGRESS_FILE")
    return Path(override) if override else Path.home() / ".wmlib" / "progress.json"


def _note_once(message: str) -> None:
    if message not in _NOTES_GIVEN:
        _NOTES_GIVEN.add(message)
        print(f"Note (progress file): {message}", file=sys.stderr)


def _read(path: Path) -> tuple[dict, str | None]:
    """(the file's table, None), or ({}, what is wrong with its content); no file yet is an empty table.

    OSError when the file exists but cannot be read (permissions, a directory).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # (UnicodeDecodeError is a ValueError)
        return {}, f"is not valid JSON ({exc})"
    if not isinstance(data, dict):
        return {}, f"holds a JSON {type(data).__name__}, not a table of records"
    return data, None


def load() -> dict[str, dict]:
    """{id: entry} for every entry that is a table; {} when there is no file yet (or it cannot be read)."""
    path = progress_path()
    try:
        data, problem = _read(path)
    except OSError as exc:
        data, problem = {}, f"cannot be read ({exc})"
    if problem:
        _note_once(f"{path} {problem}; progress cannot be shown from it")
    return {key: entry for key, entry in data.items() if isinstance(entry, dict)}


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on `path`'s sibling lock file (no lock where fcntl is missing)."""
    if fcntl is None:
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process has held {path}.lock for {LOCK_TIMEOUT_S:g} s") from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _write_atomically(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _update(change: Callable[[dict], bool]) -> None:
    """Re-read the file, apply `change` (which returns whether it changed anything), write it back.

    All under the lock, so that concurrent writers keep each other's records. Never raises.
    """
    path = progress_path()
    try:
        if path.is_dir():
            _note_once(f"{path} is a directory, so nothing is recorded; remove it or set WMLIB_PROGRESS_FILE "
                       "to a file path")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            data, problem = _read(path)
            if problem:
                backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(path, backup)
                _note_once(f"{path} {problem}; it is kept as {backup} and a new progress file is started")
            if change(data):
                _write_atomically(path, data)
    except (OSError, TimeoutError) as exc:
        _note_once(f"nothing is recorded in {path}: {exc}")


def record(result) -> None:
    """Store one CheckResult (its exercise_id, passed, attempted). A pass is never overwritten by a later
    not-attempted run."""

    def change(data: dict) -> bool:
        old = data.get(result.exercise_id)
        if isinstance(old, dict) and old.get("passed") is True and not result.attempted:
            return False
        data[result.exercise_id] = {"passed": bool(result.passed), "attempted": bool(result.attempted),
                                    "time": round(time.time())}
        return True

    _update(change)


def record_quiz_answer(quiz_id: str, index: int, total: int, right: bool) -> None:
    """Store whether the latest answer to question `index` (of `total`) of quiz `quiz_id` was right."""

    def change(data: dict) -> bool:
        old = data.get(quiz_id)
        answers = old.get("answers") if isinstance(old, dict) else None
        if not isinstance(answers, list) or len(answers) != total:
            answers = [None] * total  # new, or the quiz changed its number of questions
        answers = [a if isinstance(a, bool) else None for a in answers]
        answers[index] = bool(right)
        data[quiz_id] = {"kind": "quiz", "answers": answers, "time": round(time.time())}
        return True

    _update(change)


def summary(exercise_ids: Iterable[str]) -> list[tuple[str, str, str]]:
    """(chapter, exercise id, status) for each of `exercise_ids`; status is "pass", "fail" or "todo"."""
    data = load()
    rows = []
    for ex_id in exercise_ids:
        entry = data.get(ex_id, {})
        if entry.get("attempted") is not True:
            status = "todo"
        else:
            status = "pass" if entry.get("passed") is True else "fail"
        rows.append((ex_id.split(".")[0], ex_id, status))
    return rows


def quiz_summary() -> list[tuple[str, str, int, int, int]]:
    """(chapter, quiz id, right, answered, questions) for every quiz recorded, sorted by id."""
    rows = []
    for quiz_id, entry in sorted(load().items()):
        answers = entry.get("answers")
        if entry.get("kind") != "quiz" or not isinstance(answers, list) or not answers:
            continue
        right = sum(a is True for a in answers)
        answered = sum(isinstance(a, bool) for a in answers)
        rows.append((quiz_id.split(".")[0], quiz_id, right, answered, len(answers)))
    return rows
