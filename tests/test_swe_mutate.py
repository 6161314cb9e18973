"""Bug injection: every kind is found, edits exactly one site, keeps the rest byte for byte, parses."""

import ast
import difflib
from collections import Counter
from dataclasses import replace

from crucible.swe.mutate import broken, mutations

SOURCE = '''"""A module docstring: never touched."""

LIMIT = 3  # module level: never touched


def clamp(x, lo, hi):
    """Docstring of clamp."""
    if x < lo:  # keep this comment
        return lo
    elif x >= hi:
        return hi
    total = x + 1
    total -= 1
    return total


def pick(items, key, reverse=False):
    out = sorted(items, key=key)
    if reverse and len(out) > 1:
        out = list(reversed(out))
    while not out:
        out.append(None)
        reverse = True
    return out[0] if out else divmod(len(items), 2)


class Box:
    def has(self, item):
        return item in self.items and item is not None
'''


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))
    removed = [l[1:] for l in diff if l.startswith("-") and not l.startswith("---")]
    added = [l[1:] for l in diff if l.startswith("+") and not l.startswith("+++")]
    return removed, added


def test_every_kind_is_found():
    kinds = Counter(m.kind for m in mutations(SOURCE))
    for kind in ("flip_comparison", "wrong_operator", "off_by_one", "changed_constant", "swapped_arguments",
                 "removed_statement", "removed_branch", "inverted_condition"):
        assert kinds[kind] >= 1, kind


def test_each_mutation_parses_and_changes_the_code():
    original = ast.dump(ast.parse(SOURCE))
    for m in mutations(SOURCE):
        assert broken(m, SOURCE) is None, (m.kind, m.line)
        assert ast.dump(ast.parse(m.source)) != original, (m.kind, m.line)


def test_broken_names_what_is_wrong():
    m = mutations(SOURCE)[0]
    assert "does not parse" in broken(replace(m, source=m.source + "\n)"), SOURCE)
    assert "same program" in broken(replace(m, source=SOURCE + "\n# a comment\n"), SOURCE)


def test_each_mutation_touches_one_site_and_keeps_comments():
    for m in mutations(SOURCE):
        removed, added = changed_lines(SOURCE, m.source)
        assert len(removed) <= 4, (m.kind, removed)
        assert len(added) <= 1, (m.kind, added)
        assert "keep this comment" in m.source or m.kind in ("removed_branch", "removed_statement")


def test_docstrings_and_module_level_code_are_never_mutated():
    for m in mutations(SOURCE):
        assert '"""A module docstring: never touched."""' in m.source
        assert '"""Docstring of clamp."""' in m.source
        assert "LIMIT = 3" in m.source


def test_flip_comparison_edits_only_the_operator():
    flips = [m for m in mutations(SOURCE) if m.kind == "flip_comparison" and m.line == 8]
    assert len(flips) == 1
    assert changed_lines(SOURCE, flips[0].source) == (["    if x < lo:  # keep this comment"],
                                                       ["    if x <= lo:  # keep this comment"])


def test_not_in_and_is_not_are_matched_as_whole_operators():
    flips = {changed_lines(SOURCE, m.source)[1][0].strip() for m in mutations(SOURCE)
             if m.kind == "flip_comparison" and m.function == "Box.has"}
    assert "return item not in self.items and item is not None" in flips
    assert "return item in self.items and item is None" in flips


def test_removed_branch_drops_the_elif():
    branch = [m for m in mutations(SOURCE) if m.kind == "removed_branch" and m.function == "clamp"]
    assert len(branch) == 1
    assert "elif" not in branch[0].source
    assert "return lo" in branch[0].source


def test_swapped_arguments():
    swaps = {changed_lines(SOURCE, m.source)[1][0].strip() for m in mutations(SOURCE) if m.kind == "swapped_arguments"}
    assert "return out[0] if out else divmod(2, len(items))" in swaps


def test_keys_are_stable_and_distinct():
    first, second = mutations(SOURCE), mutations(SOURCE)
    assert [m.key for m in first] == [m.key for m in second]
    assert len({m.key for m in first}) == len(first)


def test_a_real_stdlib_module_gives_many_candidates():
    import textwrap
    source = open(textwrap.__file__).read()
    found = mutations(source)
    assert len(found) > 50
    assert len({m.kind for m in found}) == 8
