"""A grading run SIGKILLed at several points and re-run ends with exactly the rows and summary.json
of an uninterrupted run: nothing duplicated, nothing lost, no grader left running."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from crucible.sandbox import bwrap_path
from crucible.tasks.humaneval import load_problems

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

BURN = "    import time\n    while time.process_time() < 0.05:\n        pass\n"  # each sample takes a while


def samples(path: Path) -> int:
    rows = []
    for i, p in enumerate(list(load_problems().values())[:20]):
        good = BURN + p["canonical_solution"]
        other = BURN + (p["canonical_solution"] + "\n# also right\n" if i % 3 == 0 else "    return None\n")
        rows += [{"task_id": p["task_id"], "completion": good},
                 {"task_id": p["task_id"], "completion": other},  # tasks score 2/3 or 3/3
                 {"task_id": p["task_id"], "completion": good}]  # a duplicate: executed once
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def eval_cmd(sample_file: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "crucible", "eval", "humaneval", "--samples", str(sample_file),
            "--out", str(out), "--no-progress", "--k", "1,2", "--workers", "1"]  # one worker: the same row order every time (see docs/grading.md)


def rows_in(out: Path) -> int:
    try:
        return (out / "results.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def judges_of(pid: int) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if b"crucible.grade.humaneval.judge" in cmd and f'"parent": {pid}'.encode() in cmd:
            found.append(int(p))
    return found


def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    sample_file = tmp_path / "samples.jsonl"
    n = samples(sample_file)
    whole = tmp_path / "whole"
    subprocess.run(eval_cmd(sample_file, whole), check=True, capture_output=True)

    resumed = tmp_path / "resumed"
    for kill_at in (5, 20, 40):
        proc = subprocess.Popen(eval_cmd(sample_file, resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while rows_in(resumed) < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for _ in range(100):  # its judges (and their sandboxes) die with it
            if not judges_of(proc.pid):
                break
            time.sleep(0.05)
        assert judges_of(proc.pid) == []
        assert rows_in(resumed) < n
    subprocess.run(eval_cmd(sample_file, resumed), check=True, capture_output=True)

    from crucible.grade.humaneval.pool import BASE_PREFIX
    assert not list(Path(tempfile.gettempdir()).glob(f"{BASE_PREFIX}{proc.pid}-*"))  # swept by the last run
    rows = [json.loads(l) for l in (resumed / "results.jsonl").read_text().splitlines()]
    keys = Counter((r["task_id"], r["sample_index"]) for r in rows)
    assert len(rows) == n and set(keys.values()) == {1}
    assert sum(r["executed"] for r in rows) == 40  # 20 tasks x 2 distinct programs, each run once
    assert json.loads((resumed / "summary.json").read_text()) == json.loads((whole / "summary.json").read_text())
