#!/usr/bin/env bash
# Quick start, step 2: build (with warnings as errors) and run the tests.
# The S3 tests start moto_server on 127.0.0.1 themselves and fail (not skip)
# when it cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DREPLITE_WERROR=ON
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
