"""Hostile: a student tries to take another student's grade, or to have more than one notebook graded.

Identity (student, assignment, notebook) is counted from the PATH the instructor gave
(``PATH/<student>/<assignment>/<notebook>.ipynb`` at exactly that depth, or a manifest), never
from anything inside a student's folder (issue 9, holes 1 and 5). Each attack names the exact
outcome; the variants are ours.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_helpers import ROOT, filled, real_sandbox, released, write  # noqa: F401

from grader.checks import checks_for
from grader.grading import discover, grade_notebook

ASSIGNMENT = "02_dropout"
FULL = sum(c.points for c in checks_for(ASSIGNMENT))  # public and hidden
SAMPLE = ROOT / "data" / "sample_class" / "submitted"
CORRECT_BN = SAMPLE / "bashir" / "03_batchnorm" / "03_batchnorm.ipynb"


def find_submissions(paths):
    from grader.layout import find_submissions as find  # imported late: the old code has none

    return find(paths)


def read_manifest(path):
    from grader.layout import read_manifest as read

    return read(path)


def grader_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def nb(root: Path, *parts: str, notebook=None) -> Path:
    return write(root.joinpath(*parts), notebook if notebook is not None else filled())


def identities(paths) -> list[tuple[str, str | None, str]]:
    return [
        (t.student, t.assignment, t.path.relative_to(paths[0]).as_posix()) for t in discover(paths)
    ]


# --------------------------------------------------------------------------- hole 1
def test_a_submitted_folder_inside_alices_folder_is_not_bobs(tmp_path):
    """The attack: alice puts submitted/bob/02_dropout/02_dropout.ipynb (+ timestamp.txt) in her
    own folder. Before: it was graded as bob's. Now: reported, not graded; bob is bob."""
    root = tmp_path / "course" / "submitted"
    nb(root, "alice", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    nb(root, "bob", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    fake = nb(root, "alice", ASSIGNMENT, "submitted", "bob", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    (fake.parent / "timestamp.txt").write_text("2031-01-01 00:00:00.000000 UTC")
    assert identities([root]) == [
        ("alice", ASSIGNMENT, f"alice/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"),
        ("bob", ASSIGNMENT, f"bob/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"),
    ]
    assert [path for path, _ in find_submissions([root]).skipped] == [fake]


def test_export_keeps_bobs_grade_and_never_replaces_his_files(tmp_path):
    """The attack end to end through ``export``: bob's gradebook entry stays at full marks, his
    submitted notebook and timestamp stay byte for byte, no entry for the absent carol."""
    course = tmp_path / "course"
    root = course / "submitted"
    bob = nb(root, "bob", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    (bob.parent / "timestamp.txt").write_text("2025-03-01 10:00:00.000000 UTC")
    nb(root, "alice", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    for victim in ("bob", "carol"):  # carol: an absent student, invented
        fake = nb(
            root,
            "alice",
            ASSIGNMENT,
            "submitted",
            victim,
            ASSIGNMENT,
            f"{ASSIGNMENT}.ipynb",
            notebook=released(),
        )
        (fake.parent / "timestamp.txt").write_text("2031-01-01 00:00:00.000000 UTC")
    before = {p: p.read_bytes() for p in (bob, bob.parent / "timestamp.txt")}
    done = grader_cli("export", str(root), "--course", str(course), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("not graded:") == 2
    assert {p: p.read_bytes() for p in before} == before
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        rows = sorted((s.student_id, s.code_score) for s in gb.assignment_submissions(ASSIGNMENT))
    assert rows == [("alice", FULL), ("bob", FULL)]
    assert not (course / "feedback" / "carol").exists()


def test_export_never_replaces_a_differing_file_in_course_submitted(tmp_path):
    """Variant: grading a copy of bob's folder elsewhere into a course whose submitted/ already
    holds a different notebook of bob's: that file is left alone and the export says so."""
    course = tmp_path / "course"
    his = nb(course / "submitted", "bob", ASSIGNMENT, f"{ASSIGNMENT}.ipynb", notebook=released())
    original = his.read_bytes()
    elsewhere = tmp_path / "incoming" / "submitted"
    nb(elsewhere, "bob", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    done = grader_cli("export", str(elsewhere), "--course", str(course), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert his.read_bytes() == original
    assert "exists and differs" in done.stderr


@pytest.mark.parametrize("where", ["same", "inside"])
def test_export_refuses_to_write_into_its_input(tmp_path, where):
    """Variant: ``--course`` is the input folder itself, or inside it: refused (exit 2),
    nothing written."""
    root = tmp_path / "submitted"
    nb(root, "alice", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    course = root if where == "same" else root / "alice" / "out"
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    done = grader_cli("export", str(root), "--course", str(course), "--no-progress")
    assert done.returncode == 2
    assert "--course" in done.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == listing


# --------------------------------------------------------------------------- hole 5 (identity half)
def test_only_the_layout_depth_is_graded(tmp_path):
    """Before: every *.ipynb at any depth was graded. Now: deeper and extra notebooks are
    reported; one notebook per student and assignment, the expected file name wins."""
    root = tmp_path / "submitted"
    expected = nb(root, "alice", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    extra = nb(root, "alice", ASSIGNMENT, "copy.ipynb")
    deeper = [nb(root, "alice", ASSIGNMENT, "d", f"{i}.ipynb") for i in range(5)]
    shallow = nb(root, "alice", "stray.ipynb")
    assert [(t.path, t.student, t.assignment) for t in discover([root])] == [
        (expected, "alice", ASSIGNMENT)
    ]
    found = find_submissions([root])
    assert sorted(p for p, _ in found.skipped) == sorted([extra, *deeper, shallow])


def test_several_notebooks_without_the_expected_name_are_ambiguous(tmp_path):
    """Variant: two notebooks, neither named 02_dropout.ipynb: none graded, the reason says why."""
    root = tmp_path / "submitted"
    a, b = (nb(root, "alice", ASSIGNMENT, f"{n}.ipynb") for n in ("a", "b"))
    assert discover([root]) == []
    found = find_submissions([root])
    assert sorted(p for p, _ in found.skipped) == [a, b]
    assert all("ambiguous" in why for _, why in found.skipped)
    lone = nb(root, "bob", ASSIGNMENT, "my_work.ipynb")  # a lone notebook keeps its own name
    assert [(t.path, t.student) for t in discover([root])] == [(lone, "bob")]


def test_a_folder_that_is_not_an_assignment_is_not_graded(tmp_path):
    """Variant: alice invents an assignment folder; her notebook there is reported, not graded."""
    root = tmp_path / "submitted"
    made_up = nb(root, "alice", "bonus_points", "bonus_points.ipynb")
    assert discover([root]) == []
    assert [p for p, _ in find_submissions([root]).skipped] == [made_up]


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("evil.example";"x")', "-cmd", "<b>x<b>", ".hidden", "a b"]
)
def test_a_student_id_that_is_not_valid_never_reaches_a_report(tmp_path, name):
    """Identity strings are validated before they reach a path, a CSV, a gradebook or a page."""
    root = tmp_path / "submitted"
    path = nb(root, name, ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    assert discover([root]) == []
    found = find_submissions([root])
    assert [p for p, _ in found.skipped] == [path]
    assert "not a valid student id" in found.skipped[0][1]


def test_one_students_folder_given_alone_is_that_student(tmp_path):
    """PATH inside a submitted/ folder counts too: submitted/alice grades as alice."""
    root = tmp_path / "submitted"
    mine = nb(root, "alice", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    nb(root, "alice", ASSIGNMENT, "submitted", "bob", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")
    for given in (root / "alice", root / "alice" / ASSIGNMENT, mine):
        assert [(t.path, t.student, t.assignment) for t in discover([given])] == [
            (mine, "alice", ASSIGNMENT)
        ]


def test_metadata_never_overrides_the_layout(tmp_path, reference):
    """Hole 2's twin in a batch: a correct batch-norm notebook in alice's 02_dropout folder is
    graded as 02_dropout (every dropout check fails: it defines no dropout function)."""
    root = tmp_path / "submitted"
    path = root / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True)
    shutil.copyfile(CORRECT_BN, path)
    (target,) = discover([root])
    result = grade_notebook(target, reference=reference)
    assert (result.assignment, result.score, result.max_score) == (ASSIGNMENT, 0.0, FULL)
    assert any("metadata names 03_batchnorm" in n for n in result.notes)


# --------------------------------------------------------------------------- manifest
def test_a_manifest_names_each_submission(tmp_path):
    """``--manifest``: identity from the instructor's file, never from where the file lies."""
    inbox = tmp_path / "inbox"
    nb(inbox, "deep", "submitted", "bob", ASSIGNMENT, "whatever.ipynb")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        f"student,assignment,path\nalice,{ASSIGNMENT},inbox/deep/submitted/bob/{ASSIGNMENT}/whatever.ipynb\n"
    )
    done = grader_cli("grade", "--manifest", str(manifest), "--format", "json", "--no-progress")
    assert done.returncode == 0, done.stderr
    (data,) = json.loads(done.stdout)
    assert (data["extra_data"]["student"], data["score"], data["max_score"]) == (
        "alice",
        FULL,
        FULL,
    )


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([("=cmd()", ASSIGNMENT, "a.ipynb")], "not a student id"),
        ([("alice", "nope", "a.ipynb")], "not one of the kit's assignments"),
        ([("alice", ASSIGNMENT, "a.ipynb"), ("alice", ASSIGNMENT, "b.ipynb")], "at most one"),
        ([("alice", ASSIGNMENT, "missing.ipynb")], "no such notebook"),
    ],
)
def test_a_bad_manifest_is_refused_whole(tmp_path, rows, problem):
    for name in ("a.ipynb", "b.ipynb"):
        nb(tmp_path, name)
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps([dict(zip(("student", "assignment", "path"), r, strict=True)) for r in rows])
    )
    done = grader_cli("grade", "--manifest", str(manifest), "--no-progress")
    assert done.returncode == 2 and problem in done.stderr
    from grader.layout import ManifestError

    with pytest.raises(ManifestError, match=problem):
        read_manifest(manifest)
