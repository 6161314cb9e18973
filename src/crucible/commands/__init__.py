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


def add_sampling_arguments(g, *, temperature: float = 0.0, max_tokens: int = 512) -> None:
    """The options `gen_params` reads, on a parser or an argument group."""
    g.add_argument("--temperature", type=float, default=temperature)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--max-tokens", type=int, default=max_tokens)
    g.add_argument("--seed", type=int, default=0)


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


def add_ray_argument(p) -> None:
    """`--ray ADDRESS`: the same work fanned out on a Ray cluster (docs/scale.md)."""
    p.add_argument("--ray", metavar="ADDRESS",
                   help="sample and grade on the Ray cluster at HOST:PORT (or auto: the one this machine is in); "
                        "needs pip install 'crucible[ray]'")


@contextmanager
def ray_session(address: str | None):
    """Connected to the Ray cluster at `address` for the block (nothing when None); Ray missing or the
    cluster unreachable is a usage error."""
    if not address:
        yield None
        return
    from crucible.scale import ScaleError, connect

    with usage_errors(ScaleError), connect(address) as ray:
        yield ray
