#!/usr/bin/env bash
# Configures and builds mxgemma. Usage: scripts/build.sh [--sanitize] [BUILD_DIR]
# --sanitize builds with AddressSanitizer and UndefinedBehaviorSanitizer (default dir build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=OFF
build_type=Release
build_dir=""
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=ON; build_type=RelWithDebInfo ;;
    *) build_dir=$arg ;;
  esac
done
if [[ -z "$build_dir" ]]; then
  if [[ $sanitize == ON ]]; then build_dir=build-asan; else build_dir=build; fi
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=$build_type -DMXGEMMA_SANITIZE=$sanitize >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
