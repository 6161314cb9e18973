"""crucible serve under load, against the server it replaced (http.server, one lock), in one run.

Two figures, each for both servers on the same tiny native checkpoint (CPU, one torch thread):
1. latency of a 4-token request sent while a 16 x 4000-token request is being generated (target:
   under 1 s): several small requests, spaced out, median and range;
2. total tokens/s of 16 single-sample clients at once vs the same 16 requests one at a time
   (target: >= 4x), each measured 3 times.
The old server is the file as it was before continuous batching (git show BASELINE:...), served in
a subprocess of this script. The checkpoint's head is scaled, and its stop tokens' rows zeroed, so
that sampling never ends a completion early (the old server has no ignore_eos): every request
generates exactly its max_tokens.

    python bench/serve_latency.py [--big-tokens 4000] [--clients 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASELINE = "3c5d901"   # the last commit with the http.server server
ROOT = Path(__file__).resolve().parents[1]
RESETS = [0]   # connections the server reset (the client retried)


def checkpoint(root: Path) -> Path:
    import torch

    from crucible import testing
    tok = testing.tokenizer()
    model = testing.random_gpt(tok, seq_len=8192)
    with torch.no_grad():
        h = model.model.embed_tokens.weight[:64]
        spread = model.lm_head(torch.nn.functional.rms_norm(h, (h.size(-1),))).std()
        model.lm_head.weight.mul_(4.0 / spread)   # logits with std 4: a stop token at 0 is ~never drawn
        for name in ("bos", "assistant_end"):
            model.lm_head.weight[tok.special_id(name)] = 0
    model.save_pretrained(root / "gpt", tok)
    return root / "gpt"


def serve_old(path: str) -> None:
    """Run the baseline server (its source from git) on a free port; print the URL."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE}:src/crucible/serve/__init__.py"],
                            capture_output=True, text=True, check=True).stdout
    # the baseline imported GenParams and BackendError from generate.backends, now generate.types
    source = source.replace("from crucible.generate.backends import", "from crucible.generate.types import")
    old = types.ModuleType("crucible_serve_baseline")
    exec(compile(source, "crucible_serve_baseline", "exec"), old.__dict__)
    from crucible.generate.registry import load_backend
    server = old.make_server(load_backend(f"native:{path}"), "127.0.0.1", 0, name="gpt")
    server.verbose = False
    print(f"old server on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


def start(argv: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split(" on ", 1)[1].strip()


def complete(url: str, max_tokens: int, n: int = 1, prompt: str = "def", seed: int = 0) -> int:
    body = {"model": "gpt", "prompt": prompt, "max_tokens": max_tokens, "n": n, "temperature": 1.0, "seed": seed}
    request = urllib.request.Request(url + "/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    for attempt in range(20):   # http.server's listen backlog is 5: a burst of clients gets resets
        try:
            with urllib.request.urlopen(request, timeout=600) as r:
                return json.loads(r.read())["usage"]["completion_tokens"]
        except ConnectionResetError:
            RESETS[0] += 1
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError("the server kept resetting the connection")


def latency_under_load(url: str, big_tokens: int, probes: int = 5) -> tuple[list[float], float]:
    """Latencies of `probes` 4-token requests sent while one n=16 request runs; its own duration."""
    done = {}

    def big():
        t0 = time.perf_counter()
        done["tokens"] = complete(url, big_tokens, n=16)
        done["seconds"] = time.perf_counter() - t0
    thread = threading.Thread(target=big)
    thread.start()
    time.sleep(1.0)
    latencies = []
    for i in range(probes):
        t0 = time.perf_counter()
        complete(url, 4, seed=i)
        latencies.append(time.perf_counter() - t0)
        if "seconds" in done:
            break
        time.sleep(0.5)
    thread.join()
    return latencies, done["seconds"]


def throughput(url: str, clients: int, tokens: int, together: bool) -> float:
    t0 = time.perf_counter()
    if together:
        with ThreadPoolExecutor(clients) as pool:
            total = sum(pool.map(lambda i: complete(url, tokens, prompt=f"def f{i}(", seed=i), range(clients)))
    else:
        total = sum(complete(url, tokens, prompt=f"def f{i}(", seed=i) for i in range(clients))
    return total / (time.perf_counter() - t0)


def spread(values: list[float], unit: str, digits: int = 2) -> str:
    return (f"median {statistics.median(values):.{digits}f} {unit} "
            f"(range {min(values):.{digits}f}-{max(values):.{digits}f}, {len(values)} runs)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--big-tokens", type=int, default=4000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--client-tokens", type=int, default=128)
    p.add_argument("--serve-old", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_old:
        serve_old(args.serve_old)
        return 0
    path = checkpoint(Path(tempfile.mkdtemp(prefix="crucible-serve-bench-")))
    servers = {
        "old (http.server, one lock)": [sys.executable, __file__, "--serve-old", str(path)],
        "new (uvicorn + scheduler)": [sys.executable, "-m", "crucible", "serve", "--model", f"native:{path}",
                                      "--name", "gpt", "--port", "0", "--quiet"],
    }
    rows = []
    for label, argv in servers.items():
        proc, url = start(argv)
        try:
            complete(url, 4)   # warm up
            latencies, big_s = latency_under_load(url, args.big_tokens)
            alone = [throughput(url, args.clients, args.client_tokens, together=False) for _ in range(3)]
            together = [throughput(url, args.clients, args.client_tokens, together=True) for _ in range(3)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        ratio = [t / a for t, a in zip(together, alone)]
        rows.append((label, latencies, big_s, alone, together, ratio))
        print(f"== {label}")
        print(f"  4-token request during a 16 x {args.big_tokens}-token one ({big_s:.1f} s): {spread(latencies, 's')}")
        print(f"  {args.clients} clients x {args.client_tokens} tokens, one at a time: {spread(alone, 'tok/s', 0)}")
        print(f"  {args.clients} clients x {args.client_tokens} tokens, all at once:   {spread(together, 'tok/s', 0)}")
        print(f"  speed-up from batching across requests: {spread(ratio, 'x')}")
        print(f"  connections reset by the server (retried): {RESETS[0]}", flush=True)
        RESETS[0] = 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
