"""Building hostile submissions and summarising how they were graded.

A submission is the released 02_dropout notebook with the student's text typed into its two
answer cells (like ``scripts/make_sample_class.py`` does), or any notebook JSON we write by hand.
Every grade checks that the submission's bytes and modification time did not change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from kit_testing import failed_checks, student_notebook

from grader.checks import checks_for
from grader.grading import SubmissionResult, Target, discover, grade_notebook
from grader.runner import sandbox
from grader.runner.process import Limits

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "02_dropout"
ALL_CHECKS = sorted(c.id for c in checks_for(ASSIGNMENT))
FULL = float(sum(c.points for c in checks_for(ASSIGNMENT)))  # the points of 02_dropout

# short limits keep the suite fast; the loops below still hit them
FAST = Limits(cells_seconds=3.0, case_seconds=2.0, total_seconds=30.0)

CORRECT_FORWARD = """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), (None, mode)
    rng = np.random.default_rng() if rng is None else rng
    mask = (rng.random(x.shape) >= p_drop) / (1 - p_drop)
    return x * mask, (mask, mode)
"""

CORRECT_BACKWARD = """
def dropout_backward(dout, cache):
    mask, mode = cache
    return dout * mask if mode == "train" else dout
"""

# the classic mistake (no 1/(1-p) scaling): what a cheat that fails is worth
UNSCALED_FORWARD = """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), (None, mode)
    rng = np.random.default_rng() if rng is None else rng
    mask = rng.random(x.shape) >= p_drop
    return x * mask, (mask, mode)
"""
UNSCALED_SCORE = 6.0
UNSCALED_FAILED = ["dropout_hidden_forward", "dropout_train_forward"]


@pytest.fixture(scope="session", autouse=True)
def real_sandbox():
    """The hostile suite runs against the real bubblewrap sandbox, always required: without a
    working one it fails under ``CI=true`` and is skipped elsewhere with the loud reason (how to
    install it), never silently; ``DNN_KIT_SANDBOX=off`` does not turn it into a fallback run.

    Test modules import this fixture (no conftest.py here: it would shadow tests/conftest.py)."""
    import os

    saved = os.environ.pop("DNN_KIT_SANDBOX", None)
    try:
        isolation = sandbox.require()
    except sandbox.SandboxUnavailable as exc:
        if sandbox.in_ci():
            pytest.fail(f"CI=true: the security suite needs the sandbox. {exc}")
        pytest.skip(f"SECURITY SUITE NOT RUN: {exc}")
    finally:
        if saved is not None:
            os.environ["DNN_KIT_SANDBOX"] = saved
    if isolation == sandbox.FALLBACK:
        pytest.fail("the sandbox policy allowed the rlimits-only fallback in the security suite")
    return isolation


def released(assignment: str = ASSIGNMENT) -> nbformat.NotebookNode:
    return student_notebook(assignment)


def answer_cell(function: str, assignment: str = ASSIGNMENT) -> int:
    """The index of the answer cell that defines ``function`` in the released notebook."""
    for index, cell in enumerate(released(assignment).cells):
        if cell.cell_type == "code" and f"def {function}(" in cell.source:
            return index
    raise LookupError(function)


FORWARD_CELL = answer_cell("dropout_forward")
BACKWARD_CELL = answer_cell("dropout_backward")


def write(path: Path, notebook) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, bytes | str):
        data = notebook.encode() if isinstance(notebook, str) else notebook
        path.write_bytes(data)
    elif isinstance(notebook, nbformat.NotebookNode):
        nbformat.write(notebook, str(path))
    else:
        path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def filled(forward: str = CORRECT_FORWARD, backward: str = CORRECT_BACKWARD, assignment=ASSIGNMENT):
    """The released notebook with ``forward`` and ``backward`` typed into the answer cells."""
    notebook = released(assignment)
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        if "def dropout_forward(" in cell.source:
            cell.source = forward.strip("\n")
        elif "def dropout_backward(" in cell.source:
            cell.source = backward.strip("\n")
    return notebook


def submission(
    tmp_path: Path,
    forward: str = CORRECT_FORWARD,
    backward: str = CORRECT_BACKWARD,
    *,
    student: str = "student",
    assignment: str = ASSIGNMENT,
) -> Path:
    path = tmp_path / "submitted" / student / assignment / f"{assignment}.ipynb"
    return write(path, filled(forward, backward, assignment))


def grade(path: Path, reference, limits: Limits = FAST, **options) -> SubmissionResult:
    """Grade one notebook; the submission must come out byte-for-byte and mtime unchanged."""
    before = (path.read_bytes(), os.stat(path).st_mtime_ns) if path.exists() else None
    result = grade_notebook(Target(path), reference=reference, limits=limits, **options)
    after = (path.read_bytes(), os.stat(path).st_mtime_ns) if path.exists() else None
    assert before == after, "the grader modified the submission"
    return result


failed = failed_checks  # the status of a result: which checks did not pass (sorted)


def reasons(result: SubmissionResult, check_id: str | None = None) -> set[str]:
    """The messages of the failed cases (of one check, or of all)."""
    return {
        case.message
        for check in result.checks
        if check_id is None or check.check.id == check_id
        for case in check.cases
        if not case.passed
    }


def notes(result: SubmissionResult) -> list[str]:
    return list(result.notes)


NAME_ME = (
    "import ctypes as _ctypes\n"
    "_ctypes.CDLL(None).prctl(15, {name!r}.encode(), 0, 0, 0)  # PR_SET_NAME\n"
)


def processes_named(name: str) -> list[int]:
    """Processes on this machine whose name (``/proc/PID/comm``) is ``name``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in command:
            found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------- time budgets
# a notebook that idles: cells just under their limit, then every case just under its own
IDLE = "import time\ntime.sleep(1.2)\n" + CORRECT_FORWARD.replace(
    "    if mode", "    time.sleep(0.9)\n    if mode", 1
)
IDLE_LIMITS = Limits(cells_seconds=1.5, case_seconds=1.0, total_seconds=3.0)
SLACK = 3.0  # loading, judging and starting a child are outside a run's own clock


def idle_class(tmp_path, idle_notebooks: int) -> list[Target]:
    """alice and bob hand in one correct notebook; mallory hands in ``idle_notebooks`` idle
    ones (different bytes, so none is graded once for all)."""
    for student in ("alice", "bob"):
        submission(tmp_path, CORRECT_FORWARD + f"# {student}\n", student=student)
    targets = discover([tmp_path / "submitted"])
    # The layout grades one notebook per student and assignment (tests/hostile/test_identity.py),
    # so the time budget is tested on what that leaves: many targets of one student, as many
    # assignments (or a course's own layout) would give; the budget must hold whatever they are.
    for i in range(idle_notebooks):
        path = submission(tmp_path / f"idle{i}", IDLE + f"# copy {i}\n", student="mallory")
        targets.append(Target(path, student="mallory", assignment="02_dropout"))
    return targets
