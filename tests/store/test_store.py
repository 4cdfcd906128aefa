"""The result store: atomic, content-addressed results; resume after an interruption; regrades.

An interrupted batch (KeyboardInterrupt in the process, SIGINT or SIGKILL from outside) keeps
every finished result, the re-run grades only what is missing and the output is the same as an
uninterrupted run; a changed notebook is regraded; ``--student`` and ``--force`` regrade on
request; the submission's time (nbgrader's timestamp.txt, else the file's mtime) is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kit_testing import ANSWERS, ROOT, answer_functions, write_submission

from grader import grading
from grader.checks.cases import salt_from_environment
from grader.grading import SubmissionResult, discover
from grader.report.gradescope import results_json
from grader.runner.process import Limits
from grader.store import (
    BatchSummary,
    Context,
    Store,
    file_sha256,
    grade_with_store,
    parse_timestamp,
    result_from_dict,
    result_to_dict,
    submission_timestamp,
    write_atomic,
)

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
FEW = ("ada", "carl", "lee", "mo")  # correct, a misconception, untouched, corrupt


def small_class(tmp_path: Path, students=FEW) -> Path:
    """A copy of a few sample students in nbgrader's layout (the copies may be changed)."""
    root = tmp_path / "course" / "submitted"
    for student in students:
        source = SAMPLE / student / "02_dropout" / "02_dropout.ipynb"
        destination = root / student / "02_dropout" / "02_dropout.ipynb"
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return root


def counting_grader(reference, log: list[str], fail_after: int | None = None):
    """A grade function for grade_with_store that grades for real and records what it graded."""

    def grade(targets, on_result):
        for i, target in enumerate(targets):
            if fail_after is not None and len(log) >= fail_after:
                raise KeyboardInterrupt
            on_result(i, grading.grade_notebook(target, reference=reference))
            log.append(target.student)

    return grade


def comparable(result: SubmissionResult) -> dict:
    data = results_json(result)
    data.pop("execution_time")
    return data


def context(reference, **overrides) -> Context:
    return Context(
        salt=overrides.pop("salt", salt_from_environment()), reference=reference, **overrides
    )


# --------------------------------------------------------------------------- serialising
def test_results_survive_a_round_trip(reference):
    results = grading.grade_many(discover([SAMPLE]), jobs=2, reference=reference, progress=False)
    for result in results:
        data = result_to_dict(result)
        back = result_from_dict(json.loads(json.dumps(data)))
        assert result_to_dict(back) == data
        assert comparable(back) == comparable(result)
        assert back.score == result.score and back.max_score == result.max_score


def test_write_atomic_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_atomic(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # the temporary file is gone


# --------------------------------------------------------------------------- reuse and regrade
def test_a_second_run_grades_nothing_and_gives_the_same_results(tmp_path, reference):
    targets = discover([small_class(tmp_path)])
    store = Store(tmp_path / "store")
    log: list[str] = []
    first = grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, log)
    )
    assert sorted(log) == sorted(FEW)
    assert len(store.files()) == len(FEW)
    mtimes = {p: p.stat().st_mtime_ns for p in store.files()}

    log.clear()
    summary = BatchSummary()
    second = grade_with_store(
        targets,
        store=store,
        context=context(reference),
        grade=counting_grader(reference, log),
        summary=summary,
    )
    assert log == [] and summary.from_store == len(FEW) and summary.graded == 0
    assert [comparable(g.result) for g in second] == [comparable(g.result) for g in first]
    assert all(g.from_store for g in second)
    assert {p: p.stat().st_mtime_ns for p in store.files()} == mtimes  # nothing rewritten


def test_a_changed_submission_is_regraded(tmp_path, reference):
    root = small_class(tmp_path)
    targets = discover([root])
    store = Store(tmp_path / "store")
    grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, [])
    )
    carl = root / "carl" / "02_dropout" / "02_dropout.ipynb"
    # carl fixes his notebook (like ben did: ada's answer would be ada's bytes, already stored)
    answer = answer_functions(ANSWERS / "02_dropout" / "ben_correct_float32.py")
    write_submission(root, "02_dropout", answer, name="carl")
    log: list[str] = []
    again = grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, log)
    )
    assert log == ["carl"]
    by_student = {g.student: g.result for g in again}
    assert by_student["carl"].score == by_student["carl"].max_score
    assert by_student["carl"].sha256 == file_sha256(carl)


def test_one_student_or_everyone_can_be_regraded(tmp_path, reference):
    targets = discover([small_class(tmp_path)])
    store = Store(tmp_path / "store")
    grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, [])
    )
    log: list[str] = []
    grade_with_store(
        targets,
        store=store,
        context=context(reference),
        regrade=lambda t: t.student == "carl",
        grade=counting_grader(reference, log),
    )
    assert log == ["carl"]
    log.clear()
    grade_with_store(
        targets,
        store=store,
        context=context(reference),
        regrade=lambda t: True,
        grade=counting_grader(reference, log),
    )
    assert sorted(log) == sorted(FEW)


def test_salt_reference_and_limits_are_part_of_the_key(tmp_path, reference):
    targets = discover([small_class(tmp_path, ("ada",))])
    store = Store(tmp_path / "store")
    for ctx in (
        context(reference),
        context(reference, salt="another course"),
        context(None),
        context(reference, limits=Limits(case_seconds=3.0)),
    ):
        log: list[str] = []
        grade_with_store(
            targets, store=store, context=ctx, grade=counting_grader(ctx.reference, log)
        )
        assert log == ["ada"], ctx
    assert len(store.files()) == 4


def test_an_edited_check_library_regrades(tmp_path, reference, monkeypatch):
    import grader.store

    targets = discover([small_class(tmp_path, ("ada",))])
    store = Store(tmp_path / "store")
    grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, [])
    )
    monkeypatch.setattr(grader.store, "check_set_fingerprint", lambda: "edited")
    log: list[str] = []
    grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, log)
    )
    assert log == ["ada"]


def test_identical_notebooks_are_graded_once(tmp_path, reference):
    root = small_class(tmp_path, ("lee",))
    for twin in ("lee2", "lee3"):
        shutil.copytree(root / "lee", root / twin)
    log: list[str] = []
    graded = grade_with_store(
        discover([root]),
        store=Store(tmp_path / "store"),
        context=context(reference),
        grade=counting_grader(reference, log),
    )
    assert len(log) == 1
    assert [g.student for g in graded] == ["lee", "lee2", "lee3"]
    assert {g.result.student for g in graded} == {"lee", "lee2", "lee3"}


def test_an_unreadable_store_file_is_regraded(tmp_path, reference):
    targets = discover([small_class(tmp_path, ("ada",))])
    store = Store(tmp_path / "store")
    grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, [])
    )
    [path] = store.files()
    path.write_text(path.read_text()[:100])  # cut short by hand
    log: list[str] = []
    graded = grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, log)
    )
    assert log == ["ada"] and graded[0].result.score == graded[0].result.max_score
    assert json.loads(path.read_text())["result"]["assignment"] == "02_dropout"


def test_grader_failures_are_not_remembered(tmp_path, reference):
    targets = discover([small_class(tmp_path, ("ada",))])
    store = Store(tmp_path / "store")

    def failing(targets, on_result):
        on_result(
            0,
            SubmissionResult(
                targets[0].path, "02_dropout", error="grader failure: boom", grader_failure=True
            ),
        )

    graded = grade_with_store(targets, store=store, context=context(reference), grade=failing)
    assert graded[0].result.grader_failure and store.files() == []


# --------------------------------------------------------------------------- interruptions
def test_an_interrupted_batch_resumes_without_regrading(tmp_path, reference):
    targets = discover([small_class(tmp_path)])
    store = Store(tmp_path / "store")
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        grade_with_store(
            targets,
            store=store,
            context=context(reference),
            grade=counting_grader(reference, done, fail_after=2),
        )
    assert len(done) == 2 and len(store.files()) == 2  # finished results were saved at once

    rest: list[str] = []
    resumed = grade_with_store(
        targets, store=store, context=context(reference), grade=counting_grader(reference, rest)
    )
    assert sorted(rest) == sorted(set(FEW) - set(done))
    fresh = grade_with_store(
        targets, store=None, context=context(reference), grade=counting_grader(reference, [])
    )
    assert [comparable(g.result) for g in resumed] == [comparable(g.result) for g in fresh]


def slow_class(tmp_path: Path, n: int) -> Path:
    """n correct notebooks that each take about a second to run (and differ, so none is shared)."""
    functions = answer_functions(ANSWERS / "02_dropout" / "ada_correct.py")
    root = tmp_path / "submitted"
    for i in range(n):
        slow = dict(functions)
        slow["dropout_forward"] = (
            f"import time\ntime.sleep(0.5)  # student {i}\n\n\n" + functions["dropout_forward"]
        )
        write_submission(root, "02_dropout", slow, name=f"s{i:02d}")
    return root


def grade_cli(*args: str, jobs: int = 1, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", *args, "--no-progress", "--jobs", str(jobs)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for_results(
    store: Path, count: int, process: subprocess.Popen, seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    while len(list(store.glob("*/*.json"))) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no results appeared"
        time.sleep(0.05)


def without_times(text: str) -> list[dict]:
    results = json.loads(text)
    for r in results:
        r.pop("execution_time")
    return results


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_killed_batch_resumes_from_the_command_line(tmp_path, how):
    n = 5
    root = slow_class(tmp_path, n)
    store = tmp_path / "store"
    out = tmp_path / "out.json"
    process = grade_cli(str(root), "--store", str(store), "--format", "json", "--out", str(out))
    wait_for_results(store, 2, process)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    if how == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert "run the same command to resume" in stderr
    kept = {p: p.stat().st_mtime_ns for p in store.glob("*/*.json")}
    assert 2 <= len(kept) < n
    for path in kept:  # every stored result is complete
        assert json.loads(path.read_text())["result"]["assignment"] == "02_dropout"
    assert not out.exists()

    resumed = grade_cli(str(root), "--store", str(store), "--format", "json", "--out", str(out))
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"{len(kept)} from the store, {n - len(kept)} graded" in stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished work was not redone
    full = tmp_path / "full.json"
    fresh = grade_cli(str(root), "--format", "json", "--out", str(full), jobs=2)
    assert fresh.wait(timeout=120) == 0
    assert without_times(out.read_text()) == without_times(full.read_text())
    assert all(r["score"] == r["max_score"] for r in json.loads(out.read_text()))


def test_cli_student_and_force(tmp_path):
    root = small_class(tmp_path)
    store = tmp_path / "store"
    assert grade_cli(str(root), "--store", str(store)).wait(timeout=120) == 0
    again = grade_cli(str(root), "--store", str(store), "--student", "carl")
    _, stderr = again.communicate(timeout=120)
    assert f"{len(FEW) - 1} from the store, 1 graded" in stderr
    forced = grade_cli(str(root), "--store", str(store), "--force")
    _, stderr = forced.communicate(timeout=120)
    assert f"0 from the store, {len(FEW)} graded" in stderr
    unknown = grade_cli(str(root), "--store", str(store), "--student", "nobody")
    assert unknown.wait(timeout=60) == 2


# --------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-03-01 14:02:11.123456 UTC", "2025-03-01T14:02:11.123456+00:00"),
        ("2025-03-01 15:02:11.000000 +0100", "2025-03-01T14:02:11+00:00"),
        ("2025-03-01T14:02:11+00:00", "2025-03-01T14:02:11+00:00"),
        ("2025-03-01 14:02:11", "2025-03-01T14:02:11+00:00"),
    ],
)
def test_nbgrader_timestamps_are_read(text, expected):
    assert parse_timestamp(text).isoformat() == expected


def test_late_submissions_keep_their_timestamp(tmp_path, reference):
    root = small_class(tmp_path, ("ada", "carl"))
    (root / "carl" / "02_dropout" / "timestamp.txt").write_text("2025-03-08 09:15:00.000000 UTC")
    ada = root / "ada" / "02_dropout" / "02_dropout.ipynb"
    os.utime(ada, (1_700_000_000, 1_700_000_000))
    store = Store(tmp_path / "store")
    for _ in range(2):  # graded, then from the store: the same times
        graded = {
            g.student: g
            for g in grade_with_store(
                discover([root]),
                store=store,
                context=context(reference),
                grade=counting_grader(reference, []),
            )
        }
        assert (graded["carl"].timestamp, graded["carl"].timestamp_source) == (
            "2025-03-08T09:15:00+00:00",
            "timestamp.txt",
        )
        assert (graded["ada"].timestamp, graded["ada"].timestamp_source) == (
            "2023-11-14T22:13:20+00:00",
            "mtime",
        )
    assert submission_timestamp(tmp_path / "missing.ipynb") == ("", "")
    data = results_json(graded["carl"].result, submitted_at=graded["carl"].timestamp)
    assert data["extra_data"]["timestamp"] == "2025-03-08T09:15:00+00:00"


def test_the_store_never_touches_submissions(tmp_path, reference):
    root = small_class(tmp_path)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    store = Store(tmp_path / "store")
    grade_with_store(
        discover([root]),
        store=store,
        context=context(reference),
        grade=counting_grader(reference, []),
    )
    assert before == {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
    }
    assert all(p.is_relative_to(store.root) for p in store.files())
