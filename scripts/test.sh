#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (unit, api, e2e, compat) with CTest.
#   sudo scripts/test.sh [ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
# Guests for e2e tests are built once and cached outside the checkout.
scripts/build-tiny-iso.sh >/dev/null
ctest --test-dir build --output-on-failure --timeout 1200 "$@"
