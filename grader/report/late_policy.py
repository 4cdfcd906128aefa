"""Late penalties: a course's policy, per-student extensions, and what each submission loses.

A policy is written as a short phrase or as a TOML table (``--late-policy``)::

    "10%/day, max 3 days"                      10 % of the points per started day late, at most 30 %
    "2% per hour, grace 15 minutes, cap 50%"
    "10%/day, zero after 7 days"

    # late.toml (a [late_policy] table, or the same keys at the top level)
    [late_policy]
    per_day = 10            # or per_hour = 2: percent of the maximum score per started period
    grace = "15 minutes"    # everyone's automatic extension
    cap = 30                # the deduction never exceeds 30 % of the maximum score
    max = "3 days"          # the same as cap = 3 x per_day (either, or both: the smaller wins)
    zero_after = "7 days"   # later than this: score 0

Lateness is measured from the effective deadline = due date + the student's extension + grace, in
started periods (1 s late is one day late under a per-day policy). The deduction is a share of
the notebook's maximum autograded score, never more than the score earned, so a score is never
negative (nbgrader caps ``late_submission_penalty`` the same way). Raw scores are never changed:
the penalty is applied at export, and in the gradebook as nbgrader's own ``late_submission_penalty``.

Extensions (``--extensions FILE``) are a CSV with the columns ``student``, ``assignment`` (empty:
every assignment) and ``extension`` (a duration such as ``2 days`` or ``36 hours``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.report.display import for_people


class LatePolicyError(ValueError):
    """A policy, a duration or an extensions file that cannot be read."""


_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?\s*$")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*%\s*(?:/|per\s+)(day|hour)$")


def parse_duration(text: str) -> dt.timedelta:
    """``"15 minutes"``, ``"36h"``, ``"2 days"``, ``"1 week"`` as a timedelta (>= 0)."""
    match = _DURATION.match(str(text).lower())
    unit = match and _UNITS.get(match.group(2))
    if not match or not unit:
        raise LatePolicyError(
            f"not a duration: {text!r} (write e.g. '15 minutes', '36 hours', '2 days')"
        )
    return dt.timedelta(seconds=float(match.group(1)) * unit)


def _describe_lateness(seconds: float) -> str:
    """``90061`` s as ``1 day, 1 hour, 2 minutes`` (rounded up to the minute)."""
    minutes = max(1, math.ceil(seconds / 60))
    parts = []
    for name, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        n, minutes = divmod(minutes, size)
        if n:
            parts.append(f"{n} {name}{'s' if n != 1 else ''}")
    return ", ".join(parts)


def _describe_duration(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    for name, size in (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{for_people(seconds)} seconds"


@dataclass(frozen=True)
class LatePolicy:
    """How much a late submission loses.

    Attributes
    ----------
    rate : float
        Fraction of the maximum score lost per started ``period`` late (0.1 = 10 %).
    period : datetime.timedelta
        One day or one hour.
    grace : datetime.timedelta
        Added to every deadline.
    cap : float
        The largest fraction of the maximum score that can be lost (1.0 = no cap).
    zero_after : datetime.timedelta or None
        Submissions later than this (after the effective deadline) score 0.
    """

    rate: float
    period: dt.timedelta
    grace: dt.timedelta = dt.timedelta(0)
    cap: float = 1.0
    zero_after: dt.timedelta | None = None

    def periods_late(self, seconds_late: float) -> int:
        """Started periods after the effective deadline (``seconds_late`` is measured from it)."""
        if seconds_late <= 0:
            return 0
        return math.ceil(seconds_late / self.period.total_seconds())

    def fraction(self, seconds_late: float) -> float:
        """Fraction of the maximum score lost, in [0, 1] (1 means: zero after)."""
        if seconds_late <= 0:
            return 0.0
        if self.zero_after is not None and seconds_late > self.zero_after.total_seconds():
            return 1.0
        return min(self.cap, self.rate * self.periods_late(seconds_late), 1.0)

    def penalty(self, raw_score: float, max_score: float, seconds_late: float) -> float:
        """Points lost: ``min(raw, fraction x max)``; all of the raw score after ``zero_after``."""
        if self.zero_after is not None and seconds_late > self.zero_after.total_seconds():
            return raw_score
        return round(min(raw_score, self.fraction(seconds_late) * max_score), 4)

    def describe(self) -> str:
        """The policy in words, as students see it."""
        unit = "day" if self.period == dt.timedelta(days=1) else "hour"
        parts = [
            f"{for_people(100 * self.rate)}% of the points per {unit} late (each started {unit})"
        ]
        if self.cap < 1.0:
            parts.append(f"at most {for_people(100 * self.cap)}%")
        if self.zero_after is not None:
            parts.append(f"0 points when more than {_describe_duration(self.zero_after)} late")
        if self.grace:
            parts.append(f"after a grace period of {_describe_duration(self.grace)}")
        return ", ".join(parts)


def parse_policy(text: str) -> LatePolicy:
    """A policy from its phrase (``"10%/day, max 3 days"``) or from a TOML file's path."""
    path = Path(text)
    if text.endswith(".toml") or (len(text) < 4096 and path.is_file()):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise LatePolicyError(f"cannot read {text}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise LatePolicyError(f"{text} is not valid TOML: {exc}") from None
        return policy_from_table(data.get("late_policy", data), where=text)
    fields: dict[str, object] = {}
    for clause in (c.strip().lower() for c in text.split(",")):
        if not clause:
            continue
        rate = _RATE.match(clause)
        if rate:
            fields[f"per_{rate.group(2)}"] = float(rate.group(1))
            continue
        key, _, value = clause.partition(" ")
        if key == "zero" and value.startswith("after "):
            key, value = "zero_after", value[len("after ") :]
        if key not in ("grace", "max", "cap", "zero_after"):
            raise LatePolicyError(
                f"late policy {text!r}: cannot read {clause!r}; write e.g. "
                "'10%/day, max 3 days', '2% per hour, grace 15 minutes, cap 50%, zero after 7 days'"
            )
        fields[key] = value.strip()
    return policy_from_table(fields, where=repr(text))


def _percent(value: object, key: str, where: str) -> float:
    text = str(value).strip().rstrip("%").strip()
    try:
        number = float(text)
    except ValueError:
        raise LatePolicyError(f"{where}: {key} must be a percentage, not {value!r}") from None
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise LatePolicyError(f"{where}: {key} must be between 0 and 100 (percent), not {value!r}")
    return number / 100


def policy_from_table(table: dict, *, where: str = "late policy") -> LatePolicy:
    """A policy from a table: ``per_day`` or ``per_hour``, ``grace``, ``cap``, ``max``, ``zero_after``."""
    if not isinstance(table, dict):
        raise LatePolicyError(f"{where}: expected a table of settings")
    known = {"per_day", "per_hour", "grace", "cap", "max", "zero_after"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise LatePolicyError(
            f"{where}: unknown setting {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    rates = [k for k in ("per_day", "per_hour") if k in table]
    if len(rates) != 1:
        raise LatePolicyError(f"{where}: give exactly one of per_day or per_hour (a percentage)")
    rate = _percent(table[rates[0]], rates[0], where)
    period = dt.timedelta(days=1) if rates[0] == "per_day" else dt.timedelta(hours=1)
    cap = _percent(table["cap"], "cap", where) if "cap" in table else 1.0
    if "max" in table:
        periods = parse_duration(str(table["max"])) / period
        cap = min(cap, round(rate * math.ceil(periods - 1e-9), 12))
    return LatePolicy(
        rate=rate,
        period=period,
        grace=parse_duration(str(table["grace"])) if "grace" in table else dt.timedelta(0),
        cap=cap,
        zero_after=parse_duration(str(table["zero_after"])) if "zero_after" in table else None,
    )


# --------------------------------------------------------------------------- extensions
@dataclass(frozen=True)
class Extensions:
    """Extra time per student: ``(student, assignment)`` first, then ``(student, "")`` for all."""

    by_key: dict[tuple[str, str], dt.timedelta]

    def for_student(self, student: str, assignment: str) -> dt.timedelta:
        return self.by_key.get(
            (student, assignment), self.by_key.get((student, ""), dt.timedelta(0))
        )

    @property
    def students(self) -> set[str]:
        return {student for student, _ in self.by_key}


NO_EXTENSIONS = Extensions({})


def load_extensions(path: Path | None) -> Extensions:
    """The extensions CSV (``student,assignment,extension``); an empty ``assignment`` means all."""
    if path is None:
        return NO_EXTENSIONS
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LatePolicyError(
            f"cannot read the extensions file {path}: {exc.strerror or exc}"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "student" not in header or "extension" not in header:
        raise LatePolicyError(
            f"{path}: the extensions file needs the columns student, assignment, extension "
            f"(found: {', '.join(header) or 'nothing'})"
        )
    by_key: dict[tuple[str, str], dt.timedelta] = {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not row.get("student"):
            continue
        key = (row["student"], row.get("assignment", ""))
        if key in by_key:
            raise LatePolicyError(
                f"{path}, line {line}: a second extension for {key[0]} {key[1]}".rstrip()
            )
        try:
            by_key[key] = parse_duration(row["extension"])
        except LatePolicyError as exc:
            raise LatePolicyError(f"{path}, line {line}: {exc}") from None
    return Extensions(by_key)


# --------------------------------------------------------------------------- one submission
@dataclass(frozen=True)
class Late:
    """What the policy makes of one submission (all times in UTC)."""

    due: dt.datetime
    extension: dt.timedelta
    seconds_late: float  # after the effective deadline (due + extension + grace); 0 if on time
    raw_score: float
    max_score: float
    penalty: float
    policy: LatePolicy | None

    @property
    def score(self) -> float:
        return round(max(0.0, self.raw_score - self.penalty), 4)

    def sentence(self) -> str:
        """One line for the student: how late, the policy in words, the points lost."""
        if self.seconds_late <= 0:
            extended = (
                f" (with an extension of {_describe_duration(self.extension)})"
                if self.extension
                else ""
            )
            return f"Submitted on time{extended}."
        late = _describe_lateness(self.seconds_late)
        if self.policy is None:
            return f"Submitted {late} late (no late policy: no penalty)."
        periods = self.policy.periods_late(self.seconds_late)
        unit = "day" if self.policy.period == dt.timedelta(days=1) else "hour"
        text = (
            f"Submitted {late} late ({periods} started {unit}{'s' if periods != 1 else ''}); "
            f"late policy: {self.policy.describe()}. "
            f"Points lost: {for_people(self.penalty)}; "
            f"score {for_people(self.score)} instead of {for_people(self.raw_score)}."
        )
        return text


def late_for(
    timestamp: str,
    due: dt.datetime | None,
    *,
    raw_score: float,
    max_score: float,
    policy: LatePolicy | None,
    extension: dt.timedelta = dt.timedelta(0),
) -> Late | None:
    """The lateness and penalty of one submission, or None when there is no due date or time."""
    if due is None or not timestamp:
        return None
    submitted = dt.datetime.fromisoformat(timestamp)
    grace = policy.grace if policy else dt.timedelta(0)
    seconds = max(0.0, (submitted - (due + extension + grace)).total_seconds())
    penalty = policy.penalty(raw_score, max_score, seconds) if policy and seconds > 0 else 0.0
    return Late(due, extension, seconds, raw_score, max_score, penalty, policy)
