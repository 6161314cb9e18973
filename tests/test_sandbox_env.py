"""The caller's environment never reaches untrusted code, on every path that starts it (issue 8, part 2).

bubblewrap's init process is PID 1 inside the sandbox and a fork of bwrap, so the environment bwrap
was started with is readable at /proc/1/environ even when the program's own is clean. Here a secret
is planted in this process's environment (under the names real secrets have) or in a CLI
subprocess's, and a probe, written in each language, reads every /proc/[0-9]*/environ and
/proc/[0-9]*/cmdline it can and prints one line:

    secret=absent environ=read cmdline=read

`secret=` names a file that holds the secret, if any. `environ=read` means some environ held the
sandbox's PATH= and `cmdline=read` that some cmdline held the rlimit wrapper's `crucible-limits`:
the same matcher that looks for the secret found those, so a probe that read nothing, or cannot
match, does not pass. `test_probe_reports_a_secret_that_is_there` checks the other direction.

Paths: sandbox.run, `crucible exec` (python, C; and --unsafe-no-sandbox), crucible.languages for five
languages (build and run), puzzles grading (python, C), HumanEval grading (sandboxed and unsafe),
and the engine's python tool. Unsafe mode isolates nothing (the program can read what its uid can),
so there only the program's own environment is checked.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from tokenizers import AddedToken
from tokenizers import Tokenizer as HFTokenizer

from crucible.cli import main as cli
from crucible.grade.humaneval import grade as grade_humaneval
from crucible.languages import run_program
from crucible.languages.python import interpreter
from crucible import testing
from crucible.model.engine import Engine, SamplingParams
from crucible.model.tokenizer import FILE_NAME, Tokenizer
from crucible.sandbox import INSIDE, Limits, run, untrusted_env

CRUCIBLE = [sys.executable, "-m", "crucible"]
CLEAN = "secret=absent environ=read cmdline=read"
PLANTED_NAMES = ("CRUCIBLE_API_KEY", "OPENAI_API_KEY", "HF_TOKEN", "MY_SECRET")
LANGUAGES = ("python", "c", "go", "javascript", "java")

PYTHON_PROBE_FUNCTION = '''import os


def probe(secret):
    found = {"secret": "absent", "environ": "unread", "cmdline": "unread"}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for kind, control in (("environ", b"PATH="), ("cmdline", b"crucible-limits")):
            try:
                with open(f"/proc/{pid}/{kind}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if secret.encode() in data:
                found["secret"] = f"/proc/{pid}/{kind}"
            if control in data:
                found[kind] = "read"
    return " ".join(f"{k}={v}" for k, v in found.items())
'''

PROBES = {
    "python": PYTHON_PROBE_FUNCTION + '\n\nprint(probe("@SECRET@"))\n',
    "c": r'''#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

static char buf[1 << 20];

int main(void) {
    const char *secret = "@SECRET@";
    const char *kinds[2] = {"environ", "cmdline"}, *controls[2] = {"PATH=", "crucible-limits"};
    const char *seen[2] = {"unread", "unread"};
    char path[300], leak[300] = "absent";
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while (proc && (e = readdir(proc))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "/proc/%s/%s", e->d_name, kinds[k]);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            if (memmem(buf, n, secret, strlen(secret))) snprintf(leak, sizeof leak, "%s", path);
            if (memmem(buf, n, controls[k], strlen(controls[k]))) seen[k] = "read";
        }
    }
    printf("secret=%s environ=%s cmdline=%s\n", leak, seen[0], seen[1]);
    return 0;
}
''',
    "go": '''package main

import (
\t"bytes"
\t"fmt"
\t"os"
)

func main() {
\tsecret := []byte("@SECRET@")
\tkinds := []string{"environ", "cmdline"}
\tcontrols := [][]byte{[]byte("PATH="), []byte("crucible-limits")}
\tleak, seen := "absent", []string{"unread", "unread"}
\tentries, _ := os.ReadDir("/proc")
\tfor _, e := range entries {
\t\tif e.Name()[0] < '0' || e.Name()[0] > '9' {
\t\t\tcontinue
\t\t}
\t\tfor k, kind := range kinds {
\t\t\tpath := "/proc/" + e.Name() + "/" + kind
\t\t\tdata, err := os.ReadFile(path)
\t\t\tif err != nil {
\t\t\t\tcontinue
\t\t\t}
\t\t\tif bytes.Contains(data, secret) {
\t\t\t\tleak = path
\t\t\t}
\t\t\tif bytes.Contains(data, controls[k]) {
\t\t\t\tseen[k] = "read"
\t\t\t}
\t\t}
\t}
\tfmt.Printf("secret=%s environ=%s cmdline=%s\\n", leak, seen[0], seen[1])
}
''',
    "javascript": '''const fs = require("fs");
const secret = "@SECRET@";
const controls = { environ: "PATH=", cmdline: "crucible-limits" };
const seen = { environ: "unread", cmdline: "unread" };
let leak = "absent";
for (const pid of fs.readdirSync("/proc").filter((name) => /^[0-9]+$/.test(name))) {
  for (const kind of ["environ", "cmdline"]) {
    const path = `/proc/${pid}/${kind}`;
    let data;
    try {
      data = fs.readFileSync(path);
    } catch (e) {
      continue;
    }
    if (data.includes(secret)) leak = path;
    if (data.includes(controls[kind])) seen[kind] = "read";
  }
}
console.log(`secret=${leak} environ=${seen.environ} cmdline=${seen.cmdline}`);
''',
    "java": r'''import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

public class Main {
    public static void main(String[] args) {
        String secret = "@SECRET@", leak = "absent";
        String[] kinds = {"environ", "cmdline"}, controls = {"PATH=", "crucible-limits"};
        String[] seen = {"unread", "unread"};
        String[] pids = new File("/proc").list();
        for (String pid : pids == null ? new String[0] : pids) {
            if (!pid.matches("[0-9]+")) continue;
            for (int k = 0; k < 2; k++) {
                String path = "/proc/" + pid + "/" + kinds[k], data;
                try {
                    data = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.ISO_8859_1);
                } catch (Exception e) {
                    continue;
                }
                if (data.contains(secret)) leak = path;
                if (data.contains(controls[k])) seen[k] = "read";
            }
        }
        System.out.println("secret=" + leak + " environ=" + seen[0] + " cmdline=" + seen[1]);
    }
}
''',
}

# Unsafe mode: only the program's own environment, as NAME=value lines.
OWN_ENVIRON = "print(open('/proc/self/environ', 'rb').read().decode().replace('\\0', '\\n'))\n"
SHELL_ADDED = {"PWD", "SHLVL", "_", "OLDPWD"}  # what the rlimit wrapper (bash) exports itself


def probe(lang: str, token: str) -> str:
    return PROBES[lang].replace("@SECRET@", token)


@pytest.fixture
def token(monkeypatch) -> str:
    """A fresh secret, planted in this process's environment under the names real secrets have."""
    value = f"planted-{secrets.token_hex(16)}"
    for name in PLANTED_NAMES:
        monkeypatch.setenv(name, value)
    return value


def assert_only_minimal_env(environ_lines: str, token: str) -> None:
    assert token not in environ_lines
    names = {line.partition("=")[0] for line in environ_lines.splitlines() if line}
    assert "PATH" in names
    assert names <= set(untrusted_env()) | SHELL_ADDED, names


def test_probe_reports_a_secret_that_is_there(token):
    """The control: the probe finds a value that is in its environment (passed on purpose)."""
    out = run([interpreter(), "-I", "-S", f"{INSIDE}/main.py"], files={"main.py": probe("python", token)},
              env={"DELIBERATELY_PASSED": token}, limits=Limits(timeout_s=5))
    assert out.status == "ok", out.stderr
    assert out.stdout.startswith("secret=/proc/")
    assert "/environ environ=read cmdline=read" in out.stdout


def test_sandbox_run_keeps_the_callers_environment_out(token):
    out = run([interpreter(), "-I", "-S", f"{INSIDE}/main.py"], files={"main.py": probe("python", token)},
              limits=Limits(timeout_s=5))
    assert out.status == "ok", out.stderr
    assert out.stdout.strip() == CLEAN


def test_unsafe_run_gets_only_the_minimal_environment(token):
    out = run([interpreter(), "-I", "-S", f"{INSIDE}/main.py"], files={"main.py": OWN_ENVIRON},
              limits=Limits(timeout_s=5), unsafe=True)
    assert out.status == "ok", out.stderr
    assert_only_minimal_env(out.stdout, token)


@pytest.mark.parametrize("lang", ["python", "c"])
def test_exec_cli_keeps_the_callers_environment_out(lang, tmp_path):
    token = f"planted-{secrets.token_hex(16)}"
    source = tmp_path / ("probe.py" if lang == "python" else "probe.c")
    source.write_text(probe(lang, token))
    env = dict(os.environ, **{name: token for name in PLANTED_NAMES})
    res = subprocess.run(CRUCIBLE + ["exec", "--lang", lang, str(source), "--json"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    outcome = json.loads(res.stdout)
    assert outcome["status"] == "ok", outcome
    assert outcome["stdout"].strip() == CLEAN


def test_exec_cli_unsafe_gives_only_the_minimal_environment(tmp_path):
    token = f"planted-{secrets.token_hex(16)}"
    source = tmp_path / "env.py"
    source.write_text(OWN_ENVIRON)
    env = dict(os.environ, **{name: token for name in PLANTED_NAMES})
    res = subprocess.run(CRUCIBLE + ["exec", str(source), "--json", "--unsafe-no-sandbox"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    outcome = json.loads(res.stdout)
    assert outcome["status"] == "ok", outcome
    assert_only_minimal_env(outcome["stdout"], token)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_language_build_and_run_keeps_the_callers_environment_out(lang, token):
    out = run_program(lang, probe(lang, token), limits=Limits(timeout_s=10))
    assert out.status == "ok", (out.detail, out.stderr[-2000:])
    assert out.stdout.strip() == CLEAN


def test_puzzle_grading_keeps_the_callers_environment_out(token, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "env-probe", "prompt": "Look around.", "answer": CLEAN,
                                 "difficulty": "easy", "timeout_s": 5}) + "\n")
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "env-probe", "language": lang, "completion": probe(lang, token)})
                               + "\n" for lang in ("python", "c")))
    out = tmp_path / "run"
    assert cli(["eval", "puzzles", "--samples", str(samples), "--tasks", str(tasks), "--out", str(out),
                "--k", "1", "--workers", "2", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert sorted(r["language"] for r in rows) == ["c", "python"]
    for r in rows:
        assert r["status"] == "pass", (r["language"], r["detail"])


def humaneval_probe_problem(test: str) -> dict:
    return {"task_id": "EnvProbe/0", "prompt": "", "entry_point": "probe", "test": test}


def test_humaneval_grading_keeps_the_callers_environment_out(token):
    """The candidate server's sandbox: the trusted check passes the secret in and wants CLEAN back."""
    problem = humaneval_probe_problem(f"def check(candidate):\n    got = candidate({token!r})\n"
                                      f"    assert got == {CLEAN!r}, got\n")
    [(key, verdict)] = list(grade_humaneval([("probe", problem, PYTHON_PROBE_FUNCTION)], 1, Limits(timeout_s=5)))
    assert key == "probe"
    assert verdict.status == "pass", verdict.detail


def test_humaneval_unsafe_candidate_gets_only_the_minimal_environment(token):
    completion = "def probe():\n    return open('/proc/self/environ', 'rb').read().decode()\n"
    allowed = sorted(set(untrusted_env()) | SHELL_ADDED)
    problem = humaneval_probe_problem(f"def check(candidate):\n    got = candidate()\n"
                                      f"    assert {token!r} not in got, 'the secret leaked'\n"
                                      f"    names = {{kv.partition('=')[0] for kv in got.split(chr(0)) if kv}}\n"
                                      f"    assert 'PATH' in names, got\n"
                                      f"    assert names <= set({allowed!r}), got\n")
    [(_, verdict)] = list(grade_humaneval([("own", problem, completion)], 1, Limits(timeout_s=5), unsafe=True))
    assert verdict.status == "pass", verdict.detail


def test_engine_python_tool_keeps_the_callers_environment_out(token, tmp_path):
    """The model writes the whole probe as one (added) token, so a bigram script model can emit it."""
    code = PYTHON_PROBE_FUNCTION + f"\nprint(probe({token!r}))\n"
    testing.tokenizer(384).save(tmp_path)
    hf = HFTokenizer.from_file(str(tmp_path / FILE_NAME))
    hf.add_tokens([AddedToken(code, normalized=False)])
    tok = Tokenizer(hf)
    [code_id] = tok.encode(code)
    s = tok.special_id
    model = testing.bigram_gpt(tok, {s("assistant_start"): s("python_start"), s("python_start"): code_id,
                                  code_id: s("python_end")}, default=s("assistant_end"))
    prompt = [tok.bos_id, s("user_start"), *tok.encode("look around"), s("user_end"), s("assistant_start")]
    [completion] = Engine(model, tok).generate(prompt, 1, SamplingParams(max_tokens=200))
    assert f"<|output_start|>{CLEAN}\n<|output_end|>" in completion.text
