"""Tasks: what a model is asked, in which language, and what a right answer is.

`common.Task` is the one record every suite's tasks are (`select_tasks` picks the ones in scope);
`humaneval`, `humaneval_translated` (with `translate/`), `puzzles` and `world` (generated) build
them from their data and hold their reference solutions. How a sample for a task is graded lives in `crucible.grade`, which
depends on this package, never the reverse.
"""
