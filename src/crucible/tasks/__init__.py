"""Task suites: where problems come from and how a sample for them is graded.

Each module (humaneval, humaneval_translated, puzzles, world) offers `load_suite(args) -> Suite` (see
`crucible.grade.Suite`) and, where the suite has reference solutions, `reference_samples(args)`.
"""
