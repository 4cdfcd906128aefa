"""The late policy, extensions and the roster in nbgrader's gradebook, read by the real ``nbgrader
export`` (slow): raw score, ``late_submission_penalty`` and score; auto scores stay raw; names
and emails from the roster; and "seen in the class's other assignments" read from the gradebook.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kit_testing import ROOT

from grader.checks import checks_for
from grader.course import nbgrader_environment
from grader.report.late_policy import parse_policy
from grader.report.roster import load_roster
from grader.store import parse_timestamp

pytestmark = pytest.mark.slow
SAMPLE = ROOT / "data" / "sample_class" / "submitted"
ROSTER = ROOT / "data" / "sample_class" / "roster.csv"
DUE = "2025-03-07 23:59:00 UTC"
POLICY = "10%/day, max 3 days"
STAMPS = {
    "ada": "2025-03-07 12:00:00.000000 UTC",  # on time
    "carl": "2025-03-08 09:15:00.000000 UTC",  # one started day late
    "gus": "2025-03-10 12:00:00.000000 UTC",  # late, but with a 3-day extension
    "jia": "2025-03-14 00:00:00.000000 UTC",  # six days late: the cap
}
EXTENSIONS = {"gus": dt.timedelta(days=3)}


def run(*args: str, cwd: Path = ROOT, nbgrader: bool = False) -> subprocess.CompletedProcess:
    command = (
        [sys.executable, "-m", "nbgrader", *args]
        if nbgrader
        else [sys.executable, "-m", "grader", *args, "--no-progress", "--jobs", "2"]
    )
    env = nbgrader_environment(ROOT / "solutions" / "reference", None) if nbgrader else None
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def nbgrader_rows(course: Path) -> dict[tuple[str, str], dict]:
    run("export", "--to", str(course / "nbgrader.csv"), cwd=course, nbgrader=True)
    rows = csv.DictReader(io.StringIO((course / "nbgrader.csv").read_text()))
    return {(r["student_id"], r["assignment"]): r for r in rows}


@pytest.fixture(scope="module")
def late_course(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("late")
    submitted = tmp / "submitted"
    for student, stamp in STAMPS.items():
        folder = submitted / student / "02_dropout"
        shutil.copytree(SAMPLE / student / "02_dropout", folder)
        (folder / "timestamp.txt").write_text(stamp)
    extensions = tmp / "extensions.csv"
    extensions.write_text(
        "student,assignment,extension\n"
        + "".join(
            f"{s},02_dropout,{int(d.total_seconds() // 3600)} hours\n"
            for s, d in EXTENSIONS.items()
        )
    )
    course = tmp / "course"
    run(
        "export",
        str(submitted),
        "--course",
        str(course),
        "--due",
        DUE,
        "--late-policy",
        POLICY,
        "--extensions",
        str(extensions),
        "--roster",
        str(ROSTER),
    )
    return course


def test_nbgrader_export_shows_raw_score_penalty_and_score(late_course):
    policy = parse_policy(POLICY)
    maximum = sum(c.points for c in checks_for("02_dropout"))
    ours = {
        r["extra_data"]["student"]: r
        for r in json.loads((late_course / "exports" / "results.json").read_text())
    }
    theirs = nbgrader_rows(late_course)
    due = parse_timestamp(DUE)
    for student, stamp in STAMPS.items():
        raw = sum(t["score"] for t in ours[student]["tests"])
        seconds = (
            parse_timestamp(stamp) - due - EXTENSIONS.get(student, dt.timedelta(0))
        ).total_seconds()
        periods = max(0, -(-seconds // policy.period.total_seconds()))  # started days
        penalty = min(raw, min(policy.cap, policy.rate * periods) * maximum) if seconds > 0 else 0.0
        row = theirs[(student, "02_dropout")]
        assert float(row["raw_score"]) == pytest.approx(raw, abs=1e-4)  # auto scores stay raw
        assert float(row["late_submission_penalty"]) == pytest.approx(penalty, abs=1e-4)
        assert float(row["score"]) == pytest.approx(max(0.0, raw - penalty), abs=1e-4)
        assert ours[student]["score"] == pytest.approx(max(0.0, raw - penalty), abs=1e-4)
    assert float(theirs[("carl", "02_dropout")]["late_submission_penalty"]) > 0
    assert float(theirs[("jia", "02_dropout")]["late_submission_penalty"]) == pytest.approx(
        min(policy.cap * maximum, sum(t["score"] for t in ours["jia"]["tests"])), abs=1e-4
    )

    roster = load_roster(ROSTER)
    for student in roster.values():  # the whole roster, missing students with nbgrader's 0
        row = theirs[(student.id, "02_dropout")]
        assert (row["first_name"], row["last_name"]) == student.names()
        assert row["email"] == student.email
        if student.id not in STAMPS:
            assert row["timestamp"] == "" and float(row["score"]) == 0

    from grader.report.nbgrader_export import _gradebook

    with _gradebook(late_course) as gb:
        gus = gb.find_submission("02_dropout", "gus")
        assert gus.extension == EXTENSIONS["gus"] and gus.total_seconds_late == 0


def test_students_seen_in_the_gradebook_count_as_missing(tmp_path):
    """01_norms exported first; then 02_dropout alone, without a roster."""
    first = tmp_path / "first" / "submitted"
    shutil.copytree(SAMPLE / "aiko" / "01_norms", first / "aiko" / "01_norms")
    shutil.copytree(SAMPLE / "lee" / "01_norms", first / "lee" / "01_norms")
    second = tmp_path / "second" / "submitted"
    shutil.copytree(SAMPLE / "lee" / "02_dropout", second / "lee" / "02_dropout")
    course = tmp_path / "course"
    run("export", str(first), "--course", str(course))
    run("export", str(second), "--course", str(course))
    rows = list(csv.DictReader(io.StringIO((course / "exports" / "grades.csv").read_text())))
    assert [(r["student"], r["assignment"], r["status"]) for r in rows] == [
        ("lee", "02_dropout", "not attempted"),
        ("aiko", "02_dropout", "missing"),
    ]
