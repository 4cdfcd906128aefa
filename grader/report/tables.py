"""Plain-text tables and CSV for the terminal and spreadsheets."""

from __future__ import annotations

from grader.report.feedback import KEPT, check_text, kept_cases
from grader.report.spreadsheet import csv_text
from grader.results import SubmissionResult


def submission_table(result: SubmissionResult, details: bool = True) -> str:
    """One notebook: a row per check (points, status, misconceptions), then failure details."""
    head = f"{result.path}  [{result.assignment}]" + (
        f"  student: {result.student}" if result.student else ""
    )
    lines = [head]
    if result.error:
        lines.append(f"  could not grade: {result.error}")
    width = max([len(c.check.id) for c in result.checks] + [5])
    for c in result.checks:
        status = "pass" if c.passed else "FAIL"
        hidden = " (hidden)" if c.check.hidden else ""
        found = f"  {', '.join(c.diagnosis)}" if c.diagnosis else ""
        kept = kept_cases(c)
        if kept:
            charged = sorted({k.charged_in for k in kept if k.charged_in})
            found += f"  {len(kept)} case(s) {KEPT}" + (
                f" (charged in {', '.join(charged)})" if charged else ""
            )
        lines.append(
            f"  {c.check.id:<{width}}  {c.score:>5.2f}/{c.check.points:<4g} {status}{hidden}{found}"
        )
    lines.append(
        f"  {'total':<{width}}  {result.score:>5.2f}/{result.max_score:<4g}  ({result.seconds:.2f} s)"
    )
    if details:
        for c in result.checks:
            if not c.passed or kept_cases(c):
                lines.append("")
                lines.append(f"  {c.check.id}:")
                lines += ["    " + line for line in check_text(c).splitlines()]
        if result.notes:
            lines.append("")
            lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


def class_table(results: list[SubmissionResult]) -> str:
    """The whole batch: one line per notebook."""
    rows = [("student", "assignment", "score", "max", "misconceptions", "notebook")]
    for r in results:
        found = sorted({d for c in r.checks for d in c.diagnosis})
        score = f"{r.score:.2f}" + (" (error)" if r.error else "")
        rows.append(
            (
                r.student or "-",
                r.assignment,
                score,
                f"{r.max_score:g}",
                ", ".join(found) or "-",
                str(r.path),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1]
        for row in rows
    )


def results_csv(results: list[SubmissionResult]) -> str:
    """CSV: one row per notebook, one column per check (scores), plus totals and diagnoses."""
    check_ids: list[str] = []
    for r in results:
        check_ids += [c.check.id for c in r.checks if c.check.id not in check_ids]
    rows: list[list] = [
        [
            "student",
            "assignment",
            "notebook",
            "sha256",
            "score",
            "max_score",
            *check_ids,
            "misconceptions",
            "error",
        ]
    ]
    for r in results:
        by_id = {c.check.id: c.score for c in r.checks}
        found = sorted({d for c in r.checks for d in c.diagnosis})
        rows.append(
            [
                r.student,
                r.assignment,
                str(r.path),
                r.sha256,
                r.score,
                r.max_score,
                *[by_id.get(i, "") for i in check_ids],
                " ".join(found),
                r.error,
            ]
        )
    return csv_text(rows)
