"""Gradescope ``results.json`` for one graded notebook (the kit's JSON contract)."""

from __future__ import annotations

from grader.grading import SubmissionResult
from grader.report.feedback import check_text


def results_json(result: SubmissionResult, *, submitted_at: str = "") -> dict:
    """A valid Gradescope results.json object, with the kit's ``extra_data``.

    Hidden checks are ``"after_published"``; their messages describe cases and measured errors
    but never show test code, hidden inputs or reference source. ``submitted_at`` (ISO 8601,
    from nbgrader's timestamp.txt or the file's time) is added to ``extra_data`` when known.
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
    extra = {
        "submission": result.sha256,
        "student": result.student,
        "assignment": result.assignment,
        "notebook": str(result.path),
        "isolation": result.isolation,
        "kit_version": result.kit_version,
    }
    if submitted_at:
        extra["timestamp"] = submitted_at
    return {
        "score": result.score,
        "max_score": result.max_score,
        "execution_time": round(result.seconds, 3),
        "output": "\n".join(output),
        "visibility": "visible",
        "tests": tests,
        "extra_data": extra,
    }


def combined_results(results: list[SubmissionResult], missing_message: str = "") -> dict:
    """One results.json for a Gradescope submission that holds any number of notebooks.

    One notebook: exactly :func:`results_json`. Several: their tests one after another, each
    name prefixed with the notebook's file name, scores added. None: score 0 and a message.
    """
    if len(results) == 1:
        return results_json(results[0])
    if not results:
        return {
            "score": 0.0,
            "max_score": 0.0,
            "execution_time": 0.0,
            "output": missing_message or "No notebook (.ipynb file) was found in your submission.",
            "visibility": "visible",
            "tests": [],
            "extra_data": {"notebooks": []},
        }
    parts = [results_json(r) for r in results]
    tests = []
    for result, part in zip(results, parts, strict=True):
        for test in part["tests"]:
            tests.append({**test, "name": f"{result.path.name} / {test['name']}"})
    output = [
        f"{r.path.name}: {p['output']}" for r, p in zip(results, parts, strict=True) if p["output"]
    ]
    return {
        "score": round(sum(p["score"] for p in parts), 4),
        "max_score": sum(p["max_score"] for p in parts),
        "execution_time": round(sum(p["execution_time"] for p in parts), 3),
        "output": "\n".join(output),
        "visibility": "visible",
        "tests": tests,
        "extra_data": {"notebooks": [p["extra_data"] for p in parts]},
    }


def with_late_penalty(data: dict, late) -> dict:
    """``data`` (a results.json) with the late policy applied: ``late`` is a late_policy.Late.

    Gradescope uses the top-level ``score`` when it is given, so that becomes the score after the
    penalty; the tests keep their raw scores, the output says why the two differ, and
    ``extra_data.late`` carries the numbers.
    """
    if late is None:
        return data
    data = {**data, "extra_data": {**data.get("extra_data", {})}}
    data["extra_data"]["late"] = {
        "due": late.due.isoformat(),
        "extension_seconds": late.extension.total_seconds(),
        "seconds_late": late.seconds_late,
        "raw_score": late.raw_score,
        "penalty": late.penalty,
        "score": late.score,
    }
    if late.seconds_late > 0:
        data["score"] = late.score
        data["output"] = "\n".join(
            part for part in (late.sentence(), data.get("output", "")) if part
        )
    return data
