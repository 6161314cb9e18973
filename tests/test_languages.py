"""Every language end to end in the sandbox: correct, wrong, non-compiling, hanging and crashing programs,
plus the build cache (compile once, cache compile errors too, concurrent graders build once)."""

from __future__ import annotations

import json
import threading

import pytest

from crucible.cli import main as cli
from crucible.languages import MODULES, UNAVAILABLE, all_languages, build, get, run_program
from crucible.sandbox import Limits
from test_languages_programs import ANSWER, PROGRAMS

HANG_LIMITS = Limits(timeout_s=1)


def test_every_language_has_programs_and_a_toolchain():
    assert sorted(PROGRAMS) == sorted(MODULES)
    missing = [lang.name for lang in all_languages() if not lang.ready()]
    assert not missing, f"toolchains missing for {missing}: run `make toolchains`"


@pytest.mark.parametrize("lang", MODULES)
def test_language_end_to_end(lang):
    programs = PROGRAMS[lang]
    correct = run_program(lang, programs["correct"])
    assert (correct.status, correct.stdout.strip()) == ("ok", ANSWER), correct.stderr[-500:]

    wrong = run_program(lang, programs["wrong"])
    assert wrong.status == "ok" and wrong.stdout.strip() not in ("", ANSWER), wrong.stderr[-500:]

    broken = run_program(lang, programs["broken"])
    assert broken.status == "compile_error", (broken.status, broken.stderr[-500:])
    assert broken.detail and broken.stderr.strip(), "the compiler's message must be kept"

    hang = run_program(lang, programs["hang"], limits=HANG_LIMITS)
    assert hang.status == "timeout", (hang.status, hang.detail, hang.stderr[-300:])
    assert hang.wall_s < HANG_LIMITS.deadline_s + 2

    crash = run_program(lang, programs["crash"])
    assert crash.status == "runtime_error", (crash.status, crash.stderr[-500:])


def test_build_cache_compiles_each_distinct_program_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_BUILD_CACHE", str(tmp_path / "cache"))
    build.reset_stats()
    src = PROGRAMS["c"]["correct"]
    results = []
    threads = [threading.Thread(target=lambda: results.append(run_program("c", src))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.stdout.strip() for r in results] == [ANSWER] * 4
    s = build.stats()
    assert (s["builds"], s["hits"]) == (1, 3), s

    # a compile error is cached and reported again without recompiling
    first = run_program("c", PROGRAMS["c"]["broken"])
    again = run_program("c", PROGRAMS["c"]["broken"])
    assert first.status == again.status == "compile_error" and first.stderr == again.stderr
    s = build.stats()
    assert (s["builds"], s["hits"], s["compile_errors"]) == (2, 4, 1), s
    assert s["hit_rate"] == pytest.approx(4 / 6)

    # another program (even a one-character change) is another build
    run_program("c", src.replace("s = 0", "s = 0 "))
    assert build.stats()["builds"] == 3
    assert len(list((tmp_path / "cache").glob("*/*/meta.json"))) == 3


def test_a_program_cannot_damage_its_cached_build(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_BUILD_CACHE", str(tmp_path / "cache"))
    src = '#include <stdio.h>\nint main(void){ FILE *f = fopen("main", "w"); if (f) { fputs("x", f); fclose(f); }' \
          ' puts("ran"); return 0; }\n'
    assert run_program("c", src).stdout.strip() == "ran"
    assert run_program("c", src).stdout.strip() == "ran"  # the artifact was copied, not shared


def test_aliases_and_unavailable_languages():
    assert get("c++").name == "cpp" and get("TS").name == "typescript" and get("golang").name == "go"
    with pytest.raises(KeyError, match="HHVM"):
        get("hack")
    with pytest.raises(KeyError, match="unknown language"):
        get("cobol")
    assert "hack" in UNAVAILABLE


def test_languages_command_lists_versions_and_readiness(capsys):
    assert cli(["languages", "--json"]) == 0
    rows = {r["language"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(MODULES) | {"hack"}
    assert all(rows[m]["ready"] and rows[m]["version"] for m in MODULES)
    assert rows["hack"]["ready"] is False and "HHVM" in rows["hack"]["note"]
    assert cli(["languages"]) == 0
    table = capsys.readouterr().out
    assert "kotlin" in table and "1.3.31" in table and "unavailable" in table
    assert cli(["languages", "--humaneval"]) == 0
    text = capsys.readouterr().out
    assert "rust        147/164 translated" in text and "HumanEval/10" in text


@pytest.mark.parametrize("lang", MODULES)
def test_crucible_exec_runs_every_language(lang, tmp_path, capsys):
    source = tmp_path / get(lang).source_name
    source.write_text(PROGRAMS[lang]["correct"])
    assert cli(["exec", "--lang", lang, str(source), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["stdout"].strip()) == ("ok", ANSWER), out
    source.write_text(PROGRAMS[lang]["broken"])
    assert cli(["exec", "--lang", lang, str(source), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "compile_error" and out["stderr"].strip(), out


def test_java_runs_the_class_the_model_named_in_its_package():
    src = ("package com.example;\n\npublic class Solver {\n    public static void main(String[] args) {\n"
           f"        System.out.println({ANSWER});\n    }}\n}}\n")
    out = run_program("java", src)
    assert (out.status, out.stdout.strip()) == ("ok", ANSWER), out.stderr[-500:]
