"""HumanEval translation: exact literals per language (unit), translation counts, and for every target
language: hand-written references pass their translated tests, wrong ones fail, broken ones do not
compile, a body-only completion is assembled with the prompt, and tricky literals survive a round trip
through the compiler (checked by content-sensitive functions, not by echoing the literal back)."""

from __future__ import annotations

import json

import pytest

from crucible.cli import main as cli
from crucible.eval.suites import load_suite
from crucible.grade.translated import LIMITS
from crucible.tasks import humaneval_translated as ht
from crucible.tasks.humaneval import load_problems
from crucible.tasks.translate import TARGETS, cpp, go, java, javascript, rust, translate, typescript
from crucible.tasks.translate.problem import parse_problem
from crucible.tasks.translate.types import FLOAT, INT, STR, T, Untranslatable, list_of, optional

TRICKY = ['say "hi"', "back\\slash", "new\nline\ttab\r", "bell\x07nul\x00", "ünïcödé", "emoji 😀 ok", "",
          "{braces} %d $x ${y} #{z}", "'single'", "trailing\\"]


# ---- literals, exactly ----------------------------------------------------------------------------

def test_string_literals_are_escaped_per_language():
    s = 'a"b\\c\nd\x07é'
    assert javascript.string(s) == '"a\\"b\\\\c\\nd\\u0007é"'
    assert go.string(s) == '"a\\"b\\\\c\\nd\\u0007é"'
    assert rust.string(s) == '"a\\"b\\\\c\\nd\\u{7}é"'
    assert java.string(s) == '"a\\"b\\\\c\\nd\\007é"'
    assert cpp.string(s) == '"a\\"b\\\\c\\nd\\007é"'
    assert cpp.string("??=") == '"\\?\\?="'  # no trigraph can form


def test_container_literals_are_typed_and_exact():
    nested = list_of(list_of(INT))
    assert rust.literal([[1, -2], []], nested) == "vec![vec![1, -2], Vec::<i64>::new()]"
    assert go.literal([[1, -2], []], nested) == "[][]int{[]int{1, -2}, []int{}}"
    assert java.literal([[1, -2], []], nested) == ("new ArrayList<ArrayList<Long>>(Arrays.asList(new ArrayList<Long>"
                                                   "(Arrays.asList(1L, -2L)), new ArrayList<Long>()))")
    assert cpp.literal([[1, -2], []], nested) == "std::vector<std::vector<long>>{std::vector<long>{1L, -2L}, " \
                                                 "std::vector<long>{}}"
    assert javascript.literal([[1, -2], []], nested) == "[[1, -2], []]"
    floats = list_of(FLOAT)
    assert rust.literal([1, -2.5, 1e-05], floats) == "vec![1.0, -2.5, 1e-05]"
    d = T("dict", (STR, INT))
    assert rust.literal({}, d) == "HashMap::new()" and cpp.literal({"k": 1}, d) == \
        'std::map<std::string, long>{{std::string("k"), 1L}}'
    assert java.literal({"k": -1}, d) == 'Problem.<String, Long>crucibleMap("k", -1L)'
    opt = optional(STR)
    assert rust.literal(None, opt) == "None" and rust.literal("x", opt) == 'Some(String::from("x"))'
    assert java.literal(None, opt) == "Optional.<String>empty()"
    assert cpp.literal(None, opt) == "std::optional<std::string>()"
    assert javascript.literal(None, opt) == "undefined"
    tup = T("tuple", (INT, STR))
    assert rust.literal((1, "a"), tup) == '(1, String::from("a"))'
    assert typescript.type_name(tup) == "[number, string]"
    with pytest.raises(Untranslatable):
        go.type_name(tup)
    with pytest.raises(Untranslatable, match="64 bits"):
        rust.literal(2 ** 64, INT)


def test_walker_infers_types_from_annotations_and_tests():
    he = load_problems()
    p0 = parse_problem(he["HumanEval/0"])
    assert p0.params == [("numbers", list_of(FLOAT)), ("threshold", FLOAT)] and p0.returns.kind == "bool"
    p4 = parse_problem(he["HumanEval/4"])
    assert p4.cases[0].tolerance == 1e-6 and p4.cases[0].expected == pytest.approx(2 / 3)  # `2.0/3.0` evaluated
    p111 = parse_problem(he["HumanEval/111"])  # no annotations: inferred from the tests
    assert p111.params == [("test", STR)] and p111.returns == T("dict", (STR, INT))
    p12 = parse_problem(he["HumanEval/12"])
    assert p12.returns == optional(STR) and any(c.expected is None for c in p12.cases)
    with pytest.raises(Untranslatable, match="helper"):
        translate(he["HumanEval/10"], "rust")


def test_closing_brace_skips_strings_comments_and_lifetimes():
    from crucible.tasks.translate.program import closing_brace

    assert closing_brace("  return 1;\n}\nmore") == 12
    body = "  if (x) { y(); }\n  return '}';\n"
    assert closing_brace(body + "}\n") == len(body)
    assert closing_brace('  s = "}{\\"}";\n}') == len('  s = "}{\\"}";\n')
    assert closing_brace("  // }\n  /* } */\n}") == len("  // }\n  /* } */\n")
    assert closing_brace("  fn f<'a>(x: &'a str) {}\n}") == len("  fn f<'a>(x: &'a str) {}\n")
    assert closing_brace("  return `}${x}`;\n}") == len("  return `}${x}`;\n")
    assert closing_brace("  return x") == len("  return x")  # never closed: all of it


def test_docstring_examples_are_rewritten_in_the_target_syntax():
    he = load_problems()
    rust_prompt = translate(he["HumanEval/12"], "rust").prompt
    assert '/// >>> longest(vec![String::from("a"), String::from("b"), String::from("c")])' in rust_prompt
    assert '/// Some(String::from("a"))' in rust_prompt and "Return None in case" in rust_prompt
    go_prompt = translate(he["HumanEval/0"], "go").prompt
    assert "// >>> has_close_elements([]float64{1.0, 2.0, 3.0}, 0.5)\n// false\n" in go_prompt


def test_translation_counts_and_reasons():
    counts = ht.counts()
    assert set(counts) == set(TARGETS)
    for lang, c in counts.items():
        assert c["total"] == 164
        assert c["translated"] >= 135, (lang, c["translated"])
        assert c["translated"] + len(c["untranslated"]) == 164
        assert all(reason for reason in c["untranslated"].values())
    assert "Optional" in counts["go"]["untranslated"]["HumanEval/12"]


# ---- end to end, per language ---------------------------------------------------------------------

SYNTHETIC = {
    "task_id": "Synthetic/1", "entry_point": "checksums",
    "prompt": 'from typing import List\n\n\ndef checksums(xs: List[str]) -> List[int]:\n'
              '    """Sum of the code points of each string."""\n',
    "test": "def check(candidate):\n" + f"    assert candidate({TRICKY!r}) == {[sum(map(ord, s)) for s in TRICKY]!r}\n"
            + "    assert candidate([]) == []\n",
}
NESTED = [[1.5, -2.25], [], [-0.0, 1e-05, 3.0], [-7.0]]
SYNTHETIC_FLOATS = {
    "task_id": "Synthetic/2", "entry_point": "total",
    "prompt": 'from typing import List\n\n\ndef total(xs: List[List[float]]) -> float:\n    """Sum of all."""\n',
    "test": f"def check(candidate):\n    assert candidate({NESTED!r}) == {sum(sum(r) for r in NESTED)!r}\n",
}
CHECKSUMS = {
    "javascript": "function checksums(xs) {\n  return xs.map((s) => [...s].reduce((a, c) => a + c.codePointAt(0), 0));\n}\n",
    "typescript": "function checksums(xs: string[]): number[] {\n"
                  "  return xs.map((s) => Array.from(s).reduce((a, c) => a + (c.codePointAt(0) ?? 0), 0));\n}\n",
    "go": "func checksums(xs []string) []int {\n\tout := []int{}\n\tfor _, s := range xs {\n\t\tt := 0\n"
          "\t\tfor _, r := range s {\n\t\t\tt += int(r)\n\t\t}\n\t\tout = append(out, t)\n\t}\n\treturn out\n}\n",
    "rust": "fn checksums(xs: Vec<String>) -> Vec<i64> {\n"
            "    xs.iter().map(|s| s.chars().map(|c| c as i64).sum()).collect()\n}\n",
    "java": "    public static ArrayList<Long> checksums(ArrayList<String> xs) {\n"
            "        ArrayList<Long> out = new ArrayList<>();\n"
            "        for (String s : xs) out.add((long) s.codePoints().sum());\n        return out;\n    }\n",
    "ocaml": "let checksums (xs : string list) : int list =\n  List.map (fun s ->\n    let n = String.length s in\n"
             "    let rec go i acc =\n      if i >= n then acc\n      else\n        let c = Char.code s.[i] in\n"
             "        let len = if c < 0x80 then 1 else if c < 0xE0 then 2 else if c < 0xF0 then 3 else 4 in\n"
             "        let cp = ref (if len = 1 then c else c land (0x7F lsr len)) in\n"
             "        for k = 1 to len - 1 do cp := (!cp lsl 6) lor (Char.code s.[i + k] land 0x3F) done;\n"
             "        go (i + len) (acc + !cp)\n    in\n    go 0 0) xs\n",
    "cpp": "std::vector<long> checksums(std::vector<std::string> xs) {\n    std::vector<long> out;\n"
           "    for (const auto& s : xs) {\n        long t = 0;\n        for (size_t i = 0; i < s.size();) {\n"
           "            unsigned char c = s[i];\n            int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;\n"
           "            long cp = n == 1 ? c : c & (0x7F >> n);\n"
           "            for (int k = 1; k < n; k++) cp = (cp << 6) | (s[i + k] & 0x3F);\n"
           "            t += cp;\n            i += n;\n        }\n        out.push_back(t);\n    }\n    return out;\n}\n",
}
TOTALS = {
    "javascript": "function total(xs) {\n  let t = 0;\n  for (const r of xs) for (const x of r) t += x;\n  return t;\n}\n",
    "typescript": "function total(xs: number[][]): number {\n  let t = 0;\n  for (const r of xs) for (const x of r) t += x;\n"
                  "  return t;\n}\n",
    "go": "func total(xs [][]float64) float64 {\n\tt := 0.0\n\tfor _, r := range xs {\n\t\tfor _, x := range r {\n"
          "\t\t\tt += x\n\t\t}\n\t}\n\treturn t\n}\n",
    "rust": "fn total(xs: Vec<Vec<f64>>) -> f64 {\n    let mut t = 0.0;\n    for r in &xs {\n        for x in r {\n"
            "            t += x;\n        }\n    }\n    t\n}\n",
    "java": "    public static double total(ArrayList<ArrayList<Double>> xs) {\n        double t = 0;\n"
            "        for (ArrayList<Double> r : xs) for (double x : r) t += x;\n        return t;\n    }\n",
    "ocaml": "let total (xs : float list list) : float =\n"
             "  List.fold_left (fun acc r -> List.fold_left (fun a x -> a +. x) acc r) 0.0 xs\n",
    "cpp": "double total(std::vector<std::vector<double>> xs) {\n    double t = 0;\n"
           "    for (const auto& r : xs) for (double x : r) t += x;\n    return t;\n}\n",
}
# (task, text in the reference, replacement that makes it wrong): deliberately wrong solutions
WRONG = {
    "javascript": [("HumanEval/23", "string.length", "string.length + 1"), ("HumanEval/12", "s.length > best.length",
                                                                             "s.length >= best.length")],
    "typescript": [("HumanEval/55", "let a = 0;", "let a = 1;"), ("HumanEval/34", "(a, b) => a - b", "(a, b) => b - a")],
    "go": [("HumanEval/23", "len([]rune(string_))", "len(string_) + 1"), ("HumanEval/3", "balance < 0", "balance <= 0")],
    "rust": [("HumanEval/8", "numbers.iter().product()", "numbers.iter().sum()"),
             ("HumanEval/111", "*c == most", "*c <= most")],
    "java": [("HumanEval/13", "return Math.abs(a);", "return Math.abs(a) + 1;"),
             ("HumanEval/12", "s.length() > best.length()", "s.length() >= best.length()")],
    "cpp": [("HumanEval/0", "< threshold", "<= threshold - 1"), ("HumanEval/2", "std::floor", "std::ceil")],
    "ocaml": [("HumanEval/34", "List.sort_uniq compare l", "List.sort compare l"),
              ("HumanEval/12", "String.length b >= String.length s", "String.length b > String.length s")],
}
BODY_ONLY = {  # a base model's completion: the body only, then whatever it rambled on with
    "javascript": ("HumanEval/23", "  return string.length;\n}\n\nfunction extra() {}\n"),
    "typescript": ("HumanEval/23", "  return string_.length;\n}\n// trailing chatter"),
    "go": ("HumanEval/23", "\treturn len([]rune(string_))\n}\n\nfunc main() {}\n"),
    "rust": ("HumanEval/23", "    string.chars().count() as i64\n}\n\nfn main() {}\n"),
    "java": ("HumanEval/23", "        return string.length();\n    }\n}\n"),
    "cpp": ("HumanEval/23", "    return (long)string.size();\n}\n\nint main() { return 0; }\n"),
    "ocaml": ("HumanEval/23", "  String.length string\n\nlet () = print_endline \"chatter\"\n"),
}


@pytest.mark.parametrize("lang", TARGETS)
def test_translated_suite_end_to_end(lang, tmp_path):
    suite, references = load_suite("humaneval", language=lang)
    refs = references()
    assert len(refs) >= 10, f"{lang}: need hand-written references for at least 10 problems"
    files = ht.reference_files(lang)
    samples = [dict(s, kind="reference") for s in refs]
    for i, (tid, old, new) in enumerate(WRONG[lang]):
        text = files[tid].read_text()
        assert old in text, (lang, tid, old)
        samples.append({"task_id": tid, "completion": text.replace(old, new), "kind": "wrong", "sample_index": 1})
    tid, body = BODY_ONLY[lang]
    samples.append({"task_id": tid, "completion": body, "kind": "body", "sample_index": 2})
    # a chat reply (the whole function in a fence) turned into a body by the sampler's sanitizer
    from crucible.languages import get
    from crucible.sanitize import completion_from_chat

    task, = ht.tasks(lang, "HumanEval/0")
    reply = f"Sure:\n```{get(lang).fence_tags[0]}\n{files['HumanEval/0'].read_text()}```\nDone."
    samples.append({"task_id": "HumanEval/0", "completion": completion_from_chat(reply, task, get(lang)),
                    "kind": "chat", "sample_index": 4})
    samples.append({"task_id": "HumanEval/55", "completion": files["HumanEval/55"].read_text() + "\n)(\n",
                    "kind": "broken", "sample_index": 3})  # a stray ")(" is a syntax error in every target
    from crucible.grade.runner import grade_samples

    grade_samples(suite, samples, tmp_path, workers=2, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").open()]
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append((r["task_id"], r["status"], r["detail"]))
    assert all(st == "pass" for _, st, _ in by_kind["reference"]), by_kind["reference"]
    assert all(st == "wrong_answer" for _, st, _ in by_kind["wrong"]), by_kind["wrong"]
    assert by_kind["body"][0][1] == "pass", by_kind["body"]
    assert by_kind["chat"][0][1] == "pass", by_kind["chat"]
    assert by_kind["broken"][0][1] == "compile_error", by_kind["broken"]

    # tricky literals through the real compiler: content-sensitive checks, so a mis-escaped string fails
    for problem, impl in ((SYNTHETIC, CHECKSUMS[lang]), (SYNTHETIC_FLOATS, TOTALS[lang])):
        t = translate(problem, lang)
        from crucible.languages import run_program

        out = run_program(lang, t.program(impl), limits=LIMITS)
        assert out.status == "ok", (problem["task_id"], out.status, out.stderr[-800:])


def test_eval_humaneval_rust_cli_rejects_untranslated_tasks(tmp_path, capsys):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/10", "completion": "x"}) + "\n")
    rc = cli(["eval", "humaneval", "--language", "rust", "--samples", str(samples), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "s.jsonl:1" in err and "not translated to rust" in err
    rc = cli(["eval", "humaneval", "--language", "kotlin", "--samples", str(samples), "--out", str(tmp_path / "o")])
    assert rc == 2 and "translated to" in capsys.readouterr().err
