"""Command line: ``python -m grader check NOTEBOOK`` and ``python -m grader grade PATH...``.

Exit codes (contract): ``check`` returns 0 when every public check passes, 1 when any fails;
``grade`` returns 0 when every submission got a result (whatever the scores), 1 when the grader
itself failed on some submission; both return 2 on bad usage.

More instructor commands:

* ``export PATH... --course DIR``: grade (resuming from the store in ``DIR/.grader-cache``) and
  write every export: nbgrader gradebook + autograded/ copies, feedback files (HTML, Markdown, in
  nbgrader's feedback/ layout), Gradescope results.json, the class CSV and the class report;
* ``export ... --compare OLD_STORE`` / ``diff OLD_STORE NEW_STORE``: every student whose score
  changes, by check, with the reasons (docs/instructor-guide.md, "Regrading a running course");
  ``diff`` exits 0 (no change) / 1 (changes) / 2, ``export --compare`` 3 when scores changed;
* ``gradescope-bundle --out autograder.zip``: a Gradescope autograder that runs this grader;
* ``gradescope SUBMISSION_DIR``: what that bundle runs for each submission;
* ``nbgrader PATH...``: the stock nbgrader flow (trusted notebooks only).

``grade`` and ``export`` interrupted with Ctrl-C exit with 130; every finished result is in the
store, so the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from grader import __version__


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader", description="Self-check and grade the DNN Discussion 2 notebooks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="a student's self-check: public checks only")
    check.add_argument("notebook", type=Path)
    check.add_argument("--quiet", action="store_true", help="only the summary table")

    grade = sub.add_parser(
        "grade",
        help="the instructor's batch grade: public and hidden checks, each notebook in its own process",
    )
    grade.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="notebooks or folders: PATH/<student>/<assignment>/<notebook>.ipynb (nbgrader's "
        "submitted/ layout), or loose notebooks (see docs/security.md: identity from the layout)",
    )
    _add_grading_options(grade)
    grade.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="notebooks graded at once (default: all cores)",
    )
    grade.add_argument("--format", choices=["table", "json", "csv"], default="table")
    grade.add_argument("--out", type=Path, help="write the report here instead of stdout")
    grade.add_argument(
        "--salt",
        help="course-private salt for hidden inputs (default: $DNN_KIT_SALT, else the repository's)",
    )
    grade.add_argument(
        "--reference",
        type=Path,
        help="folder of the reference solutions (default: the repository's solutions/)",
    )
    grade.add_argument("--timeout", type=float, default=10.0, help="seconds per case (default 10)")
    grade.add_argument(
        "--memory", type=int, default=2048, help="memory cap per submission in MiB (default 2048)"
    )
    grade.add_argument("--no-progress", action="store_true")
    grade.add_argument(
        "--store",
        type=Path,
        help="keep every result in this folder: a re-run grades only new or changed notebooks",
    )
    _add_store_options(grade)
    _add_budget_options(grade)
    _add_cluster_options(grade)
    grade.add_argument("--points", type=Path, help="points per check (TOML or JSON file)")

    export = sub.add_parser(
        "export",
        help="grade (resumable) and write every export into an nbgrader course directory",
        description="Grade the submissions (results kept in COURSE/.grader-cache, so a re-run only "
        "grades new or changed notebooks) and write: COURSE/gradebook.db (nbgrader), "
        "COURSE/autograded/, COURSE/feedback/ (HTML + Markdown), COURSE/exports/grades.csv, "
        "COURSE/exports/results.json and exports/gradescope/ (Gradescope results.json), "
        "COURSE/exports/class_report.html.",
    )
    export.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="notebooks or folders: PATH/<student>/<assignment>/<notebook>.ipynb, or loose notebooks",
    )
    _add_grading_options(export)
    export.add_argument(
        "--course", type=Path, required=True, help="nbgrader course directory (created if needed)"
    )
    export.add_argument("--store", type=Path, help="result store (default: COURSE/.grader-cache)")
    _add_store_options(export)
    _add_budget_options(export)
    _add_cluster_options(export)
    export.add_argument("--points", type=Path, help="points per check (TOML or JSON file)")
    export.add_argument(
        "--salt",
        help="course-private salt for hidden inputs (default: $DNN_KIT_SALT, else the repository's)",
    )
    export.add_argument(
        "--reference",
        type=Path,
        help="folder of the reference solutions (default: the repository's solutions/)",
    )
    export.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="notebooks graded at once (default: all cores)",
    )
    export.add_argument("--timeout", type=float, default=10.0, help="seconds per case (default 10)")
    export.add_argument(
        "--memory", type=int, default=2048, help="memory cap per submission in MiB (default 2048)"
    )
    export.add_argument(
        "--due",
        help="due date (e.g. '2025-03-01 23:59:00 UTC'): written to the gradebook; the CSV gets seconds_late",
    )
    _add_bookkeeping_options(export)
    export.add_argument(
        "--no-gradebook",
        action="store_true",
        help="skip the nbgrader gradebook and autograded/ copies",
    )
    export.add_argument(
        "--list-students",
        action="store_true",
        help="name students in the class report (default: aggregated only)",
    )
    export.add_argument("--no-progress", action="store_true")
    export.add_argument(
        "--compare",
        type=Path,
        metavar="OLD_STORE",
        help="list every student whose score changes against this store (e.g. the course's own "
        ".grader-cache before a new kit), by check and why; exit 3 when some score changed",
    )
    _add_compare_outputs(export, "default: COURSE/exports/regrade.csv and .json")

    diff = sub.add_parser(
        "diff",
        help="compare two result stores: every student whose score changes, by check, and why",
        description="Compare the grade in OLD with the grade in NEW (result stores, or course "
        "directories holding .grader-cache/): one row per changed check with the reasons. "
        "Grades nothing. Exit status: 0 no score changes, 1 some, 2 trouble.",
    )
    diff.add_argument("old", type=Path, help="the old store (or course directory)")
    diff.add_argument("new", type=Path, help="the new store (or course directory)")
    diff.add_argument(
        "--points", type=Path, help="points per check (TOML or JSON), applied to both sides"
    )
    _add_compare_outputs(diff, "default: not written")

    bundle = sub.add_parser(
        "gradescope-bundle",
        help="build a Gradescope autograder zip (setup.sh, run_autograder) that runs this grader",
    )
    bundle.add_argument(
        "--out", type=Path, required=True, help="the zip to write, e.g. autograder.zip"
    )
    bundle.add_argument(
        "--assignment",
        required=True,
        help="the assignment every upload is graded as (one notebook per upload)",
    )
    bundle.add_argument(
        "--salt",
        help="course-private salt for hidden inputs (default: $DNN_KIT_SALT, else the repository's)",
    )
    bundle.add_argument(
        "--reference",
        type=Path,
        help="folder of the reference solutions (default: the repository's solutions/)",
    )
    bundle.add_argument("--points", type=Path, help="points per check (TOML or JSON file)")

    gradescope = sub.add_parser(
        "gradescope",
        help="grade a Gradescope submission folder into one results.json (run by the bundle)",
    )
    gradescope.add_argument(
        "submission", type=Path, nargs="?", default=Path("/autograder/submission")
    )
    gradescope.add_argument(
        "--results", type=Path, default=Path("/autograder/results/results.json")
    )
    gradescope.add_argument(
        "--assignment",
        help="the assignment of the upload: its one notebook named <assignment>.ipynb, else the "
        "one whose content is that assignment's, is graded (default: the upload's only notebook)",
    )
    gradescope.add_argument(
        "--no-sandbox",
        action="store_true",
        help="grade even without a working bubblewrap sandbox (student code could read the answers)",
    )
    gradescope.add_argument("--reference", type=Path, help="folder of the reference solutions")
    gradescope.add_argument("--salt-file", type=Path, help="file holding the course-private salt")
    gradescope.add_argument("--points", type=Path, help="points per check (TOML or JSON file)")
    gradescope.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per case (default 10)"
    )
    gradescope.add_argument(
        "--memory", type=int, default=2048, help="memory cap in MiB (default 2048)"
    )

    stock = sub.add_parser(
        "nbgrader",
        help="the stock nbgrader flow: set up a course directory from solutions/ and run `nbgrader autograde` (trusted notebooks only)",
    )
    stock.add_argument(
        "paths",
        nargs="+",
        type=Path,
        help="notebooks or folders (nbgrader's submitted/ layout is recognised)",
    )
    stock.add_argument(
        "--course",
        type=Path,
        help="course directory to create or reuse (default: a new temporary one)",
    )
    stock.add_argument(
        "--trusted",
        action="store_true",
        help="required: the notebooks are trusted (nbgrader runs them in one kernel with its "
        "tests, unsandboxed; a hostile notebook can read files and fake its grade there)",
    )
    stock.add_argument(
        "--salt",
        help="course-private salt for hidden inputs (default: $DNN_KIT_SALT, else the repository's)",
    )
    stock.add_argument(
        "--reference",
        type=Path,
        help="folder of the reference solutions (default: the repository's solutions/)",
    )
    return parser


def _add_compare_outputs(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--compare-csv", type=Path, metavar="FILE", help=f"the changes as CSV ({default})"
    )
    parser.add_argument(
        "--compare-json", type=Path, metavar="FILE", help=f"the changes as JSON ({default})"
    )


def _add_budget_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--student-budget",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="time for all of one student's notebooks (default 300)",
    )
    parser.add_argument(
        "--batch-budget",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="no notebook starts after this; a re-run grades the rest (default 3600)",
    )


def _add_bookkeeping_options(parser: argparse.ArgumentParser) -> None:
    """A course's bookkeeping (docs/course-bookkeeping.md): roster, late policy, extensions."""
    parser.add_argument(
        "--roster",
        type=Path,
        help="students.csv (id,name,email,lms_id[,section]): missing submissions, Canvas and "
        "Moodle exports, names in the gradebook",
    )
    parser.add_argument(
        "--late-policy",
        metavar="POLICY",
        help="e.g. '10%%/day, max 3 days' or a TOML file; applied to the CSV, Gradescope JSON, "
        "feedback and the gradebook's late_submission_penalty (needs --due or due dates in the "
        "gradebook)",
    )
    parser.add_argument(
        "--extensions",
        type=Path,
        metavar="FILE",
        help="per-student extensions: CSV with student,assignment,extension (e.g. '2 days')",
    )


def _bookkeeping(args):
    """(roster, late policy, extensions) from the options, or an exit code (2) after a message."""
    from grader.report.late_policy import LatePolicyError, load_extensions, parse_policy
    from grader.report.roster import RosterError, load_roster

    try:
        roster = load_roster(args.roster)
        policy = parse_policy(args.late_policy) if args.late_policy else None
        extensions = load_extensions(args.extensions)
    except (RosterError, LatePolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return roster, policy, extensions


def _add_grading_options(parser: argparse.ArgumentParser) -> None:
    """Options of the batch-grading commands: a manifest, and the sandbox policy."""
    parser.add_argument(
        "--manifest",
        type=Path,
        help="CSV (header student,assignment,path) or JSON list naming each submission "
        "explicitly, instead of (or besides) PATHs",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="grade even without a working bubblewrap sandbox (same as DNN_KIT_SANDBOX=off): "
        "student code could then read the references and other submissions",
    )
    parser.add_argument(
        "--no-carry-forward",
        action="store_true",
        help="no errors carried forward: a backward right for the student's own wrong forward "
        "earns nothing (same as DNN_KIT_CARRY_FORWARD=off or [grading] errors_carried_forward = "
        "false in the --points file; the store keeps both verdicts, so no regrading)",
    )


def _sandbox_policy(args) -> None:
    """``--no-sandbox`` is DNN_KIT_SANDBOX=off for this process (read by the grader only)."""
    if getattr(args, "no_sandbox", False):
        os.environ["DNN_KIT_SANDBOX"] = "off"


def _carry_forward_policy(off: bool, points_file: Path | None) -> None:
    """The course's rule for errors carried forward, as DNN_KIT_CARRY_FORWARD for this process
    (applied with the points when exporting, and passed on to the nbgrader kernels)."""
    from grader.report.points import load_carry_forward

    if off or load_carry_forward(points_file) is False:
        os.environ["DNN_KIT_CARRY_FORWARD"] = "off"


def _warn_default_salt(salt: str | None) -> str:
    """The salt in use; a warning on stderr when it is the repository's public default."""
    from grader.checks.base import DEFAULT_SALT
    from grader.checks.cases import salt_from_environment

    salt = salt or salt_from_environment()
    if salt == DEFAULT_SALT:
        print(
            "warning: hidden inputs use the repository's public default salt; pass --salt (or "
            "set DNN_KIT_SALT) so students cannot rebuild them",
            file=sys.stderr,
        )
    return salt


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="regrade everything, even what the store has"
    )
    parser.add_argument(
        "--student",
        action="append",
        default=[],
        metavar="NAME",
        help="regrade this student's notebooks even if the store has them (repeatable)",
    )


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler",
        default=os.environ.get("DNN_KIT_SCHEDULER") or None,
        metavar="ADDRESS",
        help="grade on the running Dask scheduler at ADDRESS (tls://host:8786, tcp:// on loopback "
        "only, or a scheduler file); default $DNN_KIT_SCHEDULER; --jobs is then ignored",
    )


def _check(args) -> int:
    # the portable runner (Windows, macOS, Linux): no sandbox, no batch machinery
    from grader.runner.selfcheck import self_check

    if args.notebook.is_dir():
        found = sorted(p.name for p in args.notebook.glob("*.ipynb"))
        hint = f" (it holds {', '.join(found)})" if found else " (it holds no .ipynb file)"
        print(
            f"error: {args.notebook} is a folder; give one notebook file, e.g. "
            f"python -m grader check {args.notebook / (found[0] if found else '02_dropout.ipynb')}"
            f"{hint}",
            file=sys.stderr,
        )
        return 2
    if not args.notebook.is_file():
        print(f"error: no such notebook: {args.notebook}", file=sys.stderr)
        return 2
    result = self_check(args.notebook)
    from grader.report.tables import submission_table

    print(submission_table(result, details=not args.quiet))
    return 0 if not result.error and result.checks and all(c.passed for c in result.checks) else 1


def _setup(args):
    """The shared part of grade/export: checks of the arguments, reference, targets, limits.

    Returns (reference, targets, limits, points) or an exit code.
    """
    from grader import references
    from grader.layout import ManifestError, find_submissions, read_manifest
    from grader.report.points import PointsError, load_points
    from grader.runner.process import Limits

    if not args.paths and not args.manifest:
        print("error: give PATHs or --manifest FILE", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"error: not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        points = load_points(getattr(args, "points", None))
        _carry_forward_policy(args.no_carry_forward, getattr(args, "points", None))
    except PointsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reference = references.load(args.reference)
    if args.reference and reference is None:
        print(
            f"error: no reference package (reference/__init__.py) under {args.reference}",
            file=sys.stderr,
        )
        return 2
    found = find_submissions(args.paths)
    if args.manifest:
        try:
            listed = read_manifest(args.manifest)
        except ManifestError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        found.targets += listed.targets
    for message in found.messages():
        print(message, file=sys.stderr)
    targets = list(dict.fromkeys(found.targets))  # a notebook given twice is graded once
    if not targets:
        print(
            "error: no notebooks to grade (expected PATH/<student>/<assignment>/<notebook>.ipynb "
            "or loose *.ipynb files)",
            file=sys.stderr,
        )
        return 2
    claimed: dict[tuple[str, str], Path] = {}
    for target in targets:
        if target.student and target.assignment:
            other = claimed.setdefault((target.student, target.assignment), target.path)
            if other != target.path:
                print(
                    f"error: two notebooks for {target.student}'s {target.assignment} "
                    f"({other} and {target.path}): at most one per student and assignment",
                    file=sys.stderr,
                )
                return 2
    unknown = sorted(set(getattr(args, "student", []) or []) - {t.student for t in targets})
    if unknown:
        print(f"error: no submissions from --student {', '.join(unknown)}", file=sys.stderr)
        return 2
    if min(args.student_budget, args.batch_budget) <= 0:
        print("error: --student-budget and --batch-budget must be positive", file=sys.stderr)
        return 2
    limits = Limits(
        case_seconds=args.timeout,
        memory_bytes=args.memory * 2**20,
        student_seconds=args.student_budget,
        batch_seconds=args.batch_budget,
    )
    return reference, targets, limits, points


def _graded(args, reference, targets, limits, store_dir: Path | None):
    """Grade through the store (resume, regrade), on the Dask cluster with ``--scheduler``; a
    message on stderr says what was reused. Returns exit code 2 when the cluster is unusable."""
    from grader.report.course_file import record_course
    from grader.runner.cluster import ClusterError, grade_function
    from grader.store import BatchSummary, Store, grade_with_store

    store = Store(store_dir) if store_dir else None
    students = set(args.student or [])
    summary = BatchSummary()
    context = _context(args, reference, limits)
    grade = None
    if args.scheduler:
        grade = grade_function(args.scheduler, context, progress=not args.no_progress)
    try:
        graded = grade_with_store(
            targets,
            store=store,
            context=context,
            jobs=args.jobs,
            regrade=lambda t: args.force or t.student in students,
            progress=not args.no_progress,
            grade=grade,
            summary=summary,
        )
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if store is not None:
        record_course(store_dir, graded, context)
        print(
            f"store {store_dir}: {summary.from_store} from the store, {summary.graded} graded",
            file=sys.stderr,
        )
    return graded


def _context(args, reference, limits):
    from grader.checks.cases import salt_from_environment
    from grader.store import Context

    return Context(salt=args.salt or salt_from_environment(), reference=reference, limits=limits)


def _interrupted(store_dir: Path | None) -> int:
    where = (
        f"; finished results are in {store_dir}, run the same command to resume"
        if store_dir
        else ""
    )
    print(f"interrupted{where}", file=sys.stderr)
    return 130


def _grade(args) -> int:
    from grader.grading import grade_many
    from grader.report.gradescope import results_json
    from grader.report.points import apply_points
    from grader.report.tables import class_table, results_csv, submission_table
    from grader.store import submission_timestamp

    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    reference, targets, limits, points = setup
    _warn_default_salt(args.salt)
    if args.store or args.student or args.force or args.scheduler:
        try:
            graded = _graded(args, reference, targets, limits, args.store)
        except KeyboardInterrupt:
            return _interrupted(args.store)
        if isinstance(graded, int):  # the cluster could not be used
            return graded
        results = [g.result for g in graded]
        stamps = [g.timestamp for g in graded]
    else:
        results = grade_many(
            targets,
            jobs=args.jobs,
            salt=args.salt,
            reference=reference,
            limits=limits,
            progress=not args.no_progress,
        )
        stamps = [submission_timestamp(t.path)[0] for t in targets]
    results = [apply_points(r, points) for r in results]
    if args.format == "json":
        text = (
            json.dumps(
                [results_json(r, submitted_at=s) for r, s in zip(results, stamps, strict=True)],
                indent=2,
            )
            + "\n"
        )
    elif args.format == "csv":
        text = results_csv(results)
    else:
        text = (
            "\n\n".join(submission_table(r, details=False) for r in results)
            + "\n\n"
            + class_table(results)
            + "\n"
        )
    if args.out:
        _write_atomic(args.out, text)
        print(f"wrote {args.out} ({len(results)} notebooks)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return _exit_code(results, args.store)


def _exit_code(results, store_dir: Path | None) -> int:
    """1 when the grader failed on a notebook or the batch budget left some unstarted."""
    unstarted = sum(not r.final for r in results)
    if unstarted:
        again = "run the same command again" + ("" if store_dir else " with --store DIR")
        print(
            f"{unstarted} notebook(s) not graded yet (the batch budget ran out): {again}",
            file=sys.stderr,
        )
    return 1 if unstarted or any(r.grader_failure for r in results) else 0


def _export(args) -> int:
    from grader import references
    from grader.report import regrade
    from grader.report.exports import export_all
    from grader.store import default_store

    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    reference, targets, limits, points = setup
    books = _bookkeeping(args)
    if isinstance(books, int):
        return books
    roster, late_policy, extensions = books
    reference_dir = references.locate(args.reference)
    if reference_dir is not None and args.course.resolve() in (
        reference_dir.parent.resolve(),
        reference_dir.parent.parent.resolve(),
    ):
        print(
            "error: --course must be a folder of its own, not the kit's repository "
            "(nbgrader would regenerate the notebooks there)",
            file=sys.stderr,
        )
        return 2
    problem = _course_overlaps_inputs(args.course, args.paths, targets)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    _warn_default_salt(args.salt)
    store_dir = args.store or default_store(args.course)
    old = regrade.before_export(args, targets) if args.compare else None
    if isinstance(old, int):
        return old
    try:
        graded = _graded(args, reference, targets, limits, store_dir)
    except KeyboardInterrupt:
        return _interrupted(store_dir)
    if isinstance(graded, int):  # the cluster could not be used
        return graded
    report = export_all(
        graded,
        args.course,
        points=points,
        gradebook=not args.no_gradebook,
        due=args.due,
        list_students=args.list_students,
        reference_dir=reference_dir,
        salt=args.salt,
        roster=roster,
        late_policy=late_policy,
        extensions=extensions,
    )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(graded)} notebooks, {report.feedback} feedback files", file=sys.stderr)
    for what, where in report.written.items():
        print(f"  {what:<32} {where}", file=sys.stderr)
    code = _exit_code([g.result for g in graded], store_dir)
    if old is not None:
        context = _context(args, reference, limits)
        if regrade.after_export(old, graded, context, points, args, store_dir) and code == 0:
            return regrade.EXPORT_CHANGED
    return code


def _course_overlaps_inputs(course: Path, paths: list[Path], targets) -> str:
    """Why ``course`` may not receive the exports of these inputs ("" when it may): the grader
    never writes into an input folder, and only ``COURSE/submitted`` may be an input inside it."""
    course = course.resolve()
    inputs = [p.resolve() for p in paths] + [t.path.resolve().parent for t in targets]
    for given in inputs:
        folder = given if given.is_dir() else given.parent
        if course == folder or folder in course.parents:
            return f"--course {course} lies inside the input {folder}: choose a folder of its own"
        if course in folder.parents and not folder.is_relative_to(course / "submitted"):
            return (
                f"the input {given} lies inside --course {course} (outside its submitted/): the "
                "exports would write into it"
            )
    return ""


def _bundle(args) -> int:
    from grader import references
    from grader.checks import NOTEBOOKS
    from grader.report.bundle import build_bundle
    from grader.report.points import PointsError, load_points

    if args.assignment and args.assignment not in NOTEBOOKS:
        print(
            f"error: no assignment {args.assignment!r}; known: {', '.join(NOTEBOOKS)}",
            file=sys.stderr,
        )
        return 2
    try:
        load_points(args.points)
    except PointsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reference_dir = references.locate(args.reference)
    if reference_dir is None:
        print("error: reference solutions not found; pass --reference", file=sys.stderr)
        return 2
    salt = _warn_default_salt(args.salt)
    points_text = args.points.read_text(encoding="utf-8") if args.points else ""
    if args.points and args.points.suffix == ".json":  # the bundle always carries TOML
        data = json.loads(points_text)
        data = data.get("points", data)
        points_text = "[points]\n" + "".join(f"{k} = {float(v)!r}\n" for k, v in data.items())
    names = build_bundle(
        args.out,
        salt=salt,
        reference_dir=reference_dir,
        points_text=points_text,
        assignment=args.assignment,
    )
    print(
        f"wrote {args.out} ({len(names)} files): upload it as the Gradescope autograder",
        file=sys.stderr,
    )
    return 0


def _gradescope(args) -> int:
    """Grade one Gradescope submission; always writes a results.json (exit 0 when it did)."""
    import time

    from grader.report.gradescope import upload_results

    start = time.perf_counter()
    try:
        data = _gradescope_results(args)
    except Exception as exc:  # noqa: BLE001 - Gradescope must get a results.json whatever happens
        data = {
            "score": 0.0,
            "output": f"The autograder failed ({type(exc).__name__}); please tell your instructor.",
            "visibility": "visible",
            "tests": [],
        }
        print(f"grader failure: {exc!r}", file=sys.stderr)
    if not data.get("tests") and "extra_data" not in data:
        data = upload_results(None, [], data.get("output", ""))
    data["execution_time"] = round(time.perf_counter() - start, 3)
    _write_atomic(args.results, json.dumps(data, indent=2) + "\n")
    print(
        f"wrote {args.results}: {data['score']:g} / {data.get('max_score', 0):g}", file=sys.stderr
    )
    return 0


def _gradescope_results(args) -> dict:
    """One upload, one notebook graded (:func:`grader.report.gradescope.choose_upload`)."""
    from grader import references
    from grader.grading import grade_many
    from grader.report.gradescope import choose_upload, upload_results
    from grader.report.points import apply_points, load_points
    from grader.runner.process import Limits

    points = load_points(args.points) if args.points and args.points.exists() else {}
    _carry_forward_policy(False, args.points if args.points and args.points.exists() else None)
    salt = args.salt_file.read_text(encoding="utf-8").strip() if args.salt_file else None
    reference = references.load(args.reference)
    target, unused = choose_upload(args.submission, args.assignment)
    if target is None:
        return upload_results(None, unused)
    limits = Limits(case_seconds=args.timeout, memory_bytes=args.memory * 2**20)
    (result,) = grade_many(
        [target], jobs=1, salt=salt, reference=reference, limits=limits, progress=False
    )
    return upload_results(apply_points(result, points), unused)


LINUX_ONLY = (
    "python -m grader {command} is the instructor's batch grader: it runs on Linux only (its "
    "sandbox is bubblewrap, and it needs the POSIX modules resource and fcntl). On Windows use "
    "WSL 2; on macOS a Linux machine, VM or container. The student's self-check, "
    "python -m grader check NOTEBOOK, works here."
)


def _batch_unavailable(command: str, platform: str = sys.platform) -> str:
    """Why the batch grader cannot start on this OS ("" when it can)."""
    if platform.startswith("linux"):
        return ""
    try:  # macOS has the POSIX modules: without a sandbox, only when told so explicitly
        import grader.grading  # noqa: F401
    except ImportError:
        return LINUX_ONLY.format(command=command)
    if os.environ.get("DNN_KIT_SANDBOX", "").strip().lower() == "off":
        return ""
    return LINUX_ONLY.format(command=command) + " (DNN_KIT_SANDBOX=off grades without a sandbox.)"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":  # the self-check imports no batch machinery (portable)
        return _check(args)
    from grader.runner.sandbox import SandboxUnavailable

    why = _batch_unavailable(args.command)
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    if args.command == "nbgrader":
        from grader import course

        return course.main(args)
    if args.command == "gradescope-bundle":
        return _bundle(args)
    if args.command == "diff":
        from grader.report.regrade import run_diff

        return run_diff(args)
    _sandbox_policy(args)
    if args.command == "gradescope":
        return _gradescope(args)
    try:
        return _export(args) if args.command == "export" else _grade(args)
    except SandboxUnavailable as exc:  # fail closed: nothing was graded
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
