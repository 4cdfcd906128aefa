"""An untouched student notebook, Run All: every given cell ends kindly and nothing cascades.

The stubs raise, so the experiment cells must skip with one line naming the function to write;
no setup or experiment cell may show an error output (a traceback). The check cells, and the
final ``check_all`` cell, belong to the check runner and are tested with it.
"""

from __future__ import annotations

import time

import pytest
from kit_testing import full_marks_answers, read_answer, run_all, student_notebook
from make_sample_class import fill  # noqa: I001 - scripts/ is put on sys.path by kit_testing

from grader.checks import NOTEBOOKS

pytestmark = pytest.mark.slow


def given_cells(notebook):
    """Setup and experiment cells, without the final ``check_all`` (the check runner's)."""
    return [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and cell.metadata.get("dnn_kit", {}).get("role") in ("setup", "experiment")
        and "check_all(" not in cell.source
    ]


@pytest.mark.parametrize("assignment", list(NOTEBOOKS))
def test_untouched_notebook_runs_all_kindly(assignment, tmp_path):
    notebook = student_notebook(assignment)
    start = time.perf_counter()
    run_all(notebook, tmp_path, allow_errors=True)
    seconds = time.perf_counter() - start
    print(f"{assignment}: untouched notebook, Run All in {seconds:.1f} s")
    assert notebook.cells[-1].get("execution_count"), "Run All reached the last cell"

    stubs = [c for c in notebook.cells if "raise NotImplementedError(" in c.source]
    assert stubs, "the student notebook has stubs"
    for cell in stubs:  # every stub names its function
        assert "is not written yet" in cell.source, cell.source[-300:]

    skipped = 0
    for index, cell in given_cells(notebook):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (index, cell.source[:200], [f"{e.ename}: {e.evalue}" for e in errors])
        stderr = [o.text for o in cell.outputs if o.get("name") == "stderr"]
        assert not stderr, (index, stderr)
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        if "(Skipped for now.)" in text:
            skipped += 1
            # one kind line, naming a function and where it is written; no plots, no tables
            assert text.count("\n") == 1, (index, text)
            assert "Finish `" in text and "section" in text, (index, text)
            assert all(o.output_type == "stream" for o in cell.outputs), index
    assert skipped >= 3, f"only {skipped} experiment cells waited for the student's code"


CRASHING_DROPOUT = """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), (None, 1.0, mode)
    raise RuntimeError("a bug in the student's forward pass")
"""


def test_one_crashing_function_still_lets_run_all_reach_the_end(tmp_path):
    """A student whose `dropout_forward` crashes in train mode: every experiment cell that needs it
    says so in one line (the exception and where), and Run All goes on to the last cell."""
    correct = full_marks_answers("02_dropout")[0]
    functions = dict(read_answer(correct)[0], dropout_forward=CRASHING_DROPOUT.strip())
    notebook = fill(student_notebook("02_dropout"), functions)
    run_all(notebook, tmp_path, allow_errors=True)
    assert notebook.cells[-1].get("execution_count"), "Run All reached the last cell"
    stopped = 0
    for index, cell in given_cells(notebook):
        assert not [o for o in cell.outputs if o.output_type == "error"], (index, cell.source[:200])
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        if "This cell stopped: RuntimeError in `dropout_forward`" in text:
            stopped += 1
            assert text.count("\n") == 1, text
    assert stopped >= 3
