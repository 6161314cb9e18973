"""Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models, /tokenize).

examples:
  crucible serve --model native:ckpt/ --port 8000
  crucible serve --model hf:models/tiny --name tiny --port 0        # any free port (printed)
  crucible eval humaneval --model openai:tiny@http://127.0.0.1:8000/v1 --limit 20 --out runs/t
  curl -s http://127.0.0.1:8000/v1/completions -d '{"prompt": "def add(a, b):", "max_tokens": 32}'

No authentication: keep the default --host 127.0.0.1 unless the network is yours.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from crucible.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="SPEC", help="native:DIR or hf:DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one; the URL is printed)")
    p.add_argument("--name", help="model name clients send (default: the checkpoint directory's name)")
    p.add_argument("--max-tokens", type=int, default=512, help="chat max_tokens when a request gives none")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")


def default_name(spec: str) -> str:
    kind, _, target = spec.partition(":")
    if kind == "openai":
        return target.split("@", 1)[0]
    return Path(target.rstrip("/")).name or kind


def main(args) -> int:
    from crucible.generate.types import BackendError
    from crucible.serve import listen, serve
    from crucible.serve.models import load_served

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    if args.max_tokens < 1:
        raise UsageError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    try:
        sock = listen(args.host, args.port)
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    try:
        model = load_served(args.model)
    except BackendError as e:
        sock.close()
        raise UsageError(str(e)) from None
    host = sock.getsockname()[0]
    try:
        public = not ipaddress.ip_address(host).is_loopback
    except ValueError:
        public = True
    if public:
        print(f"WARNING: listening on {host}, not loopback, with no authentication", file=sys.stderr)
    serve(model, args.name or default_name(args.model), sock, label=args.model, quiet=args.quiet,
          chat_max_tokens=args.max_tokens)
    return 0
