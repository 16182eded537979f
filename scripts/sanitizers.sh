#!/usr/bin/env bash
# Issue 6, item 7: the test suite under sanitizers.
#
#   scripts/sanitizers.sh [asan|tsan|all]      (default: all)
#
# 1. ASan+UBSan (build-asan/): the whole project built with
#    -fsanitize=address,undefined -fno-sanitize-recover=all
#    -fno-omit-frame-pointer, then the FULL ctest suite (-j2) except the
#    tests listed in ASAN_EXCLUDE below.
# 2. TSan (build-tsan/): the whole project built with -fsanitize=thread, then
#    a reduced suite: the replite_tests cases tagged [e2e], [s3], [errors], [spool],
#    [http], [wal], [cli], [sftp] (the shared pool of SSH sessions), [pipeline] (a capture's compressing thread), [restore] (the restore's fetching and decoding threads) and [pack] (packs filled by many jobs, stored and unpacked by others), plus the C ABI tests capi_test, capi_misuse_test,
#    capi_test_s3 and example_cpp. These are the cases where
#    threads meet: the replicator's worker/uploader threads and WAL hook
#    ([e2e], [cli], capi_*), the shared HTTP pool with parallel multipart
#    parts and 200 concurrent puts ([s3], [http]), shutdown and error paths
#    racing background work ([errors]). Left out: [format], [xml], [sigv4],
#    [hash], [retention], [corruption] (single-threaded codecs and
#    single-threaded retention/restore, already covered by ASan and the
#    fuzzers) - they add TSan minutes without adding concurrency.
#
# Excluded from both runs (they are not about memory or threads, and cannot
# run an instrumented library as written):
#   capi_exports            nm over libreplite.so: sanitizer builds export
#                           extra runtime symbols.
#   capi_install_pkgconfig  installs and compiles the C example against the
#                           installed library without sanitizer flags.
#   capi_header_c/_cxx      compile-only checks of replite.h.
#   example_python          loads libreplite.so into an uninstrumented
#                           python3 via ctypes; the sanitizer runtime must be
#                           the first DSO loaded.
#
# Any sanitizer report fails the script: -fno-sanitize-recover=all and
# halt_on_error make the process exit non-zero, AND ASan/LSan/TSan reports
# are also written to $BUILD/sanitizer-logs/ (log_path), which must stay
# empty, AND ctest's Testing/Temporary/LastTest.log (every test's output) must
# hold no report (gcc's UBSan ignores log_path and prints to stderr) - so a
# report from a child process whose exit status a test ignores (the CLI under
# popen, a forked helper) still fails the run.
# (The [capi] of the brief is not a Catch tag: the C ABI tests are the ctest
# tests capi_*, selected by name.)
#
# Compiler: gcc by default (its sanitizer runtimes libasan8/libubsan1/
# libtsan2 come with build-essential). SAN_CC=clang SAN_CXX=clang++ selects
# clang (needs libclang-rt-14-dev; not what was measured below).
# Suppressions: scripts/lsan.supp and scripts/tsan.supp, for third-party
# code only (never replite's own).
#
# Measured on a 2-core machine (gcc 12, -j2), clean build dirs, 50 ctest
# tests (2026-11-27):
#   ASan+UBSan build 5m07s, full suite 1m36s
#   TSan build       2m03s, reduced suite (38 tests) 2m52s
#   total            11m39s
# The longest single tests are the S3 end-to-end ones (~30-45 s each under
# either sanitizer); ctest -j2 keeps both cores busy.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
MODE="${1:-all}"
JOBS="${JOBS:-2}"
CC_="${SAN_CC:-gcc}"
CXX_="${SAN_CXX:-g++}"
ASAN_DIR="${ASAN_BUILD_DIR:-$ROOT/build-asan}"
TSAN_DIR="${TSAN_BUILD_DIR:-$ROOT/build-tsan}"

ASAN_EXCLUDE='^(capi_exports|capi_install_pkgconfig|capi_header_c|capi_header_cxx|example_python)$'
TSAN_TAGS='[e2e],[s3],[errors],[http],[wal],[cli],[spool],[sftp],[pipeline],[restore],[pack]'
TSAN_EXTRA='^(capi_test|capi_misuse_test|capi_test_s3|example_cpp)$'

now() { date +%s; }
elapsed() { local s=$(( $(now) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

configure_build() {  # dir, sanitizer flags
  local dir="$1" flags="$2"
  local t0; t0=$(now)
  cmake -S "$ROOT" -B "$dir" -G Ninja \
    -DCMAKE_C_COMPILER="$CC_" -DCMAKE_CXX_COMPILER="$CXX_" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
    -DREPLITE_BUILD_TESTS=ON >/dev/null
  cmake --build "$dir" -j"$JOBS"
  echo "sanitizers: built $dir in $(elapsed "$t0")"
}

# Fails (returns 1) if the run failed, any sanitizer log was written, or
# any test's output (ctest's LastTest.log) holds a sanitizer report (gcc's
# UBSan always prints to stderr, ignoring log_path).
check_logs() {  # builddir, logdir, run status
  local builddir="$1" logdir="$2" rc="$3" found=0
  for f in "$logdir"/*; do
    [ -s "$f" ] || continue
    # LeakSanitizer's own failure to stop a thread that was exiting at that
    # moment ("Unable to get registers from thread N") is no finding about
    # the code: a log holding nothing else is reported and not counted.
    if ! grep -qvE '^==[0-9]+==Unable to get registers from thread [0-9]+\.?$' "$f"; then
      echo "sanitizers: note: $f holds only LeakSanitizer's 'Unable to get registers' (a thread exiting during the leak check)"
      continue
    fi
    found=1
    echo "===== sanitizer report: $f"
    cat "$f"
  done
  local pat='runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|SUMMARY: (UndefinedBehavior|Address|Leak|Thread)Sanitizer'
  if grep -aqE "$pat" "$builddir/Testing/Temporary/LastTest.log" 2>/dev/null; then
    found=1
    echo "===== sanitizer reports in test output ($builddir/Testing/Temporary/LastTest.log):"
    grep -aE -B2 -A25 "$pat" "$builddir/Testing/Temporary/LastTest.log" | head -300
  fi
  if [ "$found" -ne 0 ]; then echo "sanitizers: FAILED: sanitizer reports above"; return 1; fi
  if [ "$rc" -ne 0 ]; then echo "sanitizers: FAILED: tests failed (exit $rc)"; return 1; fi
  return 0
}

# ctest test numbers for a list of test names (one per line on stdin), as
# ctest -I's "0,0,0,n1,n2,..." (ctest -R would need every name escaped).
ctest_numbers() {  # builddir
  local names; names="$(cat)"
  (cd "$1" && ctest -N) | sed -n 's/^ *Test *#\([0-9]*\): \(.*\)$/\1\t\2/p' |
    awk -F'\t' -v names="$names" '
      function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
      BEGIN { n = split(names, a, "\n"); for (i = 1; i <= n; i++) want[trim(a[i])] = 1 }
      { if (trim($2) in want) printf ",%s", $1 }'
}

run_asan() {
  local t0; t0=$(now)
  configure_build "$ASAN_DIR" "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
  local logdir="$ASAN_DIR/sanitizer-logs"
  rm -rf "$logdir"; mkdir -p "$logdir"
  local t1; t1=$(now)
  set +e
  (cd "$ASAN_DIR" &&
   ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=0:log_path=$logdir/asan" \
   LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0" \
   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logdir/ubsan" \
   REPLITE_TORTURE_OPS="${REPLITE_TORTURE_OPS:-120}" \
   ctest --output-on-failure -j"$JOBS" --timeout 900 -E "$ASAN_EXCLUDE")
  local rc=$?
  set -e
  echo "sanitizers: ASan+UBSan tests took $(elapsed "$t1") (build+tests $(elapsed "$t0"))"
  check_logs "$ASAN_DIR" "$logdir" "$rc"
}

run_tsan() {
  local t0; t0=$(now)
  configure_build "$TSAN_DIR" "-fsanitize=thread -fno-omit-frame-pointer"
  local logdir="$TSAN_DIR/sanitizer-logs"
  rm -rf "$logdir"; mkdir -p "$logdir"
  local nums
  nums="$( { "$TSAN_DIR/tests/replite_tests" --list-test-names-only "$TSAN_TAGS" | sed '/^$/d'
             (cd "$TSAN_DIR" && ctest -N) | sed -n 's/^ *Test *#[0-9]*: //p' | grep -E "$TSAN_EXTRA"; } |
           ctest_numbers "$TSAN_DIR")"
  if [ -z "$nums" ]; then echo "sanitizers: no TSan tests selected"; return 1; fi
  echo "sanitizers: TSan runs $(echo "$nums" | tr ',' '\n' | sed '/^$/d' | wc -l) ctest tests"
  local t1; t1=$(now)
  set +e
  (cd "$TSAN_DIR" &&
   TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$ROOT/scripts/tsan.supp:log_path=$logdir/tsan" \
   REPLITE_TORTURE_OPS="${REPLITE_TORTURE_OPS:-40}" \
   ctest --output-on-failure -j"$JOBS" --timeout 900 -I "0,0,0$nums")
  local rc=$?
  set -e
  echo "sanitizers: TSan tests took $(elapsed "$t1") (build+tests $(elapsed "$t0"))"
  check_logs "$TSAN_DIR" "$logdir" "$rc"
}

T0=$(now)
status=0
case "$MODE" in
  asan) run_asan || status=1 ;;
  tsan) run_tsan || status=1 ;;
  all) run_asan || status=1; run_tsan || status=1 ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
echo "sanitizers: $MODE $([ $status -eq 0 ] && echo passed || echo FAILED) in $(elapsed "$T0")"
exit $status
