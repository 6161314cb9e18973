"""Run one program on several stdin inputs, in the sandbox, and get one Outcome per input.

Why: verifiable tasks (the task world, vote@N's behaviour clusters) run a candidate on 5–10 inputs,
and a sandboxed Python start costs 50–130 ms here, so one sandbox per input would make grading the
cost of a mining round. Python programs therefore run in ONE sandbox: a small driver compiles the
candidate once, then forks a child per input with stdin, stdout and stderr bound to files in the
sandbox's work dir and its own CPU limit, and reports each child's exit status, CPU time and
output as a Python literal. Each input still gets a fresh process (no state carries over between inputs);
the per-input status comes from the sandbox's own `classify`. Other languages run once per input
through `run_program` (builds are cached, so a compiled program is built once).

What the driver's report can be trusted for: a candidate can forge it (it runs as the same uid), but
only its own outputs — the expected outputs never enter the sandbox, so forging gains nothing a
correct program would not print anyway.

Not covered: per-input wall deadlines (the sandbox's deadline covers the whole batch), programs
that read files other than stdin, and opt-in package envs (`crucible.sandbox.pyenv`): the batch
runs with the standard library only.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from crucible.languages import get, run_program
from crucible.sandbox import INSIDE, Limits, Outcome, classify, run

# Imports only modules built into the interpreter (json and traceback would double its start-up time);
# the report is a Python literal, read back with ast.literal_eval.
DRIVER = r'''
import os, resource, sys
WORK, count, per_input_s, output_cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
try:
    with open(os.path.join(WORK, "candidate.py"), encoding="utf-8") as f:
        code = compile(f.read(), "main.py", "exec")
except (SyntaxError, ValueError) as e:
    print(repr(("compile_error", f"{type(e).__name__}: {e}")))
    sys.exit(0)
results = []
for i in range(count):
    paths = [os.path.join(WORK, f"{name}{i}") for name in ("in", "out", "err")]
    pid = os.fork()
    if pid == 0:
        resource.setrlimit(resource.RLIMIT_CPU, (per_input_s, per_input_s + 1))
        for fd, path, mode in ((0, paths[0], os.O_RDONLY), (1, paths[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                               (2, paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            os.dup2(os.open(path, mode, 0o600), fd)
        status = 0
        try:
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        except SystemExit as e:
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            status = 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            status = status or 1
        os._exit(status & 0xFF)
    _, wait_status, usage = os.wait4(pid, 0)
    outputs = []
    for path in paths[1:]:
        try:
            with open(path, "rb") as f:
                outputs.append(f.read(output_cap).decode("utf-8", "replace"))
        except OSError:
            outputs.append("")
    results.append((os.waitstatus_to_exitcode(wait_status), usage.ru_utime + usage.ru_stime, outputs[0],
                    outputs[1][-2000:]))
print(repr(results))
'''


def run_on_inputs(lang: str, program: str, inputs: list[str], *, limits: Limits | None = None,
                  unsafe: bool = False) -> list[Outcome]:
    """One Outcome per input, in order. `limits.timeout_s` is each input's CPU budget. A failure of
    the whole batch (wall deadline, output flood, sandbox error) is every input's outcome."""
    limits = limits or Limits()
    language = get(lang)
    if language.name != "python":
        return [run_program(language, program, stdin=text, limits=limits, unsafe=unsafe) for text in inputs]
    from crucible.languages.python import launch, name_missing_module

    per_input_s = max(1, round(limits.timeout_s))
    batch = replace(limits, timeout_s=per_input_s * max(1, len(inputs)) + 1)
    cap = max(1024, limits.output_bytes // (len(inputs) + 1))
    files = {"driver.py": DRIVER, "candidate.py": program, **{f"in{i}": text for i, text in enumerate(inputs)}}
    python, _, _ = launch(None, unsafe)  # the standard library only (no opt-in package env here)
    out = run([*python, f"{INSIDE}/driver.py", INSIDE, str(len(inputs)), str(per_input_s), str(cap)],
              files=files, limits=batch, unsafe=unsafe)
    if out.status != "ok":
        return [out] * len(inputs)
    try:
        report = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    except (ValueError, SyntaxError, MemoryError, RecursionError, IndexError):
        return [replace(out, status="runtime_error", detail="the program broke the driver's report")] * len(inputs)
    if isinstance(report, tuple) and report[:1] == ("compile_error",):
        return [replace(out, status="compile_error", stdout="", detail=str(report[1])[:300])] * len(inputs)
    if not isinstance(report, list) or len(report) != len(inputs) or not all(_well_formed(r) for r in report):
        return [replace(out, status="runtime_error", detail="the program broke the driver's report")] * len(inputs)
    per_input = replace(limits, timeout_s=per_input_s)
    outcomes = []
    for rc, cpu, stdout, stderr in report:
        status, detail = classify(rc, stderr, None, cpu, per_input)
        outcomes.append(name_missing_module(Outcome(status, rc, stdout, stderr, out.wall_s / len(inputs),
                                                    round(cpu, 4), detail=detail)))
    return outcomes


def _well_formed(row) -> bool:
    return (isinstance(row, tuple) and len(row) == 4 and isinstance(row[0], int) and isinstance(row[1], float)
            and isinstance(row[2], str) and isinstance(row[3], str))
