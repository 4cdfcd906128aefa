"""Build the public fixtures (``grader/checks/fixtures/<notebook>.npz``) from the reference.

Usage::

    python scripts/make_fixtures.py           # rewrite the fixture files
    python scripts/make_fixtures.py --check   # rebuild in memory, compare numerically, exit 1 on drift
    python scripts/make_fixtures.py --notebook 90_mine   # one topic only

A topic installed from an instructor's own package (entry point ``dnn_kit.topics``) gets its
fixtures written into that package (``fixtures/`` beside its topic module, or the package its
``Topic.fixtures`` names), built from its private reference (``Topic.reference``, found as
:mod:`grader.references` says: ``DNN_KIT_TOPIC_REFERENCES`` names the folder).
"""

from __future__ import annotations

import argparse
import io
import sys

import numpy as np

from grader import references
from grader.checks import NOTEBOOKS, topic_of
from grader.checks.cases import fixture_path, fixtures_bytes, load_fixtures


def compare(notebook: str, fresh: bytes) -> list[str]:
    """Differences between committed and rebuilt fixtures (numerical, rtol 1e-12)."""
    problems = []
    if not fixture_path(notebook).exists():
        return [f"{notebook}: no fixture file"]
    with np.load(io.BytesIO(fresh)) as new, np.load(fixture_path(notebook)) as old:
        if set(new.files) != set(old.files):
            problems.append(
                f"{notebook}: keys differ: {sorted(set(new.files) ^ set(old.files))[:5]}"
            )
            return problems
        for key in new.files:
            a, b = new[key], old[key]
            same = (
                np.array_equal(a, b)
                if a.dtype.kind not in "fc"
                else (a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0))
            )
            if not same:
                problems.append(f"{notebook}: {key} differs")
    load_fixtures(notebook, fresh)  # the rebuilt file must load too
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files instead of writing"
    )
    parser.add_argument(
        "--notebook",
        action="append",
        choices=list(NOTEBOOKS),
        help="build only this notebook's fixtures (repeatable; default: every registered topic)",
    )
    args = parser.parse_args()
    notebooks = args.notebook or list(NOTEBOOKS)
    reference = references.load()
    if reference is None and any(not topic_of(n).reference for n in notebooks):
        print("error: reference solutions not found (solutions/reference)", file=sys.stderr)
        return 2
    problems = []
    for notebook in notebooks:
        try:
            fresh = fixtures_bytes(notebook, reference)
        except FileNotFoundError as exc:  # an out-of-tree topic's private reference
            print(f"error: {notebook}: {exc}", file=sys.stderr)
            return 2
        if args.check:
            problems += compare(notebook, fresh)
        else:
            fixture_path(notebook).parent.mkdir(parents=True, exist_ok=True)
            fixture_path(notebook).write_bytes(fresh)
            print(f"wrote {fixture_path(notebook)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
