"""Points per check, configurable by the course: a small TOML or JSON file.

    # points.toml: check id (= the nbgrader grade cell's grade_id) = points
    [points]
    dropout_train_forward = 4
    dropout_hidden_forward = 3

Checks not listed keep the points of the check library (the same as the notebooks' grade cells).
The store keeps which cases passed, never points, so changing this file needs no regrading: every
export (Gradescope JSON, CSV, feedback, class report, gradebook) applies it the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path

from grader.checks import CHECKS
from grader.grading import SubmissionResult


class PointsError(ValueError):
    """The points file is unreadable or names an unknown check."""


def load_points(path: Path | None) -> dict[str, float]:
    """``{check id: points}`` from a TOML or JSON file (a ``points`` table, or top-level keys)."""
    if path is None:
        return {}
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


def apply_points(result: SubmissionResult, points: dict[str, float]) -> SubmissionResult:
    """A copy of ``result`` whose checks carry the course's points (scores follow from them)."""
    if not points:
        return result
    checks = [
        dataclasses.replace(c, check=dataclasses.replace(c.check, points=points[c.check.id]))
        if c.check.id in points
        else c
        for c in result.checks
    ]
    return dataclasses.replace(result, checks=checks)


def points_of(check_id: str, points: dict[str, float]) -> float:
    return points.get(check_id, float(CHECKS[check_id].points))
