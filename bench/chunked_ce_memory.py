"""Peak memory (and time) of the chunked linear cross-entropy vs the naive loss, at vocab 32k.

Each measurement runs in a fresh subprocess: inputs are built, the resident set size noted, then
one forward + backward of the loss; the peak RSS (VmHWM, reset just before) above that baseline is the
loss's own peak, weight and hidden gradients included for both. On CUDA (--device cuda) the
allocator's max_memory_allocated is used instead. Repeated --repeats times; mean ± std reported.

  .venv/bin/python bench/chunked_ce_memory.py                     # N=8192 tokens, C=512, V=32768
  .venv/bin/python bench/chunked_ce_memory.py --tokens 4096 --json out.json
Target: chunked peak <= 0.3x naive.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
from crucible.train.loss import chunked_cross_entropy, naive_cross_entropy
impl, n, c, v, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.manual_seed(0)
h = torch.randn(n, c, device=device, requires_grad=True)
w = (torch.randn(v, c, device=device) * 0.02).requires_grad_()
y = torch.randint(0, v, (n,), device=device)
def status_mb(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) / 1024
fn = chunked_cross_entropy if impl == "chunked" else naive_cross_entropy
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated() / 2**20
else:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                      # reset the peak-RSS mark (VmHWM) to the current RSS
    base = status_mb("VmRSS:")
t = time.perf_counter()
loss = fn(h, w, y, 15.0)
loss.backward()
if device == "cuda":
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() / 2**20 - base
else:
    peak = status_mb("VmHWM:") - base
print(json.dumps({"impl": impl, "peak_mb": peak, "seconds": time.perf_counter() - t, "loss": loss.item()}))
"""


def measure(impl: str, args) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, impl, str(args.tokens), str(args.dim), str(args.vocab),
                          args.device], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--vocab", type=int, default=32768)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    runs = {"naive": [], "chunked": []}
    for _ in range(args.repeats):           # interleaved, so background load hits both alike
        for impl in runs:
            runs[impl].append(measure(impl, args))
    assert abs(runs["naive"][0]["loss"] - runs["chunked"][0]["loss"]) < 1e-3 * runs["naive"][0]["loss"]
    summary = {}
    for impl, rs in runs.items():
        mb = [r["peak_mb"] for r in rs]
        s = [r["seconds"] for r in rs]
        summary[impl] = {"peak_mb": statistics.mean(mb), "peak_mb_std": statistics.pstdev(mb),
                         "seconds": statistics.mean(s), "seconds_std": statistics.pstdev(s)}
    ratio = summary["chunked"]["peak_mb"] / summary["naive"]["peak_mb"]
    print(f"linear cross-entropy, N={args.tokens} tokens, C={args.dim}, V={args.vocab}, {args.device}, "
          f"{args.repeats} runs each (mean ± std)")
    for impl, s in summary.items():
        print(f"  {impl:8s} peak {s['peak_mb']:8.1f} ± {s['peak_mb_std']:5.1f} MB   "
              f"fwd+bwd {s['seconds']:.3f} ± {s['seconds_std']:.3f} s")
    print(f"  chunked / naive peak memory: {ratio:.3f}x (target <= 0.3x): {'PASS' if ratio <= 0.3 else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "summary": summary, "ratio": ratio}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
