#!/usr/bin/env bash
# foreign_writer.sh: `replite replicate` with its default options beside a
# writer in another process on SQLite's defaults (autocheckpoint 1000):
# RATE commits/s of one ~2 KB row for SECONDS (issue 13's figure). Prints
# generations, commits, txids in the replica, the share of commits that are
# their own txid, and the replica's bytes against `zstd -1` of the rows.
#
#   bench/foreign_writer.sh [BUILD_DIR]    # default BUILD_DIR: build
#
# Env: RATE (default 200), SECONDS_ (default 60), SAMPLES (restores at
# random txids, default 20), SYNC_MS (replicate -sync-ms, default: the CLI's 50).
set -euo pipefail
BUILD=${1:-build}
CLI="$BUILD/replite"
[ -x "$CLI" ] || { echo "no $CLI (build first: scripts/build.sh)" >&2; exit 2; }
RATE=${RATE:-200} SECS=${SECONDS_:-60}
d=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$d"' EXIT
python3 - "$d/app.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"); c.commit(); c.close()
PY
"$CLI" replicate -state "$d/state" ${SYNC_MS:+-sync-ms "$SYNC_MS"} "$d/app.db" "file://$d/replica" > "$d/replicate.log" 2>&1 &
pid=$!
sleep 1.5
python3 - "$d/app.db" "$RATE" "$SECS" <<'PY'
import sqlite3, sys, time, os
c = sqlite3.connect(sys.argv[1], isolation_level=None)   # SQLite's defaults: autocheckpoint 1000
rate, secs = int(sys.argv[2]), float(sys.argv[3])
t0 = time.time(); n = 0
while time.time() - t0 < secs:
    c.execute("INSERT INTO t(v) VALUES (?)", (os.urandom(1024).hex().encode()[:2048],))
    n += 1
    ahead = n / rate - (time.time() - t0)
    if ahead > 0: time.sleep(ahead)
c.close()
print("writer: %d commits in %.1f s" % (n, time.time() - t0))
PY
sleep 3
kill -TERM $pid; wait $pid || true
commits=$(sqlite3 "$d/app.db" "SELECT count(*) FROM t")
gens=$(( $("$CLI" generations "file://$d/replica" | wc -l) - 1 ))
"$CLI" restore -o "$d/r.db" "file://$d/replica" > "$d/restore.log" 2>&1
last=$("$CLI" generations "file://$d/replica" | tail -1 | awk '{print $3}')
own=$(sqlite3 "$d/r.db" "SELECT count(*) FROM t")
bytes=$(du -sb "$d/replica" | cut -f1)
zbytes=$(sqlite3 "$d/app.db" "SELECT v FROM t" | zstd -1 -c | wc -c)
echo "foreign writer: $commits commits at $RATE/s for ${SECS}s; $gens generation(s); last txid $last (first snapshot is txid 1);"
echo "  latest restore has $own rows; replica $bytes bytes, zstd -1 of the rows $zbytes bytes"
grep -c "new generation" "$d/replicate.log" | sed 's/^/  new generation log lines: /'
# Restores at SAMPLES random txids of the last generation (and its last):
# txid t holds exactly the first t-1 rows (one row per commit, the first
# snapshot is txid 1), checked with SQLite's integrity_check.
refused=0 wrong=0
for t in $(python3 -c "import random,sys; n=int(sys.argv[1]); print(' '.join(map(str, sorted(set(random.randint(2, n) for _ in range(int(sys.argv[2]))) | {n}))))" "$last" "${SAMPLES:-20}"); do
  rm -f "$d/t.db"
  if ! "$CLI" restore -txid "$t" -o "$d/t.db" "file://$d/replica" > "$d/t.log" 2>&1; then
    refused=$((refused + 1)); sed 's/^/    /' "$d/t.log"; continue
  fi
  got=$(sqlite3 "$d/t.db" "PRAGMA integrity_check; SELECT count(*), coalesce(max(id), 0) FROM t" | tr '\n' ' ')
  [ "$got" = "ok $((t - 1))|$((t - 1)) " ] || { wrong=$((wrong + 1)); echo "    txid $t: $got"; }
done
echo "  sampled restores: ${SAMPLES:-20} random txids + the last: $refused refused, $wrong not the commit's state"
# Segment bytes against zstd -1 of the WAL pages they carry (issue 13's figure).
[ -x "$BUILD/bench/replica_bytes_bench" ] && "$BUILD/bench/replica_bytes_bench" "$d/replica" | sed 's/^/  /'
