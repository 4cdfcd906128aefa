"""Notebooks that are broken, stripped, renamed or rearranged still get a result with a reason.

Each test asserts the exact score, which checks failed (the status) and the reason.
"""

from __future__ import annotations

import json

import nbformat
from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    ALL_CHECKS,
    CORRECT_BACKWARD,
    CORRECT_FORWARD,
    FULL,
    failed,
    filled,
    grade,
    real_sandbox,
    reasons,
    submission,
    write,
)


def test_corrupt_json_cut_short(tmp_path, reference):
    path = submission(tmp_path)
    text = path.read_text()
    write(path, text[: len(text) // 3])
    result = grade(path, reference)
    assert result.score == 0 and result.max_score == FULL
    assert failed(result) == ALL_CHECKS
    assert result.error.startswith("02_dropout.ipynb is not a valid notebook (JSON error at line")
    assert result.error.endswith("was it edited outside Jupyter or cut short?")
    assert not result.grader_failure
    assert result.isolation == "none (nothing was run)"


def test_empty_file(tmp_path, reference):
    path = write(tmp_path / "submitted" / "s" / "02_dropout" / "02_dropout.ipynb", b"")
    result = grade(path, reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    assert result.error == "02_dropout.ipynb is empty"


def test_json_that_is_not_a_notebook(tmp_path, reference):
    path = write(tmp_path / "submitted" / "s" / "02_dropout" / "02_dropout.ipynb", [1, 2, 3])
    result = grade(path, reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    assert result.error == "02_dropout.ipynb is JSON but not a Jupyter notebook (no list of cells)"


def test_huge_notebook_is_refused_without_reading_it_all(tmp_path, reference):
    notebook = filled()
    notebook.cells[0].source = "x" * (21 * 2**20)  # 21 MiB of markdown
    path = write(tmp_path / "submitted" / "s" / "02_dropout" / "02_dropout.ipynb", notebook)
    result = grade(path, reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    assert result.error == (
        "02_dropout.ipynb is 21 MiB; the limit is 20 MiB (clear large outputs before submitting)"
    )
    assert len(result.sha256) == 64  # still identified, for the results store


def test_all_metadata_removed_and_file_renamed_is_graded_from_its_functions(tmp_path, reference):
    """No nbgrader metadata, no kit metadata, an unknown file name: the functions are found and
    graded; a demo call in the same cell is not run (only definitions are)."""
    notebook = filled(CORRECT_FORWARD + "\nout, _ = dropout_forward(np.ones((2, 2)), 0.5)\n")
    notebook.metadata = {}
    for cell in notebook.cells:
        cell.metadata = {}
    path = write(tmp_path / "my homework (final).ipynb", notebook)
    result = grade(path, reference)
    assert (result.score, failed(result), result.error) == (FULL, [], "")
    assert "assignment 02_dropout recognised by its functions" in result.notes
    assert any(n.startswith("cells without grading metadata (") for n in result.notes)
    assert result.isolation.startswith("bwrap+")


def test_nbgrader_metadata_removed_but_kit_roles_kept(tmp_path, reference):
    notebook = filled()
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
    path = write(tmp_path / "submitted" / "s" / "02_dropout" / "02_dropout.ipynb", notebook)
    result = grade(path, reference)
    assert (result.score, failed(result), result.error) == (FULL, [], "")


def test_test_cells_deleted_and_cells_reordered(tmp_path, reference):
    notebook = filled()
    answers = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
    notebook.cells = list(reversed(answers))  # only the two answer cells, backward first
    path = write(tmp_path / "submitted" / "s" / "02_dropout" / "02_dropout.ipynb", notebook)
    result = grade(path, reference)
    assert (result.score, failed(result), result.error) == (FULL, [], "")


def test_renamed_function_is_missing_and_said_so(tmp_path, reference):
    renamed = CORRECT_BACKWARD.replace("def dropout_backward(", "def dropout_bwd(")
    result = grade(submission(tmp_path, backward=renamed), reference)
    # dropout_backward: 2 of 2 cases fail; hidden backward: 1 of its 3 cases (2 are fresh masks)
    assert result.score == round(FULL - 2 - 1 / 3, 4)
    assert failed(result) == ["dropout_backward", "dropout_hidden_backward"]
    assert reasons(result) == {
        "`dropout_backward` is not defined in the notebook (did you run its cell?)"
    }
    assert "no definition of dropout_backward found in the cells that are graded" in result.notes


def test_unknown_notebook(tmp_path, reference):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("def train():\n    pass")]
    path = write(tmp_path / "essay.ipynb", notebook)
    result = grade(path, reference)
    assert (result.score, result.max_score, failed(result)) == (0, 0, [])
    assert result.error.startswith("cannot tell which assignment essay.ipynb is")


def test_null_bytes_deep_nesting_and_junk_cells_do_not_stop_grading(tmp_path, reference):
    notebook = filled()
    junk = [
        {"cell_type": "code", "metadata": {}, "source": "x = 1\x00\n", "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": "y = " + "(" * 5000 + ")" * 5000},
        {"cell_type": "code", "metadata": {"nbgrader": []}, "source": 12345},
        {"cell_type": "code", "metadata": "not a dict", "source": ["import os\n", None]},
        "not a cell",
    ]
    raw = json.loads(nbformat.writes(notebook))
    raw["cells"] = junk + raw["cells"]
    path = write(tmp_path / "submitted" / "s" / "02_dropout" / "02_dropout.ipynb", raw)
    result = grade(path, reference)
    assert (result.score, failed(result), result.error) == (FULL, [], "")
    try:  # SyntaxError from Python 3.11.4 on, ValueError before: ask the interpreter in use
        compile("\0", "<cell 0>", "exec")
    except (SyntaxError, ValueError) as exc:
        raised = f"{type(exc).__name__}: {exc}"
    assert f"cell 0 raised {raised}" in result.notes
    assert any(
        n.startswith("cell 1 raised SyntaxError: too many nested parentheses") for n in result.notes
    )
