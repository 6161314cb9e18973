"""Token shards, corpus sources, the hash split, and `crucible data prepare` (deterministic, never
re-shards)."""

import json
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crucible.cli import main as cli
from crucible.data import corpus, shards
from crucible.data.prepare import load_manifest, prepare

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_shard_roundtrip_and_header(tmp_path):
    tokens = np.arange(1000, dtype=np.int64) % 700
    shards.write_shard(tmp_path / "train_000000.bin", tokens)
    raw = (tmp_path / "train_000000.bin").read_bytes()
    header = np.frombuffer(raw[:shards.HEADER_BYTES], dtype="<i4")
    assert header[0] == shards.MAGIC and header[1] == shards.VERSION and header[2] == 1000
    assert len(raw) == shards.HEADER_BYTES + 2 * 1000
    assert np.array_equal(shards.read_shard(tmp_path / "train_000000.bin"), tokens)


def test_shard_errors(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"\0" * 2048)
    with pytest.raises(shards.ShardError, match="bad magic"):
        shards.read_shard(p)
    shards.write_shard(p, np.arange(10))
    p.write_bytes(p.read_bytes()[:-2])   # truncated
    with pytest.raises(shards.ShardError, match="header says 10 tokens"):
        shards.read_shard(p)
    with pytest.raises(shards.ShardError, match="uint16"):
        shards.write_shard(p, np.array([70000]))


def test_token_stream_crosses_shards_and_wraps(tmp_path):
    shards.write_shard(tmp_path / "train_000000.bin", np.arange(0, 10))
    shards.write_shard(tmp_path / "train_000001.bin", np.arange(10, 17))
    s = shards.TokenStream(tmp_path, "train")
    assert s.total == 17
    assert s.read(8, 4).tolist() == [8, 9, 10, 11]
    assert s.read(15, 5).tolist() == [15, 16, 0, 1, 2]
    x, y = s.batch(3, batch_size=2, seq_len=3)
    assert x.tolist() == [[3, 4, 5], [6, 7, 8]] and y.tolist() == [[4, 5, 6], [7, 8, 9]]


def test_sources_jsonl_parquet_text_dir_and_hf_saved(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "alpha"}) + "\n\n" + json.dumps({"content": "beta"}) + "\n")
    pq.write_table(pa.table({"code": ["gamma", "delta"]}), tmp_path / "b.parquet")
    (tmp_path / "c.txt").write_text("epsilon")
    src = tmp_path / "src"
    (src / "__pycache__").mkdir(parents=True)
    (src / "m.py").write_text("zeta = 1\n")
    (src / "n.rs").write_text("fn eta() {}\n")
    (src / "blob.bin").write_bytes(b"\xff\xfe")
    (src / "__pycache__" / "m.py").write_text("skipped")
    hf = tmp_path / "hf"
    hf.mkdir()
    table = pa.table({"text": ["theta", "iota"], "id": [1, 2]})
    with pa.OSFile(str(hf / "data-00000-of-00001.arrow"), "wb") as f:   # what save_to_disk writes
        with pa.ipc.new_stream(f, table.schema) as w:
            w.write_table(table)
    (hf / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    texts = lambda s: [d.text for d in corpus.iter_source(s)]
    assert texts(tmp_path / "a.jsonl") == ["alpha", "beta"]
    assert texts(tmp_path / "b.parquet") == ["gamma", "delta"]
    assert texts(tmp_path / "c.txt") == ["epsilon"]
    assert sorted(texts(src)) == ["fn eta() {}\n", "zeta = 1\n"]
    assert texts(hf) == ["theta", "iota"]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        texts(tmp_path / "bad.jsonl")


def test_dedup_cap_and_hash_split_are_stable(tmp_path):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ["x", "y", "x", "zz"]))
    assert [d.text for d in corpus.iter_documents([tmp_path / "d.jsonl"])] == ["x", "y", "zz"]
    assert [d.text for d in corpus.iter_documents([tmp_path / "d.jsonl"], max_bytes=2)] == ["x", "y"]
    docs = [f"doc {i}" for i in range(2000)]
    val = [d for d in docs if corpus.is_validation(d, 0.1)]
    assert 120 < len(val) < 280                                   # ~10%
    assert val == [d for d in docs if corpus.is_validation(d, 0.1)]  # a pure function of content


def test_default_corpus_is_stdlib_and_site_packages():
    roots = corpus.default_sources()
    assert STDLIB.resolve() in roots
    docs = []
    for d in corpus.iter_default_corpus():
        docs.append(d)
        if len(docs) == 20:
            break
    assert all(d.key.endswith(".py") and d.text.strip() for d in docs)
    assert len({Path(d.key).parent for d in docs}) > 3   # hash order: spread over packages


@pytest.fixture(scope="module")
def slice_sources():
    return [str(STDLIB / "json"), str(STDLIB / "textwrap.py"), str(STDLIB / "string.py"), str(STDLIB / "glob.py")]


def test_prepare_deterministic_bos_and_never_reshards(tmp_path, slice_sources):
    kw = dict(sources=slice_sources, vocab_size=400, val_fraction=0.25, max_bytes=None, progress=False)
    m1 = prepare(tmp_path / "a", **kw)
    m2 = prepare(tmp_path / "b", **kw)
    files = sorted(p.name for p in (tmp_path / "a").glob("*.bin"))
    assert files and files == sorted(p.name for p in (tmp_path / "b").glob("*.bin"))
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert m1["train"] == m2["train"] and m1["val"]["documents"] >= 1
    train = shards.read_shard(tmp_path / "a" / "train_000000.bin")
    assert train[0] == m1["bos_id"] and (train == m1["bos_id"]).sum() == m1["train"]["documents"]
    assert m1["train"]["tokens"] + m1["val"]["tokens"] == sum(len(shards.read_shard(p)) for p in (tmp_path / "a").glob("*.bin"))
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").glob("*.bin")}
    assert prepare(tmp_path / "a", **kw) == m1                          # same settings: a no-op
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "a").glob("*.bin")}
    with pytest.raises(ValueError, match="different settings"):
        prepare(tmp_path / "a", **{**kw, "val_fraction": 0.5})


def test_prepare_clears_a_partial_run(tmp_path, slice_sources):
    out = tmp_path / "p"
    out.mkdir()
    shards.write_shard(out / "train_000007.bin", np.arange(5))   # left by a killed run: no manifest
    prepare(out, sources=slice_sources, vocab_size=300, val_fraction=0.25, max_bytes=None, progress=False)
    assert not (out / "train_000007.bin").exists() and load_manifest(out) is not None


def test_cli_errors_exit_2(tmp_path, capsys):
    assert cli(["data", "prepare", "--out", str(tmp_path / "o"), "--source", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "one.txt").write_text("just one document")
    assert cli(["data", "prepare", "--out", str(tmp_path / "o2"), "--source", str(tmp_path / "one.txt"),
                "--vocab-size", "300", "--no-progress"]) == 2
    assert "too small" in capsys.readouterr().err
    assert not list((tmp_path / "o2").glob("*.bin")) and load_manifest(tmp_path / "o2") is None


def test_compressed_jsonl_sources(tmp_path):
    import gzip

    import zstandard

    from crucible.data.corpus import iter_source

    lines = "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(3))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    for name in ("a.jsonl.zst", "b.jsonl.gz"):
        assert [d.text for d in iter_source(tmp_path / name)] == ["doc 0", "doc 1", "doc 2"]
