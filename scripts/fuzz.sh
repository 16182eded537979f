#!/usr/bin/env bash
# Issue 6, item 6: builds the libFuzzer harnesses of fuzz/ with clang and runs
# each for a bounded time on a copy of its seed corpus (fuzz/corpus/<target>,
# never modified here). Fails on any crash, leak, UBSan/ASan report,
# invariant failure, timeout or OOM; the reproducer is kept in
# $FUZZ_OUT/<target>-crash-* (re-run it: build-fuzz/fuzz/fuzz_<target> FILE).
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_JOBS      targets run at the same time (default: number of cores)
#   FUZZ_TARGETS   subset, e.g. "segment wal" (default: segment wal s3_xml url)
#   FUZZ_BUILD_DIR build directory (default: build-fuzz)
#   FUZZ_OUT       logs and crash artifacts (default: $FUZZ_BUILD_DIR/fuzz-out)
#   FUZZ_MERGE=1   afterwards, merge the new coverage into fuzz/corpus (minimized,
#                  for a maintainer to review and commit; keep it < 1 MB)
#   FUZZ_STRICT=0  skip the invariants of the bugs the fuzzers found first
#                  (all fixed; strict is the default)
#
# Needs clang and libclang-rt-14-dev (libFuzzer and sanitizer runtimes).
# Measured on a 2-core machine (clang 14, clean build dir, defaults):
# build 36 s, run 4 x 60 s two at a time 2m05s; total 2m41s. Typical
# throughput per 60 s: segment ~730k execs, wal ~2M, s3_xml ~36k, url ~400k.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-$(nproc)}"
TARGETS=(${FUZZ_TARGETS:-segment wal s3_xml url})
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
OUT="${FUZZ_OUT:-$BUILD/fuzz-out}"

t0=$(date +%s)
cmake -S fuzz -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="${FUZZ_CC:-clang}" -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++}" \
  -DREPLITE_FUZZ_STRICT="$([ "${FUZZ_STRICT:-1}" = 1 ] && echo ON || echo OFF)" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")
echo "fuzz: built in $(( $(date +%s) - t0 ))s"

rm -rf "$OUT"
mkdir -p "$OUT"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_one() {  # target
  local t="$1" work="$OUT/corpus-$1"
  mkdir -p "$work"
  cp "$ROOT/fuzz/corpus/$t/"* "$work/"
  local seeds; seeds=$(ls "$work" | wc -l)
  local rc=0
  "$BUILD/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/$t-" "$work" >"$OUT/$t.log" 2>&1 || rc=$?
  local execs new
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$t.log")
  new=$(sed -n 's/^stat::new_units_added: *//p' "$OUT/$t.log")
  local artifacts; artifacts=$(ls "$OUT" | grep -E "^$t-(crash|leak|timeout|oom|slow-unit)-" || true)
  if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
    echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} execs; artifacts: ${artifacts:-none}; log: $OUT/$t.log"
    grep -aE "FUZZ INVARIANT|ERROR: |SUMMARY: |runtime error" "$OUT/$t.log" | head -5 | sed 's/^/fuzz:   /'
    return 1
  fi
  echo "fuzz: $t ok: ${execs:-0} execs in ${SECONDS_EACH}s, ${new:-0} new corpus entries (seeds: $seeds, now $(ls "$work" | wc -l))"
}

status=0
pids=()
names=()
for t in "${TARGETS[@]}"; do
  run_one "$t" >"$OUT/$t.summary" &
  pids+=($!)
  names+=("$t")
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
  cat "$OUT/${names[$i]}.summary"
done

if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$status" -eq 0 ]; then
  for t in "${TARGETS[@]}"; do
    "$BUILD/fuzz/fuzz_$t" -merge=1 "$ROOT/fuzz/corpus/$t" "$OUT/corpus-$t" >"$OUT/$t.merge.log" 2>&1
    echo "fuzz: merged into fuzz/corpus/$t: $(ls "$ROOT/fuzz/corpus/$t" | wc -l) files, $(du -sh "$ROOT/fuzz/corpus/$t" | cut -f1)"
  done
fi
echo "fuzz: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - t0 ))s"
exit $status
