"""Gradescope ``results.json`` for one graded notebook (the kit's JSON contract)."""

from __future__ import annotations

from grader.grading import SubmissionResult
from grader.report.feedback import check_text


def results_json(result: SubmissionResult) -> dict:
    """A valid Gradescope results.json object, with the kit's ``extra_data``.

    Hidden checks are ``"after_published"``; their messages describe cases and measured errors
    but never show test code, hidden inputs or reference source.
    """
    tests = []
    for check_result in result.checks:
        check = check_result.check
        tests.append(
            {
                "name": f"{check.id}: {check.title}",
                "score": check_result.score,
                "max_score": float(check.points),
                "status": "passed" if check_result.passed else "failed",
                "output": check_text(check_result),
                "visibility": "after_published" if check.hidden else "visible",
                "extra_data": {"check": check.id, "diagnosis": check_result.diagnosis},
            }
        )
    output = [result.error] if result.error else []
    output += result.notes
    return {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": round(result.seconds, 3),
        "output": "\n".join(output),
        "visibility": "visible",
        "tests": tests,
        "extra_data": {
            "submission": result.sha256,
            "student": result.student,
            "assignment": result.assignment,
            "notebook": str(result.path),
            "isolation": result.isolation,
            "kit_version": result.kit_version,
        },
    }
