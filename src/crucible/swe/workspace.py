"""A writable copy of an instance's repository and everything done to it, inside the sandbox.

The host only ever writes a fresh copy (`gitrepo.checkout` of the base commit, as a one-commit git
repo) and reads sandbox output. Whatever runs git on a tree a model has touched — applying its
patch, diffing the agent's working copy — runs in bubblewrap too: a patch can plant symlinks, and a
repository's config can name programs for git to run (core.fsmonitor, diff drivers).

Grading a patch (SWE-bench's order): `git apply`, then `git apply --3way`, then
`patch --batch --fuzz=5 -p1`. Then the test files are put back: each is removed from the copy and
its pristine version bind-mounted read-only at its path while the tests run, so a patch that edits,
deletes or replaces them (or code that rewrites them at run time) gains nothing. Files the patch
adds are removed before the tests run: an injected bug is fixed by editing existing code, and a new
file could hijack the runner, which imports from the repo root first (unittest.py, sitecustomize.py,
tests/__init__.py patching unittest).

Not covered: a patched module that forges the runner's output from inside the test process (it
runs in that process: no grader that runs the repository's own tests can rule that out).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

from crucible.sandbox import INSIDE, Limits, Outcome, run
from crucible.swe import gitrepo
from crucible.swe.instances import repo_dir

AGENT_ENV = {"PAGER": "cat", "MANPAGER": "cat", "LESS": "-R", "PIP_PROGRESS_BAR": "off", "TQDM_DISABLE": "1",
             "GIT_PAGER": "cat", "PYTHONDONTWRITEBYTECODE": "1"}
APPLY = """cat > /tmp/crucible.patch
if git apply --verbose /tmp/crucible.patch; then echo "@@applied git-apply"
elif git apply --verbose --3way /tmp/crucible.patch; then echo "@@applied git-apply-3way"
elif patch --batch --fuzz=5 -p1 -i /tmp/crucible.patch; then echo "@@applied patch-fuzz"
else exit 3; fi
echo "@@added"; git ls-files --others -z
"""
APPLY_MARK, ADDED_MARK = "@@applied ", "@@added\n"
SALVAGE = "git add -A >/dev/null 2>&1; git -c core.fsmonitor=false diff --cached --no-color --no-ext-diff"


class Workspace:
    """A temp dir holding one working copy; remove it with `close` (or use as a context manager)."""

    def __init__(self, root: Path, instance: dict, *, unsafe: bool = False):
        self.instance, self.unsafe = instance, unsafe
        self.dir = Path(tempfile.mkdtemp(prefix="crucible-swe-"))
        self.repo = self.dir / "repo"
        self.repo.mkdir()
        gitrepo.checkout(repo_dir(root, instance["repo"]), instance["base_commit"], self.repo, history=True)
        self.pristine = {p: gitrepo.show(repo_dir(root, instance["repo"]), instance["base_commit"], p)
                         for p in instance["test_files"]}
        os.chmod(self.dir, 0o755)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def bash(self, command: str, limits: Limits, *, stdin: str = "", ro_binds=()) -> Outcome:
        return run(["/bin/bash", "-c", command], workdir=self.repo, limits=limits, stdin=stdin,
                   env=AGENT_ENV, ro_binds=list(ro_binds), unsafe=self.unsafe)

    def apply(self, patch: str, limits: Limits) -> tuple[str | None, list[str], Outcome]:
        """(how it applied or None, files the patch added, the sandbox outcome)."""
        out = self.bash(APPLY, limits, stdin=patch)
        method = None
        for line in out.stdout.splitlines():
            if line.startswith(APPLY_MARK):
                method = line[len(APPLY_MARK):].strip()
        added = out.stdout.partition(ADDED_MARK)[2].split("\0") if method else []
        return method, [a for a in added if a], out

    def test(self, limits: Limits, *, remove: list[str] = ()) -> Outcome:
        """Run the instance's test command with its test files pristine and read-only."""
        pristine_dir = self.dir / "pristine"
        binds = []
        for i, (path, content) in enumerate(sorted(self.pristine.items())):
            src = pristine_dir / str(i)
            src.parent.mkdir(exist_ok=True, mode=0o755)
            src.write_bytes(content)
            src.chmod(0o644)
            binds.append((str(src), f"{INSIDE}/{path}"))
        gone = [*remove, *self.pristine]
        prelude = f"rm -rf -- {' '.join(shlex.quote(p) for p in gone)}; " if gone else ""
        # The files go first, in a sandbox of their own: the binds need their mount points free.
        if gone:
            self.bash(prelude, limits)
        return self.bash(self.instance["test_cmd"], limits, ro_binds=binds)

    def diff(self, limits: Limits) -> str:
        """The working copy's changes against its base, new files included (salvage)."""
        out = self.bash(SALVAGE, limits)
        return out.stdout if out.status == "ok" else ""

