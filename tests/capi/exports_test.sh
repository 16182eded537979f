#!/bin/sh
# Every function declared in replite.h is exported by libreplite.so (a
# missing REPLITE_EXPORT would hide it), and the library exports no C
# symbol outside the replite_ prefix.
# Usage: exports_test.sh HEADER LIBRARY
set -u
header=$1 lib=$2
declared=$(grep -o '^REPLITE_C_EXPORT[^(]*(' "$header" | sed 's/($//; s/.*[ *]//' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TW]$/ {print $3}' | sort -u)
pass=0 fail=0
for f in $declared; do
  if echo "$exported" | grep -qx "$f"; then pass=$((pass + 1)); else echo "not exported: $f"; fail=$((fail + 1)); fi
done
# C symbols (unmangled names) other than ours would be leaked internals.
stray=$(echo "$exported" | grep -v '^_Z' | grep -v '^replite_' | grep -v '^_init$' | grep -v '^_fini$')
if [ -n "$stray" ]; then echo "exported C symbols outside replite_*:"; echo "$stray"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
[ "$(echo "$declared" | wc -w)" -ge 26 ] && pass=$((pass + 1)) || { echo "too few declarations parsed"; fail=$((fail + 1)); }
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
