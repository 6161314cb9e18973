"""pass@k against exact integer arithmetic, the bootstrap interval, and the runner's summary rules."""

from __future__ import annotations

import json
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible.eval.summary import summarize
from crucible.grade.runner import load_results
from crucible.metrics import bootstrap_ci, pass_at_k, pass_at_k_table


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_exact_integer_arithmetic(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(float(exact(n, c, k)), abs=1e-12)


def test_large_n_stays_accurate():
    # C(2000, 1000) overflows floats; the product form does not need it
    assert pass_at_k(2000, 3, 1000) == pytest.approx(float(exact(2000, 3, 1000)), abs=1e-12)
    assert pass_at_k(5000, 1, 1) == pytest.approx(1 / 5000)


def test_edges_and_bad_input():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k failures: some draw of k must pass
    for n, c, k in [(5, 6, 1), (5, 1, 0), (5, 1, 6), (5, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_k_reported_only_when_every_task_has_n_at_least_k():
    table = pass_at_k_table({"a": (10, 3), "b": (4, 4)}, [1, 4, 5, 10])
    assert sorted(table) == [1, 4]
    assert table[1]["pass"] == pytest.approx((0.3 + 1.0) / 2)


def test_bootstrap_interval_contains_mean_and_shrinks_with_more_tasks():
    few = [1.0, 0.0] * 10
    many = [1.0, 0.0] * 500
    lo_f, hi_f = bootstrap_ci(few)
    lo_m, hi_m = bootstrap_ci(many)
    assert lo_f <= 0.5 <= hi_f and lo_m <= 0.5 <= hi_m
    assert (hi_m - lo_m) < (hi_f - lo_f) / 3
    assert bootstrap_ci([1.0] * 30) == (1.0, 1.0)
    assert bootstrap_ci(few, seed=1) == bootstrap_ci(few, seed=1)  # reproducible


def _rows(spec):
    return [{"task_id": t, "language": lang, "sample_index": i, "status": "pass" if ok else "wrong_answer",
             "passed": ok} for t, lang, i, ok in spec]


def test_summary_counts_and_languages():
    rows = _rows([("t1", "python", 0, True), ("t1", "python", 1, False), ("t2", "python", 0, False),
                  ("t2", "python", 1, False), ("t1", "rust", 0, True), ("t1", "rust", 1, True)])
    s = summarize("puzzles", rows, [1, 2, 10])
    assert s["n_samples"] == 6 and s["n_tasks"] == 2
    assert set(s["pass@k"]) == {"1", "2"}
    assert s["languages"]["python"]["pass@k"]["1"] == pytest.approx(0.25)
    assert s["languages"]["rust"]["pass@k"]["2"] == 1.0
    assert s["status_counts"] == {"pass": 3, "wrong_answer": 3}
    lo, hi = s["ci"]["1"]
    assert lo <= s["pass@k"]["1"] <= hi


def test_torn_last_line_is_dropped_and_file_stays_appendable(tmp_path):
    good = json.dumps(_rows([("t1", "python", 0, True)])[0]) + "\n"
    (tmp_path / "results.jsonl").write_text(good + '{"task_id": "t1", "langu')
    rows = load_results(tmp_path)
    assert len(rows) == 1
    assert (tmp_path / "results.jsonl").read_text() == good


def test_intervals_do_not_depend_on_row_order():
    import random

    spec = [(f"t{t}", lang, i, (t * 7 + i * 3) % 5 < 2) for t in range(30) for lang in ("python", "go")
            for i in range(4)]
    rows = _rows(spec)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert summarize("puzzles", rows, [1, 2, 4]) == summarize("puzzles", shuffled, [1, 2, 4])
