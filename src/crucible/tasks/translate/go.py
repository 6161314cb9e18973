"""HumanEval -> Go: `package main`, `func name(args) ret {`, a main() that checks every case.

int -> int, float -> float64, list -> []T, dict -> map[K]V, a homogeneous tuple -> []T. Optional
values, Any and heterogeneous tuples have no faithful Go form here: such problems are refused.
Equality is reflect-based but treats a nil slice/map like an empty one (`var r []int` is a natural
way to build an empty result). The header imports the packages solutions commonly need and the test
file marks them used, so neither an unused nor a missing import fails a correct body.
"""

from __future__ import annotations

import json

from crucible.tasks.translate.problem import Problem
from crucible.tasks.translate.program import Translation
from crucible.tasks.translate.render import (FAIL_MARK, Literals, checks, comment_block, float_text,
                                             refuse_surrogates, render, signature, spell, translate_doc)
from crucible.tasks.translate.types import Untranslatable

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

NAMES = {"int": "int", "float": "float64", "bool": "bool", "str": "string"}
FORMS = {"list": lambda a: "[]" + a[0], "tuple": lambda a: "[]" + a[0], "dict": lambda a: f"map[{a[0]}]{a[1]}"}


def type_name(t) -> str:
    if t.kind == "tuple" and len(set(t.args)) != 1:
        raise Untranslatable("a tuple of mixed types (Go has no tuples)")
    if t.kind in ("optional", "none"):
        raise Untranslatable("an Optional/None value (no faithful Go type)")
    return spell(t, NAMES, FORMS, type_name)


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
    name, sig = signature(p, RESERVED, lambda n, t: f"{n} {type_name(t)}")
    ret = type_name(p.returns)
    header = "package main\n\nimport (\n" + "".join(f'\t"{m}"\n' for m in IMPORTS) + ")\n\n"
    prompt = header + comment_block(translate_doc(p, literal, name), "//") + f"func {name}({sig}) {ret} {{\n"
    lines = ["", "".join(f"var _ = {u}\n" for u in USES), EQUAL, "func main() {"]
    for i, args, expected, tolerance in checks(p, literal):
        fail = f'{{\n\t\tfmt.Fprintln(os.Stderr, "{FAIL_MARK} {i}")\n\t\tos.Exit(1)\n\t}}'
        if tolerance is not None:
            lines.append(f"\tif !(math.Abs({name}({args})-({expected})) < {float_text(tolerance)}) {fail}")
        else:
            lines.append(f"\tif !crucibleEqual(reflect.ValueOf({name}({args})), reflect.ValueOf({ret}({expected}))) "
                         f"{fail}")
    lines.append("}")
    return Translation(p.task_id, "go", header, prompt, "\n".join(lines) + "\n", stop=["\n}"], closer="\n}\n",
                       defines=rf"^func\s+{name}\s*\(", name=name)
