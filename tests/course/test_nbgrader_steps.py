"""nbgrader's own commands with the kit behind them (the repository's nbgrader_config.py).

One course directory, made with the repository's config, holds every sample submission and a set
of hostile ones. The real nbgrader command line runs ``generate_assignment``, ``autograde``,
``generate_feedback``, ``export`` and ``validate`` on it. Per grade cell, the gradebook must hold
exactly the scores ``python -m grader grade`` computes for the same files with the same salt; no
student code may run outside the sandbox (no kernel is started), and the gradebook must survive.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from pathlib import Path

import nbformat
import pytest
from bench_nbgrader import make_course, nbgrader, nbgrader_env, sample_submissions
from hostile.hostile_helpers import CORRECT_BACKWARD, CORRECT_FORWARD, UNSCALED_FORWARD, filled
from kit_testing import ROOT

from grader.checks import checks_for
from grader.grading import discover, grade_many
from grader.runner import sandbox
from grader.runner.process import Limits

pytestmark = pytest.mark.slow
SALT = "a course salt for the nbgrader steps test"
CASE_SECONDS = 3.0
MARKER = (
    f"/tmp/dnn-kit-kernel-ran-{uuid.uuid4().hex}"  # written by a cell only if it runs unsandboxed
)

# hostile students of 02_dropout: (forward, backward); the course directory is filled in later
ENV_REFERENCE = """
def dropout_forward(x, p_drop, mode="train", rng=None):
    import os, sys
    sys.path.insert(0, os.path.dirname(os.environ["DNN_KIT_REFERENCE"]))
    from reference import dropout_forward as answer
    return answer(x, p_drop, mode, rng)
"""
PATCH_NUMPY = """
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), dtype=bool)
open(MARKER, "w").write("ran")

def dropout_backward(dout, cache):
    return dout
"""
WRITE_GRADEBOOK = """
import os

def dropout_backward(dout, cache):
    for path in [GRADEBOOK, os.path.join(os.getcwd(), "gradebook.db")]:
        try:
            with open(path, "r+b") as db:
                db.truncate(0)
        except OSError:
            pass
    mask, mode = cache
    return dout * mask if mode == "train" else dout
"""
CRASH = """
import os, signal

def dropout_backward(dout, cache):
    os.kill(os.getpid(), signal.SIGKILL)
"""
LOOP = """
def dropout_forward(x, p_drop, mode="train", rng=None):
    while True:
        pass
"""


def hostile(course_dir) -> dict[str, tuple[str, str]]:
    gradebook = str(course_dir / "gradebook.db")
    return {
        "h_env_reference": (ENV_REFERENCE, CORRECT_BACKWARD),
        "h_patch_numpy": (UNSCALED_FORWARD, PATCH_NUMPY.replace("MARKER", repr(MARKER))),
        "h_gradebook": (UNSCALED_FORWARD, WRITE_GRADEBOOK.replace("GRADEBOOK", repr(gradebook))),
        "h_crash": (CORRECT_FORWARD, CRASH),
        "h_loop": (LOOP, CORRECT_BACKWARD),
    }


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course after generate_assignment and autograde of every assignment (CLI, kit config)."""
    if sandbox.require() == sandbox.FALLBACK:
        pytest.skip("the bubblewrap sandbox is unavailable here (CI=true makes this an error)")
    root = tmp_path_factory.mktemp("nbgrader-kit")
    course = root / "course"
    staged = root / "staged"
    paths = sample_submissions()
    for student, (forward, backward) in hostile(course).items():
        path = staged / student / "02_dropout" / "02_dropout.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(filled(forward, backward), path)
        paths.append(path)
    extra = f"\nc.GradeInSandbox.case_timeout = {CASE_SECONDS}\n"
    env = nbgrader_env(True, SALT)
    assignments = make_course(course, paths, extra_config=extra, env=env)
    logs = {}
    for assignment in assignments:
        done = nbgrader(["autograde", assignment, "--force"], course, env)
        logs[assignment] = done.stderr
        assert done.returncode == 0, done.stderr[-3000:]
    return {"dir": course, "env": env, "assignments": assignments, "logs": logs}


@pytest.fixture(scope="module")
def ours(course, reference):
    """`python -m grader grade` on the same submitted files, salt and limits."""
    results = grade_many(
        discover([course["dir"] / "submitted"]),
        jobs=2,
        salt=SALT,
        reference=reference,
        limits=Limits(case_seconds=CASE_SECONDS),
        progress=False,
    )
    return {(r.student, r.assignment): r for r in results}


def gradebook_cells(course_dir) -> dict[tuple[str, str], dict[str, float]]:
    from nbgrader.api import Gradebook

    scores: dict[tuple[str, str], dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    scores[(submission.student.id, assignment.name)] = {
                        g.name: float(g.score) for g in notebook.grades if g.cell_type == "code"
                    }
    return scores


def test_autograde_scores_equal_grade_on_every_submission(course, ours):
    recorded = gradebook_cells(course["dir"])
    assert set(recorded) == set(ours)
    for key, result in ours.items():
        assert not result.grader_failure, result.error
        expected = {c.check.id: c.score for c in result.checks}
        assert recorded[key] == pytest.approx(expected, abs=1e-9), key
    full = {a: sum(c.points for c in checks_for(a)) for a in course["assignments"]}
    assert sum(recorded[("ada", "02_dropout")].values()) == full["02_dropout"]
    assert sum(recorded[("lee", "02_dropout")].values()) == 0


def test_hostile_submissions_gain_nothing_and_harm_nothing(course, ours):
    recorded = gradebook_cells(course["dir"])
    honest = sum(recorded[("ada", "02_dropout")].values())
    for student in hostile(course["dir"]):
        assert sum(recorded[(student, "02_dropout")].values()) < honest, student
    # no student code ran outside the sandbox (a kernel would have written the marker)
    assert not Path(MARKER).exists()
    with sqlite3.connect(course["dir"] / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        students = {row[0] for row in db.execute("SELECT id FROM student")}
    assert set(hostile(course["dir"])) <= students


def test_autograded_cells_carry_message_and_score(course):
    path = course["dir"] / "autograded" / "carl" / "02_dropout" / "02_dropout.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cells = {
        c.metadata.nbgrader.grade_id: c
        for c in notebook.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }
    forward = cells["dropout_train_forward"]
    kinds = [o.output_type for o in forward.outputs]
    assert kinds == ["stream", "execute_result"]
    assert forward.outputs[0].name == "stdout"
    assert "dropout.keep_prob_confusion" in forward.outputs[0].text
    assert float(forward.outputs[1].data["text/plain"]) == 0.0
    # the student's own cells were not executed: no outputs anywhere else
    others = [
        c
        for c in notebook.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    ]
    assert others and all(not c.outputs for c in others)


def test_feedback_and_export_see_the_kit_scores(course, ours):
    for assignment in course["assignments"]:
        done = nbgrader(["generate_feedback", assignment, "--force"], course["dir"], course["env"])
        assert done.returncode == 0, done.stderr[-3000:]
    page = (course["dir"] / "feedback" / "carl" / "02_dropout" / "02_dropout.html").read_text()
    assert "dropout.keep_prob_confusion" in page
    assert "BEGIN HIDDEN TESTS" not in page
    done = nbgrader(["export", "--to", "grades.csv"], course["dir"], course["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO((course["dir"] / "grades.csv").read_text())))
    exported = {(r["student_id"], r["assignment"]): float(r["raw_score"]) for r in rows}
    for key, result in ours.items():
        assert exported[key] == pytest.approx(result.score), key  # written answers: not graded yet


def test_validate_names_the_failing_check(course):
    carl = course["dir"] / "submitted" / "carl" / "02_dropout" / "02_dropout.ipynb"
    done = nbgrader(["validate", str(carl)], course["dir"], course["env"])
    assert "VALIDATION FAILED" in done.stdout, done.stdout + done.stderr
    assert "dropout_train_forward" in done.stdout
    assert "dropout.keep_prob_confusion" in done.stdout
    assert "You did not provide a response." in done.stdout  # written answers: nbgrader's own
    ada = course["dir"] / "submitted" / "ada" / "02_dropout" / "02_dropout.ipynb"
    done = nbgrader(["validate", str(ada)], course["dir"], course["env"])
    assert "check(" not in done.stdout.split("VALIDATION FAILED", 1)[-1], done.stdout
    untouched = ROOT / "notebooks" / "02_dropout" / "02_dropout.ipynb"
    done = nbgrader(["validate", "--invert", str(untouched)], course["dir"], course["env"])
    assert "Success! The notebook does not pass any tests." in done.stdout, done.stdout
