"""The golf artifact: export -> decompress -> reload -> evaluate, sizes, and bad files."""

import json
import sysconfig
from pathlib import Path

import pytest

from crucible.cli import main as cli
from crucible.data.prepare import prepare
from crucible.data.shards import TokenStream
from crucible.model.gpt import GPT
from crucible.model.tokenizer import Tokenizer
from crucible.train import golf
from crucible.train.config import PretrainConfig
from crucible.train.evaluate import evaluate_bpb
from crucible.train.pretrain import train

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("golf")
    data = root / "data"
    prepare(data, sources=[str(STDLIB / "json"), str(STDLIB / "textwrap.py")], vocab_size=400,
            val_fraction=0.3, max_bytes=None, progress=False)
    cfg = PretrainConfig(data=str(data), out=str(root / "run"), depth=2, n_embd=64, seq_len=64, batch_size=8,
                         max_steps=30, eval_every=0, log_every=10, val_tokens=0, qat_bits=6, qat_start=0.6,
                         momentum_warmup_steps=5)
    train(cfg, progress=False)
    ckpt = root / "run" / (root / "run" / "latest").read_text().strip()
    return data, ckpt


@pytest.mark.parametrize("bits,table", [(6, "int8"), (8, "fp16")])
def test_artifact_reloads_and_evaluates(trained, tmp_path, bits, table):
    data, ckpt = trained
    report = golf.export(ckpt, tmp_path / "a.bin", bits=bits, table=table)
    assert report["artifact_bytes"] == (tmp_path / "a.bin").stat().st_size
    assert report["total_bytes"] == report["artifact_bytes"] + report["code_bytes"] and report["fits"]
    assert report["artifact_bytes"] < report["float32_bytes"] / 3
    model, tok = golf.load_artifact(tmp_path / "a.bin")
    original = GPT.from_pretrained(ckpt)
    qmax = 31 if bits == 6 else 127
    for (name, p), (_, q) in zip(original.named_parameters(), model.named_parameters()):
        step = p.detach().abs().amax(dim=-1, keepdim=True) / (qmax if "layers" in name else 127) if p.ndim == 2 else 0
        tol = step if "layers" in name or table == "int8" else p.detach().abs() * 1e-3
        assert (p.detach() - q.detach()).abs().le(tol + 1e-6).all(), name
    assert tok.vocab_size == Tokenizer.load(data / "tokenizer").vocab_size
    r = golf.evaluate_artifact(tmp_path / "a.bin", data, window=64, stride=32, progress=False)
    val = TokenStream(data, "val")
    ref = evaluate_bpb(original, val.read(0, val.total), tok.token_bytes(), window=64, stride=32)
    assert r["tokens"] == ref["tokens"] and r["bytes"] == ref["bytes"]
    assert abs(r["bpb"] - ref["bpb"]) < 0.05           # quantisation costs little (QAT-trained)
    assert r["bpb"] < 5.0


def test_cli_export_eval_and_bad_artifact(trained, tmp_path, capsys):
    data, ckpt = trained
    out = tmp_path / "g.bin"
    assert cli(["golf", "export", str(ckpt.parent), "--out", str(out), "--data", str(data)]) == 0  # RUN: its latest
    printed = capsys.readouterr().out
    assert "fits" in printed and "after decompress-and-reload: val bpb" in printed
    assert cli(["golf", "export", str(ckpt), "--out", str(tmp_path / "h.bin"), "--budget", "1000"]) == 1
    assert "OVER BUDGET" in capsys.readouterr().out
    assert cli(["golf", "eval", str(out), "--data", str(data), "--window", "64", "--json", "--no-progress"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["stride"] == 32 and r["bpb"] > 0
    (tmp_path / "bad.bin").write_bytes(b"not zstd")
    assert cli(["golf", "eval", str(tmp_path / "bad.bin"), "--data", str(data)]) == 2
    assert "not a zstd artifact" in capsys.readouterr().err
    assert cli(["golf", "export", str(tmp_path), "--out", str(tmp_path / "x.bin")]) == 2
