"""Attacks on the class's time: one student's notebooks idling just under every limit.

Before, each notebook was bounded (cells, cases, its total) but a student or a batch was not:
1,000 idle notebooks in one folder took about 13 hours. Expected figures here come from the
limits the test sets, never from a run.
"""

from __future__ import annotations

import dataclasses

from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    CORRECT_FORWARD,
    FULL,
    IDLE,
    IDLE_LIMITS,
    SLACK,
    idle_class,
    real_sandbox,
    submission,
)

from grader.grading import Target, grade_many
from grader.report.gradescope import results_json
from grader.store import Context, Store, grade_with_store


def test_one_student_with_many_idle_notebooks_gets_only_the_student_budget(tmp_path, reference):
    """The issue's attack, scaled down: mallory's idle notebooks stop after her budget, the
    others are graded in full, and every result states the limits it was graded under."""
    limits = dataclasses.replace(IDLE_LIMITS, student_seconds=5.0)
    targets = idle_class(tmp_path, 6)
    results = grade_many(targets, jobs=2, reference=reference, limits=limits, progress=False)
    by_student: dict[str, list] = {}
    for result in results:
        by_student.setdefault(result.student, []).append(result)
    assert [r.score for r in by_student["alice"] + by_student["bob"]] == [FULL, FULL]
    mallory = by_student["mallory"]
    refused = [r for r in mallory if r.error.startswith("not graded: this student's")]
    started = [r for r in mallory if r not in refused]
    # each started notebook reserved at least a second; the budget holds all of them
    assert 1 <= len(started) <= limits.student_seconds // 1
    assert sum(r.seconds for r in started) <= limits.student_seconds + SLACK * len(started)
    assert len(refused) >= 6 - len(started) > 0 and all(r.final for r in refused)
    # 13 cases of 0.9 s each never fit in 3 s: no idle notebook reaches full marks
    assert all(r.score < FULL and not r.grader_failure for r in mallory)
    assert all(r.score == 0 for r in refused)
    stated = dataclasses.asdict(limits)
    for result in results:
        assert {k: v for k, v in result.limits.items() if k != "total_seconds"} == {
            k: v for k, v in stated.items() if k != "total_seconds"
        }
        assert result.limits["total_seconds"] <= limits.total_seconds
        assert results_json(result)["extra_data"]["limits"] == result.limits


def test_a_spent_batch_budget_leaves_the_rest_for_the_next_run(tmp_path, reference):
    """The batch budget: no notebook starts once it is spent; those get a non-final result,
    are not stored, and the same command run again grades exactly them."""
    limits = dataclasses.replace(IDLE_LIMITS, batch_seconds=2.0)
    targets = idle_class(tmp_path, 4)
    store = Store(tmp_path / "store")
    context = Context(salt="a course salt", reference=reference, limits=limits)
    first = grade_with_store(targets, store=store, context=context, jobs=1, progress=False)
    unstarted = [g for g in first if not g.result.final]
    assert unstarted and len(unstarted) < len(targets)
    assert all(g.result.error.startswith("not graded yet: the batch used") for g in unstarted)
    assert len(store.files()) == len(targets) - len(unstarted)
    second = grade_with_store(targets, store=store, context=context, jobs=1, progress=False)
    again = {g.target.path for g in second if not g.from_store}
    assert again >= {g.target.path for g in unstarted}
    assert {g.target.path for g in second if g.from_store} == {
        g.target.path for g in first if g.result.final
    }


def test_variant_parallel_notebooks_of_one_student_share_one_budget(tmp_path, reference):
    """Variant: two workers grade mallory's notebooks at once; each reserves its time when it
    starts, so together they cannot take more than her budget."""
    limits = dataclasses.replace(IDLE_LIMITS, student_seconds=3.5)
    for i in range(4):
        path = submission(tmp_path, IDLE + f"# copy {i}\n", student="mallory")
        path.rename(path.with_name(f"copy{i}.ipynb"))
    targets = [Target(p, "mallory") for p in sorted(tmp_path.rglob("*.ipynb"))]
    results = grade_many(targets, jobs=2, reference=reference, limits=limits, progress=False)
    granted = [r.limits["total_seconds"] for r in results if not r.error]
    assert sum(granted) <= limits.student_seconds
    assert granted and granted[0] == limits.total_seconds


def test_a_students_notebooks_graded_at_once_never_refuse_each_other(tmp_path, reference):
    """Found at merge (the cluster tests compare with a local --jobs 2 run): when one notebook's
    limit reserved the whole student budget, the student's next notebook, started meanwhile, was
    refused for good although almost nothing had been used. Reserved time is not spent: it waits."""
    limits = dataclasses.replace(IDLE_LIMITS, total_seconds=10.0, student_seconds=6.0)
    targets = [
        Target(
            submission(tmp_path / f"n{i}", CORRECT_FORWARD + f"# {i}\n", student="ada"),
            student="ada",
            assignment="02_dropout",
        )
        for i in range(3)
    ]
    results = grade_many(targets, jobs=2, reference=reference, limits=limits, progress=False)
    assert [(r.score, r.error) for r in results] == [(FULL, "")] * 3
