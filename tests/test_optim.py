"""Newton–Schulz orthogonalisation, Muon / NorMuon updates, parameter roles, schedules."""

import pytest
import torch

from crucible.model.gpt import GPT, GPTConfig
from crucible.train import schedule
from crucible.train.config import PretrainConfig
from crucible.train.optim import Muon, build_optimizers, newton_schulz, split_params




@pytest.mark.parametrize("shape", [(64, 64), (32, 128), (128, 32), (96, 40)])
def test_newton_schulz_singular_values_near_one(shape):
    torch.manual_seed(0)
    k = min(shape)
    U, _ = torch.linalg.qr(torch.randn(shape[0], k))
    V, _ = torch.linalg.qr(torch.randn(shape[1], k))
    G = U @ torch.diag(torch.logspace(-1.5, 0, k)) @ V.T   # singular values spread over 1.5 decades
    s = torch.linalg.svdvals(newton_schulz(G, steps=5))
    # the speedrun's quintic trades exactness for speed: singular values land in about [0.7, 1.2]
    assert s.min() > 0.5 and s.max() < 1.3, s
    assert abs(s.mean().item() - 1.0) < 0.2
    # and it is orthogonalisation, not noise: same singular vectors as the exact polar factor
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    exact = U @ Vh
    cos = (newton_schulz(G) * exact).sum() / (newton_schulz(G).norm() * exact.norm())
    assert cos > 0.95


def test_muon_step_is_orthogonal_and_shape_scaled():
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.zeros(128, 32))
    opt = Muon([p], lr=0.1, momentum=0.0, nesterov=False)
    p.grad = torch.randn(128, 32)
    opt.step()
    s = torch.linalg.svdvals(-p.detach() / 0.1)
    assert s.mean() == pytest.approx(2.0, rel=0.2)   # sqrt(128 / 32) = 2 times an orthogonal matrix


def test_muon_rejects_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        Muon([torch.nn.Parameter(torch.zeros(3))])


def test_normuon_evens_rows_and_keeps_norm():
    torch.manual_seed(2)
    G = torch.randn(16, 64) * torch.linspace(0.1, 3, 16)[:, None]
    plain = newton_schulz(G)
    state, group = {}, {"beta2": 0.95, "eps": 1e-8}
    out = Muon._normalize_rows(plain, state, group)
    rows = out.norm(dim=1)
    assert rows.std() / rows.mean() < 1e-3                  # every row the same RMS after one step
    assert out.norm().item() == pytest.approx(plain.norm().item(), rel=1e-4)
    assert "row_second_moment" in state and state["row_second_moment"].shape == (16, 1)


def test_muon_minimises_a_quadratic():
    torch.manual_seed(3)
    target = torch.randn(32, 32)
    for normuon in (False, True):
        p = torch.nn.Parameter(torch.zeros(32, 32))
        opt = Muon([p], lr=0.05, normuon=normuon)
        for _ in range(150):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
        assert ((p - target).norm() / target.norm()).item() < 0.2


def test_split_params_and_optimizer_groups():
    model = GPT(GPTConfig.from_depth(2, 300, seq_len=32, n_embd=64, value_embeds=True, unet_skips=True))
    groups = split_params(model)
    names = {k: [n for n, _ in v] for k, v in groups.items()}
    assert all("layers" in n and "proj" in n for n in names["matrix"])
    assert names["head"] == ["lm_head.weight"]
    assert "model.embed_tokens.weight" in names["embedding"] and any("value_embeds" in n for n in names["embedding"])
    assert all(p.ndim < 2 for _, p in groups["scalar"]) and groups["scalar"]
    total = sum(len(v) for v in groups.values())
    assert total == len(list(model.parameters()))
    opts = build_optimizers(model, PretrainConfig(optimizer="normuon"))
    assert [type(o).__name__ for o in opts] == ["Adam", "Muon"] and opts[1].defaults["normuon"]
    opts = build_optimizers(model, PretrainConfig(optimizer="adamw", weight_decay=0.1))
    assert len(opts) == 1 and type(opts[0]).__name__ == "AdamW"
    assert all(g["base_lr"] == g["lr"] for o in opts for g in o.param_groups)


def test_schedules():
    m = lambda p: schedule.lr_multiplier(p, warmup=0.1, warmdown=0.4, final_lr_frac=0.0)
    assert m(0.05) == pytest.approx(0.5) and m(0.1) == 1.0 and m(0.5) == 1.0
    assert m(0.8) == pytest.approx(0.5) and m(1.0) == 0.0
    assert schedule.lr_multiplier(0.0, 0.1, 0.0) > 0                # first step is never wasted
    assert schedule.muon_momentum(0, 0.95, 0.85, 100) == pytest.approx(0.85)
    assert schedule.muon_momentum(50, 0.95, 0.85, 100) == pytest.approx(0.90)
    assert schedule.muon_momentum(500, 0.95, 0.85, 100) == pytest.approx(0.95)
    assert schedule.in_warmdown(0.7, 0.4) and not schedule.in_warmdown(0.5, 0.4)
