"""The progress file under faults: odd entries, concurrent kernels, a corrupt file, a directory in its place."""

import json
import multiprocessing
import sys
import time
from types import SimpleNamespace

import pytest

from wmlib.exercises import Choice, check, progress, quiz

progress_module = sys.modules["wmlib.exercises.progress"]  # (the package's `progress` is the function)


def _mine(rewards, gamma):
    return sum(gamma**t * float(r) for t, r in enumerate(rewards))


@pytest.fixture
def path(tmp_path, monkeypatch):
    monkeypatch.delenv("WMLIB_STRICT", raising=False)
    p = tmp_path / "progress.json"
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(p))
    return p


def test_entries_of_any_shape_do_not_break_later_checks(path, capsys):
    path.write_text(json.dumps({"ch01.discounted_return": 5, "ch01.bellman_target": ["a", "list"],
                                "ch02.quiz": {"kind": "quiz", "answers": "not a list"},
                                "ch03.quiz": {"kind": "quiz", "answers": [1, "x", None]},
                                "ch02.kl_divergence": {"passed": "yes", "attempted": 1}}))
    rows = {i: s for _, i, s in progress()}  # reading ignores what it cannot use
    assert rows["ch01.discounted_return"] == "todo" and rows["ch02.kl_divergence"] == "todo"
    assert check("ch01.discounted_return", _mine).passed  # (raised AttributeError: 'int' has no .get)
    check("ch01.bellman_target", lambda *a: 0)
    quiz("ch03.quiz", [Choice("q?", ["a", "b"], answer=0)] * 3).answer(1, 0)
    data = json.loads(path.read_text())
    assert data["ch01.discounted_return"]["passed"] is True
    assert data["ch01.bellman_target"]["attempted"] is True and data["ch01.bellman_target"]["passed"] is False
    assert data["ch03.quiz"]["answers"] == [None, True, None]
    assert data["ch02.quiz"] == {"kind": "quiz", "answers": "not a list"}  # others' entries are left alone
    rows = {i: s for _, i, s in progress()}
    assert rows["ch01.discounted_return"] == "pass" and rows["ch03.quiz"] == "fail"


def _write_many(path: str, worker: int, n: int, start_at: float) -> None:
    import os

    os.environ["WMLIB_PROGRESS_FILE"] = path
    while time.time() < start_at:  # all writers start together
        time.sleep(0.001)
    for j in range(n):
        progress_module.record(SimpleNamespace(exercise_id=f"w{worker}.r{j}", passed=True, attempted=True))


def test_concurrent_writers_lose_no_record(path):
    workers, per_worker = 4, 60
    ctx = multiprocessing.get_context("fork")  # the children only write JSON: no torch work after the fork
    start_at = time.time() + 0.5
    procs = [ctx.Process(target=_write_many, args=(str(path), w, per_worker, start_at)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    data = json.loads(path.read_text())
    missing = [f"w{w}.r{j}" for w in range(workers) for j in range(per_worker) if f"w{w}.r{j}" not in data]
    assert not missing, f"{len(missing)} of {workers * per_worker} records lost, e.g. {missing[:5]}"
    assert not list(path.parent.glob("*.tmp")), "temporary files were left behind"


def test_a_corrupt_file_is_kept_and_the_learner_told_once(path, capsys):
    path.write_text('{"ch01.discounted_return": {"passed": tr')  # cut off mid-write by another program
    assert check("ch01.discounted_return", _mine).passed
    check("ch01.bellman_target", lambda *a: 0)
    backups = list(path.parent.glob("progress.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_text() == '{"ch01.discounted_return": {"passed": tr'
    assert json.loads(path.read_text())["ch01.discounted_return"]["passed"] is True
    err = capsys.readouterr().err
    assert err.count("is not valid JSON") == 1 and str(backups[0]) in err


def test_a_directory_at_the_path_records_nothing_says_why_once_and_leaves_no_files(path, capsys):
    path.mkdir()
    for _ in range(3):
        assert check("ch01.discounted_return", _mine).passed
    quiz("ch02.quiz", [Choice("q?", ["a", "b"], answer=0)]).answer(0, 0)
    assert sorted(p.name for p in path.parent.iterdir()) == ["progress.json"], "stray files next to the path"
    assert list(path.iterdir()) == []
    err = capsys.readouterr().err
    assert err.count("is a directory") == 1, err


def test_a_read_only_place_records_nothing_and_says_so_once(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WMLIB_PROGRESS_FILE", str(blocker / "progress.json"))
    assert check("ch01.discounted_return", _mine).passed
    assert check("ch01.discounted_return", _mine).passed
    err = capsys.readouterr().err
    assert err.count("nothing is recorded") == 1, err


def test_progress_shows_quizzes_beside_exercises(path, capsys):
    check("ch01.discounted_return", _mine)
    q = quiz("ch01.quiz", [Choice("q1?", ["a", "b"], answer=0), Choice("q2?", ["a", "b"], answer=1),
                           Choice("q3?", ["a", "b"], answer=1)])
    q.answer(0, 0)
    q.answer(1, 0)
    rows = progress()
    out = capsys.readouterr().out
    ids = [i for _, i, _ in rows]
    assert ids.index("ch01.quiz") < ids.index(next(i for i in ids if i.startswith("ch02")))  # with its chapter
    assert dict((i, s) for _, i, s in rows)["ch01.quiz"] == "fail"
    assert "1 of 3 right, 1 unanswered" in out and "0 of 1 quizzes all right" in out
    q.answer(1, 1)
    q.answer(2, 1)
    assert dict((i, s) for _, i, s in progress())["ch01.quiz"] == "pass"
