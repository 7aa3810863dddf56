"""Exercises graded by tests: `check(id, fn)` reports, `use(id, fn)` falls back to the reference.

    from wmlib.exercises import check, use
    check("ch01.bellman_target", bellman_target)      # a pass/fail row per test
    bellman_target = use("ch01.bellman_target", bellman_target)

Quizzes (quiz.py): `quiz("ch02.quiz", [Choice(...), Number(...)])`; `progress()` shows both.

Each chapter's exercises live in their own module (ch01.py, ch02.py, ...), registered below.

Introduced in: course/00_start_here.ipynb
"""

import html

# Importing a chapter's module registers its exercises.
from wmlib.exercises import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08  # noqa: F401
from wmlib.exercises._core import (
    CheckResult,
    ExerciseError,
    _in_notebook,
    check,
    get_exercise,
    known_ids,
    run_tests,
    strict_mode,
    use,
)
from wmlib.exercises.progress import quiz_summary as _quiz_summary
from wmlib.exercises.progress import summary as _summary
from wmlib.exercises.quiz import Choice, Number, Quiz, quiz

_MARKS = {"pass": "✔ pass", "fail": "✘ fail", "todo": "· todo"}


def _quiz_status(right: int, answered: int, total: int) -> str:
    return "todo" if answered == 0 else "pass" if right == total else "fail"


def progress():
    """Show which exercises pass and how the quizzes went, chapter by chapter (reads the progress file).

    Returns the rows, (chapter, id, status) with status "pass", "fail" or "todo"; a quiz passes when
    the latest answer to each of its questions is right.
    """
    exercises = _summary(known_ids())
    quizzes = [(c, i, _quiz_status(r, a, n), f"{r} of {n} right" + (f", {n - a} unanswered" if a < n else ""))
               for c, i, r, a, n in _quiz_summary()]
    rows = sorted([(c, i, s, "") for c, i, s in exercises] + quizzes, key=lambda row: row[0])  # stable: by chapter
    head = f"{sum(s == 'pass' for _, _, s in exercises)} of {len(exercises)} exercises pass"
    if quizzes:
        head += f"; {sum(s == 'pass' for _, _, s, _ in quizzes)} of {len(quizzes)} quizzes all right"
    if _in_notebook():
        from IPython.display import HTML, display

        body = "".join(f"<tr><td>{c}</td><td><code>{html.escape(i)}</code></td><td>{_MARKS[s]}</td>"
                       f"<td>{html.escape(d)}</td></tr>" for c, i, s, d in rows)
        display(HTML(f"<b>{head}</b><table>{body}</table>"))
    else:
        print(head)
        for c, i, s, d in rows:
            print(f"{c:5s} {i:32s} {_MARKS[s]}  {d}".rstrip())
    return [(c, i, s) for c, i, s, _ in rows]


__all__ = ["CheckResult", "Choice", "ExerciseError", "Number", "Quiz", "check", "get_exercise", "known_ids",
           "progress", "quiz", "run_tests", "strict_mode", "use"]
