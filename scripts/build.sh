#!/usr/bin/env bash
# Configures and builds litseg in ./build (Release, Ninja). Extra arguments go to CMake,
# e.g. scripts/build.sh -DCMAKE_PREFIX_PATH=/opt/libtorch -DLITSEG_WITH_CUDA=ON
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${LITSEG_BUILD_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$jobs"
