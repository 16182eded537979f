#!/usr/bin/env bash
# [lint] Every Catch2 test case is a ctest entry under its own name: a name
# that ctest would split (at ';') or that discovery missed runs nowhere and
# passes unnoticed. Usage: lint_test_names.sh TEST_BINARY BUILD_DIR
set -euo pipefail
bin=${1:?test binary} build=${2:?build dir}
# (Catch2 v2 exits with the number of test cases listed.)
catch_names=$({ "$bin" --list-test-names-only || true; } | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | sed '/^$/d' | sort)
ctest_names=$(cd "$build" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p' | sed 's/[[:space:]]*$//' | sort)
missing=$(comm -23 <(echo "$catch_names") <(echo "$ctest_names"))
n=$(echo "$catch_names" | wc -l)
if [ -n "$missing" ]; then
  echo "lint_test_names: Catch2 test cases without a ctest entry of the same name:" >&2
  echo "$missing" | sed 's/^/  /' >&2
  echo "  (a ';' in a name splits it; rename the test case)" >&2
  exit 1
fi
echo "lint_test_names: ok ($n test cases, each a ctest entry)"
