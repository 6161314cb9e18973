"""Evaluation: sample a model on a suite, grade the samples, summarize (the measure path's top room).

- `sampling`: a suite's tasks -> `DIR/samples.jsonl`, resumable, with per-task seeds;
- `settings`: the guard that keeps one samples file to one model and one set of sampling settings;
- `summary`: results rows -> pass@k with 95% intervals (summary.json, summary.md);
- `runs`: `--runs R` statistics (mean, σ and a t-interval of pass@1 across runs);
- `pipeline`: `evaluate_samples` (grade + summarize) and `evaluate_model` (sample + grade + summarize),
  taking a backend *object*, so a policy held in memory is evaluated without saving it.

Errors a user can cause raise `EvalError` (or the error of the room below: TaskError, SampleError,
JsonlError, BackendError); `crucible.commands` turns them into usage errors.
"""


class EvalError(ValueError):
    """An evaluation cannot run as asked (bad settings, a results directory sampled otherwise)."""
