"""Post-training data: read, validate and mix the files `crucible sft` / `dpo` take.

Three shapes of record, from JSONL (.gz/.zst), parquet or a `save_to_disk` directory (read through
`crucible.data.corpus.iter_records`):
- a conversation: {"messages": [{"role", "content"}, ...], ...}; an assistant `content` may be a
  list of parts (text / python / python_output: an agent trajectory, see crucible.model.chat);
- a completion: {"prompt": str, "completion": str} — base-model text, the prompt not trained;
- a preference pair (DPO): {"prompt": str or "messages": [...], "chosen": ..., "rejected": ...},
  where chosen/rejected are a string or an assistant message.
Any other keys (instance_id, source, ...) ride along untouched in `Example.extra`.

Every file is read and checked in full before anything is trained or written: a bad record raises
`DataError` naming file:line. Several files mix with weights (`FILE:WEIGHT`): a weight of 2 takes
each record twice, 0.5 a fixed half of them (upsampling and downsampling, seeded).

Not covered: streaming datasets bigger than memory (post-training sets are small), and system or
tool roles beyond what the chat format has (tool output is a python_output part).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("system", "user", "assistant")


class DataError(ValueError):
    """A post-training record or data argument is unusable; the message names file:line."""


@dataclass
class Example:
    where: str                          # file:line, for messages
    messages: list[dict] | None = None  # a conversation (chat format) ...
    prompt: str | None = None           # ... or base-model text: prompt (not trained) + completion
    completion: str | None = None
    extra: dict = field(default_factory=dict)


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


def _check_messages(messages, where: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise DataError(f"{where}: message {i} needs a role of {', '.join(ROLES)}")
        content = m.get("content")
        if not isinstance(content, (str, list)):
            raise DataError(f"{where}: message {i} needs a string content (or a list of parts)")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: no assistant message: nothing to learn")
    return messages


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
        extra = {k: v for k, v in row.items() if k != "messages"}
        return Example(where, messages=_check_messages(row["messages"], where), extra=extra)
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
        messages = row["messages"]
        if not isinstance(messages, list) or not messages or messages[-1].get("role") == "assistant":
            raise DataError(f"{where}: 'messages' must be the conversation before the answer (not ending in one)")
        prompt = Example(where, messages=messages)
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
