"""Points per check, configurable by the course: a small TOML or JSON file.

    # points.toml: check id (= the nbgrader grade cell's grade_id) = points
    [points]
    dropout_train_forward = 4
    dropout_hidden_forward = 3

Checks not listed keep the points of the check library (the same as the notebooks' grade cells).
The store keeps which cases passed, never points, so changing this file needs no regrading: every
export (Gradescope JSON, CSV, feedback, class report, gradebook) applies it the same way.

The same file may hold the course's scoring rule for errors carried forward (on by default)::

    [grading]
    errors_carried_forward = false   # a backward right for the student's own (catalogued)
                                     # wrong forward then earns nothing

It is applied like the points, when exporting (the store keeps both verdicts of every case);
``--no-carry-forward`` on the command line, or ``DNN_KIT_CARRY_FORWARD=off``, does the same.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path

from grader.checks import CHECKS
from grader.checks.base import carry_forward_default
from grader.grading import SubmissionResult

GRADING_TABLE = "grading"
CARRY_FORWARD_KEY = "errors_carried_forward"


class PointsError(ValueError):
    """The points file is unreadable or names an unknown check."""


def _read(path: Path) -> object:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PointsError(f"cannot read the points file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if Path(path).suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise PointsError(
            f"{path} is not valid {'JSON' if Path(path).suffix == '.json' else 'TOML'}: {exc}"
        ) from None
    return data


def load_points(path: Path | None) -> dict[str, float]:
    """``{check id: points}`` from a TOML or JSON file (a ``points`` table, or top-level keys;
    a ``grading`` table holds settings, see :func:`load_carry_forward`)."""
    if path is None:
        return {}
    data = _read(path)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != GRADING_TABLE}
    if isinstance(data, dict) and isinstance(data.get("points"), dict):
        data = data["points"]
    if not isinstance(data, dict):
        raise PointsError(f"{path}: expected a table of check id = points")
    points: dict[str, float] = {}
    for check_id, value in data.items():
        if check_id not in CHECKS:
            raise PointsError(f"{path}: no check called {check_id!r}; known: {', '.join(CHECKS)}")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise PointsError(f"{path}: points of {check_id} must be a number >= 0, not {value!r}")
        points[check_id] = float(value)
    return points


def load_carry_forward(path: Path | None) -> bool | None:
    """The course's ``[grading] errors_carried_forward`` (None when the file does not say)."""
    if path is None:
        return None
    data = _read(path)
    grading = data.get(GRADING_TABLE) if isinstance(data, dict) else None
    if grading is None:
        return None
    if not isinstance(grading, dict):
        raise PointsError(f"{path}: [{GRADING_TABLE}] must be a table of settings")
    unknown = sorted(set(grading) - {CARRY_FORWARD_KEY})
    if unknown:
        raise PointsError(
            f"{path}: unknown setting(s) in [{GRADING_TABLE}]: {', '.join(unknown)} "
            f"(known: {CARRY_FORWARD_KEY})"
        )
    value = grading.get(CARRY_FORWARD_KEY)
    if value is not None and not isinstance(value, bool):
        raise PointsError(f"{path}: {CARRY_FORWARD_KEY} must be true or false, not {value!r}")
    return value


def apply_points(
    result: SubmissionResult, points: dict[str, float], carry_forward: bool | None = None
) -> SubmissionResult:
    """A copy of ``result`` whose checks carry the course's points and its rule for errors
    carried forward (``carry_forward``; None: ``DNN_KIT_CARRY_FORWARD``, on unless ``off``).
    Scores follow from both."""
    carry = carry_forward_default() if carry_forward is None else carry_forward
    checks = [
        dataclasses.replace(
            c,
            check=dataclasses.replace(c.check, points=points[c.check.id])
            if c.check.id in points
            else c.check,
            carry_forward=carry,
        )
        for c in result.checks
    ]
    return dataclasses.replace(result, checks=checks)


def points_of(check_id: str, points: dict[str, float]) -> float:
    return points.get(check_id, float(CHECKS[check_id].points))
