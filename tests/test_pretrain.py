"""The pretraining loop: overfits a batch, learns on the default corpus, resumes bit-exactly, the
shared step's token-mean normalisation, and the CLI's recipe / flag / resume handling."""

import json
import math
import sysconfig
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import crucible
from crucible import testing
from crucible.cli import main as cli
from crucible.data.prepare import prepare
from crucible.data.shards import TokenStream
from crucible.model.gpt import GPT, GPTConfig
from crucible.model.tokenizer import Tokenizer
from crucible.train import dist, loop
from crucible.train.config import RECIPES, ConfigError, PretrainConfig, build_config
from crucible.train.evaluate import evaluate_bpb
from crucible.train.optim import build_optimizers
from crucible.train.pretrain import language_model_loss, train

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "d"
    prepare(out, sources=[str(STDLIB / "json"), str(STDLIB / "textwrap.py"), str(STDLIB / "string.py")],
            vocab_size=512, val_fraction=0.2, max_bytes=None, progress=False)
    return out


def tiny(data_dir, out, **kw):
    base = dict(data=str(data_dir), out=str(out), depth=2, n_embd=64, seq_len=64, batch_size=4,
                max_steps=8, eval_every=0, log_every=2, val_tokens=2048, warmdown=0.5, seed=5,
                momentum_warmup_steps=4)
    base.update(kw)
    return PretrainConfig(**base)


def test_tiny_model_overfits_a_batch(data_dir):
    torch.manual_seed(0)
    x, y = TokenStream(data_dir, "train").batch(0, 4, 32)
    model = GPT(GPTConfig.from_depth(2, 512, seq_len=32, n_embd=64))
    step = loop.TrainModule(model, language_model_loss())
    opts = build_optimizers(model, PretrainConfig(optimizer="normuon", embedding_lr=0.1, matrix_lr=0.04))
    first = None
    for _ in range(60):
        loss = step((x, y))
        first = first if first is not None else loss.item()
        loss.backward()
        for o in opts:
            o.step()
            o.zero_grad()
    assert first > 5.5                          # ~ln(512) at the start
    assert loss.item() < 1.0, loss.item()       # memorised


def test_loss_falls_on_the_default_corpus(tmp_path):
    data = tmp_path / "default"
    prepare(data, sources=None, vocab_size=512, val_fraction=0.05, max_bytes=400_000, progress=False)
    cfg = tiny(data, tmp_path / "run", max_steps=40, batch_size=8, val_tokens=4096, log_every=5)
    tok = Tokenizer.load(data / "tokenizer")
    torch.manual_seed(cfg.seed)
    untrained = GPT(GPTConfig.from_depth(2, tok.vocab_size, seq_len=64, n_embd=64))
    val = TokenStream(data, "val").read(0, 4096)
    before = evaluate_bpb(untrained, val, tok.token_bytes(), window=64)["bpb"]
    summary = train(cfg, progress=False)
    assert summary["val_bpb"] < before - 0.5, (before, summary["val_bpb"])
    losses = [r["loss"] for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())
              if r["event"] == "train"]
    assert losses[-1] < losses[0] - 1.0
    assert math.isfinite(summary["val_bpb_ci95"]) and summary["val_bpb_ci95"] > 0


def _weights(run):
    latest = (run / "latest").read_text().strip()
    return load_file(str(run / latest / "model.safetensors"))


@pytest.mark.parametrize("optimizer", ["normuon", "adamw"])
def test_resume_is_bit_exact(data_dir, tmp_path, optimizer):
    kw = dict(optimizer=optimizer, average="ema", qat_bits=6, qat_start=0.7, grad_accum=2)
    full = train(tiny(data_dir, tmp_path / "full", **kw), progress=False)
    part = train(tiny(data_dir, tmp_path / "split", **kw), stop_after=3, progress=False)
    assert part["stopped_at"] == 3
    resumed = train(tiny(data_dir, tmp_path / "split", **kw), resume=True, progress=False)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["val_bpb"] == full["val_bpb"] and resumed["step"] == full["step"] == 8


def test_checkpoint_is_hf_loadable_native_checkpoint(data_dir, tmp_path):
    train(tiny(data_dir, tmp_path / "r", max_steps=2), progress=False)
    ckpt = tmp_path / "r" / (tmp_path / "r" / "latest").read_text().strip()
    model = GPT.from_pretrained(ckpt)
    assert model.config.n_layer == 2 and (ckpt / "tokenizer.json").is_file()
    from_run_dir = GPT.from_pretrained(tmp_path / "r")  # native:RUN means the checkpoint `latest` names
    assert torch.equal(from_run_dir.lm_head.weight, model.lm_head.weight)


def test_head_dim_sets_the_head_count(data_dir, tmp_path):
    train(tiny(data_dir, tmp_path / "r", max_steps=1, head_dim=16), progress=False)
    config = GPT.from_pretrained(tmp_path / "r").config
    assert (config.n_head, config.head_dim) == (4, 16)
    with pytest.raises(ValueError, match="head_dim 24 does not divide the width 64"):
        train(tiny(data_dir, tmp_path / "bad", max_steps=1, head_dim=24), progress=False)


def test_recipe_errors_name_file_and_line(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[model]\ndepth = 2\n\n[optim]\nmatrix_lr = "fast"\n')
    assert cli(["pretrain", "--config", str(recipe)]) == 2
    assert f"{recipe}:5: matrix_lr must be float" in capsys.readouterr().err
    recipe.write_text('depth = 2\nwarmup_steps = 10\n')
    assert cli(["pretrain", "--config", str(recipe)]) == 2
    assert f"{recipe}:2: unknown key 'warmup_steps'" in capsys.readouterr().err
    assert cli(["pretrain", "--optimizer", "sgd"]) == 2


def test_shipped_recipes_are_valid_and_found_by_name():
    recipes = sorted(RECIPES.glob("*.toml"))
    assert RECIPES.parent == Path(crucible.__file__).parent      # inside the package: ships in the wheel
    assert len(recipes) >= 4
    for r in recipes:
        if "[[stage]]" not in r.read_text():  # run recipes (`crucible run`) are checked in test_demo.py
            build_config(r)
    assert build_config("pretrain_tiny").depth == 2
    assert build_config("golf.toml").max_minutes == 10.0
    with pytest.raises(ConfigError, match="shipped recipes: .*pretrain_tiny"):
        build_config("recipes/pretrain_tiny.toml")      # a path that does not exist is not a name


def test_cli_stop_resume_and_refuse_overwrite(data_dir, tmp_path, capsys):
    args = ["pretrain", "--data", str(data_dir), "--out", str(tmp_path / "c"), "--depth", "2", "--n-embd", "64",
            "--seq-len", "32", "--batch-size", "2", "--max-steps", "4", "--val-tokens", "512", "--no-progress",
            "--optimizer", "adamw"]
    assert cli(args + ["--stop-after", "2"]) == 0
    assert "continue with --resume" in capsys.readouterr().out
    assert cli(args) == 2                                  # refuses to start over an existing run
    assert cli(["pretrain", "--out", str(tmp_path / "c"), "--resume", "--max-steps", "9"]) == 2
    assert cli(["pretrain", "--out", str(tmp_path / "c"), "--resume", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["step"] == 4 and summary["optimizer"] == "adamw"


def test_ddp_and_fsdp2_under_torchrun_agree(data_dir, tmp_path):
    """Two CPU ranks (gloo): DDP and FSDP2 (sharded Muon through DTensor gathers) must train the
    same model: identical logged losses and final bpb. 545 validation tokens make 17 windows: rank 0
    scores 5 batches of 2, rank 1 only 4, and FSDP2's evaluation must still keep the ranks in step."""
    import subprocess
    import sys

    results = {}
    for mode in ("ddp", "fsdp"):
        out = tmp_path / mode
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "crucible", "pretrain", "--data", str(data_dir), "--out", str(out), "--depth", "2",
               "--n-embd", "64", "--seq-len", "32", "--batch-size", "2", "--max-steps", "4", "--log-every", "1",
               "--val-tokens", "545", "--dist", mode, "--threads", "1", "--no-progress", "--qat-bits", "6",
               "--qat-start", "0.5", "--dtype", "float32"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                                      "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
        assert next(r for r in log if r["event"] == "start")["world"] == 2
        results[mode] = ([r["loss"] for r in log if r["event"] == "train"],
                         json.loads((out / "summary.json").read_text())["val_bpb"])
        assert GPT.from_pretrained(out / "step_000004").config.n_layer == 2   # gathered, HF-loadable weights
    (ddp_losses, ddp_bpb), (fsdp_losses, fsdp_bpb) = results["ddp"], results["fsdp"]
    assert len(ddp_losses) == 4 and ddp_losses[-1] < ddp_losses[0]
    assert fsdp_losses == pytest.approx(ddp_losses, rel=1e-4)
    assert fsdp_bpb == pytest.approx(ddp_bpb, rel=1e-4)


def test_wall_clock_budget_drives_the_schedule(data_dir, tmp_path):
    cfg = tiny(data_dir, tmp_path / "clock", max_steps=100_000, max_minutes=0.03, log_every=1, warmdown=0.5)
    summary = train(cfg, progress=False)
    assert 1.8 <= summary["elapsed_s"] < 1.8 + 5 and 1 <= summary["step"] < 100_000
    recs = [json.loads(l) for l in (tmp_path / "clock" / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr_mult"] for r in recs if r["event"] == "train"]
    assert lrs[0] == 1.0 and lrs[-1] < 0.5          # warm-down reached by the clock, not the step count


def test_weight_averagers():
    from crucible.train.average import WeightAverager

    lin = torch.nn.Linear(2, 1, bias=False)
    swa, ema = WeightAverager("swa", every=2), WeightAverager("ema", decay=0.5)
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        with torch.no_grad():
            lin.weight.fill_(value)
        swa.update(lin)
        ema.update(lin)
    assert swa.count == 3 and torch.allclose(swa.avg["weight"], torch.full((1, 2), 3.0))   # mean of 1, 3, 5
    assert torch.allclose(ema.avg["weight"], torch.full((1, 2), 4.0625))                  # 1 -> 1.5 -> 2.25 -> 3.125 -> 4.0625
    ema.copy_to(lin)
    assert torch.allclose(lin.weight, torch.full((1, 2), 4.0625))


def test_flops_per_token_counts_matmuls_and_attention():
    from crucible.train.loop import peak_flops
    from crucible.train.pretrain import flops_per_token

    model = GPT(GPTConfig.from_depth(2, 512, seq_len=64, n_embd=64))
    c = model.config
    assert flops_per_token(model) == 6 * model.num_params(embeddings=False) + 12 * c.n_layer * c.n_embd * c.seq_len
    assert peak_flops(torch.device("cpu")) is None      # MFU is printed on GPU only


def _one_step(model, batches: list[tuple], lr: float = 1.0) -> dict:
    """The weights after one train_step with plain SGD (update = -lr * gradient) on these micro-batches."""
    cfg = PretrainConfig(optimizer="adamw", warmdown=0.0, max_steps=10, grad_accum=len(batches), compile="no",
                         dtype="float32")
    state = loop.setup(cfg, model, language_model_loss(), dist.DistInfo(), write_model=None)
    state.optimizers = [torch.optim.SGD(model.parameters(), lr=lr)]
    state.optimizers[0].param_groups[0]["base_lr"] = lr
    micro = [loop.MicroBatch((x, y), tokens=int((y != -1).sum()), position=i) for i, (x, y) in enumerate(batches)]
    loop.train_step(state, micro)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_step_loss_is_the_mean_over_all_trained_tokens(data_dir):
    """1 micro-batch of 8 == 4 of 2, and micro-batches with different numbers of trained (unmasked)
    tokens weigh by their tokens: the step follows the mean over every trained token."""
    x, y = TokenStream(data_dir, "train").batch(0, 8, 32)
    y = y.clone()
    y[0, :30] = -1                                   # row 0 trains 2 tokens, row 5 trains 12
    y[5, 12:] = -1

    def fresh():    # every weight random (a fresh GPT's zero output projections would hide the attention)
        return testing.random_gpt(vocab_size=512, seed=3).train()

    whole = _one_step(fresh(), [(x, y)])
    quarters = _one_step(fresh(), [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)])
    uneven = _one_step(fresh(), [(x[:1], y[:1]), (x[1:6], y[1:6]), (x[6:], y[6:])])
    model = fresh()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for xb, yb in [(x[:1], y[:1]), (x[1:6], y[1:6]), (x[6:], y[6:])]:
        (language_model_loss()(model, (xb, yb)) / 3).backward()
    opt.step()
    per_batch_mean = {n: p.detach() for n, p in model.named_parameters()}
    start = {n: p.detach() for n, p in fresh().named_parameters()}
    for name in whole:
        assert not torch.equal(whole[name], start[name]), name           # the step moved every weight
        assert torch.allclose(quarters[name], whole[name], rtol=1e-4, atol=1e-6), name
        assert torch.allclose(uneven[name], whole[name], rtol=1e-4, atol=1e-6), name
    assert not torch.allclose(per_batch_mean["lm_head.weight"], whole["lm_head.weight"], rtol=1e-4, atol=1e-6)


def test_setup_names_the_fields_a_config_lacks():
    model = GPT(GPTConfig.from_depth(2, 512, seq_len=32, n_embd=64))
    with pytest.raises(TypeError, match="lacks the training-loop fields .*grad_accum"):
        loop.setup(object(), model, language_model_loss(), dist.DistInfo(), write_model=None)


def test_resume_policy_lives_in_the_library(data_dir, tmp_path):
    from crucible.train.config import run_config

    cfg = tiny(data_dir, tmp_path / "p", max_steps=2)
    with pytest.raises(ConfigError, match="no run to resume"):
        run_config(None, {"out": cfg.out}, resume=True)
    train(cfg, progress=False)
    with pytest.raises(ConfigError, match="already has checkpoints"):
        run_config(None, {"out": cfg.out}, resume=False)
    with pytest.raises(ConfigError, match="cannot change max_steps"):
        run_config(None, {"out": cfg.out, "max_steps": 9}, resume=True)
    resumed = run_config(None, {"out": cfg.out, "log_every": 7}, resume=True)
    assert resumed.log_every == 7
    assert resumed.seed == cfg.seed
