"""Gradescope ``results.json`` for one graded notebook (the kit's JSON contract), and which
notebook of an upload is graded: exactly one, never a sum."""

from __future__ import annotations

from pathlib import Path

from grader.grading import SubmissionResult
from grader.layout import Target, notebooks_under
from grader.report.feedback import check_text
from grader.runner.submission import SubmissionError, identify, read_notebook


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
        "limits": result.limits,  # what it was graded under (seconds, bytes, budgets)
        "final": result.final,
    }
    if submitted_at:
        extra["timestamp"] = submitted_at
    return {
        "score": min(result.score, result.max_score),  # never above the assignment's points
        "max_score": result.max_score,
        "execution_time": round(result.seconds, 3),
        "output": "\n".join(output),
        "visibility": "visible",
        "tests": tests,
        "extra_data": extra,
    }


MAX_UPLOAD_CANDIDATES = 20  # notebooks of one upload read to find the assignment's


def choose_upload(
    upload: Path, assignment: str | None
) -> tuple[Target | None, list[tuple[Path, str]]]:
    """The one notebook of a Gradescope upload that is graded, and the others with the reason.

    With ``assignment``: the notebook named ``<assignment>.ipynb`` (the shallowest, then the
    first in sorted order), else the first whose content is that assignment's (kit metadata or
    its functions), else the upload's only notebook; it is graded *as* ``assignment``, whatever
    its metadata says. Without: the upload's only notebook, recognised from its contents.
    Duplicates and other notebooks are reported, never graded or summed.
    """
    if upload.is_file():
        notebooks = [upload] if upload.suffix == ".ipynb" else []
    elif upload.is_dir():
        notebooks = sorted(notebooks_under(upload), key=lambda p: (len(p.parts), str(p)))
    else:
        notebooks = []
    if not notebooks:
        return None, []
    chosen = None
    if assignment is None:
        if len(notebooks) == 1:
            return Target(notebooks[0]), []
        why = "several notebooks in the upload and no assignment named: upload one notebook"
        return None, [(p, why) for p in notebooks]
    named = [p for p in notebooks if p.name == f"{assignment}.ipynb"]
    if named:
        chosen = named[0]
    else:
        for path in notebooks[:MAX_UPLOAD_CANDIDATES]:
            try:
                notebook, _ = read_notebook(path)
                if identify(notebook, path)[0] == assignment:
                    chosen = path
                    break
            except SubmissionError:
                continue
        if chosen is None and len(notebooks) == 1:
            chosen = notebooks[0]
    if chosen is None:
        why = f"none of the upload's notebooks is named {assignment}.ipynb or holds {assignment}"
        return None, [(p, why) for p in notebooks]
    why = f"only one notebook per upload is graded: {chosen.name}"
    return Target(chosen, "", assignment), [(p, why) for p in notebooks if p != chosen]


def upload_results(
    result: SubmissionResult | None, unused: list[tuple[Path, str]], message: str = ""
) -> dict:
    """The results.json of one upload: the chosen notebook's (:func:`results_json`), with every
    notebook that was not graded listed in its output; score 0 when none was graded."""
    lines = [f"Not graded: {path.name} ({why})" for path, why in unused]
    if result is None:
        output = message or (
            "No notebook was graded."
            if unused
            else "No notebook (.ipynb file) was found in your submission."
        )
        return {
            "score": 0.0,
            "max_score": 0.0,
            "execution_time": 0.0,
            "output": "\n".join([output, *lines]),
            "visibility": "visible",
            "tests": [],
            "extra_data": {"notebooks": [], "not_graded": [str(p) for p, _ in unused]},
        }
    data = results_json(result)
    data["output"] = "\n".join([t for t in (data["output"], *lines) if t])
    data["extra_data"]["not_graded"] = [str(p) for p, _ in unused]
    return data


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
