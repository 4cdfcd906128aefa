"""The class report: one self-contained HTML page that shows an instructor what to re-teach.

Per notebook: the score histogram, the pass rate of every check (lowest first) and how many
students hit each misconception (most common first), with its title and the hint students got.
Missing submissions (known students with no notebook) and untouched notebooks (not attempted:
every function still the stub) are counted apart: pass rates and misconceptions describe only
the notebooks students worked on. Everything is aggregated: no student names, file names or per-student rows unless the instructor
asks for them (``list_students=True``). Plots are PNG images embedded as data, drawn with
matplotlib's Agg renderer in the Okabe–Ito colours (hidden checks are also hatched, so the page
reads in greyscale too).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from grader import __version__
from grader.checks import MISCONCEPTIONS, checks_for
from grader.grading import SubmissionResult
from grader.report.attendance import not_attempted
from grader.report.display import for_people
from grader.report.feedback import KEPT, kept_cases
from grader.toolkit.plots import OKABE_ITO


@dataclass
class CheckStats:
    id: str
    title: str
    hidden: bool
    points: float
    passed: int = 0
    total: int = 0
    students: list[str] = field(default_factory=list)  # who failed it (shown only on request)
    kept: int = 0  # submissions that earned cases only by errors carried forward
    charged_in: list[str] = field(default_factory=list)  # the checks that charged those mistakes

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass
class MisconceptionStats:
    id: str
    count: int
    checks: list[str]
    students: list[str]


@dataclass
class NotebookStats:
    assignment: str
    scores: list[float]
    max_score: float
    gradable: int
    ungradable: Counter
    ungradable_students: list[str]
    checks: list[CheckStats]
    misconceptions: list[MisconceptionStats]
    not_attempted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _who(result: SubmissionResult, index: int) -> str:
    return result.student or result.path.stem or f"submission {index + 1}"


def _scrub(reason: str, result: SubmissionResult) -> str:
    """A reason without anything that could name the student (file name, folder, line numbers)."""
    text = reason.splitlines()[0] if reason else "unknown reason"
    for word, placeholder in (
        (result.path.name, "<notebook>"),
        (result.path.stem, "<notebook>"),
        (result.student, "<student>"),
    ):
        if word:
            text = text.replace(word, placeholder)
    text = re.sub(r"line \d+, column \d+", "line …, column …", text)
    return text[:200]


def aggregate(
    results: list[SubmissionResult], missing: dict[str, list[str]] | None = None
) -> list[NotebookStats]:
    """Statistics per assignment, from results with the course's points applied.

    ``missing`` lists, per assignment, the known students who handed nothing in.
    """
    missing = missing or {}
    by_assignment: dict[str, list[tuple[int, SubmissionResult]]] = defaultdict(list)
    for i, result in enumerate(results):
        by_assignment[result.assignment].append((i, result))
    stats = []
    for assignment in sorted(by_assignment):
        group = by_assignment[assignment]
        checks: dict[str, CheckStats] = {}
        for check in checks_for(assignment):
            checks[check.id] = CheckStats(check.id, check.title, check.hidden, check.points)
        hits: dict[str, set[str]] = defaultdict(set)
        where: dict[str, list[str]] = defaultdict(list)
        ungradable: Counter = Counter()
        ungradable_students = []
        untouched = []
        max_score = 0.0
        for i, result in group:
            who = _who(result, i)
            max_score = max(max_score, result.max_score)
            if result.error:
                ungradable[_scrub(result.error, result)] += 1
                ungradable_students.append(who)
            if not_attempted(result):
                untouched.append(who)
                continue  # counted apart: its stubs are not wrong answers
            for c in result.checks:
                stat = checks.setdefault(
                    c.check.id,
                    CheckStats(c.check.id, c.check.title, c.check.hidden, c.check.points),
                )
                stat.points = c.check.points
                stat.total += 1
                stat.passed += c.passed
                kept = kept_cases(c)
                stat.kept += bool(kept)
                for case in kept:
                    if case.charged_in and case.charged_in not in stat.charged_in:
                        stat.charged_in.append(case.charged_in)
                if not c.passed:
                    stat.students.append(who)
                for d in c.diagnosis:
                    hits[d].add(who)
                    if c.check.id not in where[d]:
                        where[d].append(c.check.id)
        misconceptions = sorted(
            (MisconceptionStats(d, len(who), where[d], sorted(who)) for d, who in hits.items()),
            key=lambda m: (-m.count, m.id),
        )
        stats.append(
            NotebookStats(
                assignment,
                [r.score for _, r in group],
                max_score,
                sum(1 for _, r in group if not r.error) - len(untouched),
                ungradable,
                sorted(ungradable_students),
                sorted((c for c in checks.values() if c.total), key=lambda c: (c.rate, c.id)),
                misconceptions,
                sorted(untouched),
                sorted(missing.get(assignment, [])),
            )
        )
    return stats


# --------------------------------------------------------------------------- plots
def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg renders the PNG

    figure = Figure(figsize=(width, height))
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def histogram_png(scores: list[float], max_score: float) -> str:
    """Scores rounded down to whole points (half points when the notebook is worth at most 5)."""
    step = 0.5 if max_score <= 5 else 1.0
    top = max(max_score, max(scores, default=0.0))
    edges = np.arange(0.0, top + step / 2, step)
    counts = np.zeros(len(edges), dtype=int)
    for s in scores:
        counts[min(int(np.floor(s / step + 1e-9)), len(edges) - 1)] += 1
    figure, axes = _figure(6.4, 2.8)
    axes.bar(
        edges, counts, width=step * 0.85, color=OKABE_ITO["blue"], edgecolor="black", linewidth=0.6
    )
    for x, n in zip(edges, counts, strict=True):
        if n:
            axes.annotate(str(n), (x, n), ha="center", va="bottom", fontsize=8)
    if len(edges) <= 25:
        axes.set_xticks(edges, [f"{e:g}" for e in edges], fontsize=8)
    axes.set_xlabel(
        f"score, rounded down to {'half ' if step < 1 else 'whole '}points (out of {max_score:g})"
    )
    axes.set_ylabel("submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(0, max(counts.max(initial=0), 1) * 1.18)
    return _png(figure)


def pass_rate_png(checks: list[CheckStats]) -> str:
    figure, axes = _figure(6.4, 0.42 * len(checks) + 0.9)
    names = [c.id for c in checks][::-1]
    rates = [100 * c.rate for c in checks][::-1]
    hidden = [c.hidden for c in checks][::-1]
    colours = [OKABE_ITO["orange"] if h else OKABE_ITO["blue"] for h in hidden]
    bars = axes.barh(names, rates, color=colours, edgecolor="black", linewidth=0.6)
    for bar, h in zip(bars, hidden, strict=True):
        if h:
            bar.set_hatch("//")
    for y, c in enumerate(checks[::-1]):
        axes.annotate(
            f" {100 * c.rate:.0f}% ({c.passed}/{c.total})",
            (100 * c.rate, y),
            va="center",
            fontsize=8,
        )
    axes.set_xlim(0, 125)
    axes.set_xticks([0, 25, 50, 75, 100])
    axes.set_xlabel("submissions that pass (%)")
    from matplotlib.patches import Patch

    axes.legend(
        handles=[
            Patch(facecolor=OKABE_ITO["blue"], edgecolor="black", label="public check"),
            Patch(
                facecolor=OKABE_ITO["orange"], edgecolor="black", hatch="//", label="hidden check"
            ),
        ],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    return _png(figure)


def misconception_png(misconceptions: list[MisconceptionStats], students: int) -> str:
    shown = misconceptions[:15]
    figure, axes = _figure(6.4, 0.42 * len(shown) + 0.9)
    labels = [MISCONCEPTIONS[m.id].title if m.id in MISCONCEPTIONS else m.id for m in shown][::-1]
    counts = [m.count for m in shown][::-1]
    axes.barh(labels, counts, color=OKABE_ITO["vermillion"], edgecolor="black", linewidth=0.6)
    for y, n in enumerate(counts):
        axes.annotate(f" {n}", (n, y), va="center", fontsize=8)
    axes.set_xlabel(f"students (of {students} graded)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_xlim(0, max(counts) * 1.15 + 0.5)
    return _png(figure)


# --------------------------------------------------------------------------- the page
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.7rem;margin-bottom:.2rem} h2{font-size:1.35rem;margin-top:2.5rem;border-bottom:2px solid #0072B2;padding-bottom:.2rem} h3{font-size:1.1rem;margin-top:1.6rem}
.meta{color:#555} table{border-collapse:collapse;width:100%;margin:.5rem 0} th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.summary{display:flex;gap:1.5rem;flex-wrap:wrap;margin:.8rem 0} .summary div{background:#f2f7fb;border-radius:.4rem;padding:.5rem .9rem}
.summary b{display:block;font-size:1.3rem} .reteach{border-left:.3rem solid #E69F00;background:#fff8e6;padding:.6rem 1rem}
img{max-width:100%;height:auto} code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em} .hint{color:#333}
.names{font-size:.9em;color:#444} .tag{font-size:.8em;border:1px solid #999;border-radius:.3rem;padding:0 .3rem}
"""


def _h(text) -> str:
    return html.escape(str(text), quote=True)


def _img(data: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{_h(alt)}">'


def class_report_html(
    results: list[SubmissionResult],
    *,
    list_students: bool = False,
    title: str = "Class report",
    generated: str | None = None,
    missing: dict[str, list[str]] | None = None,
) -> str:
    """The report page; ``results`` should carry the course's points (see ``apply_points``).

    ``missing``: per assignment, the known students with no notebook (see ``attendance``).
    """
    generated = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    stats = aggregate(results, missing)
    students = {r.student for r in results if r.student}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_h(title)}</h1>",
        f'<p class="meta">{len(results)} submitted notebooks'
        + (f" from {len(students)} students" if students else "")
        + f" · generated {_h(generated)} · dnn-discussion-kit {__version__}"
        + (
            " · <strong>lists student names</strong>"
            if list_students
            else " · aggregated, no student identifiers"
        )
        + "</p>",
    ]
    if not results:
        out.append("<p>No submissions.</p></body></html>")
        return "\n".join(out) + "\n"
    out.append('<div class="reteach"><strong>What to re-teach first</strong><ul>')
    for s in stats:
        top = s.misconceptions[:3]
        weak = [c for c in s.checks if c.rate < 1][:3]
        for m in top:
            name = MISCONCEPTIONS[m.id].title if m.id in MISCONCEPTIONS else m.id
            out.append(
                f"<li><code>{_h(s.assignment)}</code>: {_h(name)} — {m.count} of {s.gradable} students</li>"
            )
        if not top:
            for c in weak:
                out.append(
                    f"<li><code>{_h(s.assignment)}</code>: {_h(c.title)} — {100 * c.rate:.0f}% pass</li>"
                )
        if not top and not weak:
            out.append(f"<li><code>{_h(s.assignment)}</code>: every check passed by everyone</li>")
    out.append("</ul></div>")
    for s in stats:
        out += _notebook_section(s, list_students)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _notebook_section(s: NotebookStats, list_students: bool) -> list[str]:
    scores = np.asarray(s.scores, dtype=float)
    full = int(np.sum(np.isclose(scores, s.max_score))) if s.max_score else 0
    out = [
        f"<h2>{_h(s.assignment)}</h2>",
        '<div class="summary">',
        f"<div><b>{len(scores)}</b>submissions</div>",
        f"<div><b>{np.mean(scores):.1f} / {for_people(s.max_score)}</b>mean score</div>",
        f"<div><b>{np.median(scores):.1f}</b>median</div>",
        f"<div><b>{full}</b>full marks</div>",
        f"<div><b>{sum(s.ungradable.values())}</b>could not be run</div>",
        f"<div><b>{len(s.not_attempted)}</b>not attempted</div>",
        f"<div><b>{len(s.missing)}</b>missing</div>",
        "</div>",
        *_attendance_lines(s, list_students),
        "<h3>Scores</h3>",
        _img(histogram_png(s.scores, s.max_score), f"histogram of the scores in {s.assignment}"),
        "<h3>Pass rate per check (lowest first)</h3>",
        _img(pass_rate_png(s.checks), f"pass rate of each check in {s.assignment}"),
        "<table><thead><tr><th>check</th><th>what it tests</th><th class='num'>points</th>"
        "<th class='num'>pass</th></tr></thead><tbody>",
    ]
    for c in s.checks:
        tag = ' <span class="tag">hidden</span>' if c.hidden else ""
        out.append(
            f"<tr><td><code>{_h(c.id)}</code>{tag}</td><td>{_h(c.title)}"
            + (
                f'<div class="names">failed: {_h(", ".join(c.students))}</div>'
                if list_students and c.students
                else ""
            )
            + (
                f'<div class="names">{c.kept} of {c.total} {KEPT}'
                + (f" (charged in {_h(', '.join(c.charged_in))})" if c.charged_in else "")
                + "</div>"
                if c.kept
                else ""
            )
            + f"</td><td class='num'>{for_people(c.points)}</td><td class='num'>{100 * c.rate:.0f}% ({c.passed}/{c.total})</td></tr>"
        )
    out.append("</tbody></table>")
    out.append("<h3>Misconceptions (most common first)</h3>")
    if s.misconceptions:
        out.append(
            _img(
                misconception_png(s.misconceptions, s.gradable),
                f"misconceptions found in {s.assignment}",
            )
        )
        out.append(
            "<table><thead><tr><th class='num'>students</th><th>misconception</th>"
            "<th>the hint students were given</th><th>seen in</th></tr></thead><tbody>"
        )
        for m in s.misconceptions:
            known = MISCONCEPTIONS.get(m.id)
            share = f"{m.count} ({100 * m.count / s.gradable:.0f}%)" if s.gradable else str(m.count)
            out.append(
                f"<tr><td class='num'>{share}</td><td><strong>{_h(known.title if known else m.id)}</strong>"
                f"<br><code>{_h(m.id)}</code>"
                + (f'<div class="names">{_h(", ".join(m.students))}</div>' if list_students else "")
                + f"</td><td class='hint'>{_h(known.hint if known else '')}</td>"
                f"<td>{', '.join(f'<code>{_h(c)}</code>' for c in m.checks)}</td></tr>"
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>No catalogued misconception was found.</p>")
    if s.ungradable:
        out.append("<h3>Notebooks that could not be run</h3><table><tbody>")
        for reason, n in s.ungradable.most_common():
            out.append(f"<tr><td class='num'>{n}</td><td>{_h(reason)}</td></tr>")
        out.append("</tbody></table>")
        if list_students:
            out.append(f'<p class="names">{_h(", ".join(s.ungradable_students))}</p>')
    return out


def _attendance_lines(s: NotebookStats, list_students: bool) -> list[str]:
    """Missing and not-attempted notebooks, apart from the wrong answers (names on request)."""
    if not s.missing and not s.not_attempted:
        return []
    out = ["<h3>Missing and not attempted</h3><ul>"]
    if s.missing:
        out.append(
            f"<li>{len(s.missing)} known student(s) handed in no notebook"
            + (f': <span class="names">{_h(", ".join(s.missing))}</span>' if list_students else "")
            + "</li>"
        )
    if s.not_attempted:
        out.append(
            f"<li>{len(s.not_attempted)} notebook(s) were handed in untouched (every function "
            "still the stub); they are left out of the pass rates and misconceptions below"
            + (
                f': <span class="names">{_h(", ".join(s.not_attempted))}</span>'
                if list_students
                else ""
            )
            + "</li>"
        )
    out.append("</ul>")
    return out
