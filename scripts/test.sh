#!/usr/bin/env bash
# One command from a fresh clone to a full test run: installs the system packages, builds
# everything and runs every ctest test (slow-labelled ones included).
# Tests that need ../shared (reference data beside the clone) skip with a reason without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 1800 -j "${LITSEG_TEST_JOBS:-2}" "$@"
