"""Words for students: one check's result as text, and a whole notebook's feedback file.

What a student sees: every check with its points, each case's verdict and message, and for each
misconception found its title and a hint that teaches. Never the test code, hidden inputs or the
reference source: hidden checks show only their name, score and messages (the messages describe
cases and measured errors, as the Gradescope output does).
"""

from __future__ import annotations

import html
import re

from grader import __version__
from grader.checks import MISCONCEPTIONS
from grader.checks.base import CaseResult, CheckResult
from grader.report.display import for_people
from grader.results import SubmissionResult
from grader.runner.judging import hints_for

HIDDEN_NOTE = (
    "hidden check: it runs on inputs you have not seen; shown are its score and, for each case, "
    "what kind of case it is (shapes, p_drop) and how your result differed, never its inputs, "
    "expected values or code"
)
KEPT = "kept by errors carried forward"
WRITTEN_NOTE = "Written answers (the short questions) are graded by hand and are not included here."


def case_state(case: CaseResult, carry_forward: bool) -> str:
    """``"pass"``, ``"kept"`` (wrong against the reference, earned by errors carried forward)
    or ``"fail"``."""
    if case.passed:
        return "pass"
    return "kept" if case.earned(carry_forward) else "fail"


def carried_note(case: CaseResult, carry_forward: bool) -> str:
    """What a carried-forward case's verdict means under the course's rule ("" otherwise)."""
    if case.passed or not case.carried_forward:
        return ""
    charged = f"the mistake is charged in {case.charged_in}" if case.charged_in else ""
    if carry_forward:
        return f"{KEPT} ({charged})" if charged else KEPT
    return "not kept: this course does not carry errors forward, so it earns no points" + (
        f" ({charged})" if charged else ""
    )


def kept_cases(result: CheckResult) -> list[CaseResult]:
    """The cases of a check earned by errors carried forward only."""
    return [c for c in result.cases if case_state(c, result.carry_forward) == "kept"]


def _case_message(case: CaseResult, carry_forward: bool) -> str:
    if case.passed:
        return ""
    note = carried_note(case, carry_forward)
    return f"{note}: {case.message}" if note and case.message else note or case.message


def check_text(result: CheckResult) -> str:
    """Each case with its verdict and message, then the hint for every misconception found."""
    lines = []
    if result.error:
        lines.append(result.error)
    previous = None
    for case in result.cases:
        mark = case_state(case, result.carry_forward).upper()
        message = _case_message(case, result.carry_forward)
        if message and message == previous:
            message = "the same"
        else:
            previous = message or previous
        lines.append(f"{mark} {case.name}" + (f": {message}" if message else ""))
        lines += [f"     note: {note}" for note in case.notes]
    hints = hints_for(result.diagnosis)
    if hints:
        lines.append("")
        lines.append("What this looks like:")
        lines += [f"  {hint}" for hint in hints]
    return "\n".join(lines)


def _points(value: float) -> str:
    return for_people(value)  # 4.17, not 4.1667: display only, stored scores stay exact


def _score_line(result: SubmissionResult, late) -> tuple[str, str]:
    """(the score as shown, the late-policy sentence or ""): ``late`` is a late_policy.Late."""
    if late is None:
        return f"{_points(result.score)} / {_points(result.max_score)}", ""
    shown = f"{_points(late.score)} / {_points(result.max_score)}"
    return shown, late.sentence()


def _case_lines(result: CheckResult) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(state, case name, message, notes) with repeated messages shortened; the state is
    :func:`case_state`."""
    rows, previous = [], None
    for case in result.cases:
        message = _case_message(case, result.carry_forward)
        if message and message == previous:
            message = "the same as above"
        elif message:
            previous = message
        rows.append((case_state(case, result.carry_forward), case.name, message, tuple(case.notes)))
    return rows


def _needs_details(result: CheckResult) -> bool:
    return (
        not result.passed
        or any(case.notes or case.carried_forward for case in result.cases)
        or bool(result.error)
    )


def _status(result: CheckResult) -> str:
    """The check's result in words: passed, passed with cases kept by errors carried forward,
    or failed."""
    if not result.passed:
        return "failed"
    return f"passed ({KEPT})" if kept_cases(result) else "passed"


_MD_MARK = {"pass": "PASS", "kept": "KEPT", "fail": "**FAIL**"}


def _header(result: SubmissionResult, submitted_at: str) -> list[tuple[str, str]]:
    facts = [("Notebook", result.path.name), ("Assignment", result.assignment)]
    if result.student:
        facts.append(("Student", result.student))
    if submitted_at:
        facts.append(("Submitted", display_time(submitted_at)))
    facts.append(("Graded by", f"dnn-discussion-kit {result.kit_version or __version__}"))
    return facts


def display_time(iso: str) -> str:
    """ISO 8601 as people read it: ``2025-03-01 14:02:11 UTC``."""
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


# --------------------------------------------------------------------------- Markdown
def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _md_cell(text: str) -> str:
    """A trusted text (the kit's own titles and hints) on one line of a Markdown table or list."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


_MD_PUNCTUATION = re.compile(r"[!\"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~]")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_text(text: object) -> str:
    """Text that came from a submission, for one line of Markdown: it renders as exactly these
    characters. Every ASCII punctuation character is backslash-escaped (CommonMark allows it for
    all of them), so no emphasis, link, autolink, heading, list or table syntax survives; ``&``,
    ``<`` and ``>`` become entities, so no raw HTML does; line breaks become spaces."""
    escaped = _MD_PUNCTUATION.sub(lambda m: "\\" + m.group(0), str(text))
    escaped = re.sub(r"[&<>]", lambda m: _MD_ENTITIES[m.group(0)], escaped)
    return re.sub(r"[\r\n]+", " ", escaped)


def feedback_markdown(result: SubmissionResult, *, submitted_at: str = "", late=None) -> str:
    """The feedback file for one notebook, in Markdown (``late``: its late_policy.Late).

    Whatever came from the submission (its file name, student id, notes, case messages, type
    and exception names) is escaped with :func:`md_text` or fenced (:func:`_fence`), so it shows
    as text: no raw HTML, no links, no fake "Score" line.
    """
    out = [f"# Feedback: {md_text(result.assignment)}", ""]
    out += [f"- **{name}:** {md_text(value)}" for name, value in _header(result, submitted_at)]
    score, late_sentence = _score_line(result, late)
    out += ["", f"**Score: {score}** (autograded checks)", ""]
    if late_sentence:
        out += [_md_cell(late_sentence), ""]  # our own words and numbers, not the submission's
    if result.error:
        out += [
            "We could not run your notebook, so every check scores 0:",
            "",
            _fence(result.error),
            "",
        ]
    out += ["| Check | Points | Result |", "|---|---|---|"]
    for c in result.checks:
        hidden = " *(hidden)*" if c.check.hidden else ""
        status = _status(c) if c.passed else "**failed**"
        out.append(
            f"| `{c.check.id}`: {md_text(c.check.title)}{hidden} "
            f"| {_points(c.score)} / {_points(c.check.points)} | {status} |"
        )
    out.append("")
    detailed = [c for c in result.checks if _needs_details(c)]
    if detailed:
        out += ["## Details", ""]
    for c in detailed:
        out += [
            f"### `{c.check.id}`: {md_text(c.check.title)} ({_points(c.score)} / {_points(c.check.points)})",
            "",
        ]
        if c.check.hidden:
            out += [f"*{HIDDEN_NOTE}.*", ""]
        if c.error:
            out += [_fence(c.error), ""]
        for state, name, message, notes in _case_lines(c):
            line = f"- {_MD_MARK[state]} {md_text(name)}"
            out.append(line)
            if message:
                out += ["", "  " + _fence(message).replace("\n", "\n  "), ""]
            out += [f"  - note: {md_text(note)}" for note in notes]
        out.append("")
        for d in c.diagnosis:
            if d in MISCONCEPTIONS:
                m = MISCONCEPTIONS[d]
                out += [
                    f"> **What this looks like: {_md_cell(m.title)}** (`{d}`)  ",
                    f"> {_md_cell(m.hint)}",
                    "",
                ]
    if result.notes:
        out += ["## Notes", ""]
        out += [f"- {md_text(note)}" for note in result.notes]
        out.append("")
    out += [f"*{WRITTEN_NOTE}*", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.3rem} h2{font-size:1.25rem;margin-top:2rem} h3{font-size:1.05rem;margin:1.4rem 0 .4rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.5rem 0 1rem} dl.facts dt{font-weight:600}
.score{font-size:1.3rem;font-weight:700;margin:1rem 0}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
td.num,td.result{white-space:nowrap;font-variant-numeric:tabular-nums}
.pass{color:#0072B2;font-weight:600} .fail{color:#D55E00;font-weight:700}
.hidden{font-size:.85em;color:#555;border:1px solid #aaa;border-radius:.3rem;padding:0 .3rem;margin-left:.3rem}
pre{background:#f5f5f5;padding:.6rem .8rem;border-radius:.3rem;white-space:pre-wrap;word-break:break-word;margin:.3rem 0}
ul.cases{list-style:none;padding-left:0} ul.cases li{margin:.35rem 0}
.hint{border-left:.3rem solid #E69F00;background:#fff8e6;padding:.5rem .8rem;margin:.6rem 0}
.note{color:#444;font-size:.92em} .error{border-left:.3rem solid #D55E00;background:#fdeee6;padding:.5rem .8rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}
"""


def _h(text) -> str:
    return html.escape(str(text), quote=True)


def _mark(state: bool | str) -> str:
    """A check's (bool) or a case's (:func:`case_state`) verdict in HTML."""
    if state == "kept":
        return f'<span class="pass">✓ {KEPT}</span>'
    if state is True or state == "pass":
        return '<span class="pass">✓ passed</span>'
    return '<span class="fail">✗ failed</span>'


def feedback_html(result: SubmissionResult, *, submitted_at: str = "", late=None) -> str:
    """The feedback file for one notebook: a self-contained HTML page (no scripts, no links)."""
    title = f"Feedback: {result.assignment}" + (f" ({result.student})" if result.student else "")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Feedback: {_h(result.assignment)}</h1>",
        '<dl class="facts">',
    ]
    out += [
        f"<dt>{_h(name)}</dt><dd>{_h(value)}</dd>" for name, value in _header(result, submitted_at)
    ]
    score, late_sentence = _score_line(result, late)
    out += [
        "</dl>",
        f'<p class="score">Score: {_h(score)} <span class="note">(autograded checks)</span></p>',
    ]
    if late_sentence:
        out.append(f'<p class="note">{_h(late_sentence)}</p>')
    if result.error:
        out.append(
            '<div class="error"><p>We could not run your notebook, so every check scores 0:</p>'
            f"<pre>{_h(result.error)}</pre></div>"
        )
    out += ["<table><thead><tr><th>Check</th><th>Points</th><th>Result</th></tr></thead><tbody>"]
    for c in result.checks:
        hidden = '<span class="hidden">hidden</span>' if c.check.hidden else ""
        out.append(
            f"<tr><td><code>{_h(c.check.id)}</code>: {_h(c.check.title)}{hidden}</td>"
            f'<td class="num">{_points(c.score)} / {_points(c.check.points)}</td><td class="result">{_mark(c.passed)}'
            + (f'<div class="note">{KEPT}</div>' if kept_cases(c) else "")
            + "</td></tr>"
        )
    out.append("</tbody></table>")
    detailed = [c for c in result.checks if _needs_details(c)]
    if detailed:
        out.append("<h2>Details</h2>")
    for c in detailed:
        out.append(
            f"<h3><code>{_h(c.check.id)}</code>: {_h(c.check.title)} "
            f"({_points(c.score)} / {_points(c.check.points)})</h3>"
        )
        if c.check.hidden:
            out.append(f'<p class="note">{_h(HIDDEN_NOTE)}.</p>')
        if c.error:
            out.append(f"<pre>{_h(c.error)}</pre>")
        out.append('<ul class="cases">')
        for state, name, message, notes in _case_lines(c):
            item = f"<li>{_mark(state)} {_h(name)}"
            if message:
                item += f"<pre>{_h(message)}</pre>"
            item += "".join(f'<div class="note">note: {_h(note)}</div>' for note in notes)
            out.append(item + "</li>")
        out.append("</ul>")
        for d in c.diagnosis:
            if d in MISCONCEPTIONS:
                m = MISCONCEPTIONS[d]
                out.append(
                    f'<div class="hint"><strong>What this looks like: {_h(m.title)}</strong> '
                    f"<code>{_h(d)}</code><br>{_h(m.hint)}</div>"
                )
    if result.notes:
        out.append("<h2>Notes</h2><ul>")
        out += [f"<li>{_h(note)}</li>" for note in result.notes]
        out.append("</ul>")
    out.append(f'<p class="note">{_h(WRITTEN_NOTE)}</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
