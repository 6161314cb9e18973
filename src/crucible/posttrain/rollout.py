"""GRPO rollouts: G samples per task from the live policy, with the sampler's own log-probs.

Native policies sample through crucible's KV-cache `Engine` (one prefill per task, shared by its G
samples; LoRA adapters are merged for the duration, since the engine's fused decoding matrices read
the base weights). With tools on, the engine runs <|python_start|> code in the sandbox and forces
the output tokens; those are marked and never trained. HF policies sample with `generate`.

Each rollout keeps the sampled token ids (what the trainer scores: the tokens the policy chose,
the final stop token included) and the text cut at the task's stop sequences (what is graded).
The sampler's log-probs (temperature-scaled, before any top-k/top-p) are kept so a step can report
how far the trainer's log-probs for the same tokens are from them: zero in exact arithmetic, not in
practice (different kernels, batch shapes, bf16), and the gap is what off-policy corrections fix.

Not covered: vLLM-backed sampling with weight sync (a GPU deployment concern), multi-turn rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Rollout:
    task: object               # crucible.tasks.common.Task
    prompt_ids: list[int]
    ids: list[int]             # sampled completion tokens (forced tool output included, marked)
    forced: list[int]          # 1 where the engine forced the token
    sampler_logprobs: list[float]
    text: str                  # completion text, cut at the task's stop sequences

    def doc(self) -> tuple[list[int], list[int]]:
        """(ids, mask) for training: the completion's sampled tokens are trained."""
        return self.prompt_ids + self.ids, [0] * len(self.prompt_ids) + [1 - f for f in self.forced]


def task_prompt(policy, task) -> list[int]:
    """The base-model prompt of a task (crucible.tasks.common.Task), as the samplers render it."""
    from crucible.posttrain.data import Example

    return policy.renderer.prompt(Example(task.task_id, prompt=task.prompt))


def sample(policy, tasks: list, group_size: int, *, temperature: float, max_new_tokens: int, seed: int,
           tools: bool = False) -> list[list[Rollout]]:
    """group_size rollouts for each task."""
    prompts = [task_prompt(policy, t) for t in tasks]
    if policy.kind == "native":
        return _sample_native(policy, tasks, prompts, group_size, temperature, max_new_tokens, seed, tools)
    return [_sample_hf(policy, t, p, group_size, temperature, max_new_tokens, seed + i)
            for i, (t, p) in enumerate(zip(tasks, prompts))]


def _sample_native(policy, tasks, prompts, group_size, temperature, max_new_tokens, seed, tools):
    from crucible.model.engine import Engine, SamplingParams

    stops = sorted({s for t in tasks for s in t.stop})
    params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, seed=seed, logprobs=True,
                            stop=tuple(stops))
    with policy.merged(), torch.no_grad():
        engine = Engine(policy.model, policy.tokenizer, tools=tools)
        batches = engine.generate_batch(prompts, group_size, params)
    policy.model.train()
    from crucible.sanitize import truncate_at_stop

    out = []
    for task, prompt, completions in zip(tasks, prompts, batches):
        out.append([Rollout(task, prompt, c.ids, c.forced_mask, c.logprobs,
                            truncate_at_stop(c.text, task.stop)[0]) for c in completions])
    return out


def _sample_hf(policy, task, prompt, group_size, temperature, max_new_tokens, seed):
    from crucible.sanitize import truncate_at_stop

    model, tok = policy.model, policy.tokenizer
    eos = policy.renderer.end_id
    torch.manual_seed(seed)
    inputs = torch.tensor([prompt] * group_size, device=policy.device)
    with torch.no_grad():
        out = model.generate(inputs, attention_mask=torch.ones_like(inputs), do_sample=True, temperature=temperature,
                             top_k=0, top_p=1.0, max_new_tokens=max_new_tokens, pad_token_id=eos, eos_token_id=eos,
                             output_scores=True, return_dict_in_generate=True,
                             stop_strings=list(task.stop) or None, tokenizer=tok)
    model.train()
    new = out.sequences[:, len(prompt):]
    scores = torch.stack(out.scores, dim=1).float()                 # [G, steps, V], temperature applied
    logprobs = torch.log_softmax(scores, -1).gather(-1, new[..., None]).squeeze(-1)
    rollouts = []
    for row in range(group_size):
        ids = new[row].tolist()
        end = _sampled_length(tok, ids, eos, task.stop)
        ids = ids[:end]
        text = truncate_at_stop(tok.decode(ids, skip_special_tokens=True), task.stop)[0]
        rollouts.append(Rollout(task, prompt, ids, [0] * len(ids), logprobs[row, :end].tolist(), text))
    return rollouts


def _sampled_length(tok, ids: list[int], eos: int, stops) -> int:
    """How many of `ids` were sampled: through the first EOS, or the token that completed a stop
    sequence (generate pads finished rows after that)."""
    from crucible.sanitize import find_stop

    end = next((i + 1 for i, t in enumerate(ids) if t == eos), len(ids))
    if stops:
        for k in range(1, end + 1):
            if find_stop(tok.decode(ids[:k], skip_special_tokens=True), stops) >= 0:
                return k
    return end
