"""Correct answers written differently from the reference get full marks, inside the sandbox.

Other ways to sample the mask, float32 arithmetic inside, ``np.std`` instead of the square root
of the variance, extra imports the grader does not provide: full marks, nothing failed, and no
failure message. Every sample answer of the class that declares ``expect: full marks`` is
graded here too, for every notebook that has been released.
"""

from __future__ import annotations

import pytest
from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    FULL,
    ROOT,
    answer_cell,
    failed,
    grade,
    real_sandbox,
    reasons,
    submission,
    write,
)
from kit_testing import full_marks_answers, student_notebook
from make_sample_class import answer_functions, fill

from grader.checks import NOTEBOOKS

VARIANTS = {
    "strict greater-than": """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode != "train":
        return x, None
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape) > p_drop
    return np.where(keep, x / (1.0 - p_drop), 0.0), keep / (1.0 - p_drop)
""",
    "binomial": """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    if rng is None:
        rng = np.random.default_rng()
    mask = rng.binomial(n=1, p=1 - p_drop, size=x.shape)
    return x * mask / (1 - p_drop), mask / (1 - p_drop)
""",
    "uniform below the keep probability": """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return np.array(x), None
    rng = rng or np.random.default_rng()
    scale = np.where(rng.uniform(0.0, 1.0, size=x.shape) < 1.0 - p_drop, 1.0 / (1.0 - p_drop), 0.0)
    return x * scale, scale
""",
    "choice of 0 and 1": """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x + 0.0, None
    rng = np.random.default_rng() if rng is None else rng
    mask = rng.choice([0.0, 1.0], size=x.shape, p=[p_drop, 1.0 - p_drop])
    out = np.zeros_like(x)
    out[mask == 1] = x[mask == 1] / (1 - p_drop)
    return out, mask / (1 - p_drop)
""",
    "float32 inside": """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    mask = (rng.random(x.shape, dtype=np.float32) >= np.float32(p_drop)).astype(np.float32)
    scale = mask / np.float32(1 - p_drop)
    return x.astype(np.float32) * scale, scale
""",
    "imports the grader does not provide": """
import matplotlib.pyplot as plt
from tqdm import tqdm


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    scale = (rng.random(x.shape) >= p_drop) / (1 - p_drop)
    return x * scale, scale
""",
}

BACKWARD = """
def dropout_backward(dout, cache):
    if cache is None:
        return dout
    return dout * cache
"""


@pytest.mark.parametrize("variant", VARIANTS)
def test_other_ways_to_write_dropout(variant, tmp_path, reference):
    result = grade(submission(tmp_path, VARIANTS[variant], BACKWARD), reference)
    assert (result.score, failed(result), reasons(result)) == (FULL, [], set())
    if variant == "imports the grader does not provide":
        cell = answer_cell("dropout_forward")
        assert result.notes == [
            f"cell {cell} raised ModuleNotFoundError: No module named 'matplotlib'",
            f"cell {cell} raised ModuleNotFoundError: No module named 'tqdm'",
        ]


def _full_marks_answers():
    for path in full_marks_answers():
        assignment = path.parent.name
        released = ROOT / "notebooks" / assignment / f"{assignment}.ipynb"
        if assignment in NOTEBOOKS and released.exists():
            yield pytest.param(path, id=f"{assignment}/{path.stem}")


@pytest.mark.parametrize("path", list(_full_marks_answers()))
def test_every_correct_sample_answer_gets_full_marks_in_the_sandbox(path, tmp_path, reference):

    assignment = path.parent.name
    notebook = fill(student_notebook(assignment), answer_functions(path))
    target = write(
        tmp_path / "submitted" / path.stem / assignment / f"{assignment}.ipynb", notebook
    )
    result = grade(target, reference)
    assert result.max_score > 0
    assert (result.score, failed(result), reasons(result)) == (result.max_score, [], set())
    assert result.isolation.startswith("bwrap+")


def test_std_instead_of_the_square_root_of_the_variance(tmp_path, reference):
    """Batch normalisation with ``x.std(axis=0)``: the same numbers, full marks."""
    if not (ROOT / "notebooks" / "03_batchnorm" / "03_batchnorm.ipynb").exists():
        pytest.skip("03_batchnorm is not released yet")
    answer = ROOT / "data" / "sample_class" / "answers" / "03_batchnorm" / "dmitri_correct_std.py"
    functions = answer_functions(answer)
    assert ".std(" in functions["batchnorm_forward"] or "np.std(" in functions["batchnorm_forward"]
    import nbformat

    released = nbformat.read(ROOT / "notebooks" / "03_batchnorm" / "03_batchnorm.ipynb", 4)
    target = write(tmp_path / "03_batchnorm.ipynb", fill(released, functions))
    result = grade(target, reference)
    assert (result.score, failed(result), reasons(result)) == (result.max_score, [], set())
