"""Command line: ``python -m grader check NOTEBOOK`` and ``python -m grader grade PATH...``.

Exit codes (contract): ``check`` returns 0 when every public check passes, 1 when any fails;
``grade`` returns 0 when every submission got a result (whatever the scores), 1 when the grader
itself failed on some submission; both return 2 on bad usage.
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
        nargs="+",
        type=Path,
        help="notebooks or folders (nbgrader's submitted/<student>/<assignment>/ is recognised)",
    )
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

    stock = sub.add_parser(
        "nbgrader",
        help="the stock nbgrader flow: set up a course directory from solutions/ and run `nbgrader autograde` (trusted notebooks only)",
    )
    stock.add_argument("paths", nargs="+", type=Path, help="notebooks or folders (nbgrader's submitted/ layout is recognised)")
    stock.add_argument("--course", type=Path, help="course directory to create or reuse (default: a new temporary one)")
    stock.add_argument("--salt", help="course-private salt for hidden inputs (default: $DNN_KIT_SALT, else the repository's)")
    stock.add_argument("--reference", type=Path, help="folder of the reference solutions (default: the repository's solutions/)")
    return parser


def _check(args) -> int:
    from grader.grading import Target, grade_notebook
    from grader.report.tables import submission_table

    if not args.notebook.is_file():
        print(f"error: no such notebook: {args.notebook}", file=sys.stderr)
        return 2
    result = grade_notebook(Target(args.notebook), include_hidden=False)
    print(submission_table(result, details=not args.quiet))
    return 0 if not result.error and result.checks and all(c.passed for c in result.checks) else 1


def _grade(args) -> int:
    from grader import references
    from grader.grading import discover, grade_many
    from grader.report.gradescope import results_json
    from grader.report.tables import class_table, results_csv, submission_table
    from grader.runner.process import Limits

    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"error: not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    reference = references.load(args.reference)
    if args.reference and reference is None:
        print(
            f"error: no reference package (reference/__init__.py) under {args.reference}",
            file=sys.stderr,
        )
        return 2
    targets = discover(args.paths)
    if not targets:
        print("error: no notebooks (*.ipynb) found", file=sys.stderr)
        return 2
    limits = Limits(case_seconds=args.timeout, memory_bytes=args.memory * 2**20)
    results = grade_many(
        targets,
        jobs=args.jobs,
        salt=args.salt,
        reference=reference,
        limits=limits,
        progress=not args.no_progress,
    )
    if args.format == "json":
        text = json.dumps([results_json(r) for r in results], indent=2) + "\n"
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
    return 1 if any(r.grader_failure for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _check(args)
    if args.command == "nbgrader":
        from grader import course

        return course.main(args)
    return _grade(args)


if __name__ == "__main__":
    sys.exit(main())
