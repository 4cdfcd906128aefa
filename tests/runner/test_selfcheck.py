"""The portable self-check runner (grader/runner/selfcheck.py): one plain child, every OS.

Real Windows and macOS are not available here, so the POSIX-only modules are made unimportable
in a fresh interpreter (a meta-path hook blocking ``resource``, ``fcntl``, ``termios``, ``pty``,
with ``os.fork``/``os.killpg`` removed) and ``python -m grader check`` must still work there.
Its judging must agree with the batch grader's on the same public cases.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from kit_testing import ROOT, answer_files, read_answer, write_submission

from grader.checks import checks_for
from grader.results import NOT_RUN
from grader.runner import selfcheck
from grader.runner.selfcheck import Budget, self_check

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
ADA = SAMPLE / "ada" / "02_dropout" / "02_dropout.ipynb"
CARL = SAMPLE / "carl" / "02_dropout" / "02_dropout.ipynb"

# what a Windows Python lacks, simulated in a fresh interpreter before anything of ours is imported
NO_POSIX = textwrap.dedent(
    """
    import importlib.abc, os, sys
    BLOCKED = {"resource", "fcntl", "termios", "pty", "grp", "pwd"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: not on Windows)")
            return None
    sys.meta_path.insert(0, Block())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    for name in ("fork", "forkpty", "killpg", "setsid", "getpgid"):
        if hasattr(os, name):
            delattr(os, name)
    """
)

# loaded by the batch grader, never by a self-check
BATCH_ONLY = [
    "grader.grading",
    "grader.runner.process",
    "grader.runner.sandbox",
    "grader.runner.forkserver",
    "grader.store",
    "matplotlib",
    "tqdm",
    "nbgrader",
]


def run_without_posix(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_POSIX + textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_works_without_the_posix_only_modules():
    code = """
        import json, sys
        from grader.__main__ import main
        codes = [main(["check", sys.argv[1]]), main(["check", sys.argv[2]])]
        loaded = [m for m in sys.argv[3:] if m in sys.modules]
        print(json.dumps({"codes": codes, "loaded": loaded}))
    """
    done = run_without_posix(code, str(ADA), str(CARL), *BATCH_ONLY)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 1]
    assert report["loaded"] == []
    assert "dropout.keep_prob_confusion" in done.stdout


def test_the_notebook_runner_imports_without_the_posix_only_modules(tmp_path):
    code = """
        import json, sys
        import numpy as np
        from grader.notebook import run_check
        namespace = {"np": np}
        exec(open(sys.argv[1]).read(), namespace)
        result = run_check("norms_l2_norm", namespace)
        print(json.dumps({"passed": result.passed, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
    """
    answer = next(p for p in answer_files() if p.parent.name == "01_norms" and "correct" in p.name)
    source = "\n\n".join(read_answer(answer)[0].values())
    script = tmp_path / "answer.py"
    script.write_text(source, encoding="utf-8")
    done = run_without_posix(code, str(script), *BATCH_ONLY)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"passed": True, "loaded": []}


def test_the_batch_grader_says_it_needs_linux_where_the_posix_modules_are_missing():
    code = """
        import sys
        from grader.__main__ import _batch_unavailable
        print(_batch_unavailable("grade", platform="win32"))
    """
    done = run_without_posix(code)
    assert done.returncode == 0, done.stderr
    assert "Linux only" in done.stdout and "python -m grader check" in done.stdout
    assert "WSL 2" in done.stdout


@pytest.mark.parametrize(
    "answer",
    [p for p in answer_files() if p.parent.name in ("01_norms", "02_dropout")][::3],
    ids=lambda p: p.stem,
)
def test_self_check_scores_agree_with_the_batch_grader(answer, tmp_path, monkeypatch):
    """The same public cases judged the same way: per-check scores are identical."""
    from grader.grading import Target, grade_notebook

    monkeypatch.setenv("DNN_KIT_SANDBOX", "off")  # the batch side needs no sandbox for this
    monkeypatch.delenv("CI", raising=False)
    path = write_submission(tmp_path, answer.parent.name, read_answer(answer)[0])
    ours = self_check(path)
    batch = grade_notebook(Target(path), include_hidden=False)
    assert ours.isolation == selfcheck.ISOLATION
    assert [(c.check.id, c.score) for c in ours.checks] == [
        (c.check.id, c.score) for c in batch.checks
    ]
    assert [c.diagnosis for c in ours.checks] == [c.diagnosis for c in batch.checks]


def test_a_hanging_case_times_out_and_a_new_child_runs_the_rest(tmp_path):
    functions = {
        "l1_norm": "def l1_norm(W):\n    while True:\n        pass\n",
        "l2_norm": "def l2_norm(W):\n    return float(np.sqrt(np.sum(W * W)))\n",
    }
    path = write_submission(tmp_path, "01_norms", functions)
    result = self_check(path, Budget(case=1.0, total=30.0))
    by_id = {c.check.id: c for c in result.checks}
    l1 = [c for c in result.checks if c.check.functions == ("l1_norm",)]
    assert l1 and all("timed out after 1 s" in case.message for c in l1 for case in c.cases)
    assert by_id["norms_l2_norm"].passed
    public = {c.id for c in checks_for("01_norms", include_hidden=False)}
    assert set(by_id) == public


def test_a_case_that_kills_the_process_is_reported_and_the_rest_still_run(tmp_path):
    functions = {
        "l1_norm": "def l1_norm(W):\n    import os\n    os._exit(3)\n",
        "l2_norm": "def l2_norm(W):\n    return float(np.sqrt(np.sum(W * W)))\n",
    }
    path = write_submission(tmp_path, "01_norms", functions)
    result = self_check(path, Budget(total=30.0))
    by_id = {c.check.id: c for c in result.checks}
    assert "exited with code 3" in by_id["norms_l1_norm"].cases[0].message
    assert by_id["norms_l2_norm"].passed


def test_cells_that_never_finish_fail_every_check_with_the_reason(tmp_path):
    functions = {"l1_norm": "while True:\n    pass\n"}
    path = write_submission(tmp_path, "01_norms", functions)
    result = self_check(path, Budget(cells=1.0))
    assert result.checks and not any(c.passed for c in result.checks)
    assert all("did not finish within 1 s" in c.cases[0].message for c in result.checks)


def test_an_unreadable_notebook_gets_a_result_that_says_why(tmp_path):
    path = tmp_path / "02_dropout.ipynb"
    path.write_text("{ this is not json", encoding="utf-8")
    result = self_check(path)
    assert result.error and result.checks and not any(c.passed for c in result.checks)


def test_check_on_a_folder_says_what_it_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is a folder" in done.stderr and "no such notebook" not in done.stderr
    assert ".ipynb" in done.stderr


def test_results_module_and_batch_runner_agree_on_the_not_run_marker():
    from grader.runner.process import ISOLATION

    assert NOT_RUN == ISOLATION
