#!/bin/sh
# Packaging test: install the build tree into a staging prefix, then build
# the C example (examples/c/replicate.c) against the installed files only,
# once with pkg-config (replite.pc) and once with CMake's
# find_package(replite), and run both builds.
# Usage: install_test.sh BUILD_DIR STAGE_DIR LIBDIR SOURCE_DIR CC CMAKE
set -eu
build=$1 stage=$2 libdir=$3 src=$4 cc=$5 cmake=$6
case $libdir in /*) ;; *) libdir=$stage/$libdir ;; esac
rm -rf "$stage"
mkdir -p "$stage"
"$cmake" --install "$build" --prefix "$stage" >"$stage/install.log"
test -f "$stage/include/replite.h"
test -f "$libdir/pkgconfig/replite.pc"

# 1. pkg-config, with the prefix moved to the staging directory.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors replite
cflags=$(pkg-config --define-variable=prefix="$stage" --cflags replite)
libs=$(pkg-config --define-variable=prefix="$stage" --libs replite)
# Only the installed tree is on the include path: not the source tree.
"$cc" -std=c11 -Wall -Wextra -pedantic -Werror $cflags "$src/examples/c/replicate.c" -o "$stage/example_pc" $libs -lsqlite3
LD_LIBRARY_PATH="$libdir" "$stage/example_pc" "$stage/run-pc" >"$stage/run-pc.log"
grep -q '"durable_txid"' "$stage/run-pc.log"

# 2. find_package(replite) from a separate CMake project.
"$cmake" -S "$src/tests/capi/find_package" -B "$stage/fp-build" -DCMAKE_PREFIX_PATH="$stage" \
  -DREPLITE_EXAMPLE_SOURCE="$src/examples/c/replicate.c" >"$stage/fp-configure.log"
"$cmake" --build "$stage/fp-build" >"$stage/fp-build.log"
LD_LIBRARY_PATH="$libdir" "$stage/fp-build/example_fp" "$stage/run-fp" >"$stage/run-fp.log"
grep -q '"durable_txid"' "$stage/run-fp.log"
rm -rf "$stage"
echo "2 passed, 0 failed"
