"""`needs(...)`: an experiment block skips (one line, no exception) until the student's code exists."""

from __future__ import annotations

import sys
import textwrap

import pytest

from grader.toolkit.needs import is_stub, needs

STUB = '''
def dropout_forward(x, p_drop, mode="train", rng=None):
    """Docstring."""
    # YOUR CODE HERE
    raise NotImplementedError("`dropout_forward` is not written yet: replace this line")
'''
WRITTEN = '''
def dropout_forward(x, p_drop, mode="train", rng=None):
    """Docstring."""
    return x, None
'''


def run(cell: str, setup: str = "") -> tuple[dict, str]:
    """Execute ``setup`` then ``cell`` as a notebook would (module-level code), capture stdout."""
    namespace = {"needs": needs, "__name__": "__main__"}
    exec(compile(textwrap.dedent(setup), "<setup>", "exec"), namespace)
    exec(compile(textwrap.dedent(cell), "<cell>", "exec"), namespace)
    return namespace


def test_stub_skips_the_body_without_running_it(capsys, tmp_path):
    cell = """
    with needs(dropout_forward="section 2"):
        ran = True
        out = dropout_forward(1, 0.5)
    """
    namespace = run(cell, STUB)
    assert "ran" not in namespace  # the body did not even start
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.strip().splitlines() == [
        "⏭  Finish `dropout_forward` (section 2) first; then run this cell again. (Skipped for now.)"
    ]


def test_written_function_runs_the_body(capsys):
    namespace = run(
        "with needs(dropout_forward='s2'):\n    out = dropout_forward(3, 0.5)\n", WRITTEN
    )
    assert namespace["out"] == (3, None)
    assert capsys.readouterr().out == ""


def test_undefined_function_says_run_its_cell(capsys):
    run("with needs(mlp_loss='section 3'):\n    mlp_loss()\n")
    assert "Finish `mlp_loss` (section 3) first" in capsys.readouterr().out


def test_half_written_function_raising_not_implemented_is_caught(capsys):
    half = "def f(x):\n    y = x + 1\n    raise NotImplementedError()\n"
    namespace = run("with needs(f='section 4'):\n    before = 1\n    f(1)\n    after = 1\n", half)
    assert namespace["before"] == 1 and "after" not in namespace
    assert "Finish `f` (section 4) first" in capsys.readouterr().out


def test_a_variable_from_a_skipped_cell_does_not_cascade(capsys):
    run("with needs(f='s'):\n    print(final[0.2, 0])\n", WRITTEN.replace("dropout_forward", "f"))
    out = capsys.readouterr().out
    assert "uses `final`, which an earlier experiment cell makes" in out


def test_a_bug_in_the_students_function_is_one_line_and_run_all_goes_on(capsys, tmp_path):
    buggy = "def f(x):\n    y = x + 1\n    return undefined_inside_f\n"
    path = tmp_path / "cell.py"  # a real file, so the line number is known
    path.write_text(buggy)
    namespace = {"needs": needs, "__name__": "__main__"}
    exec(compile(buggy, str(path), "exec"), namespace)
    exec(compile("with needs(f='s'):\n    f(1)\n    after = 1\n", "<cell>", "exec"), namespace)
    assert "after" not in namespace
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "NameError in `f` (line 3 of its cell)" in out[0] and "undefined_inside_f" in out[0]


def test_keyboard_interrupt_propagates():
    with pytest.raises(KeyboardInterrupt):
        run("with needs(f='s'):\n    raise KeyboardInterrupt\n", "def f():\n    return 1\n")


def test_tracing_is_restored_after_a_skip():
    before = sys.gettrace()
    run("with needs(dropout_forward='s'):\n    x = 1\n", STUB)
    assert sys.gettrace() is before


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (STUB, True),
        ("def f():\n    raise NotImplementedError\n", True),
        ("def f():\n    '''doc'''\n    raise NotImplementedError()\n", True),
        (WRITTEN, False),
        ("def f():\n    raise ValueError('no')\n", False),
        ("def f():\n    x = 1\n    raise NotImplementedError()\n", False),
    ],
)
def test_is_stub(source, expected, tmp_path):
    path = tmp_path / "module.py"
    path.write_text(source)
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)
    function = next(v for k, v in namespace.items() if callable(v) and not k.startswith("__"))
    assert is_stub(function) is expected


def test_toolkit_usage_errors_render_as_one_line_and_stay_value_errors():
    from grader.toolkit import load_digits, train_mlp
    from grader.toolkit.errors import ToolkitUsageError

    def narrowing_dropout(h, p, mode="train", rng=None):
        return h[:, :3], None

    with pytest.raises(ValueError) as info:  # still a ValueError for callers that catch those
        train_mlp(
            load_digits(n_train=20, n_val=5),
            [8],
            epochs=1,
            dropout=(narrowing_dropout, narrowing_dropout, 0.2),
            progress=False,
        )
    assert isinstance(info.value, ToolkitUsageError)
    assert "dropout_forward returned an output of shape (20, 3)" in str(info.value)
    assert info.value._render_traceback_() == [f"ToolkitUsageError: {info.value}"]
