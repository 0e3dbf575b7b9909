#!/usr/bin/env bash
# Configures and builds ntkspec into ./build (Release with debug info, warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNTK_WERROR=ON >/dev/null
cmake --build build -j "$(nproc)" 2>&1 | grep -E "error|warning|Error" || true
test -x build/ntkspec
