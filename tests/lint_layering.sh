#!/usr/bin/env bash
# [lint] The layers of lib/ (issue 15): `core` (registry, scheduler, capture
# jobs) and `restore` both sit above `replica` (one database's replica:
# manifest, catalog, retention, lease, upload spool), so
#  1. nothing under lib/restore/ or lib/replica/ includes a "core/" header;
#  2. nothing under lib/replica/ includes a "restore/" header;
#  3. lib/wal/ (the WAL reader, issue 13) sits below all three: it reads
#     through a ReadableFile and includes nothing from core, replica or restore;
#  4. nothing under lib/store/ (object stores and their circuit breaker,
#     store/store_health.h) includes a "core/", "replica/" or "restore/"
#     header: both wings sit above the stores.
# Usage: lint_layering.sh SOURCE_DIR
set -euo pipefail
cd "${1:?source dir}"
fail=0
check() {  # check DIR LAYER WHY: DIR's files must not include "LAYER/..."
  local hits
  hits=$(grep -rnE --include='*.cc' --include='*.h' "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$2/" "$1" || true)
  if [ -n "$hits" ]; then
    echo "lint_layering: $1 includes $2/ ($3):" >&2
    echo "$hits" | sed 's/^/  /' >&2
    fail=1
  fi
}
check lib/restore core "restore reads a replica through lib/replica/, never through the replicator"
check lib/replica core "the replica wing sits below core; move the shared part down into lib/replica/"
check lib/replica restore "the replica wing sits below restore"
for layer in core replica restore; do
  check lib/wal $layer "the WAL reader sits below $layer: give it what it needs through wal/readable_file.h"
  check lib/store $layer "the stores sit below core, replica and restore"
done
[ $fail = 0 ] && echo "lint_layering: ok (restore and replica include nothing from core; replica nothing from restore; wal and store nothing from core, replica or restore)"
exit $fail
