"""Opt-in Python packages for sandboxed programs: a directory built once, bound read-only.

Why: sandboxed Python sees the standard library only (`crucible.sandbox` hides every site-packages),
which is right for HumanEval but fails legitimate solutions of suites that need numpy or pandas
(BigCodeBench-style tasks). An environment is an explicit, recorded choice per run:

    crucible sandbox env --packages numpy,pandas --out envs/sci     # once: pip, from the registries
    crucible eval puzzles --samples s.jsonl --python-env envs/sci --out runs/pz

Layout of DIR: `site-packages/` (what `pip install --target` wrote, .pyc compiled by the sandbox's
own interpreter) and `crucible-env.json` (the manifest: packages and versions, interpreter, creation
time, size, which modules import in the sandbox, and an `id` that changes when any installed file
does). Building is the only step that reaches a registry; grading never installs anything.

How the sandbox sees it: `site-packages/` is bound read-only at /opt/crucible-env, and the
interpreter keeps its `-I -S` flags (no environment variable, no user or system site dir is read).
The path is added by a small launcher given with `-c` (`BOOT`): `site.addsitedir` appends it *after*
the standard library (a package cannot shadow `json` or `typing`) and honours its .pth files, as a
real site-packages would; the program then runs as a fresh `__main__` module. PYTHONPATH was the
alternative; it needs -E dropped (the unsafe mode inherits the host's environment), and puts the
packages *before* the standard library. BLAS/OpenMP pools get one thread (`THREAD_ENV`): a sample
is one CPU's worth of work, and per-core thread buffers would eat the address-space limit.

Not covered: packages that need files outside their directory at run time (data downloaded on first
use, a compiler for JIT), console scripts (bin/ is not on PATH inside), and the unsafe HumanEval
server, which inherits the host's thread variables. Tracebacks show one launcher frame
(`File "<string>"`) above the program's; the last line (what verdicts use) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path


class PythonEnvError(ValueError):
    """A Python env, its manifest, its packages or a results dir's env record is not usable; commands
    report it as a usage error (exit 2) naming what is wrong."""


MANIFEST = "crucible-env.json"
SITE = "site-packages"
FORMAT = "crucible-python-env/1"
INSIDE_SITE = "/opt/crucible-env"  # where site-packages appears in the sandbox, read-only
RUN_RECORD = "python-env.json"     # in a results dir: the env its rows were graded with
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# argv after `python -I -S [-B] -c BOOT`: SITE_DIR SCRIPT [ARGS...]. The script runs as a fresh
# `__main__` module, as the interpreter would run it (runpy would do the same, but importing it costs
# ~40 ms a sample); a SyntaxError in it prints without a traceback, as for a main module.
BOOT = """\
import site, sys
site.addsitedir(sys.argv.pop(1))
del sys.argv[0]
with open(sys.argv[0], "rb") as _f:
    _code = _f.read()
try:
    _code = compile(_code, sys.argv[0], "exec")
except SyntaxError as _e:
    import traceback
    sys.stderr.write("".join(traceback.format_exception_only(type(_e), _e)))
    sys.exit(1)
_boot, _main = sys.modules["__main__"], type(sys)("__main__")  # _boot: this module stays alive
_main.__file__ = sys.argv[0]
sys.modules["__main__"] = _main
exec(_code, vars(_main))
"""

# One requirement: name, optional [extras], at most one version clause (commas split --packages).
REQUIREMENT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[\w.,\s-]*\])?\s*"
                         r"((===?|~=|!=|<=?|>=?)\s*[\w.*+!-]+)?")


@dataclass(frozen=True)
class PythonEnv:
    root: Path
    manifest: dict

    @property
    def site(self) -> Path:
        return self.root / SITE

    @property
    def id(self) -> str:
        return self.manifest["id"]

    def ro_binds(self) -> list[tuple[str, str]]:
        return [(str(self.site), INSIDE_SITE)]

    def record(self) -> dict:
        """What a run's summary says about the env it used."""
        return {"dir": str(self.root.resolve()), "id": self.id, "packages": self.manifest["packages"],
                "python": self.manifest["python"]["version"], "created": self.manifest["created"]}


def interpreter() -> str | None:
    explicit = os.environ.get("CRUCIBLE_SANDBOX_PYTHON")
    if explicit:
        return explicit
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate):
            return candidate
    return shutil.which("python3")


@lru_cache(maxsize=1)
def version() -> str | None:
    exe = interpreter()
    if not exe:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return out.stdout.strip().removeprefix("Python ") or None


def launch(python_env: PythonEnv | None, unsafe: bool, *flags: str) -> tuple[list[str], list, dict]:
    """(argv up to the script path, read-only binds, environment variables) to run Python in the
    sandbox: bare `-I -S` by default; with an env, its launcher, its site dir and one-thread BLAS."""
    python = [interpreter(), "-I", "-S", *flags]
    if python_env is None:
        return python, [], {}
    site = str(python_env.site) if unsafe else INSIDE_SITE  # unsafe: nothing is bound, the host path is used
    return [*python, "-c", BOOT, site], python_env.ro_binds(), dict(THREAD_ENV)


def load(path: str | Path) -> PythonEnv:
    """The env in DIR, checked against the sandbox's interpreter; PythonEnvError naming what is wrong."""
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise PythonEnvError(f"{root}: not a crucible Python env (no {MANIFEST}); build one with "
                             f"`crucible sandbox env --packages ... --out {root}`")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PythonEnvError(f"{manifest_path}:{e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise PythonEnvError(f"{manifest_path}:1: not UTF-8 text") from None
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not {"id", "packages", "python", "created"} <= manifest.keys()
            or not isinstance(manifest["python"], dict) or "version" not in manifest["python"]):
        raise PythonEnvError(f"{manifest_path}:1: not a {FORMAT} manifest; rebuild the env")
    env = PythonEnv(root, manifest)
    if not env.site.is_dir():
        raise PythonEnvError(f"{root}: {SITE}/ is missing; rebuild the env")
    built, running = manifest["python"]["version"], version() or "none"
    if built.split(".")[:2] != running.split(".")[:2]:
        raise PythonEnvError(f"{root}: built for Python {built}, but the sandbox runs Python {running}; rebuild it")
    _check_reachable(env.site)
    return env


def _check_reachable(path: Path) -> None:
    """As root, sandboxes run as unprivileged uids (crucible.sandbox.uids): they must enter `path`."""
    from crucible.sandbox import _untraversable

    blocked = _untraversable(path / "x") if os.geteuid() == 0 else None  # `path` and every dir above it
    if blocked:
        raise PythonEnvError(f"{path}: {blocked} is not world-searchable, so the sandbox cannot see the env "
                             "(build it under a directory others can enter, e.g. /opt or /tmp)")


def from_args(args) -> PythonEnv | None:
    """The env of a command's `--python-env DIR`, if it has one."""
    path = getattr(args, "python_env", None)
    return load(path) if path else None


def claim_results_dir(out: Path, env: PythonEnv | None) -> None:
    """Refuse to mix envs in one results dir, then record the env (its absence: the bare stdlib)."""
    record = out / RUN_RECORD
    used = None
    if record.is_file():
        try:
            claimed = json.loads(record.read_text(encoding="utf-8"))
            used, where = claimed["id"], f"the Python env {claimed['dir']} (id {claimed['id']})"
        except (ValueError, TypeError, KeyError):
            raise PythonEnvError(f"{record}:1: not a Python env record (written by crucible eval); "
                                 "use another --out") from None
    elif (out / "results.jsonl").is_file() and (out / "results.jsonl").stat().st_size:
        where = "the bare standard library"
    else:
        where = None  # nothing graded yet
    if where and used != (env.id if env else None):
        now = f"the Python env {env.root} (id {env.id})" if env else "the bare standard library"
        raise PythonEnvError(f"{out}: graded with {where}, asked to grade with {now}; use another --out")
    if env is not None and used is None:
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(env.record(), indent=2) + "\n")
        os.replace(tmp, record)


# ---- building ----------------------------------------------------------------------------------

def parse_packages(texts: list[str]) -> list[str]:
    """--packages values (comma-separated, repeatable) -> requirements; local wheels/dirs allowed
    (an item with a '/' or an archive suffix is a path, as pip reads it)."""
    reqs = []
    for text in texts:
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            if "/" in item or item.endswith((".whl", ".zip", ".tar.gz")):
                if not Path(item).exists():
                    raise PythonEnvError(f"--packages: {item}: no such file or directory")
                reqs.append(str(Path(item).resolve()))
            elif REQUIREMENT.fullmatch(item):
                reqs.append(item)
            else:
                raise PythonEnvError(f"--packages: {item!r} is not a requirement (name, optional [extras], one "
                                     "version clause) nor a path; for ranges with commas use --requirements FILE")
    return reqs


def build(requirements: list[str], out: str | Path, *, requirements_file: str | None = None,
          pip_options: list[str] = (), unsafe: bool = False, progress: bool = True) -> PythonEnv:
    """pip-install into a fresh DIR for the sandbox's interpreter, check imports, write the manifest.

    Everything is built in a sibling temp dir and renamed into place, so DIR is complete or absent.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PythonEnvError(f"{out}: already exists and is not empty; remove it or choose another --out")
    python = interpreter()
    if not python or not version():
        raise PythonEnvError("no Python interpreter for the sandbox (set CRUCIBLE_SANDBOX_PYTHON)")
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_reachable(out.parent)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.monotonic()
    try:
        pip_version = _pip_install(python, tmp / SITE, requirements, requirements_file, pip_options)
        _make_readable(tmp)
        env = PythonEnv(tmp, {"format": FORMAT, "python": {"interpreter": python, "version": version()}})
        modules = check_imports(env, unsafe=unsafe, progress=progress)
        dists = _distributions(env.site)
        manifest = {
            "format": FORMAT, "id": _content_id(env.site, version()),
            "requested": requirements + ([f"-r {requirements_file}"] if requirements_file else []),
            "packages": {d.metadata["Name"]: d.version for d in dists},
            "modules": modules, "python": {"interpreter": python, "version": version()}, "pip": pip_version,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_s": round(time.monotonic() - start, 1), "size_bytes": _size(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PythonEnv(out, manifest)


def _pip_install(python: str, target: Path, requirements: list[str], requirements_file: str | None,
                 pip_options: list[str]) -> str:
    """Run this environment's pip *as* the sandbox's interpreter (`pip --python`), so wheel tags,
    environment markers and .pyc files are that interpreter's. Returns pip's version."""
    try:
        pip_version = metadata.version("pip")
    except metadata.PackageNotFoundError:
        raise PythonEnvError(f"pip is not installed in {sys.prefix}; `{sys.executable} -m ensurepip` adds it") from None
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--target", str(target), "--no-input",
            "--disable-pip-version-check", "--root-user-action=ignore", *pip_options, *requirements]
    if requirements_file:
        argv += ["--requirement", requirements_file]
    print("$ pip " + " ".join(argv[3:]), file=sys.stderr)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    tail = b""
    for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # relayed as it comes: pip's own progress
        sys.stderr.write(chunk.decode(errors="replace"))
        sys.stderr.flush()
        tail = (tail + chunk)[-2000:]
    if proc.wait() != 0:
        errors = [l for l in tail.decode(errors="replace").splitlines() if l.startswith("ERROR:")]
        raise PythonEnvError(f"pip could not install {' '.join(requirements) or requirements_file} "
                             f"({errors[-1] if errors else f'exit code {proc.returncode}'}); nothing was written")
    return pip_version


def _make_readable(top: Path) -> None:
    """The sandbox's unprivileged uid reads the env: dirs 755, files a+r (whatever the umask was)."""
    for root, dirs, files in os.walk(top):
        os.chmod(root, 0o755)
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o444)


def _distributions(site: Path) -> list:
    return sorted(metadata.distributions(path=[str(site)]), key=lambda d: d.metadata["Name"].lower())


def top_level_modules(dist) -> list[str]:
    """Importable top-level names a distribution installed (from its RECORD)."""
    names = set()
    for f in dist.files or ():
        parts = f.parts
        if len(parts) == 1 and f.suffix in (".py", ".so"):
            names.add(parts[0].split(".")[0])
        elif len(parts) > 1 and f.suffix in (".py", ".so") and not parts[0].endswith((".dist-info", ".data")):
            names.add(parts[0])
    return sorted(n for n in names if n.isidentifier() and n != "__pycache__")


def check_imports(env: PythonEnv, *, unsafe: bool, progress: bool) -> dict[str, str]:
    """Import each installed top-level module in the sandbox, under the default limits:
    {module: "ok" or why not}. Catches envs that install but cannot work in there."""
    from tqdm import tqdm

    from crucible.sandbox import INSIDE, Limits, run

    modules = [m for d in _distributions(env.site) for m in top_level_modules(d)]
    results = {}
    for name in tqdm(modules, desc="importing in the sandbox", unit="module", disable=not progress):
        prefix, binds, variables = launch(env, unsafe)
        out = run([*prefix, f"{INSIDE}/main.py"], files={"main.py": f"import {name}\n"}, limits=Limits(),
                  ro_binds=binds, env=variables, unsafe=unsafe)
        why = (out.stderr.strip().splitlines() or [out.detail])[-1]
        results[name] = "ok" if out.status == "ok" else f"{out.status}: {why}"[:200]
    return results


def _content_id(site: Path, python_version: str) -> str:
    """Changes when any installed file does: each RECORD lists its files' hashes."""
    h = hashlib.sha256(".".join(python_version.split(".")[:2]).encode())
    for dist in _distributions(site):
        h.update(f"\0{dist.metadata['Name']}=={dist.version}\0".encode())
        h.update((dist.read_text("RECORD") or "").encode())
    return h.hexdigest()[:16]


def _size(top: Path) -> int:
    return sum(os.lstat(os.path.join(r, f)).st_size for r, _, files in os.walk(top) for f in files)
