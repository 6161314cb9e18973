"""Where pretraining text comes from: documents read from directories, JSONL / text / parquet files,
or Hugging Face datasets saved with `save_to_disk`; and the offline default corpus.

A source is a path. What it is decides how it is read:
- a directory with `state.json` + `*.arrow` files: a `datasets.save_to_disk` output. The arrow
  files are Arrow IPC *streams*; pyarrow reads them directly, so the `datasets` package is not needed;
- any other directory: every source file under it (by extension, see SOURCE_EXTENSIONS), one
  document per file;
- `*.jsonl` (optionally `.gz`): one document per line, from the first of TEXT_FIELDS present;
- `*.parquet`: one document per row, same field rule;
- `*.txt` / `*.md` / a source file: the whole file is one document.

Order is deterministic: the files of a directory are visited in the order of a hash of their
relative path (a fixed shuffle, so a size cap takes a random-looking, reproducible subset rather
than the alphabetically first packages). Rows inside a file keep their order.

The default corpus is real code nobody here wrote: the Python standard library and the sources of
the packages installed in this environment (`.py` only), so a fresh machine can pretrain offline.
It excludes `test`/`tests` directories of the stdlib only by size cap, not by policy; and it never
reads non-UTF-8 files or files above MAX_FILE_BYTES (generated tables, vendored blobs).

`iter_records` reads the same files row by row with every column (post-training data).

Not covered: remote datasets, compressed parquet row-group streaming beyond what pyarrow does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TEXT_FIELDS = ("text", "content", "code", "source")
SOURCE_EXTENSIONS = frozenset(
    ".py .pyi .c .h .cc .cpp .hpp .rs .go .js .ts .java .kt .scala .rb .php .lua .sh .jl .hs .ml "
    ".swift .cs .r .sql .md .rst .txt .toml .yaml .yml".split())
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
MAX_FILE_BYTES = 1 << 20
SKIP_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", "node_modules", ".venv", ".tox"})


class CorpusError(ValueError):
    """A source cannot be read as documents (bad JSON line, no text field); names file and line."""


@dataclass(frozen=True)
class Document:
    key: str    # where it came from (file path, file:line, dataset:row) — for error messages
    text: str


def content_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def is_validation(text: str, val_fraction: float) -> bool:
    """Split by a hash of the document's content: stable across runs and machines, and an exact
    duplicate always lands on the same side as its twin."""
    h = int.from_bytes(content_hash(text)[:8], "big")
    return h < val_fraction * 2.0**64


def default_sources() -> list[Path]:
    """The stdlib and this environment's site-packages (each once, even if one holds the other)."""
    paths = sysconfig.get_paths()
    found: list[Path] = []
    for key in ("stdlib", "purelib", "platlib"):
        p = Path(paths[key]).resolve()
        if p.is_dir() and p not in found:
            found.append(p)
    return found


def _path_order(root: Path, rel: str) -> bytes:
    return hashlib.blake2b(f"{root.name}/{rel}".encode(), digest_size=8).digest()


def _directory_files(root: Path, extensions: frozenset[str], exclude: list[Path]) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and (here / d).resolve() not in exclude)
        for name in filenames:
            if Path(name).suffix.lower() in extensions:
                files.append(here / name)
    return sorted(files, key=lambda f: _path_order(root, str(f.relative_to(root))))


def _read_text_file(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def _text_of(row: dict, where: str) -> str:
    for f in TEXT_FIELDS:
        if isinstance(row.get(f), str):
            return row[f]
    raise CorpusError(f"{where}: no text field (looked for {', '.join(TEXT_FIELDS)})")


def _open_text(path: Path):
    """A text stream of a plain, .gz or .zst file."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".zst":
        import zstandard
        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True),
                                encoding="utf-8")
    return path.open(encoding="utf-8")


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict]]:
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise CorpusError(f"{path}:{lineno}: expected a JSON object")
            yield f"{path}:{lineno}", row


def _iter_jsonl(path: Path) -> Iterator[Document]:
    for where, row in _jsonl_records(path):
        yield Document(where, _text_of(row, where))


def _text_column(schema, where: str) -> str:
    for f in TEXT_FIELDS:
        if f in schema.names:
            return f
    raise CorpusError(f"{where}: no text column (looked for {', '.join(TEXT_FIELDS)}; "
                     f"has {', '.join(schema.names)})")


def _iter_parquet(path: Path) -> Iterator[Document]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    column = _text_column(pf.schema_arrow, str(path))
    row = 0
    for batch in pf.iter_batches(columns=[column], batch_size=1024):
        for text in batch.column(0).to_pylist():
            row += 1
            if isinstance(text, str):
                yield Document(f"{path}:row {row}", text)


def is_hf_saved_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "state.json").is_file() and any(path.glob("*.arrow"))


def _iter_hf_saved(path: Path) -> Iterator[Document]:
    """`save_to_disk` output: state.json lists the arrow files (Arrow IPC streams) in order."""
    row = 0
    for name, schema, batch in _arrow_batches(path):
        for text in batch.column(_text_column(schema, str(name))).to_pylist():
            row += 1
            if isinstance(text, str):
                yield Document(f"{path}:row {row}", text)


def _arrow_batches(path: Path):
    """Record batches of a `save_to_disk` directory, in order (Arrow IPC streams, or files)."""
    import pyarrow as pa

    state = json.loads((path / "state.json").read_text())
    names = [f["filename"] for f in state.get("_data_files", [])] or sorted(p.name for p in path.glob("*.arrow"))
    for name in names:
        with pa.memory_map(str(path / name)) as source:
            try:
                reader = pa.ipc.open_stream(source)
                batches = iter(reader)
            except pa.ArrowInvalid:   # an Arrow IPC *file* (random-access format) instead
                reader = pa.ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            yield from ((path / name, reader.schema, batch) for batch in batches)


def iter_records(source: str | Path) -> Iterator[tuple[str, dict]]:
    """(where, row) for every row of a JSONL(.gz/.zst) file, a parquet file or a `save_to_disk`
    directory, all columns kept (post-training data: conversations, pairs). `where` is file:line
    or file:row N, for error messages."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.name.endswith(JSONL_SUFFIXES):
        yield from _jsonl_records(path)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                row += 1
                yield f"{path}:row {row}", record
    elif is_hf_saved_dataset(path):
        row = 0
        for _, _, batch in _arrow_batches(path):
            for record in batch.to_pylist():
                row += 1
                yield f"{path}:row {row}", record
    else:
        raise CorpusError(f"{path}: not a JSONL, parquet or save_to_disk dataset")


def iter_source(source: str | Path, exclude: list[Path] = ()) -> Iterator[Document]:
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if is_hf_saved_dataset(path):
        yield from _iter_hf_saved(path)
    elif path.is_dir():
        for f in _directory_files(path.resolve(), SOURCE_EXTENSIONS, list(exclude)):
            text = _read_text_file(f)
            if text and text.strip():
                yield Document(str(f), text)
    elif path.name.endswith(JSONL_SUFFIXES):
        yield from _iter_jsonl(path)
    elif path.suffix == ".parquet":
        yield from _iter_parquet(path)
    else:
        text = _read_text_file(path)
        if text is None:
            raise CorpusError(f"{path}: not UTF-8 text or larger than {MAX_FILE_BYTES} bytes")
        yield Document(str(path), text)


def iter_default_corpus() -> Iterator[Document]:
    """`.py` files of the stdlib and site-packages, each directory walked once."""
    roots = default_sources()
    ext = frozenset({".py"})
    for i, root in enumerate(roots):
        others = [r for r in roots[:i] + roots[i + 1:] if r.is_relative_to(root)]
        for f in _directory_files(root, ext, others):
            text = _read_text_file(f)
            if text and text.strip():
                yield Document(str(f), text)


def iter_documents(sources: list[str | Path] | None, max_bytes: int | None = None,
                   dedup: bool = True) -> Iterator[Document]:
    """Documents of all sources in order (default corpus when `sources` is empty), exact
    duplicates dropped, stopping once `max_bytes` of UTF-8 text has been yielded."""
    seen: set[bytes] = set()
    total = 0
    streams = [iter_source(s) for s in sources] if sources else [iter_default_corpus()]
    for stream in streams:
        for doc in stream:
            if dedup:
                h = content_hash(doc.text)
                if h in seen:
                    continue
                seen.add(h)
            yield doc
            total += len(doc.text.encode("utf-8", "surrogatepass"))
            if max_bytes is not None and total >= max_bytes:
                return
