"""Files that survive being killed: atomic replacement, and append-only JSONL with one torn-line policy.

Why one module: samples, results and summaries are all written while a run may be killed at any
moment, and read back by a resumed run or by `crucible report` while a run is still writing. Every
reader and writer follows the same rules:

- `atomic_write(path, data)` / `replacing(path)`: the new content is written beside the file,
  fsynced, and renamed over it, so a reader sees the old file or the new one, never half of one.
- `JsonlWriter` (from `appending(path)`): one JSON object per line; `write(*rows)` flushes and
  fsyncs before it returns, so what a caller was told is written survives a kill.
- `read_jsonl(path)`: (line number, object) for every non-blank line. The torn-line policy: a *last*
  line without its newline that does not parse is what a killed writer leaves; it is skipped, and
  with `repair=True` (a writer about to append) cut off the file. A last line that parses but lacks
  its newline is kept (repair adds the newline). Any other line that is not a JSON object raises
  `JsonlError` naming the file and line.

Not covered: concurrent writers to one file (each results directory has one writer at a time).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class JsonlError(ValueError):
    """A line of a JSONL file is not a JSON object; the message names the file and the line."""


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to (by any library); it replaces `path` when the block
    ends without an exception, and is removed otherwise."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Replace `path` with `data` (text is written as UTF-8) all at once."""
    with replacing(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


def read_jsonl(path: str | Path, *, repair: bool = False) -> list[tuple[int, dict]]:
    """(line number, object) for each line of `path` (see the module docstring for torn lines)."""
    path = Path(path)
    with path.open("rb") as f:
        lines = f.read().split(b"\n")
    unterminated = lines.pop()  # b"" when the file ends with a newline
    rows, size = [], 0
    for lineno, raw in enumerate(lines + [unterminated], 1):
        last = lineno == len(lines) + 1
        if raw.strip():
            try:
                rows.append((lineno, parse_line(path, lineno, raw)))
            except JsonlError:
                if not last:
                    raise
                if repair:
                    with path.open("r+b") as f:
                        f.truncate(size)
                return rows
        size += len(raw) + 1
    if repair and unterminated.strip():
        with path.open("ab") as f:
            f.write(b"\n")
    return rows


def parse_line(path: Path, lineno: int, raw: bytes | str) -> dict:
    """One line (or, from line 1, a whole file) as a JSON object, or JsonlError naming the file and line."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = lineno + getattr(e, "lineno", 1) - 1
        raise JsonlError(f"{path}:{where}: not valid JSON ({getattr(e, 'msg', None) or e.reason})") from None
    if not isinstance(obj, dict):
        raise JsonlError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    return obj


class JsonlWriter:
    """Appends rows to an open JSONL file; see `appending`."""

    def __init__(self, f):
        self.f = f

    def write(self, *rows: dict) -> None:
        """Append `rows`, one line each, and make them durable before returning."""
        for row in rows:
            self.f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())


@contextmanager
def appending(path: str | Path) -> Iterator[JsonlWriter]:
    """A `JsonlWriter` appending to `path` (created if missing). Read it first with `repair=True` when
    a killed writer may have left a torn last line."""
    with Path(path).open("a", encoding="utf-8") as f:
        yield JsonlWriter(f)
