"""Regrade diff: every student whose score changes between two grades, by check, with the reason.

Both grades are real: the same sample submissions graded twice, with a resubmission, another
salt, another reference or a check library whose points changed in between. The expected list
is computed from the two batches' in-memory results (``CheckResult.score`` check by check); the
diff reads the stores from disk (course file, stored records) and must list exactly those.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
from kit_testing import ANSWERS, ROOT, answer_functions, write_submission

from grader.__main__ import main
from grader.checks import CHECKS
from grader.checks.cases import salt_from_environment
from grader.grading import discover
from grader.report import course_file, regrade
from grader.report.points import apply_points
from grader.store import Context, Store, grade_with_store

ASSIGNMENT = "02_dropout"
#: student -> sample answer (a correct one, misconceptions, a backward mistake)
CLASS = {
    "ada": "ada_correct",
    "carl": "carl_keep_prob",
    "fay": "fay_scaled_at_test",
    "gus": "gus_backward_no_mask",
}


def submit(root: Path, student: str, answer: str, assignment: str = ASSIGNMENT) -> Path:
    functions = answer_functions(ANSWERS / assignment / f"{answer}.py")
    return write_submission(root, assignment, functions, name=student)


def make_class(root: Path, answers: dict[str, str] = CLASS, assignment: str = ASSIGNMENT) -> Path:
    for student, answer in answers.items():
        submit(root, student, answer, assignment)
    return root


def grade_into(store_dir: Path, submitted: Path, context: Context):
    """What ``grade --store`` does: grade through the store, then write the course file."""
    graded = grade_with_store(
        discover([submitted]), store=Store(store_dir), context=context, jobs=1, progress=False
    )
    course_file.record_course(store_dir, graded, context)
    return {(g.student, g.result.assignment): g.result for g in graded}


def expected_changes(old: dict, new: dict, points: dict | None = None) -> set[tuple]:
    """(student, check, old score, new score, old max, new max) for every check that differs."""
    found = set()
    for key in old.keys() & new.keys():
        a = {c.check.id: c for c in apply_points(old[key], points or {}).checks}
        b = {c.check.id: c for c in apply_points(new[key], points or {}).checks}
        for check_id in a.keys() | b.keys():
            row = (
                key[0],
                check_id,
                a[check_id].score if check_id in a else None,
                b[check_id].score if check_id in b else None,
                float(a[check_id].check.points) if check_id in a else None,
                float(b[check_id].check.points) if check_id in b else None,
            )
            if row[2] != row[3] or row[4] != row[5]:
                found.add(row)
    return found


def listed(diff: regrade.Regrade) -> set[tuple]:
    return {
        (c.student, c.check, c.old_score, c.new_score, c.old_max, c.new_max)
        for c in diff.changes
        if c.check
    }


def context(reference, salt: str | None = None) -> Context:
    return Context(salt=salt or salt_from_environment(), reference=reference)


@pytest.fixture(scope="module")
def first_grade(tmp_path_factory, reference):
    """The class graded once: (submitted folder, store, results)."""
    root = tmp_path_factory.mktemp("first")
    submitted = make_class(root / "submitted")
    results = grade_into(root / "store", submitted, context(reference))
    return submitted, root / "store", results


def copy_class(first_grade, tmp_path: Path) -> Path:
    submitted = tmp_path / "submitted"
    shutil.copytree(first_grade[0], submitted)
    return submitted


# --------------------------------------------------------------------------- what changes
@pytest.mark.parametrize("points", [None, {"dropout_train_forward": 10.0, "dropout_backward": 0.5}])
def test_a_resubmission_lists_exactly_the_changed_checks(first_grade, tmp_path, reference, points):
    _, old_store, old_results = first_grade
    submitted = copy_class(first_grade, tmp_path)
    submit(submitted, "carl", "ada_correct")  # carl fixed his keep-prob confusion
    submit(submitted, "gus", "hana_backward_no_scale")  # gus traded one mistake for another
    new_store = tmp_path / "store"
    new_results = grade_into(new_store, submitted, context(reference))

    diff = regrade.compare(
        regrade.load_side(old_store), regrade.load_side(new_store), points=points
    )

    expected = expected_changes(old_results, new_results, points)
    assert expected, "the resubmissions change some score"
    assert listed(diff) == expected
    assert {c.student for c in diff.changes} == {"carl", "gus"} & {s for s, *_ in expected}
    for change in diff.changes:
        assert "submission changed (new sha256)" in change.reasons
        assert change.delta == pytest.approx(change.new_score - change.old_score)
    assert diff.unchanged == len(CLASS) - len(diff.students())
    carl = [c for c in diff.changes if c.student == "carl"]
    gone = {d for c in carl for d in c.old_misconceptions} - {
        d for c in carl for d in c.new_misconceptions
    }
    assert gone, "carl's misconception is no longer found"
    assert all(
        any(r.startswith("misconception no longer found") for r in c.reasons)
        for c in carl
        if set(c.old_misconceptions) - set(c.new_misconceptions)
    )


def test_another_reference_changes_expected_values_and_says_so(tmp_path, reference, monkeypatch):
    """Hidden expectations come from the reference: one whose L2 penalty lost its 1/2 changes
    the verdicts of the students it now disagrees with (and of those it now agrees with)."""
    from grader import references

    answers = {"aiko": "aiko_correct", "kirra": "kirra_l2_no_half", "malik": "malik_l1_grad_abs"}
    submitted = make_class(tmp_path / "submitted", answers, "01_norms")
    old_store = tmp_path / "old"
    old_results = grade_into(old_store, submitted, context(reference))
    solutions = tmp_path / "solutions"
    shutil.copytree(ROOT / "solutions" / "reference", solutions / "reference")
    norms = solutions / "reference" / "norms.py"
    text = norms.read_text(encoding="utf-8")
    assert text.count("float(0.5 * lam *") == 1
    norms.write_text(text.replace("float(0.5 * lam *", "float(lam *"), encoding="utf-8")
    name = references.MODULE_NAME
    for module in [n for n in sys.modules if n == name or n.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, module)  # the copy's own modules; the suite's back after
    other = references.load(solutions)
    assert Path(other.__file__).parent == solutions / "reference"
    new_store = tmp_path / "store"
    new_results = grade_into(new_store, submitted, context(other))

    diff = regrade.compare(regrade.load_side(old_store), regrade.load_side(new_store))

    expected = expected_changes(old_results, new_results)
    assert expected
    assert listed(diff) == expected
    for change in diff.changes:
        assert any(r.startswith("reference solutions ") for r in change.reasons)
        assert "submission changed (new sha256)" not in change.reasons


def test_a_new_salt_is_named_as_the_reason(first_grade, tmp_path, reference):
    _, old_store, old_results = first_grade
    new_store = tmp_path / "store"
    new_results = grade_into(new_store, first_grade[0], context(reference, "another course"))

    diff = regrade.compare(regrade.load_side(old_store), regrade.load_side(new_store))

    assert listed(diff) == expected_changes(old_results, new_results)
    for change in diff.changes:
        assert "salt changed: new hidden inputs" in change.reasons


def test_check_library_points_are_those_of_each_side(first_grade, tmp_path, reference, monkeypatch):
    """A kit whose check library gives a check more points: every student's maximum changes,
    the reason names the check library and the points; a course points file overrides both."""
    import dataclasses

    import grader.store

    _, old_store, old_results = first_grade
    check_id = "dropout_train_forward"
    doubled = dataclasses.replace(CHECKS[check_id], points=2 * CHECKS[check_id].points)
    monkeypatch.setitem(CHECKS, check_id, doubled)
    monkeypatch.setattr(grader.store, "check_set_fingerprint", lambda: "edited-library")
    new_store = tmp_path / "store"
    new_results = grade_into(new_store, first_grade[0], context(reference))
    monkeypatch.undo()

    diff = regrade.compare(regrade.load_side(old_store), regrade.load_side(new_store))

    expected = expected_changes(old_results, new_results)
    assert {row[0] for row in expected} == set(CLASS)
    assert listed(diff) == expected
    for change in diff.changes:
        assert any(r.startswith("check library ") for r in change.reasons)
        assert f"points {doubled.points / 2:g} -> {doubled.points:g}" in change.reasons
    same = regrade.compare(
        regrade.load_side(old_store),
        regrade.load_side(new_store),
        points={check_id: doubled.points},
    )
    assert listed(same) == expected_changes(old_results, new_results, {check_id: doubled.points})


def test_the_same_grade_changes_nothing_whatever_the_policy(first_grade):
    _, store, _ = first_grade
    for carry_forward in (None, True, False):
        diff = regrade.compare(
            regrade.load_side(store), regrade.load_side(store), carry_forward=carry_forward
        )
        assert not diff.changed
        assert diff.unchanged == len(CLASS)


# --------------------------------------------------------------------------- the course file
def test_the_course_file_keeps_every_student_and_each_kit_used(tmp_path, reference):
    submitted = make_class(tmp_path / "submitted")
    store = tmp_path / "store"
    for student in CLASS:  # graded one student at a time: entries are merged, not replaced
        grade_into(store, submitted / student, context(reference))
    grade_into(store, submitted / "ada", context(reference, "another course"))
    course = course_file.read_course_file(store)
    assert {s["student"] for s in course["submissions"]} == set(CLASS)
    assert len(course["history"]) == 2  # two salts: two ways this course was graded
    from grader import __version__

    assert {run["kit_version"] for run in course["history"]} == {__version__}
    for item in course["submissions"]:
        assert Store(store).path_for(item["sha256"], item["key"]).exists()
    assert regrade.load_side(store).kit_summary().startswith(f"kit {__version__} ")


def test_a_store_without_course_file_is_matched_by_sha256(first_grade, tmp_path, reference):
    _, old_store, old_results = first_grade
    legacy = tmp_path / "legacy"
    shutil.copytree(old_store, legacy)
    (legacy / course_file.COURSE_FILE).unlink()
    with pytest.raises(regrade.RegradeError, match="course.json"):
        regrade.load_side(legacy)
    submitted = copy_class(first_grade, tmp_path)
    submit(submitted, "carl", "ben_correct_float32")  # bytes the old store has never seen
    side = regrade.load_side(legacy, discover([submitted]))
    assert side.legacy
    assert set(side.entries) == {(s, ASSIGNMENT) for s in CLASS if s != "carl"}
    new_results = grade_into(tmp_path / "store", submitted, context(reference))
    diff = regrade.compare(side, regrade.load_side(tmp_path / "store"))
    (carl,) = [c for c in diff.changes if c.student == "carl"]
    assert not carl.check and carl.reasons == ["no result in the old grade"]
    assert carl.new_score == new_results[("carl", ASSIGNMENT)].score
    assert [c for c in diff.changes if c.student != "carl"] == []
    assert set(old_results) == set(new_results)


# --------------------------------------------------------------------------- command line
def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_compare_and_diff_from_the_command_line(tmp_path, capsys):
    """export --compare against the course's own store: exit 3 and the CSV/JSON when scores
    change, 0 when the next export changes nothing; diff of two stores: 1, then 0."""
    submitted = make_class(tmp_path / "submitted", {"ada": "carl_keep_prob", "bo": "ada_correct"})
    course = tmp_path / "course"
    common = ["--course", str(course), "--no-gradebook", "--no-progress", "--jobs", "1"]
    assert main(["export", str(submitted), *common]) == 0
    store = course / ".grader-cache"
    before = tmp_path / "before"
    shutil.copytree(store, before)
    old = regrade.load_side(store)

    submit(submitted, "ada", "ada_correct")
    capsys.readouterr()
    assert main(["export", str(submitted), *common, "--compare", str(store)]) == 3
    out = capsys.readouterr().out
    diff = regrade.compare(old, regrade.load_side(store))
    assert diff.students() == ["ada"]
    rows = read_csv(course / "exports" / "regrade.csv")
    assert [(r["student"], r["check"]) for r in rows] == [
        (c.student, c.check) for c in diff.changes
    ]
    assert [float(r["change"]) for r in rows] == [c.delta for c in diff.changes]
    data = json.loads((course / "exports" / "regrade.json").read_text(encoding="utf-8"))
    assert data["changed"] and data["students"] == ["ada"]
    for change in diff.changes:
        assert change.check in out

    assert main(["export", str(submitted), *common, "--compare", str(store)]) == 0
    assert "no score changes" in capsys.readouterr().out

    out_csv = tmp_path / "diff.csv"
    assert main(["diff", str(before), str(course), "--compare-csv", str(out_csv)]) == 1
    assert read_csv(out_csv) == rows
    preview = tmp_path / "preview"  # grade --store writes the course file too
    grade = ["grade", str(submitted), "--store", str(preview), "--no-progress", "--jobs", "1"]
    assert main([*grade, "--format", "csv", "--out", str(tmp_path / "grades.csv")]) == 0
    assert main(["diff", str(before), str(preview), "--compare-csv", str(out_csv)]) == 1
    assert read_csv(out_csv) == rows
    assert main(["diff", str(store), str(store)]) == 0
    assert main(["diff", str(tmp_path / "nowhere"), str(store)]) == 2


def test_loose_notebooks_are_told_apart_by_their_path(tmp_path, reference):
    """Loose notebooks name no student: two of the same name in two folders are two entries."""
    store = tmp_path / "store"
    for folder, answer in (("one", "ada_correct"), ("two", "carl_keep_prob")):
        path = submit(tmp_path / folder, "x", answer)
        loose = tmp_path / folder / path.name
        path.rename(loose)
        grade_into(store, loose, context(reference))
    side = course_file.read_course_file(store)
    assert [s["student"] for s in side["submissions"]] == ["", ""]
    loaded = regrade.load_side(store)
    assert {key[1] for key in loaded.entries} == {
        str((tmp_path / f / f"{ASSIGNMENT}.ipynb").resolve()) for f in ("one", "two")
    }
    assert regrade.compare(loaded, regrade.load_side(store)).unchanged == 2


def test_a_stored_result_edited_out_of_shape_is_refused(first_grade, tmp_path, capsys):
    _, store, _ = first_grade
    broken = tmp_path / "broken"
    shutil.copytree(store, broken)
    item = course_file.read_course_file(broken)["submissions"][0]
    path = Store(broken).path_for(item["sha256"], item["key"])
    record = json.loads(path.read_text(encoding="utf-8"))
    record["result"]["checks"][0]["cases"] = [{"passed": True}]  # a case without a name
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(regrade.RegradeError, match=path.name):
        regrade.load_side(broken)
    assert main(["diff", str(broken), str(store)]) == 2
    assert path.name in capsys.readouterr().err
