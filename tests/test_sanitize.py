"""Sanitization of model output: stops, fences, thinking text, chat replies to completions."""

from __future__ import annotations

import ast

import pytest

from crucible.languages import Language, get
from crucible.sanitize import (StopStream, completion_from_chat, extract_code, extract_program, fenced_blocks,
                               held_back, strip_thinking, truncate_at_stop)
from crucible.tasks.common import Task
from crucible.tasks.humaneval import STOP

PY = get("python")
RUST = Language(name="rust", fence_tags=("rust", "rs"), source_name="main.rs")
TASK = Task("t/0", 'def add(a, b):\n    """Add two numbers."""\n', "python", entry_point="add")


def test_truncate_at_earliest_stop():
    text = "    return 1\n\nprint(f())\ndef g():\n"
    assert truncate_at_stop(text, STOP) == ("    return 1\n", True)
    assert truncate_at_stop("    return 1\n", STOP) == ("    return 1\n", False)
    assert truncate_at_stop("abc", ["", "zz"]) == ("abc", False)  # an empty stop never matches


def test_no_fence_is_taken_as_code():
    assert extract_code("def f():\n    return 1\n", PY.fence_tags) == "def f():\n    return 1"


def test_prose_around_the_fence():
    reply = "Here is the code:\n\n```python\ndef f():\n    return 1\n```\n\nThis returns one."
    assert extract_code(reply, PY.fence_tags) == "def f():\n    return 1\n"


def test_several_fences_prefer_language_then_entry_point_then_longest():
    reply = ("Example:\n```\nf()\n```\nShell:\n```bash\npip install x && run --all --the --things\n```\n"
             "Solution:\n```python\ndef helper():\n    pass\n```\nand\n```py\ndef f(x):\n    return x\n```\n")
    assert extract_code(reply, PY.fence_tags, entry_point="f") == "def f(x):\n    return x\n"
    assert extract_code(reply, PY.fence_tags) == "def helper():\n    pass\n"  # equal length: the first
    assert extract_code("```\na\n```\n```\nlonger\n```", PY.fence_tags) == "longer\n"


def test_unterminated_fence_runs_to_the_end():
    reply = "Sure:\n```python\ndef f():\n    return 1\n"
    blocks = fenced_blocks(reply)
    assert len(blocks) == 1 and not blocks[0].closed
    assert extract_code(reply, PY.fence_tags) == "def f():\n    return 1\n"


def test_longer_fence_and_tildes_and_indented_fence():
    reply = "````python\nx = '```'\n```\ny = 2\n````\n~~~py\nz = 3\n~~~\n"
    blocks = fenced_blocks(reply)
    assert [b.code for b in blocks] == ["x = '```'\n```\ny = 2", "z = 3"]
    listed = "1. Do this:\n   ```python\n   def f():\n       return 1\n   ```\n"
    assert extract_code(listed, PY.fence_tags) == "def f():\n    return 1\n"


def test_thinking_text_with_code_is_ignored():
    reply = ("<think>Maybe\n```python\ndef f():\n    return 'wrong and much much longer than the answer'\n```\n"
             "no.</think>\nAnswer:\n```python\ndef f():\n    return 2\n```")
    assert extract_code(reply, PY.fence_tags) == "def f():\n    return 2\n"


def test_thinking_forms():
    assert strip_thinking("a<think>x</think>b<think>y</think>c") == "abc"
    assert strip_thinking("pre-filled reasoning</think>answer") == "answer"  # opening tag in the template
    assert strip_thinking("answer<think>still thinking, never closed") == "answer"
    assert strip_thinking("<THINKING>x</THINKING>ok") == "ok"
    assert extract_code("<think>```python\nx=1\n```", PY.fence_tags) == ""  # only thinking: no code


def test_python_chat_reply_that_defines_the_function_runs_after_the_prompt():
    reply = "```python\nimport math\n\ndef add(a, b):\n    return math.fsum([a, b])\n\nif __name__ == '__main__':\n    print(add(input(), 1))\n```"
    completion = completion_from_chat(reply, TASK, PY)
    program = TASK.prompt + completion
    ast.parse(program)  # the stub (a docstring body) then the model's definition
    assert "__main__" not in completion and "import math" in completion
    scope: dict = {}
    exec(compile(program, "<t>", "exec"), scope)  # trusted: our own literal code
    assert scope["add"](2, 3) == 5


@pytest.mark.parametrize("reply", ["```python\nreturn a + b\n```", "```python\n    return a + b\n```",
                                   "return a + b"])
def test_python_chat_reply_that_is_a_body(reply):
    scope: dict = {}
    exec(compile(TASK.prompt + completion_from_chat(reply, TASK, PY), "<t>", "exec"), scope)
    assert scope["add"](2, 3) == 5


def test_whole_program_task_keeps_the_code():
    task = Task("p/1", "Read n, print n squared.", "python")
    assert completion_from_chat("```python\nn = int(input())\nprint(n * n)\n```", task, PY) == \
        "n = int(input())\nprint(n * n)\n"


def test_brace_language_keeps_what_follows_the_header():
    task = Task("r/0", "/// Add.\nfn add(a: i32, b: i32) -> i32 {\n", "rust", entry_point="add")
    reply = "```rust\nfn add(a: i32,  b: i32) -> i32 {\n    a + b\n}\n```"
    assert completion_from_chat(reply, task, RUST) == "    a + b\n}\n"
    reflowed = "```rust\nfn add(\n    a: i32, b: i32) -> i32 {\n    a + b\n}\n```"
    assert completion_from_chat(reflowed, task, RUST) == "    a + b\n}\n"  # found by the entry point
    assert completion_from_chat("```rust\n    a + b\n}\n```", task, RUST) == "    a + b\n}\n"  # a body already


def test_stop_stream_never_shows_part_of_a_stop():
    stream = StopStream(("\ndef ",))
    shown = [stream.feed(t) for t in ("  x = 1", "  x = 1\n", "  x = 1\nde", "  x = 1\ndef g", "  x = 1\ndef g()")]
    assert shown == ["  x = 1", "", "", "", ""] and stream.stopped and stream.text == "  x = 1"
    stream = StopStream(("\ndef ",))
    assert stream.feed("a\nd") == "a" and stream.feed("a\ndone") == "\ndone" and stream.finish() == ""
    stream = StopStream(())
    assert stream.feed("caf\ufffd") == "caf" and stream.feed("café") == "é"  # half a UTF-8 character waits
    assert held_back("x\nde", ["\ndef "]) == 3 and held_back("xyz", ["\ndef "]) == 0


def test_extract_program_prefers_the_languages_fence():
    completion = ("Here you go:\n```python\nprint(1)\n```\nand in Rust:\n```rust\nfn main() {}\n```\n")
    assert extract_program(completion, "rust") == "fn main() {}\n"
    assert extract_program(completion, "py") == "print(1)\n"
    assert extract_program("```\nint main(){}\n```", "c") == "int main(){}\n"
    raw = "fn main() { println!(\"{}\", 1); }"
    assert extract_program(raw, "rust") == raw  # a base model's raw continuation
