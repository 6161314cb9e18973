"""Generation: sample models (native, transformers, vLLM, OpenAI-compatible servers) and sanitize what they write.

- `backends`: the spec strings (`native:DIR`, `hf:DIR`, `vllm:DIR`, `openai:MODEL@URL`), the
  `Backend` interface (complete / chat, n samples, stop sequences, streaming) and `load_backend`;
- `sanitize`: stop sequences, fenced-code extraction, <think> removal, chat reply -> completion;
- `sampling`: `evaluate_model`, what `crucible eval --model` runs (resumable samples.jsonl, then
  grading, `--runs` statistics);
- `tiny`: a tiny memorizing transformers model for tests and demos (no downloads).

The HTTP server lives in `crucible.serve`. Importing this package loads neither torch nor
transformers; the backends import them when a model is loaded. See docs/generate.md.
"""
