"""Build a program inside the sandbox once, cache the artifact on the host, run it in a fresh sandbox.

Why by hand: the languages' own build caches (go's GOCACHE, zig's cache dir) are per-user state that
an untrusted program could poison if it were shared between sandboxes, and none of them covers
"this exact source, this compiler, these flags was already built, or already failed to build".

- Key: sha256 of (language, toolchain version, compile flags, source file name, source). A distinct
  program compiles once; its compile error is cached too (so it is reported, not recompiled).
  Compiler timeouts and out-of-memory kills are not cached: they are load-dependent.
- Compilers run in the sandbox (their own `Limits`: generous CPU time, no RLIMIT_AS for JVM/Go-based
  compilers). The build dir is kept, the artifacts copied into the cache under a per-key file lock,
  so concurrent graders (threads or processes) build a program once.
- Runs copy the artifacts into a fresh work dir (the program may write there; the cache stays
  intact) and execute them under the caller's limits. Runtimes that reserve huge address space
  (JVM, node, Go) get `memory_mb=None` with their own heap cap derived from the caller's memory_mb.
- Hits/misses are counted per process (`stats()`): the grading benchmark reports the hit rate.

Not covered: eviction (the cache grows; delete ~/.cache/crucible/builds to reclaim space), and
multi-file programs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from crucible.sandbox import Limits, Outcome, run

COMPILE_LIMITS = Limits(timeout_s=60, memory_mb=None, max_procs=256, max_file_mb=256, max_open_files=1024,
                        output_bytes=64 << 10)
ERROR_CHARS = 4000   # compiler message kept in the cache and the outcome


@dataclass(frozen=True)
class Recipe:
    """How one language turns a source file into something runnable, and runs it."""
    source_name: str
    execute: tuple[str, ...]                     # argv; "{heap_mb}" is replaced by the runtime's heap cap
    compile: tuple[str, ...] | None = None       # argv run in the build dir; None: interpreted
    artifacts: tuple[str, ...] = ()              # files/dirs (relative) kept from the build dir
    compile_env: dict = field(default_factory=dict)
    run_env: dict = field(default_factory=dict)
    compile_limits: Limits = field(default_factory=lambda: COMPILE_LIMITS)
    own_heap_cap: bool = False                   # runtime caps its heap itself: no RLIMIT_AS on runs
    min_procs: int = 0                           # threads count against RLIMIT_NPROC (JVM, Go)
    ro_binds: tuple[tuple[str, str], ...] = ()   # extra read-only config the toolchain needs


_stats_lock = threading.Lock()
_stats = {"hits": 0, "builds": 0, "compile_errors": 0}


def stats() -> dict:
    """Build-cache counters of this process: hits, builds (misses that compiled), compile_errors."""
    with _stats_lock:
        s = dict(_stats)
    total = s["hits"] + s["builds"]
    s["hit_rate"] = s["hits"] / total if total else 0.0
    return s


def reset_stats() -> None:
    with _stats_lock:
        for k in _stats:
            _stats[k] = 0


@contextlib.contextmanager
def report_stats(stream=None):
    """Print this block's build-cache use to stderr when it ends (graders wrap their work in it)."""
    before = stats()
    yield
    after = stats()
    hits, builds = after["hits"] - before["hits"], after["builds"] - before["builds"]
    if hits or builds:
        errors = after["compile_errors"] - before["compile_errors"]
        print(f"build cache: {builds} builds ({errors} compile errors), {hits} hits, "
              f"hit rate {100 * hits / (hits + builds):.1f}%", file=stream or sys.stderr)


def _count(name: str) -> None:
    with _stats_lock:
        _stats[name] += 1


def cache_root() -> Path:
    explicit = os.environ.get("CRUCIBLE_BUILD_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crucible" / "builds"


def build_key(language: str, version: str, recipe: Recipe, source: str) -> str:
    h = hashlib.sha256()
    for part in (language, version, recipe.source_name, "\x1f".join(recipe.compile or ()), source):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def _heap_mb(limits: Limits) -> int:
    return max(64, (limits.memory_mb or 1024) // 2)


def _build(key: str, recipe: Recipe, source: str, unsafe: bool) -> tuple[dict, Path | None]:
    """Compile (or find) `source`; return (meta, artifact dir). meta["status"] is ok or compile_error."""
    root = cache_root()
    entry = root / key[:2] / key
    meta_path = entry / "meta.json"
    if meta_path.exists():
        _count("hits")
        return json.loads(meta_path.read_text()), entry
    (root / "locks").mkdir(parents=True, exist_ok=True)
    with open(root / "locks" / f"{key[:16]}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if meta_path.exists():  # someone else built it while we waited
            _count("hits")
            return json.loads(meta_path.read_text()), entry
        work = Path(tempfile.mkdtemp(prefix="crucible-build-"))
        try:
            start = time.monotonic()
            out = run(list(recipe.compile), files={recipe.source_name: source}, workdir=work,
                      limits=recipe.compile_limits, env=recipe.compile_env, ro_binds=list(recipe.ro_binds),
                      unsafe=unsafe)
            compile_s = round(time.monotonic() - start, 4)
            if out.status == "sandbox_error":
                return {"status": "sandbox_error", "message": out.detail or out.stderr[-ERROR_CHARS:]}, None
            message = (out.stderr + ("\n" + out.stdout if out.stdout.strip() else "")).strip()
            if out.status in ("timeout", "memory"):  # load-dependent: report, don't cache
                return {"status": "compile_error", "message": f"compiler {out.status}: {out.detail}\n{message}"[
                    :ERROR_CHARS], "compile_s": compile_s, "exit_code": out.exit_code}, None
            missing = [a for a in recipe.artifacts if not (work / a).exists()]
            if out.status == "ok" and not missing:
                meta = {"status": "ok", "compile_s": compile_s, "warnings": message[:ERROR_CHARS]}
            else:
                if out.status == "ok":
                    message = f"compiler produced no {', '.join(missing)}\n{message}"
                meta = {"status": "compile_error", "message": message[-ERROR_CHARS:], "compile_s": compile_s,
                        "exit_code": out.exit_code}
            staging = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=root))
            if meta["status"] == "ok":
                for rel in recipe.artifacts:
                    src, dst = work / rel, staging / "artifacts" / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    if src.is_dir():
                        shutil.copytree(src, dst, symlinks=False)
                    else:
                        shutil.copy2(src, dst)
            (staging / "meta.json").write_text(json.dumps(meta))
            entry.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, entry) if not entry.exists() else shutil.rmtree(staging)
            _count("builds")
            if meta["status"] != "ok":
                _count("compile_errors")
            return meta, entry
        finally:
            shutil.rmtree(work, ignore_errors=True)


def build_and_run(language: str, version: str | None, recipe: Recipe, source: str, *, stdin: bytes | str = b"",
                  limits: Limits, unsafe: bool = False) -> Outcome:
    """Compile (cached) and run `source`; a failed build is an Outcome with status compile_error."""
    if version is None:
        return Outcome("sandbox_error", None, "", "", 0.0, 0.0,
                       detail=f"{language} toolchain not installed (run `make toolchains`)")
    run_limits = replace(limits, max_procs=max(limits.max_procs, recipe.min_procs))
    heap = _heap_mb(limits)
    if recipe.own_heap_cap:
        run_limits = replace(run_limits, memory_mb=None)
    argv = [a.replace("{heap_mb}", str(heap)) for a in recipe.execute]
    env = {k: v.replace("{heap_mb}", str(heap)) for k, v in recipe.run_env.items()}
    if recipe.compile is None:
        out = run(argv, files={recipe.source_name: source}, stdin=stdin, limits=run_limits, env=env,
                  ro_binds=list(recipe.ro_binds), unsafe=unsafe)
        return out
    key = build_key(language, version, recipe, source)
    meta, entry = _build(key, recipe, source, unsafe)
    if meta["status"] == "sandbox_error":
        return Outcome("sandbox_error", None, "", "", 0.0, 0.0, detail=f"build: {meta['message']}")
    if meta["status"] != "ok":
        message = meta["message"]
        first = next((ln for ln in message.splitlines() if "error" in ln.lower()), message.split("\n", 1)[0])
        return Outcome("compile_error", meta.get("exit_code"), "", message, meta.get("compile_s", 0.0), 0.0,
                       detail=first.strip()[:300], extra={"build_key": key[:16]})
    work = Path(tempfile.mkdtemp(prefix="crucible-run-"))
    try:
        shutil.copytree(entry / "artifacts", work, dirs_exist_ok=True)
        out = run(argv, stdin=stdin, limits=run_limits, env=env, workdir=work, ro_binds=list(recipe.ro_binds),
                  unsafe=unsafe)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.extra["build_key"] = key[:16]
    return out


def tool_version(argv: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> str | None:
    """The first version-looking match in `argv`'s output, or None when the tool is not there."""
    import re
    import subprocess

    if not os.path.exists(argv[0]):
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else None
