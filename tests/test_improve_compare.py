"""`crucible compare`: p-values against exact arithmetic, the paired interval, order-freedom, refusals."""

from __future__ import annotations

import itertools
import json
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible.cli import main as cli
from crucible.improve.compare import TaskSetMismatch, compare_rows, mcnemar_exact, sign_flip_p


def rows(outcomes: dict[str, list[bool]], language: str = "python") -> list[dict]:
    return [{"task_id": t, "language": language, "sample_index": i, "status": "pass" if ok else "wrong_answer",
             "passed": ok} for t, samples in outcomes.items() for i, ok in enumerate(samples)]


def write_run(path, outcomes, language="python"):
    path.mkdir()
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(outcomes, language)))
    return str(path)


def flips_p(diffs: list[Fraction]) -> Fraction:
    """Exact, by counting: how many of the 2^m sign patterns reach each sum (a convolution over the
    differences), then the share whose |sum| is at least the observed |sum|."""
    ways = {Fraction(0): 1}
    for d in diffs:
        nxt: dict[Fraction, int] = {}
        for total, count in ways.items():
            for signed in (d, -d):
                nxt[total + signed] = nxt.get(total + signed, 0) + count
        ways = nxt
    observed = abs(sum(diffs))
    return Fraction(sum(c for total, c in ways.items() if abs(total) >= observed), 2 ** len(diffs))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.integers(0, 12))
def test_mcnemar_matches_counting_every_sign_pattern(a_only, b_only):
    diffs = [Fraction(-1)] * a_only + [Fraction(1)] * b_only
    assert mcnemar_exact(a_only, b_only) == pytest.approx(float(flips_p(diffs)), abs=1e-12)


def test_mcnemar_on_constructed_runs_via_the_command(tmp_path, capsys):
    # 20 tasks: 9 pass only in B, 1 only in A, 10 concordant -> p = 2 * (C(10,0) + C(10,1)) / 2^10
    a = {f"t{i}": [i in (0, 10, 11, 12, 13, 14)] for i in range(20)}
    b = {f"t{i}": [i in range(1, 15)] for i in range(20)}
    run_a, run_b = write_run(tmp_path / "a", a), write_run(tmp_path / "b", b)
    assert cli(["compare", run_a, run_b, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_tasks"] == 20
    assert result["test"] == "mcnemar_exact"
    assert result["discordant"] == {"a_only": 1, "b_only": 9}
    assert result["p_value"] == pytest.approx(22 / 1024, abs=1e-15)
    assert result["delta"] == pytest.approx(8 / 20)
    lo, hi = result["ci"]
    assert lo <= result["delta"] <= hi


def test_text_output_carries_intervals_and_the_test(tmp_path, capsys):
    run_a = write_run(tmp_path / "a", {"x": [False], "y": [True]})
    run_b = write_run(tmp_path / "b", {"x": [True], "y": [True]})
    assert cli(["compare", run_a, run_b]) == 0
    text = capsys.readouterr().out
    assert "Δ pass@1 (B − A): +50.0 points, 95% CI [" in text
    assert "McNemar exact: 1 tasks pass only in B, 0 only in A" in text
    assert "pass@1 50.0% [" in text


def test_sign_flip_exact_matches_brute_force_for_several_samples_per_task():
    rng = random.Random(3)
    a = {f"t{i}": [rng.random() < 0.4 for _ in range(4)] for i in range(12)}
    b = {f"t{i}": [rng.random() < 0.6 for _ in range(4)] for i in range(12)}
    result = compare_rows(rows(a), rows(b))
    diffs = [Fraction(sum(b[t]), 4) - Fraction(sum(a[t]), 4) for t in sorted(a)]
    assert result["test"] == "sign_flip_exact"
    assert result["p_value"] == pytest.approx(float(flips_p([d for d in diffs if d])), abs=1e-12)
    assert result["delta"] == pytest.approx(float(sum(diffs) / len(diffs)))


def test_sign_flip_monte_carlo_is_close_to_exact_beyond_the_enumeration_limit():
    diffs = [0.5, 0.25, -0.25, 0.75, 0.5, -0.5, 0.25, 0.25, 1.0, -0.25, 0.5, 0.25, 0.75, -0.75, 0.25, 0.5, 0.25]
    exact = float(flips_p([Fraction(d) for d in diffs]))
    p, method = sign_flip_p(diffs, resamples=20000, seed=1)
    assert method == "sign_flip_monte_carlo"
    assert p == pytest.approx(exact, abs=0.015)


def test_result_does_not_depend_on_row_order():
    rng = random.Random(0)
    a = rows({f"t{i}": [rng.random() < 0.3 for _ in range(3)] for i in range(30)})
    b = rows({f"t{i}": [rng.random() < 0.5 for _ in range(3)] for i in range(30)})
    shuffled_a, shuffled_b = a[:], b[:]
    rng.shuffle(shuffled_a)
    rng.shuffle(shuffled_b)
    assert compare_rows(a, b) == compare_rows(shuffled_a, shuffled_b)


def test_pairing_separates_runs_whose_own_intervals_overlap():
    # B solves what A solves plus 6 more of 40 tasks: each run's interval is wide, the paired one is not
    a = {f"t{i}": [i < 12] for i in range(40)}
    b = {f"t{i}": [i < 18] for i in range(40)}
    result = compare_rows(rows(a), rows(b))
    assert result["a"]["ci"][1] > result["b"]["ci"][0]
    assert result["ci"][0] > 0
    assert result["p_value"] == pytest.approx(2 / 2 ** 6)


def test_different_task_sets_are_refused_naming_the_difference(tmp_path, capsys):
    run_a = write_run(tmp_path / "a", {"x": [True], "y": [False]})
    run_b = write_run(tmp_path / "b", {"x": [True], "z": [False]})
    assert cli(["compare", run_a, run_b]) == 2
    err = capsys.readouterr().err
    assert "only in A: y (python)" in err
    assert "only in B: z (python)" in err


def test_same_ids_in_another_language_are_different_tasks():
    with pytest.raises(TaskSetMismatch, match="rust"):
        compare_rows(rows({"x": [True]}), rows({"x": [True]}, language="rust"))


def test_missing_results_directory_is_a_usage_error(tmp_path, capsys):
    run_a = write_run(tmp_path / "a", {"x": [True]})
    assert cli(["compare", run_a, str(tmp_path / "nope")]) == 2
    assert "no results here" in capsys.readouterr().err
