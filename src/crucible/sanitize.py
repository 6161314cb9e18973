"""Turn what a model wrote into what a grader runs: stop sequences, fenced code, thinking text.

Base-model completion: the continuation is cut at the first stop sequence of the task's stop set.
Backends apply it (`truncate_at_stop`, and `StopStream` while streaming), so a `Generation` already
ends before any stop sequence and nothing downstream cuts again. Chat replies: `<think>…</think>` text is removed first (code inside
it is never picked), then one fenced block is chosen — tagged with the task's language (its
`fence_tags`) or untagged, mentioning the entry point when there is one, the longest of those — and
an unterminated fence runs to the end of the reply. A reply with no fence at all is taken as code.

Function-completion tasks (a task with an "entry_point", HumanEval style) are graded as
`prompt + completion + tests`, so a chat reply is turned into a continuation of the prompt:
- Python: if the code defines the entry point at top level, the completion is the whole code on
  its own lines after the stub (the prompt's function has a docstring body, so it parses, and the
  model's definition replaces it; the model's imports and helpers are kept). Otherwise the code is
  a body: it is indented under the stub if the model left it flush.
- Other languages: the completion is what follows the prompt's last line (the function header,
  e.g. `fn add(a: i32) -> i32 {`) in the code; failing that, what follows the line that opens the
  entry point; failing that, the code itself, taken as the body.
Whole-program tasks (no "entry_point") use the extracted code as it is. Answer tasks (language
`PROSE`: the reply is words ending in an answer) keep the reply, thinking text removed: it is parsed
by its grader (`crucible.grade.answer_text`), never run.

Grading has its own, older rule for whole programs, `extract_program` (first block tagged with the
language, else the first untagged block, else the whole completion; ``` fences only, no thinking
text removed). It is kept as it is because a sample's program decides its program key and verdict:
changing it would regrade and change every stored result. The two rules live here side by side so
that the difference is visible; unifying them is a change of results, to be made on purpose.

Hand-written because the rules are ours to document and test; EvalPlus's sanitizer (the nearest
library) is Python-only and rebuilds programs from an AST, which cannot serve 11 languages.
Not covered: code split across several fences (only one block is kept), languages whose prompts
do not end on the function header.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

THINK_BLOCK = re.compile(r"<(think|thinking)>.*?</\1>", re.DOTALL | re.IGNORECASE)
FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^\s`]*)[^\n`]*$")


@dataclass(frozen=True)
class Block:
    tag: str        # lower-cased first word after the fence ("" when untagged)
    code: str
    closed: bool    # False: the reply ended inside the fence


def strip_thinking(text: str) -> str:
    """Remove reasoning text: <think>…</think> blocks, a reply that is still thinking, and a
    leading unopened …</think> (templates that pre-fill the opening tag)."""
    text = THINK_BLOCK.sub("", text)
    lower = text.lower()
    for tag in ("think", "thinking"):
        close = lower.find(f"</{tag}>")
        if close >= 0:  # closed but never opened: everything before it was thinking
            text, lower = text[close + len(tag) + 3:], lower[close + len(tag) + 3:]
        opened = lower.find(f"<{tag}>")
        if opened >= 0:  # opened, never closed: the rest is thinking
            text, lower = text[:opened], lower[:opened]
    return text


def fenced_blocks(text: str) -> list[Block]:
    """Markdown fenced blocks (``` or ~~~, three or more), in order; a closing fence is the same
    character, at least as long, alone on its line."""
    blocks: list[Block] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, tag = m.group(1), m.group(2), m.group(3).lower()
        body, i, closed = [], i + 1, False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                closed = True
                i += 1
                break
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        blocks.append(Block(tag, "\n".join(body), closed))
    return blocks


def extract_code(text: str, fence_tags=(), entry_point: str | None = None) -> str:
    """The one code block a reply means as its answer (see the module docstring for the rule)."""
    text = strip_thinking(text)
    blocks = fenced_blocks(text)
    if not blocks:
        return text.strip("\n")
    tags = {t.lower() for t in fence_tags}
    candidates = ([b for b in blocks if b.tag in tags] or [b for b in blocks if not b.tag] or blocks)
    if entry_point:
        named = re.compile(rf"\b{re.escape(entry_point)}\b")
        candidates = [b for b in candidates if named.search(b.code)] or candidates
    best = max(candidates, key=lambda b: len(b.code))  # max keeps the first of equals
    return textwrap.dedent(best.code).strip("\n") + "\n"


def truncate_at_stop(text: str, stops) -> tuple[str, bool]:
    """Cut at the earliest stop sequence; also says whether one was found."""
    cut = find_stop(text, stops)
    return (text, False) if cut < 0 else (text[:cut], True)


def find_stop(text: str, stops) -> int:
    positions = [p for p in (text.find(s) for s in stops if s) if p >= 0]
    return min(positions) if positions else -1


@dataclass
class StopStream:
    """Follows one growing completion: what is safe to show so far, and whether a stop was hit.

    Text that could still turn out to be the start of a stop sequence is held back, so a
    streaming client never sees part of a stop sequence.
    """
    stops: tuple[str, ...]
    shown: int = 0
    stopped: bool = False
    text: str = ""

    def feed(self, text: str) -> str:
        """Give the whole completion so far; returns the new text safe to show."""
        if self.stopped:
            return ""
        cut = find_stop(text, self.stops)
        if cut >= 0:
            self.stopped, end, self.text = True, cut, text[:cut]
        else:
            self.text = text
            end = len(text) - held_back(text, self.stops)
            if text.endswith("\ufffd"):  # an incomplete UTF-8 character: wait for the rest
                end = min(end, len(text) - 1)
        delta = text[self.shown:end] if end > self.shown else ""
        self.shown = max(self.shown, end)
        return delta

    def finish(self) -> str:
        """The rest, once generation has ended without a stop sequence."""
        delta = self.text[self.shown:]
        self.shown = len(self.text)
        return delta


def held_back(text: str, stops) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a stop sequence."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


def python_defines(code: str, name: str) -> bool:
    return re.search(rf"^(async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.MULTILINE) is not None


def drop_python_main(code: str) -> str:
    """A top-level `if __name__ == "__main__":` block would run demo code (often reading stdin)."""
    m = re.search(r"^if[ \t]+__name__[ \t]*==", code, re.MULTILINE)
    return code[:m.start()].rstrip("\n") + "\n" if m else code


def completion_from_chat(reply: str, task, language=None) -> str:
    """What to grade, from a chat reply to `task` (a `crucible.tasks.common.Task`) in `language`
    (a `Language`; default: the task's)."""
    from crucible.languages import get

    if task.kind == "answer":
        return strip_thinking(reply).strip()
    language = language or get(task.language)
    entry_point = task.entry_point or None
    code = extract_code(reply, language.fence_tags, entry_point)
    if language.name == "python":
        code = drop_python_main(code)
    if not entry_point:
        return code
    if language.name == "python":
        if python_defines(code, entry_point):
            return "\n" + code
        lines = [l for l in code.split("\n") if l.strip()]
        if lines and not lines[0][:1].isspace():
            code = textwrap.indent(code, "    ")
        return code
    return body_after_header(code, task.prompt, entry_point)


def body_after_header(code: str, prompt: str, entry_point: str) -> str:
    """For brace languages: the code after the line that opens the function the prompt ends in."""
    lines = code.split("\n")
    prompt_lines = [l.strip() for l in prompt.rstrip().split("\n") if l.strip()]
    header = prompt_lines[-1] if prompt_lines else ""
    squash = lambda s: re.sub(r"\s+", "", s)  # noqa: E731  (headers reflowed by the model still match)
    for i, line in enumerate(lines):
        if header and squash(line) == squash(header):
            return "\n".join(lines[i + 1:])
    for i, line in enumerate(lines):
        if re.search(rf"\b{re.escape(entry_point)}\b\s*[(<]", line):  # the header, maybe over several lines
            for j in range(i, len(lines)):
                if lines[j].rstrip().endswith("{"):
                    return "\n".join(lines[j + 1:])
    return code


GRADING_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def graded_text(completion: str, language: str) -> str:
    """What grading reads of a sample: the whole reply of an answer in words (`PROSE`), else the
    program (`extract_program`). Mining and voting dedupe and cluster by it."""
    from crucible.languages import PROSE

    return completion if language == PROSE else extract_program(completion, language)


def extract_program(completion: str, lang) -> str:
    """Grading's rule for a whole program (see the module docstring): the first ``` block tagged
    with this language (a name or a `Language`), else the first untagged block, else the whole
    completion (a base model's raw continuation)."""
    from crucible.languages import get

    language = get(lang) if isinstance(lang, str) else lang
    blocks = GRADING_FENCE.findall(completion)
    for tag, body in blocks:
        if tag.lower() in language.fence_tags:
            return body
    for tag, body in blocks:
        if not tag:
            return body
    return completion
