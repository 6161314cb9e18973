"""Post-training data: read, validate and mix the files `crucible sft` / `dpo` take.

Three shapes of record, from JSONL (.gz/.zst), parquet or a `save_to_disk` directory (read through
`crucible.data.corpus.iter_records`):
- a conversation: {"messages": [{"role", "content"}, ...], "tools": [...]?, ...}; an assistant
  `content` may be a list of parts (text / python / python_output: an agent trajectory, see
  crucible.model.chat);
- with tool calls (OpenAI's shape): an assistant message may carry `tool_calls`, a list of
  {"id", "type": "function", "function": {"name", "arguments"}} (arguments a JSON object, or a
  string holding one), its content then may be null; a {"role": "tool", "content", "tool_call_id"?,
  "name"?} message answers a call of the latest assistant message that made calls (by id when it
  has one, else by name, else the next unanswered one); `tools` is the list of function schemas
  (objects) handed to the chat template;
- a completion: {"prompt": str, "completion": str} — base-model text, the prompt not trained;
- a preference pair (DPO): {"prompt": str or "messages": [...] (+ "tools"), "chosen": ...,
  "rejected": ...}, where chosen/rejected are a string or an assistant message; its messages are
  checked as a conversation's (tool calls included), an answer not required.
Any other keys (instance_id, source, ...) ride along untouched in `Example.extra`.

Every file is read and checked in full before anything is trained or written: a bad record raises
`DataError` naming file:line. Several files mix with weights (`FILE:WEIGHT`): a weight of 2 takes
each record twice, 0.5 a fixed half of them (upsampling and downsampling, seeded).

Not covered: streaming datasets bigger than memory (post-training sets are small); the `developer`
role; checking that a call names a function in `tools` or that its arguments fit the schema.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("system", "user", "assistant", "tool")


class DataError(ValueError):
    """A post-training record or data argument is unusable; the message names file:line."""


@dataclass
class Example:
    where: str                          # file:line, for messages
    messages: list[dict] | None = None  # a conversation (chat format) ...
    prompt: str | None = None           # ... or base-model text: prompt (not trained) + completion
    completion: str | None = None
    extra: dict = field(default_factory=dict)
    tools: list | None = None           # function schemas, for the chat template (conversations only)


@dataclass
class Pair:
    where: str
    prompt: Example                     # messages, or prompt text (completion None)
    chosen: str
    rejected: str


def parse_data_arg(text: str) -> tuple[str, float]:
    """'FILE' or 'FILE:WEIGHT' (a weight > 0) -> (path, weight)."""
    path, sep, tail = text.rpartition(":")
    if sep:
        try:
            weight = float(tail)
        except ValueError:
            return text, 1.0
        if not weight > 0:
            raise DataError(f"--data {text}: the weight must be > 0")
        return path, weight
    return text, 1.0


def _check_tool_calls(calls, where: str, i: int) -> list[dict]:
    if not isinstance(calls, list):
        raise DataError(f"{where}: message {i}: 'tool_calls' must be a list")
    ids = set()
    for k, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise DataError(f"{where}: message {i}: tool call {k} needs 'function': {{'name': str, 'arguments'}}")
        if call.get("type", "function") != "function":
            raise DataError(f"{where}: message {i}: tool call {k} has type {call['type']!r}; only 'function' is known")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                raise DataError(f"{where}: message {i}: tool call {k}'s arguments are not valid JSON") from None
        if not isinstance(arguments, dict):
            raise DataError(f"{where}: message {i}: tool call {k}'s arguments must be a JSON object")
        call_id = call.get("id")
        if call_id is not None and (not isinstance(call_id, str) or call_id in ids):
            raise DataError(f"{where}: message {i}: tool call {k}'s id must be a string unique in the message")
        ids.add(call_id)
    return calls


def _answer_call(pending: list[dict], m: dict, where: str, i: int) -> None:
    """Remove from `pending` the call tool message `m` answers; a DataError if it answers none."""
    if not isinstance(m.get("content"), str):
        raise DataError(f"{where}: message {i}: a tool message needs a string content")
    call_id, name = m.get("tool_call_id"), m.get("name")
    if call_id is not None:
        match = [c for c in pending if c.get("id") == call_id]
        what = f"tool_call_id {call_id!r}"
    elif name is not None:
        match = [c for c in pending if c["function"]["name"] == name]
        what = f"name {name!r}"
    else:
        match, what = pending, "it"
    if not match:
        raise DataError(f"{where}: message {i}: a tool message answers no unanswered call of the latest "
                        f"assistant message with tool_calls (by {what})")
    pending.remove(match[0])


def _check_messages(messages, where: str, *, needs_answer: bool = True) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list")
    pending: list[dict] = []   # calls of the latest assistant message that made some, not yet answered
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise DataError(f"{where}: message {i} needs a role of {', '.join(ROLES)}")
        if m["role"] == "tool":
            _answer_call(pending, m, where, i)
            continue
        calls = m.get("tool_calls")
        if calls and m["role"] != "assistant":
            raise DataError(f"{where}: message {i}: only assistant messages make tool calls")
        if m["role"] == "assistant":
            pending = list(_check_tool_calls(calls, where, i)) if calls is not None else []
        content = m.get("content")
        if not isinstance(content, (str, list)) and not (content is None and calls):
            raise DataError(f"{where}: message {i} needs a string content (or a list of parts; null only "
                            "beside tool_calls)")
    if needs_answer and not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: no assistant message: nothing to learn")
    return messages


def _check_tools(tools, where: str) -> list | None:
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        raise DataError(f"{where}: 'tools' must be a list of objects (function schemas)")
    return tools


def _assistant_text(value, where: str, key: str) -> str:
    if isinstance(value, dict) and value.get("role") == "assistant":
        value = value.get("content")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0].get("content")
    if not isinstance(value, str):
        raise DataError(f"{where}: {key!r} must be a string or an assistant message")
    return value


def example_from_record(row: dict, where: str) -> Example:
    if "messages" in row:
        extra = {k: v for k, v in row.items() if k not in ("messages", "tools")}
        return Example(where, messages=_check_messages(row["messages"], where), extra=extra,
                       tools=_check_tools(row.get("tools"), where))
    if "prompt" in row and "completion" in row:
        if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
            raise DataError(f"{where}: 'prompt' and 'completion' must be strings")
        if not row["completion"]:
            raise DataError(f"{where}: empty completion: nothing to learn")
        extra = {k: v for k, v in row.items() if k not in ("prompt", "completion")}
        return Example(where, prompt=row["prompt"], completion=row["completion"], extra=extra)
    raise DataError(f"{where}: expected {{'messages': [...]}} or {{'prompt', 'completion'}} "
                    f"(keys here: {', '.join(sorted(row)) or 'none'})")


def pair_from_record(row: dict, where: str) -> Pair:
    for key in ("chosen", "rejected"):
        if key not in row:
            raise DataError(f"{where}: a preference pair needs {key!r}")
    if "messages" in row:
        messages = _check_messages(row["messages"], where, needs_answer=False)
        if messages[-1]["role"] == "assistant":
            raise DataError(f"{where}: 'messages' must be the conversation before the answer (not ending in one)")
        prompt = Example(where, messages=messages, tools=_check_tools(row.get("tools"), where))
    elif isinstance(row.get("prompt"), str):
        prompt = Example(where, prompt=row["prompt"])
    else:
        raise DataError(f"{where}: a preference pair needs 'prompt' (a string) or 'messages'")
    chosen = _assistant_text(row["chosen"], where, "chosen")
    rejected = _assistant_text(row["rejected"], where, "rejected")
    if chosen == rejected:
        raise DataError(f"{where}: chosen and rejected are the same text")
    return Pair(where, prompt, chosen, rejected)


def read_file(path: str | Path, make=example_from_record) -> list:
    from crucible.data.corpus import CorpusError, iter_records

    try:
        records = [make(row, where) for where, row in iter_records(path)]
    except (CorpusError, FileNotFoundError) as e:
        raise DataError(str(e)) from None
    if not records:
        raise DataError(f"{path}: no records")
    return records


def mix(sources: list[tuple[list, float]], seed: int = 0) -> list:
    """Records of every (records, weight) source, each repeated floor(weight) times plus a seeded
    fraction, then shuffled with `seed`."""
    rng = random.Random(seed)
    out = []
    for records, weight in sources:
        whole, frac = int(weight), weight - int(weight)
        out.extend(records * whole)
        if frac:
            out.extend(rng.sample(records, round(frac * len(records))))
    rng.shuffle(out)
    return out


def split_validation(records: list, fraction: float, seed: int = 0) -> tuple[list, list]:
    """(train, validation): a seeded `fraction` held out (at least one when fraction > 0)."""
    if fraction <= 0 or len(records) < 2:
        return records, []
    order = list(range(len(records)))
    random.Random(seed + 1).shuffle(order)
    held = set(order[:max(1, int(round(fraction * len(records))))])
    return [r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held]


def load_mixture(data_args: list[str], *, pairs: bool = False, seed: int = 0,
                 val_fraction: float = 0.0) -> tuple[list, list]:
    """Every --data argument read, validated, split (before weighting, so no record is in both)
    and mixed: (train, validation). pairs=True reads DPO pairs."""
    if not data_args:
        raise DataError("give at least one --data FILE")
    make = pair_from_record if pairs else example_from_record
    train, val = [], []
    for arg in data_args:
        path, weight = parse_data_arg(arg)
        fit, held = split_validation(read_file(path, make), val_fraction, seed)
        train.append((fit, weight))
        val.extend(held)
    return mix(train, seed), val
