"""Per-language test programs (data only, no tests): correct, wrong, non-compiling, hanging, crashing.

Each correct program prints the sum of i*i for i in 1..100 (338350); the wrong one is off by one;
the broken one has a syntax or type error; the hanging one loops forever; the crashing one fails at
run time. Shared by the language and puzzle tests.
"""

ANSWER = "338350"

PROGRAMS = {
    "python": {
        "correct": "print(sum(i * i for i in range(1, 101)))\n",
        "wrong": "print(sum(i * i for i in range(1, 101)) + 1)\n",
        "broken": "print(sum(i * i for i in range(1, 101))\n",
        "hang": "while True:\n    pass\n",
        "crash": "print(1 // 0)\n",
    },
    "javascript": {
        "correct": "let s = 0;\nfor (let i = 1; i <= 100; i++) s += i * i;\nconsole.log(s);\n",
        "wrong": "let s = 1;\nfor (let i = 1; i <= 100; i++) s += i * i;\nconsole.log(s);\n",
        "broken": "let s = 0;\nfor (let i = 1; i <= 100; i++ { s += i * i; }\nconsole.log(s);\n",
        "hang": "while (true) {}\n",
        "crash": "const o = null;\nconsole.log(o.x);\n",
    },
    "typescript": {
        "correct": "let s: number = 0;\nfor (let i = 1; i <= 100; i++) s += i * i;\nconsole.log(s);\n",
        "wrong": "let s: number = 1;\nfor (let i = 1; i <= 100; i++) s += i * i;\nconsole.log(s);\n",
        "broken": "let s: number = \"zero\";\nconsole.log(s);\n",  # a type error, not a syntax error
        "hang": "while (true) {}\n",
        "crash": "function f(n: number): number { return f(n + 1); }\nconsole.log(f(0));\n",
    },
    "go": {
        "correct": 'package main\n\nimport "fmt"\n\nfunc main() {\n\ts := 0\n\tfor i := 1; i <= 100; i++ {\n'
                   '\t\ts += i * i\n\t}\n\tfmt.Println(s)\n}\n',
        "wrong": 'package main\n\nimport "fmt"\n\nfunc main() {\n\ts := 1\n\tfor i := 1; i <= 100; i++ {\n'
                 '\t\ts += i * i\n\t}\n\tfmt.Println(s)\n}\n',
        "broken": 'package main\n\nimport "fmt"\n\nfunc main() {\n\ts := 0\n\tfmt.Println(t)\n}\n',
        "hang": "package main\n\nfunc main() {\n\tfor {\n\t}\n}\n",
        "crash": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tvar a []int\n\tfmt.Println(a[3])\n}\n',
    },
    "rust": {
        "correct": "fn main() {\n    let s: u64 = (1..=100u64).map(|i| i * i).sum();\n    println!(\"{}\", s);\n}\n",
        "wrong": "fn main() {\n    let s: u64 = (1..=100u64).map(|i| i * i).sum();\n    println!(\"{}\", s + 1);\n}\n",
        "broken": "fn main() {\n    let s: u64 = \"zero\";\n    println!(\"{}\", s);\n}\n",
        "hang": "fn main() {\n    let mut x: u64 = 0;\n    loop {\n        unsafe { std::ptr::write_volatile(&mut x, x + 1) };\n    }\n}\n",
        "crash": "fn main() {\n    let v: Vec<u64> = Vec::new();\n    let i = std::env::args().count() + 2;\n"
                 "    println!(\"{}\", v[i]);\n}\n",
    },
    "kotlin": {
        "correct": "fun main() {\n    println((1..100).map { it * it }.sum())\n}\n",
        "wrong": "fun main() {\n    println((1..100).map { it * it }.sum() + 1)\n}\n",
        "broken": "fun main() {\n    val s: Int = \"zero\"\n    println(s)\n}\n",
        "hang": "fun main() {\n    var x = 0L\n    while (true) { x++ }\n}\n",
        "crash": "fun main() {\n    val a = IntArray(2)\n    println(a[5])\n}\n",
    },
    "ocaml": {
        "correct": "let () =\n  let s = ref 0 in\n  for i = 1 to 100 do s := !s + i * i done;\n  Printf.printf \"%d\\n\" !s\n",
        "wrong": "let () =\n  let s = ref 1 in\n  for i = 1 to 100 do s := !s + i * i done;\n  Printf.printf \"%d\\n\" !s\n",
        "broken": "let () =\n  let s = ref 0 in\n  s := \"zero\";\n  Printf.printf \"%d\\n\" !s\n",
        "hang": "let rec loop n = loop (n + 1)\nlet () = loop 0\n",
        "crash": "let () = print_int (List.hd [])\n",
    },
    "zig": {
        "correct": 'const std = @import("std");\n\npub fn main() !void {\n    var s: u64 = 0;\n'
                   '    var i: u64 = 1;\n    while (i <= 100) : (i += 1) s += i * i;\n'
                   '    try std.io.getStdOut().writer().print("{d}\\n", .{s});\n}\n',
        "wrong": 'const std = @import("std");\n\npub fn main() !void {\n    var s: u64 = 1;\n'
                 '    var i: u64 = 1;\n    while (i <= 100) : (i += 1) s += i * i;\n'
                 '    try std.io.getStdOut().writer().print("{d}\\n", .{s});\n}\n',
        "broken": 'const std = @import("std");\n\npub fn main() !void {\n    const s: u64 = "zero";\n'
                  '    try std.io.getStdOut().writer().print("{d}\\n", .{s});\n}\n',
        "hang": 'const std = @import("std");\n\npub fn main() void {\n    var x: u64 = 0;\n'
                '    while (true) {\n        x +%= 1;\n        std.mem.doNotOptimizeAway(x);\n    }\n}\n',
        "crash": 'const std = @import("std");\n\npub fn main() !void {\n    var x: u8 = 250;\n'
                 '    const n = std.os.argv.len;\n    x += @as(u8, @intCast(n)) * 10;\n'
                 '    try std.io.getStdOut().writer().print("{d}\\n", .{x});\n}\n',
    },
    "c": {
        "correct": "#include <stdio.h>\n\nint main(void) {\n    long s = 0;\n    for (int i = 1; i <= 100; i++) s += i * i;\n"
                   "    printf(\"%ld\\n\", s);\n    return 0;\n}\n",
        "wrong": "#include <stdio.h>\n\nint main(void) {\n    long s = 1;\n    for (int i = 1; i <= 100; i++) s += i * i;\n"
                 "    printf(\"%ld\\n\", s);\n    return 0;\n}\n",
        "broken": "#include <stdio.h>\n\nint main(void) {\n    long s = 0\n    printf(\"%ld\\n\", s);\n    return 0;\n}\n",
        "hang": "int main(void) {\n    volatile long x = 0;\n    for (;;) x++;\n}\n",
        "crash": "#include <stdlib.h>\n\nint main(void) {\n    abort();\n}\n",
    },
    "cpp": {
        "correct": "#include <iostream>\n\nint main() {\n    long s = 0;\n    for (int i = 1; i <= 100; i++) s += i * i;\n"
                   "    std::cout << s << std::endl;\n}\n",
        "wrong": "#include <iostream>\n\nint main() {\n    long s = 1;\n    for (int i = 1; i <= 100; i++) s += i * i;\n"
                 "    std::cout << s << std::endl;\n}\n",
        "broken": "#include <iostream>\n\nint main() {\n    std::string s = 0.5;\n    std::cout << s << std::endl;\n}\n",
        "hang": "int main() {\n    volatile long x = 0;\n    for (;;) x++;\n}\n",
        "crash": "#include <vector>\n#include <iostream>\n\nint main() {\n    std::vector<int> v;\n"
                 "    std::cout << v.at(3) << std::endl;\n}\n",
    },
    "java": {
        "correct": "public class Main {\n    public static void main(String[] args) {\n        long s = 0;\n"
                   "        for (int i = 1; i <= 100; i++) s += i * i;\n        System.out.println(s);\n    }\n}\n",
        "wrong": "public class Solution {\n    public static void main(String[] args) {\n        long s = 1;\n"
                 "        for (int i = 1; i <= 100; i++) s += i * i;\n        System.out.println(s);\n    }\n}\n",
        "broken": "public class Main {\n    public static void main(String[] args) {\n        int s = \"zero\";\n"
                  "        System.out.println(s);\n    }\n}\n",
        "hang": "public class Main {\n    public static void main(String[] args) {\n        long x = 0;\n"
                "        while (true) { x++; }\n    }\n}\n",
        "crash": "public class Main {\n    public static void main(String[] args) {\n        int[] a = new int[2];\n"
                 "        System.out.println(a[5]);\n    }\n}\n",
    },
}
