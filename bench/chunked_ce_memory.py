"""Peak memory (and time) of the chunked linear cross-entropy vs the naive loss, at vocab 32k.

Each measurement runs in a fresh subprocess: inputs are built, the resident set size noted, then
one forward + backward of the loss; the peak RSS (VmHWM, reset just before) above that baseline is the
loss's own peak, weight and hidden gradients included for both. On CUDA (--device cuda) the
allocator's max_memory_allocated is used instead, after a warm-up call, and the time is the mean of
--iters calls. Repeated --repeats times; mean ± std reported.

Implementations (--impls): naive (full logits + F.cross_entropy), chunked (ours, eager), compiled
(ours under torch.compile, fullgraph: what a compiled training step runs; its first call, the
compilation, is a warm-up and not timed), liger (Liger's fused kernel: what training uses on CUDA
when liger-kernel is installed; reported as missing otherwise).

  .venv/bin/python bench/chunked_ce_memory.py                     # N=8192 tokens, C=512, V=32768
  .venv/bin/python bench/chunked_ce_memory.py --tokens 4096 --json out.json
  .venv/bin/python bench/chunked_ce_memory.py --device cuda --impls naive,chunked,compiled,liger
Targets: chunked peak <= 0.3x naive; on CUDA, the loss training uses at least naive's speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
from crucible.train.loss import chunked_cross_entropy, fused_kernel, naive_cross_entropy
impl, n, c, v, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
iters = int(sys.argv[6])
torch.manual_seed(0)
h = torch.randn(n, c, device=device, requires_grad=True)
w = (torch.randn(v, c, device=device) * 0.02).requires_grad_()
y = torch.randint(0, v, (n,), device=device)
def status_mb(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) / 1024
if impl == "liger":
    kernel = fused_kernel(torch.device(device), 15.0)
    if kernel is None:
        print(json.dumps({"impl": impl, "missing": True})); sys.exit(0)
    fn = lambda h, w, y, cap: kernel(w, h, y)
elif impl == "compiled":
    fn = torch.compile(chunked_cross_entropy, fullgraph=True)
else:
    fn = chunked_cross_entropy if impl == "chunked" else naive_cross_entropy
if device == "cuda" or impl == "compiled":   # warm-up: compilation, cuBLAS and allocator set-up
    fn(h, w, y, 15.0).backward(); h.grad = w.grad = None
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated() / 2**20
else:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                      # reset the peak-RSS mark (VmHWM) to the current RSS
    base = status_mb("VmRSS:")
t = time.perf_counter()
for _ in range(iters):
    h.grad = w.grad = None
    loss = fn(h, w, y, 15.0)
    loss.backward()
if device == "cuda":
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() / 2**20 - base
else:
    peak = status_mb("VmHWM:") - base
print(json.dumps({"impl": impl, "peak_mb": peak, "seconds": (time.perf_counter() - t) / iters, "loss": loss.item()}))
"""


def measure(impl: str, args) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, impl, str(args.tokens), str(args.dim), str(args.vocab),
                          args.device, str(args.iters)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--vocab", type=int, default=32768)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--impls", default="naive,chunked", help="comma-separated: naive, chunked, compiled, liger")
    p.add_argument("--iters", type=int, default=0, help="timed calls per run (0: 1 on CPU, 5 on CUDA)")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    args.iters = args.iters or (5 if args.device == "cuda" else 1)
    impls = [i for i in args.impls.split(",") if i]
    if "naive" not in impls or not set(impls) <= {"naive", "chunked", "compiled", "liger"}:
        p.error(f"--impls must include naive and name only naive, chunked, compiled, liger; got {args.impls!r}")
    runs = {impl: [] for impl in impls}
    for _ in range(args.repeats):           # interleaved, so background load hits both alike
        for impl in impls:
            runs[impl].append(measure(impl, args))
    runs = {impl: rs for impl, rs in runs.items() if not rs[0].get("missing")}
    naive_loss = runs["naive"][0]["loss"]
    for impl, rs in runs.items():
        assert abs(rs[0]["loss"] - naive_loss) < 1e-3 * naive_loss, (impl, rs[0]["loss"], naive_loss)
    summary = {}
    for impl, rs in runs.items():
        mb = [r["peak_mb"] for r in rs]
        s = [r["seconds"] for r in rs]
        summary[impl] = {"peak_mb": statistics.mean(mb), "peak_mb_std": statistics.pstdev(mb),
                         "seconds": statistics.mean(s), "seconds_std": statistics.pstdev(s)}
    naive = summary["naive"]
    for impl, s in summary.items():
        s["memory_vs_naive"] = s["peak_mb"] / naive["peak_mb"]
        s["speed_vs_naive"] = naive["seconds"] / s["seconds"]
    print(f"linear cross-entropy, N={args.tokens} tokens, C={args.dim}, V={args.vocab}, {args.device}, "
          f"{args.repeats} runs each (mean ± std), {args.iters} timed call(s) per run")
    for impl, s in summary.items():
        print(f"  {impl:8s} peak {s['peak_mb']:8.1f} ± {s['peak_mb_std']:5.1f} MB   "
              f"fwd+bwd {s['seconds']:.4f} ± {s['seconds_std']:.4f} s   "
              f"memory {s['memory_vs_naive']:.3f}x, speed {s['speed_vs_naive']:.2f}x naive")
    missing = sorted(set(impls) - set(summary))
    if missing:
        print(f"  not installed: {', '.join(missing)}")
    ratio = summary["chunked"]["memory_vs_naive"] if "chunked" in summary else None
    if ratio is not None:
        print(f"  chunked / naive peak memory: {ratio:.3f}x (target <= 0.3x): {'PASS' if ratio <= 0.3 else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "summary": summary, "ratio": ratio, "missing": missing}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
