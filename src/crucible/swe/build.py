"""Build validated instances by bug injection (`crucible swe build`), SWE-smith's recipe.

For each source the tests run twice on the clean tree; the tests that pass both times are the
candidates for FAIL_TO_PASS and PASS_TO_PASS (a test that fails or flakes on clean code is never
used). Mutations (`crucible.swe.mutate`) of the source's files are shuffled with the seed and taken
round-robin across sources; each runs the tests twice with the bug in the sandbox. It is kept when

- at least one clean-passing test fails with the bug (FAIL_TO_PASS), the same in both runs,
- every other clean-passing test still passes in both runs (PASS_TO_PASS; a seeded sample of at
  most MAX_PASS_TO_PASS is recorded),
- neither run timed out or hit a sandbox limit.

A kept bug is committed on top of the clean commit (that commit is base_commit; the gold `patch`
is the diff back to clean), and its statement is written from the first run's failures
(`crucible.swe.problem`). Every candidate tried is logged in build.log.jsonl, instances are
appended to instances.jsonl as they are kept: re-running the same command resumes.

Not covered: deduplicating bugs that behave alike (two mutations failing the same tests are
both kept), and difficulty calibration beyond the recorded diff size and F2P count.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from crucible.sandbox import Limits, run
from crucible.swe import gitrepo
from crucible.swe.instances import BUILD_LOG, INSTANCES, append_jsonl, read_jsonl, repo_dir
from crucible.swe.mutate import Mutation, broken, mutations
from crucible.swe.problem import problem_statement
from crucible.swe.sources import Source, SourceError
from crucible.swe.testlog import PASSING, parse

MAX_PASS_TO_PASS = 100
SLOWDOWN = 10  # a bugged run may take this many times the clean run's CPU time (at least MIN_CPU_S)
MIN_CPU_S = 3.0
LOGGED = ("candidate", "kind", "file", "line", "kept", "reason")
TEST_LIMITS = Limits(timeout_s=30.0, wall_s=90.0, memory_mb=2048)


@dataclass
class Candidate:
    source: Source
    clean_commit: str
    clean_passing: list[str]
    limits: Limits
    path: str
    mutation: Mutation

    @property
    def instance_id(self) -> str:
        return f"{self.source.repo.split('/')[-1]}.{self.mutation.kind}.{self.mutation.key}"


def run_tests(source: Source, files: dict[str, bytes], limits: Limits, unsafe: bool = False):
    """(outcome, per-test statuses) of the source's tests on this tree, in a fresh sandbox."""
    out = run(["/bin/bash", "-c", source.test_cmd], files=files, limits=limits, unsafe=unsafe)
    return out, parse(out.stdout + "\n" + out.stderr, source.log_parser)


def clean_baseline(source: Source, limits: Limits, unsafe: bool) -> tuple[list[str], Limits]:
    """Tests that pass twice on the clean tree (sorted), and the limits for runs with a bug: an
    injected infinite loop then costs seconds, not the whole budget."""
    runs = [run_tests(source, source.files, limits, unsafe) for _ in range(2)]
    if any(o.status in ("timeout", "sandbox_error", "memory", "output_limit") for o, _ in runs):
        bad = next(o for o, _ in runs if o.status not in ("ok", "runtime_error"))
        raise SourceError(f"{source.repo}: clean tests ended with {bad.status} ({bad.detail})")
    passing = sorted(t for t, s in runs[0][1].items() if s in PASSING and runs[1][1].get(t) in PASSING)
    cpu = min(limits.timeout_s, max(MIN_CPU_S, SLOWDOWN * max(o.cpu_s for o, _ in runs)))
    return passing, replace(limits, timeout_s=cpu, wall_s=4 * cpu + 10)


def prepare(out: Path, source: Source, limits: Limits, unsafe: bool, seed: int) -> list[Candidate]:
    """Create (or reuse) the source's repo with its clean commit; its shuffled candidates."""
    git_dir = repo_dir(out, source.repo)
    if not git_dir.exists():
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        gitrepo.init_bare(git_dir)
    clean = gitrepo.commit_files(git_dir, source.files, parent=None, message=f"{source.repo}: clean",
                                 branch="main")
    passing, bug_limits = clean_baseline(source, limits, unsafe)
    if not passing:
        return []
    found = [Candidate(source, clean, passing, bug_limits, path, m) for path in source.mutable
             for m in mutations(source.files[path].decode())]
    random.Random(f"{seed}\x1f{source.repo}").shuffle(found)
    return found


def round_robin(groups: list[list[Candidate]]) -> list[Candidate]:
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out


def validate(c: Candidate, unsafe: bool, seed: int) -> dict:
    """A build-log row: kept (with the instance) or why not."""
    files = {**c.source.files, c.path: c.mutation.source.encode()}
    row = {"candidate": c.instance_id, "kind": c.mutation.kind, "file": c.path, "line": c.mutation.line,
           "kept": False}
    why = broken(c.mutation, c.source.files[c.path].decode())
    if why:
        return {**row, "reason": why}
    runs = []
    for _ in range(2):
        outcome, status = run_tests(c.source, files, c.limits, unsafe)
        if outcome.status not in ("ok", "runtime_error"):
            return {**row, "reason": f"tests ended with {outcome.status} ({outcome.detail})"}
        runs.append((outcome, status))
    (o1, s1), (_, s2) = runs
    ok1 = {t for t in c.clean_passing if s1.get(t) in PASSING}
    ok2 = {t for t in c.clean_passing if s2.get(t) in PASSING}
    if ok1 != ok2:
        return {**row, "reason": "flaky: the two runs with the bug disagree"}
    f2p = [t for t in c.clean_passing if t not in ok1]
    if not f2p:
        return {**row, "reason": "no test fails with the bug"}
    p2p = [t for t in c.clean_passing if t in ok1]
    if len(p2p) > MAX_PASS_TO_PASS:
        p2p = sorted(random.Random(f"{seed}\x1f{c.instance_id}").sample(p2p, MAX_PASS_TO_PASS))
    log = o1.stdout + "\n" + o1.stderr
    return {**row, "kept": True, "fail_to_pass": f2p, "pass_to_pass": p2p,
            "problem_statement": problem_statement(c.source.target, f2p, log, c.source.test_cmd)}


def commit_instance(out: Path, c: Candidate, verdict: dict) -> dict:
    git_dir = repo_dir(out, c.source.repo)
    iid = c.instance_id
    base = gitrepo.commit_files(git_dir, {c.path: c.mutation.source.encode()}, parent=c.clean_commit,
                                message=f"{iid}: {c.mutation.kind} in {c.mutation.function}", branch=f"bug/{iid}")
    patch = gitrepo.diff(git_dir, base, c.clean_commit)
    changed = sum(1 for line in patch.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    return {"instance_id": iid, "repo": c.source.repo, "base_commit": base, "patch": patch, "test_patch": "",
            "FAIL_TO_PASS": verdict["fail_to_pass"], "PASS_TO_PASS": verdict["pass_to_pass"],
            "problem_statement": verdict["problem_statement"], "test_cmd": c.source.test_cmd,
            "log_parser": c.source.log_parser, "test_files": c.source.test_files,
            "mutation": {"kind": c.mutation.kind, "file": c.path, "function": c.mutation.function,
                         "line": c.mutation.line},
            "difficulty": {"diff_lines": changed, "n_fail_to_pass": len(verdict["fail_to_pass"])}}


def build(out: Path, sources: list[Source], n: int, *, seed: int = 0, workers: int = 1,
          limits: Limits = TEST_LIMITS, unsafe: bool = False, progress: bool = True) -> dict:
    """Build up to `n` instances into `out` (resuming what is there); returns counts."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kept = {r["instance_id"] for r in read_jsonl(out / INSTANCES)}
    tried = {r["candidate"] for r in read_jsonl(out / BUILD_LOG)}
    if len(kept) >= n:
        return {"kept": len(kept), "tried": 0, "rejected": 0}
    candidates = round_robin([prepare(out, s, limits, unsafe, seed) for s in sources])
    todo = [c for c in candidates if c.instance_id not in tried]
    counts = {"kept": len(kept), "tried": 0, "rejected": 0}
    bar = tqdm(total=n, initial=min(len(kept), n), desc="swe build", unit="instance", disable=not progress)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        while todo and len(kept) < n:
            batch, todo = todo[:max(1, workers)], todo[max(1, workers):]
            for c, verdict in zip(batch, pool.map(lambda c: validate(c, unsafe, seed), batch)):
                if verdict["kept"] and len(kept) >= n:
                    break  # not logged: a later, larger build takes it
                counts["tried"] += 1
                if verdict["kept"]:
                    append_jsonl(out / INSTANCES, commit_instance(out, c, verdict))
                    kept.add(c.instance_id)
                    bar.update(1)
                else:
                    counts["rejected"] += 1
                append_jsonl(out / BUILD_LOG, {k: v for k, v in verdict.items() if k in LOGGED})
                bar.set_postfix(tried=counts["tried"], rejected=counts["rejected"])
    bar.close()
    counts["kept"] = len(kept)
    return counts
