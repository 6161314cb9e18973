"""`crucible chat` driven through a pipe: conversation, /reset, continued lines, completion mode."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crucible.testing import TOY_TASK, demo_model


@pytest.fixture(scope="module")
def spec():
    return f"hf:{demo_model()}"


def chat(spec, stdin: str, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crucible", "chat", "--model", spec, "--temperature", "0",
                           "--max-tokens", "40", *extra], input=stdin, capture_output=True, text=True, timeout=300)


def test_piped_conversation(spec):
    done = chat(spec, "What is 2+2?\n/reset\nWhat is \\\n2+2?\n\nWhat is 2+2?\n/quit\nnever read\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "2+2 is 4."                       # memorized, streamed, newline-terminated
    assert lines[1] == "(new conversation)"
    assert lines[2] != "2+2 is 4."                       # "What is \n2+2?" is another question
    assert len(lines) == 4 and "never" not in done.stdout  # the blank line is skipped; /quit stops


def test_completion_mode_continues_the_text(spec):
    lines = TOY_TASK["prompt"].replace("\n", "\\\n") + "\n"  # continued lines rebuild the multi-line prompt
    done = chat(spec, lines, "--completion")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("    return x + 1\n")


def test_bad_arguments_exit_2(spec, tmp_path):
    assert chat(spec, "", "--top-p", "0").returncode == 2
    done = chat(f"native:{tmp_path / 'missing'}", "hi\n")
    assert done.returncode == 2 and "not a directory" in done.stderr
