"""Atomic checkpoints: a SIGKILL at a random moment during saving never breaks `latest`."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from crucible.train import checkpoint


SAVER = textwrap.dedent("""
    import sys, torch
    from crucible.train import checkpoint
    run, start = sys.argv[1], int(sys.argv[2])
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=0.1)
    step = start
    while True:
        step += 1
        weights = torch.full((1_500_000,), float(step))       # 6 MB: the save takes a while
        def save_model(d, w=weights):
            torch.save({"w": w}, d / "weights.pt")
        checkpoint.save(run, step, save_model=save_model, optimizers=[opt], state={"step": step}, keep=2)
""")


def _consistent(run):
    path = checkpoint.latest(run)
    state = json.loads((path / "trainer" / "state.json").read_text())
    w = torch.load(path / "weights.pt")["w"]
    assert path.name == checkpoint.step_dir_name(state["step"])
    assert torch.all(w == float(state["step"]))   # weights and metadata from the same save
    return state["step"]


def test_kill_mid_save_leaves_a_complete_latest(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    last, saw_partial = 0, False
    delays = (0.0, 0.013, 0.029, 0.041, 0.007, 0.019)
    for round_ in range(4 * len(delays)):   # at least 6 kills; more until one lands mid-save (load shifts timing)
        if round_ >= len(delays) and saw_partial:
            break
        delay = delays[round_ % len(delays)]
        proc = subprocess.Popen([sys.executable, str(script), str(run), str(last)])
        try:
            deadline = time.time() + 60
            while time.time() < deadline:   # let it complete at least two saves of its own
                if (run / "latest").exists() and _step_of(run) >= last + 2:
                    break
                time.sleep(0.005)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        saw_partial |= any(p.name.startswith(".tmp-") for p in run.iterdir())
        step = _consistent(run)
        assert step >= last + 2
        last = step
    # the saver spends nearly all its time saving, so some kill landed mid-save (a .tmp- left behind)
    assert saw_partial
    assert len([p for p in run.glob("step_*")]) <= 3   # pruned to `keep` (+ the one being replaced)


def _step_of(run):
    try:
        return int((run / "latest").read_text().strip().split("_")[1])
    except (OSError, ValueError, IndexError):
        return 0


def test_latest_missing_and_incomplete(tmp_path):
    assert checkpoint.latest(tmp_path) is None
    (tmp_path / "latest").write_text("step_000005\n")
    with pytest.raises(FileNotFoundError, match="incomplete"):
        checkpoint.latest(tmp_path)


def test_save_load_roundtrip_restores_optimizer_and_rng(tmp_path):
    p = torch.nn.Parameter(torch.randn(3, 3))
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.ones(3, 3)
    opt.step()
    torch.manual_seed(7)
    path = checkpoint.save(tmp_path, 1, save_model=lambda d: None, optimizers=[opt],
                           state={"step": 1, "position": 4096})
    expected_next = torch.rand(3)
    torch.manual_seed(99)
    opt2 = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    state = checkpoint.load(path, optimizers=[opt2])
    assert state == {"step": 1, "position": 4096}
    assert torch.equal(torch.rand(3), expected_next)
    s1, s2 = opt.state_dict()["state"][0], opt2.state_dict()["state"][0]
    assert torch.equal(s1["exp_avg"], s2["exp_avg"]) and torch.equal(s1["exp_avg_sq"], s2["exp_avg_sq"])
    # re-saving the same step replaces it atomically
    checkpoint.save(tmp_path, 1, save_model=lambda d: None, optimizers=[opt], state={"step": 1, "position": 1})
    assert checkpoint.load(checkpoint.latest(tmp_path), optimizers=[opt2])["position"] == 1
    assert not any(x.name.startswith(".tmp") for x in tmp_path.iterdir())
