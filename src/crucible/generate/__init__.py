"""Generation: sample models (native, transformers, vLLM, OpenAI-compatible servers).

- `types`: `GenParams`, `Generation`, `BackendError` and the `Backend` interface (complete / chat,
  n samples, stop sequences, streaming);
- `registry`: the spec strings (`native:DIR`, `hf:DIR`, `vllm:DIR`, `openai:MODEL@URL`) and
  `load_backend`;
- one module per backend (`native_backend`, `hf_backend`, `vllm_backend`, `openai_client`);
- `tiny`: a tiny memorizing transformers model for tests and demos (no downloads).

Stop sequences and turning replies into programs: `crucible.sanitize`. Sampling a suite into a
samples file and grading it: `crucible.eval`. The HTTP server: `crucible.serve`. Importing this
package loads neither torch nor transformers; the backends import them when a model is loaded.
See docs/generate.md.
"""
