"""A learner's progress: which exercises pass, kept in a small JSON file outside the notebooks.

The file is `~/.wmlib/progress.json`, or the path in WMLIB_PROGRESS_FILE. `check` and `use`
update it; `progress()` shows it. Writing it never raises: a read-only home only means no record.

Introduced in: course/00_start_here.ipynb
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def progress_path() -> Path:
    """Where the progress file lives (WMLIB_PROGRESS_FILE overrides the default in the home)."""
    override = os.environ.get("WMLIB_PROGRESS_FILE")
    return Path(override) if override else Path.home() / ".wmlib" / "progress.json"


def load() -> dict[str, dict]:
    """{exercise id: {"passed": bool, "attempted": bool, "time": unix seconds}}; {} if none yet."""
    path = progress_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(result) -> None:
    """Store one CheckResult. A pass is never overwritten by a later not-attempted run."""
    data = load()
    old = data.get(result.exercise_id, {})
    if old.get("passed") and not result.attempted:
        return
    data[result.exercise_id] = {"passed": bool(result.passed), "attempted": bool(result.attempted),
                                "time": round(time.time())}
    path = progress_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


def summary() -> list[tuple[str, str, str]]:
    """(chapter, exercise id, status) for every registered exercise; status is pass/fail/todo."""
    from wmlib.exercises._core import known_ids

    data = load()
    rows = []
    for ex_id in known_ids():
        entry = data.get(ex_id)
        if entry is None or not entry.get("attempted"):
            status = "todo"
        else:
            status = "pass" if entry.get("passed") else "fail"
        rows.append((ex_id.split(".")[0], ex_id, status))
    return rows
