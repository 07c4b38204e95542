#!/usr/bin/env bash
# Sets up a fresh machine and runs every test. It installs the Debian packages, the pinned Python
# oracle environment and the real Gemma tokenizer, generates the fixture bundles, builds, makes
# the real Gemma 3 270M bundle and runs the whole suite. Then it rebuilds with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# the suite again under them. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install_deps.sh
scripts/fetch_tokenizer.sh >/dev/null
scripts/make_fixtures.sh

scripts/build.sh build
# The real Gemma 3 270M bundle of the real-weight tests, converted by the mxgemma just built.
scripts/fetch_real_model.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"

if [[ "${MXGEMMA_SKIP_SANITIZERS:-0}" != 1 ]]; then
  scripts/build.sh --sanitize build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)"

  # The image decoders take untrusted files: fuzz them under the sanitizers for a while.
  cmake --build build-asan --target mxgemma_fuzz_image_decode
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build-asan/src/media/mxgemma_fuzz_image_decode "${MXGEMMA_FUZZ_SECONDS:-120}"
fi
