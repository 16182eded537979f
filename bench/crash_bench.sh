#!/usr/bin/env bash
# crash_bench.sh: the long versions of the [crash] and [outage] tests
# (issue 6 items 2 and 3), for bench/README.md.
#
#   bench/crash_bench.sh [BUILD_DIR]        # default BUILD_DIR: build
#
# Env knobs (defaults here): ROUNDS=50 replicate SIGKILL rounds (each test
# case), AIMED_ROUNDS=20 rounds of each aimed test (kills during snapshot
# upload, S3 multipart upload, retention cleanup), RESTORE_KILLS=50 SIGKILLs
# of `replite restore`, OUTAGE_S=120 seconds of store outage, SEED (replays a
# run; printed otherwise).
# Needs the built test binary (BUILD_DIR/tests/replite_tests, built with the
# CLI) and python3 with moto for the outage part. Every txid reported durable
# is restored and checked (REPLITE_CRASH_SAMPLES=0). Prints the summary
# lines: rounds survived, txids checked, faults injected by kind, peak RSS.
set -u
BUILD=${1:-build}
BIN="$BUILD/tests/replite_tests"
[ -x "$BIN" ] || { echo "no $BIN (build first: cmake -S . -B $BUILD -G Ninja && ninja -C $BUILD)" >&2; exit 2; }
export REPLITE_CRASH_ROUNDS=${ROUNDS:-50} REPLITE_CRASH_SAMPLES=0 REPLITE_RESTORE_KILLS=${RESTORE_KILLS:-50}
export REPLITE_CRASH_AIMED_ROUNDS=${AIMED_ROUNDS:-20} REPLITE_CRASH_S3_ROUNDS=${AIMED_ROUNDS:-20}
export REPLITE_OUTAGE_S=${OUTAGE_S:-120}
[ -n "${SEED:-}" ] && export REPLITE_CRASH_SEED=$SEED
rc=0
summary() { grep -A8 -E "warning:" | grep -v -E "^\s*$|^-+$|^\.+$|warning:$" ; }
run() {
  local name=$1; shift
  local t0=$(date +%s)
  echo "== $name"
  "$BIN" "$@" > "/tmp/crash_bench.$$.log" 2>&1
  local r=$?
  sed -n '/warning:/,/^$/p' "/tmp/crash_bench.$$.log" | grep -v '^$' | grep -v '^/work' | sed 's/^  //' | tr '\n' ' ' \
    | sed 's/\(crash torture:\|txid order:\|kills during\|restore kills:\|outage \)/\n\1/g'; echo
  grep -E "test cases|assertions" "/tmp/crash_bench.$$.log"
  echo "-- $name: exit $r, $(( $(date +%s) - t0 )) s"
  [ $r -ne 0 ] && rc=1
  rm -f "/tmp/crash_bench.$$.log"
}
run "replicate SIGKILL torture ($REPLITE_CRASH_ROUNDS rounds, every durable txid restored)" \
  "crash torture: SIGKILL the replicator at random moments*"
run "txid order across restarts ($REPLITE_CRASH_ROUNDS rounds)" \
  "crash torture: txids never go backwards across restarts"
run "aimed SIGKILLs ($REPLITE_CRASH_AIMED_ROUNDS rounds each: snapshot upload, S3 multipart upload, retention cleanup)" \
  "crash torture: SIGKILL during snapshot upload,crash torture: SIGKILL during a multipart upload to S3,crash torture: SIGKILL during retention cleanup"
run "restore SIGKILL ($REPLITE_RESTORE_KILLS kills)" "crash torture: SIGKILL during restore never leaves a half-written target"
run "S3 outage ${REPLITE_OUTAGE_S} s (fault proxy refuses everything)" "[outage]"
exit $rc
