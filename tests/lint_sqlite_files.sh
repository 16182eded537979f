#!/usr/bin/env bash
# [lint] Nothing in the library or the CLI opens a raw descriptor on a
# replicated database's files (DESIGN.md §3.5; lib/core/sqlite_files.h):
# closing any descriptor of the database, -wal or -shm drops every POSIX
# lock this process holds on it, the application's included.
#  1. Raw opens are allowed only in the files listed below, each for files
#     of the library's own (replica objects, spool, state, credentials,
#     restore targets). A new file that needs one is added here, with its
#     reason, in review.
#  2. The names "-wal" and "-shm" appear in code only in sqlite_files.cc,
#     or on a line that only stats or unlinks (neither opens a descriptor).
# Usage: lint_sqlite_files.sh SOURCE_DIR
set -euo pipefail
cd "${1:?source dir}"
allowed=(
  lib/util/file_util.cc          # the helpers themselves
  lib/util/file_util.h
  lib/core/sqlite_files.cc       # opens through SQLite's VFS only
  lib/core/spool_sink.cc         # staged segments and snapshots in the spool dir
  lib/replica/upload_spool.cc      # the upload spool in the state dir
  lib/replica/packer.cc          # local copies of stored packs in state_dir/unpack
  lib/core/instance.cc           # state_dir/lock and state_dir/instance-id
  lib/core/snapshot_check.cc     # the scratch copy of a snapshot in the spool dir
  lib/store/file_store.cc        # replica objects of file:// stores
  lib/store/body_digest.cc       # digests of upload bodies staged in the spool dir
  lib/store/s3/s3_credentials.cc # the AWS credentials file
  lib/store/azure/entra_token.cc # the Kubernetes federated token file (AZURE_FEDERATED_TOKEN_FILE)
  lib/store/gcs/gcs_token.cc     # the service account key file (GOOGLE_APPLICATION_CREDENTIALS)
  lib/store/s3/sts_credentials.cc      # the web identity token file
  lib/store/s3/metadata_credentials.cc # the container authorization token file
  lib/store/s3/process_credentials.cc  # /dev/null as credential_process's stdin
  lib/http/http_client.cc        # request bodies from spool files
  lib/store/sftp/sftp_store.cc   # PutFile bodies from spool files
  lib/restore/restore.cc         # the restore's own temporary target
  lib/core/memory_report.cc      # /proc/self/statm (the memory report's rss)
)
fail=0
raw='\b(OpenFile|ReadFileToString|WriteFileAtomic|open|openat|fopen|freopen|creat|mkstemp)[[:space:]]*\(|std::(i|o)?fstream|\b(i|o)fstream\b'
while IFS= read -r f; do
  ok=0
  for a in "${allowed[@]}"; do [ "$f" = "$a" ] && ok=1; done
  if [ $ok = 0 ]; then
    echo "lint_sqlite_files: $f opens files directly:" >&2
    grep -nE "$raw" "$f" | sed 's/^/  /' >&2
    echo "  read a database's files through core/sqlite_files.h, or add $f to the allowlist with its reason" >&2
    fail=1
  fi
done < <(grep -rlE "$raw" lib capi examples include --include='*.cc' --include='*.h' --include='*.c' | sort)
while IFS= read -r hit; do
  f=${hit%%:*}
  [ "$f" = lib/core/sqlite_files.cc ] && continue
  line=${hit#*:*:}
  case "$line" in
    *//*) code=${line%%//*} ;;
    *) code=$line ;;
  esac
  if [[ "$code" != *'"-wal"'* && "$code" != *'"-shm"'* ]]; then continue; fi
  if [[ "$code" =~ (^|[^a-z_])(stat|unlink)[[:space:]]*\( ]]; then continue; fi
  echo "lint_sqlite_files: $hit" >&2
  echo "  names a database's -wal/-shm file outside core/sqlite_files.cc: read it through SQLite's handles" >&2
  fail=1
done < <(grep -rnE --include='*.cc' --include='*.h' --include='*.c' '"-(wal|shm)"' lib capi examples)
[ $fail = 0 ] && echo "lint_sqlite_files: ok (no raw access to a database's files)"
exit $fail
