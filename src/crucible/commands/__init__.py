"""The `crucible` commands (one module each, see crucible.cli) and the little they share:
turning library errors into usage errors, and sampling options into `GenParams`."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def usage_errors(*kinds: type[Exception], prefix: str = ""):
    """Re-raise `kinds` (the libraries' own errors about bad input) as UsageError: exit code 2."""
    from crucible.cli import UsageError

    try:
        yield
    except kinds as e:
        raise UsageError(f"{prefix}{e}") from None


def gen_params(args):
    """GenParams from the sampling options (--max-tokens, --temperature, --top-p, --top-k, --seed)."""
    from crucible.cli import UsageError
    from crucible.generate.types import GenParams

    params = GenParams(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                       top_k=args.top_k, seed=args.seed)
    why = params.check()
    if why:
        raise UsageError(f"--{why.replace('_', '-', 1)}")
    return params
