"""Where benchmark scripts put what they measured: ``docs/figures/<script>.json``.

Every figure in the README's "Measured here" table comes from one of these files (rendered by
``scripts/render_readme_figures.py``); nobody types a figure into prose. The format::

    {"script": "bench_selfcheck", "date": "2026-12-01T22:00:00+00:00",
     "machine": {"cores": 2, "cpu": "...", "python": "3.11.2", "load_before": 0.4,
                 "quiet": "load average 0.40 before the run; ..."},
     "figures": {"selfcheck_seconds": 0.31, ...},
     "summary": "one sentence for the README, made from the figures above",
     "reproduce": "python scripts/bench_selfcheck.py"}
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(note: str = "") -> dict:
    """The machine a figure was measured on, and how busy it was just before (load average)."""
    cores = os.cpu_count() or 1
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on Windows
        load = None
    quiet = (
        f"1-minute load average {load} on {cores} cores before the run"
        if load is not None
        else "load unknown"
    )
    if load is not None and load > 0.5 * cores:
        quiet += " (busy: re-measure on a quiet machine)"
    if note:
        quiet += f"; {note}"
    return {
        "cores": cores,
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "load_before": load,
        "quiet": quiet,
    }


def write_figures(
    script: str, figures: dict, summary: str, reproduce: str, before: dict, out: Path | None = None
) -> Path:
    """Write one script's figures; ``before`` is :func:`machine` taken before the measurement
    (afterwards the load average counts the benchmark itself)."""
    record = {
        "script": script,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": before,
        "figures": figures,
        "summary": summary,
        "reproduce": reproduce,
    }
    path = out or FIGURES / f"{script}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
