"""SWE-style task instances on disk, in SWE-bench's field names.

An INSTANCES directory holds `instances.jsonl` (one instance a line) and `repos/<repo>.git`
(`crucible.swe.gitrepo`). An instance has SWE-bench's fields

    instance_id, repo, base_commit, patch (the gold fix), test_patch ("" here: the tests are in
    the repo already), FAIL_TO_PASS, PASS_TO_PASS (lists of test ids), problem_statement

and crucible's own: test_cmd (a bash line run at the repo root), log_parser ("unittest" or
"pytest", `crucible.swe.testlog`), test_files (restored before grading), mutation (kind, file,
function, line of the injected bug) and difficulty (diff_lines, n_fail_to_pass).

`build.log.jsonl` beside them records every candidate tried (kept or why not), so a build resumes.
The JSONL and atomic-write helpers here serve the whole room (crucible.io replaces them once merged).
Not covered: SWE-bench's version/environment_setup_commit fields (one environment here: the
sandbox's), and reading SWE-bench's own instances (they need their Docker images).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

INSTANCES = "instances.jsonl"
BUILD_LOG = "build.log.jsonl"
REQUIRED = ("instance_id", "repo", "base_commit", "patch", "FAIL_TO_PASS", "PASS_TO_PASS",
            "problem_statement", "test_cmd", "log_parser", "test_files")


class InstanceError(ValueError):
    """A bad instances file or directory; the message names the file and line."""


def repo_dir(root: Path, repo: str) -> Path:
    return Path(root) / "repos" / f"{repo}.git"


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a torn last line (a killed writer) is ignored."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines):
                break
            raise InstanceError(f"{path}:{i}: not valid JSON")
    return rows


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(root: Path) -> list[dict]:
    """The instances of an INSTANCES directory, checked field by field."""
    root = Path(root)
    path = root / INSTANCES
    if not path.is_file():
        raise InstanceError(f"{root}: not an instances directory (no {INSTANCES}; make one with crucible swe build)")
    out, seen = [], set()
    for i, row in enumerate(read_jsonl(path), 1):
        if not isinstance(row, dict):
            raise InstanceError(f"{path}:{i}: expected a JSON object")
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise InstanceError(f"{path}:{i}: missing {', '.join(missing)}")
        if row["instance_id"] in seen:
            raise InstanceError(f"{path}:{i}: duplicate instance_id {row['instance_id']!r}")
        if not repo_dir(root, row["repo"]).is_dir():
            raise InstanceError(f"{path}:{i}: repository {repo_dir(root, row['repo'])} is missing")
        seen.add(row["instance_id"])
        out.append(row)
    if not out:
        raise InstanceError(f"{path}: no instances")
    return out


def load_predictions(path: Path, instance_ids) -> dict[str, dict]:
    """SWE-bench predictions JSONL ({instance_id, model_name_or_path, model_patch}) by instance_id."""
    path = Path(path)
    if not path.is_file():
        raise InstanceError(f"{path}: no such predictions file")
    known, out = set(instance_ids), {}
    for i, row in enumerate(read_jsonl(path), 1):
        if not isinstance(row, dict) or "instance_id" not in row:
            raise InstanceError(f"{path}:{i}: expected an object with instance_id, model_name_or_path, model_patch")
        if row["instance_id"] not in known:
            raise InstanceError(f"{path}:{i}: unknown instance_id {row['instance_id']!r}")
        if row["instance_id"] in out:
            raise InstanceError(f"{path}:{i}: a second prediction for {row['instance_id']!r}")
        if not isinstance(row.get("model_patch"), (str, type(None))):
            raise InstanceError(f"{path}:{i}: model_patch must be a string (a diff) or null")
        out[row["instance_id"]] = row
    return out
