"""Write an instance's problem statement from its failing tests' output, the way a user files a bug.

The statement names the failing tests, shows the first few failures' tracebacks (trimmed to their
last lines: the assertion and the frames nearest to it) and says how to run the tests. It never
names the mutation or the changed line beyond what a traceback shows. No LLM is involved, so the
text is reproducible and says nothing the test output does not.

Not covered: paraphrased or vaguer statements (SWE-smith's LLM-written issues); tests whose
runner prints no traceback (then only their names are given).
"""

from __future__ import annotations

from crucible.swe.testlog import failure_blocks

SHOWN_FAILURES = 2       # tracebacks quoted in full (after trimming)
KEPT_FRAMES = 2          # last frames kept of each traceback
MESSAGE_LINES = 12       # lines kept of each exception message
LISTED = 10              # failing test names listed


def _trim(block: str) -> str:
    """The traceback's last frames and the start of its message."""
    lines = block.strip("\n").splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if not frames:
        return "\n".join(lines[:MESSAGE_LINES])
    message_at = next((i for i in range(frames[-1] + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    kept = frames[-KEPT_FRAMES:]
    head = ["Traceback (most recent call last):"] + (["  ..."] if len(frames) > len(kept) else [])
    message = lines[message_at:message_at + MESSAGE_LINES]
    if len(lines) - message_at > MESSAGE_LINES:
        message.append("...")
    return "\n".join(head + lines[kept[0]:message_at] + message)


def problem_statement(target: str, fail_to_pass: list[str], log: str, test_cmd: str) -> str:
    blocks = failure_blocks(log)
    n = len(fail_to_pass)
    lines = [f"{n} test{'s' if n != 1 else ''} of {target} fail{'s' if n == 1 else ''} on the current code.", ""]
    quoted = [t for t in fail_to_pass if t in blocks][:SHOWN_FAILURES]
    for test in quoted:
        lines += [f"{test}:", "```", _trim(blocks[test]), "```", ""]
    listed = [t for t in fail_to_pass if t not in quoted]
    if listed:
        lines += ["Also failing:" if quoted else "Failing:"] + [f"- {t}" for t in listed[:LISTED]]
        if len(listed) > LISTED:
            lines.append(f"- ... and {len(listed) - LISTED} more")
        lines.append("")
    lines += ["Fix the code (not the tests) so that every test passes. Run the tests with:", "",
              f"    {test_cmd}"]
    return "\n".join(lines) + "\n"
