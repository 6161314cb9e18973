"""SWE-style task instances on disk, in SWE-bench's field names.

An INSTANCES directory holds `instances.jsonl` (one instance a line) and `repos/<repo>.git`
(`crucible.swe.gitrepo`). An instance has SWE-bench's fields

    instance_id, repo, base_commit, patch (the gold fix), test_patch ("" here: the tests are in
    the repo already), FAIL_TO_PASS, PASS_TO_PASS (lists of test ids), problem_statement

and crucible's own: test_cmd (a bash line run at the repo root), log_parser ("unittest" or
"pytest", `crucible.swe.testlog`), test_files (restored before grading), mutation (kind, file,
function, line of the injected bug) and difficulty (diff_lines, n_fail_to_pass).

`build.log.jsonl` beside them records every candidate tried (kept or why not), so a build resumes.
Files are read and written through `crucible.io` (torn last lines, fsynced appends, atomic replaces).
Not covered: SWE-bench's version/environment_setup_commit fields (one environment here: the
sandbox's), and reading SWE-bench's own instances (they need their Docker images).
"""

from __future__ import annotations

from pathlib import Path

from crucible import io
from crucible.io import JsonlError

INSTANCES = "instances.jsonl"
BUILD_LOG = "build.log.jsonl"
REQUIRED = ("instance_id", "repo", "base_commit", "patch", "FAIL_TO_PASS", "PASS_TO_PASS",
            "problem_statement", "test_cmd", "log_parser", "test_files")


class InstanceError(ValueError):
    """A bad instances file or directory; the message names the file and line."""


def repo_dir(root: Path, repo: str) -> Path:
    return Path(root) / "repos" / f"{repo}.git"


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a results file this room appends to (none if it is missing; a torn last line is cut)."""
    return [row for _, row in io.read_jsonl(path, repair=True)] if Path(path).exists() else []


def append_jsonl(path: Path, row: dict) -> None:
    with io.appending(path) as writer:
        writer.write(row)


def load(root: Path) -> list[dict]:
    """The instances of an INSTANCES directory, checked field by field."""
    root = Path(root)
    path = root / INSTANCES
    if not path.is_file():
        raise InstanceError(f"{root}: not an instances directory (no {INSTANCES}; make one with crucible swe build)")
    out, seen = [], set()
    for i, row in _numbered(path):
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
    for i, row in _numbered(path):
        if "instance_id" not in row:
            raise InstanceError(f"{path}:{i}: expected an object with instance_id, model_name_or_path, model_patch")
        if row["instance_id"] not in known:
            raise InstanceError(f"{path}:{i}: unknown instance_id {row['instance_id']!r}")
        if row["instance_id"] in out:
            raise InstanceError(f"{path}:{i}: a second prediction for {row['instance_id']!r}")
        if not isinstance(row.get("model_patch"), (str, type(None))):
            raise InstanceError(f"{path}:{i}: model_patch must be a string (a diff) or null")
        out[row["instance_id"]] = row
    return out


def _numbered(path: Path) -> list[tuple[int, dict]]:
    try:
        return io.read_jsonl(path)
    except JsonlError as e:
        raise InstanceError(str(e)) from None
