#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test with CTest (what CI runs):
#   1. the release build (gcc, build/): unit, e2e, compat and chaos suites (and api_test_security)
#   2. scripts/sanitize.sh: ASan+UBSan (build-asan/) on the unit and api suites, the fuzz
#      regression, TSan (build-tsan/) on the concurrency suite (docs/hardening.md)
# The api suite runs once, under ASan+UBSan, to keep CI under 45 minutes; soak is not in CI.
#   sudo scripts/test.sh                 # everything above
#   sudo scripts/test.sh -L unit         # with ctest arguments: only those, on the release build
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
# Guests for e2e tests are built once and cached outside the checkout.
scripts/build-tiny-iso.sh >/dev/null
if [ $# -gt 0 ]; then
  exec ctest --test-dir build --output-on-failure --timeout 1200 "$@"
fi
start=$SECONDS
ctest --test-dir build --output-on-failure --timeout 1200 -L 'unit|e2e|compat|chaos'
# Also on the release build: its fd-exhaustion test cannot run under UBSan (docs/hardening.md).
ctest --test-dir build --output-on-failure --timeout 1200 -R '^api_test_security$'
echo "test: release build suites took $((SECONDS - start)) s"
HEARTH_FUZZ_SECONDS=${HEARTH_FUZZ_SECONDS:-10} scripts/sanitize.sh
