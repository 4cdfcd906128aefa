"""Fixtures for the whole suite; shared helpers live in ``kit_testing`` (this folder is on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from kit_testing import ROOT  # noqa: E402

from grader import references  # noqa: E402


@pytest.fixture(scope="session")
def reference():
    module = references.load(ROOT / "solutions")
    assert module is not None, "solutions/reference not found"
    return module
