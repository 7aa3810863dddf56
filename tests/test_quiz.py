"""The quiz widget (wmlib.exercises.quiz), driven from Python: grading, feedback, score, recording, errors."""

import json
import math

import ipywidgets as W
import pytest

from wmlib.exercises import Choice, Number, Quiz, quiz


def _questions():
    return [
        Choice("Why does V compress a frame?", ["to save disk", "so M predicts 32 numbers, not 12,288",
                                                 "speed of the env"], answer=1, explain="M's job gets easier."),
        Number("How many numbers are in a 64x64x3 frame?", answer=12288, tolerance=0, unit="numbers",
               explain="64 * 64 * 3"),
    ]


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(path))
    return path


def _buttons(q):
    return [w for box in q.children if isinstance(box, W.VBox) for w in box.children if isinstance(w, W.Button)]


def _feedback(q, i):
    return q._feedback[i].value


def test_quiz_is_a_widget_with_one_box_per_question(progress_file):
    q = quiz("ch02.quiz", _questions())
    assert isinstance(q, Quiz) and isinstance(q, W.VBox)
    assert len(q.questions) == 2 and q.score == (0, 2)
    assert [b.description for b in _buttons(q)] == ["Check", "Check"]
    radios = [w for box in q.children if isinstance(box, W.VBox) for w in box.children
              if isinstance(w, W.RadioButtons)]
    assert len(radios) == 1 and radios[0].index is None  # nothing pre-selected


def test_right_and_wrong_choice_update_feedback_and_score(progress_file):
    q = quiz("ch02.quiz", _questions())
    assert _feedback(q, 0) == ""
    assert q.answer(0, 1) is True
    assert "Right" in _feedback(q, 0) and "M&#x27;s job gets easier." in _feedback(q, 0)
    assert q.score == (1, 2)
    assert q.answer(0, 2) is False  # the latest answer counts
    assert "Not quite" in _feedback(q, 0) and "Right" not in _feedback(q, 0)
    assert q.score == (0, 2)


def test_number_tolerance_is_inclusive(progress_file):
    q = quiz("ch01.quiz", [Number("gamma?", answer=0.99, tolerance=0.01),
                           Number("frame size?", answer=12288, tolerance=0)])
    assert q.answer(0, 1.0) and q.answer(0, 0.98)  # both edges count
    assert not q.answer(0, 1.0001) and not q.answer(0, 0.9799)
    assert q.answer(1, 12288) and not q.answer(1, 12289) and not q.answer(1, 12287.99)
    assert q.answer(0, 0.1 + 0.89)  # decimal rounding does not make a right answer wrong
    assert "Not quite: you answered 12287.99." in _feedback(q, 1)  # the number as typed, not rounded


def test_check_button_reads_the_widgets(progress_file):
    q = quiz("ch02.quiz", _questions())
    choice_button, number_button = _buttons(q)
    choice_button.click()  # nothing picked yet: a hint, no grade
    assert "pick one of the options" in _feedback(q, 0) and q.score == (0, 2)
    q._inputs[0].index = 1
    choice_button.click()
    assert "Right" in _feedback(q, 0)
    q._inputs[1].value = "twelve thousand"
    number_button.click()
    assert "type a number" in _feedback(q, 1)
    q._inputs[1].value = " 12,288 "
    number_button.click()
    assert "Right" in _feedback(q, 1) and "64 * 64 * 3" in _feedback(q, 1)
    assert q.score == (2, 2)
    q._inputs[1].value = "12000"
    number_button.click()
    assert "Not quite: you answered 12000" in _feedback(q, 1) and q.score == (1, 2)


def test_answer_from_python_shows_in_the_widgets(progress_file):
    q = quiz("ch02.quiz", _questions())
    q.answer(0, 2)
    q.answer(1, 12288)
    assert q._inputs[0].index == 2 and q._inputs[1].value == "12288"
    assert "1 of 2 right" in q.children[-1].value


def test_learner_facing_text_is_escaped(progress_file):
    q = quiz("ch03.quiz", [Choice("Is <b>bold</b> & safe?", ["yes", "no"], answer=0,
                                  explain="<script>alert(1)</script>")])
    text = q.children[1].children[0].value
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; safe?" in text and "<b>bold" not in text
    q.answer(0, 0)
    assert "<script>" not in _feedback(q, 0) and "&lt;script&gt;" in _feedback(q, 0)


def test_answers_are_recorded_per_question(progress_file):
    q = quiz("ch02.quiz", _questions())
    q.answer(0, 1)
    entry = json.loads(progress_file.read_text())["ch02.quiz"]
    assert entry["kind"] == "quiz" and entry["answers"] == [True, None]
    q.answer(1, 5)
    assert json.loads(progress_file.read_text())["ch02.quiz"]["answers"] == [True, False]
    # the cell run again: a new widget, and answering one question keeps the other's latest answer
    again = quiz("ch02.quiz", _questions())
    again.answer(1, 12288)
    assert json.loads(progress_file.read_text())["ch02.quiz"]["answers"] == [True, True]
    # a quiz with another number of questions starts a fresh record
    quiz("ch02.quiz", _questions()[:1]).answer(0, 0)
    assert json.loads(progress_file.read_text())["ch02.quiz"]["answers"] == [False]


def test_recording_never_raises(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(blocker / "progress.json"))
    assert quiz("ch02.quiz", _questions()).answer(0, 1) is True
    bad_entry = tmp_path / "p.json"
    bad_entry.write_text(json.dumps({"ch02.quiz": ["not", "a", "dict"]}))
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(bad_entry))
    assert quiz("ch02.quiz", _questions()).answer(0, 1) is True
    assert json.loads(bad_entry.read_text())["ch02.quiz"]["answers"] == [True, None]


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: Choice("q?", [], answer=0), ValueError, "needs at least two"),
    (lambda: Choice("q?", ["only"], answer=0), ValueError, "needs at least two"),
    (lambda: Choice("q?", ["a", ""], answer=0), ValueError, "option 1 .* is empty"),
    (lambda: Choice("q?", ["a", "a"], answer=0), ValueError, "same option twice"),
    (lambda: Choice("q?", ["a", "b"], answer=2), ValueError, "out of range: expected an option index from 0 to 1"),
    (lambda: Choice("q?", ["a", "b"], answer=-1), ValueError, "out of range"),
    (lambda: Choice("q?", ["a", "b"], answer="a"), TypeError, "index of the right option"),
    (lambda: Choice("q?", "ab", answer=0), TypeError, "list of strings"),
    (lambda: Choice("", ["a", "b"], answer=0), ValueError, "needs a text"),
    (lambda: Number("q?", answer=1, tolerance=-0.1), ValueError, "tolerance .* >= 0"),
    (lambda: Number("q?", answer=math.nan), ValueError, "finite number"),
    (lambda: Number("q?", answer=math.inf), ValueError, "finite number"),
    (lambda: Number("q?", answer="12288"), ValueError, "finite number"),
    (lambda: quiz("ch02", _questions()), ValueError, "expected 'chNN.quiz' or 'chNN.quiz.name'"),
    (lambda: quiz("ch2.quiz", _questions()), ValueError, "expected 'chNN.quiz'"),
    (lambda: quiz("ch02.quiz.Bad Name", _questions()), ValueError, "expected 'chNN.quiz'"),
    (lambda: quiz("ch02.quiz", []), ValueError, "has no questions"),
    (lambda: quiz("ch02.quiz", _questions()[0]), TypeError, "list of Choice"),
    (lambda: quiz("ch02.quiz", ["What is V?"]), TypeError, "question 0 is a str"),
])
def test_bad_construction_says_what_was_expected(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_good_ids_are_accepted(progress_file):
    for quiz_id in ("ch00.quiz", "ch05.quiz", "ch02.quiz.vae", "ch08.quiz.rssm_2"):
        assert quiz(quiz_id, _questions()).quiz_id == quiz_id


def test_bad_answers_from_python_are_errors(progress_file):
    q = quiz("ch02.quiz", _questions())
    with pytest.raises(IndexError, match="questions 0 to 1"):
        q.answer(2, 0)
    with pytest.raises(ValueError, match="option index from 0 to 2"):
        q.answer(0, 3)
    with pytest.raises(ValueError, match="finite number"):
        q.answer(1, "12288")
    with pytest.raises(ValueError, match="finite number"):
        q.answer(1, math.nan)
    assert q.score == (0, 2) and not progress_file.exists()  # nothing graded, nothing recorded
