"""The instance repositories: bare git repos crucible writes, read back by commit.

Each source (a stdlib module with its test file, or a user's repository) becomes one bare repo
under INSTANCES/repos/<repo>.git: the clean tree on `main`, and one commit per instance on top of it
with the bug (`bug/<instance_id>`), whose id is the instance's base_commit. Any tool can
`git clone INSTANCES/repos/<repo>.git && git checkout <base_commit>`.

Commits are made with plumbing (hash-object, update-index on a private index, write-tree,
commit-tree): no work tree is needed and nothing else in the repo moves. Identity and dates are
fixed, so the same build gives the same commit ids.

Only trusted trees are handled on the host here (what crucible wrote). Anything a model touched is
handled inside the sandbox (`crucible.swe.workspace`): git on a model-written repository could run
hooks or filters the model configured.

Not covered: submodules, LFS, symlinks in user repositories (archived as they are).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

IDENTITY = {"GIT_AUTHOR_NAME": "crucible", "GIT_AUTHOR_EMAIL": "crucible@localhost",
            "GIT_COMMITTER_NAME": "crucible", "GIT_COMMITTER_EMAIL": "crucible@localhost",
            "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}


class GitError(RuntimeError):
    pass


def git(git_dir: Path | None, *args: str, input: bytes | None = None, env: dict | None = None,
        cwd: Path | None = None) -> bytes:
    cmd = ["git", "-c", "core.hooksPath=/dev/null", "-c", "init.defaultBranch=main"]
    if git_dir is not None:
        cmd.append(f"--git-dir={git_dir}")
    full_env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    proc = subprocess.run(cmd + list(args), input=input, capture_output=True, env=full_env, cwd=cwd)
    if proc.returncode:
        raise GitError(f"git {' '.join(args[:2])}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def init_bare(git_dir: Path) -> None:
    git(None, "init", "-q", "--bare", str(git_dir))


def commit_files(git_dir: Path, files: dict[str, bytes], *, parent: str | None, message: str,
                 branch: str) -> str:
    """Commit `files` (path -> content) on top of `parent` (its tree, with these files replaced;
    None: a root commit of just these files) and point `branch` at it; returns the commit id."""
    with tempfile.TemporaryDirectory(prefix="crucible-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent:
            git(git_dir, "read-tree", parent, env=env)
        for path, content in sorted(files.items()):
            blob = git(git_dir, "hash-object", "-w", "--stdin", input=content).decode().strip()
            git(git_dir, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(git_dir, "write-tree", env=env).decode().strip()
    args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
    commit = git(git_dir, *args).decode().strip()
    git(git_dir, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def diff(git_dir: Path, old: str, new: str) -> str:
    return git(git_dir, "diff", "--no-color", "--no-ext-diff", old, new).decode()


def show(git_dir: Path, commit: str, path: str) -> bytes:
    return git(git_dir, "show", f"{commit}:{path}")


def tree_files(git_dir: Path, commit: str) -> dict[str, bytes]:
    """Every file of a commit, path -> content."""
    data = git(git_dir, "archive", "--format=tar", commit)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                out[member.name] = tar.extractfile(member).read()
    return out


def write_tree(files: dict[str, bytes], dest: Path) -> None:
    for path, content in files.items():
        p = dest / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)


def checkout(git_dir: Path, commit: str, dest: Path, *, history: bool) -> None:
    """Write `commit`'s tree to `dest`; with `history`, also make dest a one-commit git repo of it
    (no parents: the clean code an instance's bug was injected into is not reachable from there)."""
    write_tree(tree_files(git_dir, commit), dest)
    if history:
        git(None, "init", "-q", cwd=dest)
        git(None, "add", "-A", cwd=dest)
        git(None, "commit", "-q", "--no-verify", "-m", "base", cwd=dest)
