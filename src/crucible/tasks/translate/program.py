"""A translated problem (`Translation`) and how a completion becomes its test program."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Translation:
    task_id: str
    language: str
    header: str            # imports / package / class opening that precede the function
    prompt: str            # what a model completes: header, doc comment, signature, open body
    tests: str             # appended after the function: the test main (and closing the class)
    stop: list[str]        # where a completed body ends; the completion is cut there
    closer: str            # ends the function after a body cut at a stop sequence
    defines: str           # regex: the completion holds a whole definition of the function
    name: str = ""

    braces: bool = True    # the body is closed by a matching "}" (all but OCaml)

    def program(self, code: str) -> str:
        """The test program for a completion: a whole function definition (e.g. a chat model's fenced
        block) replaces the prompt; a body continues the prompt and ends at the brace that closes the
        function (found by matching braces, so indentation does not matter) or, without braces, at
        the first stop sequence."""
        if re.search(self.defines, code, re.M):
            return self.header + code.rstrip() + "\n" + self.tests
        if self.braces:
            cut = closing_brace(code, single_quoted_strings=self.language in ("javascript", "typescript"))
        else:
            cut = min([i for i in (code.find(s) for s in self.stop) if i >= 0], default=len(code))
        return self.prompt + code[:cut].rstrip("\n") + self.closer + self.tests


CHAR_LITERAL = re.compile(r"'(\\.[^']{0,8}|[^\\'\n])'")


def closing_brace(code: str, single_quoted_strings: bool = False) -> int:
    """Index of the "}" closing a body whose "{" is already open (len(code) if it never closes).
    Skips string, char and template literals and // and /* */ comments; a quote that does not start
    a char literal (a Rust lifetime) is just a character."""
    depth, i, n = 1, 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            i = code.find("\n", i)
            i = n if i < 0 else i
            continue
        if code.startswith("/*", i):
            i = code.find("*/", i + 2)
            i = n if i < 0 else i + 2
            continue
        if c in "\"`" or (c == "'" and single_quoted_strings):
            j = i + 1
            while j < n and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            i = j + 1
            continue
        if c == "'":
            m = CHAR_LITERAL.match(code, i)
            i = m.end() if m else i + 1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n
