"""HumanEval -> Go: `package main`, `func name(args) ret {`, a main() that checks every case.

int -> int, float -> float64, list -> []T, dict -> map[K]V, a homogeneous tuple -> []T. Optional
values, Any and heterogeneous tuples have no faithful Go form here: such problems are refused.
Equality is reflect-based but treats a nil slice/map like an empty one (`var r []int` is a natural
way to build an empty result). The header imports the packages solutions commonly need and the test
file marks them used, so neither an unused nor a missing import fails a correct body.
"""

from __future__ import annotations

import json

from crucible.tasks.translate import (FAIL_MARK, Literals, Problem, Translation, Untranslatable, case_args,
                                      comment_block, float_text, refuse_surrogates, render, safe_name, translate_doc)

RESERVED = {"break", "default", "func", "interface", "select", "case", "defer", "go", "map", "struct", "chan", "else",
            "goto", "package", "switch", "const", "fallthrough", "if", "range", "type", "continue", "for", "import",
            "return", "var", "string", "int", "float64", "bool", "byte", "rune", "len", "cap", "append", "copy",
            "delete", "new", "make", "max", "min", "print", "println", "true", "false", "nil", "error", "close",
            "panic", "recover", "real", "imag", "complex", "main", "fmt", "math", "os", "reflect", "sort", "strconv",
            "strings", "unicode"}
IMPORTS = ("fmt", "math", "os", "reflect", "sort", "strconv", "strings", "unicode")
USES = ("fmt.Sprint", "math.Abs", "os.Exit", "reflect.DeepEqual", "sort.Ints", "strconv.Itoa", "strings.Split",
        "unicode.IsUpper")
EQUAL = """func crucibleEqual(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !crucibleEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			v := b.MapIndex(k)
			if !v.IsValid() || !crucibleEqual(a.MapIndex(k), v) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
"""


def type_name(t) -> str:
    simple = {"int": "int", "float": "float64", "bool": "bool", "str": "string"}
    if t.kind in simple:
        return simple[t.kind]
    if t.kind == "list":
        return "[]" + type_name(t.args[0])
    if t.kind == "tuple":
        if len(set(t.args)) == 1:
            return "[]" + type_name(t.args[0])
        raise Untranslatable("a tuple of mixed types (Go has no tuples)")
    if t.kind == "dict":
        return f"map[{type_name(t.args[0])}]{type_name(t.args[1])}"
    if t.kind in ("optional", "none"):
        raise Untranslatable("an Optional/None value (no faithful Go type)")
    raise Untranslatable(f"type {t}")


def string(value: str) -> str:
    return json.dumps(refuse_surrogates(value), ensure_ascii=False)  # JSON escapes (\\n, \\", \\u001b) are Go's


LITERALS = Literals(
    integer=str, string=string,
    sequence=lambda items, t: type_name(t) + "{" + ", ".join(items) + "}",
    mapping=lambda pairs, t: type_name(t) + "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}",
    no_none="None value (no faithful Go type)")


def literal(value, t) -> str:
    return render(value, t, LITERALS)


def translate(p: Problem) -> Translation:
    sig_params = ", ".join(f"{safe_name(n, RESERVED)} {type_name(t)}" for n, t in p.params)
    name = safe_name(p.name, RESERVED)
    ret = type_name(p.returns)
    header = "package main\n\nimport (\n" + "".join(f'\t"{m}"\n' for m in IMPORTS) + ")\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"func {name}({sig_params}) {ret} {{\n"
    lines = ["", "".join(f"var _ = {u}\n" for u in USES), EQUAL, "func main() {"]
    for i, c in enumerate(p.cases):
        args = case_args(p, c, literal)
        fail = f'{{\n\t\tfmt.Fprintln(os.Stderr, "{FAIL_MARK} {i}")\n\t\tos.Exit(1)\n\t}}'
        if c.tolerance is not None:
            lines.append(f"\tif !(math.Abs({name}({args})-({literal(c.expected, p.returns)})) < "
                         f"{float_text(c.tolerance)}) {fail}")
        else:
            lines.append(f"\tif !crucibleEqual(reflect.ValueOf({name}({args})), "
                         f"reflect.ValueOf({ret}({literal(c.expected, p.returns)}))) {fail}")
    lines.append("}")
    return Translation(p.task_id, "go", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^func\s+{name}\s*\(", name=name)
