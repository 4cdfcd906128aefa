"""The reporting helpers: paired differences, Student-t intervals, replicates, FULL mode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grader.toolkit import describe_difference, full_mode, mean_se, paired_difference, replicates
from grader.toolkit.stats import t975


def test_mean_se_matches_the_definition():
    values = np.random.default_rng(0).normal(size=7)
    mean, se = mean_se(values)
    assert mean == pytest.approx(values.mean())
    assert se == pytest.approx(values.std(ddof=1) / math.sqrt(7))
    assert math.isnan(mean_se([1.0])[1])


def test_paired_difference_is_the_se_of_the_differences_not_of_each_setting():
    rng = np.random.default_rng(1)
    luck = rng.normal(0, 0.05, size=6)  # shared by both settings: cancels in the pairing
    a, b = 0.9 + luck + 0.01, 0.9 + luck + rng.normal(0, 0.001, size=6)
    d = paired_difference(a, b)
    assert d["se"] == pytest.approx(mean_se(a - b)[1])
    assert d["se"] < mean_se(a)[1] / 10
    assert d["resolved"] and d["wins"] == 6 and d["n"] == 6


def test_t_interval_is_used_and_two_repetitions_never_resolve():
    d = paired_difference([0.93, 0.92], [0.90, 0.91])
    assert not d["resolved"]
    assert "too few repetitions" in describe_difference(d)
    # |mean| = 3.5 se: beyond 2 standard errors but inside the t interval for n = 3 (4.30 se)
    diffs = np.array([1.0, 2.0, 3.0]) * 0.01
    d = paired_difference(diffs, np.zeros(3))
    assert d["mean"] / d["se"] < t975(3)
    assert not d["resolved"] and "within noise" in describe_difference(d)


def test_replicates_vary_split_and_seed():
    reps = replicates(3)
    assert len({split for split, _ in reps}) == 3 and len({seed for _, seed in reps}) == 3
    with pytest.raises(ValueError):
        replicates(0)


def test_full_mode_needs_full_1_and_never_under_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("DNN_KIT_QUICK", raising=False)
    monkeypatch.delenv("FULL", raising=False)
    assert not full_mode()
    monkeypatch.setenv("FULL", "1")
    assert full_mode()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert not full_mode()
