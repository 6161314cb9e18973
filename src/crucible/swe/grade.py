"""Grade patches against instances (`crucible swe grade`): SWE-bench's harness, without Docker.

For one prediction: a fresh copy of the instance's repo at base_commit, the patch applied and the
test files restored (`crucible.swe.workspace`), the test command run in the sandbox, its output
parsed per test (`crucible.swe.testlog`). Resolved means every FAIL_TO_PASS test now passes and
every PASS_TO_PASS test still does; a test missing from the output has not passed. report.json
keeps SWE-bench's fields (patch_is_None, patch_exists, patch_successfully_applied, resolved,
tests_status with FAIL_TO_PASS, PASS_TO_PASS, FAIL_TO_FAIL, PASS_TO_FAIL) plus crucible's
(apply_method, removed_new_files, test_status, error).

Infrastructure failures — the sandbox could not run, or the test runner printed no test at all
though nothing timed out — are `error` rows, listed apart in the run report, never unresolved.
The resolved rate is over all instances given (an error or a missing prediction does not count as
resolved: leaving out what failed would reward breaking the harness), with a bootstrap interval.

Files in OUT: results.jsonl (one row per graded instance, appended as each finishes: a re-run
grades only what is missing), logs/<instance_id>/{report.json, patch.diff, test_output.txt}, and
report.json, SWE-bench's run report (id lists by outcome) with the interval.

Not covered: SWE-bench's log parsers for specific repositories, test_patch (empty here), and
evaluating SWE-bench's own instances (they need their Docker environments).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crucible.metrics import bootstrap_ci
from crucible.sandbox import Limits
from crucible.swe.instances import append_jsonl, read_jsonl
from crucible.swe.testlog import PASSING, parse
from crucible.swe.workspace import Workspace

RESULTS, REPORT, LOGS = "results.jsonl", "report.json", "logs"
TEST_LIMITS = Limits(timeout_s=60.0, wall_s=180.0, memory_mb=2048)
APPLY_LIMITS = Limits(timeout_s=20.0, wall_s=60.0)
NEVER_RAN = ("ok", "runtime_error")  # ended by itself yet printed no test: the runner never ran


def tests_status(instance: dict, statuses: dict[str, str]) -> dict:
    def split(tests):
        return {"success": [t for t in tests if statuses.get(t) in PASSING],
                "failure": [t for t in tests if statuses.get(t) not in PASSING]}
    return {"FAIL_TO_PASS": split(instance["FAIL_TO_PASS"]), "PASS_TO_PASS": split(instance["PASS_TO_PASS"]),
            "FAIL_TO_FAIL": split([]), "PASS_TO_FAIL": split([])}


def grade_patch(root: Path, instance: dict, patch: str | None, *, limits: Limits = TEST_LIMITS,
                unsafe: bool = False) -> tuple[dict, str]:
    """(the instance's report, the test output) for one patch."""
    report = {"patch_is_None": patch is None, "patch_exists": bool(patch and patch.strip()),
              "patch_successfully_applied": False, "resolved": False, "error": None}
    if not report["patch_exists"]:
        return report, ""
    with Workspace(root, instance, unsafe=unsafe) as ws:
        method, added, applied = ws.apply(patch if patch.endswith("\n") else patch + "\n", APPLY_LIMITS)
        if applied.status == "sandbox_error":
            return {**report, "error": f"sandbox error while applying: {applied.detail}"}, ""
        if method is None:
            return {**report, "apply_log": (applied.stdout + applied.stderr)[-2000:]}, ""
        report.update(patch_successfully_applied=True, apply_method=method, removed_new_files=added)
        outcome = ws.test(limits, remove=added)
    log = outcome.stdout + "\n" + outcome.stderr
    statuses = parse(log, instance["log_parser"])
    report["test_status"] = outcome.status
    if outcome.status == "sandbox_error":
        return {**report, "error": f"sandbox error while testing: {outcome.detail}"}, log
    if not statuses and outcome.status in NEVER_RAN:
        return {**report, "error": f"the test runner ran no test ({outcome.detail or 'exit 0'})"}, log
    report["tests_status"] = tests_status(instance, statuses)
    report["resolved"] = all(not report["tests_status"][k]["failure"] for k in ("FAIL_TO_PASS", "PASS_TO_PASS"))
    return report, log


def _write_logs(out: Path, iid: str, report: dict, patch: str | None, log: str) -> None:
    d = out / LOGS / iid
    d.mkdir(parents=True, exist_ok=True)
    (d / "patch.diff").write_text(patch or "")
    (d / "test_output.txt").write_text(log)
    (d / "report.json").write_text(json.dumps({iid: report}, indent=2) + "\n")


def grade_predictions(root: Path, instances: list[dict], predictions: dict[str, dict], out: Path, *,
                      workers: int = 1, limits: Limits = TEST_LIMITS, unsafe: bool = False,
                      progress: bool = True, fan=None) -> dict:
    """Grade every instance's prediction into OUT (resuming), write report.json, return it. `fan`:
    how the grading jobs run, `fan(fn, jobs, shared=...)` yielding (job index, result) as each finishes
    (crucible.scale.fanout.fan_out puts them on a Ray cluster); default: `workers` threads here."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = {r["instance_id"] for r in read_jsonl(out / RESULTS)}
    todo = [i for i in instances if i["instance_id"] in predictions and i["instance_id"] not in done]
    jobs = [(i, predictions[i["instance_id"]].get("model_patch")) for i in todo]
    graded = (fan or local_fan(workers))(grade_job, jobs, shared=(root, limits, unsafe))
    for index, (report, log) in tqdm(graded, total=len(todo), desc="swe grade", unit="instance",
                                     disable=not progress):
        iid = todo[index]["instance_id"]
        pred = predictions[iid]
        _write_logs(out, iid, report, pred.get("model_patch"), log)  # the driver alone writes
        append_result(out, iid, pred.get("model_name_or_path", ""), report)
    summary = run_report(instances, read_jsonl(out / RESULTS))
    (out / REPORT).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def grade_job(root: Path, limits: Limits, unsafe: bool, job: tuple[dict, str | None]) -> tuple[dict, str]:
    """One (instance, patch) graded: pure (a fresh workspace, no files kept), so it may run anywhere."""
    instance, patch = job
    return grade_patch(root, instance, patch, limits=limits, unsafe=unsafe)


def append_result(out: Path, iid: str, model: str, report: dict) -> None:
    """One results.jsonl row from an instance's report."""
    append_jsonl(out / RESULTS, {"instance_id": iid, "model_name_or_path": model,
                                 **{k: report[k] for k in ("resolved", "error", "patch_exists",
                                                           "patch_successfully_applied")}})


def local_fan(workers: int):
    """A `fan` over `workers` threads on this machine, in the jobs' order."""
    def fan(fn, jobs, shared=()):
        with ThreadPoolExecutor(max(1, workers)) as pool:
            yield from enumerate(pool.map(lambda job: fn(*shared, job), jobs))
    return fan


def run_report(instances: list[dict], results: list[dict]) -> dict:
    """SWE-bench's run report (counts and id lists) plus the resolved rate with its interval."""
    by_id = {r["instance_id"]: r for r in results}
    ids = [i["instance_id"] for i in instances]
    graded = [by_id[i] for i in ids if i in by_id]
    lists = {
        "submitted_ids": [r["instance_id"] for r in graded],
        "completed_ids": [r["instance_id"] for r in graded if not r["error"] and r["patch_exists"]],
        "resolved_ids": [r["instance_id"] for r in graded if r["resolved"]],
        "unresolved_ids": [r["instance_id"] for r in graded if not r["resolved"] and not r["error"]
                           and r["patch_exists"]],
        "empty_patch_ids": [r["instance_id"] for r in graded if not r["patch_exists"] and not r["error"]],
        "not_applied_ids": [r["instance_id"] for r in graded if r["patch_exists"]
                            and not r["patch_successfully_applied"] and not r["error"]],
        "error_ids": [r["instance_id"] for r in graded if r["error"]],
        "missing_ids": [i for i in ids if i not in by_id],
    }
    per_instance = [1.0 if by_id.get(i, {}).get("resolved") else 0.0 for i in ids]
    lo, hi = bootstrap_ci(per_instance)
    counts = {"total_instances": len(ids), **{k.replace("_ids", "_instances"): len(v) for k, v in lists.items()}}
    return {**counts, "resolved_rate": sum(per_instance) / len(ids) if ids else 0.0, "resolved_rate_ci": [lo, hi],
            **lists, "schema_version": 2}


def render_report(summary: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lo, hi = summary["resolved_rate_ci"]
    return (f"resolved {summary['resolved_instances']}/{summary['total_instances']} = "
            f"{pct(summary['resolved_rate'])}% (95% CI [{pct(lo)}, {pct(hi)}]); "
            f"unresolved {summary['unresolved_instances']}, empty patch {summary['empty_patch_instances']}, "
            f"patch did not apply {summary['not_applied_instances']}, errors {summary['error_instances']}, "
            f"missing {summary['missing_instances']}")
