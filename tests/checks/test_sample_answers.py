"""Every sample answer (written as a student would write it) is graded as its author intended.

A file declares ``expect: full marks`` or ``expect: <misconception id>`` and the checks it
``fails:``. Graded end to end through the real child-process runner, public and hidden checks:
correct answers get every point; each mistake loses points exactly in the declared checks and is
named. Every misconception in the catalogue has at least one such answer.
"""

from __future__ import annotations

import pytest
from kit_testing import answer_files, diagnoses, failed_checks, read_answer, write_submission

from grader.checks import MISCONCEPTIONS
from grader.grading import Target, grade_notebook


@pytest.mark.parametrize("path", answer_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sample_answer_is_graded_as_intended(path, tmp_path, reference):
    functions, declared = read_answer(path)
    notebook = write_submission(tmp_path, path.parent.name, functions)
    result = grade_notebook(Target(notebook), reference=reference)
    assert not result.error, result.error
    failed = failed_checks(result)
    found = diagnoses(result)
    if declared["expect"] == "full marks":
        assert failed == [], {
            c.check.id: [x.message for x in c.cases if not x.passed]
            for c in result.checks
            if not c.passed
        }
        assert result.score == result.max_score
    else:
        assert declared["expect"] in MISCONCEPTIONS, (
            f"unknown misconception id {declared['expect']}"
        )
        assert declared["expect"] in found, f"not named; found {found}"
        assert failed == sorted(declared["fails"])
        assert result.score < result.max_score
        for check in result.checks:
            if check.diagnosis:  # a named mistake always comes with its hint in the feedback
                assert all(d in MISCONCEPTIONS for d in check.diagnosis)


def test_every_misconception_has_a_student_written_bug():
    intended = {read_answer(p)[1]["expect"] for p in answer_files()}
    missing = sorted(set(MISCONCEPTIONS) - intended)
    assert not missing, f"no sample answer exhibits {missing}"
