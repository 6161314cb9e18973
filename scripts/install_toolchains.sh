#!/usr/bin/env bash
# Install the compilers/runtimes of crucible's languages where the sandbox can see them:
# Debian packages under /usr, TypeScript (npm) and zig (PyPI) under /opt/toolchains.
# Idempotent and fast when everything is there (checks first, installs only what is missing).
# No other downloads: Hack/HHVM is in none of these registries and is not installed.
set -euo pipefail

PREFIX=${CRUCIBLE_TOOLCHAINS:-/opt/toolchains}
TS_VERSION=7.0.2
TYPES_NODE_VERSION=20
ZIG_VERSION=0.13.0
PIP=${PIP:-python3 -m pip}

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else echo "install_toolchains: need root (or sudo)" >&2; exit 1; fi
fi

# command -> Debian package that provides it
declare -A APT=(
  [/usr/bin/gcc]=gcc [/usr/bin/g++]=g++ [/usr/bin/python3]=python3 [/usr/bin/node]=nodejs [/usr/bin/npm]=npm
  [/usr/bin/go]=golang-go [/usr/bin/rustc]=rustc [/usr/bin/ocamlopt]=ocaml-nox
  [/usr/lib/ocaml/zarith/zarith.cmxa]=libzarith-ocaml-dev [/usr/bin/javac]=default-jdk-headless
  [/usr/bin/kotlinc]=kotlin [/usr/bin/bwrap]=bubblewrap
)
missing=()
for path in "${!APT[@]}"; do
  [ -e "$path" ] || missing+=("${APT[$path]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

$SUDO mkdir -p "$PREFIX"

ts_pkg="$PREFIX/typescript/lib/node_modules/typescript/package.json"
if ! grep -q "\"version\": \"$TS_VERSION\"" "$ts_pkg" 2>/dev/null || [ ! -d "$PREFIX/typescript/lib/node_modules/@types/node" ]; then
  echo "npm: typescript@$TS_VERSION @types/node@$TYPES_NODE_VERSION -> $PREFIX/typescript"
  $SUDO npm install -g -q --no-fund --no-audit --prefix "$PREFIX/typescript" \
    "typescript@$TS_VERSION" "@types/node@$TYPES_NODE_VERSION" >/dev/null
fi

zig="$PREFIX/zig/ziglang/zig"
if [ ! -x "$zig" ] || [ "$("$zig" version)" != "$ZIG_VERSION" ]; then
  echo "pip: ziglang==$ZIG_VERSION -> $PREFIX/zig"
  $SUDO rm -rf "$PREFIX/zig"
  $SUDO $PIP install -q --no-deps --target "$PREFIX/zig" "ziglang==$ZIG_VERSION"
fi
# Prebuild compiler-rt and the std caches once, read-only for the sandbox (see languages/zig.py).
if [ ! -f "$PREFIX/zig/global-cache/.warm" ]; then
  echo "zig: warming $PREFIX/zig/global-cache"
  tmp=$(mktemp -d)
  printf 'const std = @import("std");\npub fn main() !void {\n    try std.io.getStdOut().writer().print("{d}\\n", .{@as(u128, 1) << 100});\n}\n' > "$tmp/warm.zig"
  $SUDO "$zig" build-exe "$tmp/warm.zig" -O ReleaseSafe -fstrip --cache-dir "$tmp/c" \
    --global-cache-dir "$PREFIX/zig/global-cache" -femit-bin="$tmp/warm"
  "$tmp/warm" >/dev/null
  $SUDO touch "$PREFIX/zig/global-cache/.warm"
  $SUDO chmod -R a+rX "$PREFIX"
  rm -rf "$tmp"
fi
# Precompile <bits/stdc++.h> for the flags crucible's C++ builds use (see languages/cpp.py): 1.6 s -> 0.3 s.
pch="$PREFIX/cxx-pch/bits/stdc++.h.gch"
gxx_version=$(/usr/bin/g++ -dumpfullversion)
if [ ! -f "$pch" ] || [ "$(cat "$PREFIX/cxx-pch/version" 2>/dev/null)" != "$gxx_version" ]; then
  includes=$(echo '#include <bits/stdc++.h>' | /usr/bin/g++ -std=gnu++17 -x c++ -H -fsyntax-only - 2>&1)
  header=$(echo "$includes" | awk '/bits\/stdc\+\+\.h/ {print $2; exit}')
  echo "g++: precompiling $header -> $pch"
  $SUDO mkdir -p "$PREFIX/cxx-pch/bits"
  $SUDO /usr/bin/g++ -O2 -std=gnu++17 -x c++-header "$header" -o "$pch.tmp" && $SUDO mv "$pch.tmp" "$pch"
  echo "$gxx_version" | $SUDO tee "$PREFIX/cxx-pch/version" >/dev/null
  $SUDO chmod -R a+rX "$PREFIX/cxx-pch"
fi
echo "toolchains ready under /usr and $PREFIX"
