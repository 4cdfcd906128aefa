"""Words for students: one check's result as text, with the misconceptions named and explained."""

from __future__ import annotations

from grader.checks.base import CheckResult
from grader.runner.judging import hints_for


def check_text(result: CheckResult) -> str:
    """Each case with its verdict and message, then the hint for every misconception found."""
    lines = []
    if result.error:
        lines.append(result.error)
    previous = None
    for case in result.cases:
        mark = "PASS" if case.passed else "FAIL"
        message = case.message if case.message and not case.passed else ""
        if message and message == previous:
            message = "the same"
        else:
            previous = message or previous
        lines.append(f"{mark} {case.name}" + (f": {message}" if message else ""))
        lines += [f"     note: {note}" for note in case.notes]
    hints = hints_for(result.diagnosis)
    if hints:
        lines.append("")
        lines.append("What this looks like:")
        lines += [f"  {hint}" for hint in hints]
    return "\n".join(lines)
