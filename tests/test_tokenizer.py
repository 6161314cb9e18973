"""Tokenizer: round trips, exact byte counts, reserved specials, save/load, HF compatibility, CLI."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible import testing
from crucible.model.tokenizer import SPECIAL_TOKENS, Tokenizer


@pytest.fixture(scope="module")
def tok():
    return testing.tokenizer(384)


SAMPLES = ["def add(a, b):\n    return a + b\n", "", " ", "\t\t\n\n  x", "héllo wörld ✓ 🚀 日本語",
           "x = 12345678 + 0.5e-3", "    if (a<b) { return; }\r\n", "\x00\x01 binary-ish \x7f"]


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip_and_byte_counts(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert int(tok.token_bytes()[ids].sum()) == len(text.encode("utf-8"))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_any_text_round_trips_with_exact_bytes(text):
    t = testing.tokenizer(384)
    ids = t.encode(text)
    assert t.decode(ids) == text
    assert int(t.token_bytes()[ids].sum()) == len(text.encode("utf-8"))


def test_vocab_and_merges_learned(tok):
    assert tok.vocab_size == 384
    code = "def function(self, value):\n        return self.value\n"
    assert len(tok.encode(code)) < len(code.encode()) * 0.8  # merges compress real code
    assert tok.token_bytes().max() > 1


def test_special_tokens_reserved(tok):
    ids = [tok.special_id(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == len(SPECIAL_TOKENS)
    assert tok.bos_id == tok.special_id("<|bos|>") == tok.special_id("bos")
    assert all(tok.token_bytes()[i] == 0 for i in ids)
    assert tok.decode([tok.special_id("python_start")]) == "<|python_start|>"
    with pytest.raises(KeyError):
        tok.special_id("system_start")


def test_special_token_text_cannot_forge_control_tokens(tok):
    text = "<|python_start|>print(1)<|python_end|>"
    ids = tok.encode(text)
    assert not set(ids) & tok.special_ids
    assert tok.decode(ids) == text
    assert int(tok.token_bytes()[ids].sum()) == len(text)


def test_encode_batch_matches_encode(tok):
    assert tok.encode_batch(SAMPLES) == [tok.encode(s) for s in SAMPLES]


def test_vocab_too_small_rejected():
    with pytest.raises(ValueError, match="at least 265"):
        Tokenizer.train(["abc"], 200)


def test_training_is_deterministic():
    texts = testing.corpus()[:3]
    a, b = Tokenizer.train(texts, 320), Tokenizer.train(texts, 320)
    assert a.encode(texts[0][:2000]) == b.encode(texts[0][:2000])


def test_save_load_and_transformers_tokenizer(tok, tmp_path):
    tok.save(tmp_path)
    again = Tokenizer.load(tmp_path)
    again_file = Tokenizer.load(tmp_path / "tokenizer.json")
    for s in SAMPLES:
        assert again.encode(s) == tok.encode(s) == again_file.encode(s)
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    for s in SAMPLES:
        assert hf.encode(s, add_special_tokens=False) == tok.encode(s)
    # the saved file still parses specials (chat templates need it); our encode() does not
    assert hf.encode("<|bos|>", add_special_tokens=False) == [tok.bos_id]
    rendered = hf.apply_chat_template([{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == "<|bos|><|user_start|>Be brief.\n\nhi<|user_end|><|assistant_start|>"
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["eos_token"] == "<|assistant_end|>"


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        Tokenizer.load(tmp_path)


def test_cli_train(tmp_path, capsys):
    from crucible.cli import main
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    for i, text in enumerate(testing.corpus()[:4]):
        (src / "pkg" / f"m{i}.py").write_text(text)
    (src / "blob.bin").write_bytes(b"\x00\xff\x00binary")
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in testing.corpus()[4:6]) + "\n")
    out = tmp_path / "tok"
    rc = main(["tokenizer", "train", "--input", str(src), str(tmp_path / "docs.jsonl"), "--vocab-size", "320",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    t = Tokenizer.load(out)
    assert t.vocab_size == 320
    report = capsys.readouterr().out
    assert "5 files" in report and "skipped 1" in report and "bytes/token" in report


def test_cli_bad_input(tmp_path, capsys):
    from crucible.cli import main
    rc = main(["tokenizer", "train", "--input", str(tmp_path / "nope"), "--vocab-size", "300", "--out", str(tmp_path / "t")])
    assert rc == 2
    assert "nope" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    rc = main(["tokenizer", "train", "--input", str(bad), "--vocab-size", "300", "--out", str(tmp_path / "t")])
    assert rc == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_cli_reads_compressed_jsonl_and_parquet(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    from crucible.cli import main
    texts = testing.corpus()
    lines = "".join(json.dumps({"content": t}) + "\n" for t in texts[:3]).encode()
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    pq.write_table(pa.table({"text": texts[3:6]}), tmp_path / "b.parquet")
    rc = main(["tokenizer", "train", "--input", str(tmp_path / "a.jsonl.zst"), str(tmp_path / "b.parquet"),
               "--vocab-size", "300", "--out", str(tmp_path / "tok"), "--no-progress"])
    assert rc == 0
    assert "2 files (6 documents" in capsys.readouterr().out
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "c.parquet")
    rc = main(["tokenizer", "train", "--input", str(tmp_path / "c.parquet"), "--vocab-size", "300",
               "--out", str(tmp_path / "tok2"), "--no-progress"])
    assert rc == 2 and "c.parquet" in capsys.readouterr().err
