r"""Talk to a model in the terminal (or pipe lines in): a quick way to try a checkpoint by hand.

examples:
  crucible chat --model native:ckpt/
  crucible chat --model hf:models/tiny --temperature 0 --max-tokens 64
  crucible chat --model openai:tiny@http://127.0.0.1:8000/v1 --system "Answer in Python."
  crucible chat --model native:base/ --completion          # a base model: each input is continued
  printf 'What is 2+2?\n/reset\nHi\n' | crucible chat --model hf:models/tiny

Each line is one user message (end a line with \ to continue it on the next). /reset starts a new
conversation, /quit (or end of input) leaves. Replies stream as they are generated.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="SPEC", help="native:DIR, hf:DIR, vllm:DIR or openai:MODEL@URL")
    p.add_argument("--system", help="a system message to start every conversation with")
    p.add_argument("--completion", action="store_true", help="base model: continue each input, no chat template")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=None, help="fix the sampling seed (default: a new draw each turn)")


def read_message(stream, interactive: bool) -> str | None:
    """One user message: a line, joined with the next ones while it ends in a backslash."""
    parts = []
    while True:
        if interactive:
            print("you> " if not parts else "...  ", end="", flush=True)
        line = stream.readline()
        if not line:
            return "\n".join(parts) if parts else None
        line = line.rstrip("\n")
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        return "\n".join(parts)


def main(args) -> int:
    from crucible.commands import gen_params, usage_errors
    from crucible.generate.registry import load_backend
    from crucible.generate.types import BackendError

    params = gen_params(args)
    with usage_errors(BackendError):
        backend = load_backend(args.model)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"{args.model}: /reset for a new conversation, /quit to leave", flush=True)
    start = [{"role": "system", "content": args.system}] if args.system else []
    history = list(start)
    out = sys.stdout

    def show(index, text):
        if index == 0:
            out.write(text)
            out.flush()

    try:
        while True:
            message = read_message(sys.stdin, interactive)
            if message is None or message.strip() in ("/quit", "/exit"):
                break
            if message.strip() == "/reset":
                history = list(start)
                print("(new conversation)", flush=True)
                continue
            if not message.strip():
                continue
            if interactive:
                out.write("model> ")
            try:
                if args.completion:
                    reply = backend.complete(message, 1, params, on_text=show)[0]
                else:
                    history.append({"role": "user", "content": message})
                    reply = backend.chat(history, 1, params, on_text=show)[0]
                    history.append({"role": "assistant", "content": reply.text})
            except BackendError as e:
                if not args.completion:
                    history.pop()
                print(f"\nerror: {e}", file=sys.stderr, flush=True)
                continue
            out.write("\n" if reply.finish_reason != "length" else " [max tokens]\n")
            out.flush()
    except KeyboardInterrupt:
        print()
    finally:
        backend.close()
    return 0
