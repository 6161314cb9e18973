"""Declarative filters for SFT data: `crucible data filter IN --out OUT [--config filters.toml]`.

Each rule rejects a record for one reason, and the report counts rejections per rule (count,
share, three examples), so a filter that eats half the data shows up before it trains anything.
Rules look at the *assistant* text (what would be trained) of a conversation, or the completion:

- regex rejects (DEFAULT_PATTERNS, replaceable in [regex]): HTML tags, stock labels ("Answer:"),
  placeholder images, emoji runs, stock hedges and refusals;
- triple-repeated lines (the same non-blank line three times in one answer: a looping generator);
- length bounds on the assistant text ([length] min_chars, max_chars);
- format invariants ([format]): every <think> closed, with the answer after it; tool-call and
  tool-output tags balanced, and at most one output block per call (for chat parts too: a python
  part followed by at most one python_output);
- exact duplicates (hash of the normalised conversation) and near duplicates (MinHash of word
  5-gram shingles with LSH banding, Jaccard >= [dedup] near; the first occurrence is kept).

MinHash is a few lines of numpy here rather than a dependency (datasketch) for one function.
Rules run in the order above; a record is reported under the first rule that rejects it.

Not covered: language identification, model-based quality scores, semantic (embedding) dedup.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_PATTERNS = {
    "html_tags": r"</?\s*(div|span|p|br|table|tr|td|img|html|body)\b[^>]*>",
    "stock_labels": r"(?im)^\s*(final answer|answer|response|output)\s*:",
    "placeholder_images": r"!\[[^\]]*\]\([^)]*(placeholder|example\.com|image\.(png|jpg))[^)]*\)",
    "emoji_runs": "[\U0001F300-\U0001FAFF\u2600-\u27BF]{3,}",
    "hedges_refusals": r"(?i)\b(as an ai( language)? model|i('m| am) (sorry|unable)|i cannot (help|assist)"
                       r"|i can't (help|assist))",
}
TOOL_PAIRS = (("<tool_call>", "</tool_call>"), ("<tool_output>", "</tool_output>"))


class FilterConfigError(ValueError):
    """A filters.toml that cannot be used; names the file."""


@dataclass
class Filters:
    patterns: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PATTERNS))
    repeated_lines: bool = True
    min_chars: int = 1
    max_chars: int = 100_000
    think: bool = True
    tool_tags: bool = True
    exact_dedup: bool = True
    near_dedup: float = 0.85          # Jaccard threshold; 0 disables


def load_filters(path: str | Path | None) -> Filters:
    f = Filters()
    if path is None:
        return f
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise FilterConfigError(f"{path}: {e}") from None
    known = {"regex", "length", "format", "dedup"}
    if set(raw) - known:
        raise FilterConfigError(f"{path}: unknown table(s) {', '.join(sorted(set(raw) - known))}; known: "
                                f"{', '.join(sorted(known))}")
    if "regex" in raw:
        f.patterns = {k: v for k, v in raw["regex"].items() if v}
        for name, pattern in f.patterns.items():
            try:
                re.compile(pattern)
            except re.error as e:
                raise FilterConfigError(f"{path}: [regex] {name}: {e}") from None
    length, fmt, dedup = raw.get("length", {}), raw.get("format", {}), raw.get("dedup", {})
    f.min_chars, f.max_chars = int(length.get("min_chars", f.min_chars)), int(length.get("max_chars", f.max_chars))
    f.repeated_lines = bool(fmt.get("repeated_lines", f.repeated_lines))
    f.think, f.tool_tags = bool(fmt.get("think", f.think)), bool(fmt.get("tool_tags", f.tool_tags))
    f.exact_dedup, f.near_dedup = bool(dedup.get("exact", f.exact_dedup)), float(dedup.get("near", f.near_dedup))
    return f


def assistant_texts(record: dict) -> list[str]:
    """The trained text of a record: each assistant turn (parts joined), or the completion."""
    if isinstance(record.get("messages"), list):
        out = []
        for m in record["messages"]:
            if isinstance(m, dict) and m.get("role") == "assistant":
                c = m.get("content")
                out.append(c if isinstance(c, str) else "".join(p.get("text", "") for p in c if isinstance(p, dict)))
        return out
    return [record["completion"]] if isinstance(record.get("completion"), str) else []


def _parts_ok(record: dict) -> bool:
    """Chat parts: each python part followed by at most one python_output."""
    for m in record.get("messages") or []:
        parts = m.get("content") if isinstance(m, dict) else None
        if isinstance(parts, list):
            kinds = [p.get("type") for p in parts if isinstance(p, dict)]
            for a, b in zip(kinds, kinds[1:]):
                if a == b == "python_output":
                    return False
            if kinds[:1] == ["python_output"]:
                return False
    return True


def format_problem(text: str, f: Filters) -> str | None:
    if f.think and "<think>" in text:
        if text.count("<think>") != text.count("</think>"):
            return "think_unclosed"
        if not text.rsplit("</think>", 1)[1].strip():
            return "answer_inside_think"
    if f.tool_tags:
        for open_, close in TOOL_PAIRS:
            if text.count(open_) != text.count(close):
                return "tool_tags_unbalanced"
        calls, outputs = text.count("<tool_call>"), text.count("<tool_output>")
        if outputs > calls:
            return "tool_outputs_per_call"
    return None


def repeated_line(text: str) -> bool:
    seen: dict[str, int] = {}
    for line in text.splitlines():
        if line.strip():
            seen[line.strip()] = seen.get(line.strip(), 0) + 1
            if seen[line.strip()] >= 3:
                return True
    return False


def rejection(record: dict, f: Filters, compiled: dict) -> str | None:
    """The first rule that rejects this record (before deduplication), or None."""
    texts = assistant_texts(record)
    joined = "\n".join(texts)
    for name, pattern in compiled.items():
        if any(pattern.search(t) for t in texts):
            return name
    if f.repeated_lines and any(repeated_line(t) for t in texts):
        return "repeated_lines"
    if not f.min_chars <= len(joined) <= f.max_chars:
        return "length"
    for t in texts:
        problem = format_problem(t, f)
        if problem:
            return problem
    if f.tool_tags and not _parts_ok(record):
        return "tool_outputs_per_call"
    return None


class NearDuplicates:
    """MinHash over word 5-gram shingles with LSH bands: `seen(text)` says whether a text with
    estimated Jaccard similarity >= threshold was seen before (and remembers this one)."""

    PRIME = (1 << 61) - 1

    def __init__(self, threshold: float, num_perm: int = 64, seed: int = 0):
        self.threshold = threshold
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, self.PRIME, num_perm, dtype=np.uint64)
        self.b = rng.integers(0, self.PRIME, num_perm, dtype=np.uint64)
        self.bands = next((b for b in (2, 4, 8, 16, 32) if (1 / b) ** (b / num_perm) <= threshold), 32)  # knee below it
        self.rows = num_perm // self.bands
        self.buckets: list[dict] = [{} for _ in range(self.bands)]
        self.signatures: list[np.ndarray] = []

    def signature(self, text: str) -> np.ndarray:
        words = text.split()
        shingles = {" ".join(words[i:i + 5]) for i in range(max(1, len(words) - 4))}
        h = np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") >> 3
                      for s in shingles], dtype=np.uint64)
        with np.errstate(over="ignore"):
            return ((h[:, None] * self.a[None, :] + self.b[None, :]) % np.uint64(self.PRIME)).min(axis=0)

    def seen(self, text: str) -> bool:
        sig = self.signature(text)
        candidates = set()
        for band, bucket in enumerate(self.buckets):
            key = sig[band * self.rows:(band + 1) * self.rows].tobytes()
            candidates.update(bucket.get(key, ()))
        if any(float((self.signatures[c] == sig).mean()) >= self.threshold for c in candidates):
            return True
        index = len(self.signatures)
        self.signatures.append(sig)
        for band, bucket in enumerate(self.buckets):
            bucket.setdefault(sig[band * self.rows:(band + 1) * self.rows].tobytes(), []).append(index)
        return False


def normalised(record: dict) -> str:
    if isinstance(record.get("messages"), list):
        return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in record["messages"] if isinstance(m, dict))
    return f"{record.get('prompt', '')}\n{record.get('completion', '')}"


def run_filters(records: Iterable[tuple[str, dict]], f: Filters):
    """(kept records, report): report = {rule: {"count", "share", "examples": [where, ...]}, "total", "kept"}."""
    compiled = {name: re.compile(p) for name, p in f.patterns.items()}
    exact: set[bytes] = set()
    near = NearDuplicates(f.near_dedup) if f.near_dedup > 0 else None
    kept, rejected, total = [], {}, 0
    for where, record in records:
        total += 1
        rule = rejection(record, f, compiled)
        if rule is None and f.exact_dedup:
            digest = hashlib.blake2b(" ".join(normalised(record).split()).encode(), digest_size=16).digest()
            rule = "exact_duplicate" if digest in exact else None
            exact.add(digest)
        if rule is None and near is not None and near.seen(normalised(record)):
            rule = "near_duplicate"
        if rule is None:
            kept.append(record)
        else:
            entry = rejected.setdefault(rule, {"count": 0, "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < 3:
                entry["examples"].append(where)
    for entry in rejected.values():
        entry["share"] = entry["count"] / max(total, 1)
    return kept, {"total": total, "kept": len(kept), "rules": rejected}
