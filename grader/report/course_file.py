"""The course file ``STORE/course.json``: who submitted which stored result, and the kit used.

A stored result does not say who submitted it (the same bytes may be two students'), and its
key is a hash. Every ``grade --store`` and ``export`` therefore also records, per course (per
store), each student's notebook (its sha256 and result key) and every way the course has been
graded: kit version, check-library fingerprint, reference fingerprint and salt hash, with the
check library's points at the time and when each was first and last used. ``python -m grader
diff`` and ``export --compare`` read it (:mod:`grader.report.regrade`).

Entries of students not in a run are kept (a run may grade part of a class); only results that
are in the store are recorded. Two runs writing at once merge (a lock file beside it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from grader.checks import CHECKS
from grader.store import Context, Graded, Store, cacheable, file_sha256, result_key, write_atomic

COURSE_FILE = "course.json"
COURSE_FORMAT = 1


def notebook_label(path: Path, student: str) -> str:
    """The notebook's file name; a loose notebook's (no student) full path, which names it."""
    return Path(path).name if student else str(Path(path).resolve())


def identity(student: str, assignment: str, notebook: str) -> tuple[str, str]:
    """Who and what: one notebook per student and assignment (a loose notebook by its path)."""
    return (student, assignment) if student else ("", notebook)


def read_course_file(root: Path) -> dict:
    try:
        data = json.loads((Path(root) / COURSE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == COURSE_FORMAT else {}


def record_course(root: Path, graded: Iterable[Graded], context: Context) -> Path:
    """Write ``STORE/course.json``: who submitted which stored result, and the kit used.

    Entries of students not in this run are kept (a run may grade part of a class); only
    results that are in the store are recorded (a grader failure is graded again next time).
    """
    root = Path(root)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    store = Store(root)
    with _locked(root):
        course = read_course_file(root)
        submissions = {
            identity(s["student"], s["assignment"], s["notebook"]): s
            for s in course.get("submissions", [])
        }
        history = course.get("history", [])
        used = set()
        for g in graded:
            sha = file_sha256(g.target.path)
            if sha is None or not cacheable(g.result):
                continue
            components = context.components(g.target)
            key = result_key(sha, components)
            if not store.path_for(sha, key).exists():
                continue
            student, assignment = g.result.student, g.result.assignment
            notebook = notebook_label(g.target.path, student)
            submissions[identity(student, assignment, notebook)] = {
                "student": student,
                "assignment": assignment,
                "notebook": notebook,
                "sha256": sha,
                "key": key,
                "graded": now,
            }
            used.add(tuple(components[k] for k in ("kit_version", "checks", "reference", "salt")))
        for kit_version, checks, reference, salt in sorted(used):
            run = next(
                (
                    r
                    for r in history
                    if (r.get("kit_version"), r.get("checks"), r.get("reference"), r.get("salt"))
                    == (kit_version, checks, reference, salt)
                ),
                None,
            )
            if run is None:
                run = {
                    "kit_version": kit_version,
                    "checks": checks,
                    "reference": reference,
                    "salt": salt,
                    "first_graded": now,
                    "check_points": {c.id: float(c.points) for c in CHECKS.values()},
                }
                history.append(run)
            run["last_graded"] = now
        data = {
            "format": COURSE_FORMAT,
            "about": "written by python -m grader grade/export: who submitted which stored result, "
            "and the kit each was graded with (read by `python -m grader diff`)",
            "history": history,
            "submissions": sorted(
                submissions.values(), key=lambda s: (s["student"], s["assignment"])
            ),
        }
        path = root / COURSE_FILE
        write_atomic(path, json.dumps(data, indent=1) + "\n")
    return path


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Two runs updating one course file at once merge their entries instead of losing some."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: the batch grader does not run there anyway
        yield
        return
    with open(root / ".course.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
