"""Exercises graded by tests: `check(id, fn)` reports, `use(id, fn)` falls back to the reference.

    from wmlib.exercises import check, use
    check("ch01.bellman_target", bellman_target)      # a pass/fail row per test
    bellman_target = use("ch01.bellman_target", bellman_target)

Each chapter's exercises live in their own module (ch01.py, ch02.py, ...), registered below.

Introduced in: course/00_start_here.ipynb
"""

# Importing a chapter's module registers its exercises.
from wmlib.exercises import ch01, ch02, ch03, ch04, ch05  # noqa: F401
from wmlib.exercises._core import (
    CheckResult,
    ExerciseError,
    check,
    get_exercise,
    known_ids,
    run_tests,
    strict_mode,
    use,
)
from wmlib.exercises.progress import summary as _summary
from wmlib.exercises.quiz import Choice, Number, Quiz, quiz


def progress():
    """Show which exercises of which chapters pass (reads the progress file; see progress.py)."""
    rows = _summary()
    marks = {"pass": "✔ pass", "fail": "✘ fail", "todo": "· todo"}
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        in_kernel = get_ipython() is not None and hasattr(get_ipython(), "kernel")
    except ImportError:
        in_kernel = False
    if in_kernel:
        body = "".join(f"<tr><td>{c}</td><td><code>{i}</code></td><td>{marks[s]}</td></tr>" for c, i, s in rows)
        done = sum(s == "pass" for _, _, s in rows)
        display(HTML(f"<b>{done} of {len(rows)} exercises pass</b><table>{body}</table>"))
    else:
        for c, i, s in rows:
            print(f"{c:5s} {i:32s} {marks[s]}")
    return rows


__all__ = ["CheckResult", "Choice", "ExerciseError", "Number", "Quiz", "check", "get_exercise", "known_ids",
           "progress", "quiz", "run_tests", "strict_mode", "use"]
