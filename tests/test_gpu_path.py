"""What CPU tests can prove of the GPU path: the training step compiles as one graph (fullgraph), a
fused loss kernel (Liger on CUDA; a stand-in here) is chosen and kept out of dynamo's tracing, the
step makes no host sync, the log reports tokens/s, MFU and peak memory, and the chunked loss traces
in few chunks. Compilation uses dynamo's `aot_eager` / `eager` backends: the same fullgraph tracing
(forward and, with aot_eager, backward), without inductor's code generation (minutes on this CPU)."""

import json
import sysconfig
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from crucible.model.gpt import GPT, GPTConfig
from crucible.train import dist, loop
from crucible.train import loss as loss_mod
from crucible.train.config import PretrainConfig
from crucible.train.optim import newton_schulz
from crucible.train.pretrain import language_model_loss, train

VOCAB = 512


def tiny_state(monkeypatch, backend: str = "aot_eager", **overrides):
    monkeypatch.setattr(loop, "COMPILE_BACKEND", backend)
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_depth(2, VOCAB, seq_len=32, n_embd=64))
    cfg = PretrainConfig(**{"max_steps": 10, "dtype": "float32", "compile": "yes", **overrides})
    return loop.setup(cfg, model, language_model_loss(), dist.DistInfo(), write_model=None)


def batches(n: int, seed: int = 1) -> list[loop.MicroBatch]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = torch.randint(0, VOCAB, (2, 32), generator=g)
        y = torch.randint(0, VOCAB, (2, 32), generator=g)
        out.append(loop.MicroBatch((x, y), tokens=64, position=i))
    return out


def run_steps(state, steps: int) -> list[float]:
    losses = []
    for mb in batches(steps):
        loop.train_step(state, [mb])
        losses.append(loop.take_train_loss(state))
    return losses


def test_whole_training_step_compiles_as_one_graph(monkeypatch):
    """setup(compile=yes) compiles model + loss with fullgraph=True (a graph break would raise) and
    Muon's Newton-Schulz too; the compiled steps train exactly as the eager ones."""
    eager = tiny_state(monkeypatch, compile="no")
    compiled = tiny_state(monkeypatch)
    assert isinstance(compiled.forward, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.optimizers[-1].orthogonalize is not newton_schulz      # Muon's, compiled
    expected = run_steps(eager, 2)
    got = run_steps(compiled, 2)
    assert got == pytest.approx(expected, rel=1e-5)
    for (name, p), q in zip(eager.model.named_parameters(), compiled.model.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name


def test_fullgraph_refuses_a_step_with_a_graph_break(monkeypatch):
    """The control for the test above: a loss with a graph break in it does not compile."""
    state = tiny_state(monkeypatch, backend="eager")
    plain = language_model_loss()

    def broken(model, data):
        torch._dynamo.graph_break()
        return plain(model, data)

    state.module.loss_fn = broken
    state.forward = loop.compile_forward(state.module, state.module, state.info)
    with pytest.raises(torch._dynamo.exc.Unsupported):
        run_steps(state, 1)


class StandInKernel(torch.nn.Module):
    """Plays Liger's LigerFusedLinearCrossEntropyLoss (same call: weight, hidden, targets). It reads
    a tensor on the host, which fullgraph tracing refuses: it works only if it is not traced."""

    def __init__(self):
        super().__init__()
        self.calls = []                   # torch.compiler.is_compiling() at each call

    def forward(self, weight, hidden, targets):
        self.calls.append(torch.compiler.is_compiling())
        assert targets.max().item() < weight.size(0)
        logits = 15.0 * torch.tanh((hidden @ weight.t()).float() / 15.0)
        return F.cross_entropy(logits, targets, ignore_index=-1)


def test_fused_kernel_is_chosen_and_kept_out_of_the_compiled_graph(monkeypatch):
    kernel = StandInKernel()
    monkeypatch.setattr(loss_mod, "FUSED_DEVICES", ("cuda", "cpu"))
    monkeypatch.setitem(loss_mod._LIGER, 15.0, kernel)
    state = tiny_state(monkeypatch, backend="eager")
    assert state.forward is state.module                              # not the whole module: the trunk
    assert hasattr(state.module.loss_fn.trunk, "_torchdynamo_orig_callable")
    got = run_steps(state, 2)
    assert kernel.calls == [False, False]                             # chosen, and run eagerly
    monkeypatch.setattr(loss_mod, "FUSED_DEVICES", ("cuda",))
    reference = run_steps(tiny_state(monkeypatch, compile="no"), 2)    # ours (chunked), eager
    assert got == pytest.approx(reference, rel=1e-5)
    assert kernel.calls == [False, False]                             # not chosen off its devices


def test_fused_kernel_is_not_offered_where_it_does_not_run(monkeypatch):
    monkeypatch.setitem(loss_mod._LIGER, 15.0, StandInKernel())
    assert loss_mod.fused_kernel(torch.device("cpu"), 15.0) is None
    model = GPT(GPTConfig.from_depth(1, VOCAB, seq_len=32, n_embd=64))
    assert not language_model_loss().eager_head(model)


class HostReads(TorchDispatchMode):
    """Records every op that copies a tensor's value to the host (item / bool / float / nonzero):
    each one a stall of the GPU queue on CUDA."""

    OPS = ("aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.unique")

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func).startswith(self.OPS):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def test_train_step_reads_nothing_back_to_the_host(monkeypatch):
    """Every step feature on (NorMuon, QAT, EMA, clipping, two micro-batches), the loss taking the
    path it takes on CUDA, fused Adam as on CUDA: no host read; reading the loss is one."""
    monkeypatch.setattr(loss_mod, "SYNC_FREE_DEVICES", ())
    state = tiny_state(monkeypatch, compile="no", grad_accum=2, qat_bits=6, qat_start=0.0, average="ema",
                       warmdown=1.0, grad_clip=1.0)
    groups = [{k: g[k] for k in ("params", "lr", "base_lr")} for g in state.optimizers[0].param_groups]
    state.optimizers[0] = torch.optim.Adam(groups, betas=(0.8, 0.95), eps=1e-10, fused=True)
    mbs = batches(4)
    with HostReads() as reads:
        loop.train_step(state, mbs[:2])
        loop.train_step(state, mbs[2:])
    assert reads.seen == []
    assert state.averager.count == 2                                    # the features did run
    with HostReads() as reads:
        loop.take_train_loss(state)
    assert reads.seen == ["aten._local_scalar_dense.default"]


def test_pretrain_log_reports_speed_mfu_and_peak_memory(tmp_path, monkeypatch):
    from crucible.data.prepare import prepare
    from crucible.train.pretrain import flops_per_token

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    data = tmp_path / "data"
    prepare(data, sources=[str(stdlib / "textwrap.py"), str(stdlib / "string.py")], vocab_size=300,
            val_fraction=0.3, max_bytes=None, progress=False)
    monkeypatch.setattr(loop, "peak_flops", lambda device: 1e12)      # a made-up device peak
    cfg = PretrainConfig(data=str(data), out=str(tmp_path / "run"), depth=1, n_embd=64, seq_len=32, batch_size=2,
                         max_steps=4, log_every=2, eval_every=0, val_tokens=256, dtype="float32", compile="no")
    train(cfg, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first = [r for r in records if r["event"] == "first_step"]
    steps = [r for r in records if r["event"] == "train"]
    model = GPT.from_pretrained(tmp_path / "run" / "step_000004")
    assert [r["step"] for r in first] == [1]
    assert first[0]["compiled"] is False
    assert [r["step"] for r in steps] == [2, 4]
    for r in steps:
        assert r["tokens_per_s"] > 0
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * flops_per_token(model) / 1e12)
        assert r["peak_mem_mb"] > 10                                  # this process's peak resident set


def test_compiled_chunked_loss_is_one_graph_of_few_chunks():
    """Under compile the chunk loop unrolls into at most MAX_TRACED_CHUNKS chunks (not N / 128),
    and the traced loss and gradients equal the naive ones."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch.manual_seed(0)
    n, c, v = 4096, 16, 4096                      # 64-row chunks would be 64 unrolled chunks
    h = torch.randn(n, c, requires_grad=True)
    w = (0.1 * torch.randn(v, c)).requires_grad_()
    y = torch.randint(0, v, (n,))
    y[::7] = -1
    fn = torch.compile(lambda h, w, y: loss_mod.chunked_cross_entropy(h, w, y, 15.0, chunk_size=64),
                       fullgraph=True, backend=backend)
    got = fn(h, w, y)
    got.backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = loss_mod.naive_cross_entropy(h, w, y, 15.0)
    ref.backward()
    assert len(graphs) == 1
    amax = sum(str(node.target).endswith("amax") for gm in graphs[0].modules()      # the autograd.Function's
               if isinstance(gm, torch.fx.GraphModule) for node in gm.graph.nodes)  # forward: a subgraph
    assert amax == loss_mod.MAX_TRACED_CHUNKS          # 8 chunks of 512 rows, not 64 of 64
    assert torch.allclose(got, ref, rtol=1e-5)
    assert torch.allclose(gh, h.grad, rtol=1e-4, atol=1e-7)
    assert torch.allclose(gw, w.grad, rtol=1e-4, atol=1e-7)


def test_fixed_shape_decoding_equals_the_sliced_cache_token_for_token():
    """The static-cache path (what a CUDA graph replays) against the engine's usual one: prompts of
    different lengths (padded rows), n samples, greedy and sampled, and rows stopping early (which
    the usual path compacts away and the static one carries along)."""
    from crucible import testing
    from crucible.model.engine import Engine, SamplingParams

    tok = testing.tokenizer(384)
    model = testing.random_gpt(tok, n_layer=2)
    dynamic = Engine(model, tok, tools=False, decode="dynamic")
    static = Engine(model, tok, tools=False, decode="static")
    assert Engine(model, tok, tools=False).decode == "dynamic"                  # CPU default: unchanged
    prompts = [tok.encode("import os\n"), tok.encode("class Stack:\n    def push(self, item):"), [tok.bos_id]]
    greedy = SamplingParams(max_tokens=20, ignore_eos=True)
    sampled = SamplingParams(max_tokens=20, temperature=1.0, top_k=50, seed=3, ignore_eos=True)
    for params in (greedy, sampled):
        want = dynamic.generate_batch(prompts, 2, params)
        got = static.generate_batch(prompts, 2, params)
        assert [[c.ids for c in cs] for cs in got] == [[c.ids for c in cs] for cs in want]
    stop = want[1][0].text[4:7]                                       # a stop string that some rows hit
    stopping = SamplingParams(max_tokens=20, stop=(stop,))
    want = dynamic.generate_batch(prompts, 2, stopping)
    got = static.generate_batch(prompts, 2, stopping)
    assert any(c.finish_reason == "stop" for cs in want for c in cs)
    assert any(c.finish_reason == "length" for cs in want for c in cs)
    assert [[(c.ids, c.text, c.finish_reason) for c in cs] for cs in got] == \
        [[(c.ids, c.text, c.finish_reason) for c in cs] for cs in want]


def test_cuda_graph_decoding_is_refused_off_cuda():
    from crucible import testing
    from crucible.model.engine import Engine

    tok = testing.tokenizer(384)
    with pytest.raises(ValueError, match="'graph' on CUDA only"):
        Engine(testing.random_gpt(tok, n_layer=1), tok, tools=False, decode="graph")
