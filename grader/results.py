"""What grading one notebook produces: :class:`SubmissionResult` (every runner, every report).

It lives apart from :mod:`grader.grading` (the batch machinery: sandbox, fork server, worker
pool, Linux only) so that the student's self-check and the reports import it anywhere, including
on Windows and macOS where ``resource`` and ``fcntl`` do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader import __version__
from grader.checks.base import CheckResult

NOT_RUN = "none (nothing was run)"  # the isolation of a result no process produced


@dataclass
class SubmissionResult:
    path: Path
    assignment: str
    student: str = ""
    sha256: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    error: str = ""  # the notebook could not be graded at all; every check scores 0
    grader_failure: bool = False  # the error is the grader's own fault, not the submission's
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    isolation: str = NOT_RUN
    kit_version: str = __version__

    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        return float(sum(c.check.points for c in self.checks))
