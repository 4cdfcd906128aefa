"""Where a check's cases come from: shipped fixtures (the self-check) or the salt (the batch grade).

Public cases are built once from the reference solution by ``scripts/make_fixtures.py`` and
shipped inside the package (``grader/checks/fixtures/<notebook>.npz``), so a student's
self-check needs no reference. Every student has those files, inputs *and* expected values, so
the batch grade never pays for them: there **every** case, public checks included, is built at
grading time from a course-private salt (:func:`batch_cases`; public checks from
:func:`~grader.checks.base.salted_public_seed`, hidden ones from
:func:`~grader.checks.base.hidden_seed`), with the same builders and therefore the same shapes and
kinds of case as the fixtures but other numbers. When a check needs expected values, they come
from the reference, found by :mod:`grader.references` outside the installed package.
"""

from __future__ import annotations

import io
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from grader.checks import checks_for
from grader.checks.base import (
    DEFAULT_SALT,
    Case,
    Check,
    hidden_seed,
    public_seed,
    salted_public_seed,
)

FIXTURE_FORMAT = 1


def salt_from_environment() -> str:
    """The course's salt: ``DNN_KIT_SALT``, else the repository's default."""
    return os.environ.get("DNN_KIT_SALT") or DEFAULT_SALT


def _reference(check: Check, reference):
    """The reference of the check's topic: its own (an out-of-tree topic) or the kit's."""
    if not check.needs_reference:
        return reference
    from grader import references

    return references.for_check(check, reference)


def build_public(check: Check, reference) -> list[Case]:
    """Build a public check's cases from its fixed seed (what the fixtures hold)."""
    reference = _reference(check, reference)
    return check.build(public_seed(check.id), reference if check.needs_reference else None)


def hidden_cases(check: Check, salt: str, reference) -> list[Case]:
    """Build a hidden check's cases from the salt; ``reference`` is needed when the check says so."""
    reference = _reference(check, reference)
    if check.needs_reference and reference is None:
        raise RuntimeError(f"check {check.id} needs the reference solutions, which were not found")
    return check.build(hidden_seed(salt, check.id), reference if check.needs_reference else None)


def batch_cases(check: Check, *, salt: str, reference) -> list[Case]:
    """The cases of the batch grade: built from the salt for every check, public ones included
    (the shipped fixtures, which any student can read, never earn points there)."""
    reference = _reference(check, reference)
    if check.needs_reference and reference is None:
        raise RuntimeError(f"check {check.id} needs the reference solutions, which were not found")
    seed = hidden_seed(salt, check.id) if check.hidden else salted_public_seed(salt, check.id)
    return check.build(seed, reference if check.needs_reference else None)


def cases_for(check: Check, *, salt: str | None = None, reference=None) -> list[Case]:
    """The self-check's cases: public ones from the fixtures, hidden ones built from the salt."""
    if check.hidden:
        return hidden_cases(check, salt or salt_from_environment(), reference)
    return load_fixtures(check.notebook)[check.id]


# --------------------------------------------------------------------------- fixture files
def fixture_path(notebook: str) -> Path:
    """Where a notebook's public fixtures live: ``fixtures/`` in its topic's package (the
    kit's ``grader/checks/fixtures``, or an out-of-tree topic's own package data)."""
    from grader.checks import topic_of

    package = topic_of(notebook).fixtures
    return Path(str(resources.files(package) / "fixtures" / f"{notebook}.npz"))


def fixtures_bytes(notebook: str, reference) -> bytes:
    """The fixture file of one notebook, as bytes (deterministic for a given reference)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"format": FIXTURE_FORMAT, "notebook": notebook, "checks": {}}
    for check in checks_for(notebook, include_hidden=False):
        described = []
        for i, case in enumerate(build_public(check, reference)):
            prefix = f"{check.id}/{i}"
            for name, array in case.inputs.items():
                arrays[f"{prefix}/in/{name}"] = np.asarray(array)
            expected_layout = {}
            for name, value in case.expected.items():
                if isinstance(value, list):
                    expected_layout[name] = len(value)
                    for j, item in enumerate(value):
                        arrays[f"{prefix}/exp/{name}/{j}"] = np.asarray(item)
                else:
                    expected_layout[name] = None
                    arrays[f"{prefix}/exp/{name}"] = np.asarray(value)
            described.append(
                {
                    "name": case.name,
                    "plan": case.plan,
                    "returns": case.returns,
                    "params": case.params,
                    "points": case.points,
                    "inputs": list(case.inputs),
                    "expected": expected_layout,
                }
            )
        meta["checks"][check.id] = described
    arrays["__meta__"] = np.array(json.dumps(meta, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # uncompressed: loads fastest, and the files are small
    return buffer.getvalue()


_loaded: dict[str, dict[str, list[Case]]] = {}


def load_fixtures(notebook: str, data: bytes | None = None) -> dict[str, list[Case]]:
    """The public cases of one notebook, by check id."""
    if data is None and notebook in _loaded:
        return _loaded[notebook]
    source = io.BytesIO(data) if data is not None else fixture_path(notebook)
    with np.load(source, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"]))
        if meta.get("format") != FIXTURE_FORMAT:
            raise RuntimeError(
                f"fixtures for {notebook} have format {meta.get('format')}; rebuild them"
            )
        result: dict[str, list[Case]] = {}
        for check_id, described in meta["checks"].items():
            cases = []
            for i, d in enumerate(described):
                prefix = f"{check_id}/{i}"
                expected = {
                    name: npz[f"{prefix}/exp/{name}"]
                    if count is None
                    else [npz[f"{prefix}/exp/{name}/{j}"] for j in range(count)]
                    for name, count in d["expected"].items()
                }
                cases.append(
                    Case(
                        name=d["name"],
                        plan=d["plan"],
                        returns=d["returns"],
                        inputs={name: npz[f"{prefix}/in/{name}"] for name in d["inputs"]},
                        expected=expected,
                        params=d["params"],
                        points=float(d.get("points", 1.0)),
                    )
                )
            result[check_id] = cases
    if data is None:
        _loaded[notebook] = result
    return result
