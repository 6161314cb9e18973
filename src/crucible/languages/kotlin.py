"""Kotlin: Debian 12's kotlin package (kotlinc 1.3.31) on the system JDK; run with kotlin-stdlib.

1.3.31 is old (2019) but it is what the reachable registries have; programs using newer stdlib
calls (e.g. `readln`, `lowercase()`) fail to compile, which the per-language report shows as
compile errors. kotlinc starts a JVM per build (~2-4 s of CPU): the build cache matters most here.
"""

from __future__ import annotations

import glob
import re
from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run
from crucible.languages.java import JAVA, RUN_FLAGS, config_binds
from crucible.sandbox import Limits, Outcome

KOTLINC = "/usr/bin/kotlinc"
STDLIB = "/usr/share/java/kotlin-stdlib.jar"


def recipe() -> Recipe:
    return Recipe(
        source_name="main.kt",
        compile=(KOTLINC, "-J-Xmx768m", "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData",
                 "-nowarn", "main.kt", "-d", "classes"),
        artifacts=("classes",), execute=(JAVA, *RUN_FLAGS, "-cp", f"classes:{STDLIB}", "MainKt"),
        own_heap_cap=True, min_procs=128, ro_binds=config_binds(), compile_env={"JAVA_OPTS": "-Xss16m"})


@lru_cache(maxsize=1)
def version() -> str | None:
    jars = glob.glob("/usr/share/java/kotlin-compiler-[0-9]*.jar")
    m = re.search(r"kotlin-compiler-(\d+\.\d+\.\d+)\.jar", jars[0]) if jars else None
    return m.group(1) if m and glob.glob(KOTLINC) else None


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    return build_and_run("kotlin", version(), recipe(), source, stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="kotlinc", name="kotlin", fence_tags=("kotlin", "kt", "kts"), source_name="main.kt", aliases=("kt",),
    version=version, run=run_source, compiled=True, install="apt: kotlin",
)
