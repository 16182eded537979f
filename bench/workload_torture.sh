#!/usr/bin/env bash
# workload_torture.sh: the long version of the [torture] test (issue 13
# item 6): a seeded random workload on SQLite's defaults (tiny and 24 MB
# transactions, VACUUM, foreign PASSIVE/FULL/RESTART/TRUNCATE checkpoints
# from this process and another one, a second writer process, long-lived
# readers, autocheckpoint off and on, replicator restarts); afterwards every
# txid is restored and matched against the per-commit digests.
#
#   bench/workload_torture.sh [BUILD_DIR]     # default BUILD_DIR: build
#
# Env: OPS (default 3000 operations per run), RUNS (default 3), SEED (replays
# one run). Prints each run's summary line: commits, generations, txids
# restored, share of commits that are their own restore point.
set -u
BUILD=${1:-build}
BIN="$BUILD/tests/replite_tests"
[ -x "$BIN" ] || { echo "no $BIN (build first: scripts/build.sh)" >&2; exit 2; }
export REPLITE_TORTURE_OPS=${OPS:-3000}
[ -n "${SEED:-}" ] && export REPLITE_TORTURE_SEED=$SEED
rc=0
for i in $(seq 1 "${RUNS:-3}"); do
  t0=$(date +%s)
  "$BIN" "[torture]" > "/tmp/workload_torture.$$.log" 2>&1 || rc=1
  grep -A6 "warning:" "/tmp/workload_torture.$$.log" | grep -v -E "^\s*$|^-+$|^\.+$|warning:$"
  grep -E "FAILED|passed|failed" "/tmp/workload_torture.$$.log" | tail -2
  echo "run $i: $(( $(date +%s) - t0 )) s"
done
rm -f "/tmp/workload_torture.$$.log"
exit $rc
