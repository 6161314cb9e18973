"""Reading an answer out of model text, and deciding whether two answers are the same.

Why here and by hand: answer-checked tasks (`crucible.tasks.answers`) are graded by what the text
*says*, so the rule must be exact, documented and hard to game. math-verify and lm-eval's GSM8K
filters are near, but each is one regex or a sympy parse; neither states what a reply listing many
numbers is worth. The rule is:

`final_answer(text)`: thinking text removed, the LAST explicit answer in the text counts — the last
of "#### X" (to the end of its line), "\\boxed{X}" (balanced braces) and "the answer is X" /
"final answer: X" / "Answer: X" (to the end of its line or sentence), by position; markers with
nothing after them are ignored. With no marker, the last number in the text. A reply that lists
many numbers is worth its last one, and "#### 41 or 42" is two numbers, which is no number.

`same_answer(got, expected)`: when `expected` is a number, `got` must hold exactly one number and
no other digit (words around it are units: "42 apples", "$42.") and the two are equal as exact
fractions ("1/2" == "0.5" == "0.50"; "$1,000" == "1000"; "50%" == "50"; fractions.Fraction, so
0.1 + 0.2 is no trouble); otherwise the two strings are equal after NFKC, casefolding, collapsed
whitespace and stripping surrounding punctuation and quotes.

Not covered: tolerances (1/3 vs 0.333), scientific notation, numbers in words ("forty-two"),
LaTeX beyond \\frac, \\text, \\$ and \\%, answers that are sets or several values.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

from crucible.sanitize import strip_thinking

# The rest of the line is read by a lookahead, so that a later marker on the same line is found too.
HASHES = re.compile(r"####[ \t]*(?=([^\n]*))")
BOXED = re.compile(r"\\boxed\s*\{")
SAID = re.compile(r"\b(?:final\s+)?answer\s*(?:is\b\s*:?|:|=)[ \t*:]*(?=([^\n]*))", re.IGNORECASE)
SENTENCE_END = re.compile(r"\.(?:\s|$)")
# A number as written: sign, currency, digits (grouped by commas of three, or not), decimals, a
# fraction, a percent sign. Not preceded by a letter or digit (x2 is a name, not the number 2).
NUMBER = re.compile(r"(?<![\w.])[-+]?[$€£¥]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:\s*/\s*\d+)?%?(?!\w)")
WHOLE_NUMBER = re.compile(r"([-+]?)[$€£¥]?([-+]?)((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:/(\d+))?%?")
LATEX = ((re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}"), r"\1/\2"), (re.compile(r"\\text\{([^{}]*)\}"), r"\1"),
         (re.compile(r"\\([$%])"), r"\1"), (re.compile(r"\\[,!;]"), ""))
QUOTES = "\"'`*_“”‘’«»"


def final_answer(text: str) -> str | None:
    """The answer the text gives (see the module docstring), or None when it gives none."""
    text = strip_thinking(text)
    found = [(m.start(), m.group(1)) for m in HASHES.finditer(text)]
    found += [(m.start(), said(m.group(1))) for m in SAID.finditer(text)]
    found += [(m.start(), boxed(text, m.end())) for m in BOXED.finditer(text)]
    found = [(at, span) for at, span in found if span and span.strip(" \t*:")]
    if found:
        return max(found)[1].strip()
    numbers = [m.group(0) for m in NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]
    return numbers[-1] if numbers else None


def said(span: str) -> str:
    """A phrase's answer: up to the end of its sentence."""
    m = SENTENCE_END.search(span)
    return span[:m.start()] if m else span


def boxed(text: str, start: int) -> str | None:
    """The contents of the braces opened just before `start`, or None when they never close."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return None


def clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    for pattern, repl in LATEX:
        text = pattern.sub(repl, text)
    return text


def strip_marks(text: str) -> str:
    """Surrounding whitespace, punctuation and quotes off (a leading sign, currency or point stays)."""
    keep_first = "-+.$€£¥"
    while text and (text[-1].isspace() or is_mark(text[-1]) and text[-1] != "%"):
        text = text[:-1]
    while text and (text[0].isspace() or is_mark(text[0]) and text[0] not in keep_first):
        text = text[1:]
    return text


def is_mark(c: str) -> bool:
    return unicodedata.category(c).startswith("P") or c in QUOTES


def to_number(text: str) -> Fraction | None:
    """The exact value of a text that is one number and nothing else, or None."""
    m = WHOLE_NUMBER.fullmatch(re.sub(r"\s*/\s*", "/", strip_marks(clean(text))))
    if not m or (m.group(1) and m.group(2)):
        return None
    value = Fraction(m.group(3).replace(",", ""))
    if m.group(4) is not None:
        if int(m.group(4)) == 0:
            return None
        value /= int(m.group(4))
    return -value if "-" in (m.group(1) + m.group(2)) else value


def number_in(text: str) -> Fraction | None:
    """The one number a text holds, words around it allowed ("$42 in all"); None when it holds no
    number, several, or another digit anywhere ("x2 = 42" has a digit in a name)."""
    text = clean(text)
    whole = to_number(text)
    if whole is not None:
        return whole
    spans = [m for m in NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]
    if len(spans) != 1:
        return None
    rest = text[:spans[0].start()] + text[spans[0].end():]
    return None if any(c.isdigit() for c in rest) else to_number(spans[0].group(0))


def normalise_text(text: str) -> str:
    return strip_marks(" ".join(clean(text).casefold().split()))


def same_answer(got: str | None, expected: str) -> bool:
    if got is None:
        return False
    want = to_number(expected)
    if want is not None:
        return number_in(got) == want
    return normalise_text(got) == normalise_text(expected)


def answer_key(got: str | None) -> str | None:
    """What vote@N clusters by (no oracle: the expected answer is not known): the number a text
    holds, else its normalised words; None when there is no answer."""
    if got is None:
        return None
    value = number_in(got)
    return f"number:{value}" if value is not None else f"text:{normalise_text(got)}" if normalise_text(got) else None
