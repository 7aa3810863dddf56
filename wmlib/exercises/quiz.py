"""Quizzes: a few instant-feedback questions at the end of a chapter, recorded in the progress file.

    from wmlib.exercises import quiz, Choice, Number
    quiz("ch02.quiz", [
        Choice("Why does V compress a frame?", ["to save disk", "so M predicts 32 numbers, not 12,288"],
               answer=1, explain="M's job gets easier ..."),
        Number("How many numbers are in a 64x64x3 frame?", answer=12288, unit="numbers", explain="64 * 64 * 3"),
    ])

As the last expression of a cell the quiz shows each question with its options (or a box for a
number), a "Check" button and the feedback: right or not, and the explanation. Driven from Python
(the tests do this): `q.answer(i, value)` does what a click on "Check" does, `q.score` is
(right, total), `q.questions` the questions.

Introduced in: the quiz that closes each chapter (course/01_problem.ipynb onward)
"""

from __future__ import annotations

import html
import json
import math
import numbers
import os
import re
import tempfile
import time
from dataclasses import dataclass

import ipywidgets as W

from wmlib.exercises import progress as _progress

QUIZ_ID = re.compile(r"ch\d\d\.quiz(\.[a-z0-9_]+)?")
"""A quiz id: "chNN.quiz", or "chNN.quiz.name" for a chapter with several quizzes."""

RIGHT, WRONG = "#1a7f37", "#cf222e"


def _check_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} should be a string, got {type(value).__name__}")
    return value


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Choice:
    """A multiple-choice question: `options` are the answers shown, `answer` the index of the right one."""

    text: str
    options: tuple[str, ...]
    answer: int
    explain: str = ""

    def __post_init__(self):
        _check_text(self.text, "a question's text")
        if not self.text.strip():
            raise ValueError("a question needs a text; got an empty string")
        _check_text(self.explain, f"explain of {self.text!r}")
        if isinstance(self.options, str) or not hasattr(self.options, "__iter__"):
            raise TypeError(f"options of {self.text!r} should be a list of strings, got {type(self.options).__name__}")
        options = tuple(self.options)
        object.__setattr__(self, "options", options)
        if len(options) < 2:
            raise ValueError(f"Choice {self.text!r} has {len(options)} option(s); it needs at least two")
        for k, option in enumerate(options):
            if not _check_text(option, f"option {k} of {self.text!r}").strip():
                raise ValueError(f"option {k} of {self.text!r} is empty")
        if len(set(options)) != len(options):
            raise ValueError(f"Choice {self.text!r} lists the same option twice: {list(options)}")
        if not isinstance(self.answer, numbers.Integral) or isinstance(self.answer, bool):
            raise TypeError(f"answer of {self.text!r} should be the index of the right option (an int), "
                            f"got {self.answer!r}")
        if not 0 <= self.answer < len(options):
            raise ValueError(f"answer={self.answer} of {self.text!r} is out of range: expected an option index "
                             f"from 0 to {len(options) - 1}")

    def grade(self, value) -> bool:
        """Is option index `value` the right one? (ValueError for an index that is not an option.)"""
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 0 <= value < len(self.options):
            raise ValueError(f"expected an option index from 0 to {len(self.options) - 1} for {self.text!r}, "
                             f"got {value!r}")
        return int(value) == self.answer


@dataclass(frozen=True)
class Number:
    """A question with a number for an answer; right when within `tolerance` of `answer`."""

    text: str
    answer: float
    tolerance: float = 0.0
    unit: str = ""
    explain: str = ""

    def __post_init__(self):
        _check_text(self.text, "a question's text")
        if not self.text.strip():
            raise ValueError("a question needs a text; got an empty string")
        _check_text(self.unit, f"unit of {self.text!r}")
        _check_text(self.explain, f"explain of {self.text!r}")
        if not _is_real(self.answer) or not math.isfinite(self.answer):
            raise ValueError(f"answer of {self.text!r} should be a finite number, got {self.answer!r}")
        if not _is_real(self.tolerance) or not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ValueError(f"tolerance of {self.text!r} should be a finite number >= 0, got {self.tolerance!r}")

    def grade(self, value) -> bool:
        """Is `value` within the tolerance of the answer? (ValueError when it is not a finite number.)"""
        if not _is_real(value) or not math.isfinite(value):
            raise ValueError(f"expected a finite number for {self.text!r}, got {value!r}")
        # The tolerance is inclusive; the tiny slack absorbs decimal-to-binary rounding ("0.3" vs 0.1 + 0.2).
        slack = 1e-9 * max(1.0, abs(self.answer))
        return abs(float(value) - float(self.answer)) <= float(self.tolerance) + slack


def parse_number(text: str) -> float | None:
    """A learner's typed number ("12288", "12,288", "1e-3", " 0.5 "), or None if it is not one."""
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class Quiz(W.VBox):
    """The quiz widget: one box per question (text, options or a number box, "Check", feedback).

    Made by `quiz(...)`; see the module docstring.
    """

    def __init__(self, quiz_id: str, questions):
        if not isinstance(quiz_id, str) or not QUIZ_ID.fullmatch(quiz_id):
            raise ValueError(f"quiz id {quiz_id!r}: expected 'chNN.quiz' or 'chNN.quiz.name' "
                             "(for example 'ch02.quiz' or 'ch02.quiz.vae'; the name in lowercase letters, "
                             "digits and _)")
        if isinstance(questions, Choice | Number) or not hasattr(questions, "__iter__"):
            raise TypeError(f"quiz {quiz_id!r}: questions should be a list of Choice(...) and Number(...)")
        questions = tuple(questions)
        if not questions:
            raise ValueError(f"quiz {quiz_id!r} has no questions; give it at least one")
        for k, question in enumerate(questions):
            if not isinstance(question, Choice | Number):
                raise TypeError(f"quiz {quiz_id!r}: question {k} is a {type(question).__name__}; "
                                "expected Choice(...) or Number(...)")
        self.quiz_id = quiz_id
        self._questions = questions
        self._latest: list[bool | None] = [None] * len(questions)
        self._inputs = [self._input_for(q) for q in questions]
        self._feedback = [W.HTML() for _ in questions]
        self._score_line = W.HTML()
        boxes = [self._question_box(k) for k in range(len(questions))]
        title = W.HTML(f"<b>Quiz</b> <code>{html.escape(quiz_id)}</code>: {len(questions)} "
                       f"question{'s' if len(questions) > 1 else ''}; press <i>Check</i> after each answer")
        super().__init__(children=[title, *boxes, self._score_line])
        self._show_score()

    # --- building -----------------------------------------------------------------------------------

    @staticmethod
    def _input_for(question):
        if isinstance(question, Choice):
            return W.RadioButtons(options=[(o, k) for k, o in enumerate(question.options)], index=None,
                                  layout=W.Layout(width="auto"))
        return W.Text(placeholder="a number", layout=W.Layout(width="12em"))

    def _question_box(self, k: int):
        question = self._questions[k]
        text = W.HTML(f"<b>{k + 1}.</b> {html.escape(question.text)}")
        entry = self._inputs[k]
        if isinstance(question, Number) and question.unit:
            entry = W.HBox([entry, W.Label(question.unit)])
        button = W.Button(description="Check", layout=W.Layout(width="7em"))
        button.on_click(lambda _, k=k: self._on_check(k))
        return W.VBox([text, entry, button, self._feedback[k]],
                      layout=W.Layout(border="1px solid #d0d7de", padding="4px 8px", margin="4px 0"))

    # --- answering ----------------------------------------------------------------------------------

    @property
    def questions(self) -> tuple:
        """The questions, in order."""
        return self._questions

    @property
    def score(self) -> tuple[int, int]:
        """(questions whose latest answer is right, number of questions)."""
        return sum(ok is True for ok in self._latest), len(self._questions)

    def answer(self, i: int, value) -> bool:
        """Answer question `i` (from 0) as a click on "Check" would; returns whether it is right.

        `value` is the option index for a Choice, a number for a Number. Updates the feedback, the
        score and the progress file.
        """
        if not isinstance(i, numbers.Integral) or isinstance(i, bool) or not 0 <= i < len(self._questions):
            raise IndexError(f"quiz {self.quiz_id!r} has questions 0 to {len(self._questions) - 1}, got {i!r}")
        question = self._questions[i]
        right = question.grade(value)  # ValueError for a value that is not an answer
        if isinstance(question, Choice):
            self._inputs[i].index = int(value)
        else:
            self._inputs[i].value = f"{value:.10g}"
        self._grade(i, right, value)
        return right

    def _on_check(self, i: int) -> None:
        question, entry = self._questions[i], self._inputs[i]
        if isinstance(question, Choice):
            if entry.index is None:
                self._say(i, "pick one of the options first", None)
                return
            value = entry.index
        else:
            value = parse_number(entry.value)
            if value is None:
                self._say(i, "type a number (digits, such as 3.5 or 1e-3), then press Check", None)
                return
        self._grade(i, question.grade(value), value)

    def _grade(self, i: int, right: bool, value) -> None:
        question = self._questions[i]
        self._latest[i] = right
        if right:
            message = "Right."
        elif isinstance(question, Choice):
            message = "Not quite."
        else:
            message = f"Not quite: you answered {value:.10g}."
        if question.explain:
            message += " " + question.explain
        self._say(i, message, right)
        self._show_score()
        _record_answer(self.quiz_id, i, len(self._questions), right)

    def _say(self, i: int, message: str, right: bool | None) -> None:
        mark, colour = {True: ("&#10004;", RIGHT), False: ("&#10008;", WRONG), None: ("&#8505;", "#9a6700")}[right]
        self._feedback[i].value = (f"<span style='color:{colour}'>{mark} {html.escape(message)}</span>")

    def _show_score(self) -> None:
        right, total = self.score
        answered = sum(ok is not None for ok in self._latest)
        self._score_line.value = f"<i>{right} of {total} right ({answered} answered)</i>"

    def __repr__(self) -> str:
        right, total = self.score
        return f"Quiz({self.quiz_id!r}, {total} questions, {right} right)"


def _record_answer(quiz_id: str, index: int, total: int, right: bool) -> None:
    """Store the latest answer to question `index` in the progress file; never raises.

    The entry is {"kind": "quiz", "answers": [true, false, null, ...], "time": unix seconds}: per
    question, whether its latest answer was right (null: not answered yet).
    """
    try:
        data = _progress.load()
        entry = data.get(quiz_id)
        answers = entry.get("answers") if isinstance(entry, dict) else None
        if not isinstance(answers, list) or len(answers) != total:
            answers = [None] * total  # new, or the quiz changed its number of questions
        answers[index] = bool(right)
        data[quiz_id] = {"kind": "quiz", "answers": answers, "time": round(time.time())}
        path = _progress.progress_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except Exception:  # recording is a convenience: a quiz never fails because of it
        pass


def quiz(quiz_id: str, questions) -> Quiz:
    """A quiz widget for `questions` (Choice and Number); show it as the last expression of a cell."""
    return Quiz(quiz_id, questions)
