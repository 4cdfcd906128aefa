"""The result store: every graded submission saved at once, atomically, so nothing is graded twice.

A batch that is interrupted (Ctrl-C, a killed job, a reboot) resumes where it stopped: each
result is written the moment it is ready (a temporary file, then ``os.replace``), so a result
file is either complete or absent, never half-written. Results are content-addressed::

    STORE/<sha[:2]>/<sha256 of the notebook>-<key>.json

where ``key`` hashes everything else that decides a result: the kit version, a fingerprint of
the check library (so an edited check or fixture regrades), a hash of the salt
(never the salt itself), a fingerprint of the reference solutions, the resource limits, and the
file name (the assignment can be recognised by it). A changed submission has a new sha256, so it
is regraded; identical notebooks (e.g. several untouched ones) are graded once. Points are not
part of the key: the store keeps which cases passed, and points are applied when exporting.

Who submitted and when is *not* in the stored result (the same bytes may come from two
students): it is read from the submission each time. The time is nbgrader's
``submitted/<student>/<assignment>/timestamp.txt`` when there is one, else the file's
modification time, so late submissions keep their time however often they are regraded.

The store may be deleted at any time; the next run regrades everything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import inspect
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from grader import __version__
from grader.checks import CHECKS
from grader.checks.base import CaseResult, Check, CheckResult
from grader.grading import SubmissionResult, Target
from grader.runner.process import DEFAULT_LIMITS, Limits
from grader.runner.submission import assignment_from_path

STORE_FORMAT = 1
DEFAULT_STORE_NAME = ".grader-cache"
TIMESTAMP_FILE = "timestamp.txt"  # nbgrader's: written by `nbgrader submit`/`collect`


# --------------------------------------------------------------------------- what decides a result
def file_sha256(path: Path) -> str | None:
    """The submission's sha256, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


@functools.cache
def check_set_fingerprint() -> str:
    """A hash of the check library: every check module and the public fixtures.

    The kit version alone is not enough while a course edits a check in place. (The runner is
    not included: a new kit version regrades everything; after editing the runner in place, use
    ``--force``.)
    """
    package = Path(__file__).resolve().parent / "checks"
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".npz")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def reference_fingerprint(reference) -> str:
    """A hash of the reference solutions' sources (hidden expectations come from them)."""
    if reference is None:
        return "none"
    folder = Path(reference.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def salt_hash(salt: str) -> str:
    return hashlib.sha256(("dnn-kit-store\0" + salt).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Context:
    """Everything besides the notebook's bytes that decides a result."""

    salt: str
    reference: Any = None
    limits: Limits = DEFAULT_LIMITS
    include_hidden: bool = True

    def components(self, target: Target) -> dict[str, Any]:
        return {
            "kit_version": __version__,
            "checks": check_set_fingerprint(),
            "salt": salt_hash(self.salt),
            "reference": reference_fingerprint(self.reference),
            # the batch budget never changes a final result (what it stops is not stored)
            "limits": {
                k: v for k, v in dataclasses.asdict(self.limits).items() if k != "batch_seconds"
            },
            "hidden": self.include_hidden,
            "name": target.path.name,
            "assignment": target.assignment or assignment_from_path(target.path) or "",
        }


def result_key(sha256: str, components: dict[str, Any]) -> str:
    blob = json.dumps({"sha256": sha256, **components}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


# --------------------------------------------------------------------------- timestamps
def submission_timestamp(path: Path) -> tuple[str, str]:
    """When the notebook was submitted, as ISO 8601 in UTC, and where that came from.

    nbgrader's ``timestamp.txt`` beside the notebook wins (its format, e.g.
    ``2025-03-01 14:02:11.123456 UTC``, parsed the way nbgrader does); else the file's mtime.
    """
    stamp_file = path.parent / TIMESTAMP_FILE
    try:
        text = stamp_file.read_text(encoding="utf-8", errors="replace").strip()[:100]
    except OSError:
        text = ""
    if text:
        parsed = parse_timestamp(text)
        if parsed is not None:
            return parsed.isoformat(), TIMESTAMP_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return "", ""
    return dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(), "mtime"


def parse_timestamp(text: str) -> dt.datetime | None:
    """A timestamp as nbgrader writes it (``%Y-%m-%d %H:%M:%S.%f %Z``) or ISO 8601, in UTC."""
    import dateutil.parser
    import dateutil.tz

    try:
        parts = text.split(" ")
        if len(parts) == 3:  # date, time, zone name or numeric offset (nbgrader's parse_utc)
            try:
                zone = dateutil.tz.tzoffset(None, _offset_seconds(parts[2]))
            except ValueError:
                zone = dateutil.tz.gettz(parts[2])
            stamp = dateutil.parser.parse(" ".join(parts[:2]))
            stamp = stamp.replace(tzinfo=stamp.tzinfo or zone or dt.UTC)
        else:
            stamp = dateutil.parser.parse(text)
    except (ValueError, OverflowError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def _offset_seconds(text: str) -> int:
    """``+0100`` / ``-05:30`` as seconds; ValueError for a zone name."""
    sign = {"+": 1, "-": -1}.get(text[:1])
    digits = text[1:].replace(":", "")
    if sign is None or len(digits) != 4 or not digits.isdigit():
        raise ValueError(text)
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


# --------------------------------------------------------------------------- (de)serialising
def result_to_dict(result: SubmissionResult) -> dict:
    """A JSON-able form of a result (every dataclass field, so new fields are kept too)."""
    data: dict[str, Any] = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if f.name == "checks":
            data["checks"] = [_check_to_dict(c) for c in value]
        else:
            data[f.name] = _plain(value)
    return data


def result_from_dict(data: dict) -> SubmissionResult:
    """The inverse of :func:`result_to_dict`; KeyError for a check the library no longer has."""
    kwargs: dict[str, Any] = {}
    for f in fields(SubmissionResult):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "checks":
            value = [check_from_dict(c) for c in value]
        elif f.name == "path":
            value = Path(value)
        kwargs[f.name] = _typed(f, value)
    return SubmissionResult(**kwargs)


#: scoring rules applied when exporting, never stored (like points)
POLICY_FIELDS = ("carry_forward",)


def _check_to_dict(check_result: CheckResult) -> dict:
    data = {
        f.name: _plain(getattr(check_result, f.name))
        for f in fields(check_result)
        if f.name not in POLICY_FIELDS
    }
    data["check"] = check_result.check.id
    data["cases"] = [
        {f.name: _plain(getattr(case, f.name)) for f in fields(case)} for case in check_result.cases
    ]
    return data


def check_from_dict(data: dict, check: Check | None = None) -> CheckResult:
    """A stored check result; its :class:`Check` is the library's of that id, or ``check``
    (a reader that keeps results of checks the library no longer has)."""
    kwargs: dict[str, Any] = {}
    for f in fields(CheckResult):
        if f.name not in data or f.name in POLICY_FIELDS:
            continue
        value = data[f.name]
        if f.name == "check":
            value = CHECKS[value] if check is None else check
        elif f.name == "cases":
            value = [
                CaseResult(
                    **{
                        g.name: _typed(g, case[g.name])
                        for g in fields(CaseResult)
                        if g.name in case
                    }
                )
                for case in value
            ]
        kwargs[f.name] = _typed(f, value)
    return CheckResult(**kwargs)


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _typed(f: dataclasses.Field, value):
    """Lists back to tuples where the field is a tuple (annotations are strings here)."""
    if isinstance(value, list) and str(f.type).startswith("tuple"):
        return tuple(value)
    return value


# --------------------------------------------------------------------------- the store
class Store:
    """A folder of results, one JSON file per (notebook sha256, key). Safe for parallel writers."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str, key: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}-{key}.json"

    def load(self, sha256: str, key: str) -> SubmissionResult | None:
        path = self.path_for(sha256, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != STORE_FORMAT or data.get("sha256") != sha256:
                return None
            return result_from_dict(data["result"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or unreadable (edited by hand?): grade again

    def save(self, sha256: str, key: str, components: dict, result: SubmissionResult) -> Path:
        record = {
            "format": STORE_FORMAT,
            "sha256": sha256,
            "key": key,
            "components": components,
            "saved": dt.datetime.now(dt.UTC).isoformat(),
            "result": result_to_dict(result),
        }
        path = self.path_for(sha256, key)
        write_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
        return path

    def files(self) -> list[Path]:
        return sorted(self.root.glob("*/*.json"))


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- grading with a store
@dataclass
class Graded:
    """One submission's result, who submitted it and when, and whether it came from the store."""

    target: Target
    result: SubmissionResult
    timestamp: str = ""  # ISO 8601, UTC
    timestamp_source: str = ""  # "timestamp.txt", "mtime" or "" (unknown)
    from_store: bool = False

    @property
    def student(self) -> str:
        return self.result.student


@dataclass
class BatchSummary:
    graded: int = 0
    from_store: int = 0
    not_stored: int = 0  # results not kept (the grader's own failures are retried next time)


def cacheable(result: SubmissionResult) -> bool:
    """The grader's own failures, and notebooks not graded yet, are not remembered: the next
    run tries again."""
    if result.grader_failure or not result.final:
        return False
    return not any(c.error.startswith("grader problem") for c in result.checks)


GradeFunction = Callable[[list[Target], Callable[[int, SubmissionResult], None]], None]


def grade_with_store(
    targets: list[Target],
    *,
    store: Store | None,
    context: Context,
    jobs: int = 1,
    regrade: Callable[[Target], bool] = lambda target: False,
    progress: bool = True,
    grade: GradeFunction | None = None,
    summary: BatchSummary | None = None,
) -> list[Graded]:
    """Results for ``targets`` (input order): from the store when there, else graded and saved.

    ``regrade(target)`` forces a new grade (``--force``, ``--student``). Each new result is saved
    the moment it arrives, so an interruption (KeyboardInterrupt is re-raised) loses only the
    notebooks still being graded. Identical notebooks are graded once.
    """
    summary = summary if summary is not None else BatchSummary()
    results: list[SubmissionResult | None] = [None] * len(targets)
    from_store = [False] * len(targets)
    pending: dict[tuple[str, str] | int, list[int]] = {}  # (sha, key) or index -> targets
    keys: dict[int, tuple[str, str, dict]] = {}
    for i, target in enumerate(targets):
        sha = file_sha256(target.path)
        if store is None or sha is None:
            pending[i] = [i]
            continue
        components = context.components(target)
        key = result_key(sha, components)
        keys[i] = (sha, key, components)
        if not regrade(target):
            stored = store.load(sha, key)
            if stored is not None:
                results[i] = _as_target(stored, target)
                from_store[i] = True
                summary.from_store += 1
                continue
        pending.setdefault((sha, key), []).append(i)

    groups = list(pending.values())
    lock = threading.Lock()

    def on_result(index: int, result: SubmissionResult) -> None:
        group = groups[index]
        first = group[0]
        if store is not None and first in keys and cacheable(result):
            sha, key, components = keys[first]
            store.save(sha, key, components, _as_stored(result))
        elif store is not None:
            with lock:
                summary.not_stored += 1
        with lock:
            summary.graded += 1
            for i in group:
                results[i] = _as_target(result, targets[i])

    representatives = [targets[group[0]] for group in groups]
    if representatives:
        (grade or _default_grade(context, jobs, progress))(representatives, on_result)
    missing = [t.path for t, r in zip(targets, results, strict=True) if r is None]
    if missing:  # a grade function that skipped something is the grader's own bug
        raise RuntimeError(f"no result for {len(missing)} notebook(s), e.g. {missing[0]}")
    out = []
    for target, result, stored in zip(targets, results, from_store, strict=True):
        stamp, source = submission_timestamp(target.path)
        out.append(Graded(target, result, stamp, source, stored))
    return out


def _as_stored(result: SubmissionResult) -> SubmissionResult:
    """What is saved: the result without who submitted it (the same bytes may be two students')."""
    return dataclasses.replace(result, student="")


def _as_target(result: SubmissionResult, target: Target) -> SubmissionResult:
    return dataclasses.replace(result, path=target.path, student=target.student)


def _default_grade(context: Context, jobs: int, progress: bool) -> GradeFunction:
    """Grade with :func:`grader.grading.grade_many`, saving each result as soon as it exists.

    When ``grade_many`` reports results as they arrive (an ``on_result`` callback) it grades
    the whole batch; otherwise each notebook is a one-item batch of it, run ``jobs`` at a time.
    """
    from grader import grading

    options = {
        "salt": context.salt,
        "reference": context.reference,
        "limits": context.limits,
        "include_hidden": context.include_hidden,
    }

    def grade(targets: list[Target], on_result: Callable[[int, SubmissionResult], None]) -> None:
        if "on_result" in inspect.signature(grading.grade_many).parameters:
            grading.grade_many(
                targets, jobs=jobs, progress=progress, on_result=on_result, **options
            )
            return
        _grade_each(targets, on_result, jobs, progress, options)

    return grade


def _grade_each(targets, on_result, jobs: int, progress: bool, options: dict) -> None:
    from tqdm.auto import tqdm

    from grader import grading

    def one(index: int) -> None:
        result = grading.grade_many([targets[index]], jobs=1, progress=False, **options)[0]
        on_result(index, result)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    bar = tqdm(
        total=len(targets), disable=not progress, unit="notebook", desc="grading", file=sys.stderr
    )
    try:
        running = {pool.submit(one, i) for i in range(len(targets))}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                bar.update(1)
    except BaseException:
        # notebooks already running finish and are saved; the rest are not started
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)


def default_store(course: Path) -> Path:
    return Path(course) / DEFAULT_STORE_NAME


def students_in(targets: Iterable[Target]) -> set[str]:
    return {t.student for t in targets if t.student}
