"""Per-language reports from any results directory: pass@k tables, curves, and how failures happen.

Input is `DIR/results.jsonl` as written by `crucible.grade.runner` (one row per sample: task_id,
language, status, passed; puzzles add difficulty). Output:

- pass@k per language for k = 1, 2, 4, ... and n, the smallest per-task sample count, each with a
  95% bootstrap interval over tasks (the unbiased estimator of Chen et al., `crucible.metrics`);
- a failure-mode table per language: the share of samples that passed, gave a wrong answer, did not
  compile, crashed, timed out, hit a memory or output limit, or failed for infrastructure reasons
  (sandbox_error, never the model's fault and listed apart);
- missing modules per language: runtime errors whose detail is "missing module X" (the program
  imported a package the sandbox's Python lacks; see `crucible.sandbox.pyenv`), counted per module
  with the share of samples and its 95% interval over tasks;
- pass@1 per language and difficulty when rows carry a difficulty;
- `passk.png` (pass@k curves with interval bands, log-k axis) and `failures.png` (stacked shares).

`build` computes the numbers (`build_report`), `render` writes the files (`write_report`).
A `crucible run` directory gets one HTML page instead (`run_files.write_run_report`: stages, gates,
pass@k and pass@1 by stage, mining, comparisons, vote@N, training curves; see `run_files`).
Not covered: comparing two results directories (run the report on each).
"""
