"""The late policy: its phrase and TOML forms, extensions, and the penalty in every export.

Expected penalties are computed here from the policy's definition (started periods after due +
extension + grace, a share of the maximum, capped, never more than the score) by counting the
periods one by one, not by calling the module's own arithmetic.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil

import pytest
from kit_testing import ROOT

from grader.checks import checks_for
from grader.checks.cases import salt_from_environment
from grader.grading import discover
from grader.report.display import for_people
from grader.report.exports import export_all
from grader.report.late_policy import (
    LatePolicy,
    LatePolicyError,
    late_for,
    load_extensions,
    parse_duration,
    parse_policy,
)
from grader.store import Context, grade_with_store, parse_timestamp

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
DUE = "2025-03-07 23:59:00 UTC"
DAY = 86400.0


def started_periods(seconds: float, period: float) -> int:
    """Count periods the slow way: the first second late starts the first period."""
    n, start = 0, 0.0
    while start < seconds:
        n += 1
        start += period
    return n


def expected_penalty(raw, maximum, seconds, *, rate, period, cap=1.0, zero_after=None):
    if seconds <= 0:
        return 0.0
    if zero_after is not None and seconds > zero_after:
        return raw
    return min(raw, min(cap, rate * started_periods(seconds, period)) * maximum)


# --------------------------------------------------------------------------- the policy
def test_the_phrase_and_the_toml_table_mean_the_same(tmp_path):
    phrase = parse_policy("10%/day, max 3 days")
    table = tmp_path / "late.toml"
    table.write_text('[late_policy]\nper_day = 10\nmax = "3 days"\n')
    assert parse_policy(str(table)) == phrase
    assert phrase.rate == pytest.approx(0.1) and phrase.cap == pytest.approx(0.3)
    assert phrase.period == dt.timedelta(days=1) and phrase.grace == dt.timedelta(0)
    full = parse_policy("2% per hour, grace 15 minutes, cap 50%, zero after 7 days")
    top_level = tmp_path / "full.toml"
    top_level.write_text('per_hour = "2%"\ngrace = "15 min"\ncap = 50\nzero_after = "1 week"\n')
    assert parse_policy(str(top_level)) == full
    assert full == LatePolicy(
        rate=0.02,
        period=dt.timedelta(hours=1),
        grace=dt.timedelta(minutes=15),
        cap=0.5,
        zero_after=dt.timedelta(days=7),
    )
    assert "per hour" in full.describe() and "15 minutes" in full.describe()


@pytest.mark.parametrize(
    "text, message",
    [
        ("10% a day", "cannot read"),
        ("10%/day, 5%/hour", "exactly one of per_day or per_hour"),
        ("150%/day", "between 0 and 100"),
        ("10%/day, grace soon", "not a duration"),
        ("10%/day, cap lots", "percentage"),
        ("max 3 days", "exactly one of per_day or per_hour"),
    ],
)
def test_policy_errors_say_what_is_wrong(text, message):
    with pytest.raises(LatePolicyError, match=message):
        parse_policy(text)


def test_a_toml_policy_with_an_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "late.toml"
    bad.write_text("[late_policy]\nper_day = 10\nper_week = 5\n")
    with pytest.raises(LatePolicyError, match="unknown setting per_week"):
        parse_policy(str(bad))


def test_penalties_follow_the_definition():
    policies = {
        "10%/day, max 3 days": dict(rate=0.1, period=DAY, cap=0.3),
        "2%/hour, cap 50%": dict(rate=0.02, period=3600.0, cap=0.5),
        "25%/day, zero after 2 days": dict(rate=0.25, period=DAY, zero_after=2 * DAY),
    }
    lateness = [0, 1, 3599, 3600, 3601, DAY - 1, DAY, DAY + 1, 2 * DAY + 1, 3.5 * DAY, 30 * DAY]
    for text, spec in policies.items():
        policy = parse_policy(text)
        for seconds in lateness:
            for raw, maximum in ((10.0, 10.0), (8.6667, 10.0), (0.5, 12.0), (0.0, 18.0)):
                assert policy.penalty(raw, maximum, seconds) == pytest.approx(
                    expected_penalty(raw, maximum, seconds, **spec), abs=1e-4
                ), (text, seconds, raw)


def test_extension_and_grace_move_the_deadline():
    due = parse_timestamp(DUE)
    policy = parse_policy("10%/day, grace 1 hour")
    submitted = (due + dt.timedelta(days=2, minutes=30)).isoformat()
    plain = late_for(submitted, due, raw_score=9.0, max_score=10.0, policy=policy)
    assert plain.seconds_late == pytest.approx(2 * DAY + 1800 - 3600)
    assert plain.penalty == pytest.approx(
        expected_penalty(9, 10, plain.seconds_late, rate=0.1, period=DAY)
    )
    extended = late_for(
        submitted,
        due,
        raw_score=9.0,
        max_score=10.0,
        policy=policy,
        extension=parse_duration("2 days"),
    )
    assert extended.seconds_late == 0 and extended.penalty == 0 and extended.score == 9.0
    assert "on time" in extended.sentence() and "2 days" in extended.sentence()
    assert late_for("", due, raw_score=1, max_score=1, policy=policy) is None
    assert late_for(submitted, None, raw_score=1, max_score=1, policy=policy) is None


def test_extensions_file(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text(
        "student,assignment,extension\ncarl,,1 day\ncarl,02_dropout,3 days\ngus,02_dropout,36 hours\n"
    )
    extensions = load_extensions(path)
    assert extensions.for_student("carl", "02_dropout") == dt.timedelta(days=3)
    assert extensions.for_student("carl", "01_norms") == dt.timedelta(days=1)
    assert extensions.for_student("gus", "02_dropout") == dt.timedelta(hours=36)
    assert extensions.for_student("gus", "01_norms") == dt.timedelta(0)
    for text, message in (
        ("student,extension\ncarl,1 day\ncarl,2 days\n", "a second extension"),
        ("name,extension\ncarl,1 day\n", "needs the columns"),
        ("student,assignment,extension\ncarl,,soon\n", "line 2: not a duration"),
    ):
        path.write_text(text)
        with pytest.raises(LatePolicyError, match=message):
            load_extensions(path)


# --------------------------------------------------------------------------- in the exports
STAMPS = {  # when each student handed in 02_dropout (what `nbgrader collect` leaves)
    "ada": "2025-03-07 12:00:00.000000 UTC",  # on time
    "carl": "2025-03-08 09:15:00.000000 UTC",  # 9 h 16 min late: one started day
    "gus": "2025-03-10 12:00:00.000000 UTC",  # 2.5 days late, but has a 3-day extension
    "jia": "2025-03-14 00:00:00.000000 UTC",  # 6 days late: the cap
}


def late_class(tmp_path, reference):
    root = tmp_path / "in" / "submitted"
    for student, stamp in STAMPS.items():
        folder = root / student / "02_dropout"
        shutil.copytree(SAMPLE / student / "02_dropout", folder)
        (folder / "timestamp.txt").write_text(stamp)
    return grade_with_store(
        discover([root]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )


def test_the_penalty_reaches_csv_gradescope_and_feedback(tmp_path, reference):
    graded = late_class(tmp_path, reference)
    extensions_file = tmp_path / "extensions.csv"
    extensions_file.write_text("student,assignment,extension\ngus,02_dropout,3 days\n")
    policy = parse_policy("10%/day, max 3 days")
    course = tmp_path / "course"
    export_all(
        graded,
        course,
        gradebook=False,
        due=DUE,
        late_policy=policy,
        extensions=load_extensions(extensions_file),
    )
    maximum = sum(c.points for c in checks_for("02_dropout"))
    due = parse_timestamp(DUE)
    extension = {"gus": 3 * DAY}
    expected = {}
    for g in graded:
        seconds = (parse_timestamp(STAMPS[g.student]) - due).total_seconds()
        seconds -= extension.get(g.student, 0.0)
        expected[g.student] = (
            g.result.score,
            expected_penalty(g.result.score, maximum, seconds, rate=0.1, period=DAY, cap=0.3),
        )
    assert expected["carl"][1] > 0 and expected["jia"][1] > expected["carl"][1]
    assert expected["ada"][1] == 0 and expected["gus"][1] == 0

    rows = {
        r["student"]: r
        for r in csv.DictReader(io.StringIO((course / "exports" / "grades.csv").read_text()))
    }
    for student, (raw, penalty) in expected.items():
        row = rows[student]
        assert float(row["score"]) == raw  # raw scores stay raw
        assert float(row["late_penalty"]) == pytest.approx(penalty, abs=1e-4)
        assert float(row["final_score"]) == pytest.approx(raw - penalty, abs=1e-4)
    assert float(rows["carl"]["seconds_late"]) == 9 * 3600 + 16 * 60  # the --due column stays

    results = {
        r["extra_data"]["student"]: r
        for r in json.loads((course / "exports" / "results.json").read_text())
    }
    for student, (raw, penalty) in expected.items():
        data = results[student]
        assert data["score"] == pytest.approx(raw - penalty, abs=1e-4)
        assert sum(t["score"] for t in data["tests"]) == pytest.approx(raw, abs=1e-4)
        assert data["extra_data"]["late"]["penalty"] == pytest.approx(penalty, abs=1e-4)
    assert "late" in results["carl"]["output"] and results["ada"]["output"] == ""

    for student, (raw, penalty) in expected.items():
        for suffix in ("md", "html"):
            text = (
                course / "feedback" / student / "02_dropout" / f"02_dropout.{suffix}"
            ).read_text()
            assert f"Score: {for_people(raw - penalty)} / {for_people(maximum)}" in text
            if penalty:
                assert f"Points lost: {for_people(penalty)};" in text and policy.describe() in text


def test_without_a_due_date_the_policy_warns_and_charges_nothing(tmp_path, reference):
    graded = late_class(tmp_path, reference)
    report = export_all(
        graded, tmp_path / "course", gradebook=False, late_policy=parse_policy("10%/day")
    )
    assert any("no due date for 02_dropout" in w for w in report.warnings)
    rows = list(
        csv.DictReader(io.StringIO((tmp_path / "course" / "exports" / "grades.csv").read_text()))
    )
    assert all(
        r["late_penalty"] == "" and float(r["final_score"]) == float(r["score"]) for r in rows
    )


def test_the_export_command_refuses_a_bad_policy_roster_or_extensions(tmp_path):
    import subprocess
    import sys

    bad_roster = tmp_path / "students.csv"
    bad_roster.write_text("name\nAda\n")
    for option, value, message in (
        ("--late-policy", "10% a day", "cannot read '10% a day'"),
        ("--roster", str(bad_roster), "needs an 'id' column"),
        ("--extensions", str(tmp_path / "absent.csv"), "cannot read the extensions file"),
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "grader",
                "export",
                str(SAMPLE / "ada"),
                "--course",
                str(tmp_path / "course"),
                option,
                value,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert not (tmp_path / "course").exists()  # nothing graded, nothing written


def test_a_policy_on_guessed_times_warns(tmp_path, reference):
    root = tmp_path / "in" / "submitted"
    shutil.copytree(SAMPLE / "ada" / "02_dropout", root / "ada" / "02_dropout")  # no timestamp.txt
    graded = grade_with_store(
        discover([root]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )
    report = export_all(
        graded, tmp_path / "course", gradebook=False, due=DUE, late_policy=parse_policy("10%/day")
    )
    assert any("modification time" in w and "ada" in w for w in report.warnings)
