#!/usr/bin/env bash
# [lint] Policy follows Status codes, never message text (DESIGN.md §5
# "Errors are values"; issue 13): nothing in the library, the C ABI or the
# CLI searches a Status's message (or its ToString) to decide whether to
# retry, report or give up. A message is for people; it may contain any
# key, path or server text. Tests may inspect messages.
# Usage: lint_status_text.sh SOURCE_DIR
set -euo pipefail
cd "${1:?source dir}"
pat='(message|ToString)\(\)[[:space:]]*\.[[:space:]]*(find|rfind|starts_with|ends_with|compare|substr|find_first_of)[[:space:]]*\(|str(case)?str[[:space:]]*\([^)]*(message|ToString)\(\)'
hits=$(grep -rnE --include='*.cc' --include='*.h' --include='*.c' "$pat" lib capi examples || true)
if [ -n "$hits" ]; then
  echo "lint_status_text: a decision made by searching a Status message (use its code):" >&2
  echo "$hits" | sed 's/^/  /' >&2
  exit 1
fi
echo "lint_status_text: ok (no Status message is searched in lib/, capi/, examples/)"
