"""The in-notebook runner: ``check("id")`` runs one check on the live functions of the kernel.

The check definition, cases and judge are exactly those the batch grader uses; only the place
where the student's functions run differs (here: this kernel). For nbgrader the cell's outcome is
the grade: a check shows its table and its value is the points earned, a Python ``float``
(``0.0`` when no case passed), which nbgrader 0.9.6 reads as the cell's score. A wrong answer
never raises, so Run All reaches the last cell. (nbgrader scores an error or any stderr 0, a
number ``>= 0`` as that score, and anything it cannot parse as a number, such as NumPy 2's
``np.float64(0.0)``, as *full* marks: hence a plain float.) Student warnings and prints are
captured and shown as notes, never written to stderr.
"""

from __future__ import annotations

import html
import inspect

from grader import references
from grader.checks import checks_for, get_check
from grader.checks.base import CheckResult
from grader.checks.cases import cases_for, load_fixtures
from grader.report.feedback import check_text
from grader.runner.child import run_case
from grader.runner.judging import hints_for, judge_event, wire_case

OUTPUT_LIMIT = 5_000


class KitError(RuntimeError):
    """A problem of the course set-up (not of the student's answer), shown as one line.

    IPython calls ``_render_traceback_`` instead of printing the frames of the kit's own code.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class CheckReport:
    """Rich display of a check result: an HTML table in Jupyter, plain text elsewhere."""

    def __init__(self, result: CheckResult):
        self.result = result

    def __repr__(self) -> str:
        c = self.result
        head = f"{c.check.id}: {c.check.title} — {c.score:g}/{c.check.points:g} points"
        return head + "\n" + check_text(c)

    def _repr_html_(self) -> str:
        c = self.result
        rows = []
        for case in c.cases:
            colour = "#0072B2" if case.passed else "#D55E00"  # Okabe–Ito blue / vermillion
            mark = "✔ pass" if case.passed else "✘ fail"
            detail = "" if case.passed else html.escape(case.message).replace("\n", "<br>")
            notes = "".join(f"<br><i>note: {html.escape(n)}</i>" for n in case.notes)
            rows.append(
                f"<tr><td style='color:{colour};font-weight:bold;white-space:nowrap'>{mark}</td>"
                f"<td style='text-align:left'>{html.escape(case.name)}</td>"
                f"<td style='text-align:left'>{detail}{notes}</td></tr>"
            )
        hints = "".join(f"<li>{html.escape(h)}</li>" for h in hints_for(c.diagnosis))
        hint_block = f"<p><b>What this looks like:</b></p><ul>{hints}</ul>" if hints else ""
        return (
            f"<div><p><b>{html.escape(c.check.id)}</b>: {html.escape(c.check.title)} — "
            f"<b>{c.score:g}/{c.check.points:g}</b> points</p>"
            f"<table><tr><th></th><th>case</th><th>details</th></tr>{''.join(rows)}</table>{hint_block}</div>"
        )


def run_check(check_id: str, namespace: dict, *, reference=None) -> CheckResult:
    """Run one check against the functions in ``namespace``; returns the judged result."""
    try:
        check = get_check(check_id)
    except KeyError as exc:
        raise KitError(exc.args[0]) from None
    if check.hidden and check.needs_reference and reference is None:
        try:
            reference = references.for_check(check, references.load())
        except FileNotFoundError:
            reference = None
        if reference is None:
            raise KitError(
                f"{check_id} is a hidden check and needs the reference solutions, which are not "
                "installed here (set DNN_KIT_REFERENCE); hidden checks run when your notebook is graded"
            )
    cases = cases_for(check, reference=reference)
    judged = []
    for i, case in enumerate(cases):
        request = wire_case(f"{check.id}/{i}", case)
        event = run_case(
            namespace, request, {k: v.copy() for k, v in case.inputs.items()}, OUTPUT_LIMIT
        )
        judged.append(judge_event(check, case, event))
    return CheckResult(check, judged)


def _show(result: CheckResult) -> None:
    report = CheckReport(result)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(report)
            return
    except ImportError:
        pass
    print(repr(report))


def check(check_id: str, namespace: dict | None = None):
    """Run one check on the functions defined in the notebook and show the result.

    Parameters
    ----------
    check_id : str
        The check's id (also the nbgrader grade cell's id), e.g. ``"dropout_train_forward"``.
    namespace : dict, optional
        Where to find the student's functions; the calling notebook's globals by default.

    Returns
    -------
    float
        The points earned, a plain Python float: the check's points when every case passes,
        ``0.0`` when none does. nbgrader records it as the grade cell's score. A wrong answer
        never raises.
    """
    __tracebackhide__ = True
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    result = run_check(check_id, namespace)
    _show(result)
    return float(result.check.points) if result.passed else float(result.score)


def check_implemented(check_id: str, namespace: dict | None = None) -> float | None:
    """Say so when a function a hidden check needs is missing or still a stub.

    Student notebooks show this line in place of the hidden tests (it is the cell's last
    expression there), so an untouched notebook passes no test cell at all (``nbgrader validate
    --invert``). Only "not defined" and ``NotImplementedError`` count as missing; everything else
    is left to the hidden tests themselves.

    Returns
    -------
    float or None
        ``0.0`` (the cell's score: nothing can pass yet) after printing which function to write;
        None when every function is there, so the cell shows no points it has not earned.
    """
    __tracebackhide__ = True
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    try:
        check = get_check(check_id)
    except KeyError as exc:
        raise KitError(exc.args[0]) from None
    public = load_fixtures(check.notebook)
    for function in check.functions:
        case = next(
            (
                c
                for cases in public.values()
                for c in cases
                if c.plan and c.plan[-1].get("call") == function
            ),
            None,
        )
        if case is None:
            continue
        request = wire_case(f"{check_id}/ready", case)
        event = run_case(
            namespace, request, {k: v.copy() for k, v in case.inputs.items()}, OUTPUT_LIMIT
        )
        error = event.get("error") or {}
        if error.get("type") == "NotImplementedError" or "is not defined" in error.get(
            "message", ""
        ):
            print(
                f"{check_id}: write `{function}` first; the hidden tests of this cell run on it "
                "when your notebook is graded (0 points so far)"
            )
            return 0.0
    return None


def check_all(notebook: str, namespace: dict | None = None) -> bool:
    """Run every public check of a notebook (a self-check before you submit); True if all pass."""
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    results = [run_check(c.id, namespace) for c in checks_for(notebook, include_hidden=False)]
    for result in results:
        _show(result)
    total = sum(r.score for r in results)
    print(f"public checks: {total:g}/{sum(r.check.points for r in results):g} points")
    return all(r.passed for r in results)
