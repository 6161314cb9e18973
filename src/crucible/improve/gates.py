"""Gates: `METRIC OP NUMBER` conditions a recipe checks after a stage; a failed gate stops the run.

    pass@1 >= 0.30        probes.total >= 0.95        bpb <= 1.1        compare.p < 0.05

Why a grammar and not eval(): gate text comes from recipe files; a regular expression accepts a
metric name, one of >= <= > < == !=, and a decimal number, and nothing else can run. A metric the
results do not have is an error (GateError), never a silent pass.

Metric names come from the result files crucible writes (`metrics_from`):
- an eval summary (summary.json): pass@K, and pass@K.lo / pass@K.hi (its 95% interval); a
  `--runs` summary gives pass@1 (the mean across runs);
- probes (probes.json): probes.total, probes.<category> (and .lo / .hi);
- a comparison (`crucible compare --json`): compare.delta, compare.lo, compare.hi, compare.p;
- vote (vote.json): vote@N (and .lo / .hi);
- a curriculum decision (decision.json): pass_rate (and .lo / .hi, Wilson), level, next_level;
- any other JSON object's top-level numbers under their own names (e.g. {"bpb": 1.07}).

`metrics_from_paths` reads them from files or results directories. `enforce` raises GateFailed
naming each failed gate and by how much; commands turn it into exit code 3.
Not covered: and/or combinations (write several gates: all must hold).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from pathlib import Path

from crucible.io import JsonlError, parse_line

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne}
# what a results directory offers (decision.json: a curriculum stage's)
RESULT_FILES = ("summary.json", "probes.json", "vote.json", "compare.json", "decision.json")
OP = r"(>=|<=|==|!=|>|<)"  # longest first: '>=' before '>'
NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
GATE = re.compile(rf"\s*([A-Za-z_][\w@.\-]*)\s*{OP}\s*{NUMBER}\s*")


class GateError(ValueError):
    """A gate that cannot be read, or that names a metric the results do not have."""


class GateFailed(Exception):
    """One or more gates did not hold; `checks` are all the evaluated gates."""

    def __init__(self, checks: list[dict]):
        self.checks = checks
        super().__init__("; ".join(describe(c) for c in checks if not c["passed"]))


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    threshold: float
    text: str


def parse_gate(text: str) -> Gate:
    m = GATE.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise GateError(f"gate {text!r}: expected METRIC OP NUMBER with OP one of {' '.join(OPS)} "
                        "(e.g. 'pass@1 >= 0.30')")
    return Gate(m.group(1), m.group(2), float(m.group(3)), " ".join(text.split()))


def evaluate(gates: list[Gate], metrics: dict[str, float]) -> list[dict]:
    """Each gate with the metric's value, whether it held, and its margin (negative: short by)."""
    checks = []
    for g in gates:
        if g.metric not in metrics:
            raise GateError(f"gate {g.text!r}: no metric {g.metric!r} in the results; have: "
                            f"{', '.join(sorted(metrics)) or 'none'}")
        value = float(metrics[g.metric])
        margin = value - g.threshold if g.op in (">=", ">") else g.threshold - value if g.op in ("<=", "<") else None
        checks.append({"gate": g.text, "metric": g.metric, "value": value, "threshold": g.threshold,
                       "passed": bool(OPS[g.op](value, g.threshold)), "margin": margin})
    return checks


def enforce(gates: list[Gate], metrics: dict[str, float]) -> list[dict]:
    checks = evaluate(gates, metrics)
    if not all(c["passed"] for c in checks):
        raise GateFailed(checks)
    return checks


def describe(check: dict) -> str:
    how = "holds" if check["passed"] else "FAILED"
    text = f"gate '{check['gate']}' {how}: {check['metric']} = {check['value']:.4g}"
    if check["margin"] is not None:
        text += f" ({abs(check['margin']):.4g} {'over' if check['margin'] >= 0 else 'short'})"
    return text


def metrics_from(obj: dict) -> dict[str, float]:
    """Gate metrics from one result object crucible writes (see the module docstring)."""
    out: dict[str, float] = {}
    if isinstance(obj.get("pass@k"), dict):  # eval summary
        for k, v in obj["pass@k"].items():
            out[f"pass@{k}"] = v
            lo, hi = obj.get("ci", {}).get(k, (None, None))
            if lo is not None:
                out[f"pass@{k}.lo"], out[f"pass@{k}.hi"] = lo, hi
    elif isinstance(obj.get("pass@1"), dict) and "mean" in obj["pass@1"]:  # --runs summary
        out["pass@1"] = obj["pass@1"]["mean"]
        out["pass@1.lo"], out["pass@1.hi"] = obj["pass@1"]["ci"]
    if isinstance(obj.get("total"), dict) and isinstance(obj.get("categories"), dict):  # probes
        for name, s in [("total", obj["total"]), *obj["categories"].items()]:
            out[f"probes.{name}"] = s["score"]
            out[f"probes.{name}.lo"], out[f"probes.{name}.hi"] = s["ci"]
    if "p_value" in obj and "delta" in obj:  # compare
        out.update({"compare.p": obj["p_value"], "compare.delta": obj["delta"],
                    "compare.lo": obj["ci"][0], "compare.hi": obj["ci"][1]})
    if "pass_rate" in obj and "next_level" in obj:  # a curriculum decision
        out.update({"pass_rate": obj["pass_rate"], "pass_rate.lo": obj["ci"][0], "pass_rate.hi": obj["ci"][1],
                    "level": obj["level"], "next_level": obj["next_level"]})
    if isinstance(obj.get("vote@N"), dict):
        out["vote@N"] = obj["vote@N"]["value"]
        out["vote@N.lo"], out["vote@N.hi"] = obj["vote@N"]["ci"]
    if not out:
        out = {k: float(v) for k, v in obj.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return out


def metrics_from_paths(paths) -> dict[str, float]:
    """Gate metrics from result JSON files, or directories (their RESULT_FILES); later ones win."""
    metrics: dict[str, float] = {}
    for given in paths:
        path = Path(given)
        files = [path / f for f in RESULT_FILES if (path / f).is_file()] if path.is_dir() else [path]
        if not files or not files[0].is_file():
            raise GateError(f"{path}: no result file here (looked for {', '.join(RESULT_FILES)})")
        for f in files:
            try:
                obj = parse_line(f, 1, f.read_bytes())
            except JsonlError as e:
                raise GateError(str(e)) from None
            metrics.update(metrics_from(obj))
    return metrics
