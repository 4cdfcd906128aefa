"""The code base stays clean under ruff (lint and format), as the maintainers' guide asks."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kit_testing import ROOT


@pytest.mark.parametrize(
    "command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"]
)
def test_ruff(command):
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    done = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
