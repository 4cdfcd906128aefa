"""nbgrader's own buttons with the kit behind them, against stock nbgrader, on the same class.

    python scripts/bench_nbgrader.py [--per-assignment N] [--out docs/figures/bench_nbgrader.json]

Two course directories are made with this repository's ``nbgrader_config.py`` and the same
sample submissions (``data/sample_class/submitted``): one runs the kit's steps (the config's
default), the other stock nbgrader (``DNN_KIT_NBGRADER=stock``: ``Execute`` in a kernel). Measured:

* ``nbgrader autograde`` wall time per notebook, kit vs stock (one run per assignment, so
  nbgrader's start-up is shared by the notebooks of that run as it is for a course);
* autograde per notebook as formgrader's Autograde button runs it (``NbGraderAPI.autograde``
  for one student in a running server: no interpreter start-up), after one warm-up notebook;
* ``nbgrader validate`` wall time per notebook from the command line, kit vs stock, and the
  validation alone as the lab extension's Validate button runs it (``Validator.validate`` in a
  running server: no interpreter start-up), kit vs stock;
* whether the kit's validate report names the failing check.

The machine should be quiet; the figures go to ``docs/figures/bench_nbgrader.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from figures import machine, write_figures  # noqa: E402

SAMPLE = ROOT / "data" / "sample_class" / "submitted"


def nbgrader_env(kit: bool, salt: str | None = None) -> dict[str, str]:
    """The environment nbgrader runs in: alembic on PATH, the references found as `grade` finds
    them; ``kit=False`` switches the repository's config to stock nbgrader."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["DNN_KIT_REFERENCE"] = str(ROOT / "solutions" / "reference")
    env["DNN_KIT_NBGRADER"] = "kit" if kit else "stock"
    if salt:
        env["DNN_KIT_SALT"] = salt
    return env


def nbgrader(args: list[str], course: Path, env: dict[str, str], timeout: float = 3600):
    """Run the real nbgrader command line in ``course``."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_course(
    course: Path,
    submissions: list[Path],
    extra_config: str = "",
    env: dict[str, str] | None = None,
) -> list[str]:
    """A course directory with the repository's config, the source notebooks of the assignments
    of ``submissions`` (``.../<student>/<assignment>/<nb>.ipynb``) and those submissions copied
    into ``submitted/``; ``generate_assignment`` registers each assignment. Returns them."""
    course.mkdir(parents=True, exist_ok=True)
    config = (ROOT / "nbgrader_config.py").read_text(encoding="utf-8")
    (course / "nbgrader_config.py").write_text(config + extra_config, encoding="utf-8")
    assignments = sorted({p.parent.name for p in submissions})
    for assignment in assignments:
        source = course / "solutions" / assignment
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "solutions" / assignment / f"{assignment}.ipynb", source)
    for path in submissions:
        student, assignment = path.parent.parent.name, path.parent.name
        destination = course / "submitted" / student / assignment
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, destination / path.name)
    for assignment in assignments:
        done = nbgrader(
            ["generate_assignment", assignment, "--force"], course, env or nbgrader_env(True)
        )
        if done.returncode != 0:
            raise RuntimeError(f"generate_assignment {assignment} failed:\n{done.stderr[-2000:]}")
    return assignments


def sample_submissions(per_assignment: int | None = None) -> list[Path]:
    """Sample notebooks nbgrader can open (the deliberately cut-short one is left out)."""
    import nbformat

    chosen: dict[str, list[Path]] = {}
    for path in sorted(SAMPLE.glob("*/*/*.ipynb")):
        try:
            nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - not a notebook at all
            continue
        chosen.setdefault(path.parent.name, []).append(path)
    return [p for paths in chosen.values() for p in paths[:per_assignment]]


def failing_probes(paths: list[Path]) -> list[Path]:
    """Per assignment, the first sample notebook whose self-check fails a public check."""
    from grader.grading import Target, grade_notebook

    probes: dict[str, Path] = {}
    for path in paths:
        assignment = path.parent.name
        if assignment in probes or path.parent.parent.name == "lee":  # lee wrote nothing
            continue
        result = grade_notebook(Target(path), include_hidden=False)
        if any(not c.passed for c in result.checks):
            probes[assignment] = path
    return [probes[a] for a in sorted(probes)]


def names_failing_checks(report: str) -> bool:
    """Does every failed check cell in a validate report say which cases failed and why?"""
    sections = [s for s in report.split("The following cell failed:")[1:] if "check(" in s]
    return bool(sections) and all("FAIL " in s and " points" in s for s in sections)


def _timed(args: list[str], course: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = nbgrader(args, course, env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _autograde_in_process(
    course: Path, env: dict[str, str], submissions: list[Path]
) -> list[float]:
    """Seconds per notebook of formgrader's Autograde button (NbGraderAPI in one process)."""
    code = (
        "import json, sys, time\n"
        "from nbgrader.apps import NbGrader\n"
        "from nbgrader.apps.api import NbGraderAPI\n"
        "from nbgrader.coursedir import CourseDirectory\n"
        "app = NbGrader(); app.load_config_file()\n"
        "api = NbGraderAPI(CourseDirectory(config=app.config), config=app.config)\n"
        "times = []\n"
        "for pair in sys.argv[1:]:\n"
        "    assignment, student = pair.split('/')\n"
        "    start = time.perf_counter(); done = api.autograde(assignment, student)\n"
        "    assert done['success'], done\n"
        "    times.append(time.perf_counter() - start)\n"
        "print(json.dumps(times))\n"
    )
    pairs = [f"{p.parent.name}/{p.parent.parent.name}" for p in submissions]
    done = subprocess.run(
        [sys.executable, "-c", code, *pairs],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"autograde in process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _validate_in_process(paths: list[Path], kit: bool) -> list[float]:
    """What the lab extension's Validate button costs: Validator.validate in a running process."""
    code = (
        "import json, sys, time\n"
        "from nbgrader.apps import NbGrader\n"
        "from nbgrader.validator import Validator\n"
        "app = NbGrader(); app.config_file_paths.append(sys.argv[1]); app.load_config_file()\n"
        "times = []\n"
        "for path in sys.argv[2:]:\n"
        "    start = time.perf_counter(); Validator(config=app.config).validate(path)\n"
        "    times.append(time.perf_counter() - start)\n"
        "print(json.dumps(times))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), *map(str, paths)],
        cwd=ROOT,
        env=nbgrader_env(kit),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-assignment", type=int, default=None, help="notebooks per assignment")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "figures" / "bench_nbgrader.json"
    )
    parser.add_argument("--quiet-note", default="")
    args = parser.parse_args(argv)
    before = machine(args.quiet_note)

    submissions = sample_submissions(args.per_assignment)
    figures: dict[str, float | int | bool] = {"notebooks": len(submissions)}
    with tempfile.TemporaryDirectory(prefix="bench-nbgrader-") as scratch:
        per_notebook, button = {}, {}
        for label, kit in (("kit", True), ("stock", False)):
            course = Path(scratch) / label
            env = nbgrader_env(kit)
            assignments = make_course(course, submissions, env=env)
            total = 0.0
            for assignment in assignments:
                seconds, _ = _timed(["autograde", assignment, "--force"], course, env)
                total += seconds
                print(f"autograde {label} {assignment}: {seconds:.1f} s", file=sys.stderr)
            per_notebook[label] = total / len(submissions)
            figures[f"autograde_{label}_seconds_per_notebook"] = round(per_notebook[label], 2)
            # the first notebook warms up (imports, the sandbox's fork server, a kernel spec)
            warm = _autograde_in_process(course, env, submissions[:1] + submissions)[1:]
            button[label] = sum(warm) / len(warm)
            figures[f"autograde_button_{label}_seconds_per_notebook"] = round(button[label], 2)
        figures["autograde_speedup"] = round(per_notebook["stock"] / per_notebook["kit"], 1)
        figures["autograde_button_speedup"] = round(button["stock"] / button["kit"], 1)

        # validate: per assignment, one sample notebook that fails a public check, as a student would
        probes = failing_probes(sample_submissions())
        figures["validate_notebooks"] = len(probes)
        for label, kit in (("kit", True), ("stock", False)):
            env = nbgrader_env(kit)
            times, named = [], True
            for path in probes:
                seconds, report = _timed(["validate", str(path)], Path(scratch) / label, env)
                times.append(seconds)
                named = named and names_failing_checks(report)
            figures[f"validate_cli_{label}_seconds"] = round(sum(times) / len(times), 2)
            warm = _validate_in_process(probes, kit)
            figures[f"validate_button_{label}_seconds_first"] = round(warm[0], 2)
            figures[f"validate_button_{label}_seconds"] = round(sum(warm) / len(warm), 2)
            figures[f"validate_{label}_names_failing_check"] = named
    summary = (
        f"nbgrader autograde with the kit's sandboxed step {figures['autograde_button_kit_seconds_per_notebook']} s "
        f"per notebook against {figures['autograde_button_stock_seconds_per_notebook']} s stock "
        f"(formgrader's button, in process; {figures['autograde_speedup']}x from the command line, "
        f"where nbgrader's start-up is shared); validate {figures['validate_button_kit_seconds']} s "
        f"against {figures['validate_button_stock_seconds']} s (the lab button)"
    )
    write_figures(
        "bench_nbgrader",
        figures,
        summary,
        "python scripts/bench_nbgrader.py",
        before,
        out=args.out,
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
