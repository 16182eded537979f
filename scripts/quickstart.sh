#!/usr/bin/env bash
# Quick start, step 1: install the dependencies, build, and run the main job
# on the embedded default: replicate a sample database to a local directory
# replica while writing to it, restore it (latest and at an earlier txid),
# and verify the restores against the source.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/replite demo -dir "${DEMO_DIR:-replite-demo}"
