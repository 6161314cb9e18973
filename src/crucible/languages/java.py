"""Java: Debian's OpenJDK (javac + java), one file; the file is named after its public class.

Models name their class Main, Solution, Problem...: the public class (or the class holding `main`)
decides the file name and the class to run (package-qualified if the file declares a package), so a
correct program is not failed for its name. The
JVM reserves address space it never touches, so runs get no RLIMIT_AS and -Xmx at half the caller's
memory_mb instead; it runs many threads, so the process limit is raised to 128.
"""

from __future__ import annotations

import glob
import os
import re
from functools import lru_cache

from crucible.languages import Language
from crucible.languages.build import Recipe, build_and_run
from crucible.sandbox import Limits, Outcome

JAVAC, JAVA = "/usr/bin/javac", "/usr/bin/java"
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xshare:auto", "-XX:TieredStopAtLevel=1")
RUN_FLAGS = ("-Xmx{heap_mb}m", "-Xss64m", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Xshare:auto")
PUBLIC_CLASS = re.compile(r"^\s*public\s+(?:final\s+|abstract\s+)*class\s+([A-Za-z_$][\w$]*)", re.M)
ANY_CLASS = re.compile(r"\bclass\s+([A-Za-z_$][\w$]*)")
PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)


def config_binds() -> tuple[tuple[str, str], ...]:
    """Debian's JDK keeps its config (java.security...) in /etc/java-N-openjdk, behind symlinks."""
    return tuple((d, d) for d in sorted(glob.glob("/etc/java-*-openjdk")) if os.path.isdir(d))


def main_class(source: str) -> str:
    m = PUBLIC_CLASS.search(source)
    if m:
        return m.group(1)
    head = source.split("static void main", 1)[0]
    names = ANY_CLASS.findall(head)
    return names[-1] if names else "Main"


def recipe(cls: str, package: str | None = None) -> Recipe:
    qualified = f"{package}.{cls}" if package else cls
    return Recipe(
        source_name=f"{cls}.java",
        compile=(JAVAC, *(f"-J{f}" for f in JVM_FLAGS), "-J-Xmx512m", "-encoding", "UTF-8", "-nowarn", "-d",
                 "classes", f"{cls}.java"),
        artifacts=("classes",), execute=(JAVA, *RUN_FLAGS, "-cp", "classes", qualified), own_heap_cap=True,
        min_procs=128, ro_binds=config_binds())


@lru_cache(maxsize=1)
def version() -> str | None:
    home = os.path.dirname(os.path.dirname(os.path.realpath(JAVAC)))
    try:
        with open(os.path.join(home, "release")) as f:
            m = re.search(r'JAVA_VERSION="([^"]+)"', f.read())
    except OSError:
        return None
    return m.group(1) if m and os.path.exists(JAVAC) else None


def run_source(source: str, *, stdin: bytes | str = b"", limits: Limits, unsafe: bool = False) -> Outcome:
    package = PACKAGE.search(source)
    return build_and_run("java", version(), recipe(main_class(source), package and package.group(1)), source,
                         stdin=stdin, limits=limits, unsafe=unsafe)


LANGUAGE = Language(
    tool="javac", name="java", fence_tags=("java",), source_name="Main.java",
    version=version, run=run_source, compiled=True, install="apt: default-jdk-headless (javac)",
)
