"""List the languages crucible can build and run, their toolchain versions, and whether each is ready.

examples:
  crucible languages            # table: language, version, ready, where the toolchain comes from
  crucible languages --json     # the same, machine-readable
  crucible languages --humaneval   # how many of HumanEval's 164 problems translate to each language, and why not
  make toolchains               # installs what is missing (Debian packages, npm, PyPI)
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--humaneval", action="store_true",
                   help="HumanEval translation counts per language, with the reason for each problem left out")


def humaneval_counts(as_json: bool) -> int:
    from crucible.tasks.humaneval_translated import counts

    table = counts()
    if as_json:
        print(json.dumps(table, indent=2))
        return 0
    for lang, c in table.items():
        print(f"{lang:<11} {c['translated']:>3}/{c['total']} translated")
        for tid, why in c["untranslated"].items():
            print(f"    {tid:<14} {why}")
    return 0


def main(args) -> int:
    from crucible.languages import UNAVAILABLE, all_languages

    if args.humaneval:
        return humaneval_counts(args.json)

    rows = []
    for lang in all_languages():
        version = lang.version() if lang.ready() else None
        rows.append({"language": lang.name, "version": version, "ready": version is not None,
                     "compiled": lang.compiled, "fence_tags": list(lang.fence_tags), "install": lang.install,
                     "note": "" if version else "not installed: run `make toolchains`"})
    for name, why in UNAVAILABLE.items():
        rows.append({"language": name, "version": None, "ready": False, "compiled": None, "fence_tags": [name],
                     "install": "unavailable", "note": why})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["language"]) for r in rows)
    print(f"{'language':<{width}}  {'version':<10}  ready  toolchain")
    for r in rows:
        ready = "yes" if r["ready"] else "no"
        where = r["install"] if r["ready"] or r["install"] != "unavailable" else "unavailable"
        print(f"{r['language']:<{width}}  {r['version'] or '-':<10}  {ready:<5}  {where}")
        if r["note"]:
            print(f"{'':<{width}}  {'':<10}         {r['note']}")
    return 0
