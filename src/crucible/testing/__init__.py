"""Fixtures for tests, benchmarks and smoke runs, in one place: everything is built here, nothing is
downloaded (the lab's rule: no weights or datasets at run time).

- `gpt`: a tiny corpus (standard-library sources), a tokenizer trained on it, random and scripted
  (bigram) native GPTs;
- `llama`: Hugging Face models: one that has memorized a few texts (`demo_model`, with the toy task
  and chat it knows), and a random `LlamaForCausalLM` with crucible's tokenizer (`save_tiny_llama`);
- `scripted`: `ScriptedModel`, a stand-in for a served model that replays fixed replies turn by turn
  (agent clients against `crucible serve`: run a command, then submit);
- `ray_cluster`: a throw-away Ray cluster of N one-CPU nodes on this machine (`LocalCluster`), stopped
  process by process;
- `scripted_agent`: an OpenAI-compatible server replaying fixed agent replies per SWE instance
  (`ScriptedAgentServer`, `scripted_replies`).

Importing this package imports neither torch nor transformers (each function does, when called).
Not covered: fixtures for the sandbox or the graders (their tests build programs inline).
"""

from crucible.testing.gpt import bigram_gpt, corpus, random_gpt, tokenizer
from crucible.testing.llama import (DEMO_HUMANEVAL, SMALL_TALK, TOY_CHAT_REPLY, TOY_CONTINUATION, TOY_TASK,
                                    build_tiny_hf_model, demo_model, render_chat, save_tiny_llama)
from crucible.testing.ray_cluster import LocalCluster
from crucible.testing.scripted import ScriptedModel
from crucible.testing.scripted_agent import ScriptedAgentServer, scripted_replies

__all__ = ["bigram_gpt", "corpus", "random_gpt", "tokenizer", "DEMO_HUMANEVAL", "SMALL_TALK", "TOY_CHAT_REPLY",
           "TOY_CONTINUATION", "TOY_TASK", "build_tiny_hf_model", "demo_model", "render_chat", "save_tiny_llama",
           "LocalCluster", "ScriptedModel", "ScriptedAgentServer", "scripted_replies"]
