"""Regrading a running course: what changes, for whom, and why, before anything is published.

    python -m grader export SUBMITTED... --course DIR --compare OLD_STORE
    python -m grader diff OLD_STORE NEW_STORE

A new kit version, an edited check, a new reference or salt, or a resubmission can change grades
that students have already seen. Both commands list every student whose score changes, one row
per (student, assignment, check), with the reasons: the submission's bytes, the parts of the
result key that differ (kit version, check-library fingerprint, reference fingerprint, salt
hash, limits; see :mod:`grader.store`) and, inside the check, the cases whose verdict, message or
misconception ids differ. Points (the course's points file) and the errors-carried-forward
policy are applied to both sides the same way, as every export applies them.

Who submitted what is not in a stored result (the same bytes may be two students'), so every
run of ``grade --store`` or ``export`` also writes the *course file* ``STORE/course.json``:
each student's notebook (sha256 and result key), and the kit versions, check libraries,
references and salts the course has been graded with. A store from before the course file
existed can still be compared by ``export --compare``: its results are then found by the
current submissions' sha256 (a resubmitted notebook has no old result there).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.checks import CHECKS
from grader.checks.base import CaseResult, Check, CheckResult
from grader.report.course_file import COURSE_FILE, identity, notebook_label, read_course_file
from grader.report.feedback import case_state
from grader.report.points import apply_points
from grader.report.spreadsheet import csv_text
from grader.results import SubmissionResult
from grader.store import (
    DEFAULT_STORE_NAME,
    STORE_FORMAT,
    Context,
    Graded,
    Store,
    check_from_dict,
    file_sha256,
    result_from_dict,
    write_atomic,
)

#: what each result-key component means, in the words of a reason
COMPONENT_NAMES = {
    "kit_version": "kit version",
    "checks": "check library",
    "reference": "reference solutions",
    "salt": "salt (hidden inputs)",
    "limits": "limits",
    "hidden": "hidden checks included",
    "name": "notebook file name",
    "assignment": "assignment",
}


class RegradeError(ValueError):
    """A store that cannot be compared (absent, or nothing in it names the students)."""


# --------------------------------------------------------------------------- one side of a diff
@dataclass
class Entry:
    """One student's graded notebook on one side: the result and what decided it."""

    student: str
    assignment: str
    notebook: str
    sha256: str
    components: dict[str, Any]
    result: SubmissionResult

    @property
    def identity(self) -> tuple[str, str]:
        return identity(self.student, self.assignment, self.notebook)


@dataclass
class Side:
    """A grade of the course: entries by (student, assignment), and how the course was graded."""

    label: str
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # from the course file
    legacy: bool = False  # no course file: entries found by the submissions' sha256

    def kit_summary(self) -> str:
        """The kit versions (and check libraries) this side's results were graded with."""
        seen: list[str] = []
        for entry in self.entries.values():
            c = entry.components
            text = f"kit {c.get('kit_version', '?')} (check library {c.get('checks', '?')}"
            run = next(
                (
                    r
                    for r in self.history
                    if all(
                        r.get(k) == c.get(k) for k in ("kit_version", "checks", "reference", "salt")
                    )
                ),
                None,
            )
            text += f", last graded {run['last_graded']})" if run else ")"
            if text not in seen:
                seen.append(text)
        return ", ".join(seen) or "no results"


def current_side(graded: Iterable[Graded], context: Context, label: str = "new") -> Side:
    """The side just graded (in memory): every result, stored or not."""
    side = Side(label)
    for g in graded:
        components = context.components(g.target)
        entry = Entry(
            g.result.student,
            g.result.assignment,
            notebook_label(g.target.path, g.result.student),
            file_sha256(g.target.path) or "",
            components,
            g.result,
        )
        side.entries[entry.identity] = entry
    return side


def store_root(path: Path) -> Path:
    """A store folder, or a course directory holding one in ``.grader-cache``."""
    path = Path(path)
    if (path / DEFAULT_STORE_NAME).is_dir() and not (path / COURSE_FILE).exists():
        return path / DEFAULT_STORE_NAME
    return path


def load_side(path: Path, targets: Iterable | None = None, label: str = "old") -> Side:
    """The grade a store holds: from its course file, else (``targets`` given) by sha256.

    Raises :class:`RegradeError` when the store is absent or names no students.
    """
    root = store_root(path)
    if not root.is_dir():
        raise RegradeError(f"no result store at {path}")
    course = read_course_file(root)
    side = Side(label, history=course.get("history", []))
    points_of = _library_points(side.history)
    if course.get("submissions"):
        for item in course["submissions"]:
            record = _read_record(Store(root).path_for(item["sha256"], item["key"]))
            if record is None:
                continue  # deleted from the store since: not comparable
            result = _result_from_record(record, points_of(record["components"]))
            result = dataclasses.replace(result, student=item["student"])
            entry = Entry(
                item["student"],
                item["assignment"],
                item["notebook"],
                item["sha256"],
                record["components"],
                result,
            )
            side.entries[entry.identity] = entry
        return side
    if targets is None:
        raise RegradeError(
            f"{root} has no {COURSE_FILE} (graded by an older kit): compare it with "
            "`python -m grader export SUBMITTED --course DIR --compare "
            f"{path}`, which finds its results by the submissions' sha256"
        )
    side.legacy = True
    for target in targets:
        sha = file_sha256(target.path)
        if sha is None:
            continue
        found = _legacy_record(Store(root), sha, target)
        if found is None:
            continue
        result = _result_from_record(found, {})
        result = dataclasses.replace(result, path=target.path, student=target.student)
        entry = Entry(
            target.student,
            result.assignment,
            notebook_label(target.path, target.student),
            sha,
            found["components"],
            result,
        )
        side.entries[entry.identity] = entry
    return side


def _legacy_record(store: Store, sha: str, target) -> dict | None:
    """The newest record of these bytes graded under this file name (and assignment)."""
    candidates = []
    for path in sorted((store.root / sha[:2]).glob(f"{sha}-*.json")):
        record = _read_record(path)
        if record is None:
            continue
        components = record["components"]
        if components.get("name", target.path.name) != target.path.name:
            continue
        if target.assignment and components.get("assignment") not in ("", target.assignment):
            continue
        candidates.append(record)
    return max(candidates, key=lambda r: r.get("saved", ""), default=None)


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != STORE_FORMAT:
        return None
    if not isinstance(record.get("result"), dict):
        return None
    record.setdefault("components", {})
    return record


def _result_from_record(record: dict, library_points: dict[str, float]) -> SubmissionResult:
    """A stored result, read tolerantly: a check the library no longer has is kept (as a
    stand-in with its old points), and fields this kit does not know are ignored. A record
    edited out of shape raises :class:`RegradeError`."""
    try:
        return _parse_result(record, library_points)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        name = f"{record.get('sha256', '?')}-{record.get('key', '?')}.json"
        raise RegradeError(
            f"the stored result {name} is unreadable ({type(exc).__name__}: {exc})"
        ) from None


def _parse_result(record: dict, library_points: dict[str, float]) -> SubmissionResult:
    data = dict(record["result"])
    checks = data.pop("checks", [])
    result = result_from_dict(data)
    result.checks = [_check_from_stored(c, result.assignment, library_points) for c in checks]
    return result


def _check_from_stored(data: dict, assignment: str, library_points: dict[str, float]):
    check_id = data["check"]
    check = CHECKS.get(check_id) or Check(
        id=check_id,
        notebook=assignment,
        title=check_id,
        points=0.0,
        hidden=False,
        functions=(),
        build=None,
        judge=None,
    )
    if check_id in library_points:
        check = dataclasses.replace(check, points=library_points[check_id])
    return check_from_dict(data, check)


def _library_points(history: list[dict]):
    """``components -> {check id: points}``: the check library's points when it was used."""

    def points_of(components: dict) -> dict[str, float]:
        for run in history:
            if run.get("checks") == components.get("checks") and run.get(
                "kit_version"
            ) == components.get("kit_version"):
                return {k: float(v) for k, v in run.get("check_points", {}).items()}
        return {}

    return points_of


# --------------------------------------------------------------------------- the comparison
@dataclass
class Change:
    """One check of one student's notebook whose score changes (``check`` "" for the whole
    notebook: a submission on one side only)."""

    student: str
    assignment: str
    notebook: str
    check: str
    old_score: float | None
    new_score: float | None
    old_max: float | None
    new_max: float | None
    reasons: list[str]
    old_misconceptions: list[str] = field(default_factory=list)
    new_misconceptions: list[str] = field(default_factory=list)

    @property
    def delta(self) -> float:
        return round((self.new_score or 0.0) - (self.old_score or 0.0), 4)


@dataclass
class Regrade:
    old: Side
    new: Side
    changes: list[Change]
    unchanged: int  # notebooks on both sides whose every check keeps its score

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def students(self) -> list[str]:
        return sorted({c.student for c in self.changes})


def compare(
    old: Side,
    new: Side,
    points: dict[str, float] | None = None,
    carry_forward: bool | None = None,
    only: Iterable[tuple[str, str]] | None = None,
) -> Regrade:
    """Every check whose score (or maximum) differs between ``old`` and ``new``, with reasons.

    ``points`` (the course's points file) is applied to both sides; ``carry_forward`` (None:
    each result's own policy, the course's setting) too. ``only`` limits the comparison to
    these (student, assignment) identities (``export --compare``: the submissions given).
    """
    points = points or {}
    keys = list(dict.fromkeys([*old.entries, *new.entries]))
    if only is not None:
        wanted = set(only)
        keys = [k for k in keys if k in wanted]
    changes: list[Change] = []
    unchanged = 0
    for key in sorted(keys):
        before, after = old.entries.get(key), new.entries.get(key)
        if before is None or after is None:
            changes.append(_one_side(before, after, points, carry_forward))
            continue
        found = _compare_entries(before, after, points, carry_forward)
        changes += found
        unchanged += not found
    return Regrade(old, new, changes, unchanged)


def _scored(result: SubmissionResult, points, carry_forward) -> SubmissionResult:
    result = apply_points(result, points)
    if carry_forward is None:
        return result
    checks = [
        dataclasses.replace(c, carry_forward=carry_forward) if hasattr(c, "carry_forward") else c
        for c in result.checks
    ]
    return dataclasses.replace(result, checks=checks)


def _one_side(before: Entry | None, after: Entry | None, points, carry_forward) -> Change:
    entry = after or before
    result = _scored(entry.result, points, carry_forward)
    reason = "no result in the old grade" if before is None else "not in the new grade"
    return Change(
        entry.student,
        entry.assignment,
        entry.notebook,
        "",
        None if before is None else result.score,
        None if after is None else result.score,
        None if before is None else result.max_score,
        None if after is None else result.max_score,
        [reason],
    )


def submission_reasons(before: Entry, after: Entry) -> list[str]:
    """What differs outside the checks: the bytes, the result-key components, a whole-notebook error."""
    reasons = []
    if before.sha256 != after.sha256:
        reasons.append("submission changed (new sha256)")
    for name, label in COMPONENT_NAMES.items():
        a, b = before.components.get(name), after.components.get(name)
        if a == b:
            continue
        if name == "salt":
            reasons.append("salt changed: new hidden inputs")
        elif name == "limits" and isinstance(a, dict) and isinstance(b, dict):
            diff = [
                f"{k} {a.get(k)} -> {b.get(k)}" for k in sorted({*a, *b}) if a.get(k) != b.get(k)
            ]
            reasons.append("limits changed: " + ", ".join(diff))
        else:
            reasons.append(f"{label} {a} -> {b}")
    if before.result.error != after.result.error:
        reasons.append(
            f"notebook error: {before.result.error or 'none'!r} -> {after.result.error or 'none'!r}"
        )
    return reasons


def _compare_entries(before: Entry, after: Entry, points, carry_forward) -> list[Change]:
    old = _scored(before.result, points, carry_forward)
    new = _scored(after.result, points, carry_forward)
    old_checks = {c.check.id: c for c in old.checks}
    new_checks = {c.check.id: c for c in new.checks}
    common = submission_reasons(before, after)
    changes = []
    for check_id in dict.fromkeys([*old_checks, *new_checks]):
        a, b = old_checks.get(check_id), new_checks.get(check_id)
        scores = (
            None if a is None else a.score,
            None if b is None else b.score,
            None if a is None else float(a.check.points),
            None if b is None else float(b.check.points),
        )
        if scores[0] == scores[1] and scores[2] == scores[3]:
            continue
        changes.append(
            Change(
                after.student,
                after.assignment,
                after.notebook,
                check_id,
                *scores,
                reasons=[*common, *check_reasons(a, b)],
                old_misconceptions=[] if a is None else list(a.diagnosis),
                new_misconceptions=[] if b is None else list(b.diagnosis),
            )
        )
    return changes


def check_reasons(a: CheckResult | None, b: CheckResult | None) -> list[str]:
    """What differs inside one check: its presence, points, error, cases and misconceptions."""
    if a is None:
        return ["check new in the library"]
    if b is None:
        return ["check no longer in the library"]
    reasons = []
    if a.check.points != b.check.points:
        reasons.append(f"points {a.check.points:g} -> {b.check.points:g}")
    if a.error != b.error:
        reasons.append(f"check error: {a.error or 'none'!r} -> {b.error or 'none'!r}")
    old_cases = {c.name: c for c in a.cases}
    new_cases = {c.name: c for c in b.cases}
    for name in [n for n in old_cases if n in new_cases]:
        reasons += _case_reasons(name, old_cases[name], new_cases[name], a, b)
    removed = [c for name, c in old_cases.items() if name not in new_cases]
    added = [c for name, c in new_cases.items() if name not in old_cases]
    if removed and added:  # e.g. a new salt: hidden cases have new inputs (and names)
        reasons.append(
            f"{len(removed)} case(s) replaced by {len(added)} with other inputs: "
            f"{_earned(removed, a)}/{len(removed)} -> {_earned(added, b)}/{len(added)} earned"
        )
    else:
        reasons += [f"case {c.name!r} removed (it {_verdict(c, a)})" for c in removed]
        reasons += [f"case {c.name!r} new ({_verdict(c, b)})" for c in added]
    gone = [d for d in a.diagnosis if d not in b.diagnosis]
    came = [d for d in b.diagnosis if d not in a.diagnosis]
    if gone:
        reasons.append("misconception no longer found: " + ", ".join(gone))
    if came:
        reasons.append("misconception now found: " + ", ".join(came))
    return reasons


VERDICTS = {"pass": "passes", "kept": "passes by errors carried forward", "fail": "fails"}


def _verdict(case: CaseResult, check: CheckResult) -> str:
    return VERDICTS[case_state(case, check.carry_forward)]


def _earned(cases: list[CaseResult], check: CheckResult) -> int:
    return sum(_verdict(c, check) != "fails" for c in cases)


def _case_reasons(name, a: CaseResult, b: CaseResult, ca, cb) -> list[str]:
    reasons = []
    before, after = _verdict(a, ca), _verdict(b, cb)
    if before != after:
        reasons.append(f"case {name!r} {before} -> {after}")
    elif a.message != b.message:
        reasons.append(f"case {name!r} message changed")
    if a.points != b.points:
        reasons.append(f"case {name!r} weight {a.points:g} -> {b.points:g}")
    return reasons


# --------------------------------------------------------------------------- reports
def _score(value: float | None, maximum: float | None) -> str:
    return "-" if value is None else f"{value:g}/{maximum:g}"


def header(regrade: Regrade) -> list[str]:
    lines = []
    for side in (regrade.old, regrade.new):
        how = " (no course file: results found by sha256)" if side.legacy else ""
        lines.append(f"{side.label}: {side.kit_summary()}{how}")
    return lines


def regrade_table(regrade: Regrade) -> str:
    """The terminal table: one row per changed check, the reasons beside it, a summary line."""
    lines = header(regrade)
    if not regrade.changes:
        lines.append(f"no score changes ({regrade.unchanged} notebooks compared)")
        return "\n".join(lines)
    rows = [("student", "assignment", "check", "old", "new", "change", "why")]
    for c in regrade.changes:
        rows.append(
            (
                c.student,
                c.assignment,
                c.check or "(notebook)",
                _score(c.old_score, c.old_max),
                _score(c.new_score, c.new_max),
                f"{c.delta:+g}",
                "; ".join(c.reasons),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines.append("")
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:6], widths, strict=True)]
        lines.append("  ".join(cells) + "  " + row[6])
    students = regrade.students()
    lines.append("")
    lines.append(
        f"{len(students)} student(s) change: {len(regrade.changes)} check(s); "
        f"{regrade.unchanged} notebook(s) unchanged"
    )
    return "\n".join(lines)


CSV_HEADER = (
    "student",
    "assignment",
    "notebook",
    "check",
    "old_score",
    "new_score",
    "change",
    "old_max",
    "new_max",
    "old_misconceptions",
    "new_misconceptions",
    "reasons",
)


def regrade_csv(regrade: Regrade) -> str:
    rows: list[list] = [list(CSV_HEADER)]
    for c in regrade.changes:
        rows.append(
            [
                c.student,
                c.assignment,
                c.notebook,
                c.check,
                c.old_score,
                c.new_score,
                c.delta,
                c.old_max,
                c.new_max,
                " ".join(c.old_misconceptions),
                " ".join(c.new_misconceptions),
                "; ".join(c.reasons),
            ]
        )
    return csv_text(rows)


def regrade_json(regrade: Regrade) -> dict:
    return {
        "changed": regrade.changed,
        "students": regrade.students(),
        "unchanged_notebooks": regrade.unchanged,
        "old": {
            "label": regrade.old.label,
            "kit": regrade.old.kit_summary(),
            "history": regrade.old.history,
        },
        "new": {
            "label": regrade.new.label,
            "kit": regrade.new.kit_summary(),
            "history": regrade.new.history,
        },
        "changes": [{**dataclasses.asdict(c), "change": c.delta} for c in regrade.changes],
    }


def write_reports(regrade: Regrade, csv_path: Path | None, json_path: Path | None) -> list[Path]:
    written = []
    if csv_path is not None:
        write_atomic(csv_path, regrade_csv(regrade))
        written.append(csv_path)
    if json_path is not None:
        write_atomic(json_path, json.dumps(regrade_json(regrade), indent=1) + "\n")
        written.append(json_path)
    return written


# --------------------------------------------------------------------------- command line
#: ``export --compare``: grades changed (everything was graded); ``diff`` uses 1, as diff(1)
EXPORT_CHANGED = 3


def run_diff(args) -> int:
    from grader.report.points import PointsError, load_points

    try:
        points = load_points(args.points)
        old = load_side(args.old, label=f"old {args.old}")
        new = load_side(args.new, label=f"new {args.new}")
    except (PointsError, RegradeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    regrade = compare(old, new, points)
    _show(regrade, args.compare_csv, args.compare_json)
    return 1 if regrade.changed else 0


def before_export(args, targets) -> Side | int:
    """The old side of ``export --compare``, read before anything is graded (the old store may
    be the course's own store, whose course file this run rewrites); exit code 2 on trouble."""
    try:
        return load_side(args.compare, targets, label=f"old {args.compare}")
    except RegradeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def after_export(old: Side, graded, context: Context, points, args, store_dir: Path) -> bool:
    """Compare, print the table on stdout, write the CSV and JSON; True when scores changed."""
    new = current_side(graded, context, label="new (this export)")
    new.history = read_course_file(store_dir).get("history", [])
    regrade = compare(old, new, points, only=list(new.entries))
    exports = Path(args.course) / "exports"
    _show(
        regrade,
        args.compare_csv or exports / "regrade.csv",
        args.compare_json or exports / "regrade.json",
    )
    return regrade.changed


def _show(regrade: Regrade, csv_path, json_path) -> None:
    print(regrade_table(regrade))
    for path in write_reports(regrade, csv_path, json_path):
        print(f"wrote {path}", file=sys.stderr)
