#!/usr/bin/env bash
# Issue 15, item 1: lock requirements visible in the code and checked.
#
#   scripts/thread_safety.sh
#
# A compile-only stage: configures build-tsa/ with clang (CLANG_CXX, default
# clang++-14) and compiles every C++ source of the library, the C ABI layer
# and the tests with -fsyntax-only -Wall -Wextra -Wthread-safety -Werror: no
# code generation, no link, no test run (the other stages run the tests).
# -Wthread-safety checks the annotations of util/thread_annotations.h
# (GUARDED_BY, REQUIRES, ...): e.g. that every DbSlot field marked
# GUARDED_BY(stripe) is only touched with its registry stripe held.
# gcc ignores these annotations, so only this stage checks them.
# -Wno-unused-private-field: clang's extra warning that gcc does not have,
# about a field of the S3 credential provider (lib/store/s3/, not about
# locking); everything else clang warns about fails the stage.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build-tsa}"
CLANG_CXX="${CLANG_CXX:-clang++-14}"
CLANG_CC="${CLANG_CC:-${CLANG_CXX/clang++/clang}}"
JOBS="${JOBS:-2}"
command -v "$CLANG_CXX" >/dev/null || { echo "thread_safety: $CLANG_CXX not found" >&2; exit 1; }
start=$(date +%s)
mkdir -p "$BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CLANG_CC" \
  -DCMAKE_CXX_COMPILER="$CLANG_CXX" -DCMAKE_CXX_FLAGS= -DREPLITE_WERROR=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  >"$BUILD_DIR/configure.log" 2>&1 ||
  { cat "$BUILD_DIR/configure.log" >&2; exit 1; }
python3 - "$BUILD_DIR/compile_commands.json" "$PWD" "$JOBS" <<'PY'
import json, shlex, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
db, root, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
todo = []
for e in json.load(open(db)):
    f = e["file"]
    if not f.endswith(".cc") or not any(f.startswith(f"{root}/{d}/") for d in ("lib", "capi", "tests")):
        continue
    args = shlex.split(e["command"]) if "command" in e else e["arguments"]
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-o", "-MF", "-MT"):
            skip = True
        elif a not in ("-c", "-MD"):
            out.append(a)
    # After the project's own -Wall -Wextra -Werror, so that they cannot undo these.
    todo.append((f, e["directory"], tuple(out + ["-fsyntax-only", "-Wthread-safety", "-Wno-unused-private-field"])))
def run(t):
    f, d, cmd = t
    r = subprocess.run(list(cmd), cwd=d, capture_output=True, text=True)
    return f, r.returncode, r.stdout + r.stderr
failed = 0
with ThreadPoolExecutor(jobs) as ex:
    for f, rc, out in ex.map(run, sorted(set(todo))):
        if rc != 0 or out.strip():
            failed += 1
            sys.stderr.write(out)
print(f"thread_safety: {len(set(todo))} sources compiled with -Wthread-safety -Werror, {failed} failed")
sys.exit(1 if failed else 0)
PY
echo "thread_safety: ok in $(( $(date +%s) - start )) s"
